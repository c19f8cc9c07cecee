package pebblestore

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/rs/zerolog"

	"github.com/vireo-im/vireo/store"
)

// Free-space tunables.
const (
	// DefaultMinFree is the free space that writes leave on the database's file system:
	// room for Pebble to flush a memtable (4 MiB by default), rotate its WAL and rewrite
	// its MANIFEST after the last accepted write, with a wide margin for compactions.
	DefaultMinFree = 64 << 20
	// smallFSShare caps the default reserve at 1/16 of a file system too small for
	// DefaultMinFree to make sense (a test tmpfs, a tiny container volume).
	smallFSShare = 16
	// statEvery is how long one free-space reading is trusted. A statfs costs a syscall;
	// every write in between subtracts its size from the reading, so the guard errs on
	// the full side.
	statEvery = time.Second
	// logEvery is the least time between two log lines of one kind from the storage
	// layer: a full disk makes Pebble retry a failed flush thousands of times a second.
	logEvery = 10 * time.Second
	// enospcBackoff slows Pebble's retries of a flush or compaction that failed for want
	// of space: it retries at once, thousands of times a second, creating and removing a
	// file each time. The pause is taken on the retrying goroutine, which holds DB.mu;
	// reads do not take it, and writes are refused while the disk is full.
	enospcBackoff = 100 * time.Millisecond
	// ballastName is the file in the database directory that holds the ballast. Pebble
	// ignores files whose names it does not parse.
	ballastName = "VIREO-BALLAST"
)

var epoch = time.Now()

func now() int64 { return int64(time.Since(epoch)) } // monotonic nanoseconds

// space refuses writes before the disk is full, and keeps a ballast file that is given up
// to Pebble when a write hits ENOSPC anyway (another process filled the disk between two
// readings): Pebble treats a failed WAL or MANIFEST write as fatal, so it must never see
// ENOSPC while there is a way to avoid it.
//
// Writes below the reserve fail with store.ErrFull; writes that only remove data may dig
// into half of it, so that users can still empty their queues. Once the ballast is gone,
// every write that adds data fails until the free space covers the reserve and a new
// ballast again. All methods are safe for concurrent use.
type space struct {
	fs      vfs.FS // the file system under the ENOSPC wrapper
	dir     string
	min     int64 // reserve; 0 disables the guard
	ballast int64 // ballast size; 0 means none
	log     zerolog.Logger

	every atomic.Int64 // nanoseconds a reading is trusted (tests change it)
	free  atomic.Int64 // last reading, minus the bytes written since
	at    atomic.Int64 // when it was read (now())
	busy  atomic.Bool  // a reading is being taken
	lost  atomic.Bool  // the ballast is gone: refuse writes until it is rebuilt
	full  atomic.Bool  // the last check refused a write (for logging the transitions)
}

// newSpace sizes the reserve for the file system of dir: min < 0 disables the guard, 0
// asks for the default. A file system that cannot report its usage (vfs.NewMem) has no
// guard.
func newSpace(fs vfs.FS, dir string, min int64, log zerolog.Logger) *space {
	sp := &space{fs: fs, dir: dir, log: log}
	sp.every.Store(int64(statEvery))
	if min < 0 {
		return sp
	}
	u, err := fs.GetDiskUsage(dir)
	if err != nil {
		if !errors.Is(err, vfs.ErrUnsupported) {
			log.Warn().Err(err).Str("dir", dir).Msg("store: cannot read free space; no disk-full guard")
		}
		return sp
	}
	if min == 0 {
		min = min64(DefaultMinFree, int64(u.TotalBytes)/smallFSShare)
	}
	sp.min = min
	sp.ballast = min / 2
	sp.free.Store(int64(u.AvailBytes))
	sp.at.Store(now())
	return sp
}

func min64(a, b int64) int64 {
	if a < b {
		return a
	}
	return b
}

// start lays the ballast down unless it is there already; without room for it the store
// opens with the ballast lost, so writes wait for space.
func (sp *space) start() {
	if sp.min == 0 || sp.ballast == 0 {
		return
	}
	if fi, err := sp.fs.Stat(sp.path()); err == nil && fi.Size() >= sp.ballast {
		return
	}
	if sp.free.Load() < sp.min+sp.ballast {
		sp.lost.Store(true)
		sp.log.Warn().Int64("free", sp.free.Load()).Int64("reserve", sp.min).
			Msg("store: disk nearly full at start; writes are refused until space is freed")
		return
	}
	if err := sp.makeBallast(); err != nil {
		sp.lost.Store(true)
		sp.log.Warn().Err(err).Msg("store: cannot write the ballast; writes are refused until space is freed")
	}
}

func (sp *space) path() string { return sp.fs.PathJoin(sp.dir, ballastName) }

// makeBallast allocates the ballast (fallocate on Linux; zeros written elsewhere, as a
// sparse file would hold nothing) and syncs it.
func (sp *space) makeBallast() error {
	f, err := sp.fs.Create(sp.path(), vfs.WriteCategoryUnspecified)
	if err != nil {
		return err
	}
	if !allocate(f, sp.ballast) {
		buf := make([]byte, 1<<20)
		for n := sp.ballast; n > 0 && err == nil; n -= int64(len(buf)) {
			_, err = f.Write(buf[:min64(n, int64(len(buf)))])
		}
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		sp.fs.Remove(sp.path())
		return fmt.Errorf("ballast: %w", err)
	}
	sp.free.Add(-sp.ballast)
	return nil
}

// release is the vfs.OnDiskFull callback: a Pebble write hit ENOSPC. Removing the ballast
// lets Pebble's single retry succeed; writes stay refused until space returns. It runs
// while the ENOSPC wrapper holds back every other write, so it uses the inner file system.
func (sp *space) release() {
	sp.free.Store(0)
	if sp.lost.Swap(true) {
		return
	}
	err := sp.fs.Remove(sp.path())
	sp.log.Error().Err(err).Int64("ballast", sp.ballast).
		Msg("store: disk full; gave the ballast to the database, refusing writes until space is freed")
}

// check reports whether a write of n bytes may go ahead; shrink marks a write that only
// removes data. It errs with store.ErrFull, wrapped with the numbers.
func (sp *space) check(n int64, shrink bool) error {
	if sp.min == 0 {
		return nil
	}
	free := sp.read()
	need := sp.min
	if shrink {
		need /= 2
	}
	if (sp.lost.Load() && !shrink) || free-n < need {
		if !sp.full.Swap(true) {
			sp.log.Error().Int64("free", free).Int64("reserve", sp.min).Bool("ballast_lost", sp.lost.Load()).
				Msg("store: disk full; refusing writes")
		}
		if sp.lost.Load() && !shrink {
			return fmt.Errorf("%w: %d bytes free in %s, waiting for %d to restore the ballast",
				store.ErrFull, free, sp.dir, sp.min+sp.ballast)
		}
		return fmt.Errorf("%w: %d bytes free in %s, %d kept in reserve", store.ErrFull, free, sp.dir, need)
	}
	if sp.full.Swap(false) {
		sp.log.Info().Int64("free", free).Msg("store: disk space back; accepting writes")
	}
	sp.free.Add(-n)
	return nil
}

// read returns the free space, taking a new reading when the last one is too old. One
// caller reads; the others use the old value meanwhile.
func (sp *space) read() int64 {
	t := now()
	if t-sp.at.Load() < sp.every.Load() || !sp.busy.CompareAndSwap(false, true) {
		return sp.free.Load()
	}
	defer sp.busy.Store(false)
	u, err := sp.fs.GetDiskUsage(sp.dir)
	if err != nil {
		sp.at.Store(t)
		return sp.free.Load()
	}
	free := int64(u.AvailBytes)
	if sp.lost.Load() && free >= sp.min+sp.ballast {
		if sp.ballast == 0 {
			sp.lost.Store(false)
		} else if err := sp.makeBallast(); err != nil {
			sp.log.Warn().Err(err).Msg("store: cannot restore the ballast")
		} else {
			free -= sp.ballast
			sp.lost.Store(false)
			sp.log.Info().Int64("ballast", sp.ballast).Msg("store: ballast restored")
		}
	}
	sp.free.Store(free)
	sp.at.Store(t)
	return free
}

// isENOSPC reports whether err comes from a full file system.
func isENOSPC(err error) bool { return errors.Is(err, syscall.ENOSPC) }

// limiter lets one log line of a kind through per logEvery and counts the rest.
type limiter struct {
	next    atomic.Int64
	dropped atomic.Int64
}

// allow reports whether to log now, and how many lines were dropped since the last one.
func (l *limiter) allow() (bool, int64) {
	t, n := now(), l.next.Load()
	if t < n || !l.next.CompareAndSwap(n, t+int64(logEvery)) {
		l.dropped.Add(1)
		return false, 0
	}
	return true, l.dropped.Swap(0)
}

// pebbleLogger adapts Pebble's logger to zerolog. Errors are rate-limited per format
// string: Pebble logs every retry of a failed flush or compaction.
type pebbleLogger struct {
	l      zerolog.Logger
	limits *sync.Map // format -> *limiter
}

func (p pebbleLogger) Infof(f string, a ...any) { p.l.Debug().Msgf(f, a...) }

func (p pebbleLogger) Errorf(f string, a ...any) {
	v, ok := p.limits.Load(f)
	if !ok {
		v, _ = p.limits.LoadOrStore(f, new(limiter))
	}
	if ok, dropped := v.(*limiter).allow(); ok {
		p.l.Error().Int64("suppressed", dropped).Msgf(f, a...)
	}
}

// events logs Pebble's background errors (a failed flush or compaction, retried at once
// and without end while the disk is full) and write stalls, rate-limited, and counts the
// background errors in n.
func events(l zerolog.Logger, n *atomic.Int64) *pebble.EventListener {
	var bg, stall limiter
	return &pebble.EventListener{
		BackgroundError: func(err error) {
			n.Add(1)
			if isENOSPC(err) {
				time.Sleep(enospcBackoff)
			}
			if ok, dropped := bg.allow(); ok {
				l.Error().Err(err).Int64("suppressed", dropped).Msg("store: background error")
			}
		},
		WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
			if ok, dropped := stall.allow(); ok {
				l.Warn().Str("reason", info.Reason).Int64("suppressed", dropped).Msg("store: write stall")
			}
		},
	}
}

// Fatalf must not return: Pebble goes on as if the failed operation had worked.
func (p pebbleLogger) Fatalf(f string, a ...any) {
	p.l.Error().Msgf(f, a...)
	panic(fmt.Sprintf(f, a...))
}
