package update

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	mathrand "math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	"onair/internal/testutil"
)

// created is the bundles' creation time.
var created = time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)

// testKey is a key pair made by the test: no key is ever checked in.
func testKey(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

// writeRandom writes size pseudo-random bytes (from seed) to path.
func writeRandom(t testing.TB, path string, size int, seed uint64) []byte {
	t.Helper()
	b := make([]byte, size)
	r := mrand(seed)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return b
}

func mrand(seed uint64) *mathrand.Rand {
	return mathrand.New(mathrand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// makeBundle bundles a rootfs of size bytes signed by priv into dir.
func makeBundle(t testing.TB, dir string, priv ed25519.PrivateKey, version string, size int, seed uint64) (bundle string, rootfs []byte) {
	t.Helper()
	rootfsPath := filepath.Join(dir, "rootfs-"+version+".img")
	rootfs = writeRandom(t, rootfsPath, size, seed)
	bundle = filepath.Join(dir, "onair-"+version+".bundle")
	if err := WriteFile(context.Background(), bundle, priv, version, created, []PartFile{{Name: PartRootfs, Path: rootfsPath}}); err != nil {
		t.Fatal(err)
	}
	return bundle, rootfs
}

// fileHash is the hex SHA-256 of the file at path.
func fileHash(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func sum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// box is a freshly imaged box: slots a and b are files in a temp dir, a
// runs and is good, b holds an old image; the bootloader is a state file.
type box struct {
	t      testing.TB
	dir    string
	cfg    Config
	boot   *FileBootloader
	pub    ed25519.PublicKey
	priv   ed25519.PrivateKey
	in     *Installer
	opened int // slot opens for writing
}

func newBox(t testing.TB) *box {
	t.Helper()
	dir := t.TempDir()
	pub, priv := testKey(t)
	bx := &box{t: t, dir: dir, pub: pub, priv: priv}
	bx.cfg = DefaultConfig()
	bx.cfg.PublicKey = filepath.Join(dir, "unused.pub") // the key comes in deps
	bx.cfg.SlotA = filepath.Join(dir, "slot-a.img")
	bx.cfg.SlotB = filepath.Join(dir, "slot-b.img")
	bx.cfg.Bootloader = BootloaderFile
	bx.cfg.StateFile = filepath.Join(dir, "boot.json")
	writeRandom(t, bx.cfg.SlotA, 64<<10, 1)
	writeRandom(t, bx.cfg.SlotB, 64<<10, 2)
	bx.boot = NewFileBootloader(bx.cfg.StateFile)
	if err := bx.boot.Init(SlotA); err != nil {
		t.Fatal(err)
	}
	in, err := NewInstaller(bx.cfg, InstallerDeps{Boot: bx.boot, PublicKey: pub, Log: testutil.NilLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	open := in.openSlot
	in.openSlot = func(path string) (*os.File, error) {
		bx.opened++
		return open(path)
	}
	bx.in = in
	return bx
}

// installer is another Installer on the box's slots and bootloader, as a
// box running version would have.
func (bx *box) installer(t testing.TB, version string) *Installer {
	t.Helper()
	in, err := NewInstaller(bx.cfg, InstallerDeps{Boot: bx.boot, PublicKey: bx.pub, Log: testutil.NilLogger(t), Version: version})
	if err != nil {
		t.Fatal(err)
	}
	open := in.openSlot
	in.openSlot = func(path string) (*os.File, error) {
		bx.opened++
		return open(path)
	}
	return in
}

func (bx *box) state() BootState {
	bx.t.Helper()
	s, err := bx.boot.State()
	if err != nil {
		bx.t.Fatal(err)
	}
	return s
}

func (bx *box) bootOnce() Slot {
	bx.t.Helper()
	s, err := bx.boot.Boot()
	if err != nil {
		bx.t.Fatal(err)
	}
	return s
}

// marker is a Marker under Run with a fake clock.
type marker struct {
	t     *testing.T
	m     *Marker
	clock *clockwork.FakeClock
	ctx   context.Context
	// stop ends Run (an onaird that stops) and waits for it; once.
	stop func()
}

const poll = time.Second

func runMarker(t *testing.T, boot Bootloader, cfg MarkerConfig, healthy func() bool, with ...func(*MarkerDeps)) *marker {
	t.Helper()
	clock := clockwork.NewFakeClockAt(created)
	deps := MarkerDeps{Boot: boot, Healthy: healthy, Log: testutil.NilLogger(t), Clock: clock, Poll: poll, Version: "test"}
	for _, f := range with {
		f(&deps)
	}
	m, err := New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	tctx, tcancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(tcancel)
	mk := &marker{t: t, m: m, clock: clock, ctx: tctx}
	mk.stop = sync.OnceFunc(func() {
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run: %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
	t.Cleanup(mk.stop)
	return mk
}

// advanceUntil moves the fake clock a poll at a time, each time the
// Marker sleeps, until cond holds of its status, for at most limit polls.
// It returns the fake time that took.
func (mk *marker) advanceUntil(what string, limit time.Duration, cond func(Status) bool) time.Duration {
	mk.t.Helper()
	start := mk.clock.Now()
	for {
		ch := mk.m.changes()
		if cond(mk.m.Status()) {
			return mk.clock.Since(start)
		}
		if mk.clock.Since(start) > limit {
			mk.t.Fatalf("%s: not after %s: status %+v", what, limit, mk.m.Status())
		}
		sleeping := make(chan error, 1)
		go func() { sleeping <- mk.clock.BlockUntilContext(mk.ctx, 1) }()
		select {
		case err := <-sleeping:
			if err != nil {
				mk.t.Fatalf("%s: %v: status %+v", what, err, mk.m.Status())
			}
			mk.clock.Advance(poll)
		case <-ch:
		case <-mk.ctx.Done():
			mk.t.Fatalf("%s: timed out: status %+v", what, mk.m.Status())
		}
	}
}

// writerFunc is a writer made of a function.
type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
