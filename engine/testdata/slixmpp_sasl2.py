"""XEP-0388 SASL2, XEP-0386 Bind2, XEP-0484 FAST and XEP-0357 push through slixmpp.

Debian's slixmpp 1.8.3 has plugins for none of them, so this script teaches slixmpp the
<authentication/> stream feature and sends raw stanzas. Without a token it logs in with
PLAIN over SASL2, binds with Bind2, enables XEP-0198 stream management inline (handing the
<enabled/> to slixmpp's own XEP-0198 plugin, which counts and acks from there) and asks for
a FAST token; then it registers an app server for push with a raw IQ. With a token (and the user-agent id it was
issued to) it logs in with HT-SHA-256-NONE in one round trip, checks the server's proof and
sends itself a message. Used by TestIntegrationSlixmppSASL2; exits non-zero on failure.

    python3 slixmpp_sasl2.py JID PASSWORD HOST PORT CAFILE AGENT [TOKEN]
"""

import asyncio
import base64
import hashlib
import hmac
import xml.etree.ElementTree as ET

import slixmpp
from slixmpp.jid import JID
from slixmpp.plugins.xep_0198.stanza import Enabled as SMEnabled
from slixmpp.stanza import StreamFeatures
from slixmpp.xmlstream import ElementBase, StanzaBase, register_stanza_plugin
from slixmpp.xmlstream.handler import Waiter
from slixmpp.xmlstream.matcher import MatchMany, MatchXPath

import slixrun

NS = "urn:xmpp:sasl:2"
FAST = "urn:xmpp:fast:0"


class Authentication(ElementBase):
    name = "authentication"
    namespace = NS
    plugin_attrib = "authentication"
    interfaces = set()


class Success(StanzaBase):
    name = "success"
    namespace = NS
    interfaces = set()


class Failure(StanzaBase):
    name = "failure"
    namespace = NS
    interfaces = set()


def ht(token, label):
    return hmac.new(token.encode(), label, hashlib.sha256).digest()


class Client(slixmpp.ClientXMPP):
    def __init__(self, jid, password, cafile, extra):
        super().__init__(jid, password)
        self.ok = False
        self.agent = extra[0]
        self.token = extra[1] if len(extra) > 1 else None
        self.sm = asyncio.Event()
        slixrun.trust(self, cafile)
        register_stanza_plugin(StreamFeatures, Authentication)
        self.register_stanza(Success)
        self.register_stanza(Failure)
        # Before RFC 6120 SASL (order 100): a server that offers SASL2 gets it.
        self.register_feature("authentication", self.sasl2, restart=True, order=50)
        self.register_plugin("xep_0198")
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("sm_enabled", lambda _: self.sm.set())
        self.add_event_handler("message", self.message)

    async def sasl2(self, features):
        user = self.requested_jid.user
        if self.token:
            mech = "HT-SHA-256-NONE"
            initial = user.encode() + b"\0" + ht(self.token, b"Initiator")
        else:
            mech = "PLAIN"
            initial = b"\0" + user.encode() + b"\0" + self.password.encode()
        auth = (f"<authenticate xmlns='{NS}' mechanism='{mech}'>"
                f"<initial-response>{base64.b64encode(initial).decode()}</initial-response>"
                f"<user-agent id='{self.agent}'><software>slixmpp</software></user-agent>"
                "<bind xmlns='urn:xmpp:bind:0'><tag>slixmpp</tag>"
                "<enable xmlns='urn:xmpp:sm:3' resume='true'/></bind>")
        if not self.token:
            auth += f"<request-token xmlns='{FAST}' mechanism='HT-SHA-256-NONE'/>"
        auth += "</authenticate>"
        waiter = Waiter("sasl2", MatchMany([MatchXPath(Success.tag_name()), MatchXPath(Failure.tag_name())]))
        self.register_handler(waiter)
        self.send_raw(auth)
        result = await waiter.wait(timeout=10)
        if result is None or result.name != "success":
            print("SASL2 FAILED", result, flush=True)
            self.disconnect()
            return True
        x = result.xml
        jid = x.findtext("{%s}authorization-identifier" % NS)
        bound = x.find("{urn:xmpp:bind:0}bound")
        print("SASL2", mech, "bound" if bound is not None else "not bound", "as", jid, flush=True)
        if self.token:
            proof = base64.b64decode(x.findtext("{%s}additional-data" % NS) or "")
            print("FAST PROOF", "ok" if hmac.compare_digest(proof, ht(self.token, b"Responder")) else "BAD", flush=True)
        token = x.find("{%s}token" % FAST)
        if token is not None:
            print("TOKEN", token.get("token"), flush=True)
        enabled = bound.find("{urn:xmpp:sm:3}enabled") if bound is not None else None
        if enabled is not None:
            # What slixmpp's XEP-0198 plugin does when it sends <enable/> and gets this.
            sm = self["xep_0198"]
            sm.enabled_out, sm.seq = True, 0
            sm.unacked_queue.clear()
            sm._handle_enabled(SMEnabled(self, xml=enabled))
        # What slixmpp's SASL and bind features would have done: the session is bound.
        self.authenticated = True
        self.features.update({"mechanisms", "bind"})
        self.boundjid = JID(jid)
        self.bound = True
        self.event("session_bind", self.boundjid)
        self.session_bind_event.set()
        self.sessionstarted = True
        self.event("session_start")
        return True

    async def start(self, _):
        try:
            await asyncio.wait_for(self.sm.wait(), 10)
        except asyncio.TimeoutError:
            print("NO SM", flush=True)
            self.disconnect()
            return
        print("SM ENABLED", self["xep_0198"].sm_id is not None, flush=True)
        if self.token:
            self.send_message(mto=self.boundjid.full, mbody="fast echo", mtype="chat")
            return
        iq = self.make_iq_set()
        iq.append(ET.fromstring("<enable xmlns='urn:xmpp:push:0' jid='push.localhost' node='slix-node'/>"))
        res = await iq.send(timeout=10)
        print("PUSH ENABLED", res["type"], flush=True)
        self.ok = res["type"] == "result"
        self.disconnect()

    def message(self, msg):
        if msg["body"] == "fast echo":
            print("ECHO", flush=True)
            self.ok = True
            self.disconnect()


if __name__ == "__main__":
    slixrun.run(Client, 30)
