"""Use slixmpp's XEP-0060 plugin against the server's pubsub.<domain> service: find it in
the server's disco#items, create a node with a configure form, subscribe, publish an item
and get its event, read and set the subscription's options, read the item back, page
through three items with XEP-0059, read the node's configuration, then delete the node and
get that event. Used by TestIntegrationSlixmppPubsub; exits non-zero on failure."""
import asyncio
from xml.etree import ElementTree as ET

import slixmpp
from slixmpp.plugins.xep_0059 import Set
from slixmpp.plugins.xep_0060.stanza import Pubsub
from slixmpp.xmlstream import register_stanza_plugin

import slixrun

NODE = "slix-news"


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, cafile):
        super().__init__(jid, password)
        self.ok = False
        slixrun.trust(self, cafile)
        for p in ("xep_0004", "xep_0030", "xep_0059", "xep_0060"):
            self.register_plugin(p)
        # slixmpp puts XEP-0059 <set/> only on disco#items; pubsub carries it beside <items/>.
        register_stanza_plugin(Pubsub, Set)
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("pubsub_publish", self.published)
        self.add_event_handler("pubsub_delete", self.deleted)
        self.got_item = asyncio.Event()
        self.got_delete = asyncio.Event()

    def published(self, msg):
        item = msg["pubsub_event"]["items"]["item"]
        print("EVENT", msg["from"], item["id"], item["payload"].tag, item["payload"].text, flush=True)
        self.got_item.set()

    def deleted(self, msg):
        print("DELETED", msg["pubsub_event"]["delete"]["node"], flush=True)
        self.got_delete.set()

    async def start(self, _):
        self.send_presence()
        await self.get_roster()
        items = await self["xep_0030"].get_items(jid=self.boundjid.domain)
        service = None
        for jid, _node, _name in items["disco_items"]["items"]:
            if jid.startswith("pubsub."):
                service = jid
        print("SERVICE", service, flush=True)
        ps = self["xep_0060"]
        form = self["xep_0004"].make_form(ftype="submit")
        form.add_field(var="pubsub#title", value="Slix news")
        form.add_field(var="pubsub#max_items", value="5")
        await ps.create_node(service, NODE, config=form)
        print("CREATED", NODE, flush=True)
        sub = await ps.subscribe(service, NODE)
        print("SUBSCRIPTION", sub["pubsub"]["subscription"]["subscription"], flush=True)
        payload = ET.fromstring("<entry xmlns='urn:example:news'>Hello from slixmpp</entry>")
        await ps.publish(service, NODE, id="first", payload=payload)
        await asyncio.wait_for(self.got_item.wait(), 10)
        # XEP-0060 §6.3 subscription options, read with the plugin; slixmpp's
        # set_subscription_options sends type='get', so the set is built from its stanzas.
        user = self.boundjid.bare
        opts = await ps.get_subscription_options(service, NODE, user)
        print("DELIVER", opts["pubsub"]["options"]["options"].get_values()["pubsub#deliver"], flush=True)
        form = self["xep_0004"].make_form(ftype="submit")
        form.add_field(var="FORM_TYPE", ftype="hidden", value="http://jabber.org/protocol/pubsub#subscribe_options")
        form.add_field(var="pubsub#deliver", ftype="boolean", value=False)
        iq = self.Iq(stype="set", sto=service)
        iq["pubsub"]["options"]["node"] = NODE
        iq["pubsub"]["options"]["jid"] = user
        iq["pubsub"]["options"]["options"] = form
        await iq.send()
        opts = await ps.get_subscription_options(service, NODE, user)
        print("DELIVER", opts["pubsub"]["options"]["options"].get_values()["pubsub#deliver"], flush=True)
        got = await ps.get_items(service, NODE)
        if "Hello from slixmpp" in str(got):
            print("ITEMS OK", flush=True)
        # XEP-0060 §6.5.4: the items paged with the plugin's XEP-0059 iterator, two at a
        # time, after two more publishes (delivery is off now: no events).
        for i in ("second", "third"):
            await ps.publish(service, NODE, id=i, payload=ET.fromstring("<entry xmlns='urn:example:news'>" + i + "</entry>"))
        seen = []
        query = self.Iq(sto=service, stype="get")  # ps.get_items(iterator=True), two a page
        query["pubsub"]["items"]["node"] = NODE
        async for page in self["xep_0059"].iterate(query, "pubsub", amount=2):
            ids = [it["id"] for it in page["pubsub"]["items"]]
            seen.append(",".join(ids))
            if len(seen) > 5:
                break
        print("PAGES", "|".join(seen), flush=True)
        cfg = await ps.get_node_config(service, NODE)
        if "Slix news" in str(cfg):
            print("CONFIG OK", flush=True)
        await ps.delete_node(service, NODE)
        await asyncio.wait_for(self.got_delete.wait(), 10)
        self.ok = True
        self.disconnect()


def main():
    slixrun.run(lambda jid, password, cafile, _: Client(jid, password, cafile), 30)


if __name__ == "__main__":
    main()
