package engine_test

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"io"
	"net"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/engine"
	"github.com/vireo-im/vireo/engine/vireotest"
	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/creds"
)

// stanzaSeeds reach every module a client can talk to: each is a well-formed stanza that
// a bound session may send, some valid, some not.
var stanzaSeeds = []string{
	`<iq type='get' id='r1'><query xmlns='jabber:iq:roster' ver=''/></iq>`,
	`<iq type='set' id='r2'><query xmlns='jabber:iq:roster'><item jid='bob@localhost' name='Bob'><group>G</group></item></query></iq>`,
	`<iq type='set' id='r3'><query xmlns='jabber:iq:roster'><item jid='bob@localhost' subscription='remove'/></query></iq>`,
	`<presence to='bob@localhost' type='subscribe'/>`,
	`<presence to='bob@localhost' type='subscribed'/>`,
	`<presence><show>away</show><status>s</status><priority>-129</priority></presence>`,
	`<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/></presence>`,
	`<message to='bob@localhost' type='chat' id='m1'><body>hi</body><request xmlns='urn:xmpp:receipts'/></message>`,
	`<message to='fuzz@localhost' type='headline'><body>self</body><store xmlns='urn:xmpp:hints'/></message>`,
	`<message to='bob@localhost'><active xmlns='http://jabber.org/protocol/chatstates'/></message>`,
	`<message to='bob@localhost'><x xmlns='jabber:x:conference' jid='room@conference.localhost'/></message>`,
	`<iq type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`,
	`<iq type='get' id='d2' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>`,
	`<iq type='get' id='d3' to='conference.localhost'><query xmlns='http://jabber.org/protocol/disco#items'><set xmlns='http://jabber.org/protocol/rsm'><max>-1</max></set></query></iq>`,
	`<iq type='get' id='v1'><vCard xmlns='vcard-temp'/></iq>`,
	`<iq type='set' id='v2'><vCard xmlns='vcard-temp'><FN>F</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>!!</BINVAL></PHOTO></vCard></iq>`,
	`<iq type='get' id='b1'><blocklist xmlns='urn:xmpp:blocking'/></iq>`,
	`<iq type='set' id='b2'><block xmlns='urn:xmpp:blocking'><item jid='@@@'/></block></iq>`,
	`<iq type='set' id='b3'><unblock xmlns='urn:xmpp:blocking'/></iq>`,
	`<iq type='set' id='p1'><query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'><conference jid='a@b' autojoin='maybe'/></storage></query></iq>`,
	`<iq type='get' id='p2'><query xmlns='jabber:iq:private'><x xmlns='jabber:client'/></query></iq>`,
	`<iq type='set' id='c1'><enable xmlns='urn:xmpp:carbons:2'/></iq>`,
	`<iq type='set' id='c2'><disable xmlns='urn:xmpp:carbons:2'/></iq>`,
	`<inactive xmlns='urn:xmpp:csi:0'/>`,
	`<active xmlns='urn:xmpp:csi:0'/>`,
	`<enable xmlns='urn:xmpp:sm:3' resume='true' max='-5'/>`,
	`<r xmlns='urn:xmpp:sm:3'/>`,
	`<a xmlns='urn:xmpp:sm:3' h='4294967295'/>`,
	`<iq type='set' id='q1'><query xmlns='urn:xmpp:mam:2' queryid='q'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:mam:2</value></field><field var='start'><value>yesterday</value></field></x><set xmlns='http://jabber.org/protocol/rsm'><max>99999999999</max><before/></set></query></iq>`,
	`<iq type='get' id='q2'><prefs xmlns='urn:xmpp:mam:2'/></iq>`,
	`<iq type='get' id='q3'><metadata xmlns='urn:xmpp:mam:2'/></iq>`,
	`<iq type='set' id='ps1'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='urn:xmpp:avatar:metadata'><item id='x'><metadata xmlns='urn:xmpp:avatar:metadata'><info bytes='-1' id='x' type='image/png'/></metadata></item></publish></pubsub></iq>`,
	`<iq type='set' id='ps2'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='urn:xmpp:bookmarks:1'><item id='r@c'><conference xmlns='urn:xmpp:bookmarks:1' autojoin='1'/></item></publish><publish-options><x xmlns='jabber:x:data' type='submit'><field var='pubsub#max_items'><value>max</value></field></x></publish-options></pubsub></iq>`,
	`<iq type='get' id='ps3' to='fuzz@localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1' max_items='0'/></pubsub></iq>`,
	`<iq type='set' id='ps4'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><configure node='x'/></pubsub></iq>`,
	`<iq type='set' id='pu1'><enable xmlns='urn:xmpp:push:0' jid='push.example' node='n'><x xmlns='jabber:x:data' type='submit'/></enable></iq>`,
	`<iq type='set' id='pu2'><disable xmlns='urn:xmpp:push:0' jid=''/></iq>`,
	`<iq type='set' id='ad1' to='localhost'><command xmlns='http://jabber.org/protocol/commands' node='http://jabber.org/protocol/admin#add-user' action='execute'/></iq>`,
	`<iq type='set' id='ad2' to='localhost'><command xmlns='http://jabber.org/protocol/commands' node='ping' sessionid='nope' action='complete'><x xmlns='jabber:x:data' type='submit'/></command></iq>`,
	`<presence to='room@conference.localhost/nick'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='-1' since='x'/><password>p</password></x></presence>`,
	`<message to='room@conference.localhost' type='groupchat' id='g1'><body>hey</body></message>`,
	`<iq type='set' id='mu1' to='room@conference.localhost'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'><field var='muc#roomconfig_maxusers'><value>0</value></field></x></query></iq>`,
	`<iq type='set' id='mu2' to='room@conference.localhost'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='owner' jid=''/></query></iq>`,
	`<message to='room@conference.localhost'><x xmlns='http://jabber.org/protocol/muc#user'><invite to='bob@localhost'/></x></message>`,
	`<iq type='get' id='u1' to='upload.localhost'><request xmlns='urn:xmpp:http:upload:0' filename='../x' size='-1' content-type='a/b'/></iq>`,
	`<iq type='get' id='t1' to='localhost'><time xmlns='urn:xmpp:time'/></iq>`,
	`<iq type='get' id='ve1' to='localhost'><query xmlns='jabber:iq:version'/></iq>`,
	`<iq type='get' id='l1' to='bob@localhost'><query xmlns='jabber:iq:last'/></iq>`,
	`<iq type='set' id='re1'><query xmlns='jabber:iq:register'><password></password></query></iq>`,
	`<iq type='set' id='re2'><query xmlns='jabber:iq:register'><remove/></query></iq>`,
	`<iq type='result' id='x1' to='bob@localhost/r'/>`,
	`<iq type='error' id='x2' to='localhost'><error type='cancel'><bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`,
	`<iq type='set' id='x3'><bind xmlns='urn:xmpp:bind2:0'/></iq>`,
	`<message to='&#x0;@localhost'/>`,
	`<message to='a@b@c/d'><body xml:lang=''/></message>`,
}

// FuzzClientStanza sends one well-formed stanza from a bound session through the whole
// server (engine, router, every module) and then a ping: the ping must be answered, or the
// stream closed with a stream error, and nothing may have panicked (a recovered panic
// is still a bug: it ends a stream or an operation that should have had an error).
func FuzzClientStanza(f *testing.F) {
	panics, log := fuzzSetup(f, stanzaSeeds)
	srv := vireotest.Start(f, vireotest.Options{AllowPlain: true, Logger: log})
	user := srv.AddUser(f, "fuzz", "fuzz pw")
	srv.AddUser(f, "bob", "bob pw")
	keys, err := creds.DeriveAll("fuzz pw", creds.MinIter)
	if err != nil {
		f.Fatal(err)
	}
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, b []byte) {
		if !wellFormed(b) {
			return // the scanner's own fuzzers (xmlstream) cover malformed input
		}
		// An input may have removed the account or changed its password (XEP-0077):
		// each starts from the same account.
		resetAccount(t, srv, user, keys)
		c := fuzzLogin(t, srv, user, keys, "r"+strconv.FormatInt(n.Add(1), 10))
		defer c.Conn().Close()
		c.Send(string(b))
		c.Send("<iq type='get' id='fuzz-end'><ping xmlns='urn:xmpp:ping'/></iq>")
		got, err := c.ReadUntil("id='fuzz-end'", 10*time.Second)
		if err != nil && !closedWithError(got, err) {
			t.Fatalf("after %q: no answer to a ping and no stream error (%v): %q", b, err, got)
		}
		if m := panics.last(); m != "" {
			t.Fatalf("after %q: %s", b, m)
		}
	})
}

// resetAccount gives user the keys (making the account if an input removed it) and
// enables it.
func resetAccount(t *testing.T, srv *vireotest.Server, user string, keys [3]store.Credentials) {
	t.Helper()
	a, err := srv.Store.Accounts().Get(user)
	if err != nil {
		if err := srv.Store.Accounts().Create(store.Account{User: user, Creds: keys, Created: time.Now()}); err != nil && !errors.Is(err, store.ErrExists) {
			t.Fatal(err)
		}
		return
	}
	if !reflect.DeepEqual(a.Creds, keys) {
		if err := srv.Store.Accounts().SetCredentials(user, keys); err != nil {
			t.Fatal(err)
		}
	}
	if a.Disabled {
		if err := srv.Store.Accounts().SetDisabled(user, false); err != nil {
			t.Fatal(err)
		}
	}
}

// fuzzLogin logs the fuzz account in and binds resource. An input's account change can
// land after resetAccount looked: XEP-0077 <remove/> runs on the worker pool, and the
// shard answers the ping behind it meanwhile (IQs are matched by id, not ordered), so the
// store's Delete may commit between resetAccount's check and this login. A refused login
// has seen the change land: the account is reset once more and the login tried again.
func fuzzLogin(t *testing.T, srv *vireotest.Server, user string, keys [3]store.Credentials, resource string) *vireotest.RawConn {
	t.Helper()
	local, _, _ := strings.Cut(user, "@")
	for try := 0; ; try++ {
		r := srv.DialTLS(t)
		r.Send(srv.Header())
		r.Expect("</stream:features>")
		r.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" +
			base64.StdEncoding.EncodeToString([]byte("\x00"+local+"\x00fuzz pw")) + "</auth>")
		got, err := r.ReadUntil("/>", 5*time.Second)
		if err == nil && strings.Contains(got, "<success") {
			r.Send(srv.Header())
			r.Expect("</stream:features>")
			r.Send("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>" + resource + "</resource></bind></iq>")
			r.Expect("</iq>")
			return r
		}
		r.Conn().Close()
		if try == 4 {
			t.Fatalf("login after the reset: %q %v", got, err)
		}
		time.Sleep(50 * time.Millisecond)
		resetAccount(t, srv, user, keys)
	}
}

// closedWithError reports whether a read that failed with err ended a stream that had a
// stream error: EOF, or a reset when the ping crossed the close; not a timeout.
func closedWithError(got string, err error) bool {
	var ne net.Error
	return strings.Contains(got, "<stream:error") && !(errors.As(err, &ne) && ne.Timeout())
}

// wellFormed reports whether b is one XML element and nothing else.
func wellFormed(b []byte) bool {
	if !bytes.HasPrefix(bytes.TrimSpace(b), []byte("<")) || bytes.Contains(b, []byte("<?")) || bytes.Contains(b, []byte("<!")) {
		return false
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	depth, elems := 0, 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return depth == 0 && elems == 1
		}
		if err != nil {
			return false
		}
		switch tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				elems++
			}
			depth++
		case xml.EndElement:
			depth--
		}
	}
}

// fuzzSetup adds seeds to f's corpus and returns a logger for the servers under test with
// the counter of the recovered panics it sees.
func fuzzSetup[S ~string | ~[]byte](f *testing.F, seeds []S) (*panicCounter, *zerolog.Logger) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	panics := new(panicCounter)
	log := zerolog.New(io.Discard).Level(zerolog.ErrorLevel).Hook(panics)
	return panics, &log
}

// panicCounter keeps the last error log line that reports a recovered panic.
type panicCounter struct {
	mu  sync.Mutex
	msg string
}

func (p *panicCounter) Run(e *zerolog.Event, level zerolog.Level, msg string) {
	if level >= zerolog.ErrorLevel && strings.Contains(msg, "panic") {
		p.mu.Lock()
		p.msg = msg
		p.mu.Unlock()
	}
}

func (p *panicCounter) last() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.msg
	p.msg = ""
	return m
}

// componentSeeds are what an XEP-0114 component (a gateway, a bot, a push app server) may
// send: stanzas from its own domain to local users and services, some invalid.
var componentSeeds = []string{
	`<message from='u@bot.localhost' to='fuzz@localhost' type='chat' id='c1'><body>hi</body></message>`,
	`<message from='u@bot.localhost' to='fuzz@localhost/r' type='groupchat'><body>x</body><delay xmlns='urn:xmpp:delay' stamp='never'/></message>`,
	`<message from='bot.localhost' to='fuzz@localhost'><event xmlns='http://jabber.org/protocol/pubsub#event'><items node='urn:xmpp:avatar:metadata'><item id='1'/></items></event></message>`,
	`<presence from='u@bot.localhost' to='fuzz@localhost' type='subscribe'/>`,
	`<presence from='u@bot.localhost/x' to='fuzz@localhost' type='probe'/>`,
	`<presence from='u@bot.localhost/x' to='room@conference.localhost/u'><x xmlns='http://jabber.org/protocol/muc'/></presence>`,
	`<message from='u@bot.localhost/x' to='room@conference.localhost' type='groupchat'><body>g</body></message>`,
	`<iq from='u@bot.localhost' to='fuzz@localhost' type='set' id='c2'><query xmlns='jabber:iq:roster'><item jid='a@b'/></query></iq>`,
	`<iq from='u@bot.localhost' to='fuzz@localhost' type='get' id='c3'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`,
	`<iq from='u@bot.localhost' to='fuzz@localhost' type='get' id='c4'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:avatar:data'/></pubsub></iq>`,
	`<iq from='u@bot.localhost' to='fuzz@localhost' type='set' id='c5'><query xmlns='urn:xmpp:mam:2'/></iq>`,
	`<iq from='u@bot.localhost' to='localhost' type='get' id='c6'><vCard xmlns='vcard-temp'/></iq>`,
	`<iq from='bot.localhost' to='localhost' type='error' id='push-1'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`,
	`<iq from='bot.localhost' to='fuzz@localhost/r' type='result' id='c7'/>`,
	`<message from='evil@localhost' to='fuzz@localhost'><body>spoofed</body></message>`,
	`<message to='fuzz@localhost'><body>no from</body></message>`,
	`<message from='bot.localhost' to='localhost'><privilege xmlns='urn:xmpp:privilege:2'><forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' from='fuzz@localhost' to='a@b' type='chat'><body>as</body></message></forwarded></privilege></message>`,
	`<iq from='bot.localhost' to='fuzz@localhost' type='set' id='p1'><privileged_iq xmlns='urn:xmpp:privilege:2'><iq xmlns='jabber:client' type='set' id='i1'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n'><item><x xmlns='y'/></item></publish></pubsub></iq></privileged_iq></iq>`,
	`<iq from='bot.localhost' to='fuzz@localhost' type='set' id='p2'><privileged_iq xmlns='urn:xmpp:privilege:2'><iq xmlns='jabber:client' type='set' id='i2' to='pubsub.localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'><create node='n'/></pubsub></iq></privileged_iq></iq>`,
}

// FuzzComponentStanza sends one well-formed stanza from an external component, one with
// every XEP-0356 privilege, through the router and every module, then a ping from the
// component: it must be answered, or the stream closed with a stream error, and nothing
// may have panicked.
func FuzzComponentStanza(f *testing.F) {
	panics, log := fuzzSetup(f, componentSeeds)
	srv := vireotest.Start(f, vireotest.Options{AllowPlain: true, Logger: log,
		Components: []engine.Component{{Domain: "bot.localhost", Secret: compSecret, Privileges: module.Privileges{
			Roster: "both", Message: "outgoing", Presence: "managed_entity", IQ: map[string]string{"http://jabber.org/protocol/pubsub": "both", "jabber:iq:roster": "both"}}}}})
	srv.AddUser(f, "fuzz", "fuzz pw")
	online := srv.LoginPlain(f, "fuzz", "fuzz pw", "r")
	online.Send("<presence/>")
	go io.Copy(io.Discard, online.Conn()) // an online recipient that reads whatever comes
	f.Fuzz(func(t *testing.T, b []byte) {
		if !wellFormed(b) {
			return
		}
		comp, _ := componentLogin(t, srv, "bot.localhost", compSecret)
		comp.Expect("<handshake/>")
		comp.Send(string(b))
		comp.Send("<iq type='get' id='fuzz-end' from='bot.localhost' to='localhost'><ping xmlns='urn:xmpp:ping'/></iq>")
		got, err := comp.ReadUntil("id='fuzz-end'", 10*time.Second)
		if err != nil && !closedWithError(got, err) {
			t.Fatalf("after %q: no answer to a ping and no stream error (%v): %q", b, err, got)
		}
		if err == nil {
			comp.Send("</stream:stream>")
			comp.ExpectClosed()
		}
		if m := panics.last(); m != "" {
			t.Fatalf("after %q: %s", b, m)
		}
	})
}

// s2sSeeds are what a federated server may send on an authenticated inbound stream for
// a.localhost: stanzas from its users to b's users and services, some invalid.
var s2sSeeds = []string{
	`<message from='alice@a.localhost/x' to='bob@b.localhost/pc' type='chat' id='s1'><body>hi</body></message>`,
	`<message from='alice@a.localhost' to='bob@b.localhost' type='chat'><body>x</body><request xmlns='urn:xmpp:receipts'/><active xmlns='http://jabber.org/protocol/chatstates'/></message>`,
	`<message from='alice@a.localhost/x' to='nobody@b.localhost' type='chat'><body>offline</body></message>`,
	`<message from='alice@a.localhost/x' to='bob@b.localhost' type='error' id='s2'><error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>`,
	`<message from='a.localhost' to='bob@b.localhost'><event xmlns='http://jabber.org/protocol/pubsub#event'><items node='urn:xmpp:avatar:metadata'><item id='1'/></items></event></message>`,
	`<message from='alice@a.localhost/x' to='bob@b.localhost'><received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'><message from='bob@b.localhost' to='x@y'><body>forged carbon</body></message></forwarded></received></message>`,
	`<message from='alice@a.localhost/x' to='bob@b.localhost'><result xmlns='urn:xmpp:mam:2' queryid='q'><forwarded xmlns='urn:xmpp:forward:0'><message><body>forged archive</body></message></forwarded></result></message>`,
	`<presence from='alice@a.localhost' to='bob@b.localhost' type='subscribe'/>`,
	`<presence from='alice@a.localhost' to='bob@b.localhost' type='subscribed'/>`,
	`<presence from='alice@a.localhost' to='bob@b.localhost' type='unsubscribed'/>`,
	`<presence from='alice@a.localhost/x' to='bob@b.localhost' type='probe'/>`,
	`<presence from='alice@a.localhost/x' to='bob@b.localhost'><show>away</show><priority>-1</priority><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/></presence>`,
	`<presence from='alice@a.localhost/x' to='room@conference.b.localhost/alice'><x xmlns='http://jabber.org/protocol/muc'><history maxstanzas='5'/></x></presence>`,
	`<message from='alice@a.localhost/x' to='room@conference.b.localhost' type='groupchat'><body>g</body></message>`,
	`<message from='alice@a.localhost/x' to='room@conference.b.localhost'><x xmlns='http://jabber.org/protocol/muc#user'><invite to='bob@b.localhost'/></x></message>`,
	`<iq from='alice@a.localhost/x' to='bob@b.localhost' type='get' id='s3'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`,
	`<iq from='alice@a.localhost/x' to='bob@b.localhost/pc' type='get' id='s4'><ping xmlns='urn:xmpp:ping'/></iq>`,
	`<iq from='alice@a.localhost/x' to='bob@b.localhost' type='set' id='s5'><query xmlns='jabber:iq:roster'><item jid='eve@a.localhost'/></query></iq>`,
	`<iq from='alice@a.localhost/x' to='bob@b.localhost' type='set' id='s6'><query xmlns='urn:xmpp:mam:2'/></iq>`,
	`<iq from='alice@a.localhost/x' to='bob@b.localhost' type='get' id='s7'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:avatar:data'/></pubsub></iq>`,
	`<iq from='alice@a.localhost/x' to='bob@b.localhost' type='get' id='s8'><vCard xmlns='vcard-temp'/></iq>`,
	`<iq from='alice@a.localhost/x' to='b.localhost' type='get' id='s9'><query xmlns='jabber:iq:version'/></iq>`,
	`<iq from='alice@a.localhost/x' to='b.localhost' type='get' id='s10'><query xmlns='jabber:iq:last'/></iq>`,
	`<iq from='alice@a.localhost/x' to='b.localhost' type='set' id='s11'><command xmlns='http://jabber.org/protocol/commands' node='http://jabber.org/protocol/admin#add-user'/></iq>`,
	`<iq from='alice@a.localhost/x' to='pubsub.b.localhost' type='set' id='s12'><pubsub xmlns='http://jabber.org/protocol/pubsub'><create node='n'/></pubsub></iq>`,
	`<iq from='alice@a.localhost/x' to='upload.b.localhost' type='get' id='s13'><request xmlns='urn:xmpp:http:upload:0' filename='a.txt' size='10'/></iq>`,
	`<iq from='alice@a.localhost/x' to='bob@b.localhost/pc' type='result' id='unknown'/>`,
	`<iq from='alice@a.localhost/x' to='bob@b.localhost' type='error' id='s14'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>`,
	`<db:verify xmlns:db='jabber:server:dialback' from='a.localhost' to='b.localhost' id='abc'>0123</db:verify>`,
	`<db:result xmlns:db='jabber:server:dialback' from='c.localhost' to='b.localhost'>0123</db:result>`,
	`<message from='mallory@evil.localhost' to='bob@b.localhost'><body>forged</body></message>`,
	`<message from='alice@a.localhost' to='someone@elsewhere.localhost'><body>relay</body></message>`,
	`<message to='bob@b.localhost'><body>no from</body></message>`,
}

// FuzzS2SStanza sends one well-formed stanza over an inbound server-to-server stream that
// authenticated (dialback) as a.localhost, the internet-facing side of federation, then a
// message to a user who is online: it must reach that user, or the stream must have been
// closed with a stream error, and nothing may have panicked. Whatever b answers goes to
// a.localhost, a real server, over b's outbound stream.
func FuzzS2SStanza(f *testing.F) {
	panics, log := fuzzSetup(f, s2sSeeds)
	a := vireotest.Start(f, vireotest.Options{Domain: "a.localhost", AllowPlain: true, S2S: true, S2SSecret: []byte("secret-a"), Logger: log})
	b := vireotest.Start(f, vireotest.Options{Domain: "b.localhost", AllowPlain: true, S2S: true, Logger: log})
	vireotest.Federate(a, b)
	a.AddUser(f, "alice", "secret")
	b.AddUser(f, "bob", "secret")
	// bob's stream lives across inputs; an input can end it only by a server defect.
	bob := b.LoginPlain(f, "bob", "secret", "pc")
	bob.Send("<presence/>")
	var n atomic.Int64
	f.Fuzz(func(t *testing.T, in []byte) {
		if !wellFormed(in) {
			return
		}
		r := s2sLogin(t, b)
		// b sends nothing on an inbound stream but a stream error and its close: read
		// for them meanwhile, so that a closed stream does not wait out bob's timeout.
		type end struct {
			got string
			err error
		}
		ended := make(chan end, 1)
		go func() {
			got, err := r.ReadUntil("</stream:stream>", 15*time.Second)
			ended <- end{got, err}
		}()
		defer func() { r.Conn().Close(); <-ended }()
		r.Send(string(in))
		mark := "alive-" + strconv.FormatInt(n.Add(1), 10) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
		r.Send("<message from='alice@a.localhost/x' to='bob@b.localhost/pc' type='chat'><body>" + mark + "</body></message>")
		for deadline := time.Now().Add(10 * time.Second); ; {
			if _, err := bob.ReadUntil(mark, 50*time.Millisecond); err == nil {
				break
			}
			var e end
			select {
			case e = <-ended:
				ended <- e // for the deferred wait
			default:
				if time.Now().Before(deadline) {
					continue
				}
				e = end{"", errors.New("no stream error either")}
			}
			if !closedWithError(e.got, e.err) {
				t.Fatalf("after %q: the next message was not delivered and the stream has no stream error (%v): %q", in, e.err, e.got)
			}
			break
		}
		if m := panics.last(); m != "" {
			t.Fatalf("after %q: %s", in, m)
		}
	})
}

// preauthSeeds are what a client sends before it is authenticated: SASL and SASL2 steps
// (with XEP-0480 upgrade tasks and FAST), registration, STARTTLS, stream management and
// binding out of order.
var preauthSeeds = []string{
	`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGZ1enoAZnV6eiBwdw==</auth>`,
	`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>biwsbj1mdXp6LHI9YWJjZGVm</auth><response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>Yz1iaXdzLHI9YWJjZGVmLHA9QUFBQQ==</response>`,
	`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'/><abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>`,
	`<authenticate xmlns='urn:xmpp:sasl:2' mechanism='SCRAM-SHA-1'><initial-response>biwsbj1mdXp6LHI9YWJjZGVm</initial-response><upgrade xmlns='urn:xmpp:sasl:upgrade:0'>UPGR-SCRAM-SHA-256</upgrade><user-agent id='x'/></authenticate>`,
	`<next xmlns='urn:xmpp:sasl:2' task='UPGR-SCRAM-SHA-256'/><task-data xmlns='urn:xmpp:sasl:2'><hash xmlns='urn:xmpp:scram-upgrade:0'>AAAA</hash></task-data>`,
	`<authenticate xmlns='urn:xmpp:sasl:2' mechanism='HT-SHA-256-NONE'><initial-response>ZnV6egBBQUFB</initial-response><user-agent id='x'/><bind xmlns='urn:xmpp:bind:0'><tag>t</tag><enable xmlns='urn:xmpp:sm:3' resume='true'/></bind><resume xmlns='urn:xmpp:sm:3' previd='p' h='1'/></authenticate>`,
	`<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>AGZ1enoAZnV6eiBwdw==</initial-response><user-agent id='y'/><request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/><bind xmlns='urn:xmpp:bind:0'/></authenticate>`,
	`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'>dHJhY2U=</auth>`,
	`<iq type='get' id='g'><query xmlns='jabber:iq:register'/></iq>`,
	`<iq type='get' id='g'><query xmlns='jabber:iq:register'/></iq><iq type='set' id='s'><query xmlns='jabber:iq:register'><x xmlns='jabber:x:data' type='submit'><field var='username'><value>u</value></field><field var='password'><value>p</value></field><field var='challenge'><value>00</value></field><field var='ocr'><value>ABCDEF</value></field></x></query></iq>`,
	`<iq type='set' id='p'><preauth xmlns='urn:xmpp:pars:0' token='t'/></iq>`,
	`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`,
	`<resume xmlns='urn:xmpp:sm:3' previd='x' h='0'/>`,
	`<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>`,
	`<message to='bob@localhost'><body>early</body></message>`,
	// Stanzas inside an exchange and after it, before bind (stray.go).
	`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>biwsbj1mdXp6LHI9YWJjZGVm</auth><iq type='get' id='o'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='n'/></pubsub></iq><r xmlns='urn:xmpp:sm:3'/><message id='m'/><presence/>`,
	`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGZ1enoAZnV6eiBwdw==</auth><r xmlns='urn:xmpp:sm:3'/><a xmlns='urn:xmpp:sm:3' h='3'/><message id='m'><body>x</body></message><iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>`,
}

// FuzzPreAuth sends a stream header (naming an account or not) and a sequence of elements
// before authentication, to a server whose open registration asks a CAPTCHA. Whatever
// the sequence, no handler panics and the server still opens streams for others.
func FuzzPreAuth(f *testing.F) {
	panics, log := fuzzSetup(f, preauthSeeds)
	srv := vireotest.Start(f, vireotest.Options{RequireTLS: no(), AllowPlain: true, Logger: log, Registration: true, RegistrationCaptcha: true})
	srv.AddUser(f, "fuzz", "fuzz pw")
	f.Fuzz(func(t *testing.T, b []byte) {
		if !wellFormedSeq(b) {
			return
		}
		for _, header := range []string{srv.Header(), strings.Replace(srv.Header(), " to=", " from='fuzz@localhost' to=", 1)} {
			c := srv.Dial(t)
			c.Send(header)
			c.Expect("</stream:features>")
			c.Send(string(b))
			endInput(t, c, panics, b)
		}
		other := srv.Dial(t)
		defer other.Conn().Close()
		other.Send(srv.Header())
		other.Expect("</stream:features>")
	})
}

// endInput half-closes c after the input in and waits for the server to end the stream,
// then fails on a handler's recovered panic. The half-close is read after the input: the
// server has handled all of it when it closes its side (work it started off the loop may
// still be running).
func endInput(t *testing.T, c *vireotest.RawConn, panics *panicCounter, in []byte) {
	t.Helper()
	c.Conn().(*net.TCPConn).CloseWrite()
	c.Conn().SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, c.Conn()); err != nil {
		t.Fatalf("after %q: the stream did not end: %v", in, err)
	}
	c.Conn().Close()
	if m := panics.last(); m != "" {
		t.Fatalf("after %q: %s", in, m)
	}
}

// wellFormedSeq reports whether b is one or more XML elements and nothing else.
func wellFormedSeq(b []byte) bool {
	if !bytes.HasPrefix(bytes.TrimSpace(b), []byte("<")) || bytes.Contains(b, []byte("<?")) || bytes.Contains(b, []byte("<!")) {
		return false
	}
	d := xml.NewDecoder(bytes.NewReader(b))
	depth := 0
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return depth == 0
		}
		if err != nil {
			return false
		}
		switch tok.(type) {
		case xml.StartElement:
			depth++
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(tok.(xml.CharData))) > 0 {
				return false
			}
		}
	}
}

// guestSeeds are what a guest sends after its ANONYMOUS login: binding (twice, or by
// SASL2 inline), stream management with resumption, roster and private storage writes,
// messages and presence.
var guestSeeds = []string{
	`<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq><presence/><message to='fuzz@localhost' type='chat'><body>hi</body></message>`,
	`<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq><enable xmlns='urn:xmpp:sm:3' resume='true'/><presence/><r xmlns='urn:xmpp:sm:3'/>`,
	`<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq><iq type='set' id='r'><query xmlns='jabber:iq:roster'><item jid='fuzz@localhost'/></query></iq><iq type='set' id='p'><query xmlns='jabber:iq:private'><x xmlns='a:b'/></query></iq>`,
	`<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq><iq type='set' id='b2'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq>`,
	`<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></iq><iq type='set' id='pw'><query xmlns='jabber:iq:register'><remove/></query></iq>`,
	`<resume xmlns='urn:xmpp:sm:3' previd='x' h='0'/>`,
	`</stream:stream>`,
}

// FuzzGuest logs a guest in (SASL ANONYMOUS), restarts the stream and sends a sequence of
// elements. Whatever the sequence, no handler panics, and once the stream has ended the
// guest's account is gone with everything stored for it: only the one account there was
// before remains.
func FuzzGuest(f *testing.F) {
	panics, log := fuzzSetup(f, guestSeeds)
	srv := vireotest.Start(f, vireotest.Options{RequireTLS: no(), AllowPlain: true, Logger: log, Anonymous: true,
		ResumeTimeout: 200 * time.Millisecond})
	srv.AddUser(f, "fuzz", "fuzz pw")
	f.Fuzz(func(t *testing.T, b []byte) {
		if !wellFormedSeq(b) && !bytes.Equal(b, []byte(`</stream:stream>`)) {
			return
		}
		c := srv.Dial(t)
		c.Send(srv.Header())
		c.Expect("</stream:features>")
		c.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='ANONYMOUS'/>")
		c.Expect("<success")
		c.Send(srv.Header())
		c.Expect("</stream:features>")
		c.Send(string(b))
		endInput(t, c, panics, b)
		for deadline := time.Now().Add(10 * time.Second); ; {
			n, _ := srv.Store.Accounts().Count()
			rows := 0
			srv.Store.Accounts().Guests(func(string) bool { rows++; return true })
			if n == 1 && rows == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %q: %d accounts and %d guests remain, want the one account", b, n, rows)
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}
