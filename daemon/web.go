package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"go.uber.org/zap"

	"onair/encoder/tsmux"
	"onair/events"
	"onair/internal/logging"
	"onair/output"
	"onair/record"
	"onair/supervisor"
	"onair/web"
	"onair/web/api"
	"onair/web/auth"
	"onair/web/metrics"
	"onair/web/page"
)

// buildWeb makes the event ring, the page's authentication and the API
// server. A problem with the authentication (its dir cannot be made) locks
// the page, never the stream: the socket still serves onairctl.
func (d *Daemon) buildWeb() error {
	c := d.cfg.API
	wcfg := web.Config{Listen: c.Listen, HTTPS: c.HTTPS, Socket: c.Socket, Names: c.Names,
		Events: d.events, Logs: d.logs,
		Metrics:       metrics.New(box{d}.Status, d.log.Named("metrics")).Handler(),
		MetricsListen: d.cfg.Metrics.Listen, MetricsAllow: d.cfg.Metrics.AllowPrefixes()}
	if c.Listen != "" || c.HTTPS != "" {
		p, err := page.New(page.Config{Status: box{d}.Status, Events: d.events, Logs: d.logs}, d.log.Named("page"), d.clock)
		if err != nil {
			return err
		}
		wcfg.Page, d.page = p, p
		a, err := auth.New(auth.Config{Dir: c.AuthDir, Public: page.Public(), OnEvent: func(what, client string) {
			d.events.Add(api.Event{Kind: api.EventLogin, Subject: client, Reason: what})
		}}, d.log.Named("auth"), d.clock)
		if err != nil {
			wcfg.AuthErr = fmt.Errorf("api.auth_dir: %w", err)
			d.authErr = wcfg.AuthErr
			d.log.Error("web page locked: its authentication cannot start", zap.Error(wcfg.AuthErr))
		} else {
			wcfg.Auth, d.auth = a, a
			if tok, ok := a.SetupToken(); ok {
				// To stderr (the journal), never through zap: the log tail
				// is shown on the page, and the token opens it.
				fmt.Fprintf(os.Stderr, "onaird: no password is set: the web page offers only setup; setup token: %s (also: onairctl setup-token)\n", tok)
			}
			if st, err := a.State(); st == auth.StateLocked {
				d.log.Error("web page locked: the password file is unusable; set a new password with onairctl passwd", zap.Error(err))
			}
		}
	}
	if c.HTTPS != "" {
		// Without a certificate there is no HTTPS listener (said in status
		// and the log); the stream and the other listeners go on. Without
		// auth but with a certificate, HTTPS answers 503 with the reason.
		cert, err := auth.LoadOrCreateCertificate(auth.CertConfig{Dir: c.AuthDir, Extra: c.Names}, d.log.Named("tls"), d.clock)
		if err != nil {
			d.certErr = fmt.Errorf("api.https: %w", err)
			d.log.Error("no https: the certificate cannot be made or read (remove cert.pem and key.pem for a new one)", zap.Error(err))
			wcfg.HTTPS = ""
		} else {
			wcfg.Cert, d.cert = cert, cert
			d.log.Info("https certificate", zap.String("fingerprint", cert.Fingerprint()))
		}
	}
	if wcfg.Listen == "" && wcfg.HTTPS == "" && wcfg.Socket == "" {
		return fmt.Errorf("api: nothing to serve (api.https failed and neither api.listen nor api.socket is set): %w", d.certErr)
	}
	var err error
	d.api, err = web.New(wcfg, box{d}, d.log.Named("api"))
	return err
}

// withLogTail makes log also keep its lines for the page and onairctl logs.
func (d *Daemon) withLogTail() {
	d.logs = logging.NewTail(0)
	d.log = logging.WithTail(d.log, d.logs)
	d.events = events.New(0, d.log.Named("events"), d.clock)
}

// buildRecording makes the recorder when recording.dir is set.
func (d *Daemon) buildRecording() error {
	r := d.cfg.Recording
	if r.Dir == "" {
		return nil
	}
	rec, err := record.New(record.Config{Dir: r.Dir, Segment: r.Segment.D(), AutoStart: r.AutoStart},
		record.Deps{Log: d.log.Named("recording"), Clock: d.clock})
	if err != nil {
		return err
	}
	d.rec.Store(rec)
	return nil
}

// recorder is the local recording, nil when recording.dir is not set.
func (d *Daemon) recorder() *record.Recorder { return d.rec.Load() }

// programmeOut is what the programme writes to: the output, and the
// recorder with the same bytes (Write never blocks; none: not recording).
type programmeOut struct {
	out *output.SRT
	d   *Daemon
}

var _ tsmux.SessionWriter = programmeOut{}

func (p programmeOut) Session() int { return p.out.Session() }

func (p programmeOut) WriteSession(n int, b []byte) (int, error) {
	if r := p.d.recorder(); r != nil && n == p.out.Session() {
		_, _ = r.Write(b) // never fails: a full queue is counted in its status
	}
	return p.out.WriteSession(n, b)
}

// SetRecording starts or stops the local recording.
func (b box) SetRecording(ctx context.Context, on bool) (api.RecordingStatus, error) {
	b.d.recMu.Lock() // not while config apply swaps the recorder
	defer b.d.recMu.Unlock()
	r := b.d.recorder()
	if r == nil {
		return api.RecordingStatus{}, fmt.Errorf("recording: recording.dir is not configured: %w", web.ErrNotFound)
	}
	var err error
	if on {
		err = r.Start("operator")
	} else {
		err = r.Stop(ctx, "operator")
	}
	return r.Status(), err
}

// pageStatus is the page's listeners and authentication, nil when no TCP
// listener is configured.
func (d *Daemon) pageStatus() *api.PageStatus {
	c := d.cfg.API
	if c.Listen == "" && c.HTTPS == "" {
		return nil
	}
	ps := &api.PageStatus{Listen: c.Listen, Auth: "unavailable", Streams: d.page.Streams()}
	if d.cert != nil {
		ps.HTTPS, ps.Fingerprint = c.HTTPS, d.cert.Fingerprint()
	}
	if d.certErr != nil {
		ps.AuthError = d.certErr.Error()
	}
	if d.auth == nil {
		if d.authErr != nil {
			ps.AuthError = d.authErr.Error()
		}
		return ps
	}
	st, err := d.auth.State()
	ps.Auth = st.String()
	if err != nil {
		ps.AuthError = err.Error()
	}
	return ps
}

// restartCosts says what restarting child name would cost the viewers
// now ("" for nothing): the capture freezes the picture; an encoder
// without a locked twin breaks the video; an audio chain without a healthy
// other chain breaks the sound.
func (d *Daemon) restartCosts(name string) string {
	st := box{d}.Status()
	sw := st.Video.Switch
	switch {
	case name == "capture":
		return "the picture freezes (repeat, then the slate) until capture is back"
	case strings.HasPrefix(name, "encoder-"):
		if !sw.Twins || !sw.Locked || len(sw.Alive) < 2 || !sw.Alive[0] || !sw.Alive[1] {
			return "the twins are not both running and locked: the video would break"
		}
	case strings.HasPrefix(name, "audio-"):
		chain := strings.TrimPrefix(name, "audio-")
		for _, c := range st.Audio.Chains {
			if c.Name != chain && c.State == api.AudioChainOK {
				return ""
			}
		}
		return "no other healthy audio chain: the sound would break"
	}
	return ""
}

// interrupting are the components whose restart reconnects the stream.
var interrupting = map[string]bool{"output": true, "bond": true}

// Restart restarts one child (its process group is killed and a new
// instance starts at once) or one in-process component.
func (b box) Restart(name string, force bool) (api.RestartResult, error) {
	d := b.d
	if name == "recording" {
		return api.RestartResult{}, errors.New("restart recording: it would end the segment and lose whether it was recording: use onairctl record stop, then record start")
	}
	for _, c := range d.children {
		if c.sup.Status().Name == name {
			if why := d.restartCosts(name); why != "" && !force {
				return api.RestartResult{}, fmt.Errorf("restart %s: %s: say --yes", name, why)
			}
			c.sup.Restart(0, "operator: onairctl restart")
			return api.RestartResult{Name: name, Kind: "child"}, nil // its event comes from the status
		}
	}
	if interrupting[name] && !force {
		return api.RestartResult{}, fmt.Errorf("restart %s: it reconnects the stream (the viewers see a break): say --yes", name)
	}
	for _, g := range []*supervisor.Group{d.front, d.tail, d.links} {
		err := g.Restart(name, "operator: onairctl restart")
		if errors.Is(err, supervisor.ErrUnknownComponent) {
			continue
		}
		if err != nil {
			return api.RestartResult{}, err
		}
		return api.RestartResult{Name: name, Kind: "component"}, nil
	}
	return api.RestartResult{}, fmt.Errorf("restart %q: no such child or component (onairctl status lists them): %w", name, web.ErrNotFound)
}
