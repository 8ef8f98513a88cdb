package logging

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.uber.org/zap"
)

// stderrOf runs f with os.Stderr redirected to a file and returns what was
// written. New takes os.Stderr when it is called, so f must call New.
func stderrOf(t *testing.T, f func()) string {
	t.Helper()
	tmp, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if cerr := tmp.Close(); cerr != nil {
			t.Error(cerr)
		}
	}()
	old := os.Stderr
	os.Stderr = tmp
	defer func() { os.Stderr = old }()
	f()
	b, err := os.ReadFile(tmp.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var stamp = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d`)

func TestLoggerWritesNamedLinesAtItsLevelOnly(t *testing.T) {
	t.Setenv("JOURNAL_STREAM", "")
	out := stderrOf(t, func() {
		log, err := New("onaird", "warn")
		if err != nil {
			t.Fatal(err)
		}
		log.Info("quiet line")
		log.Named("keeper").Warn("loud line")
		_ = log.Sync()
	})
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 1 {
		t.Fatalf("got %d lines, want only the warning: %q", len(lines), out)
	}
	l := lines[0]
	for _, want := range []string{"WARN", "onaird.keeper", "loud line", "logging_test.go:"} {
		if !strings.Contains(l, want) {
			t.Errorf("line %q lacks %q", l, want)
		}
	}
	if !stamp.MatchString(l) {
		t.Errorf("outside the journal a line starts with its time: %q", l)
	}
}

// Under systemd the journal stamps every line: a second timestamp is noise.
func TestLoggerLeavesTheTimestampToTheJournal(t *testing.T) {
	t.Setenv("JOURNAL_STREAM", "8:12345")
	out := stderrOf(t, func() {
		log, err := New("onaird", "debug")
		if err != nil {
			t.Fatal(err)
		}
		log.Debug("hello")
		_ = log.Sync()
	})
	if !strings.HasPrefix(out, "DEBUG") || !strings.Contains(out, "hello") || stamp.MatchString(out) {
		t.Fatalf("under the journal: %q, want a line starting with its level", out)
	}
}

func TestLoggerRefusesAnUnknownLevel(t *testing.T) {
	if _, err := New("onaird", "loud"); err == nil || !strings.Contains(err.Error(), `logging: level "loud"`) {
		t.Fatalf("err %v, want one naming the level", err)
	}
}

// onaird parses a child's stderr line by line: each entry must be one JSON
// object with the agreed keys, fields inline, at the child's level only.
func TestChildLoggerWritesOneJSONObjectPerLineAtItsLevel(t *testing.T) {
	out := stderrOf(t, func() {
		log, err := NewChild("encode", "info")
		if err != nil {
			t.Fatal(err)
		}
		log.Debug("quiet line")
		log.With(zap.String("name", "encoder-a")).Info("two\nlines", zap.Int("gop", 60))
		_ = log.Sync()
	})
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) != 1 {
		t.Fatalf("got %d lines, want only the info entry on one line: %q", len(lines), out)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &m); err != nil {
		t.Fatalf("line %q is not JSON: %v", lines[0], err)
	}
	want := map[string]any{KeyLevel: "info", KeyLogger: "encode", KeyMsg: "two\nlines", "name": "encoder-a", "gop": 60.0}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("%s = %v, want %v (line %q)", k, m[k], v, lines[0])
		}
	}
	if c, _ := m[KeyCaller].(string); !strings.HasPrefix(c, "logging/logging_test.go:") {
		t.Errorf("caller %q, want this file", c)
	}
	if ts, _ := m[KeyTime].(string); !stamp.MatchString(ts) {
		t.Errorf("ts %q, want an RFC 3339 time", ts)
	}
}

func TestChildLoggerRefusesAnUnknownLevel(t *testing.T) {
	if _, err := NewChild("encode", "loud"); err == nil || !strings.Contains(err.Error(), `logging: level "loud"`) {
		t.Fatalf("err %v, want one naming the level", err)
	}
}
