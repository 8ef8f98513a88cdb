// Package record records the programme's MPEG-TS on the box, the ISO
// backup: the same bytes that go to SRT are written to a local disk, in
// segments of Config.Segment, each named after its UTC start time
// (onair-20261203T101500Z.ts) and each playable alone.
//
// A segment is cut only where a new video random access point begins: the TS
// packet of the video PID whose adaptation field has random_access_indicator
// set (tsmux.Muxer sets it on every IDR, as FFmpeg does), and it starts with
// the latest PAT and PMT seen, so a player needs nothing from the segment
// before. The first segment waits for the first random access point.
//
// Feeding never blocks or slows the stream: Write copies into a bounded
// queue and returns; the writer in Run does the file I/O. When the queue is
// full (the disk fell behind) the bytes are dropped, counted and said in
// Status, the segment under way is closed where the gap starts and the next
// one begins at the next random access point: every file stays playable and
// without a hole inside. A write error (a full disk, an I/O error) stops the
// recording: the segment is cut back to the end of the last whole write,
// synced and closed, so what was written stays playable; Status says why.
// The stream is never affected. Segments are synced (fsync) when they close.
//
// Not for: deleting old segments (nothing here ever removes a recording),
// muxing (encoder/tsmux), sending (output), or choosing when to record (the
// operator and Config.AutoStart do, through Start and Stop).
package record

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"onair/web/api"
)

// Defaults for zero Config and Deps fields.
const (
	// DefaultSegment is the length of one segment.
	DefaultSegment = 10 * time.Minute
	// DefaultQueueBytes bounds the bytes waiting for the disk: about 13 s
	// at 5 Mbit/s, so an SD card's write stall of seconds loses nothing.
	DefaultQueueBytes = 8 << 20

	minSegment = time.Second
	maxSegment = 24 * time.Hour
	// minFree is the free space Start wants in the directory.
	minFree = 1 << 20
)

// Errors returned (wrapped) by Start.
var (
	// ErrNotConfigured: recording.dir is empty.
	ErrNotConfigured = errors.New("record: recording not configured (recording.dir is empty)")
	// ErrDirMissing: recording.dir does not exist or is not a directory
	// (the disk is not mounted).
	ErrDirMissing = errors.New("record: recording directory missing")
	// ErrDirUnwritable: recording.dir cannot be written (permissions, a
	// read-only mount).
	ErrDirUnwritable = errors.New("record: recording directory not writable")
	// ErrDiskFull: the disk has (almost) no space left.
	ErrDiskFull = errors.New("record: disk full")
)

// Config configures the recording (recording: in the YAML).
type Config struct {
	// Dir is where the segments go: an absolute path, usually a mounted
	// disk. Empty: recording is not configured (Start fails).
	Dir string `yaml:"dir"`
	// Segment is the length of a segment: the first random access point
	// after it starts the next one (zero in New: DefaultSegment).
	Segment time.Duration `yaml:"segment"`
	// AutoStart: Run starts recording at once. When it cannot (the disk is
	// missing) the state is error and the stream goes on.
	AutoStart bool `yaml:"autostart"`
}

// DefaultConfig is the configuration before the YAML is read: 10 min
// segments, recording from the start once a directory is configured.
func DefaultConfig() Config { return Config{Segment: DefaultSegment, AutoStart: true} }

// Configured reports whether a directory is set.
func (c Config) Configured() bool { return c.Dir != "" }

// Validate checks every field. The error joins (errors.Join) one error per
// bad key, each starting with the key ("recording.segment: …").
func (c Config) Validate() error {
	var errs []error
	if c.Dir != "" && !filepath.IsAbs(c.Dir) {
		errs = append(errs, fmt.Errorf("recording.dir: %q: must be an absolute path", c.Dir))
	}
	if c.Segment < minSegment || c.Segment > maxSegment {
		errs = append(errs, fmt.Errorf("recording.segment: %s: want %s..%s", c.Segment, minSegment, maxSegment))
	}
	return errors.Join(errs...)
}

// File is one segment being written. *os.File implements it.
type File interface {
	Write(p []byte) (int, error)
	// Truncate cuts the file back to size (to the end of the last whole
	// write, after a failed one).
	Truncate(size int64) error
	Sync() error
	Close() error
}

// Deps are the recorder's collaborators; zero fields take the real ones.
type Deps struct {
	Log   *zap.Logger
	Clock clockwork.Clock
	// Create creates a new segment file at path and fails with an error
	// matching fs.ErrExist when path exists (O_EXCL): no recording is ever
	// overwritten. nil: os.OpenFile(path, O_WRONLY|O_CREATE|O_EXCL, 0644).
	// A segment that could not take a single byte is removed (os.Remove).
	Create func(path string) (File, error)
	// QueueBytes bounds the bytes waiting for the writer (0:
	// DefaultQueueBytes).
	QueueBytes int
}

func createFile(path string) (File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err // not a nil *os.File in a non-nil File
	}
	return f, nil
}

// State is where the recording is (api.RecordingState):
//
//	stopped   -> recording  Start (the directory is there and writable)
//	stopped,
//	error     -> error      Start failed (directory missing, unwritable, full)
//	error     -> recording  Start
//	recording -> stopped    Stop; a write error (disk full: Reason says so);
//	                        Run's ctx done
//	error     -> stopped    Stop
type State = api.RecordingState

// The states reported in Status.
const (
	StateRecording = api.RecordingRecording
	StateStopped   = api.RecordingStopped
	StateError     = api.RecordingError
)

// Status is the recording for the status page, the panel and onairctl.
type Status = api.RecordingStatus

// mark is one Write in the queue.
type mark struct {
	end int       // offset in the queue where the write ends
	at  time.Time // when it was written
	gen uint64    // the recording (Start) it belongs to
	gap bool      // bytes were dropped just before it
}

// Recorder records the TS written to it. Create it with New, run it with
// Run, feed it with Write from any goroutine, and control it with Start
// and Stop.
type Recorder struct {
	cfg      Config
	log      *zap.Logger
	clock    clockwork.Clock
	create   func(string) (File, error)
	queueMax int
	wake     chan struct{} // cap 1: bytes queued, or the wish changed

	op sync.Mutex // serialises Start and Stop

	mu         sync.Mutex
	changed    chan struct{} // closed (and replaced) on every change the writer makes
	running    bool          // Run is running
	want       bool          // recording wanted (Start) and not failed
	gen        uint64        // the current recording, +1 per Start
	settled    uint64        // every recording up to it has its segment closed
	buf        []byte        // the queue
	marks      []mark
	gapPending bool // bytes were dropped since the last queued write
	overflow   bool // the queue overflowed: drop until the writer takes it
	st         Status
}

// New validates cfg and returns a stopped recorder. An empty Dir is
// allowed: Start then fails with ErrNotConfigured.
func New(cfg Config, deps Deps) (*Recorder, error) {
	if cfg.Segment == 0 {
		cfg.Segment = DefaultSegment
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	if deps.Log == nil {
		deps.Log = zap.NewNop()
	}
	if deps.Clock == nil {
		deps.Clock = clockwork.NewRealClock()
	}
	if deps.Create == nil {
		deps.Create = createFile
	}
	if deps.QueueBytes == 0 {
		deps.QueueBytes = DefaultQueueBytes
	}
	if deps.QueueBytes < 7*packetSize {
		return nil, fmt.Errorf("record: queue of %d bytes: want at least %d", deps.QueueBytes, 7*packetSize)
	}
	r := &Recorder{
		cfg:      cfg,
		log:      deps.Log,
		clock:    deps.Clock,
		create:   deps.Create,
		queueMax: deps.QueueBytes,
		wake:     make(chan struct{}, 1),
		changed:  make(chan struct{}),
	}
	r.st = Status{State: StateStopped, Reason: "not started", Since: r.clock.Now(), Dir: cfg.Dir}
	if !cfg.Configured() {
		r.st.Reason = "recording.dir not set"
	}
	return r, nil
}

func (r *Recorder) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// changedLocked wakes everyone waiting for a change. Called with mu held.
func (r *Recorder) changedLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// setLocked enters state for reason. Called with mu held.
func (r *Recorder) setLocked(s State, reason string) {
	r.st.State, r.st.Reason, r.st.Since = s, reason, r.clock.Now()
	r.changedLocked()
}

// Write queues p, whole TS packets (a multiple of 188 bytes), for the
// disk and returns len(p), nil at once: it never blocks on the disk and
// never fails, so a muxer writing to it never stops. While not recording it
// does nothing. When p does not fit the queue it is dropped whole (a gap:
// see Status.Gaps); a p that is not whole packets is dropped too.
func (r *Recorder) Write(p []byte) (int, error) {
	n := len(p)
	r.mu.Lock()
	if r.st.State != StateRecording || n == 0 {
		r.mu.Unlock()
		return n, nil
	}
	if n%packetSize != 0 || r.overflow || len(r.buf)+n > r.queueMax {
		if !r.gapPending {
			r.gapPending = true
			r.st.Gaps++
		}
		// Once full, everything is dropped until the writer has taken the
		// queue: one gap per stall, not a hole-riddled queue.
		if n%packetSize == 0 {
			r.overflow = true
		}
		r.st.BytesDropped += uint64(n)
		if n%packetSize != 0 {
			r.st.LastError = fmt.Sprintf("[unexpected] a write of %d bytes, not whole TS packets: dropped", n)
		} else {
			r.st.LastError = fmt.Sprintf("queue full: the disk fell behind (%d bytes waiting); %d bytes dropped, the next segment starts at the next key frame",
				len(r.buf), r.st.BytesDropped)
		}
		r.mu.Unlock()
		r.poke() // the writer ends the overflow when it takes the queue, even an empty one
		return n, nil
	}
	r.buf = append(r.buf, p...)
	r.marks = append(r.marks, mark{end: len(r.buf), at: r.clock.Now(), gen: r.gen, gap: r.gapPending})
	r.gapPending = false
	r.mu.Unlock()
	r.poke()
	return n, nil
}

// Start starts a recording: the first segment opens at the next video
// random access point. Recording already: nothing happens. It fails, with
// the state error and the reason in Status, when the directory is not
// configured (ErrNotConfigured), missing (ErrDirMissing), not writable
// (ErrDirUnwritable) or full (ErrDiskFull). It may be called before Run.
func (r *Recorder) Start(reason string) error {
	r.op.Lock()
	defer r.op.Unlock()
	r.mu.Lock()
	recording := r.st.State == StateRecording
	r.mu.Unlock()
	if recording {
		return nil
	}
	if err := r.checkDir(); err != nil {
		r.mu.Lock()
		r.st.LastError = err.Error()
		r.setLocked(StateError, err.Error())
		r.mu.Unlock()
		r.log.Warn("recording not started", zap.String("dir", r.cfg.Dir), zap.Error(err))
		return err
	}
	r.mu.Lock()
	r.gen++
	r.want = true
	r.gapPending, r.overflow = false, false
	last := r.st.LastError
	r.st = Status{Dir: r.cfg.Dir, WaitingKeyframe: true, LastError: last}
	r.setLocked(StateRecording, reason)
	r.mu.Unlock()
	r.log.Info("recording started", zap.String("dir", r.cfg.Dir), zap.String("reason", reason),
		zap.Duration("segment", r.cfg.Segment))
	return nil
}

// checkDir says whether segments can be written in the directory.
func (r *Recorder) checkDir() error {
	dir := r.cfg.Dir
	if dir == "" {
		return ErrNotConfigured
	}
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("%w: recording.dir %s does not exist (is the disk mounted?)", ErrDirMissing, dir)
	case err != nil:
		return fmt.Errorf("%w: recording.dir %s: %w", ErrDirMissing, dir, err)
	case !fi.IsDir():
		return fmt.Errorf("%w: recording.dir %s is not a directory", ErrDirMissing, dir)
	}
	if err := unix.Access(dir, unix.W_OK|unix.X_OK); err != nil {
		return fmt.Errorf("%w: recording.dir %s: %w", ErrDirUnwritable, dir, err)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err == nil && fs.Bavail*uint64(fs.Bsize) < minFree {
		return fmt.Errorf("%w: recording.dir %s: %d bytes free", ErrDiskFull, dir, fs.Bavail*uint64(fs.Bsize))
	}
	return nil
}

// Stop ends the recording: what is queued is written, the segment synced
// and closed. It returns when that is done, or with an error when ctx is
// done first (the close then completes on its own). Stopped already:
// nothing happens (error becomes stopped).
func (r *Recorder) Stop(ctx context.Context, reason string) error {
	r.op.Lock()
	defer r.op.Unlock()
	r.mu.Lock()
	switch r.st.State {
	case StateStopped:
		r.mu.Unlock()
		return nil
	case StateError:
		r.setLocked(StateStopped, reason)
		r.mu.Unlock()
		return nil
	}
	r.want = false
	gen := r.gen
	r.setLocked(StateStopped, reason)
	if !r.running {
		// No writer: no segment is open, and what is queued would be
		// written by a later Run for a recording already stopped.
		r.buf, r.marks = r.buf[:0], r.marks[:0]
		r.settled = gen
		r.mu.Unlock()
		return nil
	}
	r.mu.Unlock()
	r.poke()
	r.log.Info("recording stopping", zap.String("reason", reason))
	for {
		r.mu.Lock()
		done, ch := r.settled >= gen || !r.running, r.changed
		r.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("record: stop: the segment is not closed yet: %w", ctx.Err())
		}
	}
}

// Status returns the recording's state.
func (r *Recorder) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.st
	st.BytesQueued = len(r.buf)
	st.WaitingKeyframe = st.WaitingKeyframe && st.State == StateRecording
	return st
}

// errRunning: Run runs once at a time.
var errRunning = errors.New("record: Run is already running")

// Run writes the queue to the disk until ctx is done (starting a recording
// first when Config.AutoStart). It then writes what is queued, closes the
// segment and returns ctx.Err(). A failed recording does not end Run: it is
// the state in Status.
func (r *Recorder) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.running {
		r.mu.Unlock()
		return errRunning
	}
	r.running = true
	r.changedLocked()
	r.mu.Unlock()
	if r.cfg.AutoStart {
		_ = r.Start("autostart") // a failure is the state error, said in Status and logged
	}
	w := &writer{r: r, dir: r.cfg.Dir, segment: r.cfg.Segment, log: r.log}
	w.reset(0)
	defer func() {
		w.closeSegment()
		r.mu.Lock()
		r.running = false
		r.settled = r.gen
		r.want = false
		if r.st.State == StateRecording {
			r.setLocked(StateStopped, "onaird stopping")
		}
		r.buf, r.marks = r.buf[:0], r.marks[:0]
		r.changedLocked()
		r.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			r.drain(w) // the tail of the programme
			return ctx.Err()
		case <-r.wake:
			r.drain(w)
		}
	}
}

// drain writes what is queued and closes a segment no longer wanted.
func (r *Recorder) drain(w *writer) {
	r.mu.Lock()
	buf, marks := r.buf, r.marks
	r.buf, r.marks = w.spareBuf[:0], w.spareMarks[:0]
	if r.overflow {
		r.overflow = false // the queue takes writes again
		r.changedLocked()
	}
	want, gen := r.want, r.gen
	r.mu.Unlock()

	start := 0
	for _, m := range marks {
		b := buf[start:m.end]
		start = m.end
		if m.gen == w.failed {
			continue // the rest of a recording that failed
		}
		if m.gen != w.gen {
			w.closeSegment() // a new recording: a new segment
			w.reset(m.gen)
		}
		if m.gap {
			w.gap()
		}
		if err := w.feed(b, m.at); err != nil {
			r.fail(m.gen, err)
			w.failed = m.gen
		}
	}
	w.spareBuf, w.spareMarks = buf, marks

	if !want || gen != w.gen {
		w.closeSegment()
	}
	r.mu.Lock()
	done := gen - 1
	if !want {
		done = gen
	}
	if done > r.settled {
		r.settled = done
		r.changedLocked()
	}
	r.mu.Unlock()
}

// fail stops recording gen after a write error (the writer has closed the
// segment already).
func (r *Recorder) fail(gen uint64, err error) {
	reason := describe(err)
	r.log.Warn("recording stopped", zap.String("reason", reason), zap.Error(err))
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st.LastError = reason
	if r.gen != gen {
		return // a newer recording runs; the old one's failure is only said
	}
	r.want = false
	r.buf, r.marks = r.buf[:0], r.marks[:0]
	if r.st.State == StateRecording {
		r.setLocked(StateStopped, reason)
	}
	r.changedLocked()
}

// describe says what a write error means for the crew.
func describe(err error) string {
	switch {
	case errors.Is(err, unix.ENOSPC):
		return "disk full: " + err.Error()
	case errors.Is(err, unix.EDQUOT):
		return "disk quota exceeded: " + err.Error()
	case errors.Is(err, unix.EROFS):
		return "disk read-only: " + err.Error()
	case errors.Is(err, unix.EIO):
		return "disk i/o error: " + err.Error()
	}
	return "write error: " + err.Error()
}

// update applies f to the status of recording gen, if it is the current
// one. The writer reports through it.
func (r *Recorder) update(gen uint64, f func(st *Status)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gen != gen {
		return
	}
	f(&r.st)
	r.changedLocked()
}
