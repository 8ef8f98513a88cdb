package srtla

import (
	"bytes"
	"testing"
)

// FuzzUnmarshal parses arbitrary bytes as SRTLA and as the SRT fields a proxy
// reads; whatever parses must marshal back to something that parses to the
// same bytes again, and nothing may panic.
func FuzzUnmarshal(f *testing.F) {
	for _, s := range [][]byte{
		{0x90, 0x00},
		{0x91, 0x00, 0, 0, 0, 0, 0, 1},
		append([]byte{0x92, 0x00}, make([]byte, IDLen)...),
		append([]byte{0x92, 0x01}, make([]byte, IDLen)...),
		{0x92, 0x02}, {0x92, 0x10}, {0x92, 0x11}, {0x92, 0x12, 'x'},
		{0x80, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 1, 0, 0, 0, 2},
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = DataSN(b)
		_, _ = AckLastSN(b)
		_, _ = NakLoss(b)
		p, err := Parse(b)
		if err != nil {
			return
		}
		m, err := p.Marshal()
		if err != nil {
			t.Fatalf("parsed %x but marshal failed: %v", b, err)
		}
		if len(m) != p.MarshalSize() {
			t.Fatalf("MarshalSize %d, marshal gave %d", p.MarshalSize(), len(m))
		}
		p2, err := Parse(m)
		if err != nil {
			t.Fatalf("marshalled %x does not parse: %v", m, err)
		}
		m2, _ := p2.Marshal()
		if !bytes.Equal(m, m2) {
			t.Fatalf("round trip not stable: %x then %x", m, m2)
		}
	})
}
