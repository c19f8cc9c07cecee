"""A guest (SASL ANONYMOUS, RFC 4505) with slixmpp: no user name in the JID and no
password make slixmpp pick ANONYMOUS. It prints BOUND <jid> once the server gave it an
address, puts its host on its roster, sends the host a message, prints GOT <body> for the
answer, tries to change its password (PASSWD <condition>), and leaves. Run by
TestIntegrationSlixmppGuest as `slixmpp_guest.py DOMAIN '' HOST PORT CAFILE HOSTJID`."""
import asyncio

import slixmpp
from slixmpp.exceptions import IqError

import slixrun


class Guest(slixmpp.ClientXMPP):
    def __init__(self, jid, password, cafile, host):
        super().__init__(jid, password)
        self.host = host
        self.ok = False
        slixrun.trust(self, cafile)
        self.register_plugin("xep_0077")
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("failed_all_auth", self.failed)
        self.add_event_handler("message", self.message)

    async def start(self, _):
        print("BOUND", self.boundjid.full, flush=True)
        self.send_presence()
        await self.update_roster(self.host, name="Host")
        roster = await self.get_roster()
        print("ROSTER", " ".join(i["jid"].bare for i in roster["roster"]), flush=True)
        self.send_message(mto=self.host, mbody="hello from a guest", mtype="chat")

    async def message(self, msg):
        if msg["type"] not in ("chat", "normal") or not msg["body"]:
            return
        print("GOT", msg["body"], flush=True)
        try:
            await self["xep_0077"].change_password("secret", jid=self.boundjid.domain)
            print("PASSWD changed", flush=True)
        except IqError as e:
            print("PASSWD", e.iq["error"]["condition"], flush=True)
        self.ok = True
        self.disconnect()

    def failed(self, _):
        print("AUTH FAILED", flush=True)
        self.disconnect()


def main():
    slixrun.run(lambda jid, password, cafile, extra: Guest(jid, password, cafile, extra[0]), 60)


if __name__ == "__main__":
    main()
