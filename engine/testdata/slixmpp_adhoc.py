"""List the server's ad-hoc commands and run XEP-0133 add-user through slixmpp's XEP-0050
plugin and its multi-stage API (start_command, then complete_command with the filled
form); then get-registered-users-list with a max_items of its choosing, printing the
accounts; then get-user-roster for its own account after adding a contact, printing the
roster's lines; then XEP-0401 create-account, printing the invitation's URI. Used by
TestIntegrationSlixmppAdhoc; exits non-zero on failure."""
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
        self.finished = asyncio.Event()

    async def start(self, _):
        print("BOUND", self.boundjid.full, flush=True)
        self.send_presence()
        items = await self["xep_0050"].get_commands(self.boundjid.domain)
        nodes = [i[1] for i in items["disco_items"]["items"]]
        for n in nodes:
            print("COMMAND", n, flush=True)
        session = {"next": self.form, "error": self.error}
        self["xep_0050"].start_command(self.boundjid.domain, ADMIN + "#add-user", session)
        await asyncio.wait_for(self.finished.wait(), 20)
        self.finished.clear()
        session = {"next": self.list_form, "error": self.error}
        self["xep_0050"].start_command(self.boundjid.domain, ADMIN + "#get-registered-users-list", session)
        await asyncio.wait_for(self.finished.wait(), 20)
        self.finished.clear()
        await self.update_roster("friend@" + self.boundjid.domain, name="Friend", groups=["Pals"])
        session = {"next": self.roster_form, "error": self.error}
        self["xep_0050"].start_command(self.boundjid.domain, ADMIN + "#get-user-roster", session)
        await asyncio.wait_for(self.finished.wait(), 20)
        self.finished.clear()
        session = {"next": self.invite_form, "error": self.error}
        self["xep_0050"].start_command(self.boundjid.domain, "urn:xmpp:invite#create-account", session)
        await asyncio.wait_for(self.finished.wait(), 20)
        self.ok = True
        self.disconnect()

    def list_form(self, iq, session):
        form = self["xep_0004"].make_form(ftype="submit")
        form.add_field(var="FORM_TYPE", ftype="hidden", value=ADMIN)
        form.add_field(var="max_items", value="25")
        session["payload"] = form
        session["next"] = self.listed
        self["xep_0050"].complete_command(session)

    def listed(self, iq, session):
        users = iq["command"]["form"].get_values().get("registereduserjids") or []
        print("REGISTERED", " ".join(str(u) for u in users), flush=True)
        self.finished.set()

    def roster_form(self, iq, session):
        form = self["xep_0004"].make_form(ftype="submit")
        form.add_field(var="FORM_TYPE", ftype="hidden", value=ADMIN)
        form.add_field(var="accountjids", ftype="jid-multi", value=[self.boundjid.bare])
        session["payload"] = form
        session["next"] = self.rostered
        self["xep_0050"].complete_command(session)

    def rostered(self, iq, session):
        lines = iq["command"]["form"].get_values().get("roster-" + self.boundjid.bare) or []
        if isinstance(lines, str):  # slixmpp joins a text-multi field's values
            lines = lines.split("\n")
        for line in lines:
            print("ROSTER", line, flush=True)
        self.finished.set()

    def invite_form(self, iq, session):
        fields = iq["command"]["form"].get_fields()
        print("INVITE FIELDS", ",".join(k for k in fields if k != "FORM_TYPE"), flush=True)
        form = self["xep_0004"].make_form(ftype="submit")
        form.add_field(var="username", value="invited")
        session["payload"] = form
        session["next"] = self.invited
        self["xep_0050"].complete_command(session)

    def invited(self, iq, session):
        values = iq["command"]["form"].get_values()
        form_type = values.get("FORM_TYPE")
        if isinstance(form_type, list):  # slixmpp lists a hidden field's values
            form_type = " ".join(form_type)
        print("INVITATION", form_type, values.get("uri"), flush=True)
        self.finished.set()

    def form(self, iq, session):
        cmd = iq["command"]
        print("STAGE", cmd["status"], "actions", ",".join(sorted(cmd["actions"])), flush=True)
        fields = cmd["form"].get_fields()
        print("FIELDS", ",".join(k for k in fields if k != "FORM_TYPE"), flush=True)
        form = self["xep_0004"].make_form(ftype="submit")
        form.add_field(var="FORM_TYPE", ftype="hidden", value=ADMIN)
        form.add_field(var="accountjid", value="fromslix@" + self.boundjid.domain)
        form.add_field(var="password", value="slix made me")
        form.add_field(var="password-verify", value="slix made me")
        session["payload"] = form
        session["next"] = self.done
        self["xep_0050"].complete_command(session)

    def done(self, iq, session):
        cmd = iq["command"]
        print("STAGE", cmd["status"], flush=True)
        for typ, text in cmd["notes"]:
            print("NOTE", typ, text, flush=True)
        self.finished.set()

    def error(self, iq, session):
        print("ERROR", iq["error"]["condition"], iq["error"]["text"], flush=True)
        self.finished.set()


def main():
    slixrun.run(lambda jid, password, cafile, _: Client(jid, password, cafile), 30)


if __name__ == "__main__":
    main()
