package adhoc

import (
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// Action is the XEP-0050 §3.4 'action' of a command request.
type Action uint8

// Actions. An absent action means execute.
const (
	ActionExecute Action = iota
	ActionNext
	ActionPrev
	ActionComplete
	ActionCancel
)

var actionNames = [...]string{"execute", "next", "prev", "complete", "cancel"}

func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return "unknown"
}

// Limits on what a request may carry: an administrator's forms are small, and a request
// past these is malformed rather than worth the memory.
const (
	MaxFields    = 32   // fields in one submitted form
	MaxValues    = 256  // values of one field (a jid-multi of accounts to delete)
	MaxValueLen  = 4096 // bytes of one value (a MOTD or an announcement line)
	MaxNodeLen   = 256  // bytes of a node name
	MaxSessionID = 64   // bytes of a session id
)

// Request is a parsed <command xmlns='http://jabber.org/protocol/commands'/> (XEP-0050 §3.4).
type Request struct {
	Node      string
	SessionID string
	Action    Action
	// Form holds the fields of a submitted data form (type='submit'); nil when the request
	// carries no form.
	Form Form
	// FormCancel is set when the request carries a form of type='cancel'.
	FormCancel bool
}

// Form is a submitted data form (XEP-0004 §3.3): values by field var, in document order.
type Form map[string][]string

// Value returns the first value of field v, or "".
func (f Form) Value(v string) string {
	if vs := f[v]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// errBadAction is XEP-0050 §4.6 bad-request with <bad-action/>.
func errBadAction() *stanza.Error {
	e := stanza.New(stanza.BadRequest)
	e.AppCondition = []byte("<bad-action xmlns='" + NS + "'/>")
	return e
}

// errBadPayload is XEP-0050 §4.6 bad-request with <bad-payload/>.
func errBadPayload(text string) *stanza.Error {
	e := stanza.New(stanza.BadRequest)
	e.AppCondition = []byte("<bad-payload xmlns='" + NS + "'/>")
	e.Text = text
	return e
}

// errBadSession is XEP-0050 §4.6 bad-request with <bad-sessionid/>.
func errBadSession() *stanza.Error {
	e := stanza.New(stanza.BadRequest)
	e.AppCondition = []byte("<bad-sessionid xmlns='" + NS + "'/>")
	return e
}

// errExpired is XEP-0050 §4.6 not-allowed with <session-expired/>.
func errExpired() *stanza.Error {
	e := stanza.New(stanza.NotAllowed)
	e.AppCondition = []byte("<session-expired xmlns='" + NS + "'/>")
	return e
}

// ParseCommand parses the command element e of an IQ set. It checks only the syntax and
// the limits above; whether the node exists and the session is the requester's is the
// caller's. e's slices need not outlive the call: the Request owns copies.
func ParseCommand(e xmlstream.Element) (Request, *stanza.Error) {
	var r Request
	if string(e.NS()) != NS || string(e.Name()) != "command" {
		return r, stanza.New(stanza.BadRequest)
	}
	node, _ := e.AppendAttr(nil, "node")
	if len(node) == 0 || len(node) > MaxNodeLen {
		return r, errBadPayload("missing or oversized node")
	}
	r.Node = string(node)
	if sid, ok := e.AppendAttr(nil, "sessionid"); ok {
		if len(sid) == 0 || len(sid) > MaxSessionID {
			return r, errBadSession()
		}
		r.SessionID = string(sid)
	}
	if a, ok := e.AppendAttr(nil, "action"); ok {
		found := false
		for i, n := range actionNames {
			if string(a) == n {
				r.Action, found = Action(i), true
				break
			}
		}
		if !found {
			return r, errBadAction()
		}
	}
	x, ok := e.Child(ns.DataForms, "x")
	if !ok {
		return r, nil
	}
	typ, _ := x.AppendAttr(nil, "type")
	switch string(typ) {
	case "submit":
	case "cancel":
		r.FormCancel = true
		return r, nil
	default:
		return r, errBadPayload("a submitted form must be of type submit or cancel")
	}
	r.Form = Form{}
	it := x.Children()
	nf := 0
	for f, ok := it.Next(); ok; f, ok = it.Next() {
		if string(f.NS()) != ns.DataForms || string(f.Name()) != "field" {
			continue
		}
		if nf++; nf > MaxFields {
			return r, errBadPayload("too many fields")
		}
		v, _ := f.AppendAttr(nil, "var")
		if len(v) == 0 || len(v) > MaxNodeLen {
			return r, errBadPayload("a field without var")
		}
		key := string(v)
		if _, dup := r.Form[key]; dup {
			return r, errBadPayload("field " + key + " given twice")
		}
		vals := []string{}
		vit := f.Children()
		for ve, ok := vit.Next(); ok; ve, ok = vit.Next() {
			if string(ve.NS()) != ns.DataForms || string(ve.Name()) != "value" {
				continue
			}
			if len(vals) == MaxValues {
				return r, errBadPayload("too many values in " + key)
			}
			t := ve.AppendText(nil)
			if len(t) > MaxValueLen {
				return r, errBadPayload("value of " + key + " too long")
			}
			vals = append(vals, string(t))
		}
		r.Form[key] = vals
	}
	return r, nil
}
