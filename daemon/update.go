package daemon

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"go.uber.org/zap"

	"onair/internal/version"
	"onair/supervisor"
	"onair/update"
	"onair/web/api"
)

// updater is the A/B update as onaird runs it: the Marker (a trial boot
// made good once healthy), and at most one install at a time into the
// inactive slot.
type updater struct {
	marker *update.Marker
	inst   *update.Installer
	err    error // why updates cannot run although configured

	mu      sync.Mutex
	install *api.UpdateInstall
	busy    bool
	ctx     context.Context // ends with onaird: an install in flight is abandoned (the old slot still boots)
	cancel  context.CancelFunc
}

// buildUpdate adds the Marker when updates are configured. A bootloader or
// key it cannot use is said in status; the stream never waits for it.
func (d *Daemon) buildUpdate() error {
	c := d.cfg.Update.Config
	if !c.Configured() {
		return nil
	}
	u := &updater{}
	u.ctx, u.cancel = context.WithCancel(context.Background())
	d.update = u
	boot, err := update.NewBootloader(c)
	if err == nil {
		u.inst, err = update.NewInstaller(c, update.InstallerDeps{Boot: boot, Log: d.log.Named("update"), Progress: u.progress, Version: version.Version})
	}
	if err == nil {
		u.marker, err = update.New(c.MarkerConfig(), update.MarkerDeps{Boot: boot, Healthy: d.healthy, Log: d.log.Named("update"), Clock: d.clock,
			TrialFile: filepath.Join(d.cfg.RuntimeDir, "trial.json")})
	}
	if err != nil {
		u.err = err
		d.log.Error("updates cannot run", zap.Error(err))
		return nil
	}
	return d.front.Add(supervisor.ComponentSpec{Name: "update", Run: func(ctx context.Context) error {
		defer u.cancel()
		return u.marker.Run(ctx)
	}, Backoff: d.backoff()})
}

// healthy is what makes a trial boot good: every child running, the twins
// locked, and the stream connected (or stopped on purpose by the crew).
func (d *Daemon) healthy() bool {
	st := box{d}.Status()
	for _, c := range st.Children {
		if c.State != supervisor.StateRunning {
			return false
		}
	}
	sw := st.Video.Switch
	if sw.Twins && !sw.Locked {
		return false
	}
	return st.State == api.BoxOnAir || st.State == api.BoxStopped
}

func (u *updater) progress(p update.Progress) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.install != nil {
		u.install.State, u.install.Done, u.install.Total = p.Phase, p.Done, p.Total
	}
}

func (u *updater) set(f func(in *api.UpdateInstall)) {
	u.mu.Lock()
	defer u.mu.Unlock()
	f(u.install)
}

// updateStatus is the update's status, nil when updates are not configured.
func (d *Daemon) updateStatus() *api.UpdateStatus {
	u := d.update
	if u == nil {
		return nil
	}
	var st api.UpdateStatus
	if u.marker != nil {
		st = u.marker.Status()
	} else {
		st = api.UpdateStatus{State: api.UpdateError, LastError: u.err.Error()}
	}
	u.mu.Lock()
	if u.install != nil {
		in := *u.install
		st.Install = &in
	}
	u.mu.Unlock()
	return &st
}

// Update starts installing req.Bundle into the inactive slot. Refused
// while on air unless req.Force; with req.AtStop it waits until the crew
// next stops. A bundle that is not newer than the running version is
// refused here, at once (its signature and manifest read, not its parts),
// unless req.AllowDowngrade; the install checks it again.
func (b box) Update(req api.UpdateRequest) (api.UpdateInstall, error) {
	d := b.d
	u := d.update
	bundle, force, atStop := req.Bundle, req.Force, req.AtStop
	switch {
	case u == nil:
		return api.UpdateInstall{}, errors.New("update: not configured (update.public_key is empty)")
	case u.err != nil:
		return api.UpdateInstall{}, fmt.Errorf("update: %w", u.err)
	case !filepath.IsAbs(bundle):
		return api.UpdateInstall{}, fmt.Errorf("update: bundle %q: want an absolute path on the box", bundle)
	}
	opts := update.InstallOptions{AllowDowngrade: req.AllowDowngrade}
	if _, err := u.inst.Check(bundle, opts); err != nil {
		if errors.Is(err, update.ErrDowngrade) {
			err = fmt.Errorf("%w: refused (an old signed bundle replayed would bring back what was fixed since); --allow-downgrade installs it", err)
		}
		d.events.Add(api.Event{Kind: api.EventUpdate, Reason: fmt.Sprintf("install of %s refused: %v", bundle, err)})
		return api.UpdateInstall{}, err
	}
	live := d.live.Status().Phase != api.OnAirStopped
	if live && !force && !atStop {
		return api.UpdateInstall{}, errors.New("update: the box is on air: the install would compete with the stream for the disk; say --at-stop (when the crew next stops) or --force")
	}
	u.mu.Lock()
	if u.busy {
		u.mu.Unlock()
		return api.UpdateInstall{}, update.ErrBusy
	}
	u.busy = true
	state := "verify"
	if live && atStop && !force {
		state = "waiting"
	}
	u.install = &api.UpdateInstall{Bundle: bundle, State: state, Started: d.clock.Now()}
	in := *u.install
	u.mu.Unlock()
	go d.runInstall(bundle, opts, state == "waiting")
	return in, nil
}

// runInstall waits for a stop if asked, then installs.
func (d *Daemon) runInstall(bundle string, opts update.InstallOptions, wait bool) {
	u := d.update
	defer func() {
		u.mu.Lock()
		u.busy = false
		u.mu.Unlock()
	}()
	for wait && d.live.Status().Phase != api.OnAirStopped {
		select {
		case <-u.ctx.Done():
			u.set(func(in *api.UpdateInstall) {
				in.State, in.Error, in.Ended = "failed", "onaird stopped before the crew did", d.clock.Now()
			})
			return
		case <-d.clock.After(500 * time.Millisecond):
		}
	}
	res, err := u.inst.Install(u.ctx, bundle, opts)
	if err != nil {
		d.log.Error("update failed: the old slot still boots", zap.String("bundle", bundle), zap.Error(err))
		d.events.Add(api.Event{Kind: api.EventUpdate, Reason: fmt.Sprintf("install of %s refused or failed: %v (the running slot still boots)", bundle, err)})
		u.set(func(in *api.UpdateInstall) { in.State, in.Error, in.Ended = "failed", err.Error(), d.clock.Now() })
		return
	}
	downgrade := ""
	if cerr := update.CheckNewer(version.Version, res.Manifest.Version); cerr != nil {
		downgrade = fmt.Sprintf(" (not newer than the running %s: --allow-downgrade)", version.Version)
	}
	d.events.Add(api.Event{Kind: api.EventUpdate, Subject: string(res.Slot), Reason: fmt.Sprintf("%s written to slot %s in %s: trial at the next boot (%d tries)%s",
		res.Manifest.Version, res.Slot, res.Took.Round(time.Millisecond), res.Tries, downgrade)})
	u.set(func(in *api.UpdateInstall) {
		in.State, in.Slot, in.Version, in.Ended = "done", string(res.Slot), res.Manifest.Version, d.clock.Now()
	})
}
