package update

import (
	"context"
	"errors"
	"testing"
)

// The order of the versions the Makefile stamps (scripts/version.sh: git
// describe of the last v tag, v0.0.0-COMMITS-gHASH before the first).
func TestVersionsOrderAsGitDescribeGrows(t *testing.T) {
	// Each is newer than the one before it.
	order := []string{
		"v0.0.0-9-g1234abc",
		"v0.0.0-412-g51e94c8",
		"v0.1",
		"v0.1.1",
		"v0.1.1-3-gdeadbee",
		"v0.1.1-10-gdeadbee", // commits compare as numbers, not text
		"v1.0.0-alpha",
		"v1.0.0-alpha.1",
		"v1.0.0-alpha.beta",
		"v1.0.0-beta.2",
		"v1.0.0-beta.11",
		"v1.0.0-rc.1",
		"v1.0.0-rc.1-2-gab12cd3", // past a pre-release, still before the release
		"v1.0.0",
		"v1.0.0-1-gfeed123-dirty",
		"v1.2.0",
		"v1.10.0",
		"v2",
		"v10.0.0",
	}
	parsed := make([]Version, len(order))
	for i, s := range order {
		v, err := ParseVersion(s)
		if err != nil {
			t.Fatalf("ParseVersion(%q): %v", s, err)
		}
		parsed[i] = v
	}
	for i := range parsed {
		for j := range parsed {
			want := cmpInt(i, j)
			if got := parsed[i].Compare(parsed[j]); got != want {
				t.Errorf("%s vs %s: %d, want %d", order[i], order[j], got, want)
			}
		}
	}
}

func TestParseVersionReadsEveryPart(t *testing.T) {
	v, err := ParseVersion("v1.5.0-rc.1-27-g3f2a9c1-dirty")
	if err != nil {
		t.Fatal(err)
	}
	if v.Major != 1 || v.Minor != 5 || v.Patch != 0 || len(v.Pre) != 2 || v.Pre[0] != "rc" || v.Pre[1] != "1" ||
		v.Commits != 27 || v.Hash != "3f2a9c1" || !v.Dirty {
		t.Fatalf("%+v", v)
	}
}

// "dev" (go build without the Makefile), a bare hash (git describe
// --always with no tag: what the Makefile stamped before
// scripts/version.sh) and anything else have no place in the order.
func TestUnorderedVersionsDoNotParse(t *testing.T) {
	for _, s := range []string{"", "dev", "51e94c8", "51e94c8-dirty", "1.2.3", "v", "v1.2.3.4", "v01.2.3",
		"v1.2.3-", "v1.2.3-01", "v1.2.3-rc..1", "v99999999999999999999.0.0", "V1.2.3"} {
		if v, err := ParseVersion(s); !errors.Is(err, ErrUnorderedVersion) {
			t.Errorf("ParseVersion(%q) = %+v, %v; want ErrUnorderedVersion", s, v, err)
		}
	}
}

func TestCheckNewer(t *testing.T) {
	for _, tc := range []struct {
		running, bundle string
		ok              bool
	}{
		{"v1.2.0", "v1.3.0", true},
		{"v1.2.0", "v1.2.0-1-gabc1234", true},
		{"v0.0.0-412-g51e94c8", "v0.0.0-413-g0aa1bb2", true},
		{"v1.3.0", "v1.2.9", false},
		{"v1.3.0", "v1.3.0", false},                             // the same: a reinstall
		{"v1.3.0-2-gabc1234", "v1.3.0-2-gdef5678", false},       // another branch as far past the tag
		{"v1.3.0-2-gabc1234", "v1.3.0-2-gabc1234-dirty", false}, // the same commit, dirty
		{"v1.3.0", "dev", false},                                // a bundle must be ordered
		{"v1.3.0", "51e94c8", false},
		{"dev", "v0.0.1", true}, // a dev build takes any ordered bundle
		{"51e94c8", "v0.0.0-1-g1234567", true},
		{"", "v1.0.0", true},
	} {
		err := CheckNewer(tc.running, tc.bundle)
		if tc.ok && err != nil || !tc.ok && !errors.Is(err, ErrDowngrade) {
			t.Errorf("CheckNewer(running %q, bundle %q) = %v, want ok %v", tc.running, tc.bundle, err, tc.ok)
		}
	}
}

// The attack downgrade protection stops: an old bundle, validly signed by
// the trusted key (it was a real release), replayed to a box that runs a
// newer version. It is refused before a byte of its parts is read, the
// slot untouched; the operator's --allow-downgrade installs it.
func TestReplayedOldSignedBundleIsRefused(t *testing.T) {
	bx := newBox(t)
	old, rootfs := makeBundle(t, bx.dir, bx.priv, "v1.2.0", 1<<20, 40)
	in := bx.installer(t, "v1.3.0")
	slotB, opened := fileHash(t, bx.cfg.SlotB), bx.opened
	_, err := in.Install(context.Background(), old, InstallOptions{})
	if !errors.Is(err, ErrDowngrade) {
		t.Fatalf("Install of an older signed bundle: %v, want ErrDowngrade", err)
	}
	if want := "update: not newer than the running version: bundle v1.2.0 is older than the running v1.3.0"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if _, cerr := in.Check(old, InstallOptions{}); !errors.Is(cerr, ErrDowngrade) {
		t.Errorf("Check: %v, want ErrDowngrade", cerr)
	}
	if fileHash(t, bx.cfg.SlotB) != slotB || bx.opened != opened {
		t.Fatal("a refused downgrade touched slot b")
	}
	if st := bx.state(); st.Trial != "" || st.Next() != SlotA {
		t.Fatalf("boot state after a refused downgrade %+v", st)
	}

	res, err := in.Install(context.Background(), old, InstallOptions{AllowDowngrade: true})
	if err != nil {
		t.Fatalf("Install with AllowDowngrade: %v", err)
	}
	if res.Slot != SlotB || fileHash(t, bx.cfg.SlotB) != sum(rootfs) || bx.state().Trial != SlotB {
		t.Fatalf("the allowed downgrade was not installed: %+v", res)
	}
}

// The same version again is not an update: refused like a downgrade (the
// bundle may be a replay of the running release).
func TestSameVersionIsRefusedUnlessAllowed(t *testing.T) {
	bx := newBox(t)
	same, _ := makeBundle(t, bx.dir, bx.priv, "v1.3.0", 1<<20, 41)
	in := bx.installer(t, "v1.3.0")
	if _, err := in.Install(context.Background(), same, InstallOptions{}); !errors.Is(err, ErrDowngrade) {
		t.Fatalf("Install of the running version: %v, want ErrDowngrade", err)
	}
	if _, err := in.Check(same, InstallOptions{AllowDowngrade: true}); err != nil {
		t.Fatalf("Check with AllowDowngrade: %v", err)
	}
	newer, _ := makeBundle(t, bx.dir, bx.priv, "v1.3.0-1-gabc1234", 1<<20, 42)
	if _, err := in.Install(context.Background(), newer, InstallOptions{}); err != nil {
		t.Fatalf("Install of a newer build: %v", err)
	}
}

// A bad signature is still what a tampered bundle gets, not a version
// complaint: the version is read only from a signed manifest.
func TestVersionIsCheckedOnlyAfterTheSignature(t *testing.T) {
	bx := newBox(t)
	_, other := testKey(t)
	old, _ := makeBundle(t, bx.dir, other, "v1.2.0", 1<<20, 43)
	if _, err := bx.installer(t, "v1.3.0").Check(old, InstallOptions{}); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("Check of an old bundle signed by another key: %v, want ErrBadSignature", err)
	}
}

// The order is an order whatever the strings: a version is never newer
// than itself, and comparing two is antisymmetric.
func FuzzVersionOrder(f *testing.F) {
	for _, s := range [][2]string{{"v1.2.3", "v1.2.3-1-gabc1234"}, {"v1.0.0-rc.1", "v1.0.0"}, {"v0.0.0-9-g1234abc-dirty", "dev"}, {"v1.0.0-alpha.1", "v1.0.0-alpha.beta"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		va, errA := ParseVersion(a)
		vb, errB := ParseVersion(b)
		if errA == nil && CheckNewer(a, a) == nil {
			t.Fatalf("%q is newer than itself", a)
		}
		if errA != nil || errB != nil {
			return
		}
		if c := va.Compare(va); c != 0 {
			t.Fatalf("%q vs itself: %d", a, c)
		}
		if ab, ba := va.Compare(vb), vb.Compare(va); ab != -ba {
			t.Fatalf("%q vs %q: %d, the other way %d", a, b, ab, ba)
		}
		if (CheckNewer(a, b) == nil) != (vb.Compare(va) > 0) {
			t.Fatalf("CheckNewer(%q, %q) disagrees with Compare", a, b)
		}
	})
}
