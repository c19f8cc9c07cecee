// Package welcome sends every account its user creates (in-band, with an invitation, or
// on an invitation's page) one message from the server: the operator's rules, where to
// get help, which rooms to join. It is the message of the day's counterpart for
// newcomers (XEP-0133's MOTD greets every login).
//
// It owns only [modules.welcome] (and hosts' [vhosts."<host>".modules.welcome]); it is off
// while message is empty. The message goes the
// way any message to an account without a session goes, to offline storage, so the
// newcomer reads it at the first login, stamped with its time. It sends nothing to
// accounts an operator adds (vireoctl, the dashboard, XEP-0133 add-user): those come
// with their own word.
package welcome

import (
	"errors"
	"strings"
	"sync/atomic"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/xmlstream"
)

func init() { module.Register(new(Mod)) }

// MaxMessage bounds the message: one stanza to every newcomer's offline store.
const MaxMessage = 16 << 10

// Config is [modules.welcome].
type Config struct {
	// Message is the body; "" turns the module off. Subject is its subject line.
	Message string `toml:"message"`
	Subject string `toml:"subject"`
}

// Mod is the module.
type Mod struct {
	cfg atomic.Pointer[module.HostSettings[Config]]
}

// ModuleInfo implements module.Module.
func (*Mod) ModuleInfo() module.Info {
	return module.Info{ID: "welcome", New: func() module.Module { return new(Mod) }, PerHost: true}
}

var _ module.Provisioner = (*Mod)(nil)

// Provision reads the message and asks to hear of new accounts.
func (m *Mod) Provision(r module.Registrar) error {
	if err := module.Configure(r, m); err != nil {
		return err
	}
	r.OnRegistered(m.welcome)
	return nil
}

var _ module.Reconfigurer = (*Mod)(nil)

// Reconfigure implements module.Reconfigurer: a new message greets the accounts made
// after the reload; an empty one turns the greeting off. A host's table gives the
// accounts made on it their own message (or none, with message = "").
func (m *Mod) Reconfigure(rc module.Reconfig) (func(), error) {
	set, err := module.DecodeSettings(rc, func(_ string, cfg *Config) error {
		cfg.Message = strings.TrimSpace(cfg.Message)
		if len(cfg.Message) > MaxMessage {
			return errTooLong
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return func() { m.cfg.Store(set) }, nil
}

var errTooLong = errors.New("message: at most 16 KiB")

// welcome routes the message from the account's host to the new account.
func (m *Mod) welcome(c module.Context, r module.Registration) {
	cfg := m.cfg.Load().For(r.User.Domain())
	if cfg.Message == "" {
		return
	}
	var b xmlstream.Builder
	b.Start("message").Attr("type", "normal").Attr("from", r.User.Domain()).Attr("to", r.User.String())
	if cfg.Subject != "" {
		b.Start("subject").Text(cfg.Subject).End()
	}
	b.Start("body").Text(cfg.Message).End().End()
	c.Route(b.B)
}
