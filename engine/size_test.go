package engine

import (
	"testing"
	"unsafe"
)

// TestConnSize pins the per-connection struct: every byte here is multiplied by the
// number of idle connections. Grow it only with a reason in the commit message.
func TestConnSize(t *testing.T) {
	if s := unsafe.Sizeof(conn{}); s > 192 {
		t.Fatalf("conn is %d bytes; keep it at most 192", s)
	}
	t.Logf("conn: %d bytes", unsafe.Sizeof(conn{}))
}

func TestGnetAddrDualStack(t *testing.T) {
	for in, want := range map[string]string{"[::]:5222": ":5222", ":5222": ":5222", "0.0.0.0:5222": "0.0.0.0:5222", "127.0.0.1:1": "127.0.0.1:1", "[::1]:5": "[::1]:5"} {
		a, err := resolveAddr(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := gnetAddr(a); got != want {
			t.Errorf("%s -> %s, want %s", in, got, want)
		}
	}
}
