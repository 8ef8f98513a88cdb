package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// make bundle's default: make image's root slot, signed with the version
// of the onaird in it (not the tree's: the box compares the next bundle
// with what it runs), into OUT/onair-VERSION.bundle.
func TestBundleFromTheImageCarriesItsOnairdsVersion(t *testing.T) {
	testutil.Need(t, "go")
	bin := testutil.Build(t, "onair/cmd/onair-bundle")
	dir := t.TempDir()
	run := func(args ...string) (string, error) {
		out, err := exec.Command(bin, args...).CombinedOutput()
		return string(out), err
	}
	if out, err := run("-genkey", filepath.Join(dir, "keys")); err != nil {
		t.Fatalf("-genkey: %v\n%s", err, out)
	}
	priv, pub := filepath.Join(dir, "keys", update.PrivateKeyFile), filepath.Join(dir, "keys", update.PublicKeyFile)
	image := filepath.Join(dir, "image")
	if out, err := run("-key", priv, "-image", image, "-out", dir); err == nil || !strings.Contains(out, "make image builds it") {
		t.Fatalf("no image: %v\n%s", err, out)
	}
	version := filepath.Join(image, "rootfs/usr/share/doc/onair/VERSION")
	if err := os.MkdirAll(filepath.Dir(version), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(version, []byte("v0.0.0-297-g7e50a8a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rootfs := filepath.Join(image, "rootfs.ext4")
	if err := os.WriteFile(rootfs, []byte(strings.Repeat("ext4", 5000)), 0o644); err != nil {
		t.Fatal(err)
	}
	// A tree rebuilt after the slot (make image stopped before mkfs).
	old := time.Now().Add(-time.Hour)
	if err := os.Chtimes(rootfs, old, old); err != nil {
		t.Fatal(err)
	}
	if out, err := run("-key", priv, "-image", image, "-out", dir); err == nil || !strings.Contains(out, "did not finish") {
		t.Fatalf("a slot older than its tree: %v\n%s", err, out)
	}
	if err := os.Chtimes(rootfs, time.Now(), time.Now()); err != nil {
		t.Fatal(err)
	}
	if out, err := run("-key", priv, "-image", image, "-version", "v9.9.9", "-out", dir); err == nil || !strings.Contains(out, "the image's onaird is v0.0.0-297-g7e50a8a") {
		t.Fatalf("-version against the image's: %v\n%s", err, out)
	}
	out, err := run("-key", priv, "-image", image, "-out", dir)
	bundle := filepath.Join(dir, "onair-v0.0.0-297-g7e50a8a.bundle")
	if err != nil || !strings.Contains(out, "bundle "+bundle+" (version v0.0.0-297-g7e50a8a") {
		t.Fatalf("-image: %v\n%s", err, out)
	}
	m, err := update.VerifyFile(context.Background(), bundle, pub)
	if p, ok := m.Part(update.PartRootfs); err != nil || m.Version != "v0.0.0-297-g7e50a8a" || !ok || p.Size != 20000 {
		t.Fatalf("manifest %+v, %v", m, err)
	}
}

// A bundle every box would refuse is not made: a version with no place in
// the order ("dev", the bare hash git describe --always gives).
func TestUnorderedVersionIsNotSigned(t *testing.T) {
	dir := t.TempDir()
	priv, _, err := update.GenerateKeyFiles(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	rootfs := filepath.Join(dir, "rootfs.img")
	if err = os.WriteFile(rootfs, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"dev", "51e94c8", "1.2.3"} {
		err := run(context.Background(), "", priv, v, rootfs, "", filepath.Join(dir, "b"), "", "")
		if !errors.Is(err, update.ErrUnorderedVersion) {
			t.Errorf("-version %s: %v, want ErrUnorderedVersion", v, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "b")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused bundle was written: %v", err)
	}
}

// The signing key is refused inside a git work tree (copied there by
// hand: -genkey would refuse to make it there).
func TestSigningKeyInsideARepoIsRefused(t *testing.T) {
	dir := t.TempDir()
	priv, _, err := update.GenerateKeyFiles(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	repo := filepath.Join(dir, "repo")
	if err = os.MkdirAll(filepath.Join(repo, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(priv)
	if err != nil {
		t.Fatal(err)
	}
	inRepo := filepath.Join(repo, "secrets", "onair-update.key")
	if err = os.MkdirAll(filepath.Dir(inRepo), 0o700); err != nil {
		t.Fatal(err)
	}
	if err = os.WriteFile(inRepo, b, 0o600); err != nil {
		t.Fatal(err)
	}
	rootfs := filepath.Join(dir, "rootfs.img")
	if err = os.WriteFile(rootfs, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	err = run(context.Background(), "", inRepo, "v1.0.0", rootfs, "", filepath.Join(dir, "b"), "", "")
	if !errors.Is(err, update.ErrKeyInRepo) || !strings.Contains(err.Error(), repo) {
		t.Fatalf("a key in a repo: %v, want ErrKeyInRepo naming %s", err, repo)
	}
}
