package router_test

import (
	"testing"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/router/routertest"
)

// formMod keeps one XEP-0128 form whose field a reload changes, as the contact module
// does with its addresses.
type formMod struct{}

type formConfig struct{ Addr string }

func init() { module.Register(formMod{}) }

func (formMod) ModuleInfo() module.Info {
	return module.Info{ID: "test_form", New: func() module.Module { return formMod{} }}
}

func (m formMod) Provision(r module.Registrar) error { return module.Configure(r, m) }

func (formMod) Reconfigure(rc module.Reconfig) (func(), error) {
	var c formConfig
	if err := rc.Decode(&c); err != nil {
		return nil, err
	}
	f := module.Form{Type: "urn:test:form"}
	if c.Addr != "" {
		f.Fields = []module.FormField{{Var: "addr", Values: []string{c.Addr}}}
	}
	return func() { rc.InfoForm(f) }, nil
}

// TestReconfigureInfoForm: a form replaced at a reload changes the server's XEP-0115
// verification string to what a server started with the new form computes, and back; a
// form emptied at a reload is gone, as if never registered.
func TestReconfigureInfoForm(t *testing.T) {
	st := routertest.New(t, nil, nil).Store
	start := func(addr string) *router.Router {
		r, err := router.New(router.Options{Domains: []string{"example.org"}, Store: st, Modules: []string{"test_form"},
			ModuleConfig: func(id string, v any) error {
				if c, ok := v.(*formConfig); ok {
					c.Addr = addr
				}
				return nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r
	}
	r := start("mailto:a@example.org")
	verA, verB, verNone := r.CapsVer(), start("mailto:b@example.org").CapsVer(), start("").CapsVer()
	if verA == verB || verA == verNone || verB == verNone {
		t.Fatalf("verification strings do not differ: %s %s %s", verA, verB, verNone)
	}
	reload := func(addr string) {
		t.Helper()
		apply, ok, err := r.Reconfigure("test_form", module.Reconfig{Decode: func(v any) error {
			v.(*formConfig).Addr = addr
			return nil
		}})
		if err != nil || !ok {
			t.Fatalf("reconfigure: %v %v", ok, err)
		}
		apply()
	}
	for _, step := range []struct {
		addr, want string
	}{{"mailto:b@example.org", verB}, {"mailto:a@example.org", verA}, {"", verNone}, {"mailto:b@example.org", verB}} {
		reload(step.addr)
		if got := r.CapsVer(); got != step.want {
			t.Fatalf("after a reload to %q: ver %s, want %s", step.addr, got, step.want)
		}
	}
}
