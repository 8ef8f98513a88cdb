package wire

import (
	"fmt"
	"math/big"
	"testing"
)

// refPTS is floor(i×mul/div) in math/big.
func refPTS(i uint64, mul, div int64) int64 {
	n := new(big.Int).Mul(new(big.Int).SetUint64(i), big.NewInt(mul))
	return n.Quo(n, big.NewInt(div)).Int64()
}

// framesAt is the frame count after h hours at num/den frames per second.
func framesAt(h, num, den uint64) uint64 { return h * 3600 * num / den }

// VideoPTS and AudioPTS took int64(i)×90000×den: exact here for indexes of
// 100 h, 1000 h and years of uptime, checked against math/big, and strictly
// increasing frame to frame.
func TestPTSExactAfterDaysOfUptime(t *testing.T) {
	video := []struct{ num, den int }{{30000, 1001}, {60000, 1001}, {24000, 1001}, {25, 1}, {30, 1}}
	for _, hours := range []uint64{100, 1000, 100_000, 10_000_000} {
		for _, v := range video {
			t.Run(fmt.Sprintf("video_%d_%d_%dh", v.num, v.den, hours), func(t *testing.T) {
				first := framesAt(hours, uint64(v.num), uint64(v.den))
				prev := VideoPTS(first-1, v.num, v.den)
				for i := first; i < first+1000; i++ {
					got := VideoPTS(i, v.num, v.den)
					if want := refPTS(i, 90000*int64(v.den), int64(v.num)); got != want {
						t.Fatalf("VideoPTS(%d) = %d, want %d", i, got, want)
					}
					if got <= prev {
						t.Fatalf("VideoPTS(%d) = %d after %d", i, got, prev)
					}
					prev = got
				}
			})
		}
		t.Run(fmt.Sprintf("audio_48k_%dh", hours), func(t *testing.T) {
			first := framesAt(hours, 48000, AudioFrameSamples)
			prev := AudioPTS(first-1, 48000)
			for i := first; i < first+1000; i++ {
				got := AudioPTS(i, 48000)
				if want := refPTS(i, AudioFrameSamples*90000, 48000); got != want {
					t.Fatalf("AudioPTS(%d) = %d, want %d", i, got, want)
				}
				if got <= prev {
					t.Fatalf("AudioPTS(%d) = %d after %d", i, got, prev)
				}
				prev = got
			}
		})
	}
}

func TestPTSSaturatesInsteadOfWrapping(t *testing.T) {
	if got := VideoPTS(^uint64(0), 25, 1); got != 1<<63-1 {
		t.Fatalf("VideoPTS(max) = %d", got)
	}
	if got := AudioPTS(^uint64(0), 48000); got != 1<<63-1 {
		t.Fatalf("AudioPTS(max) = %d", got)
	}
	if VideoPTS(5, 0, 1) != 0 || AudioPTS(5, 0) != 0 {
		t.Fatal("zero rate must give 0, not divide by zero")
	}
}
