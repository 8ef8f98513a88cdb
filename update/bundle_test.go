package update

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The bytes of a bundle are the ones the package comment documents.
func TestBundleLayoutIsTheDocumentedOne(t *testing.T) {
	dir := t.TempDir()
	_, priv := testKey(t)
	path, rootfs := makeBundle(t, dir, priv, "v1.2.3", 1000, 7)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(raw[:8]) != "ONAIRUPD" || binary.BigEndian.Uint16(raw[8:]) != 1 || binary.BigEndian.Uint16(raw[10:]) != 64 {
		t.Fatalf("header % x", raw[:16])
	}
	mlen := int(binary.BigEndian.Uint32(raw[12:]))
	manifest := raw[16 : 16+mlen]
	sig := raw[16+mlen : 16+mlen+64]
	if !ed25519.Verify(priv.Public().(ed25519.PublicKey), manifest, sig) {
		t.Fatal("the signature is not over the exact manifest bytes")
	}
	var m map[string]any
	if err := json.Unmarshal(manifest, &m); err != nil {
		t.Fatal(err)
	}
	want := `{"format":1,"version":"v1.2.3","created":"2026-12-03T14:00:00Z","compression":"none","parts":[{"name":"rootfs","size":1000,"sha256":"` + sum(rootfs) + `","offset":0}]}`
	if string(manifest) != want {
		t.Fatalf("manifest\n%s\nwant\n%s", manifest, want)
	}
	if !bytes.Equal(raw[16+mlen+64:], rootfs) {
		t.Fatal("the data is not the rootfs as is")
	}
}

func TestVerifyReturnsTheSignedManifest(t *testing.T) {
	dir := t.TempDir()
	pub, priv := testKey(t)
	path, rootfs := makeBundle(t, dir, priv, "v2", 3<<20+17, 3)
	m, err := Verify(context.Background(), path, pub)
	if err != nil {
		t.Fatal(err)
	}
	p, ok := m.Part(PartRootfs)
	if m.Version != "v2" || !m.Created.Equal(created) || !ok || p.Size != int64(len(rootfs)) || p.SHA256 != sum(rootfs) {
		t.Fatalf("manifest %+v", m)
	}
}

// rawBundle assembles a bundle from its pieces, signing manifest with priv
// (nil: sig as given).
func rawBundle(manifest []byte, priv ed25519.PrivateKey, data []byte) []byte {
	h := header{format: FormatVersion, sigLen: 64, manifestLen: uint32(len(manifest))}
	b := append(h.marshal(), manifest...)
	b = append(b, ed25519.Sign(priv, manifest)...)
	return append(b, data...)
}

func signedManifest(t testing.TB, m Manifest) []byte {
	t.Helper()
	raw, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// Every way a bundle can be bad is refused before the slot is opened, with
// the bootloader untouched: verify-then-write.
func TestBadBundlesAreRefusedBeforeAnyWriteToTheSlot(t *testing.T) {
	data := bytes.Repeat([]byte("rootfs"), 1000)
	good := func(*Manifest) {}
	manifest := func(t testing.TB, edit func(*Manifest)) []byte {
		m := Manifest{Format: 1, Version: "v9", Created: created, Compression: "none",
			Parts: []Part{{Name: "rootfs", Size: int64(len(data)), SHA256: sum(data)}}}
		edit(&m)
		return signedManifest(t, m)
	}
	for _, tc := range []struct {
		name string
		// bundle returns the bundle's bytes, signed by priv (the box's key)
		// or by another key.
		bundle func(t testing.TB, priv ed25519.PrivateKey) []byte
		want   error
		says   string
	}{
		{"bad signature", func(t testing.TB, priv ed25519.PrivateKey) []byte {
			b := rawBundle(manifest(t, good), priv, data)
			b[HeaderSize+int(binary.BigEndian.Uint32(b[12:]))+5] ^= 0x40
			return b
		}, ErrBadSignature, "bad signature"},
		{"wrong key", func(t testing.TB, _ ed25519.PrivateKey) []byte {
			_, other := testKey(t)
			return rawBundle(manifest(t, good), other, data)
		}, ErrBadSignature, "trusted key"},
		{"manifest edited after signing", func(t testing.TB, priv ed25519.PrivateKey) []byte {
			b := rawBundle(manifest(t, good), priv, data)
			i := bytes.Index(b, []byte(`"v9"`))
			b[i+2] = '8'
			return b
		}, ErrBadSignature, ""},
		{"corrupted part byte", func(t testing.TB, priv ed25519.PrivateKey) []byte {
			b := rawBundle(manifest(t, good), priv, data)
			b[len(b)-len(data)/2] ^= 1
			return b
		}, ErrHashMismatch, "rootfs: sha256"},
		{"truncated in the data", func(t testing.TB, priv ed25519.PrivateKey) []byte {
			b := rawBundle(manifest(t, good), priv, data)
			return b[:len(b)-1]
		}, ErrTruncated, "the parts end at"},
		{"truncated in the manifest", func(t testing.TB, priv ed25519.PrivateKey) []byte {
			return rawBundle(manifest(t, good), priv, data)[:HeaderSize+20]
		}, ErrTruncated, ""},
		{"truncated in the header", func(t testing.TB, priv ed25519.PrivateKey) []byte {
			return rawBundle(manifest(t, good), priv, data)[:9]
		}, ErrTruncated, "shorter than the header"},
		{"empty file", func(testing.TB, ed25519.PrivateKey) []byte { return nil }, ErrTruncated, ""},
		{"data after the last part", func(t testing.TB, priv ed25519.PrivateKey) []byte {
			return append(rawBundle(manifest(t, good), priv, data), 0)
		}, ErrTrailingData, "1 bytes"},
		{"oversized manifest", func(t testing.TB, priv ed25519.PrivateKey) []byte {
			big := manifest(t, func(m *Manifest) { m.Version = strings.Repeat("x", MaxManifest) })
			return rawBundle(big, priv, data)
		}, ErrManifestTooLarge, "at most 65536"},
		{"not a bundle", func(testing.TB, ed25519.PrivateKey) []byte {
			return bytes.Repeat([]byte{0x55}, 4096)
		}, ErrBadMagic, ""},
		{"format 2", func(t testing.TB, priv ed25519.PrivateKey) []byte {
			b := rawBundle(manifest(t, good), priv, data)
			b[9] = 2
			return b
		}, ErrFormat, ""},
		{"signed manifest says format 2", func(t testing.TB, priv ed25519.PrivateKey) []byte {
			return rawBundle(manifest(t, func(m *Manifest) { m.Format = 2 }), priv, data)
		}, ErrFormat, ""},
		{"compressed part", func(t testing.TB, priv ed25519.PrivateKey) []byte {
			return rawBundle(manifest(t, func(m *Manifest) { m.Compression = "gzip" }), priv, data)
		}, ErrBadManifest, "compression"},
		{"parts not contiguous", func(t testing.TB, priv ed25519.PrivateKey) []byte {
			return rawBundle(manifest(t, func(m *Manifest) { m.Parts[0].Offset = 1 }), priv, append([]byte{0}, data...))
		}, ErrBadManifest, "contiguous"},
		{"no rootfs", func(t testing.TB, priv ed25519.PrivateKey) []byte {
			return rawBundle(manifest(t, func(m *Manifest) { m.Parts[0].Name = "boot" }), priv, data)
		}, ErrNoRootfs, ""},
		{"unknown manifest field", func(t testing.TB, priv ed25519.PrivateKey) []byte {
			m := manifest(t, good)
			m = append(m[:len(m)-1], []byte(`,"signed_by":"me"}`)...)
			return rawBundle(m, priv, data)
		}, ErrBadManifest, "signed_by"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bx := newBox(t)
			path := filepath.Join(bx.dir, "bad.bundle")
			if err := os.WriteFile(path, tc.bundle(t, bx.priv), 0o644); err != nil {
				t.Fatal(err)
			}
			slotB, st := fileHash(t, bx.cfg.SlotB), bx.state()
			_, err := bx.in.Install(context.Background(), path, InstallOptions{})
			if !errors.Is(err, tc.want) {
				t.Fatalf("Install: %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Errorf("error %q does not say %q", err, tc.says)
			}
			if bx.opened != 0 {
				t.Errorf("the slot was opened for writing %d times", bx.opened)
			}
			if got := fileHash(t, bx.cfg.SlotB); got != slotB {
				t.Error("slot b changed")
			}
			if got := bx.state(); got != st {
				t.Errorf("boot state %+v, was %+v", got, st)
			}
			if _, err := Verify(context.Background(), path, bx.pub); !errors.Is(err, tc.want) {
				t.Errorf("Verify: %v, want %v", err, tc.want)
			}
		})
	}
}

// A bundle that changes between the verifying pass and the writing pass
// (someone copies a new one over it) is caught while it is written, and the
// slot is not set on trial.
func TestBundleChangedBetweenThePassesIsNotBooted(t *testing.T) {
	bx := newBox(t)
	path, _ := makeBundle(t, bx.dir, bx.priv, "v2", 3<<20, 5)
	st := bx.state()
	changed := false
	bx.in.wrap = func(w io.Writer) io.Writer {
		return writerFunc(func(p []byte) (int, error) {
			if !changed {
				changed = true
				f, err := os.OpenFile(path, os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				fi, _ := f.Stat()
				if _, err := f.WriteAt([]byte{0xff, 0x00, 0xff}, fi.Size()-10); err != nil {
					t.Fatal(err)
				}
				_ = f.Close()
			}
			return w.Write(p)
		})
	}
	_, err := bx.in.Install(context.Background(), path, InstallOptions{})
	if !errors.Is(err, ErrChanged) || !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("Install: %v, want ErrChanged", err)
	}
	if got := bx.state(); got != st || got.Next() != SlotA {
		t.Fatalf("boot state %+v, was %+v", got, st)
	}
}

func FuzzReadBundle(f *testing.F) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32)) // the fuzz corpus's key, made here
	pub := priv.Public().(ed25519.PublicKey)
	data := []byte("a tiny rootfs")
	m, _ := json.Marshal(Manifest{Format: 1, Version: "v1", Created: created, Compression: "none",
		Parts: []Part{{Name: "rootfs", Size: int64(len(data)), SHA256: sum(data)}}})
	f.Add(rawBundle(m, priv, data))
	f.Add([]byte("ONAIRUPD\x00\x01\x00\x40\x00\x00\x00\x02{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, dataStart, err := readBundle(bytes.NewReader(b), int64(len(b)), pub)
		if err != nil {
			return
		}
		var total int64
		for _, p := range m.Parts {
			total += p.Size
		}
		if dataStart+total != int64(len(b)) {
			t.Fatalf("accepted a bundle whose parts end at %d of %d", dataStart+total, len(b))
		}
	})
}

// FuzzSignedManifest gets past the signature (it signs what it is given)
// to the manifest's parsing and layout checks.
func FuzzSignedManifest(f *testing.F) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, 32))
	pub := priv.Public().(ed25519.PublicKey)
	data := []byte("a tiny rootfs")
	m, _ := json.Marshal(Manifest{Format: 1, Version: "v1", Created: created, Compression: "none",
		Parts: []Part{{Name: "rootfs", Size: int64(len(data)), SHA256: sum(data)}}})
	f.Add(m, data)
	f.Add([]byte(`{"format":1,"version":"v","created":"2026-12-03T14:00:00Z","compression":"none","parts":[{"name":"rootfs","size":-1,"sha256":"","offset":0}]}`), []byte{})
	f.Fuzz(func(t *testing.T, manifest, data []byte) {
		if len(manifest) == 0 || len(manifest) > MaxManifest {
			return
		}
		b := rawBundle(manifest, priv, data)
		m, dataStart, err := readBundle(bytes.NewReader(b), int64(len(b)), pub)
		if err != nil {
			return
		}
		if _, ok := m.Part(PartRootfs); !ok || dataStart != int64(HeaderSize+len(manifest)+64) {
			t.Fatalf("accepted %+v at %d", m, dataStart)
		}
		var end int64
		for _, p := range m.Parts {
			if p.Offset != end || p.Size < 0 {
				t.Fatalf("accepted part %+v", p)
			}
			end += p.Size
		}
		if end != int64(len(data)) {
			t.Fatalf("accepted parts ending at %d of %d", end, len(data))
		}
	})
}
