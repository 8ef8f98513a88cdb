// Package ring is the shared-memory frame ring between the capture process, the
// cadence keeper in onaird and the twin encoders.
//
// One writer per frame index: every slot is claimed for an index with a
// compare-and-swap on its state word, so exactly one party (capture, when the
// frame is on time; onaird's cadence keeper, when it is late or capture is gone)
// decides the picture of each index. Both encoders read the same bytes for the
// same index, which is what keeps the twins bit-identical. Readers validate each
// copy with the slot's state word (a seqlock), so a reader that was lapped gets
// ErrOverwritten, never a torn frame.
//
// The ring is a plain file (normally under /dev/shm) mapped MAP_SHARED by every
// process. Writers wake readers with a futex on a 32-bit publish counter; the
// futex is process-shared because the mapping is. Written by hand: no library
// offers a cross-process, index-claimed frame ring.
//
// Not for: encoded packets (those go over encoder/wire), audio, or anything that
// needs more than one picture format per ring.
package ring

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Geometry describes the pictures a ring carries. Only planar YUV 4:2:0 (8 bit)
// is supported: it is what libx264 takes without conversion.
type Geometry struct {
	Width, Height  int
	FPSNum, FPSDen int
}

// FrameSize is the size in bytes of one YUV 4:2:0 picture of g, planes packed
// without padding: Y (w*h), then U and V ((w/2)*(h/2) each).
func (g Geometry) FrameSize() int {
	cw, ch := (g.Width+1)/2, (g.Height+1)/2
	return g.Width*g.Height + 2*cw*ch
}

// FrameDuration is the duration of one frame index.
func (g Geometry) FrameDuration() time.Duration {
	return time.Duration(int64(time.Second) * int64(g.FPSDen) / int64(g.FPSNum))
}

// Flags describe where a slot's picture came from.
type Flags uint32

const (
	// FlagRepeat marks a picture the cadence keeper repeated because capture was late or gone.
	FlagRepeat Flags = 1 << iota
	// FlagSlate marks the "signal lost" slate the keeper wrote after video.slate_after.
	FlagSlate
	// FlagBlack marks a black picture written when no picture was ever captured.
	FlagBlack
)

// Meta is what a slot says about its picture besides the pixels.
type Meta struct {
	Index     uint64
	CaptureNs int64 // CLOCK_MONOTONIC nanoseconds when the picture was captured or substituted
	Flags     Flags
}

// Errors returned by Read and Claim.
var (
	ErrNotYet      = errors.New("ring: frame not published yet")
	ErrOverwritten = errors.New("ring: frame overwritten (reader too slow)")
	ErrClaimed     = errors.New("ring: index already claimed by another writer")
	ErrBadRing     = errors.New("ring: not an onair frame ring")
)

const (
	magic       = "ONAIRRNG"
	version     = 1
	headerSize  = 4096
	slotHdrSize = 64

	// header field offsets
	offMagic   = 0
	offVersion = 8
	offSlots   = 12
	offWidth   = 16
	offHeight  = 20
	offFPSNum  = 24
	offFPSDen  = 28
	offFrameSz = 32
	offStride  = 40  // uint64
	offEpoch   = 48  // int64
	offHead    = 64  // uint64, own cache line: highest published index + 1
	offFutex   = 128 // uint32 publish counter, own cache line

	// slot header field offsets
	slotState   = 0  // uint64: index<<2 | state
	slotCapture = 8  // int64
	slotFlags   = 16 // uint32

	stEmpty     = 0
	stWriting   = 1 // claimed: the claimer is filling the picture
	stPublished = 2
	stLocked    = 3 // a publisher (the claimer, or Reclaim) is finishing the slot
)

// Ring is a mapped frame ring. Methods are safe for concurrent use by several
// goroutines and processes, with the one-writer-per-index rule enforced by Claim.
type Ring struct {
	path   string
	mem    []byte
	geo    Geometry
	slots  uint64
	stride uint64
	fsize  int
	epoch  int64
}

// Create makes a new ring file at path (replacing any old one) with room for
// slots pictures of geometry g. epochNs is the CLOCK_MONOTONIC time of frame
// index 0: every process derives frame indexes and PTS from it.
func Create(path string, g Geometry, slots int, epochNs int64) (*Ring, error) {
	if g.Width <= 0 || g.Height <= 0 || g.Width%2 != 0 || g.Height%2 != 0 {
		return nil, fmt.Errorf("ring: bad picture size %dx%d (must be even and positive)", g.Width, g.Height)
	}
	if g.FPSNum <= 0 || g.FPSDen <= 0 {
		return nil, fmt.Errorf("ring: bad frame rate %d/%d", g.FPSNum, g.FPSDen)
	}
	if slots < 2 {
		return nil, fmt.Errorf("ring: need at least 2 slots, got %d", slots)
	}
	fsize := g.FrameSize()
	stride := uint64(slotHdrSize + (fsize+63)/64*64)
	total := int64(headerSize) + int64(stride)*int64(slots)

	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ring: create %s: %w", path, err)
	}
	// The ring is written through the mapping, not f: closing the
	// descriptor once mapped loses nothing, and a failure there has no
	// consequence for the ring.
	defer func() { _ = f.Close() }()
	if err = allocate(f, path, total); err != nil {
		_ = os.Remove(tmp) // best effort: the allocate error is the one to report
		return nil, err
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(total), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		_ = os.Remove(tmp) // best effort: the map error is the one to report
		return nil, fmt.Errorf("ring: map %s: %w", path, err)
	}
	le := binary.LittleEndian
	le.PutUint32(mem[offVersion:], version)
	le.PutUint32(mem[offSlots:], uint32(slots))
	le.PutUint32(mem[offWidth:], uint32(g.Width))
	le.PutUint32(mem[offHeight:], uint32(g.Height))
	le.PutUint32(mem[offFPSNum:], uint32(g.FPSNum))
	le.PutUint32(mem[offFPSDen:], uint32(g.FPSDen))
	le.PutUint32(mem[offFrameSz:], uint32(fsize))
	le.PutUint64(mem[offStride:], stride)
	le.PutUint64(mem[offEpoch:], uint64(epochNs))
	copy(mem[offMagic:], magic) // last: a reader never sees a half-written header as valid
	if err := os.Rename(tmp, path); err != nil {
		_ = unix.Munmap(mem) // best effort: the rename error is the one to report
		_ = os.Remove(tmp)
		return nil, fmt.Errorf("ring: publish %s: %w", path, err)
	}
	return &Ring{path: path, mem: mem, geo: g, slots: uint64(slots), stride: stride, fsize: fsize, epoch: epochNs}, nil
}

// ErrNoSpace is returned (wrapped) by Create when the ring's file system
// (normally /dev/shm) cannot hold the ring.
var ErrNoSpace = errors.New("ring: no space for the ring")

// allocate gives f its total bytes of real pages now. A ring that is only
// truncated to size is sparse: on a full /dev/shm the first write to a page
// that cannot be allocated kills the writer with SIGBUS, hours into a show.
// posix_fallocate makes that a clear error at start instead.
func allocate(f *os.File, path string, total int64) error {
	err := unix.Fallocate(int(f.Fd()), 0, 0, total)
	if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOSYS) {
		// A file system without fallocate (not tmpfs): size it the old way.
		err = f.Truncate(total)
	}
	if err == nil {
		return nil
	}
	dir := filepath.Dir(path)
	if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) {
		free := "unknown"
		var st unix.Statfs_t
		if unix.Statfs(dir, &st) == nil {
			free = fmt.Sprintf("%.1f MiB", float64(st.Bavail)*float64(st.Bsize)/(1<<20))
		}
		return fmt.Errorf("ring: %s full: need %.1f MiB, %s free (fewer video.ring_slots or a larger %s): %w: %w",
			dir, float64(total)/(1<<20), free, dir, ErrNoSpace, err)
	}
	return fmt.Errorf("ring: allocate %s (%d bytes): %w", path, total, err)
}

// Open maps an existing ring made by Create.
func Open(path string) (*Ring, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("ring: open %s: %w", path, err)
	}
	// Only mapped, never written through the descriptor: nothing to lose
	// on close.
	defer func() { _ = f.Close() }()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("ring: stat %s: %w", path, err)
	}
	if st.Size() < headerSize {
		return nil, fmt.Errorf("ring: %s: %w (file too small)", path, ErrBadRing)
	}
	mem, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("ring: map %s: %w", path, err)
	}
	le := binary.LittleEndian
	if string(mem[offMagic:offMagic+8]) != magic || le.Uint32(mem[offVersion:]) != version {
		_ = unix.Munmap(mem) // best effort: the bad header is the error to report
		return nil, fmt.Errorf("ring: %s: %w", path, ErrBadRing)
	}
	r := &Ring{
		path: path, mem: mem,
		geo: Geometry{
			Width: int(le.Uint32(mem[offWidth:])), Height: int(le.Uint32(mem[offHeight:])),
			FPSNum: int(le.Uint32(mem[offFPSNum:])), FPSDen: int(le.Uint32(mem[offFPSDen:])),
		},
		slots:  uint64(le.Uint32(mem[offSlots:])),
		stride: le.Uint64(mem[offStride:]),
		fsize:  int(le.Uint32(mem[offFrameSz:])),
		epoch:  int64(le.Uint64(mem[offEpoch:])),
	}
	if r.slots < 2 || int64(headerSize)+int64(r.stride)*int64(r.slots) > st.Size() || r.fsize != r.geo.FrameSize() {
		_ = unix.Munmap(mem) // best effort: the bad header is the error to report
		return nil, fmt.Errorf("ring: %s: %w (inconsistent header)", path, ErrBadRing)
	}
	return r, nil
}

// Close unmaps the ring. The file stays; its creator removes it.
func (r *Ring) Close() error {
	if r.mem == nil {
		return nil
	}
	err := unix.Munmap(r.mem)
	r.mem = nil
	return err
}

// Path is the file the ring lives in.
func (r *Ring) Path() string { return r.path }

// Geometry is the picture format of the ring.
func (r *Ring) Geometry() Geometry { return r.geo }

// EpochNs is the CLOCK_MONOTONIC time of frame index 0.
func (r *Ring) EpochNs() int64 { return r.epoch }

// Slots is the number of pictures the ring holds.
func (r *Ring) Slots() int { return int(r.slots) }

// FrameSize is the size of one picture in bytes.
func (r *Ring) FrameSize() int { return r.fsize }

// Head is the highest published index plus one (0 when nothing was published).
func (r *Ring) Head() uint64 { return atomic.LoadUint64(r.u64(offHead)) }

// Cadence is the ring's frame timeline: index 0 at EpochNs, FPSNum/FPSDen
// indexes per second.
func (r *Ring) Cadence() Cadence {
	return Cadence{EpochNs: r.epoch, Num: uint64(r.geo.FPSNum), Den: uint64(r.geo.FPSDen)}
}

// IndexAt is the frame index whose time slot contains CLOCK_MONOTONIC time ns
// (exact for any uptime, see Cadence).
func (r *Ring) IndexAt(ns int64) uint64 { return r.Cadence().IndexAt(ns) }

// TimeOf is the CLOCK_MONOTONIC time at which frame index i is due: the first
// nanosecond of its time slot (rounded up, so IndexAt(TimeOf(i)) == i).
func (r *Ring) TimeOf(i uint64) int64 { return r.Cadence().TimeOf(i) }

func (r *Ring) u64(off uint64) *uint64 { return (*uint64)(unsafe.Pointer(&r.mem[off])) }
func (r *Ring) u32(off uint64) *uint32 { return (*uint32)(unsafe.Pointer(&r.mem[off])) }

func (r *Ring) slotOff(i uint64) uint64 { return headerSize + (i%r.slots)*r.stride }

// Claim reserves slot i for writing and returns its picture buffer. Exactly one
// caller can claim a given index; the others get ErrClaimed. The caller must
// fill the buffer and call Publish(i, …) promptly: a claim left unpublished
// past the keeper's grace is taken over with Reclaim. Claiming an index that the
// ring has already moved past (older than Head()-Slots()) also fails.
func (r *Ring) Claim(i uint64) ([]byte, error) {
	off := r.slotOff(i)
	st := r.u64(off + slotState)
	for {
		old := atomic.LoadUint64(st)
		oldIdx, oldState := old>>2, old&3
		if oldState != stEmpty && oldIdx >= i {
			return nil, ErrClaimed
		}
		if atomic.CompareAndSwapUint64(st, old, i<<2|stWriting) {
			data := off + slotHdrSize
			return r.mem[data : data+uint64(r.fsize) : data+uint64(r.fsize)], nil
		}
	}
}

// Publish makes the picture written into the buffer returned by Claim(i)
// visible to readers and wakes them. It reports false, and changes nothing,
// when the claim is no longer the caller's: Reclaim took the slot over
// because the claimer stalled past the keeper's grace, or the ring moved on.
func (r *Ring) Publish(i uint64, captureNs int64, flags Flags) bool {
	off := r.slotOff(i)
	// Lock the slot first, so a publisher that lost the slot to Reclaim never
	// writes the metadata of the picture that replaced its own.
	if !atomic.CompareAndSwapUint64(r.u64(off+slotState), i<<2|stWriting, i<<2|stLocked) {
		return false
	}
	r.finish(i, off, captureNs, flags)
	return true
}

// Reclaim takes over index i when it was claimed but is still unpublished
// (a capture killed between Claim and Publish would otherwise leave a hole
// that every reader waits on): fill writes the substitute picture into buf
// and returns its metadata, and the slot is published as if by its claimer.
// It reports false, without calling fill, when i is not in that state (not
// claimed, already published or being published, or overwritten). The
// claimer's own Publish then fails. The caller decides when a claim is
// abandoned; the cadence keeper allows one frame past its deadline. A claimer
// that was only stopped still holds the buffer and could write pixels into it
// when it resumes: whoever supervises it should restart it.
func (r *Ring) Reclaim(i uint64, fill func(buf []byte) (captureNs int64, flags Flags)) bool {
	off := r.slotOff(i)
	if !atomic.CompareAndSwapUint64(r.u64(off+slotState), i<<2|stWriting, i<<2|stLocked) {
		return false
	}
	data := off + slotHdrSize
	ns, flags := fill(r.mem[data : data+uint64(r.fsize) : data+uint64(r.fsize)])
	r.finish(i, off, ns, flags)
	return true
}

// finish publishes locked slot i: metadata, state, head, wake-up.
func (r *Ring) finish(i, off uint64, captureNs int64, flags Flags) {
	atomic.StoreInt64((*int64)(unsafe.Pointer(&r.mem[off+slotCapture])), captureNs)
	atomic.StoreUint32(r.u32(off+slotFlags), uint32(flags))
	atomic.StoreUint64(r.u64(off+slotState), i<<2|stPublished)
	head := r.u64(offHead)
	for {
		h := atomic.LoadUint64(head)
		if h >= i+1 || atomic.CompareAndSwapUint64(head, h, i+1) {
			break
		}
	}
	atomic.AddUint32(r.u32(offFutex), 1)
	futexWake(r.u32(offFutex))
}

// State reports whether index i has been published, is being written, or is
// still free in the ring (nothing has claimed it yet).
func (r *Ring) State(i uint64) (published, claimed bool) {
	v := atomic.LoadUint64(r.u64(r.slotOff(i) + slotState))
	if v>>2 != i {
		return false, v>>2 > i && v&3 != stEmpty
	}
	return v&3 == stPublished, v&3 != stEmpty
}

// Meta returns the metadata of published index i without copying its picture.
func (r *Ring) Meta(i uint64) (Meta, error) { return r.read(i, nil) }

// Read copies the picture of index i into dst (len(dst) >= FrameSize()) and
// returns its metadata. ErrNotYet: i is not published yet. ErrOverwritten: the
// slot already holds a later index, the reader was lapped.
func (r *Ring) Read(i uint64, dst []byte) (Meta, error) {
	if len(dst) < r.fsize {
		return Meta{}, fmt.Errorf("ring: read buffer %d bytes, need %d", len(dst), r.fsize)
	}
	return r.read(i, dst)
}

// View returns the metadata of published index i and its picture where it
// lies in the ring, without copying it: for a reader whose consumer copies
// the picture anyway (libx264 copies every input picture into its own
// frame), so that the ring's bytes are read once instead of three times.
// A writer may overwrite the slot at any moment once the ring laps the
// reader: whatever was read from the returned bytes is only good if Intact(i)
// still holds after the last read of them. Errors are those of Read.
func (r *Ring) View(i uint64) (Meta, []byte, error) {
	m, err := r.read(i, nil)
	if err != nil {
		return Meta{}, nil, err
	}
	data := r.slotOff(i) + slotHdrSize
	return m, r.mem[data : data+uint64(r.fsize) : data+uint64(r.fsize)], nil
}

// Intact reports whether index i is still published in its slot: no writer
// has claimed the slot for a later index since. An index is never claimed
// twice (Claim refuses an index at or below the slot's), so a View of i
// followed by Intact(i) == true saw exactly the published picture.
func (r *Ring) Intact(i uint64) bool {
	return atomic.LoadUint64(r.u64(r.slotOff(i)+slotState)) == i<<2|stPublished
}

// read is the seqlock reader: it takes the slot's metadata (and the picture
// into dst, unless nil) and checks the state word did not change meanwhile.
func (r *Ring) read(i uint64, dst []byte) (Meta, error) {
	off := r.slotOff(i)
	st := r.u64(off + slotState)
	v1 := atomic.LoadUint64(st)
	if v1>>2 > i {
		return Meta{}, ErrOverwritten
	}
	if v1>>2 < i || v1&3 != stPublished {
		return Meta{}, ErrNotYet
	}
	m := Meta{
		Index:     i,
		CaptureNs: atomic.LoadInt64((*int64)(unsafe.Pointer(&r.mem[off+slotCapture]))),
		Flags:     Flags(atomic.LoadUint32(r.u32(off + slotFlags))),
	}
	if dst != nil {
		data := off + slotHdrSize
		copy(dst, r.mem[data:data+uint64(r.fsize)])
	}
	if atomic.LoadUint64(st) != v1 {
		return Meta{}, ErrOverwritten
	}
	return m, nil
}

// Wait blocks until index i is published (nil), the ring has moved past it
// (ErrOverwritten), ctx is done, or timeout passes (ErrNotYet). It sleeps on
// the ring's futex, so a publish by any process wakes it at once.
func (r *Ring) Wait(ctx context.Context, i uint64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		seq := atomic.LoadUint32(r.u32(offFutex))
		pub, _ := r.State(i)
		if pub {
			return nil
		}
		v := atomic.LoadUint64(r.u64(r.slotOff(i) + slotState))
		if v>>2 > i {
			return ErrOverwritten
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return ErrNotYet
		}
		// Wake at least every 50 ms to notice ctx cancellation.
		futexWait(r.u32(offFutex), seq, min(left, 50*time.Millisecond))
	}
}

func futexWake(addr *uint32) {
	const futexWakeOp = 1 // FUTEX_WAKE, not private: the ring is shared between processes
	// A wake has no failure a caller could act on (a waiter re-checks at
	// least every 50 ms anyway).
	_, _, _ = unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWakeOp, uintptr(^uint32(0)>>1), 0, 0, 0)
}

func futexWait(addr *uint32, val uint32, d time.Duration) {
	const futexWaitOp = 0 // FUTEX_WAIT, shared
	ts := unix.NsecToTimespec(int64(d))
	_, _, errno := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(addr)), futexWaitOp, uintptr(val), uintptr(unsafe.Pointer(&ts)), 0, 0)
	_ = errno // EAGAIN (value changed), ETIMEDOUT and EINTR all mean "look again"
}

// SleepUntil waits until CLOCK_MONOTONIC time ns or until ctx is done (then
// it returns ctx's error).
func SleepUntil(ctx context.Context, ns int64) error {
	d := time.Duration(ns - MonotonicNs())
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// MonotonicNs is CLOCK_MONOTONIC in nanoseconds: the clock every process of the
// box uses for frame timing (it is the same for all processes on one boot).
func MonotonicNs() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(fmt.Sprintf("[unexpected] clock_gettime: %v", err))
	}
	return ts.Nano()
}
