package main

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

const modPath = "github.com/vireo-im/vireo"

// TestImportDirection keeps the data flow of DESIGN.md visible in the import graph:
// engine -> router -> modules/module, and modules never reach into router or engine.
func TestImportDirection(t *testing.T) {
	type rule struct {
		pkg     string   // package path prefix (relative), "" matches nothing
		forbid  []string // relative import prefixes it must not use
		allowed []string // exceptions to forbid
	}
	rules := []rule{
		{pkg: "xmlstream", forbid: []string{""}, allowed: []string{"xmlstream"}},
		// hist is a leaf (no vireo imports): the store times its commits with it.
		{pkg: "store", forbid: []string{""}, allowed: []string{"store", "xmlstream", "hist"}},
		{pkg: "hist", forbid: []string{""}},
		{pkg: "xmlstream/jid", forbid: []string{""}},
		{pkg: "router", forbid: []string{"engine", "modules/"}, allowed: []string{"modules/module"}},
		{pkg: "modules", forbid: []string{"engine", "router"}},
		{pkg: "engine/sasl", forbid: []string{""}, allowed: []string{"store", "engine/sasl"}},
		{pkg: "engine/tlsconn", forbid: []string{""}, allowed: []string{"engine/tlsrec"}},
		{pkg: "engine/tlsrec", forbid: []string{""}},
		{pkg: "engine/acmecert", forbid: []string{""}, allowed: []string{"engine/durablefile"}},
		{pkg: "engine/durablefile", forbid: []string{""}},
	}
	// Only main, tools, tests harnesses and engine itself may import engine.
	engineImporters := []string{".", "tools", "engine", "bench"}

	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == "testdata" || (strings.HasPrefix(n, ".") && n != ".") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		dir := filepath.ToSlash(filepath.Dir(path))
		for _, im := range f.Imports {
			p := strings.Trim(im.Path.Value, `"`)
			if !strings.HasPrefix(p, modPath+"/") {
				continue
			}
			rel := strings.TrimPrefix(p, modPath+"/")
			if rel == "engine" || strings.HasPrefix(rel, "engine/") {
				ok := false
				for _, a := range engineImporters {
					if dir == a || strings.HasPrefix(dir, a+"/") || (a == "." && dir == ".") {
						ok = true
					}
				}
				if !ok {
					t.Errorf("%s imports %s: only main, tools and engine may import engine", path, rel)
				}
			}
			for _, r := range rules {
				if dir != r.pkg && !strings.HasPrefix(dir, r.pkg+"/") {
					continue
				}
				bad := false
				for _, fb := range r.forbid {
					if strings.HasPrefix(rel, fb) {
						bad = true
					}
				}
				for _, a := range r.allowed {
					if rel == a || strings.HasPrefix(rel, a+"/") || (strings.HasSuffix(a, "/") && strings.HasPrefix(rel, a)) {
						bad = false
					}
				}
				if bad {
					t.Errorf("%s (package %s) must not import %s", path, dir, rel)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
