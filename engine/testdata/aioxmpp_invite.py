"""Redeem an XEP-0401 invitation through aioxmpp on a server whose registration is closed:
on a TLS stream before login, register without the token (refused), present the token
(XEP-0445 <preauth/>, aioxmpp's XEP-0379 element sent as an IQ payload), read the
registration form (the name the invitation reserves is filled in), register, and log in.
Prints one line per step; exits non-zero on failure. Used by TestIntegrationAioxmppInvite.

Run as: python3 testdata/aioxmpp_invite.py HOST PORT CAFILE JID PASSWORD TOKEN"""
import aioxmpp
import aioxmpp.errors
import aioxmpp.ibr
import aioxmpp.node

import aiorun
from aiorun import say


async def main(jid, password, token):
    me = aioxmpp.JID.fromstr(jid)
    _, stream, features = await aioxmpp.node.connect_xmlstream(me, aiorun.security_layer(None), override_peer=aiorun.peer())
    try:
        await aioxmpp.ibr.register(stream, aioxmpp.ibr.Query(me.localpart, password))
        say("REGISTERED WITHOUT TOKEN")
        return False
    except aioxmpp.errors.StreamError as e:
        say("CLOSED", e.condition.value[1])
    stream.close()

    _, stream, _ = await aioxmpp.node.connect_xmlstream(me, aiorun.security_layer(None), override_peer=aiorun.peer())
    await aiorun.preauth(stream, me, token)
    say("TOKEN ACCEPTED")
    fields = await aioxmpp.ibr.get_registration_fields(stream)
    say("FORM", fields.username)
    await aioxmpp.ibr.register(stream, aioxmpp.ibr.Query(me.localpart, password))
    say("REGISTERED")
    stream.close()

    client = aiorun.client(jid, password, max_initial_attempts=1)
    async with client.connected():
        say("LOGGED IN", client.local_jid.bare())
    say("DONE")


if __name__ == "__main__":
    aiorun.run(main)
