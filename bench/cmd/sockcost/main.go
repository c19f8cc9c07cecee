// Command sockcost measures what the kernel keeps for one idle TCP connection on this
// machine: it opens N loopback connection pairs, lets them settle, and reads the growth of
// the kernel's slab memory and of TCP's buffer pages (/proc/meminfo, /proc/net/sockstat).
// Both ends of a loopback pair are sockets of this machine, so the figure per connection
// is half the growth per pair: what a server pays for its side of one client connection.
//
// It sends nothing on the connections (idle sessions after login hold no queued data), so
// socket buffers are empty; a busy connection costs more while data is in flight.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	n := flag.Int("n", 8000, "connection pairs to open (each pair is two file descriptors here)")
	flag.Parse()
	var lim syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	if uint64(2**n+64) > lim.Cur {
		fmt.Fprintf(os.Stderr, "sockcost: %d pairs need %d descriptors; the limit is %d\n", *n, 2**n+64, lim.Cur)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	accepted := make(chan net.Conn, *n)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	settle()
	slab0, tcp0 := slab(), tcpPages()
	conns := make([]net.Conn, 0, 2**n)
	for i := 0; i < *n; i++ {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			fmt.Fprintf(os.Stderr, "sockcost: after %d pairs: %v\n", i, err)
			os.Exit(1)
		}
		conns = append(conns, c, <-accepted)
	}
	settle()
	slab1, tcp1 := slab(), tcpPages()
	perPair := float64(slab1-slab0) / float64(*n)
	tcpPer := float64(tcp1-tcp0) * float64(os.Getpagesize()) / float64(*n)
	fmt.Printf("pairs: %d\nkernel slab growth: %d KiB (%.0f B per pair, %.0f B per connection end)\n",
		*n, (slab1-slab0)>>10, perPair, perPair/2)
	fmt.Printf("TCP buffer pages growth: %.0f B per pair\n", tcpPer)
	fmt.Printf("per server-side connection: %.0f B\n", (perPair+tcpPer)/2)
	runtime.KeepAlive(conns)
}

// settle gives the kernel time to finish handshakes and free what it frees lazily.
func settle() { time.Sleep(2 * time.Second) }

// slab is Slab from /proc/meminfo (reclaimable and not), in bytes.
func slab() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Slab:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// tcpPages is the "mem" field of the TCP line of /proc/net/sockstat: pages of socket buffers.
func tcpPages() int64 {
	b, _ := os.ReadFile("/proc/net/sockstat")
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 0 && f[0] == "TCP:" {
			for i := 1; i+1 < len(f); i += 2 {
				if f[i] == "mem" {
					v, _ := strconv.ParseInt(f[i+1], 10, 64)
					return v
				}
			}
		}
	}
	return 0
}
