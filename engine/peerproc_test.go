package engine_test

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"
)

// peerProc is a peer server (Prosody, ejabberd) run by a test: in a process group of its
// own, so kill takes every process it started; its output kept and, with its log file,
// printed when the test fails (or VIREO_TEST_LOGS is set); killed when the test ends.
type peerProc struct {
	cmd    *exec.Cmd
	exited chan struct{}
}

// lockedOutput collects a process's output while the test may read it.
type lockedOutput struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (o *lockedOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.Write(p)
}

func (o *lockedOutput) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.b.String()
}

// startPeer starts cmd and returns once addr accepts connections (failing the test if the
// process exits first or wait passes).
func startPeer(t *testing.T, name string, cmd *exec.Cmd, logFile, addr string, wait time.Duration) *peerProc {
	t.Helper()
	var out lockedOutput
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &peerProc{cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() || os.Getenv("VIREO_TEST_LOGS") != "" {
			log, _ := os.ReadFile(logFile)
			t.Logf("%s output:\n%s\n%s log:\n%s", name, out.String(), name, tail(log, 40000))
		}
	})
	for deadline := time.Now().Add(wait); ; time.Sleep(50 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return p
		}
		select {
		case <-p.exited:
			t.Fatalf("%s exited: %s", name, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not listening on %s: %s", name, addr, out.String())
		}
	}
}

// kill ends the peer at once (SIGKILL to its process group) and waits for it.
func (p *peerProc) kill() {
	if p.cmd.Process != nil {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
	<-p.exited
}
