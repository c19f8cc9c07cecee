package admin

import (
	"errors"
	"fmt"
	"slices"

	"github.com/vireo-im/vireo/xmlstream/jid"
)

// HostManager is what a Backend adds to change the virtual hosts: a running server adds
// and removes them at once and writes them to its config file; vireoctl with the server
// stopped only edits the file.
type HostManager interface {
	// AddHost serves domain (prepared with NextHosts) from now on and across restarts.
	AddHost(domain string) error
	// RemoveHost stops serving domain; its sessions end with host-gone, its data stays.
	RemoveHost(domain string) error
}

// NextHosts returns hosts with domain added (add) or removed, and domain as the config
// keeps it (RFC 7622 §3.2 domainpart preparation).
func NextHosts(hosts []string, add bool, domain string) ([]string, string, error) {
	d, err := jid.PrepareDomain(domain)
	if err != nil || d == "" {
		return nil, "", fmt.Errorf("%q is not a domain: %v", domain, err)
	}
	has := slices.Contains(hosts, d)
	switch {
	case add && has:
		return nil, d, fmt.Errorf("%s is already a virtual host", d)
	case add:
		return append(slices.Clone(hosts), d), d, nil
	case !has:
		return nil, d, fmt.Errorf("%s is not a virtual host here", d)
	case len(hosts) == 1:
		return nil, d, errors.New("the last virtual host cannot be removed")
	}
	return slices.DeleteFunc(slices.Clone(hosts), func(h string) bool { return h == d }), d, nil
}

// Vhost runs the vhost op: "list" (or "") returns the virtual hosts; "add" and "remove"
// change them through b's HostManager.
func Vhost(b Backend, action, domain string) ([]string, error) {
	if action == "" || action == "list" {
		return b.Domains(), nil
	}
	if action != "add" && action != "remove" {
		return nil, fmt.Errorf("vhost: unknown action %q (list, add, remove)", action)
	}
	m, ok := b.(HostManager)
	if !ok {
		return nil, errors.New("vhost " + action + " is not possible here")
	}
	if action == "add" {
		return nil, m.AddHost(domain)
	}
	return nil, m.RemoveHost(domain)
}
