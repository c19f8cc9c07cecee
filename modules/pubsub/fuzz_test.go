package pubsub

import (
	"testing"

	"github.com/vireo-im/vireo/xmlstream/xmltest"
)

// FuzzPubsubRequest feeds arbitrary well-formed stanzas' payloads to ParseRequest: it
// must not panic, and an accepted publish has a node and a payload that parses.
func FuzzPubsubRequest(f *testing.F) {
	for _, s := range []string{
		"<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n'><item id='1'><p xmlns='x'/></item></publish></pubsub>",
		"<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n'><item><p xmlns='x'/></item></publish><publish-options><x xmlns='jabber:x:data' type='submit'><field var='pubsub#access_model'><value>open</value></field></x></publish-options></pubsub>",
		"<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='n' max_items='2'><item id='a'/></items></pubsub>",
		"<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='n'/><set xmlns='http://jabber.org/protocol/rsm'><max>2</max><after>a</after></set></pubsub>",
		"<pubsub xmlns='http://jabber.org/protocol/pubsub'><retract node='n' notify='true'><item id='a'/></retract></pubsub>",
		"<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><configure node='n'><x xmlns='jabber:x:data' type='submit'><field var='pubsub#max_items'><value>max</value></field></x></configure></pubsub>",
		"<pubsub xmlns='http://jabber.org/protocol/pubsub'><create node='n'/><configure/></pubsub>",
		"<ps:pubsub xmlns:ps='http://jabber.org/protocol/pubsub'><ps:subscribe node='n' jid='a@b/c'/></ps:pubsub>",
		"<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><affiliations node='n'><affiliation jid='a@b' affiliation='publisher'/></affiliations></pubsub>",
		"<pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><subscriptions node='n'><subscription jid='a@b/c' subscription='subscribed'/></subscriptions></pubsub>",
		"<pubsub xmlns='http://jabber.org/protocol/pubsub'><subscriptions/></pubsub>",
		"<pubsub xmlns='http://jabber.org/protocol/pubsub'><create/></pubsub>",
		"<pubsub xmlns='http://jabber.org/protocol/pubsub'><subscribe node='n' jid='a@b'/><options><x xmlns='jabber:x:data' type='submit'><field var='pubsub#deliver'><value>0</value></field></x></options></pubsub>",
		"<pubsub xmlns='http://jabber.org/protocol/pubsub'><options node='n' jid='a@b'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#subscribe_options</value></field></x></options></pubsub>",
	} {
		f.Add([]byte(s), true)
		f.Add([]byte(s), false)
	}
	f.Fuzz(func(t *testing.T, raw []byte, set bool) {
		// Through the tokenizer first, as a client would send it, so the payload of the IQ is
		// as well-formed as the router would hand it over.
		e, ok := xmltest.IQPayload(raw)
		if !ok {
			return
		}
		r, serr := ParseRequest(e, set)
		if serr != nil {
			return
		}
		if r.Node == "" && r.Op != OpDefault && r.Op != OpCreate && r.Op != OpSubscriptions && r.Op != OpAffiliations {
			t.Fatalf("accepted without a node: %q", raw)
		}
		if r.Op == OpPublish && len(r.Payload) == 0 {
			t.Fatalf("publish without payload: %q", raw)
		}
		for _, e := range r.Entries {
			if e.JID == "" || e.Value == "" {
				t.Fatalf("entry without jid or value: %q", raw)
			}
		}
		cfg := DefaultConfig(pepPolicy)
		cfg.Apply(r.Options, pepPolicy)
		cfg.Matches(r.Options, pepPolicy)
	})
}
