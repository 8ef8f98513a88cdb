// Package av holds every piece of onair that links FFmpeg (through go-astiav):
// the three roles of the onair-av child process.
//
//   - RunCapture reads a camera (V4L2), a stream (url:, read through
//     libavformat) or a lavfi test source, converts it to the ring geometry
//     and publishes one picture per frame index into the shared-memory ring
//     (encoder/ring). It reports liveness apart from frames (heartbeats that
//     say live or no_signal), so a silent source is waited for, not restarted.
//   - RunEncoder reads the ring in index order and encodes H.264 with libx264
//     so that two instances given the same settings and the same
//     frame-indexed commands produce bit-identical packets (hitless twins,
//     DESIGN.md). It sends each access unit to onaird over encoder/wire.
//   - RunAudio encodes one audio chain (lavfi, ALSA or PulseAudio) to AAC-LC
//     with ADTS headers on the session's sample clock: it measures the sound
//     card's rate against the box clock and resamples to the box, so frame
//     index k means the same instant in both chains for hours.
//
// Each role talks to onaird over an io.ReadWriter (fd 3 in production, a
// socketpair or net.Pipe in tests) and stops when its context is cancelled,
// when onaird sends "stop", or when the wire closes (onaird died).
//
// It exists as its own package so that a libav crash kills one child process
// and never the supervisor: only cmd/onair-av imports it, and onaird builds
// with CGO_ENABLED=0. Not for: muxing, switching or anything that must
// outlive an encoder (that is onaird's job in package encoder).
package av
