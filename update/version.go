package update

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Errors of the version check (wrapped; check with errors.Is).
var (
	// ErrDowngrade: the bundle's version is not newer than the running
	// build's (older, the same, or a build the order cannot place after
	// it). Installing it needs InstallOptions.AllowDowngrade: an old
	// bundle, validly signed, replayed to a box would bring back every
	// bug (and hole) fixed since.
	ErrDowngrade = errors.New("update: not newer than the running version")
	// ErrUnorderedVersion: a version that has no place in the order
	// (see ParseVersion); onair-bundle refuses to sign one.
	ErrUnorderedVersion = errors.New("update: version has no place in the order")
)

// Version is a build's version as `git describe --tags --dirty` gives it
// (scripts/version.sh, the Makefile's VERSION), parsed for ordering:
//
//	v1.4.2                  the tag: 1.4.2, 0 commits past it
//	v1.4.2-7-g3f2a9c1       7 commits past v1.4.2 (at commit 3f2a9c1)
//	v1.4.2-7-g3f2a9c1-dirty the same with uncommitted changes
//	v1.5.0-rc.1-2-gab12cd3  2 commits past the pre-release v1.5.0-rc.1
//	v0.0.0-412-g51e94c8     before the first tag: the 412th commit
//
// The tag is vMAJOR[.MINOR[.PATCH]][-PRERELEASE] (a missing MINOR or PATCH
// is 0). Versions compare by the tag (semver 2.0 precedence: numbers, then
// a pre-release before its release) and then by the commits past it. The
// commit hash and -dirty do not order: two builds at the same place (the
// same commit dirty or not, or two branches as far past the same tag)
// compare equal. Anything else ("dev", a bare commit hash, "") does not
// parse: it has no place in the order.
type Version struct {
	Major, Minor, Patch int
	// Pre is the pre-release's dot-separated identifiers, nil for a release.
	Pre []string
	// Commits is how many commits past the tag; Hash the abbreviated
	// commit (empty on the tag itself).
	Commits int
	Hash    string
	Dirty   bool
}

var (
	tagRe      = regexp.MustCompile(`^v(0|[1-9][0-9]*)(?:\.(0|[1-9][0-9]*))?(?:\.(0|[1-9][0-9]*))?(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$`)
	describeRe = regexp.MustCompile(`-(0|[1-9][0-9]*)-g([0-9a-f]{4,40})$`)
	numericRe  = regexp.MustCompile(`^[0-9]+$`)
)

// ParseVersion parses s (see Version); ErrUnorderedVersion when it has no
// place in the order.
func ParseVersion(s string) (Version, error) {
	bad := func(why string) error {
		return fmt.Errorf("%w: %q: %s (want vMAJOR.MINOR.PATCH[-PRERELEASE][-N-gHASH][-dirty], git describe of a v tag)", ErrUnorderedVersion, s, why)
	}
	if len(s) > maxVersion {
		return Version{}, bad("too long")
	}
	var v Version
	tag, dirty := strings.CutSuffix(s, "-dirty")
	v.Dirty = dirty
	if m := describeRe.FindStringSubmatchIndex(tag); m != nil {
		n, err := strconv.Atoi(tag[m[2]:m[3]])
		if err != nil {
			return Version{}, bad("commits past the tag: " + err.Error())
		}
		v.Commits, v.Hash, tag = n, tag[m[4]:m[5]], tag[:m[0]]
	}
	m := tagRe.FindStringSubmatch(tag)
	if m == nil {
		return Version{}, bad("not a v tag")
	}
	for i, p := range []*int{&v.Major, &v.Minor, &v.Patch} {
		if m[i+1] == "" {
			continue
		}
		n, err := strconv.Atoi(m[i+1])
		if err != nil {
			return Version{}, bad(err.Error())
		}
		*p = n
	}
	if m[4] != "" {
		v.Pre = strings.Split(m[4], ".")
		for _, id := range v.Pre {
			if len(id) > 1 && id[0] == '0' && numericRe.MatchString(id) {
				return Version{}, bad("pre-release " + id + " has a leading zero")
			}
		}
	}
	return v, nil
}

// Compare orders v and w: -1 if v is older, 0 if at the same place, +1 if
// newer.
func (v Version) Compare(w Version) int {
	for _, c := range [][2]int{{v.Major, w.Major}, {v.Minor, w.Minor}, {v.Patch, w.Patch}} {
		if c[0] != c[1] {
			return cmpInt(c[0], c[1])
		}
	}
	if c := comparePre(v.Pre, w.Pre); c != 0 {
		return c
	}
	return cmpInt(v.Commits, w.Commits)
}

// comparePre is semver 2.0 §11: a release is after its pre-releases;
// identifiers compare in turn, numeric ones as numbers and before
// alphanumeric ones; a longer list wins when the shorter is its prefix.
func comparePre(a, b []string) int {
	switch {
	case len(a) == 0 && len(b) == 0:
		return 0
	case len(a) == 0:
		return 1
	case len(b) == 0:
		return -1
	}
	for i := 0; i < len(a) && i < len(b); i++ {
		x, y := a[i], b[i]
		xn, yn := numericRe.MatchString(x), numericRe.MatchString(y)
		switch {
		case xn && yn:
			if len(x) != len(y) {
				return cmpInt(len(x), len(y))
			}
			if x != y {
				return strings.Compare(x, y)
			}
		case xn:
			return -1
		case yn:
			return 1
		case x != y:
			return strings.Compare(x, y)
		}
	}
	return cmpInt(len(a), len(b))
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// CheckNewer is the downgrade protection: nil when the bundle's version is
// newer than the running build's, else ErrDowngrade (or
// ErrUnorderedVersion for a bundle whose version has no place in the
// order) saying both. A running build without a place in the order ("dev":
// built without the Makefile; a bare commit hash from before
// scripts/version.sh) is older than every ordered version, so such a box
// takes any ordered bundle: no shipped box runs one.
func CheckNewer(running, bundle string) error {
	b, err := ParseVersion(bundle)
	if err != nil {
		return fmt.Errorf("%w: bundle version %q cannot be ordered against the running %s", ErrDowngrade, bundle, running)
	}
	r, err := ParseVersion(running)
	if err != nil {
		return nil
	}
	switch c := b.Compare(r); {
	case c > 0:
		return nil
	case c < 0:
		return fmt.Errorf("%w: bundle %s is older than the running %s", ErrDowngrade, bundle, running)
	case bundle == running:
		return fmt.Errorf("%w: bundle %s is the running version", ErrDowngrade, bundle)
	default:
		return fmt.Errorf("%w: bundle %s is no newer than the running %s (as many commits past the same tag)", ErrDowngrade, bundle, running)
	}
}
