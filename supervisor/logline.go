package supervisor

import (
	"bytes"
	"encoding/json"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// childLine is one line of a child's output, parsed. A child (onair-av)
// logs zap JSON on stderr, one object per line: "level", "ts", "logger",
// "msg", optional "caller" and "stacktrace", every other key a field.
// Anything else (libav's own prints, a Go panic trace) is text.
type childLine struct {
	Structured bool
	Level      zapcore.Level // warn for text
	Logger     string        // the child's logger name, "" if none
	Msg        string        // the child's msg; for text, "" (the line is Fields[0])
	Caller     string
	Stack      string
	Fields     []zap.Field // in the child's order; "ts" dropped
}

// parseChildLine parses one output line (without its line ending). It never
// fails: a line that is not one zap JSON object with a string "msg" comes
// back as text at warn, in field "line". The child's "ts" is dropped, so the
// journal stamps the line once. Levels above error (dpanic, panic, fatal)
// come back as error: re-logging must never panic or exit onaird.
func parseChildLine(line string) childLine {
	text := childLine{Level: zapcore.WarnLevel, Fields: []zap.Field{zap.String("line", line)}}
	trimmed := strings.TrimSpace(line)
	if !strings.HasPrefix(trimmed, "{") || !strings.HasSuffix(trimmed, "}") {
		return text
	}
	dec := json.NewDecoder(strings.NewReader(trimmed))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return text
	}
	out := childLine{Structured: true, Level: zapcore.InfoLevel}
	haveMsg := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return text
		}
		key, ok := tok.(string)
		if !ok {
			return text
		}
		var v any
		if err := dec.Decode(&v); err != nil {
			return text
		}
		str, isStr := v.(string)
		switch key {
		case "ts":
			continue
		case "level":
			if !isStr {
				return text
			}
			lvl, err := zapcore.ParseLevel(str)
			if err != nil {
				return text
			}
			out.Level = min(lvl, zapcore.ErrorLevel)
			continue
		case "msg":
			if !isStr {
				return text
			}
			out.Msg, haveMsg = str, true
			continue
		case "logger":
			if isStr {
				out.Logger = str
				continue
			}
		case "caller":
			if isStr {
				out.Caller = str
				continue
			}
		case "stacktrace":
			if isStr {
				out.Stack = str
				continue
			}
		}
		out.Fields = append(out.Fields, jsonField(key, v))
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') || !haveMsg {
		return text
	}
	if _, err := dec.Token(); err == nil { // trailing data after the object
		return text
	}
	return out
}

// jsonField turns one decoded JSON value into a zap field of its own kind.
func jsonField(key string, v any) zap.Field {
	switch x := v.(type) {
	case string:
		return zap.String(key, x)
	case bool:
		return zap.Bool(key, x)
	case nil:
		return zap.Skip() // a JSON null carries nothing
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return zap.Int64(key, i)
		}
		if f, err := x.Float64(); err == nil {
			return zap.Float64(key, f)
		}
		return zap.String(key, x.String())
	default: // objects and arrays: kept as raw JSON, re-encoded compactly
		b, err := json.Marshal(x)
		if err != nil {
			return zap.Any(key, x)
		}
		var buf bytes.Buffer
		_ = json.Compact(&buf, b)
		return zap.Any(key, json.RawMessage(buf.Bytes()))
	}
}

// logChildLine re-logs one parsed line through log (which carries the
// child's name) at the child's level. The entry's caller and stack are the
// child's, not the supervisor's reading goroutine.
func logChildLine(log *zap.Logger, l childLine) {
	msg := l.Msg
	if !l.Structured {
		msg = "child output"
	}
	ce := log.Check(l.Level, msg)
	if ce == nil {
		return
	}
	ce.Caller = zapcore.EntryCaller{}
	ce.Stack = l.Stack
	fields := l.Fields
	if l.Logger != "" {
		fields = append(fields, zap.String("child_logger", l.Logger))
	}
	if l.Caller != "" {
		fields = append(fields, zap.String("child_caller", l.Caller))
	}
	ce.Write(fields...)
}
