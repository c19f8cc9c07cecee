package adhoc

import (
	"testing"
	"time"

	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

func parse(t *testing.T, raw string) (Request, *stanza.Error) {
	t.Helper()
	e, err := xmlstream.ParseElement([]byte(raw), ns.Client)
	if err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return ParseCommand(e)
}

func TestParseCommand(t *testing.T) {
	const c = "<command xmlns='http://jabber.org/protocol/commands' "
	const x = "<x xmlns='jabber:x:data' type='submit'>"
	for _, tc := range []struct {
		name, raw string
		want      Request
		app       string // expected application condition, "" for success
		cond      stanza.Condition
	}{
		{"execute", c + "node='n'/>", Request{Node: "n"}, "", ""},
		{"explicit execute", c + "node='n' action='execute'/>", Request{Node: "n"}, "", ""},
		{"complete with form", c + "node='n' sessionid='s' action='complete'>" + x +
			"<field var='FORM_TYPE' type='hidden'><value>" + AdminNS + "</value></field>" +
			"<field var='accountjids'><value>a@b</value><value>c@b</value></field><field var='empty'/></x></command>",
			Request{Node: "n", SessionID: "s", Action: ActionComplete, Form: Form{"FORM_TYPE": {AdminNS}, "accountjids": {"a@b", "c@b"}, "empty": {}}}, "", ""},
		{"cancel", c + "node='n' sessionid='s' action='cancel'/>", Request{Node: "n", SessionID: "s", Action: ActionCancel}, "", ""},
		{"cancel form", c + "node='n' sessionid='s'><x xmlns='jabber:x:data' type='cancel'/></command>", Request{Node: "n", SessionID: "s", FormCancel: true}, "", ""},
		{"escaped value", c + "node='n'>" + x + "<field var='v'><value>a&amp;b</value></field></x></command>", Request{Node: "n", Form: Form{"v": {"a&b"}}}, "", ""},
		{"wrong element", "<query xmlns='" + NS + "' node='n'/>", Request{}, "", stanza.BadRequest},
		{"wrong namespace", "<command xmlns='urn:x' node='n'/>", Request{}, "", stanza.BadRequest},
		{"no node", c + "/>", Request{}, "bad-payload", stanza.BadRequest},
		{"bad action", c + "node='n' action='jump'/>", Request{}, "bad-action", stanza.BadRequest},
		{"empty session", c + "node='n' sessionid=''/>", Request{}, "bad-sessionid", stanza.BadRequest},
		{"form type", c + "node='n'><x xmlns='jabber:x:data' type='form'/></command>", Request{}, "bad-payload", stanza.BadRequest},
		{"field without var", c + "node='n'>" + x + "<field><value>a</value></field></x></command>", Request{}, "bad-payload", stanza.BadRequest},
		{"duplicate field", c + "node='n'>" + x + "<field var='a'/><field var='a'/></x></command>", Request{}, "bad-payload", stanza.BadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parse(t, tc.raw)
			if tc.cond != "" {
				if err == nil {
					t.Fatalf("accepted %s: %+v", tc.raw, got)
				}
				if err.Condition != tc.cond {
					t.Fatalf("condition %s, want %s", err.Condition, tc.cond)
				}
				if tc.app != "" && !contains(string(err.AppCondition), tc.app) {
					t.Fatalf("app condition %q, want %s", err.AppCondition, tc.app)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Node != tc.want.Node || got.SessionID != tc.want.SessionID || got.Action != tc.want.Action || got.FormCancel != tc.want.FormCancel || !sameForm(got.Form, tc.want.Form) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || len(s) >= len(sub) && (s[:len(sub)] == sub || contains(s[1:], sub))
}

func sameForm(a, b Form) bool {
	if (a == nil) != (b == nil) || len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || len(v) != len(w) {
			return false
		}
		for i := range v {
			if v[i] != w[i] {
				return false
			}
		}
	}
	return true
}

func TestParseCommandLimits(t *testing.T) {
	var b xmlstream.Builder
	b.Start("command").Attr("xmlns", NS).Attr("node", "n").Start("x").Attr("xmlns", ns.DataForms).Attr("type", "submit")
	for i := 0; i <= MaxFields; i++ {
		b.Start("field").Attr("var", string(rune('a'+i%26))+string(rune('a'+i/26))).End()
	}
	b.End().End()
	e, _ := xmlstream.ParseElement(b.B, ns.Client)
	if _, err := ParseCommand(e); err == nil {
		t.Fatal("accepted more than MaxFields fields")
	}
}

func TestSessions(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		name                          string
		owner, node, takeBy, takeNode string
		after                         time.Duration
		want                          string // "" or the app condition
	}{
		{"owner", "a@x/r", "n", "a@x/r", "n", 0, ""},
		{"other resource", "a@x/r", "n", "a@x/s", "n", 0, "bad-sessionid"},
		{"other user", "a@x/r", "n", "b@x/r", "n", 0, "bad-sessionid"},
		{"other node", "a@x/r", "n", "a@x/r", "m", 0, "bad-sessionid"},
		{"expired", "a@x/r", "n", "a@x/r", "n", SessionTTL + time.Second, "session-expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s sessions
			sid, err := s.open(tc.owner, tc.node, t0)
			if err != nil {
				t.Fatal(err)
			}
			e := s.take(sid, tc.takeBy, tc.takeNode, t0.Add(tc.after))
			switch {
			case tc.want == "" && e != nil:
				t.Fatal(e)
			case tc.want != "" && (e == nil || !contains(string(e.AppCondition), tc.want)):
				t.Fatalf("got %v, want %s", e, tc.want)
			}
			if tc.want == "" && s.take(sid, tc.takeBy, tc.takeNode, t0) == nil {
				t.Fatal("a session was taken twice")
			}
		})
	}
	t.Run("bounds", func(t *testing.T) {
		var s sessions
		for i := 0; i < MaxSessionsPerUser; i++ {
			if _, err := s.open("a@x/r", "n", t0); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.open("a@x/r", "n", t0); err == nil || err.Condition != stanza.ResourceConstraintCond {
			t.Fatalf("opened past MaxSessionsPerUser: %v", err)
		}
		if _, err := s.open("b@x/r", "n", t0); err != nil {
			t.Fatalf("another user was refused: %v", err)
		}
		// Expired sessions are swept on the next open and no longer count.
		if _, err := s.open("a@x/r", "n", t0.Add(SessionTTL+time.Second)); err != nil {
			t.Fatal(err)
		}
		if n := s.len(); n != 1 {
			t.Fatalf("%d sessions after the sweep, want 1", n)
		}
	})
}
