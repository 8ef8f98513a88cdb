package ring

import (
	"fmt"
	"math/big"
	"testing"
	"time"
)

// rates are the frame rates a box runs at, plus the AAC frame clock (48 kHz / 1024).
var rates = []struct{ num, den uint64 }{
	{30000, 1001}, {60000, 1001}, {24000, 1001}, {25, 1}, {30, 1}, {48000, 1024},
}

// uptimes are synthetic times since the epoch. The int64 products of the old
// maths (i×1e9×den/num) overflowed after 43 h at 60000/1001, 85 h at
// 30000/1001 and 53 h for audio: 100 h and 1000 h are past all of them.
var uptimes = []time.Duration{0, time.Hour, 100 * time.Hour, 1000 * time.Hour, 100_000 * time.Hour}

const epoch = int64(123_456_789_012) // an arbitrary CLOCK_MONOTONIC epoch

// refIndexAt is floor((ns-epoch)×num/(1e9×den)) with math/big.
func refIndexAt(c Cadence, ns int64) uint64 {
	n := new(big.Int).Mul(big.NewInt(ns-c.EpochNs), new(big.Int).SetUint64(c.Num))
	n.Quo(n, new(big.Int).Mul(big.NewInt(1e9), new(big.Int).SetUint64(c.Den)))
	return n.Uint64()
}

// refTimeOf is epoch + ceil(i×1e9×den/num) with math/big.
func refTimeOf(c Cadence, i uint64) int64 {
	n := new(big.Int).Mul(new(big.Int).SetUint64(i), big.NewInt(1e9))
	n.Mul(n, new(big.Int).SetUint64(c.Den))
	d := new(big.Int).SetUint64(c.Num)
	q, r := new(big.Int).QuoRem(n, d, new(big.Int))
	if r.Sign() != 0 {
		q.Add(q, big.NewInt(1))
	}
	return c.EpochNs + q.Int64()
}

func TestCadenceExactAfterDaysOfUptime(t *testing.T) {
	for _, rt := range rates {
		c := Cadence{EpochNs: epoch, Num: rt.num, Den: rt.den}
		for _, up := range uptimes {
			t.Run(fmt.Sprintf("%d_%d/%s", rt.num, rt.den, up), func(t *testing.T) {
				t0 := epoch + int64(up)
				prevIdx, prevTime := c.IndexAt(t0-1), c.TimeOf(c.IndexAt(t0-1))
				// 4 frame durations of nanosecond-spaced samples would be slow:
				// step by a prime number of ns, plus every slot boundary.
				for ns := t0; ns < t0+int64(4*time.Second*time.Duration(rt.den)/time.Duration(rt.num)); ns += 9973 {
					i := c.IndexAt(ns)
					if want := refIndexAt(c, ns); i != want {
						t.Fatalf("IndexAt(%d) = %d, math/big says %d", ns, i, want)
					}
					if i < prevIdx {
						t.Fatalf("IndexAt not monotonic: %d at %d after %d", i, ns, prevIdx)
					}
					prevIdx = i
					// ns lies in slot i: TimeOf(i) <= ns < TimeOf(i+1)
					if lo, hi := c.TimeOf(i), c.TimeOf(i+1); lo > ns || ns >= hi {
						t.Fatalf("time %d in slot %d, but the slot is [%d, %d)", ns, i, lo, hi)
					}
				}
				first := c.IndexAt(t0)
				for i := first; i < first+200; i++ {
					tm := c.TimeOf(i)
					if want := refTimeOf(c, i); tm != want {
						t.Fatalf("TimeOf(%d) = %d, math/big says %d", i, tm, want)
					}
					if got := c.IndexAt(tm); got != i {
						t.Fatalf("IndexAt(TimeOf(%d)) = %d", i, got)
					}
					if i > 0 && c.IndexAt(tm-1) != i-1 {
						t.Fatalf("IndexAt(TimeOf(%d)-1) = %d, want %d", i, c.IndexAt(tm-1), i-1)
					}
					if tm <= prevTime && i > first {
						t.Fatalf("TimeOf not strictly increasing at %d: %d after %d", i, tm, prevTime)
					}
					prevTime = tm
				}
			})
		}
	}
}

// The ring's own IndexAt/TimeOf are the exact Cadence ones (they were the
// overflowing int64 products).
func TestRingIndexAtExactAt1000Hours(t *testing.T) {
	for _, rt := range rates[:5] {
		g := Geometry{Width: 16, Height: 16, FPSNum: int(rt.num), FPSDen: int(rt.den)}
		r, err := Create(t.TempDir()+"/r", g, 4, epoch)
		if err != nil {
			t.Fatal(err)
		}
		c := Cadence{EpochNs: epoch, Num: rt.num, Den: rt.den}
		for _, up := range uptimes {
			ns := epoch + int64(up) + 7
			i := r.IndexAt(ns)
			if want := refIndexAt(c, ns); i != want {
				t.Errorf("%d/%d at %s: IndexAt %d, want %d", rt.num, rt.den, up, i, want)
			}
			if tm, want := r.TimeOf(i), refTimeOf(c, i); tm != want {
				t.Errorf("%d/%d at %s: TimeOf(%d) %d, want %d", rt.num, rt.den, up, i, tm, want)
			}
		}
		if err := r.Close(); err != nil {
			t.Error(err)
		}
	}
}

func TestCadenceSaturatesInsteadOfWrapping(t *testing.T) {
	c := Cadence{EpochNs: epoch, Num: 60000, Den: 1001}
	if got := c.TimeOf(^uint64(0)); got != 1<<63-1 {
		t.Fatalf("TimeOf(max) = %d, want MaxInt64", got)
	}
	if got := c.IndexAt(epoch - 5); got != 0 {
		t.Fatalf("IndexAt before the epoch = %d", got)
	}
}
