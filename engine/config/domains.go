package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"
)

// errNoDomainsKey is returned when the file has no top-level `domains = [...]` that the
// rewrite can replace (a quoted or dotted key, say): the operator edits such a file by hand.
var errNoDomainsKey = errors.New("config: no top-level domains = [...] to rewrite")

// RewriteDomains returns src with the value of its top-level `domains` key replaced by
// domains and every other byte (comments, layout, other settings) as it was. Virtual hosts
// added or removed at runtime are written back to the operator's own file rather than kept
// elsewhere, so the file stays the one place that says what the server serves: a restart,
// a reload and `vireo -t` all see the same list.
func RewriteDomains(src []byte, domains []string) ([]byte, error) {
	start, end, err := findDomains(src)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(src)+64)
	out = append(out, src[:start]...)
	out = appendDomains(out, domains)
	return append(out, src[end:]...), nil
}

// appendDomains writes `domains = ["a", "b"]` with TOML basic strings.
func appendDomains(b []byte, domains []string) []byte {
	b = append(b, "domains = ["...)
	for i, d := range domains {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(b, '"')
		for _, r := range d {
			switch {
			case r == '"' || r == '\\':
				b = append(b, '\\', byte(r))
			case r < 0x20 || r == 0x7f || r == utf8.RuneError:
				b = fmt.Appendf(b, `\u%04X`, r)
			default:
				b = utf8.AppendRune(b, r)
			}
		}
		b = append(b, '"')
	}
	return append(b, ']')
}

// findDomains locates `domains = <value>` among the top-level keys (before the first table
// header): the offsets of the key and just past the value. It knows only as much TOML as
// it needs to skip strings, comments and nested arrays; WriteDomains checks its result by
// parsing it.
func findDomains(src []byte) (start, end int, err error) {
	depth := 0
	lineStart := true
	for i := 0; i < len(src); {
		c := src[i]
		switch c {
		case '\n':
			lineStart = true
			i++
			continue
		case ' ', '\t', '\r':
			i++
			continue
		case '#':
			i = skipComment(src, i)
			continue
		}
		if lineStart && depth == 0 {
			if c == '[' {
				return 0, 0, errNoDomainsKey // a table header: the top level is over
			}
			if v, ok := valueAfterKey(src, i, "domains"); ok {
				e, err := skipArray(src, v)
				if err != nil {
					return 0, 0, err
				}
				return i, e, nil
			}
		}
		lineStart = false
		switch c {
		case '"', '\'':
			i = skipString(src, i)
			continue
		case '[', '{':
			depth++
		case ']', '}':
			depth--
		}
		i++
	}
	return 0, 0, errNoDomainsKey
}

// valueAfterKey reports whether src[i:] starts with the bare key followed by '=' and
// returns the offset of the value.
func valueAfterKey(src []byte, i int, key string) (int, bool) {
	if !bytes.HasPrefix(src[i:], []byte(key)) {
		return 0, false
	}
	j := i + len(key)
	for j < len(src) && (src[j] == ' ' || src[j] == '\t') {
		j++
	}
	if j >= len(src) || src[j] != '=' {
		return 0, false
	}
	j++
	for j < len(src) && (src[j] == ' ' || src[j] == '\t') {
		j++
	}
	return j, true
}

func skipComment(src []byte, i int) int {
	if n := bytes.IndexByte(src[i:], '\n'); n >= 0 {
		return i + n
	}
	return len(src)
}

// skipString returns the offset just past the string that starts at i (basic, literal,
// or their multi-line forms); len(src) when it is not closed.
func skipString(src []byte, i int) int {
	q := src[i]
	if i+2 < len(src) && src[i+1] == q && src[i+2] == q {
		for j := i + 3; j < len(src); j++ {
			if src[j] == '\\' && q == '"' {
				j++
				continue
			}
			if src[j] == q && j+2 < len(src) && src[j+1] == q && src[j+2] == q {
				j += 3
				// """a""""" ends with up to two more quotes that belong to the string.
				for k := 0; k < 2 && j < len(src) && src[j] == q; k++ {
					j++
				}
				return j
			}
		}
		return len(src)
	}
	for j := i + 1; j < len(src); j++ {
		switch src[j] {
		case '\\':
			if q == '"' {
				j++
			}
		case q:
			return j + 1
		case '\n':
			return j // unterminated; the parser reports it
		}
	}
	return len(src)
}

// skipArray returns the offset just past the array that starts at i.
func skipArray(src []byte, i int) (int, error) {
	if i >= len(src) || src[i] != '[' {
		return 0, errors.New("config: domains is not an array")
	}
	depth := 0
	for j := i; j < len(src); {
		switch src[j] {
		case '"', '\'':
			j = skipString(src, j)
			continue
		case '#':
			j = skipComment(src, j)
			continue
		case '[':
			depth++
		case ']':
			depth--
			if depth == 0 {
				return j + 1, nil
			}
		}
		j++
	}
	return 0, errors.New("config: domains array is not closed")
}

// DomainsEdit is a checked rewrite of a config file's domains, not yet written.
type DomainsEdit struct {
	path string
	out  []byte
}

// EditDomains prepares replacing the domains of the config file at path
// (RewriteDomains): the new text must parse to the same configuration with the new
// domains, or it fails and nothing is to be written.
func EditDomains(path string, domains []string) (*DomainsEdit, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out, err := RewriteDomains(src, domains)
	if err != nil {
		return nil, fmt.Errorf("%s: %w; edit domains there by hand", path, err)
	}
	if err := sameButDomains(src, out, path, domains); err != nil {
		return nil, fmt.Errorf("%s: %w; edit domains there by hand", path, err)
	}
	return &DomainsEdit{path: path, out: out}, nil
}

// Commit replaces the file atomically, keeping its mode.
func (e *DomainsEdit) Commit() error {
	fi, err := os.Stat(e.path)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(e.path), "."+filepath.Base(e.path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(e.out); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(fi.Mode().Perm()); err != nil {
		tmp.Close()
		return err
	}
	// Durable before the rename: a crash leaves the old file or the new one, never a
	// truncated config the server cannot start with.
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), e.path)
}

// WriteDomains replaces the domains of the config file at path: EditDomains, then Commit.
func WriteDomains(path string, domains []string) error {
	e, err := EditDomains(path, domains)
	if err != nil {
		return err
	}
	return e.Commit()
}

// sameButDomains checks that out parses, lists domains, and otherwise says what src says.
func sameButDomains(src, out []byte, path string, domains []string) error {
	was, err := Parse(src, path)
	if err != nil {
		return err
	}
	now, err := Parse(out, path)
	if err != nil {
		return fmt.Errorf("rewritten domains do not parse: %w", err)
	}
	if !slices.Equal(now.Domains, domains) {
		return fmt.Errorf("rewritten domains read back as %s", strings.Join(now.Domains, ", "))
	}
	a, err := was.withoutDomains().Redacted()
	if err != nil {
		return err
	}
	b, err := now.withoutDomains().Redacted()
	if err != nil {
		return err
	}
	if a != b {
		return errors.New("rewriting domains would change other settings")
	}
	return nil
}

// withoutDomains is c without what follows from the domains (the default certificate is
// named after the first).
func (c *Config) withoutDomains() *Config {
	cp := *c
	cp.Domains = nil
	cp.TLS.Cert, cp.TLS.Key = "", ""
	return &cp
}
