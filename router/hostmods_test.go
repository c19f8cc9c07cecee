package router_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/vireo-im/vireo/modules/contact"
	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/router/routertest"
	"github.com/vireo-im/vireo/store"
)

// TestHostModules: a host that turns modules off ([vhosts] modules_disabled) serves its
// users and the stanzas addressed to it without them (IQs, hooks, top-level elements,
// stream and Bind2 features, disco#info), while the other hosts keep them; a later
// setting brings them back; a wrong one changes nothing.
func TestHostModules(t *testing.T) {
	e := newEnv(t) // example.org
	if err := e.R.SetDomains([]string{"example.org", "corp.example"}); err != nil {
		t.Fatal(err)
	}
	e.Store.Accounts().Create(store.Account{User: "dan@corp.example"})
	corp := e.On("corp.example")
	alice := e.Bind("alice", "pc")
	dan := corp.Bind("dan", "pc")
	globalVer := e.R.CapsVer()

	for _, bad := range []map[string][]string{
		{"corp.example": {"version", "nope"}},
		{"corp.example": {"roster"}},
		{"corp.example": {"disco"}},
	} {
		if err := e.R.SetHostModules(bad); err == nil {
			t.Fatalf("SetHostModules(%v) accepted", bad)
		}
		if e.R.CapsVerFor("corp.example") != globalVer {
			t.Fatalf("a refused setting changed corp.example's modules")
		}
	}
	if err := e.R.SetHostModules(map[string][]string{"corp.example": {"version", "sid", "csi", "carbons", "mam"}}); err != nil {
		t.Fatal(err)
	}

	// IQs: the host's users get service-unavailable, everyone else an answer.
	version := "<query xmlns='jabber:iq:version'/>"
	dan.Send("<iq type='get' id='v1'>" + version + "</iq>")
	dan.C.Wait(t, "id='v1'", "type='error'", "service-unavailable")
	alice.Send("<iq type='get' id='v2'>" + version + "</iq>")
	alice.C.Wait(t, "id='v2'", "type='result'", "<name>")
	// An IQ to the host itself from a user of another host is the host's to answer.
	alice.Send("<iq type='get' id='v3' to='corp.example'>" + version + "</iq>")
	alice.C.Wait(t, "id='v3'", "service-unavailable")
	dan.Send("<iq type='get' id='v4' to='example.org'>" + version + "</iq>")
	dan.C.Wait(t, "id='v4'", "type='result'")
	// But one that acts on the asking account (MAM's archive, XEP-0077's password) is
	// off when the account's host turned it off, whichever host it is sent to.
	dan.Send("<iq type='set' id='q2' to='example.org'><query xmlns='urn:xmpp:mam:2' queryid='q'/></iq>")
	dan.C.Wait(t, "id='q2'", "service-unavailable")
	dan.Send("<iq type='set' id='c1'><enable xmlns='urn:xmpp:carbons:2'/></iq>")
	dan.C.Wait(t, "id='c1'", "service-unavailable")
	dan.Send("<iq type='set' id='q1'><query xmlns='urn:xmpp:mam:2' queryid='q'/></iq>")
	dan.C.Wait(t, "id='q1'", "service-unavailable")

	// Hooks: the recipient's host decides the inbound ones (XEP-0359's stanza-id).
	alice.Send("<message to='dan@corp.example/pc' type='chat' id='m1'><body>to dan</body></message>")
	if got := dan.C.Wait(t, "to dan"); strings.Contains(got, "stanza-id") {
		t.Fatalf("corp.example stamped a stanza-id without sid: %s", got)
	}
	dan.Send("<message to='alice@example.org/pc' type='chat' id='m2'><body>to alice</body></message>")
	alice.C.Wait(t, "to alice", "<stanza-id", "by='alice@example.org'")

	// Top-level elements and features.
	if e.R.Nonza(dan.S, []byte("<active xmlns='urn:xmpp:csi:0'/>"), []byte("urn:xmpp:csi:0"), []byte("active")) {
		t.Fatal("corp.example took a CSI element")
	}
	if !e.R.Nonza(alice.S, []byte("<active xmlns='urn:xmpp:csi:0'/>"), []byte("urn:xmpp:csi:0"), []byte("active")) {
		t.Fatal("example.org refused a CSI element")
	}
	if f := string(e.R.StreamFeaturesFor("corp.example", module.PostAuth)); strings.Contains(f, "csi") {
		t.Fatalf("corp.example's stream features: %s", f)
	}
	if f := string(e.R.StreamFeaturesFor("example.org", module.PostAuth)); !strings.Contains(f, "urn:xmpp:csi:0") {
		t.Fatalf("example.org's stream features: %s", f)
	}
	if b := e.R.Bind2FeaturesFor("corp.example"); slices.Contains(b, "urn:xmpp:csi:0") || slices.Contains(b, "urn:xmpp:carbons:2") {
		t.Fatalf("corp.example's Bind2 features: %v", b)
	}
	if b := e.R.Bind2FeaturesFor("example.org"); !slices.Contains(b, "urn:xmpp:carbons:2") {
		t.Fatalf("example.org's Bind2 features: %v", b)
	}

	// disco#info and the caps verification string.
	dan.Send("<iq type='get' id='d1' to='corp.example'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	info := dan.C.Wait(t, "id='d1'", "type='result'", "jabber:iq:roster")
	for _, f := range []string{"jabber:iq:version", "urn:xmpp:mam:2", "urn:xmpp:carbons:2"} {
		if strings.Contains(info, "'"+f+"'") {
			t.Errorf("corp.example's disco#info has %s", f)
		}
	}
	alice.Send("<iq type='get' id='d2'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	alice.C.Wait(t, "id='d2'", "jabber:iq:version", "urn:xmpp:mam:2")
	dan.Send("<iq type='get' id='d3' to='dan@corp.example'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	if got := dan.C.Wait(t, "id='d3'", "type='result'"); strings.Contains(got, "urn:xmpp:mam:2") {
		t.Fatalf("dan's account lists MAM: %s", got)
	}
	if v := e.R.CapsVerFor("corp.example"); v == globalVer || v != e.R.HostInfo("corp.example").Ver {
		t.Fatalf("corp.example's caps ver %q (the server's %q)", v, globalVer)
	}
	if e.R.CapsVerFor("example.org") != globalVer {
		t.Fatal("example.org's caps ver changed")
	}

	// A reload that turns them back on.
	if err := e.R.SetHostModules(nil); err != nil {
		t.Fatal(err)
	}
	dan.C.Reset()
	dan.Send("<iq type='get' id='v5'>" + version + "</iq>")
	dan.C.Wait(t, "id='v5'", "type='result'")
	alice.Send("<message to='dan@corp.example/pc' type='chat' id='m3'><body>again</body></message>")
	dan.C.Wait(t, "again", "<stanza-id", "by='dan@corp.example'")
	dan.Send("<iq type='get' id='d4' to='corp.example'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	dan.C.Wait(t, "id='d4'", "jabber:iq:version", "urn:xmpp:mam:2")
	if e.R.CapsVerFor("corp.example") != globalVer {
		t.Fatal("corp.example's caps ver after the modules came back")
	}
}

// TestHostModulesServices: a host that turns a service module off at start, or when it
// is added, gets none of its services, and its disco#items lists none; the other hosts
// keep theirs.
func TestHostModulesServices(t *testing.T) {
	e := routertest.New(t, []string{"alice"}, func(o *router.Options) {
		o.Modules = modulesBut("test_gate")
		o.Domains = []string{"example.org", "corp.example"}
		o.HostModules = map[string][]string{"corp.example": {"muc"}, "new.example": {"muc", "pubsub"}}
	})
	svcs := e.R.ServiceDomains()
	if slices.Contains(svcs, "conference.corp.example") || !slices.Contains(svcs, "pubsub.corp.example") || !slices.Contains(svcs, "conference.example.org") {
		t.Fatalf("services at start: %v", svcs)
	}
	if err := e.R.SetDomains([]string{"example.org", "corp.example", "new.example"}); err != nil {
		t.Fatal(err)
	}
	svcs = e.R.ServiceDomains()
	if slices.Contains(svcs, "conference.new.example") || slices.Contains(svcs, "pubsub.new.example") || !slices.Contains(svcs, "upload.new.example") && slices.Contains(svcs, "upload.example.org") {
		t.Fatalf("services of the added host: %v", svcs)
	}
	a := e.Bind("alice", "pc")
	a.Send("<iq type='get' id='i1' to='corp.example'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
	if got := a.C.Wait(t, "id='i1'", "pubsub.corp.example"); strings.Contains(got, "conference.") {
		t.Fatalf("corp.example's items: %s", got)
	}
	a.Send("<iq type='get' id='i2' to='conference.corp.example'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	a.C.Wait(t, "id='i2'", "type='error'")
	// A later setting: the room service of example.org goes, its occupants told (status
	// 332, as when a host goes), and corp.example's comes.
	a.Send("<presence to='lobby@conference.example.org/alice' id='j1'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
	a.C.Wait(t, "id='j1'", "status code='110'")
	if err := e.R.SetHostModules(map[string][]string{"example.org": {"muc"}, "new.example": {"muc", "pubsub"}}); err != nil {
		t.Fatal(err)
	}
	a.C.Wait(t, "type='unavailable'", "status code='332'")
	svcs = e.R.ServiceDomains()
	if slices.Contains(svcs, "conference.example.org") || !slices.Contains(svcs, "conference.corp.example") || slices.Contains(svcs, "conference.new.example") {
		t.Fatalf("services after the change: %v", svcs)
	}
	a.Send("<iq type='get' id='i3' to='conference.corp.example'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	a.C.Wait(t, "id='i3'", "type='result'", "category='conference'")
	a.Send("<iq type='get' id='i4' to='example.org'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
	if got := a.C.Wait(t, "id='i4'", "pubsub.example.org"); strings.Contains(got, "conference.") {
		t.Fatalf("example.org's items after the change: %s", got)
	}
	if err := e.R.SetHostModules(nil); err != nil {
		t.Fatal(err)
	}
	if svcs := e.R.ServiceDomains(); !slices.Contains(svcs, "conference.example.org") || !slices.Contains(svcs, "pubsub.new.example") {
		t.Fatalf("services with every module on: %v", svcs)
	}

	// Removing the host tells only the modules that made services for it.
	if err := e.R.SetDomains([]string{"example.org"}); err != nil {
		t.Fatal(err)
	}
	if svcs := e.R.ServiceDomains(); slices.ContainsFunc(svcs, func(d string) bool {
		return strings.HasSuffix(d, "corp.example") || strings.HasSuffix(d, "new.example")
	}) {
		t.Fatalf("services after the removal: %v", svcs)
	}
}

// TestHostInfoForms: a module's per-host forms (Reconfig.HostInfoForms, here XEP-0157's
// contact addresses from a host's table) replace the server's form in that host's
// disco#info and caps hash only; a host that turns the module off shows neither; a
// reload without the host's table brings the server's form back.
func TestHostInfoForms(t *testing.T) {
	e := newEnv(t)
	if err := e.R.SetDomains([]string{"example.org", "corp.example"}); err != nil {
		t.Fatal(err)
	}
	reload := func(hosts []string) {
		t.Helper()
		apply, ok, err := e.R.Reconfigure("contact", module.Reconfig{
			Decode: func(v any) error { v.(*contact.Config).Abuse = []string{"mailto:abuse@example.org"}; return nil },
			Hosts:  hosts,
			DecodeHost: func(h string, v any) error {
				v.(*contact.Config).Abuse = []string{"mailto:it@" + h}
				return nil
			},
		})
		if err != nil || !ok {
			t.Fatalf("Reconfigure: %v, %v", ok, err)
		}
		apply()
	}
	abuse := func(host string) []string {
		for _, f := range e.R.HostInfo(host).Forms {
			if f.Type == contact.FormType {
				return f.Fields[0].Values
			}
		}
		return nil
	}
	reload([]string{"corp.example"})
	if got := abuse("corp.example"); !slices.Equal(got, []string{"mailto:it@corp.example"}) {
		t.Fatalf("corp.example's form: %v", got)
	}
	if got := abuse("example.org"); !slices.Equal(got, []string{"mailto:abuse@example.org"}) {
		t.Fatalf("example.org's form: %v", got)
	}
	global := e.R.CapsVer()
	if v := e.R.CapsVerFor("corp.example"); v == global || v != e.R.HostInfo("corp.example").Ver {
		t.Fatalf("corp.example's caps ver %q, the server's %q", v, global)
	}
	if e.R.CapsVerFor("example.org") != global {
		t.Fatal("example.org's caps ver is not the server's")
	}
	corp := e.On("corp.example").Bind("dan", "pc")
	corp.Send("<iq type='get' id='d1' to='corp.example'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	if got := corp.C.Wait(t, "id='d1'", "mailto:it@corp.example"); strings.Contains(got, "abuse@example.org") {
		t.Fatalf("corp.example's disco#info: %s", got)
	}

	if err := e.R.SetHostModules(map[string][]string{"corp.example": {"contact"}}); err != nil {
		t.Fatal(err)
	}
	if got := abuse("corp.example"); got != nil {
		t.Fatalf("corp.example without the module shows %v", got)
	}
	if err := e.R.SetHostModules(nil); err != nil {
		t.Fatal(err)
	}
	reload(nil)
	if got := abuse("corp.example"); !slices.Equal(got, []string{"mailto:abuse@example.org"}) || e.R.CapsVerFor("corp.example") != e.R.CapsVer() {
		t.Fatalf("corp.example after its table went: %v", got)
	}
}
