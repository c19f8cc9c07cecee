"""An account's life through aioxmpp's XEP-0077 code: register before logging in, log in,
read the registration, change the password, log in with the new one (the old one fails),
cancel the registration, and fail to log in again. Prints one line per step; exits
non-zero on failure. Used by TestIntegrationAioxmppRegistration.

Run as: python3 testdata/aioxmpp_register.py JID PASSWORD HOST PORT CAFILE"""
import asyncio
import logging
import os
import sys

import aiosasl
import aioxmpp
import aioxmpp.connector
import aioxmpp.errors
import aioxmpp.ibr
import aioxmpp.node
import aioxmpp.security_layer


def say(*words):
    print(*words, flush=True)


async def main():
    jid, password, host, port, cafile = sys.argv[1:6]
    logging.basicConfig(level=getattr(logging, os.environ.get("AIOXMPP_LOG", "CRITICAL")))
    me = aioxmpp.JID.fromstr(jid)
    peer = [(host, int(port), aioxmpp.connector.STARTTLSConnector())]

    def ssl_context():
        ctx = aioxmpp.security_layer.default_ssl_context()
        ctx.load_verify_locations(cafile)
        return ctx

    def layer(pw):
        return aioxmpp.make_security_layer(pw, ssl_context_factory=ssl_context)

    # Before logging in: a TLS stream without SASL, as a client's sign-up screen has.
    _, stream, _ = await aioxmpp.node.connect_xmlstream(me, layer(None), override_peer=peer)
    fields = await aioxmpp.ibr.get_registration_fields(stream)
    used = {tag[1] for tag in aioxmpp.ibr.get_used_fields(fields)}
    say("FIELDS", "username" in used, "password" in used)
    await aioxmpp.ibr.register(stream, aioxmpp.ibr.Query(me.localpart, password))
    say("REGISTERED")
    stream.close()

    async def login(pw):
        client = aioxmpp.Client(me, layer(pw), override_peer=peer, max_initial_attempts=1)
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
    try:
        asyncio.run(asyncio.wait_for(main(), 60))
    except Exception as e:
        say("FAILED", type(e).__name__, e)
        sys.exit(1)
