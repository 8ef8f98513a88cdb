//go:build linux

package relay

import (
	"net"
	"net/netip"

	"golang.org/x/sys/unix"
)

// A socket bound to a wildcard address (the usual ":5000") lets the kernel
// choose the source address of each reply by routing, which on a host with
// several addresses (a studio server with two uplinks, any IPv6 host with
// temporary addresses) need not be the address the sender sent to: its NAT
// or its connected socket then drops the reply. The reference binds 0.0.0.0
// and has this problem. So on a wildcard socket the relay asks for each
// datagram's destination (IP_PKTINFO / IPV6_PKTINFO) and answers from it.

// oobLen holds one IPv4 or IPv6 packet-info control message.
const oobLen = 64

// enableDstInfo turns on the destination address of received datagrams for
// a wildcard socket and reports whether it did (and whether the socket is
// IPv6, whose control messages also carry IPv4-mapped destinations).
func enableDstInfo(c *net.UDPConn) (on, v6 bool) {
	la, ok := c.LocalAddr().(*net.UDPAddr)
	if !ok || !la.IP.IsUnspecified() {
		return false, false
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return false, false
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		// IPv6 first: Go makes a dual-stack AF_INET6 socket for "udp" wildcards.
		if serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1); serr == nil {
			v6 = true
			return
		}
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
	}); err != nil || serr != nil {
		return false, false
	}
	return true, v6
}

// parseDst returns the destination address from a datagram's control
// messages (as the kernel gave it: IPv4-mapped on a dual-stack socket).
func parseDst(oob []byte) (netip.Addr, bool) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return netip.Addr{}, false
	}
	for _, m := range msgs {
		switch {
		case m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_PKTINFO && len(m.Data) >= 16:
			return netip.AddrFrom16([16]byte(m.Data[:16])), true
		case m.Header.Level == unix.IPPROTO_IP && m.Header.Type == unix.IP_PKTINFO && len(m.Data) >= 12:
			return netip.AddrFrom4([4]byte(m.Data[8:12])), true // ipi_addr: the header's destination
		}
	}
	return netip.Addr{}, false
}

// srcControl is the control message that sends a datagram from src.
func srcControl(src netip.Addr, v6 bool) []byte {
	if v6 {
		return unix.PktInfo6(&unix.Inet6Pktinfo{Addr: src.As16()})
	}
	return unix.PktInfo4(&unix.Inet4Pktinfo{Spec_dst: src.Unmap().As4()})
}
