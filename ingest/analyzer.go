// Package ingest is onair's studio-side receiver and the measuring instrument
// of every end-to-end test and benchmark of the project.
//
// It has two parts:
//   - Analyzer, an io.Writer that parses an MPEG-TS byte stream as it flows
//     (constant memory apart from one bit per frame index) and produces an exact
//     Report: video and audio frame indexes, gaps, duplicates, reorders,
//     timestamp monotonicity, key frames, optional per-frame bitstream hashes,
//     and transport-layer faults (sync loss, continuity, TEI, PCR spacing).
//     This is how DESIGN.md's "no gap" is measured.
//   - Server, an SRT listener (gosrt) that accepts one publisher at a time,
//     appends every received byte to a file, tees it into an Analyzer and
//     records every SRT connection (socket id, remote, bytes). With
//     Config.SRTLA it also runs the SRTLA receiver (package ingest/relay) in
//     front of that listener, so a bonded sender's groups are terminated
//     here, or relayed to another SRT listener with Config.Forward.
//
// It is not a decoder (it never decodes pictures or audio: "decodable" is left
// to ffprobe/ffmpeg on the recorded file), not a demuxer for consumers (it
// reassembles PES only to count and hash them), and not an SRTLA bonding
// receiver (that sits in front of it).
package ingest

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/cespare/xxhash/v2"
)

const (
	packetSize = 188
	syncByte   = 0x47
	nullPID    = 0x1fff
	// maxPSISection bounds PSI section reassembly (PAT/PMT are at most 1024 bytes).
	maxPSISection = 1024 + 3
	// maxPESHeader bounds PES header reassembly (9 + 255 bytes).
	maxPESHeader = 9 + 255
)

// Options configures an Analyzer.
type Options struct {
	// FPS is the expected video frame rate. 0 infers the frame duration as the
	// most common PTS step of the first 32 frames.
	FPS float64
	// FrameHashes records an xxhash64 of every video access unit (Report.Video.FrameHashes).
	FrameHashes bool
	// Now, when set, stamps wall-clock arrival times (first_byte_at,
	// first_video_at): set it for live feeds, leave it nil for files.
	Now func() time.Time
}

// Analyzer measures an MPEG-TS stream written to it. It is an io.Writer and
// never fails a write: faults are counted, not returned. Write, Flush and
// Report may be called from different goroutines.
type Analyzer struct {
	mu   sync.Mutex
	opts Options

	buf    []byte // bytes not yet framed (less than 2 packets between writes)
	locked bool   // in sync: the last packet was accepted at a sync byte
	weak   bool   // the last packet was accepted without a sync byte after it

	tr   TransportReport
	pids map[uint16]*pidState

	pmtPIDs map[uint16]bool
	havePMT bool
	pcrPID  int // -1 until a PMT names it
	lastPCR int64
	havePCR bool
	patSec  section
	pmtSecs map[uint16]*section
	video   *esState
	audio   *esState
	firstAt *time.Time
	videoAt *time.Time
}

type pidState struct {
	lastCC  int8 // -1: none yet
	packets int64
	ccErrs  int64
	teis    int64
}

// NewAnalyzer returns an Analyzer configured by opts.
func NewAnalyzer(opts Options) *Analyzer {
	a := &Analyzer{
		opts:    opts,
		pids:    map[uint16]*pidState{},
		pmtPIDs: map[uint16]bool{},
		pmtSecs: map[uint16]*section{},
		pcrPID:  -1,
	}
	vdur := 0.0
	if opts.FPS > 0 {
		vdur = float64(int64(90000/opts.FPS + 0.5))
	}
	a.video = newESState(true, newTracker(vdur, 3000, opts.FrameHashes), opts.FrameHashes)
	a.audio = newESState(false, newTracker(0, 1920, false), false)
	return a
}

// AnalyzeFile analyzes the MPEG-TS file at path.
func AnalyzeFile(path string, opts Options) (Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return Report{}, fmt.Errorf("ingest: analyze: %w", err)
	}
	defer func() { _ = f.Close() }() // read only: nothing to lose
	a := NewAnalyzer(opts)
	if _, err := io.Copy(a, f); err != nil {
		return Report{}, fmt.Errorf("ingest: analyze %s: %w", path, err)
	}
	a.Flush()
	return a.Report(), nil
}

// Write feeds stream bytes. It always returns len(p), nil.
func (a *Analyzer) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	if a.firstAt == nil && a.opts.Now != nil {
		t := a.opts.Now()
		a.firstAt = &t
	}
	a.tr.Bytes += int64(len(p))
	a.buf = append(a.buf, p...)
	n := a.frame(a.buf, false)
	a.buf = a.buf[:copy(a.buf, a.buf[n:])]
	return len(p), nil
}

// Flush ends the stream: it frames the last buffered bytes and completes the
// access units still being assembled, so they are counted. Call it once at the
// end (AnalyzeFile does); the Analyzer keeps working if more bytes follow.
func (a *Analyzer) Flush() {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := a.frame(a.buf, true)
	a.tr.SkippedBytes += int64(len(a.buf) - n)
	a.buf = a.buf[:0]
	a.video.finish(a)
	a.audio.finish(a)
}

// Report returns the figures for the bytes written so far. Access units still
// being assembled are not counted until the next one starts or Flush is called.
func (a *Analyzer) Report() Report {
	a.mu.Lock()
	defer a.mu.Unlock()
	r := Report{Transport: a.tr}
	r.Transport.PIDs = make(map[uint16]PIDReport, len(a.pids))
	for pid, st := range a.pids {
		r.Transport.PIDs[pid] = PIDReport{Packets: st.packets, ContinuityErrors: st.ccErrs, TransportErrors: st.teis}
	}
	if a.pcrPID >= 0 {
		r.Transport.PCRPID = uint16(a.pcrPID)
	}
	a.video.fill(&r.Video.StreamReport)
	r.Video.KeyFrames = a.video.keyFrames
	if a.opts.FrameHashes {
		if h := a.video.tr.snapshot().hashes; len(h) > 0 {
			r.Video.FrameHashes = append([]FrameHash(nil), h...)
		}
	}
	a.audio.fill(&r.Audio.StreamReport)
	r.Audio.SampleRate = a.audio.sampleRate
	r.Audio.ADTSErrors = a.audio.adts.errors
	r.Audio.TruncatedFrames = a.audio.adts.truncated
	if a.firstAt != nil {
		t := *a.firstAt
		r.FirstByteAt = &t
	}
	if a.videoAt != nil {
		t := *a.videoAt
		r.FirstVideoAt = &t
	}
	return r
}

// resync drops framing state at a known boundary (a new SRT connection): a
// partial packet left by the previous publisher is counted as skipped.
func (a *Analyzer) resync() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.tr.SkippedBytes += int64(len(a.buf))
	a.buf = a.buf[:0]
	a.locked, a.weak = false, false
}

// frame cuts b into packets and returns how many bytes were consumed.
//
// A sync byte is trusted when the byte one packet later is a sync byte too.
// While locked, a packet whose successor is not at +188 is still accepted
// unless a confirmed sync point lies inside it (then its first byte was
// garbage). Without final, undecidable tails wait for more bytes.
func (a *Analyzer) frame(b []byte, final bool) int {
	i := 0
	for {
		n := len(b) - i
		if n < packetSize {
			return i
		}
		if b[i] != syncByte {
			a.skip()
			i++
			continue
		}
		if n > packetSize && b[i+packetSize] == syncByte {
			a.packet(b[i : i+packetSize])
			a.locked, a.weak = true, false
			i += packetSize
			continue
		}
		// No confirmation at +188 (garbage follows, or not enough bytes yet).
		if !final && n < 2*packetSize {
			return i
		}
		if a.locked && !a.weak && !confirmedSyncWithin(b[i:]) {
			a.packet(b[i : i+packetSize])
			i += packetSize
			a.weak = true // the next packet must prove itself
			continue
		}
		if final && n == packetSize {
			a.packet(b[i : i+packetSize])
			return i + packetSize
		}
		a.skip()
		i++
	}
}

// confirmedSyncWithin reports whether b[k] and b[k+188] are both sync bytes
// for some k in 1..187.
func confirmedSyncWithin(b []byte) bool {
	for k := 1; k < packetSize && k+packetSize < len(b); k++ {
		if b[k] == syncByte && b[k+packetSize] == syncByte {
			return true
		}
	}
	return false
}

func (a *Analyzer) skip() {
	if a.locked {
		a.tr.SyncLosses++
		a.locked, a.weak = false, false
	}
	a.tr.SkippedBytes++
}

func (a *Analyzer) pidState(pid uint16) *pidState {
	st := a.pids[pid]
	if st == nil {
		st = &pidState{lastCC: -1}
		a.pids[pid] = st
	}
	return st
}

// packet processes one 188-byte packet starting with the sync byte.
func (a *Analyzer) packet(p []byte) {
	a.tr.Packets++
	pid := uint16(p[1]&0x1f)<<8 | uint16(p[2])
	pusi := p[1]&0x40 != 0
	afc := p[3] >> 4 & 3
	cc := int8(p[3] & 0x0f)
	st := a.pidState(pid)
	st.packets++
	if p[1]&0x80 != 0 {
		a.tr.TransportErrors++
		st.teis++
		return
	}
	if afc == 0 {
		a.tr.MalformedPackets++
		return
	}
	start := 4
	var disc, rai bool
	if afc&2 != 0 {
		afl := int(p[4])
		if 5+afl > packetSize || (afc == 3 && 5+afl == packetSize) {
			a.tr.MalformedPackets++
			return
		}
		if afl > 0 {
			flags := p[5]
			disc = flags&0x80 != 0
			rai = flags&0x40 != 0
			if flags&0x10 != 0 && afl >= 7 {
				a.pcr(pid, p[6:12], disc)
			}
		}
		start = 5 + afl
	}
	if pid == nullPID {
		return
	}
	if afc&1 == 0 {
		return // adaptation field only: the counter does not advance
	}
	if st.lastCC >= 0 && !disc {
		if cc == st.lastCC {
			a.tr.DuplicatePackets++
			return
		}
		if cc != (st.lastCC+1)&0x0f {
			a.tr.ContinuityErrors++
			st.ccErrs++
			if es := a.es(pid); es != nil {
				es.corrupt = true
			}
		}
	}
	st.lastCC = cc
	payload := p[start:]

	switch {
	case pid == 0:
		a.patSec.feed(a, payload, pusi, a.parsePAT)
	case a.pmtPIDs[pid]:
		s := a.pmtSecs[pid]
		if s == nil {
			s = &section{}
			a.pmtSecs[pid] = s
		}
		s.feed(a, payload, pusi, a.parsePMT)
	default:
		if es := a.es(pid); es != nil {
			if pusi && es.isVideo && a.videoAt == nil && a.opts.Now != nil {
				t := a.opts.Now()
				a.videoAt = &t
			}
			es.feed(a, payload, pusi, rai)
			return
		}
		if a.havePMT && pid >= 0x20 {
			a.tr.UnknownPIDPackets++
		}
	}
}

func (a *Analyzer) es(pid uint16) *esState {
	if a.video.known && a.video.pid == pid {
		return a.video
	}
	if a.audio.known && a.audio.pid == pid {
		return a.audio
	}
	return nil
}

// pcr records a PCR found in the adaptation field of pid.
func (a *Analyzer) pcr(pid uint16, b []byte, disc bool) {
	if a.pcrPID >= 0 && int(pid) != a.pcrPID {
		return
	}
	base := int64(b[0])<<25 | int64(b[1])<<17 | int64(b[2])<<9 | int64(b[3])<<1 | int64(b[4]>>7)
	ext := int64(b[4]&1)<<8 | int64(b[5])
	v := base*300 + ext // 27 MHz
	a.tr.PCRCount++
	if a.havePCR && !disc {
		d := v - a.lastPCR
		if d < 0 {
			d += ptsWrap * 300 // wrap-around of the 33-bit base
		}
		ms := float64(d) / 27000
		if ms > 10000 || ms < 0 {
			a.tr.PCRDiscontinuities++
		} else if ms > a.tr.MaxPCRIntervalMs {
			a.tr.MaxPCRIntervalMs = ms
		}
	}
	a.havePCR = true
	a.lastPCR = v
}

// parsePAT records the PMT PIDs of a complete, CRC-checked PAT section.
func (a *Analyzer) parsePAT(sec []byte) {
	if sec[0] != 0x00 {
		return
	}
	for i := 8; i+4 <= len(sec)-4; i += 4 {
		prog := uint16(sec[i])<<8 | uint16(sec[i+1])
		pid := uint16(sec[i+2]&0x1f)<<8 | uint16(sec[i+3])
		if prog != 0 {
			a.pmtPIDs[pid] = true
		}
	}
}

// parsePMT picks the first video and the first audio stream of a complete PMT section.
func (a *Analyzer) parsePMT(sec []byte) {
	if sec[0] != 0x02 || len(sec) < 16 {
		return
	}
	a.havePMT = true
	a.pcrPID = int(uint16(sec[8]&0x1f)<<8 | uint16(sec[9]))
	i := 12 + int(uint16(sec[10]&0x0f)<<8|uint16(sec[11]))
	end := len(sec) - 4
	var video, audio bool
	for i+5 <= end {
		typ := sec[i]
		pid := uint16(sec[i+1]&0x1f)<<8 | uint16(sec[i+2])
		il := int(uint16(sec[i+3]&0x0f)<<8 | uint16(sec[i+4]))
		desc := sec[min(i+5, end):min(i+5+il, end)]
		i += 5 + il
		codec, isVideo, isAudio := classify(typ, desc)
		switch {
		case isVideo && !video:
			video = true
			a.video.setStream(pid, typ, codec)
		case isAudio && !audio:
			audio = true
			a.audio.setStream(pid, typ, codec)
		}
	}
}

// classify maps a PMT stream type (and its descriptors) to a codec name.
func classify(typ byte, desc []byte) (codec string, video, audio bool) {
	switch typ {
	case 0x01:
		return "mpeg1video", true, false
	case 0x02:
		return "mpeg2video", true, false
	case 0x10:
		return "mpeg4", true, false
	case 0x1b:
		return "h264", true, false
	case 0x24:
		return "hevc", true, false
	case 0x03, 0x04:
		return "mp2", false, true
	case 0x0f:
		return "aac", false, true
	case 0x11:
		return "aac_latm", false, true
	case 0x81:
		return "ac3", false, true
	case 0x87:
		return "eac3", false, true
	case 0x06:
		for len(desc) >= 2 {
			tag, l := desc[0], int(desc[1])
			if 2+l > len(desc) {
				break
			}
			body := desc[2 : 2+l]
			switch {
			case tag == 0x05 && string(body) == "Opus":
				return "opus", false, true
			case tag == 0x6a:
				return "ac3", false, true
			case tag == 0x7a:
				return "eac3", false, true
			}
			desc = desc[2+l:]
		}
	}
	return "", false, false
}

// section reassembles PSI sections of one PID.
type section struct {
	buf    []byte
	active bool
}

func (s *section) feed(a *Analyzer, payload []byte, pusi bool, done func([]byte)) {
	if pusi {
		if len(payload) == 0 {
			return
		}
		ptr := int(payload[0])
		if 1+ptr > len(payload) {
			a.tr.MalformedPackets++
			s.active = false
			return
		}
		if s.active {
			s.buf = append(s.buf, payload[1:1+ptr]...)
			s.complete(a, done)
		}
		s.buf = append(s.buf[:0], payload[1+ptr:]...)
		s.active = true
	} else if s.active {
		s.buf = append(s.buf, payload...)
	} else {
		return
	}
	s.complete(a, done)
}

// complete hands every complete section in buf to done.
func (s *section) complete(a *Analyzer, done func([]byte)) {
	for s.active {
		if len(s.buf) == 0 || s.buf[0] == 0xff { // stuffing
			s.active = false
			return
		}
		if len(s.buf) < 3 {
			return
		}
		want := 3 + int(uint16(s.buf[1]&0x0f)<<8|uint16(s.buf[2]))
		if want > maxPSISection || want < 3+5+4 {
			a.tr.PSICRCErrors++
			s.active = false
			return
		}
		if len(s.buf) < want {
			return
		}
		sec := s.buf[:want]
		if crc32MPEG(sec) != 0 {
			a.tr.PSICRCErrors++
		} else {
			done(sec)
		}
		s.buf = s.buf[:copy(s.buf, s.buf[want:])]
	}
}

var crcTable = func() (t [256]uint32) {
	for i := range t {
		c := uint32(i) << 24
		for range 8 {
			if c&0x80000000 != 0 {
				c = c<<1 ^ 0x04c11db7
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

// crc32MPEG is CRC-32/MPEG-2; over a whole section including its CRC it is 0.
func crc32MPEG(b []byte) uint32 {
	c := uint32(0xffffffff)
	for _, x := range b {
		c = c<<8 ^ crcTable[byte(c>>24)^x]
	}
	return c
}

// esState reassembles the PES packets of one elementary stream and measures them.
type esState struct {
	isVideo    bool
	known      bool
	pid        uint16
	streamType uint8
	codec      string
	tr         *tracker
	hashing    bool

	active  bool
	hdr     []byte
	hdrDone bool
	pesLen  int // declared PES_packet_length, 0 = unbounded
	got     int // bytes after the 6-byte prefix
	pts     int64
	dts     int64
	hasPTS  bool
	key     bool
	corrupt bool
	digest  *xxhash.Digest
	nal     nalScanner

	ptsU, dtsU unwrapper

	pes        int64
	frames     int64
	bytes      int64
	keyFrames  int64
	noPTS      int64
	incomplete int64

	// audio
	adts       adtsParser
	sampleRate int
}

func newESState(video bool, tr *tracker, hashing bool) *esState {
	es := &esState{isVideo: video, tr: tr, hashing: hashing}
	if hashing {
		es.digest = xxhash.New()
	}
	return es
}

func (es *esState) setStream(pid uint16, typ uint8, codec string) {
	if es.known && es.pid != pid {
		es.active = false // the stream moved: drop the partial PES
	}
	es.known, es.pid, es.streamType, es.codec = true, pid, typ, codec
}

func (es *esState) feed(a *Analyzer, payload []byte, pusi, rai bool) {
	if pusi {
		es.finish(a)
		es.start(rai)
	} else if !es.active {
		return // joined mid-PES, or after an error: wait for the next start
	}
	if es.hdrDone {
		es.consume(a, payload)
		return
	}
	take := min(maxPESHeader-len(es.hdr), len(payload))
	es.hdr = append(es.hdr, payload[:take]...)
	n, ok := es.parseHeader()
	if !ok {
		if n < 0 || len(es.hdr) >= maxPESHeader {
			a.tr.PESErrors++
			es.active = false
		}
		return
	}
	es.hdrDone = true
	es.got = n - 6
	es.consume(a, es.hdr[n:])
	es.consume(a, payload[take:])
}

// consume takes elementary-stream bytes of the current PES, bounded by its
// declared length, and completes the PES when that length is reached.
func (es *esState) consume(a *Analyzer, b []byte) {
	if len(b) == 0 {
		return
	}
	if !es.active {
		a.tr.PESErrors++ // bytes after a complete bounded PES
		return
	}
	if es.pesLen > 0 {
		if room := max(0, es.pesLen-es.got); room < len(b) {
			a.tr.PESErrors++
			b = b[:room]
		}
	}
	es.got += len(b)
	es.esData(b)
	if es.pesLen > 0 && es.got >= es.pesLen {
		es.finish(a)
	}
}

func (es *esState) start(rai bool) {
	es.active = true
	es.hdr = es.hdr[:0]
	es.hdrDone = false
	es.pesLen, es.got = 0, 0
	es.hasPTS = false
	es.key = rai
	es.corrupt = false
	es.nal = nalScanner{hevc: es.streamType == 0x24}
	if es.digest != nil {
		es.digest.Reset()
	}
	es.adts.reset()
}

// parseHeader parses the PES header in es.hdr. It returns the header length and
// true when complete; (-1, false) when the bytes cannot be a PES header.
func (es *esState) parseHeader() (int, bool) {
	h := es.hdr
	if len(h) < 9 {
		if len(h) >= 3 && (h[0] != 0 || h[1] != 0 || h[2] != 1) {
			return -1, false
		}
		return 0, false
	}
	if h[0] != 0 || h[1] != 0 || h[2] != 1 || h[6]&0xc0 != 0x80 {
		return -1, false
	}
	es.pesLen = int(h[4])<<8 | int(h[5])
	n := 9 + int(h[8])
	if len(h) < n {
		return 0, false
	}
	flags := h[7] >> 6
	if flags&2 != 0 && n >= 14 {
		es.pts = es.ptsU.unwrap(readTS(h[9:14]))
		es.dts = es.pts
		es.hasPTS = true
		if flags == 3 && n >= 19 {
			es.dts = es.dtsU.unwrap(readTS(h[14:19]))
		}
	}
	return n, true
}

func readTS(b []byte) int64 {
	return int64(b[0]>>1&7)<<30 | int64(b[1])<<22 | int64(b[2]>>1)<<15 | int64(b[3])<<7 | int64(b[4]>>1)
}

func (es *esState) esData(b []byte) {
	if len(b) == 0 {
		return
	}
	es.bytes += int64(len(b))
	if es.isVideo {
		if es.digest != nil {
			_, _ = es.digest.Write(b)
		}
		if es.nal.scan(b) {
			es.key = true
		}
		return
	}
	if es.streamType == 0x0f {
		es.adts.feed(b, func(sr, blocks int) { es.audioFrame(sr, blocks) })
	}
}

// audioFrame records one complete ADTS frame of the current PES.
func (es *esState) audioFrame(sr, blocks int) {
	if es.sampleRate == 0 {
		es.sampleRate = sr
		es.tr.dur = 1024 * 90000 / float64(sr)
	}
	for range blocks {
		es.frames++
		if !es.hasPTS {
			es.noPTS++
			continue
		}
		off := int64(float64(es.adts.samples) * 90000 / float64(sr))
		es.tr.add(frameRec{pts: es.pts + off, dts: es.dts + off})
		es.adts.samples += 1024
	}
}

// finish completes the PES being assembled, if any.
func (es *esState) finish(a *Analyzer) {
	if !es.active {
		return
	}
	es.active = false
	if !es.hdrDone {
		a.tr.PESErrors++
		return
	}
	es.pes++
	if es.pesLen > 0 && es.got < es.pesLen {
		es.corrupt = true
	}
	if es.isVideo || es.streamType != 0x0f {
		es.frames++
		if es.corrupt {
			es.incomplete++
		}
		if es.key && es.isVideo {
			es.keyFrames++
		}
		if !es.hasPTS {
			es.noPTS++
			return
		}
		var h uint64
		if es.digest != nil {
			h = es.digest.Sum64()
		}
		es.tr.add(frameRec{pts: es.pts, dts: es.dts, hash: h, key: es.key})
		return
	}
	if es.adts.pending() {
		es.adts.truncated++
		es.corrupt = true
	}
	if es.corrupt {
		es.incomplete++
	}
}

func (es *esState) fill(r *StreamReport) {
	r.PID, r.StreamType, r.Codec = es.pid, es.streamType, es.codec
	r.Frames, r.PES, r.Bytes = es.frames, es.pes, es.bytes
	r.NoPTS, r.Incomplete = es.noPTS, es.incomplete
	es.tr.snapshot().fill(r)
}

// nalScanner finds Annex B start codes across chunk boundaries and reports
// IDR (H.264 type 5) or IRAP (HEVC types 16..21) NAL units.
type nalScanner struct {
	hevc   bool
	zeros  int
	header bool // the next byte is a NAL header
}

func (s *nalScanner) scan(b []byte) bool {
	key := false
	for _, x := range b {
		if s.header {
			s.header = false
			if s.hevc {
				if t := x >> 1 & 0x3f; t >= 16 && t <= 21 {
					key = true
				}
			} else if x&0x1f == 5 {
				key = true
			}
		}
		if x == 0 {
			s.zeros++
			continue
		}
		if x == 1 && s.zeros >= 2 {
			s.header = true
		}
		s.zeros = 0
	}
	return key
}

var adtsRates = [...]int{96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350}

// adtsParser counts ADTS frames inside one PES (reset at every PES start).
type adtsParser struct {
	hdr       [7]byte
	n         int  // header bytes collected
	skip      int  // body bytes of the current frame still to come
	inFrame   bool // a header was accepted and its body is incomplete
	lost      bool // resynchronising
	sr        int
	blocks    int
	samples   int64 // samples before the next frame within this PES
	errors    int64
	truncated int64
}

func (p *adtsParser) reset() {
	p.n, p.skip, p.inFrame, p.lost, p.samples = 0, 0, false, false, 0
}

func (p *adtsParser) pending() bool { return p.inFrame || p.n > 0 }

func (p *adtsParser) feed(b []byte, frame func(sr, blocks int)) {
	for len(b) > 0 {
		if p.inFrame {
			k := min(p.skip, len(b))
			p.skip -= k
			b = b[k:]
			if p.skip == 0 {
				p.inFrame = false
				frame(p.sr, p.blocks)
			}
			continue
		}
		k := min(7-p.n, len(b))
		copy(p.hdr[p.n:], b[:k])
		p.n += k
		b = b[k:]
		if p.n < 7 {
			return
		}
		h := p.hdr
		flen := int(h[3]&3)<<11 | int(h[4])<<3 | int(h[5])>>5
		sri := int(h[2] >> 2 & 0x0f)
		hlen := 7
		if h[1]&1 == 0 {
			hlen = 9 // CRC present
		}
		if h[0] != 0xff || h[1]&0xf6 != 0xf0 || sri >= len(adtsRates) || flen < hlen {
			if !p.lost {
				p.errors++
				p.lost = true
			}
			copy(p.hdr[:], p.hdr[1:])
			p.n = 6
			continue
		}
		p.lost = false
		p.sr = adtsRates[sri]
		p.blocks = int(h[6]&3) + 1
		p.n = 0
		p.skip = flen - 7
		p.inFrame = true
		if p.skip == 0 {
			p.inFrame = false
			frame(p.sr, p.blocks)
		}
	}
}
