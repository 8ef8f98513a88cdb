package auth

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
)

func TestClientKey(t *testing.T) {
	for _, tc := range []struct{ remote, want string }{
		{"192.0.2.1:1234", "192.0.2.1/32"},
		{"[::ffff:192.0.2.1]:1234", "192.0.2.1/32"}, // a dual-stack listener
		{"[2001:db8:a:b:c:d:e:f]:443", "2001:db8:a:b::/64"},
		{"[fe80::1%eth0]:443", "fe80::/64"},
		{"@", overflowKey.String()}, // a unix socket
		{"", overflowKey.String()},
	} {
		if got := clientKey(tc.remote).String(); got != tc.want {
			t.Errorf("clientKey(%q) = %s, want %s", tc.remote, got, tc.want)
		}
	}
}

func TestLockoutDoublesUpToTheCap(t *testing.T) {
	clock := clockwork.NewFakeClockAt(start)
	l := newLimiter(LimitConfig{FreeFailures: 2, BaseDelay: time.Second, MaxDelay: 10 * time.Second}, clock)
	k := clientKey("192.0.2.1:1")
	var got []time.Duration
	for range 8 {
		got = append(got, l.fail(k))
		if ok, wait := l.allow(k); ok != (got[len(got)-1] == 0) || wait != got[len(got)-1] {
			t.Fatalf("allow after %v: %v %v", got, ok, wait)
		}
		clock.Advance(got[len(got)-1])
	}
	want := fmt.Sprint([]time.Duration{0, 1 * time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second, 10 * time.Second})
	if fmt.Sprint(got) != want {
		t.Fatalf("lockouts %v, want %v", got, want)
	}
}

func TestOldFailuresAreForgotten(t *testing.T) {
	clock := clockwork.NewFakeClockAt(start)
	l := newLimiter(LimitConfig{FreeFailures: 3, Forget: time.Hour}, clock)
	k := clientKey("192.0.2.1:1")
	l.fail(k)
	l.fail(k)
	clock.Advance(time.Hour)
	if d := l.fail(k); d != 0 {
		t.Fatalf("a failure an hour later locks: %v", d)
	}
	if d := l.fail(k); d != 0 {
		t.Fatalf("the second failure after forgetting locks: %v", d)
	}
}

// Spraying from many addresses must neither grow memory without bound nor
// push the attacker's own lockouts out of the table.
func TestSprayFromManyAddressesNeitherGrowsTheTableNorResetsLockouts(t *testing.T) {
	clock := clockwork.NewFakeClockAt(start)
	l := newLimiter(LimitConfig{FreeFailures: 1, MaxClients: 4, Forget: time.Hour}, clock)
	first := clientKey("192.0.2.1:1")
	l.fail(first)
	l.fail(first) // locked
	for i := range 1000 {
		key := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 32)
		l.fail(key)
	}
	if n := l.size(); n > 5 {
		t.Fatalf("%d entries, want at most 4 + the overflow one", n)
	}
	if ok, _ := l.allow(first); ok {
		t.Fatal("the spray reset the first client's lockout")
	}
	newcomer := clientKey("203.0.113.9:1")
	if ok, _ := l.allow(newcomer); ok {
		t.Fatal("a newcomer in a full table does not share the overflow lockout")
	}
	clock.Advance(2 * time.Hour) // everything is forgotten
	if ok, _ := l.allow(newcomer); !ok {
		t.Fatal("still locked after the entries expired")
	}
	l.fail(newcomer)
	if _, ok := l.m[newcomer]; !ok {
		t.Fatal("the newcomer did not get its own entry after the old ones expired")
	}
}
