package tlsrec

import (
	"bufio"
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
)

// rfc8448 reads the known answers of RFC 8448 §3 from testdata.
func rfc8448(t testing.TB) map[string][]byte {
	t.Helper()
	f, err := os.Open("testdata/rfc8448.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m := map[string][]byte{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, val, ok := strings.Cut(line, ": ")
		if !ok {
			t.Fatalf("bad line %q", line)
		}
		b, err := hex.DecodeString(val)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		m[name] = b
	}
	return m
}

// wire collects what a Conn writes.
type wire struct{ bytes.Buffer }

func (w *wire) write(p []byte) error { w.Write(p); return nil }

func (w *wire) take() []byte {
	b := append([]byte(nil), w.Bytes()...)
	w.Reset()
	return b
}

// pair returns two connected ends: a is the server (reads the client secret), b the client.
func pair(t testing.TB, id uint16) (a, b *Conn, aw, bw *wire) {
	t.Helper()
	n := suiteByID(id).hashLen
	cs, ss := bytes.Repeat([]byte{1}, n), bytes.Repeat([]byte{2}, n)
	aw, bw = &wire{}, &wire{}
	var err error
	if a, err = New(id, cs, ss, 0, 0, aw.write); err != nil {
		t.Fatal(err)
	}
	if b, err = New(id, ss, cs, 0, 0, bw.write); err != nil {
		t.Fatal(err)
	}
	return a, b, aw, bw
}

func collect(t testing.TB, c *Conn, data []byte) (string, error) {
	t.Helper()
	var got bytes.Buffer
	err := c.Open(data, func(p []byte) { got.Write(p) })
	return got.String(), err
}

func TestRFC8448(t *testing.T) {
	v := rfc8448(t)
	var w wire
	c, err := New(TLS_AES_128_GCM_SHA256, v["client_app_traffic_secret"], v["server_app_traffic_secret"], 0, 1, w.write)
	if err != nil {
		t.Fatal(err)
	}
	// Keys and IVs from the secrets (HKDF-Expand-Label).
	for _, kv := range []struct {
		name string
		got  []byte
	}{
		{"server_app_write_key", c.out.key[:16]}, {"server_app_write_iv", c.out.iv[:]},
		{"client_app_write_key", c.in.key[:16]}, {"client_app_write_iv", c.in.iv[:]},
	} {
		if !bytes.Equal(kv.got, v[kv.name]) {
			t.Errorf("%s = %x, want %x", kv.name, kv.got, v[kv.name])
		}
	}
	// The server's NewSessionTicket (sequence 0 under its key) is what a handover counts.
	p, err := NewProbe(TLS_AES_128_GCM_SHA256, v["server_app_traffic_secret"])
	if err != nil {
		t.Fatal(err)
	}
	if !p.Try(v["server_nst_record"]) || !p.Try(v["server_appdata_record"]) || p.Try(v["server_appdata_record"]) {
		t.Fatal("probe did not count the RFC's server records in order")
	}
	// The client's application data opens; the server's is sealed to the same bytes.
	got, err := collect(t, c, append([]byte(nil), v["client_appdata_record"]...))
	if err != nil || got != string(v["client_appdata_payload"]) {
		t.Fatalf("client record: %x, %v", got, err)
	}
	if _, err := c.Write(v["server_appdata_payload"]); err != nil {
		t.Fatal(err)
	}
	if out := w.take(); !bytes.Equal(out, v["server_appdata_record"]) {
		t.Fatalf("server record\n got %x\nwant %x", out, v["server_appdata_record"])
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if out := w.take(); !bytes.Equal(out, v["server_alert_record"]) {
		t.Fatalf("close_notify\n got %x\nwant %x", out, v["server_alert_record"])
	}
	if _, err := collect(t, c, append([]byte(nil), v["client_alert_record"]...)); err != io.EOF {
		t.Fatalf("client close_notify: %v, want EOF", err)
	}
}

func TestRoundTripSuites(t *testing.T) {
	for _, id := range []uint16{TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256} {
		a, b, aw, bw := pair(t, id)
		big := bytes.Repeat([]byte("0123456789abcdef"), 5000) // 80,000 bytes: five records, the last short
		msgs := [][]byte{[]byte("<message/>"), big, []byte("x")}
		var want bytes.Buffer
		for _, m := range msgs {
			want.Write(m)
			if _, err := a.Write(m); err != nil {
				t.Fatal(err)
			}
		}
		recs := aw.take()
		// Every record is at most 2^14 of plaintext: check the lengths on the wire.
		for r := recs; len(r) > 0; {
			n := int(r[3])<<8 | int(r[4])
			if n > maxPlaintext+1+tagLen {
				t.Fatalf("%#04x: record of %d bytes", id, n)
			}
			r = r[hdrLen+n:]
		}
		// Fed one byte at a time, then all at once.
		var got bytes.Buffer
		for i := range recs {
			if err := b.Open(recs[i:i+1], func(p []byte) { got.Write(p) }); err != nil {
				t.Fatalf("%#04x byte %d: %v", id, i, err)
			}
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("%#04x: bytewise got %d bytes, want %d", id, got.Len(), want.Len())
		}
		b.Write([]byte("pong"))
		if s, err := collect(t, a, bw.take()); err != nil || s != "pong" {
			t.Fatalf("%#04x: reply %q %v", id, s, err)
		}
	}
}

func TestKeyUpdate(t *testing.T) {
	for _, request := range []bool{false, true} {
		a, b, aw, bw := pair(t, TLS_AES_128_GCM_SHA256)
		first := b.out.secret
		a.Write([]byte("before"))
		if err := a.KeyUpdate(request); err != nil {
			t.Fatal(err)
		}
		a.Write([]byte("after"))
		s, err := collect(t, b, aw.take())
		if err != nil || s != "beforeafter" {
			t.Fatalf("request=%v: %q %v", request, s, err)
		}
		// The requested side answered with its own update, under the old key.
		b.Write([]byte("reply"))
		answer := bw.take()
		s, err = collect(t, a, answer)
		if err != nil || s != "reply" {
			t.Fatalf("request=%v: reply %q %v", request, s, err)
		}
		// Each side's sending key moved only when it had to, and the other side followed.
		if (b.out.secret != first) != request || a.in.secret != b.out.secret || b.in.secret != a.out.secret {
			t.Fatalf("request=%v: secrets out of step", request)
		}
	}
}

func TestOwnKeyUpdateBeforeLimit(t *testing.T) {
	a, b, aw, _ := pair(t, TLS_AES_128_GCM_SHA256)
	a.out.seq = keyUpdateAfter - 1
	b.in.seq = keyUpdateAfter - 1
	a.Write([]byte("one")) // reaches the limit: an update follows
	a.Write([]byte("two"))
	if _, ws := a.Seqs(); ws != 1 {
		t.Fatalf("write seq after the limit = %d, want 1 (a new key)", ws)
	}
	if s, err := collect(t, b, aw.take()); err != nil || s != "onetwo" {
		t.Fatalf("%q %v", s, err)
	}
}

func TestPadding(t *testing.T) {
	a, b, _, _ := pair(t, TLS_CHACHA20_POLY1305_SHA256)
	inner := append([]byte("padded"), typeApplication)
	inner = append(inner, make([]byte, 100)...)
	rec, err := a.sealInner(nil, inner, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := collect(t, b, rec); err != nil || s != "padded" {
		t.Fatalf("%q %v", s, err)
	}
}

func TestBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		rec  func(a *Conn) []byte
		want error
	}{
		{"tampered", func(a *Conn) []byte {
			r, _ := a.seal(nil, typeApplication, []byte("hello"))
			r[7] ^= 1
			return r
		}, AlertBadRecordMAC},
		{"tampered header", func(a *Conn) []byte {
			r, _ := a.seal(nil, typeApplication, []byte("hello"))
			r[1] ^= 1 // the header is additional data: authenticated, though ignored
			return r
		}, AlertBadRecordMAC},
		{"replayed", func(a *Conn) []byte {
			r, _ := a.seal(nil, typeApplication, []byte("hello"))
			return append(r, r...)
		}, AlertBadRecordMAC},
		{"plaintext change_cipher_spec", func(*Conn) []byte { return []byte{20, 3, 3, 0, 1, 1} }, AlertUnexpectedMessage},
		{"plaintext alert", func(*Conn) []byte { return []byte{21, 3, 3, 0, 2, 2, 40} }, AlertUnexpectedMessage},
		{"oversized ciphertext", func(*Conn) []byte {
			const n = maxCiphertext + 1
			return append([]byte{23, 3, 3, n >> 8, n & 0xff}, make([]byte, n)...)
		}, AlertRecordOverflow},
		{"oversized plaintext", func(a *Conn) []byte {
			r, _ := a.sealInner(nil, append(make([]byte, maxPlaintext+1), typeApplication), nil)
			return r
		}, AlertRecordOverflow},
		{"all padding", func(a *Conn) []byte { r, _ := a.sealInner(nil, make([]byte, 10), nil); return r }, AlertUnexpectedMessage},
		{"inner change_cipher_spec", func(a *Conn) []byte { r, _ := a.seal(nil, 20, []byte{1}); return r }, AlertUnexpectedMessage},
		{"unknown inner type", func(a *Conn) []byte { r, _ := a.seal(nil, 99, []byte{1}); return r }, AlertUnexpectedMessage},
		{"empty handshake", func(a *Conn) []byte { r, _ := a.seal(nil, typeHandshake, nil); return r }, AlertUnexpectedMessage},
		{"new session ticket from the client", func(a *Conn) []byte {
			r, _ := a.seal(nil, typeHandshake, []byte{4, 0, 0, 4, 0, 0, 0, 0})
			return r
		}, AlertUnexpectedMessage},
		{"certificate request", func(a *Conn) []byte { r, _ := a.seal(nil, typeHandshake, []byte{13, 0, 0, 0}); return r }, AlertUnexpectedMessage},
		{"key update with a long body", func(a *Conn) []byte {
			r, _ := a.seal(nil, typeHandshake, []byte{24, 0, 0, 2, 0, 0})
			return r
		}, AlertDecodeError},
		{"key update bad value", func(a *Conn) []byte { r, _ := a.seal(nil, typeHandshake, []byte{24, 0, 0, 1, 2}); return r }, AlertIllegalParameter},
		{"key update not at record end", func(a *Conn) []byte {
			r, _ := a.seal(nil, typeHandshake, []byte{24, 0, 0, 1, 0, 24, 0, 0, 1, 0})
			return r
		}, AlertUnexpectedMessage},
		{"handshake fragment then data", func(a *Conn) []byte {
			r, _ := a.seal(nil, typeHandshake, []byte{24, 0})
			r, _ = a.seal(r, typeApplication, []byte("x"))
			return r
		}, AlertUnexpectedMessage},
		{"zero-length alert", func(a *Conn) []byte { r, _ := a.seal(nil, typeAlert, nil); return r }, AlertUnexpectedMessage},
		{"a run of empty records", func(a *Conn) []byte {
			var r []byte
			for range maxUseless + 1 {
				r, _ = a.seal(r, typeApplication, nil)
			}
			return r
		}, AlertUnexpectedMessage},
		{"a run of warnings", func(a *Conn) []byte {
			var r []byte
			for range maxUseless + 1 {
				r, _ = a.seal(r, typeAlert, []byte{1, byte(AlertUserCanceled)})
			}
			return r
		}, AlertUnexpectedMessage},
		{"alert of three bytes", func(a *Conn) []byte { r, _ := a.seal(nil, typeAlert, []byte{2, 40, 0}); return r }, AlertDecodeError},
		{"fatal alert from the peer", func(a *Conn) []byte { r, _ := a.seal(nil, typeAlert, []byte{2, 40}); return r }, PeerAlert(40)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b, _, bw := pair(t, TLS_AES_128_GCM_SHA256)
			_, err := collect(t, b, tc.rec(a))
			if err != tc.want {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			// Our own faults are reported to the peer, and the connection stays dead.
			if al, ok := tc.want.(Alert); ok {
				if _, perr := collect(t, a, bw.take()); perr != PeerAlert(al) {
					t.Fatalf("peer read %v, want %v", perr, PeerAlert(al))
				}
				if _, err := b.Write([]byte("x")); err == nil {
					t.Fatal("write after a fatal alert")
				}
			}
			if _, err2 := collect(t, b, nil); err2 != err {
				t.Fatalf("second Open = %v, want the same error", err2)
			}
		})
	}
}

func TestUserCanceledIsAWarning(t *testing.T) {
	a, b, _, _ := pair(t, TLS_AES_128_GCM_SHA256)
	r, _ := a.seal(nil, typeAlert, []byte{1, byte(AlertUserCanceled)})
	r, _ = a.seal(r, typeApplication, []byte("still here"))
	if s, err := collect(t, b, r); err != nil || s != "still here" {
		t.Fatalf("%q %v", s, err)
	}
}

// TestKeyUpdateFlood: each requested KeyUpdate costs the server two key derivations and a
// record of its own; a run of them with no data between is refused, while as many with
// data between are not.
func TestKeyUpdateFlood(t *testing.T) {
	a, b, aw, _ := pair(t, TLS_CHACHA20_POLY1305_SHA256)
	for range maxUseless * 2 {
		a.Write([]byte("x"))
		if err := a.KeyUpdate(true); err != nil {
			t.Fatal(err)
		}
	}
	if s, err := collect(t, b, aw.take()); err != nil || len(s) != maxUseless*2 {
		t.Fatalf("updates between data: %d bytes, %v", len(s), err)
	}
	for range maxUseless + 1 {
		if err := a.KeyUpdate(true); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := collect(t, b, aw.take()); err != AlertUnexpectedMessage {
		t.Fatalf("a run of updates: %v, want unexpected_message", err)
	}
}

// TestEmptyRecordsThenData: up to the limit, records without data are taken.
func TestEmptyRecordsThenData(t *testing.T) {
	a, b, _, _ := pair(t, TLS_AES_128_GCM_SHA256)
	var r []byte
	for range maxUseless {
		r, _ = a.seal(r, typeApplication, nil)
	}
	r, _ = a.seal(r, typeApplication, []byte("data"))
	if s, err := collect(t, b, r); err != nil || s != "data" {
		t.Fatalf("%q %v", s, err)
	}
}

func TestRelease(t *testing.T) {
	a, b, aw, _ := pair(t, TLS_AES_256_GCM_SHA384)
	a.Write([]byte("x"))
	collect(t, b, aw.take())
	a.Release() // used since the last call: kept
	if a.out.aead == nil {
		t.Fatal("released a cipher in use")
	}
	a.Release() // idle for a whole period: dropped
	b.Release()
	b.Release()
	if a.out.aead != nil || b.in.aead != nil {
		t.Fatal("idle ciphers kept")
	}
	a.Write([]byte("again")) // built again on use
	if s, err := collect(t, b, aw.take()); err != nil || s != "again" {
		t.Fatalf("%q %v", s, err)
	}
}

func TestNewRejects(t *testing.T) {
	if _, err := New(0x1304, make([]byte, 32), make([]byte, 32), 0, 0, nil); err == nil {
		t.Fatal("unknown suite accepted")
	}
	if _, err := New(TLS_AES_256_GCM_SHA384, make([]byte, 32), make([]byte, 32), 0, 0, nil); err == nil {
		t.Fatal("short SHA-384 secret accepted")
	}
	var a Alert = AlertBadRecordMAC
	if !errors.As(error(a), new(Alert)) || !strings.Contains(a.Error(), "bad_record_mac") {
		t.Fatal(a.Error())
	}
}

func FuzzOpen(f *testing.F) {
	a, _, aw, _ := pair(f, TLS_AES_128_GCM_SHA256)
	a.Write([]byte("<message to='a@b'><body>hi</body></message>"))
	f.Add(aw.take())
	r, _ := a.seal(nil, typeHandshake, []byte{24, 0, 0, 1, 1})
	f.Add(r)
	f.Add([]byte{23, 3, 3, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		_, b, _, _ := pair(t, TLS_AES_128_GCM_SHA256)
		// Half now, half later: the carried-record path sees the input too.
		h := len(data) / 2
		err := b.Open(append([]byte(nil), data[:h]...), func([]byte) {})
		if err == nil {
			b.Open(append([]byte(nil), data[h:]...), func([]byte) {})
		}
	})
}

// TestExpandLabel checks the one-block HKDF-Expand-Label against crypto/hkdf for every
// suite's hash, label and output length used here, and for secrets of every length up to
// the hash's block.
func TestExpandLabel(t *testing.T) {
	for _, s := range suites {
		h := sha256.New
		if s.hashLen == sha512.Size384 {
			h = sha512.New384
		}
		for _, label := range []string{"key", "iv", "traffic upd", "finished", "c ap traffic"} {
			for _, n := range []int{12, 16, 32, s.hashLen} {
				for _, slen := range []int{0, 1, s.hashLen, 64} {
					secret := make([]byte, slen)
					for i := range secret {
						secret[i] = byte(i*7 + n)
					}
					full := "tls13 " + label
					info := binary.BigEndian.AppendUint16(nil, uint16(n))
					info = append(info, byte(len(full)))
					info = append(info, full...)
					info = append(info, 0)
					want, err := hkdf.Expand(h, secret, string(info), n)
					if err != nil {
						t.Fatal(err)
					}
					got := make([]byte, n)
					s.expandLabel(got, secret, label)
					if !bytes.Equal(got, want) {
						t.Fatalf("suite %#04x %q n=%d secret %d bytes: got %x, want %x", s.id, label, n, slen, got, want)
					}
				}
			}
		}
	}
}

func BenchmarkExpandLabel(b *testing.B) {
	s := suiteByID(TLS_AES_128_GCM_SHA256)
	secret := bytes.Repeat([]byte{3}, s.hashLen)
	var out [16]byte
	b.ReportAllocs()
	for b.Loop() {
		s.expandLabel(out[:], secret, "key")
	}
}

// TestTrickleHoldsWhatCame: a record that comes a few bytes at a time is held in a buffer
// the size of what came, not of the 16 KiB its header declares, and still opens whole.
func TestTrickleHoldsWhatCame(t *testing.T) {
	a, b, aw, _ := pair(t, TLS_CHACHA20_POLY1305_SHA256)
	a.Write(bytes.Repeat([]byte("y"), 16000))
	rec := aw.take()
	var got strings.Builder
	for i := 0; i < len(rec); i += 7 {
		if err := b.Open(rec[i:min(i+7, len(rec))], func(p []byte) { got.Write(p) }); err != nil {
			t.Fatal(err)
		}
		if i == 0 && (b.partial == nil || cap(b.partial.B) > 64) {
			t.Fatalf("7 bytes of a record held in %d", cap(b.partial.B))
		}
	}
	if got.Len() != 16000 {
		t.Fatalf("opened %d bytes", got.Len())
	}
}
