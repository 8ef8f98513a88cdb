package supervisor

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"onair/internal/logging"
)

// relog logs what ParseChildLine made of line, as readOutput does, and
// returns the one entry onaird's logger recorded.
func relog(t *testing.T, line []byte) observer.LoggedEntry {
	t.Helper()
	lvl, msg, fields, ok := ParseChildLine(line)
	if !ok {
		t.Fatalf("ParseChildLine(%q): not ok", line)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	zap.New(core).Log(lvl, msg, fields...)
	if logs.Len() != 1 {
		t.Fatalf("%d entries", logs.Len())
	}
	return logs.All()[0]
}

func childLine(t *testing.T, f func(*zap.Logger)) []byte {
	t.Helper()
	var buf bytes.Buffer
	log, err := logging.NewChildTo(&buf, "encode", "debug") // NewChild on a buffer
	if err != nil {
		t.Fatal(err)
	}
	f(log.With(zap.String("name", "encoder-a")))
	lines := bytes.SplitAfter(buf.Bytes(), []byte("\n"))
	if len(lines) != 2 || len(lines[1]) != 0 {
		t.Fatalf("child wrote %q, want one line", buf.String())
	}
	return lines[0]
}

func TestChildLineFromTheChildLoggerKeepsLevelMessageAndFieldsAndDropsItsTime(t *testing.T) {
	line := childLine(t, func(l *zap.Logger) {
		l.Named("ffmpeg").Warn("lagging", zap.Int("late_frames", 3), zap.Float64("ratio", 0.5),
			zap.Bool("live", true), zap.Duration("took", 1500000000))
	})
	e := relog(t, line)
	if e.Level != zapcore.WarnLevel || e.Message != "lagging" {
		t.Fatalf("entry %v %q, want warn \"lagging\"", e.Level, e.Message)
	}
	got := e.ContextMap()
	want := map[string]any{"name": "encoder-a", "child_logger": "encode.ffmpeg", "late_frames": int64(3),
		"ratio": 0.5, "live": true, "took": "1.5s"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %#v", k, got[k], v)
		}
	}
	if c, _ := got["child_caller"].(string); !strings.HasPrefix(c, "supervisor/childlog_test.go:") {
		t.Errorf("child_caller %q, want the child's call site", c)
	}
	for _, k := range []string{"ts", "level", "msg", "logger", "caller"} {
		if _, has := got[k]; has {
			t.Errorf("field %q kept: the entry carries it already (or, for ts, the journal stamps once)", k)
		}
	}
}

func TestChildLineErrorKeepsTheChildsStacktraceAndError(t *testing.T) {
	line := childLine(t, func(l *zap.Logger) { l.Error("exiting", zap.Error(errors.New("av: boom"))) })
	e := relog(t, line)
	got := e.ContextMap()
	if e.Level != zapcore.ErrorLevel || got["error"] != "av: boom" {
		t.Fatalf("entry %v %v", e.Level, got)
	}
	if s, _ := got["child_stacktrace"].(string); !strings.Contains(s, "TestChildLineErrorKeepsTheChildsStacktraceAndError") {
		t.Fatalf("child_stacktrace %q, want the child's stack", s)
	}
}

// A child's fatal or panic line must not make onaird's logger exit or panic.
func TestChildLineAboveErrorIsLoggedAsErrorNeverFatal(t *testing.T) {
	for _, lvl := range []string{"dpanic", "panic", "fatal"} {
		e := relog(t, []byte(`{"level":"`+lvl+`","ts":"2026-01-01T00:00:00Z","msg":"bye"}`))
		if e.Level != zapcore.ErrorLevel || e.ContextMap()["child_level"] != lvl {
			t.Errorf("%s: entry %v %v, want error with child_level", lvl, e.Level, e.ContextMap())
		}
	}
}

// Nested objects stay structured: encoded again, their numbers are numbers.
func TestChildLineKeepsNestedObjectsStructured(t *testing.T) {
	lvl, msg, fields, ok := ParseChildLine([]byte(`{"level":"info","msg":"hello","geo":{"w":1280,"h":720,"fps":[30000,1001]},"big":18446744073709551615}` + "\n"))
	if !ok || lvl != zapcore.InfoLevel || msg != "hello" {
		t.Fatalf("%v %q %v", lvl, msg, ok)
	}
	enc := zapcore.NewJSONEncoder(zapcore.EncoderConfig{MessageKey: "msg"})
	buf, err := enc.EncodeEntry(zapcore.Entry{Message: msg}, fields)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"msg":"hello","geo":{"fps":[30000,1001],"h":720,"w":1280},"big":18446744073709552000}` + "\n"
	if buf.String() != want {
		t.Fatalf("re-encoded\n %s\nwant\n %s", buf, want)
	}
}

func TestChildLineRefusesWhatIsNotAChildLogObject(t *testing.T) {
	huge := []byte(`{"level":"info","msg":"` + strings.Repeat("x", MaxChildLine) + `"}`)
	for name, line := range map[string]string{
		"empty":              "",
		"libav print":        "[h264 @ 0x55d0c0] non-existing PPS 0 referenced",
		"panic trace":        "panic: runtime error: index out of range [3] with length 3",
		"goroutine trace":    "goroutine 1 [running]:",
		"malformed":          `{"level":"info","msg":"cut`,
		"unterminated":       `{"level":"info","msg":"x"`,
		"trailing garbage":   `{"level":"info","msg":"x"} extra`,
		"two objects":        `{"level":"info","msg":"x"}{"level":"info","msg":"y"}`,
		"array":              `[{"level":"info","msg":"x"}]`,
		"no level":           `{"msg":"x"}`,
		"no msg":             `{"level":"info"}`,
		"level not a string": `{"level":3,"msg":"x"}`,
		"msg not a string":   `{"level":"info","msg":{"a":1}}`,
		"unknown level":      `{"level":"loud","msg":"x"}`,
		"huge":               string(huge),
	} {
		if _, _, _, ok := ParseChildLine([]byte(line)); ok {
			t.Errorf("%s: ok for %.80q, want it logged as text", name, line)
		}
	}
	head := `{"level":"info","msg":"`
	fits := head + strings.Repeat("x", MaxChildLine-len(head)-2) + `"}`
	if _, msg, _, ok := ParseChildLine([]byte(fits + "\n")); !ok || len(msg) != MaxChildLine-len(head)-2 {
		t.Errorf("a line of exactly MaxChildLine bytes (plus newline) is refused")
	}
}
