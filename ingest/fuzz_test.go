package ingest

import (
	"path/filepath"
	"reflect"
	"testing"
)

// FuzzAnalyzer feeds arbitrary bytes, split at an arbitrary point: the
// Analyzer must not panic, must account for every byte (in a packet or
// skipped), and must not depend on how the stream was cut into writes.
// Seeds: testdata/fuzz/FuzzAnalyzer (real ffmpeg TS packets, faults, junk),
// regenerated with -gen (seedgen_test.go).
func FuzzAnalyzer(f *testing.F) {
	if *gen {
		writeFuzzSeeds(f, filepath.Join("testdata", "fuzz", "FuzzAnalyzer"), fuzzSeeds(f))
	}
	f.Add([]byte{0x47, 0x40, 0x00, 0x10}, uint16(2))
	f.Fuzz(func(t *testing.T, data []byte, cut uint16) {
		whole := analyzeBytes(data, Options{FrameHashes: true})
		tr := whole.Transport
		if tr.Bytes != int64(len(data)) || tr.Packets*packetSize+tr.SkippedBytes != tr.Bytes {
			t.Fatalf("bytes %d, packets %d, skipped %d", tr.Bytes, tr.Packets, tr.SkippedBytes)
		}
		c := int(cut) % (len(data) + 1)
		a := NewAnalyzer(Options{FrameHashes: true})
		_, _ = a.Write(data[:c])
		_ = a.Report()
		_, _ = a.Write(data[c:])
		a.Flush()
		if split := a.Report(); !reflect.DeepEqual(split, whole) {
			t.Fatalf("split at %d changes the report:\n%+v\n%+v", c, split, whole)
		}
	})
}
