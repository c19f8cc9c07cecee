// Package extauth asks an operator's program whether a password is right, so that a site
// with a user database of its own (a forum, a web shop, a company directory) logs its users
// in with the passwords they already have. It speaks the protocol of ejabberd's external
// authentication scripts, which Prosody's mod_auth_external speaks too, so the scripts
// sites already run for those servers work unchanged:
//
//	request: a 2-byte big-endian length, then "auth:User:Server:Password" or "isuser:User:Server"
//	answer:  a 2-byte big-endian length (2), then a 2-byte result: 1 yes, 0 no
//
// It owns the program's processes: a fixed number, each answering one request at a time,
// started with the server. A process that exits, answers something else or takes longer
// than the timeout is killed and started again, and the request it had fails with an error
// (a login then gets temporary-auth-failure, never success). Successful checks may be
// remembered for a while (CacheTTL), as a salted hash of the password, so that a burst of
// reconnects does not queue behind the program.
//
// A site that lets its users manage their accounts from their XMPP clients has the program
// answer three more requests, which the engine sends only when the operator says so
// ([auth] external_manage): "setpass:User:Server:Password" (an in-band password change),
// "tryregister:User:Server:Password" (an in-band registration) and "removeuser:User:Server"
// (an in-band account removal), each answered 1 when done.
//
// It does not know XMPP, SASL or the store: the engine asks at a login, the router about a
// stanza to a name the store does not hold; they create the local account of a user the
// program knows, and keep every other piece of the user's data.
package extauth

import (
	"bufio"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
)

// Defaults.
const (
	// DefaultTimeout bounds one answer. A site's database answers in milliseconds; five
	// seconds outlasts a busy one and still fails a login before the client's own timeout.
	DefaultTimeout = 5 * time.Second
	// MaxRequest is the protocol's limit: the length prefix has 16 bits.
	MaxRequest = 1<<16 - 1
	// MaxCached bounds the remembered successes (about 100 bytes each): beyond it new ones
	// are not remembered until old ones expire.
	MaxCached = 100_000
	// MaxWaiting is how many requests may wait per process: each holds a goroutine of its
	// caller for up to the timeout, and a program that hangs must not pile them up. Beyond
	// it a request fails at once with ErrBusy.
	MaxWaiting = 64
	// restartDelay spaces the starts of a program that keeps failing, so that a broken
	// script does not become a fork loop.
	restartDelay = time.Second
)

// ErrClosed is returned after Close; ErrBusy when no process became free within the
// timeout.
var (
	ErrClosed = errors.New("extauth: closed")
	ErrBusy   = errors.New("extauth: no process free within the timeout")
)

// Config configures a Program.
type Config struct {
	// Command is the program and its arguments.
	Command []string
	// Processes is how many copies run, each answering one request at a time (default 1).
	Processes int
	// Timeout bounds one answer (default DefaultTimeout).
	Timeout time.Duration
	// CacheTTL is how long a successful password check is remembered (0: never). A
	// password changed in the site's database keeps working for up to this long.
	CacheTTL time.Duration
	Log      zerolog.Logger
}

// Program is a running external authentication program. Its methods are safe for
// concurrent use; each blocks until a process answers, so call them off the event loops.
type Program struct {
	cfg   Config
	procs chan *proc // idle processes; nil slots mean "start one"
	// waiting holds a token per request in flight (MaxWaiting per process).
	waiting chan struct{}
	// lookups holds a token per isuser in flight: half of waiting at most, so that
	// messages to unknown names (which anyone can send) cannot take every slot from
	// logins.
	lookups chan struct{}
	closed  atomic.Bool

	salt  [16]byte
	mu    sync.Mutex
	cache map[string]cached
	// gen counts the changes that forget cached passwords: a check that was in flight
	// across one (it may have been answered for the old password) is not cached.
	gen uint64

	all   sync.Mutex
	alive map[*proc]struct{} // for Close
	calls atomic.Uint64      // requests the program answered (for tests and metrics)
	fails atomic.Uint64      // requests it did not: exits, garbage, timeouts, busy
}

type cached struct {
	sum     [32]byte
	expires time.Time
}

// Start checks the command and starts its processes.
func Start(cfg Config) (*Program, error) {
	if len(cfg.Command) == 0 || cfg.Command[0] == "" {
		return nil, errors.New("extauth: no command")
	}
	path, err := exec.LookPath(cfg.Command[0])
	if err != nil {
		return nil, fmt.Errorf("extauth: %w", err)
	}
	cfg.Command = append([]string{path}, cfg.Command[1:]...)
	if cfg.Processes <= 0 {
		cfg.Processes = 1
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	p := &Program{cfg: cfg, procs: make(chan *proc, cfg.Processes), waiting: make(chan struct{}, cfg.Processes*MaxWaiting),
		lookups: make(chan struct{}, max(1, cfg.Processes*MaxWaiting/2)), cache: map[string]cached{}, alive: map[*proc]struct{}{}}
	if _, err := rand.Read(p.salt[:]); err != nil {
		return nil, err
	}
	for range cfg.Processes {
		pr, err := p.start()
		if err != nil {
			p.Close()
			return nil, err
		}
		p.procs <- pr
	}
	return p, nil
}

// CheckPassword asks whether password is user@domain's (user is the prepared localpart).
// An error means the program could not answer; it is not a "no".
func (p *Program) CheckPassword(user, domain, password string) (bool, error) {
	key := user + "@" + domain
	sum := p.sum(key, password)
	var gen uint64
	if p.cfg.CacheTTL > 0 {
		p.mu.Lock()
		e, ok := p.cache[key]
		gen = p.gen
		p.mu.Unlock()
		if ok && time.Now().Before(e.expires) && hmac.Equal(e.sum[:], sum[:]) {
			return true, nil
		}
	}
	ok, err := p.ask("auth:" + user + ":" + domain + ":" + password)
	if err != nil || p.cfg.CacheTTL <= 0 {
		return ok, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if ok && p.gen != gen {
		return true, nil // a password changed meanwhile: this answer may be the old one's
	}
	if !ok {
		if e, ok := p.cache[key]; ok && e.sum == sum {
			delete(p.cache, key) // expired, and the site changed or removed it since
		}
		return false, nil // a wrong guess leaves the right password remembered
	}
	now := time.Now()
	if len(p.cache) >= MaxCached {
		for k, e := range p.cache {
			if now.After(e.expires) {
				delete(p.cache, k)
			}
		}
	}
	if len(p.cache) < MaxCached {
		p.cache[key] = cached{sum: sum, expires: now.Add(p.cfg.CacheTTL)}
	}
	return true, nil
}

// UserExists asks whether the program knows user@domain.
func (p *Program) UserExists(user, domain string) (bool, error) {
	select {
	case p.lookups <- struct{}{}:
		defer func() { <-p.lookups }()
	default:
		p.fails.Add(1)
		return false, ErrBusy
	}
	return p.ask("isuser:" + user + ":" + domain)
}

// SetPassword asks the program to change user@domain's password ("setpass"); false: it
// refused. The remembered success of the old password is forgotten either way.
func (p *Program) SetPassword(user, domain, password string) (bool, error) {
	p.uncache(user + "@" + domain)
	defer p.uncache(user + "@" + domain) // and what a check cached while it ran
	return p.ask("setpass:" + user + ":" + domain + ":" + password)
}

// TryRegister asks the program to create user@domain with password ("tryregister");
// false: it refused (the name is taken, or the site does not register users this way).
func (p *Program) TryRegister(user, domain, password string) (bool, error) {
	return p.ask("tryregister:" + user + ":" + domain + ":" + password)
}

// RemoveUser asks the program to remove user@domain ("removeuser"); false: it refused.
func (p *Program) RemoveUser(user, domain string) (bool, error) {
	p.uncache(user + "@" + domain)
	defer p.uncache(user + "@" + domain)
	return p.ask("removeuser:" + user + ":" + domain)
}

func (p *Program) uncache(key string) {
	p.mu.Lock()
	delete(p.cache, key)
	p.gen++
	p.mu.Unlock()
}

// Calls is the number of requests the program answered.
func (p *Program) Calls() uint64 { return p.calls.Load() }

// Failures is the number of requests that got no answer (the program exited, answered
// garbage or too late, or every process was busy).
func (p *Program) Failures() uint64 { return p.fails.Load() }

// Command is the program and its arguments, as run.
func (p *Program) Command() []string { return p.cfg.Command }

// Close stops every process; requests after it fail with ErrClosed.
func (p *Program) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	p.all.Lock()
	defer p.all.Unlock()
	for pr := range p.alive {
		pr.kill()
	}
	return nil
}

func (p *Program) sum(key, password string) [32]byte {
	h := hmac.New(sha256.New, p.salt[:])
	h.Write([]byte(key))
	h.Write([]byte{0})
	h.Write([]byte(password))
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// ask sends one request to an idle process and reads its answer.
func (p *Program) ask(req string) (bool, error) {
	if len(req) > MaxRequest {
		return false, nil // a password no site accepts, and the protocol cannot carry it
	}
	if p.closed.Load() {
		return false, ErrClosed
	}
	select {
	case p.waiting <- struct{}{}:
		defer func() { <-p.waiting }()
	default:
		p.fails.Add(1)
		return false, ErrBusy
	}
	// Waiting for a process counts against the same timeout: a program that hangs must not
	// queue every login behind it.
	t := time.NewTimer(p.cfg.Timeout)
	var pr *proc
	select {
	case pr = <-p.procs:
		t.Stop()
	case <-t.C:
		p.fails.Add(1)
		return false, ErrBusy
	}
	if pr == nil {
		var err error
		if pr, err = p.start(); err != nil {
			p.fails.Add(1)
			time.AfterFunc(restartDelay, func() { p.procs <- nil })
			return false, err
		}
	}
	ok, err := pr.ask(req, p.cfg.Timeout)
	if err != nil {
		p.fails.Add(1)
		if !p.closed.Load() {
			p.cfg.Log.Error().Err(err).Str("program", p.cfg.Command[0]).Msg("extauth: the program failed; restarting it")
		}
		p.forget(pr)
		pr.kill()
		time.AfterFunc(restartDelay, func() { p.procs <- nil })
		return false, err
	}
	p.calls.Add(1)
	p.procs <- pr
	return ok, nil
}

func (p *Program) forget(pr *proc) {
	p.all.Lock()
	delete(p.alive, pr)
	p.all.Unlock()
}

// start runs one process with pipes of its own, so that reads and writes take deadlines.
func (p *Program) start() (*proc, error) {
	if p.closed.Load() {
		return nil, ErrClosed
	}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	cmd := exec.Command(p.cfg.Command[0], p.cfg.Command[1:]...)
	cmd.Stdin, cmd.Stdout = inR, outW
	cmd.Stderr = logWriter{p.cfg.Log, p.cfg.Command[0]}
	if err := cmd.Start(); err != nil {
		inR.Close()
		inW.Close()
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("extauth: start %s: %w", p.cfg.Command[0], err)
	}
	inR.Close() // the child's ends
	outW.Close()
	pr := &proc{cmd: cmd, in: inW, outF: outR, out: bufio.NewReaderSize(outR, 16)}
	go func() { _ = cmd.Wait() }()
	p.all.Lock()
	p.alive[pr] = struct{}{}
	closed := p.closed.Load()
	p.all.Unlock()
	if closed {
		pr.kill()
		return nil, ErrClosed
	}
	return pr, nil
}

// proc is one running copy of the program.
type proc struct {
	cmd  *exec.Cmd
	in   *os.File
	outF *os.File
	out  *bufio.Reader
	buf  []byte
}

func (pr *proc) ask(req string, timeout time.Duration) (bool, error) {
	deadline := time.Now().Add(timeout)
	pr.in.SetWriteDeadline(deadline)
	pr.outF.SetReadDeadline(deadline)
	pr.buf = binary.BigEndian.AppendUint16(pr.buf[:0], uint16(len(req)))
	pr.buf = append(pr.buf, req...)
	_, err := pr.in.Write(pr.buf)
	clear(pr.buf) // it held a password
	if err != nil {
		return false, fmt.Errorf("write: %w", err)
	}
	var ans [4]byte
	if _, err := io.ReadFull(pr.out, ans[:]); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return false, fmt.Errorf("no answer within %s", timeout)
		}
		return false, fmt.Errorf("read: %w", err)
	}
	return ParseAnswer(ans)
}

// ParseAnswer reads one answer: a length of 2 and a result of 0 or 1.
func ParseAnswer(b [4]byte) (bool, error) {
	if n := binary.BigEndian.Uint16(b[:2]); n != 2 {
		return false, fmt.Errorf("answer of length %d, want 2", n)
	}
	switch r := binary.BigEndian.Uint16(b[2:]); r {
	case 0:
		return false, nil
	case 1:
		return true, nil
	default:
		return false, fmt.Errorf("answer %d, want 0 or 1", r)
	}
}

func (pr *proc) kill() {
	pr.in.Close()
	pr.outF.Close()
	if pr.cmd.Process != nil {
		_ = pr.cmd.Process.Kill()
	}
}

// logWriter puts what the program writes to its standard error in the server's log.
type logWriter struct {
	log     zerolog.Logger
	program string
}

func (w logWriter) Write(b []byte) (int, error) {
	if s := strings.TrimSpace(string(b)); s != "" {
		w.log.Warn().Str("program", w.program).Str("stderr", s).Msg("extauth: the program wrote to its standard error")
	}
	return len(b), nil
}
