package update

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestGeneratedKeysSignAndVerifyABundle(t *testing.T) {
	dir := t.TempDir()
	privPath, pubPath, err := GenerateKeyFiles(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(privPath)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode %v, %v", fi.Mode(), err)
	}
	rootfs := filepath.Join(dir, "rootfs.img")
	writeRandom(t, rootfs, 100<<10, 1)
	out := filepath.Join(dir, "v1.bundle")
	if err = MakeFile(context.Background(), out, privPath, "v1", created, rootfs); err != nil {
		t.Fatal(err)
	}
	m, err := VerifyFile(context.Background(), out, pubPath)
	if err != nil || m.Version != "v1" {
		t.Fatalf("VerifyFile: %+v, %v", m, err)
	}
	if _, _, err := GenerateKeyFiles(filepath.Join(dir, "keys")); !errors.Is(err, os.ErrExist) {
		t.Fatalf("a second genkey into the same dir: %v, want it refused", err)
	}
}

// The signing key must never land in the repository.
func TestGenerateKeyRefusesAGitWorkTree(t *testing.T) {
	repo := t.TempDir()
	if err := os.Mkdir(filepath.Join(repo, ".git"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, _, err := GenerateKeyFiles(filepath.Join(repo, "keys"))
	if !errors.Is(err, ErrKeyInRepo) {
		t.Fatalf("genkey in a work tree: %v", err)
	}
	if _, err := os.Stat(filepath.Join(repo, "keys")); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the key directory was created")
	}
}

func TestPrivateKeyReadableByOthersIsRefused(t *testing.T) {
	privPath, _, err := GenerateKeyFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(privPath, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPrivateKey(privPath); !errors.Is(err, ErrKeyPermissions) {
		t.Fatalf("ReadPrivateKey of a 0644 key: %v", err)
	}
}

func TestPublicKeyMustBeEd25519PEM(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"empty":   "",
		"private": "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
		"garbage": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadPublicKey(p); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
