package update

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"

	"onair/internal/version"
)

// Errors of Install (wrapped; check with errors.Is), besides the bundle's.
var (
	// ErrTrialRunning: the running slot is on trial (not yet good). The
	// other slot is the only good one: it is not overwritten.
	ErrTrialRunning = errors.New("update: the running slot is on trial; the other one is the only good one")
	// ErrSlotTooSmall: the rootfs part does not fit the slot's device.
	ErrSlotTooSmall = errors.New("update: rootfs larger than the slot")
	// ErrChanged: the bundle changed between the verifying pass and the
	// writing pass.
	ErrChanged = errors.New("update: bundle changed while it was installed")
	// ErrReadBack: the slot does not read back what was written.
	ErrReadBack = errors.New("update: slot does not read back what was written")
	// ErrBusy: another Install is running.
	ErrBusy = errors.New("update: an install is running")
)

// InstallerDeps are the installer's collaborators.
type InstallerDeps struct {
	// Boot is the bootloader (required).
	Boot Bootloader
	// PublicKey is the trusted key; nil: read from Config.PublicKey.
	PublicKey ed25519.PublicKey
	Log       *zap.Logger
	// Progress, when set, is called after every chunk (1 MiB) of every
	// phase, from Install's goroutine.
	Progress func(Progress)
	// Version is the running build's, what a bundle must be newer than
	// (empty: internal/version.Version).
	Version string
}

// InstallOptions are one install's choices.
type InstallOptions struct {
	// AllowDowngrade installs a bundle that is not newer than the running
	// build (older, the same, or unordered: CheckNewer); without it such a
	// bundle is refused with ErrDowngrade before its parts are read.
	AllowDowngrade bool
}

// The phases of an install, in order.
const (
	PhaseVerify   = "verify"    // pass 1: every part hashed
	PhaseWrite    = "write"     // pass 2: the rootfs into the slot
	PhaseReadBack = "read back" // the slot hashed again
)

// Progress is how far an install is: Done of Total bytes of Phase.
type Progress struct {
	Phase       string
	Done, Total int64
}

// progressWriter counts what goes through it into Progress calls.
type progressWriter struct {
	w io.Writer
	f func(Progress)
	p Progress
}

func (pw *progressWriter) Write(b []byte) (int, error) {
	n, err := pw.w.Write(b)
	pw.p.Done += int64(n)
	pw.f(pw.p)
	return n, err
}

// track wraps w to report phase (of total bytes) when progress is set.
func (in *Installer) track(w io.Writer, phase string, total int64) io.Writer {
	if in.progress == nil {
		return w
	}
	return &progressWriter{w: w, f: in.progress, p: Progress{Phase: phase, Total: total}}
}

// Installer writes bundles into the inactive slot.
type Installer struct {
	cfg      Config
	boot     Bootloader
	pub      ed25519.PublicKey
	log      *zap.Logger
	progress func(Progress)
	running  string // the running build's version
	busy     sync.Mutex

	// Test hooks: openSlot opens a slot device for writing; wrap wraps the
	// slot's writer (interruptions at an offset).
	openSlot func(path string) (*os.File, error)
	wrap     func(io.Writer) io.Writer
}

// Installed is what Install did.
type Installed struct {
	Slot     Slot
	Device   string
	Manifest Manifest
	Tries    int
	Took     time.Duration
}

// NewInstaller validates cfg (which must be Configured) and reads the
// public key.
func NewInstaller(cfg Config, deps InstallerDeps) (*Installer, error) {
	if !cfg.Configured() {
		return nil, errors.New("update: updates not configured (update.public_key is empty)")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("update: %w", err)
	}
	if deps.Boot == nil {
		return nil, errors.New("update: installer without a bootloader")
	}
	if deps.PublicKey == nil {
		pub, err := ReadPublicKey(cfg.PublicKey)
		if err != nil {
			return nil, err
		}
		deps.PublicKey = pub
	}
	if deps.Log == nil {
		deps.Log = zap.NewNop()
	}
	if deps.Version == "" {
		deps.Version = version.Version
	}
	return &Installer{
		cfg: cfg, boot: deps.Boot, pub: deps.PublicKey, log: deps.Log, progress: deps.Progress, running: deps.Version,
		openSlot: func(path string) (*os.File, error) { return os.OpenFile(path, os.O_WRONLY, 0) },
	}, nil
}

// Install installs the bundle at bundlePath into the slot that is not
// running and sets it on trial for Config.MaxTries boots; it does not
// reboot. The slot's device comes from the configuration, never from the
// caller: the running root is never a target.
//
// In order: the boot state must have the running slot good (not on trial:
// ErrTrialRunning); the bundle's signature and manifest are checked, and
// its version must be newer than the running build's unless
// opts.AllowDowngrade (ErrDowngrade: CheckNewer); every hash is verified
// (pass 1) before the slot is opened; the target is marked bad
// (a trial of it ends), the rootfs part is streamed into it while hashed
// again (pass 2, ErrChanged on a difference), fsynced, its cache dropped
// and read back (ErrReadBack); then SetTrial. Any failure or ctx
// cancellation before SetTrial leaves the next boot on the running slot.
func (in *Installer) Install(ctx context.Context, bundlePath string, opts InstallOptions) (Installed, error) {
	if !in.busy.TryLock() {
		return Installed{}, ErrBusy
	}
	defer in.busy.Unlock()
	start := time.Now()
	st, err := in.boot.State()
	if err != nil {
		return Installed{}, err
	}
	if st.Booted != st.Default || !st.Good(st.Booted) {
		return Installed{}, fmt.Errorf("%w: running %s, default %s", ErrTrialRunning, st.Booted, st.Default)
	}
	target := st.Booted.Other()
	dev := in.cfg.Device(target)
	log := in.log.With(zap.String("bundle", bundlePath), zap.String("slot", string(target)), zap.String("device", dev))

	b, err := OpenBundle(bundlePath, in.pub)
	if err != nil {
		return Installed{}, err
	}
	defer func() { _ = b.Close() }()
	if err = in.admit(b.Manifest, opts, log); err != nil {
		return Installed{}, err
	}
	part, ok := b.Manifest.Part(PartRootfs)
	if !ok {
		return Installed{}, ErrNoRootfs // [unexpected]: validate requires it
	}
	log = log.With(zap.String("version", b.Manifest.Version), zap.Int64("bytes", part.Size))
	var total int64
	for _, p := range b.Manifest.Parts {
		total += p.Size
	}
	verify, buf := in.track(io.Discard, PhaseVerify, total), make([]byte, chunkSize)
	for _, p := range b.Manifest.Parts {
		if err = b.copyPart(ctx, p, verify, buf); err != nil {
			return Installed{}, err
		}
	}
	log.Info("bundle verified")

	// Only now may the slot be touched: opened (nothing written yet) to
	// check it can take the part, marked bad, then written.
	f, regular, err := in.open(dev, part.Size)
	if err != nil {
		return Installed{}, err
	}
	if st.Good(target) || st.Trial == target {
		if err = in.boot.MarkBad(target); err != nil {
			_ = f.Close()
			return Installed{}, err
		}
	}
	if err = in.writeSlot(ctx, b, part, f, regular); err != nil {
		log.Warn("install failed: the running slot still boots", zap.Error(err))
		return Installed{}, err
	}
	if err = in.boot.SetTrial(target, in.cfg.MaxTries); err != nil {
		return Installed{}, err
	}
	took := time.Since(start)
	log.Info("installed: the next boot tries it", zap.Int("tries", in.cfg.MaxTries), zap.Duration("took", took))
	return Installed{Slot: target, Device: dev, Manifest: b.Manifest, Tries: in.cfg.MaxTries, Took: took}, nil
}

// Check is what Install checks before it reads the parts, for a refusal
// before an install starts: the bundle's signature and manifest, and its
// version against the running build's (unless opts.AllowDowngrade). It
// reads at most the manifest; the parts are not hashed.
func (in *Installer) Check(bundlePath string, opts InstallOptions) (Manifest, error) {
	b, err := OpenBundle(bundlePath, in.pub)
	if err != nil {
		return Manifest{}, err
	}
	defer func() { _ = b.Close() }()
	return b.Manifest, in.admit(b.Manifest, opts, zap.NewNop())
}

// admit applies the downgrade protection to a signed manifest.
func (in *Installer) admit(m Manifest, opts InstallOptions, log *zap.Logger) error {
	err := CheckNewer(in.running, m.Version)
	switch {
	case err == nil:
		return nil
	case !opts.AllowDowngrade:
		return err
	}
	log.Warn("installing a version that is not newer: downgrade allowed", zap.String("running", in.running), zap.Error(err))
	return nil
}

// open opens the slot's device for writing and checks that size bytes fit
// (a block device's size is where its end is; a file grows). regular: it
// is a file, cut to the part's size after the write.
func (in *Installer) open(dev string, size int64) (f *os.File, regular bool, err error) {
	f, err = in.openSlot(dev)
	if err != nil {
		return nil, false, fmt.Errorf("update: open slot: %w", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
		}
	}()
	fi, err := f.Stat()
	if err != nil {
		return nil, false, fmt.Errorf("update: slot: %w", err)
	}
	if fi.Mode().IsRegular() {
		return f, true, nil
	}
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, false, fmt.Errorf("update: slot size: %w", err)
	}
	if end < size {
		return nil, false, fmt.Errorf("%w: %d bytes into %s of %d", ErrSlotTooSmall, size, dev, end)
	}
	if _, err = f.Seek(0, io.SeekStart); err != nil {
		return nil, false, fmt.Errorf("update: slot: %w", err)
	}
	return f, false, nil
}

// writeSlot streams part into the slot f (and closes it), syncs it and
// reads it back.
func (in *Installer) writeSlot(ctx context.Context, b *Bundle, part Part, f *os.File, regular bool) (err error) {
	defer func() {
		if cerr := f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("update: close slot: %w", cerr)
		}
	}()
	w := in.track(f, PhaseWrite, part.Size)
	if in.wrap != nil {
		w = in.wrap(w)
	}
	if err := b.copyPart(ctx, part, w, make([]byte, chunkSize)); err != nil {
		if errors.Is(err, ErrHashMismatch) || errors.Is(err, ErrTruncated) {
			return fmt.Errorf("%w: %w", ErrChanged, err)
		}
		return fmt.Errorf("update: write slot: %w", err)
	}
	if regular {
		if err := f.Truncate(part.Size); err != nil {
			return fmt.Errorf("update: slot: %w", err)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("update: slot: fsync: %w", err)
	}
	dropCache(f)
	return readBack(ctx, f.Name(), part, in.track(io.Discard, PhaseReadBack, part.Size))
}

// readBack hashes the first part.Size bytes of dev.
func readBack(ctx context.Context, dev string, part Part, w io.Writer) error {
	f, err := os.Open(dev)
	if err != nil {
		return fmt.Errorf("update: read back: %w", err)
	}
	defer func() { _ = f.Close() }()
	sum, err := hashCopy(ctx, f, part.Size, w, make([]byte, chunkSize))
	if err != nil {
		return fmt.Errorf("update: read back: %w", err)
	}
	if got := hex.EncodeToString(sum); got != part.SHA256 {
		return fmt.Errorf("%w: sha256 %s, want %s", ErrReadBack, got, part.SHA256)
	}
	return nil
}
