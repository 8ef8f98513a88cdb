package pulselab

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// sinkName is what a sink may be called: a plain ALSA PCM name.
var sinkName = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,31}$`)

// reservedNames are alsa-lib's own PCMs (and the lab's void), which a
// sink's PCM must not shadow.
var reservedNames = []string{"default", "null", "pulse", "hw", "plughw", "plug", "sysdefault", "dmix", "dsnoop", "jack", "oss", voidSink}

// Sink is a null sink of the lab: a sound card whose capture side (the
// sink's monitor) delivers what is played into it, on the server's clock.
type Sink struct {
	// Name is the sink's name, also its ALSA PCM name.
	Name string

	lab    *Lab
	module int // index of its module-null-sink
	index  int // index of the sink
	// keeper, feeder and removed are guarded by lab.mu.
	keeper  *proc
	feeder  *proc
	removed bool
}

// AddSink loads a null sink called name (48 kHz stereo) and adds pcm.name
// (type pulse, capturing name.monitor) to the lab's .asoundrc. A removed
// sink's name may be added again: the card is plugged back in.
func (l *Lab) AddSink(name string) (*Sink, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, ErrClosed
	}
	if !sinkName.MatchString(name) || slices.Contains(reservedNames, name) {
		return nil, fmt.Errorf("%w: %q (a letter, then up to 31 letters, digits, _ or -; not one of %v)", ErrBadName, name, reservedNames)
	}
	if l.sinks[name] != nil {
		return nil, fmt.Errorf("%w: %q already exists", ErrBadName, name)
	}
	out, err := l.Pactl("load-module", "module-null-sink", "sink_name="+name,
		"rate="+strconv.Itoa(SampleRate), "channels="+strconv.Itoa(Channels))
	if err != nil {
		return nil, err
	}
	s := &Sink{Name: name, lab: l}
	if s.module, err = parseModuleIndex([]byte(out)); err != nil {
		return nil, err
	}
	if s.index, err = l.deviceIndex("sinks", name); err != nil {
		_, uerr := l.Pactl("unload-module", strconv.Itoa(s.module))
		return nil, errors.Join(err, uerr)
	}
	if err := s.startKeeper(); err != nil {
		_, uerr := l.Pactl("unload-module", strconv.Itoa(s.module))
		return nil, errors.Join(err, uerr)
	}
	if !slices.Contains(l.pcms, name) {
		l.pcms = append(l.pcms, name)
		slices.Sort(l.pcms)
		if err := l.writeAsoundrc(); err != nil {
			return nil, err
		}
	}
	l.sinks[name] = s
	l.log.Debug("sink added", zap.String("sink", name), zap.Int("module", s.module), zap.Int("index", s.index))
	return s, nil
}

// keeperLatencyMs is the latency the keeper asks of the sink's monitor.
const keeperLatencyMs = 10

// startKeeper starts the sink's keeper: a parec reading its monitor at
// 10 ms latency, output discarded, for the sink's whole life. A null sink
// nobody asks for low latency renders in blocks of 2 s and only looks at
// a new stream's request when it wakes: without the keeper every capture
// (ffmpeg -f alsa or -f pulse) got its first byte about 2 s after it
// opened (measured 1.96 to 2.06 s); with it, 0.10 to 0.21 s, ffmpeg's own
// start, as from a sound card. Suspending and resuming the sink once the
// keeper is attached wakes it at once (the keeper's own first byte came
// after 2 s without this, 0.15 s with it). lab.mu is held.
func (s *Sink) startKeeper() error {
	l := s.lab
	fw := newFirstWrite()
	p, err := startProc(l.Env(), fw, "parec", "--server=unix:"+l.Socket, "--device="+s.Source(),
		"--latency-msec="+strconv.Itoa(keeperLatencyMs), "--raw", "--client-name=pulselab-keeper-"+s.Name)
	if err != nil {
		return err
	}
	s.keeper = p
	stop := func(err error) error { s.keeper = nil; return errors.Join(err, p.stop(0)) }
	mon, err := l.deviceIndex("sources", s.Source())
	if err != nil {
		return stop(err)
	}
	if err := waitStream(l, "source-outputs", p, mon, true); err != nil {
		return stop(err)
	}
	for _, v := range []string{"1", "0"} {
		if _, err := l.Pactl("suspend-sink", s.Name, v); err != nil {
			return stop(err)
		}
	}
	select {
	case <-fw.seen:
		return nil
	case <-p.done:
		return stop(fmt.Errorf("%w: keeper of %s exited: %w: %s", ErrNotReady, s.Name, p.err, p.out))
	case <-time.After(cmdTimeout):
		return stop(fmt.Errorf("%w: keeper of %s read nothing in %v", ErrNotReady, s.Name, cmdTimeout))
	}
}

// Source is the sink's monitor, the pulse source a chain reads as
// "pulse:"+Source() (ffmpeg -f pulse -i Source()).
func (s *Sink) Source() string { return s.Name + ".monitor" }

// ALSADevice is the sink's ALSA PCM, which a chain reads as
// "alsa:"+ALSADevice() (ffmpeg -f alsa -i ALSADevice()) with the lab's
// HOME (or ALSA_CONFIG_PATH).
func (s *Sink) ALSADevice() string { return s.Name }

// check returns the error for a sink that can no longer be used; lab.mu is held.
func (s *Sink) check() error {
	switch {
	case s.lab.closed:
		return ErrClosed
	case s.removed:
		return fmt.Errorf("%w: %q", ErrRemoved, s.Name)
	}
	return nil
}

// Feed plays a sine of freqHz (lavfi's, 1/8 of full scale, upmixed from
// mono to stereo at -3 dB: -21 dBFS peak, -24 dBFS RMS per channel) into
// the sink through an ffmpeg child, which the server paces, in place
// of what was playing. It returns once the server has the feeder's stream
// on this sink (bounded by 5 s).
func (s *Sink) Feed(freqHz int) error {
	l := s.lab
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	if freqHz <= 0 || freqHz >= SampleRate/2 {
		return fmt.Errorf("pulselab: feed %s: frequency %d Hz outside (0, %d)", s.Name, freqHz, SampleRate/2)
	}
	if err := s.stopFeeder(); err != nil {
		return err
	}
	p, err := startProc(l.Env(), nil, "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error",
		"-f", "lavfi", "-i", fmt.Sprintf("sine=frequency=%d:sample_rate=%d", freqHz, SampleRate),
		"-ac", strconv.Itoa(Channels), "-f", "pulse", "-server", "unix:"+l.Socket, "-device", s.Name,
		"pulselab-"+s.Name)
	if err != nil {
		return err
	}
	s.feeder = p
	if err := waitStream(l, "sink-inputs", p, s.index, true); err != nil {
		return errors.Join(err, s.stopFeeder())
	}
	l.log.Debug("feeding", zap.String("sink", s.Name), zap.Int("hz", freqHz), zap.Int("pid", p.pid()))
	return nil
}

// StopFeed kills the feeder (by PID) and returns once the server has let
// go of its stream: from then on the sink plays nothing. Without a feeder
// it does nothing.
func (s *Sink) StopFeed() error {
	l := s.lab
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	return s.stopFeeder()
}

// stopFeeder kills the feeder and waits for its stream to go; lab.mu is held.
func (s *Sink) stopFeeder() error {
	if s.feeder == nil {
		return nil
	}
	err := s.feeder.stop(0)
	if err == nil && !s.lab.closed {
		err = waitStream(s.lab, "sink-inputs", s.feeder, s.index, false)
	}
	s.feeder = nil
	return err
}

// waitStream waits (bounded by 5 s) until the server has (present) or no
// longer has a stream ("sink-inputs" or "source-outputs") of p's PID on
// device dev. The server has no event pactl could wait on for this, so it
// asks every 20 ms.
func waitStream(l *Lab, what string, p *proc, dev int, present bool) error {
	deadline := time.Now().Add(cmdTimeout)
	for {
		ss, err := l.streams(what)
		if err != nil {
			return err
		}
		found := slices.ContainsFunc(ss, func(st stream) bool { return st.PID == p.pid() && st.Device == dev })
		if found == present {
			return nil
		}
		if present && p.exited() {
			return fmt.Errorf("%w: %s exited: %w: %s", ErrNotReady, p.cmd.Args[0], p.err, p.out)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: stream of %s pid %d on #%d present=%v after %v", ErrNotReady, p.cmd.Args[0], p.pid(), dev, found, cmdTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Mute mutes (true) or unmutes the sink: a muted sink's monitor delivers
// digital silence on the same clock.
func (s *Sink) Mute(on bool) error {
	l := s.lab
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	v := "0"
	if on {
		v = "1"
	}
	_, err := l.Pactl("set-sink-mute", s.Name, v)
	return err
}

// stopKeeper kills the keeper; lab.mu is held.
func (s *Sink) stopKeeper() error {
	if s.keeper == nil {
		return nil
	}
	err := s.keeper.stop(0)
	s.keeper = nil
	return err
}

// Remove unplugs the card: it kills the feeder and the keeper, unloads the sink's module
// and kills the streams PulseAudio rescued from it onto the lab's void
// sink, so a capture of the sink fails as the reader of an unplugged ALSA
// card does, instead of going on with the default source's audio. The PCM
// stays in .asoundrc (the box's configuration still names the device):
// opening it fails until a sink of that name is added again.
func (s *Sink) Remove() error {
	l := s.lab
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := s.check(); err != nil {
		return err
	}
	if err := errors.Join(s.stopFeeder(), s.stopKeeper()); err != nil {
		return err
	}
	if err := s.unload(); err != nil {
		return err
	}
	return l.killRescued()
}

// unload unloads the sink's module only, leaving the streams PulseAudio
// rescues from it on the void; lab.mu is held.
func (s *Sink) unload() error {
	if _, err := s.lab.Pactl("unload-module", strconv.Itoa(s.module)); err != nil {
		return err
	}
	s.removed = true
	delete(s.lab.sinks, s.Name)
	s.lab.log.Debug("sink removed", zap.String("sink", s.Name))
	return nil
}
