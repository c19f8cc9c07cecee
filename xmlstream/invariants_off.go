//go:build !invariants

package xmlstream

// invariants is off in production builds (see invariants_on.go).
const invariants = false
