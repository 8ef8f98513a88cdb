package netlab

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/vishvananda/netns"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// Delay makes every UDP packet the box sends on the link arrive d later,
// ± a uniform jitter (never reordered: a packet never overtakes the one
// before it), so the round trip grows by about d; d and jitter 0 remove it.
// The kernel here has no netem, so a relay in the studio namespace does it:
// nft tproxy hands it the packets arriving on the link, and it sends them
// on to their destination from the box's own address and port (a
// transparent socket), so the studio sees exactly what it would without
// the relay. What the studio sends back is not delayed. A change applies
// to packets arriving from then on. At most maxRelayQueue packets wait;
// beyond that they are dropped, like a full modem buffer. Limit: tproxy
// hands a packet straight to a studio socket connected to exactly its
// source (not to the relay), so only flows to unconnected studio sockets
// (listeners, as onair-ingest and srt-live-transmit use) are delayed.
func (l *Lab) Delay(name string, d, jitter time.Duration) error {
	if d < 0 || jitter < 0 || jitter > d {
		return fmt.Errorf("netlab: delay %v ± %v: want 0 <= jitter <= delay", d, jitter)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	ln, err := l.link(name)
	if err != nil {
		return err
	}
	ctx := context.Background()
	switch {
	case d == 0 && ln.relay != nil:
		ln.relay.close()
		ln.relay = nil
		return l.applyStudioNft(ctx)
	case d == 0:
		return nil
	case ln.relay != nil:
		ln.relay.set(d, jitter)
		return nil
	}
	r, err := startRelay(l.ns[l.Studio], l.log.With(zap.String("link", name)), d, jitter)
	if err != nil {
		return err
	}
	ln.relay = r
	return l.applyStudioNft(ctx)
}

// maxRelayQueue bounds the packets a relay holds.
const maxRelayQueue = 8192

// relay delays the packets of one link (see Delay).
type relay struct {
	ns           netns.NsHandle
	log          *zap.Logger
	ln4, ln6     *net.UDPConn // transparent listeners the tproxy rules point at
	port4, port6 int
	queue        chan delayed
	done         chan struct{}
	wg           sync.WaitGroup

	mu        sync.Mutex
	delay     time.Duration
	jitter    time.Duration
	lastDue   time.Time
	flows     map[flowKey]*net.UDPConn // only the sender goroutine adds
	closeOnce sync.Once
}

type flowKey struct{ src, dst netip.AddrPort }

type delayed struct {
	due  time.Time
	flow flowKey
	data []byte
}

func startRelay(ns netns.NsHandle, log *zap.Logger, d, jitter time.Duration) (*relay, error) {
	r := &relay{ns: ns, log: log, delay: d, jitter: jitter,
		queue: make(chan delayed, maxRelayQueue), done: make(chan struct{}), flows: map[flowKey]*net.UDPConn{}}
	err := doIn(ns, func() error {
		var err error
		if r.ln4, err = transparentListen("udp4", "0.0.0.0:0"); err != nil {
			return err
		}
		r.ln6, err = transparentListen("udp6", "[::]:0")
		return err
	})
	if err != nil {
		if r.ln4 != nil {
			_ = r.ln4.Close()
		}
		return nil, err
	}
	r.port4 = r.ln4.LocalAddr().(*net.UDPAddr).Port
	r.port6 = r.ln6.LocalAddr().(*net.UDPAddr).Port
	r.wg.Add(3)
	go r.read(r.ln4, false)
	go r.read(r.ln6, true)
	go r.send()
	return r, nil
}

// transparentListen opens a UDP socket that can receive tproxied packets
// and learn their original destination.
func transparentListen(network, addr string) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		return control(c, func(fd int) error {
			if network == "udp6" {
				return errors.Join(
					unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1),
					unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_TRANSPARENT, 1),
					unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVORIGDSTADDR, 1))
			}
			return errors.Join(
				unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_TRANSPARENT, 1),
				unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_RECVORIGDSTADDR, 1))
		})
	}}
	pc, err := lc.ListenPacket(context.Background(), network, addr)
	if err != nil {
		return nil, fmt.Errorf("netlab: relay listen %s: %w", network, err)
	}
	return pc.(*net.UDPConn), nil
}

// transparentDial opens a UDP socket bound to src (an address that is not
// the studio's) and connected to dst.
func transparentDial(src, dst netip.AddrPort) (*net.UDPConn, error) {
	v6 := src.Addr().Is6()
	d := net.Dialer{LocalAddr: net.UDPAddrFromAddrPort(src), Control: func(_, _ string, c syscall.RawConn) error {
		return control(c, func(fd int) error {
			reuse := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
			if v6 {
				return errors.Join(reuse, unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_TRANSPARENT, 1))
			}
			return errors.Join(reuse, unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_TRANSPARENT, 1))
		})
	}}
	network := "udp4"
	if v6 {
		network = "udp6"
	}
	c, err := d.Dial(network, dst.String())
	if err != nil {
		return nil, fmt.Errorf("netlab: relay dial %s from %s: %w", dst, src, err)
	}
	return c.(*net.UDPConn), nil
}

func control(c syscall.RawConn, fn func(fd int) error) error {
	var ferr error
	if err := c.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

func (r *relay) set(d, jitter time.Duration) {
	r.mu.Lock()
	r.delay, r.jitter = d, jitter
	r.mu.Unlock()
}

// read takes tproxied packets off a listener and queues them.
func (r *relay) read(c *net.UDPConn, v6 bool) {
	defer r.wg.Done()
	buf := make([]byte, 65536)
	oob := make([]byte, 256)
	for {
		n, oobn, _, src, err := c.ReadMsgUDPAddrPort(buf, oob)
		if err != nil {
			return // closed
		}
		dst, ok := origDst(oob[:oobn], v6)
		if !ok {
			r.log.Warn("[unexpected] relay: packet without its original destination", zap.Stringer("src", src))
			continue
		}
		item := delayed{flow: flowKey{src: netip.AddrPortFrom(src.Addr().Unmap(), src.Port()), dst: dst},
			data: append([]byte(nil), buf[:n]...)}
		r.mu.Lock()
		due := time.Now().Add(r.delay)
		if r.jitter > 0 {
			due = due.Add(time.Duration(rand.Int64N(int64(2*r.jitter+1))) - r.jitter)
		}
		if due.Before(r.lastDue) {
			due = r.lastDue // never reorder
		}
		r.lastDue = due
		r.mu.Unlock()
		item.due = due
		select {
		case r.queue <- item:
		default: // full: dropped
		}
	}
}

// origDst parses IP_ORIGDSTADDR / IPV6_ORIGDSTADDR.
func origDst(oob []byte, v6 bool) (netip.AddrPort, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return netip.AddrPort{}, false
	}
	for _, m := range msgs {
		switch {
		case !v6 && m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_ORIGDSTADDR && len(m.Data) >= unix.SizeofSockaddrInet4:
			port := int(m.Data[2])<<8 | int(m.Data[3])
			return netip.AddrPortFrom(netip.AddrFrom4([4]byte(m.Data[4:8])), uint16(port)), true
		case v6 && m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_ORIGDSTADDR && len(m.Data) >= unix.SizeofSockaddrInet6:
			port := int(m.Data[2])<<8 | int(m.Data[3])
			return netip.AddrPortFrom(netip.AddrFrom16([16]byte(m.Data[8:24])), uint16(port)), true
		}
	}
	return netip.AddrPort{}, false
}

// send delivers queued packets when they are due.
func (r *relay) send() {
	defer r.wg.Done()
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		var it delayed
		select {
		case it = <-r.queue:
		case <-r.done:
			return
		}
		if d := time.Until(it.due); d > 0 {
			t.Reset(d)
			select {
			case <-t.C:
			case <-r.done:
				return
			}
		}
		c, err := r.flow(it.flow)
		if err != nil {
			r.log.Warn("relay: flow", zap.Error(err))
			continue
		}
		_, _ = c.Write(it.data) // a refused or dropped send is the network's business
	}
}

// flow returns the upstream socket of a flow, opening it in the studio.
func (r *relay) flow(k flowKey) (*net.UDPConn, error) {
	r.mu.Lock()
	c, ok := r.flows[k]
	r.mu.Unlock()
	if ok {
		return c, nil
	}
	err := doIn(r.ns, func() error {
		var err error
		c, err = transparentDial(k.src, k.dst)
		return err
	})
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.flows[k] = c
	r.mu.Unlock()
	return c, nil
}

// close stops the relay and closes its sockets; idempotent.
func (r *relay) close() {
	r.closeOnce.Do(func() {
		close(r.done)
		_ = r.ln4.Close()
		_ = r.ln6.Close()
		r.wg.Wait()
		r.mu.Lock()
		for _, c := range r.flows {
			_ = c.Close()
		}
		r.mu.Unlock()
	})
}
