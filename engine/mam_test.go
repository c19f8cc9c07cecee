package engine_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vireo-im/vireo/engine/vireotest"
)

var (
	mamResultRe = regexp.MustCompile(`<result xmlns='urn:xmpp:mam:2' queryid='([^']*)' id='([^']+)'><forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' stamp='([^']+)'/><message [^>]*>(?:<body>([^<]*)</body>)?`)
	mamSIDRe    = regexp.MustCompile(`<stanza-id xmlns='urn:xmpp:sid:0' id='([^']+)' by='([^']+)'/>`)
)

// mamResult is one archived message as a query returned it.
type mamResult struct{ id, stamp, body string }

// mamQuery sends an archive query on r and returns the results and the IQ answer.
func mamQuery(t *testing.T, r *vireotest.RawConn, qid, inner string) ([]mamResult, string) {
	t.Helper()
	r.Send("<iq type='set' id='iq-" + qid + "'><query xmlns='urn:xmpp:mam:2' queryid='" + qid + "'>" + inner + "</query></iq>")
	got := r.Expect("id='iq-" + qid + "'")
	fin := got[strings.LastIndex(got, "<iq "):] + r.Expect("</iq>")
	var out []mamResult
	for _, m := range mamResultRe.FindAllStringSubmatch(got, -1) {
		if m[1] != qid {
			t.Fatalf("result of query %q in the answer to %q", m[1], qid)
		}
		out = append(out, mamResult{id: m[2], stamp: m[3], body: m[4]})
	}
	return out, fin
}

func bodies(rs []mamResult) string {
	var b []string
	for _, r := range rs {
		b = append(b, r.body)
	}
	return strings.Join(b, ",")
}

func mamForm(fields ...string) string {
	s := "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>"
	for i := 0; i+1 < len(fields); i += 2 {
		s += "<field var='" + fields[i] + "'><value>" + fields[i+1] + "</value></field>"
	}
	return s + "</x>"
}

func rsmSet(inner string) string {
	return "<set xmlns='http://jabber.org/protocol/rsm'>" + inner + "</set>"
}

// TestIntegrationMam: alice and bob exchange messages through the real server; each
// queries their archive by contact, time and RSM pages (after, before, max, index,
// flip-page); the ids are the stanza-ids that were delivered; carol sees none of it and
// may not read alice's archive; after a restart on the same data directory the archive
// is the same.
func TestIntegrationMam(t *testing.T) {
	dir := t.TempDir()
	const n = 10
	delivered := map[string]string{} // body -> stanza-id the recipient got
	var aliceAll []mamResult

	t.Run("Exchange", func(t *testing.T) {
		srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, Dir: dir})
		srv.AddUser(t, "alice", "secret")
		srv.AddUser(t, "bob", "secret")
		srv.AddUser(t, "carol", "secret")
		a := srv.LoginPlain(t, "alice", "secret", "pc")
		b := srv.LoginPlain(t, "bob", "secret", "phone")
		c := srv.LoginPlain(t, "carol", "secret", "x")
		for i := 0; i < n; i++ {
			from, to, toJID, by := a, b, "bob@localhost/phone", "bob@localhost"
			if i%2 == 1 {
				from, to, toJID, by = b, a, "alice@localhost/pc", "alice@localhost"
			}
			body := fmt.Sprint("m", i)
			from.Send("<message to='" + toJID + "' type='chat' id='c" + body + "'><body>" + body + "</body></message>")
			got := to.Expect("<body>" + body + "</body>")
			got += to.Expect("</message>")
			m := mamSIDRe.FindStringSubmatch(got[strings.LastIndex(got, "<message"):])
			if m == nil || m[2] != by {
				t.Fatalf("%s delivered without stanza-id by %s: %q", body, by, got)
			}
			delivered[body] = m[1]
			time.Sleep(3 * time.Millisecond) // distinct millisecond stamps for the time filters
		}
		c.Send("<message to='alice@localhost/pc' type='chat'><body>from carol</body></message>")
		a.Expect("from carol")
		a.Send("<message to='carol@localhost/x' type='chat'><body>to carol</body></message>")
		c.Expect("to carol")

		// Everything, in order; received messages under the stanza-id delivered.
		var fin string
		aliceAll, fin = mamQuery(t, a, "all", "")
		if bodies(aliceAll) != "m0,m1,m2,m3,m4,m5,m6,m7,m8,m9,from carol,to carol" || !strings.Contains(fin, "complete='true'") ||
			!strings.Contains(fin, "<count>12</count>") {
			t.Fatalf("alice's archive: %s\n%s", bodies(aliceAll), fin)
		}
		bobAll, _ := mamQuery(t, b, "all", mamForm("with", "alice@localhost"))
		if bodies(bobAll) != "m0,m1,m2,m3,m4,m5,m6,m7,m8,m9" {
			t.Fatalf("bob's archive: %s", bodies(bobAll))
		}
		for i := 0; i < n; i++ {
			body := fmt.Sprint("m", i)
			archived := aliceAll[i].id // odd ones alice received
			if i%2 == 0 {
				archived = bobAll[i].id // even ones bob received
			}
			if archived != delivered[body] {
				t.Errorf("%s: archive id %s, delivered stanza-id %s", body, archived, delivered[body])
			}
			if aliceAll[i].id == bobAll[i].id {
				t.Errorf("%s has the same id in both archives", body)
			}
		}

		for _, tc := range []struct {
			name, inner, want, fin string
		}{
			{"with bare", mamForm("with", "bob@localhost"), "m0,m1,m2,m3,m4,m5,m6,m7,m8,m9", "<count>10</count>"},
			{"with full", mamForm("with", "bob@localhost/phone"), "m0,m1,m2,m3,m4,m5,m6,m7,m8,m9", "complete='true'"},
			{"with other resource", mamForm("with", "bob@localhost/laptop"), "", "<count>0</count>"},
			{"with carol", mamForm("with", "carol@localhost"), "from carol,to carol", "<count>2</count>"},
			{"start end", mamForm("start", aliceAll[3].stamp, "end", aliceAll[6].stamp), "m3,m4,m5,m6", "<first index='0'>"},
			{"start", mamForm("with", "bob@localhost", "start", aliceAll[8].stamp), "m8,m9", "complete='true'"},
			{"max", rsmSet("<max>3</max>"), "m0,m1,m2", "complete='false'"},
			{"after", rsmSet("<max>3</max><after>" + aliceAll[2].id + "</after>"), "m3,m4,m5", "<first index='3'>"},
			{"last page", rsmSet("<max>3</max><before/>"), "m9,from carol,to carol", "<first index='9'>"},
			{"before", rsmSet("<max>3</max><before>" + aliceAll[5].id + "</before>"), "m2,m3,m4", "complete='false'"},
			{"index", mamForm("with", "bob@localhost") + rsmSet("<max>2</max><index>4</index>"), "m4,m5", "<first index='4'>"},
			{"flip", mamForm("with", "bob@localhost") + rsmSet("<max>3</max><before/>") + "<flip-page/>", "m9,m8,m7", "<first index='7'>" + aliceAll[7].id},
			{"after-id before-id", mamForm("after-id", aliceAll[1].id, "before-id", aliceAll[4].id), "m2,m3", "complete='true'"},
			{"ids", "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:mam:2</value></field><field var='ids'><value>" +
				aliceAll[7].id + "</value><value>" + aliceAll[0].id + "</value></field></x>", "m0,m7", "<count>2</count>"},
		} {
			got, fin := mamQuery(t, a, strings.ReplaceAll(tc.name, " ", "-"), tc.inner)
			if bodies(got) != tc.want || !strings.Contains(fin, tc.fin) {
				t.Errorf("%s: %s\n%s\nwant %s and %s", tc.name, bodies(got), fin, tc.want, tc.fin)
			}
		}
		// Paging through the whole archive forwards and backwards, three at a time.
		for _, backward := range []bool{false, true} {
			var all []mamResult
			cursor := ""
			for i := 0; i < 10; i++ {
				set := "<max>3</max>" + cursor
				if backward && cursor == "" {
					set += "<before/>"
				}
				page, fin := mamQuery(t, a, fmt.Sprint("page", i), rsmSet(set))
				if backward {
					all = append(page, all...)
				} else {
					all = append(all, page...)
				}
				if strings.Contains(fin, "complete='true'") {
					break
				}
				if backward {
					cursor = "<before>" + page[0].id + "</before>"
				} else {
					cursor = "<after>" + page[len(page)-1].id + "</after>"
				}
			}
			if bodies(all) != bodies(aliceAll) {
				t.Errorf("paging (backward %v): %s", backward, bodies(all))
			}
		}

		// Carol's archive holds her two messages only; alice's is not hers to read.
		carolAll, _ := mamQuery(t, c, "all", "")
		if bodies(carolAll) != "from carol,to carol" {
			t.Fatalf("carol's archive: %s", bodies(carolAll))
		}
		if got, _ := mamQuery(t, c, "bob", mamForm("with", "bob@localhost")); len(got) != 0 {
			t.Fatalf("carol sees %s", bodies(got))
		}
		if _, fin := mamQuery(t, c, "steal", rsmSet("<after>"+aliceAll[2].id+"</after>")); !strings.Contains(fin, "item-not-found") {
			t.Fatalf("carol paging from alice's id: %s", fin)
		}
		c.Send("<iq type='set' id='other' to='alice@localhost'><query xmlns='urn:xmpp:mam:2' queryid='other'/></iq>")
		if got := c.Expect("id='other'"); strings.Contains(got, "<result") || !strings.Contains(c.Expect("</iq>"), "<forbidden") {
			t.Fatalf("carol querying alice's archive: %q", got)
		}
		a.Send("<iq type='get' id='meta'><metadata xmlns='urn:xmpp:mam:2'/></iq>")
		meta := a.Expect("id='meta'") + a.Expect("</iq>")
		if !strings.Contains(meta, "<start id='"+aliceAll[0].id+"' timestamp='"+aliceAll[0].stamp+"'/>") ||
			!strings.Contains(meta, "<end id='"+aliceAll[11].id+"'") {
			t.Fatalf("metadata: %s", meta)
		}
	})
	if t.Failed() {
		return
	}
	t.Run("AfterRestart", func(t *testing.T) {
		srv := vireotest.Start(t, vireotest.Options{AllowPlain: true, Dir: dir})
		a := srv.LoginPlain(t, "alice", "secret", "pc")
		got, _ := mamQuery(t, a, "again", "")
		if fmt.Sprint(got) != fmt.Sprint(aliceAll) {
			t.Fatalf("after restart:\n%v\nbefore:\n%v", got, aliceAll)
		}
		// New messages go after the old ones.
		b := srv.LoginPlain(t, "bob", "secret", "phone")
		b.Send("<message to='alice@localhost/pc' type='chat'><body>after restart</body></message>")
		a.Expect("after restart")
		got, _ = mamQuery(t, a, "last", rsmSet("<max>2</max><before/>"))
		if bodies(got) != "to carol,after restart" {
			t.Fatalf("last page after restart: %s", bodies(got))
		}
	})
}

// TestIntegrationSlixmppMam: slixmpp's XEP-0313 plugin reads the form and the metadata and
// pages through the history that arrived while it was offline with its RSM iterator,
// forwards, and backwards (where slixmpp stops after the last page, see the script); the
// archive ids are the stanza-ids of the offline copies it got.
func TestIntegrationSlixmppMam(t *testing.T) {
	needSlixmpp(t)
	srv := vireotest.Start(t, vireotest.Options{AllowPlain: true})
	srv.AddUser(t, "slix", "py secret")
	srv.AddUser(t, "bob", "secret")
	bob := srv.LoginPlain(t, "bob", "secret", "pc")
	for i := 0; i < 5; i++ {
		bob.Send(fmt.Sprintf("<message to='slix@localhost' type='chat'><body>hist %d</body></message>", i))
	}
	// Stored (offline and in the archive) once bob's ping to slix's bare JID comes back.
	bob.Send("<iq type='get' id='sync' to='slix@localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	bob.Expect("id='sync'")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := slixCmd(t, ctx, srv, "slixmpp_mam.py")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for sc := bufio.NewScanner(out); sc.Scan(); {
		lines = append(lines, sc.Text())
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("slixmpp: %v\n%s", err, strings.Join(lines, "\n"))
	}
	live := map[string]string{} // body -> stanza-id
	var results, last []string
	var fields, meta string
	for _, l := range lines {
		f := strings.SplitN(l, " ", 3)
		switch f[0] {
		case "LIVE":
			live[f[2]] = f[1]
		case "RESULT":
			results = append(results, f[2])
			if live[f[2]] != f[1] {
				t.Errorf("%q: archive id %s, offline copy's stanza-id %q", f[2], f[1], live[f[2]])
			}
		case "LAST":
			last = append(last, f[2])
		case "FIELDS":
			fields = l
		case "META":
			meta = l
		}
	}
	if strings.Join(results, "|") != "hist 0|hist 1|hist 2|hist 3|hist 4" || strings.Join(last, "|") != "hist 4|hist 3" {
		t.Fatalf("slixmpp output:\n%s", strings.Join(lines, "\n"))
	}
	if fields != "FIELDS FORM_TYPE after-id before-id end ids start with" {
		t.Errorf("form: %q", fields)
	}
	if meta != "META "+live["hist 0"]+" "+live["hist 4"] {
		t.Errorf("metadata %q, want the ids of hist 0 and hist 4", meta)
	}
}
