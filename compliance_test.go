package main

import (
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/bench/loadgen"
	"github.com/vireo-im/vireo/engine/config"
)

// xmlConn is a raw client stream: what it read past an answer stays for the next one.
type xmlConn struct {
	t    *testing.T
	c    net.Conn
	rest string
}

func (x *xmlConn) send(s string) {
	x.t.Helper()
	if _, err := io.WriteString(x.c, s); err != nil {
		x.t.Fatalf("write: %v", err)
	}
}

// until returns everything up to and including the first substr.
func (x *xmlConn) until(substr string) string {
	x.t.Helper()
	p := make([]byte, 8192)
	x.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for !strings.Contains(x.rest, substr) {
		n, err := x.c.Read(p)
		x.rest += string(p[:n])
		if err != nil && !strings.Contains(x.rest, substr) {
			x.t.Fatalf("waiting for %q: %v; read %q", substr, err, x.rest)
		}
	}
	i := strings.Index(x.rest, substr) + len(substr)
	got := x.rest[:i]
	x.rest = x.rest[i:]
	return got
}

// iq sends an IQ with id and returns the whole answer.
func (x *xmlConn) iq(id, raw string) string {
	x.t.Helper()
	x.send(raw)
	got := x.until("id='" + id + "'")
	got = got[strings.LastIndex(got, "<iq"):]
	tail := x.until(">")
	if !strings.HasSuffix(tail, "/>") {
		tail += x.until("</iq>")
	}
	return got + tail
}

// TestComplianceSuites checks the server the way first start configures it against the
// XMPP Compliance Suites 2023 (XEP-0479) at the Advanced Server level, Core, Web, IM and
// Mobile, and against what the Conversations compliance tester (compliance.conversations.im,
// the list most operators check) adds. Each row is a requirement and what a client sees of
// it: advertised where the XEP says, and the basic operation answered. Only what a real
// operator must choose is added to the generated config: the loopback ports, one
// external component (XEP-0114 needs its secret), an abuse address (XEP-0157) and a TURN
// server (XEP-0215).
func TestComplianceSuites(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	vireo, ctl := buildBinaries(t)
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "vireo.toml")
	if out, err := exec.Command(vireo, "-config", cfgPath, "-t").CombinedOutput(); err != nil {
		t.Fatalf("vireo -t: %v\n%s", err, out)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	domain := cfg.Domains[0]
	plain, direct, web, webTLS, comp := freePort(t), freePort(t), freePort(t), freePort(t), freePort(t)
	b, _ := os.ReadFile(cfgPath)
	s := string(b)
	for _, r := range [][2]string{
		{`listen = ["[::]:5222"]`, fmt.Sprintf(`listen = ["127.0.0.1:%d"]`, plain)},
		{`tls_listen = ["[::]:5223"]`, fmt.Sprintf(`tls_listen = ["127.0.0.1:%d"]`, direct)},
		{`listen = ["[::]:5280"]`, fmt.Sprintf(`listen = ["127.0.0.1:%d"]`, web)},
		{`tls_listen = ["[::]:5443"]`, fmt.Sprintf(`tls_listen = ["127.0.0.1:%d"]`, webTLS)},
		{`listen = ["127.0.0.1:5347"]`, fmt.Sprintf("listen = [\"127.0.0.1:%d\"]\n[[component.allow]]\ndomain = \"bot.%s\"\nsecret = \"s3cret-for-tests\"", comp, domain)},
	} {
		if !strings.Contains(s, r[0]) {
			t.Fatalf("generated config has no %s", r[0])
		}
		s = strings.Replace(s, r[0], r[1], 1)
	}
	// What only the operator knows: where to report abuse, and the TURN server for calls.
	s += "\n[modules.upload]\nlisten = \"127.0.0.1:0\"\n[modules.proxy65]\nlisten = \"127.0.0.1:0\"\n" +
		"[modules.contact]\nabuse = [\"xmpp:abuse@" + domain + "\"]\n" +
		"[[modules.extdisco.services]]\ntype = \"turn\"\nhost = \"turn." + domain + "\"\nport = 3478\ntransport = \"udp\"\nsecret = \"coturn-secret\"\n"
	os.WriteFile(cfgPath, []byte(s), 0o640)
	_, lines := startLogged(t, vireo, cfgPath)
	waitFor(t, lines, "vireo is serving")
	for _, u := range []string{"alice", "bob"} {
		if out, err := exec.Command(ctl, "-config", cfgPath, "adduser", u+"@"+domain, "pw "+u).CombinedOutput(); err != nil {
			t.Fatalf("adduser: %v\n%s", err, out)
		}
	}
	tlsCfg := &tls.Config{ServerName: domain, InsecureSkipVerify: true}
	header := "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='" + domain + "' version='1.0'>"

	// A client over STARTTLS: the features at each step, then a bound session.
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", plain))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	x := &xmlConn{t: t, c: c}
	x.send(header)
	preTLS := x.until("</stream:features>")
	x.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	x.until("<proceed")
	x.until("/>")
	tc := tls.Client(c, tlsCfg)
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	x.c = tc
	x.send(header)
	preAuth := x.until("</stream:features>")
	x.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + base64.StdEncoding.EncodeToString([]byte("\x00alice\x00pw alice")) + "</auth>")
	x.until("<success")
	x.send(header)
	postAuth := x.until("</stream:features>")
	x.iq("b", "<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>compliance</resource></bind></iq>")
	x.send("<presence/>")
	sm := ""
	if strings.Contains(postAuth, "urn:xmpp:sm:3") {
		x.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
		got := x.until("<enabled ") // after what the initial presence brought
		sm = got[strings.LastIndex(got, "<enabled "):] + x.until("/>")
	}

	disco := func(to, id string) string {
		return x.iq(id, "<iq type='get' id='"+id+"' to='"+to+"'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	}
	server := disco(domain, "d1")
	account := x.iq("d2", "<iq type='get' id='d2' to='alice@"+domain+"'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	items := x.iq("d3", "<iq type='get' id='d3' to='"+domain+"'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
	services := map[string]string{} // service JID -> its disco#info
	for _, m := range regexp.MustCompile(`<item jid='([^']+)'`).FindAllStringSubmatch(items, -1) {
		services[m[1]] = disco(m[1], "s-"+m[1])
	}
	serviceWith := func(identity, feature string) string {
		for j, info := range services {
			if strings.Contains(info, identity) && strings.Contains(info, feature) {
				return j
			}
		}
		return ""
	}
	has := func(where string, subs ...string) bool {
		for _, s := range subs {
			if !strings.Contains(where, s) {
				return false
			}
		}
		return true
	}
	feature := func(v string) string { return "<feature var='" + v + "'/>" }

	// A room, as a client creates one, and what its disco#info says.
	muc := serviceWith("category='conference' type='text'", feature("http://jabber.org/protocol/muc"))
	room := ""
	if muc != "" {
		x.send("<presence to='compliance@" + muc + "/alice'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
		x.until("status code='110'")
		room = disco("compliance@"+muc, "r1")
	}
	roster := x.iq("ro", "<iq type='get' id='ro'><query xmlns='jabber:iq:roster'/></iq>")
	vcard := x.iq("vc", "<iq type='get' id='vc'><vCard xmlns='vcard-temp'/></iq>")
	private := x.iq("pr", "<iq type='get' id='pr'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query></iq>")
	mam := x.iq("ma", "<iq type='set' id='ma'><query xmlns='urn:xmpp:mam:2'/></iq>")
	block := x.iq("bl", "<iq type='get' id='bl'><blocklist xmlns='urn:xmpp:blocking'/></iq>")
	publish := x.iq("pe", "<iq type='set' id='pe'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='urn:xmpp:avatar:metadata'><item id='x'>"+
		"<metadata xmlns='urn:xmpp:avatar:metadata'/></item></publish><publish-options><x xmlns='jabber:x:data' type='submit'>"+
		"<field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>"+
		"<field var='pubsub#access_model'><value>open</value></field></x></publish-options></pubsub></iq>")
	upload := serviceWith("category='store' type='file'", feature("urn:xmpp:http:upload:0"))
	slot := ""
	if upload != "" {
		slot = x.iq("up", "<iq type='get' id='up' to='"+upload+"'><request xmlns='urn:xmpp:http:upload:0' filename='a.txt' size='10' content-type='text/plain'/></iq>")
	}
	proxy := serviceWith("category='proxy' type='bytestreams'", feature("http://jabber.org/protocol/bytestreams"))
	streamhost := ""
	if proxy != "" {
		streamhost = x.iq("px", "<iq type='get' id='px' to='"+proxy+"'><query xmlns='http://jabber.org/protocol/bytestreams'/></iq>")
	}
	extdisco := x.iq("ex", "<iq type='get' id='ex' to='"+domain+"'><services xmlns='urn:xmpp:extdisco:2'/></iq>")

	// Direct TLS (XEP-0368).
	dc, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", direct), tlsCfg)
	directFeatures := ""
	if err == nil {
		dx := &xmlConn{t: t, c: dc}
		dx.send(header)
		directFeatures = dx.until("</stream:features>")
		dc.Close()
	}
	// An external component (XEP-0114).
	handshake := ""
	if cc, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", comp)); err == nil {
		cx := &xmlConn{t: t, c: cc}
		cx.send("<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='bot." + domain + "'>")
		h := cx.until(">")
		h += cx.until(">")
		if m := regexp.MustCompile(`id='([^']+)'`).FindStringSubmatch(h); m != nil {
			sum := sha1.Sum([]byte(m[1] + "s3cret-for-tests"))
			cx.send("<handshake>" + hex.EncodeToString(sum[:]) + "</handshake>")
			handshake = cx.until("handshake")
			handshake += cx.until(">")
		}
		cc.Close()
	}
	// The web: WebSocket (RFC 7395) and BOSH (XEP-0206) logins, and XEP-0156 host-meta.
	wsCfg := loadgen.Config{Addr: fmt.Sprintf("127.0.0.1:%d", webTLS), Domain: domain, Mode: loadgen.DirectTLS, WSPath: "/xmpp-websocket",
		Mechanism: "SCRAM-SHA-256", TLS: tlsCfg, Timeout: 10 * time.Second}
	wsErr := func() error {
		ws, err := loadgen.Dial(wsCfg, "bob", "pw bob", "web")
		if err == nil {
			ws.Close()
		}
		return err
	}()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsCfg}}
	httpBody := func(method, url, body string) string {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		resp, err := hc.Do(req)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return string(out)
	}
	base := fmt.Sprintf("https://127.0.0.1:%d", webTLS)
	hostMeta := httpBody("GET", base+"/.well-known/host-meta", "")
	bosh := httpBody("POST", base+"/http-bind", "<body rid='1' to='"+domain+"' xml:lang='en' wait='10' hold='1' ver='1.6' xmpp:version='1.0' "+
		"xmlns='http://jabber.org/protocol/httpbind' xmlns:xmpp='urn:xmpp:xbosh'/>")

	type row struct {
		suite, requirement, xep string
		ok                      bool
	}
	rows := []row{
		{"Core", "Core features: TLS required, SCRAM, SASL2", "RFC 6120", has(preTLS, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/>") &&
			has(preAuth, "<mechanism>SCRAM-SHA-256</mechanism>", "<authentication xmlns='urn:xmpp:sasl:2'>")},
		{"Core", "TLS", "RFC 7590", tc.ConnectionState().Version >= tls.VersionTLS12},
		{"Core", "Direct TLS", "XEP-0368", has(directFeatures, "<mechanism>SCRAM-SHA-256</mechanism>")},
		{"Core", "Feature discovery", "XEP-0030", has(server, "<identity category='server' type='im'", feature("http://jabber.org/protocol/disco#info"))},
		{"Core", "Feature broadcasts (caps in stream features)", "XEP-0115", has(postAuth, "<c xmlns='http://jabber.org/protocol/caps'", "ver='")},
		{"Core", "Server extensibility (components)", "XEP-0114", has(handshake, "<handshake")},
		{"Core", "Event publishing (PEP)", "XEP-0163", has(account, "<identity category='pubsub' type='pep'") && has(publish, "type='result'")},
		{"Web", "Web connection mechanisms: WebSocket", "RFC 7395", wsErr == nil},
		{"Web", "Web connection mechanisms: BOSH", "XEP-0206", has(bosh, "sid='", "stream:features")},
		{"Web", "Connection mechanism discovery", "XEP-0156", has(hostMeta, "urn:xmpp:alt-connections:websocket", "urn:xmpp:alt-connections:xbosh")},
		{"IM", "Core features: roster", "RFC 6121", has(roster, "type='result'", "<query xmlns='jabber:iq:roster'")},
		{"IM", "User avatar compatibility", "XEP-0398", has(server, feature("urn:xmpp:pep-vcard-conversion:0"))},
		{"IM", "vcard-temp", "XEP-0054", has(server, feature("vcard-temp")) && has(vcard, "type='result'")},
		{"IM", "Outbound message synchronization", "XEP-0280", has(server, feature("urn:xmpp:carbons:2"))},
		{"IM", "User blocking", "XEP-0191", has(server, feature("urn:xmpp:blocking")) && has(block, "<blocklist xmlns='urn:xmpp:blocking'")},
		{"IM", "Group chat", "XEP-0045", muc != "" && has(room, feature("http://jabber.org/protocol/muc"))},
		{"IM", "Advanced group chat: room archives", "XEP-0313 (MUC)", has(room, feature("urn:xmpp:mam:2"))},
		{"IM", "Persistent storage of private data via PubSub", "XEP-0223", has(account, feature("http://jabber.org/protocol/pubsub#publish-options"))},
		{"IM", "Private XML storage", "XEP-0049", has(private, "type='result'", "<query xmlns='jabber:iq:private'>")},
		{"IM", "Stream management", "XEP-0198", has(sm, "<enabled xmlns='urn:xmpp:sm:3'", "resume='true'")},
		{"IM", "History storage / retrieval", "XEP-0313", has(account, feature("urn:xmpp:mam:2")) && has(mam, "<fin xmlns='urn:xmpp:mam:2'")},
		{"IM", "File upload", "XEP-0363", has(slot, "<put url='https://", "<get url='https://")},
		{"Mobile", "Stream management", "XEP-0198", has(postAuth, "<sm xmlns='urn:xmpp:sm:3'/>")},
		{"Mobile", "Client state indication", "XEP-0352", has(postAuth, "<csi xmlns='urn:xmpp:csi:0'/>")},
		{"Mobile", "Third-party push notifications", "XEP-0357", has(account, feature("urn:xmpp:push:0"))},
		{"Conversations", "Roster versioning", "XEP-0237", has(postAuth, "<ver xmlns='urn:xmpp:features:rosterver'/>")},
		{"Conversations", "SOCKS5 bytestreams proxy", "XEP-0065", has(streamhost, "<streamhost jid='"+proxy+"'", "port='")},
		{"Conversations", "OMEMO (PEP with publish-options, open access)", "XEP-0384", has(publish, "type='result'")},
		{"Conversations", "STUN/TURN discovery for calls", "XEP-0215", has(server, feature("urn:xmpp:extdisco:2")) && has(extdisco, "type='result'")},
		{"Conversations", "Abuse contact address", "XEP-0157", has(server, "<field var='abuse-addresses'")},
		{"Conversations", "Fast reconnects (SASL2, Bind2, FAST)", "XEP-0388, 0386, 0484", has(preAuth, "<inline><bind xmlns='urn:xmpp:bind:0'>", "<fast xmlns='urn:xmpp:fast:0'>")},
	}
	var report strings.Builder
	report.WriteString("| suite | requirement | provider | met |\n|---|---|---|---|\n")
	for _, r := range rows {
		mark := "yes"
		if !r.ok {
			mark = "**NO**"
			t.Errorf("%s: %s (%s) not met", r.suite, r.requirement, r.xep)
		}
		fmt.Fprintf(&report, "| %s | %s | %s | %s |\n", r.suite, r.requirement, r.xep, mark)
	}
	t.Logf("compliance of the generated configuration:\n%s", report.String())
}
