package engine_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/vireo-im/vireo/engine"
	"github.com/vireo-im/vireo/engine/vireotest"
)

// TestACMEHTTP01Route: the web listener serves a pending HTTP-01 key authorization at
// /.well-known/acme-challenge/<token> and 404 for anything else under that path.
func TestACMEHTTP01Route(t *testing.T) {
	srv := vireotest.Start(t, vireotest.Options{Web: engine.Web{
		ACMEChallenge: func(token string) (string, bool) {
			if token == "tok-1" {
				return "tok-1.thumbprint", true
			}
			return "", false
		},
	}})
	base := "http://" + srv.WebAddr() + engine.ACMEChallengePrefix
	for _, tc := range []struct {
		method, token string
		code          int
		body          string
	}{
		{"GET", "tok-1", 200, "tok-1.thumbprint"},
		{"HEAD", "tok-1", 200, ""},
		{"GET", "tok-2", 404, ""},
		{"GET", "", 404, ""},
		{"GET", "tok-1/x", 404, ""},
		{"POST", "tok-1", 405, ""},
	} {
		req, _ := http.NewRequest(tc.method, base+tc.token, nil)
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if r.StatusCode != tc.code || tc.code == 200 && string(b) != tc.body {
			t.Errorf("%s %s: %d %q; want %d %q", tc.method, tc.token, r.StatusCode, b, tc.code, tc.body)
		}
	}
}
