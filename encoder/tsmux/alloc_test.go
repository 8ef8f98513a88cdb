package tsmux

import (
	"io"
	"testing"
	"time"
)

// BenchmarkMuxFrame is the programme's per-packet path at 4 Mbit/s, 30 fps:
// one 16 KB access unit and the 1.6 AAC frames of the same 33 ms.
func BenchmarkMuxFrame(b *testing.B) {
	m, err := New(Config{}, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	au := make([]byte, 16<<10)
	copy(au, []byte{0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x65})
	aac := make([]byte, 380)
	copy(aac, []byte{0xff, 0xf1, 0x50, 0x80, 0x2f, 0x7f, 0xfc})
	b.ReportAllocs()
	b.SetBytes(int64(len(au) + len(aac)))
	pts := int64(PTSOffset)
	for i := 0; b.Loop(); i++ {
		if err := m.WriteVideo(pts+int64(i)*3000, i%30 == 0, au); err != nil {
			b.Fatal(err)
		}
		if err := m.WriteAudio(pts+int64(i)*3000+1, aac); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProgrammeStatus is one status snapshot of the programme with a
// full latency window (the events watcher takes one 10 times a second).
func BenchmarkProgrammeStatus(b *testing.B) {
	p, err := NewProgramme(ProgrammeConfig{FPSNum: 30, FPSDen: 1}, &fakeOutput{session: 1}, nil, func() int64 { return 5e6 })
	if err != nil {
		b.Fatal(err)
	}
	for i := range p.lat {
		p.lat[i] = time.Duration(i*7919%1000) * time.Microsecond
	}
	p.nlat = 5000
	b.ReportAllocs()
	for b.Loop() {
		if st := p.Status(); st.LatencyP99Ms == 0 {
			b.Fatal("no latency")
		}
	}
}
