package admin

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/vireo-im/vireo/modules/last"
	"github.com/vireo-im/vireo/store"
)

// OnlineLister is what a running server's Backend adds so that inactive leaves alone the
// accounts in use now; a stopped server has none online.
type OnlineLister interface {
	// OnlineUsers returns the bare JIDs with a session (attached or detached).
	OnlineUsers() ([]string, error)
}

// MinInactiveDays bounds the inactive op's threshold from below: a slip of the finger
// ("1" for "365") must not list, or delete, everyone who was away for a day.
const MinInactiveDays = 30

// Inactive lists the accounts of domain ("" for all) nobody has used for days: no session
// now, and their last session ended before then (the XEP-0012 record the last module
// keeps), or, never logged in, created before then. Accounts with neither a record nor a
// creation time (imported, or made before either was kept) are left alone and counted in
// a last line. With del it deletes what it lists, with their data in every table. It
// returns one line per account and how many it listed (or deleted).
// onlineRefresh is how old the list of online users may get while Inactive deletes (a
// variable for tests).
var onlineRefresh = time.Second

func Inactive(b Backend, domain string, days int, del bool, now time.Time) ([]string, int, error) {
	if days < MinInactiveDays {
		return nil, 0, fmt.Errorf("inactive: want at least %d days", MinInactiveDays)
	}
	if domain != "" && !slices.Contains(b.Domains(), domain) {
		return nil, 0, fmt.Errorf("%s is not served here (domains: %s)", domain, strings.Join(b.Domains(), ", "))
	}
	online := map[string]bool{}
	var onlineAt time.Time
	refresh := func() error {
		l, ok := b.(OnlineLister)
		if !ok {
			return nil
		}
		users, err := l.OnlineUsers()
		if err != nil {
			return err
		}
		clear(online)
		for _, u := range users {
			online[u] = true
		}
		onlineAt = time.Now()
		return nil
	}
	if err := refresh(); err != nil {
		return nil, 0, err
	}
	cutoff := now.Add(-time.Duration(days) * 24 * time.Hour)
	st := b.Store()
	lastT := st.Table(last.Table)
	type found struct{ user, why string }
	var list []found
	unknown := 0
	var ferr error
	err := st.Accounts().List(func(u string) bool {
		if domain != "" && !strings.HasSuffix(u, "@"+domain) || online[u] {
			return true
		}
		ended, ok, err := last.Ended(lastT, u)
		if err != nil {
			ferr = err
			return false
		}
		if ok {
			if ended.Before(cutoff) {
				list = append(list, found{u, "last session ended " + ended.UTC().Format("2006-01-02")})
			}
			return true
		}
		a, err := st.Accounts().Get(u)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			ferr = err
			return false
		case a.Created.IsZero():
			unknown++
		case a.Created.Before(cutoff):
			list = append(list, found{u, "never logged in, created " + a.Created.UTC().Format("2006-01-02")})
		}
		return true
	})
	if err == nil {
		err = ferr
	}
	if err != nil {
		return nil, 0, err
	}
	sort.Slice(list, func(i, j int) bool { return list[i].user < list[j].user })
	lines := make([]string, 0, len(list)+1)
	n := 0
	for _, f := range list {
		if del {
			// The list is from the start of the run, and deletions take a while each (a
			// disk sync): a user who came back meanwhile keeps the account.
			if time.Since(onlineAt) > onlineRefresh {
				if err := refresh(); err != nil {
					return lines, n, err
				}
			}
			ended, ok, err := last.Ended(lastT, f.user)
			if online[f.user] || err == nil && ok && !ended.Before(cutoff) {
				lines = append(lines, f.user+"  not deleted: used again since the list was made")
				continue
			}
			if err := delUser(b, f.user, false); err != nil {
				lines = append(lines, f.user+"  not deleted: "+err.Error())
				continue
			}
		}
		n++
		lines = append(lines, f.user+"  "+f.why)
	}
	if unknown > 0 {
		lines = append(lines, fmt.Sprintf("(%d accounts with no record of a session and no creation time left alone)", unknown))
	}
	return lines, n, nil
}
