package contact

import (
	"slices"
	"strings"
	"testing"

	"github.com/vireo-im/vireo/modules/module"
)

type fakeReg struct {
	module.Registrar
	cfg       Config
	forms     []module.Form
	hostCfg   map[string]Config
	hostForms map[string]map[string]module.Form // FORM_TYPE → host → form
}

func (r *fakeReg) Config(v any) error       { *v.(*Config) = r.cfg; return nil }
func (r *fakeReg) InfoForms() []module.Form { return r.forms }
func (r *fakeReg) Domains() []string        { return nil }

// InfoForm keeps the router's rule: a form replaces the one of its type, and a form
// without fields removes it.
func (r *fakeReg) InfoForm(f module.Form) {
	r.forms = slices.DeleteFunc(r.forms, func(x module.Form) bool { return x.Type == f.Type })
	if len(f.Fields) > 0 {
		r.forms = append(r.forms, f)
	}
}

// TestReconfigure: a reload replaces the addresses, one without any removes the form,
// and a bad address fails the reload with the form in force unchanged.
func TestReconfigure(t *testing.T) {
	r := &fakeReg{cfg: Config{Abuse: []string{"mailto:a@example.org"}}}
	m := new(Mod)
	if err := m.Provision(r); err != nil {
		t.Fatal(err)
	}
	reload := func(cfg Config) error {
		apply, err := m.Reconfigure(module.Reconfig{Decode: func(v any) error { *v.(*Config) = cfg; return nil }, InfoForm: r.InfoForm})
		if err == nil {
			apply()
		}
		return err
	}
	fields := func() string {
		var out []string
		for _, f := range r.forms {
			for _, fl := range f.Fields {
				out = append(out, fl.Var+"="+strings.Join(fl.Values, ","))
			}
		}
		return strings.Join(out, " ")
	}
	if err := reload(Config{Abuse: []string{"mailto:b@example.org"}, Security: []string{"mailto:s@example.org"}}); err != nil {
		t.Fatal(err)
	}
	if got, want := fields(), "abuse-addresses=mailto:b@example.org security-addresses=mailto:s@example.org"; got != want {
		t.Fatalf("after the reload: %s, want %s", got, want)
	}
	if err := reload(Config{Abuse: []string{"b@example.org"}}); err == nil {
		t.Fatal("a bare address was taken at a reload")
	}
	if got, want := fields(), "abuse-addresses=mailto:b@example.org security-addresses=mailto:s@example.org"; got != want {
		t.Fatalf("after a failed reload: %s, want %s", got, want)
	}
	if err := reload(Config{}); err != nil || len(r.forms) != 0 {
		t.Fatalf("no addresses: %v, forms %+v", err, r.forms)
	}
}

// TestProvision: configured roles become the form's fields in XEP-0157's names, nothing
// configured adds no form, and an address that is not a URI is refused at start.
func TestProvision(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     Config
		fields  []string
		wantErr string
	}{
		{name: "none"},
		{name: "abuse and support", cfg: Config{Abuse: []string{"mailto:a@example.org", "xmpp:a@example.org"}, Support: []string{"https://example.org/help"}},
			fields: []string{"abuse-addresses=mailto:a@example.org,xmpp:a@example.org", "support-addresses=https://example.org/help"}},
		{name: "every role", cfg: Config{Abuse: []string{"mailto:1@x"}, Admin: []string{"mailto:2@x"}, Feedback: []string{"mailto:3@x"},
			Sales: []string{"mailto:4@x"}, Security: []string{"mailto:5@x"}, Status: []string{"https://status.x"}, Support: []string{"xmpp:6@x"}},
			fields: []string{"abuse-addresses=mailto:1@x", "admin-addresses=mailto:2@x", "feedback-addresses=mailto:3@x",
				"sales-addresses=mailto:4@x", "security-addresses=mailto:5@x", "status-addresses=https://status.x", "support-addresses=xmpp:6@x"}},
		{name: "bare address", cfg: Config{Abuse: []string{"abuse@example.org"}}, wantErr: "abuse address"},
		{name: "empty", cfg: Config{Admin: []string{""}}, wantErr: "admin address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &fakeReg{cfg: tc.cfg}
			err := new(Mod).Provision(r)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(tc.fields) == 0 {
				if len(r.forms) != 0 {
					t.Fatalf("form without addresses: %+v", r.forms)
				}
				return
			}
			if len(r.forms) != 1 || r.forms[0].Type != FormType {
				t.Fatalf("forms %+v", r.forms)
			}
			var got []string
			for _, f := range r.forms[0].Fields {
				got = append(got, f.Var+"="+strings.Join(f.Values, ","))
			}
			if strings.Join(got, " ") != strings.Join(tc.fields, " ") {
				t.Fatalf("fields %v, want %v", got, tc.fields)
			}
		})
	}
}

// TestOutageStatus: external_status goes into disco#info as XEP-0455's form, beside
// XEP-0157's; it takes https URLs only, and a reload without it removes the form.
func TestOutageStatus(t *testing.T) {
	r := &fakeReg{cfg: Config{ExternalStatus: []string{"https://status.example.net/xmpp.json"}}}
	m := new(Mod)
	if err := m.Provision(r); err != nil {
		t.Fatal(err)
	}
	if len(r.forms) != 1 || r.forms[0].Type != SOSFormType || r.forms[0].Fields[0].Var != "external-status-addresses" ||
		r.forms[0].Fields[0].Values[0] != "https://status.example.net/xmpp.json" {
		t.Fatalf("forms %+v", r.forms)
	}
	for _, bad := range []string{"http://status.example.net/x.json", "status.example.net", "mailto:a@b"} {
		if err := new(Mod).Provision(&fakeReg{cfg: Config{ExternalStatus: []string{bad}}}); err == nil || !strings.Contains(err.Error(), "external_status") {
			t.Fatalf("%q: err = %v", bad, err)
		}
	}
	apply, err := m.Reconfigure(module.Reconfig{Decode: func(v any) error { *v.(*Config) = Config{Abuse: []string{"mailto:a@x"}}; return nil }, InfoForm: r.InfoForm})
	if err != nil {
		t.Fatal(err)
	}
	apply()
	if len(r.forms) != 1 || r.forms[0].Type != FormType {
		t.Fatalf("after the reload: %+v", r.forms)
	}
}

// HostConfig hands out hosts' tables as the config would: the host's roles over the
// server's.
func (r *fakeReg) HostConfig() ([]string, func(string, any) error) {
	var hosts []string
	for h := range r.hostCfg {
		hosts = append(hosts, h)
	}
	slices.Sort(hosts)
	return hosts, func(h string, v any) error {
		c := r.cfg
		if x := r.hostCfg[h]; x.Abuse != nil {
			c.Abuse = x.Abuse
		}
		if x := r.hostCfg[h]; x.ExternalStatus != nil {
			c.ExternalStatus = x.ExternalStatus
		}
		*v.(*Config) = c
		return nil
	}
}

func (r *fakeReg) HostInfoForms(typ string, byHost map[string]module.Form) {
	if r.hostForms == nil {
		r.hostForms = map[string]map[string]module.Form{}
	}
	r.hostForms[typ] = byHost
}

// TestHostAddresses: a host with a table of its own gets its own forms, the role it
// names replaced and the others kept; hosts without one get none of their own; a bad
// address in a host's table fails, naming the host.
func TestHostAddresses(t *testing.T) {
	r := &fakeReg{cfg: Config{Abuse: []string{"mailto:abuse@example.org"}, Support: []string{"xmpp:help@example.org"}},
		hostCfg: map[string]Config{"corp.example": {Abuse: []string{"mailto:it@corp.example"}, ExternalStatus: []string{"https://status.corp.example/x.json"}}}}
	if err := new(Mod).Provision(r); err != nil {
		t.Fatal(err)
	}
	vals := func(f module.Form) string {
		var out []string
		for _, fl := range f.Fields {
			out = append(out, fl.Var+"="+strings.Join(fl.Values, ","))
		}
		return strings.Join(out, " ")
	}
	if got, want := vals(r.forms[0]), "abuse-addresses=mailto:abuse@example.org support-addresses=xmpp:help@example.org"; got != want {
		t.Errorf("server-wide: %s, want %s", got, want)
	}
	corp := r.hostForms[FormType]["corp.example"]
	if got, want := vals(corp), "abuse-addresses=mailto:it@corp.example support-addresses=xmpp:help@example.org"; got != want {
		t.Errorf("corp.example: %s, want %s", got, want)
	}
	if got := vals(r.hostForms[SOSFormType]["corp.example"]); got != "external-status-addresses=https://status.corp.example/x.json" {
		t.Errorf("corp.example outage form: %s", got)
	}
	if len(r.hostForms[FormType]) != 1 {
		t.Errorf("host forms %v", r.hostForms[FormType])
	}
	bad := &fakeReg{hostCfg: map[string]Config{"corp.example": {Abuse: []string{"it@corp.example"}}}}
	if err := new(Mod).Provision(bad); err == nil || !strings.Contains(err.Error(), `"corp.example"`) {
		t.Fatalf("bad host address: %v", err)
	}
}
