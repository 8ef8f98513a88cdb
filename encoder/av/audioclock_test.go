//go:build cgo

package av

import (
	"fmt"
	"math/big"
	"testing"
	"time"

	"onair/encoder/wire"
)

// The audio role's index↔time maths took (ns-epoch)×48000 in int64, which
// overflowed after 53 h: at 100 h and 1000 h of synthetic uptime it must
// match math/big, round-trip, stay monotonic and agree with wire.AudioPTS
// (1920 ticks of 90 kHz per 1024-sample frame).
func TestAudioClockExactAfter53Hours(t *testing.T) {
	const epoch = int64(987_654_321_000)
	for _, up := range []time.Duration{time.Hour, 100 * time.Hour, 1000 * time.Hour} {
		t.Run(fmt.Sprint(up), func(t *testing.T) {
			t0 := epoch + int64(up)
			first := audioIndexAt(epoch, t0)
			// floor(up×48000/1024/1e9) with math/big
			want := new(big.Int).Mul(big.NewInt(int64(up)), big.NewInt(AudioSampleRate))
			want.Quo(want, big.NewInt(1e9*wire.AudioFrameSamples))
			if first != want.Uint64() {
				t.Fatalf("audioIndexAt at %s = %d, want %d", up, first, want.Uint64())
			}
			prev := audioTimeOf(epoch, first-1)
			for k := first; k < first+2000; k++ {
				tk := audioTimeOf(epoch, k)
				if tk <= prev {
					t.Fatalf("audioTimeOf(%d) = %d after %d", k, tk, prev)
				}
				prev = tk
				if got := audioIndexAt(epoch, tk); got != k {
					t.Fatalf("audioIndexAt(audioTimeOf(%d)) = %d", k, got)
				}
				if got := audioIndexAt(epoch, tk-1); got != k-1 {
					t.Fatalf("audioIndexAt(audioTimeOf(%d)-1) = %d", k, got)
				}
				// ceil(k×1024×1e9/48000) with math/big
				n := new(big.Int).Mul(new(big.Int).SetUint64(k), big.NewInt(wire.AudioFrameSamples*1e9))
				q, r := n.QuoRem(n, big.NewInt(AudioSampleRate), new(big.Int))
				if r.Sign() != 0 {
					q.Add(q, big.NewInt(1))
				}
				if tk-epoch != q.Int64() {
					t.Fatalf("audioTimeOf(%d) = epoch+%d, want epoch+%d", k, tk-epoch, q.Int64())
				}
				if pts := wire.AudioPTS(k, AudioSampleRate); pts != int64(k)*1920 || pts != (tk-epoch)*9/100_000 {
					t.Fatalf("frame %d: AudioPTS %d, time %d ns: clocks disagree", k, pts, tk-epoch)
				}
			}
		})
	}
}
