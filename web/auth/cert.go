package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jonboulle/clockwork"
	"go.uber.org/zap"

	"onair/internal/atomicfile"
)

// The certificate's files in CertConfig.Dir.
const (
	CertFile = "tls.crt" // PEM certificate, mode 0644
	KeyFile  = "tls.key" // PEM PKCS #8 ECDSA P-256 key, mode 0600
)

// certValidity is the certificate's lifetime: the box is never reissued
// one by anybody, and a browser's exception is for this certificate.
const certValidity = 10 * 365 * 24 * time.Hour

// clockFloor is a date before which the clock is plainly unset: a box
// without an RTC boots in 1970 until NTP answers. A certificate made then
// would expire in 1980; its validity then counts from clockFloor instead.
var clockFloor = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// ErrCorruptCertificate is wrapped by the error about a certificate or key
// file that exists but does not parse or does not match the other file.
var ErrCorruptCertificate = errors.New("auth: corrupt TLS certificate")

// CertConfig says where the certificate lives and which names it holds.
type CertConfig struct {
	// Dir holds CertFile and KeyFile; required, created 0700 if missing.
	Dir string
	// Hostname is the box's host name [os.Hostname()].
	Hostname string
	// Extra are more names the box is reached by: DNS names (e.g.
	// "encoder-3.local") or IP addresses. localhost, 127.0.0.1 and ::1
	// are always in.
	Extra []string
}

// Certificate is the box's self-signed HTTPS certificate.
type Certificate struct {
	cert        tls.Certificate
	fingerprint string
}

// LoadOrCreateCertificate loads the certificate in cfg.Dir, or, when
// either file is missing, makes a new one (ECDSA P-256, valid 10 years,
// the names of cfg) and stores both files. A file that exists but is
// corrupt is an error naming it, not replaced: remove both files to get a
// new certificate (its fingerprint changes, and browsers warn again).
// Names added to cfg after the certificate was made are not in it: that is
// logged, the certificate is kept (its fingerprint is what the operator
// trusts).
func LoadOrCreateCertificate(cfg CertConfig, log *zap.Logger, clock clockwork.Clock) (*Certificate, error) {
	if cfg.Dir == "" {
		return nil, errors.New("auth: tls: no state dir")
	}
	if log == nil {
		log = zap.NewNop()
	}
	if clock == nil {
		clock = clockwork.NewRealClock()
	}
	if cfg.Hostname == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("auth: tls: hostname: %w", err)
		}
		cfg.Hostname = h
	}
	dns, ips, err := certNames(cfg)
	if err != nil {
		return nil, err
	}
	if err = os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("auth: tls: state dir: %w", err)
	}
	certPath, keyPath := filepath.Join(cfg.Dir, CertFile), filepath.Join(cfg.Dir, KeyFile)
	_, cerr := os.Stat(certPath)
	_, kerr := os.Stat(keyPath)
	if errors.Is(cerr, fs.ErrNotExist) || errors.Is(kerr, fs.ErrNotExist) {
		if cerr == nil || kerr == nil {
			// Written key first, then certificate: a key alone is an
			// interrupted first start; a certificate alone has lost its key.
			log.Warn("tls: one of the certificate's files is missing: making a new certificate",
				zap.String("cert", certPath), zap.String("key", keyPath))
		}
		c, gerr := createCertificate(certPath, keyPath, cfg.Hostname, dns, ips, clock.Now())
		if gerr != nil {
			return nil, gerr
		}
		log.Info("tls: certificate made", zap.String("fingerprint", c.fingerprint),
			zap.Strings("dns", dns), zap.Stringers("ips", ips), zap.Time("not_after", c.cert.Leaf.NotAfter))
		return c, nil
	}
	c, err := loadCertificate(certPath, keyPath, log)
	if err != nil {
		return nil, err
	}
	leaf := c.cert.Leaf
	for _, n := range append(slices.Clone(dns), ipStrings(ips)...) {
		if leaf.VerifyHostname(n) != nil {
			log.Warn("tls: the certificate lacks a configured name (remove its files to make a new one; the fingerprint changes)",
				zap.String("name", n), zap.String("cert", certPath))
		}
	}
	if now := clock.Now(); now.After(leaf.NotAfter) && now.After(clockFloor) {
		log.Warn("tls: the certificate has expired (remove its files to make a new one)",
			zap.String("cert", certPath), zap.Time("not_after", leaf.NotAfter))
	}
	log.Info("tls: certificate loaded", zap.String("fingerprint", c.fingerprint))
	return c, nil
}

// certNames are the certificate's DNS names and IP addresses.
func certNames(cfg CertConfig) (dns []string, ips []netip.Addr, err error) {
	add := func(n string) error {
		if ip, err := netip.ParseAddr(n); err == nil {
			if !slices.Contains(ips, ip) {
				ips = append(ips, ip)
			}
			return nil
		}
		if !validDNSName(n) {
			return fmt.Errorf("auth: tls: name %q is neither an IP address nor a DNS name", n)
		}
		n = strings.ToLower(n)
		if !slices.Contains(dns, n) {
			dns = append(dns, n)
		}
		return nil
	}
	for _, n := range append([]string{cfg.Hostname, "localhost", "127.0.0.1", "::1"}, cfg.Extra...) {
		if err := add(n); err != nil {
			return nil, nil, err
		}
	}
	return dns, ips, nil
}

// validDNSName: labels of letters, digits and inner hyphens, 1–63 bytes
// each, 253 in all.
func validDNSName(n string) bool {
	if n == "" || len(n) > 253 {
		return false
	}
	for _, l := range strings.Split(n, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range []byte(l) {
			if !isAlnum(c) && c != '-' {
				return false
			}
		}
	}
	return true
}

func ipStrings(ips []netip.Addr) []string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	return s
}

func createCertificate(certPath, keyPath, hostname string, dns []string, ips []netip.Addr, now time.Time) (*Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("auth: tls: generate key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("auth: tls: serial: %w", err)
	}
	from := now
	if from.Before(clockFloor) {
		from = clockFloor
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hostname, Organization: []string{"onair"}},
		NotBefore:             now.Add(-time.Hour), // a client whose clock is a little behind
		NotAfter:              from.Add(certValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              dns,
	}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IP(ip.AsSlice()))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("auth: tls: create certificate: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("auth: tls: marshal key: %w", err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := atomicfile.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := atomicfile.WriteFile(certPath, certPEM, 0o644); err != nil {
		return nil, err
	}
	return newCertificate(certPEM, keyPEM, certPath, keyPath)
}

func loadCertificate(certPath, keyPath string, log *zap.Logger) (*Certificate, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("auth: tls: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("auth: tls: %w", err)
	}
	if fi, err := os.Stat(keyPath); err == nil && fi.Mode().Perm()&0o077 != 0 {
		log.Warn("tls: key file readable by others: setting mode 0600", zap.String("key", keyPath), zap.Stringer("mode", fi.Mode().Perm()))
		if err := os.Chmod(keyPath, 0o600); err != nil {
			log.Warn("tls: key file chmod", zap.String("key", keyPath), zap.Error(err))
		}
	}
	return newCertificate(certPEM, keyPEM, certPath, keyPath)
}

// newCertificate parses the two PEM files; errors name the file at fault.
func newCertificate(certPEM, keyPEM []byte, certPath, keyPath string) (*Certificate, error) {
	if b, _ := pem.Decode(certPEM); b == nil || b.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%w: %s: no PEM CERTIFICATE block", ErrCorruptCertificate, certPath)
	} else if _, err := x509.ParseCertificate(b.Bytes); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrCorruptCertificate, certPath, err)
	}
	if b, _ := pem.Decode(keyPEM); b == nil || b.Type != "PRIVATE KEY" {
		// Not the parser's error: it could quote key material.
		return nil, fmt.Errorf("%w: %s: no PEM PRIVATE KEY block", ErrCorruptCertificate, keyPath)
	} else if _, err := x509.ParsePKCS8PrivateKey(b.Bytes); err != nil {
		return nil, fmt.Errorf("%w: %s: not a PKCS #8 private key", ErrCorruptCertificate, keyPath)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, fmt.Errorf("%w: %s and %s: %w", ErrCorruptCertificate, certPath, keyPath, err)
	}
	return &Certificate{cert: pair, fingerprint: FormatFingerprint(pair.Certificate[0])}, nil
}

// FormatFingerprint is the SHA-256 fingerprint of a DER certificate as
// browsers show it: AA:BB:…, 32 upper-case hex pairs.
func FormatFingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// Fingerprint is the certificate's SHA-256 fingerprint, AA:BB:…, for
// onairctl to print: the operator compares it with what the browser shows
// before trusting the certificate.
func (c *Certificate) Fingerprint() string { return c.fingerprint }

// Leaf is the parsed certificate.
func (c *Certificate) Leaf() *x509.Certificate { return c.cert.Leaf }

// TLSConfig is a server configuration serving the certificate, TLS 1.2 or
// later; a new one at each call, for the caller to adjust.
func (c *Certificate) TLSConfig() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{c.cert}}
}

// isAlnum: an ASCII letter or digit.
func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
