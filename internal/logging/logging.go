// Package logging builds the zap loggers of onair's binaries: console lines on
// stderr (which the journal captures under systemd), at a configured level.
//
// Not for: library packages, which take an injected *zap.Logger.
package logging

import (
	"fmt"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

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
