// Package daemon is onaird: it composes the frame ring and cadence keeper, the
// supervised onair-av children (capture, encoders A and B, audio), the hitless
// switch, the MPEG-TS mux, the SRT output and the local API, and owns their
// lifetimes. It is pure Go (CGO_ENABLED=0): every libav call happens in a child,
// so a codec crash can never take the output path down.
//
// Not for: encoding (encoder/av), the switch logic (encoder) or protocol code
// (output); this package only wires them and reports their state.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"
	"golang.org/x/sync/errgroup"

	"onair/encoder"
	"onair/encoder/ring"
	"onair/encoder/tsmux"
	"onair/encoder/wire"
	"onair/internal/config"
	"onair/internal/version"
	"onair/output"
	"onair/output/srturl"
	"onair/supervisor"
	"onair/web"
)

// ptsOffset shifts every timestamp of the session so that PCR (which runs a
// little behind DTS) never goes below zero at the start.
const ptsOffset = 10 * 90000

// audioRate is the sample rate of every audio chain (AAC-LC, 48 kHz).
const audioRate = 48000

// Daemon is a running onaird.
type Daemon struct {
	cfg     config.Config
	log     *zap.Logger
	av      string
	target  string // output.url with the passphrase redacted, for logs
	started time.Time

	ring   *ring.Ring
	keeper *encoder.Keeper
	sw     *encoder.Switch
	out    *output.SRT
	mux    *tsmux.Muxer
	api    *web.Server

	children []*child
	encoders []*child // the children in switch order (A, B)

	items     chan item
	readers   sync.WaitGroup // one per child connection; d.items closes after them
	outW      sessionWriter  // what the muxer writes to
	bitrate   atomic.Int64   // current video bitrate (kbps): config, then runtime changes
	lat       latency
	audio     audioStats
	muxErrors atomic.Uint64
	skewMax   atomic.Uint64 // largest distance between the locked twins' last indexes, in frames
	relockMu  sync.Mutex
}

// child is one supervised onair-av process and its current connection.
type child struct {
	name, role string
	slot       int // encoder slot in the switch, -1 for others
	sup        *supervisor.Child

	lastVideo atomic.Uint64 // last video index + 1 from the current instance (0: none yet)

	mu      sync.Mutex
	gen     uint64       // instance number, counted by attach
	pending *os.File     // parent end of the socketpair for the instance being started
	cmd     *wire.Writer // commands to the current instance
	hello   *wire.Hello
	prog    wire.Progress
}

// item is one message for the mux loop: a media packet, or an encoder's
// start (hello) or end (its connection closed). Start and end travel in the
// same channel as the packets so the switch sees them in the order they
// happened: an instance's packets are never offered after its end, nor the
// previous instance's after a new start.
type item struct {
	from *child
	gen  uint64 // the instance of from that sent it
	ev   event
	h    wire.Header // for evStarted, h.Index is the start index
	data []byte
}

type event uint8

const (
	evPacket event = iota
	evStarted
	evEnded
)

// New checks the configuration against this machine and builds every
// component. Nothing runs until Run.
func New(cfg config.Config, log *zap.Logger) (*Daemon, error) {
	av, err := findAV(cfg.AVBinary)
	if err != nil {
		return nil, err
	}
	target, err := srturl.Parse(cfg.Output.URL)
	if err != nil {
		return nil, fmt.Errorf("output.url: %w", err)
	}
	d := &Daemon{cfg: cfg, log: log, av: av, target: target.String(), items: make(chan item, 512)}
	d.bitrate.Store(int64(cfg.Video.BitrateKbps))
	names := []string{"encoder-a"}
	if cfg.Video.TwinsEnabled() {
		names = append(names, "encoder-b")
	}
	if d.sw, err = encoder.NewSwitch(names, log.Named("switch")); err != nil {
		return nil, err
	}
	if d.out, err = output.New(output.Config{Target: target}, log.Named("output"), clockwork.NewRealClock()); err != nil {
		return nil, fmt.Errorf("output.url: %w", err)
	}
	d.outW.out = d.out
	if d.mux, err = tsmux.New(tsmux.Config{ServiceName: "onair", Provider: "onair"}, &d.outW); err != nil {
		return nil, err
	}
	if d.api, err = web.New(web.Config{Listen: cfg.API.Listen, Socket: cfg.API.Socket}, d, log.Named("api")); err != nil {
		return nil, err
	}
	return d, nil
}

// findAV locates the onair-av binary: the configured path, next to this
// executable, then $PATH.
func findAV(configured string) (string, error) {
	if configured != "" {
		if _, err := os.Stat(configured); err != nil {
			return "", fmt.Errorf("av_binary: %w", err)
		}
		return configured, nil
	}
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "onair-av")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("onair-av")
	if err != nil {
		return "", fmt.Errorf("av_binary: onair-av not found next to onaird or in $PATH: %w", err)
	}
	return p, nil
}

// Run runs the box until ctx is done, then stops every child and drains the output.
func (d *Daemon) Run(ctx context.Context) error {
	d.started = time.Now()
	v := d.cfg.Video
	if err := os.MkdirAll(d.cfg.RuntimeDir, 0o750); err != nil {
		return fmt.Errorf("runtime_dir: %w", err)
	}
	geo := ring.Geometry{Width: v.Width, Height: v.Height, FPSNum: v.FPS.Num, FPSDen: v.FPS.Den}
	r, err := ring.Create(filepath.Join(d.cfg.RuntimeDir, "video.ring"), geo, v.RingSlots, ring.MonotonicNs())
	if err != nil {
		return err
	}
	d.ring = r
	defer func() { r.Close(); os.Remove(r.Path()) }()
	if d.keeper, err = encoder.NewKeeper(r, encoder.KeeperConfig{LateFrames: v.LateFrames, SlateAfter: v.SlateAfter.D()}, d.log.Named("keeper")); err != nil {
		return err
	}
	if err := d.buildChildren(); err != nil {
		return err
	}

	g, gctx := errgroup.WithContext(ctx)
	// The output outlives the children so the tail of the stream is drained.
	outCtx, stopOut := context.WithCancel(context.Background())
	outDone := make(chan error, 1)
	go func() { outDone <- d.out.Run(outCtx) }()

	g.Go(func() error { return d.keeper.Run(gctx) })
	g.Go(func() error { return d.api.Run(gctx) })
	muxDone := make(chan struct{})
	go func() { defer close(muxDone); d.muxLoop() }()
	var kids sync.WaitGroup
	for _, c := range d.children {
		kids.Add(1)
		g.Go(func() error { defer kids.Done(); return c.sup.Run(gctx) })
	}
	if len(d.encoders) == 2 {
		g.Go(func() error { d.relockLoop(gctx); return nil })
	}
	g.Go(func() error { d.watchdog(gctx); return nil })
	g.Go(func() error { d.healthLoop(gctx); return nil })
	g.Go(func() error { // READY=1 only once the API serves
		select {
		case <-d.api.Ready():
			_, _ = sddaemon.SdNotify(false, sddaemon.SdNotifyReady)
		case <-gctx.Done():
		}
		return nil
	})
	d.log.Info("onaird running", zap.String("version", version.Version), zap.String("output", d.target),
		zap.Bool("twins", len(d.encoders) == 2), zap.String("av", d.av))

	err = g.Wait()
	_, _ = sddaemon.SdNotify(false, sddaemon.SdNotifyStopping)
	kids.Wait()
	d.readers.Wait() // every child is gone, so every connection reaches EOF
	close(d.items)
	<-muxDone
	stopOut()
	if oerr := <-outDone; oerr != nil && !errors.Is(oerr, context.Canceled) && err == nil {
		err = oerr
	}
	if errors.Is(err, context.Canceled) {
		err = nil // a requested stop is a clean stop
	}
	d.log.Info("onaird stopped")
	return err
}

func (d *Daemon) buildChildren() error {
	v := d.cfg.Video
	backoff := supervisor.Backoff{Initial: 200 * time.Millisecond, Max: d.cfg.Supervisor.BackoffMax.D(), ResetAfter: 60 * time.Second}
	add := func(name, role string, slot int, stall time.Duration, args ...string) error {
		c := &child{name: name, role: role, slot: slot}
		spec := supervisor.Spec{
			Name: name, Role: role, Path: d.av,
			Args:         append([]string{"-role", role, "-name", name, "-console-log"}, args...),
			Grace:        d.cfg.Supervisor.Grace.D(),
			StallTimeout: stall,
			Backoff:      backoff,
			ExtraFiles:   func() ([]*os.File, func(), error) { return d.socketpair(c) },
			OnStart:      func(inst supervisor.Instance) { d.attach(c, inst) },
			OnExit:       func(inst supervisor.Instance, err error) { d.detach(c, inst, err) },
		}
		sup, err := supervisor.New(spec, d.log.Named("supervisor"), clockwork.NewRealClock())
		if err != nil {
			return fmt.Errorf("daemon: child %s: %w", name, err)
		}
		c.sup = sup
		d.children = append(d.children, c)
		if slot >= 0 {
			d.encoders = append(d.encoders, c)
		}
		return nil
	}
	rp := d.ring.Path()
	if err := add("capture", "capture", -1, v.StallAfter.D(), "-source", v.Source, "-ring", rp); err != nil {
		return err
	}
	encArgs := []string{"-ring", rp, "-bitrate-kbps", fmt.Sprint(v.BitrateKbps), "-gop", fmt.Sprint(v.GOP), "-preset", v.Preset}
	if v.Relock == "gop" {
		encArgs = append(encArgs, "-reset-every-gop")
	}
	if err := add("encoder-a", "encode", 0, v.StallAfter.D(), encArgs...); err != nil {
		return err
	}
	if v.TwinsEnabled() {
		if err := add("encoder-b", "encode", 1, v.StallAfter.D(), encArgs...); err != nil {
			return err
		}
	}
	if s := d.cfg.Audio.Main.Source; s != "" {
		if err := add("audio-main", "audio", -1, time.Second, "-source", s, "-epoch-ns", fmt.Sprint(d.ring.EpochNs()),
			"-bitrate-kbps", fmt.Sprint(d.cfg.Audio.BitrateKbps)); err != nil {
			return err
		}
	}
	return nil
}

// socketpair makes the wire connection for the next instance of c: the child
// gets one end as fd 3, onaird keeps the other until the instance exits.
func (d *Daemon) socketpair(c *child) ([]*os.File, func(), error) {
	parent, kid, err := socketPair(c.name)
	if err != nil {
		return nil, nil, err
	}
	c.mu.Lock()
	if c.pending != nil {
		c.pending.Close()
	}
	c.pending = parent
	c.mu.Unlock()
	return []*os.File{kid}, func() { kid.Close() }, nil
}

// attach starts reading the instance that just started.
func (d *Daemon) attach(c *child, inst supervisor.Instance) {
	c.mu.Lock()
	conn := c.pending
	c.pending = nil
	c.gen++
	gen := c.gen
	c.cmd = wire.NewWriter(conn)
	c.hello = nil
	c.lastVideo.Store(0)
	c.mu.Unlock()
	if conn == nil {
		d.log.Error("[unexpected] child started without a connection", zap.String("child", c.name))
		return
	}
	d.readers.Add(1)
	go func() { defer d.readers.Done(); d.read(c, gen, conn) }()
}

// detach records that the instance is gone. The switch learns it from the
// end of the instance's connection, in order with its packets (read).
func (d *Daemon) detach(c *child, _ supervisor.Instance, _ error) {
	c.mu.Lock()
	c.cmd = nil
	c.hello = nil
	c.mu.Unlock()
}

// read pumps one instance's messages into the mux loop until the child closes.
func (d *Daemon) read(c *child, gen uint64, conn *os.File) {
	defer conn.Close()
	if c.slot >= 0 {
		// The process has exited (or closed fd 3, which it does only by
		// exiting): after its last packet, the switch counts it down.
		defer func() { d.items <- item{from: c, gen: gen, ev: evEnded} }()
	}
	r := wire.NewReader(conn)
	for {
		h, p, err := r.Read()
		if err != nil {
			if !errors.Is(err, os.ErrClosed) && !errors.Is(err, io.EOF) {
				d.log.Debug("child connection closed", zap.String("child", c.name), zap.Error(err))
			}
			if errors.Is(err, wire.ErrFraming) {
				c.sup.Restart("framing error: " + err.Error())
			}
			return
		}
		c.sup.Progress()
		switch h.Kind {
		case wire.KindHello:
			var hello wire.Hello
			if err := unmarshal(p, &hello); err != nil {
				d.log.Warn("bad hello", zap.String("child", c.name), zap.Error(err))
				continue
			}
			c.mu.Lock()
			c.hello = &hello
			c.mu.Unlock()
			if c.slot >= 0 {
				d.items <- item{from: c, gen: gen, ev: evStarted, h: wire.Header{Index: hello.StartIndex}}
				d.catchUp(c, hello.StartIndex)
			}
		case wire.KindProgress:
			var pr wire.Progress
			if unmarshal(p, &pr) == nil {
				c.mu.Lock()
				c.prog = pr
				c.mu.Unlock()
			}
		case wire.KindVideo, wire.KindAudio:
			if h.Kind == wire.KindVideo {
				c.lastVideo.Store(h.Index + 1)
			}
			d.items <- item{from: c, gen: gen, h: h, data: p}
		default:
			d.log.Warn("unexpected message from child", zap.String("child", c.name), zap.Stringer("kind", h.Kind))
		}
	}
}

// muxLoop is the only goroutine that touches the muxer.
func (d *Daemon) muxLoop() {
	waitKey := true
	var lastAudio uint64
	haveAudio := false
	current := make([]uint64, len(d.encoders)) // per encoder slot: the instance the switch follows
	for it := range d.items {
		if s := d.out.Session(); s != d.outW.session {
			// A new SRT connection: its stream starts with tables and an
			// IDR. Anything muxed for the previous one is refused by the
			// output (WriteSession), even if the reconnect happens mid-write.
			d.outW.session = s
			d.mux.Reset()
			waitKey = true
		}
		if slot := it.from.slot; slot >= 0 {
			// Channel order is per instance; across instances an old one's
			// tail could in theory queue behind the new one's start.
			switch {
			case it.ev == evStarted:
				current[slot] = it.gen
				d.sw.EncoderStarted(slot, it.h.Index)
				continue
			case it.gen != current[slot]:
				continue // an earlier instance's packet or end: stale
			case it.ev == evEnded:
				d.sw.EncoderDown(slot)
				continue
			}
		}
		switch it.h.Kind {
		case wire.KindVideo:
			p := encoder.Packet{From: it.from.slot, Index: it.h.Index, PTS: it.h.PTS, Key: it.h.Flags&wire.FlagKey != 0,
				CaptureNs: it.h.CaptureNs, Data: it.data}
			if !d.sw.Offer(p) {
				continue
			}
			if waitKey && !p.Key {
				continue
			}
			waitKey = false
			pts := wire.VideoPTS(p.Index, d.cfg.Video.FPS.Num, d.cfg.Video.FPS.Den) + ptsOffset
			if err := d.mux.WriteVideo(pts, p.Key, p.Data); err != nil {
				d.muxErrors.Add(1)
				d.log.Warn("mux video", zap.Uint64("index", p.Index), zap.Error(err))
				continue
			}
			d.lat.add(time.Duration(ring.MonotonicNs() - p.CaptureNs))
		case wire.KindAudio:
			if haveAudio && it.h.Index <= lastAudio {
				continue
			}
			if haveAudio && it.h.Index > lastAudio+1 {
				d.audio.gaps.Add(it.h.Index - lastAudio - 1)
			}
			haveAudio, lastAudio = true, it.h.Index
			pts := wire.AudioPTS(it.h.Index, audioRate) + ptsOffset
			if err := d.mux.WriteAudio(pts, it.data); err != nil {
				d.muxErrors.Add(1)
				d.log.Warn("mux audio", zap.Uint64("index", it.h.Index), zap.Error(err))
				continue
			}
			d.audio.frames.Add(1)
			d.audio.last.Store(it.h.Index)
		}
	}
}

// relockLoop re-locks the twins whenever both run but their streams differ
// (at start, and after either restarted). With video.relock "gop" every GOP is
// a fresh codec session in both encoders, so they are identical from the
// first GOP boundary both have reached: the survivor's stream is never
// touched. With "command", both are told to reset at the same GOP boundary,
// far enough ahead for the command to arrive first.
func (d *Daemon) relockLoop(ctx context.Context) {
	gop := uint64(d.cfg.Video.GOP)
	every(ctx, 20*time.Millisecond, func() {
		if !d.sw.NeedsRelock() {
			return
		}
		a, b := d.encoders[0], d.encoders[1]
		a.mu.Lock()
		b.mu.Lock()
		ready := a.hello != nil && b.hello != nil && a.cmd != nil && b.cmd != nil
		wa, wb := a.cmd, b.cmd
		var newest uint64
		if ready {
			newest = max(a.hello.StartIndex, b.hello.StartIndex)
		}
		a.mu.Unlock()
		b.mu.Unlock()
		if !ready {
			return
		}
		if d.cfg.Video.Relock == "gop" {
			// The first boundary both have reached fresh and the switch has not passed.
			from := max(newest, d.sw.Status().LastIndex+1)
			at := (from + gop - 1) / gop * gop
			d.sw.RelockAt(at)
			d.log.Info("re-lock expected at the next common GOP", zap.Uint64("at_index", at))
			return
		}
		at := (max(d.ring.Head(), newest) + d.commandLead() + gop - 1) / gop * gop
		cmd := wire.Command{Op: wire.OpReset, AtIndex: at}
		d.sw.RelockAt(at)
		errA := wa.WriteJSON(wire.Header{Kind: wire.KindCommand, Index: at}, cmd)
		errB := wb.WriteJSON(wire.Header{Kind: wire.KindCommand, Index: at}, cmd)
		d.log.Info("re-lock scheduled", zap.Uint64("at_index", at), zap.NamedError("a", errA), zap.NamedError("b", errB))
	})
}

// healthLoop restarts a twin that is alive but useless, judged against its
// twin, which proves the box itself keeps up (the supervisor separately kills
// any child silent for video.stall_after):
//
//   - hung: while the twins are locked, it is video.hang_after behind its
//     twin (SIGSTOP, starved of CPU, stuck in the library). Restarting a twin
//     costs no frame while locked, so this can be quick: a few frame intervals.
//   - lagging: it is video.stall_after behind capture while its twin is not;
//     a twin that lags past the ring skips pictures and diverges.
//
// When both are late the whole box was slow for a moment: that is a delay,
// and restarting both would make it a gap, so neither is restarted. With a
// single encoder there is nothing to fail over to; it is left to catch up.
func (d *Daemon) healthLoop(ctx context.Context) {
	if len(d.encoders) != 2 {
		return
	}
	v := d.cfg.Video
	frames := func(t time.Duration) uint64 { return uint64(max(1, int(t.Seconds()*v.FPS.Float()))) }
	lagLimit, hangLimit := max(5, frames(v.StallAfter.D())), frames(v.HangAfter.D())
	every(ctx, 20*time.Millisecond, func() {
		head := d.ring.Head()
		a, b := d.encoders[0], d.encoders[1]
		last := [2]uint64{a.lastVideo.Load(), b.lastVideo.Load()}
		locked := d.sw.Locked()
		if locked && last[0] != 0 && last[1] != 0 {
			skew := max(last[0], last[1]) - min(last[0], last[1])
			if skew > d.skewMax.Load() {
				d.skewMax.Store(skew) // only this goroutine writes
			}
		}
		n, why := restartVictim(head, last, locked, lagLimit, hangLimit)
		if n < 0 {
			return
		}
		c := d.encoders[n]
		d.log.Warn("restarting encoder: "+why, zap.String("child", c.name), zap.Uint64("index", last[n]),
			zap.Uint64("twin_index", last[1-n]), zap.Uint64("ring_head", head))
		c.lastVideo.Store(0)
		c.sup.Restart(why)
	})
}

// restartVictim picks the twin to restart, or -1, and says why. last holds
// each twin's last video index + 1 (0: nothing from its current instance yet,
// which never counts as keeping up).
func restartVictim(head uint64, last [2]uint64, locked bool, lagLimit, hangLimit uint64) (int, string) {
	behind := func(l uint64) bool { return l == 0 || head > l+lagLimit }
	for n := range last {
		me, twin := last[n], last[1-n]
		if me == 0 || twin == 0 {
			continue
		}
		if locked && twin > me+hangLimit {
			return n, fmt.Sprintf("hung: %d frames behind its twin", twin-me)
		}
		if behind(me) && !behind(twin) {
			return n, fmt.Sprintf("lagging %d frames behind capture while its twin keeps up", head-me)
		}
	}
	return -1, ""
}

// catchUp brings a (re)started encoder to the runtime state its twin has: it
// starts with the configured bitrate, so a runtime change is sent again at
// its first frame. It applies long before the next GOP boundary, where both
// encoders start fresh sessions with equal settings and re-lock.
func (d *Daemon) catchUp(c *child, start uint64) {
	kbps := int(d.bitrate.Load())
	if kbps == d.cfg.Video.BitrateKbps {
		return
	}
	c.mu.Lock()
	w := c.cmd
	c.mu.Unlock()
	if w == nil {
		return
	}
	cmd := wire.Command{Op: wire.OpBitrate, AtIndex: start, BitrateKbps: kbps}
	if err := w.WriteJSON(wire.Header{Kind: wire.KindCommand, Index: start}, cmd); err != nil {
		d.log.Warn("cannot send the current bitrate to a restarted encoder", zap.String("child", c.name), zap.Error(err))
	}
}

// SetVideoBitrate changes the bitrate of every encoder at the same frame
// index and returns that index (web.Box).
func (d *Daemon) SetVideoBitrate(kbps int) (uint64, error) {
	if kbps < 100 || kbps > 100000 {
		return 0, fmt.Errorf("bitrate %d kbps: must be 100..100000", kbps)
	}
	d.bitrate.Store(int64(kbps))
	at, err := d.SendCommand(wire.OpBitrate, kbps)
	d.log.Info("video bitrate change", zap.Int("kbps", kbps), zap.Uint64("at_index", at), zap.Error(err))
	return at, err
}

// SendCommand addresses a runtime command to every running encoder at the
// same frame index (a little ahead of the ring head) and returns that index.
func (d *Daemon) SendCommand(op wire.Op, bitrateKbps int) (uint64, error) {
	at := d.ring.Head() + d.commandLead()
	cmd := wire.Command{Op: op, AtIndex: at, BitrateKbps: bitrateKbps}
	var errs []error
	for _, c := range d.encoders {
		c.mu.Lock()
		w := c.cmd
		c.mu.Unlock()
		if w == nil {
			continue
		}
		if err := w.WriteJSON(wire.Header{Kind: wire.KindCommand, Index: at}, cmd); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.name, err))
		}
	}
	return at, errors.Join(errs...)
}

// watchdog pets systemd's watchdog only while the cadence keeper advances:
// a wedged onaird is restarted by systemd.
func (d *Daemon) watchdog(ctx context.Context) {
	interval, err := sddaemon.SdWatchdogEnabled(false)
	if err != nil || interval == 0 {
		return
	}
	last := uint64(0)
	every(ctx, interval/3, func() {
		idx := d.keeper.Status().KeeperIndex
		if idx != last {
			_, _ = sddaemon.SdNotify(false, sddaemon.SdNotifyWatchdog)
			last = idx
		} else {
			d.log.Error("[unexpected] cadence keeper not advancing: not petting the watchdog")
		}
	})
}

// commandLead is how many frames ahead of the ring head a command is
// addressed (about 200 ms), so it reaches both encoders before that frame.
func (d *Daemon) commandLead() uint64 {
	return uint64(d.cfg.Video.FPS.Float()/5) + 3
}

// sessionWriter writes the muxer's output for one SRT connection only.
// Only muxLoop uses it.
type sessionWriter struct {
	out     *output.SRT
	session int
}

func (w *sessionWriter) Write(p []byte) (int, error) { return w.out.WriteSession(w.session, p) }

// every calls f every interval until ctx is done.
func every(ctx context.Context, interval time.Duration, f func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f()
		}
	}
}

// FailoverVideo swaps the active encoder (web.Box).
func (d *Daemon) FailoverVideo() (string, bool, error) {
	r, err := d.sw.Failover()
	return r.Target, r.Pending, err
}

type audioStats struct {
	frames atomic.Uint64
	gaps   atomic.Uint64
	last   atomic.Uint64
}

// latency keeps the last samples of capture → mux latency.
type latency struct {
	mu      sync.Mutex
	samples [1024]time.Duration
	n       int
}

func (l *latency) add(d time.Duration) {
	l.mu.Lock()
	l.samples[l.n%len(l.samples)] = d
	l.n++
	l.mu.Unlock()
}

func (l *latency) percentiles() (p50, p99 time.Duration) {
	l.mu.Lock()
	n := min(l.n, len(l.samples))
	s := append([]time.Duration(nil), l.samples[:n]...)
	l.mu.Unlock()
	if n == 0 {
		return 0, 0
	}
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[n*50/100], s[min(n-1, n*99/100)]
}
