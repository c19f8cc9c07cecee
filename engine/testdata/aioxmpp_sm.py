"""aioxmpp (Debian's python3-aioxmpp) against Vireo: STARTTLS with the test CA, SCRAM,
bind, roster, XEP-0198 with resumption, a message each way, a TCP connection the test
resets and the resumed stream. Used by TestIntegrationAioxmpp, which plays bob and reads the lines
this prints; exits non-zero on failure.

Run as: python3 testdata/aioxmpp_sm.py HOST PORT CAFILE JID PASSWORD"""
import asyncio
from datetime import timedelta

import aioxmpp
import aioxmpp.roster

import aiorun
from aiorun import say


async def main(jid, password):
    client = aiorun.client(jid, password)
    client.backoff_start = timedelta(seconds=0.5)  # reconnect soon after the drop
    roster = client.summon(aioxmpp.roster.RosterClient)
    dispatcher = client.summon(aioxmpp.dispatcher.SimpleMessageDispatcher)

    inbox = asyncio.Queue()

    def on_message(msg):
        if msg.body:
            inbox.put_nowait((str(msg.from_.bare()), msg.body.any()))

    dispatcher.register_callback(aioxmpp.MessageType.CHAT, None, on_message)
    roster_ready = asyncio.Event()
    roster.on_initial_roster_received.connect(lambda: roster_ready.set())
    resumed = asyncio.Event()
    suspended = asyncio.Event()
    client.on_stream_suspended.connect(lambda *a: suspended.set())
    client.on_stream_resumed.connect(lambda: resumed.set())
    destroyed = []
    client.on_stream_destroyed.connect(lambda *a: destroyed.append(a))

    async def expect_body(want):
        while True:
            frm, body = await asyncio.wait_for(inbox.get(), 20)
            say("GOT", frm, body)
            if body == want:
                return

    # Available, so that messages to the bare JID reach this session (RFC 6121 8.5.2.1).
    async with client.connected(presence=aioxmpp.PresenceState(True)) as stream:
        say("BOUND", client.local_jid)
        say("SM", stream.sm_enabled, stream.sm_resumable)
        await asyncio.wait_for(roster_ready.wait(), 20)
        for item in roster.items.values():
            say("ROSTER", item.jid, item.subscription)

        msg = aioxmpp.Message(to=aioxmpp.JID.fromstr("bob@localhost"), type_=aioxmpp.MessageType.CHAT)
        msg.body[None] = "hello from aioxmpp"
        await stream.send(msg)
        await expect_body("hello aioxmpp")

        # The test cuts the TCP connection now (a reset, as when a phone changes
        # networks); aioxmpp reconnects and resumes on its own while bob sends.
        say("CUT ME")
        await asyncio.wait_for(suspended.wait(), 20)
        say("SUSPENDED")
        await expect_body("while you were away")
        await asyncio.wait_for(resumed.wait(), 20)
        say("RESUMED", not destroyed)

        msg = aioxmpp.Message(to=aioxmpp.JID.fromstr("bob@localhost"), type_=aioxmpp.MessageType.CHAT)
        msg.body[None] = "back again"
        await stream.send(msg)
        await expect_body("bye")
    say("DONE")


if __name__ == "__main__":
    aiorun.run(main)
