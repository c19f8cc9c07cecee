package welcome_test

import (
	"strings"
	"testing"

	"github.com/rs/zerolog"

	_ "github.com/vireo-im/vireo/modules/standard"
	"github.com/vireo-im/vireo/modules/welcome"
	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/store/pebblestore"
)

// TestProvision: a message longer than MaxMessage fails the start, naming the table; an
// empty one (the default) leaves the module off without complaint.
func TestProvision(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		fail bool
	}{{"", false}, {"hello", false}, {strings.Repeat("x", welcome.MaxMessage+1), true}} {
		st, err := pebblestore.Open(t.TempDir(), pebblestore.Options{Logger: zerolog.Nop()})
		if err != nil {
			t.Fatal(err)
		}
		r, err := router.New(router.Options{Domains: []string{"example.org"}, Store: st, Logger: zerolog.Nop(),
			ModuleConfig: func(id string, v any) error {
				if c, ok := v.(*welcome.Config); ok {
					c.Message = tc.msg
				}
				return nil
			}})
		if (err != nil) != tc.fail {
			t.Errorf("message of %d bytes: %v", len(tc.msg), err)
		}
		if err == nil {
			r.Close()
		} else if !strings.Contains(err.Error(), "welcome") {
			t.Errorf("error does not name the module: %v", err)
		}
		st.Close()
	}
}
