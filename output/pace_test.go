package output

import (
	"testing"
	"time"
)

// The default pace must spread each 120 KB IDR of a ~5 Mbit/s stream (gosrt
// loses packets of unspaced bursts, FACTS.md §3) and still never let the
// queue grow: every frame is sent before the next IDR arrives, within a few
// frame intervals, in batches of a burst (one wake-up each, not one per
// chunk). Driven on synthetic time through the same pacer, rate
// measure and pace function Run uses, so no timing is involved. (The loss
// this avoids was measured on loopback once; it is not a unit test's job.)
func TestDefaultPaceSpreadsEachIDRAndTheQueueNeverGrows(t *testing.T) {
	s := &SRT{pace: defaultPace}
	prod := newProducer()
	start := time.Unix(0, 0)
	p := newPacer(start)
	const frames = 150 // 5 s at 30 fps, IDR every 30 frames
	interval := time.Second / 30

	type queued struct {
		frame int
		at    time.Time
		left  int
	}
	var fifo []queued
	backlog := 0
	now := start
	var maxDelay, idrSpread time.Duration
	var maxRate float64
	type send struct {
		at time.Time
		n  int
	}
	var sends []send
	wakes := 0 // loop turns: a send, or a wait for the pace
	for i := 0; i < frames; i++ {
		arrive := start.Add(time.Duration(i) * interval)
		now = maxTime(now, arrive)
		f := prod.frame(i)
		if i%30 == 0 && backlog != 0 {
			t.Fatalf("frame %d (IDR): %d bytes still queued from earlier frames", i, backlog)
		}
		s.measureIn(arrive, uint64(len(f)))
		fifo = append(fifo, queued{frame: i, at: arrive, left: len(f)})
		backlog += len(f)

		next := arrive.Add(interval)
		for backlog > 0 && now.Before(next) {
			n := batch(backlog)
			rate := s.pace(s.inBps)
			maxRate = max(maxRate, rate)
			if d := p.reserve(now, n, rate); d > 0 {
				p.unreserve(n)
				now = minTime(now.Add(d), next)
				wakes++
				continue
			}
			backlog -= n
			sends = append(sends, send{now, n})
			wakes++
			for n > 0 {
				take := min(n, fifo[0].left)
				fifo[0].left -= take
				n -= take
				if fifo[0].left == 0 {
					d := now.Sub(fifo[0].at)
					maxDelay = max(maxDelay, d)
					if fifo[0].frame == 30 {
						idrSpread = d // the second IDR, paced on a measured rate
					}
					fifo = fifo[1:]
				}
			}
		}
	}
	if backlog != 0 {
		t.Fatalf("%d bytes never sent", backlog)
	}
	// The pace the doc promises: twice the measured input, at least the floor.
	want := max(2*s.inBps, minPaceBps)
	if got := defaultPace(s.inBps); got != want {
		t.Fatalf("pace %.0f bit/s for an input of %.0f bit/s, want %.0f", got, s.inBps, want)
	}
	// No 10 ms window carries more than the burst plus 10 ms at the highest
	// pace in effect (the rate is measured over 1 s windows).
	const window = 10 * time.Millisecond
	limit := pacerBurst + int(maxRate/8*window.Seconds())
	for lo, hi, sum := 0, 0, 0; hi < len(sends); hi++ {
		sum += sends[hi].n
		for sends[hi].at.Sub(sends[lo].at) >= window {
			sum -= sends[lo].n
			lo++
		}
		if sum > limit {
			t.Fatalf("%d bytes left within %s at %s: a burst above %d", sum, window, sends[hi].at.Sub(start), limit)
		}
	}
	// 120 KB at that pace, less the burst, takes at least ~90 ms.
	if minSpread := time.Duration(float64(120_000-pacerBurst) * 8 / want * float64(time.Second)); idrSpread < minSpread*9/10 {
		t.Errorf("IDR sent in %s, want it spread over ≥ %s", idrSpread, minSpread)
	}
	// The loop turns once per burst, not once per chunk: a 5 Mbit/s
	// stream is ~480 chunks a second, which paced one by one woke the
	// sender ~500 times a second (issue 14). A turn is a send or a wait.
	var bytes int
	for _, sd := range sends {
		bytes += sd.n
	}
	if limit := 2 * (bytes/pacerBurst + frames); wakes > limit {
		t.Errorf("%d loop turns for %d bytes in %d frames, want ≤ %d (two per burst and per frame's tail)", wakes, bytes, frames, limit)
	}
	if maxDelay > 4*interval {
		t.Errorf("a frame waited %s in the queue: the pace lets it grow past %s", maxDelay, 4*interval)
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
