package engine

import (
	"crypto/rand"
	"encoding/base64"
	"math/bits"
	"strconv"

	"github.com/vireo-im/vireo/engine/fast"
	"github.com/vireo-im/vireo/engine/sasl"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/creds"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// XEP-0480 SASL upgrade tasks: an account that holds the keys of some SCRAM hashes only
// (imported from Prosody or ejabberd) gets the others from a client that logs in with one it
// has. The password never travels: the server sends a fresh salt and its iteration count,
// the client answers with RFC 5802's SaltedPassword for the new hash, and the server derives
// and stores the keys before <success/>. Only a SCRAM login leads to a task (a PLAIN login
// completes the keys itself, completeKeys; a FAST token proves no password), and only for
// hashes the account lacks: keys it has are never replaced this way.

const (
	nsUpgrade      = "urn:xmpp:sasl:upgrade:0"
	nsScramUpgrade = "urn:xmpp:scram-upgrade:0"
)

// upgradeTasks are the XEP-0480 task names, by store.Hash.
var upgradeTasks = [...]string{
	store.SHA1:   "UPGR-SCRAM-SHA-1",
	store.SHA256: "UPGR-SCRAM-SHA-256",
	store.SHA512: "UPGR-SCRAM-SHA-512",
}

// Stages of the task in progress (sasl2Req.stage).
const (
	upgradeNone uint8 = iota
	upgradeNext       // <continue/> sent, waiting for <next/>
	upgradeHash       // salt sent, waiting for the SaltedPassword
	upgradeSave       // storing the keys
)

// upgradeFeature lists the tasks in the SASL2 <authentication/> feature.
func upgradeFeature(b *xmlstream.Builder) {
	for _, t := range upgradeTasks {
		b.Start("upgrade").Attr("xmlns", nsUpgrade).Text(t).End()
	}
}

// parseUpgrade records one <upgrade/> of an <authenticate/>; unknown tasks are ignored.
func parseUpgrade(r *sasl2Req, e xmlstream.Element) {
	name := string(e.AppendText(nil))
	for h, t := range upgradeTasks {
		if t == name {
			r.upgrade |= 1 << h
		}
	}
}

// haveHashes says which SCRAM hashes acct has keys for (bits 1<<store.Hash).
func haveHashes(acct store.Account) uint8 {
	var m uint8
	for _, h := range []store.Hash{store.SHA1, store.SHA256, store.SHA512} {
		if !acct.Creds[h].IsZero() {
			m |= 1 << h
		}
	}
	return m
}

// nextUpgrade asks the client for the next task, once its SCRAM proof has succeeded (out
// is the server-final-message): the login stays unauthenticated until the tasks are done.
func (c *conn) nextUpgrade(out []byte) {
	r := c.auth.v2
	r.final = out
	r.task = store.Hash(bits.TrailingZeros8(r.pending))
	r.stage = upgradeNext
	var b xmlstream.Builder
	b.Start("continue").Attr("xmlns", nsSASL2)
	b.Start("additional-data").Text(base64.StdEncoding.EncodeToString(out)).End()
	b.Start("tasks").Start("task").Text(upgradeTasks[r.task]).End().End()
	b.Start("text").Text("this account has no " + upgradeTasks[r.task][5:] + " keys yet").End()
	b.End()
	c.write(b.B)
}

// onUpgrade handles <next/> and <task-data/> during the tasks.
func (c *conn) onUpgrade(st *xmlstream.Stanza, name string) {
	a := c.auth
	if a == nil || a.v2 == nil || a.v2.stage == upgradeNone || a.v2.stage == upgradeSave || c.has(fAuthed) {
		c.fail(stanza.PolicyViolation, "no SASL2 task is in progress")
		return
	}
	r := a.v2
	abort := func(text string) {
		c.auth = nil
		c.sasl2Failure(&sasl.Failure{Condition: "malformed-request", Text: text})
	}
	switch {
	case name == "next" && r.stage == upgradeNext:
		if t, _ := st.Attr("task"); string(t) != upgradeTasks[r.task] {
			abort("next names another task than the one asked for")
			return
		}
		r.salt = make([]byte, 16)
		rand.Read(r.salt)
		var b xmlstream.Builder
		b.Start("task-data").Attr("xmlns", nsSASL2)
		b.Start("salt").Attr("xmlns", nsScramUpgrade).Attr("iterations", strconv.Itoa(r.iter)).
			Text(base64.StdEncoding.EncodeToString(r.salt)).End()
		b.End()
		c.write(b.B)
		r.stage = upgradeHash
	case name == "task-data" && r.stage == upgradeHash:
		var salted []byte
		for it := st.Elem().Children(); ; {
			ch, ok := it.Next()
			if !ok {
				break
			}
			if string(ch.NS()) == nsScramUpgrade && string(ch.Name()) == "hash" {
				salted, _ = decodeSASL(ch.AppendText(nil))
			}
		}
		if len(salted) != creds.NewHash(r.task)().Size() {
			abort("task-data needs the SaltedPassword of the new hash")
			return
		}
		c.saveUpgrade(a, creds.FromSalted(r.task, salted, r.salt, r.iter))
	default:
		abort("unexpected " + name + " during the task")
	}
}

// saveUpgrade stores the new keys off the loop, durably, then goes on to the next task or
// to success.
func (c *conn) saveUpgrade(a *authState, k store.Credentials) {
	r := a.v2
	r.stage = upgradeSave
	user := a.local + "@" + c.domainName()
	st, log := c.srv().st, c.srv().log
	ok := c.offLoop(func() {
		acct, err := st.Accounts().Get(user)
		if err == nil && acct.Creds[r.task].IsZero() { // never replace keys it has
			var add [3]store.Credentials
			add[r.task] = k
			// Only onto the keys the login proved: a password changed since stays changed.
			if err = st.Accounts().AddCredentials(user, r.proved, add); err == nil {
				r.proved[r.task] = k // the next task's basis
				if r.task == store.SHA256 {
					// A token this login issues is tied to the keys it now has (fast.Fingerprint).
					r.fp = fast.Fingerprint(k)
				}
			}
		}
		if err != nil {
			// The login goes on: the client can upgrade at its next login.
			log.Warn().Err(err).Str("user", user).Msg("SCRAM upgrade not stored")
		}
	}, func() {
		if c.auth != a {
			return // the client started over meanwhile
		}
		r.pending &^= 1 << r.task
		r.stage = upgradeNone
		if r.pending != 0 {
			c.nextUpgrade(r.final)
		} else {
			c.authSucceeded(r.final)
		}
	})
	if !ok {
		r.stage = upgradeNone
		c.authSucceeded(r.final) // no pool: the login works, without the upgrade
	}
}
