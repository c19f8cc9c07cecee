"""An account's life through aioxmpp's XEP-0077 code: register before logging in, log in,
read the registration, change the password, log in with the new one (the old one fails),
cancel the registration, and fail to log in again. Prints one line per step; exits
non-zero on failure. Used by TestIntegrationAioxmppRegistration.

Run as: python3 testdata/aioxmpp_register.py HOST PORT CAFILE JID PASSWORD"""
import asyncio

import aiosasl
import aioxmpp
import aioxmpp.ibr
import aioxmpp.node

import aiorun
from aiorun import say


async def main(jid, password):
    me = aioxmpp.JID.fromstr(jid)

    # Before logging in: a TLS stream without SASL, as a client's sign-up screen has.
    _, stream, _ = await aioxmpp.node.connect_xmlstream(me, aiorun.security_layer(None), override_peer=aiorun.peer())
    fields = await aioxmpp.ibr.get_registration_fields(stream)
    used = {tag[1] for tag in aioxmpp.ibr.get_used_fields(fields)}
    say("FIELDS", "username" in used, "password" in used)
    await aioxmpp.ibr.register(stream, aioxmpp.ibr.Query(me.localpart, password))
    say("REGISTERED")
    stream.close()

    async def login(pw):
        client = aiorun.client(jid, pw, max_initial_attempts=1)
        return client, client.connected()

    client, conn = await login(password)
    async with conn:
        reg = client.summon(aioxmpp.ibr.RegistrationService)
        info = await reg.get_client_info()
        say("INFO registered", info.registered is not None, info.username)
        await reg.change_pass(password + " 2")
        say("PASSWORD CHANGED")

    async def fails(pw):
        client, conn = await login(pw)
        try:
            async with conn:
                return False
        # SASL said not-authorized (aioxmpp then asks for the password again, and a fixed
        # password has no second answer: "aborted by user").
        except aiosasl.AuthenticationFailure as e:
            say("REFUSED", e)
            return True

    say("OLD PASSWORD REFUSED", await fails(password))
    client, conn = await login(password + " 2")
    async with conn:
        say("NEW PASSWORD WORKS")
        reg = client.summon(aioxmpp.ibr.RegistrationService)
        try:
            await reg.cancel_registration()
        except Exception:
            pass  # the server may end the stream before or after its answer
        say("CANCELLED")
    await asyncio.sleep(0.5)
    say("GONE", await fails(password + " 2"))
    say("DONE")


if __name__ == "__main__":
    aiorun.run(main)
