"""Edit the server's federation blacklist with XEP-0133 edit-blacklist through slixmpp's
XEP-0050 plugin: print the list the form shows, submit it with spam.example and
*.bad.example added (a jid-multi field), print the notes; then send a message to
x@spam.example and print the error it bounces with. Used by
TestIntegrationSlixmppBlacklist; exits non-zero on failure."""
import asyncio

import slixmpp

import slixrun

ADMIN = "http://jabber.org/protocol/admin"


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, cafile):
        super().__init__(jid, password)
        self.ok = False
        slixrun.trust(self, cafile)
        for p in ("xep_0004", "xep_0030", "xep_0050"):
            self.register_plugin(p)
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("message_error", self.bounced)
        self.finished = asyncio.Event()

    async def start(self, _):
        session = {"next": self.form, "error": self.error}
        self["xep_0050"].start_command(self.boundjid.domain, ADMIN + "#edit-blacklist", session)
        await asyncio.wait_for(self.finished.wait(), 20)
        self.finished.clear()
        self.send_message(mto="x@spam.example", mbody="hello?", mtype="chat")
        await asyncio.wait_for(self.finished.wait(), 20)
        self.ok = True
        self.disconnect()

    def form(self, iq, session):
        values = iq["command"]["form"].get_values().get("blacklistjids") or []
        print("LIST", " ".join(str(v) for v in values), flush=True)
        form = self["xep_0004"].make_form(ftype="submit")
        form.add_field(var="FORM_TYPE", ftype="hidden", value=ADMIN)
        form.add_field(var="blacklistjids", ftype="jid-multi",
                       value=[str(v) for v in values] + ["spam.example", "*.bad.example"])
        session["payload"] = form
        session["next"] = self.done
        self["xep_0050"].complete_command(session)

    def done(self, iq, session):
        print("STAGE", iq["command"]["status"], flush=True)
        for typ, text in iq["command"]["notes"]:
            print("NOTE", typ, text, flush=True)
        self.finished.set()

    def bounced(self, msg):
        print("BOUNCE", msg["from"], msg["error"]["condition"], flush=True)
        self.finished.set()

    def error(self, iq, session):
        print("ERROR", iq["error"]["condition"], iq["error"]["text"], flush=True)
        self.finished.set()


def main():
    slixrun.run(lambda jid, password, cafile, _: Client(jid, password, cafile), 30)


if __name__ == "__main__":
    main()
