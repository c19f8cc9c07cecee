package compare

import (
	"fmt"
	"strconv"
	"strings"
)

func hasSoak(r Report) bool {
	for _, sv := range r.Servers {
		if len(sv.Soak) > 0 {
			return true
		}
	}
	return false
}

// soakSection reports each soak run: what the load did, what must not happen (loss,
// failed logins or resumes, growth of descriptors and threads), and the memory at each
// quiet sample.
func soakSection(b *strings.Builder, r Report) {
	c := r.Suite.Soak
	b.WriteString("\n## Soak\n\n")
	fmt.Fprintf(b, "%d cycles of %v load, each followed by a quiet sample (the load stopped, every message arrived, %v later). "+
		"During the load: %d sessions with stream management stay online and receive %d tracked messages/s from %d senders; "+
		"one of them loses its TCP connection every %v on average (exponential gaps) and resumes at once; %d sleepers are offline and "+
		"collect what was stored for them after each cycle; %d churn loops log in, query the roster, add and remove a contact, visit a groupchat room (join, no more occupants than can be there, a message seen echoed, leave, or only log out every other time) and log out "+
		"(every other over direct TLS, as is every fourth stable session; every tenth attempt with a wrong password, which must be refused); archiving (XEP-0313) is on; a connection that sends malformed XML every %v must get a stream error and a close. "+
		"Growth per cycle is fitted over the samples from cycle 1 on (the first load fills caches and pools).\n\n",
		c.Cycles, c.Load, c.Settle, c.Stable, c.Rate, c.Senders, c.DropEvery, c.Sleepers, c.Churners, c.BadEvery)
	b.WriteString("| server | tracked messages | lost / dup / misrouted / bounced | drops → resumed | churn logins (failed) | wrong passwords refused (let in) | malformed closed (not) | RSS per cycle | live heap per cycle | open files Δ | threads Δ | goroutines Δ | server CPU ms/s | problems |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, sv := range r.Servers {
		for i, x := range sv.Soak {
			d := x.Delivery
			probs := "none"
			if i < len(sv.SoakProblems) && len(sv.SoakProblems[i]) > 0 {
				probs = oneLine(strings.Join(sv.SoakProblems[i], "; "))
			}
			live := "—"
			if x.LiveHeapPerCycle != 0 {
				live = signedBytes(x.LiveHeapPerCycle)
			}
			gor := "—"
			if x.Points[len(x.Points)-1].Goroutines > 0 {
				gor = fmt.Sprintf("%+d", x.GoroutineGrowth)
			}
			fmt.Fprintf(b, "| %s | %s | %d / %d / %d / %d | %s → %s | %s (%d) | %d (%d) | %d (%d) | %s | %s | %+d | %+d | %s | %.0f | %s |\n",
				sv.Name, num(float64(d.Sent)), d.Lost, d.Duplicates, d.Misrouted, d.Bounced, num(float64(x.Drops)), num(float64(x.Resumes)),
				num(float64(x.ChurnLogins)), x.ChurnFailures, x.WrongRefused, x.WrongAccepted, x.BadClosed, x.BadOther,
				signedBytes(x.RSSPerCycle), live, x.FDGrowth, x.ThreadGrowth, gor, x.ServerCPUPerS, probs)
		}
	}
	b.WriteString("\nQuiet samples of each server's first run:\n\n| server | cycle | RSS MiB | live heap MiB | open files | threads | goroutines |\n|---|---|---|---|---|---|---|\n")
	for _, sv := range r.Servers {
		if len(sv.Soak) == 0 {
			continue
		}
		for _, p := range sv.Soak[0].Points {
			live := "—"
			if p.LiveHeap > 0 {
				live = fmt.Sprintf("%.1f", float64(p.LiveHeap)/(1<<20))
			}
			gor := "—"
			if p.Goroutines > 0 {
				gor = strconv.FormatInt(p.Goroutines, 10)
			}
			fmt.Fprintf(b, "| %s | %d | %.1f | %s | %d | %d | %s |\n", sv.Name, p.Cycle, float64(p.Server.RSS)/(1<<20), live, p.FDs, p.Threads, gor)
		}
	}
}

// signedBytes is a growth in bytes, in KiB above 10 KiB.
func signedBytes(x float64) string {
	if x > 10<<10 || x < -10<<10 {
		return fmt.Sprintf("%+.0f KiB", x/1024)
	}
	return fmt.Sprintf("%+.0f B", x)
}
