//go:build invariants

package xmlstream

// invariants turns on checks that catch callers breaking the lifetime rules: buffers are
// poisoned when released and the Scanner's stanza view is cleared at each Next, so a view kept
// too long reads garbage in tests instead of silently reading the next stanza.
const invariants = true
