package scenario

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"

	"github.com/vireo-im/vireo/bench/loadgen"
)

// FastMechanism is the HT mechanism the FAST storm asks tokens for and logs in with: no
// channel binding, so plain TCP and TLS run the same exchange.
const FastMechanism = "HT-SHA-256-NONE"

// FastTag is the XEP-0386 tag the storm's SASL2 logins bind with.
const FastTag = "bench"

// ErrNoFAST is FastStorm's answer for a server that offers no SASL2, Bind2 or FAST.
var ErrNoFAST = errors.New("scenario: server does not offer SASL2 with Bind2 and FAST")

// FastResult is the FAST login storm: four phases of k logins each on the same server
// run, every session closed right after it is bound, after a phase of k connections
// that log in to nothing.
type FastResult struct {
	Logins        int    `json:"logins_per_phase"`
	Mechanism     string `json:"scram_mechanism"`
	FastMechanism string `json:"fast_mechanism"`
	// Stream is the floor every login pays: connect (and TLS), open the stream, read the
	// pre-authentication features, close. Its "logins" are those connections.
	Stream LoginResult `json:"stream_only"`
	// Legacy is RFC 6120 SASL: SCRAM, stream restart, resource binding.
	Legacy LoginResult `json:"legacy_scram"`
	// SASL2 is XEP-0388 SASL2 with the same SCRAM mechanism, an inline Bind2 and a FAST
	// token request: one more round trip than FAST, no restart, and a token to store.
	SASL2 LoginResult `json:"sasl2_scram_token"`
	// FAST is XEP-0484 with the token SASL2 got for each account: one HT message and
	// Bind2 in the same round trip.
	FAST LoginResult `json:"fast"`
	// Quick is the same FAST login sent as Conversations reconnects to a server whose
	// features it knows: the stream header and <authenticate/> in one write, so the
	// login is one round trip after TCP (and TLS), then the close.
	Quick LoginResult `json:"fast_quick_start"`
	// Server CPU per FAST login over server CPU per login of the other two phases, and
	// FAST's rate over theirs.
	CPUvsLegacy  float64 `json:"fast_cpu_over_legacy"`
	CPUvsSASL2   float64 `json:"fast_cpu_over_sasl2"`
	RateVsLegacy float64 `json:"fast_rate_over_legacy"`
	RateVsSASL2  float64 `json:"fast_rate_over_sasl2"`
	// QuickVsLegacy is server CPU per quick-start FAST login over a legacy login's.
	QuickVsLegacy float64 `json:"quick_start_cpu_over_legacy"`
	// AboveFloorVsLegacy is the same CPU ratio with the stream-only floor taken off both:
	// what authenticating and binding cost, FAST over legacy SCRAM.
	AboveFloorVsLegacy float64 `json:"fast_over_legacy_above_floor"`
	// Unsupported says why the server could not run the storm (with ErrNoFAST).
	Unsupported string `json:"unsupported,omitempty"`
}

// FastStorm runs four login storms of k accounts (prefix1..prefixk), conc in flight, one
// after the other against the same server process, after k connections that only open a
// stream (the floor under every login): (1) legacy SCRAM, the LoginStorm path;
// (2) SCRAM over SASL2 with Bind2 that requests a FAST token, kept per account; (3) FAST
// logins with those tokens; (4) the same FAST logins as a quick start (header and
// <authenticate/> in one write). Each simulated client has a stable user-agent id, new for
// each call, so every call issues fresh tokens and its FAST phase finds only the one
// token per client that its SASL2 phase issued.
func FastStorm(t Target, k, conc int) (FastResult, error) {
	mech := t.Cfg.Mechanism
	if mech == "" {
		mech = "SCRAM-SHA-256"
	}
	r := FastResult{Logins: k, Mechanism: mech, FastMechanism: FastMechanism}
	o, err := loadgen.ProbeSASL2(t.cfgFor(0))
	if errors.Is(err, loadgen.ErrNoSASL2) {
		r.Unsupported = err.Error()
		return r, ErrNoFAST
	}
	if err != nil {
		return r, err
	}
	switch {
	case !contains(o.Mechanisms, mech):
		r.Unsupported = "SASL2 does not offer " + mech
	case !contains(o.FAST, FastMechanism):
		r.Unsupported = "no FAST (XEP-0484) with " + FastMechanism + " inline in SASL2"
	case !o.Bind2:
		r.Unsupported = "no Bind2 (XEP-0386) inline in SASL2"
	}
	if r.Unsupported != "" {
		return r, ErrNoFAST
	}
	seed := rand.Uint64()
	user := func(i int) string { return t.Prefix + strconv.Itoa(i+1) }
	login := func(i int) loadgen.SASL2Login {
		return loadgen.SASL2Login{Agent: loadgen.AgentID(seed, i), Bind: true, Tag: FastTag}
	}

	t.logf("  %s: FAST storm floor: %d connections that open a stream, read the features and close", t.Name, k)
	if r.Stream, err = t.storm("streams", k, conc, func(i int) error { return loadgen.OpenOnly(t.cfgFor(i)) }); err != nil {
		return r, err
	}
	t.logf("  %s: stream only: %.0f/s, server %.0f µs each, %d failed", t.Name, r.Stream.LoginsPerSecond, r.Stream.ServerCPUPerLogin, r.Stream.Failures)

	t.logf("  %s: FAST storm phase 1/4: %d legacy %s logins", t.Name, k, mech)
	if r.Legacy, err = LoginStorm(t, k, conc); err != nil {
		return r, err
	}
	t.logf("  %s: legacy %s: %.0f logins/s, server %.0f µs/login, %d failed", t.Name, mech, r.Legacy.LoginsPerSecond, r.Legacy.ServerCPUPerLogin, r.Legacy.Failures)

	tokens := make([]string, k)
	t.logf("  %s: FAST storm phase 2/4: %d SASL2 %s logins with Bind2 and a token request", t.Name, k, mech)
	r.SASL2, err = t.storm("SASL2 logins", k, conc, func(i int) error {
		l := login(i)
		l.RequestToken = FastMechanism
		s, res, err := loadgen.DialSASL2(t.cfgFor(i), user(i), t.Password, l)
		if err != nil {
			return err
		}
		s.Close()
		if res.Token == "" {
			return errors.New("scenario: SASL2 success without the FAST token asked for")
		}
		tokens[i] = res.Token
		return nil
	})
	if err != nil {
		return r, err
	}
	t.logf("  %s: SASL2 %s + token: %.0f logins/s, server %.0f µs/login, %d failed", t.Name, mech, r.SASL2.LoginsPerSecond, r.SASL2.ServerCPUPerLogin, r.SASL2.Failures)

	fast := func(quick bool) func(int) error {
		return func(i int) error {
			if tokens[i] == "" {
				return fmt.Errorf("scenario: no token for %s from the SASL2 phase", user(i))
			}
			l := login(i)
			l.QuickStart = quick
			s, res, err := loadgen.DialFAST(t.cfgFor(i), user(i), tokens[i], FastMechanism, l)
			if err != nil {
				return err
			}
			s.Close()
			if res.Token != "" { // rotated: the old one may be gone
				tokens[i] = res.Token
			}
			return nil
		}
	}
	t.logf("  %s: FAST storm phase 3/4: %d FAST logins (%s)", t.Name, k, FastMechanism)
	if r.FAST, err = t.storm("FAST logins", k, conc, fast(false)); err != nil {
		return r, err
	}
	t.logf("  %s: FAST: %.0f logins/s, server %.0f µs/login, %d failed", t.Name, r.FAST.LoginsPerSecond, r.FAST.ServerCPUPerLogin, r.FAST.Failures)
	t.logf("  %s: FAST storm phase 4/4: %d FAST logins as a quick start", t.Name, k)
	if r.Quick, err = t.storm("FAST quick starts", k, conc, fast(true)); err != nil {
		return r, err
	}
	r.ratios()
	t.logf("  %s: FAST quick start: %.0f logins/s, server %.0f µs/login, %d failed; server CPU FAST/legacy %.2f, FAST/SASL2 %.2f, quick start/legacy %.2f", t.Name,
		r.Quick.LoginsPerSecond, r.Quick.ServerCPUPerLogin, r.Quick.Failures, r.CPUvsLegacy, r.CPUvsSASL2, r.QuickVsLegacy)
	return r, nil
}

func (r *FastResult) ratios() {
	div := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	r.CPUvsLegacy = div(r.FAST.ServerCPUPerLogin, r.Legacy.ServerCPUPerLogin)
	r.CPUvsSASL2 = div(r.FAST.ServerCPUPerLogin, r.SASL2.ServerCPUPerLogin)
	r.RateVsLegacy = div(r.FAST.LoginsPerSecond, r.Legacy.LoginsPerSecond)
	r.RateVsSASL2 = div(r.FAST.LoginsPerSecond, r.SASL2.LoginsPerSecond)
	r.QuickVsLegacy = div(r.Quick.ServerCPUPerLogin, r.Legacy.ServerCPUPerLogin)
	if r.Stream.Logins > 0 {
		r.AboveFloorVsLegacy = div(r.FAST.ServerCPUPerLogin-r.Stream.ServerCPUPerLogin, r.Legacy.ServerCPUPerLogin-r.Stream.ServerCPUPerLogin)
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}
