// Package logging builds the zap loggers of onair's binaries, at a configured
// level, on stderr: console lines for onaird and the tools (the journal
// captures them under systemd), JSON lines for the onair-av children, which
// onaird reads and re-logs as structured entries (supervisor.ParseChildLine).
//
// Not for: library packages, which take an injected *zap.Logger.
package logging

import (
	"fmt"
	"io"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Keys of a child's JSON line (NewChild). The supervisor parses these.
const (
	KeyLevel      = "level"
	KeyTime       = "ts"
	KeyLogger     = "logger"
	KeyMsg        = "msg"
	KeyCaller     = "caller"
	KeyStacktrace = "stacktrace"
)

// NewChild returns the logger of an onair-av child: one JSON object per line
// on stderr (keys level, ts, logger, msg, and caller, stacktrace when
// present; fields inline), at level ("" is info), named name.
func NewChild(name, level string) (*zap.Logger, error) {
	return NewChildTo(os.Stderr, name, level)
}

// NewChildTo is NewChild writing to w instead of stderr.
func NewChildTo(w io.Writer, name, level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("logging: level %q: %w", level, err)
	}
	enc := zapcore.EncoderConfig{
		LevelKey:       KeyLevel,
		TimeKey:        KeyTime,
		NameKey:        KeyLogger,
		MessageKey:     KeyMsg,
		CallerKey:      KeyCaller,
		StacktraceKey:  KeyStacktrace,
		LineEnding:     zapcore.DefaultLineEnding,
		EncodeLevel:    zapcore.LowercaseLevelEncoder,
		EncodeTime:     zapcore.RFC3339NanoTimeEncoder,
		EncodeDuration: zapcore.StringDurationEncoder,
		EncodeCaller:   zapcore.ShortCallerEncoder,
	}
	core := zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.Lock(zapcore.AddSync(w)), lvl)
	return zap.New(core, zap.AddCaller(), zap.AddStacktrace(zapcore.ErrorLevel)).Named(name), nil
}

// New returns a logger at level ("debug", "info", "warn", "error") named name.
func New(name, level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("logging: level %q: %w", level, err)
	}
	enc := zap.NewDevelopmentEncoderConfig()
	enc.EncodeLevel = zapcore.CapitalLevelEncoder
	if os.Getenv("JOURNAL_STREAM") != "" {
		enc.TimeKey = "" // the journal stamps every line itself
	}
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.Lock(os.Stderr), lvl)
	return zap.New(core, zap.AddCaller()).Named(name), nil
}
