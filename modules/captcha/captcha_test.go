package captcha

import (
	"bytes"
	"image/png"
	"os"
	"strings"
	"testing"
	"time"
)

func TestChallenge(t *testing.T) {
	now := time.Now()
	c, err := New(now)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(c.PNG))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != Width || b.Dy() != Height {
		t.Fatalf("image %v", b)
	}
	if len(c.answer) != Letters || strings.Trim(c.answer, alphabet) != "" {
		t.Fatalf("text %q", c.answer)
	}
	if !strings.HasPrefix(c.CID(), "sha1+") || !strings.HasSuffix(c.CID(), "@bob.xmpp.org") || len(c.CID()) != 5+40+13 {
		t.Fatalf("cid %q", c.CID())
	}
	spaced := strings.ToLower(c.answer[:3]) + " " + c.answer[3:]
	for _, tc := range []struct {
		answer string
		at     time.Time
		want   bool
	}{
		{c.answer, now, true},
		{spaced, now.Add(time.Minute), true}, // case and spaces do not matter
		{c.answer[:Letters-1], now, false},
		{c.answer + "A", now, false},
		{"", now, false},
		{c.answer, now.Add(TTL + time.Second), false}, // expired
	} {
		if got := c.Check(tc.answer, tc.at); got != tc.want {
			t.Errorf("Check(%q) = %v, want %v", tc.answer, got, tc.want)
		}
	}
	if d := os.Getenv("CAPTCHA_DUMP"); d != "" { // to look at one: CAPTCHA_DUMP=/tmp/c.png
		os.WriteFile(d, c.PNG, 0o644)
		t.Logf("%s: %q, %d bytes", d, c.answer, len(c.PNG))
	}
}

// TestDifferent: two challenges differ in text and image.
func TestDifferent(t *testing.T) {
	a, _ := New(time.Now())
	b, _ := New(time.Now())
	if a.ID == b.ID || bytes.Equal(a.PNG, b.PNG) {
		t.Fatal("two challenges alike")
	}
}

func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}
