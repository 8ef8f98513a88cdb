package update

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"onair/internal/atomicfile"
)

// The GRUB environment variables of the boot state (rootfs/grub/onair-ab.cfg
// reads them at every boot):
//
//	onair_default  a|b    the good slot booted when there is no trial
//	onair_trial    a|b|"" the slot on trial; empty: none
//	onair_tries    0..9   boots the trial slot has left; GRUB takes one
//	                      before it boots it
//	onair_good_a   0|1    slot a holds a system that was healthy
//	onair_good_b   0|1    slot b likewise
//	onair_booted   a|b    the slot GRUB booted: written by GRUB at every boot
//	                      (and passed to the kernel as onair.slot=)
const (
	grubDefault = "onair_default"
	grubTrial   = "onair_trial"
	grubTries   = "onair_tries"
	grubGoodA   = "onair_good_a"
	grubGoodB   = "onair_good_b"
	grubBooted  = "onair_booted"
)

// GrubEnv keeps the boot state in a GRUB environment block through
// grub-editenv (FILE list, FILE set NAME=VALUE…). Every change sets all the
// variables at once, on a copy of the block that is then renamed over it:
// grub-editenv itself truncates the file and writes it again in place
// (strace of GRUB 2.06: open O_TRUNC, one 1024-byte write, fsync), so a
// power cut between the two would leave an empty block, which GRUB boots
// as slot a whatever it holds. A rename is atomic on ext4 and as good as
// FAT gets on the ESP. GRUB's own save_env at boot (the try it takes)
// writes the block's sectors in place; that one write cannot be helped.
type GrubEnv struct {
	file string
	// run runs grub-editenv with args and returns its standard output.
	run func(args ...string) ([]byte, error)
	mu  sync.Mutex
}

var _ Bootloader = (*GrubEnv)(nil)

// NewGrubEnv returns the bootloader of the GRUB environment block file
// (/boot/grub/grubenv), edited with grub-editenv from PATH.
func NewGrubEnv(file string) *GrubEnv {
	return &GrubEnv{file: file, run: runTool("grub-editenv")}
}

func runTool(tool string) func(args ...string) ([]byte, error) {
	return func(args ...string) ([]byte, error) {
		var stderr bytes.Buffer
		cmd := exec.Command(tool, args...)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("update: %s %s: %w: %s", tool, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
		}
		return out, nil
	}
}

// Init writes the state of a freshly imaged box: slot booted, the default
// and good, no trial. It refuses when the block holds a state already.
func (g *GrubEnv) Init(slot Slot) error {
	if !slot.Valid() {
		return fmt.Errorf("update: init boot state: slot %q", slot)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	_, err := g.load()
	if err == nil {
		return fmt.Errorf("update: init boot state: %s holds one already", g.file)
	}
	if !errors.Is(err, ErrNoBootState) {
		return err
	}
	s := BootState{Booted: slot, Default: slot}
	s.setGood(slot, true)
	return g.store(s)
}

// State reads the block.
func (g *GrubEnv) State() (BootState, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.load()
}

// SetTrial implements Bootloader.
func (g *GrubEnv) SetTrial(slot Slot, tries int) error {
	return g.change(func(s BootState) (BootState, error) { return withTrial(s, slot, tries) })
}

// MarkGood implements Bootloader.
func (g *GrubEnv) MarkGood(slot Slot) error {
	return g.change(func(s BootState) (BootState, error) { return withGood(s, slot) })
}

// MarkBad implements Bootloader.
func (g *GrubEnv) MarkBad(slot Slot) error {
	return g.change(func(s BootState) (BootState, error) { return withBad(s, slot) })
}

func (g *GrubEnv) change(f func(BootState) (BootState, error)) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return change(g, f)
}

func (g *GrubEnv) load() (BootState, error) {
	out, err := g.run(g.file, "list")
	if err != nil {
		return BootState{}, err
	}
	s, err := parseGrubEnv(out)
	if err != nil {
		return BootState{}, fmt.Errorf("%s: %w", g.file, err)
	}
	return s, nil
}

func (g *GrubEnv) store(s BootState) error {
	cur, err := os.ReadFile(g.file)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("update: grubenv: %w", err)
	}
	tmp := g.file + ".onair-tmp"
	_ = os.Remove(tmp) // a copy left by a crash
	if cur != nil {
		// The block as it is, GRUB's own variables (saved_entry…) too.
		if err := atomicfile.Write(tmp, 0o644, func(w io.Writer) error { _, err := w.Write(cur); return err }); err != nil {
			return err
		}
	}
	if _, err := g.run(append([]string{tmp, "set"}, formatGrubEnv(s)...)...); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, g.file); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("update: grubenv: %w", err)
	}
	return atomicfile.SyncDir(filepath.Dir(g.file))
}

// parseGrubEnv reads the boot state from the output of grub-editenv list
// (NAME=VALUE lines; other variables are ignored).
func parseGrubEnv(out []byte) (BootState, error) {
	env := map[string]string{}
	for line := range strings.SplitSeq(string(out), "\n") {
		name, value, ok := strings.Cut(strings.TrimRight(line, "\r"), "=")
		if ok {
			env[name] = value
		}
	}
	def, ok := env[grubDefault]
	if !ok {
		return BootState{}, fmt.Errorf("%w: %s not set", ErrNoBootState, grubDefault)
	}
	booted, ok := env[grubBooted]
	if !ok {
		// Guessing it could point Install at the running slot.
		return BootState{}, fmt.Errorf("%w: %s not set (GRUB did not run onair-ab.cfg)", ErrBadBootState, grubBooted)
	}
	s := BootState{Booted: Slot(booted), Default: Slot(def), Trial: Slot(env[grubTrial])}
	if t := env[grubTries]; t != "" {
		n, err := strconv.Atoi(t)
		if err != nil {
			return BootState{}, fmt.Errorf("%w: %s=%q", ErrBadBootState, grubTries, t)
		}
		s.TriesLeft = n
	}
	for _, v := range []struct {
		name string
		good *bool
	}{{grubGoodA, &s.GoodA}, {grubGoodB, &s.GoodB}} {
		switch env[v.name] {
		case "1":
			*v.good = true
		case "0", "":
		default:
			return BootState{}, fmt.Errorf("%w: %s=%q", ErrBadBootState, v.name, env[v.name])
		}
	}
	if err := s.Validate(); err != nil {
		return BootState{}, err
	}
	return s, nil
}

// formatGrubEnv is s as grub-editenv set arguments, every variable.
func formatGrubEnv(s BootState) []string {
	b := func(v bool) string {
		if v {
			return "1"
		}
		return "0"
	}
	return []string{
		grubDefault + "=" + string(s.Default),
		grubTrial + "=" + string(s.Trial),
		grubTries + "=" + strconv.Itoa(s.TriesLeft),
		grubGoodA + "=" + b(s.GoodA),
		grubGoodB + "=" + b(s.GoodB),
		grubBooted + "=" + string(s.Booted),
	}
}
