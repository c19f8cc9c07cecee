package admin

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/zstd"

	"github.com/vireo-im/vireo/modules/module"
	"github.com/vireo-im/vireo/store"
	"github.com/vireo-im/vireo/store/pie"
)

// sections are the registered modules that keep per-user data of their own which
// XEP-0227 carries (vCards, private XML, PEP, archives): each moves its own rows, so a
// module added later joins exports by implementing pie.Section, without a change here.
func sections() []pie.Section {
	var out []pie.Section
	for _, i := range module.All() {
		if s, ok := i.New().(pie.Section); ok {
			out = append(out, s)
		}
	}
	return out
}

// Export writes every account of b's store, with its roster, offline messages and the
// data of the modules that implement pie.Section, to a new
// XEP-0227 file at path (absolute; it must not exist; mode 0600, since it holds the SCRAM
// keys), its credentials written for the server of flavour f (pie.Standard, or ejabberd's
// import_piefxis). The file appears only once it is complete. It returns the number of
// accounts. A path ending in ".zst" is written compressed with Zstandard (RFC 8878), which
// Import reads back: an archive's XML shrinks several times.
func Export(b Backend, path string, f pie.Flavour) (int, error) {
	if !filepath.IsAbs(path) {
		return 0, fmt.Errorf("export: %q is not an absolute path", path)
	}
	if _, err := os.Lstat(path); err == nil {
		return 0, fmt.Errorf("export: %s already exists", path)
	}
	tmp := path + ".partial"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, fmt.Errorf("export: %w", err)
	}
	var w io.Writer = out
	var zw *zstd.Encoder
	if strings.HasSuffix(path, ".zst") {
		if zw, err = zstd.NewWriter(out); err != nil {
			out.Close()
			os.Remove(tmp)
			return 0, fmt.Errorf("export: %w", err)
		}
		w = zw
	}
	err = pie.ExportFor(w, b.Store(), f, sections()...)
	if zw != nil {
		if cerr := zw.Close(); err == nil {
			err = cerr
		}
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return 0, fmt.Errorf("export: %w", err)
	}
	return b.Store().Accounts().Count()
}

// ExportSplit writes every account of b's store as a XEP-0227 file of its own,
// user@domain.xml, into dir (absolute; it must not exist; mode 0700, the files 0600): the
// layout Prosody's mod_storage_xep0227 (and so prosody-migrator) reads. The directory
// appears only once every file is written; credentials are written for flavour fl as in
// Export. It returns the number of accounts.
func ExportSplit(b Backend, dir string, fl pie.Flavour) (int, error) {
	if !filepath.IsAbs(dir) {
		return 0, fmt.Errorf("export: %q is not an absolute path", dir)
	}
	if _, err := os.Lstat(dir); err == nil {
		return 0, fmt.Errorf("export: %s already exists", dir)
	}
	tmp := dir + ".partial"
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return 0, fmt.Errorf("export: %w", err)
	}
	var users []string
	err := b.Store().Accounts().List(func(u string) bool { users = append(users, u); return true })
	secs := sections()
	n := 0
	for _, u := range users {
		if err != nil {
			break
		}
		// A bare JID cannot hold '/' or NUL (RFC 7622), and with "@domain.xml" after it no
		// name is "." or ".."; a leading dot (".x@example.org", a valid localpart) only hides
		// the file from ls.
		if strings.ContainsAny(u, "/\x00") {
			err = fmt.Errorf("account %q cannot name a file", u)
			break
		}
		var f *os.File
		f, err = os.OpenFile(filepath.Join(tmp, u+".xml"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			break
		}
		err = pie.ExportUserFor(f, b.Store(), u, fl, secs...)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if errors.Is(err, store.ErrNotFound) {
			err = os.Remove(f.Name()) // deleted meanwhile
			continue
		}
		n++
	}
	if err == nil {
		err = os.Rename(tmp, dir)
	}
	if err != nil {
		os.RemoveAll(tmp)
		return 0, fmt.Errorf("export: %w", err)
	}
	return n, nil
}

// Import reads the XEP-0227 file at path (with the per-host files it includes, as
// ejabberd writes them) and creates its accounts of b's domains, with their rosters,
// offline messages and module data. Existing accounts are left alone; what was skipped
// comes back as lines. The files are parsed whole before anything is written.
func Import(b Backend, path string) (int, []string, error) {
	if !filepath.IsAbs(path) {
		return 0, nil, fmt.Errorf("import: %q is not an absolute path", path)
	}
	users, err := pie.ParseFile(path)
	if err != nil {
		return 0, nil, fmt.Errorf("import: %w", err)
	}
	r, err := pie.Import(b.Store(), users, b.Domains(), sections()...)
	return r.Imported, r.Skipped, err
}
