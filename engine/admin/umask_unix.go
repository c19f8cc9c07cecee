//go:build unix

package admin

import "syscall"

// PrivateUmask is the process umask main and vireoctl set before they create anything:
// files come out 0600 and directories 0700 whatever mode the code asks for (Pebble asks for
// 0644 and 0755), so account keys are never readable by other local users.
const PrivateUmask = 0o077

func umask(m int) int { return syscall.Umask(m) }

// RestrictUmask sets PrivateUmask for the whole process and returns the previous umask.
// Call it first thing in main, before any goroutine creates files.
func RestrictUmask() int { return umask(PrivateUmask) }
