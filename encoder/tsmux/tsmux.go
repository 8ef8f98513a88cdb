// Package tsmux multiplexes one H.264 video stream and one AAC (ADTS) audio
// stream into an MPEG transport stream for the onair output path.
//
// It is built for a live, never-ending contribution feed: stable PIDs, PCR on
// the video PID at least every 40 ms of stream time (also while no video is
// written), PAT/PMT/SDT at every key frame and every 100 ms, continuity
// counters that stay continuous across output reconnects (Reset), and
// timestamps passed through unchanged. PES packetisation is done by
// github.com/asticode/go-astits; the PSI/SI tables are built here.
//
// It is not a general-purpose muxer: no B-frames (DTS == PTS), one program,
// no CBR null-packet padding, no SCTE-35, no teletext. It does not pace,
// chunk or send; the caller writes the output to SRT (package output).
// A Muxer is not safe for concurrent use.
package tsmux

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/asticode/go-astits"
)

const (
	packetSize = 188
	syncByte   = 0x47

	// astitsPMTPID is where go-astits always writes its own PMT; its PAT and
	// PMT are filtered out of its output (ours are written instead), so no
	// elementary stream may use it.
	astitsPMTPID = 0x1000

	pcrMax90k        = 40 * 90  // PCR repetition limit (DVB), in stream time
	tableInterval90k = 100 * 90 // PAT/PMT repetition
	sdtInterval90k   = 500 * 90 // SDT repetition (DVB: at most 2 s)

	tsMask = 1<<33 - 1
)

// Defaults used for zero Config fields.
const (
	DefaultVideoPID uint16 = 0x100
	DefaultAudioPID uint16 = 0x101
	DefaultPMTPID   uint16 = 0x1000
	// DefaultPCRLead is how far the PCR runs behind the DTS of the data being
	// written, i.e. the decoder buffering the stream announces. 200 ms covers
	// an IDR burst (100 KB+ at 10 Mbit/s is 80 ms) plus the skew between the
	// audio and video writers, and stays small against SRT latency.
	DefaultPCRLead = 200 * time.Millisecond
	// DefaultServiceName and DefaultProvider go into the SDT.
	DefaultServiceName = "onair"
	DefaultProvider    = "onair"
)

// ErrNonMonotonic is returned (wrapped) when a write's DTS is not strictly
// greater than the previous DTS of the same stream; nothing is written.
var ErrNonMonotonic = errors.New("non-monotonic dts")

// ErrInvalidPayload is returned (wrapped) when an access unit is not Annex-B
// or an audio frame does not start with an ADTS header.
var ErrInvalidPayload = errors.New("invalid payload")

// Config configures a Muxer. Zero fields take the Default* values.
type Config struct {
	VideoPID uint16 // H.264 PID, also the PCR PID
	AudioPID uint16 // AAC PID
	PMTPID   uint16 // PID of the program map table

	// PCRLead is how far the PCR lags the newest DTS written (0 = DefaultPCRLead,
	// at most 1 s). Callers should start PTS at or above PCRLead (a session
	// epoch offset); before that the PCR is clamped to 0.
	PCRLead time.Duration

	ServiceName string // SDT service name, at most 64 bytes
	Provider    string // SDT provider name, at most 64 bytes
}

func (c *Config) setDefaults() {
	if c.VideoPID == 0 {
		c.VideoPID = DefaultVideoPID
	}
	if c.AudioPID == 0 {
		c.AudioPID = DefaultAudioPID
	}
	if c.PMTPID == 0 {
		c.PMTPID = DefaultPMTPID
	}
	if c.PCRLead == 0 {
		c.PCRLead = DefaultPCRLead
	}
	if c.ServiceName == "" {
		c.ServiceName = DefaultServiceName
	}
	if c.Provider == "" {
		c.Provider = DefaultProvider
	}
}

// Validate reports the first invalid field, named as in Config.
func (c Config) Validate() error {
	pids := []struct {
		name string
		v    uint16
	}{{"VideoPID", c.VideoPID}, {"AudioPID", c.AudioPID}, {"PMTPID", c.PMTPID}}
	for _, p := range pids {
		if p.v < 0x20 || p.v > 0x1ffe {
			return fmt.Errorf("tsmux: %s %#x outside 0x20..0x1ffe", p.name, p.v)
		}
	}
	if c.VideoPID == c.AudioPID || c.VideoPID == c.PMTPID || c.AudioPID == c.PMTPID {
		return fmt.Errorf("tsmux: VideoPID %#x, AudioPID %#x and PMTPID %#x must differ", c.VideoPID, c.AudioPID, c.PMTPID)
	}
	if c.VideoPID == astitsPMTPID || c.AudioPID == astitsPMTPID {
		return fmt.Errorf("tsmux: elementary stream PID %#x is reserved", astitsPMTPID)
	}
	if c.PCRLead < 0 || c.PCRLead > time.Second {
		return fmt.Errorf("tsmux: PCRLead %s outside 0..1s", c.PCRLead)
	}
	if len(c.ServiceName) > 64 {
		return fmt.Errorf("tsmux: ServiceName longer than 64 bytes")
	}
	if len(c.Provider) > 64 {
		return fmt.Errorf("tsmux: Provider longer than 64 bytes")
	}
	return nil
}

// Muxer writes an MPEG-TS to an io.Writer. Each WriteVideo/WriteAudio call
// results in exactly one Write of whole 188-byte packets.
type Muxer struct {
	cfg     Config
	w       io.Writer
	lead90k int64

	ts   *astits.Muxer
	sink bytes.Buffer // go-astits output, filtered into out
	out  []byte

	pat, pmt, sdt       []byte // sections
	patCC, pmtCC, sdtCC uint8
	lastCC              map[uint16]uint8 // last CC written per ES PID

	needTables bool
	lastTables int64
	lastSDT    int64
	streamTime int64 // highest DTS written (90 kHz), drives table and PCR schedules
	started    bool
	lastPCR    int64
	havePCR    bool
	lastDTS    [2]int64
	haveDTS    [2]bool
}

const (
	video = 0
	audio = 1
)

// New returns a Muxer writing to w. The first write starts with PAT/PMT/SDT.
func New(cfg Config, w io.Writer) (*Muxer, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if w == nil {
		return nil, errors.New("tsmux: nil writer")
	}
	m := &Muxer{
		cfg:        cfg,
		w:          w,
		lead90k:    cfg.PCRLead.Microseconds() * 9 / 100,
		pat:        buildPAT(cfg.PMTPID),
		pmt:        buildPMT(cfg.VideoPID, cfg.AudioPID),
		sdt:        buildSDT(cfg.Provider, cfg.ServiceName),
		lastCC:     map[uint16]uint8{},
		needTables: true,
	}
	// The tables go-astits would repeat are dropped anyway; keep it from
	// generating them often.
	m.ts = astits.NewMuxer(context.Background(), &m.sink, astits.MuxerOptTablesRetransmitPeriod(1<<30))
	for _, es := range []astits.PMTElementaryStream{
		{ElementaryPID: cfg.VideoPID, StreamType: astits.StreamTypeH264Video},
		{ElementaryPID: cfg.AudioPID, StreamType: astits.StreamTypeAACAudio},
	} {
		if err := m.ts.AddElementaryStream(es); err != nil {
			return nil, fmt.Errorf("tsmux: add stream %#x: %w", es.ElementaryPID, err)
		}
	}
	m.ts.SetPCRPID(cfg.VideoPID)
	return m, nil
}

// Reset makes the next write begin with PAT, PMT and SDT, as a receiver that
// just (re)connected needs. Continuity counters and timestamps continue.
// The caller should also hold video back until the next key frame.
func (m *Muxer) Reset() {
	m.needTables = true
}

// WriteVideo muxes one H.264 access unit in Annex-B format (with SPS/PPS
// in-band before each IDR) presented at pts90k (90 kHz; DTS == PTS). key marks
// an IDR: it gets the random access indicator, a PCR and fresh tables. An
// access unit delimiter is prepended when the AU has none, as H.222.0 requires.
func (m *Muxer) WriteVideo(pts90k int64, key bool, au []byte) error {
	if !hasStartCode(au) {
		return fmt.Errorf("tsmux: video at pts %d: %w: not an Annex-B access unit", pts90k, ErrInvalidPayload)
	}
	if err := m.checkDTS(video, pts90k); err != nil {
		return err
	}
	if !startsWithAUD(au) {
		au = append([]byte{0, 0, 0, 1, 0x09, 0xf0}, au...)
	}
	m.advance(pts90k)
	m.out = m.out[:0]
	m.maybeTables(key)

	pcr := m.pcr()
	d := &astits.MuxerData{
		PID: m.cfg.VideoPID,
		AdaptationField: &astits.PacketAdaptationField{
			HasPCR:                true,
			PCR:                   &astits.ClockReference{Base: pcr & tsMask},
			RandomAccessIndicator: key,
		},
		PES: &astits.PESData{
			Header: &astits.PESHeader{
				StreamID: 0xe0,
				OptionalHeader: &astits.PESOptionalHeader{
					MarkerBits:             2,
					DataAlignmentIndicator: true,
					PTSDTSIndicator:        astits.PTSDTSIndicatorOnlyPTS,
					PTS:                    &astits.ClockReference{Base: pts90k & tsMask},
				},
			},
			Data: au,
		},
	}
	if err := m.writePES(d); err != nil {
		return fmt.Errorf("tsmux: video at pts %d: %w", pts90k, err)
	}
	m.lastPCR, m.havePCR = pcr, true
	m.commit(video, pts90k)
	return m.flush()
}

// WriteAudio muxes one AAC frame including its 7- or 9-byte ADTS header,
// presented at pts90k (90 kHz).
func (m *Muxer) WriteAudio(pts90k int64, frame []byte) error {
	if len(frame) < 7 || frame[0] != 0xff || frame[1]&0xf0 != 0xf0 {
		return fmt.Errorf("tsmux: audio at pts %d: %w: no ADTS header", pts90k, ErrInvalidPayload)
	}
	if err := m.checkDTS(audio, pts90k); err != nil {
		return err
	}
	m.advance(pts90k)
	m.out = m.out[:0]
	m.maybeTables(false)

	// Without video frames the PCR still has to flow on the video PID. A
	// missing video frame can't be predicted, so add a PCR-only packet
	// whenever the next audio frame would come too late for the 40 ms limit
	// (roughly every other audio frame while video runs: ~1% overhead).
	interval := int64(1920) // 1024 samples at 48 kHz until measured
	if m.haveDTS[audio] {
		interval = min(pts90k-m.lastDTS[audio], pcrMax90k)
	}
	if pcr := m.pcr(); !m.havePCR || pcr+interval-m.lastPCR > pcrMax90k {
		m.out = m.pcrPacket(m.out, pcr&tsMask)
		m.lastPCR, m.havePCR = pcr, true
	}

	d := &astits.MuxerData{
		PID: m.cfg.AudioPID,
		PES: &astits.PESData{
			Header: &astits.PESHeader{
				StreamID: 0xc0,
				OptionalHeader: &astits.PESOptionalHeader{
					MarkerBits:             2,
					DataAlignmentIndicator: true,
					PTSDTSIndicator:        astits.PTSDTSIndicatorOnlyPTS,
					PTS:                    &astits.ClockReference{Base: pts90k & tsMask},
				},
			},
			Data: frame,
		},
	}
	if err := m.writePES(d); err != nil {
		return fmt.Errorf("tsmux: audio at pts %d: %w", pts90k, err)
	}
	m.commit(audio, pts90k)
	return m.flush()
}

func (m *Muxer) checkDTS(stream int, dts int64) error {
	name := [2]string{"video", "audio"}[stream]
	if dts < 0 {
		return fmt.Errorf("tsmux: %s dts %d: %w: negative", name, dts, ErrNonMonotonic)
	}
	if m.haveDTS[stream] && dts <= m.lastDTS[stream] {
		return fmt.Errorf("tsmux: %s dts %d after %d: %w", name, dts, m.lastDTS[stream], ErrNonMonotonic)
	}
	return nil
}

func (m *Muxer) commit(stream int, dts int64) {
	m.lastDTS[stream], m.haveDTS[stream] = dts, true
}

func (m *Muxer) advance(dts int64) {
	if !m.started || dts > m.streamTime {
		m.streamTime = dts
	}
	if !m.started {
		m.started = true
		m.lastTables, m.lastSDT = dts, dts
	}
}

// pcr is the PCR base (90 kHz) for data written now: the newest DTS minus
// the lead, clamped so it never goes backwards or below 0. Like every
// timestamp inside the Muxer it is unwrapped (64-bit); only the wire value
// is taken modulo 2^33. (lastPCR used to be kept wrapped while the DTS were
// not: across the 2^33 wrap the audio-only PCR check compared a small PCR
// with a huge last one and stopped inserting PCRs, a 300 ms PCR gap.)
func (m *Muxer) pcr() int64 {
	p := max(m.streamTime-m.lead90k, 0)
	if m.havePCR && p < m.lastPCR {
		p = m.lastPCR
	}
	return p
}

func (m *Muxer) maybeTables(key bool) {
	due := m.needTables || key || m.streamTime-m.lastTables >= tableInterval90k
	if !due {
		return
	}
	m.out = psiPacket(m.out, pidPAT, m.patCC, m.pat)
	m.patCC = (m.patCC + 1) & 0x0f
	m.out = psiPacket(m.out, m.cfg.PMTPID, m.pmtCC, m.pmt)
	m.pmtCC = (m.pmtCC + 1) & 0x0f
	if m.needTables || key || m.streamTime-m.lastSDT >= sdtInterval90k {
		m.out = psiPacket(m.out, pidSDT, m.sdtCC, m.sdt)
		m.sdtCC = (m.sdtCC + 1) & 0x0f
		m.lastSDT = m.streamTime
	}
	m.lastTables = m.streamTime
	m.needTables = false
}

// pcrPacket appends an adaptation-field-only packet carrying a PCR on the
// video PID. It has no payload, so its CC repeats the last one (H.222.0 2.4.3.3).
func (m *Muxer) pcrPacket(dst []byte, pcr int64) []byte {
	var p [packetSize]byte
	pid := m.cfg.VideoPID
	p[0] = syncByte
	p[1] = byte(pid >> 8 & 0x1f)
	p[2] = byte(pid)
	p[3] = 0x20 | m.lastCC[pid]&0x0f // adaptation field only
	p[4] = packetSize - 5            // adaptation_field_length
	p[5] = 0x10                      // PCR_flag
	p[6] = byte(pcr >> 25)
	p[7] = byte(pcr >> 17)
	p[8] = byte(pcr >> 9)
	p[9] = byte(pcr >> 1)
	p[10] = byte(pcr&1)<<7 | 0x7e // reserved bits, extension high bit 0
	p[11] = 0
	for i := 12; i < packetSize; i++ {
		p[i] = 0xff
	}
	return append(dst, p[:]...)
}

// writePES runs go-astits and keeps only the packets of our elementary
// streams, recording their continuity counters.
func (m *Muxer) writePES(d *astits.MuxerData) error {
	m.sink.Reset()
	if _, err := m.ts.WriteData(d); err != nil {
		return err
	}
	b := m.sink.Bytes()
	if len(b)%packetSize != 0 {
		return fmt.Errorf("[unexpected] astits wrote %d bytes, not whole packets", len(b))
	}
	for i := 0; i < len(b); i += packetSize {
		p := b[i : i+packetSize]
		pid := uint16(p[1]&0x1f)<<8 | uint16(p[2])
		if pid != m.cfg.VideoPID && pid != m.cfg.AudioPID {
			continue // astits' own PAT/PMT
		}
		if p[3]&0x10 != 0 {
			m.lastCC[pid] = p[3] & 0x0f
		}
		m.out = append(m.out, p...)
	}
	return nil
}

func (m *Muxer) flush() error {
	if len(m.out) == 0 {
		return nil
	}
	if _, err := m.w.Write(m.out); err != nil {
		return fmt.Errorf("tsmux: write: %w", err)
	}
	return nil
}

func hasStartCode(b []byte) bool {
	return bytes.HasPrefix(b, []byte{0, 0, 1}) || bytes.HasPrefix(b, []byte{0, 0, 0, 1})
}

func startsWithAUD(b []byte) bool {
	switch {
	case bytes.HasPrefix(b, []byte{0, 0, 1}):
		return len(b) > 3 && b[3]&0x1f == 9
	case bytes.HasPrefix(b, []byte{0, 0, 0, 1}):
		return len(b) > 4 && b[4]&0x1f == 9
	}
	return false
}
