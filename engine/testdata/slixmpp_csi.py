"""Log in with slixmpp, take XEP-0352 from the stream features, go inactive and print every
presence and message as it arrives (one line each), until a message with a body comes.
Used by TestIntegrationSlixmppCSI; exits non-zero on failure."""
import asyncio
import ssl
import sys

import slixmpp


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, cafile):
        super().__init__(jid, password)
        self.ok = False
        ctx = ssl.create_default_context(cafile=cafile)
        self.ssl_context = ctx
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
    jid, password, host, port, cafile = sys.argv[1:6]
    c = Client(jid, password, cafile)
    c.connect(address=(host, int(port)), force_starttls=True)
    loop = asyncio.get_event_loop()
    try:
        loop.run_until_complete(asyncio.wait_for(c.disconnected, 30))
    except asyncio.TimeoutError:
        print("TIMEOUT", flush=True)
    sys.exit(0 if c.ok else 1)


if __name__ == "__main__":
    main()
