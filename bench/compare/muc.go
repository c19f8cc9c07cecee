package compare

import (
	"fmt"
	"slices"
	"strings"

	"github.com/vireo-im/vireo/bench/scenario"
)

// mucPoints returns, for the room of size n, each repetition's point of server sv.
func mucPoints(sv ServerResult, n int) []scenario.MUCPoint {
	var out []scenario.MUCPoint
	for _, r := range sv.MUC {
		for _, p := range r.Points {
			if p.Occupants == n {
				out = append(out, p)
			}
		}
	}
	return out
}

// mucSection writes the groupchat fan-out: per room size, each server's highest delivered
// rate with p99 within the limit (median run), CPU per delivered stanza there, and the
// joins; then every step.
func mucSection(b *strings.Builder, r Report) {
	s := r.Suite
	b.WriteString("\n## Groupchat fan-out (XEP-0045)\n\n")
	what := fmt.Sprintf("the offered rate (in delivered stanzas per second) doubles from %d/s while p99 ≤ %.0f ms and nothing is lost, "+
		"then is bisected to within 20%% (a failing step is tried twice)", s.MUCRateStart, s.P99LimitMs)
	if s.MUCFixed > 0 {
		what = fmt.Sprintf("one step at an offered %d delivered stanzas per second", s.MUCFixed)
	}
	fmt.Fprintf(b, "One room per size on the server's MUC service, one session per occupant, all joined before the messages "+
		"(%d joins in flight, 4 in rooms over 1,000 where each join already fans out to thousands; no history); %.0f%% of the occupants talk, groupchat messages with the send time in the body, each step lasting %v; "+
		"%s. A message counts once per occupant that receives it (the sender's reflection included), so delivered stanzas per second are "+
		"messages per second times occupants. *Last join* is the join of the last occupant alone, into the full room: from its presence to its "+
		"self-presence, after the list of every other occupant.\n\n", s.Conc, 100*s.MUCTalkers, s.StepDuration, what)
	b.WriteString("| occupants | server | highest delivered/s | msgs/s | p50 ms | p99 ms | server CPU µs/stanza | generator CPU µs/stanza | all joins s | last join ms |\n" +
		"|---|---|---|---|---|---|---|---|---|---|\n")
	for _, n := range s.MUCSizes {
		for _, sv := range r.Servers {
			ps := mucPoints(sv, n)
			if len(ps) == 0 {
				continue
			}
			bests := make([]scenario.MsgResult, len(ps))
			for i, p := range ps {
				bests[i] = p.Best
			}
			mi := medianRun(bests)
			p := ps[max(mi, 0)]
			if p.Error != "" && p.Best.Delivered == 0 {
				fmt.Fprintf(b, "| %d | %s | — (%s) | | | | | | | |\n", n, sv.Name, strings.ReplaceAll(oneLine(p.Error), "<", "&lt;"))
				continue
			}
			if mi < 0 || p.Best.Delivered == 0 {
				// No step kept p99 within the limit: the lowest step, marked.
				if len(p.Steps) == 0 {
					fmt.Fprintf(b, "| %d | %s | — | | | | | | %.1f | %.1f |\n", n, sv.Name, p.JoinSeconds, p.LastJoinMs)
					continue
				}
				m := p.Steps[0]
				for _, st := range p.Steps {
					if st.Delivered > 0 && (m.Delivered == 0 || st.OfferedRate < m.OfferedRate) {
						m = st
					}
				}
				fmt.Fprintf(b, "| %d | %s | none within the limit; lowest step: %s (lost %d) | %d | %.2f | %.2f | %.2f | %.2f | %.1f | %.1f |\n", n, sv.Name,
					num(m.DeliveredPerSec), m.Loss, m.OfferedRate, m.P50ms, m.P99ms, m.ServerCPUPerMsg, m.GenCPUPerMsg, p.JoinSeconds, p.LastJoinMs)
				continue
			}
			m := p.Best
			rates := collect(bests, func(m scenario.MsgResult) float64 { return m.DeliveredPerSec })
			fmt.Fprintf(b, "| %d | %s | **%s**%s | %d | %.2f | %.2f | **%.2f** | %.2f | %.1f | %.1f |\n", n, sv.Name, num(m.DeliveredPerSec), spread(rates),
				m.OfferedRate, m.P50ms, m.P99ms, m.ServerCPUPerMsg, m.GenCPUPerMsg, p.JoinSeconds, p.LastJoinMs)
		}
	}
	b.WriteString("\nEvery step (median run):\n\n| occupants | server | msgs/s offered | delivered/s | lost | p50 ms | p99 ms | server µs/stanza |\n|---|---|---|---|---|---|---|---|\n")
	for _, n := range s.MUCSizes {
		for _, sv := range r.Servers {
			ps := mucPoints(sv, n)
			if len(ps) == 0 {
				continue
			}
			bests := make([]scenario.MsgResult, len(ps))
			for i, p := range ps {
				bests[i] = p.Best
			}
			p := ps[max(medianRun(bests), 0)]
			for _, m := range p.Steps {
				fmt.Fprintf(b, "| %d | %s | %d | %s | %d | %.2f | %.2f | %.2f |\n", n, sv.Name, m.OfferedRate, num(m.DeliveredPerSec), m.Loss, m.P50ms, m.P99ms, m.ServerCPUPerMsg)
			}
		}
	}
}

// hasMUC reports whether r comes from a run that had the groupchat fan-out.
func hasMUC(r Report) bool {
	return slices.ContainsFunc(r.Servers, func(sv ServerResult) bool { return len(sv.MUC) > 0 })
}
