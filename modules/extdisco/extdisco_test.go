package extdisco

import (
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// TestCredentials: the TURN REST API pair, against values computed apart from this code
// (Python's hmac and base64 over the same username and secret).
func TestCredentials(t *testing.T) {
	for _, tc := range []struct {
		secret, who string
		exp         int64
		user, pass  string
	}{
		{"north", "alice@example.org", 1700000000, "1700000000:alice@example.org", "PZI+z4ibN1IQ7v4pzuL4fO8lnhI="},
	} {
		u, p := Credentials(tc.secret, tc.who, time.Unix(tc.exp, 0))
		if u != tc.user || p != tc.pass {
			t.Errorf("Credentials(%q, %q, %d) = %q, %q; want %q, %q", tc.secret, tc.who, tc.exp, u, p, tc.user, tc.pass)
		}
	}
}

// fakeReg hands the module its config and records what it registers.
type fakeReg struct {
	module.Registrar
	cfg      Config
	hosts    map[string]Config
	features []string
	iqs      map[string]module.IQHandler
}

func (r *fakeReg) Config(v any) error     { *v.(*Config) = r.cfg; return nil }
func (r *fakeReg) Logger() zerolog.Logger { return zerolog.Nop() }
func (r *fakeReg) Domains() []string      { return []string{"example.org"} }
func (r *fakeReg) Feature(ns string)      { r.features = append(r.features, ns) }
func (r *fakeReg) IQ(_ module.IQType, _, local string, h module.IQHandler) {
	if r.iqs == nil {
		r.iqs = map[string]module.IQHandler{}
	}
	r.iqs[local] = h
}

// TestProvision: a config an operator could get wrong is refused at start, with the
// service it is about; no services means nothing registered.
func TestProvision(t *testing.T) {
	stun := Service{Type: "stun", Host: "stun.example.org", Port: 3478}
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr string
		on      bool
	}{
		{name: "none", cfg: Config{}},
		{name: "one", cfg: Config{Services: []Service{stun}}, on: true},
		{name: "no host", cfg: Config{Services: []Service{{Type: "turn"}}}, wantErr: "services[0]"},
		{name: "no type", cfg: Config{Services: []Service{stun, {Host: "x"}}}, wantErr: "services[1]"},
		{name: "port", cfg: Config{Services: []Service{{Type: "turn", Host: "x", Port: 70000}}}, wantErr: "port"},
		{name: "transport", cfg: Config{Services: []Service{{Type: "turn", Host: "x", Transport: "sctp"}}}, wantErr: "transport"},
		{name: "ttl", cfg: Config{TTL: "soon", Services: []Service{stun}}, wantErr: "ttl"},
		{name: "negative ttl", cfg: Config{TTL: "-1h", Services: []Service{stun}}, wantErr: "ttl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &fakeReg{cfg: tc.cfg}
			err := new(Mod).Provision(r)
			switch {
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("err = %v, want one naming %q", err, tc.wantErr)
			case tc.wantErr == "" && err != nil:
				t.Fatal(err)
			case tc.wantErr == "" && tc.on != (len(r.features) == 1 && len(r.iqs) == 2):
				t.Fatalf("on = %v: features %v, handlers %d", tc.on, r.features, len(r.iqs))
			}
		})
	}
}

// fakeCtx records the answer.
type fakeCtx struct {
	module.Context
	reply []byte
	err   *stanza.Error
}

func (c *fakeCtx) Reply(_ *module.Packet, payload []byte)  { c.reply = append([]byte(nil), payload...) }
func (c *fakeCtx) Error(_ *module.Packet, e *stanza.Error) { c.err = e }
func (c *fakeCtx) Now() time.Time                          { return time.Unix(1700000000, 0) }

const fuzzHeader = "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='d' version='1.0'>"

// FuzzQuery: whatever a client puts in an IQ to either handler, the answer is one error
// or one well-formed <services/> or <credentials/> that lists only configured services.
func FuzzQuery(f *testing.F) {
	r := &fakeReg{cfg: Config{TTL: "1h", Services: []Service{
		{Type: "stun", Host: "stun.example.org", Port: 3478, Transport: "udp"},
		{Type: "turn", Host: "turn.example.org", Port: 3478, Transport: "udp", Secret: "s", Name: "a & b"},
		{Type: "turns", Host: "turn.example.org", Port: 5349, Transport: "tcp", Username: "u", Password: "p<'\""},
	}}}
	m := new(Mod)
	if err := m.Provision(r); err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{
		"<services xmlns='urn:xmpp:extdisco:2'/>",
		"<services xmlns='urn:xmpp:extdisco:2' type='turn'/>",
		"<services xmlns='urn:xmpp:extdisco:2' type='&amp;'/>",
		"<credentials xmlns='urn:xmpp:extdisco:2'><service host='turn.example.org' type='turn'/></credentials>",
		"<credentials xmlns='urn:xmpp:extdisco:2'><service host='TURN.example.org' type='turns' port='5349'/></credentials>",
		"<credentials xmlns='urn:xmpp:extdisco:2'><service host='turn.example.org'/></credentials>",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	from, _ := jid.Parse("alice@d/phone")
	bob, _ := jid.Parse("bob@d")
	f.Fuzz(func(t *testing.T, data []byte, toUser bool) {
		to := ""
		if toUser {
			to = " to='bob@d'"
		}
		raw := "<iq type='get' id='q'" + to + ">" + string(data) + "</iq>"
		sc := xmlstream.NewScanner()
		var xs xmlstream.State
		xs.Reset(xmlstream.KindClient, nil)
		defer xs.Release()
		in := []byte(fuzzHeader + raw)
		var stanzaRaw []byte
		for len(in) > 0 {
			ev, n, err := sc.Next(&xs, in)
			if err != nil || ev.Kind == xmlstream.EventNone {
				return
			}
			in = in[n:]
			if ev.Kind == xmlstream.EventElement {
				stanzaRaw = append([]byte(nil), ev.Stanza.Raw...)
				break
			}
		}
		if stanzaRaw == nil {
			return
		}
		pk := &module.Packet{Raw: stanzaRaw, Kind: module.KindIQ, Type: "get", ID: "q", From: from}
		if toUser {
			pk.To = bob
		}
		for local, h := range r.iqs {
			c := &fakeCtx{}
			h(c, pk)
			if (c.reply == nil) == (c.err == nil) {
				t.Fatalf("%s: want one answer, got reply %q and error %v", local, c.reply, c.err)
			}
			if c.reply == nil {
				continue
			}
			if toUser {
				t.Fatalf("%s: answered a query to a user: %q", local, c.reply)
			}
			e, err := xmlstream.ParseElement(c.reply, ns.Client)
			if err != nil {
				t.Fatalf("%s: answer is not well-formed: %v: %q", local, err, c.reply)
			}
			if string(e.Name()) != local || string(e.NS()) != NS {
				t.Fatalf("%s: answer is <%s xmlns=%s>", local, e.Name(), e.NS())
			}
			for it := e.Children(); ; {
				s, ok := it.Next()
				if !ok {
					break
				}
				host, _ := s.AppendAttr(nil, "host")
				if h := string(host); h != "stun.example.org" && h != "turn.example.org" {
					t.Fatalf("%s: a service that is not configured: %q", local, s.Raw())
				}
			}
		}
	})
}

// TestReconfigure: a reload rotates a TURN secret and the lifetime of credentials; a bad
// service is refused and the old list stays.
func TestReconfigure(t *testing.T) {
	turn := Service{Type: "turn", Host: "turn.example.org", Port: 3478, Secret: "one"}
	m := new(Mod)
	if err := m.Provision(&fakeReg{cfg: Config{Services: []Service{turn}}}); err != nil {
		t.Fatal(err)
	}
	with := func(c Config) module.Reconfig {
		return module.Reconfig{Decode: func(v any) error { *v.(*Config) = c; return nil }}
	}
	if _, err := m.Reconfigure(with(Config{Services: []Service{{Type: "turn"}}})); err == nil {
		t.Fatal("a service without a host accepted")
	}
	turn.Secret = "two"
	apply, err := m.Reconfigure(with(Config{TTL: "1h", Services: []Service{turn}}))
	if err != nil {
		t.Fatal(err)
	}
	if m.set.Load().All().services[0].Secret != "one" {
		t.Fatal("applied before apply")
	}
	apply()
	if st := m.set.Load().All(); st.services[0].Secret != "two" || st.ttl != time.Hour || !m.offered {
		t.Fatalf("after the reload: %+v", st)
	}
}

// TestHostServices: a host's table gives its users its own STUN/TURN servers; a server
// with services on one host only offers the queries; the others get an empty list.
func TestHostServices(t *testing.T) {
	r := &fakeReg{hosts: map[string]Config{"corp.example": {Services: []Service{{Type: "turn", Host: "turn.corp.example", Port: 3478}}}}}
	m := new(Mod)
	if err := m.Provision(r); err != nil {
		t.Fatal(err)
	}
	if r.iqs["services"] == nil {
		t.Fatal("services on one host only: the query is not registered")
	}
	ask := func(from string) string {
		c := &fakeCtx{}
		f, _ := jid.Parse(from)
		r.iqs["services"](c, &module.Packet{Raw: []byte("<iq type='get' id='s'><services xmlns='urn:xmpp:extdisco:2'/></iq>"), Kind: module.KindIQ, Type: "get", ID: "s", From: f})
		return string(c.reply)
	}
	if got := ask("dan@corp.example/pc"); !strings.Contains(got, "turn.corp.example") {
		t.Fatalf("corp.example's user: %s", got)
	}
	if got := ask("alice@example.org/pc"); strings.Contains(got, "turn.corp.example") {
		t.Fatalf("example.org's user: %s", got)
	}
}

func (r *fakeReg) HostConfig() ([]string, func(string, any) error) {
	var hosts []string
	for h := range r.hosts {
		hosts = append(hosts, h)
	}
	return hosts, func(h string, v any) error { *v.(*Config) = r.hosts[h]; return nil }
}
func (r *fakeReg) HostInfoForms(string, map[string]module.Form) {}
