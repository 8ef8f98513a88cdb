// Package daemon is onaird's composition: it builds every component from the
// configuration, wires them through their small interfaces and runs them.
//
//	capture ─ring─► encoder A/B ─link─► Twins ─► Switch ─► Programme ─► output (SRT)
//	audio main, backup ─link─► audio.Selector ─────────────┘
//
// The frame cadence (the ring's keeper) is the only vital component: if it
// fails onaird exits and systemd restarts it. Every other in-process
// component (the output, the API listeners, and later uplinks, the audio
// selector, power, the panel, metrics) runs under supervisor.Group and is
// restarted with backoff when it fails, with its state in status, while the
// stream goes on. The onair-av children run under supervisor.Child.
//
// Not for: any loop over packets (encoder.Twins), the programme stage
// (tsmux.Programme), protocol code (output, web) or process control
// (supervisor). This package holds no logic a test of its own would pin
// beyond the wiring.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	sddaemon "github.com/coreos/go-systemd/v22/daemon"
	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"onair/audio"
	"onair/board"
	"onair/bond"
	"onair/bond/abr"
	"onair/canary"
	"onair/encoder"
	"onair/encoder/link"
	"onair/encoder/ring"
	"onair/encoder/tsmux"
	"onair/encoder/wire"
	"onair/events"
	"onair/internal/config"
	"onair/internal/logging"
	"onair/internal/runlock"
	"onair/internal/version"
	"onair/live"
	"onair/output"
	"onair/power"
	"onair/power/thermal"
	"onair/record"
	"onair/shed"
	"onair/supervisor"
	"onair/web"
	"onair/web/auth"
	"onair/web/page"
)

// Daemon is a running onaird.
type Daemon struct {
	// ConfigPath is the file config apply saves to; set it before Run
	// ("": config apply changes the running box only).
	ConfigPath string

	cfg config.Config
	// running is the configuration as applied (cfg plus config apply's
	// live changes), guarded by cfgMu; cfg stays what onaird started with.
	cfgMu   sync.Mutex
	running config.Config
	log     *zap.Logger
	clock   clockwork.Clock
	av      string
	started time.Time

	ring   *ring.Ring
	keeper *encoder.Keeper
	sw     *encoder.Switch
	twins  *encoder.Twins
	prog   *tsmux.Programme
	out    *output.SRT
	live   *live.Control // go live / stop
	bond   *bond.Bond    // an srtla:// output's uplinks, nil for srt://
	abr    *abr.ABR      // the adaptive bitrate, nil when video.abr is off
	caps   *shed.Caps    // the bitrate ceiling: the operator's and load shedding's
	// thermal is the heat watch, nil when the box has no thermal zone.
	thermal *thermal.Watch
	// power is the power policy, nil when power is not configured.
	power *power.Monitor
	// panel is the front panel (GPIO or virtual).
	panel *board.Board
	// lastBitrateAt is the frame index of the last fixed-bitrate change.
	lastBitrateAt atomic.Uint64
	sel           *audio.Selector
	chains        [2]*child // the audio chains by audio.Chain, nil when not configured
	api           *web.Server
	events        *events.Ring                    // the post-event report
	logs          *logging.Tail                   // onaird's newest log lines, for the page and onairctl logs
	auth          *auth.Auth                      // the page's authentication, nil when no TCP listener (or it failed)
	authErr       error                           // why auth is nil although a TCP listener is configured
	certErr       error                           // why there is no HTTPS listener although api.https is set
	recMu         sync.Mutex                      // serialises the operator's recording start/stop with config apply's recorder swap
	page          *page.Page                      // the web page, nil when no TCP listener
	cert          *auth.Certificate               // the HTTPS certificate, nil without api.https
	rec           atomic.Pointer[record.Recorder] // the local recording, nil when recording.dir is not set (config apply may replace it)
	tunnel        tunnelSlot                      // the maintenance tunnel, when configured
	canary        *canary.Canary                  // the on-air canary of a new encoder worker, nil without twins
	update        *updater                        // the A/B update, nil when update.public_key is not set
	queue         *link.Queue                     // encoder links → twins
	front         *supervisor.Group
	tail          *supervisor.Group // the output: stopped after the stream drained
	links         *supervisor.Group // the uplinks (bond): stopped after the output, so its tail gets out

	children []*child
	encoders []*child // in switch order (A, B)
}

// child is one supervised onair-av process and its connection.
type child struct {
	link *link.Link
	sup  *supervisor.Child
}

// New checks the configuration against this machine and builds the
// components that need no runtime resources. Nothing runs until Run.
func New(cfg config.Config, log *zap.Logger) (*Daemon, error) {
	av, err := findAV(cfg.AVBinary)
	if err != nil {
		return nil, err
	}
	d := &Daemon{cfg: cfg, running: cfg, log: log, clock: clockwork.NewRealClock(), av: av, queue: link.NewQueue(1024, 64<<20)}
	d.withLogTail()
	log = d.log
	names := []string{"encoder-a"}
	if cfg.Video.TwinsEnabled() {
		names = append(names, "encoder-b")
	}
	if d.sw, err = encoder.NewSwitch(names, log.Named("switch")); err != nil {
		return nil, err
	}
	ocfg := output.Config{Target: cfg.Output.URL, StartIdle: !cfg.OnAir.AutoStart}
	if err = d.buildBond(&ocfg); err != nil {
		return nil, err
	}
	if d.out, err = output.New(ocfg, log.Named("output"), d.clock); err != nil {
		return nil, fmt.Errorf("output.url: %w", err)
	}
	v := cfg.Video
	pcfg := tsmux.ProgrammeConfig{FPSNum: v.FPS.Num, FPSDen: v.FPS.Den, Mux: tsmux.Config{ServiceName: "onair", Provider: "onair"}}
	if err = d.buildRecording(); err != nil {
		return nil, err
	}
	if d.prog, err = tsmux.NewProgramme(pcfg, programmeOut{d.out, d}, log.Named("programme"), ring.MonotonicNs); err != nil {
		return nil, err
	}
	if err = d.buildLive(); err != nil {
		return nil, err
	}
	if err = d.buildWeb(); err != nil {
		return nil, err
	}
	d.front = supervisor.NewGroup(log.Named("components"), d.clock)
	d.tail = supervisor.NewGroup(log.Named("components"), d.clock)
	d.links = supervisor.NewGroup(log.Named("components"), d.clock)
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

// Run runs the box until ctx is done, then stops every child, lets the
// stream drain and stops the output last.
func (d *Daemon) Run(ctx context.Context) (err error) {
	d.started = d.clock.Now()
	v := d.cfg.Video
	if err = os.MkdirAll(d.cfg.RuntimeDir, 0o750); err != nil {
		return fmt.Errorf("runtime_dir: %w", err)
	}
	// First, before anything of a running onaird could be touched.
	release, err := runlock.Acquire(d.cfg.RuntimeDir)
	if err != nil {
		return err
	}
	defer func() { _ = release() }()
	geo := ring.Geometry{Width: v.Width, Height: v.Height, FPSNum: v.FPS.Num, FPSDen: v.FPS.Den}
	if d.ring, err = ring.Create(filepath.Join(d.cfg.RuntimeDir, "video.ring"), geo, v.RingSlots, ring.MonotonicNs()); err != nil {
		return err
	}
	defer func() {
		// Too late to fail the run: a ring left behind is only worth a note.
		if cerr := d.ring.Close(); cerr != nil {
			d.log.Warn("video ring close failed", zap.Error(cerr))
		}
		if rerr := os.Remove(d.ring.Path()); rerr != nil {
			d.log.Warn("video ring remove failed", zap.Error(rerr))
		}
	}()
	if d.keeper, err = encoder.NewKeeper(d.ring, encoder.KeeperConfig{LateFrames: v.LateFrames, SlateAfter: v.SlateAfter.D()}, d.log.Named("keeper")); err != nil {
		return err
	}
	if err = d.buildChildren(); err != nil {
		return err
	}
	if err = d.buildComponents(); err != nil {
		return err
	}

	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	linksCtx, stopLinks := context.WithCancel(context.Background())
	defer stopLinks()
	linksDone := make(chan error, 1)
	go func() { linksDone <- d.links.Run(linksCtx) }()
	tailCtx, stopTail := context.WithCancel(context.Background())
	defer stopTail()
	tailDone := make(chan error, 1)
	go func() { tailDone <- d.tail.Run(tailCtx) }()
	// The stream path runs until every link has drained (a clean end of the
	// stream), not until ctx: that is what lets the last packets out.
	twinsDone := make(chan error, 1)
	go func() { twinsDone <- d.twins.Run(context.Background()) }()
	var kids sync.WaitGroup
	for _, c := range d.children {
		kids.Add(1)
		go func() { defer kids.Done(); _ = c.sup.Run(runCtx) }()
	}
	frontDone := make(chan error, 1)
	go func() { frontDone <- d.front.Run(runCtx) }()
	go d.watchdog(runCtx)
	go d.notifyReady(runCtx)
	d.log.Info("onaird running", zap.String("version", version.Version), zap.String("output", d.out.Status().Target),
		zap.Bool("twins", len(d.encoders) == 2), zap.String("av", d.av))

	err = <-frontDone // a vital component failed, or ctx is done
	stopRun()
	_, _ = sddaemon.SdNotify(false, sddaemon.SdNotifyStopping)
	kids.Wait() // bounded: each child's Run returns after grace + reap timeout
	for _, c := range d.children {
		c.link.Wait() // every connection has reached its end
	}
	d.queue.Close()
	if terr := <-twinsDone; terr != nil && err == nil {
		err = terr
	}
	stopTail() // the output drains what is queued, then closes
	if oerr := <-tailDone; oerr != nil && err == nil {
		err = oerr
	}
	stopLinks() // the uplinks go last: their routes and rules with them
	if lerr := <-linksDone; lerr != nil && err == nil {
		err = lerr
	}
	if errors.Is(err, context.Canceled) {
		err = nil // a requested stop is a clean stop
	}
	d.log.Info("onaird stopped", zap.Error(err))
	return err
}

// buildComponents puts the in-process components under their supervisors.
// Only the cadence keeper is vital.
func (d *Daemon) buildComponents() error {
	v := d.cfg.Video
	encs := make([]encoder.Encoder, len(d.encoders))
	for i, c := range d.encoders {
		encs[i] = c.link
	}
	tcfg := encoder.TwinsConfig{GOP: v.GOP, FPSNum: v.FPS.Num, FPSDen: v.FPS.Den, Relock: encoder.RelockMode(v.Relock),
		BitrateKbps: v.BitrateKbps, StallAfter: v.StallAfter.D(), HangAfter: v.HangAfter.D()}
	var err error
	if d.twins, err = encoder.NewTwins(tcfg, d.sw, encs, d.ring.Head, d.prog, d.queue, d.log.Named("twins"), d.clock); err != nil {
		return err
	}
	backoff := d.backoff()
	for _, spec := range []supervisor.ComponentSpec{
		{Name: "cadence", Vital: true, Run: d.keeper.Run, Backoff: backoff},
		{Name: "audio", Run: d.sel.Run, Backoff: backoff},
		{Name: "events", Run: func(ctx context.Context) error { return d.events.Watch(ctx, box{d}.Status, 0) }, Backoff: backoff},
	} {
		if err = d.front.Add(spec); err != nil {
			return err
		}
	}
	// Each API listener is its own component: a taken TCP port leaves
	// onairctl's unix socket up, and neither takes the box off air.
	for _, spec := range []supervisor.ComponentSpec{
		{Name: "api-tcp", Run: d.api.RunTCP, Backoff: backoff},
		{Name: "api-https", Run: d.api.RunHTTPS, Backoff: backoff},
		{Name: "api-socket", Run: d.api.RunSocket, Backoff: backoff},
		{Name: "metrics", Run: d.api.RunMetrics, Backoff: backoff},
	} {
		if (spec.Name == "api-tcp" && d.cfg.API.Listen == "") || (spec.Name == "api-socket" && d.cfg.API.Socket == "") ||
			(spec.Name == "api-https" && d.cert == nil) || (spec.Name == "metrics" && d.cfg.Metrics.Listen == "") {
			continue
		}
		if err = d.front.Add(spec); err != nil {
			return err
		}
	}
	if err = d.buildABR(); err != nil {
		return err
	}
	if d.caps, err = shed.New(v.BitrateKbps, ceilingSetter{d}, d.log.Named("shed")); err != nil {
		return err
	}
	if d.abr != nil {
		if err = d.front.Add(supervisor.ComponentSpec{Name: "abr", Run: d.abr.Run, Backoff: backoff}); err != nil {
			return err
		}
	}
	if d.bond != nil {
		if err = d.links.Add(supervisor.ComponentSpec{Name: "bond", Run: d.bond.Run, Backoff: backoff}); err != nil {
			return err
		}
	}
	if err = d.buildThermal(); err != nil {
		return err
	}
	if err = d.buildPower(); err != nil {
		return err
	}
	if err = d.buildPanel(); err != nil {
		return err
	}
	if err = d.buildTunnel(); err != nil {
		return err
	}
	if err = d.buildCanary(); err != nil {
		return err
	}
	if err = d.buildUpdate(); err != nil {
		return err
	}
	if d.recorder() != nil {
		// In the tail: it gets the stream's last bytes, and closes its
		// segment after them. config apply may replace the recorder and
		// restart this component: Run reads it at every start.
		run := func(ctx context.Context) error { return d.recorder().Run(ctx) }
		if err = d.tail.Add(supervisor.ComponentSpec{Name: "recording", Run: run, Backoff: backoff}); err != nil {
			return err
		}
	}
	return d.tail.Add(supervisor.ComponentSpec{Name: "output", Run: d.out.Run, Backoff: backoff})
}

func (d *Daemon) backoff() supervisor.Backoff {
	return supervisor.Backoff{Initial: 200 * time.Millisecond, Max: d.cfg.Supervisor.BackoffMax.D(), ResetAfter: 60 * time.Second}
}

// buildChildren makes the link and the process supervisor of every onair-av child.
func (d *Daemon) buildChildren() error {
	v := d.cfg.Video
	slots := uint64(v.RingSlots)
	fps := v.FPS.Float()
	// A media index must be near the box clock: a late encoder may lag by
	// seconds (the twin control judges that), but an index ahead of the
	// clock by more than the ring is a broken child.
	videoWindow := func() (uint64, uint64) {
		now := d.ring.IndexAt(ring.MonotonicNs())
		return now - min(now, max(slots, uint64(10*fps))), now + slots
	}
	audioClock := ring.Cadence{EpochNs: d.ring.EpochNs(), Num: tsmux.AudioRate, Den: wire.AudioFrameSamples}
	audioWindow := func() (uint64, uint64) {
		now := audioClock.IndexAt(ring.MonotonicNs())
		return now - min(now, 10*audioFramesPerSecond), now + audioFramesPerSecond
	}
	maxVideo := min(wire.MaxPayload, v.Width*v.Height*3/2+1<<20) // an AU never exceeds the raw picture
	add := func(a wire.ChildArgs, slot int, stall time.Duration, window func() (uint64, uint64), h hooks) (*child, error) {
		a.LogLevel = string(d.cfg.LogLevel)
		if err := a.Validate(); err != nil {
			return nil, fmt.Errorf("daemon: child %s: %w", a.Name, err)
		}
		c := &child{}
		if h.deliver == nil {
			h.deliver = func(m link.Msg) { d.queue.Put(m) }
		}
		l, err := link.New(link.Config{Name: a.Name, Role: a.Role, Slot: slot, MaxVideo: maxVideo, Window: window},
			procOf{c}, h.deliver, d.log.Named("link"))
		if err != nil {
			return nil, err
		}
		c.link = l
		spec := supervisor.Spec{
			Name: a.Name, Role: string(a.Role), Path: d.av, Args: a.Args(),
			Grace: d.cfg.Supervisor.Grace.D(), StallTimeout: stall, Backoff: d.backoff(),
			StartTimeout: d.cfg.Supervisor.StartTimeout.D(),
			ExtraFiles:   l.ExtraFiles,
			OnStart: func(inst supervisor.Instance) {
				l.Attach(inst.Seq)
				if h.up != nil {
					h.up()
				}
			},
			OnExit: func(inst supervisor.Instance, _ error) {
				l.Detach(inst.Seq)
				if h.down != nil {
					h.down()
				}
			},
		}
		if c.sup, err = supervisor.New(spec, d.log.Named("supervisor"), d.clock); err != nil {
			return nil, fmt.Errorf("daemon: child %s: %w", a.Name, err)
		}
		d.children = append(d.children, c)
		if slot >= 0 {
			d.encoders = append(d.encoders, c)
		}
		return c, nil
	}
	rp := d.ring.Path()
	if _, err := add(wire.ChildArgs{Role: wire.RoleCapture, Name: "capture", Source: v.Source.String(), Ring: rp}, -1, v.StallAfter.D(), videoWindow, hooks{}); err != nil {
		return err
	}
	for slot, name := range d.sw.Status().Names {
		a := wire.ChildArgs{Role: wire.RoleEncode, Name: name, Ring: rp, BitrateKbps: v.BitrateKbps, GOP: v.GOP, Preset: string(v.Preset),
			ResetEveryGOP: v.Relock.ResetEveryGOP()}
		if _, err := add(a, slot, v.StallAfter.D(), videoWindow, hooks{}); err != nil {
			return err
		}
	}
	return d.buildAudio(audioClock, func(a wire.ChildArgs, h hooks) (*child, error) {
		return add(a, -1, audioStallAfter, audioWindow, h)
	})
}

// hooks connect a child to what consumes it: deliver gets its packets (nil:
// the encoder queue), up and down (optional) hear of its process starting
// and ending.
type hooks struct {
	deliver  func(link.Msg)
	up, down func()
}

// procOf lets a link reach its child's supervisor, which is made after the link.
type procOf struct{ c *child }

func (p procOf) Progress(seq uint64)               { p.c.sup.Progress(seq) }
func (p procOf) Restart(seq uint64, reason string) { p.c.sup.Restart(seq, reason) }
func (p procOf) Fail(seq uint64, reason string)    { p.c.sup.Fail(seq, reason) }

// audioFramesPerSecond is 48000/1024, rounded up.
const audioFramesPerSecond = 47

// notifyReady tells systemd the box is up once the API listens, or once the
// API has failed to (a taken port must not hold the box off air: status and
// the log say so, and the API keeps retrying).
func (d *Daemon) notifyReady(ctx context.Context) {
	// componentFailed polls until its ctx ends: once ready, nobody needs it
	// (it used to poll every 20 ms for the whole run: issue 14's profile).
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	select {
	case <-d.api.Ready():
	case <-d.componentFailed(ctx, "api-tcp", "api-https", "api-socket", "metrics"):
	case <-ctx.Done():
		return
	}
	_, _ = sddaemon.SdNotify(false, sddaemon.SdNotifyReady)
}

// componentFailed is closed once one of the named components has failed at
// least once; it polls until then or until ctx is done.
func (d *Daemon) componentFailed(ctx context.Context, names ...string) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		t := d.clock.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			for _, st := range d.front.Status() {
				if slices.Contains(names, st.Name) && st.LastError != "" {
					close(ch)
					return
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-t.Chan():
			}
		}
	}()
	return ch
}

// watchdog pets systemd's watchdog only while the cadence keeper advances:
// a wedged onaird is restarted by systemd.
func (d *Daemon) watchdog(ctx context.Context) {
	interval, err := sddaemon.SdWatchdogEnabled(false)
	if err != nil || interval == 0 {
		return
	}
	t := d.clock.NewTicker(interval / 3)
	defer t.Stop()
	last := uint64(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.Chan():
		}
		if idx := d.keeper.Status().KeeperIndex; idx != last {
			_, _ = sddaemon.SdNotify(false, sddaemon.SdNotifyWatchdog)
			last = idx
		} else {
			d.log.Error("[unexpected] cadence keeper not advancing: not petting the watchdog")
		}
	}
}
