// Command xmppbench runs the bench suite's scenarios against an XMPP server.
//
// Against a running server:
//
//	xmppbench -addr 127.0.0.1:5222 -domain localhost -pid PID -scenario idle -sizes 2000,16000
//	xmppbench -addr 127.0.0.1:5222 -pid PID -scenario resume -sessions 1000 -senders 20 -resume-rate 200
//	xmppbench -addr 127.0.0.1:5222 -pid PID -scenario fast -logins 2000
//	xmppbench -addr 127.0.0.1:5280 -ws /xmpp-websocket -pid PID -scenario idle -sizes 2000,8000
//	xmppbench -addr 127.0.0.1:5222 -pid PID -scenario mam -mam-users 10000 -mam-messages 1000000
//	xmppbench -addr 127.0.0.1:5222 -pid PID -scenario pep -pep-users 1000
//
// Or start servers itself, one after the other, each from bench/peers with a fresh data
// directory, and write a side-by-side report (JSON, Markdown, PNG plots):
//
//	xmppbench -compare vireo,prosody,ejabberd -suite full -install -out bench/results
//
// Or compare two Vireo builds, both running, runs alternating, B/A per pair:
//
//	xmppbench -ab /tmp/old-bin,bin -ab-workload login -logins 6000 -pairs 20
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vireo-im/vireo/bench/compare"
	"github.com/vireo-im/vireo/bench/loadgen"
	"github.com/vireo-im/vireo/bench/peers"
	"github.com/vireo-im/vireo/bench/scenario"
)

func main() {
	var (
		addr      = flag.String("addr", "127.0.0.1:5222", "server address")
		domain    = flag.String("domain", "localhost", "XMPP domain")
		mode      = flag.String("tls", "plain", "plain, starttls or direct")
		wsPath    = flag.String("ws", "", "speak XMPP over WebSocket (RFC 7395) to this path on -addr (an HTTP listener): ws:// with -tls plain, wss:// with -tls direct")
		mech      = flag.String("mech", "SCRAM-SHA-1", "SCRAM-SHA-1, SCRAM-SHA-256, PLAIN or ANONYMOUS (a guest login: no account needed)")
		prefix    = flag.String("prefix", "user", "account name prefix (accounts prefix1..prefixN)")
		password  = flag.String("password", "password", "account password")
		pid       = flag.Int("pid", 0, "server PID for /proc sampling")
		metricsU  = flag.String("metrics-url", "", "the server's Prometheus endpoint (Vireo: http://<web listener>/metrics), for the live heap and goroutines in the soak's samples")
		alsoPIDs  = flag.String("also-pids", "", "more PIDs of the same server, comma-separated (a split deployment's edge): memory and CPU are summed over all")
		scen      = flag.String("scenario", "idle", "idle, login, fast, msg, search, presence, resume, muc, mam, pep or soak")
		contacts  = flag.Int("contacts", 20, "presence: roster size per user")
		sizes     = flag.String("sizes", "2000,16000", "idle: session counts (with -compare: the idle and WebSocket idle sizes, overriding the suite's)")
		ramp      = flag.Int("ramp-rate", 0, "idle: logins per second while ramping (0: as fast as -conc allows)")
		logins    = flag.Int("logins", 5000, "login: number of logins; fast: logins per phase (with -compare: plain TCP logins of both, overriding the suite's)")
		loginsT   = flag.Int("logins-tls", 0, "with -compare: TLS logins of the login and fast storms (overriding the suite's)")
		classic   = flag.Bool("tls-classic", false, "offer only classical TLS key exchanges (X25519, P-256), not the X25519MLKEM768 hybrid Go offers first")
		users     = flag.Int("users", 1000, "msg/search: online users")
		rate      = flag.Int("rate", 5000, "msg: messages per second; search: start rate (doubled, then bisected)")
		maxRate   = flag.Int("max-rate", 100000, "search: highest rate tried")
		dur       = flag.Duration("duration", 10*time.Second, "msg/search: duration per step")
		sessions  = flag.Int("sessions", 1000, "resume: sessions dropped at once and resumed (accounts 1..N)")
		topUp     = flag.Int("topup", 0, "resume: sessions of the detached-memory probe (accounts N+1..N+topup; 0: N/2)")
		senders   = flag.Int("senders", 20, "resume: online users sending to the dropped sessions (the accounts after the probe's)")
		resRate   = flag.Int("resume-rate", 200, "resume: messages per second, in all, to the dropped sessions")
		mucSizes  = flag.String("muc-sizes", "10,100,1000", "muc: occupants per room, one room per size (with -compare: overriding the suite's)")
		mucTalk   = flag.Float64("muc-talkers", 0.1, "muc: fraction of occupants that talk")
		mucRate   = flag.Int("muc-rate", 0, "muc: one step at this many delivered stanzas per second instead of a search (with -compare too)")
		mamUsers  = flag.Int("mam-users", 200, "mam: users online, whose archives are filled and queried (with -compare: overriding the suite's; the issue's size is 10000)")
		mamMsgs   = flag.Int("mam-messages", 20000, "mam: messages sent through the server to fill the archives, 0: query what is there (with -compare: overriding the suite's; the issue's size is 1000000)")
		mamCont   = flag.Int("mam-contacts", 4, "mam: ring contacts each user writes with")
		mamFill   = flag.Int("mam-fill-rate", 2000, "mam: the fill's first offered rate, msgs/s (it adapts to the server)")
		mamQ      = flag.Int("mam-queries", 2000, "mam: queries timed")
		mamConc   = flag.Int("mam-conc", 4, "mam: queries in flight")
		mamMax    = flag.Int("mam-max", 50, "mam: RSM page size (the last N with one contact)")
		mamPlain  = flag.Int("mam-plain-messages", 20000, "mam, with -compare: the fill's size without archiving, the plain reference (0: none; overriding the suite's)")
		pepUsers  = flag.Int("pep-users", 100, "pep: users, all mutual contacts, each publishing one avatar metadata item (with -compare: overriding the suite's; the issue's size is 1000)")
		pepProv   = flag.Bool("pep-provisioned", false, "pep: the mesh rosters exist already (else they are made in-band first)")
		soakCyc   = flag.Int("soak-cycles", 4, "soak: load periods, each followed by a quiet sample (with -compare: overriding the suite's)")
		soakLoad  = flag.Duration("soak-load", 20*time.Second, "soak: length of a load period (with -compare: overriding the suite's)")
		soakStab  = flag.Int("soak-sessions", 500, "soak: sessions with stream management online all along, dropped and resumed at random (with -compare: overriding the suite's)")
		soakRate  = flag.Int("soak-rate", 500, "soak: tracked messages per second (with -compare: overriding the suite's)")
		soakChurn = flag.Int("soak-churners", 4, "soak: concurrent login churn loops (with -compare: overriding the suite's)")
		soakTLS   = flag.String("soak-tls-addr", "", "soak: direct TLS address for a quarter of the stable sessions and the churn (empty: plain only)")
		soakWS    = flag.String("soak-ws-addr", "", "soak: WebSocket (ws://) address for the churn (empty: none)")
		soakMUC   = flag.String("soak-muc", "", "soak: the MUC service the churn visits a room on (empty: none)")
		portBase  = flag.Int("port-base", 25222, "with -compare: the first port tried for the servers' listeners (another bench on the machine may hold the default ones)")
		conc      = flag.Int("conc", 64, "concurrent logins (and resumptions)")
		srcIPs    = flag.Int("source-ips", 4, "spread client sockets over 127.0.0.1..N")
		servers   = flag.String("compare", "", "start these servers in turn and run the suite: vireo,prosody,ejabberd")
		suite     = flag.String("suite", "quick", "with -compare: quick or full")
		reps      = flag.Int("reps", 0, "with -compare: repetitions of each scenario (0: the suite's)")
		only      = flag.String("only", "", "with -compare: run only these scenarios (idle,login,fast,msg,presence,resume,muc,ws,s2s; mam, pep, soak and guest run only when named)")
		bin       = flag.String("bin", "bin", "with -compare: directory holding vireo and vireoctl")
		work      = flag.String("workdir", "", "with -compare: work directory (default: a temporary one, removed afterwards)")
		install   = flag.Bool("install", false, "with -compare: apt-get install missing peers first")
		out       = flag.String("out", "", "with -compare: directory for the JSON, Markdown and PNG report")
		name      = flag.String("name", "compare", "with -compare: report file name (without extension)")
		abBins    = flag.String("ab", "", "compare two Vireo builds, interleaved: directories A,B each holding vireo and vireoctl (with -ab-workload, -pairs, -out, -name)")
		abWork    = flag.String("ab-workload", "login", "with -ab: login (-logins plain TCP), tls (-logins direct TLS), fast or fast-tls (the FAST phase of -logins per phase) or msg (-users at -rate for -duration)")
		pairs     = flag.Int("pairs", 20, "with -ab: runs of each build, alternating")
		sendFrom  = flag.Bool("from", false, "with -ab: clients name their account in the stream header's from, as Conversations does")
		render    = flag.String("render", "", "redraw the Markdown report and plots from this JSON report")
	)
	flag.Parse()
	switch {
	case *render != "":
		r, err := compare.Load(*render)
		if err == nil {
			err = compare.Write(r, filepath.Dir(*render), strings.TrimSuffix(filepath.Base(*render), ".json"))
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "xmppbench:", err)
			os.Exit(1)
		}
		return
	case *abBins != "":
		bins := strings.Split(*abBins, ",")
		if len(bins) != 2 {
			fmt.Fprintln(os.Stderr, "xmppbench: -ab wants two directories, A,B")
			os.Exit(2)
		}
		if err := abRun(compare.ABConfig{BinA: bins[0], BinB: bins[1], PortBase: *portBase, Pairs: *pairs, Workload: *abWork,
			Logins: *logins, Conc: *conc, Users: *users, Rate: *rate, Step: *dur, SourceIPs: *srcIPs, ClassicTLS: *classic, SendFrom: *sendFrom}, *work, *out, *name); err != nil {
			fmt.Fprintln(os.Stderr, "xmppbench:", err)
			os.Exit(1)
		}
		return
	case *servers != "":
		// The resume storm's size flags, the login counts and -reps, when given, override
		// the suite's.
		override := func(s *compare.Suite) {
			flag.Visit(func(f *flag.Flag) {
				switch f.Name {
				case "sessions":
					s.ResumeSessions = *sessions
				case "senders":
					s.ResumeSenders = *senders
				case "resume-rate":
					s.ResumeRate = *resRate
				case "logins":
					s.Logins = *logins
				case "logins-tls":
					s.LoginsTLS = *loginsT
				case "tls-classic":
					s.ClassicTLS = *classic
				case "reps":
					s.Reps = max(1, *reps)
				case "sizes":
					if sz := parseSizes(*sizes); len(sz) >= 2 {
						s.IdleSizes, s.WSIdleSizes = sz, sz
					}
				case "users":
					s.Users, s.S2SUsers = *users, *users
				case "muc-sizes":
					s.MUCSizes = parseSizes(*mucSizes)
				case "muc-talkers":
					s.MUCTalkers = *mucTalk
				case "muc-rate":
					s.MUCFixed = *mucRate
				case "duration":
					s.StepDuration = *dur
				case "mam-users":
					s.MAMUsers = *mamUsers
				case "mam-messages":
					s.MAMMessages = *mamMsgs
				case "mam-contacts":
					s.MAMContacts = *mamCont
				case "mam-fill-rate":
					s.MAMFillRate = *mamFill
				case "mam-queries":
					s.MAMQueries = *mamQ
				case "mam-conc":
					s.MAMConc = *mamConc
				case "mam-max":
					s.MAMMax = *mamMax
				case "mam-plain-messages":
					s.MAMPlainMessages = *mamPlain
				case "pep-users":
					s.PEPUsers = *pepUsers
				case "soak-cycles":
					s.Soak.Cycles = *soakCyc
				case "soak-load":
					s.Soak.Load = *soakLoad
				case "soak-sessions":
					s.Soak.Stable = *soakStab
				case "soak-rate":
					s.Soak.Rate = *soakRate
				case "soak-churners":
					s.Soak.Churners = *soakChurn
				}
			})
		}
		if err := compareRun(strings.Split(*servers, ","), *suite, *only, *bin, *work, *out, *name, *portBase, *install, override); err != nil {
			fmt.Fprintln(os.Stderr, "xmppbench:", err)
			os.Exit(1)
		}
		return
	}
	var also []int
	for _, f := range strings.Split(*alsoPIDs, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil {
			also = append(also, n)
		}
	}
	t := scenario.Target{Name: *addr, Prefix: *prefix, Password: *password, PID: *pid, Also: also, SourceIPs: *srcIPs, Log: os.Stderr,
		LiveHeap: metricFunc(*metricsU, "go_gc_heap_live_bytes"), Goroutines: metricFunc(*metricsU, "go_goroutines"),
		Cfg: loadgen.Config{Addr: *addr, Domain: *domain, Mode: parseMode(*mode), Mechanism: *mech, WSPath: *wsPath, ClassicKeyExchange: *classic}}
	var res any
	var err error
	switch *scen {
	case "idle":
		res, err = scenario.Idle(t, parseSizes(*sizes), *conc, *ramp, 3*time.Second)
	case "login":
		res, err = scenario.LoginStorm(t, *logins, *conc)
	case "fast":
		res, err = scenario.FastStorm(t, *logins, *conc)
	case "presence":
		res, err = scenario.PresenceStorm(t, *users, *contacts, *conc, false)
	case "resume":
		res, err = scenario.ResumeStorm(t, scenario.ResumeConfig{Sessions: *sessions, TopUp: *topUp, Senders: *senders,
			Rate: *resRate, Conc: *conc, RampRate: *ramp})
	case "muc":
		res, err = scenario.MUC(t, scenario.MUCConfig{Service: "conference." + *domain, Sizes: parseSizes(*mucSizes), Talkers: *mucTalk,
			RateStart: *rate, RateMax: *maxRate, Fixed: *mucRate, Step: *dur, LimitMs: 100, Conc: *conc})
	case "mam":
		res, err = scenario.MAM(t, scenario.MAMConfig{Users: *mamUsers, Messages: *mamMsgs, Contacts: *mamCont, FillRate: *mamFill,
			Queries: *mamQ, Conc: *mamConc, Max: *mamMax, LoginConc: *conc})
	case "pep":
		res, err = scenario.PEPStorm(t, *pepUsers, *conc, *pepProv)
	case "soak":
		// The quick suite's soak with the sizes given; accounts prefix1.. in the order
		// SoakConfig says (stable, sleepers, senders, churners).
		c := compare.Quick().Soak
		c.Cycles, c.Load, c.Stable, c.Rate, c.Churners, c.Conc = *soakCyc, *soakLoad, *soakStab, *soakRate, *soakChurn, *conc
		c.TLSAddr, c.WSAddr, c.MUC = *soakTLS, *soakWS, *soakMUC
		if c.WSAddr != "" && c.WSPath == "" {
			c.WSPath = "/xmpp-websocket"
		}
		var sr scenario.SoakResult
		sr, err = scenario.Soak(t, c)
		res = sr
		if err == nil && len(sr.Problems()) > 0 {
			err = fmt.Errorf("soak: %s", strings.Join(sr.Problems(), "; "))
			json.NewEncoder(os.Stdout).Encode(sr)
		}
	case "msg", "search":
		var o *scenario.Online
		o, err = scenario.Connect(t, *users, *conc)
		if err == nil {
			if *scen == "msg" {
				res, err = scenario.Messaging(t, o, *rate, *dur)
			} else {
				res, err = scenario.Search(t, o, *rate, *maxRate, *dur, 100*time.Millisecond)
			}
			o.Close()
		}
	default:
		err = fmt.Errorf("unknown scenario %q", *scen)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "xmppbench:", err)
		os.Exit(1)
	}
	b, _ := json.MarshalIndent(res, "", "  ")
	fmt.Println(string(b))
}

// metricFunc reads name from the Prometheus endpoint url; nil without one.
func metricFunc(url, name string) func() (int64, error) {
	if url == "" {
		return nil
	}
	return func() (int64, error) { return peers.Metric(url, name) }
}

func parseMode(s string) loadgen.Mode {
	switch s {
	case "starttls":
		return loadgen.StartTLS
	case "direct":
		return loadgen.DirectTLS
	}
	return loadgen.Plain
}

func parseSizes(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && n > 0 {
			out = append(out, n)
		}
	}
	return out
}

// compareRun starts each named server in turn (bench/peers), runs the suite against it
// and writes the report.
// abRun runs compare.AB in work (a temporary directory when empty) and prints the
// report, writing it and its JSON to out/name.{md,json} when out is set.
func abRun(c compare.ABConfig, work, out, name string) error {
	if work == "" {
		d, err := os.MkdirTemp("", "xmppbench-ab-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		work = d
	}
	c.Dir = work
	r, err := compare.AB(c, os.Stderr)
	if err != nil {
		return err
	}
	md := r.Markdown()
	fmt.Print(md)
	if out == "" {
		return nil
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	j, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(out, name+".json"), j, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, name+".md"), []byte(md), 0o644)
}

func compareRun(names []string, suite, only, bin, work, out, name string, portBase int, install bool, override func(*compare.Suite)) error {
	s := compare.Quick()
	if suite == "full" {
		s = compare.Full()
	} else if suite != "quick" {
		return fmt.Errorf("unknown suite %q (quick, full)", suite)
	}
	if only != "" {
		s.Only = strings.Split(only, ",")
	}
	override(&s)
	if install {
		if err := peers.Install(names); err != nil {
			return err
		}
	}
	if work == "" {
		d, err := os.MkdirTemp("", "xmppbench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		work = d
	}
	// Prosody and ejabberd run as their own users and must reach the work directory.
	os.Chmod(work, 0o755)
	env, err := peers.NewEnv(work, bin)
	if err != nil {
		return err
	}
	env.SourceRoot, _ = os.Getwd()
	var servers []peers.Server
	for i, n := range names {
		plain := peers.FreePort(portBase + 100*i)
		srv, err := peers.New(n, env, plain, peers.FreePort(plain+1))
		if err != nil {
			return err
		}
		servers = append(servers, srv)
	}
	var pairs []*peers.Pair
	if slices.Contains(s.Only, "s2s") || len(s.Only) == 0 {
		for _, n := range names {
			p, err := peers.NewPair(n, env)
			if err != nil {
				fmt.Fprintln(os.Stderr, "xmppbench: no s2s scenario:", err)
				continue
			}
			pairs = append(pairs, p)
			servers = append(servers, p.A, p.B) // stopped on interrupt with the others
		}
	}
	// An interrupted run must not leave servers behind on the machine.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sig
		fmt.Fprintln(os.Stderr, "xmppbench: interrupted, stopping servers")
		for _, srv := range servers {
			srv.Stop()
		}
		os.Exit(130)
	}()
	rep := compare.Run(servers[:len(names)], pairs, s, os.Stderr)
	if out == "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		fmt.Println(string(b))
		return soakVerdict(rep)
	}
	if err := compare.Write(rep, out, name); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "report: %s\n", filepath.Join(out, name+".md"))
	return soakVerdict(rep)
}

// soakVerdict fails the run when a soak showed what it must not (make soak's exit status).
func soakVerdict(rep compare.Report) error {
	var bad []string
	for _, sv := range rep.Servers {
		for _, ps := range sv.SoakProblems {
			for _, p := range ps {
				bad = append(bad, sv.Name+": "+p)
			}
		}
		if s := rep.Suite; slices.Contains(s.Only, "soak") && len(sv.Soak) == 0 {
			bad = append(bad, sv.Name+": the soak did not run: "+strings.Join(sv.Errors, "; "))
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("soak problems:\n  %s", strings.Join(bad, "\n  "))
	}
	return nil
}
