// Package tunnel keeps a reverse SSH maintenance tunnel open from the box
// to a maintenance host. A box on a cellular modem sits behind carrier NAT
// and cannot be reached from outside, so it dials out: it logs in to the
// maintenance host's sshd with its own key, checks that host's key against
// a known_hosts file, and asks for a remote forward of the host's loopback
// port remote_port. Every connection to 127.0.0.1:remote_port on the
// maintenance host then reaches Config.Local on the box (its own sshd by
// default), where a maintainer logs in and runs onairctl.
//
// The tunnel routes over "whichever uplink works": it dials with the
// default routing, and the box's main table has the working uplink's
// default route (bond keeps it so). It does not pick an uplink itself.
//
// The tunnel's bytes, both directions and all forwarded connections
// together, pass one token bucket (rate_kbps), so a maintenance session
// never competes with the stream. A keepalive@openssh.com request goes out
// every keepalive; no reply within keepalive counts as a dead connection.
// On any failure everything is closed and the tunnel is tried again after
// a doubling, jittered backoff that resets once a tunnel stayed up a minute.
// After an outage without a clean close the maintenance host's old session
// still holds remote_port until its own sshd notices (ClientAliveInterval
// there): until then the forward request is denied and the tunnel retries.
//
// It uses golang.org/x/crypto/ssh, the SSH library of the Go field (and of
// the tools this firmware is modelled on), with x/crypto/ssh/knownhosts for
// the host key check; there is no way to skip that check.
//
// Not for: an SSH server (the box runs OpenSSH's sshd), running commands
// itself, forwarding the stream, or choosing routes.
package tunnel

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
	"golang.org/x/sync/errgroup"

	"onair/web/api"
)

// Sentinel errors, wrapped in what Run records as LastError.
var (
	// ErrHostKey: the maintenance host's key is not in known_hosts, differs
	// from it, or is revoked there.
	// It reads "maintenance.tunnel: host key of HOST:PORT …".
	ErrHostKey = errors.New("maintenance.tunnel: host key")
	// ErrAuth: the maintenance host did not accept the user and key.
	ErrAuth = errors.New("maintenance.tunnel: login refused")
	// ErrKeepalive: a keepalive got no reply within keepalive.
	ErrKeepalive = errors.New("maintenance.tunnel: keepalive timed out")
)

// handshakeTimeout bounds dialling plus the SSH handshake plus the remote
// forward request of one attempt.
const handshakeTimeout = 30 * time.Second

// Deps are what a Tunnel uses from outside.
type Deps struct {
	// Log receives the tunnel's events; nil logs nothing.
	Log *zap.Logger
	// Clock times keepalives, timeouts and the backoff; nil is the real clock.
	Clock clockwork.Clock
	// Dial reaches the maintenance host; nil is a net.Dialer (the default
	// routing). Local is always dialled with a plain net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Tunnel is one maintenance tunnel. Status and Changed are safe for
// concurrent use; Run is called once.
//
// States (api.TunnelState) and their transitions:
//
//	connecting → up                   the remote forward opened (Connects+1)
//	connecting → backoff | refused    the attempt failed (refused: host key or login)
//	up         → backoff              the connection died, a keepalive timed out, Accept failed
//	backoff    → connecting           RetryAt came
//	refused    → connecting           RetryAt came (known_hosts is re-read then)
//
// Run starts in connecting and returns from any state when its ctx ends.
type Tunnel struct {
	cfg       Config
	log       *zap.Logger
	clock     clockwork.Clock
	dial      func(ctx context.Context, network, addr string) (net.Conn, error)
	dialLocal func(ctx context.Context, network, addr string) (net.Conn, error)
	signer    ssh.Signer
	target    string // user@host:port
	addr      string // host:port
	lim       *limiter
	bo        *backoff

	mu      sync.Mutex
	st      api.TunnelStatus
	changed chan struct{} // closed and replaced on every state change
}

// New checks cfg (zero optional fields take their defaults), reads the key
// file and known_hosts, and returns a tunnel that Run opens.
func New(cfg Config, deps Deps) (*Tunnel, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pem, err := os.ReadFile(cfg.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("%s.key_file: %w", KeyPrefix, err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		return nil, fmt.Errorf("%s.key_file: %s: %w", KeyPrefix, cfg.KeyFile, err)
	}
	if _, err := knownhosts.New(cfg.KnownHosts); err != nil {
		return nil, fmt.Errorf("%s.known_hosts: %w", KeyPrefix, err)
	}
	t := &Tunnel{
		cfg:       cfg,
		log:       deps.Log,
		clock:     deps.Clock,
		dial:      deps.Dial,
		dialLocal: (&net.Dialer{}).DialContext,
		signer:    signer,
		addr:      net.JoinHostPort(cfg.Host, strconv.Itoa(cfg.Port)),
		changed:   make(chan struct{}),
	}
	if t.log == nil {
		t.log = zap.NewNop()
	}
	if t.clock == nil {
		t.clock = clockwork.NewRealClock()
	}
	if t.dial == nil {
		t.dial = (&net.Dialer{}).DialContext
	}
	t.target = cfg.User + "@" + t.addr
	t.lim = newLimiter(cfg.RateKbps, t.clock)
	t.bo = newBackoff(cfg.BackoffMin, cfg.BackoffMax, t.clock)
	t.st = api.TunnelStatus{State: api.TunnelConnecting, Target: t.target, RemotePort: cfg.RemotePort, Since: t.clock.Now()}
	return t, nil
}

// Status returns the tunnel as it is now.
func (t *Tunnel) Status() api.TunnelStatus {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.st
}

// Changed returns a channel that is closed at the next change of State,
// Connects, Sessions or LastError (not of the byte counts).
func (t *Tunnel) Changed() <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.changed
}

// setState enters s; fn, if not nil, edits the status under the lock.
func (t *Tunnel) setState(s api.TunnelState, fn func(*api.TunnelStatus)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.st.State, t.st.Since = s, t.clock.Now()
	if s != api.TunnelBackoff && s != api.TunnelRefused {
		t.st.RetryAt = time.Time{}
	}
	if fn != nil {
		fn(&t.st)
	}
	close(t.changed)
	t.changed = make(chan struct{})
}

// edit edits the status under the lock; notify wakes Changed's waiters.
func (t *Tunnel) edit(notify bool, fn func(*api.TunnelStatus)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fn(&t.st)
	if notify {
		close(t.changed)
		t.changed = make(chan struct{})
	}
}

// Run keeps the tunnel open until ctx ends, then closes it and returns nil
// once all its goroutines have exited.
func (t *Tunnel) Run(ctx context.Context) error {
	for {
		err := t.attempt(ctx)
		if ctx.Err() != nil {
			return nil
		}
		wait := t.bo.failed()
		state := api.TunnelBackoff
		if errors.Is(err, ErrHostKey) || errors.Is(err, ErrAuth) {
			state = api.TunnelRefused
		}
		retry := t.clock.Now().Add(wait)
		t.log.Warn("tunnel down", zap.String("target", t.target), zap.Error(err),
			zap.Duration("retry_in", wait), zap.String("state", string(state)))
		t.setState(state, func(s *api.TunnelStatus) { s.LastError, s.RetryAt = err.Error(), retry })
		tm := t.clock.NewTimer(wait)
		select {
		case <-ctx.Done():
			tm.Stop()
			return nil
		case <-tm.Chan():
		}
	}
}

// attempt dials, logs in, opens the remote forward and serves it until
// something fails or ctx ends. It returns why it ended.
func (t *Tunnel) attempt(ctx context.Context) error {
	t.setState(api.TunnelConnecting, nil)
	client, ln, err := t.open(ctx)
	if err != nil {
		return err
	}
	t.bo.up()
	t.log.Info("tunnel up", zap.String("target", t.target), zap.Int("remote_port", t.cfg.RemotePort),
		zap.String("local", t.cfg.Local))
	t.setState(api.TunnelUp, func(s *api.TunnelStatus) { s.Connects++ })

	g, gctx := errgroup.WithContext(ctx)
	conns := &connSet{m: map[net.Conn]struct{}{}}
	g.Go(func() error { // teardown: whatever ends first closes everything
		<-gctx.Done()
		// The client first: the listener's Close sends a cancel request
		// that waits behind an unanswered keepalive (x/crypto/ssh holds one
		// global request at a time), and a dead client fails it at once.
		_ = client.Close()
		_ = ln.Close()
		conns.closeAll()
		return nil
	})
	g.Go(func() error {
		err := client.Wait()
		if err == nil {
			err = io.EOF
		}
		return fmt.Errorf("maintenance.tunnel: connection to %s ended: %w", t.addr, err)
	})
	g.Go(func() error { return t.keepalive(gctx, client, g) })
	g.Go(func() error {
		for {
			c, err := ln.Accept()
			if err != nil {
				return fmt.Errorf("maintenance.tunnel: accept on %s 127.0.0.1:%d: %w", t.addr, t.cfg.RemotePort, err)
			}
			if !conns.add(c) {
				_ = c.Close()
				return gctx.Err()
			}
			g.Go(func() error {
				t.forward(gctx, c, conns)
				return nil
			})
		}
	})
	return g.Wait()
}

// open dials the maintenance host, logs in with the host key checked and
// opens the remote forward, all within handshakeTimeout.
func (t *Tunnel) open(ctx context.Context) (*ssh.Client, net.Listener, error) {
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	timedOut := make(chan struct{})
	tm := t.clock.AfterFunc(handshakeTimeout, func() { close(timedOut); cancel() })
	defer tm.Stop()
	timeout := func(err error) error {
		select {
		case <-timedOut:
			return fmt.Errorf("maintenance.tunnel: %s: no tunnel within %s: %w", t.addr, handshakeTimeout, err)
		default:
			return err
		}
	}

	conn, err := t.dial(actx, "tcp", t.addr)
	if err != nil {
		return nil, nil, timeout(fmt.Errorf("maintenance.tunnel: dial %s: %w", t.addr, err))
	}
	// The handshake and the forward request block on the connection:
	// closing it when actx ends (timeout or shutdown) unblocks them.
	stop := context.AfterFunc(actx, func() { _ = conn.Close() })

	hk, err := t.hostKeyCheck(conn.RemoteAddr())
	if err != nil {
		stop()
		_ = conn.Close()
		return nil, nil, err
	}
	cc, chans, reqs, err := ssh.NewClientConn(conn, t.addr, &ssh.ClientConfig{
		User:              t.cfg.User,
		Auth:              []ssh.AuthMethod{ssh.PublicKeys(t.signer)},
		HostKeyCallback:   hk.callback,
		HostKeyAlgorithms: hk.algorithms,
	})
	if err != nil {
		stop()
		_ = conn.Close()
		switch {
		case hk.err != nil:
			return nil, nil, hk.err
		case strings.Contains(err.Error(), "unable to authenticate"):
			return nil, nil, fmt.Errorf("%w: %s did not accept %s with key %s (%s): %w", ErrAuth, t.addr, t.cfg.User,
				t.cfg.KeyFile, ssh.FingerprintSHA256(t.signer.PublicKey()), err)
		}
		return nil, nil, timeout(fmt.Errorf("maintenance.tunnel: ssh to %s: %w", t.addr, err))
	}
	client := ssh.NewClient(cc, chans, reqs)
	ln, err := client.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(t.cfg.RemotePort)))
	if !stop() || err != nil { // stop false: actx ended, conn is closed
		_ = client.Close()
		if err == nil {
			err = actx.Err()
		}
		return nil, nil, timeout(fmt.Errorf("maintenance.tunnel: remote forward of 127.0.0.1:%d on %s: %w",
			t.cfg.RemotePort, t.addr, err))
	}
	return client, ln, nil
}

// hostKey is one attempt's host key check: known_hosts as read now, the
// key algorithms it holds for the host (so the server is asked for a key
// the file can confirm), and the refusal the callback made, if any.
type hostKey struct {
	t          *Tunnel
	check      ssh.HostKeyCallback
	algorithms []string
	err        error
}

// hostKeyCheck reads known_hosts for one attempt at remote.
func (t *Tunnel) hostKeyCheck(remote net.Addr) (*hostKey, error) {
	check, err := knownhosts.New(t.cfg.KnownHosts)
	if err != nil {
		return nil, fmt.Errorf("%w of %s: cannot check: %s.known_hosts: %w", ErrHostKey, t.addr, KeyPrefix, err)
	}
	hk := &hostKey{t: t, check: check}
	// Ask with a key no file holds: the KeyError lists the known ones.
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	probe, _ := ssh.NewPublicKey(pub)
	var ke *knownhosts.KeyError
	if errors.As(check(t.addr, remote, probe), &ke) {
		for _, k := range ke.Want {
			hk.algorithms = append(hk.algorithms, algorithmsFor(k.Key.Type())...)
		}
	}
	return hk, nil
}

// algorithmsFor lists the host key algorithms that produce a key of type typ.
func algorithmsFor(typ string) []string {
	if typ == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{typ}
}

func (hk *hostKey) callback(hostname string, remote net.Addr, key ssh.PublicKey) error {
	err := hk.check(hostname, remote, key)
	if err == nil {
		return nil
	}
	t := hk.t
	got := key.Type() + " " + ssh.FingerprintSHA256(key)
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case errors.As(err, &ke) && len(ke.Want) == 0:
		hk.err = fmt.Errorf("%w of %s is not in %s (%s)", ErrHostKey, t.addr, t.cfg.KnownHosts, got)
	case errors.As(err, &ke):
		w := ke.Want[0]
		hk.err = fmt.Errorf("%w of %s (%s) differs from %s:%d (%s %s)", ErrHostKey, t.addr, got,
			w.Filename, w.Line, w.Key.Type(), ssh.FingerprintSHA256(w.Key))
	case errors.As(err, &re):
		hk.err = fmt.Errorf("%w of %s (%s) is revoked in %s:%d", ErrHostKey, t.addr, got,
			re.Revoked.Filename, re.Revoked.Line)
	default:
		hk.err = fmt.Errorf("%w of %s (%s): %w", ErrHostKey, t.addr, got, err)
	}
	return hk.err
}

// keepalive sends keepalive@openssh.com every Keepalive and fails when a
// reply (of either kind: sshd answers unknown requests with a failure)
// takes longer than Keepalive.
// The request runs on g, which the teardown closing client unblocks.
func (t *Tunnel) keepalive(ctx context.Context, client *ssh.Client, g *errgroup.Group) error {
	every := t.cfg.Keepalive
	for {
		tm := t.clock.NewTimer(every)
		select {
		case <-ctx.Done():
			tm.Stop()
			return nil
		case <-tm.Chan():
		}
		reply := make(chan error, 1)
		g.Go(func() error { // ends when the reply comes or the client is closed
			_, _, err := client.SendRequest("keepalive@openssh.com", true, nil)
			reply <- err
			return nil
		})
		tm = t.clock.NewTimer(every)
		select {
		case <-ctx.Done():
			tm.Stop()
			return nil
		case err := <-reply:
			tm.Stop()
			if err != nil {
				return fmt.Errorf("maintenance.tunnel: keepalive to %s: %w", t.addr, err)
			}
			t.log.Debug("keepalive answered", zap.String("target", t.target))
		case <-tm.Chan():
			return fmt.Errorf("%w: no reply from %s within %s", ErrKeepalive, t.addr, every)
		}
	}
}

// forward connects one tunnelled connection c to Local and copies both ways
// through the limiter until both directions end or ctx ends.
func (t *Tunnel) forward(ctx context.Context, c net.Conn, conns *connSet) {
	defer conns.remove(c)
	t.edit(true, func(s *api.TunnelStatus) { s.Sessions++ })
	defer t.edit(true, func(s *api.TunnelStatus) { s.Sessions-- })
	local, err := t.dialLocal(ctx, "tcp", t.cfg.Local)
	if err != nil {
		t.log.Warn("tunnelled connection: local unreachable", zap.String("local", t.cfg.Local), zap.Error(err))
		return
	}
	if !conns.add(local) {
		_ = local.Close()
		return
	}
	defer conns.remove(local)
	t.log.Info("tunnelled connection", zap.String("local", t.cfg.Local))
	var wg sync.WaitGroup
	half := func(dst, src net.Conn, count *uint64) {
		defer wg.Done()
		_, err := t.lim.copy(ctx, dst, src, func(n int) { t.edit(false, func(*api.TunnelStatus) { *count += uint64(n) }) })
		if cw, ok := dst.(interface{ CloseWrite() error }); ok && err == nil {
			_ = cw.CloseWrite()
			return
		}
		// A failed direction ends the connection: the other direction's
		// Read returns when both sides are closed.
		_ = dst.Close()
		_ = src.Close()
	}
	wg.Add(2)
	go half(local, c, &t.st.BytesIn)
	go half(c, local, &t.st.BytesOut)
	wg.Wait()
	t.log.Info("tunnelled connection closed", zap.String("local", t.cfg.Local))
}

// connSet holds the open connections of one tunnel, so that its teardown
// closes them; after closeAll it takes no more.
type connSet struct {
	mu     sync.Mutex
	closed bool
	m      map[net.Conn]struct{}
}

func (s *connSet) add(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.m[c] = struct{}{}
	return true
}

// remove closes c and forgets it.
func (s *connSet) remove(c net.Conn) {
	_ = c.Close()
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, c)
}

func (s *connSet) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for c := range s.m {
		_ = c.Close()
	}
}
