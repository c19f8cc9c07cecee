package compare

import (
	"fmt"
	"slices"
	"strings"

	"github.com/vireo-im/vireo/bench/scenario"
)

// hasMAM reports whether r comes from a run that had the archive query scenario.
func hasMAM(r Report) bool {
	return slices.ContainsFunc(r.Servers, func(sv ServerResult) bool { return len(sv.MAM) > 0 })
}

// hasPEP reports whether r comes from a run that had the PEP storm.
func hasPEP(r Report) bool {
	return slices.ContainsFunc(r.Servers, func(sv ServerResult) bool { return len(sv.PEP) > 0 })
}

// plainMsgCPU is the server's CPU per delivered message in the messaging scenario of the
// same report (the moderate step, else the best step of the search), 0 if it did not run.
func plainMsgCPU(sv ServerResult, limit float64) float64 {
	if len(sv.Moderate) > 0 {
		return median(collect(sv.Moderate, func(m scenario.MsgResult) float64 { return m.ServerCPUPerMsg }))
	}
	var xs []float64
	for _, m := range bestOf(sv, limit) {
		if m.Delivered > 0 {
			xs = append(xs, m.ServerCPUPerMsg)
		}
	}
	return median(xs)
}

// mamSection writes the archive query scenario: the fill (messaging with archiving on),
// then the queries' latency and CPU, medians over the runs.
func mamSection(b *strings.Builder, r Report) {
	s := r.Suite
	b.WriteString("\n## Archive queries (XEP-0313)\n\n")
	fmt.Fprintf(b, "%s users online; the archives are filled through the server with %s one-to-one chat messages, each user writing with %d ring "+
		"contacts (i±1, i±2, …), so a pair shares about %s messages and each message lands in two archives (sender's and recipient's). "+
		"The fill offers messages in 2-s chunks from %s/s, raising the rate by a quarter while the server keeps up and lowering it when a backlog "+
		"builds, so it runs at about what the server sustains (a short fill can end before the rate gets there: *fill msgs/s* is what it "+
		"reached); *server µs/message* is the server's CPU over the whole fill per delivered message, "+
		"two archive writes included. Then %s queries, %d in flight, each from a random user for the last %d messages with one of its contacts: "+
		"`<query xmlns='urn:xmpp:mam:2'>` with a `with` field and RSM `<max>%d</max><before/>`, timed from the IQ sent to its result (after every "+
		"result message). The first run fills; the others query the same archives on the same process. Prosody and ejabberd load their "+
		"archive module only for this scenario (mod_mam with Prosody's default internal storage; ejabberd's mod_mam, `default: always`, in Mnesia); "+
		"Vireo, which archives by default, archives only in this scenario too: its other figures, messaging included, are without archiving, like the peers'.\n\n",
		num(float64(s.MAMUsers)), num(float64(s.MAMMessages)), s.MAMContacts,
		num(float64(s.MAMMessages)/max(1, float64(s.MAMUsers*s.MAMContacts/2))), num(float64(s.MAMFillRate)),
		num(float64(s.MAMQueries)), s.MAMConc, s.MAMMax, s.MAMMax)
	if s.MAMPlainMessages > 0 {
		fmt.Fprintf(b, "Before the fill, on a fresh process with archiving off (Vireo's `mam` module disabled, Prosody and ejabberd without theirs), "+
			"the same fill of %s messages is the plain reference: *server µs/message, no archive*. The messaging scenario's figure is beside it "+
			"when the run had that scenario too (no server archives there). The plain fill is short and runs at the fill's starting rate, so its figure carries more fixed cost per message than a long fill at full speed: compare the columns at similar rates.\n\n", num(float64(s.MAMPlainMessages)))
	}
	b.WriteString("| server | fill msgs/s | server µs/message, archiving | fill msgs/s, no archive | server µs/message, no archive | " +
		"server µs/message, messaging scenario | delivered / sent |\n|---|---|---|---|---|---|---|\n")
	for _, sv := range r.Servers {
		if len(sv.MAM) == 0 {
			fmt.Fprintf(b, "| %s | — | — | — | — | — | — |\n", sv.Name)
			continue
		}
		f := sv.MAM[0].Fill
		msg := "—"
		if c := plainMsgCPU(sv, s.P99LimitMs); c > 0 {
			msg = fmt.Sprintf("%.1f", c)
		}
		prate, pcpu := "—", "—"
		if p := sv.MAM[0].Plain; p != nil {
			prate, pcpu = num(p.PerSecond), fmt.Sprintf("%.1f", p.ServerCPUPerMsg)
		}
		fmt.Fprintf(b, "| %s | %s | **%.1f** | %s | %s | %s | %s / %s |\n", sv.Name, num(f.PerSecond), f.ServerCPUPerMsg, prate, pcpu, msg,
			num(float64(f.Delivered)), num(float64(f.Sent)))
	}
	b.WriteString("\n| server | queries | results per query | p50 ms | p90 ms | p99 ms | queries/s | server CPU µs/query | generator CPU µs/query | failures |\n" +
		"|---|---|---|---|---|---|---|---|---|---|\n")
	for _, sv := range r.Servers {
		if len(sv.MAM) == 0 {
			fmt.Fprintf(b, "| %s | — | | | | | | | | |\n", sv.Name)
			continue
		}
		get := func(f func(scenario.MAMResult) float64) []float64 { return collect(sv.MAM, f) }
		q := get(func(m scenario.MAMResult) float64 { return float64(m.Queries) })
		per := get(func(m scenario.MAMResult) float64 { return m.PerQuery })
		p50 := get(func(m scenario.MAMResult) float64 { return m.P50ms })
		p90 := get(func(m scenario.MAMResult) float64 { return m.P90ms })
		p99 := get(func(m scenario.MAMResult) float64 { return m.P99ms })
		qps := get(func(m scenario.MAMResult) float64 { return m.QueriesPerSec })
		cpu := get(func(m scenario.MAMResult) float64 { return m.ServerCPUPerQuery })
		gen := get(func(m scenario.MAMResult) float64 { return m.GenCPUPerQuery })
		fl := get(func(m scenario.MAMResult) float64 { return float64(m.Failures) })
		fmt.Fprintf(b, "| %s | %s | %.1f | **%.2f**%s | %.2f | **%.2f**%s | %s | **%s**%s | %s | %.0f |\n", sv.Name, num(sum(q)), median(per),
			median(p50), msSpread(p50), median(p90), median(p99), msSpread(p99), num(median(qps)), num(median(cpu)), spread(cpu), num(median(gen)), sum(fl))
	}
	for _, sv := range r.Servers {
		for _, m := range sv.MAM {
			if m.FirstFailure != "" {
				fmt.Fprintf(b, "\n%s's first failed query: %s\n", sv.Name, strings.ReplaceAll(oneLine(m.FirstFailure), "<", "&lt;"))
				break
			}
		}
	}
}

// pepSection writes the PEP storm: notifications per second and CPU per notification,
// medians over the runs.
func pepSection(b *strings.Builder, r Report) {
	s := r.Suite
	n := float64(s.PEPUsers)
	b.WriteString("\n## PEP storm (XEP-0163)\n\n")
	fmt.Fprintf(b, "%s users, every one a mutual contact of every other (rosters written as the server's own files where it has that path, "+
		"else made in-band), log in and send presence with XEP-0115 caps that include `urn:xmpp:avatar:metadata+notify`, answering the "+
		"server's disco#info for them. Before that, with nobody available, each user publishes a first item, so that the node exists as a "+
		"user's avatar node does (refused ones are tried again one at a time, four more times at most). Once every user has seen every contact available and then no stanza has arrived for 3 s, every user publishes one XEP-0084 avatar metadata item at once. "+
		"Counted: the notifications from contacts, each (receiver, publisher) once, %s expected; per second from the first publish to the last "+
		"notification, and the server's CPU over the same interval per notification. Latency runs from a publish sent to each notification "+
		"of it. Prosody and ejabberd load PEP (ejabberd: mod_pubsub's pep plugin and mod_caps) only for this scenario; each run starts a fresh process.\n\n",
		num(n), num(n*(n-1)))
	b.WriteString("| server | notifications/s | server CPU µs/notification | generator CPU µs/notification | p50 ms | p99 ms | received / expected | " +
		"publishes refused | caps queries | login and presence s | rosters |\n|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, sv := range r.Servers {
		if len(sv.PEP) == 0 {
			fmt.Fprintf(b, "| %s | — | | | | | | | | | |\n", sv.Name)
			continue
		}
		get := func(f func(scenario.PEPResult) float64) []float64 { return collect(sv.PEP, f) }
		ps := get(func(p scenario.PEPResult) float64 { return p.PerSecond })
		cpu := get(func(p scenario.PEPResult) float64 { return p.ServerCPUPerNotify })
		gen := get(func(p scenario.PEPResult) float64 { return p.GenCPUPerNotify })
		p50 := get(func(p scenario.PEPResult) float64 { return p.P50ms })
		p99 := get(func(p scenario.PEPResult) float64 { return p.P99ms })
		u := get(func(p scenario.PEPResult) float64 { return float64(p.Unique) })
		fails := get(func(p scenario.PEPResult) float64 { return float64(p.PublishFails) })
		caps := get(func(p scenario.PEPResult) float64 { return float64(p.CapsQueries) })
		login := get(func(p scenario.PEPResult) float64 { return p.LoginSeconds })
		refused := fmt.Sprintf("%.0f", sum(fails))
		if sf := sum(get(func(p scenario.PEPResult) float64 { return float64(p.SetupFails) })); sf > 0 {
			refused += fmt.Sprintf(" (and %.0f first publishes, five tries each)", sf)
		}
		prov := "written beforehand"
		if p := sv.PEP[0]; p.SubscribeSeconds > 0 {
			prov = fmt.Sprintf("%s subscriptions in-band in %.1f s", num(float64(p.Subscriptions)), p.SubscribeSeconds)
		}
		fmt.Fprintf(b, "| %s | **%s**%s | **%.2f**%s | %.2f | %.1f | %.1f | %s / %s | %s | %s | %.1f | %s |\n", sv.Name, num(median(ps)), spread(ps),
			median(cpu), ratioSpread(cpu), median(gen), median(p50), median(p99), num(median(u)), num(float64(sv.PEP[0].Expected)), refused,
			num(median(caps)), median(login), prov)
	}
	for _, sv := range r.Servers {
		for _, p := range sv.PEP {
			if p.PublishErrorFirst != "" {
				fmt.Fprintf(b, "\n%s's first refused publish: %s\n", sv.Name, strings.ReplaceAll(oneLine(p.PublishErrorFirst), "<", "&lt;"))
				break
			}
		}
	}
}

// msSpread is the range of latencies in milliseconds, two decimals.
func msSpread(xs []float64) string {
	if len(xs) < 2 {
		return ""
	}
	return fmt.Sprintf(" (%.2f–%.2f)", slices.Min(xs), slices.Max(xs))
}
