"""A slixmpp user that waits for a chat message from a given JID and answers it. Used by
TestBrowserConverse; prints READY when online, GOT <from> <body> for what it receives, and
exits 0 once it has answered."""
import asyncio
import logging
import os
import ssl
import sys

import slixmpp


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, cafile, peer):
        super().__init__(jid, password)
        self.peer = peer
        self.ok = False
        ctx = ssl.create_default_context(cafile=cafile)
        ctx.check_hostname = True
        self.ssl_context = ctx
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("failed_all_auth", self.failed)
        self.add_event_handler("message", self.message)

    async def start(self, _):
        self.send_presence()
        await self.get_roster()
        print("READY", self.boundjid.full, flush=True)

    def message(self, msg):
        if msg["type"] not in ("chat", "normal") or not msg["body"]:
            return
        print("GOT", msg["from"].bare, msg["body"], flush=True)
        if msg["from"].bare == self.peer:
            msg.reply("hi from slixmpp").send()
            self.ok = True
            # Give the reply time to leave before closing.
            asyncio.get_event_loop().call_later(2, self.disconnect)

    def failed(self, _):
        print("AUTH FAILED", flush=True)
        self.disconnect()


def main():
    jid, password, host, port, cafile, peer = sys.argv[1:7]
    logging.basicConfig(level=getattr(logging, os.environ.get("SLIX_LOG", "ERROR")))
    c = Client(jid, password, cafile, peer)
    c.connect(address=(host, int(port)), force_starttls=True)
    loop = asyncio.get_event_loop()
    try:
        loop.run_until_complete(asyncio.wait_for(c.disconnected, 90))
    except asyncio.TimeoutError:
        print("TIMEOUT", flush=True)
    sys.exit(0 if c.ok else 1)


if __name__ == "__main__":
    main()
