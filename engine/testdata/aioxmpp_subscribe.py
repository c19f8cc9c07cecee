"""Two aioxmpp clients, alice and bob, become contacts the RFC 6121 way and part again:
alice adds bob and asks for his presence, bob approves and asks back, alice approves; both
rosters say "both" and each sees the other online. Then alice removes bob: bob's roster
loses her and he sees her go offline. Prints one line per step; exits non-zero on failure.
Used by TestIntegrationAioxmppSubscription.

Run as: python3 testdata/aioxmpp_subscribe.py HOST PORT CAFILE ALICE BOB PASSWORD"""
import aioxmpp
import aioxmpp.roster

import aiorun
from aiorun import say, wait_until


def make_client(jid, password):
    c = aiorun.client(jid, password)
    return c, c.summon(aioxmpp.RosterClient), c.summon(aioxmpp.PresenceClient)


def sub(roster, jid):
    item = roster.items.get(aioxmpp.JID.fromstr(jid))
    return item.subscription if item else None


async def main(alice_jid, bob_jid, password):
    alice, aroster, apres = make_client(alice_jid, password)
    bob, broster, bpres = make_client(bob_jid, password)
    A, B = aioxmpp.JID.fromstr(alice_jid), aioxmpp.JID.fromstr(bob_jid)

    # Bob approves what he is asked and asks back; alice approves bob's request.
    def bob_on_subscribe(st):
        say("BOB ASKED BY", st.from_.bare())
        broster.approve(st.from_.bare())
        broster.subscribe(st.from_.bare())

    def alice_on_subscribe(st):
        say("ALICE ASKED BY", st.from_.bare())
        aroster.approve(st.from_.bare())

    broster.on_subscribe.connect(bob_on_subscribe)
    aroster.on_subscribe.connect(alice_on_subscribe)
    online = aioxmpp.PresenceState(True)
    async with alice.connected(presence=online), bob.connected(presence=online):
        await aroster.set_entry(B, name="Bob")
        aroster.subscribe(B)
        say("ALICE ASKED BOB")
        await wait_until(lambda: sub(aroster, bob_jid) == "both" and sub(broster, alice_jid) == "both", "both rosters at both")
        say("ROSTERS", sub(aroster, bob_jid), sub(broster, alice_jid), aroster.items[B].name)
        await wait_until(lambda: apres.get_most_available_stanza(B) is not None, "alice sees bob")
        await wait_until(lambda: bpres.get_most_available_stanza(A) is not None, "bob sees alice")
        say("PRESENCE BOTH WAYS")

        await aroster.remove_entry(B)
        await wait_until(lambda: sub(broster, alice_jid) in (None, "none"), "bob's roster drops alice")
        await wait_until(lambda: bpres.get_most_available_stanza(A) is None, "alice offline for bob")
        say("REMOVED", sub(aroster, bob_jid), sub(broster, alice_jid))
    say("DONE")


if __name__ == "__main__":
    aiorun.run(main)
