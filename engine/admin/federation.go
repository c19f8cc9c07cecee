package admin

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/vireo-im/vireo/xmlstream/jid"
)

// FederationEditor is what a Backend adds to change the federation lists ([s2s] deny and
// allow): a running server applies a change at once and writes it to its config file;
// vireoctl with the server stopped edits the file. The same lists are XEP-0133's
// blacklist and whitelist.
type FederationEditor interface {
	FederationLists() (deny, allow []string)
	// SetFederationList replaces one list (allow: the allow list) and returns it as the
	// server reads it (domains prepared).
	SetFederationList(allow bool, domains []string) ([]string, error)
}

// Federation runs the federation op on list ("deny" or "allow"): "list" (or "") returns
// it; "add" and "remove" change it by one domain ("*.example.org" for every subdomain of
// example.org), and return it as it now is.
func Federation(b Backend, list, action, domain string) ([]string, error) {
	if list != "deny" && list != "allow" {
		return nil, fmt.Errorf("s2s: unknown list %q (deny, allow)", list)
	}
	f, ok := b.(FederationEditor)
	if !ok {
		return nil, errors.New("the federation lists cannot be changed here")
	}
	deny, allow := f.FederationLists()
	cur := deny
	if list == "allow" {
		cur = allow
	}
	if action == "" || action == "list" {
		return cur, nil
	}
	if action != "add" && action != "remove" {
		return nil, fmt.Errorf("s2s %s: unknown action %q (list, add, remove)", list, action)
	}
	base, wild := strings.CutPrefix(domain, "*.")
	d, err := jid.PrepareDomain(base)
	if err != nil || d == "" {
		return nil, fmt.Errorf("%q is not a domain, nor *.domain: %v", domain, err)
	}
	if wild {
		d = "*." + d
	}
	next := slices.Clone(cur)
	i := slices.Index(next, d)
	switch {
	case action == "add" && i >= 0:
		return cur, nil
	case action == "add":
		next = append(next, d)
	case i < 0:
		return nil, fmt.Errorf("%s is not on the %s list", d, list)
	default:
		next = slices.Delete(next, i, i+1)
	}
	return f.SetFederationList(list == "allow", next)
}
