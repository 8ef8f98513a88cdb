package audio

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"onair/encoder/ring"
	"onair/encoder/wire"
	"onair/web/api"
)

// The tests drive the selector on a synthetic clock: frame i of both chains
// arrives 30 ms after its last sample is due (a device buffer and the AAC
// encoder's one-frame delay), and step runs at each arrival.

const frameNs = int64(time.Second) * 1024 / 48000

var (
	tone    = wire.AudioLevels{Peak: 0.5, RMS: 0.35}
	silence = wire.AudioLevels{}
)

type played struct {
	i     uint64
	chain string
}

type sink struct{ got []played }

func (k *sink) WriteAudio(i uint64, adts []byte) { k.got = append(k.got, played{i, string(adts)}) }

type rig struct {
	t   *testing.T
	s   *Selector
	k   *sink
	now int64
}

func newRig(t *testing.T, cfg Config) *rig {
	t.Helper()
	r := &rig{t: t, k: &sink{}}
	cfg.Clock = ring.Cadence{EpochNs: 0, Num: 48000, Den: 1024}
	s, err := New(cfg, r.k, func() int64 { return r.now }, nil, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	r.s = s
	s.Up(Main)
	s.Up(Backup)
	return r
}

// at moves the clock to when frame i arrives and runs the selector.
func (r *rig) at(i uint64) {
	r.now = max(r.now, r.s.cfg.Clock.TimeOf(i+1)+30*int64(time.Millisecond))
	r.step()
}

func (r *rig) step() {
	r.s.mu.Lock()
	r.s.step(r.now)
	out := r.s.out
	r.s.out = nil
	r.s.mu.Unlock()
	for _, f := range out {
		r.s.sink.WriteAudio(f.i, f.adts)
	}
}

func (r *rig) put(c Chain, i uint64, l wire.AudioLevels) { r.s.Put(c, i, l, []byte(c.String())) }

// feed delivers frames from..to-1: main's with the level mainAt gives (nil:
// main sends nothing), backup's with a tone.
func (r *rig) feed(from, to uint64, mainAt func(i uint64) *wire.AudioLevels) {
	for i := from; i < to; i++ {
		r.now = r.s.cfg.Clock.TimeOf(i+1) + 30*int64(time.Millisecond)
		if l := mainAt(i); l != nil {
			r.put(Main, i, *l)
		}
		r.put(Backup, i, tone)
		r.step()
	}
}

func always(l wire.AudioLevels) func(uint64) *wire.AudioLevels {
	return func(uint64) *wire.AudioLevels { return &l }
}

// continuous fails unless every index from the first played to the last
// went out exactly once, in order, and returns where each run of one chain
// started.
func (r *rig) continuous() []played {
	r.t.Helper()
	var runs []played
	for n, p := range r.k.got {
		if n > 0 && p.i != r.k.got[n-1].i+1 {
			r.t.Fatalf("index %d played after %d", p.i, r.k.got[n-1].i)
		}
		if n == 0 || p.chain != r.k.got[n-1].chain {
			runs = append(runs, p)
		}
	}
	return runs
}

func frames(d time.Duration) uint64 { return uint64(d.Nanoseconds()/frameNs) + 1 }

func TestMainSilentForSilenceAfterSwitchesToBackupThenReturnsAfterReturnAfter(t *testing.T) {
	r := newRig(t, Config{})
	quiet, back := uint64(300), uint64(900)
	r.feed(100, 2000, func(i uint64) *wire.AudioLevels {
		if i >= quiet && i < back {
			return &silence
		}
		return &tone
	})
	runs := r.continuous()
	if len(runs) != 3 || runs[0].chain != "main" || runs[1].chain != "backup" || runs[2].chain != "main" {
		t.Fatalf("runs %v: want main, backup, main", runs)
	}
	sw := runs[1].i - quiet
	if sw < frames(3*time.Second)-2 || sw > frames(3*time.Second)+2 {
		t.Errorf("backup took over %d frames into the silence, want %d (silence_after 3 s)", sw, frames(3*time.Second))
	}
	ret := runs[2].i - back
	if ret < frames(10*time.Second)-2 || ret > frames(10*time.Second)+2 {
		t.Errorf("main returned %d frames after it was healthy, want %d (return_after 10 s)", ret, frames(10*time.Second))
	}
	st := r.s.Status()
	if st.Switches != 2 || len(st.LastSwitches) != 2 || st.LastSwitches[0].Index != runs[1].i || st.Active != "main" || st.Missing != 0 {
		t.Errorf("status %+v", st)
	}
	t.Logf("to backup after %d frames of silence (%s), back %d frames after main recovered: %q",
		sw, time.Duration(int64(sw)*frameNs), ret, st.LastSwitches[0].Reason)
}

func TestFlappingMainFeedSwitchesAtMostOnceEachWay(t *testing.T) {
	r := newRig(t, Config{})
	sec := frames(time.Second)
	// 3.5 s silence at 300, then 20 s of one second on, one second off.
	flapFrom, flapTo := 300+frames(3500*time.Millisecond), 300+frames(23500*time.Millisecond)
	r.feed(100, flapTo+frames(12*time.Second), func(i uint64) *wire.AudioLevels {
		switch {
		case i >= 300 && i < flapFrom:
			return &silence
		case i >= flapFrom && i < flapTo && ((i-flapFrom)/sec)%2 == 1:
			return &silence
		}
		return &tone
	})
	runs := r.continuous()
	if len(runs) != 3 || runs[2].i < flapTo {
		t.Fatalf("runs %v: want main, backup until after the flapping (%d), main", runs, flapTo)
	}
	if st := r.s.Status(); st.Switches != 2 {
		t.Errorf("%d switches", st.Switches)
	}
}

func TestMainChainDyingSwitchesToBackupAtTheNextFrameWithoutAGap(t *testing.T) {
	r := newRig(t, Config{})
	r.feed(100, 400, always(tone))
	r.s.Down(Main)
	r.feed(400, 500, func(uint64) *wire.AudioLevels { return nil })
	runs := r.continuous()
	if len(runs) != 2 || runs[1] != (played{400, "backup"}) {
		t.Fatalf("runs %v: want backup from 400", runs)
	}
	if st := r.s.Status(); st.Chains[0].State != api.AudioChainDown || st.LastSwitches[0].Reason != "main down" {
		t.Errorf("status %+v", st)
	}
}

func TestStalledMainIsReplacedWithinLateAfterAndNoIndexIsLost(t *testing.T) {
	r := newRig(t, Config{LateAfter: 200 * time.Millisecond})
	r.feed(100, 400, always(tone))
	// main stops delivering, its process still up (SIGSTOP, a hung device)
	for i := uint64(400); i < 600; i++ {
		r.now = r.s.cfg.Clock.TimeOf(i+1) + 30*int64(time.Millisecond)
		r.put(Backup, i, tone)
		for range 4 { // the selector's timer, between arrivals
			r.now += frameNs / 4
			r.step()
		}
	}
	runs := r.continuous()
	if len(runs) != 2 || runs[1] != (played{400, "backup"}) {
		t.Fatalf("runs %v: want backup from 400", runs)
	}
	if st := r.s.Status(); st.Chains[0].State != api.AudioChainStalled || st.Missing != 0 {
		t.Errorf("status %+v", st)
	}
}

func TestOneMissingFrameOfMainIsFilledFromBackupWithoutASwitch(t *testing.T) {
	r := newRig(t, Config{})
	r.feed(100, 600, func(i uint64) *wire.AudioLevels {
		if i == 300 {
			return nil
		}
		return &tone
	})
	runs := r.continuous()
	if len(runs) != 3 || runs[1] != (played{300, "backup"}) || runs[2] != (played{301, "main"}) {
		t.Fatalf("runs %v: want index 300 alone from backup", runs)
	}
	if st := r.s.Status(); st.Switches != 0 || st.Filled != 1 || st.Active != "main" {
		t.Errorf("status %+v", st)
	}
}

func TestForcedBackupThatDiesFallsBackToMainAndReturnsWhenBackIsHealthy(t *testing.T) {
	r := newRig(t, Config{})
	r.feed(100, 300, always(tone))
	if err := r.s.SetMode(api.AudioBackup); err != nil {
		t.Fatal(err)
	}
	r.feed(300, 400, always(tone))
	r.s.Down(Backup)
	for i := uint64(400); i < 500; i++ { // backup gone, main goes on
		r.put(Main, i, tone)
		r.at(i)
	}
	r.s.Up(Backup)
	r.feed(500, 500+frames(11*time.Second), always(tone))
	runs := r.continuous()
	want := []played{{100, "main"}, {300, "backup"}, {400, "main"}, {500 + frames(10*time.Second) - 1, "backup"}}
	if len(runs) != 4 || runs[0] != want[0] || runs[1] != want[1] || runs[2] != want[2] || runs[3].i < want[3].i-2 || runs[3].i > want[3].i+2 {
		t.Fatalf("runs %v, want about %v", runs, want)
	}
	if st := r.s.Status(); st.Mode != api.AudioBackup || st.Switches != 3 {
		t.Errorf("status %+v", st)
	}
}

func TestForcedMainStaysOnMainThroughSilence(t *testing.T) {
	r := newRig(t, Config{Mode: api.AudioMain})
	r.feed(100, 800, func(i uint64) *wire.AudioLevels {
		if i >= 200 {
			return &silence
		}
		return &tone
	})
	if runs := r.continuous(); len(runs) != 1 || runs[0].chain != "main" {
		t.Fatalf("runs %v", runs)
	}
	if err := r.s.SetMode(api.AudioAuto); err != nil {
		t.Fatal(err)
	}
	r.feed(800, 900, always(silence))
	if runs := r.continuous(); len(runs) != 2 || runs[1] != (played{800, "backup"}) {
		t.Fatalf("after auto: runs %v (main silent 30 s: backup at once)", runs)
	}
}

func TestUnknownModeIsRefusedAndTheModeStays(t *testing.T) {
	r := newRig(t, Config{})
	if err := r.s.SetMode("desk"); err == nil || r.s.Status().Mode != api.AudioAuto {
		t.Fatalf("err %v, mode %s", err, r.s.Status().Mode)
	}
}

func TestBackupStartingFirstIsNotASwitchAndMainTakesOverAtOnce(t *testing.T) {
	r := newRig(t, Config{})
	for i := uint64(100); i < 110; i++ { // main's process is a few frames late
		r.put(Backup, i, tone)
		r.at(i)
	}
	r.feed(110, 300, always(tone))
	runs := r.continuous()
	if len(runs) != 2 || runs[0] != (played{100, "backup"}) || runs[1].i > 111 || runs[1].chain != "main" {
		t.Fatalf("runs %v", runs)
	}
	if st := r.s.Status(); st.Switches != 0 {
		t.Errorf("the first choice counted as %d switches", st.Switches)
	}
}

func TestBothChainsGoneSkipsIndexesAndResumesOnTheClock(t *testing.T) {
	r := newRig(t, Config{})
	r.feed(100, 200, always(tone))
	r.s.Down(Main)
	r.s.Down(Backup)
	r.now += 60 * int64(time.Second) // a minute without audio
	r.step()
	resume := r.s.cfg.Clock.IndexAt(r.now)
	r.s.Up(Backup)
	r.feed(resume, resume+50, func(uint64) *wire.AudioLevels { return nil })
	got := r.k.got
	if last := got[len(got)-1]; last.i != resume+49 || last.chain != "backup" {
		t.Fatalf("last played %v, want %d from backup", last, resume+49)
	}
	st := r.s.Status()
	if st.Missing < resume-200-10 || st.Missing > resume-200 {
		t.Errorf("missing %d, want about %d", st.Missing, resume-200)
	}
}

// No sequence of puts, ups, downs, mode changes and clock steps may make
// the selector play an index twice, go backwards, hold more than maxAhead
// frames per chain or panic.
func TestRandomChainBehaviourNeverPlaysAnIndexTwice(t *testing.T) {
	for seed := range uint64(50) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(seed, 7))
			r := newRig(t, Config{SilenceAfter: 100 * time.Millisecond, ReturnAfter: 300 * time.Millisecond})
			next := [2]uint64{1000, 1000}
			for range 3000 {
				c := Chain(rnd.IntN(2))
				switch rnd.IntN(20) {
				case 0:
					r.s.Down(c)
				case 1:
					r.s.Up(c)
				case 2:
					_ = r.s.SetMode([]api.AudioMode{api.AudioAuto, api.AudioMain, api.AudioBackup}[rnd.IntN(3)])
				case 3:
					next[c] += uint64(rnd.IntN(200)) // a jump ahead
				case 4:
					next[c] -= min(next[c], uint64(rnd.IntN(5))) // a replay
				default:
					l := tone
					if rnd.IntN(3) == 0 {
						l = silence
					}
					r.put(c, next[c], l)
					next[c]++
				}
				r.now += int64(rnd.IntN(int(3 * frameNs)))
				r.step()
				for c := range r.s.chains {
					if n := len(r.s.chains[c].frame); n > maxAhead {
						t.Fatalf("%d frames buffered", n)
					}
				}
			}
			for n := 1; n < len(r.k.got); n++ {
				if r.k.got[n].i <= r.k.got[n-1].i {
					t.Fatalf("index %d after %d", r.k.got[n].i, r.k.got[n-1].i)
				}
			}
		})
	}
}

// config apply of the audio thresholds: silence_after shortened live takes
// effect for the next silence, with no frame lost; a bad value is refused
// and changes nothing.
func TestThresholdsChangedLiveApplyToTheNextSilence(t *testing.T) {
	r := newRig(t, Config{})
	r.feed(100, 200, always(tone))
	if err := r.s.SetThresholds(-60, time.Second, 2*time.Second, 250*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := r.s.SetThresholds(5, time.Second, time.Second, time.Second); err == nil {
		t.Fatal("a silence threshold above 0 dBFS was accepted")
	}
	quiet, back := uint64(300), uint64(600)
	r.feed(200, 1000, func(i uint64) *wire.AudioLevels {
		if i >= quiet && i < back {
			return &silence
		}
		return &tone
	})
	runs := r.continuous()
	if len(runs) != 3 || runs[1].chain != "backup" {
		t.Fatalf("runs %v: want main, backup, main", runs)
	}
	if sw := runs[1].i - quiet; sw < frames(time.Second)-2 || sw > frames(time.Second)+2 {
		t.Errorf("backup took over %d frames into the silence, want %d (silence_after now 1 s)", sw, frames(time.Second))
	}
	if ret := runs[2].i - back; ret < frames(2*time.Second)-2 || ret > frames(2*time.Second)+2 {
		t.Errorf("main returned after %d frames, want %d (return_after now 2 s)", ret, frames(2*time.Second))
	}
}
