"""A gateway as slixmpp's XEP-0356 plugin writes one: an XEP-0114 component that waits
for the server to announce its privileges, reads a user's roster, adds a contact of its
own to it (subscribed both ways, with a name and group), and sends a message as the user
(a message the user sent from another network, which the user's own clients should see).
Used by TestIntegrationSlixmppPrivilege; exits non-zero on failure.

Run as: python3 testdata/slixmpp_privilege.py COMPONENT SECRET HOST PORT USER CONTACT"""
import asyncio
import logging
import os
import sys

from slixmpp import Message
from slixmpp.componentxmpp import ComponentXMPP


class Gateway(ComponentXMPP):
    def __init__(self, jid, secret, host, port, user, contact):
        super().__init__(jid, secret, host, int(port))
        self.user, self.contact, self.ok = user, contact, False
        self.register_plugin("xep_0297")
        self.register_plugin("xep_0356")
        self.privileged = asyncio.Event()
        self.add_event_handler("privileges_advertised", lambda _: self.privileged.set())
        self.add_event_handler("session_start", self.start)

    async def start(self, _):
        await asyncio.wait_for(self.privileged.wait(), 10)
        granted = self["xep_0356"].granted_privileges
        print("PRIVILEGES", granted["roster"], granted["message"], flush=True)
        ps = self["xep_0356"]
        roster = await ps.get_roster(self.user)
        print("ROSTER", ",".join(sorted(str(j) for j in roster["roster"]["items"])), flush=True)
        puppet = "puppet@" + self.boundjid.bare
        await ps.set_roster(self.user, {puppet: {"name": "Puppet", "subscription": "both", "groups": ["Gateway"]}})
        print("ROSTER SET", flush=True)
        roster = await ps.get_roster(self.user)
        item = roster["roster"]["items"][puppet]
        print("PUPPET", item["subscription"], item["name"], ",".join(item["groups"]), flush=True)
        msg = Message()
        msg["from"], msg["to"], msg["type"] = self.user, self.contact, "chat"
        msg["body"] = "sent on the other network"
        ps.send_privileged_message(msg)
        print("SENT", flush=True)
        await asyncio.sleep(1)
        self.ok = True
        self.disconnect()


def main():
    logging.basicConfig(level=getattr(logging, os.environ.get("SLIX_LOG", "ERROR")))
    g = Gateway(*sys.argv[1:7])
    g.connect()
    loop = asyncio.get_event_loop()
    try:
        loop.run_until_complete(asyncio.wait_for(g.disconnected, 30))
    except asyncio.TimeoutError:
        print("TIMEOUT", flush=True)
    sys.exit(0 if g.ok else 1)


if __name__ == "__main__":
    main()
