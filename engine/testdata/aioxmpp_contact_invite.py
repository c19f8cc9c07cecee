"""An XEP-0401 contact invitation followed by aioxmpp, as a client opening
xmpp:romeo@…?roster;preauth=TOKEN does (XEP-0379 §3.4): juliet adds romeo, pre-approves him,
and asks for his presence with the token in <preauth/> (aioxmpp's XEP-0379 element). Nobody
approves anything by hand, yet both rosters end at "both" and juliet sees romeo online;
juliet is never asked. Prints one line per step; exits non-zero on failure. Used by
TestIntegrationAioxmppContactInvite (romeo is a raw client there).

Run as: python3 testdata/aioxmpp_contact_invite.py HOST PORT CAFILE JULIET PASSWORD ROMEO TOKEN"""
import aioxmpp
import aioxmpp.misc.pars
import aioxmpp.roster

import aiorun
from aiorun import say, wait_until


async def main(juliet_jid, password, romeo_jid, token):
    client = aiorun.client(juliet_jid, password)
    roster = client.summon(aioxmpp.RosterClient)
    presence = client.summon(aioxmpp.PresenceClient)
    R = aioxmpp.JID.fromstr(romeo_jid)
    roster.on_subscribe.connect(lambda st: say("ASKED BY", st.from_.bare()))
    async with client.connected(presence=aioxmpp.PresenceState(True)):
        await roster.set_entry(R, name="Romeo")
        roster.approve(R)  # RFC 6121 §3.4 pre-approval, as XEP-0379 §3.4 says
        req = aioxmpp.Presence(type_=aioxmpp.PresenceType.SUBSCRIBE, to=R)
        req.xep0379_preauth = aioxmpp.misc.pars.Preauth()
        req.xep0379_preauth.token = token
        await client.send(req)
        say("ASKED WITH TOKEN")

        def sub():
            item = roster.items.get(R)
            return item.subscription if item else None
        await wait_until(lambda: sub() == "both", "both")
        say("ROSTER", sub())
        await wait_until(lambda: presence.get_most_available_stanza(R) is not None, "juliet sees romeo")
        say("SEES ROMEO")
    say("DONE")


if __name__ == "__main__":
    aiorun.run(main)
