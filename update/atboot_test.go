package update

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"onair/internal/testutil"
)

// The nspawn image has no bootloader: without onair-boot.service a trial
// slot would never lose a try, and a slot that never gets healthy would be
// booted on trial for ever. Each boot must take exactly one.
func TestAtBootTakesTheTrialTryOfTheFileBootloader(t *testing.T) {
	state := filepath.Join(t.TempDir(), "boot.json")
	c := Config{PublicKey: "k", Bootloader: BootloaderFile, StateFile: state}
	msg, err := atBoot(c, "")
	if err != nil || !strings.Contains(msg, "fresh") || !strings.Contains(msg, "slot a") {
		t.Fatalf("first boot of a fresh box: %q, %v", msg, err)
	}
	b := NewFileBootloader(state)
	if err = b.SetTrial(SlotB, 2); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"trial slot b: 1 tries left", "trial slot b: 0 tries left", "booted slot a"} {
		msg, err = atBoot(c, "")
		if err != nil || !strings.Contains(msg, want) {
			t.Fatalf("boot %d: %q, %v; want %q", i+1, msg, err, want)
		}
	}
	if s, _ := b.State(); s.Booted != SlotA || s.TriesLeft != 0 {
		t.Fatalf("after the tries: %+v; want slot a booted, none left", s)
	}
}

func TestAtBootDoesNothingWhenUpdatesAreOff(t *testing.T) {
	state := filepath.Join(t.TempDir(), "boot.json")
	msg, err := AtBoot(Config{Bootloader: BootloaderFile, StateFile: state})
	if err != nil || !strings.Contains(msg, "not configured") {
		t.Fatalf("%q, %v", msg, err)
	}
	if _, err = NewFileBootloader(state).State(); !errors.Is(err, ErrNoBootState) {
		t.Fatalf("a state was written: %v", err)
	}
}

// GRUB takes its try itself; a block it could not save (save_env failed:
// the ESP read-only, a block moved) would leave onair_booted naming another
// slot than the one running, and an update would then write the running
// slot. AtBoot must say so.
func TestAtBootWithGrubRefusesABlockThatNamesAnotherSlot(t *testing.T) {
	testutil.Need(t, "grub-editenv")
	file := filepath.Join(t.TempDir(), "grubenv")
	// A fresh image's block (rootfs/grub/onair-ab.cfg's header).
	for _, args := range [][]string{{file, "create"}, {file, "set", "onair_default=a", "onair_trial=", "onair_tries=0",
		"onair_good_a=1", "onair_good_b=0", "onair_booted=a"}} {
		if out, err := exec.Command("grub-editenv", args...).CombinedOutput(); err != nil {
			t.Fatalf("grub-editenv %q: %v\n%s", args, err, out)
		}
	}
	c := Config{PublicKey: "k", Bootloader: BootloaderGrub, GrubEnv: file}
	cmdline := "BOOT_IMAGE=(hd0,gpt2)/boot/vmlinuz root=PARTLABEL=onair-root-a ro onair.slot=a panic=10 rw\n"
	if msg, err := atBoot(c, cmdline); err != nil || msg != "GRUB booted slot a" {
		t.Fatalf("%q, %v", msg, err)
	}
	if _, err := atBoot(c, strings.ReplaceAll(cmdline, "onair.slot=a", "onair.slot=b")); !errors.Is(err, ErrBootNotRecorded) {
		t.Fatalf("booted from b, the block says a: %v; want ErrBootNotRecorded", err)
	}
	if msg, err := atBoot(c, "root=/dev/vda"); err != nil || msg != "GRUB booted slot a" {
		t.Fatalf("a kernel not booted by onair-ab.cfg: %q, %v", msg, err)
	}
}
