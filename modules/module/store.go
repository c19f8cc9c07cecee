package module

import (
	"errors"

	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

// StoreError is the stanza error for a store write that failed on behalf of a client:
// resource-constraint (type wait: retry later) when the disk is full, and
// internal-server-error for anything else that could not be stored.
func StoreError(err error) *stanza.Error {
	if errors.Is(err, store.ErrFull) {
		e := stanza.New(stanza.ResourceConstraintCond)
		e.Text = "server storage is full; try again later"
		return e
	}
	return stanza.New(stanza.InternalServerErrorCond)
}

// LogStoreError reports whether a failed store write deserves a log line of its own: a
// full disk is logged once by the store, not once per stanza.
func LogStoreError(err error) bool { return !errors.Is(err, store.ErrFull) }
