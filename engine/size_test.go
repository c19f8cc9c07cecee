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

// TestSMStateSize pins what XEP-0198 adds to an idle session (issue 11's aim: 200 bytes,
// with the table entry; the id is not kept, see smTable). 64 is a size class: one byte
// more costs 16.
func TestSMStateSize(t *testing.T) {
	if s := unsafe.Sizeof(smState{}); s > 64 {
		t.Fatalf("smState is %d bytes; keep it at most 64", s)
	}
	t.Logf("smState: %d bytes", unsafe.Sizeof(smState{}))
}

// TestEdgeChanSize pins what a client connected through an edge costs the core besides
// its conn, in place of a gnet connection and its buffers (split_core.go). 160 is a size
// class.
func TestEdgeChanSize(t *testing.T) {
	if s := unsafe.Sizeof(edgeChan{}); s > 160 {
		t.Fatalf("edgeChan is %d bytes; keep it at most 160", s)
	}
	t.Logf("edgeChan: %d bytes", unsafe.Sizeof(edgeChan{}))
}
