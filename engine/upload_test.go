package engine_test

import (
	"bytes"
	"context"
	"html"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine"
	"github.com/vireo-im/vireo/engine/vireotest"
	"github.com/vireo-im/vireo/modules/upload"
)

// uploadServer starts a server whose upload listener is on a known loopback port, with the
// public URL on https://localhost (the name the test certificate holds), and limits small
// enough to reach: 1000 bytes per file, 3000 per user.
func uploadServer(t *testing.T, o vireotest.Options) *vireotest.Server {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, port, _ := net.SplitHostPort(addr)
	o.AllowPlain = true
	user := o.ModuleConfig
	o.ModuleConfig = func(id string, v any) error {
		if c, ok := v.(*upload.Config); ok {
			c.Listen = addr
			c.PublicURL = "https://localhost:" + port
			c.MaxFileSize = 1000
			c.Quota = 3000
		}
		if user != nil {
			return user(id, v)
		}
		return nil
	}
	return vireotest.Start(t, o)
}

var (
	slotPutRe  = regexp.MustCompile(`<put url='([^']+)'><header name='Authorization'>([^<]+)</header></put>`)
	slotGetRe  = regexp.MustCompile(`<get url='([^']+)'/>`)
	uploadReID = 0
)

// requestSlot asks upload.localhost for a slot and returns the whole answer.
func requestSlot(r *vireotest.RawConn, name string, size int, ctype string) string {
	uploadReID++
	id := "slot" + strconv.Itoa(uploadReID)
	return pepIQ(r, id, "<iq type='get' id='"+id+"' to='upload.localhost'><request xmlns='urn:xmpp:http:upload:0' filename='"+
		name+"' size='"+strconv.Itoa(size)+"' content-type='"+ctype+"'/></iq>")
}

// slotURLs reads the PUT URL, Authorization value and GET URL from a slot answer.
func slotURLs(t *testing.T, iq string) (put, auth, get string) {
	t.Helper()
	m, g := slotPutRe.FindStringSubmatch(iq), slotGetRe.FindStringSubmatch(iq)
	if m == nil || g == nil {
		t.Fatalf("no slot in %q", iq)
	}
	return html.UnescapeString(m[1]), html.UnescapeString(m[2]), html.UnescapeString(g[1])
}

func httpDo(t *testing.T, c *http.Client, method, url, auth, ctype string, body []byte, length int64) (int, []byte, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if length >= 0 {
		req.ContentLength = length
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, resp.Header
}

// TestIntegrationUpload: XEP-0363 end to end. The service is in the server's disco#items
// with identity store/file and max-file-size; a local user gets a slot over a real client
// stream, PUTs over TLS with Go's client and GETs the file back; a slot is single-use, a
// body of another size is refused, an oversize request gets file-too-large, the quota
// gives resource-constraint, and someone who is not a user of localhost is forbidden.
func TestIntegrationUpload(t *testing.T) {
	srv := uploadServer(t, vireotest.Options{Components: []engine.Component{{Domain: "bot.localhost", Secret: compSecret}}})
	srv.AddUser(t, "alice", "secret")
	alice := srv.LoginPlain(t, "alice", "secret", "pc")
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: srv.ClientTLS()}}

	items := pepIQ(alice, "items", "<iq type='get' id='items' to='localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>")
	mustHave(t, "server disco#items", items, "jid='upload.localhost'")
	info := pepIQ(alice, "info", "<iq type='get' id='info' to='upload.localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	mustHave(t, "service disco#info", info, "category='store' type='file'", "var='urn:xmpp:http:upload:0'",
		"<value>urn:xmpp:http:upload:0</value>", "var='max-file-size'><value>1000</value>")

	// Slot, PUT, GET.
	body := []byte("hello, upload")
	slot := requestSlot(alice, "hello world.txt", len(body), "text/plain")
	put, auth, get := slotURLs(t, slot)
	if !strings.HasPrefix(put, "https://localhost:") || !strings.HasSuffix(put, "/hello%20world.txt") || get != put {
		t.Fatalf("slot URLs %q %q", put, get)
	}
	if code, b, _ := httpDo(t, hc, "PUT", put, "", "text/plain", body, -1); code != http.StatusForbidden {
		t.Fatalf("PUT without token: %d %s", code, b)
	}
	if code, b, _ := httpDo(t, hc, "PUT", put, auth, "text/plain", body, -1); code != http.StatusCreated {
		t.Fatalf("PUT: %d %s", code, b)
	}
	code, b, h := httpDo(t, hc, "GET", get, "", "", nil, -1)
	if code != 200 || !bytes.Equal(b, body) || h.Get("Content-Type") != "text/plain" ||
		!strings.Contains(h.Get("Content-Disposition"), `filename="hello world.txt"`) || h.Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("GET: %d %q %v", code, b, h)
	}
	// Single use.
	if code, b, _ := httpDo(t, hc, "PUT", put, auth, "text/plain", []byte("replaced!!!!!"), -1); code < 400 {
		t.Fatalf("second PUT: %d %s", code, b)
	}
	if _, b, _ := httpDo(t, hc, "GET", get, "", "", nil, -1); !bytes.Equal(b, body) {
		t.Fatalf("file changed by the second PUT: %q", b)
	}
	// CORS preflight.
	if code, _, h := httpDo(t, hc, "OPTIONS", put, "", "", nil, -1); code != http.StatusNoContent || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "PUT") {
		t.Fatalf("OPTIONS: %d %v", code, h)
	}

	// A body of another size than the slot's is refused and nothing is served.
	put2, auth2, get2 := slotURLs(t, requestSlot(alice, "b.bin", 10, "application/octet-stream"))
	if code, b, _ := httpDo(t, hc, "PUT", put2, auth2, "application/octet-stream", []byte("123456789"), 9); code != http.StatusBadRequest {
		t.Fatalf("short PUT: %d %s", code, b)
	}
	if code, b, _ := httpDo(t, hc, "PUT", put2, auth2, "text/plain", []byte("1234567890"), 10); code != http.StatusBadRequest {
		t.Fatalf("PUT with another content type: %d %s", code, b)
	}
	if code, _, _ := httpDo(t, hc, "GET", get2, "", "", nil, -1); code != http.StatusNotFound {
		t.Fatalf("GET of a refused upload: %d", code)
	}

	// Oversize: not-acceptable with the XEP-0363 §5 limit.
	big := requestSlot(alice, "big.bin", 1001, "application/octet-stream")
	mustHave(t, "oversize", big, "type='error'", "<not-acceptable", "<file-too-large xmlns='urn:xmpp:http:upload:0'><max-file-size>1000</max-file-size></file-too-large>")

	// Quota 3000: 13 stored, 10 reserved by the unused slot, 1000 + 1000 fit, then no more.
	requestSlot(alice, "q1", 1000, "text/plain")
	requestSlot(alice, "q2", 1000, "text/plain")
	over := requestSlot(alice, "q3", 1000, "text/plain")
	mustHave(t, "quota", over, "type='error'", "type='wait'", "<resource-constraint", "quota")

	// Bad requests.
	bad := pepIQ(alice, "bad", "<iq type='get' id='bad' to='upload.localhost'><request xmlns='urn:xmpp:http:upload:0' filename='../x' size='1'/></iq>")
	mustHave(t, "bad filename", bad, "type='error'", "<bad-request")
	bad = pepIQ(alice, "bad2", "<iq type='get' id='bad2' to='upload.localhost'><request xmlns='urn:xmpp:http:upload:0' filename='x'/></iq>")
	mustHave(t, "missing size", bad, "type='error'", "<bad-request")

	// Not a user of localhost: forbidden.
	comp, _ := componentLogin(t, srv, "bot.localhost", compSecret)
	comp.Expect("<handshake/>")
	comp.Send("<iq type='get' id='c1' from='bot.localhost' to='upload.localhost'><request xmlns='urn:xmpp:http:upload:0' filename='x' size='1'/></iq>")
	got := comp.Expect("id='c1'")
	got += comp.Expect("</iq>")
	mustHave(t, "component request", got, "type='error'", "<forbidden")
}

// TestIntegrationSlixmppUpload: slixmpp's XEP-0363 plugin (with aiohttp, clients nobody
// here wrote) finds the service through disco, honours max-file-size, uploads a file; the
// test fetches the GET URL it printed and gets the same bytes and type.
func TestIntegrationSlixmppUpload(t *testing.T) {
	needSlixmpp(t)
	srv := uploadServer(t, vireotest.Options{})
	srv.AddUser(t, "slix", "py secret")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := slixCmd(t, ctx, srv, "slixmpp_upload.py").CombinedOutput()
	s := string(out)
	if err != nil {
		t.Fatalf("slixmpp: %v\n%s", err, s)
	}
	m := regexp.MustCompile(`(?m)^URL (\S+)$`).FindStringSubmatch(s)
	if m == nil || !strings.Contains(s, "SERVICE upload.localhost 1000") || !strings.Contains(s, "TOO BIG") {
		t.Fatalf("slixmpp output:\n%s", s)
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: srv.ClientTLS()}}
	code, b, h := httpDo(t, hc, "GET", m[1], "", "", nil, -1)
	want := bytes.Repeat([]byte("Grüße from slixmpp\n"), 10)
	if code != 200 || !bytes.Equal(b, want) || h.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("GET %s: %d %q %v", m[1], code, b, h)
	}
}

// TestIntegrationUploadGuest: a guest (SASL ANONYMOUS) gets no upload slot: it is a new
// name at every login, each with a quota of its own, and its files would outlive it.
func TestIntegrationUploadGuest(t *testing.T) {
	srv := uploadServer(t, vireotest.Options{Anonymous: true})
	g, _ := guestLogin(t, srv)
	g.Send("<iq type='get' id='slot' to='upload.localhost'><request xmlns='urn:xmpp:http:upload:0' filename='a.txt' size='3' content-type='text/plain'/></iq>")
	mustHave(t, "a guest's slot request", g.Expect("</iq>"), "type='error'", "<forbidden", "guests may not upload")
}
