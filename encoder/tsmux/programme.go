package tsmux

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"

	"onair/encoder/wire"
)

// PTSOffset shifts every timestamp of the session so that PCR (which runs a
// little behind DTS) never goes below zero at the start.
const PTSOffset = 10 * 90000

// AudioRate is the sample rate of every audio chain (AAC-LC, 48 kHz).
const AudioRate = 48000

// SessionWriter is the output the programme writes to: bytes muxed for one
// output session (one SRT connection) must never start another
// (output.SRT implements it).
type SessionWriter interface {
	// Session is the number of the current output session; it changes on
	// every new connection.
	Session() int
	// WriteSession queues p for session n; bytes for an earlier session are
	// refused.
	WriteSession(n int, p []byte) (int, error)
}

// ProgrammeConfig configures the programme stage.
type ProgrammeConfig struct {
	FPSNum, FPSDen int // video frame rate: the index → PTS clock
	AudioRate      int // audio sample rate (0: AudioRate)
	Mux            Config
}

// ProgrammeStatus is the programme stage for the status API.
type ProgrammeStatus struct {
	VideoFrames  uint64  `json:"video_frames"`
	AudioFrames  uint64  `json:"audio_frames"`
	AudioLast    uint64  `json:"audio_last_index"`
	AudioGaps    uint64  `json:"audio_gap_frames"`
	AudioDups    uint64  `json:"audio_duplicates"`
	MuxErrors    uint64  `json:"mux_errors"`
	Sessions     uint64  `json:"sessions"` // output sessions started
	LatencyP50Ms float64 `json:"latency_p50_ms"`
	LatencyP99Ms float64 `json:"latency_p99_ms"`
}

// Programme is the programme stage between the switch and the output: it
// takes the one video stream the switch emits and the one audio stream the
// audio input delivers, computes every timestamp from the frame index (once,
// here), holds video back until a key frame at the start of each output
// session, drops repeated audio frames and counts the missing ones, stamps
// the capture → mux latency, and writes MPEG-TS for the current output
// session only. Safe for concurrent use (video and audio arrive from
// different goroutines).
//
// Not for: choosing the video copy (encoder.Switch) or the audio chain
// (the audio selector, later), or sending (output).
type Programme struct {
	cfg ProgrammeConfig
	out SessionWriter
	log *zap.Logger
	now func() int64 // monotonic ns, for the latency stamps

	mu        sync.Mutex
	mux       *Muxer
	session   int
	waitKey   bool
	haveAudio bool
	lastAudio uint64
	lat       [1024]time.Duration
	nlat      int
	st        ProgrammeStatus
}

// NewProgramme builds the programme stage writing to out. now is the
// monotonic clock the capture stamps use (ring.MonotonicNs).
func NewProgramme(cfg ProgrammeConfig, out SessionWriter, log *zap.Logger, now func() int64) (*Programme, error) {
	if cfg.FPSNum <= 0 || cfg.FPSDen <= 0 {
		return nil, fmt.Errorf("tsmux: programme: frame rate %d/%d", cfg.FPSNum, cfg.FPSDen)
	}
	if cfg.AudioRate == 0 {
		cfg.AudioRate = AudioRate
	}
	if out == nil || now == nil {
		return nil, fmt.Errorf("tsmux: programme: output and clock are required")
	}
	if log == nil {
		log = zap.NewNop()
	}
	p := &Programme{cfg: cfg, out: out, log: log, now: now, session: -1, waitKey: true}
	m, err := New(cfg.Mux, sessionWriter{p})
	if err != nil {
		return nil, err
	}
	p.mux = m
	return p, nil
}

// sessionWriter is what the muxer writes to: the programme's current session.
type sessionWriter struct{ p *Programme }

func (w sessionWriter) Write(b []byte) (int, error) { return w.p.out.WriteSession(w.p.session, b) }

// checkSession starts a new session when the output reconnected: its
// stream begins with tables and an IDR. Anything muxed for the previous one
// is refused by the output, even if the reconnect happens mid-write.
func (p *Programme) checkSession() {
	if s := p.out.Session(); s != p.session {
		p.session = s
		p.mux.Reset()
		p.waitKey = true
		p.st.Sessions++
	}
}

// WriteVideo muxes the access unit the switch chose for frame index i.
// Until the first key frame of a session, video is held back.
func (p *Programme) WriteVideo(i uint64, key bool, captureNs int64, au []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.checkSession()
	if p.waitKey && !key {
		return
	}
	p.waitKey = false
	pts := wire.VideoPTS(i, p.cfg.FPSNum, p.cfg.FPSDen) + PTSOffset
	if err := p.mux.WriteVideo(pts, key, au); err != nil {
		p.st.MuxErrors++
		p.log.Warn("mux video", zap.Uint64("index", i), zap.Error(err))
		return
	}
	p.st.VideoFrames++
	p.lat[p.nlat%len(p.lat)] = time.Duration(p.now() - captureNs)
	p.nlat++
}

// WriteAudio muxes AAC frame index i (with its ADTS header). A frame at or
// before the last one written is a duplicate and dropped; a jump forward is
// counted as missing frames.
func (p *Programme) WriteAudio(i uint64, frame []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.checkSession()
	if p.haveAudio && i <= p.lastAudio {
		p.st.AudioDups++
		return
	}
	if p.haveAudio && i > p.lastAudio+1 {
		p.st.AudioGaps += i - p.lastAudio - 1
	}
	p.haveAudio, p.lastAudio = true, i
	pts := wire.AudioPTS(i, p.cfg.AudioRate) + PTSOffset
	if err := p.mux.WriteAudio(pts, frame); err != nil {
		p.st.MuxErrors++
		p.log.Warn("mux audio", zap.Uint64("index", i), zap.Error(err))
		return
	}
	p.st.AudioFrames++
	p.st.AudioLast = i
}

// Status returns the counters and the capture → mux latency percentiles of
// the last 1024 video frames.
func (p *Programme) Status() ProgrammeStatus {
	p.mu.Lock()
	st := p.st
	n := min(p.nlat, len(p.lat))
	s := append([]time.Duration(nil), p.lat[:n]...)
	p.mu.Unlock()
	if n > 0 {
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		st.LatencyP50Ms = float64(s[n*50/100].Microseconds()) / 1000
		st.LatencyP99Ms = float64(s[min(n-1, n*99/100)].Microseconds()) / 1000
	}
	return st
}
