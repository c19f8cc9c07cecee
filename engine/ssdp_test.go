package engine_test

import (
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"hash"
	"regexp"
	"slices"
	"strings"
	"testing"

	msasl "mellium.im/sasl"

	"github.com/vireo-im/vireo/engine/vireotest"
)

var (
	mechListRe  = regexp.MustCompile(`<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>(.*?)</mechanisms>`)
	sasl2ListRe = regexp.MustCompile(`<authentication xmlns='urn:xmpp:sasl:2'>(.*?)<inline>`)
	mechRe      = regexp.MustCompile(`<mechanism>([^<]+)</mechanism>`)
	cbTypeRe    = regexp.MustCompile(`<channel-binding type=['"]([^'"]+)['"]`)
	saslTextRe  = regexp.MustCompile(`<(challenge|success|failure|additional-data)[^>]*>([^<]*)<`)
)

// ssdpHash is XEP-0474's hash of what the features advertised, computed here from the
// XEP's text: the profile's mechanisms sorted, %x1E between them, then %x1F and the sorted
// channel-binding types when XEP-0440's list was there.
func ssdpHash(t *testing.T, features string, sasl2 bool, h func() hash.Hash) string {
	t.Helper()
	list := mechListRe
	if sasl2 {
		list = sasl2ListRe
	}
	m := list.FindStringSubmatch(features)
	if m == nil {
		t.Fatalf("no mechanism list in %s", features)
	}
	var mechs, cbs []string
	for _, x := range mechRe.FindAllStringSubmatch(m[1], -1) {
		mechs = append(mechs, x[1])
	}
	for _, x := range cbTypeRe.FindAllStringSubmatch(features, -1) {
		cbs = append(cbs, x[1])
	}
	slices.Sort(mechs)
	slices.Sort(cbs)
	s := strings.Join(mechs, "\x1e")
	if strings.Contains(features, "urn:xmpp:sasl-cb:0") {
		s += "\x1f" + strings.Join(cbs, "\x1e")
	}
	d := h()
	d.Write([]byte(s))
	return base64.StdEncoding.EncodeToString(d.Sum(nil))
}

// TestIntegrationSCRAMDowngradeProtection: XEP-0474. The server-first-message of every
// SCRAM login carries h, the hash of the mechanisms and channel bindings this stream
// advertised, in SASL and in SASL2, with and without TLS; mellium's client, which does not
// know the attribute, logs in regardless, and its proof covers h.
func TestIntegrationSCRAMDowngradeProtection(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{RequireTLS: no(), AllowPlain: true})
	srv.AddUser(t, "alice", "secret")
	for _, tc := range []struct {
		name  string
		tls   bool
		sasl2 bool
		mech  msasl.Mechanism
		h     func() hash.Hash
	}{
		{"SASL plain TCP SCRAM-SHA-256", false, false, msasl.ScramSha256, sha256.New},
		{"SASL TLS SCRAM-SHA-1-PLUS", true, false, msasl.ScramSha1Plus, sha1.New},
		{"SASL2 TLS SCRAM-SHA-256-PLUS", true, true, msasl.ScramSha256Plus, sha256.New},
		{"SASL2 plain TCP SCRAM-SHA-1", false, true, msasl.ScramSha1, sha1.New},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r *vireotest.RawConn
			if tc.tls {
				r = srv.DialTLS(t)
			} else {
				r = srv.Dial(t)
			}
			r.Send(srv.Header())
			scramWithSSDP(t, r, r.Expect("</stream:features>"), tc.sasl2, tc.mech, tc.h, "alice", "secret")
		})
	}
}

// scramWithSSDP logs in on r, whose features were features, with mellium's SCRAM client,
// and checks that the server-first-message ends in the h attribute of those features.
func scramWithSSDP(t *testing.T, r *vireotest.RawConn, features string, sasl2 bool, mech msasl.Mechanism, h func() hash.Hash, user, pass string) {
	t.Helper()
	opts := []msasl.Option{msasl.Credentials(func() ([]byte, []byte, []byte) {
		return []byte(user), []byte(pass), nil
	})}
	if tc, ok := r.Conn().(*tls.Conn); ok {
		var mechs []string
		for _, x := range mechRe.FindAllStringSubmatch(features, -1) {
			mechs = append(mechs, x[1])
		}
		opts = append(opts, msasl.TLSState(tc.ConnectionState()), msasl.RemoteMechanisms(mechs...))
	}
	client := msasl.NewClient(mech, opts...)
	_, first, err := client.Step(nil)
	if err != nil {
		t.Fatal(err)
	}
	ns, answer := "urn:ietf:params:xml:ns:xmpp-sasl", "response"
	if sasl2 {
		ns = "urn:xmpp:sasl:2"
		r.Send(authenticate(mech.Name, base64.StdEncoding.EncodeToString(first), userAgent(agentID)))
	} else {
		r.Send("<auth xmlns='" + ns + "' mechanism='" + mech.Name + "'>" + base64.StdEncoding.EncodeToString(first) + "</auth>")
	}
	m := saslTextRe.FindStringSubmatch(r.Expect("</challenge>"))
	if m == nil || m[1] != "challenge" {
		t.Fatalf("no challenge: %v", m)
	}
	serverFirst, err := base64.StdEncoding.DecodeString(m[2])
	if err != nil {
		t.Fatal(err)
	}
	want := ssdpHash(t, features, sasl2, h)
	attrs := strings.Split(string(serverFirst), ",")
	if got := attrs[len(attrs)-1]; got != "h="+want {
		t.Fatalf("server-first %q: last attribute %q, want h=%s", serverFirst, got, want)
	}
	_, final, err := client.Step(serverFirst)
	if err != nil {
		t.Fatal(err)
	}
	r.Send("<" + answer + " xmlns='" + ns + "'>" + base64.StdEncoding.EncodeToString(final) + "</" + answer + ">")
	done := r.Expect("</success>")
	if m = saslTextRe.FindStringSubmatch(done[strings.LastIndex(done, "<success"):]); m == nil {
		t.Fatalf("no server-final in %q", done)
	}
	if sasl2 {
		m = saslTextRe.FindStringSubmatch(done[strings.Index(done, "<additional-data"):])
	}
	serverFinal, _ := base64.StdEncoding.DecodeString(m[2])
	if _, _, err := client.Step(serverFinal); err != nil {
		t.Fatalf("server signature rejected: %v", err)
	}
}
