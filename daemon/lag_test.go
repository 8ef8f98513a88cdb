package daemon

import "testing"

// Found in review: when the whole box was slow for a moment, both twins fell
// behind capture together and the lag check restarted both, turning a delay
// into a gap of a GOP or more. Only a twin that lags while the other keeps up
// may be restarted.
func TestBothTwinsLateIsADelayNotARestart(t *testing.T) {
	const limit = 15
	for _, tc := range []struct {
		name string
		head uint64
		last [2]uint64
		want int
	}{
		{"both keep up", 1000, [2]uint64{995, 998}, -1},
		{"both late: the box was slow", 1000, [2]uint64{900, 950}, -1},
		{"A starved, B keeps up", 1000, [2]uint64{900, 999}, 0},
		{"B starved, A keeps up", 1000, [2]uint64{999, 900}, 1},
		{"A late, B restarting (nothing yet)", 1000, [2]uint64{900, 0}, -1},
		{"A restarting, B keeps up", 1000, [2]uint64{0, 999}, -1},
		{"exactly at the limit is not late", 1000, [2]uint64{1000 - limit, 999}, -1},
	} {
		if got := lagVictim(tc.head, tc.last, limit); got != tc.want {
			t.Errorf("%s: lagVictim(%d, %v) = %d, want %d", tc.name, tc.head, tc.last, got, tc.want)
		}
	}
}
