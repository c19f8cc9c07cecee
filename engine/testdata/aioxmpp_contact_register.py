"""An XEP-0401 contact invitation with ibr=y followed by aioxmpp when the invitee has no
account yet: on a TLS stream before login, present the token (XEP-0445 <preauth/>), read
the registration form (no name is imposed), register a name of juliet's choice, and log
in. The server has made romeo and juliet contacts: her roster holds romeo subscribed both
ways without a request from either side, and she sees him online. Prints one line per
step; exits non-zero on failure. Used by TestIntegrationAioxmppContactRegister.

Run as: python3 testdata/aioxmpp_contact_register.py HOST PORT CAFILE JULIET PASSWORD ROMEO TOKEN"""
import aioxmpp
import aioxmpp.ibr
import aioxmpp.node
import aioxmpp.roster

import aiorun
from aiorun import say, wait_until


async def main(juliet_jid, password, romeo_jid, token):
    me = aioxmpp.JID.fromstr(juliet_jid)
    _, stream, _ = await aioxmpp.node.connect_xmlstream(me, aiorun.security_layer(None), override_peer=aiorun.peer())
    await aiorun.preauth(stream, me, token)
    say("TOKEN ACCEPTED")
    fields = await aioxmpp.ibr.get_registration_fields(stream)
    say("FORM", repr(fields.username or ""))
    await aioxmpp.ibr.register(stream, aioxmpp.ibr.Query(me.localpart, password))
    say("REGISTERED")
    stream.close()

    client = aiorun.client(juliet_jid, password, max_initial_attempts=1)
    roster = client.summon(aioxmpp.RosterClient)
    presence = client.summon(aioxmpp.PresenceClient)
    R = aioxmpp.JID.fromstr(romeo_jid)
    roster.on_subscribe.connect(lambda st: say("ASKED BY", st.from_.bare()))
    async with client.connected(presence=aioxmpp.PresenceState(True)):
        def sub():
            item = roster.items.get(R)
            return item.subscription if item else None
        await wait_until(lambda: sub() == "both", "romeo in the roster, both")
        say("ROSTER", sub())
        await wait_until(lambda: presence.get_most_available_stanza(R) is not None, "juliet sees romeo")
        say("SEES ROMEO")
    say("DONE")


if __name__ == "__main__":
    aiorun.run(main)
