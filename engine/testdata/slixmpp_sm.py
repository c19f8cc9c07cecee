"""XEP-0198 with slixmpp: enable stream management with resumption, lose the TCP connection
without closing the stream, connect again and resume; print what happened. Used by
TestIntegrationSlixmppSM; exits non-zero on failure."""
import asyncio
import ssl
import sys

import slixmpp


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, cafile, addr):
        super().__init__(jid, password)
        self.addr = addr
        self.ok = False
        self.dropped = False
        self.ssl_context = ssl.create_default_context(cafile=cafile)
        self.register_plugin("xep_0198")
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("sm_enabled", self.enabled)
        self.add_event_handler("session_resumed", self.resumed)
        self.add_event_handler("message", self.message)

    async def start(self, _):
        self.send_presence()

    def enabled(self, _):
        print("ENABLED", self["xep_0198"].sm_id is not None, flush=True)
        # Lose TCP without a word, as a phone on a train does; then come back.
        self.dropped = True
        self.transport.abort()
        asyncio.get_event_loop().call_later(0.3, lambda: self.connect(address=self.addr, force_starttls=True))

    def resumed(self, _):
        print("RESUMED", flush=True)
        self.send_message(mto=self.boundjid.full, mbody="after resume", mtype="chat")

    def message(self, msg):
        if msg["body"] == "after resume":
            print("ECHO", flush=True)
            self.ok = True
            self.disconnect()


def main():
    jid, password, host, port, cafile = sys.argv[1:6]
    c = Client(jid, password, cafile, (host, int(port)))
    c.connect(address=(host, int(port)), force_starttls=True)
    async def wait():
        for _ in range(150):
            if c.ok:
                await asyncio.sleep(0.2)  # let the disconnect go out
                return
            await asyncio.sleep(0.1)
        print("TIMEOUT", flush=True)

    asyncio.get_event_loop().run_until_complete(wait())
    sys.exit(0 if c.ok else 1)


if __name__ == "__main__":
    main()
