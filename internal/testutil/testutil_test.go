package testutil

import (
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"go.uber.org/zap"
)

func TestFakeChildModes(t *testing.T) {
	bin := BuildFakeChild(t)
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"crash exits with code", []string{"-mode=crash", "-code=3"}, 3, "crashing\n"},
		{"lines go to stderr and stdout", []string{"-mode=lines", "-n=2", "-code=0"}, 0, "line 0\nline 1\n"},
		{"unknown mode", []string{"-mode=nope"}, 2, "fakechild: unknown mode \"nope\"\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := exec.Command(bin, tt.args...).CombinedOutput()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.wantCode || !strings.Contains(string(out), tt.wantOut) {
				t.Errorf("exit %d, output %q; want exit %d, output %q", code, out, tt.wantCode, tt.wantOut)
			}
		})
	}
}

// recordTB is the real t, with its log recorded.
type recordTB struct {
	testing.TB
	lines []string
}

func (r *recordTB) Logf(format string, args ...any) {
	r.lines = append(r.lines, fmt.Sprintf(format, args...))
}

func TestNilLoggerLogsToTest(t *testing.T) {
	rec := &recordTB{TB: t}
	NilLogger(rec).Info("hello", zap.Int("n", 7))
	if len(rec.lines) != 1 || !strings.Contains(rec.lines[0], "hello") || !strings.Contains(rec.lines[0], `"n": 7`) {
		t.Fatalf("logged to the test: %q, want one line with the message and its field", rec.lines)
	}
}
