// Vireo interop with StanzaJS (npm stanza) over RFC 7395 WebSocket (a ws:// or wss:// URL)
// or XEP-0206 BOSH (an http:// or https:// URL): log in (SCRAM), read the roster, send a
// chat message and wait for the answer. Run by engine/websocket_test.go and
// engine/bosh_test.go; prints OK on success.
import * as XMPP from "stanza";

const [url, jid, password, peer] = process.argv.slice(2);
function fail(msg) {
  console.error("FAIL:", msg);
  process.exit(1);
}
setTimeout(() => fail("timed out"), 30000).unref();

const transports = url.startsWith("http") ? { bosh: url, websocket: false } : { websocket: url, bosh: false };
const client = XMPP.createClient({ jid, password, transports });
let mech = "";
client.on("auth:success", (creds) => { mech = client.sasl?.mechanism?.name ?? ""; });
client.on("stream:error", (e) => fail("stream error " + JSON.stringify(e)));
client.on("auth:failed", () => fail("authentication failed"));
client.on("session:started", async () => {
  const roster = await client.getRoster();
  console.log("ROSTER", roster.items.map((i) => i.jid).join(","));
  client.sendPresence();
  client.sendMessage({ to: peer, type: "chat", body: "hello from stanza" });
});
client.on("chat", (msg) => {
  if (msg.body === "hello stanza") {
    console.log("OK", client.jid);
    client.disconnect();
    setTimeout(() => process.exit(0), 200);
  }
});
client.on("raw:incoming", (x) => process.env.DEBUG && console.log("IN ", x));
client.on("raw:outgoing", (x) => process.env.DEBUG && console.log("OUT", x));
client.connect();
