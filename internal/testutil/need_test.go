package testutil

import (
	"fmt"
	"os/exec"
	"runtime"
	"strings"
	"testing"
)

// recorder stands in for *testing.T to observe whether Need skipped or failed.
type recorder struct {
	testing.TB
	failed, skipped string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(f string, a ...any) {
	r.failed = fmt.Sprintf(f, a...)
	runtime.Goexit()
}
func (r *recorder) Skip(a ...any) {
	r.skipped = fmt.Sprint(a...)
	runtime.Goexit()
}

func run(f func(t testing.TB)) *recorder {
	r := &recorder{}
	done := make(chan struct{})
	go func() { defer close(done); f(r) }()
	<-done
	return r
}

// CI sets ONAIR_REQUIRE_ALL=1: a missing tool there must fail the test, not
// skip it, or a feature goes untested on a machine that lacks the tool.
func TestMissingToolFailsUnderRequireAllAndSkipsOtherwise(t *testing.T) {
	const tool = "onair-no-such-tool"
	t.Setenv("ONAIR_REQUIRE_ALL", "1")
	if r := run(func(tb testing.TB) { Need(tb, tool) }); !strings.Contains(r.failed, tool) || r.skipped != "" {
		t.Fatalf("under ONAIR_REQUIRE_ALL=1: failed %q skipped %q", r.failed, r.skipped)
	}
	t.Setenv("ONAIR_REQUIRE_ALL", "")
	if r := run(func(tb testing.TB) { Need(tb, tool) }); !strings.Contains(r.skipped, "scripts/deps.sh") || r.failed != "" {
		t.Fatalf("outside CI: failed %q skipped %q", r.failed, r.skipped)
	}
	if r := run(func(tb testing.TB) { Need(tb, "sh") }); r.failed != "" || r.skipped != "" {
		t.Fatalf("present tool: failed %q skipped %q", r.failed, r.skipped)
	}
}

func TestStartProcessReportsExit(t *testing.T) {
	if err := <-StartProcess(t, exec.Command("sh", "-c", "exit 3")); err == nil || !strings.Contains(err.Error(), "3") {
		t.Fatalf("exit status: %v", err)
	}
}
