package mam

import (
	"errors"
	"strconv"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/modules/sid"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// queryForm is the answer to a form request (§4.1.5): the fields this server supports.
const queryForm = "<query xmlns='" + NS + "'><x xmlns='" + ns.DataForms + "' type='form'>" +
	"<field type='hidden' var='FORM_TYPE'><value>" + NS + "</value></field>" +
	"<field type='jid-single' var='with'/>" +
	"<field type='text-single' var='start'/>" +
	"<field type='text-single' var='end'/>" +
	"<field type='text-single' var='before-id'/>" +
	"<field type='text-single' var='after-id'/>" +
	"<field type='list-multi' var='ids'><validate xmlns='" + nsValidate + "' datatype='xs:string'><open/></validate></field>" +
	"</x></query>"

func (m *Mod) form(c module.Context, iq *module.Packet) { c.Reply(iq, []byte(queryForm)) }

func (m *Mod) storeFailed(c module.Context, iq *module.Packet, err error, what string) {
	if module.LogStoreError(err) {
		m.log.Error().Err(err).Msg(what)
	}
	c.Error(iq, module.StoreError(err))
}

// synced makes the store's lazy writes durable before a query is answered, as the
// router does before any IQ answer it sends (store.LazySyncer): the results and <fin/>
// go out as messages and a routed IQ, past that sync, yet they acknowledge what the
// client sent before the query (its page shows the messages archived lazily).
func (m *Mod) synced(c module.Context, iq *module.Packet) bool {
	ls, ok := c.Store().(store.LazySyncer)
	if !ok {
		return true
	}
	if err := ls.SyncLazy(); err != nil {
		m.storeFailed(c, iq, err, "mam: sync lazy writes")
		return false
	}
	return true
}

// query answers an archive query (§4): the results go to the querying session only, in
// order, in flow-controlled batches, then the IQ result with <fin/>.
func (m *Mod) query(c module.Context, iq *module.Packet) {
	s := c.Session()
	if s == nil {
		c.Error(iq, stanza.New(stanza.ServiceUnavailable))
		return
	}
	payload, _ := iq.Payload()
	q, e := ParseQuery(payload)
	if e != nil {
		c.Error(iq, e)
		return
	}
	if !m.synced(c, iq) {
		return
	}
	user := iq.From.Bare().String()
	busy, _ := s.Value(sendingKey{}).(*sending)
	if busy != nil && len(busy.waiting) >= maxWaitingPages {
		e := stanza.New(stanza.ResourceConstraintCond)
		e.Text = "too many archive queries at once; wait for their results"
		c.Error(iq, e)
		return
	}
	pg, e, err := m.a.query(user, &q, m.cutoff(user, c.Now()), m.settingsOf(user).maxPage)
	if e != nil {
		c.Error(iq, e)
		return
	}
	if err != nil {
		m.storeFailed(c, iq, err, "mam: query")
		return
	}
	ids := pg.ids
	if q.Flip {
		// §4.3.5: only the order of transmission changes; first and last in <fin/>
		// still name the page's oldest and newest message.
		ids = make([]sid.ID, len(pg.ids))
		for i, id := range pg.ids {
			ids[len(ids)-1-i] = id
		}
	}
	r := &results{m: m, s: s, user: user, qid: q.QueryID, ids: ids, to: s.JID().String()}
	if !iq.To.IsZero() {
		r.from = iq.To.String()
	}
	r.fin = appendResult(nil, iq, r.to, appendFin(nil, pg))
	if busy != nil {
		busy.waiting = append(busy.waiting, r) // sent when the pages before it are
		return
	}
	s.SetValue(sendingKey{}, &sending{})
	r.next(c)
}

// A session gets one page of results at a time: a page that waits for its connection to
// write (results.next) holds a callback, and a client that reads slowly while it asks
// again and again would pile them up. The pages asked for meanwhile wait in order, at
// most maxWaitingPages of them.
const maxWaitingPages = 8

// sendingKey is the session value of the page on its way to it (*sending).
type sendingKey struct{}

// sending is the pages waiting behind the one on its way to a session.
type sending struct{ waiting []*results }

// done starts the next waiting page of r's session, if any; the session's pages are over
// when ok is false (it ended or detached: its client asks again).
func (r *results) done(c module.Context, ok bool) {
	q, _ := r.s.Value(sendingKey{}).(*sending)
	if !ok || q == nil || len(q.waiting) == 0 {
		r.s.SetValue(sendingKey{}, nil)
		return
	}
	next := q.waiting[0]
	q.waiting = q.waiting[1:]
	next.next(c)
}

// results is a query's page on its way to the session.
type results struct {
	m        *Mod
	s        module.Session
	user     string
	qid      string
	ids      []sid.ID // still to send, in transmission order
	to, from string
	fin      []byte // the IQ result, sent after the last message
}

// next sends the next batch of results; after batchBytes it waits until the connection
// has written them. A session that ends or detaches meanwhile gets nothing more: its
// client asks again.
func (r *results) next(c module.Context) {
	size := 0
	for len(r.ids) > 0 {
		id := r.ids[0]
		r.ids = r.ids[1:]
		rec, err := r.m.a.get(r.user, id)
		if errors.Is(err, store.ErrNotFound) {
			continue // expired since the page was chosen
		}
		if err != nil {
			r.m.log.Error().Err(err).Msg("mam: read result")
			continue
		}
		msg := r.message(id, rec)
		if !r.s.Send(msg) {
			r.done(c, false)
			return
		}
		if size += len(msg); size >= batchBytes && len(r.ids) > 0 {
			r.s.AfterWritten(func(c module.Context, ok bool) {
				if ok {
					r.next(c)
				} else {
					r.done(c, false)
				}
			})
			return
		}
	}
	r.done(c, r.s.Send(r.fin))
}

// message builds one result (§4.2): the archived message forwarded (XEP-0297) with the
// time it was archived (XEP-0203).
func (r *results) message(id sid.ID, rec record) []byte {
	return appendResultMessage(nil, r.to, r.from, r.qid, id, rec.raw)
}

// appendResultMessage writes one result (§4.2) of the query qid for to, from the
// archive's JID (none for the user's own archive): raw, the archived message, forwarded
// (XEP-0297) with the time it was archived (XEP-0203).
func appendResultMessage(dst []byte, to, from, qid string, id sid.ID, raw []byte) []byte {
	b := xmlstream.Builder{B: dst}
	b.Start("message").Attr("to", to)
	if from != "" {
		b.Attr("from", from)
	}
	b.Start("result").Attr("xmlns", NS)
	if qid != "" {
		b.Attr("queryid", qid)
	}
	b.AttrBytes("id", id.AppendText(nil))
	b.Start("forwarded").Attr("xmlns", ns.Forward)
	b.Start("delay").Attr("xmlns", ns.Delay).Attr("stamp", id.Time().Format(stampLayout)).End()
	b.Raw(raw)
	return b.End().End().End().B
}

// appendFin writes <fin/> with the XEP-0059 <set/> of the page.
func appendFin(dst []byte, pg page) []byte {
	b := xmlstream.Builder{B: dst}
	complete := "false"
	if pg.complete {
		complete = "true"
	}
	b.Start("fin").Attr("xmlns", NS).Attr("complete", complete)
	b.Start("set").Attr("xmlns", NSRSM)
	if len(pg.ids) > 0 {
		b.Start("first")
		if pg.index >= 0 {
			b.Attr("index", strconv.Itoa(pg.index))
		}
		b.TextBytes(pg.ids[0].AppendText(nil)).End()
		b.Start("last").TextBytes(pg.ids[len(pg.ids)-1].AppendText(nil)).End()
	}
	if pg.count >= 0 {
		b.Start("count").Text(strconv.Itoa(pg.count)).End()
	}
	return b.End().End().B
}

// appendResult writes the IQ result for iq, to the session's full JID.
func appendResult(dst []byte, iq *module.Packet, to string, payload []byte) []byte {
	b := xmlstream.Builder{B: dst}
	b.Start("iq").Attr("type", "result")
	if iq.ID != "" {
		b.AttrBytes("id", xmlstream.AppendUnescaped(nil, []byte(iq.ID)))
	}
	if !iq.To.IsZero() {
		b.Attr("from", iq.To.String())
	}
	b.Attr("to", to)
	return b.Raw(payload).End().B
}

// metadata answers §6: the first and last message of the archive.
func (m *Mod) metadata(c module.Context, iq *module.Packet) {
	m.metadataOf(c, iq, iq.From.Bare().String())
}

// metadataOf answers §6 for the archive of owner (a user's or a room's bare JID).
func (m *Mod) metadataOf(c module.Context, iq *module.Packet, owner string) {
	b, err := m.metadataXML(c, owner)
	if err != nil {
		m.storeFailed(c, iq, err, "mam: metadata")
		return
	}
	c.Reply(iq, b)
}

// metadataXML is the §6 <metadata/> of owner's archive: its first and last message.
func (m *Mod) metadataXML(c module.Context, owner string) ([]byte, error) {
	first, last, ok, err := m.a.bounds(owner, sid.IDFloor(m.cutoff(owner, c.Now())))
	if err != nil {
		return nil, err
	}
	var b xmlstream.Builder
	b.Start("metadata").Attr("xmlns", NS)
	if ok {
		for _, x := range []struct {
			name string
			id   sid.ID
		}{{"start", first}, {"end", last}} {
			b.Start(x.name).AttrBytes("id", x.id.AppendText(nil)).Attr("timestamp", x.id.Time().Format(stampLayout)).End()
		}
	}
	return b.End().B, nil
}

// bound is the archive's state for an XEP-0386 <bound/> (§3.2: "the state of the user's
// message archive at the precise time of resource binding"), so a client knows what to
// fetch without a round trip of its own. A store error leaves it out: the client can ask.
func (m *Mod) bound(c module.Context, s module.Session) []byte {
	b, err := m.metadataXML(c, s.JID().Bare().String())
	if err != nil {
		if module.LogStoreError(err) {
			m.log.Error().Err(err).Msg("mam: metadata for Bind2")
		}
		return nil
	}
	return b
}

// userPrefs returns user's preferences, or the server default.
func (m *Mod) userPrefs(user jid.JID) (prefs, error) {
	key := user.String()
	if m.prefs != nil {
		if p, ok := m.prefs.get(key); ok {
			if p.implicit {
				p.def = m.settingsOf(key).def
			}
			return p, nil
		}
	}
	v, err := m.a.t.Get(prefsKey(key))
	var p prefs
	switch {
	case errors.Is(err, store.ErrNotFound):
		p = prefs{def: m.settingsOf(key).def, implicit: true}
	case err != nil:
		return prefs{}, err
	default:
		if p, err = decodePrefs(v); err != nil {
			return prefs{}, err
		}
	}
	if m.prefs != nil {
		m.prefs.put(key, p)
	}
	return p, nil
}

// getPrefs answers XEP-0441 §2.1.
func (m *Mod) getPrefs(c module.Context, iq *module.Packet) {
	p, err := m.userPrefs(iq.From.Bare())
	if err != nil {
		m.storeFailed(c, iq, err, "mam: read preferences")
		return
	}
	var b xmlstream.Builder
	appendPrefs(&b, p)
	c.Reply(iq, b.B)
}

// setPrefs answers XEP-0441 §2.2: the preferences are stored (synced) and returned.
func (m *Mod) setPrefs(c module.Context, iq *module.Packet) {
	payload, _ := iq.Payload()
	p, e := parsePrefs(payload)
	if e != nil {
		c.Error(iq, e)
		return
	}
	if err := m.a.t.Set(prefsKey(iq.From.Bare().String()), encodePrefs(p)); err != nil {
		m.storeFailed(c, iq, err, "mam: store preferences")
		return
	}
	if m.prefs != nil {
		m.prefs.put(iq.From.Bare().String(), p)
	}
	var b xmlstream.Builder
	appendPrefs(&b, p)
	c.Reply(iq, b.B)
}
