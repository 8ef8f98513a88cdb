package link

import (
	"testing"

	"onair/encoder/wire"
)

// FuzzRead feeds arbitrary bytes to a link's read path, as a corrupt or
// hostile child would. onaird must never panic, and nothing that breaks the
// contract may be delivered: every delivered packet has a kind the role may
// send, a payload within its limit and an index inside the window. The
// committed corpus (testdata/fuzz/FuzzRead) holds well-formed streams of
// every role, so the fuzzer starts from valid framing.
func FuzzRead(f *testing.F) {
	f.Add(uint8(0), stream(f, hello(100), pkt(wire.KindVideo, 100, 20), pkt(wire.KindVideo, 101, 20)))
	f.Add(uint8(1), stream(f, pkt(wire.KindAudio, 100, 30)))
	f.Add(uint8(2), stream(f, func(w *wire.Writer) error {
		return w.WriteJSON(wire.Header{Kind: wire.KindProgress}, wire.Progress{Index: 5, Source: "live"})
	}))
	f.Add(uint8(0), []byte("OA\x01\x02"))
	roles := []Role{RoleEncode, RoleAudio, RoleCapture}
	f.Fuzz(func(t *testing.T, r uint8, b []byte) {
		role := roles[int(r)%len(roles)]
		const lo, hi = 50, 150
		l, p, c := newTestLink(t, role, func() (uint64, uint64) { return lo, hi })
		run(l, 1, b)
		for _, m := range c.msgs {
			if m.Ev != EvPacket {
				continue
			}
			if !Allowed(role, m.H.Kind) {
				t.Fatalf("%s delivered from a %s child", m.H.Kind, role)
			}
			if m.H.Index < lo || m.H.Index > hi {
				t.Fatalf("index %d delivered outside %d..%d", m.H.Index, lo, hi)
			}
			limit := MaxAudio
			if m.H.Kind == wire.KindVideo {
				limit = 1 << 20
			}
			if len(m.Data) == 0 || len(m.Data) > limit {
				t.Fatalf("payload of %d bytes delivered", len(m.Data))
			}
			if _, _, err := wire.SplitAudio(m.Data); m.H.Kind == wire.KindAudio && err != nil {
				t.Fatalf("audio payload delivered with %v", err)
			}
		}
		if v := l.Status().Violations; v > 1 || int(v) != len(p.restarts[1]) {
			t.Fatalf("%d violations, %d restarts: one violation ends the connection", v, len(p.restarts[1]))
		}
		if role == RoleEncode && (len(c.msgs) == 0 || c.msgs[len(c.msgs)-1].Ev != EvEnded) {
			t.Fatalf("an encoder's stream must end with EvEnded")
		}
	})
}
