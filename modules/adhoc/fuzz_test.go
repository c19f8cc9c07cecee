package adhoc

import (
	"testing"

	"github.com/vireo-im/vireo/xmlstream/xmltest"
)

// FuzzCommand feeds the payload of well-formed IQs to ParseCommand: it must not panic,
// and what it accepts stays within the limits.
func FuzzCommand(f *testing.F) {
	for _, s := range []string{
		"<command xmlns='http://jabber.org/protocol/commands' node='http://jabber.org/protocol/admin#add-user' action='execute'/>",
		"<command xmlns='http://jabber.org/protocol/commands' node='n' sessionid='s' action='complete'><x xmlns='jabber:x:data' type='submit'><field var='accountjid'><value>a@b</value></field><field var='password'><value>p</value></field></x></command>",
		"<command xmlns='http://jabber.org/protocol/commands' node='n' sessionid='s'><x xmlns='jabber:x:data' type='cancel'/></command>",
		"<c:command xmlns:c='http://jabber.org/protocol/commands' node='n'><d:x xmlns:d='jabber:x:data' type='submit'><d:field var='v'><d:value>1</d:value><d:value>2</d:value></d:field></d:x></c:command>",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		e, ok := xmltest.IQPayload(raw)
		if !ok {
			return
		}
		r, serr := ParseCommand(e)
		if serr != nil {
			return
		}
		if r.Node == "" || len(r.Node) > MaxNodeLen || len(r.SessionID) > MaxSessionID || len(r.Form) > MaxFields {
			t.Fatalf("accepted out of limits: %+v", r)
		}
		for k, vs := range r.Form {
			if k == "" || len(vs) > MaxValues {
				t.Fatalf("field %q with %d values", k, len(vs))
			}
			for _, v := range vs {
				if len(v) > MaxValueLen {
					t.Fatalf("value of %d bytes", len(v))
				}
			}
		}
	})
}
