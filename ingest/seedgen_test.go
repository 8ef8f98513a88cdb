package ingest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteFuzzSeeds regenerates testdata/fuzz/FuzzAnalyzer from the ffmpeg
// sample when INGEST_WRITE_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("INGEST_WRITE_SEEDS") != "1" {
		t.Skip("set INGEST_WRITE_SEEDS=1 to regenerate the seed corpus")
	}
	b := readFile(t, sampleTS(t))
	ps := splitPackets(t, b)
	head := joinPackets(ps[:60])
	garbage := append(append(bytes.Clone(head[:188*10]), 0x47, 1, 2, 3), head[188*10:]...)
	tei := bytes.Clone(head)
	tei[188*20+1] |= 0x80
	cc := bytes.Clone(head)
	cc[188*30+3] ^= 0x05
	short := head[:188*8+100]
	seeds := map[string][]byte{"head": head, "garbage": garbage, "tei": tei, "cc": cc, "short": short,
		"junk": bytes.Repeat([]byte{0x47, 0xff}, 400)}
	dir := filepath.Join("testdata", "fuzz", "FuzzAnalyzer")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, s := range seeds {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nuint16(%d)\n", s, len(s)/3)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
