package blocking

import (
	"testing"
	"time"

	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/xmltest"
)

// FuzzReport: whatever a client attaches to a block item, a report is either dropped or
// within bounds, with a reason the XEP defines, and its forward to the abuse desk is one
// well-formed message.
func FuzzReport(f *testing.F) {
	f.Add("<item jid='b@c'><report xmlns='" + NSReporting + "' reason='" + ReasonSpam + "'><stanza-id xmlns='urn:xmpp:sid:0' by='a@c' id='x'/><text xml:lang='en'>hi</text></report></item>")
	f.Add("<item jid='b@c'><report xmlns='urn:xmpp:reporting:0'><abuse/><text>rude</text></report></item>")
	f.Add("<item jid='c'><report xmlns='" + NSReporting + "'/></item>")
	reporter, _ := jid.Parse("a@c/r")
	desk, _ := jid.Parse("abuse@c")
	m := &Mod{}
	f.Fuzz(func(t *testing.T, item string) {
		q, ok := xmltest.IQPayload([]byte("<block xmlns='urn:xmpp:blocking'>" + item + "</block>"))
		if !ok {
			return
		}
		for _, r := range reportsOf(q) {
			if r.reason != ReasonSpam && r.reason != ReasonAbuse || len(r.text) > maxReportText || len(r.ids) > maxReportIDs {
				t.Fatalf("accepted %+v", r)
			}
			fw := m.forward(reporter, desk, r, []Archived{{Raw: []byte("<message xmlns='jabber:client'><body>x</body></message>")}})
			if _, ok := xmltest.Stanza(fw); !ok {
				t.Fatalf("the forward does not parse:\n%s", fw)
			}
		}
	})
}

// TestReportBudget: one account forwards at most reportsPerHour reports an hour; the next
// hour starts again, and other accounts have budgets of their own.
func TestReportBudget(t *testing.T) {
	var b reportBudget
	now := time.Unix(1e9, 0)
	for i := 0; i < reportsPerHour; i++ {
		if !b.take("mallory@c", now.Add(time.Duration(i)*time.Minute)) {
			t.Fatalf("report %d refused", i)
		}
	}
	if b.take("mallory@c", now.Add(50*time.Minute)) {
		t.Fatal("a report over the hour's budget was forwarded")
	}
	if !b.take("alice@c", now.Add(50*time.Minute)) {
		t.Fatal("another account's report was refused")
	}
	if !b.take("mallory@c", now.Add(61*time.Minute)) {
		t.Fatal("the next hour's report was refused")
	}
}
