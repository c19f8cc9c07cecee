package push

import (
	"testing"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store/pebblestore"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// TestEnabledForgotten: a user whose registrations are all gone leaves the enabled set at
// the next scan, so accounts that once enabled push (guests, removed accounts) do not
// pile up in memory; one with a registration stays.
func TestEnabledForgotten(t *testing.T) {
	st, err := pebblestore.Open(t.TempDir(), pebblestore.Options{Logger: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m := &Mod{t: st.Table("push")}
	m.enabled.Store("gone@example.org", struct{}{})
	m.enabled.Store("kept@example.org", struct{}{})
	if err := m.t.Set(key("kept@example.org", "push.example", "n1"), []byte{}); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"gone@example.org", "kept@example.org"} {
		if _, err := m.registrations(u); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := m.enabled.Load("gone@example.org"); ok {
		t.Error("a user without registrations stays in the enabled set")
	}
	if regs, _ := m.registrations("kept@example.org"); len(regs) != 1 {
		t.Errorf("the user with a registration lost it: %v", regs)
	}
}

// TestRemovedForgotten: a removed account's entries go with it: it gets no stanza again,
// so no scan or wake-up would forget them.
func TestRemovedForgotten(t *testing.T) {
	m := &Mod{}
	m.enabled.Store("gone@example.org", struct{}{})
	m.account.Store("gone@example.org", &account{count: 3})
	gone, _ := jid.Parse("gone@example.org")
	m.removed(module.Removal{User: gone,
		CallOn: func(_ jid.JID, fn func(module.Context)) { fn(nil) }})
	if _, ok := m.enabled.Load("gone@example.org"); ok {
		t.Error("the removed account stays in the enabled set")
	}
	if _, ok := m.account.Load("gone@example.org"); ok {
		t.Error("the removed account's notification state stays")
	}
}

// TestPushOffForHost: a host that turned push off (its disco#info lacks the feature) gets
// no room-mention notification, whatever registrations its users have from before
// (mentions reach the module outside its hooks, which the router filters by host).
func TestPushOffForHost(t *testing.T) {
	m := &Mod{hostInfo: func(host string) *module.HostInfo {
		if host == "corp.example" {
			return &module.HostInfo{Features: []string{"jabber:iq:roster", "urn:xmpp:mam:2"}}
		}
		return &module.HostInfo{Features: []string{"jabber:iq:roster", NS, "urn:xmpp:sid:0"}}
	}}
	if !m.on("example.org") || m.on("corp.example") {
		t.Fatalf("push on: example.org %v, corp.example %v", m.on("example.org"), m.on("corp.example"))
	}
}
