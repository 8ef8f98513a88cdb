package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func certConfig(dir string) CertConfig {
	return CertConfig{Dir: dir, Hostname: "encoder-3", Extra: []string{"encoder-3.local", "192.168.1.50", "fd00::50"}}
}

// A new certificate at every start would make the operator trust a new
// fingerprint each time: trained to click through, they would click
// through an attacker's too.
func TestCertificateIsMadeOnceAndReused(t *testing.T) {
	dir := t.TempDir()
	clock := clockwork.NewFakeClockAt(start)
	c1, err := LoadOrCreateCertificate(certConfig(dir), nil, clock)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^([0-9A-F]{2}:){31}[0-9A-F]{2}$`).MatchString(c1.Fingerprint()) {
		t.Fatalf("fingerprint %q", c1.Fingerprint())
	}
	for _, tc := range []struct {
		file string
		mode os.FileMode
	}{{KeyFile, 0o600}, {CertFile, 0o644}} {
		fi, serr := os.Stat(filepath.Join(dir, tc.file))
		if serr != nil {
			t.Fatal(serr)
		}
		if fi.Mode().Perm() != tc.mode {
			t.Errorf("%s mode %v, want %v", tc.file, fi.Mode().Perm(), tc.mode)
		}
	}
	leaf := c1.Leaf()
	if k, ok := leaf.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("key %T, want ECDSA P-256", leaf.PublicKey)
	}
	for _, n := range []string{"encoder-3", "localhost", "encoder-3.local", "127.0.0.1", "::1", "192.168.1.50", "fd00::50"} {
		if verr := leaf.VerifyHostname(n); verr != nil {
			t.Errorf("name %s: %v", n, verr)
		}
	}
	if got := leaf.NotAfter.Sub(start); got < 3650*24*time.Hour || got > 3660*24*time.Hour {
		t.Errorf("valid %v after now, want 10 years", got)
	}
	if !leaf.NotBefore.Before(start) || leaf.IsCA || !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageServerAuth) {
		t.Errorf("NotBefore %v IsCA %v ExtKeyUsage %v", leaf.NotBefore, leaf.IsCA, leaf.ExtKeyUsage)
	}

	clock.Advance(24 * time.Hour)
	core, logs := observer.New(zapcore.DebugLevel)
	cfg := certConfig(dir)
	cfg.Extra = append(cfg.Extra, "studio.example")
	c2, err := LoadOrCreateCertificate(cfg, zap.New(core), clock)
	if err != nil {
		t.Fatal(err)
	}
	if c2.Fingerprint() != c1.Fingerprint() {
		t.Fatalf("fingerprint changed on reload: %s then %s", c1.Fingerprint(), c2.Fingerprint())
	}
	if logs.FilterMessageSnippet("lacks a configured name").FilterField(zap.String("name", "studio.example")).Len() != 1 {
		t.Error("a name missing from the kept certificate is not logged")
	}
}

// A box without an RTC starts in 1970: its certificate must not expire in
// 1980.
func TestCertificateMadeWithAnUnsetClockIsStillValidLater(t *testing.T) {
	clock := clockwork.NewFakeClockAt(time.Unix(0, 0))
	c, err := LoadOrCreateCertificate(certConfig(t.TempDir()), nil, clock)
	if err != nil {
		t.Fatal(err)
	}
	if now := start; !c.Leaf().NotBefore.Before(now) || !c.Leaf().NotAfter.After(now.AddDate(8, 0, 0)) {
		t.Fatalf("valid %v to %v", c.Leaf().NotBefore, c.Leaf().NotAfter)
	}
}

func TestCorruptCertificateFileIsNamedNotReplaced(t *testing.T) {
	for _, file := range []string{CertFile, KeyFile} {
		t.Run(file, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := LoadOrCreateCertificate(certConfig(dir), nil, nil); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, file)
			writeFile(t, path, "-----BEGIN GARBAGE-----\n")
			_, err := LoadOrCreateCertificate(certConfig(dir), nil, nil)
			if !errors.Is(err, ErrCorruptCertificate) || !regexp.MustCompile(regexp.QuoteMeta(path)).MatchString(err.Error()) {
				t.Fatalf("error %v, want ErrCorruptCertificate naming %s", err, path)
			}
			if b, _ := os.ReadFile(path); string(b) != "-----BEGIN GARBAGE-----\n" {
				t.Error("the corrupt file was replaced")
			}
		})
	}
	t.Run("key of another certificate", func(t *testing.T) {
		a, b := t.TempDir(), t.TempDir()
		for _, d := range []string{a, b} {
			if _, err := LoadOrCreateCertificate(certConfig(d), nil, nil); err != nil {
				t.Fatal(err)
			}
		}
		key, _ := os.ReadFile(filepath.Join(b, KeyFile))
		writeFile(t, filepath.Join(a, KeyFile), string(key))
		if _, err := LoadOrCreateCertificate(certConfig(a), nil, nil); !errors.Is(err, ErrCorruptCertificate) {
			t.Fatalf("error %v, want ErrCorruptCertificate", err)
		}
	})
}

// A power cut between the key and the certificate of the first start
// must not need a person with a shell.
func TestCertificateWithAMissingFileIsMadeAgain(t *testing.T) {
	dir := t.TempDir()
	c1, err := LoadOrCreateCertificate(certConfig(dir), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err = os.Remove(filepath.Join(dir, CertFile)); err != nil {
		t.Fatal(err)
	}
	c2, err := LoadOrCreateCertificate(certConfig(dir), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c2.Fingerprint() == c1.Fingerprint() {
		t.Fatal("same certificate without its file")
	}
}

func TestCertificateRefusesABadName(t *testing.T) {
	cfg := certConfig(t.TempDir())
	cfg.Extra = []string{"not a name"}
	if _, err := LoadOrCreateCertificate(cfg, nil, nil); err == nil {
		t.Fatal("no error")
	}
}

func TestTLSConfigServesTheCertificate(t *testing.T) {
	c, err := LoadOrCreateCertificate(certConfig(t.TempDir()), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") }))
	srv.TLS = c.TLSConfig()
	srv.StartTLS()
	defer srv.Close()
	pool := x509.NewCertPool()
	pool.AddCert(c.Leaf())
	var seen string
	cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12,
		VerifyConnection: func(cs tls.ConnectionState) error {
			seen = FormatFingerprint(cs.PeerCertificates[0].Raw)
			return nil
		}}}}
	res, err := cl.Get(srv.URL) // https://127.0.0.1:port: the IP SAN
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if seen != c.Fingerprint() {
		t.Fatalf("served %s, want %s", seen, c.Fingerprint())
	}
	if a, b := c.TLSConfig(), c.TLSConfig(); a == b {
		t.Error("TLSConfig shares one config between callers")
	}
}
