package supervisor

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// childJSON logs one entry the way onair-av does (zap production JSON) and
// returns the line.
func childJSON(t *testing.T, lvl zapcore.Level, msg string, fields ...zap.Field) string {
	t.Helper()
	var buf bytes.Buffer
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	log := zap.New(zapcore.NewCore(enc, zapcore.AddSync(&buf), zapcore.DebugLevel), zap.AddCaller()).Named("encode")
	if ce := log.Check(lvl, msg); ce != nil {
		ce.Write(fields...)
	}
	return strings.TrimRight(buf.String(), "\n")
}

func TestChildZapLineIsReloggedAtItsLevelWithItsFields(t *testing.T) {
	line := childJSON(t, zapcore.WarnLevel, "late frame", zap.Uint64("index", 1<<40), zap.Float64("ms", 12.5), zap.Bool("idr", true), zap.String("codec", "h264"))
	if !strings.Contains(line, `"ts":`) {
		t.Fatalf("test line %s has no ts", line)
	}
	l := parseChildLine(line)
	if !l.Structured || l.Level != zapcore.WarnLevel || l.Msg != "late frame" || l.Logger != "encode" || !strings.Contains(l.Caller, "logline_test.go") {
		t.Fatalf("parsed %+v, want structured warn %q from logger encode with a caller", l, "late frame")
	}

	core, logs := observer.New(zapcore.DebugLevel)
	logChildLine(zap.New(core).With(zap.String("child", "encoder-a")), l)
	if logs.Len() != 1 {
		t.Fatalf("%d entries logged, want 1", logs.Len())
	}
	e := logs.All()[0]
	m := e.ContextMap()
	if e.Level != zapcore.WarnLevel || e.Message != "late frame" {
		t.Errorf("entry %v %q, want warn %q", e.Level, e.Message, "late frame")
	}
	want := map[string]any{"child": "encoder-a", "index": int64(1 << 40), "ms": 12.5, "idr": true, "codec": "h264", "child_logger": "encode"}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("field %s = %#v, want %#v", k, m[k], v)
		}
	}
	for _, k := range []string{"ts", "level", "msg", "logger"} {
		if _, ok := m[k]; ok {
			t.Errorf("field %q re-logged as a field: %v", k, m)
		}
	}
	if e.Caller.Defined {
		t.Errorf("entry caller %v is the supervisor's, want none (the child's is a field)", e.Caller)
	}
}

func TestChildStacktraceIsTheEntryStack(t *testing.T) {
	line := `{"level":"error","ts":1.5,"msg":"boom","stacktrace":"main.f\n\t/src/x.go:3"}`
	l := parseChildLine(line)
	if !l.Structured || l.Level != zapcore.ErrorLevel || l.Stack != "main.f\n\t/src/x.go:3" {
		t.Fatalf("parsed %+v, want error with the child's stack", l)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	logChildLine(zap.New(core), l)
	if e := logs.All()[0]; e.Stack != l.Stack {
		t.Errorf("entry stack %q, want the child's", e.Stack)
	}
}

// A child's fatal or panic entry must not make the re-logging call exit or
// panic onaird.
func TestChildFatalLevelIsReloggedAsError(t *testing.T) {
	for _, lvl := range []string{"dpanic", "panic", "fatal"} {
		l := parseChildLine(`{"level":"` + lvl + `","ts":1,"msg":"dying"}`)
		if !l.Structured || l.Level != zapcore.ErrorLevel {
			t.Errorf("%s: parsed level %v structured %v, want error", lvl, l.Level, l.Structured)
		}
		core, logs := observer.New(zapcore.DebugLevel)
		logChildLine(zap.New(core), l) // would exit or panic at its own level
		if logs.Len() != 1 {
			t.Errorf("%s: not logged", lvl)
		}
	}
}

func TestChildTextLinesAreLoggedAsTextAtWarn(t *testing.T) {
	for _, line := range []string{
		"[h264_v4l2m2m @ 0x5581] Using device /dev/video11",
		"panic: runtime error: index out of range [3] with length 3",
		"goroutine 1 [running]:",
		"\tonair/encoder/av.(*Encoder).Run(0xc000010000)",
		`{"level":"info","ts":1,"msg":`,          // cut mid-object
		`{"level":"info","ts":1,"msg":"a"} tail`, // trailing text
		`{"level":"info","ts":1}`,                // no msg
		`{"level":"loud","msg":"a"}`,             // unknown level
		`{"level":"info","msg":7}`,               // msg not a string
		`["level","info"]`,
		"{not json}",
		"",
	} {
		l := parseChildLine(line)
		if l.Structured || l.Level != zapcore.WarnLevel || len(l.Fields) != 1 || l.Fields[0].Key != "line" || l.Fields[0].String != line {
			t.Errorf("%q parsed as %+v, want text at warn in field line", line, l)
		}
	}
	core, logs := observer.New(zapcore.DebugLevel)
	logChildLine(zap.New(core), parseChildLine("panic: boom"))
	if e := logs.All()[0]; e.Level != zapcore.WarnLevel || e.ContextMap()["line"] != "panic: boom" {
		t.Errorf("text entry %+v, want warn with line", e)
	}
}

func TestChildNestedJSONFieldsSurvive(t *testing.T) {
	l := parseChildLine(`{"level":"info","msg":"hello","args":{"fps":"30000/1001","slots":[1,2]},"gone":null}`)
	if !l.Structured {
		t.Fatalf("parsed as text: %+v", l)
	}
	core, logs := observer.New(zapcore.DebugLevel)
	logChildLine(zap.New(core), l)
	m := logs.All()[0].ContextMap()
	if _, ok := m["gone"]; ok {
		t.Errorf("null field kept: %v", m)
	}
	var buf bytes.Buffer
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	log := zap.New(zapcore.NewCore(enc, zapcore.AddSync(&buf), zapcore.DebugLevel))
	logChildLine(log, l)
	if !strings.Contains(buf.String(), `"args":{"fps":"30000/1001","slots":[1,2]}`) {
		t.Errorf("re-encoded line %s lost the nested field", buf.String())
	}
	if strings.Count(buf.String(), `"ts":`) != 1 {
		t.Errorf("re-encoded line %s does not have exactly one ts", buf.String())
	}
}

// A child printing one enormous line (a runaway hex dump) must not grow
// onaird's memory: the line is cut at maxLineLen and the next one is intact.
func TestHugeChildLineIsCutAndTheNextSurvives(t *testing.T) {
	huge := strings.Repeat("x", 10<<20)
	br := bufio.NewReaderSize(strings.NewReader(huge+"\nnext\n"), maxLineLen)
	line, err := readLine(br)
	if err != nil || len(line) > maxLineLen+len(" [truncated]") || !strings.HasSuffix(line, " [truncated]") {
		t.Fatalf("first line: %d bytes, err %v, want at most %d bytes marked truncated", len(line), err, maxLineLen)
	}
	if line, err := readLine(br); err != nil || line != "next" {
		t.Errorf("second line %q, %v, want next", line, err)
	}
}
