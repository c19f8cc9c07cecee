package main

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	msasl "mellium.im/sasl"

	"github.com/vireo-im/vireo/engine/admin"
)

const apiToken = "4f1c2a9e7b3d5f60a8c4e2b1d9f7a3c5"

// TestIntegrationWebAPI: the HTTP API on the real server, called as a site's back end
// would with net/http: it creates an account that then logs in (mellium), sends that user
// a notification from the server and another from a bot account, and deletes the
// account, whose session ends. Refused: no token or a wrong one (401), an operation it
// does not offer (404), GET (405), unknown fields and a file path (400), a sender that is
// no account (400); an address outside api_allow (403) after a reload, and no API at all
// once the tokens are gone. vireoctl's message op (the admin socket) sends as well.
func TestIntegrationWebAPI(t *testing.T) {
	s, base := dashServerWeb(t, `api_tokens = ["`+apiToken+`"]`)
	api := strings.TrimSuffix(base, "/admin/") + "/api/v1/"
	call := func(method, op, token, body string) (int, admin.Response) {
		t.Helper()
		req, _ := http.NewRequest(method, api+op, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		var r admin.Response
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("%s %s: %d, not JSON: %q", method, op, res.StatusCode, b)
		}
		return res.StatusCode, r
	}
	mustCall := func(op, body string) admin.Response {
		t.Helper()
		code, r := call("POST", op, apiToken, body)
		if code != 200 || r.Error != "" {
			t.Fatalf("%s %s: %d %+v", op, body, code, r)
		}
		return r
	}

	mustCall("adduser", `{"jid": "ann@localhost", "password": "ann pw"}`)
	mustCall("adduser", `{"jid": "newsbot@localhost", "password": "bot pw"}`)
	ann := loginMellium(t, s, "ann", "localhost", "ann pw")
	ann.send(t, "<presence/>")
	r := mustCall("message", `{"from": "localhost", "to": "ann@localhost", "subject": "Forum", "body": "Bob replied to <your post> & more"}`)
	if len(r.Lines) != 1 || !strings.HasPrefix(r.Lines[0], "api-") {
		t.Fatalf("message answer: %+v", r)
	}
	ann.waitFor(t, "id=\""+r.Lines[0]+"\"", "from=\"localhost\"", ">Forum</subject>", "Bob replied to &lt;your post&gt; &amp; more")
	mustCall("message", `{"from": "newsbot@localhost", "to": "ann@localhost", "type": "headline", "body": "from the bot"}`)
	ann.waitFor(t, "from=\"newsbot@localhost\"", "type=\"headline\"", "from the bot")
	// The admin socket, as vireoctl message uses it.
	if resp, err := admin.Call(s.cfg.Admin.Socket, admin.Request{Op: "message", From: "localhost", To: "ann@localhost", Body: "over the socket"}); err != nil || resp.Error != "" {
		t.Fatalf("message over the admin socket: %+v, %v", resp, err)
	}
	ann.waitFor(t, "over the socket")
	// ann's sessions, as a site's "online now" asks for them; newsbot has none.
	if r := mustCall("sessions", `{"jid": "ann@localhost"}`); len(r.Sessions) != 1 || r.Sessions[0].Resource == "" || !r.Sessions[0].Available {
		t.Fatalf("ann's sessions: %+v", r.Sessions)
	}
	if r := mustCall("sessions", `{"jid": "newsbot@localhost"}`); len(r.Sessions) != 0 {
		t.Fatalf("newsbot's sessions: %+v", r.Sessions)
	}
	// The rooms, as vireoctl rooms lists them: the one ann just made, locked until she
	// configures it, with her in it; none on a service that is not there.
	ann.send(t, "<presence to='lobby@conference.localhost/ann'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
	ann.waitFor(t, "from=\"lobby@conference.localhost/ann\"", "code=\"201\"")
	for _, tc := range []struct {
		service string
		want    int
	}{{"", 1}, {"conference.localhost", 1}, {"chat.localhost", 0}} {
		resp, err := admin.Call(s.cfg.Admin.Socket, admin.Request{Op: "rooms", Domain: tc.service})
		if err != nil || resp.Error != "" || len(resp.Rooms) != tc.want {
			t.Fatalf("rooms %q: %+v, %v", tc.service, resp, err)
		}
		if r := resp.Rooms; tc.want == 1 && (r[0].JID != "lobby@conference.localhost" || r[0].Occupants != 1 || !r[0].Locked) {
			t.Fatalf("rooms %q: %+v", tc.service, r)
		}
	}
	// An announcement reaches every account online (ann), not those offline (newsbot).
	if r := mustCall("announce", `{"subject": "Maintenance", "body": "restarting at 22:00"}`); r.Count != 1 {
		t.Fatalf("announce: sent to %d, want 1 (ann)", r.Count)
	}
	ann.waitFor(t, "type=\"normal\"", ">Maintenance</subject>", "restarting at 22:00")
	if code, r := call("POST", "announce", apiToken, `{"domain": "elsewhere.example", "body": "x"}`); code != 400 || !strings.Contains(r.Error, "not served") {
		t.Fatalf("announce to a domain not served: %d %+v", code, r)
	}

	for _, c := range []struct {
		method, op, token, body string
		code                    int
		says                    string
	}{
		{"POST", "users", "", "{}", 401, "bearer token"},
		{"POST", "users", apiToken + "x", "{}", 401, "bearer token"},
		{"POST", "backup", apiToken, `{"path": "/tmp/x"}`, 404, "no such operation"},
		{"POST", "export", apiToken, `{}`, 404, "no such operation"},
		{"GET", "users", apiToken, "", 405, "POST"},
		{"POST", "users", apiToken, `{"jids": 1}`, 400, "unknown field"},
		{"POST", "passwd", apiToken, `{"jid": "ann@localhost", "password": "x", "path": "/etc"}`, 400, "path"},
		{"POST", "message", apiToken, `{"from": "ghost@localhost", "to": "ann@localhost", "body": "boo"}`, 400, "no such account"},
		{"POST", "message", apiToken, `{"from": "localhost", "to": "ann@localhost", "body": "bell\u0007"}`, 400, "XML cannot carry"},
	} {
		code, r := call(c.method, c.op, c.token, c.body)
		if code != c.code || !strings.Contains(r.Error, c.says) {
			t.Errorf("%s %s %s: %d %q; want %d mentioning %q", c.method, c.op, c.body, code, r.Error, c.code, c.says)
		}
	}
	users := mustCall("users", `{"domain": "localhost"}`).Users
	if strings.Join(users, ",") != "ann@localhost,newsbot@localhost,root@localhost" {
		t.Fatalf("users: %v", users)
	}

	// Removing an account ends its session.
	mustCall("deluser", `{"jid": "ann@localhost"}`)
	select {
	case <-ann.done:
	case <-time.After(10 * time.Second):
		t.Fatal("ann's session outlived her account")
	}
	if err := melliumLogin(t, s, "ann", "ann pw", msasl.ScramSha256); err == nil {
		t.Fatal("ann logged in after the API deleted her")
	}

	// api_allow without loopback: refused. No tokens: no API.
	path := s.cfg.Path()
	orig, _ := os.ReadFile(path)
	os.WriteFile(path, []byte(strings.Replace(string(orig), `api_tokens = [`, `api_allow = ["10.0.0.0/8"]`+"\n"+`api_tokens = [`, 1)), 0o600)
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if code, r := call("POST", "users", apiToken, "{}"); code != 403 || !strings.Contains(r.Error, "api_allow") {
		t.Fatalf("from outside api_allow: %d %+v", code, r)
	}
	os.WriteFile(path, []byte(strings.Replace(string(orig), `api_tokens = ["`+apiToken+`"]`, "", 1)), 0o600)
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", api+"users", strings.NewReader("{}"))
	req.Header.Set("Authorization", "Bearer "+apiToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 404 {
		t.Fatalf("without tokens: %d, want 404", res.StatusCode)
	}
}
