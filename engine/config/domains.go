package config

import (
	"bytes"
	"errors"
	"fmt"
	"github.com/vireo-im/vireo/engine/durablefile"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"
)

// RewriteDomains returns src with the value of its top-level `domains` key replaced by
// domains and every other byte (comments, layout, other settings) as it was. Virtual hosts
// added or removed at runtime are written back to the operator's own file rather than kept
// elsewhere, so the file stays the one place that says what the server serves: a restart,
// a reload and `vireo -t` all see the same list.
func RewriteDomains(src []byte, domains []string) ([]byte, error) {
	return rewriteArray(src, "", "domains", domains, true)
}

// RewriteS2SList returns src with the [s2s] list named key ("deny" or "allow") set to
// domains, and every other byte as it was: XEP-0133's blacklist and whitelist commands
// edit the operator's own file, as the virtual hosts do (RewriteDomains). A key the
// table lacks is added under its header, a missing [s2s] table at the end of the file.
func RewriteS2SList(src []byte, key string, domains []string) ([]byte, error) {
	if key != "deny" && key != "allow" {
		return nil, fmt.Errorf("config: [s2s] %s is not a federation list", key)
	}
	return rewriteArray(src, "s2s", key, domains, false)
}

// rewriteArray sets key in table ("" for the top level) to an array of values. With
// mustExist, a file without the key is refused rather than given one.
func rewriteArray(src []byte, table, key string, values []string, mustExist bool) ([]byte, error) {
	return rewriteKey(src, table, key, appendArray(nil, key, values), mustExist)
}

// rewriteKey replaces `key = <value>` in table with line (what appendArray or
// appendString write), or adds line under the table's header, or the table at the end.
func rewriteKey(src []byte, table, key string, line []byte, mustExist bool) ([]byte, error) {
	loc, err := findKey(src, table, key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(src)+len(line)+16)
	switch {
	case loc.found:
		// The same kind of value as before: an array stays an array, a string a string.
		if isString, was := line[len(key)+3] == '"', src[loc.value]; isString != (was == '"' || was == '\'') {
			return nil, fmt.Errorf("config: %s is not a%s", dotted(table, key), map[bool]string{true: " string", false: "n array"}[isString])
		}
		out = append(out, src[:loc.start]...)
		out = append(out, line...)
		return append(out, src[loc.end:]...), nil
	case mustExist:
		return nil, fmt.Errorf("config: no %s = ... to rewrite", dotted(table, key))
	case loc.table:
		out = append(out, src[:loc.at]...)
		if loc.at > 0 && src[loc.at-1] != '\n' {
			out = append(out, '\n')
		}
		out = append(out, line...)
		out = append(out, '\n')
		return append(out, src[loc.at:]...), nil
	default:
		out = append(out, src...)
		if len(out) > 0 && out[len(out)-1] != '\n' {
			out = append(out, '\n')
		}
		out = append(out, "\n["+table+"]\n"...)
		out = append(out, line...)
		return append(out, '\n'), nil
	}
}

func dotted(table, key string) string {
	if table == "" {
		return key
	}
	return "[" + table + "] " + key
}

// appendArray writes `key = ["a", "b"]` with TOML basic strings.
func appendArray(b []byte, key string, values []string) []byte {
	b = append(b, key+" = ["...)
	for i, d := range values {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = appendBasic(b, d)
	}
	return append(b, ']')
}

// appendString writes `key = "value"`, a TOML basic string on one line.
func appendString(b []byte, key, value string) []byte {
	return appendBasic(append(b, key+" = "...), value)
}

// appendBasic writes s as a TOML basic string: quotes, backslashes and control
// characters (line ends included) escaped.
func appendBasic(b []byte, s string) []byte {
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b = append(b, '\\', byte(r))
		case r == '\n':
			b = append(b, `\n`...)
		case r < 0x20 || r == 0x7f || r == utf8.RuneError:
			b = fmt.Appendf(b, `\u%04X`, r)
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	return append(b, '"')
}

// keyLoc is where findKey found a key: start and end of `key = [...]` when found;
// otherwise whether the table's header is there, and at, the offset just past it.
type keyLoc struct {
	found, table      bool
	start, value, end int
	// at is just past the table's header line, or past a commented-out example of the
	// key in the table (`# deny = [...]`, as the generated config has them), where a new
	// line reads best: under the words that explain it.
	at int
}

// findKey locates `key = <array>` among the keys of table ("" for the top level, before
// the first table header). It knows only as much TOML as it needs to skip strings,
// comments and nested arrays and to read a plain table header; the callers check its
// result by parsing it, so a file it misreads (a quoted or dotted key, say) is refused
// rather than damaged.
func findKey(src []byte, table, key string) (keyLoc, error) {
	loc := keyLoc{table: table == ""}
	example := false
	cur := ""
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
			e := skipComment(src, i)
			if lineStart && depth == 0 && cur == table && loc.table && !example {
				if _, ok := valueAfterKey(src, skipBlank(src, i+1), key); ok {
					loc.at, example = min(e+1, len(src)), true
				}
			}
			i = e
			continue
		}
		if lineStart && depth == 0 {
			if c == '[' {
				end := len(src)
				if n := bytes.IndexByte(src[i:], '\n'); n >= 0 {
					end = i + n
				}
				cur = headerName(src[i:end])
				if cur == table && !loc.table {
					loc.table, loc.at = true, min(end+1, len(src))
				}
				i = end
				continue
			}
			if cur == table {
				if v, ok := valueAfterKey(src, i, key); ok {
					e, err := skipValue(src, v)
					if err != nil {
						return loc, fmt.Errorf("config: %s: %w", dotted(table, key), err)
					}
					loc.found, loc.start, loc.value, loc.end = true, i, v, e
					return loc, nil
				}
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
	return loc, nil
}

// headerName is the name in a `[name]` header line, trimmed; "" for an array of tables
// (`[[name]]`) or anything else, which no caller looks for.
func headerName(line []byte) string {
	if n := bytes.IndexByte(line, '#'); n >= 0 && !bytes.ContainsAny(line[:n], `"'`) {
		line = line[:n]
	}
	line = bytes.TrimSpace(line)
	if len(line) < 2 || line[len(line)-1] != ']' || bytes.HasPrefix(line, []byte("[[")) {
		return ""
	}
	return string(bytes.TrimSpace(line[1 : len(line)-1]))
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

// skipBlank returns the offset of the first byte at or after i that is not a space or tab.
func skipBlank(src []byte, i int) int {
	for i < len(src) && (src[i] == ' ' || src[i] == '\t') {
		i++
	}
	return i
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

// skipValue returns the offset just past the array or string that starts at i; other
// values are not rewritten.
func skipValue(src []byte, i int) (int, error) {
	if i < len(src) && (src[i] == '"' || src[i] == '\'') {
		e := skipString(src, i)
		if e >= len(src) && (e == i || src[e-1] != src[i]) {
			return 0, errors.New("string is not closed")
		}
		return e, nil
	}
	return skipArray(src, i)
}

// skipArray returns the offset just past the array that starts at i.
func skipArray(src []byte, i int) (int, error) {
	if i >= len(src) || src[i] != '[' {
		return 0, errors.New("not an array")
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
	return 0, errors.New("array is not closed")
}

// FileEdit is a checked rewrite of a config file, not yet written.
type FileEdit struct {
	path string
	out  []byte
}

// EditDomains prepares replacing the domains of the config file at path
// (RewriteDomains): the new text must parse to the same configuration with the new
// domains, or it fails and nothing is to be written.
func EditDomains(path string, domains []string) (*FileEdit, error) {
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
	return &FileEdit{path: path, out: out}, nil
}

// Commit replaces the file atomically, keeping its mode.
func (e *FileEdit) Commit() error {
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
	if err := os.Rename(tmp.Name(), e.path); err != nil {
		return err
	}
	// The rename is durable once the directory is: the edit is acknowledged after this.
	return durablefile.SyncDir(filepath.Dir(e.path))
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

// EditS2SList prepares replacing the [s2s] list key ("deny" or "allow") of the config
// file at path (RewriteS2SList). The new text must parse, and to the same configuration
// but for that list; the list it reads back (domains prepared, as the server uses them)
// is returned with the edit.
func EditS2SList(path, key string, domains []string) (*FileEdit, []string, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	out, err := RewriteS2SList(src, key, domains)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w; edit [s2s] %s there by hand", path, err, key)
	}
	list, err := sameButS2SList(src, out, path, key, len(domains))
	if err != nil {
		return nil, nil, err
	}
	if !slices.Equal(list, domains) {
		// The file says what the server uses: domains as prepared ("Spam.Example" is
		// spam.example).
		if out, err = RewriteS2SList(src, key, list); err != nil {
			return nil, nil, err
		}
		if _, err := sameButS2SList(src, out, path, key, len(list)); err != nil {
			return nil, nil, err
		}
	}
	return &FileEdit{path: path, out: out}, list, nil
}

// sameButS2SList checks that out parses, holds n entries in the [s2s] list key, and
// otherwise says what src says; it returns the list as read back.
func sameButS2SList(src, out []byte, path, key string, n int) ([]string, error) {
	was, err := Parse(src, path)
	if err != nil {
		return nil, err
	}
	now, err := Parse(out, path)
	if err != nil {
		// The new list itself is what does not parse: a domain that is not one, or one in
		// both lists. Parse names it.
		return nil, err
	}
	list := &now.S2S.Deny
	if key == "allow" {
		list = &now.S2S.Allow
	}
	if len(*list) != n {
		return nil, fmt.Errorf("%s: the rewritten [s2s] %s reads back as %s; edit it there by hand", path, key, strings.Join(*list, ", "))
	}
	if key == "allow" {
		was.S2S.Allow = now.S2S.Allow
	} else {
		was.S2S.Deny = now.S2S.Deny
	}
	a, err := was.Redacted()
	if err != nil {
		return nil, err
	}
	b, err := now.Redacted()
	if err != nil {
		return nil, err
	}
	if a != b {
		return nil, fmt.Errorf("%s: rewriting [s2s] %s would change other settings; edit it there by hand", path, key)
	}
	return slices.Clone(*list), nil
}

// EditModuleSetting prepares setting key of [modules.<id>] in the config file at path to
// value, a string or a list of strings, the key or the table added when missing: what
// XEP-0133's commands on server settings (the administrators, the welcome message)
// write, so that the file stays the one place that says them. The new text must parse,
// to the same configuration but for that table, and read value back; the parsed new
// configuration comes with the edit, for the module to check its table before anything
// is written.
func EditModuleSetting(path, id, key string, value any) (*FileEdit, *Config, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	var line []byte
	switch v := value.(type) {
	case string:
		line = appendString(nil, key, v)
	case []string:
		line = appendArray(nil, key, v)
	default:
		return nil, nil, fmt.Errorf("config: modules.%s.%s: a %T is not written here", id, key, value)
	}
	table := "modules." + id
	out, err := rewriteKey(src, table, key, line, false)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w; edit [%s] %s there by hand", path, err, table, key)
	}
	was, err := Parse(src, path)
	if err != nil {
		return nil, nil, err
	}
	now, err := Parse(out, path)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: the rewritten [%s] does not parse: %w; edit it there by hand", path, table, err)
	}
	var got map[string]any
	if err := now.ModuleConfig(id, &got); err != nil {
		return nil, nil, err
	}
	if fmt.Sprint(got[key]) != fmt.Sprint(value) {
		return nil, nil, fmt.Errorf("%s: [%s] %s reads back as %v; edit it there by hand", path, table, key, got[key])
	}
	a, err := was.WithModule(id, now).Redacted()
	if err != nil {
		return nil, nil, err
	}
	b, err := now.Redacted()
	if err != nil {
		return nil, nil, err
	}
	if a != b {
		return nil, nil, fmt.Errorf("%s: rewriting [%s] %s would change other settings; edit it there by hand", path, table, key)
	}
	return &FileEdit{path: path, out: out}, now, nil
}
