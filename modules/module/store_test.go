package module_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/xmlstream/stanza"
)

func TestStoreError(t *testing.T) {
	for _, tc := range []struct {
		err  error
		cond stanza.Condition
		typ  stanza.ErrorType
		log  bool
	}{
		{fmt.Errorf("%w: 0 bytes free", store.ErrFull), stanza.ResourceConstraintCond, stanza.Wait, false},
		{store.ErrCorrupt, stanza.InternalServerErrorCond, stanza.Cancel, true},
		{errors.New("pebble: closed"), stanza.InternalServerErrorCond, stanza.Cancel, true},
	} {
		e := module.StoreError(tc.err)
		if e.Condition != tc.cond || e.Type != tc.typ {
			t.Errorf("StoreError(%v) = %s/%s, want %s/%s", tc.err, e.Condition, e.Type, tc.cond, tc.typ)
		}
		if got := module.LogStoreError(tc.err); got != tc.log {
			t.Errorf("LogStoreError(%v) = %v", tc.err, got)
		}
	}
}
