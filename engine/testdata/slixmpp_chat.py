"""A slixmpp user that waits for a chat message from a given JID and answers it. Used by
TestBrowserConverse; prints READY when online, GOT <from> <body> for what it receives, and
exits 0 once it has answered."""
import asyncio

import slixmpp

import slixrun


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, cafile, peer):
        super().__init__(jid, password)
        self.peer = peer
        self.ok = False
        slixrun.trust(self, cafile)
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
    slixrun.run(lambda jid, password, cafile, extra: Client(jid, password, cafile, extra[0]), 90)


if __name__ == "__main__":
    main()
