package encoder

import (
	"strings"
	"testing"
)

// Found in review: when the whole box was slow for a moment, both twins fell
// behind capture together and the lag check restarted both, turning a delay
// into a gap of a GOP or more. Only a twin that is late while the other keeps
// up may be restarted; a hung one is found quickly, against its twin, but
// only while locked (when restarting it costs no frame).
func TestBothTwinsLateIsADelayNotARestart(t *testing.T) {
	const lag, hang = 15, 6
	for _, tc := range []struct {
		name   string
		head   uint64
		last   [2]uint64
		locked bool
		want   int
		why    string
	}{
		{"both keep up", 1000, [2]uint64{995, 998}, true, -1, ""},
		{"both late: the box was slow", 1000, [2]uint64{900, 950}, false, -1, ""},
		{"both late and locked, a few frames apart", 1000, [2]uint64{950, 953}, true, -1, ""},
		{"A starved, B keeps up", 1000, [2]uint64{900, 999}, false, 0, "lagging"},
		{"B starved, A keeps up", 1000, [2]uint64{999, 900}, false, 1, "lagging"},
		{"A late, B restarting (nothing yet)", 1000, [2]uint64{900, 0}, false, -1, ""},
		{"A restarting, B keeps up", 1000, [2]uint64{0, 999}, true, -1, ""},
		{"exactly at the lag limit is not late", 1000, [2]uint64{1000 - lag, 999}, false, -1, ""},
		{"A hung while locked", 1000, [2]uint64{992, 999}, true, 0, "hung: 7 frames"},
		{"B hung while locked", 1000, [2]uint64{999, 992}, true, 1, "hung"},
		{"exactly at the hang limit is not hung", 1000, [2]uint64{993, 999}, true, -1, ""},
		{"7 behind while unlocked (start-up): not hung", 1000, [2]uint64{992, 999}, false, -1, ""},
	} {
		got, why := RestartVictim(tc.head, tc.last, tc.locked, lag, hang)
		if got != tc.want || !strings.Contains(why, tc.why) {
			t.Errorf("%s: RestartVictim(%d, %v, locked=%v) = %d %q, want %d %q", tc.name, tc.head, tc.last, tc.locked, got, why, tc.want, tc.why)
		}
	}
}
