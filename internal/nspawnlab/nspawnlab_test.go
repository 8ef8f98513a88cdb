package nspawnlab

import (
	"slices"
	"testing"
)

func TestParseNSpid(t *testing.T) {
	for _, tc := range []struct {
		name, status string
		want         []int
	}{
		{"host process", "Name:\tbash\nNSpid:\t4242\nPPid:\t1\n", []int{4242}},
		{"container init", "Name:\tsystemd\nNgid:\t0\nNSpid:\t51234\t1\nNSpgid:\t51234\t1\n", []int{51234, 1}},
		{"no line", "Name:\tx\n", nil},
		{"garbage", "NSpid:\tx\n", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseNSpid([]byte(tc.status)); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

// A command name may hold spaces and parentheses: the fields after the last
// ')' are what count.
func TestParsePPidCommandWithParens(t *testing.T) {
	for stat, want := range map[string]int{
		"51234 (systemd) S 51230 51234 51234 0 -1":    51230,
		"77 (a (weird) name) R 12 77 77 0 -1 4194560": 12,
		"broken": 0,
	} {
		if got := parsePPid([]byte(stat)); got != want {
			t.Errorf("%q: got %d, want %d", stat, got, want)
		}
	}
}
