package webpage

import (
	"net/http/httptest"
	"testing"
)

func TestSameOrigin(t *testing.T) {
	for _, tc := range []struct {
		origin, host string
		want         bool
	}{
		{"", "chat.example.org", true}, // not a browser
		{"https://chat.example.org", "chat.example.org", true},
		{"https://Chat.Example.org:5443", "chat.example.org:5443", true},
		{"https://evil.example", "chat.example.org", false},
		{"null", "chat.example.org", false}, // what browsers send under no-referrer
		{"https://chat.example.org:5443", "chat.example.org", false},
	} {
		r := httptest.NewRequest("POST", "https://"+tc.host+"/x", nil)
		r.Host = tc.host
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		if got := SameOrigin(r); got != tc.want {
			t.Errorf("Origin %q to %q: %v, want %v", tc.origin, tc.host, got, tc.want)
		}
	}
	w := httptest.NewRecorder()
	Harden(w.Header())
	if w.Header().Get("Content-Security-Policy") != CSP || w.Header().Get("Referrer-Policy") != "same-origin" {
		t.Fatalf("headers %v", w.Header())
	}
}
