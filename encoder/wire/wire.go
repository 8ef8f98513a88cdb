// Package wire is the framing between the onair-av children (capture, encoder,
// audio chain) and onaird. Each message is a fixed 48-byte little-endian header
// followed by a payload; they travel over one end of a unix stream socketpair
// that onaird hands the child as file descriptor 3.
//
// Children send Hello once, then Video or Audio packets (one access unit or one
// ADTS frame each) and Progress heartbeats. onaird sends Command messages,
// each addressed to a frame index so both twin encoders apply it at the same
// frame. The payload of Hello, Progress and Command is JSON; of Video and Audio
// the raw elementary-stream bytes.
//
// Not for: pictures (those go through encoder/ring) or anything crossing a network.
package wire

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"sync"
)

// Kind is the type of a message.
type Kind uint8

// Message kinds.
const (
	KindHello    Kind = 1 // child → onaird, JSON Hello
	KindVideo    Kind = 2 // child → onaird, one H.264 access unit (Annex B)
	KindAudio    Kind = 3 // child → onaird, AudioLevels then one AAC frame with its ADTS header (AppendAudio)
	KindProgress Kind = 4 // child → onaird, JSON Progress
	KindCommand  Kind = 5 // onaird → child, JSON Command
)

func (k Kind) String() string {
	switch k {
	case KindHello:
		return "hello"
	case KindVideo:
		return "video"
	case KindAudio:
		return "audio"
	case KindProgress:
		return "progress"
	case KindCommand:
		return "command"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Flags qualify a packet.
type Flags uint16

// Packet flags.
const (
	FlagKey    Flags = 1 << iota // the access unit is an IDR (random access point)
	FlagRepeat                   // encoded from a picture the cadence keeper repeated
	FlagSlate                    // encoded from the "signal lost" slate
)

// HeaderSize is the size of the fixed message header.
const HeaderSize = 48

// MaxPayload bounds one message; a larger length is a framing error.
const MaxPayload = 32 << 20

const (
	magic0, magic1 = 'O', 'A'
	version        = 1
)

// ErrFraming reports a corrupt stream: bad magic, version or length. The
// connection cannot be resynchronised and must be closed.
var ErrFraming = errors.New("wire: framing error")

// Header is the fixed part of every message.
type Header struct {
	Kind      Kind
	Flags     Flags
	Index     uint64 // frame index (video: picture index from the session epoch; audio: AAC frame index)
	PTS       int64  // 90 kHz, from the session epoch
	DTS       int64  // 90 kHz
	CaptureNs int64  // CLOCK_MONOTONIC ns when the source frame was captured
	Len       uint32 // payload length
}

// Hello is the first message of every child.
type Hello struct {
	Role       string `json:"role"` // "capture", "encode", "audio"
	Name       string `json:"name"` // "capture", "encoder-a", "audio-main"
	PID        int    `json:"pid"`
	Codec      string `json:"codec,omitempty"` // "h264", "aac"
	Width      int    `json:"width,omitempty"`
	Height     int    `json:"height,omitempty"`
	FPSNum     int    `json:"fps_num,omitempty"`
	FPSDen     int    `json:"fps_den,omitempty"`
	SampleRate int    `json:"sample_rate,omitempty"`
	Channels   int    `json:"channels,omitempty"`
	StartIndex uint64 `json:"start_index"` // first index this instance will produce
	Version    string `json:"version,omitempty"`
}

// Progress is a heartbeat: what the child has done so far.
type Progress struct {
	Index     uint64 `json:"index"`                // last frame index handled
	Frames    uint64 `json:"frames"`               // frames handled by this instance
	LagFrames int64  `json:"lag_frames"`           // how far behind the ring head (encoders)
	Source    string `json:"source,omitempty"`     // capture: SourceLive, SourceNoSignal, "eof"
	LastError string `json:"last_error,omitempty"` // non-fatal trouble worth showing
	// Audio chains: the device's sample rate measured against the box
	// clock, in ppm off nominal (+: the device runs fast), once measured,
	// and how far the chain's output is from the box clock now (ms, +:
	// ahead), after the resampler's compensation.
	RatePPM      float64 `json:"rate_ppm,omitempty"`
	RateMeasured bool    `json:"rate_measured,omitempty"`
	OffsetMs     float64 `json:"offset_ms,omitempty"`
	// Encoders: the real-time margin (package encoder/margin), the frame
	// interval over the mean wall time the encoder spent on each frame
	// since its last heartbeat (about 1 s), and MarginMin, the lowest such
	// figure of the last MarginWindows heartbeats. 0 (absent): not
	// measured: no frame in the window, or a worker older than the field.
	// onaird drops (and counts) a margin that fails CheckMargin.
	Margin    float64 `json:"margin,omitempty"`
	MarginMin float64 `json:"margin_min,omitempty"`
}

// MarginWindows is how many heartbeats (about a second each) MarginMin
// looks back.
const MarginWindows = 10

// MaxMargin caps Progress.Margin: a window of frames that took no
// measurable time is MaxMargin, never +Inf (which JSON cannot carry).
const MaxMargin = 1000

// ErrMargin reports a Progress whose margin fields are out of range.
var ErrMargin = errors.New("wire: malformed margin")

// CheckMargin reports whether p's margin is absent (both fields 0) or well
// formed: 0 < MarginMin ≤ Margin ≤ MaxMargin.
func (p Progress) CheckMargin() error {
	if p.Margin == 0 && p.MarginMin == 0 {
		return nil
	}
	// Written so that a NaN fails too.
	if !(p.MarginMin > 0 && p.MarginMin <= p.Margin && p.Margin <= MaxMargin) {
		return fmt.Errorf("%w: margin %g, margin_min %g: want 0 < margin_min <= margin <= %d", ErrMargin, p.Margin, p.MarginMin, MaxMargin)
	}
	return nil
}

// Values of Progress.Source sent by capture. Capture sends a Progress after
// every picture it publishes and, while it publishes none, a heartbeat at
// least every 100 ms: a silent source is "no_signal", not a stalled child.
const (
	SourceLive     = "live"      // the source delivers frames
	SourceNoSignal = "no_signal" // no frame for several frame intervals (cable pulled, camera rebooting)
)

// Op is a runtime command.
type Op string

// Commands. Each takes effect at Command.AtIndex (the first frame it applies to).
const (
	OpBitrate Op = "bitrate" // change the target bitrate to BitrateKbps
	OpIDR     Op = "idr"     // force an IDR
	OpReset   Op = "reset"   // close and reopen the codec (fresh rate-control state) with an IDR
	OpStop    Op = "stop"    // finish cleanly: flush and exit 0
)

// Command is addressed to a frame index.
type Command struct {
	Op          Op     `json:"op"`
	AtIndex     uint64 `json:"at_index"`
	BitrateKbps int    `json:"bitrate_kbps,omitempty"`
}

// Writer writes messages; safe for concurrent use.
type Writer struct {
	mu  sync.Mutex
	w   *bufio.Writer
	hdr [HeaderSize]byte
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: bufio.NewWriterSize(w, 64<<10)} }

// Write sends one message and flushes it.
func (w *Writer) Write(h Header, payload []byte) error {
	if len(payload) > MaxPayload {
		return fmt.Errorf("wire: payload %d bytes exceeds %d", len(payload), MaxPayload)
	}
	h.Len = uint32(len(payload))
	w.mu.Lock()
	defer w.mu.Unlock()
	putHeader(w.hdr[:], h)
	if _, err := w.w.Write(w.hdr[:]); err != nil {
		return fmt.Errorf("wire: write %s: %w", h.Kind, err)
	}
	if _, err := w.w.Write(payload); err != nil {
		return fmt.Errorf("wire: write %s: %w", h.Kind, err)
	}
	if err := w.w.Flush(); err != nil {
		return fmt.Errorf("wire: write %s: %w", h.Kind, err)
	}
	return nil
}

// WriteJSON sends a message whose payload is v encoded as JSON.
func (w *Writer) WriteJSON(h Header, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("wire: encode %s: %w", h.Kind, err)
	}
	return w.Write(h, b)
}

// Reader reads messages; not safe for concurrent use.
type Reader struct {
	r   *bufio.Reader
	hdr [HeaderSize]byte
}

// NewReader returns a Reader on r.
func NewReader(r io.Reader) *Reader { return &Reader{r: bufio.NewReaderSize(r, 256<<10)} }

// Read returns the next message. The payload is a fresh slice the caller owns.
// io.EOF means the peer closed cleanly between messages; ErrFraming means the
// stream is corrupt.
func (r *Reader) Read() (Header, []byte, error) {
	if _, err := io.ReadFull(r.r, r.hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return Header{}, nil, fmt.Errorf("wire: truncated header: %w", err)
		}
		return Header{}, nil, err
	}
	h, err := parseHeader(r.hdr[:])
	if err != nil {
		return Header{}, nil, err
	}
	p := make([]byte, h.Len)
	if _, err := io.ReadFull(r.r, p); err != nil {
		return Header{}, nil, fmt.Errorf("wire: truncated %s payload: %w", h.Kind, err)
	}
	return h, p, nil
}

func putHeader(b []byte, h Header) {
	le := binary.LittleEndian
	b[0], b[1], b[2], b[3] = magic0, magic1, version, byte(h.Kind)
	le.PutUint16(b[4:], uint16(h.Flags))
	le.PutUint16(b[6:], 0)
	le.PutUint64(b[8:], h.Index)
	le.PutUint64(b[16:], uint64(h.PTS))
	le.PutUint64(b[24:], uint64(h.DTS))
	le.PutUint64(b[32:], uint64(h.CaptureNs))
	le.PutUint32(b[40:], h.Len)
	le.PutUint32(b[44:], 0)
}

func parseHeader(b []byte) (Header, error) {
	le := binary.LittleEndian
	if b[0] != magic0 || b[1] != magic1 {
		return Header{}, fmt.Errorf("%w: bad magic %02x%02x", ErrFraming, b[0], b[1])
	}
	if b[2] != version {
		return Header{}, fmt.Errorf("%w: version %d, want %d", ErrFraming, b[2], version)
	}
	h := Header{
		Kind:      Kind(b[3]),
		Flags:     Flags(le.Uint16(b[4:])),
		Index:     le.Uint64(b[8:]),
		PTS:       int64(le.Uint64(b[16:])),
		DTS:       int64(le.Uint64(b[24:])),
		CaptureNs: int64(le.Uint64(b[32:])),
		Len:       le.Uint32(b[40:]),
	}
	if h.Kind < KindHello || h.Kind > KindCommand {
		return Header{}, fmt.Errorf("%w: unknown kind %d", ErrFraming, b[3])
	}
	if h.Len > MaxPayload {
		return Header{}, fmt.Errorf("%w: payload length %d exceeds %d", ErrFraming, h.Len, MaxPayload)
	}
	return h, nil
}

// VideoPTS is the 90 kHz timestamp of video frame index i at fpsNum/fpsDen:
// floor(i×90000×fpsDen/fpsNum), exact for any index (128-bit product; it
// saturates at MaxInt64 rather than wrap). 0 for a non-positive rate.
func VideoPTS(i uint64, fpsNum, fpsDen int) int64 {
	if fpsNum <= 0 || fpsDen <= 0 {
		return 0
	}
	return mulDiv90k(i, 90000*uint64(fpsDen), uint64(fpsNum))
}

// AudioFrameSamples is the number of samples in one AAC-LC frame.
const AudioFrameSamples = 1024

// AudioPTS is the 90 kHz timestamp of AAC frame index i at sampleRate:
// floor(i×1024×90000/sampleRate), exact for any index. 0 for a
// non-positive rate.
func AudioPTS(i uint64, sampleRate int) int64 {
	if sampleRate <= 0 {
		return 0
	}
	return mulDiv90k(i, AudioFrameSamples*90000, uint64(sampleRate))
}

// mulDiv90k is floor(a×b/c) from a 128-bit product, saturated at MaxInt64.
func mulDiv90k(a, b, c uint64) int64 {
	hi, lo := bits.Mul64(a, b)
	if hi >= c {
		return math.MaxInt64
	}
	q, _ := bits.Div64(hi, lo, c)
	if q > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(q)
}
