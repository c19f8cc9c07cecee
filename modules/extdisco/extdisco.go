// Package extdisco implements XEP-0215: External Service Discovery, the way clients find
// the STUN and TURN servers for audio and video calls (Conversations, Dino, Monal ask for
// them before a call), with time-limited TURN credentials in the form coturn checks with
// its use-auth-secret option (the "TURN REST API": a username that carries its expiry
// and a password that is an HMAC of it under a secret the TURN server shares).
//
// It owns the configured service list and the credentials it derives; it keeps no state
// and stores nothing. It does not run a STUN or TURN server, does not push service changes
// to clients (the optional 'action' pushes of §3.4), and answers local users only:
// credentials for the operator's relay are not for other servers' users.
package extdisco

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// NS is the XEP-0215 namespace.
const NS = "urn:xmpp:extdisco:2"

// DefaultTTL is how long credentials are valid when the config names no ttl: long enough
// for a call, short enough that a leaked pair soon stops working.
const DefaultTTL = 24 * time.Hour

func init() { module.Register(new(Mod)) }

// Service is one configured external service ([[modules.extdisco.services]]).
type Service struct {
	// Type is the service type: "stun", "turn", "turns" (XEP-0215 §7.2 registry).
	Type string `toml:"type"`
	// Host is the service's host name or IP address; Port its port (0: omitted).
	Host string `toml:"host"`
	Port int    `toml:"port"`
	// Transport is "udp" or "tcp" ("" omits it).
	Transport string `toml:"transport"`
	// Name is an optional human-readable name.
	Name string `toml:"name"`
	// Secret is the TURN server's shared secret (coturn static-auth-secret): when set,
	// every answer carries a fresh username and password for this service, valid for the
	// module's ttl. Empty: the service needs no credentials (STUN).
	Secret string `toml:"secret"`
	// Username and Password are fixed credentials, for a service without a shared secret;
	// ignored when Secret is set.
	Username string `toml:"username"`
	Password string `toml:"password"`
}

// Config is [modules.extdisco].
type Config struct {
	// TTL is how long derived credentials are valid, a Go duration ("24h").
	TTL      string    `toml:"ttl"`
	Services []Service `toml:"services"`
}

// Mod is the module.
type Mod struct {
	set     atomic.Pointer[module.HostSettings[settings]] // replaced whole at a reload
	offered bool                                          // services were configured at start: the queries are registered
	log     zerolog.Logger
}

// settings are what a reload changes (Reconfigure).
type settings struct {
	services []Service
	ttl      time.Duration
}

// ModuleInfo implements module.Module.
func (*Mod) ModuleInfo() module.Info {
	return module.Info{ID: "extdisco", XEP: 215, New: func() module.Module { return new(Mod) }, PerHost: true}
}

// Provision checks the service list and registers the two queries. With no services
// configured it registers nothing: a server that advertised the feature with an empty
// list would only make clients ask.
func (m *Mod) Provision(r module.Registrar) error {
	m.log = r.Logger()
	if err := module.Configure(r, m); err != nil {
		return err
	}
	if !(hostSettings{m.set.Load()}).any() {
		return nil
	}
	m.offered = true
	r.Feature(NS)
	r.IQ(module.IQGet, NS, "services", m.services)
	r.IQ(module.IQGet, NS, "credentials", m.credentials)
	return nil
}

var _ module.Reconfigurer = (*Mod)(nil)

// Reconfigure implements module.Reconfigurer: the services, their secrets (rotated
// without a restart) and the credentials' lifetime change at a reload. A server that
// started without services offers none until a restart, since its disco features are
// fixed then; the change is logged.
func (m *Mod) Reconfigure(rc module.Reconfig) (func(), error) {
	hs, err := module.DeriveSettings(rc, func(_ string, cfg *Config) (*settings, error) { return cfg.settings() })
	if err != nil {
		return nil, err
	}
	set := hostSettings{hs}
	return func() {
		if m.set.Load() != nil && !m.offered && set.any() {
			m.log.Warn().Msg("extdisco: services are offered from the next restart (none were at start)")
		}
		m.set.Store(set.HostSettings)
	}, nil
}

// hostSettings adds any to the settings of every host.
type hostSettings struct{ *module.HostSettings[settings] }

// any reports whether the server or some host has services.
func (s hostSettings) any() bool {
	if len(s.All().services) > 0 {
		return true
	}
	for _, h := range s.Hosts() {
		if len(s.For(h).services) > 0 {
			return true
		}
	}
	return false
}

// settings checks cfg whole and returns what it sets.
func (cfg *Config) settings() (*settings, error) {
	st := &settings{services: cfg.Services, ttl: DefaultTTL}
	if cfg.TTL != "" {
		d, err := time.ParseDuration(cfg.TTL)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("extdisco: ttl %q: want a positive duration such as \"24h\"", cfg.TTL)
		}
		st.ttl = d
	}
	for i, s := range cfg.Services {
		if s.Type == "" || s.Host == "" {
			return nil, fmt.Errorf("extdisco: services[%d]: type and host are required", i)
		}
		if s.Port < 0 || s.Port > 65535 {
			return nil, fmt.Errorf("extdisco: services[%d]: port %d", i, s.Port)
		}
		if s.Transport != "" && s.Transport != "udp" && s.Transport != "tcp" {
			return nil, fmt.Errorf("extdisco: services[%d]: transport %q: want udp or tcp", i, s.Transport)
		}
	}
	return st, nil
}

// services answers §3.1 and §3.2: every service, or those of the type asked for, each
// with credentials when it has any.
func (m *Mod) services(c module.Context, iq *module.Packet) {
	q, ok := query(c, iq)
	if !ok {
		return
	}
	typ, _ := q.AppendAttr(nil, "type")
	var b xmlstream.Builder
	b.Start("services").Attr("xmlns", NS)
	if len(typ) > 0 {
		b.AttrBytes("type", typ)
	}
	st := m.set.Load().For(iq.From.Domain())
	for i := range st.services {
		s := &st.services[i]
		if len(typ) == 0 || s.Type == string(typ) {
			m.appendService(&b, s, iq, c.Now(), st.ttl)
		}
	}
	b.End()
	c.Reply(iq, b.B)
}

// credentials answers §3.3: credentials for the service named by host and type (and port,
// when given). A service that is not configured is item-not-found.
func (m *Mod) credentials(c module.Context, iq *module.Packet) {
	q, ok := query(c, iq)
	if !ok {
		return
	}
	var host, typ, port []byte
	hasPort := false
	want, ok := q.Child(NS, "service")
	if ok {
		host, _ = want.AppendAttr(nil, "host")
		typ, _ = want.AppendAttr(nil, "type")
		port, hasPort = want.AppendAttr(nil, "port")
	}
	if len(host) == 0 || len(typ) == 0 {
		c.Error(iq, &stanza.Error{Type: stanza.Modify, Condition: stanza.BadRequest, Text: "a <service/> with host and type is required"})
		return
	}
	var b xmlstream.Builder
	b.Start("credentials").Attr("xmlns", NS)
	found := false
	st := m.set.Load().For(iq.From.Domain())
	for i := range st.services {
		s := &st.services[i]
		if !strings.EqualFold(s.Host, string(host)) || s.Type != string(typ) {
			continue
		}
		if hasPort && string(port) != strconv.Itoa(s.Port) {
			continue
		}
		m.appendService(&b, s, iq, c.Now(), st.ttl)
		found = true
	}
	b.End()
	if !found {
		c.Error(iq, stanza.New(stanza.ItemNotFound))
		return
	}
	c.Reply(iq, b.B)
}

// query returns the request's payload, or answers with an error: the services are the
// server's, so a query addressed to a user is not for this module.
func query(c module.Context, iq *module.Packet) (xmlstream.Element, bool) {
	if !iq.To.IsZero() && iq.To.Local() != "" {
		c.Error(iq, stanza.New(stanza.ServiceUnavailable))
		return xmlstream.Element{}, false
	}
	q, ok := iq.Payload()
	if !ok {
		c.Error(iq, stanza.New(stanza.BadRequest))
		return xmlstream.Element{}, false
	}
	return q, true
}

// appendService writes one <service/>, with credentials derived for the requester when
// the service has a shared secret.
func (m *Mod) appendService(b *xmlstream.Builder, s *Service, iq *module.Packet, now time.Time, ttl time.Duration) {
	b.Start("service").Attr("type", s.Type).Attr("host", s.Host)
	if s.Port > 0 {
		b.Attr("port", strconv.Itoa(s.Port))
	}
	if s.Transport != "" {
		b.Attr("transport", s.Transport)
	}
	if s.Name != "" {
		b.Attr("name", s.Name)
	}
	switch {
	case s.Secret != "":
		exp := now.Add(ttl).UTC().Truncate(time.Second)
		user, pass := Credentials(s.Secret, iq.From.Bare().String(), exp)
		b.Attr("username", user).Attr("password", pass).
			Attr("expires", exp.Format(time.RFC3339)).Attr("restricted", "1")
	case s.Username != "" || s.Password != "":
		b.Attr("username", s.Username).Attr("password", s.Password)
	}
	b.End()
}

// Credentials derives the TURN REST API pair coturn's use-auth-secret accepts until
// expires: the username is the expiry in Unix seconds, a colon and who asked (for the
// TURN server's logs; coturn reads the number before the colon), the password the
// base64 of HMAC-SHA1(secret, username).
func Credentials(secret, who string, expires time.Time) (username, password string) {
	username = strconv.FormatInt(expires.Unix(), 10) + ":" + who
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write([]byte(username))
	return username, base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
