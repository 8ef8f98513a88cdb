package tsmux

import (
	"context"
	"fmt"
	"slices"
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
	VideoFrames uint64 `json:"video_frames"`
	AudioFrames uint64 `json:"audio_frames"`
	AudioLast   uint64 `json:"audio_last_index"`
	AudioGaps   uint64 `json:"audio_gap_frames"`
	AudioDups   uint64 `json:"audio_duplicates"`
	MuxErrors   uint64 `json:"mux_errors"`
	Sessions    uint64 `json:"sessions"` // output sessions started
	// Ended is true while the stream is ended (End) and not resumed.
	Ended        bool    `json:"ended"`
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
	lastVideo uint64 // the last video index muxed in this session
	haveVideo bool   // a video frame was muxed in this session
	end       *ending
	held      []heldAudio // audio ahead of video while an End waits for the key frame
}

// heldAudio is an audio frame held back during an End because it starts
// after the video muxed so far: whether it belongs to the stream depends on
// whether the next video frame ends the GOP.
type heldAudio struct {
	i     uint64
	pts   int64
	frame []byte
}

// maxHeld bounds the audio held during an End (about 5.5 s, longer than
// the on-air control lets an End wait for video: two GOPs of 2 s and 1 s):
// beyond it the oldest is muxed as if nothing were held.
const maxHeld = 256

// ending is an End under way (or done, until Resume).
//
//	cutting  video is still muxed, waiting for the next key frame
//	video    the key frame came (not muxed): audio is muxed up to its PTS
//	done     nothing is muxed until Resume; done is closed
type ending struct {
	videoDone bool
	endPTS    int64  // the PTS of the first frame not muxed
	endIndex  uint64 // the key frame that was not muxed
	info      EndInfo
	done      chan struct{}
	closed    bool
}

// EndInfo says where the programme ended.
type EndInfo struct {
	// LastIndex is the last video frame muxed; HaveVideo is false when no
	// video was muxed in the session (then LastIndex means nothing).
	LastIndex uint64
	HaveVideo bool
	// AtGOPEnd is true when the end fell on a GOP boundary (the next key
	// frame was seen and not muxed); false when it was cut where it stood
	// (End's ctx was done first, e.g. no video arrived).
	AtGOPEnd bool
	// AudioLast is the last audio frame muxed.
	AudioLast uint64
}

// audioWaitFrames is how much video (after the end) the programme lets pass
// while audio catches up to the end instant before it ends without it: half
// a second at 30 fps. Video is the clock here, so the end needs no timer.
const audioWaitFrames = 15

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
		p.haveVideo = false
		if n := len(p.held); n > 0 {
			// Held for the session that ended: dropped with it, and
			// counted as passed, so the next frame is not a gap.
			p.lastAudio, p.haveAudio = p.held[n-1].i, true
			p.held = p.held[:0]
		}
		p.st.Sessions++
	}
}

// End ends the stream at the end of the current GOP, so the receiver's TS
// decodes to its last frame: video is muxed up to the frame before the next
// key frame, audio up to the same instant (or until half a second of video
// later, if audio lags). From then on nothing is muxed until Resume. End
// blocks until that is done; when ctx is done first it cuts the stream where
// it stands (AtGOPEnd false). A second End while one is under way waits for
// the same end.
func (p *Programme) End(ctx context.Context) EndInfo {
	p.mu.Lock()
	if p.end == nil {
		p.end = &ending{done: make(chan struct{})}
	}
	e := p.end
	p.mu.Unlock()
	select {
	case <-e.done:
	case <-ctx.Done():
		p.mu.Lock()
		if p.end == e {
			p.finish()
		}
		p.mu.Unlock()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return e.info
}

// finishIfAudioDone ends at once when audio has already reached the end
// instant (or there is no audio). Called with mu held.
func (p *Programme) finishIfAudioDone() {
	e := p.end
	if !p.haveAudio || wire.AudioPTS(p.lastAudio+1, p.cfg.AudioRate)+PTSOffset >= e.endPTS {
		p.finish()
	}
}

// finish completes the end under way. Called with mu held.
func (p *Programme) finish() {
	e := p.end
	if e.closed {
		return
	}
	e.closed = true
	p.held = p.held[:0] // beyond the end: never muxed
	e.info.LastIndex, e.info.HaveVideo, e.info.AudioLast = p.lastVideo, p.haveVideo, p.lastAudio
	p.st.Ended = true
	close(e.done)
	p.log.Info("programme ended", zap.Uint64("last_index", p.lastVideo), zap.Bool("at_gop_end", e.info.AtGOPEnd),
		zap.Uint64("audio_last", p.lastAudio))
}

// Resume undoes End: the next output session starts afresh (tables, then a
// key frame) and audio counts start over, so the time off air is not
// counted as missing audio.
func (p *Programme) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.end == nil {
		return
	}
	if !p.end.closed {
		p.finish()
	}
	p.end = nil
	p.st.Ended = false
	p.haveAudio = false
	p.haveVideo = false
	p.waitKey = true
	p.mux.Reset()
}

// WriteVideo muxes the access unit the switch chose for frame index i.
// Until the first key frame of a session, video is held back.
func (p *Programme) WriteVideo(i uint64, key bool, captureNs int64, au []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.checkSession()
	pts := wire.VideoPTS(i, p.cfg.FPSNum, p.cfg.FPSDen) + PTSOffset
	if e := p.end; e != nil {
		switch {
		case e.closed:
			return
		case !e.videoDone && key && p.haveVideo:
			// The GOP is complete: this key frame starts the next one.
			e.videoDone, e.endPTS, e.endIndex = true, pts, i
			e.info.AtGOPEnd = true
			p.endAudio()
			return
		case !e.videoDone && !p.haveVideo && key:
			// Nothing muxed yet in this session: end before it starts.
			e.videoDone, e.endPTS, e.endIndex = true, pts, i
			p.endAudio()
			return
		case e.videoDone:
			if i >= e.endIndex+audioWaitFrames {
				p.finish() // audio did not reach the end instant in time
			}
			return
		}
	}
	if p.waitKey && !key {
		return
	}
	p.waitKey = false
	if err := p.mux.WriteVideo(pts, key, au); err != nil {
		p.st.MuxErrors++
		p.log.Warn("mux video", zap.Uint64("index", i), zap.Error(err))
		return
	}
	p.st.VideoFrames++
	p.lastVideo, p.haveVideo = i, true
	p.lat[p.nlat%len(p.lat)] = time.Duration(p.now() - captureNs)
	p.nlat++
	if len(p.held) > 0 {
		p.release(p.videoEndPTS()) // the GOP goes on: so does its audio
	}
}

// videoEndPTS is the instant the video muxed in this session ends at.
// Called with mu held.
func (p *Programme) videoEndPTS() int64 {
	return wire.VideoPTS(p.lastVideo+1, p.cfg.FPSNum, p.cfg.FPSDen) + PTSOffset
}

// endAudio completes the audio of an End once the key frame that ends the
// GOP came: held audio before the end instant is muxed; audio beyond it (or
// already up to it) ends the stream now. Called with mu held.
func (p *Programme) endAudio() {
	p.release(p.end.endPTS)
	if len(p.held) > 0 {
		p.finish() // audio already reached the end instant
		return
	}
	p.finishIfAudioDone()
}

// release muxes the held audio that starts before limit. Called with mu held.
func (p *Programme) release(limit int64) {
	n := 0
	for _, h := range p.held {
		if h.pts >= limit {
			break
		}
		p.muxAudio(h.i, h.pts, h.frame)
		n++
	}
	p.held = append(p.held[:0], p.held[n:]...)
}

// WriteAudio muxes AAC frame index i (with its ADTS header). A frame at or
// before the last one written is a duplicate and dropped; a jump forward is
// counted as missing frames.
func (p *Programme) WriteAudio(i uint64, frame []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.checkSession()
	pts := wire.AudioPTS(i, p.cfg.AudioRate) + PTSOffset
	if e := p.end; e != nil {
		if e.closed {
			return
		}
		if e.videoDone && pts >= e.endPTS {
			p.finish() // audio has reached the instant video ended at
			return
		}
		if !e.videoDone && p.haveVideo && pts >= p.videoEndPTS() {
			// Audio ahead of video: the next video frame may end the GOP
			// before this instant, so wait for it.
			if len(p.held) == maxHeld {
				h := p.held[0]
				p.held = p.held[1:]
				p.muxAudio(h.i, h.pts, h.frame)
			}
			p.held = append(p.held, heldAudio{i: i, pts: pts, frame: append([]byte(nil), frame...)})
			return
		}
	}
	p.muxAudio(i, pts, frame)
}

// muxAudio muxes audio frame i at pts, counting duplicates and gaps. Called
// with mu held.
func (p *Programme) muxAudio(i uint64, pts int64, frame []byte) {
	if p.haveAudio && i <= p.lastAudio {
		p.st.AudioDups++
		return
	}
	if p.haveAudio && i > p.lastAudio+1 {
		p.st.AudioGaps += i - p.lastAudio - 1
	}
	p.haveAudio, p.lastAudio = true, i
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
	// The copy is on the stack and sorted without reflection: the events
	// watcher takes a status 10 times a second, and sort.Slice over a
	// fresh 8 KiB copy was most of a snapshot's cost (issue 14's profile).
	var buf [len(p.lat)]time.Duration
	p.mu.Lock()
	st := p.st
	n := min(p.nlat, len(p.lat))
	s := buf[:n]
	copy(s, p.lat[:n])
	p.mu.Unlock()
	if n > 0 {
		slices.Sort(s)
		st.LatencyP50Ms = float64(s[n*50/100].Microseconds()) / 1000
		st.LatencyP99Ms = float64(s[min(n-1, n*99/100)].Microseconds()) / 1000
	}
	return st
}
