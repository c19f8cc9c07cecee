// Package jid implements RFC 7622 XMPP addresses prepared with PRECIS (RFC 8264/8265):
// UsernameCaseMapped for the localpart, IDNA for the domainpart and OpaqueString for the
// resourcepart.
//
// A JID is one canonical string plus two lengths (24 bytes on 64-bit platforms), so it can
// be compared with ==, used as a map key through String, and kept per session cheaply. It
// must not do I/O or know about sessions.
package jid

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/idna"
	"golang.org/x/text/secure/precis"
)

// ErrMalformed is wrapped by every parse error (maps to the jid-malformed stanza error).
var ErrMalformed = errors.New("jid: malformed")

// MaxPart is the RFC 7622 §3 limit for each part, in bytes.
const MaxPart = 1023

// JID is a prepared XMPP address. The zero value is the empty JID.
type JID struct {
	s    string // local@domain/resource in canonical form
	l, d uint16 // lengths of localpart and domainpart
}

func malformed(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, a...)...)
}

// Parse prepares and validates s.
func Parse(s string) (JID, error) {
	if s == "" {
		return JID{}, malformed("empty")
	}
	// RFC 7622 §3.1: the first '/' separates the resource, then the first '@' before it
	// separates the localpart.
	var local, domain, res string
	hasRes := false
	rest := s
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		res, rest, hasRes = rest[i+1:], rest[:i], true
	}
	if i := strings.IndexByte(rest, '@'); i >= 0 {
		local, domain = rest[:i], rest[i+1:]
		if local == "" {
			return JID{}, malformed("empty localpart")
		}
	} else {
		domain = rest
	}
	if hasRes && res == "" {
		return JID{}, malformed("empty resourcepart")
	}
	return build(local, domain, res, strings.IndexByte(rest, '@') >= 0)
}

// ParseBytes is Parse for bytes.
func ParseBytes(b []byte) (JID, error) { return Parse(string(b)) }

// New builds a JID from its parts ("" for absent local or resource).
func New(local, domain, resource string) (JID, error) {
	return build(local, domain, resource, local != "")
}

func build(local, domain, res string, hasLocal bool) (JID, error) {
	var err error
	if hasLocal {
		if local, err = PrepareLocal(local); err != nil {
			return JID{}, err
		}
	}
	if domain, err = PrepareDomain(domain); err != nil {
		return JID{}, err
	}
	if res != "" {
		if res, err = PrepareResource(res); err != nil {
			return JID{}, err
		}
	}
	n := len(local) + len(domain) + len(res) + 2
	var b strings.Builder
	b.Grow(n)
	if local != "" {
		b.WriteString(local)
		b.WriteByte('@')
	}
	b.WriteString(domain)
	if res != "" {
		b.WriteByte('/')
		b.WriteString(res)
	}
	return JID{s: b.String(), l: uint16(len(local)), d: uint16(len(domain))}, nil
}

// PrepareLocal applies the UsernameCaseMapped profile and the RFC 7622 §3.3.1 exclusions.
func PrepareLocal(s string) (string, error) {
	if s == "" {
		return "", malformed("empty localpart")
	}
	out := s
	if printableASCII(s, '!') {
		// What the profile does to printable ASCII (IdentifierClass takes all of it;
		// width mapping, normalization and the bidi rule leave it alone) is the case
		// mapping. A login prepares its JIDs several times and the general path was
		// most of that.
		out = lowerASCII(s)
	} else {
		var err error
		if out, err = precis.UsernameCaseMapped.String(s); err != nil {
			return "", malformed("localpart %q: %v", s, err)
		}
	}
	if len(out) > MaxPart {
		return "", malformed("localpart longer than %d bytes", MaxPart)
	}
	if strings.ContainsAny(out, "\"&'/:<>@") {
		return "", malformed("localpart %q contains a forbidden character", s)
	}
	return out, nil
}

// PrepareResource applies the OpaqueString profile.
func PrepareResource(s string) (string, error) {
	if s == "" {
		return "", malformed("empty resourcepart")
	}
	out := s
	if !printableASCII(s, ' ') {
		// The profile leaves printable ASCII and the space as they are.
		var err error
		if out, err = precis.OpaqueString.String(s); err != nil {
			return "", malformed("resourcepart: %v", err)
		}
	}
	if len(out) > MaxPart {
		return "", malformed("resourcepart longer than %d bytes", MaxPart)
	}
	return out, nil
}

var idnaProfile = idna.New(idna.MapForLookup(), idna.Transitional(false), idna.StrictDomainName(false), idna.ValidateLabels(true), idna.CheckHyphens(false), idna.BidiRule())

// PrepareDomain lowercases and IDNA-maps a domainpart (RFC 7622 §3.2), accepts IP literals
// and drops one trailing dot.
func PrepareDomain(s string) (string, error) {
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return "", malformed("empty domainpart")
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		a, err := netip.ParseAddr(s[1 : len(s)-1])
		if err != nil || !a.Is6() || a.Zone() != "" {
			// RFC 3986's IP-literal has no zone: netip takes any text after a '%',
			// which would put markup and any length into a domainpart.
			return "", malformed("bad IPv6 literal %q", s)
		}
		return "[" + a.String() + "]", nil
	}
	if plainHostname(s) {
		// Lowercase ASCII labels that IDNA does not decode (no "--", so no xn--) and
		// that are no IPv4 literal (a letter among them) map to themselves.
		return checkDomain(s, s)
	}
	if a, err := netip.ParseAddr(s); err == nil && a.Is4() {
		return a.String(), nil
	}
	if !utf8.ValidString(s) {
		return "", malformed("domainpart is not UTF-8")
	}
	out, err := idnaProfile.ToUnicode(s)
	if err != nil {
		return "", malformed("domainpart %q: %v", s, err)
	}
	return checkDomain(s, strings.ToLower(out))
}

// ASCIIDomain is the form of a prepared domainpart that DNS, TLS (SNI), X.509 dNSName
// and ACME identifiers carry: its labels as IDNA A-labels (RFC 5890), lower case, with
// no final dot. An ASCII name is returned lowercased as it is, so it also maps an SNI
// name or a certificate's name to the form they are compared in. XMPP addresses keep the
// U-labels PrepareDomain gives (RFC 7622 §3.2); this is only for the wire protocols
// beneath them.
func ASCIIDomain(s string) (string, error) {
	s = strings.TrimSuffix(s, ".")
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			ascii = false
			break
		}
	}
	if ascii {
		return lowerASCII(s), nil
	}
	out, err := idnaProfile.ToASCII(s)
	if err != nil {
		return "", malformed("domain %q has no ASCII form: %v", s, err)
	}
	return strings.ToLower(out), nil
}

// ToASCII is ASCIIDomain for a name that was prepared (PrepareDomain accepted
// it, so it has an ASCII form); on an error it returns s as it is.
func ToASCII(s string) string {
	out, err := ASCIIDomain(s)
	if err != nil {
		return s
	}
	return out
}

// checkDomain applies RFC 7622's limits to out, the prepared form of s.
func checkDomain(s, out string) (string, error) {
	if len(out) > MaxPart || out == "" {
		return "", malformed("domainpart length")
	}
	for _, r := range out {
		if r <= ' ' || strings.ContainsRune("@/\"&'<>:\\", r) {
			return "", malformed("domainpart %q contains a forbidden character", s)
		}
	}
	for _, label := range strings.Split(out, ".") {
		if label == "" || len(label) > 63*4 {
			return "", malformed("domainpart %q has an empty or long label", s)
		}
	}
	return out, nil
}

// Local returns the localpart.
func (j JID) Local() string { return j.s[:j.l] }

// Domain returns the domainpart.
func (j JID) Domain() string {
	if j.l == 0 {
		return j.s[:j.d]
	}
	return j.s[j.l+1 : int(j.l)+1+int(j.d)]
}

func (j JID) bareLen() int {
	if j.l == 0 {
		return int(j.d)
	}
	return int(j.l) + 1 + int(j.d)
}

// Resource returns the resourcepart.
func (j JID) Resource() string {
	n := j.bareLen()
	if n >= len(j.s) {
		return ""
	}
	return j.s[n+1:]
}

// Bare returns the JID without its resource.
func (j JID) Bare() JID { return JID{s: j.s[:j.bareLen()], l: j.l, d: j.d} }

// WithResource returns the bare JID with resource r (prepared).
func (j JID) WithResource(r string) (JID, error) {
	r, err := PrepareResource(r)
	if err != nil {
		return JID{}, err
	}
	b := j.Bare()
	return JID{s: b.s + "/" + r, l: j.l, d: j.d}, nil
}

// String returns the canonical form.
func (j JID) String() string { return j.s }

// IsZero reports whether j is empty.
func (j JID) IsZero() bool { return j.s == "" }

// IsBare reports whether j has no resource.
func (j JID) IsBare() bool { return j.bareLen() == len(j.s) }

// Equal reports whether j and o are the same address.
func (j JID) Equal(o JID) bool { return j.s == o.s }

// AppendTo appends the canonical form to dst.
func (j JID) AppendTo(dst []byte) []byte { return append(dst, j.s...) }

// printableASCII reports whether every byte of s is printable ASCII from first on
// ('!' leaves the space out, ' ' takes it in).
func printableASCII(s string, first byte) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < first || s[i] > '~' {
			return false
		}
	}
	return true
}

// lowerASCII lowercases ASCII s, without a copy when it is lowercase already.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

// plainHostname reports whether s is lowercase letters, digits, hyphens and dots, with a
// letter among them and no "--".
func plainHostname(s string) bool {
	letter := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z':
			letter = true
		case '0' <= c && c <= '9', c == '.':
		case c == '-':
			if i > 0 && s[i-1] == '-' {
				return false
			}
		default:
			return false
		}
	}
	return letter
}
