package mam

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/modules/sid"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/ns"
)

var testID = sid.Next(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))

func mustQuery(t *testing.T, inner string) (Query, string) {
	t.Helper()
	e, err := xmlstream.ParseElement([]byte("<query xmlns='urn:xmpp:mam:2' queryid='qq'>"+inner+"</query>"), ns.Client)
	if err != nil {
		t.Fatal(err)
	}
	q, se := ParseQuery(e)
	if se != nil {
		return q, string(se.Condition)
	}
	return q, ""
}

// describe renders a query compactly for table comparisons.
func describe(q Query) string {
	var b strings.Builder
	id := func(p *sid.ID) string {
		if p == nil {
			return "-"
		}
		if *p == testID {
			return "T"
		}
		return p.String()
	}
	fmt.Fprintf(&b, "qid=%s with=%s", q.QueryID, q.With)
	if !q.Start.IsZero() {
		fmt.Fprintf(&b, " start=%s", q.Start.Format(time.RFC3339Nano))
	}
	if !q.End.IsZero() {
		fmt.Fprintf(&b, " end=%s", q.End.Format(time.RFC3339Nano))
	}
	fmt.Fprintf(&b, " after-id=%s before-id=%s", id(q.AfterID), id(q.BeforeID))
	if q.IDs != nil {
		fmt.Fprintf(&b, " ids=%d", len(q.IDs))
	}
	fmt.Fprintf(&b, " max=%d after=%s before=%v/%s index=%d flip=%v", q.Max, id(q.After), q.HasBefore, id(q.Before), q.Index, q.Flip)
	return b.String()
}

func field(v, val string) string {
	return "<field var='" + v + "'><value>" + val + "</value></field>"
}

func xform(fields ...string) string {
	return "<x xmlns='jabber:x:data' type='submit'>" + field("FORM_TYPE", NS) + strings.Join(fields, "") + "</x>"
}

func rsm(inner string) string {
	return "<set xmlns='http://jabber.org/protocol/rsm'>" + inner + "</set>"
}

func TestParseQuery(t *testing.T) {
	T := testID.String()
	const none = " after-id=- before-id=-"
	for _, tc := range []struct {
		name, inner, want string // want: describe() or the error condition
	}{
		{"empty", "", "qid=qq with=" + none + " max=-1 after=- before=false/- index=-1 flip=false"},
		{"with bare", xform(field("with", "Juliet@Capulet.lit")), "qid=qq with=juliet@capulet.lit" + none + " max=-1 after=- before=false/- index=-1 flip=false"},
		{"with full", xform(field("with", "juliet@capulet.lit/balcony")), "qid=qq with=juliet@capulet.lit/balcony" + none + " max=-1 after=- before=false/- index=-1 flip=false"},
		{"empty with", xform(field("with", "")), "qid=qq with=" + none + " max=-1 after=- before=false/- index=-1 flip=false"},
		{"times", xform(field("start", "2010-06-07T00:00:00Z"), field("end", "2010-07-07T13:23:54.123+02:00")),
			"qid=qq with= start=2010-06-07T00:00:00Z end=2010-07-07T11:23:54.123Z" + none + " max=-1 after=- before=false/- index=-1 flip=false"},
		{"ids", xform(field("after-id", T), field("before-id", T)), "qid=qq with= after-id=T before-id=T max=-1 after=- before=false/- index=-1 flip=false"},
		{"id list", xform("<field var='ids'><value>" + T + "</value><value>" + T + "</value></field>"), "qid=qq with=" + none + " ids=2 max=-1 after=- before=false/- index=-1 flip=false"},
		{"rsm after", rsm("<max>10</max><after>" + T + "</after>"), "qid=qq with=" + none + " max=10 after=T before=false/- index=-1 flip=false"},
		{"rsm last page", rsm("<max>10</max><before/>"), "qid=qq with=" + none + " max=10 after=- before=true/- index=-1 flip=false"},
		{"rsm before", rsm("<before>"+T+"</before>") + "<flip-page/>", "qid=qq with=" + none + " max=-1 after=- before=true/T index=-1 flip=true"},
		{"rsm index", rsm("<index>7</index><max>0</max>"), "qid=qq with=" + none + " max=0 after=- before=false/- index=7 flip=false"},
		{"form without type attr", "<x xmlns='jabber:x:data'>" + field("FORM_TYPE", NS) + "</x>", "qid=qq with=" + none + " max=-1 after=- before=false/- index=-1 flip=false"},
		{"foreign children ignored", "<foo xmlns='urn:x'/><x xmlns='urn:y'/>", "qid=qq with=" + none + " max=-1 after=- before=false/- index=-1 flip=false"},

		{"form type", "<x xmlns='jabber:x:data' type='form'/>", "bad-request"},
		{"wrong FORM_TYPE", "<x xmlns='jabber:x:data' type='submit'>" + field("FORM_TYPE", "urn:xmpp:mam:1") + "</x>", "bad-request"},
		{"unknown field", xform(field("include-groupchat", "true")), "feature-not-implemented"},
		{"field without var", xform("<field><value>x</value></field>"), "bad-request"},
		{"field twice", xform(field("with", "a@b"), field("with", "c@d")), "bad-request"},
		{"two values", xform("<field var='start'><value>2010-06-07T00:00:00Z</value><value>2010-06-07T00:00:00Z</value></field>"), "bad-request"},
		{"bad time", xform(field("start", "2010-06-07")), "bad-request"},
		{"bad jid", xform(field("with", "@capulet.lit")), "jid-malformed"},
		{"unknown after-id", xform(field("after-id", "28482-98726-73623")), "item-not-found"},
		{"unknown id in list", xform("<field var='ids'><value>" + T + "</value><value>nope</value></field>"), "item-not-found"},
		{"too many ids", xform("<field var='ids'>" + strings.Repeat("<value>"+T+"</value>", MaxIDs+1) + "</field>"), "bad-request"},
		{"negative max", rsm("<max>-1</max>"), "bad-request"},
		{"max not a number", rsm("<max>ten</max>"), "bad-request"},
		{"empty after", rsm("<after/>"), "bad-request"},
		{"unknown before", rsm("<before>x</before>"), "item-not-found"},
		{"index with after", rsm("<index>1</index><after>" + T + "</after>"), "bad-request"},
		{"two sets", rsm("") + rsm(""), "bad-request"},
		{"two forms", xform() + xform(), "bad-request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, cond := mustQuery(t, tc.inner)
			got := cond
			if cond == "" {
				got = describe(q)
			}
			if got != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestParseQueryNode: the node attribute belongs to pubsub archives (XEP-0442).
func TestParseQueryNode(t *testing.T) {
	e, _ := xmlstream.ParseElement([]byte("<query xmlns='urn:xmpp:mam:2' node='n'/>"), ns.Client)
	if _, se := ParseQuery(e); se == nil || se.Condition != "feature-not-implemented" {
		t.Fatalf("node: %v", se)
	}
}

func TestParseRetention(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, true}, {"0", 0, true}, {"720h", 720 * time.Hour, true}, {"30d", 30 * 24 * time.Hour, true},
		{"1h30m", 90 * time.Minute, true}, {"-1h", 0, false}, {"x", 0, false}, {"-3d", 0, false}, {"d", 0, false},
	} {
		got, err := ParseRetention(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseRetention(%q) = %v, %v", tc.in, got, err)
		}
	}
}

func TestPrefsRoundTrip(t *testing.T) {
	e, _ := xmlstream.ParseElement([]byte("<prefs xmlns='urn:xmpp:mam:2' default='roster'><always><jid>a@b</jid><jid>C@D/r</jid></always><never><jid>e@f</jid></never></prefs>"), ns.Client)
	p, se := parsePrefs(e)
	if se != nil {
		t.Fatal(se)
	}
	back, err := decodePrefs(encodePrefs(p))
	if err != nil || fmt.Sprint(back) != fmt.Sprint(p) || fmt.Sprint(p) != "{roster [a@b c@d/r] [e@f] false}" {
		t.Fatalf("%v -> %v, %v", p, back, err)
	}
	for _, bad := range []string{"", "sometimes", "always\nxa@b"} {
		if _, err := decodePrefs([]byte(bad)); err == nil {
			t.Errorf("decodePrefs(%q) accepted", bad)
		}
	}
}
