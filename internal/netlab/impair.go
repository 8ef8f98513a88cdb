package netlab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"go.uber.org/zap"
)

// Shape limits what the box can send on the link to kbit kbit/s with a tbf
// qdisc on the box-side egress (tc qdisc replace, so a change mid-stream
// takes effect at once); kbit 0 removes the limit. The queue holds
// shapeLatency (400 ms) at the rate on top of the burst, like a modem's
// buffer; the rest is
// dropped.
func (l *Lab) Shape(name string, kbit int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	ln, err := l.link(name)
	if err != nil {
		return err
	}
	ctx := context.Background()
	if kbit <= 0 {
		err := l.run(ctx, nil, "tc", "-n", l.Box, "qdisc", "del", "dev", ln.BoxIf, "root")
		if err != nil && !strings.Contains(err.Error(), "No such file") && !strings.Contains(err.Error(), "Cannot find") {
			return err
		}
		return nil
	}
	return l.run(ctx, nil, "tc", "-n", l.Box, "qdisc", "replace", "dev", ln.BoxIf, "root",
		"tbf", "rate", fmt.Sprintf("%dkbit", kbit), "burst", fmt.Sprint(shapeBurst(kbit)),
		"latency", fmt.Sprintf("%dms", shapeLatency.Milliseconds()))
}

// shapeLatency is how long a packet may wait in the tbf queue: 400 ms, a
// cellular modem's buffer (they queue rather than drop; the FACTS.md §7
// recipe used the same), so a burst above the rate is delayed, and what the
// link cannot carry for long is dropped.
const shapeLatency = 400 * time.Millisecond

// shapeBurst is the tbf bucket in bytes: 20 ms at the rate, at least 16 kB
// (several full packets).
func shapeBurst(kbit int) int { return max(kbit*1000/8/50, 16*1024) }

// Cut makes the link drop everything in both directions (true) or carry
// again (false), as a real cut does: nothing crosses, and neither sender
// gets an error. The drops sit in nft on each receiving side's ingress (the
// studio's for what the box sends, the box's for what the studio sends),
// so ARP and IPv6 neighbour discovery still work and the link carries again
// the moment the cut ends.
func (l *Lab) Cut(name string, cut bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	ln, err := l.link(name)
	if err != nil {
		return err
	}
	ln.cut = cut
	ctx := context.Background()
	return errors.Join(l.applyStudioNft(ctx), l.applyBoxNft(ctx))
}

// Loss drops pct percent (0 to 100, 0.01 resolution) of the UDP packets the
// box sends on the link, at random (nft numgen on the studio ingress). Only
// the box→studio direction loses, the way the reference sender was measured
// here; 0 removes it.
func (l *Lab) Loss(name string, pct float64) error {
	if pct < 0 || pct > 100 {
		return fmt.Errorf("netlab: loss %v%%: out of 0..100", pct)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	ln, err := l.link(name)
	if err != nil {
		return err
	}
	ln.lossPct = pct
	return l.applyStudioNft(context.Background())
}

// ndTypes are the ICMPv6 types a cut lets through (neighbour discovery).
const ndTypes = "{ nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert }"

// applyStudioNft replaces the studio's impairment table with one built
// from the links' state, atomically; l.mu is held. Cut and loss come first
// (priority -300), the Delay relay's tproxy after them (-150).
func (l *Lab) applyStudioNft(ctx context.Context) error {
	var pre, tp strings.Builder
	for _, ln := range l.links {
		q := fmt.Sprintf("%q", ln.StudioIf)
		if r := ln.relay; r != nil {
			fmt.Fprintf(&tp, "    iifname %s meta nfproto ipv4 meta l4proto udp tproxy ip to :%d accept\n", q, r.port4)
			fmt.Fprintf(&tp, "    iifname %s meta nfproto ipv6 meta l4proto udp tproxy ip6 to [::]:%d accept\n", q, r.port6)
		}
		if ln.cut {
			fmt.Fprintf(&pre, "    iifname %s icmpv6 type %s accept\n", q, ndTypes)
			fmt.Fprintf(&pre, "    iifname %s counter drop\n", q)
		}
		if ln.lossPct > 0 {
			fmt.Fprintf(&pre, "    iifname %s meta l4proto udp numgen random mod 10000 < %d counter drop\n", q, int(ln.lossPct*100+0.5))
		}
	}
	rules := fmt.Sprintf(`table inet netlab
delete table inet netlab
table inet netlab {
  chain pre {
    type filter hook prerouting priority -300; policy accept;
%s  }
  chain relay {
    type filter hook prerouting priority -150; policy accept;
%s  }
}
`, pre.String(), tp.String())
	return l.run(ctx, []byte(rules), "ip", "netns", "exec", l.Studio, "nft", "-f", "-")
}

// Rebind changes the box's source port as the studio sees it on this link,
// the way a carrier NAT rebinding does: UDP leaving on the link is
// masqueraded to a port range that moves with every call, and the box's
// conntrack entries for the link's addresses are deleted so existing flows
// take a new mapping with their next packet. Replies to the new port reach
// the box's socket; replies to the old one do not.
func (l *Lab) Rebind(name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	ln, err := l.link(name)
	if err != nil {
		return err
	}
	ln.rebindGen++
	if err = l.applyBoxNft(context.Background()); err != nil {
		return err
	}
	nl, err := l.handle(l.Box)
	if err != nil {
		return err
	}
	for _, a := range []struct {
		fam netlink.InetFamily
		ip  net.IP
	}{{netlink.FAMILY_V4, ln.BoxV4.AsSlice()}, {netlink.FAMILY_V6, ln.BoxV6.AsSlice()}} {
		f := &netlink.ConntrackFilter{}
		if err := f.AddIP(netlink.ConntrackOrigSrcIP, a.ip); err != nil {
			return fmt.Errorf("netlab: conntrack filter: %w", err)
		}
		n, err := nl.ConntrackDeleteFilters(netlink.ConntrackTable, a.fam, f)
		if err != nil {
			return fmt.Errorf("netlab: flush conntrack of %s: %w", a.ip, err)
		}
		l.log.Debug("rebind: conntrack entries deleted", zap.String("link", ln.Name), zap.Stringer("src", a.ip), zap.Uint("entries", n))
	}
	return nil
}

// rebindPorts is the masquerade port range of Rebind generation gen.
func rebindPorts(gen int) (lo, hi int) {
	lo = 20000 + (gen%40)*1000
	return lo, lo + 999
}

// applyBoxNft replaces the box's table from the links' state: the
// ingress half of Cut and the NAT of Rebind; l.mu is held. Without any
// rebound link there is no NAT chain, so the box has no conntrack until the
// first Rebind.
func (l *Lab) applyBoxNft(ctx context.Context) error {
	var pre, post strings.Builder
	for _, ln := range l.links {
		if ln.cut {
			q := fmt.Sprintf("%q", ln.BoxIf)
			fmt.Fprintf(&pre, "    iifname %s icmpv6 type %s accept\n", q, ndTypes)
			fmt.Fprintf(&pre, "    iifname %s counter drop\n", q)
		}
		if ln.rebindGen > 0 {
			lo, hi := rebindPorts(ln.rebindGen)
			fmt.Fprintf(&post, "    oifname %q meta l4proto udp masquerade to :%d-%d\n", ln.BoxIf, lo, hi)
		}
	}
	rules := "table inet netlab\ndelete table inet netlab\ntable inet netlab {\n"
	if pre.Len() > 0 {
		rules += "  chain pre {\n    type filter hook prerouting priority -300; policy accept;\n" + pre.String() + "  }\n"
	}
	if post.Len() > 0 {
		rules += "  chain post {\n    type nat hook postrouting priority 100; policy accept;\n" + post.String() + "  }\n"
	}
	rules += "}\n"
	return l.run(ctx, []byte(rules), "ip", "netns", "exec", l.Box, "nft", "-f", "-")
}
