// Command relayfloor measures the least CPU a server on this machine can spend to pass one
// message from one TCP connection to another: a relay that does nothing else.
//
// The relay is a child process (so that its CPU is its own, read from /proc/PID/stat). Each
// of -users connections first says who it is; after that it sends frames (recipient, length,
// payload) and the relay writes each whole frame to the recipient's connection, as an XMPP
// server writes a message to its recipient. There is no parsing, no routing table but a
// slice, no storage: what it costs is the system calls, the wake-ups and the event loop.
// The generator offers -rate messages a second between random pairs and reports the relay's
// CPU per delivered message, the figure Vireo's message scenario reports (`xmppbench
// -scenario msg`), so the two can be put side by side.
//
//	relayfloor -rate 5000                 # the relay on gnet, a loop per processor
//	relayfloor -rate 5000 -loops 1        # one loop
//	relayfloor -rate 5000 -mode net       # Go's net package, a goroutine per connection
//	relayfloor -rate 5000 -mode rtpoll    # loops that wait in Go's poller (rtpoll.go)
//
// Only loopback is used. The run is bounded by -duration.
package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/vireo-im/vireo/bench/scenario"
)

// A frame is a 4-byte recipient, a 2-byte payload length and the payload. The generator's
// payload starts with the send time (8 bytes, Unix nanoseconds).
const hdr = 6

func main() {
	serve := flag.String("serve", "", "run the relay on this address (the parent starts it)")
	mode := flag.String("mode", "gnet", "relay: gnet (event loops), net (a goroutine per connection) or rtpoll (event loops that wait in the runtime's poller)")
	loops := flag.Int("loops", 0, "gnet event loops (0: one per processor)")
	batch := flag.Duration("batch", 0, "gnet: hold frames for another loop's connections and hand them over once per this interval (one wake-up of that loop for all of them) instead of one wake-up each")
	direct := flag.Bool("direct", false, "gnet: write a frame for another loop's connection from the loop that read it (write(2) on its socket) instead of waking that loop; see serveGnet")
	users := flag.Int("users", 1000, "connections")
	rate := flag.Int("rate", 5000, "messages per second offered")
	size := flag.Int("size", 300, "bytes per message, header included (an XMPP chat message with a short body is ~300)")
	dur := flag.Duration("duration", 10*time.Second, "measured time (after 1 s of warm-up)")
	logins := flag.Int("logins", 0, "instead of relaying messages: this many connections, each making -exchanges request/answer round trips and closing (the login floor)")
	exchanges := flag.Int("exchanges", 6, "with -logins: round trips per connection")
	conc := flag.Int("conc", 64, "with -logins: connections at once")
	request := flag.Int("request", 150, "with -logins: bytes per request")
	enroll := flag.Bool("enroll", false, "with -logins, gnet: accept with Go's net package and hand each connection to a loop (gnet's Register), as Vireo's listeners do, instead of gnet's own listener")
	answer := flag.Int("answer", 0, "with -logins: bytes per answer (300 when 0); the server answers instead of relaying")
	flag.Parse()
	if *answer == 0 && *logins > 0 {
		*answer = 300
	}
	if *serve != "" {
		var err error
		ready := func() { fmt.Println("listening") }
		if *answer > 0 && *mode == "net" {
			err = serveAnswerNet(*serve, *answer, ready)
		} else if *answer > 0 {
			err = serveAnswerGnet(*serve, *loops, *answer, *enroll, ready)
		} else if *mode == "net" {
			err = serveNet(*serve, *users, ready)
		} else if *mode == "rtpoll" {
			err = serveRtpoll(*serve, *users, *loops, ready)
		} else {
			err = serveGnet(*serve, *users, *loops, *direct, *batch, ready)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "relayfloor:", err)
			os.Exit(1)
		}
		return
	}
	if *logins > 0 {
		if *exchanges < 1 || *conc < 1 || *request < hdr || *request > 65535 || *answer < hdr || *answer > 65535 {
			fmt.Fprintln(os.Stderr, "relayfloor: -exchanges ≥ 1, -conc ≥ 1, -request and -answer 6..65535")
			os.Exit(2)
		}
		res, err := runLogins(*mode, *loops, *enroll, *logins, *exchanges, *conc, *request, *answer)
		if err != nil {
			fmt.Fprintln(os.Stderr, "relayfloor:", err)
			os.Exit(1)
		}
		out, _ := json.MarshalIndent(res, "", "  ")
		fmt.Println(string(out))
		return
	}
	if *size < hdr+8 || *size > 65535 || *users < 2 || *rate < 1 || *dur <= 0 {
		fmt.Fprintln(os.Stderr, "relayfloor: -size 14..65535, -users ≥ 2, -rate ≥ 1, -duration > 0")
		os.Exit(2)
	}
	res, err := run(*mode, *loops, *direct, *batch, *users, *rate, *size, *dur)
	if err != nil {
		fmt.Fprintln(os.Stderr, "relayfloor:", err)
		os.Exit(1)
	}
	out, _ := json.MarshalIndent(res, "", "  ")
	fmt.Println(string(out))
}

// result is one run's outcome.
type result struct {
	Mode           string  `json:"mode"`
	Loops          int     `json:"loops,omitempty"`
	Direct         bool    `json:"direct,omitempty"`
	Batch          string  `json:"batch,omitempty"`
	Users          int     `json:"users"`
	Offered        int     `json:"offered_per_second"`
	Delivered      float64 `json:"delivered_per_second"`
	Lost           int64   `json:"lost"`
	Misdelivered   int64   `json:"misdelivered"`
	P50ms          float64 `json:"p50_ms"`
	P99ms          float64 `json:"p99_ms"`
	RelayCPUus     float64 `json:"relay_cpu_us_per_message"`
	GeneratorCPUus float64 `json:"generator_cpu_us_per_message"`
}

func run(mode string, loops int, direct bool, batch time.Duration, users, rate, size int, dur time.Duration) (result, error) {
	addr, pid, stop, err := startServer("-mode", mode, "-loops", strconv.Itoa(loops), "-users", strconv.Itoa(users),
		"-direct="+strconv.FormatBool(direct), "-batch", batch.String())
	if err != nil {
		return result{}, err
	}
	defer stop()
	r, err := drive(addr, pid, users, rate, size, dur)
	r.Mode = mode
	if mode == "gnet" {
		r.Loops, r.Direct, r.Batch = loops, direct, batch.String()
	}
	if mode == "rtpoll" {
		r.Loops = loops
	}
	return r, err
}

// startServer starts this command as the server (-serve on a free loopback port, with
// args) and waits until it listens. stop ends it.
func startServer(args ...string) (addr string, pid int, stop func(), err error) {
	self, err := os.Executable()
	if err != nil {
		return "", 0, nil, err
	}
	if addr, err = freeAddr(); err != nil {
		return "", 0, nil, err
	}
	cmd := exec.Command(self, append([]string{"-serve", addr}, args...)...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return "", 0, nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", 0, nil, err
	}
	stop = func() { cmd.Process.Kill(); cmd.Wait() }
	if err := awaitReady(stdout); err != nil {
		stop()
		return "", 0, nil, err
	}
	return addr, cmd.Process.Pid, stop, nil
}

// drive offers rate messages a second for 1 s of warm-up and dur measured to the relay
// at addr (process pid), and reads them back.
func drive(addr string, pid, users, rate, size int, dur time.Duration) (result, error) {
	r := result{Users: users, Offered: rate}
	conns := make([]net.Conn, users)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return r, err
		}
		defer c.Close()
		var id [4]byte
		binary.BigEndian.PutUint32(id[:], uint32(i))
		if _, err := c.Write(id[:]); err != nil {
			return r, err
		}
		conns[i] = c
	}
	time.Sleep(200 * time.Millisecond) // every hello read before the first frame is sent to it

	var (
		received, wrong atomic.Int64
		measure         atomic.Bool
		mu              sync.Mutex
		lat             []time.Duration
	)
	for i, c := range conns {
		go func(c net.Conn) {
			br := bufio.NewReaderSize(c, 4096)
			buf := make([]byte, size)
			for {
				if _, err := io.ReadFull(br, buf[:hdr]); err != nil {
					return
				}
				n := int(binary.BigEndian.Uint16(buf[4:6]))
				if hdr+n > len(buf) {
					wrong.Add(1)
					return
				}
				if _, err := io.ReadFull(br, buf[hdr:hdr+n]); err != nil {
					return
				}
				if binary.BigEndian.Uint32(buf[0:4]) != uint32(i) {
					wrong.Add(1)
				}
				if measure.Load() {
					received.Add(1)
					sent := int64(binary.BigEndian.Uint64(buf[hdr:]))
					d := time.Duration(time.Now().UnixNano() - sent)
					mu.Lock()
					lat = append(lat, d)
					mu.Unlock()
				}
			}
		}(c)
	}

	// One sender paces the whole rate in 1 ms ticks; a frame goes out on the sender's
	// connection, whole, in one write.
	frame := make([]byte, size)
	binary.BigEndian.PutUint16(frame[4:6], uint16(size-hdr))
	send := func(n int) error {
		for range n {
			src := rand.IntN(users)
			dst := rand.IntN(users - 1)
			if dst >= src {
				dst++
			}
			binary.BigEndian.PutUint32(frame[0:4], uint32(dst))
			binary.BigEndian.PutUint64(frame[hdr:], uint64(time.Now().UnixNano()))
			if _, err := conns[src].Write(frame); err != nil {
				return err
			}
		}
		return nil
	}
	pace := func(d time.Duration) (int64, error) {
		start := time.Now()
		var due int64
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for now := range tick.C {
			el := now.Sub(start)
			if el >= d {
				break
			}
			n := int64(float64(rate)*el.Seconds()) - due
			due += n
			if err := send(int(n)); err != nil {
				return due, err
			}
		}
		return due, nil
	}
	if _, err := pace(time.Second); err != nil {
		return r, err
	}
	time.Sleep(100 * time.Millisecond)
	relay0, err := procCPU(pid)
	if err != nil {
		return r, err
	}
	gen0 := selfCPU()
	measure.Store(true)
	sent, err := pace(dur)
	if err != nil {
		return r, err
	}
	// What was sent in the window has arrived when the count stops moving.
	for last := int64(-1); ; {
		time.Sleep(200 * time.Millisecond)
		n := received.Load()
		if n == last || n >= sent {
			break
		}
		last = n
	}
	measure.Store(false)
	relay1, err := procCPU(pid)
	if err != nil {
		return r, err
	}
	gen1 := selfCPU()
	got := received.Load()
	r.Lost = max(sent-got, 0)
	r.Misdelivered = wrong.Load()
	r.Delivered = float64(got) / dur.Seconds()
	if got > 0 {
		r.RelayCPUus = float64((relay1 - relay0).Microseconds()) / float64(got)
		r.GeneratorCPUus = float64((gen1 - gen0).Microseconds()) / float64(got)
	}
	mu.Lock()
	slices.Sort(lat)
	if len(lat) > 0 {
		r.P50ms = float64(lat[len(lat)/2].Microseconds()) / 1000
		r.P99ms = float64(lat[len(lat)*99/100].Microseconds()) / 1000
	}
	mu.Unlock()
	return r, nil
}

// awaitReady reads the child's output up to its "listening" line (gnet logs a line of its
// own before it), then drains the rest so that the child never blocks on a full pipe.
func awaitReady(out io.Reader) error {
	br := bufio.NewReader(out)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return fmt.Errorf("relay did not start: %w", err)
		}
		if line == "listening\n" {
			go io.Copy(io.Discard, br)
			return nil
		}
	}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// procCPU is the CPU pid has used (utime + stime); 0 is this process.
func procCPU(pid int) (time.Duration, error) {
	st, err := scenario.ReadProc(pid)
	return st.CPU, err
}

func selfCPU() time.Duration {
	d, _ := procCPU(0)
	return d
}

// serveGnet is the relay on gnet's event loops: a frame whose recipient is on the loop that
// read it is written there; one for another loop goes through gnet's queue and wakes that
// loop, as in Vireo.
//
// With direct, every frame is written by the loop that read it, with write(2) on the
// recipient's descriptor under a lock per recipient: no other thread wakes. It measures
// what the wake-up costs. The relay's connections live as long as the run; a server must
// also keep such writes off a descriptor gnet has closed (it calls OnClose first, so a
// lock OnClose takes does it) and behind the bytes the loop and gnet still hold. Vireo
// tried it that way and measured no saving (bench/results/profile.md, "Stop 38").
func serveGnet(addr string, users, loops int, direct bool, batch time.Duration, ready func()) error {
	h := &relay{conns: make([]atomic.Pointer[gnet.Conn], users), ready: ready, direct: direct, batch: batch}
	if direct {
		h.locks, h.fds = make([]sync.Mutex, users), make([]atomic.Int32, users)
	}
	if batch > 0 {
		h.held = map[gnet.EventLoop]*held{}
		go h.handOver()
	}
	opts := []gnet.Option{gnet.WithMulticore(true), gnet.WithTCPNoDelay(gnet.TCPNoDelay)}
	if loops > 0 {
		opts = append(opts, gnet.WithNumEventLoop(loops))
	}
	return gnet.Run(h, "tcp://"+addr, opts...)
}

type relay struct {
	gnet.BuiltinEventEngine
	conns  []atomic.Pointer[gnet.Conn]
	ready  func()
	direct bool // see serveGnet
	locks  []sync.Mutex
	fds    []atomic.Int32

	batch  time.Duration
	heldMu sync.Mutex
	held   map[gnet.EventLoop]*held
}

// held is what waits for one loop's next hand-over.
type held struct {
	mu     sync.Mutex
	frames []heldFrame
}

type heldFrame struct {
	to gnet.Conn
	b  []byte
}

func (h *relay) hold(d gnet.Conn, f []byte) {
	el := d.EventLoop()
	h.heldMu.Lock()
	q := h.held[el]
	if q == nil {
		q = &held{}
		h.held[el] = q
	}
	h.heldMu.Unlock()
	q.mu.Lock()
	q.frames = append(q.frames, heldFrame{d, slices.Clone(f)})
	q.mu.Unlock()
}

// handOver wakes each loop that has frames held for it once per interval.
func (h *relay) handOver() {
	for range time.Tick(h.batch) {
		h.heldMu.Lock()
		for el, q := range h.held {
			q.mu.Lock()
			fs := q.frames
			q.frames = nil
			q.mu.Unlock()
			if len(fs) == 0 {
				continue
			}
			el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
				for _, f := range fs {
					f.to.Write(f.b)
				}
				return nil
			}))
		}
		h.heldMu.Unlock()
	}
}

// writeDirect writes f to connection dst's descriptor, which the loop that read dst's
// hello recorded: no field of another loop's gnet connection is read here.
func (h *relay) writeDirect(dst int, d gnet.Conn, f []byte) {
	h.locks[dst].Lock()
	n, err := syscall.Write(int(h.fds[dst].Load()), f)
	h.locks[dst].Unlock()
	if err != nil || n < len(f) {
		// A full socket buffer (not seen at these rates): the rest goes the queued way.
		d.AsyncWrite(slices.Clone(f[max(n, 0):]), nil)
	}
}

func (h *relay) OnBoot(gnet.Engine) gnet.Action {
	h.ready()
	return gnet.None
}

// OnOpen marks the connection as not yet named; OnTraffic's first four bytes name it.
func (h *relay) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	c.SetContext(-1)
	return nil, gnet.None
}

func (h *relay) OnTraffic(c gnet.Conn) gnet.Action {
	if c.Context().(int) < 0 {
		b, err := c.Next(4)
		if err != nil {
			return gnet.None
		}
		id := int(binary.BigEndian.Uint32(b))
		if id >= len(h.conns) {
			return gnet.Close
		}
		c.SetContext(id)
		if h.direct {
			h.fds[id].Store(int32(c.Fd()))
		}
		h.conns[id].Store(&c)
	}
	for {
		b, _ := c.Peek(hdr)
		if len(b) < hdr {
			return gnet.None
		}
		n := hdr + int(binary.BigEndian.Uint16(b[4:6]))
		f, _ := c.Peek(n)
		if len(f) < n {
			return gnet.None
		}
		dst := int(binary.BigEndian.Uint32(f[0:4]))
		if dst < len(h.conns) {
			if p := h.conns[dst].Load(); p != nil {
				d := *p
				if h.direct {
					h.writeDirect(dst, d, f)
				} else if d.EventLoop() == c.EventLoop() {
					d.Write(f)
				} else if h.batch > 0 {
					h.hold(d, f)
				} else {
					d.AsyncWrite(slices.Clone(f), nil)
				}
			}
		}
		c.Discard(n)
	}
}

// serveNet is the relay on Go's net package: a goroutine per connection reads frames and
// writes each to its recipient's connection itself, under that connection's lock.
func serveNet(addr string, users int, ready func()) error {
	type peer struct {
		mu sync.Mutex
		c  net.Conn
	}
	peers := make([]atomic.Pointer[peer], users)
	return acceptEach(addr, ready, func(c net.Conn) {
		br := bufio.NewReaderSize(c, 4096)
		var id [4]byte
		if _, err := io.ReadFull(br, id[:]); err != nil {
			return
		}
		i := int(binary.BigEndian.Uint32(id[:]))
		if i >= users {
			return
		}
		peers[i].Store(&peer{c: c})
		buf := make([]byte, 65536+hdr)
		for {
			if _, err := io.ReadFull(br, buf[:hdr]); err != nil {
				return
			}
			n := hdr + int(binary.BigEndian.Uint16(buf[4:6]))
			if _, err := io.ReadFull(br, buf[hdr:n]); err != nil {
				return
			}
			if d := peers[int(binary.BigEndian.Uint32(buf[0:4]))%users].Load(); d != nil {
				d.mu.Lock()
				d.c.Write(buf[:n])
				d.mu.Unlock()
			}
		}
	})
}

// acceptEach listens on addr, calls ready, then serves each connection on a goroutine of
// its own with serve, closing it when serve returns.
func acceptEach(addr string, ready func(), serve func(net.Conn)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ready()
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		go func() {
			defer c.Close()
			serve(c)
		}()
	}
}
