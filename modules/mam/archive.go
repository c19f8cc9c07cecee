package mam

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/vireo-im/vireo/modules/sid"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream"
	"github.com/vireo-im/vireo/xmlstream/jid"
	"github.com/vireo-im/vireo/xmlstream/ns"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// Row kinds of the "mam" table, after store.UserKey(user) (so deleting the account deletes
// its archive). The layout is in the package documentation.
const (
	kMsg   = 'a' // user 0 'a' id(12)               -> record
	kWith  = 'w' // user 0 'w' contact-bare 0 id(12) -> the contact's resource
	kPrefs = 'p' // user 0 'p'                      -> preferences
)

// recordVersion is the first byte of every record.
const recordVersion = 1

// CountLimit bounds the rows counted for the RSM <count/> and 'index' of a query: beyond
// it both are left out (XEP-0313 §4.3.2 says clients must not depend on them), so a query
// never walks an archive of a million messages to count them.
const CountLimit = 5000

// archive is one user archive per account in a store.Table. Its methods are safe for
// concurrent use (the store is); writes for one user come from that user's shard.
type archive struct {
	t store.Table
	// sync makes every archive write wait for the disk (Config.Sync).
	sync bool
}

// record is one archived message.
type record struct {
	out    bool   // sent by the archive's owner
	remote string // the other party's full (or bare) JID
	raw    []byte // the message, with xmlns='jabber:client'
}

func msgPrefix(user string) []byte { return append(store.UserKey(user), kMsg) }

func msgKey(user string, id sid.ID) []byte { return append(msgPrefix(user), id[:]...) }

func withPrefix(user string, contact jid.JID) []byte {
	k := append(store.UserKey(user), kWith)
	k = append(k, contact.Bare().String()...)
	return append(k, 0)
}

func prefsKey(user string) []byte { return append(store.UserKey(user), kPrefs) }

// encode returns the row value for a message: version, direction, the remote JID and
// the stanza with its namespace declared, ready to go inside <forwarded/>.
func encode(out bool, remote jid.JID, raw []byte) []byte {
	r := remote.String()
	v := make([]byte, 0, 2+binary.MaxVarintLen32+len(r)+len(raw)+24)
	dir := byte(0)
	if out {
		dir = 1
	}
	v = append(v, recordVersion, dir)
	v = binary.AppendUvarint(v, uint64(len(r)))
	v = append(v, r...)
	return xmlstream.SetAttrs(v, raw, xmlstream.AttrSet{Name: "xmlns", Value: []byte(ns.Client)})
}

func decode(v []byte) (record, error) {
	if len(v) < 3 || v[0] != recordVersion || v[1] > 1 {
		return record{}, fmt.Errorf("%w: archive record header", store.ErrCorrupt)
	}
	n, k := binary.Uvarint(v[2:])
	if k <= 0 || n > uint64(len(v)-2-k) {
		return record{}, fmt.Errorf("%w: archive record jid", store.ErrCorrupt)
	}
	p := 2 + k
	return record{out: v[1] == 1, remote: string(v[p : p+int(n)]), raw: v[p+int(n):]}, nil
}

// add archives raw under id for user: the message row and its 'with' index row, in one
// atomic write. Unless a.sync, it does not wait for the disk (store.Table.ApplyLazy): see
// Config.Sync.
func (a archive) add(user string, id sid.ID, out bool, remote jid.JID, raw []byte) error {
	ops := addOps(user, id, out, remote, raw)
	if a.sync {
		return a.t.Apply(ops[:]...)
	}
	return a.t.ApplyLazy(ops[:]...)
}

// addOps returns the writes that archive one message.
func addOps(user string, id sid.ID, out bool, remote jid.JID, raw []byte) [2]store.Op {
	return [2]store.Op{
		{Key: msgKey(user, id), Val: encode(out, remote, raw)},
		{Key: append(withPrefix(user, remote), id[:]...), Val: []byte(remote.Resource())},
	}
}

// get returns the message archived under id (store.ErrNotFound if there is none).
func (a archive) get(user string, id sid.ID) (record, error) {
	v, err := a.t.Get(msgKey(user, id))
	if err != nil {
		return record{}, err
	}
	return decode(v)
}

// source is the rows a query walks: the whole archive, or the 'with' index of one
// contact (and of one of its resources when res is set).
type source struct {
	prefix []byte
	res    string
	full   bool
}

func sourceFor(user string, with jid.JID) source {
	if with.IsZero() {
		return source{prefix: msgPrefix(user)}
	}
	return source{prefix: withPrefix(user, with), res: with.Resource(), full: !with.IsBare()}
}

// span is a range of ids: lo inclusive, hi exclusive (nil: no upper bound).
type span struct {
	lo sid.ID
	hi *sid.ID
}

// after returns the smallest id greater than id, false if there is none.
func after(id sid.ID) (sid.ID, bool) {
	for i := len(id) - 1; i >= 0; i-- {
		id[i]++
		if id[i] != 0 {
			return id, true
		}
	}
	return id, false
}

func (s *span) raise(lo sid.ID) {
	if bytes.Compare(lo[:], s.lo[:]) > 0 {
		s.lo = lo
	}
}

func (s *span) lower(hi sid.ID) {
	if s.hi == nil || bytes.Compare(hi[:], s.hi[:]) < 0 {
		s.hi = &hi
	}
}

// raiseAfter makes the span start after id.
func (s *span) raiseAfter(id sid.ID) {
	if n, ok := after(id); ok {
		s.raise(n)
	} else {
		s.lower(sid.ID{}) // nothing comes after the last possible id
	}
}

func (s span) empty() bool { return s.hi != nil && bytes.Compare(s.lo[:], s.hi[:]) >= 0 }

// resultSet is what a query selects: the rows of a source within a span, or an explicit
// list of ids (the #extended 'ids' field), sorted.
type resultSet struct {
	a    archive
	src  source
	list []sid.ID // nil: the rows of src
	all  span
	// cut is set when a scan for a full JID stopped at maxExamined rows of the bare
	// contact: the index has the bare JID only, and a room's archive is all one contact.
	cut bool
}

// maxExamined bounds the index rows one pass of a query for a full JID reads: one with a
// resource that is rarely or never there would otherwise read the contact's whole
// archive, for anyone who may query it (a public room's occupants, remote ones too).
var maxExamined = 10 * CountLimit // a variable for the tests

// each calls fn with the ids of the set within sp, ascending or descending, until fn
// returns false.
func (r *resultSet) each(sp span, reverse bool, fn func(id sid.ID) bool) error {
	sp.raise(r.all.lo)
	if r.all.hi != nil {
		sp.lower(*r.all.hi)
	}
	if sp.empty() {
		return nil
	}
	if r.list != nil {
		in := func(id sid.ID) bool {
			return bytes.Compare(id[:], sp.lo[:]) >= 0 && (sp.hi == nil || bytes.Compare(id[:], sp.hi[:]) < 0)
		}
		for i := range r.list {
			id := r.list[i]
			if reverse {
				id = r.list[len(r.list)-1-i]
			}
			if in(id) && !fn(id) {
				return nil
			}
		}
		return nil
	}
	lo := append(append([]byte(nil), r.src.prefix...), sp.lo[:]...)
	var hi []byte
	if sp.hi != nil {
		hi = append(append([]byte(nil), r.src.prefix...), sp.hi[:]...)
	} else {
		hi = prefixEnd(r.src.prefix)
	}
	n := len(r.src.prefix)
	examined := 0
	return r.a.t.ScanRange(lo, hi, reverse, func(k, v []byte) bool {
		if examined++; r.src.full && examined > maxExamined {
			r.cut = true
			return false
		}
		if len(k) != n+len(sid.ID{}) || r.src.full && string(v) != r.src.res {
			return true
		}
		var id sid.ID
		copy(id[:], k[n:])
		return fn(id)
	})
}

// prefixEnd returns the smallest key above every key that starts with p (p never ends in
// 0xff here: it ends in a row kind or a 0 separator).
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	end[len(end)-1]++
	return end
}

// page is one page of results.
type page struct {
	ids      []sid.ID // in chronological order
	complete bool     // the last page in the direction of paging
	count    int      // size of the whole result set; -1 when over CountLimit
	index    int      // position of ids[0] in the result set; -1 when unknown
}

// errNotFound reports an id that the query names and the archive does not hold.
var errNotFound = errors.New("mam: id not in the archive")

// exists checks that id is in user's archive and not past retention.
func (a archive) exists(user string, id sid.ID, floor sid.ID) error {
	if bytes.Compare(id[:], floor[:]) < 0 {
		return errNotFound
	}
	_, err := a.t.Get(msgKey(user, id))
	if errors.Is(err, store.ErrNotFound) {
		return errNotFound
	}
	return err
}

// query runs q against user's archive, where nothing before cutoff is kept, and returns
// the page of at most maxPage results. A *stanza.Error is the client's fault (an id not
// in the archive); a plain error is the store's.
func (a archive) query(user string, q *Query, cutoff time.Time, maxPage int) (page, *stanza.Error, error) {
	floor := sid.IDFloor(cutoff)
	rs := resultSet{a: a, src: sourceFor(user, q.With), all: span{lo: floor}}
	if !q.Start.IsZero() {
		rs.all.raise(sid.IDFloor(q.Start))
	}
	if !q.End.IsZero() {
		rs.all.lower(sid.IDFloor(q.End.Add(time.Millisecond))) // 'end' is inclusive
	}
	var named []sid.ID
	if q.AfterID != nil {
		named = append(named, *q.AfterID)
		rs.all.raiseAfter(*q.AfterID)
	}
	if q.BeforeID != nil {
		named = append(named, *q.BeforeID)
		rs.all.lower(*q.BeforeID)
	}
	if q.After != nil {
		named = append(named, *q.After)
	}
	if q.Before != nil {
		named = append(named, *q.Before)
	}
	for _, id := range named {
		if err := a.exists(user, id, floor); errors.Is(err, errNotFound) {
			return page{}, notFound(), nil
		} else if err != nil {
			return page{}, nil, err
		}
	}
	if q.IDs != nil {
		list, e, err := a.pick(user, q, floor)
		if e != nil || err != nil {
			return page{}, e, err
		}
		rs.list = list
	}

	max := maxPage
	if q.Max >= 0 && q.Max < max {
		max = q.Max
	}
	pg := span{lo: rs.all.lo}
	if q.After != nil {
		pg.raiseAfter(*q.After)
	}
	if q.Before != nil {
		pg.lower(*q.Before)
	}
	reverse := q.HasBefore // RSM before: the page that ends there (the last page if empty)
	if q.Index > CountLimit {
		// Past what is counted, an index is no page the server offers (it gives no
		// count or index there either): walking to it would read the archive row by
		// row, for anyone who may query it (a public room's occupants, remote ones too).
		// Not complete: messages may well be there, by ids or times.
		return page{complete: false, count: -1, index: -1}, nil, nil
	}
	skip := max0(q.Index)
	var got []sid.ID
	err := rs.each(pg, reverse, func(id sid.ID) bool {
		if skip > 0 {
			skip--
			return true
		}
		got = append(got, id)
		return len(got) <= max
	})
	if err != nil {
		return page{}, nil, err
	}
	if rs.cut && len(got) == 0 {
		e := stanza.New(stanza.ResourceConstraintCond)
		e.Text = "no message with that resource among " + strconv.Itoa(maxExamined) + " messages with its bare JID searched; query the bare JID, or narrow by time"
		return page{}, e, nil
	}
	out := page{complete: len(got) <= max && !rs.cut, count: -1, index: -1}
	got = got[:min(len(got), max)]
	if reverse {
		for i, j := 0, len(got)-1; i < j; i, j = i+1, j-1 {
			got[i], got[j] = got[j], got[i]
		}
	}
	out.ids = got
	if rs.cut {
		return out, nil, nil // no count or index: each pass would stop at the bound too
	}

	n := 0
	if err := rs.each(span{}, false, func(sid.ID) bool { n++; return n <= CountLimit }); err != nil {
		return page{}, nil, err
	}
	if n <= CountLimit && !rs.cut {
		out.count = n
		if len(got) > 0 {
			i := 0
			if err := rs.each(span{hi: &got[0]}, false, func(sid.ID) bool { i++; return true }); err != nil {
				return page{}, nil, err
			}
			out.index = i
			if rs.cut {
				out.count, out.index = -1, -1
			}
		}
	}
	return out, nil, nil
}

func max0(n int) int { return max(n, 0) }

// pick resolves the #extended 'ids' field: every id must be in the archive (§4.1.3); the
// ones that also pass the query's other filters form the result set, in archive order.
func (a archive) pick(user string, q *Query, floor sid.ID) ([]sid.ID, *stanza.Error, error) {
	list := make([]sid.ID, 0, len(q.IDs))
	for _, id := range q.IDs {
		if bytes.Compare(id[:], floor[:]) < 0 {
			return nil, notFound(), nil
		}
		rec, err := a.get(user, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, notFound(), nil
		}
		if err != nil {
			return nil, nil, err
		}
		if !q.With.IsZero() && !matchWith(q.With, rec.remote) {
			continue
		}
		list = append(list, id)
	}
	sortIDs(list)
	out := list[:0]
	for i, id := range list {
		if i == 0 || id != list[i-1] {
			out = append(out, id)
		}
	}
	return out, nil, nil
}

// matchWith applies a 'with' filter (§4.1.1) to a record's remote JID: a bare JID
// matches every resource, a full JID only itself.
func matchWith(with jid.JID, remote string) bool {
	if !with.IsBare() {
		return remote == with.String()
	}
	r, err := jid.Parse(remote)
	return err == nil && r.Bare().Equal(with)
}

func sortIDs(ids []sid.ID) {
	for i := 1; i < len(ids); i++ { // insertion sort: at most MaxIDs, mostly sorted already
		for j := i; j > 0 && bytes.Compare(ids[j][:], ids[j-1][:]) < 0; j-- {
			ids[j], ids[j-1] = ids[j-1], ids[j]
		}
	}
}

// bounds returns the first and last message of user's archive from floor on.
func (a archive) bounds(user string, floor sid.ID) (first, last sid.ID, ok bool, err error) {
	rs := resultSet{a: a, src: sourceFor(user, jid.JID{}), all: span{lo: floor}}
	take := func(dst *sid.ID) func(sid.ID) bool {
		return func(id sid.ID) bool { *dst, ok = id, true; return false }
	}
	if err = rs.each(span{}, false, take(&first)); err != nil || !ok {
		return
	}
	err = rs.each(span{}, true, take(&last))
	return
}

// sweepBatch is the rows one sweep write deletes: small enough that a write never holds
// up the shards' archive writes for long.
const sweepBatch = 256

// expire deletes the messages of user older than floor, and their index rows, in
// batches of sweepBatch, at most about limit of them; it returns how many it deleted.
func (a archive) expire(user string, floor sid.ID, limit int) (int, error) {
	lo := msgPrefix(user)
	hi := append(msgPrefix(user), floor[:]...)
	done := 0
	for done < limit {
		var ops []store.Op
		rows := 0
		err := a.t.ScanRange(lo, hi, false, func(k, v []byte) bool {
			rows++
			ops = append(ops, store.Op{Key: append([]byte(nil), k...), Delete: true})
			// A record that does not decode loses its message row; its index row, if
			// any, points nowhere and is skipped by queries.
			if rec, err := decode(v); err == nil && len(k) == len(lo)+len(sid.ID{}) {
				if r, err := jid.Parse(rec.remote); err == nil {
					ops = append(ops, store.Op{Key: append(withPrefix(user, r), k[len(lo):]...), Delete: true})
				}
			}
			return rows < sweepBatch
		})
		if err != nil || rows == 0 {
			return done, err
		}
		if err := a.t.Apply(ops...); err != nil {
			return done, err
		}
		done += rows
		if rows < sweepBatch {
			break
		}
	}
	return done, nil
}

// nextUser returns the first user at or after from that has rows in the table ("" when
// there is none).
func (a archive) nextUser(from []byte) (string, error) {
	var user string
	err := a.t.ScanRange(from, nil, false, func(k, _ []byte) bool {
		if i := bytes.IndexByte(k, 0); i > 0 {
			user = string(k[:i])
		}
		return false
	})
	return user, err
}
