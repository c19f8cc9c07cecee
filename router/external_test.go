package router_test

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vireo-im/vireo/router"
	"github.com/vireo-im/vireo/router/routertest"
)

// TestExternalUsers: stanzas to a user the store does not know wait for the external
// program's answer, at most ExternalWaitStanzas of them (the rest bounce at once); a yes
// creates the account and they reach it in order; a no bounces them and is remembered; a
// program that fails bounces them and is asked again after a while.
func TestExternalUsers(t *testing.T) {
	e := routertest.New(t, []string{"alice"}, nil)
	var calls atomic.Int32
	release := make(chan struct{})
	answer := map[string]error{"uma": nil, "ned": errNo, "oli": errors.New("program down")}
	e.R.SetExternalUsers(func(local, domain string) (bool, error) {
		calls.Add(1)
		if local == "uma" {
			<-release
		}
		err := answer[local]
		if err == errNo {
			return false, nil
		}
		return err == nil, err
	})
	a := e.Bind("alice", "pc")
	const n = router.ExternalWaitStanzas + 8
	for i := range n {
		a.Send(fmt.Sprintf("<message type='chat' id='u%d' to='uma@example.org'><body>m%d.</body></message>", i, i))
	}
	// Beyond the bound: bounced while the program is still thinking.
	for i := router.ExternalWaitStanzas; i < n; i++ {
		a.C.Wait(t, fmt.Sprintf("id='u%d'", i), "service-unavailable")
	}
	a.C.Never(t, fmt.Sprintf("id='u%d' type='error'", router.ExternalWaitStanzas-1))
	if c := calls.Load(); c != 1 {
		t.Fatalf("%d questions about uma, want 1", c)
	}
	close(release)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if acct, err := e.Store.Accounts().Get("uma@example.org"); err == nil && acct.External {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("uma's account was not created")
		}
	}
	uma := e.Bind("uma", "phone")
	uma.Send("<presence/>")
	uma.C.Wait(t, fmt.Sprintf("m%d.", router.ExternalWaitStanzas-1))
	all := uma.C.All()
	prev := -1
	for i := range router.ExternalWaitStanzas {
		at := strings.Index(all, fmt.Sprintf(">m%d.<", i))
		if at < prev {
			t.Fatalf("message %d missing or out of order:\n%s", i, all)
		}
		prev = at
	}
	if strings.Contains(all, fmt.Sprintf(">m%d.<", router.ExternalWaitStanzas)) {
		t.Fatal("a bounced message was delivered too")
	}

	// No: bounced, and remembered.
	calls.Store(0)
	for i := range 3 {
		a.Send(fmt.Sprintf("<message type='chat' id='n%d' to='ned@example.org'><body>?</body></message>", i))
		a.C.Wait(t, fmt.Sprintf("id='n%d'", i), "service-unavailable")
	}
	if c := calls.Load(); c != 1 {
		t.Fatalf("%d questions about ned, want 1 (the no is remembered)", c)
	}
	if _, err := e.Store.Accounts().Get("ned@example.org"); err == nil {
		t.Fatal("an account was created for a user the program does not know")
	}

	// A program that fails: bounced, not remembered for long.
	calls.Store(0)
	a.Send("<message type='chat' id='o1' to='oli@example.org'><body>?</body></message>")
	a.C.Wait(t, "id='o1'", "service-unavailable")
	time.Sleep(1100 * time.Millisecond)
	a.Send("<message type='chat' id='o2' to='oli@example.org'><body>?</body></message>")
	a.C.Wait(t, "id='o2'", "service-unavailable")
	if c := calls.Load(); c != 2 {
		t.Fatalf("%d questions about oli, want 2 (a failure is retried after a second)", c)
	}
}

var errNo = errors.New("no")

// TestExternalUsersOrder: a stanza that comes after the program said yes, but before the
// held ones were handed on, waits behind them: per sender, messages keep their order.
func TestExternalUsersOrder(t *testing.T) {
	e := routertest.New(t, []string{"alice"}, func(o *router.Options) { o.NoInline = true })
	asked, answer := make(chan struct{}), make(chan struct{})
	created := make(chan struct{})
	e.R.SetExternalUsers(func(local, domain string) (bool, error) {
		close(asked)
		<-answer
		return true, nil
	})
	a := e.Bind("alice", "pc")
	a.Send("<message type='chat' id='o1' to='vic@example.org'><body>first.</body></message>")
	<-asked
	// vic's shard is held while the account is made and the held message's hand-on is
	// queued: the second message is queued before that.
	release := e.R.HoldShardOf("vic@example.org")
	a.Send("<message type='chat' id='o2' to='vic@example.org'><body>second.</body></message>")
	go func() {
		for {
			if _, err := e.Store.Accounts().Get("vic@example.org"); err == nil {
				close(created)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	close(answer)
	<-created
	time.Sleep(20 * time.Millisecond) // the hand-on op is queued after the account
	release()
	vic := e.Bind("vic", "phone")
	vic.Send("<presence/>")
	vic.C.Wait(t, "second.")
	all := vic.C.All()
	if f, s := strings.Index(all, "first."), strings.Index(all, "second."); f < 0 || f > s {
		t.Fatalf("out of order:\n%s", all)
	}
}
