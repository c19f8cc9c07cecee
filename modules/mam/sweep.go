package mam

import (
	"time"

	"github.com/vireo-im/vireo/modules/sid"
)

// sweeper deletes expired messages every sweep interval until Cleanup. Queries already
// hide them; the sweep gives the disk back.
func (m *Mod) sweeper() {
	defer close(m.done)
	t := time.NewTicker(m.set.Load().All().every)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-m.resweep:
			t.Reset(m.set.Load().All().every)
		case <-t.C:
			if !m.expires() {
				continue // kept for ever (until a reload sets a retention)
			}
			if _, err := m.sweep(sweepBudget); err != nil {
				m.log.Error().Err(err).Msg("mam: sweep expired messages")
			}
		}
	}
}

// sweep walks the archives from where the last sweep stopped, user by user, deleting
// messages older than the retention, until it has deleted about budget rows or reached
// the end of the table (then the next sweep starts over). It runs beside the shards: it
// deletes only rows older than the cutoff, which no shard writes any more. It returns the
// number of messages deleted.
func (m *Mod) sweep(budget int) (int, error) {
	now := m.now()
	done := 0
	for done < budget {
		select {
		case <-m.stop:
			return done, nil
		default:
		}
		user, err := m.a.nextUser(m.cursor)
		if err != nil {
			return done, err
		}
		if user == "" {
			m.cursor = nil
			return done, nil
		}
		cut := m.cutoff(user, now)
		if cut.IsZero() {
			m.cursor = append([]byte(user), 1) // its host keeps messages for ever
			continue
		}
		// A few batches at a time, so that Cleanup does not wait for a whole archive.
		limit := min(budget-done, 4*sweepBatch)
		n, err := m.a.expire(user, sid.IDFloor(cut), limit)
		done += n
		if err != nil {
			return done, err
		}
		if n < limit {
			// Done with this user: user 0x01 sorts after every key user 0 ...
			m.cursor = append([]byte(user), 1)
		}
	}
	return done, nil
}

// expires reports whether some archive has a retention: the server's or a host's.
func (m *Mod) expires() bool {
	set := m.set.Load()
	if set.All().retention > 0 {
		return true
	}
	for _, h := range set.Hosts() {
		if set.For(h).retention > 0 {
			return true
		}
	}
	return false
}
