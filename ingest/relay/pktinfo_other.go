//go:build !linux

package relay

import (
	"net"
	"net/netip"
)

// oobLen is 0: outside Linux the kernel picks the reply source (as the
// reference does everywhere), which is right unless the host has several
// addresses.
const oobLen = 0

func enableDstInfo(*net.UDPConn) (on, v6 bool) { return false, false }

func parseDst([]byte) (netip.Addr, bool) { return netip.Addr{}, false }

func srcControl(netip.Addr, bool) []byte { return nil }
