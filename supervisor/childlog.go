package supervisor

import (
	"bytes"
	"encoding/json"
	"io"
	"strconv"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// MaxChildLine bounds a child log line that ParseChildLine parses; a longer
// line is logged as text.
const MaxChildLine = 16 << 10

// ParseChildLine parses one line of an onair-av child's stderr, a JSON
// object written by logging.NewChild, into what to log again: the child's
// level and message, and every other key as a field, in the line's order.
// "ts" is dropped (the journal, or onaird's logger, stamps the entry once);
// "logger", "caller" and "stacktrace" become child_logger, child_caller and
// child_stacktrace. Levels above error (dpanic, panic, fatal) come back as
// error with a child_level field, so logging them never panics or exits
// onaird. Integers come back as int64, other numbers as float64, nested
// objects and arrays as maps and slices (their numbers as json.Number).
//
// ok is false for anything else (libav prints, Go panic traces, a JSON
// object without a string level and msg, a line over MaxChildLine): the
// caller logs those as text.
func ParseChildLine(line []byte) (level zapcore.Level, msg string, fields []zap.Field, ok bool) {
	line = bytes.TrimRight(line, "\r\n")
	if len(line) > MaxChildLine || len(line) == 0 || line[0] != '{' {
		return 0, "", nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return 0, "", nil, false
	}
	var lvl, text *string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return 0, "", nil, false
		}
		key, _ := t.(string) // inside an object, a key is always a string
		var v any
		if err := dec.Decode(&v); err != nil {
			return 0, "", nil, false
		}
		switch key {
		case "level":
			s, isStr := v.(string)
			if !isStr {
				return 0, "", nil, false
			}
			lvl = &s
		case "msg":
			s, isStr := v.(string)
			if !isStr {
				return 0, "", nil, false
			}
			text = &s
		case "ts":
		case "logger", "caller", "stacktrace":
			fields = append(fields, zap.Any("child_"+key, v))
		default:
			fields = append(fields, zap.Any(key, topLevel(v)))
		}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return 0, "", nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return 0, "", nil, false // something after the object
	}
	if lvl == nil || text == nil {
		return 0, "", nil, false
	}
	level, err := zapcore.ParseLevel(*lvl)
	if err != nil {
		return 0, "", nil, false
	}
	if level > zapcore.ErrorLevel {
		fields = append(fields, zap.String("child_level", level.String()))
		level = zapcore.ErrorLevel
	}
	return level, *text, fields, true
}

// topLevel turns a field's number into int64 or float64, so it is logged
// as a number rather than as a string.
func topLevel(v any) any {
	n, isNum := v.(json.Number)
	if !isNum {
		return v
	}
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return i
	}
	if f, err := n.Float64(); err == nil {
		return f
	}
	return string(n)
}
