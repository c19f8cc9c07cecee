package pep

import (
	"fmt"
	"strings"
	"testing"

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
