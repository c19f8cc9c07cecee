package engine

import (
	"bytes"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"strings"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// nsComponent is the content namespace of XEP-0114 streams.
const nsComponent = "jabber:component:accept"

// Component is one external component allowed to connect (XEP-0114): its domain and the
// shared secret of its handshake.
type Component struct {
	Domain string
	Secret string
	// Privileges are what the component may do with the accounts of the server's hosts
	// (XEP-0356, privilege.go).
	Privileges module.Privileges
}

// component is the XEP-0114 stream kind: the component opens a stream to its own domain,
// proves the shared secret with <handshake>SHA1(stream id + secret)</handshake>, and from
// then on its domain (and every subdomain of it) is a destination in the router; stanzas
// flow both ways. One connection per domain: a second one gets <conflict/>.
type component struct{ srv *Server }

func (*component) name() string                   { return "component" }
func (*component) ns() string                     { return nsComponent }
func (*component) scanKind() xmlstream.StreamKind { return xmlstream.KindComponent }

func (k *component) secret(domain string) (string, bool) {
	for _, x := range k.srv.config().Components {
		if x.Domain == domain {
			return x.Secret, true
		}
	}
	return "", false
}

func (k *component) header(c *conn, h *xmlstream.Stanza) {
	to, _ := h.Attr("to")
	d, err := jid.PrepareDomain(string(xmlstream.AppendUnescaped(nil, to)))
	_, known := k.secret(d)
	if err != nil || !known || k.srv.isLocal(d) || k.srv.rt.IsService(d) {
		// A domain a virtual host or a module's service has is theirs, whatever the
		// component list says: a component there would speak for their users.
		c.writeHeader(h, nsComponent)
		c.fail(stanza.HostUnknown, "")
		return
	}
	c.bare, _ = jid.New("", d, "")
	id := c.writeHeaderFrom(h, nsComponent, d)
	c.auth = &authState{streamID: id}
	c.state.Store(stNegotiating)
}

func (k *component) element(c *conn, st *xmlstream.Stanza) bool {
	if c.state.Load() == stEstablished {
		k.established(c, st)
		return false
	}
	if string(st.Name) != "handshake" || string(st.NS) != nsComponent || c.auth == nil {
		c.fail(stanza.NotAuthorized, "")
		return false
	}
	s := c.srv()
	now := time.Now()
	key := addrKey(c.ip()) // failed handshakes count per address, like failed logins
	if s.throttle.blocked(key, s.config().AuthFailLimit, now) {
		c.fail(stanza.PolicyViolation, "too many failed handshakes")
		return false
	}
	domain := c.bare.Domain()
	secret, ok := k.secret(domain)
	sum := sha1.Sum([]byte(c.auth.streamID + secret))
	want := hex.EncodeToString(sum[:])
	got := strings.ToLower(strings.TrimSpace(string(st.Elem().AppendText(nil))))
	c.auth = nil
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		s.throttle.fail(key, now)
		s.login(mechComponent, false)
		s.log.Info().Str("component", domain).Str("remote", c.ip()).Msg("component handshake failed")
		c.fail(stanza.NotAuthorized, "")
		return false
	}
	if err := s.rt.AttachComponent(domain, c); err != nil {
		s.log.Info().Str("component", domain).Str("remote", c.ip()).Msg("component already connected")
		c.fail(stanza.Conflict, "")
		return false
	}
	c.set(fAuthed)
	c.authenticated()
	c.state.Store(stEstablished)
	s.compCharges.Store(c, router.NewCharge(c))
	s.login(mechComponent, true)
	s.log.Info().Str("component", domain).Str("remote", c.ip()).Msg("component connected")
	c.write([]byte("<handshake/>"))
	k.advertisePrivileges(c, domain)
	return false
}

func (k *component) established(c *conn, st *xmlstream.Stanza) {
	if st.Kind() == xmlstream.KindOther {
		c.fail(stanza.UnsupportedStanzaType, "")
		return
	}
	// XEP-0114 §3.1: the component may send from its domain or any JID inside it; the
	// server checks, as it checks a client's from.
	fromAttr, ok := st.Attr("from")
	if !ok {
		c.fail(stanza.ImproperAddressing, "a component must stamp 'from'")
		return
	}
	from, err := jid.ParseBytes(xmlstream.AppendUnescaped(nil, fromAttr))
	d := c.bare.Domain()
	if err != nil || (from.Domain() != d && !strings.HasSuffix(from.Domain(), "."+d)) {
		c.fail(stanza.InvalidFrom, "")
		return
	}
	if from.Domain() != d && servedBetween(c.srv(), from.Domain(), d) {
		// A subdomain this server serves otherwise (a virtual host, a service, another
		// component), or one under it, is not the component's to speak for.
		c.fail(stanza.InvalidFrom, "")
		return
	}
	if _, ok := st.Attr("to"); !ok {
		c.fail(stanza.ImproperAddressing, "a component must address 'to'")
		return
	}
	if k.privilegedMessage(c, from, st) || k.privilegedIQ(c, from, st) {
		return
	}
	raw := st.Raw
	if bytes.Contains(raw, []byte(nsComponent)) {
		// The stanza (or, with encoders such as Go's, each of its children) names the
		// component namespace itself; clients must see jabber:client.
		raw = rewriteNS(raw)
	}
	var ch *router.Charge
	if v, ok := c.srv().compCharges.Load(c); ok {
		ch = v.(*router.Charge)
	}
	if ch == nil {
		if !c.srv().rt.SubmitFrom(from, raw) {
			c.fail(stanza.PolicyViolation, "too many stanzas")
		}
		return
	}
	if !c.srv().rt.SubmitFromCharged(from, raw, ch) {
		c.fail(stanza.PolicyViolation, "too many stanzas")
		return
	}
	if ch.Blocked() {
		c.set(fBlocked) // what it sends waits in the stream until the router catches up (Resume)
	}
}

// servedBetween reports whether sub, a subdomain of d, or a domain between the two
// (irc.gw.example between x.irc.gw.example and gw.example) is served by something other
// than d's component: what lies under another component is that one's to speak for,
// its privileges included.
func servedBetween(s *Server, sub, d string) bool {
	for dom := sub; dom != d && strings.HasSuffix(dom, "."+d); {
		if s.servesRemote(dom) {
			return true
		}
		i := strings.IndexByte(dom, '.')
		if i < 0 {
			break
		}
		dom = dom[i+1:]
	}
	return false
}

// dropComponents ends the streams of components a reload took out of the configuration
// (host-gone) or gave another secret (not-authorized): their routes and their right to
// send came from what the configuration no longer says.
func (s *Server) dropComponents(old, cfg *Config) {
	secrets := map[string]string{}
	for _, x := range cfg.Components {
		secrets[x.Domain] = x.Secret
	}
	was := map[string]string{}
	for _, x := range old.Components {
		was[x.Domain] = x.Secret
	}
	for _, l := range s.allListeners() {
		if _, ok := l.kind.(*component); !ok {
			continue
		}
		for _, c := range l.snapshot() {
			c.gc.Wake(func(_ gnet.Conn, err error) error {
				if err != nil || c.closing.Load() || c.state.Load() != stEstablished {
					return nil
				}
				d := c.bare.Domain()
				switch secret, ok := secrets[d]; {
				case !ok:
					c.fail(stanza.HostGone, "")
				case secret != was[d]:
					c.fail(stanza.NotAuthorized, "the component's secret changed")
				}
				return nil
			})
		}
	}
}

func (k *component) closed(c *conn) {
	if c.has(fAuthed) {
		k.srv.compCharges.Delete(c)
		k.srv.rt.DetachComponent(c.bare.Domain(), c)
		k.srv.log.Info().Str("component", c.bare.Domain()).Msg("component disconnected")
	}
}

var _ router.Conn = (*conn)(nil)

// rewriteNS returns raw with every xmlns='jabber:component:accept' declaration inside a
// start tag (not in text or in other attributes' values) changed to jabber:client.
func rewriteNS(raw []byte) []byte { return rewriteXMLNS(raw, nsComponent, ns.Client) }

// rewriteXMLNS is rewriteNS from the namespace nsComponent to nsTo (s2s uses it both ways
// between jabber:server and jabber:client).
func rewriteXMLNS(raw []byte, nsComponent, nsTo string) []byte {
	out := make([]byte, 0, len(raw))
	inTag := false
	var quote byte
	for i := 0; i < len(raw); i++ {
		b := raw[i]
		switch {
		case quote != 0:
			if b == quote {
				quote = 0
			}
		case inTag && (b == '\'' || b == '"'):
			if i >= 6 && string(raw[i-6:i]) == "xmlns=" && len(raw) > i+len(nsComponent) &&
				string(raw[i+1:i+1+len(nsComponent)]) == nsComponent && raw[i+1+len(nsComponent)] == b {
				out = append(out, b)
				out = append(out, nsTo...)
				out = append(out, b)
				i += len(nsComponent) + 1
				continue
			}
			quote = b
		case b == '<':
			inTag = i+1 < len(raw) && raw[i+1] != '/' && raw[i+1] != '!' && raw[i+1] != '?'
		case b == '>':
			inTag = false
		}
		out = append(out, b)
	}
	return out
}
