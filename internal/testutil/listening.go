package testutil

import (
	"fmt"
	"os"
	"strings"
)

// Listening reports whether a socket of network ("tcp" or "udp", IPv4)
// listens on port at 127.0.0.1 or the wildcard address, read from
// /proc/net: a probe that binds or connects would disturb the peer (a bind
// probe holds the port for a moment, and the peer's own bind fails then; a
// connect takes its only connection).
func Listening(network string, port int) bool {
	state := map[string]string{"tcp": "0A", "udp": "07"}[network] // LISTEN; UDP's unconnected "CLOSE"
	if state == "" {
		return false
	}
	b, err := os.ReadFile("/proc/net/" + network)
	if err != nil {
		return false
	}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) <= 3 || f[3] != state {
			continue
		}
		if f[1] == fmt.Sprintf("0100007F:%04X", port) || f[1] == fmt.Sprintf("00000000:%04X", port) {
			return true
		}
	}
	return false
}
