package testutil

import (
	"net"
	"testing"
)

func TestListeningSeesABoundSocketWithoutTouchingIt(t *testing.T) {
	for _, network := range []string{"tcp", "udp"} {
		var port int
		var closeIt func() error
		if network == "tcp" {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			port, closeIt = l.Addr().(*net.TCPAddr).Port, l.Close
		} else {
			c, err := net.ListenPacket("udp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			port, closeIt = c.LocalAddr().(*net.UDPAddr).Port, c.Close
		}
		if !Listening(network, port) {
			t.Errorf("%s port %d bound, Listening says no", network, port)
		}
		if err := closeIt(); err != nil {
			t.Fatal(err)
		}
		if Listening(network, port) {
			t.Errorf("%s port %d closed, Listening says yes", network, port)
		}
	}
}
