package uplink

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"
)

// kernel is what the Monitor needs from the kernel; netlink in production, a
// fake in the loop's unit tests.
type kernel interface {
	// read returns the whole state (links, addresses, main-table default
	// routes, every route in our tables, every rule).
	read() (state, error)
	// apply makes one change.
	apply(op) error
	// subscribe calls wake for every link, address and route event until stop
	// is called; dead is closed when the subscription breaks (or is stopped).
	// stop waits for the subscription's goroutines.
	subscribe(wake func()) (stop func(), dead <-chan struct{}, err error)
	// close releases the kernel handle.
	close()
}

// Run watches the uplinks until ctx is done and keeps their routing in
// place; call it once per Monitor. It returns only after removing every route
// and rule of ours, with the error of that clean-up if it failed, or the error
// that kept it from starting (no netlink, the first read failed).
func (m *Monitor) Run(ctx context.Context) (err error) {
	k, err := m.open(m.cfg, m.log)
	if err != nil {
		return err
	}
	defer k.close()

	r := &runner{m: m, k: k, log: m.log, owned: ownership(m.cfg), wake: make(chan struct{}, 1)}
	// Subscribe before the first read, so that no change falls between them.
	r.subscribe()
	defer r.unsubscribe()
	st, err := k.read()
	if err != nil {
		return fmt.Errorf("uplink: first read: %w", err)
	}
	defer func() {
		if cerr := r.cleanUp(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	r.update(st, true) // also removes what a crashed run left in our tables

	resync := m.clock.NewTicker(m.cfg.Resync)
	defer resync.Stop()
	var debounce clockwork.Timer
	var debounced <-chan time.Time
	defer func() {
		if debounce != nil {
			debounce.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.wake:
			if debounced == nil {
				debounce = m.clock.NewTimer(m.cfg.Debounce)
				debounced = debounce.Chan()
			}
		case <-debounced:
			debounced = nil
			r.sync()
		case <-r.dead:
			r.log.Warn("netlink subscription broke; polling until it is back", zap.Duration("every", m.cfg.Resync))
			r.unsubscribe()
			r.sync() // events may have been lost
		case <-resync.Chan():
			if r.stop == nil {
				r.subscribe()
			}
			r.sync()
		}
	}
}

// runner is the state of one Run.
type runner struct {
	m     *Monitor
	k     kernel
	log   *zap.Logger
	owned owned
	wake  chan struct{}

	stop      func()
	dead      <-chan struct{}
	subFailed bool // the last subscribe failed (logged once until it works)

	prev []Uplink
}

func (r *runner) subscribe() {
	stop, dead, err := r.k.subscribe(func() {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	})
	if err != nil {
		if !r.subFailed {
			r.log.Warn("netlink subscribe failed; polling", zap.Duration("every", r.m.cfg.Resync), zap.Error(err))
		}
		r.subFailed = true
		return
	}
	if r.subFailed {
		r.log.Info("netlink subscription is back")
	}
	r.subFailed = false
	r.stop, r.dead = stop, dead
}

func (r *runner) unsubscribe() {
	if r.stop != nil {
		r.stop()
	}
	r.stop, r.dead = nil, nil
}

// sync re-reads the state and updates; a failed read is logged and retried at
// the next wake-up or resync.
func (r *runner) sync() {
	st, err := r.k.read()
	if err != nil {
		r.log.Warn("read failed; retrying at the next resync", zap.Error(err))
		return
	}
	r.update(st, false)
}

// update builds the snapshot from st, applies the routing it asks for and
// publishes it when it changed (always the first time).
func (r *runner) update(st state, first bool) {
	ms := build(r.m.cfg, st)
	routes, rules := desired(ms)
	_ = r.applyAll(plan(r.owned, st, routes, rules)) // logged; the next resync retries

	next := uplinks(ms)
	diff := changed(r.prev, next)
	if !first && len(diff) == 0 {
		return
	}
	for _, i := range diff {
		u := next[i]
		r.log.Info("uplink", zap.String("name", u.Spec.Name), zap.String("state", string(u.State)),
			zap.String("interface", u.Interface), zap.String("reason", u.Reason),
			zap.Stringers("addrs", u.Addrs), zap.Stringer("gateway4", u.Gateway4), zap.Stringer("gateway6", u.Gateway6))
	}
	r.prev = next
	r.m.mu.Lock()
	r.m.snap = cloneAll(next)
	r.m.mu.Unlock()
	if r.m.cfg.OnChange != nil {
		r.m.cfg.OnChange(cloneAll(next))
	}
}

// applyAll applies ops, logging failures: they are retried at the next
// resync, which plans again from a fresh read.
func (r *runner) applyAll(ops []op) error {
	var errs []error
	for _, o := range ops {
		if err := r.k.apply(o); err != nil {
			r.log.Warn("routing change failed; retrying at the next resync", zap.Stringer("op", o), zap.Error(err))
			errs = append(errs, err)
			continue
		}
		r.log.Debug("routing", zap.Stringer("op", o))
	}
	return errors.Join(errs...)
}

// cleanUp removes every route and rule of ours, from a fresh read.
func (r *runner) cleanUp() error {
	st, err := r.k.read()
	if err != nil {
		return fmt.Errorf("uplink: read for clean-up: %w", err)
	}
	if err := r.applyAll(plan(r.owned, st, nil, nil)); err != nil {
		return fmt.Errorf("uplink: clean-up: %w", err)
	}
	return nil
}
