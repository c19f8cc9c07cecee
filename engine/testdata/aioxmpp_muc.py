"""A room's life through two aioxmpp clients (aioxmpp tracks occupants, roles and
affiliations from the status codes it is sent, so wrong codes show up as wrong state):
alice creates it and is owner and moderator; bob joins and each sees the other; alice sets
the topic; bob changes his nick; alice sends bob a private message; alice kicks bob, who
sees why; alice bans him and his rejoin is refused. Prints one line per step; exits
non-zero on failure. Used by TestIntegrationAioxmppMuc.

Run as: python3 testdata/aioxmpp_muc.py HOST PORT CAFILE ALICE BOB PASSWORD ROOM"""
import asyncio

import aioxmpp
import aioxmpp.errors
import aioxmpp.forms
import aioxmpp.muc
import aioxmpp.muc.xso

import aiorun
from aiorun import say


def event(signal, when=lambda args, kwargs: True):
    """A future set with the arguments of signal's next emission for which when holds."""
    fut = asyncio.get_event_loop().create_future()

    def handler(*args, **kwargs):
        if fut.done():
            return True
        if not when(args, kwargs):
            return False  # stay connected for the next one
        fut.set_result((args, kwargs))
        return True  # disconnect after it

    signal.connect(handler)
    return fut


async def within(fut, what, timeout=10):
    try:
        return await asyncio.wait_for(fut, timeout)
    except asyncio.TimeoutError:
        raise TimeoutError(what)


async def main(alice_jid, bob_jid, password, room_jid):
    R = aioxmpp.JID.fromstr(room_jid)
    online = aioxmpp.PresenceState(True)
    alice, bob = aiorun.client(alice_jid, password), aiorun.client(bob_jid, password)
    amuc, bmuc = alice.summon(aioxmpp.MUCClient), bob.summon(aioxmpp.MUCClient)
    bdispatch = bob.summon(aioxmpp.dispatcher.SimpleMessageDispatcher)
    async with alice.connected(presence=online), bob.connected(presence=online):
        aroom, fut = amuc.join(R, "Alice")
        await within(fut, "alice's join")
        say("ALICE", aroom.me.affiliation, aroom.me.role)
        # A new room stays locked until its owner accepts a configuration (XEP-0045
        # §10.1.2); an empty submitted form makes it an instant room.
        await amuc.set_room_config(R, aioxmpp.forms.Data(aioxmpp.forms.DataType.SUBMIT))

        joined = event(aroom.on_join)
        broom, fut = bmuc.join(R, "Bob")
        await within(fut, "bob's join")
        (member,), _ = await within(joined, "alice sees bob join")
        say("BOB", broom.me.affiliation, broom.me.role, "seen as", member.nick)
        say("BOB SEES", sorted(m.nick for m in broom.members))

        # The room's subject on join (empty here) may reach bob after his join completed:
        # wait for the one alice sets.
        topic = event(broom.on_topic_changed, lambda args, _: bool(args[1].any()))
        await aroom.set_topic({None: "tea at five"})
        (_, new_topic), kw = await within(topic, "bob sees the topic")
        say("TOPIC", new_topic.any(), "by", kw.get("muc_nick"))

        renamed = event(aroom.on_nick_changed)
        self_renamed = event(broom.on_nick_changed)
        await broom.set_nick("Robert")
        (_, old, new), _ = await within(renamed, "alice sees bob's new nick")
        await within(self_renamed, "bob sees his own new nick")
        say("NICK", old, "->", new, "bob now", broom.me.nick)

        # aioxmpp hands private messages from a room to its one-to-one layer, not to the
        # room's on_message: take them from the plain message dispatcher.
        private = asyncio.get_event_loop().create_future()

        def on_chat(msg):
            if msg.body and not private.done():
                private.set_result(((msg, msg.from_.resource, None), {}))

        bdispatch.register_callback(aioxmpp.MessageType.CHAT, None, on_chat)
        pm = aioxmpp.Message(to=R.replace(resource="Robert"), type_=aioxmpp.MessageType.CHAT)
        pm.body[None] = "just between us"
        pm.xep0045_muc_user = aioxmpp.muc.xso.UserExt()  # XEP-0045 §7.5: a private message is marked
        await alice.send(pm)
        (msg, sender, source), _ = await within(private, "bob gets the private message")
        say("PRIVATE", msg.body.any(), "from", sender, "marked", msg.xep0045_muc_user is not None)

        exited = event(broom.on_exit)
        left = event(aroom.on_leave)
        target = next(m for m in aroom.members if m.nick == "Robert")
        await aroom.kick(target, "mind your manners")
        _, kw = await within(exited, "bob hears he was kicked")
        say("BOB EXIT", kw.get("muc_leave_mode"), kw.get("muc_reason"))
        _, kw = await within(left, "alice sees bob leave")
        say("ALICE SAW", kw.get("muc_leave_mode"))

        await amuc.set_affiliation(R, aioxmpp.JID.fromstr(bob_jid), "outcast", reason="again")
        outcasts = await amuc.get_affiliated(R, "outcast")
        say("OUTCASTS", [str(j) for j in outcasts])
        broom, fut = bmuc.join(R, "Bob")
        try:
            await within(fut, "bob's refused join")
            say("BANNED JOIN ALLOWED")
        except aioxmpp.errors.XMPPError as e:
            say("BANNED JOIN REFUSED", e.condition.value[1] if hasattr(e.condition, "value") else e.condition)
        await aroom.leave()
    say("DONE")


if __name__ == "__main__":
    aiorun.run(main)
