package config

import (
	"fmt"
	"reflect"
	"slices"

	"gopkg.in/yaml.v3"
)

// Changed lists the YAML keys whose values differ between a and b, as
// dotted paths (lists by index: uplinks[1].policy).
func Changed(a, b Config) ([]string, error) {
	fa, err := flatten(a)
	if err != nil {
		return nil, err
	}
	fb, err := flatten(b)
	if err != nil {
		return nil, err
	}
	var out []string
	for k, v := range fb {
		if w, ok := fa[k]; !ok || !reflect.DeepEqual(v, w) {
			out = append(out, k)
		}
	}
	for k := range fa {
		if _, ok := fb[k]; !ok {
			out = append(out, k)
		}
	}
	// The YAML form of output.url hides the passphrase: compare the values.
	if !slices.Contains(out, "output.url") && !reflect.DeepEqual(a.Output.URL, b.Output.URL) {
		out = append(out, "output.url")
	}
	slices.Sort(out)
	return out, nil
}

func flatten(c Config) (map[string]any, error) {
	raw, err := yaml.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	var m any
	if err := yaml.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	out := map[string]any{}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				p := k
				if prefix != "" {
					p = prefix + "." + k
				}
				walk(p, e)
			}
		case []any:
			for i, e := range x {
				walk(fmt.Sprintf("%s[%d]", prefix, i), e)
			}
			if len(x) == 0 {
				out[prefix] = x
			}
		default:
			out[prefix] = v
		}
	}
	walk("", m)
	return out, nil
}
