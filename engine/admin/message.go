package admin

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// MessageSender is what a running server's Backend adds for the message op; a stopped
// server's backend lacks it.
type MessageSender interface {
	// SendMessage routes raw, a message whose sender is from, as the server's own: it goes
	// to its recipient (archive, offline storage, push as for any message) without the
	// sender's outbound phase, so the sender's archive and other clients do not see it.
	SendMessage(from jid.JID, raw []byte) error
}

// MaxMessageText bounds the body and subject of a message the op sends: far above any
// notification, well below the stanza size limit.
const MaxMessageText = 64 << 10

// Message sends a message from from (a served domain, for notices from the server, or
// one of its accounts, for a site's bot) to to (anyone, here or federated), of type typ
// (chat by default, normal or headline), with a subject and a body (at least one). It
// returns the message's id.
func Message(b Backend, from, to, typ, subject, body string) (string, error) {
	ms, ok := b.(MessageSender)
	if !ok {
		return "", errors.New("message needs a running server")
	}
	f, err := jid.Parse(from)
	if err != nil || !f.IsBare() {
		return "", fmt.Errorf("from %q: want a served domain or user@domain", from)
	}
	if !slices.Contains(b.Domains(), f.Domain()) {
		return "", fmt.Errorf("from %q: domain %s is not served here", from, f.Domain())
	}
	if f.Local() != "" {
		if _, err := b.Store().Accounts().Get(f.String()); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return "", fmt.Errorf("from %s: no such account", f)
			}
			return "", err
		}
	}
	t, err := jid.Parse(to)
	if err != nil {
		return "", fmt.Errorf("to %q: %w", to, err)
	}
	switch typ {
	case "":
		typ = "chat"
	case "chat", "normal", "headline":
	default:
		return "", fmt.Errorf("type %q: want chat, normal or headline", typ)
	}
	if body == "" && subject == "" {
		return "", errors.New("a message needs a body or a subject")
	}
	for _, s := range []string{subject, body} {
		if err := checkText(s); err != nil {
			return "", err
		}
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	id := "api-" + hex.EncodeToString(rnd[:])
	var x xmlstream.Builder
	x.Start("message").Attr("xmlns", "jabber:client").Attr("from", f.String()).Attr("to", t.String()).
		Attr("type", typ).Attr("id", id)
	if subject != "" {
		x.Start("subject").Text(subject).End()
	}
	if body != "" {
		x.Start("body").Text(body).End()
	}
	x.End()
	return id, ms.SendMessage(f, x.B)
}

// checkText refuses what XML cannot carry (invalid UTF-8, control characters other than
// tab and line breaks) and oversized text.
func checkText(s string) error {
	if len(s) > MaxMessageText {
		return fmt.Errorf("text of %d bytes, at most %d", len(s), MaxMessageText)
	}
	if !utf8.ValidString(s) {
		return errors.New("text is not UTF-8")
	}
	if i := strings.IndexFunc(s, func(r rune) bool {
		return r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0xFFFE || r == 0xFFFF
	}); i >= 0 {
		return fmt.Errorf("text has a character XML cannot carry at byte %d", i)
	}
	return nil
}

// Announce sends every account with a session now (on domain, or on every served domain
// when it is empty) a normal message from its domain with subject (default
// "Announcement") and body: maintenance warnings and the like, as XEP-0133's announce
// command does from a client. It returns how many accounts it was sent to.
func Announce(b Backend, domain, subject, body string) (int, error) {
	l, ok := b.(OnlineLister)
	if !ok {
		return 0, errors.New("announce needs a running server")
	}
	if domain != "" && !slices.Contains(b.Domains(), domain) {
		return 0, fmt.Errorf("domain %s is not served here", domain)
	}
	if strings.TrimSpace(body) == "" {
		return 0, errors.New("the announcement is empty")
	}
	if subject == "" {
		subject = "Announcement"
	}
	users, err := l.OnlineUsers()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, u := range users {
		_, d, ok := strings.Cut(u, "@")
		if !ok || domain != "" && d != domain {
			continue
		}
		if _, err := Message(b, d, u, "normal", subject, body); err != nil {
			return n, fmt.Errorf("after %d of %d: %w", n, len(users), err)
		}
		n++
	}
	return n, nil
}

// Session is one session of an account, as the sessions op lists it.
type Session struct {
	Resource  string `json:"resource"`
	Available bool   `json:"available"` // has sent available presence
	Priority  int    `json:"priority"`
	Detached  bool   `json:"detached,omitempty"` // XEP-0198: the connection is gone, resumable
	Inactive  bool   `json:"inactive,omitempty"` // XEP-0352: nobody looks at the client
}

// SessionLister is what a running server's Backend adds for the sessions op.
type SessionLister interface {
	UserSessions(bare jid.JID) ([]Session, error)
}

// Sessions lists the sessions of account j: what a site shows as "online now".
func Sessions(b Backend, j string) ([]Session, error) {
	l, ok := b.(SessionLister)
	if !ok {
		return nil, errors.New("sessions needs a running server")
	}
	bare, err := bareJID(b, j)
	if err != nil {
		return nil, err
	}
	return l.UserSessions(bare)
}
