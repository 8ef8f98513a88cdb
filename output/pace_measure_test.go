package output

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestMeasurePacing streams the 120 KB-IDR producer at several pacing rates
// and logs gosrt's retransmissions (loss on loopback). It takes ~20 s, so it
// runs only with ONAIR_MEASURE=1:
//
//	ONAIR_MEASURE=1 go test -run TestMeasurePacing -v ./output/
func TestMeasurePacing(t *testing.T) {
	if os.Getenv("ONAIR_MEASURE") == "" {
		t.Skip("set ONAIR_MEASURE=1")
	}
	needSLT(t)
	for _, mbps := range []float64{0, 100, 50, 20, 10} {
		t.Run(fmt.Sprintf("%gMbps", mbps), func(t *testing.T) {
			port := freeUDPPort(t)
			r := startReceiver(t, port, "", filepath.Join(t.TempDir(), "out.ts"))
			s := newSRT(t, fmt.Sprintf("srt://127.0.0.1:%d?latency=200", port))
			if mbps == 0 {
				s.pace = func(float64) float64 { return 1e12 } // unpaced
			} else {
				s.pace = func(float64) float64 { return mbps * 1e6 }
			}
			st := sendAndCompare(t, s, r, 3)
			t.Logf("pace %g Mbit/s: pkts %d retrans %d loss %d", mbps, st.SRT.PktSent, st.SRT.PktRetrans, st.SRT.PktLoss)
		})
	}
}
