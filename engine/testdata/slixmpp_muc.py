"""Join a MUC room with slixmpp's XEP-0045 plugin, print what the join brought (status
codes, history, subject), send a groupchat message, see it reflected with the room's
stanza-id, and wait for a message from another occupant (Alice). Made a moderator by then,
retract Alice's message with slixmpp's XEP-0425 plugin (the 0.2 protocol) and see the
room's retraction come back.
Used by TestIntegrationSlixmppMuc; exits non-zero on failure."""

import slixmpp

import slixrun
from slixmpp.exceptions import PresenceError

ROOM = "tea@conference.localhost"


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, cafile):
        super().__init__(jid, password)
        self.ok = False
        slixrun.trust(self, cafile)
        self.register_plugin("xep_0045")
        self.register_plugin("xep_0359")
        self.register_plugin("xep_0425")
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("groupchat_message", self.groupchat)
        self.add_event_handler("moderated_message", self.moderated)
        self.retracting = None
        self.moderate_ok = self.moderated_seen = False

    async def start(self, _):
        self.send_presence()
        await self.get_roster()
        try:
            pres, subject, occupants, history = await self["xep_0045"].join_muc_wait(
                ROOM, "Slix", maxstanzas=5, timeout=20)
        except PresenceError as e:
            print("JOIN ERROR", e.presence["error"]["condition"], flush=True)
            self.disconnect()
            return
        codes = sorted(pres["muc"]["status_codes"])
        print("JOINED", pres["from"], " ".join(str(c) for c in codes), flush=True)
        print("OCCUPANTS", " ".join(sorted(str(p["from"].resource) for p in occupants)), flush=True)
        print("HISTORY", " | ".join(m["body"] for m in history), flush=True)
        print("SUBJECT", subject["subject"], flush=True)
        self.send_message(mto=ROOM, mbody="hello from slix", mtype="groupchat")

    def groupchat(self, msg):
        if msg.get_plugin("delay", check=True) is not None:
            return  # history
        nick = msg["from"].resource
        if nick == "Slix" and msg["body"] == "hello from slix":
            sid = msg["stanza_id"]
            print("REFLECTED", sid["by"], "yes" if sid["id"] else "no", flush=True)
        elif nick == "Alice":
            print("GOT", msg["body"], flush=True)
            self.retracting = msg["stanza_id"]["id"]
            self.loop.create_task(self.retract(self.retracting))

    async def retract(self, sid):
        try:
            await self["xep_0425"].moderate(slixmpp.JID(ROOM), sid, "slix tidies up", timeout=10)
            print("MODERATE OK", flush=True)
            self.moderate_ok = True
            self.finish()
        except Exception as e:  # IqError carries the condition
            print("MODERATE FAILED", getattr(e, "condition", e), flush=True)
            self.disconnect()

    def finish(self):
        """Done once the room answered the moderation and broadcast it, in either order: a
        logged room writes the tombstone to its archive before it answers."""
        if self.moderate_ok and self.moderated_seen:
            self.ok = True
            self.disconnect()

    def moderated(self, msg):
        at = msg["apply_to"]
        if msg["from"] != slixmpp.JID(ROOM) or at["id"] != self.retracting:
            return
        mod = at["moderated"]
        print("MODERATED by", mod["by"], "reason", mod["reason"], flush=True)
        self.moderated_seen = True
        self.finish()


def main():
    slixrun.run(lambda jid, password, cafile, _: Client(jid, password, cafile), 40)


if __name__ == "__main__":
    main()
