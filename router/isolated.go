package router

import (
	"strings"

	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// Isolated virtual hosts (engine HostPolicy.Isolated, as Prosody's mod_isolate_host and
// Tigase's OWN domain filter): their users and services exchange stanzas with each other
// only. Several companies or communities share one server without reaching each other. The
// router checks the two ends of every stanza it moves between a local session or module
// and another destination; federation is the engine's to refuse.

// SetIsolated sets the isolated hosts; none (nil or empty) turns the check off. Safe from
// any goroutine.
func (r *Router) SetIsolated(hosts []string) {
	if len(hosts) == 0 {
		r.isolated.Store(nil)
		return
	}
	m := make(map[string]bool, len(hosts))
	for _, h := range hosts {
		m[h] = true
	}
	r.isolated.Store(&m)
}

// walled returns the error for a stanza from from to to when one of them is on an
// isolated host and the other is not on the same host, or nil. Free while no host is
// isolated.
func (r *Router) walled(from, to jid.JID) *stanza.Error {
	iso := r.isolated.Load()
	if iso == nil {
		return nil
	}
	fd, td := from.Domain(), to.Domain()
	if fd == td {
		return nil
	}
	hf, sharedF := r.hostOf(fd)
	ht, sharedT := r.hostOf(td)
	if sharedF || sharedT || hf == ht {
		return nil
	}
	h := hf
	if !(*iso)[h] {
		h = ht
		if !(*iso)[h] {
			return nil
		}
	}
	e := stanza.New(stanza.NotAllowed)
	e.Text = h + " is a closed community: its users reach its own users and services only."
	return e
}

// hostOf is the virtual host domain d belongs to: d itself, a service's host, or for a
// component or any other subdomain of a local host, that host; other domains are their
// own. shared reports a service of the whole server, which every host may use.
func (r *Router) hostOf(d string) (host string, shared bool) {
	if r.isLocal(d) {
		return d, false
	}
	if sv := r.svc.Load().byDomain[d]; sv != nil {
		return sv.Host, sv.Host == ""
	}
	for rest := d; ; {
		i := strings.IndexByte(rest, '.')
		if i < 0 {
			return d, false
		}
		rest = rest[i+1:]
		if r.isLocal(rest) {
			return rest, false
		}
	}
}
