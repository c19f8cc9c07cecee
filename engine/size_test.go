package engine

import (
	"testing"
	"unsafe"
)

// TestConnSize pins the per-connection struct: every byte here is multiplied by the
// number of idle connections. Grow it only with a reason in the commit message.
func TestConnSize(t *testing.T) {
	if s := unsafe.Sizeof(conn{}); s > 176 {
		t.Fatalf("conn is %d bytes; keep it at most 176", s)
	}
	t.Logf("conn: %d bytes", unsafe.Sizeof(conn{}))
}
