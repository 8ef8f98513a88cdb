package update

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"onair/internal/testutil"
)

func TestNextAppliesTheBootRules(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    BootState
		want Slot
		left int
	}{
		{"no trial", BootState{Booted: SlotA, Default: SlotA, GoodA: true}, SlotA, 0},
		{"trial with tries", BootState{Booted: SlotA, Default: SlotA, GoodA: true, Trial: SlotB, TriesLeft: 3}, SlotB, 2},
		{"last try", BootState{Booted: SlotB, Default: SlotA, GoodA: true, Trial: SlotB, TriesLeft: 1}, SlotB, 0},
		{"tries used up", BootState{Booted: SlotB, Default: SlotA, GoodA: true, Trial: SlotB}, SlotA, 0},
		{"default b", BootState{Booted: SlotA, Default: SlotB, GoodB: true}, SlotB, 0},
		{"wiped environment", BootState{}, SlotA, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.s.Next(); got != tc.want {
				t.Fatalf("Next %s, want %s", got, tc.want)
			}
			if b := tc.s.booted(); b.Booted != tc.want || b.TriesLeft != tc.left {
				t.Fatalf("after the boot %+v, want %s with %d tries left", b, tc.want, tc.left)
			}
		})
	}
}

func TestBootloaderRefusesToTakeTheDefaultSlotOutOfService(t *testing.T) {
	b := NewFileBootloader(filepath.Join(t.TempDir(), "boot.json"))
	if err := b.Init(SlotA); err != nil {
		t.Fatal(err)
	}
	if err := b.SetTrial(SlotA, 3); !errors.Is(err, ErrDefaultSlot) {
		t.Errorf("SetTrial(default): %v", err)
	}
	if err := b.MarkBad(SlotA); !errors.Is(err, ErrDefaultSlot) {
		t.Errorf("MarkBad(default): %v", err)
	}
	if err := b.SetTrial(SlotB, 10); err == nil {
		t.Error("SetTrial with 10 tries: the GRUB side counts from 9 at most")
	}
	if err := b.Init(SlotB); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Init over a state: %v", err)
	}
	if _, err := NewFileBootloader(filepath.Join(t.TempDir(), "none.json")).State(); !errors.Is(err, ErrNoBootState) {
		t.Errorf("State of no file: %v", err)
	}
}

func TestGrubEnvParsesEditenvList(t *testing.T) {
	// grub-editenv FILE list prints NAME=VALUE lines; this is GRUB 2.06's
	// (Debian 12) for a block with GRUB's own saved_entry and boot_success
	// besides ours.
	out, err := os.ReadFile("testdata/grub-editenv-list.txt")
	if err != nil {
		t.Fatal(err)
	}
	s, err := parseGrubEnv(out)
	if err != nil {
		t.Fatal(err)
	}
	want := BootState{Booted: SlotB, Default: SlotA, Trial: SlotB, TriesLeft: 2, GoodA: true}
	if s != want {
		t.Fatalf("parsed %+v, want %+v", s, want)
	}
	args := formatGrubEnv(s)
	wantArgs := []string{"onair_default=a", "onair_trial=b", "onair_tries=2", "onair_good_a=1", "onair_good_b=0", "onair_booted=b"}
	if !slices.Equal(args, wantArgs) {
		t.Fatalf("set args %q, want %q", args, wantArgs)
	}
	back, err := parseGrubEnv([]byte(strings.Join(args, "\n")))
	if err != nil || back != s {
		t.Fatalf("round trip %+v, %v", back, err)
	}
}

func TestGrubEnvRefusesAStateItCannotTrust(t *testing.T) {
	for _, tc := range []struct {
		name, list string
		want       error
	}{
		{"fresh block", "saved_entry=0\n", ErrNoBootState},
		// Guessing the running slot could point Install at it.
		{"no booted slot", "onair_default=a\nonair_good_a=1\n", ErrBadBootState},
		{"unknown slot", "onair_default=c\nonair_booted=a\nonair_good_a=1\n", ErrBadBootState},
		{"tries not a number", "onair_default=a\nonair_booted=a\nonair_good_a=1\nonair_trial=b\nonair_tries=x\n", ErrBadBootState},
		{"default not good", "onair_default=a\nonair_booted=a\nonair_good_a=0\n", ErrBadBootState},
		{"good flag", "onair_default=a\nonair_booted=a\nonair_good_a=yes\n", ErrBadBootState},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parseGrubEnv([]byte(tc.list)); !errors.Is(err, tc.want) {
				t.Fatalf("parse: %v, want %v", err, tc.want)
			}
		})
	}
}

// fakeEditenv is a grub-editenv stand-in keeping NAME=VALUE lines in FILE.
const fakeEditenv = `#!/bin/sh
f=$1; cmd=$2; shift 2
case $cmd in
list) [ -f "$f" ] && cat "$f"; exit 0;;
set) for kv in "$@"; do
       n=${kv%%=*}
       [ -f "$f" ] && { grep -v "^$n=" "$f" > "$f.tmp"; mv "$f.tmp" "$f"; }
       echo "$kv" >> "$f"
     done;;
*) echo "grub-editenv: unknown command '$cmd'" >&2; exit 1;;
esac
`

// exerciseGrubEnv runs a GrubEnv through an update's life.
func exerciseGrubEnv(t *testing.T, g *GrubEnv) {
	t.Helper()
	if _, err := g.State(); !errors.Is(err, ErrNoBootState) {
		t.Fatalf("State of a fresh block: %v", err)
	}
	if err := g.Init(SlotA); err != nil {
		t.Fatal(err)
	}
	before, err := os.Stat(g.file)
	if err != nil {
		t.Fatal(err)
	}
	if err = g.SetTrial(SlotB, 3); err != nil {
		t.Fatal(err)
	}
	// grub-editenv rewrites a block in place (O_TRUNC): a power cut in
	// between would leave it empty. GrubEnv renames a new one over it.
	after, err := os.Stat(g.file)
	if err != nil || os.SameFile(before, after) {
		t.Fatalf("the block was rewritten in place, not replaced (%v)", err)
	}
	s, err := g.State()
	want := BootState{Booted: SlotA, Default: SlotA, Trial: SlotB, TriesLeft: 3, GoodA: true}
	if err != nil || s != want {
		t.Fatalf("after SetTrial %+v, %v; want %+v", s, err, want)
	}
	if err = g.MarkGood(SlotB); err != nil {
		t.Fatal(err)
	}
	s, err = g.State()
	want = BootState{Booted: SlotA, Default: SlotB, GoodA: true, GoodB: true}
	if err != nil || s != want {
		t.Fatalf("after MarkGood %+v, %v; want %+v", s, err, want)
	}
	if err = g.MarkBad(SlotA); err != nil {
		t.Fatal(err)
	}
	if s, _ := g.State(); s.GoodA || s.Next() != SlotB {
		t.Fatalf("after MarkBad(a) %+v", s)
	}
	out, err := g.run(g.file, "list")
	if err != nil || !strings.Contains(string(out), "saved_entry=0\n") {
		t.Fatalf("GRUB's own variable is gone: %v\n%s", err, out)
	}
	if _, err := os.Stat(g.file + ".onair-tmp"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the copy is left: %v", err)
	}
}

func TestGrubEnvThroughEditenv(t *testing.T) {
	dir := t.TempDir()
	tool := filepath.Join(dir, "grub-editenv")
	if err := os.WriteFile(tool, []byte(fakeEditenv), 0o755); err != nil {
		t.Fatal(err)
	}
	g := NewGrubEnv(filepath.Join(dir, "grubenv"))
	g.run = runTool(tool)
	if _, err := g.run(g.file, "set", "saved_entry=0"); err != nil {
		t.Fatal(err)
	}
	exerciseGrubEnv(t, g)

	g.run = runTool(filepath.Join(dir, "missing-tool"))
	if _, err := g.State(); err == nil || !strings.Contains(err.Error(), "missing-tool") {
		t.Fatalf("State without the tool: %v", err)
	}
}

// The real grub-editenv, where it is installed (grub-common).
func TestGrubEnvWithRealEditenv(t *testing.T) {
	testutil.Need(t, "grub-editenv")
	file := filepath.Join(t.TempDir(), "grubenv")
	for _, args := range [][]string{{file, "create"}, {file, "set", "saved_entry=0"}} {
		if out, err := exec.Command("grub-editenv", args...).CombinedOutput(); err != nil {
			t.Fatalf("grub-editenv %q: %v\n%s", args, err, out)
		}
	}
	exerciseGrubEnv(t, NewGrubEnv(file))
}

// rootfs/grub/onair-ab.cfg is the GRUB side of GrubEnv: it must load every
// variable GrubEnv writes, take a try from every count max_tries allows,
// and save what it changes.
func TestGrubSnippetMatchesGrubEnv(t *testing.T) {
	raw, err := os.ReadFile("../rootfs/grub/onair-ab.cfg")
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(raw)
	var loaded []string
	for line := range strings.SplitSeq(cfg, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "load_env" {
			loaded = f[1:]
		}
	}
	for _, v := range []string{grubDefault, grubTrial, grubTries, grubGoodA, grubGoodB, grubBooted} {
		if !slices.Contains(loaded, v) {
			t.Errorf("load_env does not load %s", v)
		}
	}
	for n := 1; n <= maxTries; n++ {
		step := fmt.Sprintf(`[ "${onair_tries}" = "%d" ]; then set onair_tries=%d; set onair_slot="${onair_trial}"`, n, n-1)
		if !strings.Contains(cfg, step) {
			t.Errorf("no step from %d tries: %s", n, step)
		}
	}
	if !strings.Contains(cfg, "save_env onair_tries onair_booted") || !strings.Contains(cfg, "onair.slot=${onair_slot}") {
		t.Error("the snippet does not save the try and the booted slot, or does not pass onair.slot")
	}
	// Rule 4: a trial slot that does not load falls back to the good slot
	// in the same boot and records it (GRUB otherwise stops at "Failed to
	// boot" and the box stays off air).
	fb := strings.Index(cfg, "set fallback=1")
	second := strings.Index(cfg, `menuentry "onair (slot ${onair_good}`)
	if fb < 0 || second < 0 || !strings.Contains(cfg[second:], `set onair_booted="${onair_good}"`) ||
		!strings.Contains(cfg[second:], "save_env onair_booted") || !strings.Contains(cfg[second:], "onair.slot=${onair_good}") {
		t.Error("no fallback entry that boots the good slot and records it as booted")
	}
	if !strings.Contains(cfg, "set onair_trial_arg=onair.trial=1") || !strings.Contains(cfg[:second], "${onair_trial_arg}") ||
		strings.Contains(cfg[second:], "${onair_trial_arg}") {
		t.Error("the trial entry, and only it, must pass onair.trial=1 (the generator onair-trial reads it)")
	}
}

// A trial slot whose onaird failed at every start restarted it forever, off
// air: the Marker, the only thing that abandons a trial, is onaird. On a
// trial boot the generator gives onaird.service a start limit that reboots;
// on any other boot it writes nothing (restart forever).
func TestTrialBootGeneratorRebootsOutOfASlotWhoseOnairdNeverStarts(t *testing.T) {
	const gen = "../rootfs/overlay/usr/lib/systemd/system-generators/onair-trial"
	fi, err := os.Stat(gen)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&0o111 == 0 {
		t.Fatalf("%s is not executable (%v): systemd skips it", gen, fi.Mode())
	}
	for _, tc := range []struct {
		cmdline string
		trial   bool
	}{
		{"BOOT_IMAGE=/boot/vmlinuz root=PARTLABEL=onair-root-b ro onair.slot=b onair.trial=1 panic=10 quiet", true},
		{"root=PARTLABEL=onair-root-a ro onair.slot=a panic=10 quiet", false},
		{"onair.trial=1 onair.trial=0", false}, // the last one counts, as the kernel's
		{"onair.trial=10", false},
	} {
		dir := t.TempDir()
		cl := filepath.Join(dir, "cmdline")
		if err := os.WriteFile(cl, []byte(tc.cmdline+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		normal := filepath.Join(dir, "normal")
		cmd := exec.Command("sh", gen, normal, filepath.Join(dir, "early"), filepath.Join(dir, "late"))
		cmd.Env = append(os.Environ(), "ONAIR_CMDLINE="+cl)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%q: %v\n%s", tc.cmdline, err, out)
		}
		conf, err := os.ReadFile(filepath.Join(normal, "onaird.service.d", "onair-trial.conf"))
		switch {
		case !tc.trial && err == nil:
			t.Errorf("%q: a drop-in on a boot that is not a trial:\n%s", tc.cmdline, conf)
		case tc.trial && err != nil:
			t.Errorf("%q: no drop-in on a trial boot: %v", tc.cmdline, err)
		case tc.trial:
			for _, l := range []string{"[Unit]", "StartLimitAction=reboot", "StartLimitBurst=10", "StartLimitIntervalSec=10min"} {
				if !strings.Contains(string(conf), l) {
					t.Errorf("%q: the drop-in lacks %s:\n%s", tc.cmdline, l, conf)
				}
			}
		}
	}
}
