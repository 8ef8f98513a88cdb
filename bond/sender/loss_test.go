package sender

import "testing"

// A cut link's repeated NAKs made loss_pct read over 100 %.
func TestLossOfACutLinkNeverReadsOverAHundredPercent(t *testing.T) {
	l := &link{}
	l.slots[0].pkts, l.slots[0].naks = 10, 14
	if got := l.lossPct(); got != 100 {
		t.Fatalf("loss %.1f %%, want 100", got)
	}
	l.slots[1].pkts = 90
	if got := l.lossPct(); got != 14 {
		t.Fatalf("loss %.1f %%, want 14", got)
	}
}
