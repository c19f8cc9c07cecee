package compare

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vireo-im/vireo/bench/peers"
	"github.com/vireo-im/vireo/bench/scenario"
)

// Write stores r under dir as <name>.json and <name>.md with the plots beside them.
func Write(r Report, dir, name string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, name+".json"), b, 0o644); err != nil {
		return err
	}
	plots, err := Plots(r, dir, name)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, name+".md"), []byte(Markdown(r, plots)), 0o644)
}

// Load reads a report written by Write.
func Load(path string) (Report, error) {
	var r Report
	b, err := os.ReadFile(path)
	if err != nil {
		return r, err
	}
	return r, json.Unmarshal(b, &r)
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	c := slices.Clone(xs)
	slices.Sort(c)
	if len(c)%2 == 1 {
		return c[len(c)/2]
	}
	return (c[len(c)/2-1] + c[len(c)/2]) / 2
}

func spread(xs []float64) string {
	if len(xs) < 2 {
		return ""
	}
	return fmt.Sprintf(" (%s–%s)", num(slices.Min(xs)), num(slices.Max(xs)))
}

// num prints with thousands separators and no decimals at or above 100.
func num(x float64) string {
	if x < 100 && x > -100 {
		return fmt.Sprintf("%.1f", x)
	}
	s := fmt.Sprintf("%.0f", x)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func collect[T any](xs []T, f func(T) float64) []float64 {
	out := make([]float64, 0, len(xs))
	for _, x := range xs {
		out = append(out, f(x))
	}
	return out
}

// bestOf is each repetition's highest passing step of the rate search.
func bestOf(s ServerResult, limit float64) []scenario.MsgResult {
	var out []scenario.MsgResult
	for _, steps := range s.Search {
		out = append(out, scenario.Best(steps, limit))
	}
	return out
}

// medianRun is the index of the repetition whose best rate is the median one.
func medianRun(bests []scenario.MsgResult) int {
	idx := make([]int, len(bests))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int {
		switch {
		case bests[a].DeliveredPerSec < bests[b].DeliveredPerSec:
			return -1
		case bests[a].DeliveredPerSec > bests[b].DeliveredPerSec:
			return 1
		}
		return 0
	})
	if len(idx) == 0 {
		return -1
	}
	return idx[len(idx)/2]
}

// Markdown renders r; plots maps a plot's role to its file name beside the report.
func Markdown(r Report, plots map[string]string) string {
	var b strings.Builder
	s := r.Suite
	fmt.Fprintf(&b, "# XMPP servers side by side (%s suite)\n\n", s.Name)
	fmt.Fprintf(&b, "Measured %s on %s, %d cores, %d GiB, %s, kernel %s, %s; open-files limit %s. The run took %.0f minutes.\n\n",
		r.Date, r.Machine.CPU, r.Machine.Cores, r.Machine.MemoryGiB, r.Machine.OS, r.Machine.Kernel, r.Machine.Go, r.Machine.OpenFiles, r.Duration/60)
	fmt.Fprintf(&b, "Command: `%s`\n\n", r.Command)
	if len(r.Servers) == 0 && len(r.S2S) > 0 {
		s2sSection(&b, r)
		return b.String()
	}
	b.WriteString("| server | version |\n|---|---|\n")
	for _, sv := range r.Servers {
		fmt.Fprintf(&b, "| %s | %s |\n", sv.Name, sv.Version)
	}
	fmt.Fprintf(&b, "\nEvery server runs alone, on loopback, from the configs in `bench/peers/`, with the same certificate (self-signed ECDSA P-256), "+
		"virtual host and accounts (SCRAM-SHA-1, 4,096 iterations); the generator (`bench/loadgen`) runs beside it on the same cores. "+
		"So throughput is shared between the two; **server CPU per operation** (from `/proc/PID/stat`) is the figure that compares fairly. "+
		"Each scenario ran %d time(s); tables quote the median with the range in brackets.\n\n", s.Reps)
	b.WriteString(aims(r))

	if s.runs("idle") {
		b.WriteString("## Idle sessions\n\n")
		fmt.Fprintf(&b, "Authenticated, bound sessions with initial presence, ramped to %v at up to %d logins/s with %d in flight, held 3 s at each size; "+
			"server RSS and PSS from `/proc/PID`. Bytes per session is the least-squares slope of RSS over the sizes, so the "+
			"server's fixed footprint drops out (a fit over several sizes, since each sample lands at a random point of the server's collection cycle). A fresh server process for each run.\n\n", s.IdleSizes, s.IdleRate, s.Conc)
		b.WriteString("*Live heap* is what the server's last collection found reachable (Vireo's `go_gc_heap_live_bytes`, scraped with each sample; " +
			"— for a server that does not report it): the RSS slope is that plus the collector's headroom (`gc_percent = 50` here), memory freed but not yet " +
			"returned to the kernel, and buffers the login ramp left in pools.\n\n")
		b.WriteString("| server | transport | RSS bytes/session | PSS bytes/session | live heap bytes/session | RSS at the largest size | ramp logins/s | failures |\n|---|---|---|---|---|---|---|---|\n")
		for _, sv := range r.Servers {
			for _, x := range []struct {
				name string
				rs   []scenario.IdleResult
			}{{"plain", sv.IdlePlain}, {"TLS 1.3", sv.IdleTLS}} {
				if len(x.rs) == 0 {
					fmt.Fprintf(&b, "| %s | %s | — | — | — | — | — | — |\n", sv.Name, x.name)
					continue
				}
				rss := collect(x.rs, func(i scenario.IdleResult) float64 { return i.RSSPerSession })
				pss := collect(x.rs, func(i scenario.IdleResult) float64 { return i.PSSPerSession })
				top := collect(x.rs, func(i scenario.IdleResult) float64 { return float64(i.Points[len(i.Points)-1].Server.RSS) / (1 << 20) })
				ramp := collect(x.rs, func(i scenario.IdleResult) float64 { return i.LoginsPerSecond })
				fails := collect(x.rs, func(i scenario.IdleResult) float64 { return float64(i.Failures) })
				live := collect(x.rs, func(i scenario.IdleResult) float64 { return i.LiveHeapPerSession })
				fmt.Fprintf(&b, "| %s | %s | **%s**%s | %s%s | %s | %s MiB | %s | %.0f |\n", sv.Name, x.name, num(median(rss)), spread(rss),
					num(median(pss)), spread(pss), medianOrDash(live), num(median(top)), num(median(ramp)), slices.Max(fails))
			}
		}
		for _, k := range []string{"idle_plain", "idle_tls"} {
			if f := plots[k]; f != "" {
				fmt.Fprintf(&b, "\n![%s](%s)\n", k, f)
			}
		}

	}
	if s.runs("login") {
		b.WriteString("\n## Login storm\n\n")
		fmt.Fprintf(&b, "%d (plain TCP) and %d (direct TLS 1.3) fresh logins — connect, SCRAM-SHA-1, bind, close — with %d in flight, as fast as the server takes them; "+
			"then the TLS logins again, each resuming an earlier connection's TLS session with its ticket (\"resumed\": the handshake has no certificate and no signature).\n\n",
			s.Logins, s.LoginsTLS, s.Conc)
		if s.ClassicTLS {
			b.WriteString("The generator offered only classical key exchanges (X25519, then P-256; `-tls-classic`), so every server did the same handshake.\n\n")
		} else {
			b.WriteString("The generator (Go's crypto/tls) offers the X25519MLKEM768 post-quantum hybrid first and X25519 beside it: Vireo picks the hybrid, about 60 µs more per handshake here; OpenSSL 3.0 (Debian 12's Prosody and ejabberd) cannot, and does X25519. `-tls-classic` offers every server X25519 alone.\n\n")
		}
		b.WriteString("| server | transport | logins/s | server CPU µs/login | generator CPU µs/login | failures |\n|---|---|---|---|---|---|\n")
		for _, sv := range r.Servers {
			for _, x := range []struct {
				name string
				rs   []scenario.LoginResult
			}{{"plain", sv.LoginPlain}, {"TLS 1.3", sv.LoginTLS}, {"TLS 1.3 resumed", sv.LoginTLSResumed}} {
				if x.name == "TLS 1.3 resumed" && len(x.rs) == 0 {
					continue // reports from before the resumed storm existed
				}
				if len(x.rs) == 0 {
					fmt.Fprintf(&b, "| %s | %s | — | — | — | — |\n", sv.Name, x.name)
					continue
				}
				lps := collect(x.rs, func(l scenario.LoginResult) float64 { return l.LoginsPerSecond })
				sc := collect(x.rs, func(l scenario.LoginResult) float64 { return l.ServerCPUPerLogin })
				gc := collect(x.rs, func(l scenario.LoginResult) float64 { return l.GenCPUPerLogin })
				fl := collect(x.rs, func(l scenario.LoginResult) float64 { return float64(l.Failures) })
				fmt.Fprintf(&b, "| %s | %s | **%s**%s | %s%s | %s | %.0f |\n", sv.Name, x.name, num(median(lps)), spread(lps), num(median(sc)), spread(sc), num(median(gc)), slices.Max(fl))
			}
		}
		if f := plots["logins"]; f != "" {
			fmt.Fprintf(&b, "\n![logins](%s)\n", f)
		}

	}
	if s.runs("fast") && hasFast(r) {
		fastSection(&b, r)
	}
	if s.runs("guest") {
		guestSection(&b, r)
	}
	if s.runs("msg") {
		b.WriteString("\n## One-to-one messaging\n\n")
		fmt.Fprintf(&b, "%d online users; chat messages between random pairs at an offered rate, the send time in the body; each step lasts %v. "+
			"The rate doubles from %d/s while p99 ≤ %.0f ms and nothing is lost, then is bisected to within 10%%; a failing step is tried a second time "+
			"before it counts (one collector pause in 5 s can exceed the limit at a rate the server otherwise sustains), so failed rates appear twice below. "+
			"The table gives each server's highest passing rate (median run) and the latency and CPU at that rate.\n\n",
			s.Users, s.StepDuration, s.RateStart, s.P99LimitMs)
		b.WriteString("| server | highest rate msgs/s | p50 ms | p95 ms | p99 ms | server CPU µs/msg | generator CPU µs/msg |\n|---|---|---|---|---|---|---|\n")
		for _, sv := range r.Servers {
			bests := bestOf(sv, s.P99LimitMs)
			mi := medianRun(bests)
			if mi < 0 {
				fmt.Fprintf(&b, "| %s | — | — | — | — | — | — |\n", sv.Name)
				continue
			}
			m := bests[mi]
			rates := collect(bests, func(m scenario.MsgResult) float64 { return m.DeliveredPerSec })
			fmt.Fprintf(&b, "| %s | **%s**%s | %.2f | %.2f | %.2f | %.1f | %.1f |\n", sv.Name, num(m.DeliveredPerSec), spread(rates), m.P50ms, m.P95ms, m.P99ms, m.ServerCPUPerMsg, m.GenCPUPerMsg)
		}
		if f := plots["messaging"]; f != "" {
			fmt.Fprintf(&b, "\n![messaging](%s)\n", f)
		}
		b.WriteString("\nEvery step of the median run:\n\n| server | offered/s | delivered/s | lost | p50 ms | p99 ms | server µs/msg |\n|---|---|---|---|---|---|---|\n")
		for _, sv := range r.Servers {
			mi := medianRun(bestOf(sv, s.P99LimitMs))
			if mi < 0 {
				continue
			}
			for _, m := range sv.Search[mi] {
				fmt.Fprintf(&b, "| %s | %s | %s | %d | %.2f | %.2f | %.1f |\n", sv.Name, num(float64(m.OfferedRate)), num(m.DeliveredPerSec), m.Loss, m.P50ms, m.P99ms, m.ServerCPUPerMsg)
			}
		}

	}
	if s.runs("presence") {
		b.WriteString("\n## Presence storm\n\n")
		fmt.Fprintf(&b, "%d users, each subscribed to the next %d (a ring: %d contacts per roster), all log in at once and send initial presence; "+
			"counted: available presence stanzas from contacts delivered to the generator, per second from the first login to the last delivery "+
			"(logins included). Rosters are made in-band, except where the server's own data files are written beforehand (Prosody).\n\n",
			s.PresenceUsers, s.Contacts, 2*s.Contacts)
		fmt.Fprintf(&b, "Each user should see %d contacts come online, %s in all. A presence can arrive twice when two contacts log in at the same "+
			"moment (the answer to a probe and the broadcast; RFC 6121 allows it), so rates and CPU are per unique (receiver, contact) pair.\n\n",
			s.Contacts, num(float64(s.PresenceUsers*s.Contacts)))
		b.WriteString("| server | unique presence seen | presence stanzas delivered | unique presence/s | server CPU µs/presence (incl. logins) | in-band roster provisioning |\n|---|---|---|---|---|---|\n")
		for _, sv := range r.Servers {
			if len(sv.Presence) == 0 {
				fmt.Fprintf(&b, "| %s | — | — | — | — | — |\n", sv.Name)
				continue
			}
			u := collect(sv.Presence, func(p scenario.PresenceResult) float64 { return float64(p.Unique) })
			d := collect(sv.Presence, func(p scenario.PresenceResult) float64 { return float64(p.Delivered) })
			ps := collect(sv.Presence, func(p scenario.PresenceResult) float64 { return p.PerSecond })
			c := collect(sv.Presence, func(p scenario.PresenceResult) float64 { return p.ServerCPUPerPresence })
			prov := "written beforehand"
			if p := sv.Presence[0]; p.SubscribeSeconds > 0 {
				prov = fmt.Sprintf("%s subscriptions in %.1f s", num(float64(p.Subscriptions)), p.SubscribeSeconds)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | **%s**%s | %s%s | %s |\n", sv.Name, num(median(u)), num(median(d)), num(median(ps)), spread(ps), num(median(c)), spread(c), prov)
		}

	}
	if s.runs("resume") && s.ResumeSessions > 0 {
		resumeSection(&b, r)
	}
	if s.runs("ws") && hasWS(r) {
		wsSection(&b, r)
	}
	if s.runs("s2s") && len(r.S2S) > 0 {
		s2sSection(&b, r)
	}
	if s.runs("muc") && hasMUC(r) {
		mucSection(&b, r)
	}
	if s.runs("soak") && hasSoak(r) {
		soakSection(&b, r)
	}
	if s.runs("mam") && hasMAM(r) {
		mamSection(&b, r)
	}
	if s.runs("pep") && hasPEP(r) {
		pepSection(&b, r)
	}

	var errs bool
	for _, sv := range r.Servers {
		if len(sv.Errors) > 0 {
			if !errs {
				b.WriteString("\n## Failures\n\n")
				errs = true
			}
			for _, e := range sv.Errors {
				fmt.Fprintf(&b, "- %s: %s\n", sv.Name, e)
			}
		}
	}

	b.WriteString("\n## Settings that differ from each server's defaults\n")
	for _, sv := range r.Servers {
		fmt.Fprintf(&b, "\n**%s**\n\n| setting | why |\n|---|---|\n", sv.Name)
		for _, st := range sv.Settings {
			fmt.Fprintf(&b, "| %s | %s |\n", st[0], st[1])
		}
	}
	b.WriteString("\n## Reproduce\n\n```sh\nmake bench-compare   # installs Prosody and ejabberd from Debian when missing; about 40 minutes\n" +
		"# or a subset / a quick pass:\nbin/xmppbench -compare vireo,prosody -suite quick -out /tmp/quick\n" +
		"# the resume storm alone, at a chosen size:\nbin/xmppbench -compare vireo -suite quick -only resume -sessions 1000 -out /tmp/resume\n" +
		"# FAST next to SCRAM alone, 2,000 plain and 1,000 TLS logins per phase:\nbin/xmppbench -compare vireo -suite quick -only fast -logins 2000 -logins-tls 1000 -out /tmp/fast\n" +
		"# XMPP over WebSocket alone (idle ws:// and wss:// next to TCP at 2,000 and 8,000 sessions, messaging over ws://):\nbin/xmppbench -compare vireo -suite quick -only ws -sizes 2000,8000 -out /tmp/ws\n" +
		"# federation between two Vireo processes alone (200 users per side):\nbin/xmppbench -compare vireo -suite quick -only s2s -out /tmp/s2s\n" +
		"# the groupchat fan-out alone (rooms of 10, 100 and 1,000 occupants, 10% talking):\nbin/xmppbench -compare vireo,prosody,ejabberd -only muc -muc-sizes 10,100,1000 -out /tmp/muc\n" +
		"# archive queries alone (quick: 20,000 messages between 200 users; the issue's size below) and the PEP storm alone (quick: 100 users):\n" +
		"bin/xmppbench -compare vireo,prosody,ejabberd -only mam -out /tmp/mam\n" +
		"bin/xmppbench -compare vireo,prosody,ejabberd -only mam -mam-users 10000 -mam-messages 1000000 -out /tmp/mam\n" +
		"bin/xmppbench -compare vireo,prosody,ejabberd -only pep -pep-users 1000 -out /tmp/pep\n" +
		"# redraw this report from its JSON:\nbin/xmppbench -render bench/results/compare.json\n```\n")
	return b.String()
}

// hasWS reports whether r comes from a run that had the WebSocket scenario.
func hasWS(r Report) bool {
	for _, sv := range r.Servers {
		if sv.WebSocket != nil {
			return true
		}
	}
	return false
}

// hasFast reports whether r comes from a run that had the FAST storm (older reports do
// not know it).
// aims is the table of issue 15: each headline figure of Vireo next to its aim and to
// ejabberd's, when the run measured it.
func aims(r Report) string {
	var v, ej *ServerResult
	for i := range r.Servers {
		switch r.Servers[i].Name {
		case "vireo":
			v = &r.Servers[i]
		case "ejabberd":
			ej = &r.Servers[i]
		}
	}
	if v == nil {
		return ""
	}
	type row struct {
		name, aim string
		get       func(*ServerResult) ([]float64, float64) // every run, and the figure quoted
		ok        func(vals []float64, fig float64, ej float64) bool
		unit      string
	}
	idle := func(tls bool) func(*ServerResult) ([]float64, float64) {
		return func(s *ServerResult) ([]float64, float64) {
			rs := s.IdlePlain
			if tls {
				rs = s.IdleTLS
			}
			xs := collect(rs, func(i scenario.IdleResult) float64 { return i.RSSPerSession })
			if len(xs) == 0 {
				return nil, 0
			}
			return xs, slices.Max(xs)
		}
	}
	login := func(tls bool) func(*ServerResult) ([]float64, float64) {
		return func(s *ServerResult) ([]float64, float64) {
			rs := s.LoginPlain
			if tls {
				rs = s.LoginTLS
			}
			xs := collect(rs, func(l scenario.LoginResult) float64 { return l.ServerCPUPerLogin })
			return xs, median(xs)
		}
	}
	best := func(s *ServerResult) []scenario.MsgResult {
		var out []scenario.MsgResult
		for _, m := range bestOf(*s, r.Suite.P99LimitMs) {
			if m.DeliveredPerSec > 0 {
				out = append(out, m)
			}
		}
		return out
	}
	rows := []row{
		{"idle TLS 1.3 session, bytes (RSS slope, worst run)", "≤ 6,144 every run", idle(true),
			func(xs []float64, f, _ float64) bool { return f <= 6144 }, "B"},
		{"idle plain session with presence, bytes (worst run)", "≤ 2,048 every run", idle(false),
			func(xs []float64, f, _ float64) bool { return f <= 2048 }, "B"},
		{"server CPU per SCRAM login, plain", "≤ 125 µs", login(false),
			func(_ []float64, f, _ float64) bool { return f <= 125 }, "µs"},
		{"server CPU per SCRAM login, TLS", "≤ 400 µs", login(true),
			func(_ []float64, f, _ float64) bool { return f <= 400 }, "µs"},
		{"server CPU per delivered 1:1 message near saturation", "≤ 10 µs", func(s *ServerResult) ([]float64, float64) {
			xs := collect(best(s), func(m scenario.MsgResult) float64 { return m.ServerCPUPerMsg })
			return xs, median(xs)
		}, func(_ []float64, f, _ float64) bool { return f <= 10 }, "µs"},
		{fmt.Sprintf("the same at a moderate %s msg/s", num(ModerateRate)), "≤ 10 µs", func(s *ServerResult) ([]float64, float64) {
			xs := collect(s.Moderate, func(m scenario.MsgResult) float64 { return m.ServerCPUPerMsg })
			return xs, median(xs)
		}, func(_ []float64, f, _ float64) bool { return f <= 10 }, "µs"},
		{"highest 1:1 rate at p99 ≤ 100 ms, msgs/s", "≥ 5× ejabberd", func(s *ServerResult) ([]float64, float64) {
			xs := collect(best(s), func(m scenario.MsgResult) float64 { return m.DeliveredPerSec })
			return xs, median(xs)
		}, func(_ []float64, f, e float64) bool { return e > 0 && f >= 5*e }, ""},
	}
	var b strings.Builder
	b.WriteString("## Against the aims (issue 15)\n\n| figure | Vireo | aim | met | ejabberd |\n|---|---|---|---|---|\n")
	for _, rw := range rows {
		xs, f := rw.get(v)
		if len(xs) == 0 {
			continue
		}
		ejs, ejf := "—", 0.0
		if ej != nil {
			if exs, e := rw.get(ej); len(exs) > 0 {
				ejf, ejs = e, num(e)+" "+rw.unit
			}
		}
		met := "no"
		if rw.ok(xs, f, ejf) {
			met = "**yes**"
		} else if rw.aim == "≥ 5× ejabberd" && ejf == 0 {
			met = "— (no ejabberd run)"
		}
		fmt.Fprintf(&b, "| %s | %s %s%s | %s | %s | %s |\n", rw.name, num(f), rw.unit, spread(xs), rw.aim, met, ejs)
	}
	b.WriteString("\nWhere the remaining microseconds and bytes go: [profile.md](profile.md).\n\n")
	return b.String()
}

func hasFast(r Report) bool {
	for _, sv := range r.Servers {
		if len(sv.FastPlain)+len(sv.FastTLS) > 0 || sv.FastUnsupported != "" {
			return true
		}
	}
	return false
}

// fastSection is the FAST storm's part of the report: logins/s and server CPU per login of
// each phase, and FAST's cost relative to SCRAM's, run by run.
func fastSection(b *strings.Builder, r Report) {
	s := r.Suite
	mech, fmech := "SCRAM", scenario.FastMechanism
	for _, sv := range r.Servers {
		for _, x := range append(sv.FastPlain, sv.FastTLS...) {
			mech, fmech = x.Mechanism, x.FastMechanism
		}
	}
	b.WriteString("\n## FAST logins (XEP-0484) next to SCRAM\n\n")
	fmt.Fprintf(b, "Four login storms one after the other on the same server process, each of %s accounts (plain TCP) or %s (direct TLS 1.3), "+
		"%d in flight, every session closed once bound, after as many connections that log in to nothing (**stream only**: connect, TLS, "+
		"stream header, pre-authentication features, close; the floor under every login): (1) **legacy** RFC 6120 SASL, %s, stream restart, resource binding, as in the login storm; "+
		"(2) **SASL2**: %s over XEP-0388 with the client's `<user-agent id=…/>` (a stable UUID-shaped id per simulated client), an inline XEP-0386 "+
		"`<bind><tag>%s</tag></bind>` and `<request-token mechanism='%s'/>`, no restart, the token kept per account; (3) **FAST**: "+
		"one `<authenticate mechanism='%s'>` with username NUL HMAC-SHA-256(token, \"Initiator\"), the same user-agent id and inline Bind2, "+
		"the server's proof HMAC(token, \"Responder\") checked in `<additional-data/>`; (4) **FAST as a quick start**: the same login with the stream header "+
		"and `<authenticate/>` in one write, not waiting for the features, as Conversations reconnects to a server whose SASL2 features it has seen: "+
		"one round trip after TCP (and TLS), then the close. SASL2 and FAST logins end bound (`<bound/>` in `<success/>`). "+
		"Server CPU is `/proc/PID/stat` over each phase divided by its logins.\n\n",
		num(float64(s.Logins)), num(float64(s.LoginsTLS)), s.Conc, mech, mech, scenario.FastTag, fmech, fmech)
	b.WriteString("| server | transport | login | logins/s | server CPU µs/login | generator CPU µs/login | failures |\n|---|---|---|---|---|---|---|\n")
	phases := []struct {
		name string
		get  func(scenario.FastResult) scenario.LoginResult
	}{
		{"stream only (no login)", func(f scenario.FastResult) scenario.LoginResult { return f.Stream }},
		{"legacy " + mech, func(f scenario.FastResult) scenario.LoginResult { return f.Legacy }},
		{"SASL2 " + mech + " + Bind2 + token request", func(f scenario.FastResult) scenario.LoginResult { return f.SASL2 }},
		{"FAST " + fmech + " + Bind2", func(f scenario.FastResult) scenario.LoginResult { return f.FAST }},
		{"FAST as a quick start", func(f scenario.FastResult) scenario.LoginResult { return f.Quick }},
	}
	transports := func(sv ServerResult) []struct {
		name string
		rs   []scenario.FastResult
	} {
		return []struct {
			name string
			rs   []scenario.FastResult
		}{{"plain", sv.FastPlain}, {"TLS 1.3", sv.FastTLS}}
	}
	for _, sv := range r.Servers {
		if sv.FastUnsupported != "" {
			fmt.Fprintf(b, "| %s | — | not supported here: %s | | | | |\n", sv.Name, oneLine(sv.FastUnsupported))
			continue
		}
		for _, x := range transports(sv) {
			if len(x.rs) == 0 {
				fmt.Fprintf(b, "| %s | %s | — | — | — | — | — |\n", sv.Name, x.name)
				continue
			}
			for _, p := range phases {
				if p.get(x.rs[0]).Logins == 0 && p.get(x.rs[0]).Failures == 0 {
					continue // a report from before the phase existed
				}
				lps := collect(x.rs, func(f scenario.FastResult) float64 { return p.get(f).LoginsPerSecond })
				sc := collect(x.rs, func(f scenario.FastResult) float64 { return p.get(f).ServerCPUPerLogin })
				gc := collect(x.rs, func(f scenario.FastResult) float64 { return p.get(f).GenCPUPerLogin })
				fl := collect(x.rs, func(f scenario.FastResult) float64 { return float64(p.get(f).Failures) })
				fmt.Fprintf(b, "| %s | %s | %s | **%s**%s | **%s**%s | %s | %.0f |\n", sv.Name, x.name, p.name, num(median(lps)), spread(lps),
					num(median(sc)), spread(sc), num(median(gc)), sum(fl))
			}
		}
	}
	b.WriteString("\nFAST relative to SCRAM, taken within each run (phases of the same run share the process and the machine's load) and then the median over runs:\n\n" +
		"| server | transport | server CPU per login, FAST / legacy | quick-start FAST / legacy | FAST / SASL2 | FAST / legacy above the stream-only floor | logins/s, FAST / legacy | FAST / SASL2 | under half a legacy SCRAM login? FAST; quick start |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, sv := range r.Servers {
		if sv.FastUnsupported != "" {
			continue
		}
		for _, x := range transports(sv) {
			if len(x.rs) == 0 {
				continue
			}
			cl := collect(x.rs, func(f scenario.FastResult) float64 { return f.CPUvsLegacy })
			c2 := collect(x.rs, func(f scenario.FastResult) float64 { return f.CPUvsSASL2 })
			rl := collect(x.rs, func(f scenario.FastResult) float64 { return f.RateVsLegacy })
			r2 := collect(x.rs, func(f scenario.FastResult) float64 { return f.RateVsSASL2 })
			af := collect(x.rs, func(f scenario.FastResult) float64 { return f.AboveFloorVsLegacy })
			ql := collect(x.rs, func(f scenario.FastResult) float64 { return f.QuickVsLegacy })
			quick, qv := "—", "—"
			if ql[0] > 0 { // reports from before the phase have none
				quick, qv = "**"+ratio(median(ql))+"**"+ratioSpread(ql), underHalf(ql)
			}
			fmt.Fprintf(b, "| %s | %s | **%s**%s | %s | %s%s | %s%s | %s×%s | %s×%s | %s; %s |\n", sv.Name, x.name, ratio(median(cl)), ratioSpread(cl), quick,
				ratio(median(c2)), ratioSpread(c2), ratio(median(af)), ratioSpread(af), ratio(median(rl)), ratioSpread(rl), ratio(median(r2)), ratioSpread(r2),
				underHalf(cl), qv)
		}
	}
	b.WriteString("\nThe SASL2 phase costs more than a bare SASL2 SCRAM login would: each of its logins also issues a token, which the server " +
		"derives and stores durably before `<success/>`. The phases run in the order given, plain TCP first, on a process started fresh " +
		"before the first run (the stream-only phase takes what warm-up there is). TLS connections do a full handshake each (the generator " +
		"keeps no session tickets), the same in every phase. Prosody 0.12 and ejabberd 23.01, the peers of the side-by-side runs, have no FAST: " +
		"against them the storm stops at the stream features and the report says what they lack instead of giving a number.\n")
}

// guestSection is the guest storm's part of the report: SASL ANONYMOUS logins next to
// SCRAM ones on the same process, and their cost ratio run by run.
func guestSection(b *strings.Builder, r Report) {
	s := r.Suite
	b.WriteString("\n## Guest logins (SASL ANONYMOUS, XEP-0175) next to SCRAM\n\n")
	fmt.Fprintf(b, "Two login storms one after the other on the same server process, started fresh with a second host, `%s`, that takes "+
		"SASL ANONYMOUS (Vireo's `anonymous_domains`, Prosody's `authentication = \"anonymous\"`, ejabberd's `auth_method: anonymous` with "+
		"`anonymous_protocol: sasl_anon`): %s SCRAM-SHA-1 logins to existing accounts as in the login storm, then %s guest logins "+
		"(`<auth mechanism='ANONYMOUS'>=</auth>`, an empty trace; stream restart, bind, close), %d in flight, plain TCP. "+
		"A guest login makes a temporary account and session and removes both when the stream closes: on Vireo the account is a store "+
		"record written and deleted without a disk sync; Prosody and ejabberd keep guests in memory. Server CPU is `/proc/PID/stat` over "+
		"each storm divided by its logins.\n\n", peers.GuestDomain, num(float64(s.Logins)), num(float64(s.Logins)), s.Conc)
	b.WriteString("| server | SCRAM logins/s | server CPU µs/SCRAM login | guest logins/s | server CPU µs/guest login | guest / SCRAM server CPU | guest failures |\n|---|---|---|---|---|---|---|\n")
	for _, sv := range r.Servers {
		if len(sv.Guest) == 0 {
			fmt.Fprintf(b, "| %s | — | — | — | — | — | — |\n", sv.Name)
			continue
		}
		lps := collect(sv.GuestSCRAM, func(x scenario.LoginResult) float64 { return x.LoginsPerSecond })
		sc := collect(sv.GuestSCRAM, func(x scenario.LoginResult) float64 { return x.ServerCPUPerLogin })
		glps := collect(sv.Guest, func(x scenario.LoginResult) float64 { return x.LoginsPerSecond })
		gsc := collect(sv.Guest, func(x scenario.LoginResult) float64 { return x.ServerCPUPerLogin })
		fl := collect(sv.Guest, func(x scenario.LoginResult) float64 { return float64(x.Failures) })
		rs := make([]float64, len(sv.Guest))
		for i := range sv.Guest {
			if i < len(sv.GuestSCRAM) && sv.GuestSCRAM[i].ServerCPUPerLogin > 0 {
				rs[i] = sv.Guest[i].ServerCPUPerLogin / sv.GuestSCRAM[i].ServerCPUPerLogin
			}
		}
		fmt.Fprintf(b, "| %s | %s%s | %s%s | **%s**%s | **%s**%s | %s%s | %.0f |\n", sv.Name, num(median(lps)), spread(lps), num(median(sc)), spread(sc),
			num(median(glps)), spread(glps), num(median(gsc)), spread(gsc), ratio(median(rs)), ratioSpread(rs), sum(fl))
	}
}

func ratio(x float64) string { return fmt.Sprintf("%.2f", x) }

// underHalf is the verdict on cost ratios, one per run: under half in every run or not.
func underHalf(rs []float64) string {
	switch {
	case slices.Max(rs) < 0.5:
		return "yes"
	case median(rs) < 0.5:
		return "**not in every run**"
	}
	return "**no**"
}

func ratioSpread(xs []float64) string {
	if len(xs) < 2 {
		return ""
	}
	return fmt.Sprintf(" (%.2f–%.2f)", slices.Min(xs), slices.Max(xs))
}

// resumeSection is the resume storm's part of the report: the storm, delivery, and the
// memory of sessions with stream management (idle and detached).
func resumeSection(b *strings.Builder, r Report) {
	s := r.Suite
	rc := s.resumeConfig()
	b.WriteString("\n## Resume storm (XEP-0198)\n\n")
	fmt.Fprintf(b, "%s sessions log in (SCRAM-SHA-1, plain TCP), bind, enable stream management with resumption and send initial presence; "+
		"they count every stanza they receive and answer each `<r/>` with `<a h=…/>`. %d other online users send them %d chat messages/s in all, "+
		"each with a unique id, addressed in turn. One second later every one of their TCP connections is closed at once, without a stream close, "+
		"so the server keeps the sessions detached while the messages go on. Then all of them reconnect, %d in flight, authenticate again and "+
		"`<resume previd=… h=…/>` with the h they counted instead of binding. Resumes/s run from the first connect to the last `<resumed/>`; "+
		"server CPU per resume is the server's CPU time over the same interval (it includes routing the messages that go on meanwhile and "+
		"resending the queued ones). After the last resume the messages go on for a second, then the run waits for stragglers. "+
		"Every message is counted once by its id: lost ones never arrived, duplicates arrived more than once.\n\n",
		num(float64(rc.Sessions)), rc.Senders, rc.Rate, s.Conc)
	b.WriteString("| server | resumes/s | server CPU µs/resume | generator CPU µs/resume | resume p50 / p99 ms | failed logins / resumes | detached for s |\n|---|---|---|---|---|---|---|\n")
	for _, sv := range r.Servers {
		if sv.ResumeUnsupported != "" {
			fmt.Fprintf(b, "| %s | not supported here: %s | | | | | |\n", sv.Name, oneLine(sv.ResumeUnsupported))
			continue
		}
		if len(sv.Resume) == 0 {
			fmt.Fprintf(b, "| %s | — | — | — | — | — | — |\n", sv.Name)
			continue
		}
		rps := collect(sv.Resume, func(x scenario.ResumeResult) float64 { return x.ResumesPerSecond })
		cpu := collect(sv.Resume, func(x scenario.ResumeResult) float64 { return x.ServerCPUPerResume })
		gen := collect(sv.Resume, func(x scenario.ResumeResult) float64 { return x.GenCPUPerResume })
		p50 := collect(sv.Resume, func(x scenario.ResumeResult) float64 { return x.P50ms })
		p99 := collect(sv.Resume, func(x scenario.ResumeResult) float64 { return x.P99ms })
		det := collect(sv.Resume, func(x scenario.ResumeResult) float64 { return x.DetachedSeconds })
		lf := collect(sv.Resume, func(x scenario.ResumeResult) float64 { return float64(x.LoginFailures) })
		rf := collect(sv.Resume, func(x scenario.ResumeResult) float64 { return float64(x.Failures) })
		fmt.Fprintf(b, "| %s | **%s**%s | %s%s | %s | %.1f / %.1f | %.0f / %.0f | %.1f |\n", sv.Name, num(median(rps)), spread(rps), num(median(cpu)), spread(cpu),
			num(median(gen)), median(p50), median(p99), sum(lf), sum(rf), median(det))
	}
	fmt.Fprintf(b, "\nResume failures are counted over all runs; the first one's reason is in the JSON (`first_failure`).\n")
	b.WriteString("\nMessages to the dropped sessions, all runs together (delivered after resume: first seen on the resumed stream):\n\n" +
		"| server | sent | delivered | delivered after resume | lost | duplicates | misrouted | bounced to sender |\n|---|---|---|---|---|---|---|---|\n")
	for _, sv := range r.Servers {
		if len(sv.Resume) == 0 {
			continue
		}
		var d scenario.Delivery
		for _, x := range sv.Resume {
			d.Sent += x.Delivery.Sent
			d.Delivered += x.Delivery.Delivered
			d.AfterResume += x.Delivery.AfterResume
			d.Lost += x.Delivery.Lost
			d.Duplicates += x.Delivery.Duplicates
			d.Misrouted += x.Delivery.Misrouted
			d.Bounced += x.Delivery.Bounced
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | **%d** | **%d** | %d | %d |\n", sv.Name, num(float64(d.Sent)), num(float64(d.Delivered)),
			num(float64(d.AfterResume)), d.Lost, d.Duplicates, d.Misrouted, d.Bounced)
	}
	fmt.Fprintf(b, "\nMemory, as RSS slopes like the idle scenario (median run). *Idle with SM*: the storm's sessions before the drop, sampled at %s sessions "+
		"and fitted by least squares. *Idle plain*: the idle scenario at the same sizes and wait without stream management, on a fresh process. *Detached*: sampled after the drop "+
		"(%s detached) and again after %s more sessions have logged in with stream management and been dropped at once too (%s detached), before "+
		"anyone reconnects; the probe's new connections can reuse the memory the first drop freed, so to first order the slope is what a detached session keeps. "+
		"The messages that arrive for detached sessions meanwhile are queued and part of that slope; the last column says how much they were.\n\n",
		sizeList(resumeIdleSizes(r, rc.Sessions)), num(float64(rc.Sessions)), num(float64(rc.TopUp)), num(float64(rc.Sessions+rc.TopUp)))
	b.WriteString("| server | idle plain B/session | idle with SM B/session | SM − plain, each run | detached B/session | messages queued between the detached samples |\n|---|---|---|---|---|---|\n")
	for _, sv := range r.Servers {
		if len(sv.Resume) == 0 {
			continue
		}
		plain := "—"
		if len(sv.ResumeIdlePlain) > 0 {
			xs := collect(sv.ResumeIdlePlain, func(i scenario.IdleResult) float64 { return i.RSSPerSession })
			plain = num(median(xs)) + spread(xs)
		}
		idle := collect(sv.Resume, func(x scenario.ResumeResult) float64 { return x.IdleRSSPerSession })
		det := collect(sv.Resume, func(x scenario.ResumeResult) float64 { return x.DetachedRSSPerSession })
		q := collect(sv.Resume, func(x scenario.ResumeResult) float64 { return float64(x.QueuedBetween) })
		qb := collect(sv.Resume, func(x scenario.ResumeResult) float64 { return float64(x.QueuedBytesBetween) })
		fmt.Fprintf(b, "| %s | %s | **%s**%s | %s | **%s**%s | %s (%s KiB) |\n", sv.Name, plain, num(median(idle)), spread(idle),
			perRun(sv.Resume, sv.ResumeIdlePlain, func(x scenario.ResumeResult) float64 { return x.IdleRSSPerSession },
				func(i scenario.IdleResult) float64 { return i.RSSPerSession }),
			num(median(det)), spread(det), num(median(q)), num(median(qb)/1024))
	}
	for _, sv := range r.Servers {
		if live := perRun(sv.Resume, sv.ResumeIdlePlain, func(x scenario.ResumeResult) float64 { return x.IdleLiveHeapPerSession },
			func(i scenario.IdleResult) float64 { return i.LiveHeapPerSession }); live != "—" {
			fmt.Fprintf(b, "\n%s's live heap (`go_gc_heap_live_bytes`, fitted over the same samples) with stream management above without, each run: %s bytes per session.\n", sv.Name, live)
		}
	}
}

// perRun lists, run by run, what a resume run's idle figure is above the plain idle run
// that followed it on the same machine state ("+96, +201, …"); "—" when either is
// missing.
func perRun(rs []scenario.ResumeResult, ps []scenario.IdleResult, sm func(scenario.ResumeResult) float64, plain func(scenario.IdleResult) float64) string {
	var parts []string
	for i := range min(len(rs), len(ps)) {
		a, b := sm(rs[i]), plain(ps[i])
		if a == 0 || b == 0 {
			return "—"
		}
		parts = append(parts, fmt.Sprintf("%+.0f", a-b))
	}
	if len(parts) == 0 {
		return "—"
	}
	return strings.Join(parts, ", ")
}

// medianOrDash is the median of xs, or "—" when any is missing (0).
func medianOrDash(xs []float64) string {
	if len(xs) == 0 || slices.Contains(xs, 0) {
		return "—"
	}
	return num(median(xs)) + spread(xs)
}

func sum(xs []float64) float64 {
	t := 0.0
	for _, x := range xs {
		t += x
	}
	return t
}

// oneLine keeps a table cell on one line.
func oneLine(s string) string {
	return strings.NewReplacer("\n", " ", "|", "/").Replace(s)
}

// resumeIdleSizes are the session counts the report's first resume run sampled its idle
// sessions at (reports from before stop 26 sampled two or four), else today's.
func resumeIdleSizes(r Report, n int) []int {
	for _, sv := range r.Servers {
		for _, x := range sv.Resume {
			if len(x.IdlePoints) > 0 {
				var out []int
				for _, p := range x.IdlePoints {
					out = append(out, p.Sessions)
				}
				return out
			}
		}
	}
	return scenario.ResumeIdleSizes(n)
}

// sizeList writes session counts as "2,500, 5,000 and 7,500".
func sizeList(ns []int) string {
	var parts []string
	for _, n := range ns {
		parts = append(parts, num(float64(n)))
	}
	if len(parts) < 2 {
		return strings.Join(parts, "")
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}
