package logging

import (
	"bytes"
	"encoding/json"
	"sync"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"onair/web/api"
)

// DefaultTailLines is how many of onaird's newest log lines a Tail keeps.
const DefaultTailLines = 1000

// tailSubBuffer is a follower's channel capacity: one this far behind is cut
// off (its channel closed); it asks again with after=SEQ.
const tailSubBuffer = 256

// Tail keeps onaird's newest log lines for the web page's log tail and
// `onairctl logs`: a zapcore.Core to tee next to the stderr one (New does
// that when given a Tail). Its methods are safe for concurrent use.
type Tail struct {
	mu   sync.Mutex
	buf  []api.LogLine // circular once full
	head int
	seq  uint64
	subs map[chan api.LogLine]struct{}
}

// NewTail keeps n lines (DefaultTailLines when n <= 0).
func NewTail(n int) *Tail {
	if n <= 0 {
		n = DefaultTailLines
	}
	return &Tail{buf: make([]api.LogLine, 0, n), subs: map[chan api.LogLine]struct{}{}}
}

func (t *Tail) add(l api.LogLine) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.seq++
	l.Seq = t.seq
	if len(t.buf) < cap(t.buf) {
		t.buf = append(t.buf, l)
	} else {
		t.buf[t.head] = l
		t.head = (t.head + 1) % len(t.buf)
	}
	for ch := range t.subs {
		select {
		case ch <- l:
		default:
			delete(t.subs, ch)
			close(ch)
		}
	}
}

// Lines returns up to n (all when n <= 0) of the newest kept lines with Seq
// > after, oldest first, and how many lines fell off the tail.
func (t *Tail) Lines(after uint64, n int) (lines []api.LogLine, lost uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := len(t.buf)
	for i := range k {
		if l := t.buf[(t.head+i)%k]; l.Seq > after {
			lines = append(lines, l)
		}
	}
	if n > 0 && len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines, t.seq - uint64(k)
}

// Subscribe returns a channel with every line logged from now on and a func
// ending the subscription; the channel is closed when the follower falls
// behind by tailSubBuffer lines.
func (t *Tail) Subscribe() (<-chan api.LogLine, func()) {
	ch := make(chan api.LogLine, tailSubBuffer)
	t.mu.Lock()
	t.subs[ch] = struct{}{}
	t.mu.Unlock()
	return ch, func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if _, ok := t.subs[ch]; ok {
			delete(t.subs, ch)
			close(ch)
		}
	}
}

// Core returns the zapcore.Core that writes into t at level and above.
func (t *Tail) Core(level zapcore.LevelEnabler) zapcore.Core {
	return &tailCore{LevelEnabler: level, tail: t}
}

type tailCore struct {
	zapcore.LevelEnabler
	tail   *Tail
	fields []zapcore.Field
}

func (c *tailCore) With(fs []zapcore.Field) zapcore.Core {
	return &tailCore{LevelEnabler: c.LevelEnabler, tail: c.tail, fields: append(c.fields[:len(c.fields):len(c.fields)], fs...)}
}

func (c *tailCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *tailCore) Write(e zapcore.Entry, fs []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range c.fields {
		f.AddTo(enc)
	}
	for _, f := range fs {
		f.AddTo(enc)
	}
	l := api.LogLine{Time: e.Time, Level: e.Level.String(), Logger: e.LoggerName, Msg: e.Message}
	if len(enc.Fields) > 0 {
		var b bytes.Buffer
		je := json.NewEncoder(&b)
		je.SetEscapeHTML(false)
		if err := je.Encode(enc.Fields); err == nil {
			l.Fields = string(bytes.TrimSpace(b.Bytes()))
		}
	}
	c.tail.add(l)
	return nil
}

func (c *tailCore) Sync() error { return nil }

// WithTail returns log writing also into t, at log's level.
func WithTail(log *zap.Logger, t *Tail) *zap.Logger {
	return log.WithOptions(zap.WrapCore(func(core zapcore.Core) zapcore.Core {
		return zapcore.NewTee(core, t.Core(core))
	}))
}
