// Package contact implements XEP-0157: Contact Addresses for XMPP Services, and XEP-0455:
// Service Outage Status. The operator's addresses for abuse reports, administration,
// feedback, sales, security and support go into the server's disco#info as the
// http://jabber.org/network/serverinfo form, where clients, other servers' operators and
// provider directories look for them; the addresses of the outage status document, hosted
// elsewhere so that it answers while the server does not, go there as the urn:xmpp:sos:0
// form, which clients read while connected and fetch when they cannot connect.
//
// It owns only those forms, built from [modules.contact]; it adds none when no address is
// configured, and it neither checks that an address reaches anybody, nor writes the
// status document, nor serves a different form per virtual host.
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
	return module.Info{ID: "contact", XEP: 157, New: func() module.Module { return new(Mod) }}
}

// Provision checks the addresses and registers the form.
func (m *Mod) Provision(r module.Registrar) error { return module.Configure(r, m) }

var _ module.Reconfigurer = (*Mod)(nil)

// Reconfigure implements module.Reconfigurer: the addresses change at a reload, and with
// them the server's disco#info and its XEP-0115 verification string.
func (m *Mod) Reconfigure(rc module.Reconfig) (func(), error) {
	var cfg Config
	if err := rc.Decode(&cfg); err != nil {
		return nil, err
	}
	f := module.Form{Type: FormType}
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
				return nil, fmt.Errorf("contact: %s address %q: want a URI such as mailto:%s@example.org or xmpp:%s@example.org", role.name, a, role.name, role.name)
			}
		}
		f.Fields = append(f.Fields, module.FormField{Var: role.name + "-addresses", Values: role.addrs})
	}
	sos := module.Form{Type: SOSFormType}
	for _, a := range cfg.ExternalStatus {
		if u, err := url.Parse(a); err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, fmt.Errorf("contact: external_status %q: want an https URL (XEP-0455)", a)
		}
	}
	if len(cfg.ExternalStatus) > 0 {
		sos.Fields = []module.FormField{{Var: "external-status-addresses", Values: cfg.ExternalStatus}}
	}
	return func() { rc.InfoForm(f); rc.InfoForm(sos) }, nil
}
