package module

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// TestHostSettings: the server's settings and each host's are decoded and checked apart,
// a host without a table gets the server's, and an error names the host's table.
func TestHostSettings(t *testing.T) {
	type cfg struct{ N int }
	tables := map[string]cfg{"b.org": {N: 2}, "c.org": {N: 3}}
	rc := Reconfig{
		Decode: func(v any) error { *v.(*cfg) = cfg{N: 1}; return nil },
		Hosts:  []string{"b.org", "c.org"},
		DecodeHost: func(h string, v any) error {
			*v.(*cfg) = tables[h]
			return nil
		},
	}
	var seen []string
	set, err := DecodeSettings(rc, func(host string, c *cfg) error {
		seen = append(seen, host)
		c.N *= 10
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(seen, []string{"", "b.org", "c.org"}) {
		t.Fatalf("checked %q", seen)
	}
	for host, want := range map[string]int{"a.org": 10, "b.org": 20, "c.org": 30, "": 10} {
		if got := set.For(host).N; got != want {
			t.Errorf("%q: %d, want %d", host, got, want)
		}
	}
	if !slices.Equal(set.Hosts(), []string{"b.org", "c.org"}) || set.All().N != 10 {
		t.Fatalf("hosts %v, all %+v", set.Hosts(), set.All())
	}

	derived, err := DeriveSettings(rc, func(host string, c *cfg) (*string, error) {
		s := strings.Repeat("x", c.N)
		return &s, nil
	})
	if err != nil || *derived.For("c.org") != "xxx" || *derived.For("z.org") != "x" {
		t.Fatalf("derived: %v", err)
	}
	_, err = DeriveSettings(rc, func(host string, c *cfg) (*string, error) {
		if c.N == 3 {
			return nil, errors.New("three is too many")
		}
		return new(string), nil
	})
	if err == nil || !strings.Contains(err.Error(), `vhosts."c.org": three is too many`) {
		t.Fatalf("error: %v", err)
	}
	none, err := DecodeSettings[cfg](Reconfig{Decode: rc.Decode}, nil)
	if err != nil || none.For("b.org").N != 1 || len(none.Hosts()) != 0 {
		t.Fatalf("without host tables: %+v, %v", none, err)
	}
}
