package blocking

import (
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
)

// XEP-0377 blocking command reports: a user who blocks someone may say why (spam or
// abuse, a text, the stanza-ids of the messages in question). The block itself is made
// exactly as without a report. The report is logged, and it goes to the operator's abuse
// desk ([modules.blocking] report_to) as a message from the server, with the reported
// messages the reporter's archive holds (Evidence), up to reportsPerHour per reporter. Reports are forwarded nowhere else:
// the 'report-origin' and 'third-party' opt-ins ask for processing this server does not
// offer, which the XEP allows it to ignore.
const (
	NSReporting  = "urn:xmpp:reporting:1"
	nsReporting0 = "urn:xmpp:reporting:0" // the 0.2 form slixmpp sends: <spam/> or <abuse/>
	ReasonSpam   = "urn:xmpp:reporting:spam"
	ReasonAbuse  = "urn:xmpp:reporting:abuse"
)

// Bounds on what one block request may report: a client reports one JID at a time in
// practice, and a block of a thousand JIDs must not become a thousand messages to the
// abuse desk.
const (
	maxReports     = 10   // reports acted on per block request
	maxReportIDs   = 20   // stanza-ids per report
	maxReportText  = 2048 // bytes of the reporter's text
	maxReportBytes = 64 << 10
	// reportsPerHour bounds what one account sends the abuse desk: more reports in an
	// hour still block, and are logged, but are not forwarded.
	reportsPerHour = 20
)

// reportBudget counts each reporter's forwarded reports in the current hour.
type reportBudget struct {
	mu sync.Mutex
	m  map[string]reportWindow
}

type reportWindow struct {
	start time.Time
	n     int
}

// take reports whether user may forward one more report at now, and counts it.
func (r *reportBudget) take(user string, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil || len(r.m) > 100000 {
		// Forgetting everyone at worst lets each reporter start a new hour early.
		r.m = map[string]reportWindow{}
	}
	w := r.m[user]
	if now.Sub(w.start) >= time.Hour {
		w = reportWindow{start: now}
	}
	if w.n >= reportsPerHour {
		return false
	}
	w.n++
	r.m[user] = w
	return true
}

// Config is [modules.blocking].
type Config struct {
	// ReportTo are the JIDs (the operator's abuse desk) that get each report users attach
	// to a block.
	ReportTo []string `toml:"report_to"`
}

// report is one <report/> of a block item.
type report struct {
	jid    jid.JID // the reported (and blocked) JID
	reason string
	text   string
	ids    []string
}

// parseReport reads the report of a block item, if it has one; ok is false without one or
// when it names no reason the XEP defines (the block stands; the report is dropped).
func parseReport(item xmlstream.Element, j jid.JID) (r report, ok bool) {
	e, ok := item.Child(NSReporting, "report")
	if ok {
		v, _ := e.AppendAttr(nil, "reason")
		r.reason = string(v)
	} else if e, ok = item.Child(nsReporting0, "report"); ok {
		for _, reason := range []string{"spam", "abuse"} {
			if _, has := e.Child(nsReporting0, reason); has {
				r.reason = "urn:xmpp:reporting:" + reason
				break
			}
		}
	}
	if !ok || r.reason != ReasonSpam && r.reason != ReasonAbuse {
		return report{}, false
	}
	r.jid = j
	for it := e.Children(); ; {
		ch, more := it.Next()
		if !more {
			break
		}
		switch {
		case string(ch.Name()) == "text" && r.text == "":
			r.text = xmlstream.TruncateText(strings.TrimSpace(string(ch.AppendText(nil))), maxReportText)
		case string(ch.Name()) == "stanza-id" && string(ch.NS()) == ns.SID && len(r.ids) < maxReportIDs:
			if v, _ := ch.AppendAttr(nil, "id"); len(v) > 0 && len(v) <= 64 {
				r.ids = append(r.ids, string(v))
			}
		}
	}
	return r, true
}

// Evidence reads the messages a report points at from the reporter's archive (the mam
// module installs one with SetEvidence). Messages returns, of the stanza-ids ids in
// user's archive, the messages that came from the bare JID from, in the order of ids,
// with the time each was archived; the others are left out. Raw is the message as
// archived, with its namespace declared.
type Evidence interface {
	Messages(user string, from jid.JID, ids []string) []Archived
}

// Archived is a message Evidence found.
type Archived struct {
	At  time.Time
	Raw []byte
}

var evidence sync.Map // store.Store -> Evidence

// SetEvidence installs e as the archive reports of the server whose store is st read (a
// nil e removes it).
func SetEvidence(st store.Store, e Evidence) {
	if e == nil {
		evidence.Delete(st)
		return
	}
	evidence.Store(st, e)
}

// handleReports logs each report of a block request and forwards it to the abuse desk.
func (m *Mod) handleReports(c module.Context, reporter jid.JID, reports []report) {
	var ev Evidence
	if v, ok := evidence.Load(c.Store()); ok {
		ev = v.(Evidence)
	}
	l := c.Logger()
	for _, r := range reports {
		reportTo := *m.reportTo.Load().For(reporter.Domain())
		forward := len(reportTo) > 0 && m.budget.take(reporter.Bare().String(), c.Now())
		var msgs []Archived
		if forward && ev != nil && len(r.ids) > 0 {
			msgs = ev.Messages(reporter.Bare().String(), r.jid, r.ids)
		}
		l.Info().Str("reporter", reporter.Bare().String()).Str("reported", r.jid.String()).
			Str("reason", r.reason).Int("messages", len(msgs)).Bool("forwarded", forward).Msg("blocking: abuse report")
		if !forward {
			continue
		}
		for _, to := range reportTo {
			c.Route(m.forward(reporter, to, r, msgs))
		}
	}
}

// forward builds the message that takes report r to the abuse desk to: a body for a
// person, the report with the reported JID, and the reported messages as XEP-0297
// forwards, as many as fit in maxReportBytes.
func (m *Mod) forward(reporter, to jid.JID, r report, msgs []Archived) []byte {
	kind := "spam"
	if r.reason == ReasonAbuse {
		kind = "abuse"
	}
	body := reporter.Bare().String() + " reported " + r.jid.String() + " for " + kind
	if r.text != "" {
		body += ": " + r.text
	}
	if len(msgs) > 0 {
		body += "\n(" + strconv.Itoa(len(msgs)) + " reported messages attached)"
	}
	var b xmlstream.Builder
	b.Start("message").Attr("from", reporter.Domain()).Attr("to", to.String()).Attr("type", "normal").
		Attr("id", "report-"+strconv.FormatUint(m.reports.Add(1), 10))
	b.Start("body").Text(body).End()
	b.Start("report").Attr("xmlns", NSReporting).Attr("reason", r.reason)
	b.Start("jid").Attr("xmlns", "urn:xmpp:jid:0").Text(r.jid.String()).End()
	if r.text != "" {
		b.Start("text").Text(r.text).End()
	}
	b.End()
	// XEP-0033 'ofrom': who the report comes from.
	b.Start("addresses").Attr("xmlns", "http://jabber.org/protocol/address")
	b.Start("address").Attr("type", "ofrom").Attr("jid", reporter.Bare().String()).End()
	b.End()
	for _, a := range msgs {
		if len(b.B)+len(a.Raw) > maxReportBytes {
			break
		}
		b.Start("forwarded").Attr("xmlns", ns.Forward)
		b.Start("delay").Attr("xmlns", ns.Delay).Attr("stamp", a.At.UTC().Format("2006-01-02T15:04:05.000Z")).End()
		b.Raw(a.Raw)
		b.End()
	}
	b.End()
	return b.B
}
