package ingest

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"onair/ingest/relay"
	"onair/internal/atomicfile"
)

// Report is the analysis of one MPEG-TS stream. Every counter is exact for the
// bytes the Analyzer was given; nothing is sampled or estimated.
//
// Counting rules (the definition of "no gap" in DESIGN.md is measured with them):
//   - A frame's index is round((pts - first_pts) / frame_duration_90k), on the
//     33-bit PTS unwrapped across wrap-around.
//   - missing: indexes in [frame_indexes.first, frame_indexes.last] never seen.
//   - duplicates: frames whose index had been seen before.
//   - out_of_order: frames whose index is below the highest index seen so far
//     and had not been seen before (a late arrival filling a hole).
//   - pts_gaps: consecutive frames (arrival order) whose PTS step differs from
//     one frame duration by more than 1 tick (duplicates and reorders count too).
//   - max_gap_frames: the largest positive PTS step in frames (1 when nothing was lost).
//   - non_monotonic: consecutive frames whose decode time (DTS, else PTS) did not increase.
type Report struct {
	Video     VideoReport     `json:"video"`
	Audio     AudioReport     `json:"audio"`
	Transport TransportReport `json:"transport"`
	// Connections is the number of SRT connections accepted (0 for a file).
	Connections int `json:"connections"`
	// Sessions describes each accepted SRT connection, oldest first.
	Sessions []ConnInfo `json:"sessions,omitempty"`
	// FirstByteAt is the wall time the first byte arrived (live feeds only).
	FirstByteAt *time.Time `json:"first_byte_at,omitempty"`
	// FirstVideoAt is the wall time the first video PES (the first bytes of the
	// first video frame) arrived (live feeds only): the end point of the
	// time-to-first-frame benchmark.
	FirstVideoAt *time.Time `json:"first_video_at,omitempty"`
	// SRTLA is the SRTLA receiver's groups and counters (onair-ingest
	// -srtla only).
	SRTLA *relay.Stats `json:"srtla,omitempty"`
}

// StreamReport holds the timing and continuity figures shared by video and audio.
type StreamReport struct {
	// PID is the elementary stream's PID from the PMT (0 when none was found).
	PID uint16 `json:"pid"`
	// StreamType is the PMT stream_type.
	StreamType uint8 `json:"stream_type"`
	// Codec is derived from the stream type (and descriptors for type 0x06).
	Codec string `json:"codec"`
	// Frames counts access units (video: PES packets; audio: AAC raw data
	// blocks inside ADTS, or PES packets for other audio codecs).
	Frames int64 `json:"frames"`
	// PES counts PES packets on the PID.
	PES int64 `json:"pes"`
	// Bytes counts elementary-stream payload bytes (PES headers excluded).
	Bytes int64 `json:"bytes"`
	// FirstPTS is the PTS of the first frame (index 0); LastPTS that of the last frame received.
	FirstPTS int64 `json:"first_pts"`
	LastPTS  int64 `json:"last_pts"`
	// FrameDuration90k is the frame duration used for indexes, in 90 kHz ticks.
	FrameDuration90k float64 `json:"frame_duration_90k"`
	// FrameIndexes is the range of frame indexes seen.
	FrameIndexes IndexRange `json:"frame_indexes"`
	Missing      int64      `json:"missing"`
	// MissingIndexes lists the first missing indexes (at most 100).
	MissingIndexes []int64 `json:"missing_indexes,omitempty"`
	Duplicates     int64   `json:"duplicates"`
	OutOfOrder     int64   `json:"out_of_order"`
	PTSGaps        int64   `json:"pts_gaps"`
	MaxGapFrames   int64   `json:"max_gap_frames"`
	NonMonotonic   int64   `json:"non_monotonic"`
	// NoPTS counts frames without a timestamp (not indexed).
	NoPTS int64 `json:"no_pts"`
	// PTSJumps counts frames more than 2^23 frames away from the newest one
	// (not indexed: a broken clock, not a gap worth a bitmap).
	PTSJumps int64 `json:"pts_jumps"`
	// Incomplete counts PES packets (video: frames) that lost packets while
	// assembled (continuity error on the PID) or were shorter than declared.
	Incomplete int64 `json:"incomplete"`
}

// IndexRange is an inclusive range of frame indexes.
type IndexRange struct {
	First int64 `json:"first"`
	Last  int64 `json:"last"`
}

// VideoReport is the video part of a Report.
type VideoReport struct {
	StreamReport
	// KeyFrames counts frames with the random access indicator set on their
	// first packet or an IDR (H.264 NAL type 5; HEVC IRAP) inside.
	KeyFrames int64 `json:"key_frames"`
	// FrameHashes is set with Options.FrameHashes, in arrival order.
	FrameHashes []FrameHash `json:"frame_hashes,omitempty"`
}

// AudioReport is the audio part of a Report.
type AudioReport struct {
	StreamReport
	// SampleRate is the ADTS sampling rate of the first frame.
	SampleRate int `json:"sample_rate,omitempty"`
	// ADTSErrors counts ADTS sync losses (bytes skipped to find a header).
	ADTSErrors int64 `json:"adts_errors"`
	// TruncatedFrames counts ADTS frames cut short by the end of their PES.
	TruncatedFrames int64 `json:"truncated_frames"`
}

// FrameHash identifies one video access unit's bitstream: xxhash64 of the
// elementary-stream bytes of the PES (PES header excluded).
type FrameHash struct {
	Index int64  `json:"index"`
	Hash  uint64 `json:"hash,string"`
	Key   bool   `json:"key"`
}

// TransportReport is the transport-stream layer of a Report.
type TransportReport struct {
	// Packets counts 188-byte packets found; Bytes every byte written.
	Packets int64 `json:"packets"`
	Bytes   int64 `json:"bytes"`
	// SyncLosses counts the times an expected sync byte was missing; SkippedBytes
	// the bytes thrown away while re-synchronising (garbage, partial packets).
	SyncLosses   int64 `json:"sync_losses"`
	SkippedBytes int64 `json:"skipped_bytes"`
	// MalformedPackets counts packets with an impossible header
	// (adaptation_field_control 00, adaptation field longer than the packet).
	MalformedPackets int64 `json:"malformed_packets"`
	// TransportErrors counts packets with transport_error_indicator set (their payload is ignored).
	TransportErrors int64 `json:"transport_error_indicator"`
	// ContinuityErrors counts payload packets whose continuity counter was not
	// the previous one + 1 (without discontinuity_indicator). One corrupted
	// counter therefore counts twice: at the bad packet and at the next one.
	ContinuityErrors int64 `json:"continuity_errors"`
	// DuplicatePackets counts payload packets repeating the previous counter (dropped).
	DuplicatePackets int64  `json:"duplicate_packets"`
	PCRPID           uint16 `json:"pcr_pid"`
	PCRCount         int64  `json:"pcr_count"`
	// MaxPCRIntervalMs is the largest interval between consecutive PCRs on the PCR PID.
	MaxPCRIntervalMs float64 `json:"max_pcr_interval_ms"`
	// PCRDiscontinuities counts PCRs going backwards or jumping more than 10 s.
	PCRDiscontinuities int64 `json:"pcr_discontinuities"`
	PSICRCErrors       int64 `json:"psi_crc_errors"`
	// PESErrors counts payload that could not be a PES (bad start code,
	// header longer than the data, bytes after a complete bounded PES).
	PESErrors int64 `json:"pes_errors"`
	// UnknownPIDPackets counts packets on PIDs absent from PAT and PMT (once a PMT is known).
	UnknownPIDPackets int64 `json:"unknown_pid_packets"`
	// PIDs holds per-PID counters.
	PIDs map[uint16]PIDReport `json:"pids"`
}

// PIDReport holds the counters of one PID.
type PIDReport struct {
	Packets          int64 `json:"packets"`
	ContinuityErrors int64 `json:"continuity_errors"`
	TransportErrors  int64 `json:"transport_errors"`
}

// ConnInfo describes one accepted SRT connection.
type ConnInfo struct {
	SocketID uint32    `json:"socket_id"`
	Remote   string    `json:"remote"`
	StreamID string    `json:"stream_id,omitempty"`
	Since    time.Time `json:"since"`
	Bytes    int64     `json:"bytes"`
	// SRT is the receiver's packet accounting of the connection, read when
	// it ended (nil while it runs): where a gap at the receiver came from.
	SRT *RecvStats `json:"srt,omitempty"`
}

// RecvStats are an SRT connection's receiver counters (gosrt's accumulated
// statistics, libsrt's names).
type RecvStats struct {
	// PktRecv counts data packets received, retransmissions included.
	PktRecv uint64 `json:"pkt_recv"`
	// PktRecvLoss counts packets found missing (lost or reordered) on arrival.
	PktRecvLoss uint64 `json:"pkt_recv_loss"`
	// PktRecvRetrans counts retransmitted packets received.
	PktRecvRetrans uint64 `json:"pkt_recv_retrans"`
	// PktRecvBelated counts packets that came after their delivery time.
	PktRecvBelated uint64 `json:"pkt_recv_belated"`
	// PktRecvUnique counts the distinct packets received in time.
	PktRecvUnique uint64 `json:"pkt_recv_unique"`
	// PktRecvDrop counts packets skipped as too late: a gap in the file.
	// What gosrt throws away at the shutdown (not yet delivered, or
	// delivered but not yet read) is not counted: PktRead below PktRecvUnique
	// shows it.
	PktRecvDrop uint64 `json:"pkt_recv_drop"`
	// PktRead counts the packets the application read.
	PktRead uint64 `json:"pkt_read"`
	// PktRecvUndecrypt counts packets that failed to decrypt.
	PktRecvUndecrypt uint64 `json:"pkt_recv_undecrypt"`
	// RTTms is the last round-trip time estimate.
	RTTms float64 `json:"rtt_ms"`
}

// WriteReport writes r to w as indented JSON followed by a newline.
func WriteReport(w io.Writer, r Report) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("ingest: encode report: %w", err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("ingest: write report: %w", err)
	}
	return nil
}

// WriteReportFile writes r as indented JSON to path atomically (temporary file
// in the same directory, fsync, rename, directory fsync: internal/atomicfile),
// so a reader never sees a partial report.
func WriteReportFile(path string, r Report) error {
	if err := atomicfile.Write(path, 0o600, func(w io.Writer) error { return WriteReport(w, r) }); err != nil {
		return fmt.Errorf("ingest: write report %s: %w", path, err)
	}
	return nil
}
