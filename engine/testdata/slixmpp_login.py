"""Log in to Vireo with slixmpp, bind, fetch the roster, send a message to ourselves and
print what happened. Used by TestIntegrationSlixmpp; exits non-zero on failure."""
import asyncio
import logging
import ssl
import sys

import slixmpp


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, cafile):
        super().__init__(jid, password)
        self.ok = False
        ctx = ssl.create_default_context(cafile=cafile)
        ctx.check_hostname = True
        self.ssl_context = ctx
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
    jid, password, host, port, cafile = sys.argv[1:6]
    logging.basicConfig(level=getattr(logging, __import__("os").environ.get("SLIX_LOG", "ERROR")))
    c = Client(jid, password, cafile)
    c.connect(address=(host, int(port)), force_starttls=True)
    loop = asyncio.get_event_loop()
    try:
        loop.run_until_complete(asyncio.wait_for(c.disconnected, 20))
    except asyncio.TimeoutError:
        print("TIMEOUT", flush=True)
    sys.exit(0 if c.ok else 1)


if __name__ == "__main__":
    main()
