package router

import (
	"runtime"
	"testing"

	"github.com/vireo-im/vireo/xmlstream/jid"
)

// BenchmarkMPSC pushes from two producers and pops from one consumer.
func BenchmarkMPSC(b *testing.B) {
	q := newMPSC(4096) // bounded well below the ring, so no node is reused while queued
	ops := make([]op, 1<<17)
	b.ReportAllocs()
	done := make(chan struct{})
	go func() {
		n := 0
		for n < b.N {
			if q.pop() != nil {
				n++
				continue
			}
			q.park(nil)
		}
		close(done)
	}()
	b.ResetTimer()
	half := b.N / 2
	go func() {
		for i := 0; i < half; i++ {
			for !q.push(&ops[i%(1<<16)]) {
				runtime.Gosched()
			}
		}
	}()
	for i := half; i < b.N; i++ {
		for !q.push(&ops[1<<16+i%(1<<16)]) {
			runtime.Gosched()
		}
	}
	<-done
}

// BenchmarkChan is the same workload on a buffered channel.
func BenchmarkChan(b *testing.B) {
	q := make(chan *op, 4096)
	ops := make([]op, 1024)
	b.ReportAllocs()
	done := make(chan struct{})
	go func() {
		for i := 0; i < b.N; i++ {
			<-q
		}
		close(done)
	}()
	b.ResetTimer()
	half := b.N / 2
	go func() {
		for i := 0; i < half; i++ {
			q <- &ops[i%512]
		}
	}()
	for i := half; i < b.N; i++ {
		q <- &ops[512+i%512]
	}
	<-done
}

// HoldShardOf locks the shard of bare, as its worker does while it runs ops, until the
// returned func is called.
func (r *Router) HoldShardOf(bare string) func() {
	s := r.shardOf(bare)
	s.mu.Lock()
	return s.mu.Unlock
}

// SameShard reports whether the users a and b live on one shard.
func (r *Router) SameShard(a, b string) bool { return r.shardOf(a) == r.shardOf(b) }

// Walled exposes the isolated hosts' check: the error text for a stanza from from to to,
// or "".
func Walled(r *Router, from, to jid.JID) string {
	if e := r.walled(from, to); e != nil {
		return e.Text
	}
	return ""
}
