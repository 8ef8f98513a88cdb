package record

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"onair/internal/atomicfile"
)

// maxSameSecond bounds the segments that may start in one second (a name
// suffix _01.._99 after the first).
const maxSameSecond = 100

// segmentName is the n-th name for a segment starting at t: the UTC start
// time, then _01, _02… for later ones in the same second (so the names
// sort in start order).
func segmentName(t time.Time, n int) string {
	base := "onair-" + t.UTC().Format("20060102T150405Z")
	if n == 0 {
		return base + ".ts"
	}
	return fmt.Sprintf("%s_%02d.ts", base, n)
}

// writer is Run's side: it cuts the stream into segments and writes them.
// Only Run's goroutine uses it.
type writer struct {
	r       *Recorder
	dir     string
	segment time.Duration
	log     *zap.Logger

	spareBuf   []byte // the queue's other buffer
	spareMarks []mark

	gen    uint64 // the recording being written
	failed uint64 // a recording that failed: the rest of its bytes is dropped

	// The stream as seen so far (kept across segments and gaps).
	pat, pmt []byte // the latest PAT and PMT packets
	pmtPID   int    // -1 until a PAT names it
	videoPID int    // -1 until a PMT names it

	f     File
	path  string
	start time.Time
	size  int64 // bytes in f
	clean int64 // size at the end of the last whole write
}

// reset starts recording gen: no segment until the next random access
// point. The tables seen stay valid.
func (w *writer) reset(gen uint64) {
	w.gen = gen
	if w.pat == nil {
		w.pmtPID, w.videoPID = -1, -1
	}
}

// gap: bytes were dropped before the next write. The segment ends here, so
// no file has a hole inside; the next starts at the next random access point.
func (w *writer) gap() {
	if w.f != nil {
		w.log.Warn("queue overflowed: bytes dropped, the segment ends at the gap", zap.String("file", w.path))
	}
	w.closeSegment()
	w.r.update(w.gen, func(st *Status) { st.WaitingKeyframe = true })
}

// feed writes one Write's packets, received at at: it learns the tables,
// cuts at a random access point once the segment is long enough (or opens
// the first), and skips what comes before the first. On an error the
// segment is cut back to its last whole write and closed.
func (w *writer) feed(b []byte, at time.Time) error {
	run := 0 // start of the packets not yet written to f
	for i := 0; i+packetSize <= len(b); i += packetSize {
		p := b[i : i+packetSize]
		if p[0] != syncByte {
			// Write takes whole packets only; a lost sync here is a bug.
			return fmt.Errorf("[unexpected] record: no sync byte at packet %d of a write", i/packetSize)
		}
		w.learn(p)
		if int(pid(p)) != w.videoPID || !randomAccess(p) {
			if w.f == nil {
				run = i + packetSize // nothing is written before the first random access point
			}
			continue
		}
		if w.f != nil && at.Sub(w.start) < w.segment {
			continue
		}
		if w.f != nil {
			if err := w.write(b[run:i]); err != nil {
				return w.abort(err)
			}
			w.closeSegment()
		}
		if err := w.open(at); err != nil {
			return err
		}
		if err := w.write(w.pat); err != nil {
			return w.abort(err)
		}
		if err := w.write(w.pmt); err != nil {
			return w.abort(err)
		}
		run = i
	}
	if w.f != nil && run < len(b) {
		if err := w.write(b[run:]); err != nil {
			return w.abort(err)
		}
	}
	w.clean = w.size
	return nil
}

// learn keeps the latest PAT and PMT and the PIDs they name.
func (w *writer) learn(p []byte) {
	if !pusi(p) {
		return
	}
	switch int(pid(p)) {
	case pidPAT:
		if pmt, ok := parsePAT(section(p)); ok {
			w.pat = append(w.pat[:0], p...)
			w.pmtPID = int(pmt)
		}
	case w.pmtPID:
		if v, ok := parsePMT(section(p)); ok {
			w.pmt = append(w.pmt[:0], p...)
			w.videoPID = int(v)
		}
	}
}

// open creates the segment starting at at, under the first free name.
func (w *writer) open(at time.Time) error {
	for n := range maxSameSecond {
		path := filepath.Join(w.dir, segmentName(at, n))
		f, err := w.r.create(path)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("create segment: %w", err)
		}
		w.f, w.path, w.start, w.size, w.clean = f, path, at, 0, 0
		w.log.Info("segment opened", zap.String("file", path))
		w.r.update(w.gen, func(st *Status) { st.File, st.FileBytes, st.WaitingKeyframe = path, 0, false })
		return nil
	}
	return fmt.Errorf("create segment: %d segments start at %s already", maxSameSecond, at.UTC().Format(time.RFC3339))
}

func (w *writer) write(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	n, err := w.f.Write(b)
	w.size += int64(n)
	w.r.update(w.gen, func(st *Status) { st.Bytes += uint64(n); st.FileBytes += uint64(n) })
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err // named once, here
		}
		return fmt.Errorf("write %s: %w", w.path, err)
	}
	return nil
}

// abort ends the segment after a failed write: cut back to the end of the
// last whole write (what a player reads ends with whole packets of a whole
// write, a whole PES from tsmux), synced and closed; a segment left empty
// is removed. It returns err.
func (w *writer) abort(err error) error {
	log := w.log.With(zap.String("file", w.path))
	if w.size != w.clean {
		if terr := w.f.Truncate(w.clean); terr != nil {
			log.Warn("segment truncate failed", zap.Int64("size", w.clean), zap.Error(terr))
		}
		cut := uint64(w.size - w.clean)
		w.r.update(w.gen, func(st *Status) { st.Bytes -= min(st.Bytes, cut); st.FileBytes -= min(st.FileBytes, cut) })
		w.size = w.clean
	}
	if w.size == 0 {
		path := w.path
		if cerr := w.f.Close(); cerr != nil {
			log.Warn("segment close failed", zap.Error(cerr))
		}
		if rerr := os.Remove(path); rerr != nil {
			log.Warn("empty segment not removed", zap.Error(rerr))
		}
		w.f = nil
		w.r.update(w.gen, func(st *Status) { st.File, st.FileBytes = "", 0 })
		return err
	}
	w.closeSegment()
	return err
}

// closeSegment syncs and closes the segment, if one is open, and syncs the
// directory so its name survives a power cut. Errors are logged: the bytes
// were written, and the next write says whether the disk still works.
func (w *writer) closeSegment() {
	if w.f == nil {
		return
	}
	log := w.log.With(zap.String("file", w.path))
	if err := w.f.Sync(); err != nil {
		log.Warn("segment sync failed", zap.Error(err))
	}
	if err := w.f.Close(); err != nil {
		log.Warn("segment close failed", zap.Error(err))
	}
	if err := atomicfile.SyncDir(w.dir); err != nil {
		log.Warn("directory sync failed", zap.Error(err))
	}
	log.Info("segment closed", zap.Int64("bytes", w.size))
	w.f = nil
	w.r.update(w.gen, func(st *Status) { st.File, st.FileBytes, st.Segments = "", 0, st.Segments+1 })
}
