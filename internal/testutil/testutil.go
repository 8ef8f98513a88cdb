// Package testutil holds helpers shared by onair's tests: a test logger, a
// builder for the fake child programs in fakechild, the skips of tests that
// need root or a tool (Need, NeedRoot), and SyncBuffer for a child's output.
//
// Not for: production code; only tests and the test labs (internal/*lab)
// import it.
package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// NilLogger returns a logger that writes to t.Log, so output shows up only
// for failing tests (or with -v). Stop everything that logs before the test
// ends: zaptest fails a test that logs after it finished.
func NilLogger(t testing.TB) *zap.Logger {
	t.Helper()
	return zaptest.NewLogger(t)
}

// FakeChildPackage is the import path of the fake child program.
const FakeChildPackage = "onair/internal/testutil/fakechild"

// BuildFakeChild compiles the fake child program (see package fakechild for
// its modes) into t.TempDir() and returns its path. It is built without
// -race and without cgo so that it starts fast.
func BuildFakeChild(t testing.TB) string {
	t.Helper()
	return Build(t, FakeChildPackage)
}

// Build compiles the main package pkg of this module into t.TempDir() and
// returns the binary's path. It runs the go command from PATH, where go test
// puts the toolchain that runs the tests first.
func Build(t testing.TB, pkg string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("testutil: go build %s: %v\n%s", pkg, err, b)
	}
	return out
}
