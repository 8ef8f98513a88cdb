// Package encoder holds the parts of the twin-encoder design that live in
// onaird (pure Go): the cadence keeper, the one authority that gives every
// frame index a picture in the shared ring (capture's, a repeat, or the slate
// it draws itself), and the hitless switch, which picks exactly one copy of
// every frame index from encoders A and B and verifies continuously that the
// twins are locked (DESIGN.md, "Hitless twin encoders"); and the twin
// control (Twins), the loop that takes the encoders' packets from their links
// in arrival order, feeds the switch and the programme, re-locks the twins,
// restarts a hung or lagging twin, brings a restarted one to the runtime
// bitrate and addresses every command to one frame index.
//
// Not for: encoding itself (encoder/av, cgo, in the onair-av child), the
// frame ring (encoder/ring), framing to the children (encoder/wire), the
// child connection (encoder/link), the programme stage and MPEG-TS mux
// (encoder/tsmux), or process control (supervisor, reached through the
// Encoder interface).
package encoder
