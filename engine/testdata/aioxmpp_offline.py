"""What waits for a user who is offline, through two aioxmpp clients: alice asks for bob's
presence and writes him three messages while he is away, then leaves. Bob comes online,
gets the request and the messages in order, each with a XEP-0203 delay stamp, and
approves. Alice comes back to a roster that says "to" and sees bob online. Prints one line
per step; exits non-zero on failure. Used by TestIntegrationAioxmppOffline.

Run as: python3 testdata/aioxmpp_offline.py ALICE BOB PASSWORD HOST PORT CAFILE"""
import asyncio
import logging
import os
import sys

import aioxmpp
import aioxmpp.connector
import aioxmpp.misc  # XEP-0203 delay on messages
import aioxmpp.security_layer


def say(*words):
    print(*words, flush=True)


async def wait_until(cond, what, timeout=15):
    for _ in range(int(timeout * 20)):
        if cond():
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(what)


def make_client(jid, password, host, port, cafile):
    def ssl_context():
        ctx = aioxmpp.security_layer.default_ssl_context()
        ctx.load_verify_locations(cafile)
        return ctx

    return aioxmpp.Client(
        aioxmpp.JID.fromstr(jid),
        aioxmpp.make_security_layer(password, ssl_context_factory=ssl_context),
        override_peer=[(host, int(port), aioxmpp.connector.STARTTLSConnector())],
    )


async def main():
    alice_jid, bob_jid, password, host, port, cafile = sys.argv[1:7]
    logging.basicConfig(level=getattr(logging, os.environ.get("AIOXMPP_LOG", "CRITICAL")))
    A, B = aioxmpp.JID.fromstr(alice_jid), aioxmpp.JID.fromstr(bob_jid)
    online = aioxmpp.PresenceState(True)

    alice = make_client(alice_jid, password, host, port, cafile)
    aroster = alice.summon(aioxmpp.RosterClient)
    async with alice.connected(presence=online) as stream:
        aroster.subscribe(B)
        for i in range(1, 4):
            msg = aioxmpp.Message(to=B, type_=aioxmpp.MessageType.CHAT)
            msg.body[None] = "while you were away %d" % i
            await stream.send(msg)
        say("ALICE SENT")
    await asyncio.sleep(0.3)

    bob = make_client(bob_jid, password, host, port, cafile)
    broster = bob.summon(aioxmpp.RosterClient)
    bdispatch = bob.summon(aioxmpp.dispatcher.SimpleMessageDispatcher)
    got = []

    def on_message(msg):
        if msg.body:
            stamped = bool(msg.xep0203_delay)
            got.append(msg.body.any())
            say("BOB GOT", msg.body.any(), "delayed" if stamped else "undelayed")

    bdispatch.register_callback(aioxmpp.MessageType.CHAT, None, on_message)
    asked = []

    def on_subscribe(st):
        asked.append(st.from_.bare())
        say("BOB ASKED BY", st.from_.bare())
        broster.approve(st.from_.bare())

    broster.on_subscribe.connect(on_subscribe)
    async with bob.connected(presence=online):
        await wait_until(lambda: asked and len(got) >= 3, "the request and the three messages")
        say("ORDER", got == ["while you were away %d" % i for i in range(1, 4)])
        await asyncio.sleep(0.3)

        alice = make_client(alice_jid, password, host, port, cafile)
        aroster = alice.summon(aioxmpp.RosterClient)
        apres = alice.summon(aioxmpp.PresenceClient)
        async with alice.connected(presence=online):
            await wait_until(lambda: B in aroster.items, "alice's roster has bob")
            say("ALICE ROSTER", aroster.items[B].subscription)
            await wait_until(lambda: apres.get_most_available_stanza(B) is not None, "alice sees bob")
            say("ALICE SEES BOB")
    say("DONE")


if __name__ == "__main__":
    try:
        asyncio.run(asyncio.wait_for(main(), 60))
    except Exception as e:
        say("FAILED", type(e).__name__, e)
        sys.exit(1)
