package config

import (
	"fmt"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// at is the position prefix of every decode error this package makes
// ("line 3 column 9"); yamlError turns it into the dotted key.
func at(n *yaml.Node) string { return fmt.Sprintf("line %d column %d", n.Line, n.Column) }

// typeError is a decode error that lets yaml.v3 go on decoding, so every
// problem of a file is reported at once.
func typeError(n *yaml.Node, format string, a ...any) error {
	return &yaml.TypeError{Errors: []string{at(n) + ": " + fmt.Sprintf(format, a...)}}
}

// unmarshalEnum decodes a scalar into one of allowed, or fails listing them.
func unmarshalEnum[T ~string](n *yaml.Node, allowed []T, out *T) error {
	if n.Kind != yaml.ScalarNode {
		return typeError(n, "must be one of %s", list(allowed))
	}
	v := T(strings.TrimSpace(n.Value))
	if !slices.Contains(allowed, v) {
		return typeError(n, "%q: must be one of %s", n.Value, list(allowed))
	}
	*out = v
	return nil
}

// checkEnum is the Validate side of unmarshalEnum, for a Config built in code.
func checkEnum[T ~string](p *problems, key string, v T, allowed []T) {
	if !slices.Contains(allowed, v) {
		p.add(key, "%q: must be one of %s", string(v), list(allowed))
	}
}

func list[T ~string](allowed []T) string {
	s := make([]string, len(allowed))
	for i, a := range allowed {
		s[i] = string(a)
	}
	return strings.Join(s, ", ")
}
