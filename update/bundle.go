package update

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"time"
	"unicode/utf8"

	"onair/internal/atomicfile"
)

// The bundle's fixed sizes (see the package comment).
const (
	// Magic opens every bundle.
	Magic = "ONAIRUPD"
	// FormatVersion is the bundle format this package reads and writes.
	FormatVersion = 1
	// HeaderSize is the fixed header before the manifest.
	HeaderSize = 16
	// MaxManifest bounds the manifest: a larger one is refused before a
	// byte of it is read.
	MaxManifest = 64 << 10
	// CompressionNone is the only compression: parts are stored as is.
	CompressionNone = "none"
	// PartRootfs is the part written to the root slot.
	PartRootfs = "rootfs"

	maxParts   = 8
	maxVersion = 128
	chunkSize  = 1 << 20
)

// Errors of reading a bundle (wrapped; check with errors.Is).
var (
	ErrBadMagic         = errors.New("update: not an onair bundle (bad magic)")
	ErrFormat           = errors.New("update: unsupported bundle format")
	ErrManifestTooLarge = errors.New("update: manifest too large")
	ErrTruncated        = errors.New("update: bundle truncated")
	ErrTrailingData     = errors.New("update: bundle has data after its last part")
	ErrBadSignature     = errors.New("update: bad signature (not signed by the trusted key)")
	ErrBadManifest      = errors.New("update: bad manifest")
	ErrHashMismatch     = errors.New("update: part does not match its hash")
	ErrNoRootfs         = errors.New("update: bundle has no rootfs part")
)

// Manifest describes a bundle; its exact bytes are what is signed.
type Manifest struct {
	Format int `json:"format"`
	// Version is the build's version (git describe).
	Version     string    `json:"version"`
	Created     time.Time `json:"created"`
	Compression string    `json:"compression"`
	Parts       []Part    `json:"parts"`
}

// Part is one file carried by a bundle.
type Part struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
	// SHA256 is the hex SHA-256 of the part's bytes.
	SHA256 string `json:"sha256"`
	// Offset is where the part starts, from the start of the data.
	Offset int64 `json:"offset"`
}

// Part returns the part called name.
func (m Manifest) Part(name string) (Part, bool) {
	for _, p := range m.Parts {
		if p.Name == name {
			return p, true
		}
	}
	return Part{}, false
}

var (
	partName = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)
	hexHash  = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// validate checks a signed manifest's fields and layout; the data after
// the signature is dataSize bytes.
func (m Manifest) validate(dataSize int64) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadManifest, fmt.Sprintf(format, args...))
	}
	if m.Format != FormatVersion {
		return fmt.Errorf("%w: manifest says format %d, want %d", ErrFormat, m.Format, FormatVersion)
	}
	if m.Version == "" || len(m.Version) > maxVersion || !utf8.ValidString(m.Version) {
		return bad("version %q: want 1..%d bytes of UTF-8", m.Version, maxVersion)
	}
	if m.Compression != CompressionNone {
		return bad("compression %q: want %q", m.Compression, CompressionNone)
	}
	if len(m.Parts) == 0 || len(m.Parts) > maxParts {
		return bad("%d parts: want 1..%d", len(m.Parts), maxParts)
	}
	var end int64
	seen := map[string]bool{}
	for _, p := range m.Parts {
		switch {
		case !partName.MatchString(p.Name):
			return bad("part name %q", p.Name)
		case seen[p.Name]:
			return bad("part %q twice", p.Name)
		case p.Size < 0:
			return bad("part %q: size %d", p.Name, p.Size)
		case p.Offset != end:
			return bad("part %q at offset %d, want %d (parts are contiguous)", p.Name, p.Offset, end)
		case !hexHash.MatchString(p.SHA256):
			return bad("part %q: sha256 %q: want 64 lowercase hex digits", p.Name, p.SHA256)
		}
		seen[p.Name] = true
		end += p.Size
	}
	if !seen[PartRootfs] {
		return ErrNoRootfs
	}
	if dataSize < end {
		return fmt.Errorf("%w: the parts end at data offset %d, the file at %d", ErrTruncated, end, dataSize)
	}
	if dataSize > end {
		return fmt.Errorf("%w: %d bytes", ErrTrailingData, dataSize-end)
	}
	return nil
}

// header is the fixed start of a bundle.
type header struct {
	format      uint16
	sigLen      uint16
	manifestLen uint32
}

func (h header) marshal() []byte {
	b := make([]byte, HeaderSize)
	copy(b, Magic)
	binary.BigEndian.PutUint16(b[8:], h.format)
	binary.BigEndian.PutUint16(b[10:], h.sigLen)
	binary.BigEndian.PutUint32(b[12:], h.manifestLen)
	return b
}

// parseHeader checks the fixed header, b its HeaderSize bytes.
func parseHeader(b []byte) (header, error) {
	if len(b) < HeaderSize {
		return header{}, fmt.Errorf("%w: %d bytes, shorter than the header", ErrTruncated, len(b))
	}
	if string(b[:8]) != Magic {
		return header{}, ErrBadMagic
	}
	h := header{
		format:      binary.BigEndian.Uint16(b[8:]),
		sigLen:      binary.BigEndian.Uint16(b[10:]),
		manifestLen: binary.BigEndian.Uint32(b[12:]),
	}
	switch {
	case h.format != FormatVersion:
		return header{}, fmt.Errorf("%w: version %d, want %d", ErrFormat, h.format, FormatVersion)
	case h.sigLen != ed25519.SignatureSize:
		return header{}, fmt.Errorf("%w: signature of %d bytes, want %d", ErrFormat, h.sigLen, ed25519.SignatureSize)
	case h.manifestLen == 0:
		return header{}, fmt.Errorf("%w: empty", ErrBadManifest)
	case h.manifestLen > MaxManifest:
		return header{}, fmt.Errorf("%w: %d bytes, at most %d", ErrManifestTooLarge, h.manifestLen, MaxManifest)
	}
	return h, nil
}

// readBundle reads and checks everything but the parts' hashes: header,
// signature (against pub, before the manifest is parsed), manifest and
// layout. It returns the manifest and where the data starts.
func readBundle(r io.ReaderAt, size int64, pub ed25519.PublicKey) (Manifest, int64, error) {
	if len(pub) != ed25519.PublicKeySize {
		return Manifest{}, 0, fmt.Errorf("update: public key of %d bytes, want %d", len(pub), ed25519.PublicKeySize)
	}
	hb := make([]byte, HeaderSize)
	if n, err := r.ReadAt(hb, 0); n < HeaderSize {
		if errors.Is(err, io.EOF) {
			return Manifest{}, 0, fmt.Errorf("%w: %d bytes, shorter than the header", ErrTruncated, n)
		}
		return Manifest{}, 0, fmt.Errorf("update: read header: %w", err)
	}
	h, err := parseHeader(hb)
	if err != nil {
		return Manifest{}, 0, err
	}
	dataStart := int64(HeaderSize) + int64(h.manifestLen) + int64(h.sigLen)
	if size < dataStart {
		return Manifest{}, 0, fmt.Errorf("%w: %d bytes, the manifest and signature end at %d", ErrTruncated, size, dataStart)
	}
	ms := make([]byte, int(h.manifestLen)+int(h.sigLen))
	if _, err := r.ReadAt(ms, HeaderSize); err != nil {
		if errors.Is(err, io.EOF) {
			return Manifest{}, 0, fmt.Errorf("%w: in the manifest", ErrTruncated)
		}
		return Manifest{}, 0, fmt.Errorf("update: read manifest: %w", err)
	}
	raw, sig := ms[:h.manifestLen], ms[h.manifestLen:]
	if !ed25519.Verify(pub, raw, sig) {
		return Manifest{}, 0, ErrBadSignature
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, 0, fmt.Errorf("%w: %w", ErrBadManifest, err)
	}
	if dec.More() {
		return Manifest{}, 0, fmt.Errorf("%w: data after the JSON object", ErrBadManifest)
	}
	if err := m.validate(size - dataStart); err != nil {
		return Manifest{}, 0, err
	}
	return m, dataStart, nil
}

// Bundle is an open bundle whose signature and layout are checked; its
// parts' hashes are checked by Verify.
type Bundle struct {
	// Manifest is the signed manifest.
	Manifest  Manifest
	f         *os.File
	dataStart int64
}

// OpenBundle opens the bundle at path and checks its header, its signature
// against pub and its manifest, reading at most HeaderSize + MaxManifest +
// 64 bytes. It does not hash the parts: Verify does.
func OpenBundle(path string, pub ed25519.PublicKey) (*Bundle, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("update: open bundle: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("update: open bundle: %w", err)
	}
	if !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, fmt.Errorf("update: bundle %s: not a regular file", path)
	}
	m, dataStart, err := readBundle(f, fi.Size(), pub)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	return &Bundle{Manifest: m, f: f, dataStart: dataStart}, nil
}

// Close closes the bundle's file.
func (b *Bundle) Close() error { return b.f.Close() }

// Verify hashes every part (pass 1) and fails with ErrHashMismatch, naming
// the part, on the first difference, or with ctx's error.
func (b *Bundle) Verify(ctx context.Context) error {
	buf := make([]byte, chunkSize)
	for _, p := range b.Manifest.Parts {
		if err := b.copyPart(ctx, p, io.Discard, buf); err != nil {
			return err
		}
	}
	return nil
}

// copyPart streams part p to w while hashing it, and fails if the hash
// differs from the manifest's (after w has had every byte: the caller must
// treat what w got as garbage on error).
func (b *Bundle) copyPart(ctx context.Context, p Part, w io.Writer, buf []byte) error {
	sum, err := hashCopy(ctx, io.NewSectionReader(b.f, b.dataStart+p.Offset, p.Size), p.Size, w, buf)
	if err != nil {
		return fmt.Errorf("update: part %s: %w", p.Name, err)
	}
	if got := hex.EncodeToString(sum); got != p.SHA256 {
		return fmt.Errorf("%w: %s: sha256 %s, the manifest says %s", ErrHashMismatch, p.Name, got, p.SHA256)
	}
	return nil
}

// hashCopy copies exactly n bytes from r to w (nil: nowhere) in chunks of
// buf, checking ctx before each, and returns their SHA-256.
func hashCopy(ctx context.Context, r io.Reader, n int64, w io.Writer, buf []byte) ([]byte, error) {
	h := sha256.New()
	for left := n; left > 0; {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		c := buf
		if int64(len(c)) > left {
			c = c[:left]
		}
		if _, err := io.ReadFull(r, c); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return nil, fmt.Errorf("%w: %d bytes short", ErrTruncated, left)
			}
			return nil, err
		}
		h.Write(c)
		if w != nil {
			if _, err := w.Write(c); err != nil {
				return nil, err
			}
		}
		left -= int64(len(c))
	}
	return h.Sum(nil), nil
}

// Verify checks the bundle at path completely (signature, manifest,
// every part's hash) and returns its manifest. Nothing is written.
func Verify(ctx context.Context, path string, pub ed25519.PublicKey) (Manifest, error) {
	b, err := OpenBundle(path, pub)
	if err != nil {
		return Manifest{}, err
	}
	defer func() { _ = b.Close() }()
	if err := b.Verify(ctx); err != nil {
		return Manifest{}, err
	}
	return b.Manifest, nil
}

// PartFile is a part to put in a bundle, read from a file.
type PartFile struct {
	Name string
	Path string
}

// Write writes a bundle of parts, signed with priv, to w. Each part file
// is read twice: once for its hash, once to copy it; a file that changed
// in between fails the bundle (ErrHashMismatch).
func Write(ctx context.Context, w io.Writer, priv ed25519.PrivateKey, version string, created time.Time, parts []PartFile) error {
	if len(priv) != ed25519.PrivateKeySize {
		return fmt.Errorf("update: private key of %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	m := Manifest{Format: FormatVersion, Version: version, Created: created.UTC(), Compression: CompressionNone}
	buf := make([]byte, chunkSize)
	var off int64
	for _, pf := range parts {
		p, err := hashFile(ctx, pf, buf)
		if err != nil {
			return err
		}
		p.Offset = off
		off += p.Size
		m.Parts = append(m.Parts, p)
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("update: manifest: %w", err)
	}
	if len(raw) > MaxManifest {
		return fmt.Errorf("%w: %d bytes", ErrManifestTooLarge, len(raw))
	}
	if err := m.validate(off); err != nil {
		return err
	}
	h := header{format: FormatVersion, sigLen: ed25519.SignatureSize, manifestLen: uint32(len(raw))}
	for _, b := range [][]byte{h.marshal(), raw, ed25519.Sign(priv, raw)} {
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("update: write bundle: %w", err)
		}
	}
	for i, pf := range parts {
		if err := copyFile(ctx, pf, m.Parts[i], w, buf); err != nil {
			return err
		}
	}
	return nil
}

func hashFile(ctx context.Context, pf PartFile, buf []byte) (Part, error) {
	f, err := os.Open(pf.Path)
	if err != nil {
		return Part{}, fmt.Errorf("update: part %s: %w", pf.Name, err)
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return Part{}, fmt.Errorf("update: part %s: %w", pf.Name, err)
	}
	sum, err := hashCopy(ctx, f, fi.Size(), nil, buf)
	if err != nil {
		return Part{}, fmt.Errorf("update: part %s: %s: %w", pf.Name, pf.Path, err)
	}
	return Part{Name: pf.Name, Size: fi.Size(), SHA256: hex.EncodeToString(sum)}, nil
}

func copyFile(ctx context.Context, pf PartFile, p Part, w io.Writer, buf []byte) error {
	f, err := os.Open(pf.Path)
	if err != nil {
		return fmt.Errorf("update: part %s: %w", pf.Name, err)
	}
	defer func() { _ = f.Close() }()
	sum, err := hashCopy(ctx, f, p.Size, w, buf)
	if err != nil {
		return fmt.Errorf("update: part %s: %s: %w", pf.Name, pf.Path, err)
	}
	if hex.EncodeToString(sum) != p.SHA256 {
		return fmt.Errorf("%w: %s: %s changed while the bundle was written", ErrHashMismatch, pf.Name, pf.Path)
	}
	return nil
}

// WriteFile writes a bundle (see Write) to path, through a temporary file
// renamed into place: a failed or interrupted run leaves no bundle.
func WriteFile(ctx context.Context, path string, priv ed25519.PrivateKey, version string, created time.Time, parts []PartFile) error {
	return atomicfile.Write(path, 0o644, func(w io.Writer) error {
		return Write(ctx, w, priv, version, created, parts)
	})
}

// MakeFile signs rootfs with the private key file keyPath into a bundle at
// out: onair-bundle's (and make bundle's) whole job. It refuses a version
// a box could not order (ErrUnorderedVersion: every box would refuse the
// bundle) and a key inside a git work tree (ErrKeyInRepo: one `git add`
// from the repository).
func MakeFile(ctx context.Context, out, keyPath, version string, created time.Time, rootfs string) error {
	if _, err := ParseVersion(version); err != nil {
		return err
	}
	abs, err := filepath.Abs(keyPath)
	if err != nil {
		return fmt.Errorf("update: private key: %w", err)
	}
	if repo := gitWorkTree(filepath.Dir(abs)); repo != "" {
		return fmt.Errorf("%w: the signing key %s is in %s: keep it outside any repository", ErrKeyInRepo, abs, repo)
	}
	priv, err := ReadPrivateKey(keyPath)
	if err != nil {
		return err
	}
	return WriteFile(ctx, out, priv, version, created, []PartFile{{Name: PartRootfs, Path: rootfs}})
}

// VerifyFile verifies the bundle at path with the public key file pubPath
// and returns its manifest.
func VerifyFile(ctx context.Context, path, pubPath string) (Manifest, error) {
	if pubPath == "" {
		return Manifest{}, errors.New("update: verify: no public key file")
	}
	pub, err := ReadPublicKey(pubPath)
	if err != nil {
		return Manifest{}, err
	}
	return Verify(ctx, path, pub)
}
