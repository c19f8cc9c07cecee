"""An XEP-0048 client on PEP (slixmpp's xep_0048 with storage_method xep_0223, whose caps
say storage:bookmarks+notify) against XEP-0402 §5.3 #compat-pep: it stores its list in the
storage:bookmarks node, a XEP-0402 bookmark is published beside it, and the client hears
of the new list and reads it back. Used by TestIntegrationSlixmppBookmarks; exits non-zero
on failure."""
import asyncio
import xml.etree.ElementTree as ET

import slixmpp
from slixmpp.plugins.xep_0048.stanza import Bookmarks

import slixrun


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, cafile):
        super().__init__(jid, password)
        self.ok = False
        slixrun.trust(self, cafile)
        for p in ("xep_0030", "xep_0045", "xep_0049", "xep_0060", "xep_0115", "xep_0163", "xep_0223"):
            self.register_plugin(p)
        self.register_plugin("xep_0048", {"storage_method": "xep_0223"})
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("bookmarks_publish", self.published)
        self.lists = asyncio.Queue()

    def published(self, msg):
        confs = msg["pubsub_event"]["items"]["item"]["bookmarks"]["conferences"]
        self.lists.put_nowait(sorted(str(c["jid"]) for c in confs))

    async def start(self, _):
        self.send_presence()
        await self.get_roster()
        info = await self["xep_0030"].get_info(jid=self.boundjid.bare)
        if "urn:xmpp:bookmarks:1#compat-pep" in info["disco_info"]["features"]:
            print("COMPAT-PEP", flush=True)
        bm = Bookmarks()
        bm.add_conference("council@conference.localhost", "slix", name="Council", autojoin=True)
        await self["xep_0048"].set_bookmarks(bm, method="xep_0223")
        print("STORED", flush=True)
        print("LIST", ",".join(await asyncio.wait_for(self.lists.get(), 10)), flush=True)
        # Another client bookmarks a room with XEP-0402.
        conf = ET.Element("{urn:xmpp:bookmarks:1}conference", {"name": "Cafe"})
        await self["xep_0060"].publish(self.boundjid.bare, "urn:xmpp:bookmarks:1", id="cafe@conference.localhost", payload=conf)
        print("LIST", ",".join(await asyncio.wait_for(self.lists.get(), 10)), flush=True)
        got = await self["xep_0048"].get_bookmarks(method="xep_0223")
        names = sorted(str(c["name"]) for c in got["pubsub"]["items"]["item"]["bookmarks"]["conferences"])
        print("READ", ",".join(names), flush=True)
        self.ok = True
        self.disconnect()


def main():
    slixrun.run(lambda jid, password, cafile, _: Client(jid, password, cafile), 30)


if __name__ == "__main__":
    main()
