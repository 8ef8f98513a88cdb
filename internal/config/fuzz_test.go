package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"onair/output/srturl"
)

// knownKeys lists every dotted key of Config ("video.fps").
func knownKeys() []string {
	var keys []string
	var walk func(t reflect.Type, prefix string)
	walk = func(t reflect.Type, prefix string) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			keys = append(keys, prefix+name)
			ft := f.Type
			if ft.Kind() == reflect.Struct && ft.PkgPath() == reflect.TypeFor[Config]().PkgPath() && ft.NumField() > 0 && ft.Field(0).Tag.Get("yaml") != "" {
				walk(ft, prefix+name+".")
			}
		}
	}
	walk(reflect.TypeFor[Config](), "")
	return keys
}

// FuzzParse: Parse never panics; every problem names a key or says the YAML
// is malformed; no error carries a passphrase of the input. Seeds:
// testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add([]byte(good))
	f.Add([]byte("video: {fps: 0}\noutput: {url: \"srt://h:99x?passphrase=Zebra-Quokka-7781\"}\n"))
	known := knownKeys()
	f.Fuzz(func(t *testing.T, b []byte) {
		keys := append([]string{}, known...) // and every key the input writes
		var doc yaml.Node
		if yaml.Unmarshal(b, &doc) == nil {
			written := keyIndex{lines: map[int]string{}, pos: map[[2]int]string{}}
			written.walk(&doc, "", func(string) {})
			for _, k := range written.pos {
				keys = append(keys, k)
			}
		}
		_, err := Parse(b)
		if err == nil {
			return
		}
		e := &Error{}
		if !errors.As(err, &e) {
			t.Fatalf("error %T %v is not an *Error", err, err)
		}
		for _, p := range e.Problems {
			named := strings.HasPrefix(p, "malformed YAML") || strings.Contains(p, "unknown key (")
			for _, k := range keys {
				named = named || strings.HasPrefix(p, k+": ")
			}
			if !named {
				t.Fatalf("problem %q names no key", p)
			}
		}
		for _, s := range srturl.Secrets(string(b)) {
			if len(s) >= 10 && strings.Count(string(b), s) == 1 && strings.Contains(err.Error(), s) {
				t.Fatalf("error %q carries the passphrase %q", err, s)
			}
		}
	})
}
