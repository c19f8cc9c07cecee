"""Log in with slixmpp, collect the offline messages (printing each one's stanza-id), then
use the XEP-0313 plugin: the query form, the archive metadata, every message with
bob@localhost through the RSM iterator two at a time, and the last page paging backwards.
(slixmpp's backward iterator stops after one page when the server gives RSM index and
count: it takes first index + page size == count as the end in both directions.)
Used by TestIntegrationSlixmppMam; exits non-zero on failure. Lines:
  LIVE <stanza-id> <body>     an offline message as delivered
  FIELDS <var> ...            the query form's fields, sorted
  META <first id> <last id>   archive metadata
  RESULT <archive id> <body>  forward paging, oldest first
  LAST <archive id> <body>    backward paging, newest first"""
import asyncio

import slixmpp

import slixrun
from slixmpp import JID

WANT = 5


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, cafile):
        super().__init__(jid, password)
        self.ok = False
        slixrun.trust(self, cafile)
        self.register_plugin("xep_0313")
        self.register_plugin("xep_0359")
        self.live = 0
        self.all_live = asyncio.Event()
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("message", self.message)

    def message(self, m):
        if m["body"] and not m["mam_result"]["id"]:
            print("LIVE", m["stanza_id"]["id"], m["body"], flush=True)
            self.live += 1
            if self.live == WANT:
                self.all_live.set()

    async def start(self, _):
        try:
            self.send_presence()
            await asyncio.wait_for(self.all_live.wait(), 20)
            form = await self["xep_0313"].get_fields()
            print("FIELDS", " ".join(sorted(form.get_fields().keys())), flush=True)
            meta = await self["xep_0313"].get_archive_metadata()
            md = meta["mam_metadata"]
            print("META", md["start"]["id"], md["end"]["id"], flush=True)
            async for m in self["xep_0313"].iterate(with_jid=JID("bob@localhost"), rsm={"max": 2}):
                r = m["mam_result"]
                print("RESULT", r["id"], r["forwarded"]["stanza"]["body"], flush=True)
            async for m in self["xep_0313"].iterate(reverse=True, rsm={"max": 2}):
                r = m["mam_result"]
                print("LAST", r["id"], r["forwarded"]["stanza"]["body"], flush=True)
            self.ok = True
        except Exception as e:  # report, then fail through the exit code
            print("ERROR", repr(e), flush=True)
        finally:
            self.disconnect()


def main():
    slixrun.run(lambda jid, password, cafile, _: Client(jid, password, cafile), 45)


if __name__ == "__main__":
    main()
