package main

import (
	"os/exec"
	"strings"
	"testing"

	"onair/internal/testutil"
)

// onairctl is a small client on the box and on laptops: it must not link
// the SRT stack, the TS muxer, systemd or onaird itself (issue 8: the API
// types live in web/api, which imports only the standard library).
func TestOnairctlLinksNoServerPackage(t *testing.T) {
	testutil.Need(t, "go")
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed too little to be believed:\n%s", out)
	}
	forbidden := []string{"github.com/datarhei/gosrt", "github.com/asticode/go-astits", "github.com/coreos/go-systemd", "onair/daemon"}
	for _, d := range deps {
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") {
				t.Errorf("onairctl depends on %s", d)
			}
		}
	}
}
