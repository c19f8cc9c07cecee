package upload

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// partName is the file a PUT writes before it is complete; CleanFilename never yields a
// name with a leading dot, so it cannot collide with an upload.
const partName = ".part"

// defaultType is served for a file uploaded without a content type.
const defaultType = "application/octet-stream"

// ServeHTTP implements http.Handler: PUT /<id>/<name> stores, GET and HEAD serve, OPTIONS
// answers the CORS preflight. It runs on net/http's goroutines.
func (m *Mod) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m.active.Add(1)
	defer m.active.Done()
	h := w.Header()
	// XEP-0363 §9 (CORS): browser clients upload and fetch from another origin.
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Allow-Methods", "GET, HEAD, PUT, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
	h.Set("Access-Control-Max-Age", "7200")
	switch r.Method {
	case http.MethodOptions:
		w.WriteHeader(http.StatusNoContent)
		return
	case http.MethodPut, http.MethodGet, http.MethodHead:
	default:
		h.Set("Allow", "GET, HEAD, PUT, OPTIONS")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	id, name, ok := splitPath(strings.TrimPrefix(r.URL.Path, m.prefix))
	if !ok {
		http.NotFound(w, r)
		return
	}
	if r.Method == http.MethodPut {
		m.put(w, r, id, name)
		return
	}
	m.get(w, r, id, name)
}

// splitPath reads "/<id>/<name>" (already percent-decoded). The id must be a slot id and
// the name a single non-empty path element; both are compared with the slot or record
// before anything touches the disk.
func splitPath(p string) (id, name string, ok bool) {
	p, ok = strings.CutPrefix(p, "/")
	if !ok {
		return "", "", false
	}
	id, name, ok = strings.Cut(p, "/")
	if !ok || !validID(id) || name == "" || strings.ContainsAny(name, "/\\\x00") || name == "." || name == ".." {
		return "", "", false
	}
	return id, name, true
}

// put stores the body of a PUT for a pending slot (XEP-0363 §6).
func (m *Mod) put(w http.ResponseWriter, r *http.Request, id, name string) {
	now := m.now()
	m.mu.Lock()
	sl := m.mu.slots[id]
	if sl == nil {
		m.mu.Unlock()
		if _, err := m.t.Get([]byte(id)); err == nil {
			http.Error(w, "this slot has been used", http.StatusConflict)
			return
		}
		http.Error(w, "no such upload slot", http.StatusForbidden)
		return
	}
	err := checkPut(m.key, sl, r.Header.Get("Authorization"), name, r.ContentLength, r.Header.Get("Content-Type"), now)
	switch {
	case errors.Is(err, errExpired):
		m.dropSlotLocked(id, sl)
		m.mu.Unlock()
		http.Error(w, "upload slot expired", http.StatusForbidden)
		return
	case errors.Is(err, errBadToken):
		m.mu.Unlock()
		http.Error(w, "bad authorization", http.StatusForbidden)
		return
	case err != nil:
		m.mu.Unlock()
		http.Error(w, strings.TrimPrefix(err.Error(), "upload: "), http.StatusBadRequest)
		return
	}
	// Used up from here, whatever happens to the body: a second PUT finds no slot.
	delete(m.mu.slots, id)
	m.mu.pending[sl.owner]--
	if m.mu.pending[sl.owner] <= 0 {
		delete(m.mu.pending, sl.owner)
	}
	m.mu.inflight[id] = sl.owner
	m.mu.Unlock()

	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(uploadGrace + time.Duration(sl.size/minUploadRate)*time.Second))
	werr := m.write(sl, r.Body, now)

	m.mu.Lock()
	delete(m.mu.inflight, id)
	m.releaseLocked(sl.owner, sl.size)
	gone := m.mu.gone[sl.owner]
	if werr == nil && !gone {
		m.mu.used[sl.owner] += sl.size
	}
	m.mu.Unlock()
	if werr == nil && gone {
		// The account went while its file came in: it goes too.
		m.deleteFile(id)
		http.Error(w, "the account was removed", http.StatusForbidden)
		return
	}
	if werr != nil {
		if errors.Is(werr, errSize) {
			http.Error(w, "body length differs from the slot's size", http.StatusBadRequest)
			return
		}
		m.log.Warn().Err(werr).Str("slot", id).Msg("upload: store file")
		http.Error(w, "could not store the file", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

// deleteFile deletes the file and record of slot id; it reports whether both went.
func (m *Mod) deleteFile(id string) bool {
	if validID(id) {
		if err := os.RemoveAll(filepath.Join(m.dir, id)); err != nil {
			m.log.Warn().Err(err).Str("slot", id).Msg("upload: remove file")
			return false
		}
	}
	if err := m.t.Delete([]byte(id)); err != nil {
		m.log.Warn().Err(err).Str("slot", id).Msg("upload: delete record")
		return false
	}
	return true
}

// write puts the body into data_dir/upload/<id>/<name> (through a partial file, synced,
// then renamed) and records it. On failure nothing of it stays.
func (m *Mod) write(sl *slot, body io.Reader, now time.Time) (err error) {
	dir := filepath.Join(m.dir, sl.id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	part := filepath.Join(dir, partName)
	f, err := os.OpenFile(part, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, io.LimitReader(body, sl.size+1))
	if err == nil && n != sl.size {
		err = errSize
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(part, filepath.Join(dir, sl.name)); err != nil {
		return err
	}
	ctype := sl.ctype
	if ctype == "" {
		ctype = defaultType
	}
	rec := record{owner: sl.owner, name: sl.name, ctype: ctype, size: sl.size, created: now}
	return m.t.Set([]byte(sl.id), rec.encode())
}

// get serves a stored file (XEP-0363 §6, GET).
func (m *Mod) get(w http.ResponseWriter, r *http.Request, id, name string) {
	v, err := m.t.Get([]byte(id))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	rec, ok := parseRecord(v)
	if !ok || rec.name != name || m.expired(rec, m.now()) {
		http.NotFound(w, r)
		return
	}
	f, err := os.Open(filepath.Join(m.dir, id, rec.name))
	if err != nil {
		http.NotFound(w, r)
		return
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", rec.ctype)
	cd := mime.FormatMediaType(disposition(rec.ctype), map[string]string{"filename": rec.name})
	if cd == "" {
		cd = disposition(rec.ctype)
	}
	h.Set("Content-Disposition", cd)
	// An uploaded HTML or SVG page must not run script under this origin.
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("Cache-Control", "private, max-age=86400")
	http.ServeContent(w, r, "", rec.created, f)
}

// disposition shows media inline in a browser and makes everything else a download.
func disposition(ctype string) string {
	mt, _, _ := mime.ParseMediaType(ctype)
	if mt == "image/svg+xml" {
		return "attachment"
	}
	for _, p := range []string{"image/", "audio/", "video/"} {
		if strings.HasPrefix(mt, p) {
			return "inline"
		}
	}
	return "attachment"
}

// expired reports whether rec is past retention at now.
func (m *Mod) expired(rec record, now time.Time) bool {
	r := m.conf(ownerHost(rec.owner)).retention
	return r > 0 && !now.Before(rec.created.Add(r))
}

// record is the row of one stored file in table "upload", keyed by slot id.
type record struct {
	owner, name, ctype string
	size               int64
	created            time.Time
}

// encode joins the fields with NUL, which none of them may contain (JIDs, cleaned file
// names and checked content types exclude it).
func (r record) encode() []byte {
	return []byte(strings.Join([]string{r.owner, r.name, r.ctype,
		strconv.FormatInt(r.size, 10), strconv.FormatInt(r.created.UnixMilli(), 10)}, "\x00"))
}

func parseRecord(b []byte) (record, bool) {
	f := strings.Split(string(b), "\x00")
	if len(f) != 5 {
		return record{}, false
	}
	size, err1 := strconv.ParseInt(f[3], 10, 64)
	ms, err2 := strconv.ParseInt(f[4], 10, 64)
	if err1 != nil || err2 != nil || size < 0 || f[0] == "" || f[1] == "" {
		return record{}, false
	}
	return record{owner: f[0], name: f[1], ctype: f[2], size: size, created: time.UnixMilli(ms)}, true
}

// sweeper runs sweep every sweepEvery until Cleanup, and when accounts were removed.
func (m *Mod) sweeper() {
	defer close(m.done)
	m.mu.Lock()
	owners := m.mu.removed // left from before a restart
	m.mu.removed = nil
	m.mu.Unlock()
	m.sweep(m.now(), owners)
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.sweep(m.now(), nil)
		case <-m.wake:
			m.mu.Lock()
			owners := m.mu.removed
			m.mu.removed = nil
			m.mu.Unlock()
			m.sweep(m.now(), owners)
		}
	}
}

// sweep deletes files past retention, and those of the accounts in owners, with their
// rows, forgets expired slots, and removes directories no row or upload knows that are
// older than a slot's lifetime (a PUT cut off by a crash). It returns how many files and
// directories it removed.
func (m *Mod) sweep(now time.Time, owners map[string]bool) int {
	var gone []string
	known := map[string]bool{}
	err := m.t.Scan(nil, func(k, v []byte) bool {
		rec, ok := parseRecord(v)
		if ok && !m.expired(rec, now) && !owners[rec.owner] {
			known[string(k)] = true
			return true
		}
		gone = append(gone, string(k))
		return true
	})
	if err != nil {
		m.log.Warn().Err(err).Msg("upload: sweep: read file records")
		return 0
	}
	n := 0
	for _, id := range gone {
		v, err := m.t.Get([]byte(id))
		if err != nil {
			continue
		}
		rec, _ := parseRecord(v)
		if !m.deleteFile(id) {
			continue
		}
		n++
		m.mu.Lock()
		if m.mu.used[rec.owner] -= rec.size; m.mu.used[rec.owner] <= 0 {
			delete(m.mu.used, rec.owner)
		}
		m.mu.Unlock()
	}
	m.mu.Lock()
	m.expireLocked(now)
	busy := make(map[string]bool, len(m.mu.slots)+len(m.mu.inflight))
	for id := range m.mu.slots {
		busy[id] = true
	}
	for id := range m.mu.inflight {
		busy[id] = true
	}
	// A removed account is done with once no PUT of its is in flight: those delete
	// what they wrote themselves until then.
	writing := map[string]bool{}
	for _, owner := range m.mu.inflight {
		writing[owner] = true
	}
	var done []string
	for owner := range owners {
		if !writing[owner] {
			delete(m.mu.gone, owner)
			done = append(done, owner)
		} else {
			if m.mu.removed == nil {
				m.mu.removed = map[string]bool{}
			}
			m.mu.removed[owner] = true // looked at again next time
		}
	}
	m.mu.Unlock()
	for _, owner := range done {
		if err := m.gone.Delete([]byte(owner)); err != nil {
			m.log.Warn().Err(err).Str("user", owner).Msg("upload: sweep: forget a removed account")
		}
	}
	ents, err := os.ReadDir(m.dir)
	if err != nil {
		m.log.Warn().Err(err).Msg("upload: sweep: read directory")
		return n
	}
	for _, e := range ents {
		id := e.Name()
		if !e.IsDir() || !validID(id) || known[id] || busy[id] {
			continue
		}
		if fi, err := e.Info(); err != nil || now.Sub(fi.ModTime()) < m.lim.Load().maxSlotTTL {
			continue // a PUT that started after the scan above
		}
		if err := os.RemoveAll(filepath.Join(m.dir, id)); err == nil {
			n++
		}
	}
	return n
}
