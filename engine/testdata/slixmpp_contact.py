"""Read the server's XEP-0157 contact addresses and XEP-0455 outage status addresses from its
disco#info with slixmpp, and check
with slixmpp's XEP-0115 code that the verification string the server put in its stream
features is the one its disco#info (the XEP-0128 form included) hashes to.
Used by TestIntegrationSlixmppContact; exits non-zero on failure."""
import asyncio

import slixmpp

import slixrun


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, cafile):
        super().__init__(jid, password)
        self.ok = False
        self.server_ver = None
        slixrun.trust(self, cafile)
        for p in ("xep_0030", "xep_0004", "xep_0128", "xep_0115"):
            self.register_plugin(p)
        self.add_event_handler("entity_caps", self.caps)
        self.add_event_handler("session_start", self.start)

    def caps(self, pres):
        if pres["from"].full == self.boundjid.domain:
            self.server_ver = pres["caps"]["ver"]

    async def start(self, _):
        info = await self["xep_0030"].get_info(jid=self.boundjid.domain, cached=False)
        di = info["disco_info"]
        for form in di["substanzas"]:
            if isinstance(form, self["xep_0004"].stanza.Form):
                values = form["values"]
                ftype = values.get("FORM_TYPE")
                if isinstance(ftype, list):
                    ftype = ftype[0] if ftype else None
                label = {"http://jabber.org/network/serverinfo": "CONTACT", "urn:xmpp:sos:0": "SOS"}.get(ftype)
                if label:
                    for var in sorted(values):
                        if var != "FORM_TYPE":
                            v = values[var]
                            print(label, var, " ".join(v if isinstance(v, list) else [v]), flush=True)
        ver = self["xep_0115"].generate_verstring(di, "sha-1")
        if ver and ver == self.server_ver:
            print("VER MATCH", ver, flush=True)
        else:
            print("VER MISMATCH stream features", self.server_ver, "disco#info", ver, flush=True)
        self.ok = True
        self.disconnect()


def main():
    slixrun.run(lambda jid, password, cafile, _: Client(jid, password, cafile), 30)


if __name__ == "__main__":
    main()
