package upload

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// keySize is the length of the HMAC key in data_dir/upload.key.
const keySize = 32

// slot is a granted, not yet used upload slot.
type slot struct {
	id      string // 32 lowercase hex digits: the directory under data_dir/upload
	name    string // cleaned file name
	ctype   string // announced content type, "" when none
	owner   string // bare JID of the requester
	size    int64
	expires time.Time
}

// newSlotID returns 128 random bits in hex.
func newSlotID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validID reports whether id looks like newSlotID's output (and so is a safe path element).
func validID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// token is the Authorization value of s: "Bearer " and the base64url HMAC-SHA-256 over every
// field of the slot, each length-prefixed so that no two slots share an input.
func token(key []byte, s *slot) string {
	h := hmac.New(sha256.New, key)
	var b []byte
	for _, f := range []string{"urn:xmpp:http:upload:0 put", s.id, s.name, s.ctype, s.owner} {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	b = binary.BigEndian.AppendUint64(b, uint64(s.size))
	b = binary.BigEndian.AppendUint64(b, uint64(s.expires.Unix()))
	h.Write(b)
	return "Bearer " + base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// Errors of checkPut; the HTTP handler maps them to status codes.
var (
	errBadToken    = errors.New("upload: bad or missing authorization")
	errExpired     = errors.New("upload: slot expired")
	errSize        = errors.New("upload: content length differs from the slot's size")
	errContentType = errors.New("upload: content type differs from the slot's")
	errName        = errors.New("upload: file name differs from the slot's")
)

// checkPut checks a PUT against its slot: the token (in constant time), the expiry, the
// file name in the URL, the length and the content type. ctype is the request's
// Content-Type header; a slot requested without a type takes any.
func checkPut(key []byte, s *slot, auth, name string, length int64, ctype string, now time.Time) error {
	if !hmac.Equal([]byte(auth), []byte(token(key, s))) {
		return errBadToken
	}
	if !now.Before(s.expires) {
		return errExpired
	}
	if name != s.name {
		return errName
	}
	if length != s.size {
		return errSize
	}
	if s.ctype != "" && ctype != s.ctype {
		return errContentType
	}
	return nil
}

// loadKey reads the HMAC key at path, or makes one (mode 0600) on first start: kept beside
// the database, not in it, so a copy of the database alone cannot forge a slot.
func loadKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		if len(b) < keySize {
			return nil, fmt.Errorf("upload: %s holds %d bytes, want %d", path, len(b), keySize)
		}
		return b, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("upload: %w", err)
	}
	key := make([]byte, keySize)
	rand.Read(key)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("upload: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return loadKey(path) // another process made it first
		}
		return nil, fmt.Errorf("upload: %w", err)
	}
	if _, err := f.Write(key); err != nil {
		f.Close()
		return nil, fmt.Errorf("upload: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("upload: %w", err)
	}
	return key, f.Close()
}
