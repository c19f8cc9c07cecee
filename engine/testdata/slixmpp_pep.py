"""Publish an XEP-0084 avatar (data and metadata) and an XEP-0172 nickname with slixmpp's
XEP-0163 plugins, get the metadata notification back, and read the avatar data again.
Used by TestIntegrationSlixmppPep; exits non-zero on failure."""
import asyncio

import slixmpp

import slixrun


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, cafile):
        super().__init__(jid, password)
        self.ok = False
        slixrun.trust(self, cafile)
        for p in ("xep_0030", "xep_0060", "xep_0115", "xep_0163", "xep_0084", "xep_0172"):
            self.register_plugin(p)
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("avatar_metadata_publish", self.metadata)
        self.notified = asyncio.Event()

    def metadata(self, msg):
        print("NOTIFIED", msg["pubsub_event"]["items"]["item"]["id"], flush=True)
        self.notified.set()

    async def start(self, _):
        print("BOUND", self.boundjid.full, flush=True)
        self.send_presence()
        await self.get_roster()
        data = b"\x89PNG fake avatar bytes"
        aid = self["xep_0084"].generate_id(data)
        await self["xep_0084"].publish_avatar(data)
        await self["xep_0084"].publish_avatar_metadata({"id": aid, "type": "image/png", "bytes": len(data)})
        print("PUBLISHED", aid, flush=True)
        await asyncio.wait_for(self.notified.wait(), 10)
        got = await self["xep_0084"].retrieve_avatar(self.boundjid.bare, aid)
        if got["pubsub"]["items"]["item"]["avatar_data"]["value"] == data:
            print("AVATAR OK", flush=True)
        await self["xep_0172"].publish_nick("Slix")
        items = await self["xep_0060"].get_items(self.boundjid.bare, "http://jabber.org/protocol/nick")
        if ">Slix</nick>" in str(items):
            print("NICK Slix", flush=True)
        else:
            print("NICK MISSING", items, flush=True)
        self.ok = True
        self.disconnect()


def main():
    slixrun.run(lambda jid, password, cafile, _: Client(jid, password, cafile), 30)


if __name__ == "__main__":
    main()
