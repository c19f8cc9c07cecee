package router

import (
	"math/rand/v2"
	"sort"
	"testing"
	"unsafe"
)

// TestExpiries: entries come out earliest first whatever order they went in, and a heap
// that a storm filled gives its array back once mostly empty.
func TestExpiries(t *testing.T) {
	for _, n := range []int{1, 2, 3, 10, 5000} {
		var h expiries
		var want []int64
		for i := 0; i < n; i++ {
			at := rand.Int64N(1000)
			h.push(expiry{at: at})
			want = append(want, at)
		}
		sort.Slice(want, func(i, j int) bool { return want[i] < want[j] })
		for i, w := range want {
			if got := h.pop().at; got != w {
				t.Fatalf("n=%d: pop %d is %d, want %d", n, i, got, w)
			}
		}
		if len(h) != 0 || cap(h) > 1024 {
			t.Fatalf("n=%d: %d left, capacity %d", n, len(h), cap(h))
		}
	}
	if s := unsafe.Sizeof(expiry{}); s != 24 {
		t.Fatalf("an expiry is %d bytes, want 24", s)
	}
}
