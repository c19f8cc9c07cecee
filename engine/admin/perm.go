package admin

import (
	"fmt"
	"os"
)

// ExposedWarning returns a warning for the operator when the directory at path can be
// read or entered by group or others (mode & 0o077 != 0), naming the chmod that closes it;
// it returns "" when the directory is private or does not exist. The server does not
// change the mode itself: the operator may have set it on purpose (a backup group).
func ExposedWarning(path string) string {
	fi, err := os.Stat(path)
	if err != nil {
		return ""
	}
	m := fi.Mode().Perm()
	if m&0o077 == 0 {
		return ""
	}
	return fmt.Sprintf("%s has mode %04o: other local users can read the database (password keys included); run: chmod -R go-rwx %s", path, m, path)
}
