// Package contact implements XEP-0157: Contact Addresses for XMPP Services, and XEP-0455:
// Service Outage Status. The operator's addresses for abuse reports, administration,
// feedback, sales, security and support go into the server's disco#info as the
// http://jabber.org/network/serverinfo form, where clients, other servers' operators and
// provider directories look for them; the addresses of the outage status document, hosted
// elsewhere so that it answers while the server does not, go there as the urn:xmpp:sos:0
// form, which clients read while connected and fetch when they cannot connect.
//
// It owns only those forms, built from [modules.contact] and, for a virtual host that
// has its own addresses, [vhosts."<host>".modules.contact]; it adds none when no address
// is configured, and it neither checks that an address reaches anybody nor writes the
// status document.
package contact

import (
	"fmt"
	"net/url"

	"github.com/vireo-im/vireo/modules/module"
)

// FormType is the FORM_TYPE of XEP-0157's form; SOSFormType XEP-0455's.
const (
	FormType    = "http://jabber.org/network/serverinfo"
	SOSFormType = "urn:xmpp:sos:0"
)

func init() { module.Register(Mod{}) }

// Config is [modules.contact]: URIs ("mailto:abuse@example.org", "xmpp:admin@example.org",
// "https://example.org/support") per role.
type Config struct {
	Abuse    []string `toml:"abuse"`
	Admin    []string `toml:"admin"`
	Feedback []string `toml:"feedback"`
	Sales    []string `toml:"sales"`
	Security []string `toml:"security"`
	Status   []string `toml:"status"`
	Support  []string `toml:"support"`
	// ExternalStatus are the https URLs of the XEP-0455 outage status document.
	ExternalStatus []string `toml:"external_status"`
}

// Mod is the module.
type Mod struct{}

// ModuleInfo implements module.Module.
func (Mod) ModuleInfo() module.Info {
	return module.Info{ID: "contact", XEP: 157, New: func() module.Module { return new(Mod) }, PerHost: true}
}

// Provision checks the addresses and registers the form.
func (m *Mod) Provision(r module.Registrar) error { return module.Configure(r, m) }

var _ module.Reconfigurer = (*Mod)(nil)

// Reconfigure implements module.Reconfigurer: the addresses change at a reload, and with
// them the server's disco#info and its XEP-0115 verification string. A host with a
// [vhosts."<host>".modules.contact] table shows its own forms: a role it names replaces
// the server's addresses for that role, the others it keeps.
func (m *Mod) Reconfigure(rc module.Reconfig) (func(), error) {
	type forms struct{ contact, sos module.Form }
	built := map[string]forms{}
	if _, err := module.DecodeSettings(rc, func(host string, cfg *Config) error {
		f, sos, err := build(cfg)
		built[host] = forms{f, sos}
		return err
	}); err != nil {
		return nil, err
	}
	return func() {
		rc.InfoForm(built[""].contact)
		rc.InfoForm(built[""].sos)
		if rc.HostInfoForms == nil {
			return
		}
		contact, sos := map[string]module.Form{}, map[string]module.Form{}
		for h, f := range built {
			if h != "" {
				contact[h], sos[h] = f.contact, f.sos
			}
		}
		rc.HostInfoForms(FormType, contact)
		rc.HostInfoForms(SOSFormType, sos)
	}, nil
}

// build makes the two forms of cfg; one without fields says there is none.
func build(cfg *Config) (f, sos module.Form, err error) {
	f = module.Form{Type: FormType}
	for _, role := range []struct {
		name  string
		addrs []string
	}{
		{"abuse", cfg.Abuse}, {"admin", cfg.Admin}, {"feedback", cfg.Feedback}, {"sales", cfg.Sales},
		{"security", cfg.Security}, {"status", cfg.Status}, {"support", cfg.Support},
	} {
		if len(role.addrs) == 0 {
			continue
		}
		for _, a := range role.addrs {
			u, err := url.Parse(a)
			if err != nil || u.Scheme == "" || u.Opaque == "" && u.Host == "" {
				return f, sos, fmt.Errorf("contact: %s address %q: want a URI such as mailto:%s@example.org or xmpp:%s@example.org", role.name, a, role.name, role.name)
			}
		}
		f.Fields = append(f.Fields, module.FormField{Var: role.name + "-addresses", Values: role.addrs})
	}
	sos = module.Form{Type: SOSFormType}
	for _, a := range cfg.ExternalStatus {
		if u, err := url.Parse(a); err != nil || u.Scheme != "https" || u.Host == "" {
			return f, sos, fmt.Errorf("contact: external_status %q: want an https URL (XEP-0455)", a)
		}
	}
	if len(cfg.ExternalStatus) > 0 {
		sos.Fields = []module.FormField{{Var: "external-status-addresses", Values: cfg.ExternalStatus}}
	}
	return f, sos, nil
}
