// StanzaJS's service calls against Vireo over WebSocket, one step at a time: each prints
// "OK <step>" or "FAIL <step>: <why>", then "DONE <failures>". Run by
// TestIntegrationStanzaServices (engine/websocket_test.go) as
// node stanza_services.mjs URL JID PASSWORD ROOM.
import * as XMPP from "stanza";

const [url, jid, password, room] = process.argv.slice(2);
const domain = jid.split("@")[1].split("/")[0];
setTimeout(() => { console.log("FAIL timed out"); process.exit(1); }, 60000).unref();

const client = XMPP.createClient({ jid, password, transports: { websocket: url, bosh: false } });
client.on("raw:incoming", (x) => process.env.DEBUG && console.log("IN ", x));
client.on("raw:outgoing", (x) => process.env.DEBUG && console.log("OUT", x));
client.on("auth:failed", () => { console.log("FAIL authentication"); process.exit(1); });
let failed = 0;
async function step(name, f) {
  try {
    await Promise.race([f(), new Promise((_, no) => setTimeout(() => no(new Error("no answer in 10 s")), 10000))]);
    console.log("OK", name);
  } catch (e) {
    failed++;
    console.log("FAIL", name + ":", e?.message ?? JSON.stringify(e?.error ?? e));
  }
}
function must(cond, what) {
  if (!cond) throw new Error(what);
}

client.on("session:started", async () => {
  client.sendPresence();
  await step("disco#info", async () => {
    const info = await client.getDiscoInfo(domain);
    for (const f of ["urn:xmpp:mam:2", "urn:xmpp:carbons:2", "urn:xmpp:blocking", "urn:xmpp:ping"]) {
      must(info.features.includes(f), f + " missing");
    }
  });
  await step("ping", () => client.ping(domain));
  await step("time", async () => { const t = await client.getTime(domain); must(t.utc, "no utc"); });
  await step("version", async () => { const v = await client.getSoftwareVersion(domain); must(v.name, "no name"); });
  await step("carbons", () => client.enableCarbons());
  await step("stream management", async () => must(client.sm.started, "SM not started"));
  await step("blocking", async () => {
    await client.block("spam@example.org");
    const list = await client.getBlocked();
    must(list.jids.includes("spam@example.org"), "not in the list: " + JSON.stringify(list));
    await client.unblock("spam@example.org");
  });
  await step("vcard", async () => {
    await client.publishVCard({ records: [{ type: "nickname", value: "Stan" }] });
    const v = await client.getVCard(client.jid.split("/")[0]);
    must(JSON.stringify(v).includes("Stan"), "nickname lost: " + JSON.stringify(v));
  });
  await step("upload service", async () => {
    const svc = await client.getUploadService();
    must(svc.jid === "upload." + domain, "service " + JSON.stringify(svc));
    const slot = await client.getUploadSlot(svc.jid, { name: "a.txt", size: 10, mediaType: "text/plain" });
    must(slot.upload.url.startsWith("https://") && slot.download.startsWith("https://"), JSON.stringify(slot));
  });
  await step("archive", async () => {
    client.sendMessage({ to: client.jid.split("/")[0], type: "chat", body: "note to self" });
    await new Promise((r) => setTimeout(r, 300));
    const res = await client.searchHistory({});
    must(res.complete !== undefined, "no fin: " + JSON.stringify(res));
    must(res.results.some((r) => r.item.message?.body === "note to self"), "archive lacks the note: " + JSON.stringify(res.results.map((r) => r.item.message?.body)));
  });
  await step("muc", async () => {
    const heard = new Promise((ok) => client.on("groupchat", (m) => m.body === "tea from stanza" && ok()));
    await client.joinRoom(room, "stan");
    client.sendMessage({ to: room, type: "groupchat", body: "tea from stanza" });
    await heard;
  });
  await step("bookmarks", async () => {
    await client.addBookmark({ jid: room, name: "Tea", autoJoin: true, nick: "stan" });
    const bms = await client.getBookmarks();
    must(bms.some((b) => b.jid === room), "bookmark lost: " + JSON.stringify(bms));
  });
  await step("avatar", async () => {
    const data = Buffer.from("\x89PNG\r\n\x1a\nnot really a png", "binary");
    await client.publishAvatar("0123456789abcdef0123456789abcdef01234567", data);
  });
  console.log("DONE", failed);
  client.disconnect();
  setTimeout(() => process.exit(failed ? 1 : 0), 300);
});
client.connect();
