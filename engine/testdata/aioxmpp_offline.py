"""What waits for a user who is offline, through two aioxmpp clients: alice asks for bob's
presence and writes him three messages while he is away, then leaves. Bob comes online,
gets the request and the messages in order, each with a XEP-0203 delay stamp, and
approves. Alice comes back to a roster that says "to" and sees bob online. Prints one line
per step; exits non-zero on failure. Used by TestIntegrationAioxmppOffline.

Run as: python3 testdata/aioxmpp_offline.py HOST PORT CAFILE ALICE BOB PASSWORD"""
import asyncio

import aioxmpp
import aioxmpp.misc  # XEP-0203 delay on messages

import aiorun
from aiorun import say, wait_until


async def main(alice_jid, bob_jid, password):
    A, B = aioxmpp.JID.fromstr(alice_jid), aioxmpp.JID.fromstr(bob_jid)
    online = aioxmpp.PresenceState(True)

    alice = aiorun.client(alice_jid, password)
    aroster = alice.summon(aioxmpp.RosterClient)
    async with alice.connected(presence=online) as stream:
        aroster.subscribe(B)
        for i in range(1, 4):
            msg = aioxmpp.Message(to=B, type_=aioxmpp.MessageType.CHAT)
            msg.body[None] = "while you were away %d" % i
            await stream.send(msg)
        say("ALICE SENT")
    await asyncio.sleep(0.3)

    bob = aiorun.client(bob_jid, password)
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

        alice = aiorun.client(alice_jid, password)
        aroster = alice.summon(aioxmpp.RosterClient)
        apres = alice.summon(aioxmpp.PresenceClient)
        async with alice.connected(presence=online):
            await wait_until(lambda: B in aroster.items, "alice's roster has bob")
            say("ALICE ROSTER", aroster.items[B].subscription)
            await wait_until(lambda: apres.get_most_available_stanza(B) is not None, "alice sees bob")
            say("ALICE SEES BOB")
    say("DONE")


if __name__ == "__main__":
    aiorun.run(main)
