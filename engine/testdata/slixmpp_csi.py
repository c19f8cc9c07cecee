"""Log in with slixmpp, take XEP-0352 from the stream features, go inactive and print every
presence and message as it arrives (one line each), until a message with a body comes.
Used by TestIntegrationSlixmppCSI; exits non-zero on failure."""

import slixmpp

import slixrun


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, cafile):
        super().__init__(jid, password)
        self.ok = False
        slixrun.trust(self, cafile)
        self.register_plugin("xep_0352")
        self.register_plugin("xep_0199")
        self.register_plugin("xep_0085")
        self.add_event_handler("chatstate", self.chatstate)
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("presence", self.presence)
        self.add_event_handler("message", self.message)

    async def start(self, _):
        if not self["xep_0352"].enabled:
            print("NO CSI FEATURE", flush=True)
            self.disconnect()
            return
        self.send_presence()
        await self.get_roster()
        self["xep_0352"].send_inactive()
        await self["xep_0199"].ping(self.boundjid.domain)  # in order after <inactive/>
        print("INACTIVE", flush=True)

    def presence(self, p):
        if p["from"].bare != self.boundjid.bare:
            print("PRESENCE", p["from"].bare, p["show"] or "available", flush=True)

    def message(self, m):
        if m["body"]:
            print("BODY", m["body"], flush=True)
            self.ok = True
            self.disconnect()


    def chatstate(self, m):
        print("CHATSTATE", m["from"].bare, flush=True)


def main():
    slixrun.run(lambda jid, password, cafile, _: Client(jid, password, cafile), 30)


if __name__ == "__main__":
    main()
