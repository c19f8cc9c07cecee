// Package hints implements XEP-0334: Message Processing Hints: the feature, and helpers
// that other modules (offline, carbons, archive) use to honour no-store, no-copy, store.
package hints

import (
	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/ns"
)

func init() { module.Register(Mod{}) }

// Mod is the module.
type Mod struct{}

// ModuleInfo implements module.Module.
func (Mod) ModuleInfo() module.Info {
	return module.Info{ID: "hints", XEP: 334, New: func() module.Module { return new(Mod) }}
}

// Provision advertises the feature.
func (m *Mod) Provision(r module.Registrar) error {
	r.Feature(ns.Hints)
	return nil
}

func has(e xmlstream.Element, name string) bool {
	_, ok := e.Child(ns.Hints, name)
	return ok
}

// NoCopy reports <no-copy/>.
func NoCopy(e xmlstream.Element) bool { return has(e, "no-copy") }

// NoStore reports <no-store/> or <no-permanent-store/>.
func NoStore(e xmlstream.Element) bool { return has(e, "no-store") || has(e, "no-permanent-store") }

// Store reports <store/>.
func Store(e xmlstream.Element) bool { return has(e, "store") }
