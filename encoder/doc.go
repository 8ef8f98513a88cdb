// Package encoder holds the parts of the twin-encoder design that live in
// onaird (pure Go): the cadence keeper, the one authority that gives every
// frame index a picture in the shared ring (capture's, a repeat, or the slate
// it draws itself), and the hitless switch, which picks exactly one copy of
// every frame index from encoders A and B and verifies continuously that the
// twins are locked (DESIGN.md, "Hitless twin encoders").
//
// Not for: encoding itself (encoder/av, cgo, in the onair-av child), the
// frame ring (encoder/ring), framing to the children (encoder/wire) or the
// MPEG-TS mux (encoder/tsmux).
package encoder
