package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"onair/internal/testutil"
	"onair/update"
)

// make bundle's path end to end: a key pair, a signed bundle, verified.
func TestGenkeyBundleVerify(t *testing.T) {
	testutil.Need(t, "go")
	bin := testutil.Build(t, "onair/cmd/onair-bundle")
	dir := t.TempDir()
	run := func(args ...string) (string, error) {
		out, err := exec.Command(bin, args...).CombinedOutput()
		return string(out), err
	}
	keys := filepath.Join(dir, "keys")
	if out, err := run("-genkey", keys); err != nil {
		t.Fatalf("-genkey: %v\n%s", err, out)
	}
	rootfs := filepath.Join(dir, "rootfs.img")
	if err := os.WriteFile(rootfs, []byte(strings.Repeat("onair", 20000)), 0o644); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(dir, "onair.bundle")
	priv, pub := filepath.Join(keys, update.PrivateKeyFile), filepath.Join(keys, update.PublicKeyFile)
	if out, err := run("-key", priv, "-version", "v1.2.3", "-rootfs", rootfs, "-out", bundle); err != nil {
		t.Fatalf("bundle: %v\n%s", err, out)
	}
	out, err := run("-verify", bundle, "-pub", pub)
	if err != nil {
		t.Fatalf("-verify: %v\n%s", err, out)
	}
	var m update.Manifest
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("-verify printed no manifest: %v\n%s", err, out)
	}
	if p, ok := m.Part(update.PartRootfs); m.Version != "v1.2.3" || !ok || p.Size != 100000 {
		t.Fatalf("manifest %+v", m)
	}

	// Another key does not verify it.
	other := filepath.Join(dir, "other")
	if out, err := run("-genkey", other); err != nil {
		t.Fatalf("-genkey: %v\n%s", err, out)
	}
	if out, err := run("-verify", bundle, "-pub", filepath.Join(other, update.PublicKeyFile)); err == nil || !strings.Contains(out, "bad signature") {
		t.Fatalf("-verify with another key: %v\n%s", err, out)
	}
	if out, err := run(); err == nil || !strings.Contains(out, "want -genkey") {
		t.Fatalf("no flags: %v\n%s", err, out)
	}
}
