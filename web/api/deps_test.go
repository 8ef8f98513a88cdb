package api

import (
	"os/exec"
	"strings"
	"testing"

	"onair/internal/testutil"
)

// Every client links this package: it must stay standard library only.
func TestImportsOnlyTheStandardLibrary(t *testing.T) {
	testutil.Need(t, "go")
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	if got := strings.Fields(string(out)); len(got) != 1 || got[0] != "onair/web/api" {
		t.Fatalf("non-standard dependencies: %v", got)
	}
}
