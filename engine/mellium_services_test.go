package engine_test

import (
	"encoding/xml"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	msasl "mellium.im/sasl"
	"mellium.im/xmlstream"
	"mellium.im/xmpp"
	"mellium.im/xmpp/blocklist"
	"mellium.im/xmpp/bookmarks"
	"mellium.im/xmpp/carbons"
	"mellium.im/xmpp/disco"
	"mellium.im/xmpp/disco/items"
	"mellium.im/xmpp/history"
	mjid "mellium.im/xmpp/jid"
	"mellium.im/xmpp/muc"
	"mellium.im/xmpp/mux"
	"mellium.im/xmpp/ping"
	"mellium.im/xmpp/roster"
	"mellium.im/xmpp/stanza"
	"mellium.im/xmpp/upload"
	"mellium.im/xmpp/version"
	"mellium.im/xmpp/xtime"

	"github.com/vireo-im/vireo/engine/vireotest"
	"github.com/vireo-im/vireo/modules/blocking"
)

// reportingServer is uploadServer sending XEP-0377 reports to abuse@localhost.
func reportingServer(t *testing.T) *vireotest.Server {
	t.Helper()
	return uploadServer(t, vireotest.Options{ModuleConfig: func(_ string, v any) error {
		if c, ok := v.(*blocking.Config); ok {
			c.ReportTo = []string{"abuse@localhost"}
		}
		return nil
	}})
}

// abuseDesk logs in abuse@localhost, available, to receive reports.
func abuseDesk(t *testing.T, srv *vireotest.Server) *vireotest.RawConn {
	t.Helper()
	srv.AddUser(t, "abuse", "secret")
	desk := srv.LoginPlain(t, "abuse", "secret", "desk")
	desk.Send("<presence/>")
	return desk
}

// TestIntegrationMelliumServices sweeps the services a client uses with mellium.im/xmpp's
// own packages, which decode every answer into their types and fail on what they do not
// expect: disco of the server and its services, ping, version, entity time, carbons, the
// roster, the archive (XEP-0313 through mellium's history package), an XEP-0377 report
// naming archived messages (blocklist.Report), the block list, an upload slot, XEP-0402
// bookmarks, and a room joined, configured public and listed, as mellium's own tests do
// against Prosody.
func TestIntegrationMelliumServices(t *testing.T) {
	srv := reportingServer(t)
	srv.AddUser(t, "alice", "secret")
	srv.AddUser(t, "bob", "secret")
	desk := abuseDesk(t, srv)
	bob := srv.LoginPlain(t, "bob", "secret", "pc")

	ctx := vireotest.Context(t, 60*time.Second)
	conn, err := net.Dial("tcp", srv.C2SAddr())
	if err != nil {
		t.Fatal(err)
	}
	me := mjid.MustParse("alice@localhost/mellium")
	s, err := xmpp.NewClientSession(ctx, me, conn,
		xmpp.StartTLS(srv.ClientTLS()), xmpp.SASL("", "secret", msasl.ScramSha256Plus, msasl.ScramSha256), xmpp.BindResource())
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	t.Cleanup(func() { s.Close(); conn.Close() })

	// An archive result as mellium's history handler hands it on: the <result/> element.
	type archivedMsg struct {
		ID        string `xml:"id,attr"`
		Forwarded struct {
			Message struct {
				ID   string `xml:"id,attr"`
				Body string `xml:"body"`
			} `xml:"jabber:client message"`
		} `xml:"urn:xmpp:forward:0 forwarded"`
	}
	var mu sync.Mutex
	var archived []archivedMsg
	hist := history.NewHandler(mux.MessageHandlerFunc(func(_ stanza.Message, r xmlstream.TokenReadEncoder) error {
		var a archivedMsg
		if err := xml.NewTokenDecoder(r).Decode(&a); err != nil {
			return err
		}
		mu.Lock()
		archived = append(archived, a)
		mu.Unlock()
		return nil
	}))
	live := make(chan string, 16)
	m := mux.New(stanza.NSClient, history.Handle(hist),
		mux.MessageFunc(stanza.ChatMessage, xml.Name{Space: stanza.NSClient, Local: "body"}, func(msg stanza.Message, r xmlstream.TokenReadEncoder) error {
			live <- msg.ID
			return nil
		}))
	go s.Serve(m)
	domain := mjid.MustParse("localhost")
	step := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	info, err := disco.GetInfo(ctx, "", domain, s)
	step("disco#info of the server", err)
	var feats []string
	for _, f := range info.Features {
		feats = append(feats, f.Var)
	}
	for _, want := range []string{"urn:xmpp:ping", "urn:xmpp:blocking", "urn:xmpp:reporting:1", "urn:xmpp:carbons:2", "urn:xmpp:mam:2"} {
		if !strings.Contains(" "+strings.Join(feats, " ")+" ", " "+want+" ") {
			t.Fatalf("server disco#info lacks %s: %v", want, feats)
		}
	}
	var services []string
	it := disco.FetchItems(ctx, items.Item{JID: domain}, s)
	for it.Next() {
		services = append(services, it.Item().JID.String())
	}
	step("disco#items of the server", it.Err())
	it.Close()
	if j := strings.Join(services, " "); !strings.Contains(j, "conference.localhost") || !strings.Contains(j, "upload.localhost") {
		t.Fatalf("services: %v", services)
	}
	step("ping", ping.Send(ctx, s, domain))
	v, err := version.Get(ctx, s, domain)
	step("version", err)
	if v.Name != "Vireo" {
		t.Fatalf("version: %+v", v)
	}
	now, err := xtime.Get(ctx, s, domain)
	step("entity time", err)
	if d := time.Since(now); d > time.Minute || d < -time.Minute {
		t.Fatalf("server time %v is %v off", now, d)
	}
	step("carbons", carbons.Enable(ctx, s))

	step("roster set", roster.Set(ctx, s, roster.Item{JID: mjid.MustParse("bob@localhost"), Name: "Bob", Group: []string{"Friends"}}))
	ri := roster.Fetch(ctx, s)
	var contacts []roster.Item
	for ri.Next() {
		contacts = append(contacts, ri.Item())
	}
	step("roster fetch", ri.Err())
	ri.Close()
	if len(contacts) != 1 || contacts[0].Name != "Bob" || len(contacts[0].Group) != 1 || contacts[0].Group[0] != "Friends" {
		t.Fatalf("roster: %+v", contacts)
	}

	// bob writes; the messages reach alice and her archive.
	step("presence", s.Send(ctx, stanza.Presence{}.Wrap(nil)))
	for _, id := range []string{"b1", "b2"} {
		bob.Send("<message to='alice@localhost' type='chat' id='" + id + "'><body>buy potions " + id + "</body></message>")
		select {
		case got := <-live:
			if got != id {
				t.Fatalf("got message %q, want %q", got, id)
			}
		case <-ctx.Done():
			t.Fatalf("message %s never arrived", id)
		}
	}
	res, err := history.Fetch(ctx, history.Query{With: mjid.MustParse("bob@localhost")}, me.Bare(), s)
	step("archive query", err)
	mu.Lock()
	got := append([]archivedMsg(nil), archived...)
	mu.Unlock()
	if !res.Complete || len(got) != 2 || got[0].Forwarded.Message.ID != "b1" || got[1].Forwarded.Message.Body != "buy potions b2" {
		t.Fatalf("archive: complete %v, %d messages %+v", res.Complete, len(got), got)
	}
	if res.Set.First.ID != got[0].ID || res.Set.Last != got[1].ID {
		t.Fatalf("archive page %+v, results %+v", res.Set, got)
	}

	// Block and report bob, naming both archived messages by their archive ids.
	step("report", blocklist.Report(ctx, s, blocklist.Item{
		JID: mjid.MustParse("bob@localhost"), Reason: blocklist.ReasonSpam, Text: "selling potions",
		StanzaIDs: []stanza.ID{{ID: res.Set.First.ID, By: me.Bare()}, {ID: res.Set.Last, By: me.Bare()}},
	}))
	report := desk.Expect("buy potions b2")
	for _, want := range []string{"reported bob@localhost for spam: selling potions", "(2 reported messages attached)", "buy potions b1", "buy potions b2"} {
		if !strings.Contains(report, want) {
			t.Fatalf("the abuse desk's report lacks %q: %s", want, report)
		}
	}
	bi := blocklist.Fetch(ctx, s)
	var blocked []string
	for bi.Next() {
		blocked = append(blocked, bi.JID().String())
	}
	step("block list", bi.Err())
	bi.Close()
	if len(blocked) != 1 || blocked[0] != "bob@localhost" {
		t.Fatalf("block list: %v", blocked)
	}

	slot, err := upload.GetSlot(ctx, upload.File{Name: "notes.txt", Size: 10, Type: "text/plain"}, mjid.MustParse("upload.localhost"), s)
	step("upload slot", err)
	if slot.PutURL == nil || slot.GetURL == nil || slot.PutURL.Scheme != "https" || slot.Header.Get("Authorization") == "" {
		t.Fatalf("slot: %+v", slot)
	}

	step("bookmark", bookmarks.Publish(ctx, s, bookmarks.Channel{JID: mjid.MustParse("tea@conference.localhost"), Name: "Tea", Nick: "Alice", Autojoin: true}))
	bm := bookmarks.Fetch(ctx, s)
	var marks []bookmarks.Channel
	for bm.Next() {
		marks = append(marks, bm.Bookmark())
	}
	step("bookmarks", bm.Err())
	bm.Close()
	if len(marks) != 1 || marks[0].Name != "Tea" || marks[0].Nick != "Alice" || !marks[0].Autojoin {
		t.Fatalf("bookmarks: %+v", marks)
	}

	// The room is entered with a plain join presence: mellium's muc.Client races with
	// itself between Join and its presence handler (go test -race sees it in
	// muc.(*Client).HandlePresence against muc.(*Channel).JoinPresence), so the room's
	// form and listing go through the package's functions alone.
	room := mjid.MustParse("tea@conference.localhost/Alice")
	step("room join", s.Send(ctx, stanza.Presence{To: room}.Wrap(xmlstream.Wrap(nil, xml.StartElement{Name: xml.Name{Space: muc.NS, Local: "x"}}))))
	cfg, err := muc.GetConfig(ctx, room.Bare(), s)
	step("room configuration form", err)
	_, err = cfg.Set("muc#roomconfig_publicroom", true)
	step("form field", err)
	step("room configuration", muc.SetConfig(ctx, room.Bare(), cfg, s))
	var rooms []string
	it = disco.FetchItems(ctx, items.Item{JID: room.Domain()}, s)
	for it.Next() {
		rooms = append(rooms, it.Item().JID.String())
	}
	step("rooms", it.Err())
	it.Close()
	if len(rooms) != 1 || rooms[0] != "tea@conference.localhost" {
		t.Fatalf("rooms listed: %v", rooms)
	}
	step("room leave", s.Send(ctx, stanza.Presence{To: room, Type: stanza.UnavailablePresence}.Wrap(nil)))
}
