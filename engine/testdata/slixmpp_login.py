"""Log in to Vireo with slixmpp, bind, fetch the roster, send a message to ourselves and
print what happened. Used by TestIntegrationSlixmpp; exits non-zero on failure."""

import slixmpp

import slixrun


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, cafile):
        super().__init__(jid, password)
        self.ok = False
        slixrun.trust(self, cafile)
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("failed_all_auth", self.failed)
        self.add_event_handler("message", self.message)

    async def start(self, _):
        print("BOUND", self.boundjid.full, flush=True)
        self.send_presence()
        await self.get_roster()
        print("ROSTER", len(self.client_roster), flush=True)
        self.send_message(mto=self.boundjid.full, mbody="ping from slixmpp", mtype="chat")

    def message(self, msg):
        if msg["body"] == "ping from slixmpp":
            print("ECHO", msg["from"], flush=True)
            self.ok = True
            self.disconnect()

    def failed(self, _):
        print("AUTH FAILED", flush=True)
        self.disconnect()


def main():
    slixrun.run(lambda jid, password, cafile, _: Client(jid, password, cafile), 20)


if __name__ == "__main__":
    main()
