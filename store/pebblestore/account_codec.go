package pebblestore

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"time"

	"github.com/vireo-im/vireo/store"
)

// Accounts are read at every login, so their record is a compact binary one rather than
// JSON (whose decoding cost ~50 µs of a ~400 µs login). Records written as JSON by
// earlier versions still read; they are rewritten in binary at their next change.
//
//	0x01 | uvarint len, user | varint created (Unix ns, 0 for none) |
//	3 × (uvarint len, salt | uvarint iter | uvarint len, stored key | uvarint len, server key) |
//	uvarint flags (1: disabled, 2: external)
const accountV1 = 0x01

var errAccountRecord = errors.New("account record")

func encodeAccount(a store.Account) []byte {
	n := 1 + 2*binary.MaxVarintLen64 + len(a.User)
	for _, c := range a.Creds {
		n += 4*binary.MaxVarintLen64 + len(c.Salt) + len(c.StoredKey) + len(c.ServerKey)
	}
	b := make([]byte, 0, n)
	b = append(b, accountV1)
	b = appendBytes(b, []byte(a.User))
	var created int64
	if !a.Created.IsZero() {
		created = a.Created.UnixNano()
	}
	b = binary.AppendVarint(b, created)
	for _, c := range a.Creds {
		b = appendBytes(b, c.Salt)
		b = binary.AppendUvarint(b, uint64(c.Iter))
		b = appendBytes(b, c.StoredKey)
		b = appendBytes(b, c.ServerKey)
	}
	var flags uint64
	if a.Disabled {
		flags |= flagDisabled
	}
	if a.External {
		flags |= flagExternal
	}
	if a.Anonymous {
		flags |= flagAnonymous
	}
	return binary.AppendUvarint(b, flags)
}

const (
	flagDisabled  = 1
	flagExternal  = 2
	flagAnonymous = 4
)

func appendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

func decodeAccount(v []byte) (store.Account, error) {
	var a store.Account
	if len(v) > 0 && v[0] == '{' {
		err := json.Unmarshal(v, &a)
		return a, err
	}
	if len(v) == 0 || v[0] != accountV1 {
		return a, errAccountRecord
	}
	d := decoder{b: v[1:]}
	a.User = string(d.bytes())
	if ns := d.varint(); ns != 0 {
		a.Created = time.Unix(0, ns).UTC()
	}
	for i := range a.Creds {
		c := &a.Creds[i]
		c.Salt = d.bytes()
		c.Iter = int(d.uvarint())
		c.StoredKey = d.bytes()
		c.ServerKey = d.bytes()
	}
	flags := d.uvarint()
	a.Disabled, a.External, a.Anonymous = flags&flagDisabled != 0, flags&flagExternal != 0, flags&flagAnonymous != 0
	if d.bad {
		return store.Account{}, errAccountRecord
	}
	return a, nil
}

// decoder reads the fields of a record; bad is set at the first one that does not fit.
type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.bad = true
		return 0
	}
	d.b = d.b[n:]
	return v
}

// bytes returns a copy of a length-prefixed field (nil when empty), so the record's buffer
// may be reused.
func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if d.bad || n > uint64(len(d.b)) {
		d.bad = true
		return nil
	}
	if n == 0 {
		return nil
	}
	p := append([]byte(nil), d.b[:n]...)
	d.b = d.b[n:]
	return p
}
