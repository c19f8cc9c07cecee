package engine

import (
	"bytes"
	"sort"
	"strconv"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// XEP-0356 Privileged Entity for XEP-0114 components: what the operator granted a
// component (Component.Privileges) is announced to it when it connects; its messages as
// a user (§5) are checked here and go through the router's SubmitAs; its roster requests
// (§4) are the roster module's, which looks the privileges up in the router.

// advertisePrivileges tells the component on c what it may do, in one message from each
// virtual host (§4.2, as ejabberd and Prosody send them), if it may do anything.
func (k *component) advertisePrivileges(c *conn, domain string) {
	p := k.srv.rt.Privileges(c.bare)
	if p.Zero() {
		return
	}
	cfg := k.srv.config()
	for _, host := range cfg.Domains {
		if !k.srv.isLocal(host) {
			continue
		}
		var b xmlstream.Builder
		b.Start("message").Attr("from", host).Attr("to", domain).Attr("id", "privileges").
			Start("privilege").Attr("xmlns", module.NSPrivilege)
		for _, access := range []string{"roster", "message", "presence"} {
			b.Start("perm").Attr("access", access).Attr("type", p.Type(access))
			if access == "roster" && p.RosterGet() {
				b.Attr("push", strconv.FormatBool(p.RosterPushes())) // §4.2
			}
			b.End()
		}
		if len(p.IQ) > 0 {
			spaces := make([]string, 0, len(p.IQ))
			for space := range p.IQ {
				spaces = append(spaces, space)
			}
			sort.Strings(spaces)
			b.Start("perm").Attr("access", "iq")
			for _, space := range spaces {
				b.Start("namespace").Attr("ns", space).Attr("type", p.IQ[space]).End()
			}
			b.End()
		}
		b.End().End()
		c.write(b.B)
	}
	if p.UserPresence() {
		k.srv.rt.ReplayPresence(c.bare) // §7 rule 1: who is online now
	}
}

var nsPrivilegeBytes = []byte(module.NSPrivilege)

// privilegedMessage handles a message from a component that carries <privilege/>
// (§5.2): the message it forwards, from the bare JID of a local account, is sent as that
// account sent it. It reports whether st was one; a refusal is answered to the
// component with forbidden (no such privilege, or a sender that is not a local account)
// or bad-request (nothing forwarded).
func (k *component) privilegedMessage(c *conn, from jid.JID, st *xmlstream.Stanza) bool {
	if st.Kind() != xmlstream.KindMessage || !bytes.Contains(st.Raw, nsPrivilegeBytes) {
		return false // a gateway's ordinary traffic is not parsed for it
	}
	priv, ok := st.Elem().Child(module.NSPrivilege, "privilege")
	if !ok {
		return false
	}
	if typ, _ := st.Attr("type"); string(typ) == "error" {
		return true // an error (maybe our own privilege advertisement bounced) gets none back
	}
	s := k.srv
	refuse := func(cond stanza.Condition, text string) bool {
		e := stanza.New(cond)
		e.Text = text
		var b xmlstream.Builder
		b.Start("message").Attr("type", "error").Attr("to", from.String())
		if to, ok := st.Attr("to"); ok {
			b.AttrBytes("from", xmlstream.AppendUnescaped(nil, to))
		}
		if id, ok := st.Attr("id"); ok {
			b.AttrBytes("id", xmlstream.AppendUnescaped(nil, id))
		}
		b.Raw(e.AppendXML(nil)).End()
		c.write(b.B)
		return true
	}
	if !s.rt.Privileges(from).Outgoing() {
		return refuse(stanza.Forbidden, "this component may not send messages as the server's users")
	}
	fwd, ok := priv.Child(ns.Forward, "forwarded")
	var inner xmlstream.Element
	if ok {
		for it := fwd.Children(); ; {
			e, more := it.Next()
			if !more {
				break
			}
			if string(e.Name()) == "message" && (string(e.NS()) == ns.Client || string(e.NS()) == nsComponent) {
				inner, ok = e, true
				break
			}
			ok = false
		}
	}
	if !ok || inner.Raw() == nil {
		return refuse(stanza.BadRequest, "a privileged message forwards one message")
	}
	v, _ := inner.AppendAttr(nil, "from")
	user, err := jid.ParseBytes(v)
	if err != nil || !user.IsBare() || user.Local() == "" || !s.isLocal(user.Domain()) {
		return refuse(stanza.Forbidden, "the forwarded message must be from the bare JID of an account of this server")
	}
	raw := inner.Raw()
	if bytes.Contains(raw, []byte(nsComponent)) {
		raw = rewriteNS(raw)
	}
	if !s.rt.SubmitAs(user, from, raw) {
		c.fail(stanza.PolicyViolation, "too many stanzas")
	}
	return true
}

// privilegedIQ handles an IQ from a component that carries <privileged_iq/> (§6.3): the
// IQ request inside goes out as the local account the outer IQ is addressed to sent it,
// if the component may send that type in that payload's namespace, and its answer comes
// back wrapped (router.SubmitIQAs). It reports whether st was one; a refusal is answered
// with forbidden.
func (k *component) privilegedIQ(c *conn, from jid.JID, st *xmlstream.Stanza) bool {
	if st.Kind() != xmlstream.KindIQ || !bytes.Contains(st.Raw, nsPrivilegeBytes) {
		return false
	}
	wrap, ok := st.Elem().Child(module.NSPrivilege, "privileged_iq")
	if !ok {
		return false
	}
	s := k.srv
	outerID, _ := st.Attr("id")
	outerType, _ := st.Attr("type")
	if string(outerType) != "get" && string(outerType) != "set" {
		return true // a result or error is never answered (RFC 6120 §8.2.3)
	}
	refuse := func(cond stanza.Condition, text string) bool {
		e := stanza.New(cond)
		e.Text = text
		var b xmlstream.Builder
		b.Start("iq").Attr("type", "error").Attr("to", from.String()).AttrBytes("id", xmlstream.AppendUnescaped(nil, outerID))
		if to, ok := st.Attr("to"); ok {
			b.AttrBytes("from", xmlstream.AppendUnescaped(nil, to))
		}
		b.Raw(e.AppendXML(nil)).End()
		c.write(b.B)
		return true
	}
	toAttr, _ := st.Attr("to")
	user, err := jid.ParseBytes(xmlstream.AppendUnescaped(nil, toAttr))
	if err != nil || !user.IsBare() || user.Local() == "" || !s.isLocal(user.Domain()) {
		return refuse(stanza.Forbidden, "a privileged IQ is addressed to the bare JID of an account of this server")
	}
	var inner xmlstream.Element
	found := false
	for it := wrap.Children(); ; {
		e, more := it.Next()
		if !more {
			break
		}
		if string(e.Name()) == "iq" && (string(e.NS()) == ns.Client || string(e.NS()) == nsComponent) && !found {
			inner, found = e, true
			continue
		}
		found = false // exactly one IQ
		break
	}
	if !found {
		return refuse(stanza.BadRequest, "privileged_iq carries one IQ")
	}
	typ, _ := inner.AppendAttr(nil, "type")
	id, _ := inner.AppendAttr(nil, "id")
	payload, hasPayload := firstChild(inner)
	if string(typ) != string(outerType) || string(typ) != "get" && string(typ) != "set" || len(id) == 0 || !hasPayload {
		return refuse(stanza.BadRequest, "the inner IQ is a get or set of the outer IQ's type, with an id and a payload")
	}
	if v, ok := inner.AppendAttr(nil, "from"); ok {
		if f, err := jid.ParseBytes(v); err != nil || !f.Equal(user) {
			return refuse(stanza.Forbidden, "the inner IQ may only be from the account the outer IQ is addressed to")
		}
	}
	if !s.rt.Privileges(from).IQAllowed(string(payload.NS()), string(typ)) {
		return refuse(stanza.Forbidden, "this component may not send "+string(typ)+" IQs in "+string(payload.NS())+" as the server's users")
	}
	raw := inner.Raw()
	if bytes.Contains(raw, []byte(nsComponent)) {
		raw = rewriteNS(raw)
	}
	raw = xmlstream.SetAttrs(nil, raw, xmlstream.AttrSet{Name: "from", Value: []byte(user.String())})
	if !s.rt.SubmitIQAs(user, from, string(xmlstream.AppendUnescaped(nil, outerID)), raw) {
		c.fail(stanza.PolicyViolation, "too many stanzas")
	}
	return true
}

// firstChild returns e's first child element.
func firstChild(e xmlstream.Element) (xmlstream.Element, bool) {
	it := e.Children()
	return it.Next()
}
