package logging

import (
	"errors"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestTailKeepsNewestLinesWithFieldsAtTheLoggersLevel(t *testing.T) {
	obs, seen := observer.New(zapcore.InfoLevel)
	tail := NewTail(3)
	log := WithTail(zap.New(obs).Named("onaird"), tail)
	log.Debug("not kept: below the level")
	bond := log.Named("bond").With(zap.String("uplink", "wired"))
	for i := range 4 {
		bond.Info("link up", zap.Int("n", i))
	}
	log.Error("restart", zap.Error(errors.New(`bad "x"`)))
	if seen.Len() != 5 {
		t.Fatalf("the original core saw %d entries; want 5 (the tee must not take them away)", seen.Len())
	}
	lines, lost := tail.Lines(0, 0)
	if len(lines) != 3 || lost != 2 {
		t.Fatalf("kept %d lost %d; want 3 and 2", len(lines), lost)
	}
	if l := lines[0]; l.Seq != 3 || l.Logger != "onaird.bond" || l.Level != "info" || l.Msg != "link up" || l.Fields != `{"n":2,"uplink":"wired"}` {
		t.Errorf("line %+v", l)
	}
	if l := lines[2]; l.Level != "error" || l.Fields != `{"error":"bad \"x\""}` {
		t.Errorf("line %+v", l)
	}
	if lines, _ := tail.Lines(4, 1); len(lines) != 1 || lines[0].Seq != 5 {
		t.Errorf("after 4, n 1: %+v", lines)
	}
}

func TestSlowLogFollowerIsCutOffNotWaitedFor(t *testing.T) {
	tail := NewTail(0)
	log := WithTail(zap.NewNop(), tail)
	_ = log
	ch, cancel := tail.Subscribe()
	defer cancel()
	l := zap.New(tail.Core(zapcore.InfoLevel))
	for range tailSubBuffer + 5 {
		l.Info("x")
	}
	n := 0
	for range ch {
		n++
	}
	if n != tailSubBuffer {
		t.Errorf("got %d lines before the cut; want %d", n, tailSubBuffer)
	}
}
