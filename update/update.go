// Package update installs signed firmware bundles into the inactive one of
// two root slots (A/B) and decides, with the bootloader, which slot boots:
// a new slot boots on trial with a boot counter and is made permanent only
// once the running box has been healthy for Config.HealthyAfter (Marker);
// a slot that never gets there, or that fails to boot Config.MaxTries
// times, is abandoned and the next boot returns to the old one.
//
// # Bundle format (version 1)
//
// A bundle is one file, big-endian integers:
//
//	offset      size  field
//	0           8     magic "ONAIRUPD"
//	8           2     format version (1)
//	10          2     signature length (64)
//	12          4     manifest length M, 1..MaxManifest (64 KiB)
//	16          M     manifest: JSON (Manifest), exactly the bytes signed
//	16+M        64    ed25519 signature of the M manifest bytes
//	16+M+64     ...   data: the parts, concatenated in manifest order
//
// The manifest carries the format version (again: the signed copy is the one
// that counts, the header's must agree), the build's version string, when
// the bundle was made, the compression ("none": parts are stored as is; a
// rootfs image compresses well, but the box writes at SD-card speed anyway
// and an uncompressed part can be hashed, written and read back with
// nothing in between) and the parts: name ("rootfs", required), size,
// SHA-256 (hex) and offset from the start of the data. Parts are contiguous
// and the file ends exactly after the last one: a bundle one byte short or
// long is refused.
//
// # Verify, then write
//
// Nothing reaches a slot before the whole bundle is verified. OpenBundle
// reads the header, the manifest and the signature (bounded sizes: a
// manifest over MaxManifest is refused unread), checks the signature
// against the trusted public key (update.public_key: PEM, PKIX) before it
// parses a byte of the JSON, and checks the layout against the file's size.
// Install then makes two passes over the bundle: pass 1 hashes every part
// and refuses on any difference; only then is the slot opened, and pass 2
// streams the rootfs part into it while hashing again, aborting on any
// difference (the file changed between the passes). The slot is fsynced,
// its page cache dropped and read back through SHA-256, and only then is it
// set as the trial slot. An interruption at any point before that (an
// error, a cancelled ctx, the process killed, the power cut) leaves the
// next boot where it was: the old slot.
//
// Why no library: the standard library has ed25519 and SHA-256, and there
// is no standard container for "a signed manifest and its parts" that a
// field box could use without a toolchain (RAUC and SWUpdate are C daemons
// with their own formats); this one is about 60 lines to read and write.
//
// # Versions: no downgrade
//
// A bundle carries its build's version in the signed manifest, and Install
// refuses one that is not newer than the running build's (ErrDowngrade,
// before a byte of the parts is read) unless InstallOptions.AllowDowngrade
// (onairctl update --allow-downgrade). That stops the replay of an old,
// validly signed release, which would bring back what was fixed since.
// "Newer" is Version's order: the v tag (semver precedence), then the
// commits past it, as `git describe --tags --dirty` names a build
// (scripts/version.sh stamps v0.0.0-COMMITS-gHASH before the first tag);
// the same version again, or a build at the same place (another branch,
// -dirty), is not newer. A running build with no place in the order ("dev")
// takes any ordered bundle; a bundle with none is refused. The running
// version is the running onaird's (internal/version): the build in the
// slot it booted from.
//
// # Boot selection
//
// Bootloader is the small interface to the bootloader's variables;
// BootState.Next holds the rules every implementation's boot applies:
// a trial slot with tries left boots and loses one try before it starts;
// with none left the default (good) slot boots. GrubEnv keeps the state in
// the GRUB environment block (rootfs/grub/onair-ab.cfg is the GRUB side);
// FileBootloader keeps it in a JSON file, for tests and the nspawn image,
// and its Boot simulates a boot by the same rules.
//
// Not for: deciding when an update may run (onaird refuses one while on air
// unless forced, or waits for the crew to stop), what "healthy" means (the
// daemon passes it in), the data partition (never written here) or making
// bundles on the box (cmd/onair-bundle, on a build machine).
package update

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"
)

// Defaults of the update: section.
const (
	// DefaultHealthyAfter is how long a trial boot must be healthy.
	DefaultHealthyAfter = 2 * time.Minute
	// DefaultMaxTries is how many times a trial slot may boot.
	DefaultMaxTries = 3
	// DefaultTrialDeadlineFactor times HealthyAfter is the trial deadline
	// when Config.TrialDeadline is zero.
	DefaultTrialDeadlineFactor = 5

	minHealthyAfter = 10 * time.Second
	maxHealthyAfter = 24 * time.Hour
	// maxTries is bounded by the GRUB side: GRUB's script has no
	// arithmetic, so onair-ab.cfg decrements with a chain of 9 ifs.
	maxTries = 9
)

// Config configures updates (update: in the YAML).
type Config struct {
	// PublicKey is the file holding the trusted ed25519 public key (PEM,
	// PKIX, as onair-bundle -genkey writes it). Empty: updates are not
	// configured.
	PublicKey string `yaml:"public_key"`
	// SlotA and SlotB are the two root slots: block devices on the box
	// (/dev/disk/by-partlabel/onair-root-a), files in tests and nspawn.
	SlotA string `yaml:"slot_a"`
	SlotB string `yaml:"slot_b"`
	// Bootloader says where the boot state lives: grub (GrubEnv) or file
	// (FileBootloader).
	Bootloader BootloaderKind `yaml:"bootloader"`
	// StateFile is the FileBootloader's JSON file (bootloader: file).
	StateFile string `yaml:"state_file"`
	// GrubEnv is the GRUB environment block (bootloader: grub).
	GrubEnv string `yaml:"grubenv"`
	// HealthyAfter is how long a trial boot must be healthy without a
	// break before its slot is marked good.
	HealthyAfter time.Duration `yaml:"healthy_after"`
	// MaxTries is how many times a new slot may boot on trial.
	MaxTries int `yaml:"max_tries"`
	// TrialDeadline is how long after onaird first starts on a trial boot
	// the slot may take to become good (an onaird restart within the boot
	// does not restart it); past it the trial is abandoned and the next
	// boot returns to the old slot. Zero: DefaultTrialDeadlineFactor ×
	// HealthyAfter.
	TrialDeadline time.Duration `yaml:"trial_deadline"`
}

// DefaultConfig is the configuration before the YAML is read: GRUB, 2 min
// of health, 3 tries; no key, so updates are off until one is configured.
func DefaultConfig() Config {
	return Config{
		Bootloader:   BootloaderGrub,
		GrubEnv:      "/boot/grub/grubenv",
		HealthyAfter: DefaultHealthyAfter,
		MaxTries:     DefaultMaxTries,
	}
}

// Configured reports whether updates are configured (a public key is set).
func (c Config) Configured() bool { return c.PublicKey != "" }

// Deadline is the trial deadline in effect.
func (c Config) Deadline() time.Duration {
	if c.TrialDeadline == 0 {
		return DefaultTrialDeadlineFactor * c.HealthyAfter
	}
	return c.TrialDeadline
}

// Device is the path of slot's device.
func (c Config) Device(slot Slot) string {
	if slot == SlotB {
		return c.SlotB
	}
	return c.SlotA
}

// Validate checks every field. The error joins (errors.Join) one error per
// bad key, each starting with the key ("update.healthy_after: …"). The
// paths are checked only when updates are configured.
func (c Config) Validate() error {
	var errs []error
	bad := func(key string, format string, args ...any) {
		errs = append(errs, fmt.Errorf("update."+key+": "+format, args...))
	}
	if c.HealthyAfter < minHealthyAfter || c.HealthyAfter > maxHealthyAfter {
		bad("healthy_after", "%s: want %s..%s", c.HealthyAfter, minHealthyAfter, maxHealthyAfter)
	}
	if c.MaxTries < 1 || c.MaxTries > maxTries {
		bad("max_tries", "%d: want 1..%d (the GRUB side counts down from at most %d)", c.MaxTries, maxTries, maxTries)
	}
	if c.TrialDeadline != 0 && c.TrialDeadline <= c.HealthyAfter {
		bad("trial_deadline", "%s: must be longer than update.healthy_after (%s), or 0 for %d×", c.TrialDeadline, c.HealthyAfter, DefaultTrialDeadlineFactor)
	}
	if err := c.Bootloader.Validate(); err != nil {
		bad("bootloader", "%v", err)
	}
	if !c.Configured() {
		return errors.Join(errs...)
	}
	abs := func(key, path string) bool {
		if path == "" {
			bad(key, "required when update.public_key is set")
			return false
		}
		if !filepath.IsAbs(path) {
			bad(key, "%q: must be an absolute path", path)
			return false
		}
		return true
	}
	abs("public_key", c.PublicKey)
	okA, okB := abs("slot_a", c.SlotA), abs("slot_b", c.SlotB)
	if okA && okB && filepath.Clean(c.SlotA) == filepath.Clean(c.SlotB) {
		bad("slot_b", "%q: the same as update.slot_a", c.SlotB)
	}
	switch c.Bootloader {
	case BootloaderFile:
		abs("state_file", c.StateFile)
	case BootloaderGrub:
		abs("grubenv", c.GrubEnv)
	}
	return errors.Join(errs...)
}

// NewBootloader returns the bootloader c names.
func NewBootloader(c Config) (Bootloader, error) {
	switch c.Bootloader {
	case BootloaderFile:
		return NewFileBootloader(c.StateFile), nil
	case BootloaderGrub:
		return NewGrubEnv(c.GrubEnv), nil
	}
	return nil, fmt.Errorf("update: update.bootloader: %w", c.Bootloader.Validate())
}
