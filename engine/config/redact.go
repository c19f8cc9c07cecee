package config

import (
	"bytes"
	"regexp"

	"github.com/BurntSushi/toml"
)

// secretKey matches the names of settings whose values are secrets: shared secrets,
// passwords, tokens, API and private keys (not tls.key, which is a file name).
var secretKey = regexp.MustCompile(`(?i)(secret|passw|token|api_?key|private_?key|credential)`)

// Redacted is the effective configuration as TOML, defaults filled in, module tables
// included, and every value under a secret-looking name (secretKey) replaced by
// "(redacted)": for display to administrators.
func (c *Config) Redacted() (string, error) {
	cp := *c
	cp.Modules = nil
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(&cp); err != nil {
		return "", err
	}
	var m map[string]any
	if _, err := toml.Decode(buf.String(), &m); err != nil {
		return "", err
	}
	if len(c.Modules) > 0 {
		mods := map[string]any{}
		for id, p := range c.Modules {
			var v any
			if err := c.primitiveDecode(id, p, &v); err != nil {
				return "", err
			}
			mods[id] = v
		}
		m["modules"] = mods
	}
	redact(m)
	buf.Reset()
	if err := toml.NewEncoder(&buf).Encode(m); err != nil {
		return "", err
	}
	return buf.String(), nil
}

func redact(v any) {
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			if secretKey.MatchString(k) {
				if s, ok := x.(string); ok && s == "" {
					continue // unset: nothing to hide, and saying so helps
				}
				v[k] = "(redacted)"
				continue
			}
			redact(x)
		}
	case []any:
		for _, x := range v {
			redact(x)
		}
	case []map[string]any:
		for _, x := range v {
			redact(x)
		}
	}
}
