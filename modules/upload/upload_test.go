package upload

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store/pebblestore"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/stanza"
	"github.com/vireo-im/vireo/xmlstream/xmltest"
)

func TestUploadCleanFilename(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"photo.jpg", "photo.jpg", true},
		{"  spaced name.txt ", "spaced name.txt", true},
		{"Überraschung – 日本.png", "Überraschung – 日本.png", true},
		{".bashrc", "_bashrc", true},
		{"..", "_.", true},
		{"a:b*c?.txt", "a_b_c_.txt", true},
		{"100%#1.txt", "100__1.txt", true},
		{"evil\u202egpj.exe", "evil_gpj.exe", true},
		{"tab\there", "", false},
		{"../../etc/passwd", "", false},
		{"dir/file", "", false},
		{`C:\x.txt`, "", false},
		{"nul\x00.txt", "", false},
		{"", "", false},
		{"   ", "", false},
		{"bad\xffutf8", "", false},
		{strings.Repeat("a", 256), "", false},
		{strings.Repeat("a", 255), strings.Repeat("a", 255), true},
	} {
		got, ok := CleanFilename(tc.in)
		if ok != tc.ok || got != tc.want {
			t.Errorf("CleanFilename(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestUploadParseRequest(t *testing.T) {
	for _, tc := range []struct {
		xml  string
		want Request
		err  string // text of the bad-request, "" when accepted
	}{
		{`<request xmlns='urn:xmpp:http:upload:0' filename='a.jpg' size='23456' content-type='image/jpeg'/>`,
			Request{Filename: "a.jpg", Size: 23456, ContentType: "image/jpeg"}, ""},
		{`<request xmlns='urn:xmpp:http:upload:0' filename='a b&amp;c.txt' size='0'/>`,
			Request{Filename: "a b&c.txt"}, ""},
		{`<request xmlns='urn:xmpp:http:upload:0' filename='x' size='1' content-type='text/plain; charset=utf-8'/>`,
			Request{Filename: "x", Size: 1, ContentType: "text/plain; charset=utf-8"}, ""},
		{`<request xmlns='urn:xmpp:http:upload:0' size='1'/>`, Request{}, "missing filename"},
		{`<request xmlns='urn:xmpp:http:upload:0' filename='../x' size='1'/>`, Request{}, "unusable filename"},
		{`<request xmlns='urn:xmpp:http:upload:0' filename='x'/>`, Request{}, "missing size"},
		{`<request xmlns='urn:xmpp:http:upload:0' filename='x' size='-1'/>`, Request{}, "size must be a number of bytes"},
		{`<request xmlns='urn:xmpp:http:upload:0' filename='x' size='+1'/>`, Request{}, "size must be a number of bytes"},
		{`<request xmlns='urn:xmpp:http:upload:0' filename='x' size='1e3'/>`, Request{}, "size must be a number of bytes"},
		{`<request xmlns='urn:xmpp:http:upload:0' filename='x' size='99999999999999999999'/>`, Request{}, "size must be a number of bytes"},
		{`<request xmlns='urn:xmpp:http:upload:0' filename='x' size='1' content-type='nonsense'/>`, Request{}, "unusable content-type"},
		{`<request xmlns='urn:xmpp:http:upload:0' filename='x' size='1' content-type='text/plain&#10;X-Evil: 1'/>`, Request{}, "unusable content-type"},
	} {
		e, ok := xmltest.IQPayload([]byte(tc.xml))
		if !ok {
			t.Fatalf("%s: does not parse", tc.xml)
		}
		got, serr := ParseRequest(e)
		if tc.err != "" {
			if serr == nil || serr.Condition != stanza.BadRequest || serr.Text != tc.err {
				t.Errorf("%s: got %v, want bad-request %q", tc.xml, serr, tc.err)
			}
			continue
		}
		if serr != nil || got != tc.want {
			t.Errorf("%s: got %+v, %v; want %+v", tc.xml, got, serr, tc.want)
		}
	}
}

func TestUploadCheckPut(t *testing.T) {
	key := []byte(strings.Repeat("k", keySize))
	now := time.Unix(1_700_000_000, 0)
	base := slot{id: newSlotID(), name: "a.txt", ctype: "text/plain", owner: "alice@example.org", size: 5, expires: now.Add(time.Minute)}
	good := token(key, &base)
	other := base
	other.size = 6
	for _, tc := range []struct {
		name        string
		slot        slot
		auth, fname string
		length      int64
		ctype       string
		at          time.Time
		want        error
	}{
		{"ok", base, good, "a.txt", 5, "text/plain", now, nil},
		{"no token", base, "", "a.txt", 5, "text/plain", now, errBadToken},
		{"token of another slot", base, token(key, &other), "a.txt", 5, "text/plain", now, errBadToken},
		{"token under another key", base, token([]byte(strings.Repeat("x", keySize)), &base), "a.txt", 5, "text/plain", now, errBadToken},
		{"truncated token", base, good[:len(good)-1], "a.txt", 5, "text/plain", now, errBadToken},
		{"expired", base, good, "a.txt", 5, "text/plain", now.Add(time.Minute), errExpired},
		{"other name", base, good, "b.txt", 5, "text/plain", now, errName},
		{"short", base, good, "a.txt", 4, "text/plain", now, errSize},
		{"chunked", base, good, "a.txt", -1, "text/plain", now, errSize},
		{"other type", base, good, "a.txt", 5, "text/html", now, errContentType},
		{"no type", base, good, "a.txt", 5, "", now, errContentType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.slot
			if err := checkPut(key, &s, tc.auth, tc.fname, tc.length, tc.ctype, tc.at); !errors.Is(err, tc.want) {
				t.Fatalf("checkPut = %v, want %v", err, tc.want)
			}
		})
	}
	// A slot asked for without a content type takes any.
	s := base
	s.ctype = ""
	if err := checkPut(key, &s, token(key, &s), "a.txt", 5, "image/png", now); err != nil {
		t.Fatalf("untyped slot: %v", err)
	}
}

// newTestMod is a Mod without listener or router: data in a temporary directory, the
// store in memory, the clock at *now.
func newTestMod(t *testing.T, now *time.Time) *Mod {
	t.Helper()
	st, err := pebblestore.Open("db", pebblestore.Options{Logger: zerolog.Nop(), FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	m := &Mod{log: zerolog.Nop(), now: func() time.Time { return *now }}
	apply, err := m.Reconfigure(module.Reconfig{Decode: func(v any) error {
		*v.(*Config) = Config{Quota: 100, MaxFileSize: 60}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	apply()
	if err := m.open(t.TempDir(), st.Table("upload"), st.Table("uploadgone")); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestUploadGrant(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	m := newTestMod(t, &now)
	if _, serr := m.grant("a@x", Request{Filename: "f", Size: 61}, now); serr == nil || serr.Condition != stanza.NotAcceptable ||
		!strings.Contains(string(serr.AppCondition), "<max-file-size>60</max-file-size>") {
		t.Fatalf("oversize: %v %s", serr, serr.AppCondition)
	}
	if _, serr := m.grant("a@x", Request{Filename: "f", Size: 60}, now); serr != nil {
		t.Fatal(serr)
	}
	// 60 reserved of 100: another 41 is over quota, 40 fits; another user is not affected.
	if _, serr := m.grant("a@x", Request{Filename: "f", Size: 41}, now); serr == nil || serr.Condition != stanza.ResourceConstraintCond || serr.Type != stanza.Wait {
		t.Fatalf("over quota: %v", serr)
	}
	if _, serr := m.grant("b@x", Request{Filename: "f", Size: 41}, now); serr != nil {
		t.Fatal(serr)
	}
	// Expired slots give their reservation back.
	later := now.Add(DefaultSlotTTL)
	m.mu.Lock()
	m.expireLocked(later)
	m.mu.Unlock()
	if _, serr := m.grant("a@x", Request{Filename: "f", Size: 60}, later); serr != nil {
		t.Fatalf("after expiry: %v", serr)
	}
	// Unused slots are bounded per user.
	for i := 0; i < maxPendingPerUser; i++ {
		if _, serr := m.grant("c@x", Request{Filename: "f", Size: 0}, now); serr != nil {
			t.Fatal(serr)
		}
	}
	if _, serr := m.grant("c@x", Request{Filename: "f", Size: 0}, now); serr == nil || serr.Condition != stanza.ResourceConstraintCond {
		t.Fatalf("pending bound: %v", serr)
	}
}

func do(m *Mod, method, target, auth, ctype, body string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, target, strings.NewReader(body))
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	if ctype != "" {
		r.Header.Set("Content-Type", ctype)
	}
	w := httptest.NewRecorder()
	m.ServeHTTP(w, r)
	return w
}

func TestUploadHTTP(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	m := newTestMod(t, &now)
	sl, serr := m.grant("alice@x", Request{Filename: "hello world.txt", Size: 5, ContentType: "text/plain"}, now)
	if serr != nil {
		t.Fatal(serr)
	}
	auth := token(m.key, sl)
	path := "/" + sl.id + "/hello%20world.txt"

	if w := do(m, "OPTIONS", path, "", "", ""); w.Code != http.StatusNoContent ||
		w.Header().Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(w.Header().Get("Access-Control-Allow-Methods"), "PUT") ||
		!strings.Contains(w.Header().Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight: %d %v", w.Code, w.Header())
	}
	for _, tc := range []struct {
		name, method, path, auth, ctype, body string
		code                                  int
	}{
		{"bad token", "PUT", path, auth + "x", "text/plain", "hello", 403},
		{"wrong type", "PUT", path, auth, "text/html", "hello", 400},
		{"too long", "PUT", path, auth, "text/plain", "hello!", 400},
		{"other name", "PUT", "/" + sl.id + "/other.txt", auth, "text/plain", "hello", 400},
		{"unknown slot", "PUT", "/" + newSlotID() + "/hello%20world.txt", auth, "text/plain", "hello", 403},
		{"traversal", "PUT", "/" + sl.id + "/..%2f..%2fetc%2fpasswd", auth, "text/plain", "hello", 404},
		{"dot dot", "GET", "/" + sl.id + "/..", "", "", "", 404},
		{"not an id", "GET", "/../hello%20world.txt", "", "", "", 404},
		{"no name", "GET", "/" + sl.id + "/", "", "", "", 404},
		{"not yet stored", "GET", path, "", "", "", 404},
		{"post", "POST", path, auth, "text/plain", "hello", 405},
		// The refusals above left the slot usable.
		{"ok", "PUT", path, auth, "text/plain", "hello", 201},
		{"used", "PUT", path, auth, "text/plain", "hello", 409},
	} {
		if w := do(m, tc.method, tc.path, tc.auth, tc.ctype, tc.body); w.Code != tc.code {
			t.Fatalf("%s: %s %s = %d %q, want %d", tc.name, tc.method, tc.path, w.Code, w.Body, tc.code)
		}
	}
	w := do(m, "GET", path, "", "", "")
	if w.Code != 200 || w.Body.String() != "hello" || w.Header().Get("Content-Type") != "text/plain" ||
		w.Header().Get("Content-Disposition") != `attachment; filename="hello world.txt"` ||
		w.Header().Get("X-Content-Type-Options") != "nosniff" || w.Header().Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("GET: %d %q %v", w.Code, w.Body, w.Header())
	}
	if got, _ := os.ReadFile(filepath.Join(m.dir, sl.id, "hello world.txt")); string(got) != "hello" {
		t.Fatalf("on disk: %q", got)
	}
	if w := do(m, "GET", "/"+sl.id+"/other.txt", "", "", ""); w.Code != 404 {
		t.Fatalf("GET by another name: %d", w.Code)
	}
	m.mu.Lock()
	used, reserved := m.mu.used["alice@x"], m.mu.reserved["alice@x"]
	m.mu.Unlock()
	if used != 5 || reserved != 0 {
		t.Fatalf("usage %d reserved %d, want 5 and 0", used, reserved)
	}

	// Expired slot: refused and forgotten.
	sl2, _ := m.grant("alice@x", Request{Filename: "late.bin", Size: 1}, now)
	now = now.Add(DefaultSlotTTL)
	if w := do(m, "PUT", "/"+sl2.id+"/late.bin", token(m.key, sl2), "", "x"); w.Code != 403 {
		t.Fatalf("expired slot: %d", w.Code)
	}
	// Past retention the file is gone for GET at once, and the sweep removes it.
	now = now.Add(DefaultRetention)
	if w := do(m, "GET", path, "", "", ""); w.Code != 404 {
		t.Fatalf("GET past retention: %d", w.Code)
	}
	if n := m.sweep(now, nil); n != 1 {
		t.Fatalf("sweep removed %d, want 1", n)
	}
	if _, err := os.Stat(filepath.Join(m.dir, sl.id)); !os.IsNotExist(err) {
		t.Fatalf("directory kept: %v", err)
	}
	m.mu.Lock()
	used = m.mu.used["alice@x"]
	m.mu.Unlock()
	if used != 0 {
		t.Fatalf("usage after sweep %d", used)
	}
}

// TestUploadSweepOrphans: a directory no record knows (a crash in a PUT) goes once it is
// older than a slot's lifetime; a fresh one stays.
func TestUploadSweepOrphans(t *testing.T) {
	now := time.Now()
	m := newTestMod(t, &now)
	old, fresh := newSlotID(), newSlotID()
	for _, id := range []string{old, fresh} {
		os.Mkdir(filepath.Join(m.dir, id), 0o700)
		os.WriteFile(filepath.Join(m.dir, id, partName), []byte("x"), 0o600)
	}
	past := now.Add(-2 * DefaultSlotTTL)
	os.Chtimes(filepath.Join(m.dir, old), past, past)
	os.Mkdir(filepath.Join(m.dir, "not-a-slot"), 0o700)
	if n := m.sweep(now, nil); n != 1 {
		t.Fatalf("sweep removed %d, want 1", n)
	}
	for id, want := range map[string]bool{old: false, fresh: true, "not-a-slot": true} {
		if _, err := os.Stat(filepath.Join(m.dir, id)); (err == nil) != want {
			t.Errorf("%s: exists %v, want %v", id, err == nil, want)
		}
	}
}

// TestUploadUsageSurvivesRestart: the quota counts files stored before a restart.
func TestUploadUsageSurvivesRestart(t *testing.T) {
	now := time.Now()
	m := newTestMod(t, &now)
	rec := record{owner: "a@x", name: "f", ctype: "text/plain", size: 42, created: now}
	if err := m.t.Set([]byte(newSlotID()), rec.encode()); err != nil {
		t.Fatal(err)
	}
	m2 := &Mod{log: zerolog.Nop(), now: m.now}
	if err := m2.open(filepath.Dir(m.dir), m.t, m.gone); err != nil {
		t.Fatal(err)
	}
	if m2.mu.used["a@x"] != 42 || string(m2.key) != string(m.key) {
		t.Fatalf("used %d, same key %v", m2.mu.used["a@x"], string(m2.key) == string(m.key))
	}
	if got, ok := parseRecord(rec.encode()); !ok || got.size != 42 || got.created.UnixMilli() != now.UnixMilli() {
		t.Fatalf("record round trip: %+v %v", got, ok)
	}
	if fi, err := os.Stat(filepath.Join(filepath.Dir(m.dir), "upload.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
}

func TestUploadDisposition(t *testing.T) {
	for ct, want := range map[string]string{
		"image/jpeg": "inline", "video/mp4": "inline", "audio/ogg; codecs=opus": "inline",
		"image/svg+xml": "attachment", "text/html": "attachment", "application/pdf": "attachment", "": "attachment",
	} {
		if got := disposition(ct); got != want {
			t.Errorf("disposition(%q) = %s, want %s", ct, got, want)
		}
	}
}

// TestUploadPublicURLPath: with public_url "https://example.org/files" a reverse proxy may
// pass the path on or strip it; both reach the file.
func TestUploadPublicURLPath(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	m := newTestMod(t, &now)
	m.prefix = "/files"
	sl, _ := m.grant("alice@x", Request{Filename: "a.png", Size: 3, ContentType: "image/png"}, now)
	if w := do(m, "PUT", "/files/"+sl.id+"/a.png", token(m.key, sl), "image/png", "png"); w.Code != 201 {
		t.Fatalf("PUT under the prefix: %d %s", w.Code, w.Body)
	}
	for _, p := range []string{"/files/" + sl.id + "/a.png", "/" + sl.id + "/a.png"} {
		if w := do(m, "GET", p, "", "", ""); w.Code != 200 || w.Body.String() != "png" || w.Header().Get("Content-Disposition") != `inline; filename=a.png` {
			t.Fatalf("GET %s: %d %v", p, w.Code, w.Header())
		}
	}
}

// TestUploadAccountRemoved: the files of a removed account go at the sweeper's next
// wake-up, with their rows and the account's usage; another account's stay.
func TestUploadAccountRemoved(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	m := newTestMod(t, &now)
	ids := map[string]string{}
	for _, owner := range []string{"alice@x", "bob@x"} {
		sl, serr := m.grant(owner, Request{Filename: "f.txt", Size: 2, ContentType: "text/plain"}, now)
		if serr != nil {
			t.Fatal(serr)
		}
		if w := do(m, "PUT", "/"+sl.id+"/f.txt", token(m.key, sl), "text/plain", "hi"); w.Code != 201 {
			t.Fatalf("PUT: %d", w.Code)
		}
		ids[owner] = sl.id
	}
	m.wake = make(chan struct{}, 1)
	alice, _ := jid.Parse("alice@x")
	m.removed(module.Removal{User: alice})
	select {
	case <-m.wake:
	default:
		t.Fatal("the sweeper was not woken")
	}
	m.mu.Lock()
	owners := m.mu.removed
	m.mu.Unlock()
	if n := m.sweep(now, owners); n != 1 {
		t.Fatalf("sweep removed %d, want 1", n)
	}
	for owner, want := range map[string]int{"alice@x": 404, "bob@x": 200} {
		if w := do(m, "GET", "/"+ids[owner]+"/f.txt", "", "", ""); w.Code != want {
			t.Errorf("%s's file: %d, want %d", owner, w.Code, want)
		}
	}
	m.mu.Lock()
	used := m.mu.used["alice@x"]
	m.mu.Unlock()
	if used != 0 {
		t.Fatalf("alice's usage after removal: %d", used)
	}
}

// TestUploadAccountRemovedSlotsAndRestart: a removed account's pending slots go with it
// (no PUT after the removal), and its files go even when the server stops before the
// sweeper got to them: the removal is on record until they are deleted.
func TestUploadAccountRemovedSlotsAndRestart(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	m := newTestMod(t, &now)
	stored, serr := m.grant("alice@x", Request{Filename: "f.txt", Size: 2, ContentType: "text/plain"}, now)
	if serr != nil {
		t.Fatal(serr)
	}
	if w := do(m, "PUT", "/"+stored.id+"/f.txt", token(m.key, stored), "text/plain", "hi"); w.Code != 201 {
		t.Fatalf("PUT: %d", w.Code)
	}
	pending, serr := m.grant("alice@x", Request{Filename: "g.txt", Size: 2, ContentType: "text/plain"}, now)
	if serr != nil {
		t.Fatal(serr)
	}
	alice, _ := jid.Parse("alice@x")
	m.removed(module.Removal{User: alice}) // and the server stops before the sweeper runs
	if w := do(m, "PUT", "/"+pending.id+"/g.txt", token(m.key, pending), "text/plain", "hi"); w.Code != 403 {
		t.Fatalf("PUT on a removed account's slot: %d", w.Code)
	}
	m2 := &Mod{log: zerolog.Nop(), now: m.now}
	m2.lim.Store(m.lim.Load())
	if err := m2.open(filepath.Dir(m.dir), m.t, m.gone); err != nil {
		t.Fatal(err)
	}
	m2.mu.Lock()
	owners := m2.mu.removed
	m2.mu.removed = nil
	m2.mu.Unlock()
	if n := m2.sweep(now, owners); n != 1 {
		t.Fatalf("the first sweep after the restart removed %d, want 1", n)
	}
	if w := do(m2, "GET", "/"+stored.id+"/f.txt", "", "", ""); w.Code != 404 {
		t.Fatalf("the removed account's file: %d", w.Code)
	}
	n := 0
	m2.gone.Scan(nil, func(_, _ []byte) bool { n++; return true })
	if n != 0 || len(m2.mu.gone) != 0 {
		t.Fatalf("the removal still on record after its files went: %d, %v", n, m2.mu.gone)
	}
}
