package main

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// serveRtpoll is the relay on event loops of its own that wait for their epoll descriptor
// through Go's network poller instead of in epoll_wait: a loop with nothing to do parks its
// goroutine and gives its processor back, where a gnet loop keeps its processor in the
// system call until the runtime's monitor takes it (see bench/results/profile.md, stop 36).
// Everything else is as in serveGnet: connections spread over the loops, a frame for a
// connection of the same loop written at once, one for another loop's queued to that loop
// with one eventfd wake-up per empty-to-non-empty queue.
func serveRtpoll(addr string, users, loops int, ready func()) error {
	if loops <= 0 {
		loops = runtime.GOMAXPROCS(0)
	}
	s := &rtServer{ids: make([]atomic.Pointer[rtConn], users), byFd: make([]atomic.Pointer[rtConn], 1<<16)}
	for range loops {
		l, err := newRtLoop(s)
		if err != nil {
			return err
		}
		s.loops = append(s.loops, l)
		go l.run()
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	ready()
	for i := 0; ; i++ {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		sc, err := c.(*net.TCPConn).SyscallConn()
		if err != nil {
			return err
		}
		var fd int
		var derr error
		sc.Control(func(f uintptr) { fd, derr = unix.Dup(int(f)) })
		c.Close()
		if derr != nil {
			return derr
		}
		if fd >= len(s.byFd) {
			unix.Close(fd)
			continue
		}
		if err := unix.SetNonblock(fd, true); err != nil {
			return err
		}
		l := s.loops[i%len(s.loops)]
		rc := &rtConn{fd: fd, loop: l, id: -1}
		s.byFd[fd].Store(rc)
		if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
			return err
		}
	}
}

// fail ends the relay process: a loop that cannot wait any more cannot relay.
func fail(err error) {
	fmt.Fprintln(os.Stderr, "relayfloor: loop:", err)
	os.Exit(1)
}

type rtServer struct {
	loops []*rtLoop
	ids   []atomic.Pointer[rtConn]
	byFd  []atomic.Pointer[rtConn]
}

type rtConn struct {
	fd   int
	loop *rtLoop
	id   int
	in   []byte
	out  []byte // what a short write left, sent when the socket is writable
}

type rtLoop struct {
	s      *rtServer
	epfd   int
	efd    int
	mu     sync.Mutex
	queued []rtFrame
	spare  []rtFrame
	buf    []byte
	events []unix.EpollEvent
}

type rtFrame struct {
	to *rtConn
	b  []byte
}

func newRtLoop(s *rtServer) (*rtLoop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, efd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(efd)}); err != nil {
		return nil, err
	}
	if err := unix.SetNonblock(epfd, true); err != nil {
		return nil, err
	}
	return &rtLoop{s: s, epfd: epfd, efd: efd, buf: make([]byte, 64<<10), events: make([]unix.EpollEvent, 128)}, nil
}

// run waits for the loop's epoll descriptor in the runtime's poller (a non-blocking
// descriptor given to os.NewFile is registered there) and handles what epoll_wait with no
// timeout returns until it returns nothing.
func (l *rtLoop) run() {
	f := os.NewFile(uintptr(l.epfd), "epoll")
	rc, err := f.SyscallConn()
	if err != nil {
		fail(err)
	}
	for {
		err := rc.Read(func(uintptr) bool {
			n, err := unix.EpollWait(l.epfd, l.events, 0)
			if n <= 0 || err != nil {
				return false
			}
			l.handle(l.events[:n])
			return true
		})
		if err != nil {
			fail(err)
		}
		runtime.KeepAlive(f)
	}
}

func (l *rtLoop) handle(evs []unix.EpollEvent) {
	for _, ev := range evs {
		fd := int(ev.Fd)
		if fd == l.efd {
			var b [8]byte
			unix.Read(l.efd, b[:])
			l.mu.Lock()
			q := l.queued
			l.queued = l.spare[:0]
			l.mu.Unlock()
			for _, f := range q {
				l.write(f.to, f.b)
			}
			l.spare = q[:0]
			continue
		}
		c := l.s.byFd[fd].Load()
		if c == nil {
			continue
		}
		if ev.Events&unix.EPOLLOUT != 0 && len(c.out) > 0 {
			out := c.out
			c.out = nil
			l.write(c, out)
			if len(c.out) == 0 {
				unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)})
			}
		}
		if ev.Events&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			l.read(c)
		}
	}
}

func (l *rtLoop) read(c *rtConn) {
	n, err := unix.Read(c.fd, l.buf)
	if n <= 0 {
		if err == unix.EAGAIN {
			return
		}
		unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
		l.s.byFd[c.fd].Store(nil)
		if c.id >= 0 {
			l.s.ids[c.id].Store(nil)
		}
		unix.Close(c.fd)
		return
	}
	b := l.buf[:n]
	if len(c.in) > 0 {
		c.in = append(c.in, b...)
		b = c.in
	}
	if c.id < 0 {
		if len(b) < 4 {
			c.in = append(c.in[:0], b...)
			return
		}
		id := int(uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]))
		if id >= len(l.s.ids) {
			return
		}
		c.id = id
		l.s.ids[id].Store(c)
		b = b[4:]
	}
	for len(b) >= hdr {
		m := hdr + int(uint16(b[4])<<8|uint16(b[5]))
		if len(b) < m {
			break
		}
		dst := int(uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]))
		if dst < len(l.s.ids) {
			if d := l.s.ids[dst].Load(); d != nil {
				if d.loop == l {
					l.write(d, b[:m])
				} else {
					d.loop.push(d, slices.Clone(b[:m]))
				}
			}
		}
		b = b[m:]
	}
	c.in = append(c.in[:0], b...)
}

// push queues b for d on this loop and wakes the loop when the queue was empty.
func (l *rtLoop) push(d *rtConn, b []byte) {
	l.mu.Lock()
	wake := len(l.queued) == 0
	l.queued = append(l.queued, rtFrame{d, b})
	l.mu.Unlock()
	if wake {
		one := [8]byte{7: 1}
		unix.Write(l.efd, one[:])
	}
}

func (l *rtLoop) write(c *rtConn, b []byte) {
	if len(c.out) > 0 {
		c.out = append(c.out, b...)
		return
	}
	n, err := unix.Write(c.fd, b)
	if n < 0 {
		n = 0
	}
	if n < len(b) && (err == nil || err == unix.EAGAIN) {
		c.out = append(c.out, b[n:]...)
		unix.EpollCtl(l.epfd, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLOUT, Fd: int32(c.fd)})
	}
}
