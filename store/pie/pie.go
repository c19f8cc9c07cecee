// Package pie implements XEP-0227 (1.1): Portable Import/Export Format for XMPP-IM
// Servers, for what the store holds of a user: the account, with its SCRAM keys as
// <scram-credentials/> (XEP-0227 §4.3; the store keeps no passwords), the roster (with
// pending subscription requests, read from §4.9's <presence type='subscribe'/>) and the
// offline messages; and, through Sections that the modules owning the data implement,
// the vCard (vcard-temp), private XML storage, PEP nodes with configuration and items
// (the two <pubsub/> elements of §4.10), the message archive (§4.11) and the block list
// (XEP-0191), which §4.7's privacy lists carry: written as one default list that denies
// each blocked JID, and read from the default list's items that deny a JID everything
// (privacy.go); the rest of privacy lists has no equivalent here and is skipped.
//
// Documents split with XInclude (§5), as ejabberd's export_piefxis writes them, are read
// by ParseFile; SCRAM fields that ejabberd 23.01 base64-encodes twice are recognized.
// ExportUser writes one account per document, as Prosody's mod_storage_xep0227 keeps
// them.
//
// An export is standard XEP-0227 unless a Flavour says otherwise: every SCRAM hash the
// account has (SCRAM-SHA-1, -256, -512), each field base64-encoded once. The ejabberd
// flavours (ExportFor, ExportUserFor with a Flavour from ParseFlavour) write what ejabberd
// 23.01's import_piefxis reads: one <scram-credentials/> per account, since ejabberd
// keeps one hash, and its salt, server-key and stored-key base64-encoded twice.
//
// Elements kept as bytes (vCards, private fragments, item payloads, archived messages)
// are written again from the parsed tokens as standalone elements that declare their
// namespaces, so prefixes of the exporting server cannot leak out of context.
//
// Vireo's own extras ride in attributes of the NSVireo namespace, which other servers
// ignore: the account's creation time and the pending inbound subscription of a roster
// item, which the roster format has no place for.
//
// Parse holds the whole document in memory, and Export one user's data at a time (an
// archive of a million messages is that much memory); MaxDocument bounds a document.
package pie

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/creds"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// Namespaces.
const (
	NS       = "urn:xmpp:pie:0"                                  // XEP-0227 1.1
	NSOld    = "http://www.xmpp.org/extensions/xep-0227.html#ns" // XEP-0227 1.0, read only
	NSScram  = "urn:xmpp:pie:0#scram"
	NSRoster = "jabber:iq:roster"
	NSClient = "jabber:client"
	NSDelay  = "urn:xmpp:delay"
	NSVireo  = "urn:vireo:pie:0"
)

// MaxDocument bounds the size of a document Parse reads: 1 GiB.
const MaxDocument = 1 << 30

// User is one account as the format carries it. Exactly one of Password and Creds is
// normally set; Import derives credentials from a password.
type User struct {
	JID      string // bare local@domain
	Password string
	Creds    [3]store.Credentials
	Created  time.Time
	Roster   []store.RosterItem
	Offline  []store.OfflineMessage // Raw as stored: the <message/> without xmlns

	// What modules keep, moved by their Sections. Raw elements are standalone.
	VCard   []byte   // <vCard xmlns='vcard-temp'/>
	Private [][]byte // XEP-0049 fragments
	PEP     []Node
	Archive []Archived // oldest first
	Blocked []string   // XEP-0191 block list: JIDs, as the user gave them
	// Pending are the JIDs whose subscription requests wait for the user, besides the
	// roster items marked PendingIn (written as §4.9 has them; read into PendingIn).
	Pending []string
}

var mechanisms = [3]string{store.SHA1: "SCRAM-SHA-1", store.SHA256: "SCRAM-SHA-256", store.SHA512: "SCRAM-SHA-512"}

// Flavour is how an export writes the SCRAM credentials, for the server that will read
// it. The zero value is standard XEP-0227.
type Flavour struct {
	// Ejabberd writes the credentials as ejabberd 23.01's import_piefxis reads them.
	// ejabberd keeps a #scram record per account whose salt, stored key and server key
	// are base64 text (ejabberd_auth:password_to_scram/3; its SASL code decodes them,
	// xmpp_sasl_scram), and import_piefxis base64-decodes each field of the file once
	// into that record (ejabberd_piefxis:parse_scram_password/1), as its export encodes
	// the text once more: so each field is written base64-encoded twice. ejabberd takes
	// the first <scram-credentials/> of a user, and offers SCRAM only with the hash of
	// its auth_scram_hash option: one element is written, of Hash, or of the account's
	// first hash (SHA-1, SHA-256, SHA-512) when it has no keys of Hash (PLAIN still
	// verifies against them there).
	Ejabberd bool
	// Hash is the SCRAM hash an ejabberd export keeps: ejabberd's auth_scram_hash, whose
	// default, sha, is store.SHA1, the zero value.
	Hash store.Hash
}

// Standard is XEP-0227 as written: every SCRAM hash, each field base64-encoded once.
var Standard = Flavour{}

// flavours are the names ParseFlavour takes, in the order the help lists them.
var flavours = []struct {
	name string
	f    Flavour
}{
	{"xep0227", Standard},
	{"ejabberd", Flavour{Ejabberd: true, Hash: store.SHA1}},
	{"ejabberd-sha256", Flavour{Ejabberd: true, Hash: store.SHA256}},
	{"ejabberd-sha512", Flavour{Ejabberd: true, Hash: store.SHA512}},
}

// ParseFlavour reads a flavour's name: "" or "xep0227" (standard XEP-0227), "ejabberd"
// (ejabberd 23.01 with its default auth_scram_hash: sha, so SCRAM-SHA-1 keys),
// "ejabberd-sha256" or "ejabberd-sha512" (auth_scram_hash: sha256 or sha512).
func ParseFlavour(s string) (Flavour, error) {
	if s == "" {
		return Standard, nil
	}
	var names []string
	for _, f := range flavours {
		if f.name == s {
			return f.f, nil
		}
		names = append(names, f.name)
	}
	return Standard, fmt.Errorf("pie: unknown export flavour %q (want one of %s)", s, strings.Join(names, ", "))
}

// String is the flavour's name for ParseFlavour.
func (f Flavour) String() string {
	if !f.Ejabberd {
		return "xep0227" // Hash matters only to ejabberd
	}
	for _, n := range flavours {
		if n.f == f {
			return n.name
		}
	}
	return fmt.Sprintf("ejabberd-hash%d", f.Hash) // a Hash the store does not have
}

// Export writes every account of st, grouped by domain, as one XEP-0227 document. It reads
// the store as it goes: an export taken while the server runs is not one snapshot (take it
// from a backup for that).
func Export(w io.Writer, st store.Store, sections ...Section) error {
	return ExportFor(w, st, Standard, sections...)
}

// ExportFor is Export with the credentials written for the server of flavour f.
func ExportFor(w io.Writer, st store.Store, f Flavour, sections ...Section) error {
	var users []string
	if err := st.Accounts().List(func(u string) bool { users = append(users, u); return true }); err != nil {
		return err
	}
	sort.Slice(users, func(i, j int) bool {
		di, dj := domainOf(users[i]), domainOf(users[j])
		if di != dj {
			return di < dj
		}
		return users[i] < users[j]
	})
	return export(w, st, users, f, sections)
}

// ExportUser writes one account as a document of its own: the file per user that
// Prosody's mod_storage_xep0227 reads (it takes the first user of the first host).
func ExportUser(w io.Writer, st store.Store, user string, sections ...Section) error {
	return ExportUserFor(w, st, user, Standard, sections...)
}

// ExportUserFor is ExportUser with the credentials written for the server of flavour f.
func ExportUserFor(w io.Writer, st store.Store, user string, f Flavour, sections ...Section) error {
	if _, err := st.Accounts().Get(user); err != nil {
		return fmt.Errorf("pie: %s: %w", user, err)
	}
	return export(w, st, []string{user}, f, sections)
}

// export writes the accounts users, sorted by domain.
func export(w io.Writer, st store.Store, users []string, f Flavour, sections []Section) error {
	var b xmlstream.Builder
	b.B = append(b.B, "<?xml version='1.0' encoding='UTF-8'?>\n"...)
	b.Start("server-data").Attr("xmlns", NS).Attr("xmlns:vireo", NSVireo)
	host := ""
	// The stored rosters: a shared group's contacts are the groups file's, not the
	// account's.
	stored := st.Rosters()
	if rw, ok := st.(store.RosterWrapper); ok {
		stored = rw.StoredRosters()
	}
	flush := func() error {
		_, err := w.Write(b.B)
		b.B = b.B[:0]
		return err
	}
	for _, u := range users {
		acc, err := st.Accounts().Get(u)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return err
		}
		local, domain, ok := strings.Cut(u, "@")
		if !ok {
			return fmt.Errorf("pie: account %q is not local@domain", u)
		}
		if domain != host {
			if host != "" {
				b.End()
			}
			host = domain
			b.Start("host").Attr("jid", domain)
		}
		b.Start("user").Attr("name", local)
		if !acc.Created.IsZero() {
			b.Attr("vireo:created", acc.Created.UTC().Format(time.RFC3339Nano))
		}
		writeCreds(&b, acc.Creds, f)
		items, _, err := stored.Get(u)
		if err != nil {
			return err
		}
		if len(items) > 0 {
			b.Start("query").Attr("xmlns", NSRoster)
			for _, it := range items {
				writeItem(&b, it)
			}
			b.End()
		}
		// Pending requests also as §4.9 has them, for servers that do not know ours.
		for _, it := range items {
			if it.PendingIn {
				b.Start("presence").Attr("xmlns", NSClient).Attr("type", "subscribe").Attr("from", it.JID).End()
			}
		}
		n := 0
		err = st.Offline().List(u, func(m store.OfflineMessage) bool {
			if n == 0 {
				b.Start("offline-messages")
			}
			n++
			b.Raw(xmlstream.SetAttrs(nil, m.Raw, xmlstream.AttrSet{Name: "xmlns", Value: []byte(NSClient)}))
			return true
		})
		if err != nil {
			return err
		}
		if n > 0 {
			b.End()
		}
		ud := User{JID: u}
		for _, s := range sections {
			if err := s.ExportUser(st, &ud); err != nil {
				return fmt.Errorf("pie: %s: %w", u, err)
			}
		}
		writeData(&b, &ud)
		b.End() // user
		if err := flush(); err != nil {
			return err
		}
	}
	if host != "" {
		b.End()
	}
	b.End()
	b.B = append(b.B, '\n')
	return flush()
}

// writeCreds writes the account's <scram-credentials/> for flavour f.
func writeCreds(b *xmlstream.Builder, cs [3]store.Credentials, f Flavour) {
	enc := base64.StdEncoding.EncodeToString
	hashes := []store.Hash{store.SHA1, store.SHA256, store.SHA512}
	if f.Ejabberd {
		enc = func(p []byte) string {
			return base64.StdEncoding.EncodeToString([]byte(base64.StdEncoding.EncodeToString(p)))
		}
		if int(f.Hash) < len(cs) {
			hashes = append([]store.Hash{f.Hash}, hashes...)
		}
	}
	for _, h := range hashes {
		c := cs[h]
		if c.IsZero() {
			continue
		}
		b.Start("scram-credentials").Attr("xmlns", NSScram).Attr("mechanism", mechanisms[h])
		b.Start("iter-count").Text(strconv.Itoa(c.Iter)).End()
		b.Start("salt").Text(enc(c.Salt)).End()
		b.Start("server-key").Text(enc(c.ServerKey)).End()
		b.Start("stored-key").Text(enc(c.StoredKey)).End()
		b.End()
		if f.Ejabberd {
			return // ejabberd keeps one
		}
	}
}

func writeItem(b *xmlstream.Builder, it store.RosterItem) {
	b.Start("item").Attr("jid", it.JID)
	if it.Name != "" {
		b.Attr("name", it.Name)
	}
	b.Attr("subscription", it.Sub.String())
	if it.Ask {
		b.Attr("ask", "subscribe")
	}
	if it.Approved {
		b.Attr("approved", "true")
	}
	if it.PendingIn {
		b.Attr("vireo:pending-in", "true")
	}
	for _, g := range it.Groups {
		b.Start("group").Text(g).End()
	}
	b.End()
}

func domainOf(u string) string {
	_, d, _ := strings.Cut(u, "@")
	return d
}

// Parse decodes a XEP-0227 document (1.1, or 1.0 by its old namespace). XInclude is not
// supported here: a document that uses it is refused (ParseFile follows it). Unknown
// elements are skipped.
func Parse(doc []byte) ([]User, error) {
	users, _, err := parse(doc, false, false)
	return users, err
}

// nsXInclude is the namespace of XInclude (XEP-0227 §5).
const nsXInclude = "http://www.w3.org/2001/XInclude"

// ParseFile reads the XEP-0227 document at path and the files its <server-data/>
// includes with XInclude (XEP-0227 §5), as ejabberd's export_piefxis writes them: one
// file per host beside the main one. An included file must be in the same directory (a
// document cannot make the import read other files) and hold a <host/> or a whole
// <server-data/>; it may not include further.
func ParseFile(path string) ([]User, error) {
	doc, err := readDoc(path)
	if err != nil {
		return nil, err
	}
	users, hrefs, err := parse(doc, true, false)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	for _, h := range hrefs {
		if h == "" || h != filepath.Base(h) || h == "." || h == ".." {
			return nil, fmt.Errorf("pie: %s: include %q is not a file beside it", path, h)
		}
		sub := filepath.Join(filepath.Dir(path), h)
		doc, err := readDoc(sub)
		if err != nil {
			return nil, err
		}
		us, _, err := parse(doc, false, true)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", sub, err)
		}
		users = append(users, us...)
	}
	return users, nil
}

func readDoc(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("pie: %w", err)
	}
	if fi.Size() > MaxDocument {
		return nil, fmt.Errorf("pie: %s is %d bytes, over %d", path, fi.Size(), MaxDocument)
	}
	doc, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("pie: %w", err)
	}
	if bytes.HasPrefix(doc, zstdMagic) {
		// Compressed (vireoctl export FILE.zst): the bound applies to what it expands to.
		d, err := zstd.NewReader(bytes.NewReader(doc), zstd.WithDecoderMaxMemory(MaxDocument), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("pie: %s: %w", path, err)
		}
		defer d.Close()
		doc, err = io.ReadAll(io.LimitReader(d, MaxDocument+1))
		if err != nil {
			return nil, fmt.Errorf("pie: %s: %w", path, err)
		}
		if len(doc) > MaxDocument {
			return nil, fmt.Errorf("pie: %s expands to more than %d bytes", path, MaxDocument)
		}
	}
	return doc, nil
}

// zstdMagic opens every Zstandard frame (RFC 8878 §3.1.1).
var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// parse decodes doc. With includes, the hrefs of XIncludes in <server-data/> are
// returned rather than refused; with hostRoot, doc may be a lone <host/>.
func parse(doc []byte, includes, hostRoot bool) ([]User, []string, error) {
	if len(doc) > MaxDocument {
		return nil, nil, fmt.Errorf("pie: document of %d bytes, over %d", len(doc), MaxDocument)
	}
	d := xml.NewDecoder(bytes.NewReader(doc))
	root, err := nextStart(d)
	if err != nil {
		return nil, nil, err
	}
	ns := root.Name.Space
	if hostRoot && root.Name.Local == "host" && (ns == NS || ns == NSOld) {
		users, err := parseHostElem(d, doc, root)
		return users, nil, err
	}
	if root.Name.Local != "server-data" || (ns != NS && ns != NSOld) {
		return nil, nil, fmt.Errorf("pie: root element {%s}%s, want {%s}server-data", ns, root.Name.Local, NS)
	}
	var users []User
	var hrefs []string
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, nil, fmt.Errorf("pie: %w", err)
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return users, hrefs, nil
		case xml.StartElement:
			if t.Name.Space == nsXInclude {
				if !includes || t.Name.Local != "include" {
					return nil, nil, errors.New("pie: XInclude is not supported; merge the files first")
				}
				hrefs = append(hrefs, attr(t, "", "href"))
				if err := d.Skip(); err != nil {
					return nil, nil, fmt.Errorf("pie: %w", err)
				}
				continue
			}
			if t.Name.Space != ns || t.Name.Local != "host" {
				if err := d.Skip(); err != nil {
					return nil, nil, fmt.Errorf("pie: %w", err)
				}
				continue
			}
			us, err := parseHostElem(d, doc, t)
			if err != nil {
				return nil, nil, err
			}
			users = append(users, us...)
		}
	}
}

func parseHostElem(d *xml.Decoder, doc []byte, t xml.StartElement) ([]User, error) {
	host := attr(t, "", "jid")
	if host == "" || strings.ContainsAny(host, "@/") {
		return nil, fmt.Errorf("pie: host jid %q", host)
	}
	return parseHost(d, doc, t.Name.Space, host)
}

func parseHost(d *xml.Decoder, doc []byte, ns, host string) ([]User, error) {
	var users []User
	for {
		tok, err := d.Token()
		if err != nil {
			return nil, fmt.Errorf("pie: %w", err)
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return users, nil
		case xml.StartElement:
			if t.Name.Space == nsXInclude {
				return nil, errors.New("pie: XInclude of users is not supported; merge the files first")
			}
			if t.Name.Space != ns || t.Name.Local != "user" {
				if err := d.Skip(); err != nil {
					return nil, fmt.Errorf("pie: %w", err)
				}
				continue
			}
			u, err := parseUser(d, doc, ns, host, t)
			if err != nil {
				return nil, err
			}
			users = append(users, u)
		}
	}
}

func parseUser(d *xml.Decoder, doc []byte, ns, host string, se xml.StartElement) (User, error) {
	name := attr(se, "", "name")
	if name == "" || strings.ContainsAny(name, "@/") {
		return User{}, fmt.Errorf("pie: user name %q on host %s", name, host)
	}
	// Prepared as a login prepares it (RFC 7622): "Alice" is stored as alice, whom
	// logins and vireoctl find; a name no JID can hold is refused.
	j, err := jid.Parse(name + "@" + host)
	if err != nil || j.Local() == "" || !j.IsBare() {
		return User{}, fmt.Errorf("pie: user name %q on host %s is not a JID: %v", name, host, err)
	}
	u := User{JID: j.String(), Password: attr(se, "", "password")}
	if c := attr(se, NSVireo, "created"); c != "" {
		t, err := time.Parse(time.RFC3339Nano, c)
		if err != nil {
			return User{}, fmt.Errorf("pie: %s: created: %w", u.JID, err)
		}
		u.Created = t
	}
	var subscribers []string
	for {
		tok, err := d.Token()
		if err != nil {
			return User{}, fmt.Errorf("pie: %s: %w", u.JID, err)
		}
		switch t := tok.(type) {
		case xml.EndElement:
			u.pendingIn(subscribers)
			return u, nil
		case xml.StartElement:
			var err error
			switch {
			case t.Name.Space == NSScram && t.Name.Local == "scram-credentials":
				err = parseScram(d, t, &u)
			case t.Name.Space == NSRoster && t.Name.Local == "query":
				err = parseRoster(d, &u)
			case t.Name.Space == ns && t.Name.Local == "offline-messages":
				err = parseOffline(d, doc, &u)
			case t.Name.Space == NSVCard && t.Name.Local == "vCard":
				u.VCard, err = canon(d, t)
			case t.Name.Space == NSPrivate && t.Name.Local == "query":
				err = parsePrivate(d, &u)
			case t.Name.Space == NSPubsubOwner && t.Name.Local == "pubsub":
				err = parsePEPOwner(d, &u)
			case t.Name.Space == NSPubsub && t.Name.Local == "pubsub":
				err = parsePEPItems(d, &u)
			case t.Name.Space == NSArchive && t.Name.Local == "archive":
				err = parseArchive(d, &u)
			case t.Name.Space == NSPrivacy && t.Name.Local == "query":
				err = parsePrivacy(d, &u)
			case t.Name.Space == NSClient && t.Name.Local == "presence" && attr(t, "", "type") == "subscribe":
				subscribers = append(subscribers, attr(t, "", "from"))
				err = d.Skip()
			default:
				err = d.Skip()
			}
			if err != nil {
				return User{}, fmt.Errorf("pie: %s: %w", u.JID, err)
			}
		}
	}
}

func parseScram(d *xml.Decoder, se xml.StartElement, u *User) error {
	var v struct {
		Iter      string `xml:"iter-count"`
		Salt      string `xml:"salt"`
		ServerKey string `xml:"server-key"`
		StoredKey string `xml:"stored-key"`
	}
	if err := d.DecodeElement(&v, &se); err != nil {
		return err
	}
	mech := attr(se, "", "mechanism")
	h := -1
	for i, m := range mechanisms {
		if m == mech {
			h = i
		}
	}
	if h < 0 {
		return nil // a mechanism the store does not keep (SCRAM-SHA-224, -PLUS variants)
	}
	iter, err := strconv.Atoi(strings.TrimSpace(v.Iter))
	if err != nil || iter < 1 || iter > creds.MaxIter {
		return fmt.Errorf("%s: iteration count %q", mech, v.Iter)
	}
	c := store.Credentials{Iter: iter}
	size := creds.NewHash(store.Hash(h))().Size()
	// ejabberd 23.01's export_piefxis (and its import) base64-encodes the base64 text it
	// stores, so every field is encoded twice there. Keys of the wrong length that decode
	// once more to the right one mark such a document; its salt is then decoded twice too.
	twice := false
	for _, f := range []struct {
		dst *[]byte
		s   string
		n   int
	}{{&c.ServerKey, v.ServerKey, size}, {&c.StoredKey, v.StoredKey, size}, {&c.Salt, v.Salt, 0}} {
		b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(f.s))
		if err == nil && f.n > 0 && len(b) != f.n {
			if bb, err2 := base64.StdEncoding.DecodeString(string(b)); err2 == nil && len(bb) == f.n {
				b, twice = bb, true
			}
		} else if err == nil && f.n == 0 && twice {
			if bb, err2 := base64.StdEncoding.DecodeString(string(b)); err2 == nil && len(bb) > 0 {
				b = bb
			}
		}
		if err != nil || len(b) == 0 || (f.n > 0 && len(b) != f.n) {
			return fmt.Errorf("%s: bad base64 or length in %q", mech, f.s)
		}
		*f.dst = b
	}
	u.Creds[h] = c
	return nil
}

func parseRoster(d *xml.Decoder, u *User) error {
	return children(d, func(t xml.StartElement) error {
		if t.Name.Space != NSRoster || t.Name.Local != "item" {
			return d.Skip()
		}
		var v struct {
			Groups []string `xml:"jabber:iq:roster group"`
		}
		if err := d.DecodeElement(&v, &t); err != nil {
			return err
		}
		it := store.RosterItem{
			JID:       attr(t, "", "jid"),
			Name:      attr(t, "", "name"),
			Ask:       attr(t, "", "ask") == "subscribe",
			Approved:  isTrue(attr(t, "", "approved")),
			PendingIn: isTrue(attr(t, NSVireo, "pending-in")),
			Groups:    v.Groups,
		}
		if it.JID == "" {
			return errors.New("roster item without jid")
		}
		rj, err := jid.Parse(it.JID)
		if err != nil {
			return fmt.Errorf("roster item %q: %w", it.JID, err)
		}
		it.JID = rj.String()
		s := attr(t, "", "subscription")
		var ok bool
		if it.Sub, ok = store.ParseSubscription(s); !ok {
			return fmt.Errorf("roster item %s: subscription %q", it.JID, s)
		}
		u.Roster = append(u.Roster, it)
		return nil
	})
}

// parseOffline keeps each <message/> as the bytes of its element in doc, with the
// jabber:client declaration removed (the stream declares it), and its stamp from the
// XEP-0203 delay the offline store added.
func parseOffline(d *xml.Decoder, doc []byte, u *User) error {
	for {
		start := d.InputOffset()
		tok, err := d.Token()
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.EndElement:
			return nil
		case xml.StartElement:
			var v struct {
				Delay []struct {
					XMLName xml.Name
					Stamp   string `xml:"stamp,attr"`
				} `xml:"urn:xmpp:delay delay"`
			}
			if err := d.DecodeElement(&v, &t); err != nil {
				return err
			}
			if t.Name.Space != NSClient || t.Name.Local != "message" {
				continue
			}
			raw := doc[start:d.InputOffset()]
			if !bytes.HasPrefix(raw, []byte("<message")) {
				return errors.New("offline message with a namespace prefix")
			}
			m := store.OfflineMessage{Raw: xmlstream.SetAttrs(nil, raw, xmlstream.AttrSet{Name: "xmlns", Remove: true})}
			for _, dl := range v.Delay {
				if st, err := time.Parse(time.RFC3339Nano, dl.Stamp); err == nil {
					m.Stamp = st.UTC()
				}
			}
			u.Offline = append(u.Offline, m)
		}
	}
}

func nextStart(d *xml.Decoder) (xml.StartElement, error) {
	for {
		tok, err := d.Token()
		if err != nil {
			return xml.StartElement{}, fmt.Errorf("pie: %w", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			return se, nil
		}
	}
}

func attr(se xml.StartElement, space, local string) string {
	for _, a := range se.Attr {
		if a.Name.Local == local && a.Name.Space == space {
			return a.Value
		}
	}
	return ""
}

func isTrue(s string) bool { return s == "true" || s == "1" }

// The stamps the store can keep (nanoseconds since 1970 in an int64).
var (
	minStamp = time.Unix(0, math.MinInt64)
	maxStamp = time.Unix(0, math.MaxInt64)
)

// Result counts what Import did.
type Result struct {
	Imported int
	// Skipped lists the users not imported, each with the reason.
	Skipped []string
}

// Import creates the accounts of users in st with their rosters, offline messages and
// what sections store (vCards, private XML, PEP, archives). Accounts that exist, of
// domains not in domains (when domains is not empty) or without credentials are skipped
// and listed in the result. Offline messages are stored without a quota; one without a
// stamp, or one the store cannot keep (before 1678), is stored at the import time. It
// stops at the first store error.
//
// The account is created last, after its data: an import that stopped half way leaves no
// account, and running it again writes the same data over the first attempt's (the
// offline queue of a user without an account is left over from such an attempt and is
// replaced; sections write in place) and then creates the account.
func Import(st store.Store, users []User, domains []string, sections ...Section) (Result, error) {
	var r Result
	served := map[string]bool{}
	for _, d := range domains {
		served[d] = true
	}
	// An account whose removal is still under way cannot be made again until it is
	// done (Create says so): its data must not be written first and left behind.
	removing := map[string]bool{}
	if rs, ok := st.(store.Removals); ok {
		if err := rs.PendingRemovals(func(rm store.Removal) bool {
			removing[rm.User] = true
			return true
		}); err != nil {
			return r, err
		}
	}
	for i := range users {
		u := &users[i]
		if len(domains) > 0 && !served[domainOf(u.JID)] {
			r.Skipped = append(r.Skipped, u.JID+": domain not served here")
			continue
		}
		c := u.Creds
		if c[store.SHA1].IsZero() && c[store.SHA256].IsZero() && c[store.SHA512].IsZero() {
			if u.Password == "" {
				r.Skipped = append(r.Skipped, u.JID+": no password or SCRAM credentials")
				continue
			}
			var err error
			if c, err = creds.DeriveAll(u.Password, creds.DefaultIter); err != nil {
				return r, err
			}
		}
		created := u.Created
		if created.IsZero() {
			created = time.Now().UTC()
		}
		_, err := st.Accounts().Get(u.JID)
		if err == nil {
			r.Skipped = append(r.Skipped, u.JID+": account exists")
			continue
		}
		if removing[u.JID] {
			r.Skipped = append(r.Skipped, u.JID+": the account of that name is still being removed; import it again later")
			continue
		}
		if !errors.Is(err, store.ErrNotFound) {
			return r, fmt.Errorf("%s: %w", u.JID, err)
		}
		for _, it := range u.Roster {
			if _, err := st.Rosters().Put(u.JID, it); err != nil {
				return r, fmt.Errorf("%s: roster item %s: %w", u.JID, it.JID, err)
			}
		}
		if err := st.Offline().DeleteAll(u.JID); err != nil {
			return r, fmt.Errorf("%s: offline messages: %w", u.JID, err)
		}
		for _, m := range u.Offline {
			stamp := m.Stamp
			if stamp.Before(minStamp) || stamp.After(maxStamp) {
				stamp = time.Now().UTC() // the <delay/> in Raw keeps the original
			}
			if _, err := st.Offline().Push(u.JID, m.Raw, stamp, store.Quota{NoAccount: true}); err != nil {
				return r, fmt.Errorf("%s: offline message: %w", u.JID, err)
			}
		}
		for _, s := range sections {
			if err := s.ImportUser(st, u); err != nil {
				return r, fmt.Errorf("%s: %w", u.JID, err)
			}
		}
		err = st.Accounts().Create(store.Account{User: u.JID, Creds: c, Created: created})
		if errors.Is(err, store.ErrExists) {
			r.Skipped = append(r.Skipped, u.JID+": account exists")
			continue
		}
		if err != nil {
			return r, fmt.Errorf("%s: %w", u.JID, err)
		}
		r.Imported++
	}
	return r, nil
}
