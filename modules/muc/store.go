package muc

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream/jid"
)

// Keys of the "muc" table. Room JIDs never contain a zero byte.
//
//	k                       -> occupant-id secret
//	c <room>                -> configuration (storedConfig, JSON)
//	t <room>                -> subject (storedSubject, JSON)
//	a <room> 0 <bare JID>   -> affiliation (storedAff, JSON)
//	v <room>                -> vCard (XEP-0486): photo hashes, a newline, the vCard
var keySecret = []byte("k")

func keyConfig(room string) []byte  { return append([]byte("c"), room...) }
func keySubject(room string) []byte { return append([]byte("t"), room...) }
func keyVCard(room string) []byte   { return append([]byte("v"), room...) }
func keyAffs(room string) []byte    { return append(append([]byte("a"), room...), 0) }
func keyAff(room, bare string) []byte {
	return append(keyAffs(room), bare...)
}

type storedConfig struct {
	Config  roomConfig `json:"config"`
	Creator string     `json:"creator,omitempty"` // for max_rooms_per_user
}

type storedSubject struct {
	Text  string    `json:"text"`
	Nick  string    `json:"nick,omitempty"`
	OccID string    `json:"occid,omitempty"`
	At    time.Time `json:"at"`
}

type storedAff struct {
	Aff  string `json:"aff"`
	Nick string `json:"nick,omitempty"`
}

// persist writes the room after a configuration change: everything when it becomes
// persistent, its configuration while it stays so, and it is deleted when it stops being
// persistent (it then lives until its last occupant leaves).
func (r *room) persist(wasPersistent bool) error {
	switch {
	case r.cfg.Persistent && !wasPersistent:
		return r.saveAll()
	case r.cfg.Persistent:
		if err := r.saveConfig(); err != nil {
			return err
		}
		if err := r.saveAffs(); err != nil {
			return err
		}
		return r.saveHeldVCard()
	case wasPersistent:
		// The vCard stays with the room, in memory now.
		if r.vcard != nil && r.vcard.card == nil {
			v, err := r.svc.m.t.Get(keyVCard(r.key))
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			_, r.vcard.card = splitVCard(v)
		}
		err := r.forget()
		r.svc.dir.update(r.key, func(e *dirEntry) { e.persisted = false })
		return err
	}
	return nil
}

// saveHeldVCard stores a vCard set while the room was not stored (locked, or temporary).
func (r *room) saveHeldVCard() error {
	if r.vcard == nil || r.vcard.card == nil {
		return nil
	}
	return r.saveVCard(r.vcard)
}

func (r *room) saveConfig() error {
	v, err := json.Marshal(storedConfig{Config: r.cfg, Creator: r.creator})
	if err != nil {
		return err
	}
	if err := r.svc.m.t.Set(keyConfig(r.key), v); err != nil {
		return err
	}
	r.svc.dir.update(r.key, func(e *dirEntry) { e.persisted = true })
	return nil
}

// saveSubject stores the subject of a persistent room.
func (r *room) saveSubject() error {
	if !r.cfg.Persistent || r.locked {
		return nil
	}
	v, _ := json.Marshal(storedSubject{Text: r.subject.text, Nick: r.subject.nick, OccID: r.subject.occID, At: r.subject.at})
	return r.svc.m.t.Set(keySubject(r.key), v)
}

// saveAff stores one affiliation of a persistent room (affNone without nick deletes it).
func (r *room) saveAff(bare string, rec affRecord) error {
	if !r.cfg.Persistent || r.locked {
		return nil
	}
	if rec.aff == affNone && rec.nick == "" {
		return r.svc.m.t.Delete(keyAff(r.key, bare))
	}
	v, _ := json.Marshal(storedAff{Aff: rec.aff.String(), Nick: rec.nick})
	return r.svc.m.t.Set(keyAff(r.key, bare), v)
}

// saveAffs rewrites the affiliations of a persistent room (after the owner and admin
// lists of a configuration form changed them).
func (r *room) saveAffs() error {
	if err := r.svc.m.t.DeletePrefix(keyAffs(r.key)); err != nil {
		return err
	}
	for k, a := range r.affs {
		if err := r.saveAff(k, a); err != nil {
			return err
		}
	}
	return nil
}

func (r *room) saveAll() error {
	if err := r.saveConfig(); err != nil {
		return err
	}
	if err := r.saveAffs(); err != nil {
		return err
	}
	if err := r.saveHeldVCard(); err != nil {
		return err
	}
	if r.subject.set {
		return r.saveSubject()
	}
	return nil
}

// forget deletes the room from the store.
func (r *room) forget() error {
	t := r.svc.m.t
	if err := t.DeletePrefix(keyAffs(r.key)); err != nil {
		return err
	}
	if err := t.Delete(keySubject(r.key)); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err := t.Delete(keyVCard(r.key)); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err := t.Delete(keyConfig(r.key)); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

// loadDirectory lists the persistent rooms of svcs at startup (or when their host is
// added): only their names and visibility, for disco#items; a room is loaded at its first
// stanza.
func (m *Mod) loadDirectory(svcs map[string]*service) error {
	var bad error
	err := m.t.Scan([]byte("c"), func(k, v []byte) bool {
		bare, err := jid.ParseBytes(k[1:])
		if err != nil {
			return true
		}
		s := svcs[bare.Domain()]
		if s == nil {
			return true // a virtual host no longer served, or not asked for
		}
		var sc storedConfig
		if err := json.Unmarshal(v, &sc); err != nil {
			bad = fmt.Errorf("muc: room %s: %w", bare, store.ErrCorrupt)
			return true
		}
		s.dir.rooms[bare.String()] = &dirEntry{name: sc.Config.Name, card: cardOf(&sc.Config), public: sc.Config.Public, persisted: true,
			creator: sc.Creator}
		return true
	})
	if err != nil {
		return fmt.Errorf("muc: list rooms: %w", err)
	}
	if bad != nil {
		m.log.Error().Err(bad).Msg("muc: skipped a room")
	}
	return nil
}

// load reads a persistent room.
func (s *service) load(bare jid.JID) (*room, error) {
	key := bare.String()
	t := s.m.t
	v, err := t.Get(keyConfig(key))
	if err != nil {
		return nil, err
	}
	r := newRoom(s, bare)
	var sc storedConfig
	if err := json.Unmarshal(v, &sc); err != nil {
		return nil, fmt.Errorf("config: %w", store.ErrCorrupt)
	}
	r.cfg = sc.Config
	r.creator = sc.Creator
	r.cfg.Persistent = true
	if v, err := t.Get(keySubject(key)); err == nil {
		var ss storedSubject
		if json.Unmarshal(v, &ss) == nil {
			r.subject = subject{text: ss.Text, nick: ss.Nick, occID: ss.OccID, at: ss.At, set: true}
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	if v, err := t.Get(keyVCard(key)); err == nil {
		hashes, _ := splitVCard(v)
		r.vcard = &roomVCard{hashes: hashes}
	} else if !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	prefix := keyAffs(key)
	err = t.Scan(prefix, func(k, v []byte) bool {
		var sa storedAff
		if json.Unmarshal(v, &sa) != nil {
			return true
		}
		a, ok := parseAffiliation(sa.Aff)
		if !ok {
			return true
		}
		r.affs[string(k[len(prefix):])] = affRecord{aff: a, nick: sa.Nick}
		return true
	})
	if err != nil {
		return nil, err
	}
	return r, nil
}
