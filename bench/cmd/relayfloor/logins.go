package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// The login floor: a server that answers every request frame with a canned answer frame,
// nothing computed. A client connects, makes -exchanges request/answer round trips (a
// legacy XMPP login is about six: stream header and features, SASL auth and challenge,
// response and success, restart and features, bind, and the close) and closes; the server
// closes when the client does. Its CPU per connection is what the connections, wake-ups
// and small writes of a login cost here before any XML, SCRAM or storage.

// loginResult is a login-floor run's outcome.
type loginResult struct {
	Mode        string  `json:"mode"`
	Loops       int     `json:"loops,omitempty"`
	Enroll      bool    `json:"enroll,omitempty"`
	Logins      int     `json:"logins"`
	Exchanges   int     `json:"exchanges"`
	PerSecond   float64 `json:"logins_per_second"`
	Failures    int64   `json:"failures"`
	ServerCPUus float64 `json:"server_cpu_us_per_login"`
	GenCPUus    float64 `json:"generator_cpu_us_per_login"`
}

func runLogins(mode string, loops int, enroll bool, logins, exchanges, conc, request, answer int) (loginResult, error) {
	r := loginResult{Mode: mode, Logins: logins, Exchanges: exchanges}
	if mode == "gnet" {
		r.Loops, r.Enroll = loops, enroll
	}
	addr, pid, stop, err := startServer("-mode", mode, "-loops", strconv.Itoa(loops), "-answer", strconv.Itoa(answer),
		"-enroll="+strconv.FormatBool(enroll))
	if err != nil {
		return r, err
	}
	defer stop()
	// A warm-up of a tenth, then the measured logins.
	if _, err := storm(addr, max(logins/10, conc), exchanges, conc, request); err != nil {
		return r, err
	}
	s0, err := procCPU(pid)
	if err != nil {
		return r, err
	}
	g0 := selfCPU()
	t0 := time.Now()
	fails, err := storm(addr, logins, exchanges, conc, request)
	if err != nil {
		return r, err
	}
	el := time.Since(t0)
	s1, err := procCPU(pid)
	if err != nil {
		return r, err
	}
	g1 := selfCPU()
	r.Failures = fails
	r.PerSecond = float64(logins) / el.Seconds()
	r.ServerCPUus = float64((s1 - s0).Microseconds()) / float64(logins)
	r.GenCPUus = float64((g1 - g0).Microseconds()) / float64(logins)
	return r, nil
}

// storm makes n connections, conc at a time, each with its exchanges and a close. It
// returns how many failed (an answer that did not come whole).
func storm(addr string, n, exchanges, conc, request int) (int64, error) {
	var next, fails atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, conc)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := make([]byte, request)
			binary.BigEndian.PutUint16(req[4:6], uint16(request-hdr))
			ans := make([]byte, 65536+hdr)
			for next.Add(1) <= int64(n) {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					errc <- err
					return
				}
				c.SetDeadline(time.Now().Add(10 * time.Second)) // a lost answer fails the login, not the run
				ok := true
				for range exchanges {
					if _, err := c.Write(req); err != nil {
						ok = false
						break
					}
					if _, err := io.ReadFull(c, ans[:hdr]); err != nil {
						ok = false
						break
					}
					m := int(binary.BigEndian.Uint16(ans[4:6]))
					if _, err := io.ReadFull(c, ans[hdr:hdr+m]); err != nil {
						ok = false
						break
					}
				}
				c.Close()
				if !ok {
					fails.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return fails.Load(), err
	default:
	}
	return fails.Load(), nil
}

// answerFrame is the canned answer of size bytes.
func answerFrame(size int) []byte {
	b := make([]byte, size)
	binary.BigEndian.PutUint16(b[4:6], uint16(size-hdr))
	return b
}

// serveAnswerGnet answers on gnet's event loops. They accept too (gnet's own listener),
// or, with enroll, a goroutine accepts with Go's net package and hands each connection
// to a loop (gnet's Register, which duplicates the descriptor on a worker goroutine): the
// way Vireo's listeners work, so that a reload can open and close them.
func serveAnswerGnet(addr string, loops, answer int, enroll bool, ready func()) error {
	h := &answerer{ans: answerFrame(answer), ready: ready}
	opts := []gnet.Option{gnet.WithMulticore(true)}
	if loops > 0 {
		opts = append(opts, gnet.WithNumEventLoop(loops))
	}
	if !enroll {
		return gnet.Run(h, "tcp://"+addr, opts...)
	}
	h.enroll = func(eng gnet.Engine) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			fmt.Fprintln(os.Stderr, "relayfloor:", err)
			os.Exit(1)
		}
		ready()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			ch, err := eng.Register(gnet.NewNetConnContext(context.Background(), c))
			if err != nil {
				c.Close()
				continue
			}
			go func() { <-ch }()
		}
	}
	// An engine with no listener of its own: gnet binds one it never reads from a
	// port nobody dials, the least it takes.
	return gnet.Rotate(h, []string{"tcp://127.0.0.1:0"}, append(opts, gnet.WithLoadBalancing(gnet.LeastConnections), gnet.WithTicker(true))...)
}

type answerer struct {
	gnet.BuiltinEventEngine
	ans    []byte
	ready  func()
	enroll func(gnet.Engine)
	eng    gnet.Engine
	once   sync.Once
}

func (h *answerer) OnBoot(eng gnet.Engine) gnet.Action {
	h.eng = eng
	if h.enroll == nil {
		h.ready()
	}
	return gnet.None
}

// OnTick starts the accepting goroutine: gnet calls OnBoot before its loops are
// registered (a Register then finds none, or races with their registration), and the
// first tick after.
func (h *answerer) OnTick() (time.Duration, gnet.Action) {
	if h.enroll != nil {
		h.once.Do(func() { go h.enroll(h.eng) })
	}
	return time.Hour, gnet.None
}

func (h *answerer) OnTraffic(c gnet.Conn) gnet.Action {
	for {
		b, _ := c.Peek(hdr)
		if len(b) < hdr {
			return gnet.None
		}
		n := hdr + int(binary.BigEndian.Uint16(b[4:6]))
		if c.InboundBuffered() < n {
			return gnet.None
		}
		c.Discard(n)
		c.Write(h.ans)
	}
}

// serveAnswerNet answers with Go's net package, a goroutine per connection.
func serveAnswerNet(addr string, answer int, ready func()) error {
	ans := answerFrame(answer)
	return acceptEach(addr, ready, func(c net.Conn) {
		br := bufio.NewReaderSize(c, 4096)
		buf := make([]byte, 65536+hdr)
		for {
			if _, err := io.ReadFull(br, buf[:hdr]); err != nil {
				return
			}
			n := int(binary.BigEndian.Uint16(buf[4:6]))
			if _, err := io.ReadFull(br, buf[hdr:hdr+n]); err != nil {
				return
			}
			if _, err := c.Write(ans); err != nil {
				return
			}
		}
	})
}
