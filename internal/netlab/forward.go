package netlab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"github.com/vishvananda/netns"
	"go.uber.org/zap"
)

// ErrUnknownNamespace is returned by NewForwarder for a namespace name that
// has no /run/netns entry.
var ErrUnknownNamespace = errors.New("netlab: unknown namespace")

// maxForwardConns bounds the connections a Forwarder joins at once; one
// more is closed on arrival.
const maxForwardConns = 64

// ForwardConfig configures a Forwarder.
type ForwardConfig struct {
	// Listen is the TCP address to accept on, in the caller's own network
	// namespace (e.g. "127.0.0.1:8080"; port 0 picks one).
	Listen string
	// Namespace is the named network namespace (ip netns, /run/netns) to
	// dial in: a lab's Box, or one scripts/lab.sh made.
	Namespace string
	// Dial is the TCP address to connect to inside Namespace.
	Dial string
}

// Forwarder joins TCP connections accepted in the caller's namespace to
// connections it dials inside another namespace, byte for byte, both ways.
// The demo (scripts/demo.sh) uses it to show onaird's loopback-only status
// page, which runs in the lab's box namespace, on the host's loopback. It
// is NOT a proxy of any protocol: it does not read what it carries.
type Forwarder struct {
	cfg ForwardConfig
	log *zap.Logger
	ns  netns.NsHandle
	ln  net.Listener
}

// NewForwarder opens the namespace and listens on cfg.Listen. Run serves.
func NewForwarder(cfg ForwardConfig, log *zap.Logger) (*Forwarder, error) {
	if log == nil {
		log = zap.NewNop()
	}
	h, err := netns.GetFromName(cfg.Namespace)
	if err != nil {
		return nil, fmt.Errorf("%w %q: %w", ErrUnknownNamespace, cfg.Namespace, err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		_ = h.Close()
		return nil, fmt.Errorf("netlab: forward: listen: %w", err)
	}
	return &Forwarder{cfg: cfg, log: log, ns: h, ln: ln}, nil
}

// Addr is the address the Forwarder accepts on.
func (f *Forwarder) Addr() net.Addr { return f.ln.Addr() }

// Run accepts and joins connections until ctx ends, then closes the
// listener and every open connection and returns once all are gone (nil
// after a cancel). A dial that fails inside the namespace closes the
// accepted connection and is logged; the Forwarder goes on.
func (f *Forwarder) Run(ctx context.Context) error {
	defer func() { _ = f.ns.Close() }()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns = map[net.Conn]struct{}{}
	)
	track := func(cs ...net.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		if ctx.Err() != nil {
			return false
		}
		for _, c := range cs {
			conns[c] = struct{}{}
		}
		return true
	}
	untrack := func(cs ...net.Conn) {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range cs {
			delete(conns, c)
			_ = c.Close()
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		_ = f.ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for c := range conns {
			_ = c.Close()
		}
	}()
	sem := make(chan struct{}, maxForwardConns)
	var err error
	for {
		var c net.Conn
		c, err = f.ln.Accept()
		if err != nil {
			break
		}
		select {
		case sem <- struct{}{}:
		default:
			f.log.Warn("forward: too many connections, one refused", zap.Int("max", maxForwardConns))
			_ = c.Close()
			continue
		}
		if !track(c) {
			_ = c.Close()
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			f.join(ctx, c, track, untrack)
		}()
	}
	parentDone := ctx.Err() != nil
	cancel()
	wg.Wait()
	if parentDone {
		return nil // the listener was closed by the cancel
	}
	return fmt.Errorf("netlab: forward: accept: %w", err)
}

// join dials inside the namespace and copies both ways until both
// directions end; a half close is passed on.
func (f *Forwarder) join(ctx context.Context, c net.Conn, track func(...net.Conn) bool, untrack func(...net.Conn)) {
	defer untrack(c)
	var up net.Conn
	err := doIn(f.ns, func() error {
		var d net.Dialer
		var err error
		up, err = d.DialContext(ctx, "tcp", f.cfg.Dial)
		return err
	})
	if err != nil {
		f.log.Warn("forward: dial inside the namespace failed", zap.String("netns", f.cfg.Namespace),
			zap.String("addr", f.cfg.Dial), zap.Error(err))
		return
	}
	if !track(up) {
		_ = up.Close()
		return
	}
	defer untrack(up)
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); pipe(up, c) }()
	go func() { defer wg.Done(); pipe(c, up) }()
	wg.Wait()
}

// pipe copies src to dst, then half-closes dst's write side (or closes it).
func pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	if tc, ok := dst.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
		return
	}
	_ = dst.Close()
}
