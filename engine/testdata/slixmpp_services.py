"""slixmpp's plugins against Vireo, one step at a time: each prints "OK <step>" or
"FAIL <step>: <why>", then "DONE <failures>". Used by TestIntegrationSlixmppServices, which
makes bob a contact who was online and left with a status."""
import asyncio
import datetime

from slixmpp import ClientXMPP, JID
from slixmpp.plugins.xep_0048 import Bookmarks
from slixmpp.xmlstream import ET, ElementBase, register_stanza_plugin

import slixrun


class Note(ElementBase):
    namespace = "urn:example:note"
    name = "note"
    plugin_attrib = "note"
    interfaces = {"text"}
    sub_interfaces = interfaces


class Client(ClientXMPP):
    def __init__(self, jid, password, cafile, _extra):
        super().__init__(jid, password)
        slixrun.trust(self, cafile)
        self.ok = False
        for p in ["xep_0012", "xep_0030", "xep_0048", "xep_0049", "xep_0054", "xep_0077", "xep_0092",
                  "xep_0191", "xep_0199", "xep_0202", "xep_0223", "xep_0280", "xep_0377"]:
            self.register_plugin(p)
        self.add_event_handler("session_start", self.start)

    async def step(self, name, coro):
        try:
            await asyncio.wait_for(coro, 10)
            print("OK", name, flush=True)
            return True
        except Exception as e:  # every failure is reported, and the run goes on
            self.failed += 1
            print("FAIL", name + ":", type(e).__name__, e, flush=True)
            return False

    async def start(self, _):
        self.failed = 0
        self.send_presence()
        await self.get_roster()
        domain = JID(self.boundjid.domain)
        bob = JID("bob@" + self.boundjid.domain)

        async def disco():
            info = await self["xep_0030"].get_info(jid=domain)
            feats = info["disco_info"]["features"]
            for f in ("jabber:iq:last", "urn:xmpp:time", "jabber:iq:version", "urn:xmpp:blocking"):
                assert f in feats, f

        await self.step("disco#info", disco())
        await self.step("ping", self["xep_0199"].ping(jid=domain))

        async def version():
            v = await self["xep_0092"].get_version(domain)
            assert v["software_version"]["name"], v

        await self.step("version", version())

        async def entity_time():
            t = await self["xep_0202"].get_entity_time(domain)
            # slixmpp 1.8 appends a Z to <utc> before parsing it; XEP-0202's own example
            # (and XEP-0082) carry the Z, as Vireo, Prosody and ejabberd send it. So the
            # text is checked here.
            utc = t["entity_time"]._get_sub_text("utc")
            assert utc.endswith("Z"), utc
            datetime.datetime.strptime(utc, "%Y-%m-%dT%H:%M:%S.%fZ")

        await self.step("time", entity_time())

        async def last_activity():
            # Bob was online and left: the seconds since he left, as his contact may see.
            r = await self["xep_0012"].get_last_activity(bob)
            secs = int(r["last_activity"]["seconds"])
            assert 0 <= secs < 600, secs
            up = await self["xep_0012"].get_last_activity(domain)
            assert int(up["last_activity"]["seconds"]) >= 0

        await self.step("last activity", last_activity())
        await self.step("carbons", self["xep_0280"].enable())

        async def blocking():
            await self["xep_0191"].block(["spam@example.org"])
            got = await self["xep_0191"].get_blocked()
            assert JID("spam@example.org") in got["blocklist"]["items"], got
            await self["xep_0191"].unblock(["spam@example.org"])

        await self.step("blocking", blocking())

        async def report():
            # XEP-0377 as slixmpp's plugin writes it: the 0.2 namespace, in <block/>.
            iq = self.make_iq_set()
            iq["block"]["items"] = [JID("spammer@example.org")]
            iq["block"]["report"]["spam"] = True
            iq["block"]["report"]["text"] = "buy potions"
            await iq.send()

        await self.step("block and report", report())

        async def vcard():
            card = self["xep_0054"].make_vcard()
            card["FN"] = "Slix Slixson"
            await self["xep_0054"].publish_vcard(card)
            got = await self["xep_0054"].get_vcard(self.boundjid.bare, cached=False)
            assert got["vcard_temp"]["FN"] == "Slix Slixson", got

        await self.step("vcard-temp", vcard())

        async def private():
            note = Note()
            note["text"] = "kept in private"
            await self["xep_0049"].store(note)
            got = await self["xep_0049"].retrieve("note")
            assert got["private"]["note"]["text"] == "kept in private", got

        register_stanza_plugin(self["xep_0049"].stanza.PrivateXML, Note)
        await self.step("private storage", private())

        async def bookmarks():
            bm = Bookmarks()
            bm.add_conference("tea@conference." + self.boundjid.domain, "slix", name="Tea", autojoin=True)
            await self["xep_0048"].set_bookmarks(bm, method="xep_0049")
            got = await self["xep_0048"].get_bookmarks(method="xep_0049")
            assert "tea@conference." in str(got), got

        await self.step("bookmarks (XEP-0048 in private storage)", bookmarks())

        async def private_pubsub():
            note = Note()
            note["text"] = "kept in PEP"
            await self["xep_0223"].store(note, node="urn:example:note", id="current")
            got = await self["xep_0223"].retrieve("urn:example:note")
            assert "kept in PEP" in str(got), got

        await self.step("private PEP (XEP-0223)", private_pubsub())

        async def password():
            await self["xep_0077"].change_password("py secret 2")
            await self["xep_0077"].change_password("py secret")

        await self.step("change password", password())
        print("DONE", self.failed, flush=True)
        self.ok = self.failed == 0
        self.disconnect()


if __name__ == "__main__":
    slixrun.run(Client, 60)
