package update

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"onair/internal/atomicfile"
)

// The key files onair-bundle -genkey writes into its directory.
const (
	PrivateKeyFile = "onair-update.key" // PEM "PRIVATE KEY", PKCS #8, mode 0600
	PublicKeyFile  = "onair-update.pub" // PEM "PUBLIC KEY", PKIX: update.public_key
)

// Errors of the key files.
var (
	// ErrKeyInRepo: the key directory is inside a git work tree. The
	// signing key never goes near a repository.
	ErrKeyInRepo = errors.New("update: key inside a git work tree")
	// ErrKeyPermissions: the private key file can be read by others.
	ErrKeyPermissions = errors.New("update: private key readable by group or others (want mode 0600)")
)

// GenerateKeyFiles writes a new ed25519 key pair into dir (created 0700 if
// missing): PrivateKeyFile (0600) and PublicKeyFile (0644). It refuses a
// dir inside a git work tree (ErrKeyInRepo) and never overwrites a key.
func GenerateKeyFiles(dir string) (privPath, pubPath string, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", "", fmt.Errorf("update: genkey: %w", err)
	}
	if repo := gitWorkTree(abs); repo != "" {
		return "", "", fmt.Errorf("%w: %s is in %s", ErrKeyInRepo, abs, repo)
	}
	if err = os.MkdirAll(abs, 0o700); err != nil {
		return "", "", fmt.Errorf("update: genkey: %w", err)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", fmt.Errorf("update: genkey: %w", err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", "", fmt.Errorf("update: genkey: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", "", fmt.Errorf("update: genkey: %w", err)
	}
	privPath, pubPath = filepath.Join(abs, PrivateKeyFile), filepath.Join(abs, PublicKeyFile)
	for _, p := range []string{privPath, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			return "", "", fmt.Errorf("update: genkey: %s: %w", p, os.ErrExist)
		}
	}
	if err := atomicfile.Write(privPath, 0o600, pemWriter("PRIVATE KEY", privDER)); err != nil {
		return "", "", err
	}
	if err := atomicfile.Write(pubPath, 0o644, pemWriter("PUBLIC KEY", pubDER)); err != nil {
		return "", "", err
	}
	return privPath, pubPath, nil
}

func pemWriter(typ string, der []byte) func(io.Writer) error {
	return func(w io.Writer) error { return pem.Encode(w, &pem.Block{Type: typ, Bytes: der}) }
}

// gitWorkTree returns the nearest parent of dir (or dir) holding .git, or "".
func gitWorkTree(dir string) string {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Lstat(filepath.Join(d, ".git")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

// ReadPublicKey reads an ed25519 public key file (PEM "PUBLIC KEY", PKIX:
// what onair-bundle -genkey writes, or openssl pkey -pubout).
func ReadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("update: public key: %w", err)
	}
	pub, err := parsePublicKey(b)
	if err != nil {
		return nil, fmt.Errorf("update: public key %s: %w", path, err)
	}
	return pub, nil
}

func parsePublicKey(b []byte) (ed25519.PublicKey, error) {
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PUBLIC KEY" {
		return nil, errors.New(`no PEM "PUBLIC KEY" block`)
	}
	k, err := x509.ParsePKIXPublicKey(blk.Bytes)
	if err != nil {
		return nil, err
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("a %T, want an ed25519 key", k)
	}
	return pub, nil
}

// ReadPrivateKey reads an ed25519 private key file (PEM "PRIVATE KEY",
// PKCS #8). Like ssh, it refuses a file others can read (ErrKeyPermissions).
func ReadPrivateKey(path string) (ed25519.PrivateKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("update: private key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s is %04o", ErrKeyPermissions, path, fi.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("update: private key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf(`update: private key %s: no PEM "PRIVATE KEY" block`, path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("update: private key %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("update: private key %s: a %T, want an ed25519 key", path, k)
	}
	return priv, nil
}
