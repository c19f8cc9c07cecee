package engine

import "golang.org/x/sys/unix"

// unreadBytes is how many bytes wait in fd's receive queue (0 when it cannot tell).
func unreadBytes(fd int) int {
	n, err := unix.IoctlGetInt(fd, unix.SIOCINQ)
	if err != nil {
		return 0
	}
	return n
}
