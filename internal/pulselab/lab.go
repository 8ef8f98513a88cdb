// Package pulselab gives tests real, clocked sound cards without kernel
// modules: a private userspace PulseAudio server whose null sinks play the
// part of capture devices. What is played into sink NAME (Sink.Feed plays a
// sine through an ffmpeg child, paced by the server's clock) comes out of
// its monitor source, which the box's audio chains read either as the ALSA
// device NAME (the lab writes pcm.NAME, type pulse, into its .asoundrc:
// source "alsa:NAME") or as the pulse source NAME.monitor (source
// "pulse:NAME.monitor"). Tests stop the feeder, mute the sink or remove it
// (the card is unplugged) and check what the chains make of it. It is for
// the backup audio chain (issue 10) and any test that needs a device with
// its own clock.
//
// It is NOT part of the product and NOT a PulseAudio client library: it
// drives the pulseaudio, pactl and parec binaries, ffmpeg as the feeder, and the
// server's CLI socket for the one thing pactl cannot do (kill a stream).
// The server is nobody's desktop server: it has its own HOME and
// XDG_RUNTIME_DIR (a temporary directory, mode 0700), loads only the
// modules the lab asks for (-n), and is killed, with every feeder and every
// process started through Command, by PID in Close.
//
// Reaching the server: a child process gets Env (HOME, XDG_RUNTIME_DIR,
// PULSE_SERVER and ALSA_CONFIG_PATH); the .asoundrc names the server too,
// so an ALSA client needs only HOME. A test that opens the device
// in-process (encoder/av's RunAudio) calls Setenv first: alsa-lib reads its
// configuration once per process and only re-reads it when a file of
// ALSA_CONFIG_PATH changes, so the lab lists its .asoundrc there (and
// rewrites it by rename) or a second lab, or a sink added after the first
// ALSA open, would stay unknown to the process.
//
// Each sink has a keeper, a parec reading its monitor at 10 ms latency
// for the sink's whole life: a null sink nobody asks for low latency
// renders in 2 s blocks, and a capture opened on it got its first byte
// only after about 2 s. With the keeper the sink runs like a sound card.
//
// Behaviour measured on this machine (Debian 12: PulseAudio 16.1,
// alsa-plugins 1.2.7.1, FFmpeg 5.1, 2 cores; the tests pin it and log the
// figures with -v):
//
//   - The server answers `pactl info` 40 to 55 ms after it is started;
//     AddSink plus Feed take 0.2 to 0.3 s a sink.
//   - A capture (ffmpeg -f alsa NAME or -f pulse NAME.monitor) delivers
//     its first byte 0.2 to 0.38 s after it is started, four at once
//     (1.96 to 2.06 s without the keeper), then steadily: largest gap
//     between reads 12 ms (ALSA) and 50 ms (pulse). The tone arrives
//     exactly (1000 Hz, 440 Hz) at -21.1 dBFS peak, -24.1 dBFS RMS.
//     encoder/av's RunAudio gets its first frame 75 to 100 ms after it
//     starts, with consecutive indexes from then on.
//   - A stopped feeder (nobody plays into the card): the sink keeps its
//     clock and the monitor delivers digital silence, every sample zero,
//     1.3 s of it in 1.30 s. No error and no stall: to the capture it is
//     only silence. A muted sink looks the same: digital zero from at most
//     20 ms of audio after Mute returned.
//   - Unloading a sink does not fail the streams attached to it:
//     PulseAudio (since 14, in its core) moves them to the default sink or
//     source and they go on. With two sinks, a capture of the removed one
//     went on reading the other one's tone, and the removed sink's feeder
//     was moved into the other sink and mixed with it: the main chain
//     silently hears the backup's device. The lab therefore makes a sink
//     of its own, pulselab_void, the default (rescued streams hear
//     silence there), and Sink.Remove kills the rescued streams after the
//     unload, which is what an unplugged ALSA card does to its reader.
//     (Killed before the unload, the ALSA plugin would recreate its stream
//     on the next snd_pcm_prepare and carry on.)
//   - Remove, seen by an ALSA capture: ffmpeg's output ends 60 to 90 ms
//     after Remove began, with "pcm_pulse.c: Unable to create stream: No
//     such entity", "cannot recover from underrun (snd_pcm_prepare failed:
//     Input/output error)", "ALSA read error: Broken pipe"; RunAudio
//     returns "av: audio: av: read: Input/output error" 55 to 61 ms after.
//   - Remove, seen by a pulse capture: "Generic error in an external
//     library" (AVERROR_EXTERNAL), 55 to 85 ms after, in ffmpeg and in
//     RunAudio. The ffmpeg CLI exits 0 in both cases: it takes the error
//     for the end of its input, so its exit status does not tell "device
//     gone".
//   - Opening the device after Remove fails within 0.17 s (ALSA "No such
//     entity", then "cannot set parameters (Input/output error)"; pulse
//     "Input/output error"), until a sink of that name is added again.
//   - A box that reads its audio through a real PulseAudio server cannot
//     rely on an error when a device goes away: its stream moves to the
//     default source and keeps running; only the level, or the source the
//     stream is on, tells.
//
// Moving streams makes the server log "Cannot send block reference with
// non-registered memfd ID" (PulseAudio issue 824); it falls back to
// copying and nothing is lost.
package pulselab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// SampleRate and Channels are the format of every sink of the lab.
const (
	SampleRate = 48000
	Channels   = 2
)

// cmdTimeout bounds every pactl call, CLI exchange and wait for a stream.
const cmdTimeout = 5 * time.Second

// defaultStartTimeout bounds the wait for a new server to answer.
const defaultStartTimeout = 10 * time.Second

// termGrace is how long a SIGTERMed server has to exit before SIGKILL.
const termGrace = 3 * time.Second

// voidSink is the lab's own sink, the server's default sink (and its
// monitor the default source): streams PulseAudio rescues from a removed
// sink land here, where they hear silence, and Remove kills them.
const voidSink = "pulselab_void"

// alsaConf is alsa-lib's top configuration file, listed first in the
// lab's ALSA_CONFIG_PATH (Debian's ALSA_CONFIG_PATH_DEFAULT).
const alsaConf = "/usr/share/alsa/alsa.conf"

// Sentinel errors.
var (
	// ErrClosed is returned by every operation after Close.
	ErrClosed = errors.New("pulselab: lab closed")
	// ErrBadName is returned for a sink name that is not a plain ALSA PCM
	// name, shadows one of alsa-lib's own PCMs, or is in use.
	ErrBadName = errors.New("pulselab: bad sink name")
	// ErrRemoved is returned by the methods of a removed sink.
	ErrRemoved = errors.New("pulselab: sink removed")
	// ErrNotReady is returned when the server or a stream did not come up
	// within its bound.
	ErrNotReady = errors.New("pulselab: not ready")
)

// Options configures New.
type Options struct {
	// Log receives one debug line per pactl and CLI command; nil logs nothing.
	Log *zap.Logger
	// StartTimeout bounds the wait for the server to answer; 0 means 10 s.
	StartTimeout time.Duration
}

// Lab is a running PulseAudio server and its sinks. Its methods and those
// of its sinks are safe for concurrent use; each is bounded in time.
type Lab struct {
	// Dir is the lab's HOME (holding .asoundrc); it is removed by Close.
	Dir string
	// RuntimeDir is its XDG_RUNTIME_DIR (mode 0700), holding the sockets.
	RuntimeDir string
	// Socket is the native protocol socket (PULSE_SERVER=unix:Socket).
	Socket string
	// StartupTime is how long the server took to answer `pactl info`.
	StartupTime time.Duration

	log       *zap.Logger
	cliSocket string
	daemon    *proc
	voidIdx   int // index of voidSink
	voidMon   int // index of its monitor source

	mu     sync.Mutex
	closed bool
	sinks  map[string]*Sink // sinks not removed
	pcms   []string         // every name ever added, sorted: the .asoundrc's PCMs
	cmds   []*exec.Cmd      // started through Command
}

// New starts a server in a fresh temporary directory and waits (bounded by
// Options.StartTimeout) until it answers. On error nothing is left behind.
func New(ctx context.Context, opts Options) (*Lab, error) {
	for _, tool := range []string{"pulseaudio", "pactl", "parec"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("pulselab: %w", err)
		}
	}
	log := opts.Log
	if log == nil {
		log = zap.NewNop()
	}
	// A short path: unix socket paths are limited to 107 bytes.
	dir, err := os.MkdirTemp("", "pulselab-")
	if err != nil {
		return nil, fmt.Errorf("pulselab: %w", err)
	}
	l := &Lab{
		Dir:        dir,
		RuntimeDir: filepath.Join(dir, "run"),
		log:        log,
		sinks:      map[string]*Sink{},
	}
	l.Socket = filepath.Join(l.RuntimeDir, "pulse", "native")
	l.cliSocket = filepath.Join(l.RuntimeDir, "pulse", "cli")
	if err := l.start(ctx, opts.StartTimeout); err != nil {
		return nil, errors.Join(err, l.Close())
	}
	return l, nil
}

func (l *Lab) start(ctx context.Context, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = defaultStartTimeout
	}
	for _, d := range []string{l.RuntimeDir, filepath.Dir(l.Socket)} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return fmt.Errorf("pulselab: %w", err)
		}
		if err := os.Chmod(d, 0o700); err != nil { // whatever the umask
			return fmt.Errorf("pulselab: %w", err)
		}
	}
	if err := l.writeAsoundrc(); err != nil {
		return err
	}
	t0 := time.Now()
	var err error
	l.daemon, err = startProc(l.daemonEnv(), nil, "pulseaudio",
		"-n", "--daemonize=no", "--exit-idle-time=-1", "--use-pid-file=no",
		"--realtime=no", "--high-priority=no", "--log-target=stderr",
		"-L", "module-native-protocol-unix auth-anonymous=1 socket="+l.Socket,
		"-L", "module-cli-protocol-unix socket="+l.cliSocket,
		"-L", "module-null-sink sink_name="+voidSink+" rate="+strconv.Itoa(SampleRate)+" channels="+strconv.Itoa(Channels))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		if _, perr := l.pactlCtx(ctx, "info"); perr == nil {
			break
		}
		select {
		case <-l.daemon.done:
			return fmt.Errorf("%w: pulseaudio exited: %w: %s", ErrNotReady, l.daemon.err, l.daemon.out)
		case <-ctx.Done():
			return fmt.Errorf("%w: pulseaudio did not answer within %v: %s", ErrNotReady, timeout, l.daemon.out)
		case <-time.After(20 * time.Millisecond):
		}
	}
	l.StartupTime = time.Since(t0)
	if _, err = l.Pactl("set-default-sink", voidSink); err != nil {
		return err
	}
	if _, err = l.Pactl("set-default-source", voidSink+".monitor"); err != nil {
		return err
	}
	if l.voidIdx, err = l.deviceIndex("sinks", voidSink); err != nil {
		return err
	}
	if l.voidMon, err = l.deviceIndex("sources", voidSink+".monitor"); err != nil {
		return err
	}
	l.log.Debug("pulseaudio up", zap.Int("pid", l.daemon.pid()), zap.Duration("startup", l.StartupTime))
	return nil
}

// Vars are the variables that point a process at this lab: HOME (its
// .asoundrc), XDG_RUNTIME_DIR, PULSE_SERVER and ALSA_CONFIG_PATH (alsa.conf
// then the lab's .asoundrc, so an in-process alsa-lib re-reads it).
func (l *Lab) Vars() []string {
	v := []string{"HOME=" + l.Dir, "XDG_RUNTIME_DIR=" + l.RuntimeDir, "PULSE_SERVER=unix:" + l.Socket}
	if _, err := os.Stat(alsaConf); err == nil {
		v = append(v, "ALSA_CONFIG_PATH="+alsaConf+":"+l.asoundrc())
	}
	return v
}

// Env is the environment for a child that should reach this lab (onaird,
// onair-av, ffmpeg): the test's own environment with Vars in place of its
// variables of the same names, and without PULSE_SINK and PULSE_SOURCE.
// Callers may append their own variables (the last one of a name wins).
func (l *Lab) Env() []string {
	drop := []string{"HOME", "XDG_RUNTIME_DIR", "PULSE_SERVER", "ALSA_CONFIG_PATH", "PULSE_SINK", "PULSE_SOURCE"}
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return slices.Contains(drop, k)
	})
	return append(env, l.Vars()...)
}

// daemonEnv is Env without DISPLAY and with a D-Bus address that does not
// exist, so the server never autolaunches a dbus-daemon (which would
// outlive it).
func (l *Lab) daemonEnv() []string {
	env := slices.DeleteFunc(l.Env(), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		return k == "DISPLAY" || k == "DBUS_SESSION_BUS_ADDRESS"
	})
	return append(env, "DBUS_SESSION_BUS_ADDRESS=unix:path="+filepath.Join(l.Dir, "no-dbus"))
}

// Command returns a command that runs with Env in its own process group;
// if it is still running at Close, Close kills it and its group by PID.
func (l *Lab) Command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(name, args...)
	cmd.Env = l.Env()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	l.mu.Lock()
	l.cmds = append(l.cmds, cmd)
	l.mu.Unlock()
	return cmd
}

// Pactl runs pactl against the lab's server (bounded by 5 s) and returns
// its standard output; the error carries its standard error.
func (l *Lab) Pactl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	out, err := l.pactlCtx(ctx, args...)
	return string(out), err
}

func (l *Lab) pactlCtx(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "pactl", append([]string{"--server=unix:" + l.Socket}, args...)...)
	cmd.Env = l.Env()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	l.log.Debug("pactl", zap.Strings("args", args), zap.ByteString("out", out), zap.Error(err))
	if err != nil {
		return out, fmt.Errorf("pulselab: pactl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// devices lists "sinks" or "sources".
func (l *Lab) devices(what string) ([]device, error) {
	out, err := l.Pactl("-f", "json", "list", what)
	if err != nil {
		return nil, err
	}
	return parseDevices([]byte(out))
}

// deviceIndex is the index of the sink or source called name.
func (l *Lab) deviceIndex(what, name string) (int, error) {
	ds, err := l.devices(what)
	if err != nil {
		return 0, err
	}
	for _, d := range ds {
		if d.Name == name {
			return d.Index, nil
		}
	}
	return 0, fmt.Errorf("%w: no %s called %q", errPactlOutput, strings.TrimSuffix(what, "s"), name)
}

// streams lists "sink-inputs" or "source-outputs".
func (l *Lab) streams(what string) ([]stream, error) {
	out, err := l.Pactl("-f", "json", "list", what)
	if err != nil {
		return nil, err
	}
	return parseStreams([]byte(out))
}

// killRescued kills every stream on the lab's void sink and its monitor:
// PulseAudio moved them there from a sink that was unloaded. Nothing else
// uses the void, so the kill is not racy.
func (l *Lab) killRescued() error {
	var cmds []string
	for _, k := range []struct {
		what, kill string
		dev        int
	}{{"sink-inputs", "kill-sink-input", l.voidIdx}, {"source-outputs", "kill-source-output", l.voidMon}} {
		ss, err := l.streams(k.what)
		if err != nil {
			return err
		}
		for _, s := range ss {
			if s.Device == k.dev {
				cmds = append(cmds, k.kill+" "+strconv.Itoa(s.Index))
			}
		}
	}
	if len(cmds) == 0 {
		return nil
	}
	outs, err := l.cli(cmds...)
	if err != nil {
		return err
	}
	for i, out := range outs {
		// A stream that ended on its own meanwhile is not an error.
		if out != "" && !strings.Contains(out, "found") {
			return fmt.Errorf("pulselab: cli %q: %s", cmds[i], out)
		}
	}
	l.log.Debug("killed rescued streams", zap.Strings("cmds", cmds))
	return nil
}

// asoundrc is the lab's ALSA configuration file, $HOME/.asoundrc.
func (l *Lab) asoundrc() string { return filepath.Join(l.Dir, ".asoundrc") }

// writeAsoundrc (re)writes .asoundrc with one PCM (and ctl) per name in
// l.pcms, by rename: a new inode makes an in-process alsa-lib re-read it
// even within the same second. l.mu is held (or New runs).
func (l *Lab) writeAsoundrc() error {
	var b strings.Builder
	b.WriteString("# Written by onair/internal/pulselab: one PCM per null sink, capturing its monitor.\n")
	for _, n := range l.pcms {
		fmt.Fprintf(&b, "pcm.%s {\n\ttype pulse\n\tserver \"unix:%s\"\n\tdevice \"%s.monitor\"\n}\n", n, l.Socket, n)
		fmt.Fprintf(&b, "ctl.%s {\n\ttype pulse\n\tserver \"unix:%s\"\n\tdevice \"%s\"\n}\n", n, l.Socket, n)
	}
	tmp := l.asoundrc() + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("pulselab: write .asoundrc: %w", err)
	}
	if err := os.Rename(tmp, l.asoundrc()); err != nil {
		return fmt.Errorf("pulselab: write .asoundrc: %w", err)
	}
	return nil
}

// PIDs are the processes the lab owns that are still running: the server
// first, then each sink's keeper and feeder.
func (l *Lab) PIDs() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	var pids []int
	if l.daemon != nil && !l.daemon.exited() {
		pids = append(pids, l.daemon.pid())
	}
	for _, n := range l.pcms {
		if s := l.sinks[n]; s != nil {
			for _, p := range []*proc{s.keeper, s.feeder} {
				if p != nil && !p.exited() {
					pids = append(pids, p.pid())
				}
			}
		}
	}
	return pids
}

// Close kills the feeders and the processes started through Command (by
// PID, with their groups), stops the server (SIGTERM, SIGKILL after 3 s),
// and removes Dir. It is idempotent.
func (l *Lab) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	var errs []error
	for _, s := range l.sinks {
		errs = append(errs, s.stopFeeder(), s.stopKeeper())
	}
	for _, c := range l.cmds {
		killCmd(c)
	}
	if l.daemon != nil {
		errs = append(errs, l.daemon.stop(termGrace))
		l.log.Debug("pulseaudio stopped", zap.Error(l.daemon.err), zap.String("out", l.daemon.out.String()))
	}
	if err := os.RemoveAll(l.Dir); err != nil {
		errs = append(errs, fmt.Errorf("pulselab: %w", err))
	}
	return errors.Join(errs...)
}

// killCmd kills a started, still running command and its process group.
// os.Process.Signal uses a pidfd, so a finished process is never confused
// with a new one holding the same PID; the group kill follows only when
// the process itself was still there. The caller reaps it.
func killCmd(c *exec.Cmd) {
	p := c.Process
	if p == nil {
		return
	}
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return // already finished
	}
	_ = syscall.Kill(-p.Pid, syscall.SIGKILL)
}
