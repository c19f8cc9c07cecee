package xmlstream

import "sync"

// Default limits. They bound what one connection can make the server buffer or walk.
const (
	// DefaultMaxStanza is 256 KiB: larger than any sane stanza (vCard photos are the usual
	// biggest) and small enough that thousands of slow senders cannot exhaust memory.
	DefaultMaxStanza = 256 << 10
	// DefaultMaxDepth is 64: real traffic nests under 10 levels (MAM result: 6).
	DefaultMaxDepth = 64
	// DefaultMaxAttrs is 64: real elements carry under 10; the limit bounds the duplicate check.
	DefaultMaxAttrs = 64
	// DefaultMaxName is 256 bytes for a qualified name (prefix:local).
	DefaultMaxName = 256
	// DefaultMaxHeader is 4 KiB for the XML declaration or the stream header start tag.
	DefaultMaxHeader = 4096
)

// Limits bounds one stream. A zero field means the default for that field.
type Limits struct {
	MaxStanza int // bytes of one top-level element incl. markup; default 256 KiB (262144)
	MaxDepth  int // element nesting inside a stanza (the stanza is depth 1); default 64
	MaxAttrs  int // attributes (incl. xmlns decls) per element; default 64
	MaxName   int // bytes of a name (prefix:local); default 256
	MaxHeader int // bytes buffered for the stream header (and XML decl); default 4096
}

// DefaultLimits returns the default limits.
func DefaultLimits() Limits {
	return Limits{
		MaxStanza: DefaultMaxStanza,
		MaxDepth:  DefaultMaxDepth,
		MaxAttrs:  DefaultMaxAttrs,
		MaxName:   DefaultMaxName,
		MaxHeader: DefaultMaxHeader,
	}
}

var defaultLimits = DefaultLimits()

// norm returns the shared normalized form of l: zero or out-of-range fields replaced by
// defaults, depth, attrs and names capped to fit the State's 16-bit counters. Listeners have a
// handful of distinct limits, so they are interned and a State pays one pointer for them.
func (l *Limits) norm() *limits {
	if l == nil {
		return defaultNorm
	}
	n := l.normValue()
	internedLimits.RLock()
	p := internedLimits.m[n]
	internedLimits.RUnlock()
	if p != nil {
		return p
	}
	internedLimits.Lock()
	defer internedLimits.Unlock()
	if p := internedLimits.m[n]; p != nil {
		return p
	}
	p = &n
	if internedLimits.m == nil {
		internedLimits.m = make(map[limits]*limits)
	}
	if len(internedLimits.m) < maxInternedLimits {
		internedLimits.m[n] = p
	}
	return p
}

// defaultNorm is the normalized DefaultLimits, for Reset(kind, nil).
var defaultNorm = func() *limits { n := defaultLimits.normValue(); return &n }()

// maxInternedLimits bounds the table; more distinct limits than that cost a small allocation
// per Reset.
const maxInternedLimits = 64

var internedLimits struct {
	sync.RWMutex
	m map[limits]*limits
}

func (l *Limits) normValue() limits {
	pick := func(v, def, max int) uint32 {
		if v <= 0 {
			v = def
		}
		if v > max {
			v = max
		}
		return uint32(v)
	}
	return limits{
		stanza: pick(l.MaxStanza, DefaultMaxStanza, 1<<30),
		header: pick(l.MaxHeader, DefaultMaxHeader, 1<<30),
		depth:  uint16(pick(l.MaxDepth, DefaultMaxDepth, 1<<15)),
		attrs:  uint16(pick(l.MaxAttrs, DefaultMaxAttrs, 1<<15)),
		name:   uint16(pick(l.MaxName, DefaultMaxName, 1<<15)),
	}
}

// limits is the normalized form the scanner reads.
type limits struct {
	stanza, header     uint32
	depth, attrs, name uint16
}
