"""Room history from the archive, with three slixmpp clients in one event loop: slix (the
JID given) creates a room with the XEP-0045 plugin and submits the owner form that the room
sent, made persistent, members-only and logged, and makes bob a member; bob joins and the
two exchange five groupchat messages; bob leaves and joins again asking for
<history maxstanzas='2'/>; bob pages through the room's archive with the XEP-0313 plugin
(a query to the room JID, RSM max 2); carol, neither member nor occupant, is refused
entry and the archive. bob and carol are the given JID's domain with the same password.
Used by TestIntegrationSlixmppMucMam; exits non-zero on failure. Lines:
  CREATED <status codes>         slix's self-presence on creating the room
  FIELDS <var> ...               the config fields this script sets, as the form had them
  FEATURES <feature> ...         the configured room's disco#info features of interest
  JOINED <status codes>          bob's self-presence
  LIVE <stanza-id> <nick> <body> a groupchat message as bob got it
  HISTORY <body> ...             what bob's rejoin brought as history (with room delays)
  ARCHIVE <id> <nick> <body>     the room's archive, oldest first
  PAGES <results>/<count> ...    each archive page: its results, and the RSM count it gave
  CAROL JOIN <condition>         carol's join error
  CAROL MAM <condition>          carol's archive query error"""
import asyncio
import logging
import os
import sys

import slixmpp
from slixmpp import JID
from slixmpp.exceptions import IqError, PresenceError
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

import slixrun

ROOM = JID("lounge@conference.localhost")
BODIES = ["m1", "m2", "m3", "m4", "m5"]
SET = {
    "muc#roomconfig_persistentroom": True,
    "muc#roomconfig_membersonly": True,
    "muc#roomconfig_enablelogging": True,
}


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, cafile):
        super().__init__(jid, password)
        slixrun.trust(self, cafile)
        for p in ("xep_0030", "xep_0045", "xep_0313", "xep_0359", "xep_0203"):
            self.register_plugin(p)
        self.started = asyncio.get_event_loop().create_future()
        self.live = asyncio.Queue()
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("groupchat_message", self.groupchat)

    def start(self, _):
        self.send_presence()
        if not self.started.done():
            self.started.set_result(True)

    def groupchat(self, msg):
        if msg["body"] and msg.get_plugin("delay", check=True) is None:
            self.live.put_nowait(msg)


def out(*words):
    print(*words, flush=True)


async def scenario(slix, bob, carol):
    muc = slix["xep_0045"]
    # Create the room; it stays locked (201) until the owner submits the form.
    pres, _, _, _ = await muc.join_muc_wait(ROOM, "Slix", maxstanzas=0, timeout=20)
    out("CREATED", " ".join(str(c) for c in sorted(pres["muc"]["status_codes"])))
    form = await muc.get_room_config(ROOM, timeout=20)
    fields = form.get_fields()
    out("FIELDS", " ".join(sorted(v for v in SET if v in fields)))
    for var, value in SET.items():
        fields[var]["value"] = value
    await muc.set_room_config(ROOM, form, timeout=20)
    info = await slix["xep_0030"].get_info(jid=ROOM, timeout=20)
    out("FEATURES", " ".join(sorted(f for f in info["disco_info"]["features"]
                                    if f in ("muc_persistent", "muc_membersonly", "urn:xmpp:mam:2"))))
    await muc.set_affiliation(ROOM, "member", jid=bob.boundjid.bare, timeout=20)

    pres, _, _, _ = await bob["xep_0045"].join_muc_wait(ROOM, "Bob", maxstanzas=0, timeout=20)
    out("JOINED", " ".join(str(c) for c in sorted(pres["muc"]["status_codes"])))

    for i, body in enumerate(BODIES):
        sender = (slix, bob)[i % 2]
        sender.send_message(mto=ROOM, mbody=body, mtype="groupchat")
        for c in (slix, bob):
            m = await asyncio.wait_for(c.live.get(), 20)
            if m["body"] != body:
                raise Exception("%s got %r, want %r" % (c.boundjid, m["body"], body))
            if c is bob:
                out("LIVE", m["stanza_id"]["id"], m["from"].resource, m["body"])

    # Leave, wait for the room's unavailable self-presence, and join again. (slixmpp 1.8.3's
    # leave_muc forgets the room as it sends the presence, so the plugin drops the room's
    # answer and raises no event for it: watch for the raw presence instead.)
    left = asyncio.get_event_loop().create_future()
    bob.register_handler(Callback("left", MatchXPath("{jabber:client}presence"), lambda p: (
        p["from"] == JID(ROOM.bare + "/Bob") and p["type"] == "unavailable" and not left.done()
        and left.set_result(True))))
    bob["xep_0045"].leave_muc(ROOM, "Bob")
    await asyncio.wait_for(left, 20)
    bob.remove_handler("left")
    _, _, _, history = await bob["xep_0045"].join_muc_wait(ROOM, "Bob", maxstanzas=2, timeout=20)
    out("HISTORY", " ".join(m["body"] for m in history))

    # Count the results of each archive page and the RSM count it gave (the iterator hides
    # pages); a page's results come before its <fin/>.
    pages, results = [], [0, 0]  # results: so far, at the last <fin/>

    def fin(iq):
        pages.append("%d/%s" % (results[0] - results[1], iq["mam_fin"]["rsm"]["count"]))
        results[1] = results[0]
    bob.register_handler(Callback("mam result", MatchXPath("{jabber:client}message/{urn:xmpp:mam:2}result"),
                                  lambda _: results.__setitem__(0, results[0] + 1)))
    bob.register_handler(Callback("mam fin", MatchXPath("{jabber:client}iq/{urn:xmpp:mam:2}fin"), fin))
    async for m in bob["xep_0313"].iterate(jid=ROOM, rsm={"max": 2}):
        r = m["mam_result"]
        fwd = r["forwarded"]["stanza"]
        out("ARCHIVE", r["id"], fwd["from"].resource, fwd["body"])
    out("PAGES", " ".join(pages))

    # The plugin raises PresenceError only for an error presence that carries
    # <x xmlns='http://jabber.org/protocol/muc'/>, as XEP-0045's examples do (and Vireo
    # does); without it the join would wait for its timeout and report nothing.
    try:
        await carol["xep_0045"].join_muc_wait(ROOM, "Carol", maxstanzas=0, timeout=20)
        out("CAROL JOIN ok")
    except PresenceError as e:
        out("CAROL JOIN", e.presence["error"]["condition"])
    # Not with iterate: slixmpp's RSM iterator (xep_0059) ends quietly on an error answer,
    # which would look like an empty archive. retrieve raises it.
    try:
        iq = await carol["xep_0313"].retrieve(jid=ROOM, rsm={"max": 2}, timeout=20)
        out("CAROL MAM", iq["type"], len(iq["mam"]["results"]))
    except IqError as e:
        out("CAROL MAM", e.iq["error"]["condition"])

async def main():
    jid, password, host, port, cafile = sys.argv[1:6]
    logging.basicConfig(level=getattr(logging, os.environ.get("SLIX_LOG", "ERROR")))
    me = JID(jid)
    clients = [Client(me, password, cafile)] + [
        Client(JID("%s@%s/py" % (user, me.domain)), password, cafile) for user in ("bob", "carol")]
    for c in clients:
        c.connect(address=(host, int(port)), force_starttls=True)
    ok = False
    try:
        await asyncio.wait_for(asyncio.gather(*(c.started for c in clients)), 30)
        await scenario(*clients)
        ok = True
    except Exception as e:  # report, then fail through the exit code
        out("ERROR", repr(e))
    finally:
        for c in clients:
            c.disconnect()
        await asyncio.wait([asyncio.ensure_future(c.disconnected) for c in clients], timeout=10)
    return ok


if __name__ == "__main__":
    try:
        ok = asyncio.get_event_loop().run_until_complete(asyncio.wait_for(main(), 90))
    except asyncio.TimeoutError:
        out("TIMEOUT")
        ok = False
    sys.exit(0 if ok else 1)
