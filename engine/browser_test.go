package engine_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vireo-im/vireo/engine/vireotest"
)

// needChromium returns Debian's Chromium, or skips (fails under CI, which installs it).
func needChromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/usr/bin/chromium", "/usr/bin/chromium-browser"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium is not installed (apt-get install chromium)")
	}
	t.Skip("chromium not installed")
	return ""
}

// conversePage loads Converse.js from its npm package, discovers the server's WebSocket
// endpoint through host-meta (discover_connection_methods), and logs in. A tiny plugin
// hands the test Converse's API.
const conversePage = `<!doctype html>
<html><head><meta charset="utf-8"><title>Vireo + Converse.js</title>
<link rel="stylesheet" href="/dist/converse.min.css"></head>
<body class="converse-fullscreen">
<script type="module">
import converse from '/dist/converse.min.js';
converse.plugins.add('vireo-test', { initialize() {
  window.vt = this._converse;
  // The stream, for a failing test to show: window.xlog.
  window.xlog = [];
  this._converse.api.listen.on('connectionInitialized', () => {
    const c = this._converse.api.connection.get();
    c.xmlInput = (e) => window.xlog.push('IN ' + e.outerHTML);
    c.xmlOutput = (e) => window.xlog.push('OUT ' + e.outerHTML);
  });
} });
// Converse's warnings and errors (a stream error, a failed resume) go to the log too.
for (const m of ['warn', 'error']) {
  const orig = console[m].bind(console);
  console[m] = (...a) => { window.xlog?.push('LOG ' + a.map(String).join(' ').slice(0, 300)); orig(...a); };
}
const q = new URLSearchParams(location.search);
converse.initialize({
  assets_path: '/dist/',
  ...(q.has('bosh')
    ? { discover_connection_methods: false, bosh_service_url: 'https://localhost/http-bind' }
    : q.has('ws')
    ? { discover_connection_methods: false, websocket_url: q.get('ws') }
    : { discover_connection_methods: true }),
  // ?guest: Converse's anonymous mode, a guest on the host (SASL ANONYMOUS).
  ...(q.has('guest') ? { authentication: 'anonymous', jid: 'localhost' } : { jid: 'conv@localhost', password: 'conv secret' }),
  auto_login: true,
  // With a WebSocket URL given, the test cuts the connection: Converse reconnects and
  // resumes its XEP-0198 session.
  auto_reconnect: q.has('ws'),
  view_mode: 'fullscreen',
  whitelisted_plugins: ['vireo-test'],
  play_sounds: false,
  show_desktop_notifications: false,
  loglevel: 'info',
});
</script></body></html>`

// TestBrowserConverse: Converse.js in headless Chromium finds the WebSocket endpoint through
// XEP-0156 host-meta on https://localhost (the web TLS listener on 127.0.0.1:443), logs in,
// reads its roster and chats with a slixmpp user in both directions, shows a chat's history
// from the user's archive, and (over WebSocket) uploads a file (XEP-0363), retracts a line
// (XEP-0424, a tombstone in the archive) and
// joins an archived room, shows its history from the archive and talks there, retracts a
// line as a moderator (XEP-0425) and its own (XEP-0424), both tombstones in the room's
// archive, stores the room as a XEP-0402 bookmark, and makes a contact invitation through
// its ad-hoc commands (XEP-0401); then the chat again over BOSH. The test keeps a screenshot of each chat (the paths are logged).
func TestBrowserConverse(t *testing.T) {
	dir := needNodePackage(t, "converse.js")
	chrome := needChromium(t)
	needSlixmpp(t)
	for _, transport := range []string{"websocket", "bosh"} {
		t.Run(transport, func(t *testing.T) { converseChat(t, dir, chrome, transport) })
	}
}

func converseChat(t *testing.T, dir, chrome, transport string) {
	srv := uploadServer(t, vireotest.Options{WebTLSAddr: "127.0.0.1:443"})
	srv.AddUser(t, "conv", "conv secret")
	srv.AddUser(t, "slix", "py secret")
	srv.Befriend(t, "conv", "slix", "Slix")

	// The slixmpp user, online first.
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, srv.CertPEM, 0o600)
	host, port, _ := net.SplitHostPort(srv.C2SAddr())
	slix := exec.CommandContext(ctx, "/usr/bin/python3", "testdata/slixmpp_chat.py", "slix@localhost/py", "py secret", host, port, ca, "conv@localhost")
	slixOut := &lockedBuf{}
	slix.Stdout, slix.Stderr = slixOut, slixOut
	if err := slix.Start(); err != nil {
		t.Fatal(err)
	}
	defer slix.Process.Kill()
	waitOutput(t, slixOut, "READY", 30*time.Second)

	// Before Converse comes: bob and another session of conv talk, so that the exchange is
	// in conv's archive (XEP-0313) and nowhere Converse could see it but there.
	srv.AddUser(t, "bob", "secret")
	bob := mucLogin(t, srv, "bob", "pc")
	earlier := srv.LoginPlain(t, "conv", "conv secret", "earlier")
	bob.Send("<message to='conv@localhost/earlier' type='chat' id='e1'><body>from the archive</body></message>")
	expectStanza(t, earlier, "id='e1'")
	earlier.Send("</stream:stream>")
	earlier.ExpectClosed()

	b := openConverse(t, ctx, dir, chrome, query(transport), func() string { return "slixmpp:\n" + slixOut.String() })
	evalBool, poll, pageState := b.eval, b.poll, b.state
	poll("logged in", `!!(window.vt && window.vt.api.connection.connected() && window.vt.session && window.vt.session.get('jid'))`)
	poll("roster", `(async () => (await vt.api.contacts.get()).some(c => c.get('jid') === 'slix@localhost'))()`)
	if sent, err := evalBool(`(async () => { const c = await vt.api.chats.open('slix@localhost', {}, true); await c.sendMessage({body: 'hi from converse'}); return true; })()`); err != nil || !sent {
		t.Fatalf("sending from Converse: %v", err)
	}
	waitOutput(t, slixOut, "GOT conv@localhost hi from converse", 30*time.Second)
	poll("answer", `(async () => { const c = await vt.api.chats.get('slix@localhost'); return !!c && c.messages.pluck('body').includes('hi from slixmpp'); })()`)
	poll("answer on screen", `document.querySelector('converse-root').innerText.includes('hi from slixmpp')`)
	// Opening the chat with bob fetches its history from conv's archive: Converse looks
	// for the archive on conv's own bare JID (XEP-0313 §7).
	if ok, err := evalBool(`(async () => { await vt.api.chats.open('bob@localhost', {}, true); return true; })()`); err != nil || !ok {
		t.Fatalf("opening the chat with bob: %v", err)
	}
	poll("one-to-one history from the archive", `(async () => { const c = await vt.api.chats.get('bob@localhost'); return !!c && c.messages.pluck('body').includes('from the archive'); })()`)

	if transport == "websocket" {
		// A file sent from the browser: Converse finds the XEP-0363 service in disco, gets a
		// slot, PUTs the file across origins (CORS preflight, the slot's Authorization
		// header) and sends bob its URL, which serves the file.
		if ok, err := evalBool(`(async () => { const c = await vt.api.chats.get('bob@localhost');
			await c.sendFiles([new File(['sent from a browser'], 'note.txt', {type: 'text/plain'})]); return true; })()`); err != nil || !ok {
			t.Fatalf("sending a file from Converse: %v", err)
		}
		got, err := bob.ReadUntil("</url>", 30*time.Second)
		if err != nil {
			t.Fatalf("bob never got the file's URL: %v; %s", err, pageState())
		}
		url := got[strings.LastIndex(got, "<url>")+len("<url>") : len(got)-len("</url>")]
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: srv.ClientTLS()}}
		if code, b, _ := httpDo(t, hc, "GET", url, "", "", nil, -1); code != 200 || string(b) != "sent from a browser" {
			t.Fatalf("GET %s: %d %q", url, code, b)
		}
		// A line sent to bob and retracted (XEP-0424): both archives keep a tombstone.
		if ok, err := evalBool(`(async () => { const c = await vt.api.chats.get('bob@localhost');
			const m = await c.sendMessage({body: 'meant for someone else'});
			c.retractOwnMessage(m); return true; })()`); err != nil || !ok {
			t.Fatalf("retracting a line to bob: %v", err)
		}
		if _, err := bob.ReadUntil("retracted a message", 20*time.Second); err != nil {
			t.Fatalf("bob never got the retraction: %v; %s", err, pageState())
		}
		bob.Send("<iq type='set' id='own'><query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:mam:2</value></field><field var='with'><value>conv@localhost</value></field></x></query></iq>")
		if own, err := bob.ReadUntil("id='own'", 10*time.Second); err != nil || strings.Contains(own, "meant for someone else") ||
			!strings.Contains(own, "<retracted xmlns='urn:xmpp:message-retract:1'") {
			t.Fatalf("bob's archive after the retraction (%v):\n%s", err, own)
		}

		// A room bob made, with a line in its history: Converse joins it (disco#info of the
		// room, the join, history or its MUC archive), shows the line and talks there.
		mucCreate(t, bob, mucRoom, "Bob")
		// A community room: persistent and archived, so Converse asks for no history in its
		// join and reads the room's archive (XEP-0313) instead.
		bob.Send(mucConfig(mucRoom, "cfg", "muc#roomconfig_persistentroom", "1", "muc#roomconfig_enablelogging", "1"))
		expectStanza(t, bob, "id='cfg'", "type='result'")
		bob.Send("<message to='" + mucRoom + "' type='groupchat' id='r0'><body>before converse came</body></message>")
		expectStanza(t, bob, "id='r0'")
		if ok, err := evalBool(`(async () => { await vt.api.rooms.open('` + mucRoom + `', {nick: 'conv'}, true); return true; })()`); err != nil || !ok {
			t.Fatalf("opening the room in Converse: %v", err)
		}
		expectStanza(t, bob, "<presence", "from='"+mucRoom+"/conv'")
		poll("room history", `(async () => { const r = await vt.api.rooms.get('`+mucRoom+`'); return !!r && r.messages.pluck('body').includes('before converse came'); })()`)
		if ok, err := evalBool(`(async () => { const r = await vt.api.rooms.get('` + mucRoom + `'); await r.sendMessage({body: 'hello from the browser'}); return true; })()`); err != nil || !ok {
			t.Fatalf("talking in the room: %v", err)
		}
		expectStanza(t, bob, "from='"+mucRoom+"/conv'", "groupchat", "<body>hello from the browser</body>")
		poll("room on screen", `document.querySelector('converse-root').innerText.includes('before converse came')`)
		// bob makes conv a moderator; Converse sees that it may moderate (its role and the
		// room's XEP-0425 feature) and retracts bob's line, which goes from the screen.
		bob.Send("<iq type='set' to='" + mucRoom + "' id='mkmod'>" + mucAdmin + "<item nick='conv' role='moderator'/></query></iq>")
		expectStanza(t, bob, "id='mkmod'", "type='result'")
		poll("may moderate", `(async () => { const r = await vt.api.rooms.get('`+mucRoom+`'); return !!r && !!(await r.canModerateMessages()); })()`)
		if ok, err := evalBool(`(async () => { const r = await vt.api.rooms.get('` + mucRoom + `');
			const m = r.messages.findWhere({body: 'before converse came'});
			await r.retractOtherMessage(m, 'off topic');
			return m.get('moderated') === 'retracted'; })()`); err != nil || !ok {
			t.Fatalf("retracting bob's line from Converse (refused: %v): %v", !ok, err)
		}
		expectStanza(t, bob, "from='"+mucRoom+"'", "<retract xmlns='urn:xmpp:message-retract:1' id='", "by='"+mucRoom+"/conv'", "<reason>off topic</reason>")
		poll("retracted line gone from the screen", `!document.querySelector('converse-root').innerText.includes('before converse came')`)
		// conv retracts its own line (XEP-0424); the room keeps a tombstone in its archive.
		if ok, err := evalBool(`(async () => { const r = await vt.api.rooms.get('` + mucRoom + `');
			const m = r.messages.findWhere({body: 'hello from the browser'});
			await r.retractOwnMessage(m); return true; })()`); err != nil || !ok {
			t.Fatalf("retracting conv's own line: %v", err)
		}
		expectStanza(t, bob, "from='"+mucRoom+"/conv'", "urn:xmpp:message-retract:1", "retracted a message")
		bob.Send("<iq type='set' to='" + mucRoom + "' id='arch'><query xmlns='urn:xmpp:mam:2'/></iq>")
		arch, err := bob.ReadUntil("id='arch'", 10*time.Second)
		if err != nil || strings.Contains(arch, "hello from the browser") || strings.Contains(arch, "before converse came") ||
			strings.Count(arch, "<retracted xmlns='urn:xmpp:message-retract:1'") != 2 {
			t.Fatalf("the room's archive after both retractions (%v):\n%s", err, arch)
		}
		// Converse keeps the room it joined as a bookmark, with max_items "max" (our PEP
		// advertises #config-node-max; without it Converse asks for 9999 and is refused).
		if ok, err := evalBool(`(async () => { const r = await vt.api.rooms.get('` + mucRoom + `'); await vt.api.bookmarks.set({jid: '` + mucRoom + `', name: 'coven', nick: 'conv', autojoin: true}); return true; })()`); err != nil || !ok {
			t.Fatalf("bookmarking the room: %v", err)
		}
		bob.Send("<iq type='get' id='bm' to='conv@localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1'/></pubsub></iq>")
		if got := expectStanza(t, bob, "id='bm'"); !strings.Contains(got, "type='error'") {
			t.Fatalf("bob read conv's bookmarks, which are private (whitelist): %s", got)
		}
		// Converse's ad-hoc commands (XEP-0050) list the XEP-0401 contact invitation for conv,
		// a plain user, and running it returns the link in an invitation form.
		inv, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`(async () => {
			const cmds = await vt.api.adhoc.getCommands('localhost');
			const c = cmds.find(c => c.node === 'urn:xmpp:invite#invite');
			if (!c) return 'no command among ' + JSON.stringify(cmds);
			return JSON.stringify(await vt.api.adhoc.fetchCommandForm('localhost', c.node)); })()`, chromedp.EvalAwaitPromise))
		if err != nil || !strings.Contains(inv, "xmpp:conv@localhost?roster;preauth=") || !strings.Contains(inv, "urn:xmpp:invite#invitation") {
			t.Fatalf("the contact invitation through Converse's ad-hoc commands (%v): %s", err, inv)
		}
		// conv's own second session reads it back.
		conv2 := srv.LoginPlain(t, "conv", "conv secret", "check")
		deadline := time.Now().Add(20 * time.Second)
		for i := 0; ; i++ {
			id := fmt.Sprintf("bm%d", i)
			conv2.Send("<iq type='get' id='" + id + "'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1'/></pubsub></iq>")
			got := expectStanza(t, conv2, "id='"+id+"'")
			if strings.Contains(got, "<item id='"+mucRoom+"'>") && strings.Contains(got, "autojoin") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("conv's bookmark never reached PEP: %s", got)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil || len(png) < 1000 {
		t.Fatalf("screenshot: %v (%d bytes)", err, len(png))
	}
	shot := filepath.Join(os.TempDir(), "vireo-converse-"+transport+".png")
	if err := os.WriteFile(shot, png, 0o644); err == nil {
		t.Logf("screenshot of the chat: %s", shot)
	}
	if err := slix.Wait(); err != nil {
		t.Fatalf("slixmpp: %v\n%s", err, slixOut.String())
	}
}

// TestBrowserConverseResume: Converse.js over WebSocket loses its TCP connection (a proxy
// resets it, as a network change would) while bob writes to it. It reconnects by itself
// and resumes its XEP-0198 session: what bob sent meanwhile arrives, each message once,
// and bob never sees conv go offline.
func TestBrowserConverseResume(t *testing.T) {
	dir := needNodePackage(t, "converse.js")
	chrome := needChromium(t)
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	srv.AddUser(t, "conv", "conv secret")
	srv.AddUser(t, "bob", "secret")
	srv.Befriend(t, "conv", "bob", "Bob")
	proxy := newCutProxy(t, srv.WebTLSAddr())
	_, pport, _ := net.SplitHostPort(proxy.Addr())
	bob := srv.LoginPlain(t, "bob", "secret", "pc")
	bob.Send("<presence/>")

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	b := openConverse(t, ctx, dir, chrome, "?ws="+url.QueryEscape("wss://localhost:"+pport+"/xmpp-websocket"), nil)
	b.poll("logged in", `!!(window.vt && window.vt.api.connection.connected())`)
	b.poll("stream management", `window.xlog.some(l => l.startsWith('IN <enabled') && l.includes('resume="true"'))`)
	if _, err := bob.ReadUntil("from='conv@localhost/", 30*time.Second); err != nil {
		t.Fatalf("bob never saw conv online: %v; %s", err, b.state())
	}
	if ok, err := b.eval(`(async () => { await vt.api.chats.open('bob@localhost', {}, true); return true; })()`); err != nil || !ok {
		t.Fatalf("opening the chat with bob: %v", err)
	}

	// Binds are counted from here: under load Converse may log in again before the cut
	// (its own connection timeouts), which is not what this test is about.
	cutAt, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](`window.xlog.length`))
	if err != nil {
		t.Fatal(err)
	}
	proxy.Cut()
	for i := 1; i <= 3; i++ {
		bob.Send(fmt.Sprintf("<message to='conv@localhost' type='chat' id='w%d'><body>while away %d</body></message>", i, i))
	}
	b.poll("resumed", `window.xlog.some(l => l.startsWith('IN <resumed'))`)
	b.poll("the messages sent while away, once each", `(async () => { const c = await vt.api.chats.get('bob@localhost');
		const bodies = c.messages.pluck('body');
		return [1, 2, 3].every(i => bodies.filter(b => b === 'while away ' + i).length === 1); })()`)
	if n, err := chromedp.Run(b.ctx, chromedp.Evaluate[int](fmt.Sprintf(`window.xlog.slice(%d).filter(l => l.startsWith('OUT <bind') ||
		l.startsWith('OUT <iq') && l.includes('<bind xmlns="urn:ietf:params:xml:ns:xmpp-bind"')).length`, cutAt))); err != nil || n != 0 {
		t.Fatalf("Converse bound %d times after the cut (%v): the reconnection did not resume; %s", n, err, b.state())
	}
	// bob saw no unavailable presence from conv.
	bob.Send("<iq type='get' id='sync'><ping xmlns='urn:xmpp:ping'/></iq>")
	got, err := bob.ReadUntil("id='sync'", 10*time.Second)
	if err != nil || strings.Contains(got, "type='unavailable'") {
		t.Fatalf("bob (err %v) saw conv go offline:\n%s", err, got)
	}
}

// TestBrowserConverseGuest: Converse.js in its anonymous mode logs in as a guest (SASL
// ANONYMOUS) over WebSocket, chats with a user of the host both ways, and logs out; the
// guest's account is gone then.
func TestBrowserConverseGuest(t *testing.T) {
	dir := needNodePackage(t, "converse.js")
	chrome := needChromium(t)
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, Anonymous: true})
	srv.AddUser(t, "alice", "secret")
	alice := srv.LoginPlain(t, "alice", "secret", "desk")
	alice.Send("<presence/>")
	alice.Expect("<presence")
	_, wport, _ := net.SplitHostPort(srv.WebTLSAddr())

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	b := openConverse(t, ctx, dir, chrome, "?guest&ws="+url.QueryEscape("wss://localhost:"+wport+"/xmpp-websocket"), nil)
	b.poll("logged in as a guest", `!!(window.vt && window.vt.api.connection.connected() && (vt.api.connection.get().jid || '').includes('@'))`)
	guest, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](`vt.api.connection.get().jid`))
	if err != nil || !strings.HasSuffix(strings.Split(guest, "/")[0], "@localhost") {
		t.Fatalf("the guest's JID: %q, %v; %s", guest, err, b.state())
	}
	bare := strings.Split(guest, "/")[0]
	if ok, err := b.eval(`(async () => { const c = await vt.api.chats.open('alice@localhost', {}, true);
		await c.sendMessage({body: 'a question from the web'}); return true; })()`); err != nil || !ok {
		t.Fatalf("sending to alice: %v; %s", err, b.state())
	}
	got, err := alice.ReadUntil("a question from the web", 30*time.Second)
	if err != nil || !strings.Contains(got, "from='"+bare+"/") {
		t.Fatalf("alice got (%v): %s", err, got)
	}
	alice.Send("<message to='" + bare + "' type='chat' id='ans'><body>an answer from the desk</body></message>")
	b.poll("alice's answer in the chat", `(async () => { const c = await vt.api.chats.get('alice@localhost');
		return c.messages.pluck('body').includes('an answer from the desk'); })()`)
	if _, err := srv.Store.Accounts().Get(bare); err != nil {
		t.Fatalf("the guest's account while logged in: %v", err)
	}
	if _, err := chromedp.Run(b.ctx, chromedp.Evaluate[any](`vt.api.user.logout()`, chromedp.EvalAwaitPromise)); err != nil {
		t.Fatalf("logout: %v", err)
	}
	waitGone(t, srv, bare)
}

func query(transport string) string {
	if transport == "bosh" {
		return "?bosh"
	}
	return ""
}

// converseBrowser is Converse.js in headless Chromium, loaded from a page the test serves
// on its own origin.
type converseBrowser struct {
	t    *testing.T
	ctx  context.Context
	more func() string // what else a failure shows
}

// openConverse serves conversePage and Converse's files, starts Chromium and opens the page
// with query (the connection method).
func openConverse(t *testing.T, ctx context.Context, dir, chrome, query string, more func() string) *converseBrowser {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/dist/", http.StripPrefix("/dist/", http.FileServer(http.Dir(filepath.Join(dir, "node_modules", "converse.js", "dist")))))
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write([]byte(conversePage))
	})
	page := httptest.NewServer(mux)
	t.Cleanup(page.Close)
	_, pagePort, _ := net.SplitHostPort(page.Listener.Addr().String())

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chrome), chromedp.NoSandbox,
		chromedp.WindowSize(1280, 800),
		// The test CA is not in Chromium's store; the certificate is checked by every other
		// client test.
		chromedp.Flag("ignore-certificate-errors", true))
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	if _, err := chromedp.Run(bctx, chromedp.Navigate("http://localhost:"+pagePort+"/"+query)); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	if more == nil {
		more = func() string { return "" }
	}
	return &converseBrowser{t: t, ctx: bctx, more: more}
}

// eval runs js (an expression, or an async function's promise) and returns its truth.
func (b *converseBrowser) eval(js string) (bool, error) {
	return chromedp.Run(b.ctx, chromedp.Evaluate[bool](js, chromedp.EvalAwaitPromise))
}

// state is what a failing test shows: the page's text and the last of Converse's stream.
func (b *converseBrowser) state() string {
	text, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`JSON.stringify({api: !!window.vt,
		connected: !!(window.vt && window.vt.api.connection.connected()), text: document.body.innerText})`))
	xlog, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`(window.xlog || []).slice(-40).join("\n")`))
	return fmt.Sprintf("page says:\n%s\n%s\nConverse's stream, last 40:\n%s", text, b.more(), xlog)
}

// poll waits up to 45 s for js to be true.
func (b *converseBrowser) poll(what, js string) {
	b.t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for {
		ok, err := b.eval(js)
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s: not seen (last error %v); %s", what, err, b.state())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// lockedBuf collects a child process's output while the test reads it.
type lockedBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func waitOutput(t *testing.T, b *lockedBuf, substr string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(b.String(), substr) {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %q; output:\n%s", substr, b.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
