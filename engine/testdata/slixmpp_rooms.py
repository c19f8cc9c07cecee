"""Page through the room list of conference.<domain> with slixmpp's XEP-0059 result set
iterator over XEP-0030 disco#items (ten rooms a page, as slixmpp asks by default), the
way a client browses a large service. Prints each page's size, first room, index and the
count, then whether the pages follow each other without a room twice. Used by TestIntegrationSlixmppRoomList; exits non-zero on
failure."""
import slixmpp

import slixrun


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, cafile):
        super().__init__(jid, password)
        self.ok = False
        slixrun.trust(self, cafile)
        for p in ("xep_0030", "xep_0059"):
            self.register_plugin(p)
        self.add_event_handler("session_start", self.start)

    async def start(self, _):
        it = await self["xep_0030"].get_items(jid="conference." + self.boundjid.domain, iterator=True)
        seen = []
        async for page in it:
            items = [i[0] for i in page["disco_items"]["items"]]
            rsm = page["disco_items"]["rsm"]
            print("PAGE", len(items), "first", rsm["first"], "index", rsm["first_index"], "count", rsm["count"], flush=True)
            # slixmpp hands a page's items over as a set: order within a page is its own.
            seen.extend(sorted(str(j) for j in items))
        print("ROOMS", len(seen), "pages in order", seen == sorted(seen), "distinct", len(set(seen)) == len(seen), flush=True)
        print("DONE", flush=True)
        self.ok = True
        self.disconnect()


def main():
    slixrun.run(lambda jid, password, cafile, _: Client(jid, password, cafile), 30)


if __name__ == "__main__":
    main()
