package pep

import (
	"fmt"
	"maps"
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

	// A ver a remembered contact resource has stays however old its entry: that resource's
	// presences do not refresh it, and it would get no notification without it.
	clear(m.mu.caps)
	m.mu.users = map[string]map[string]*resource{"alice@example.org": {"bob@example.org/pc": {key: "sha-1 w0"}}}
	for i := range maxCapsCache {
		e := m.capsEntryLocked(fmt.Sprintf("sha-1 w%d", i), t0.Add(time.Duration(i)*time.Millisecond))
		e.features = map[string]bool{"f": true}
	}
	m.capsEntryLocked("sha-1 flood", t0.Add(time.Hour))
	if m.mu.caps["sha-1 w0"] == nil || m.mu.caps["sha-1 w1"] != nil {
		t.Errorf("in use w0 kept: %v; unused w1 dropped: %v", m.mu.caps["sha-1 w0"] != nil, m.mu.caps["sha-1 w1"] == nil)
	}
	m.mu.users = nil

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

// TestContactResourcesBounded: a contact's server may claim any number of resources and
// never say they went. Past maxResourcesPerContact the contact's oldest resource gives
// way, past maxResources the owner's oldest; nothing new is refused, and an unavailable
// presence gives its place back.
func TestContactResourcesBounded(t *testing.T) {
	m := new(Mod)
	m.mu.users, m.mu.perContact = map[string]map[string]*resource{}, map[string]int{}
	const owner = "alice@example.org"
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	for i := range maxResourcesPerContact + 8 {
		m.rememberLocked(owner, fmt.Sprintf("mallory@evil.example/r%d", i), &resource{at: at(i)})
	}
	rs := m.mu.users[owner]
	if len(rs) != maxResourcesPerContact || m.mu.perContact[owner+"\x00mallory@evil.example"] != maxResourcesPerContact {
		t.Fatalf("%d resources, %d counted", len(rs), m.mu.perContact[owner+"\x00mallory@evil.example"])
	}
	if rs["mallory@evil.example/r0"] != nil || rs[fmt.Sprintf("mallory@evil.example/r%d", maxResourcesPerContact+7)] == nil {
		t.Fatal("not the oldest gave way")
	}
	// Many contacts: the owner's oldest gives way at maxResources.
	for i := range maxResources {
		m.rememberLocked(owner, fmt.Sprintf("c%d@example.net/pc", i), &resource{at: at(1000 + i)})
	}
	m.rememberLocked(owner, "bob@example.net/phone", &resource{at: at(1000 + maxResources)})
	if len(rs) != maxResources || rs["bob@example.net/phone"] == nil || rs[fmt.Sprintf("mallory@evil.example/r%d", maxResourcesPerContact+7)] != nil {
		t.Fatalf("%d resources; bob kept: %v", len(rs), rs["bob@example.net/phone"] != nil)
	}
	// Going unavailable gives the count back; the last one takes the owner's map along.
	m.forgetLocked(owner, "bob@example.net/phone")
	if _, ok := m.mu.perContact[owner+"\x00bob@example.net"]; ok || rs["bob@example.net/phone"] != nil {
		t.Fatal("bob's resource or count stayed")
	}
	for f := range maps.Clone(rs) {
		m.forgetLocked(owner, f)
	}
	if len(m.mu.users) != 0 || len(m.mu.perContact) != 0 {
		t.Fatalf("left: %d owners, %d counts", len(m.mu.users), len(m.mu.perContact))
	}
}

// TestNotifyFeaturesKept: of a caps answer only NODE+notify features are kept, at most
// maxNotifyFeatures of them.
func TestNotifyFeaturesKept(t *testing.T) {
	all := []string{"http://jabber.org/protocol/disco#info", "urn:xmpp:avatar:metadata+notify", "jabber:iq:version"}
	for i := range 2 * maxNotifyFeatures {
		all = append(all, fmt.Sprintf("urn:example:%d+notify", i), fmt.Sprintf("urn:example:plain:%d", i))
	}
	m := notifyFeatures(all)
	if len(m) != maxNotifyFeatures || !m["urn:xmpp:avatar:metadata+notify"] || m["jabber:iq:version"] {
		t.Fatalf("%d kept; avatar %v, version %v", len(m), m["urn:xmpp:avatar:metadata+notify"], m["jabber:iq:version"])
	}
	if notifyFeatures(nil) == nil {
		t.Fatal("an answer without features reads as no answer")
	}
}
