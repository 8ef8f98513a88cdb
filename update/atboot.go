package update

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// ErrBootNotRecorded is AtBoot's error when the GRUB environment block does
// not name the slot the kernel was booted from: GRUB could not save the
// block (its try and onair_booted), so the state no longer says what runs.
var ErrBootNotRecorded = errors.New("update: the bootloader did not record the slot it booted")

// procCmdline is the kernel command line AtBoot reads (a var for tests).
var procCmdline = "/proc/cmdline"

// AtBoot is the boot's side of the A/B update, run once per boot before
// onaird reads the state (onair-boot.service: onaird -boot). With the file
// bootloader (the nspawn image, where no bootloader runs) it takes the try
// of a trial slot by the rules GRUB applies (FileBootloader.Boot); a box
// with no state yet gets a fresh box's, slot a good and the default. With
// GRUB, which took the try itself before the kernel started, it checks that
// the block names the slot the kernel was booted from (onair.slot= on the
// command line, from onair-ab.cfg): ErrBootNotRecorded when it does not.
// Updates not configured: nothing. It returns a line saying what it did.
func AtBoot(c Config) (string, error) {
	if !c.Configured() {
		return "updates not configured (update.public_key): nothing to do", nil
	}
	cmdline, err := os.ReadFile(procCmdline)
	if err != nil && c.Bootloader == BootloaderGrub {
		return "", fmt.Errorf("update: at boot: %w", err)
	}
	return atBoot(c, string(cmdline))
}

func atBoot(c Config, cmdline string) (string, error) {
	switch c.Bootloader {
	case BootloaderFile:
		b := NewFileBootloader(c.StateFile)
		fresh := ""
		if _, err := b.State(); errors.Is(err, ErrNoBootState) {
			if err := b.Init(SlotA); err != nil {
				return "", err
			}
			fresh = "a fresh box's state written; "
		}
		before, err := b.State()
		if err != nil {
			return "", err
		}
		slot, err := b.Boot()
		if err != nil {
			return "", err
		}
		if before.Trial == slot && before.TriesLeft > 0 {
			return fmt.Sprintf("%sbooted trial slot %s: %d tries left", fresh, slot, before.TriesLeft-1), nil
		}
		return fmt.Sprintf("%sbooted slot %s", fresh, slot), nil
	case BootloaderGrub:
		s, err := NewGrubEnv(c.GrubEnv).State()
		if err != nil {
			return "", err
		}
		if k := cmdlineSlot(cmdline); k != "" && k != s.Booted {
			return "", fmt.Errorf("%w: the kernel was booted from slot %s, %s says %s", ErrBootNotRecorded, k, c.GrubEnv, s.Booted)
		}
		if s.Trial == s.Booted {
			return fmt.Sprintf("GRUB booted trial slot %s: %d tries left", s.Booted, s.TriesLeft), nil
		}
		return fmt.Sprintf("GRUB booted slot %s", s.Booted), nil
	}
	return "", fmt.Errorf("update: update.bootloader: %w", c.Bootloader.Validate())
}

// cmdlineSlot is the onair.slot= of a kernel command line, "" when absent.
func cmdlineSlot(cmdline string) Slot {
	var slot Slot
	for f := range strings.FieldsSeq(cmdline) {
		if v, ok := strings.CutPrefix(f, "onair.slot="); ok {
			slot = Slot(v) // the last one counts, as the kernel's
		}
	}
	return slot
}
