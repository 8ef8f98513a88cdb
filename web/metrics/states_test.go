package metrics

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func readFile(name string) (string, error) {
	b, err := os.ReadFile(name)
	return string(b), err
}

// constants returns the values of the string constants of type typ
// declared in the non-test files of dir, in source order.
func constants(t *testing.T, dir, typ string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, s := range g.Specs {
				v := s.(*ast.ValueSpec)
				if id, ok := v.Type.(*ast.Ident); !ok || id.Name != typ {
					continue
				}
				for _, e := range v.Values {
					lit, ok := e.(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						t.Fatalf("%s: a %s constant that is not a string literal", fset.Position(e.Pos()), typ)
					}
					s, err := strconv.Unquote(lit.Value)
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, s)
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no constants of type %s in %s", typ, dir)
	}
	return out
}

// A state added to its owner but not to the list here would show only as
// the "unknown state" series, without its 0 the rest of the time (an
// alert on it could never clear); a renamed one would be a dead series.
func TestStateListsMatchTheirOwnersConstants(t *testing.T) {
	tests := []struct {
		dir, typ string
		list     []string
	}{
		{"../api", "BoxState", boxStates},
		{"../api", "OnAirPhase", onAirPhases},
		{"../api", "AudioMode", audioModes},
		{"../api", "AudioChainState", audioChainStates},
		{"../api", "GroupState", groupStates},
		{"../api", "UplinkState", uplinkStates},
		{"../api", "PowerState", powerStates},
		{"../api", "PowerSource", powerSources},
		{"../api", "RecordingState", recordingStates},
		{"../api", "TunnelState", tunnelStates},
		{"../../supervisor", "State", runStates},
		{"../../output", "State", outputStates},
	}
	for _, tt := range tests {
		t.Run(tt.dir+"."+tt.typ, func(t *testing.T) {
			want := constants(t, tt.dir, tt.typ)
			if !slices.Equal(slices.Sorted(slices.Values(tt.list)), slices.Sorted(slices.Values(want))) {
				t.Fatalf("list %v, %s.%s has %v", tt.list, tt.dir, tt.typ, want)
			}
		})
	}
}
