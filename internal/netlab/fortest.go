package netlab

import (
	"context"
	"testing"

	"onair/internal/testutil"
)

// ForTest builds a lab for t: it skips t with the reason when not root or
// when ip, tc or nft is missing (fails instead under ONAIR_REQUIRE_ALL=1),
// fails t if the lab cannot be built, and removes the lab in t.Cleanup,
// even when t fails.
func ForTest(t testing.TB, opts Options) *Lab {
	t.Helper()
	testutil.NeedRoot(t, "network namespaces, veth, tc and nft")
	testutil.Need(t, "ip", "tc", "nft")
	l, err := Up(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Close(); err != nil {
			t.Errorf("netlab close: %v", err)
		}
	})
	return l
}
