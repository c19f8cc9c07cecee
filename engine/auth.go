package engine

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"hash"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/vireo-im/vireo/engine/fast"
	"github.com/vireo-im/vireo/engine/sasl"
	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/creds"
	"github.com/vireo-im/vireo/store/invites"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// authState lives only while a SASL exchange runs.
type authState struct {
	srv      *sasl.Server
	local    string    // prepared username, once known
	streamID string    // XEP-0114: the handshake hashes it
	addr     string    // throttle key of the client address whose attempt this is
	v2       *sasl2Req // what an XEP-0388 <authenticate/> asked for besides authentication
	external string    // s2s: the domain SASL EXTERNAL was offered for (XEP-0178)
	s2sTo    string    // s2s: our domain the stream header named
	bidi     bool      // s2s: the peer asked for a bidirectional stream (XEP-0288)
	mech     uint8     // loginMechs index, for metrics
	strays   uint8     // stanzas answered during this exchange (stray.go)
	// disabled is set by lookup when the account is disabled (store.Account.Disabled): the
	// exchange still runs, and authSucceeded refuses it with <account-disabled/>.
	disabled bool
}

// cbTypes lists the channel bindings this connection can offer (RFC 9266, RFC 5929).
//
// None over WebSocket: a browser cannot reach its TLS layer to bind to it, and web libraries
// that see -PLUS offered pick it anyway and then send no binding (StanzaJS 12), so offering
// it there would only break logins.
func (c *conn) cbTypes() []string {
	if c.ws != nil {
		return nil
	}
	if ch, ok := c.gc.(*edgeChan); ok {
		return ch.cbTypes() // the edge ran the TLS
	}
	t := c.tls.Load()
	if t == nil || !t.HandshakeComplete() {
		return nil
	}
	// A resumed session served no certificate: the client binds to the one of the
	// session's first handshake, which a renewal since may have replaced here (RFC 5929
	// §4.1 hashes the certificate as it was sent). No tls-server-end-point then.
	endPoint := !t.Info().DidResume
	if _, ok := t.Exporter(); ok {
		// TLS 1.3, or TLS 1.2 with the extended master secret (Go's server always
		// negotiates it when offered; without it the exporter is unavailable).
		if !endPoint {
			return []string{"tls-exporter"}
		}
		return []string{"tls-exporter", "tls-server-end-point"}
	}
	if !endPoint {
		return nil
	}
	return []string{"tls-server-end-point"}
}

func (c *conn) mechanisms() []string { return c.mechanismsFor(0) }

// mechanismsFor lists the mechanisms for an account with keys for the SCRAM hashes in
// have (scramMask; 0: every hash, the answer for anyone not named in advance).
func (c *conn) mechanismsFor(have uint8) []string {
	cfg := c.srv().config()
	all := sasl.Mechanisms(c.has(fTLS), c.cbTypes(), cfg.AllowPlain)
	if cfg.anonymousHost(c.domainName()) {
		all = append(all, sasl.Anonymous) // last: clients with a password prefer the others
	}
	if cfg.External != nil {
		// Clients pick SCRAM whenever it is offered and rarely fall back: the accounts of
		// the operator's program have no keys, so offering it would fail their logins.
		return slices.DeleteFunc(all, func(m string) bool { return m != "PLAIN" && m != sasl.Anonymous })
	}
	if have == 0 {
		return all
	}
	return slices.DeleteFunc(all, func(m string) bool {
		h, ok := sasl.MechanismHash(m)
		return ok && have&(1<<h) == 0
	})
}

// scramMask says which SCRAM hashes acct has keys for, as bits 1<<store.Hash, or 0 when
// it has all of them or none (nothing to tailor).
func scramMask(acct store.Account) uint8 {
	if !store.PartialKeys(acct.Creds) {
		return 0
	}
	return haveHashes(acct)
}

// tailorFeatures answers a stream header that names its account in 'from' (RFC 6120
// §4.7.1): when that account lacks some SCRAM hashes (imported from a server that kept one,
// as Prosody and ejabberd do), the features offer only the mechanisms it can log in with,
// so that a client does not pick SCRAM-SHA-512 and fail. Everyone else, existing account or
// not, gets the usual list. It reports whether it took over writing the features; they go
// out when the account has been read, off the loop.
func (c *conn) tailorFeatures(from []byte) bool {
	cfg := c.srv().config()
	if len(from) == 0 || c.state.Load() != stHeader || !c.has(fTLS) && cfg.RequireTLS && cfg.TLS != nil {
		return false // no mechanisms in these features (STARTTLS first)
	}
	if pk, ok := c.srv().st.(store.PartialKeyCounter); ok && pk.PartialKeyAccounts() == 0 {
		return false // every account has every hash's keys: nothing to ask
	}
	j, err := jid.Parse(string(xmlstream.AppendUnescaped(nil, from)))
	if err != nil || j.Local() == "" || j.Domain() != c.domainName() {
		return false
	}
	user := j.Bare().String()
	st := c.srv().st
	var have uint8
	return c.offLoop(func() {
		if acct, err := st.Accounts().Get(user); err == nil {
			have = scramMask(acct)
		}
	}, func() {
		if have != 0 {
			c.set(fTailored)
		}
		c.writeFeaturesFor(have)
	})
}

// offLoop runs work on the worker pool with the connection's input held; back on the loop,
// unless the connection has gone meanwhile, it runs then and processes what arrived in the
// meantime (unless then paused the input again). It reports false, with input flowing,
// when the pool refused the work.
func (c *conn) offLoop(work, then func()) bool {
	gc := c.gc
	c.set(fPaused)
	ok := c.srv().rt.Go(func() {
		work()
		gc.Wake(func(_ gnet.Conn, werr error) error {
			if werr != nil || c.closing.Load() {
				return nil
			}
			c.enterLoop()
			defer c.exitLoop()
			defer c.recoverPanic()
			c.clear(fPaused)
			then()
			c.drainHeld()
			return nil
		})
	})
	if !ok {
		c.clear(fPaused)
	}
	return ok
}

// channelBinding returns the binding data of typ for this connection.
func (c *conn) channelBinding(typ string) ([]byte, bool) {
	if c.ws != nil {
		return nil, false
	}
	if ch, ok := c.gc.(*edgeChan); ok {
		return ch.binding(typ)
	}
	t := c.tls.Load()
	if t == nil || !t.HandshakeComplete() {
		return nil, false
	}
	switch typ {
	case "tls-exporter":
		return t.Exporter()
	case "tls-server-end-point":
		if t.Info().DidResume {
			return nil, false // see cbTypes
		}
		return endPoint(c.srv().config(), t.ServerName())
	}
	return nil, false
}

// endPoint is the RFC 5929 tls-server-end-point binding of the certificate served for
// serverName.
func endPoint(cfg *Config, serverName string) ([]byte, bool) {
	if cfg.TLS == nil || cfg.TLS.GetCertificate == nil && len(cfg.TLS.Certificates) == 0 {
		return nil, false
	}
	var crt *tls.Certificate
	if cfg.TLS.GetCertificate != nil {
		crt, _ = cfg.TLS.GetCertificate(&tls.ClientHelloInfo{ServerName: serverName})
	} else {
		crt = &cfg.TLS.Certificates[0]
	}
	if crt == nil || len(crt.Certificate) == 0 {
		return nil, false
	}
	leaf, err := x509.ParseCertificate(crt.Certificate[0])
	if err != nil {
		return nil, false
	}
	// RFC 5929 §4.1: the certificate's signature hash, SHA-256 for MD5/SHA-1.
	var h hash.Hash
	switch leaf.SignatureAlgorithm {
	case x509.SHA384WithRSA, x509.ECDSAWithSHA384, x509.SHA384WithRSAPSS:
		h = sha512.New384()
	case x509.SHA512WithRSA, x509.ECDSAWithSHA512, x509.SHA512WithRSAPSS:
		h = sha512.New()
	default:
		h = sha256.New()
	}
	h.Write(crt.Certificate[0])
	return h.Sum(nil), true
}

func (c *conn) saslFailure(f *sasl.Failure) {
	if c.has(fSASL2) {
		c.sasl2Failure(f)
		return
	}
	c.write(f.AppendXML(nil))
}

func (c *conn) onSASL(st *xmlstream.Stanza) {
	cfg := c.srv().config()
	name := string(st.Name)
	v2 := string(st.NS) == nsSASL2
	if name == "auth" || name == "authenticate" {
		// The namespace of every answer follows the request that starts an exchange.
		if v2 {
			c.set(fSASL2)
		} else {
			c.clear(fSASL2)
		}
	}
	if c.has(fAuthed) || c.state.Load() != stNegotiating {
		c.fail(stanza.PolicyViolation, "SASL is not allowed now")
		return
	}
	if name == "authenticate" && c.auth != nil && c.auth.v2 != nil && c.auth.v2.stage != upgradeNone {
		// XEP-0388 §2.6: after <continue/>, only the task's exchange.
		c.fail(stanza.PolicyViolation, "<authenticate/> after <continue/>")
		return
	}
	if cfg.RequireTLS && !c.has(fTLS) && cfg.TLS != nil {
		c.saslFailure(&sasl.Failure{Condition: "encryption-required"})
		return
	}
	if v2 != c.has(fSASL2) && (name == "abort" || name == "response") {
		c.saslFailure(&sasl.Failure{Condition: "malformed-request", Text: "no exchange in progress"})
		return
	}
	var initial []byte
	var req *sasl2Req
	switch name {
	case "abort":
		c.auth = nil
		c.saslFailure(&sasl.Failure{Condition: "aborted"})
		return
	case "auth", "authenticate":
		mech, _ := st.Attr("mechanism")
		mechs := c.mechanisms()
		srv, err := sasl.NewServer(string(mech), c.channelBinding)
		if err != nil || !c.offered(string(mech), v2, mechs) {
			c.saslFailure(&sasl.Failure{Condition: "invalid-mechanism"})
			return
		}
		if v2 {
			var f *sasl.Failure
			if initial, req, f = c.parseAuthenticate(st, string(mech)); f != nil {
				c.saslFailure(f)
				return
			}
		} else {
			initial = st.Elem().AppendText(nil)
		}
		// The attempt counts now, when it starts, not when it fails: a client that opens
		// many streams and pipelines every first message gets no more guesses than one
		// that waits for each answer. A success gives the attempt back.
		key := addrKey(c.ip())
		if c.auth != nil && c.auth.addr != "" {
			c.srv().throttle.refund(c.auth.addr) // a restarted exchange replaces the old one
		}
		if !c.srv().throttle.take(key, cfg.AuthFailLimit, time.Now()) {
			c.auth = nil
			c.srv().login(mechIndex(string(mech)), false)
			c.saslFailure(&sasl.Failure{Condition: "temporary-auth-failure", Text: "too many login attempts from this address; try again later"})
			return
		}
		if c.has(fCBRejected) {
			srv.AcceptUnboundClient()
		}
		// XEP-0474: both profiles advertise the same mechanism list (FAST's are apart).
		srv.Advertised(mechs, c.cbTypes())
		c.auth = &authState{srv: srv, addr: key, v2: req, mech: mechIndex(string(mech))}
	case "response":
		if c.auth == nil {
			c.saslFailure(&sasl.Failure{Condition: "malformed-request", Text: "no exchange in progress"})
			return
		}
		initial = st.Elem().AppendText(nil)
	}
	data, err := decodeSASL(initial)
	if err != nil {
		c.auth = nil
		c.saslFailure(&sasl.Failure{Condition: "incorrect-encoding"})
		return
	}
	out, status, err := c.auth.srv.Step(data)
	c.saslStep(out, status, err)
}

// offered reports whether mech was offered, mechs being the SASL list: FAST's token
// mechanisms only inside SASL2.
func (c *conn) offered(mech string, v2 bool, mechs []string) bool {
	if v2 && contains(c.fastMechanisms(), mech) {
		return true
	}
	return contains(mechs, mech)
}

// decodeSASL decodes the base64 text of auth/response; "=" means empty (RFC 6120 §6.4.2).
func decodeSASL(text []byte) ([]byte, error) {
	if len(text) == 0 || (len(text) == 1 && text[0] == '=') {
		return nil, nil
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(text)))
	n, err := base64.StdEncoding.Decode(out, text)
	if err != nil {
		return nil, errors.New("engine: bad base64")
	}
	return out[:n], nil
}

// saslStep acts on the SASL server's answer; it runs on the loop.
func (c *conn) saslStep(out []byte, status sasl.Status, err error) {
	if err != nil {
		c.authFailed(err)
		return
	}
	switch status {
	case sasl.Continue:
		var b xmlstream.Builder
		if c.has(fSASL2) {
			// XEP-0388 carries plain base64; an empty challenge is an empty element.
			b.Start("challenge").Attr("xmlns", nsSASL2).Text(base64.StdEncoding.EncodeToString(out)).End()
		} else {
			b.Start("challenge").Attr("xmlns", ns.SASL).Text(encodeSASL(out)).End()
		}
		c.write(b.B)
	case sasl.NeedCredentials, sasl.NeedPassword, sasl.NeedToken:
		c.lookup(status)
	case sasl.NeedAnonymous:
		c.anonLogin()
	case sasl.Success:
		if a := c.auth; a.v2 != nil && a.v2.pending != 0 && !a.disabled {
			c.nextUpgrade(out) // XEP-0480 tasks before <success/>
			return
		}
		c.authSucceeded(out)
	}
}

func encodeSASL(b []byte) string {
	if len(b) == 0 {
		return "="
	}
	return base64.StdEncoding.EncodeToString(b)
}

// completeKeys gives an account that holds keys for some SCRAM hashes only (imported from
// Prosody or ejabberd, which keep SCRAM-SHA-1) the keys of the others, from the password a
// PLAIN login just proved, with the iteration count it had. Without them a client that
// picks the strongest mechanism offered (SCRAM-SHA-256) could never log in again. Runs on
// the worker pool; a failure only means the next PLAIN login tries again.
func (c *conn) completeKeys(user string, acct store.Account, have store.Hash, password string) [3]store.Credentials {
	keys := acct.Creds
	for _, h := range []store.Hash{store.SHA1, store.SHA256, store.SHA512} {
		if !keys[h].IsZero() {
			continue
		}
		k, err := creds.Derive(password, h, keys[have].Iter)
		if err != nil {
			return acct.Creds
		}
		keys[h] = k
	}
	// Only if the keys are still those the password was checked against: a password
	// changed meanwhile stays changed.
	if err := c.srv().st.Accounts().AddCredentials(user, acct.Creds, keys); err != nil {
		c.srv().log.Warn().Err(err).Str("user", user).Msg("storing the missing SCRAM keys")
		return acct.Creds
	}
	return keys
}

// externalLogin checks a PLAIN password with the operator's program (Config.External) for
// an account without keys, acct as read (gerr store.ErrNotFound: none yet). The first
// login the program accepts creates the local account, without keys, that holds the
// user's roster and the rest, and the modules hear of it as of a registration. An error
// of the program is returned as gerr: the login gets temporary-auth-failure.
func (s *Server) externalLogin(ext PasswordChecker, local, domain, password string, acct store.Account, gerr error) (bool, store.Account, error) {
	ok, err := ext.CheckPassword(local, domain, password)
	if err != nil {
		s.log.Warn().Err(err).Str("user", local+"@"+domain).Msg("external authentication gave no answer")
		return false, acct, err
	}
	if !ok || gerr == nil {
		return ok, acct, gerr
	}
	user := local + "@" + domain
	acct = store.Account{User: user, Created: time.Now().UTC(), External: true}
	switch err := s.st.Accounts().Create(acct); {
	case errors.Is(err, store.ErrExists): // another stream's first login, just now
		acct, err = s.st.Accounts().Get(user)
		return err == nil && store.NoKeys(acct.Creds), acct, err
	case err != nil:
		return false, acct, err
	}
	if u, err := jid.New(local, domain, ""); err == nil {
		s.rt.Registered(module.Registration{User: u, Via: module.RegSite})
	}
	return true, acct, nil
}

// absentAccount returns the credentials PLAIN checks a password against for an account
// that does not exist: made once, with the iteration count new accounts get.
var absentAccount = sync.OnceValue(func() store.Credentials {
	var pw [16]byte
	rand.Read(pw[:])
	c, _ := creds.Derive(string(pw[:]), store.SHA256, creds.DefaultIter)
	return c
})

// lookup fetches credentials (and for PLAIN checks the password) on the worker pool, then
// resumes the exchange on the loop.
func (c *conn) lookup(status sasl.Status) {
	a := c.auth
	domain := c.domainName()
	st := c.srv().st
	gc := c.gc
	tailored := c.has(fTailored)
	c.set(fPaused)
	ok := c.srv().rt.Go(func() {
		local, perr := jid.PrepareLocal(a.srv.Username())
		var acct store.Account
		var gerr error = perr
		if perr == nil {
			acct, gerr = st.Accounts().Get(local + "@" + domain)
		}
		// Per account: guesses spread over many addresses are slowed (the answer waits for
		// a slot), while addresses the owner logged in from before are never slowed and a
		// new address of the owner does not queue behind anyone else's failures.
		var wait time.Duration
		acctBlocked := false
		if perr == nil {
			var ok bool
			wait, ok = c.srv().guard.reserve(local+"@"+domain, a.addr, time.Now())
			acctBlocked = !ok
		}
		var plainOK bool
		var ext PasswordChecker
		var siteErr, siteGone bool // a token login of a site's account: what the program said
		if e := c.srv().config().External; e != nil && status == sasl.NeedPassword && !acctBlocked && perr == nil &&
			(errors.Is(gerr, store.ErrNotFound) || gerr == nil && store.NoKeys(acct.Creds)) {
			ext = e // an account without keys is the operator's program's to check
		} else if status == sasl.NeedPassword && gerr == nil && !acctBlocked {
			// An account imported from another server may hold SCRAM-SHA-1 keys only
			// (Prosody and ejabberd keep one hash): PLAIN checks the strongest it has.
			h := store.SHA256
			for _, x := range []store.Hash{store.SHA256, store.SHA512, store.SHA1} {
				if !acct.Creds[x].IsZero() {
					h = x
					break
				}
			}
			plainOK = creds.VerifyPlain(acct.Creds[h], h, a.srv.Password())
			if plainOK && h != store.SHA256 {
				// With them: a token this login issues is tied to the keys it now has.
				acct.Creds = c.completeKeys(local+"@"+domain, acct, h, a.srv.Password())
			}
		} else if status == sasl.NeedPassword && !acctBlocked {
			// No such account: the same key derivation, so that the answer's time does not
			// tell which names exist (SCRAM's answer has a made-up salt for the same reason).
			creds.VerifyPlain(absentAccount(), store.SHA256, a.srv.Password())
		}
		// finish runs once the password was checked: here, or after the program answered.
		finish := func() {
			if a.v2 != nil && gerr == nil {
				// A token issued by this login is tied to the keys it proved.
				a.v2.fp = fast.Fingerprint(acct.Creds[store.SHA256])
				if status == sasl.NeedCredentials && a.v2.upgrade != 0 {
					// XEP-0480: the tasks this account needs, run if the proof holds.
					a.v2.pending = a.v2.upgrade &^ haveHashes(acct)
					a.v2.proved = acct.Creds
					a.v2.iter = max(acct.Creds[a.srv.Hash()].Iter, creds.MinIter)
				}
			}
			var tokenOut []byte
			// An account that does not exist has no token, as one that exists may not: the
			// same answer for both, which does not tell which names exist.
			var tokenErr error = &sasl.Failure{Condition: "credentials-expired"}
			switch {
			case siteErr:
				tokenErr = &sasl.Failure{Condition: "temporary-auth-failure"}
			case siteGone:
				// The site removed the account: its tokens go with it (XEP-0484: a token the
				// server no longer trusts is refused).
				if err := c.srv().fast.Forget(local + "@" + domain); err != nil {
					c.srv().log.Warn().Err(err).Str("user", local+"@"+domain).Msg("FAST tokens not forgotten")
				}
			case status == sasl.NeedToken && gerr == nil && !acctBlocked:
				tokenOut, tokenErr = c.checkToken(a, local+"@"+domain, time.Now())
			}
			wake := func() {
				gc.Wake(func(_ gnet.Conn, werr error) error {
					if werr != nil || c.closing.Load() || c.auth != a {
						return nil
					}
					c.enterLoop()
					defer c.exitLoop()
					defer c.recoverPanic()
					a.local = local
					a.disabled = gerr == nil && acct.Disabled
					if acctBlocked {
						c.clear(fPaused)
						c.auth = nil
						c.srv().login(a.mech, false)
						c.saslFailure(&sasl.Failure{Condition: "temporary-auth-failure", Text: "too many failed attempts for this account; try again later"})
						c.drainHeld()
						return nil
					}
					if gerr != nil && !errors.Is(gerr, store.ErrNotFound) && perr == nil {
						c.clear(fPaused)
						c.auth = nil
						c.saslFailure(&sasl.Failure{Condition: "temporary-auth-failure"})
						c.drainHeld()
						return nil
					}
					c.clear(fPaused)
					if status == sasl.NeedToken {
						if tokenErr != nil {
							c.authFailed(tokenErr)
						} else {
							c.authSucceeded(tokenOut)
						}
						c.drainHeld()
						return nil
					}
					if status == sasl.NeedPassword {
						if gerr != nil || !plainOK {
							c.authFailed(&sasl.Failure{Condition: "not-authorized"})
						} else {
							c.authSucceeded(nil)
						}
						c.drainHeld()
						return nil
					}
					var creds store.Credentials
					if gerr == nil {
						creds = acct.Creds[a.srv.Hash()]
					}
					if tailored {
						// The features listed this account's hashes (tailorFeatures); XEP-0474
						// hashes what was listed.
						a.srv.Advertised(c.mechanismsFor(scramMask(acct)), c.cbTypes())
					}
					out, st, err := a.srv.Resume(creds)
					if err == nil && st == sasl.Success && gerr != nil {
						err = &sasl.Failure{Condition: "not-authorized"}
					}
					c.saslStep(out, st, err)
					c.drainHeld()
					return nil
				})
			}
			if wait > 0 {
				time.AfterFunc(wait, wake)
			} else {
				wake()
			}
		}
		if e := c.srv().config().External; e != nil && status == sasl.NeedToken && gerr == nil && keptBySite(acct) && !acctBlocked {
			// A token of an account the site's program keeps is only as good as the account
			// there: a removal made at the site never reaches the server otherwise. The
			// program is asked whether it still exists, which hashes no password.
			go func() {
				ok, err := e.UserExists(local, domain)
				siteErr, siteGone = err != nil, err == nil && !ok
				finish()
			}()
			return
		}
		if ext == nil {
			finish()
			return
		}
		// The program may take up to its timeout: it must not hold a worker of the shared
		// pool meanwhile (extauth bounds how many wait).
		password := a.srv.Password()
		go func() {
			plainOK, acct, gerr = c.srv().externalLogin(ext, local, domain, password, acct, gerr)
			finish()
		}()
	})
	if !ok {
		c.clear(fPaused)
		c.auth = nil
		c.saslFailure(&sasl.Failure{Condition: "temporary-auth-failure", Text: "server busy"})
	}
}

func (c *conn) authFailed(err error) {
	s := c.srv()
	mech := uint8(mechOther)
	if c.auth != nil {
		mech = c.auth.mech
	}
	s.login(mech, false)
	user := ""
	if c.auth != nil {
		user = c.auth.local
		if err == sasl.ErrUnsupportedBinding && c.auth.addr != "" {
			// A client probing our channel bindings guessed no password. Any other
			// failure was counted when the attempt started (reserve) and stays.
			s.throttle.refund(c.auth.addr)
		}
	}
	c.auth = nil
	if err == sasl.ErrUnsupportedBinding {
		c.set(fCBRejected)
	}
	f, ok := err.(*sasl.Failure)
	if !ok {
		f = &sasl.Failure{Condition: "not-authorized"}
	}
	if e := s.log.Debug(); e.Enabled() {
		e.Str("remote", c.ip()).Str("user", user).Str("condition", f.Condition).Msg("auth failed")
	}
	c.saslFailure(f)
	if err != sasl.ErrUnsupportedBinding && s.countSASLFailure(c) >= maxSASLFailures {
		c.fail(stanza.PolicyViolation, "too many failed authentication attempts on this stream")
	}
}

// maxSASLFailures is how many failed authentications one stream may have before it ends
// with policy-violation (RFC 6120 §6.4.5: between 2 and 5 retries, then a stream error).
// The limits per address and per account (throttle, guard) bound guessing across
// streams; this one ends a stream that keeps trying.
const maxSASLFailures = 5

// countSASLFailure counts a failed authentication of c and returns its failures so far.
func (s *Server) countSASLFailure(c *conn) uint8 {
	n := uint8(1)
	if v, had := s.saslFails.Load(c); had {
		n = v.(uint8) + 1
	} else {
		s.saslFailConns.Add(1)
	}
	s.saslFails.Store(c, n)
	return n
}

// forgetSASLFailures drops c's count (after its success, or when it closes).
func (s *Server) forgetSASLFailures(c *conn) {
	if s.saslFailConns.Load() == 0 {
		return
	}
	if _, had := s.saslFails.LoadAndDelete(c); had {
		s.saslFailConns.Add(-1)
	}
}

func (c *conn) authSucceeded(out []byte) {
	a := c.auth
	if a.disabled {
		// Every mechanism (PLAIN, SCRAM, FAST tokens; SASL and SASL2) gets its account from
		// lookup and ends here. Refusing only after the proof keeps a disabled account's
		// state from anyone who does not hold its password (RFC 6120 §6.5.1).
		c.authFailed(&sasl.Failure{Condition: "account-disabled", Text: "this account is disabled"})
		return
	}
	if d := a.srv.AuthzDomain(); d != "" {
		if pd, err := jid.PrepareDomain(d); err != nil || pd != c.domainName() {
			// An authzid of the same name on another domain is another account.
			c.authFailed(&sasl.Failure{Condition: "invalid-authzid"})
			return
		}
	}
	c.auth = nil
	c.srv().forgetSASLFailures(c)
	if a.addr != "" {
		c.srv().throttle.refund(a.addr)
	}
	if a.local != "" {
		c.srv().guard.succeeded(a.local + "@" + c.domainName())
	}
	bare, err := jid.New(a.local, c.domainName(), "")
	if err != nil {
		c.authFailed(&sasl.Failure{Condition: "not-authorized"})
		return
	}
	c.bare = bare
	c.set(fAuthed)
	c.authenticated()
	c.srv().login(a.mech, true)
	if e := c.srv().log.Debug(); e.Enabled() {
		e.Str("remote", c.ip()).Str("user", bare.String()).Bool("sasl2", a.v2 != nil).Msg("authenticated")
	}
	if a.v2 != nil {
		c.sasl2Succeeded(a.v2, out)
		return
	}
	var b xmlstream.Builder
	b.Start("success").Attr("xmlns", ns.SASL)
	if len(out) > 0 {
		b.Text(base64.StdEncoding.EncodeToString(out))
	}
	b.End()
	c.write(b.B)
	// RFC 6120 §6.4.6: the client restarts the stream.
	c.state.Store(stAuthed)
	cfg := c.srv().config()
	c.scan.Reset(c.l.kind.scanKind(), &cfg.Limits)
}

// --- XEP-0077 in-band registration before authentication ---

const registerForm = "<query xmlns='jabber:iq:register'><instructions>Choose a username and password.</instructions><username/><password/></query>"

// XEP-0445 pre-authenticated in-band registration.
const (
	nsIBRToken = "urn:xmpp:ibr-token:0" // the stream feature
	nsPreauth  = "urn:xmpp:pars:0"      // <preauth token=…/>
)

// invitation returns the invitation this connection presented (XEP-0445), if any.
func (c *conn) invitation() (invites.Invite, bool) {
	if !c.has(fInvited) {
		return invites.Invite{}, false
	}
	v, ok := c.srv().invited.Load(c)
	if !ok {
		return invites.Invite{}, false
	}
	return v.(invites.Invite), true
}

// onPreauth checks the token of an XEP-0401 invitation before registration (XEP-0445 §4):
// a valid one for this host lets the stream register, even where registration is closed,
// the name the invitation reserves or (without one) a name of the client's choosing.
// Wrong tokens count against the address's registration budget, so they cannot be
// guessed at speed.
func (c *conn) onPreauth(st *xmlstream.Stanza, q xmlstream.Element) {
	id := append([]byte(nil), st.ID...)
	if string(st.Type) != "set" {
		c.iqError(id, stanza.New(stanza.BadRequest))
		return
	}
	cfg := c.srv().config()
	key, now := "register:"+addrKey(c.ip()), time.Now() // per /64 for IPv6, as SASL failures
	trusted := cfg.trusted(c.ip())
	if !trusted && c.srv().throttle.blocked(key, cfg.RegisterLimit, now) {
		e := stanza.New(stanza.ResourceConstraintCond)
		e.Type = stanza.Wait
		c.iqError(id, e)
		return
	}
	token, _ := q.AppendAttr(nil, "token")
	inv, err := invites.Check(c.srv().st.Table(invites.Table), string(token), now)
	if err != nil || inv.Domain != c.domainName() || !inv.Registers() { // a contact invitation without ibr=y opens none
		if !trusted {
			c.srv().throttle.fail(key, now)
		}
		if err != nil && !errors.Is(err, invites.ErrInvalid) {
			c.iqError(id, module.StoreError(err))
			return
		}
		e := stanza.New(stanza.ItemNotFound)
		e.Text = "The provided token is invalid or expired"
		c.iqError(id, e)
		return
	}
	c.srv().invited.Store(c, inv)
	c.set(fInvited)
	c.iqResult(id, nil)
}

// ErrReservedName refuses a registration of one of Config.ReservedNames.
var ErrReservedName = errors.New("engine: the name is reserved")

// createAccount stores user (bare) with password, spending inv when it is not nil: a name
// another invitation reserves is refused (invites.ErrNameTaken), the token must still be
// unspent, it is redeemed once the account exists (XEP-0445 §4, single use), and the
// modules hear of the account (OnRegistered), which makes a contact invitation's inviter
// and the new account contacts. It derives the SCRAM keys (PBKDF2), or, with
// Config.ExternalManage, has the site's program create the account (ErrSiteRefused when it
// will not): call it off the event loops. via and addr say how and from where
// (module.Registration).
func (s *Server) createAccount(user, password string, inv *invites.Invite, via, addr string) error {
	if local, _, _ := strings.Cut(user, "@"); (inv == nil || inv.Username == "") &&
		(slices.Contains(s.config().ReservedNames, local) || slices.Contains(s.config().AdminJIDs, user)) {
		return ErrReservedName // the operator's roles: only an invitation naming it, or vireoctl
	}
	t := s.st.Table(invites.Table)
	if tok, held := invites.Reserved(t, user, time.Now()); held && (inv == nil || tok != inv.Token) {
		return invites.ErrNameTaken
	}
	if ext := s.config().External; ext != nil {
		// A name the operator's program knows is taken, whether or not its owner has
		// logged in here yet: a local account would shadow it.
		if local, domain, ok := strings.Cut(user, "@"); ok {
			known, err := ext.UserExists(local, domain)
			if err != nil {
				return err
			}
			if known {
				return store.ErrExists
			}
		}
	}
	m := s.manager()
	var keys [3]store.Credentials
	if m == nil {
		var err error
		if keys, err = creds.DeriveAll(password, creds.DefaultIter); err != nil {
			return err
		}
	}
	if inv != nil {
		s.redeeming.Lock()
		defer s.redeeming.Unlock()
		if !invites.Unspent(t, inv.Token) {
			return invites.ErrInvalid // another stream or page spent it meanwhile
		}
	}
	release, err := s.reserveAccount(user)
	if err != nil {
		return err
	}
	made := false
	defer func() { release(made) }()
	acct := store.Account{User: user, Creds: keys, Created: time.Now().UTC()}
	if m != nil {
		// The site keeps the account and its password; here it is an account without
		// keys, as the first login of a user the site already had creates.
		local, domain, _ := strings.Cut(user, "@")
		ok, err := m.TryRegister(local, domain, password)
		if err != nil {
			return err
		}
		if !ok {
			return ErrSiteRefused
		}
		acct.External = true
	}
	if inv != nil {
		// Spent in the write that makes the account: a crash between two writes would
		// leave a single-use invitation good for another account.
		err = s.st.Accounts().CreateWith(acct, invites.Table, invites.RedeemOps(*inv)...)
	} else {
		err = s.st.Accounts().Create(acct)
	}
	if err != nil {
		return err
	}
	made = true
	u, _ := jid.Parse(user) // prepared by the caller
	reg := module.Registration{User: u, Via: via, Addr: addr}
	if inv != nil {
		if inv.Contact {
			reg.Inviter, _ = jid.Parse(inv.Inviter)
			reg.Contact = true
		}
	}
	s.rt.Registered(reg)
	return nil
}

func (c *conn) onRegister(st *xmlstream.Stanza, q xmlstream.Element) {
	id := append([]byte(nil), st.ID...)
	inv, invited := c.invitation()
	cfg := c.srv().config()
	captcha := c.needsCaptcha(cfg, invited)
	switch string(st.Type) {
	case "get":
		if invited && inv.Username != "" {
			// XEP-0445 §4: the name is the invitation's; the client only chooses a password.
			var b xmlstream.Builder
			b.Start("query").Attr("xmlns", ns.Register).
				Start("instructions").Text("Choose a password for " + inv.JID() + ".").End().
				Start("username").Text(inv.Username).End().Start("password").End().End()
			c.iqResult(id, b.B)
			return
		}
		if captcha {
			c.captchaForm(id)
			return
		}
		c.iqResult(id, []byte(registerForm))
		return
	case "set":
	default:
		c.iqError(id, stanza.New(stanza.BadRequest))
		return
	}
	if _, ok := q.Child(ns.Register, "remove"); ok {
		c.iqError(id, stanza.New(stanza.NotAuthorizedCond)) // removal needs a login
		return
	}
	var username, password string
	if captcha {
		var e *stanza.Error
		if username, password, e = c.captchaAnswer(q); e != nil {
			c.iqError(id, e)
			return
		}
	} else {
		u, okU := q.Child(ns.Register, "username")
		p, okP := q.Child(ns.Register, "password")
		if !okU || !okP {
			c.iqError(id, stanza.New(stanza.BadRequest))
			return
		}
		username, password = string(u.AppendText(nil)), string(p.AppendText(nil))
	}
	local, err := jid.PrepareLocal(username)
	if err != nil || local == "" || len(password) == 0 || len(password) > 1023 {
		c.iqError(id, stanza.New(stanza.NotAcceptable))
		return
	}
	// Registrations have their own per-address budget; trusted networks (loopback by
	// default) provision in bulk.
	key := "register:" + addrKey(c.ip()) // per /64 for IPv6, as SASL failures
	if !cfg.trusted(c.ip()) {
		if c.srv().throttle.blocked(key, cfg.RegisterLimit, time.Now()) {
			e := stanza.New(stanza.ResourceConstraintCond)
			e.Type = stanza.Wait
			c.iqError(id, e)
			return
		}
		c.srv().throttle.fail(key, time.Now())
	}
	user := local + "@" + c.domainName()
	if invited && inv.Username != "" && local != inv.Username {
		e := stanza.New(stanza.NotAcceptable)
		e.Text = "This invitation is for " + inv.JID() + "."
		c.iqError(id, e)
		return
	}
	srv := c.srv()
	var spend *invites.Invite
	if invited {
		spend = &inv
	}
	var cerr error
	addr := c.ip()
	ok := c.offLoop(func() { cerr = srv.createAccount(user, password, spend, module.RegInBand, addr) }, func() {
		switch {
		case cerr == nil:
			c.srv().log.Info().Str("user", user).Str("remote", c.ip()).Bool("invited", invited).Msg("account registered in-band")
			if !invited {
				c.srv().counts.regs[regOpen].Add(1)
			} else {
				c.srv().counts.regs[regInvite].Add(1)
				c.srv().invited.Delete(c)
				c.clear(fInvited)
			}
			c.iqResult(id, nil)
		case errors.Is(cerr, store.ErrExists):
			c.iqError(id, stanza.New(stanza.ConflictCond))
		case errors.Is(cerr, invites.ErrNameTaken):
			e := stanza.New(stanza.ConflictCond)
			e.Text = "This name is reserved for an invitation."
			c.iqError(id, e)
		case errors.Is(cerr, ErrReservedName):
			e := stanza.New(stanza.NotAcceptable)
			e.Text = "This name is reserved; choose another."
			c.iqError(id, e)
		case errors.Is(cerr, invites.ErrInvalid):
			e := stanza.New(stanza.NotAuthorizedCond)
			e.Text = "The invitation has been used."
			c.iqError(id, e)
		case errors.Is(cerr, ErrSiteRefused):
			e := stanza.New(stanza.NotAllowed)
			e.Text = "The site that runs this server refused the registration."
			c.iqError(id, e)
		case errors.Is(cerr, ErrHostFull):
			e := stanza.New(stanza.NotAllowed)
			e.Text = "This server takes no more accounts on " + c.domainName() + "."
			c.iqError(id, e)
		default:
			c.iqError(id, module.StoreError(cerr)) // resource-constraint when the disk is full
		}
	})
	if !ok {
		e := stanza.New(stanza.ResourceConstraintCond)
		e.Type = stanza.Wait
		c.iqError(id, e)
	}
}
