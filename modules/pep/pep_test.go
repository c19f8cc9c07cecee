package pep

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/modules/pubsub"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
)

var _ module.Provisioner = (*Mod)(nil)

func TestAccess(t *testing.T) {
	for _, tc := range []struct {
		model    string
		sub      store.Subscription
		inRoster bool
		want     bool
	}{
		{pubsub.AccessOpen, store.SubNone, false, true},
		{pubsub.AccessPresence, store.SubNone, false, false},
		{pubsub.AccessPresence, store.SubNone, true, false},
		{pubsub.AccessPresence, store.SubTo, true, false},
		{pubsub.AccessPresence, store.SubFrom, true, true},
		{pubsub.AccessPresence, store.SubBoth, true, true},
		{pubsub.AccessRoster, store.SubNone, false, false},
		{pubsub.AccessRoster, store.SubTo, true, true},
		{pubsub.AccessRoster, store.SubBoth, true, true},
		{pubsub.AccessWhitelist, store.SubBoth, true, false},
		{"bogus", store.SubBoth, true, false},
	} {
		t.Run(fmt.Sprintf("%s/%s/%v", tc.model, tc.sub, tc.inRoster), func(t *testing.T) {
			if got := Allowed(tc.model, tc.sub, tc.inRoster); got != tc.want {
				t.Fatalf("Allowed = %v, want %v", got, tc.want)
			}
		})
	}
	for model, want := range map[string]string{
		pubsub.AccessPresence:  "<not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><presence-subscription-required",
		pubsub.AccessRoster:    "<not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><not-in-roster-group",
		pubsub.AccessWhitelist: "<not-allowed xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><closed-node",
	} {
		if got := string(DenyError(model).AppendXML(nil)); !strings.Contains(got, want) {
			t.Errorf("DenyError(%s) = %s, want %s", model, got, want)
		}
	}
}

// TestCapsVer checks the XEP-0115 §5.3 complex example, with an extended form.
func TestCapsVer(t *testing.T) {
	q := `<query xmlns='http://jabber.org/protocol/disco#info' node='http://psi-im.org#q07IKJEyjvHSyhy//CH0CxmKi8w='>
<identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>
<identity xml:lang='el' category='client' name='Ψ 0.11' type='pc'/>
<feature var='http://jabber.org/protocol/caps'/>
<feature var='http://jabber.org/protocol/disco#info'/>
<feature var='http://jabber.org/protocol/disco#items'/>
<feature var='http://jabber.org/protocol/muc'/>
<x xmlns='jabber:x:data' type='result'>
<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>
<field var='ip_version' type='text-multi'><value>ipv4</value><value>ipv6</value></field>
<field var='os'><value>Mac</value></field>
<field var='os_version'><value>10.5.1</value></field>
<field var='software'><value>Psi</value></field>
<field var='software_version'><value>0.11</value></field>
</x></query>`
	e, err := xmlstream.ParseElement([]byte(q), "jabber:client")
	if err != nil {
		t.Fatal(err)
	}
	d, ok := parseDiscoInfo(e)
	if !ok {
		t.Fatal("not valid")
	}
	if v, _ := d.ver("sha-1"); v != "q07IKJEyjvHSyhy//CH0CxmKi8w=" {
		t.Fatalf("ver = %s", v)
	}
	dup := strings.Replace(q, "<feature var='http://jabber.org/protocol/muc'/>", "<feature var='http://jabber.org/protocol/muc'/><feature var='http://jabber.org/protocol/muc'/>", 1)
	e, _ = xmlstream.ParseElement([]byte(dup), "jabber:client")
	if _, ok := parseDiscoInfo(e); ok {
		t.Fatal("duplicate feature accepted")
	}
}

// TestCapsCacheBounded: made-up caps vers cannot fill the cache for good or grow the
// queries without end. A full cache drops the queries that went unanswered, then the
// least recently used half, and keeps the vers in use; unanswered queries are swept
// once they are stale, and past the bound no query goes out.
func TestCapsCacheBounded(t *testing.T) {
	m := new(Mod)
	m.mu.caps, m.mu.queries = map[string]*capsEntry{}, map[string]capsQuery{}
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for i := range maxCapsCache {
		e := m.capsEntryLocked(fmt.Sprintf("sha-1 v%d", i), t0.Add(time.Duration(i)*time.Millisecond))
		e.features = map[string]bool{"f": true} // all verified, as a careful flood could make them
	}
	m.capsEntryLocked("sha-1 v0", t0.Add(time.Hour)) // a ver a client still uses
	m.capsEntryLocked("sha-1 new", t0.Add(time.Hour))
	if n := len(m.mu.caps); n > maxCapsCache/2+2 {
		t.Fatalf("%d entries after making room", n)
	}
	for _, k := range []string{"sha-1 v0", "sha-1 new", fmt.Sprintf("sha-1 v%d", maxCapsCache-1)} {
		if m.mu.caps[k] == nil {
			t.Errorf("%s was dropped", k)
		}
	}
	if m.mu.caps["sha-1 v1"] != nil {
		t.Error("the least recently used entry was kept")
	}

	// Unanswered entries go before any verified one.
	clear(m.mu.caps)
	for i := range maxCapsCache {
		e := m.capsEntryLocked(fmt.Sprintf("sha-1 u%d", i), t0)
		e.asked = t0
		if i%2 == 0 {
			e.features = map[string]bool{}
		}
	}
	m.capsEntryLocked("sha-1 next", t0.Add(capsRetry))
	if n := len(m.mu.caps); n != maxCapsCache/2+1 || m.mu.caps["sha-1 u0"] == nil || m.mu.caps["sha-1 u1"] != nil {
		t.Fatalf("%d entries; verified u0 kept: %v; unanswered u1 dropped: %v", n, m.mu.caps["sha-1 u0"] != nil, m.mu.caps["sha-1 u1"] == nil)
	}

	// Queries: bounded; stale ones swept, at most once a second.
	for i := range maxCapsQueries {
		if m.queryLocked(capsQuery{key: fmt.Sprint(i)}, t0) == "" {
			t.Fatalf("query %d refused under the bound", i)
		}
	}
	if m.queryLocked(capsQuery{key: "over"}, t0.Add(capsRetry-500*time.Millisecond)) != "" {
		t.Fatal("a query past the bound while none is stale")
	}
	if id := m.queryLocked(capsQuery{key: "later"}, t0.Add(capsRetry+100*time.Millisecond)); id != "" {
		t.Fatal("swept again within a second")
	}
	if id := m.queryLocked(capsQuery{key: "later"}, t0.Add(capsRetry+600*time.Millisecond)); id == "" || len(m.mu.queries) != 1 {
		t.Fatalf("stale queries not swept: %q, %d left", id, len(m.mu.queries))
	}
}
