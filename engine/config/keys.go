package config

import (
	"encoding"
	"reflect"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"
)

var (
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
	tomlUnmarshaler = reflect.TypeFor[toml.Unmarshaler]()
)

// unknownKey returns the first key (dotted, sorted order) of the table raw that a value
// of type t would not take, as the TOML decoder matches keys to fields (the field's toml
// tag, else its name, case-insensitively), or "". Maps, interfaces and types that decode
// themselves take any key.
func unknownKey(raw map[string]any, t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct || decodesItself(t) {
		return ""
	}
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		ft, ok := fieldFor(t, k)
		if !ok {
			return k
		}
		switch v := raw[k].(type) {
		case map[string]any:
			if sub := unknownKey(v, ft); sub != "" {
				return k + "." + sub
			}
		case []map[string]any:
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Slice || ft.Kind() == reflect.Array {
				for _, e := range v {
					if sub := unknownKey(e, ft.Elem()); sub != "" {
						return k + "." + sub
					}
				}
			}
		}
	}
	return ""
}

func decodesItself(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return p.Implements(textUnmarshaler) || p.Implements(tomlUnmarshaler)
}

// fieldFor finds the field of struct t that key k decodes into, looking into embedded
// structs as the decoder does.
func fieldFor(t reflect.Type, k string) (reflect.Type, bool) {
	var fold reflect.Type
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if tag == "-" {
			continue
		}
		if f.Anonymous && tag == "" {
			et := f.Type
			for et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				if ft, ok := fieldFor(et, k); ok {
					return ft, true
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		name := tag
		if name == "" {
			name = f.Name
		}
		if name == k {
			return f.Type, true
		}
		if fold == nil && strings.EqualFold(name, k) {
			fold = f.Type
		}
	}
	return fold, fold != nil
}
