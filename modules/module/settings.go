package module

import (
	"fmt"
	"slices"
)

// HostSettings are a module's settings on every virtual host: the server-wide ones, and
// those of the hosts whose [vhosts."<host>".modules.<id>] table changes something. It is
// read-only once made; a reload makes a new one, which the module swaps in atomically.
type HostSettings[T any] struct {
	all   *T
	hosts map[string]*T
	names []string // the keys of hosts, sorted
}

// For returns host's settings: its own, or the server-wide ones. Without host tables it
// is one length check.
func (s *HostSettings[T]) For(host string) *T {
	if len(s.hosts) > 0 {
		if t, ok := s.hosts[host]; ok {
			return t
		}
	}
	return s.all
}

// All returns the server-wide settings.
func (s *HostSettings[T]) All() *T { return s.all }

// Hosts lists the hosts with settings of their own, sorted (read-only).
func (s *HostSettings[T]) Hosts() []string { return s.names }

// DecodeSettings decodes a module's settings for the server and for each host of
// rc.Hosts, each into a fresh T (so a host's maps and slices are its own), and checks
// each with check (host "" for the server-wide ones), which may also normalize them. An
// error names the table it came from.
func DecodeSettings[T any](rc Reconfig, check func(host string, t *T) error) (*HostSettings[T], error) {
	var zero T
	return DecodeDefaults(rc, zero, check)
}

// DecodeDefaults is DecodeSettings for settings whose zero value means something (0 for
// "off"): each table is decoded over a copy of def, so that a key no table sets keeps
// def's value. def's maps and slices are shared by the copies.
func DecodeDefaults[T any](rc Reconfig, def T, check func(host string, t *T) error) (*HostSettings[T], error) {
	fresh := func() *T { t := def; return &t }
	s := &HostSettings[T]{all: fresh()}
	if err := rc.Decode(s.all); err != nil {
		return nil, err
	}
	if check != nil {
		if err := check("", s.all); err != nil {
			return nil, err
		}
	}
	for _, h := range rc.Hosts {
		t := fresh()
		if err := rc.DecodeHost(h, t); err != nil {
			return nil, err
		}
		if check != nil {
			if err := check(h, t); err != nil {
				return nil, fmt.Errorf("vhosts.%q: %w", h, err)
			}
		}
		if s.hosts == nil {
			s.hosts = map[string]*T{}
		}
		s.hosts[h] = t
	}
	return NewHostSettings(s.all, s.hosts), nil
}

// NewHostSettings makes HostSettings from settings built some other way (derived from a
// decoded table, say); hosts may be nil.
func NewHostSettings[T any](all *T, hosts map[string]*T) *HostSettings[T] {
	s := &HostSettings[T]{all: all, hosts: hosts}
	for h := range hosts {
		s.names = append(s.names, h)
	}
	slices.Sort(s.names)
	return s
}

// DeriveSettings is DecodeSettings for a module that keeps what it builds from its
// table rather than the table: derive builds it from the server-wide table (host "",
// always first, so derive may keep it to compare the hosts' with) and from each host's.
// An error names the table it came from.
func DeriveSettings[T, S any](rc Reconfig, derive func(host string, t *T) (*S, error)) (*HostSettings[S], error) {
	var all *S
	var hosts map[string]*S
	_, err := DecodeSettings(rc, func(host string, t *T) error {
		s, err := derive(host, t)
		if err != nil {
			return err
		}
		if host == "" {
			all = s
			return nil
		}
		if hosts == nil {
			hosts = map[string]*S{}
		}
		hosts[host] = s
		return nil
	})
	if err != nil {
		return nil, err
	}
	return NewHostSettings(all, hosts), nil
}
