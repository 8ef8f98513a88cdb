package ingest

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// gen is a tool, not a test: it regenerates the committed seed corpus of
// FuzzAnalyzer from an ffmpeg sample (needs ffmpeg), then the fuzz target
// runs on the new seeds as usual:
//
//	go test ./ingest/ -run FuzzAnalyzer -gen
var gen = flag.Bool("gen", false, "regenerate testdata/fuzz/FuzzAnalyzer from an ffmpeg sample before FuzzAnalyzer runs")

// fuzzSeeds are real ffmpeg TS packets and the faults the analyser must
// report: a stray sync byte, transport errors, continuity jumps, a short
// tail, junk.
func fuzzSeeds(tb testing.TB) map[string][]byte {
	b := readFile(tb, sampleTS(tb))
	ps := splitPackets(tb, b)
	head := joinPackets(ps[:60])
	garbage := append(append(bytes.Clone(head[:188*10]), 0x47, 1, 2, 3), head[188*10:]...)
	tei := bytes.Clone(head)
	tei[188*20+1] |= 0x80
	cc := bytes.Clone(head)
	cc[188*30+3] ^= 0x05
	short := head[:188*8+100]
	return map[string][]byte{"head": head, "garbage": garbage, "tei": tei, "cc": cc, "short": short,
		"junk": bytes.Repeat([]byte{0x47, 0xff}, 400)}
}

// writeFuzzSeeds writes seeds into dir in the go test fuzz v1 format of
// FuzzAnalyzer's arguments (data []byte, cut uint16).
func writeFuzzSeeds(tb testing.TB, dir string, seeds map[string][]byte) {
	tb.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.Fatal(err)
	}
	for name, s := range seeds {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nuint16(%d)\n", s, len(s)/3)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
	tb.Logf("wrote %d seeds to %s", len(seeds), dir)
}
