// Vireo interop with xmpp.js (@xmpp/client 0.14): SASL2 SCRAM-SHA-1 with Bind2, inline
// stream management and a FAST token request; a second login with the token alone
// (HT-SHA-256-NONE); then the TCP connection is cut and the client resumes inside SASL2,
// receiving what was sent meanwhile. Run by engine/xmppjs_test.go; prints OK on success.
import { client, xml } from "@xmpp/client";

const [port, domain, user, pass, peer, peerPass] = process.argv.slice(2);
const agent = "0b5c8f59-5d0e-4c5a-9d3e-2f4a8c1e7b61";

function fail(msg) {
  console.error("FAIL:", msg);
  process.exit(1);
}
setTimeout(() => fail("timed out"), 45000).unref();

let stored = null; // the FAST token, shared by the two logins as an app would keep it
function make(opts, keep) {
  const x = client({
    service: `xmpp://127.0.0.1:${port}`,
    domain,
    userAgent: xml("user-agent", { id: agent }, [xml("software", {}, "xmppjs-interop")]),
    ...opts,
  });
  if (keep) {
    x.fast.saveToken = async (t) => { stored = t; };
    x.fast.fetchToken = async () => stored;
    x.fast.deleteToken = async () => { stored = null; };
  }
  x.mechs = [];
  x.on("send", (el) => {
    if (el.is("authenticate", "urn:xmpp:sasl:2")) x.mechs.push(el.attrs.mechanism);
  });
  x.on("error", (e) => console.error("client error:", e.condition ?? "", e.message));
  return x;
}

// 1. Password login: SCRAM-SHA-1 over SASL2, Bind2 with SM, and a token requested.
const a = make({ username: user, password: pass, resource: "js" }, true);
const jidA = (await a.start()).toString();
if (a.mechs[0] !== "SCRAM-SHA-1") fail("first login used " + a.mechs);
if (!jidA.startsWith(`${user}@${domain}/js/`)) fail("Bind2 JID " + jidA);
if (!stored || !stored.token) fail("no FAST token");
if (!a.streamManagement.enabled) fail("SM not enabled inline");
await a.stop();

// 2. Token login, no password.
const b = make({ username: user, resource: "js" }, true);
const jidB = (await b.start()).toString();
if (b.mechs[0] !== "HT-SHA-256-NONE") fail("second login used " + b.mechs);
if (jidB !== jidA) fail(`Bind2 resource not stable: ${jidA} then ${jidB}`);
await b.send(xml("presence"));

// 3. The TCP connection dies; a peer writes meanwhile; the client resumes in SASL2.
const p = make({ username: peer, password: peerPass, resource: "peer" }, false);
await p.start();
const resumed = new Promise((res) => b.streamManagement.on("resumed", res));
const got = new Promise((res) => b.on("stanza", (st) => {
  if (st.is("message") && st.getChildText("body") === "while you were away") res();
}));
(b.socket.socket ?? b.socket).destroy(); // no stream close: a phone losing its network
await new Promise((r) => setTimeout(r, 300));
await p.send(xml("message", { to: jidB, type: "chat", id: "away1" }, xml("body", {}, "while you were away")));
await resumed;
await got;
if (b.mechs.length < 2 || b.mechs[1] !== "HT-SHA-256-NONE") fail("reconnect used " + b.mechs);
await p.stop();
await b.stop();
console.log("OK", jidA, b.mechs.join(","));
process.exit(0);
