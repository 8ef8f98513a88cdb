package update

import (
	"errors"
	"fmt"
)

// Slot names a root slot.
type Slot string

// The two root slots.
const (
	SlotA Slot = "a"
	SlotB Slot = "b"
)

// Valid reports whether s is a or b.
func (s Slot) Valid() bool { return s == SlotA || s == SlotB }

// Other is the other slot (a for anything but a).
func (s Slot) Other() Slot {
	if s == SlotA {
		return SlotB
	}
	return SlotA
}

// Errors of the boot state (wrapped; check with errors.Is).
var (
	// ErrNoBootState: the bootloader holds no onair state yet (a fresh
	// grubenv, a missing state file): the image was not set up.
	ErrNoBootState = errors.New("update: no boot state (image not set up for A/B)")
	// ErrBadBootState: the state read makes no sense (an unknown slot, a
	// default slot that is not good).
	ErrBadBootState = errors.New("update: bad boot state")
	// ErrDefaultSlot: an operation would take the default slot, the one
	// that boots when all else fails, out of service.
	ErrDefaultSlot = errors.New("update: refused on the default slot")
)

// BootState is the bootloader's state: which slot runs, which boots when
// there is no trial, and the trial.
type BootState struct {
	// Booted is the slot the bootloader booted last: the one running.
	Booted Slot `json:"booted"`
	// Default is the good slot booted when there is no trial (or its
	// tries are used up).
	Default Slot `json:"default"`
	// Trial is the slot on trial, "" when none. TriesLeft is how many
	// more times it may boot; a trial boot takes its try before it starts,
	// so the last trial boot runs with TriesLeft 0.
	Trial     Slot `json:"trial,omitempty"`
	TriesLeft int  `json:"tries_left"`
	// GoodA and GoodB say which slots hold a system that was healthy.
	GoodA bool `json:"good_a"`
	GoodB bool `json:"good_b"`
}

// Good reports whether slot is marked good.
func (s BootState) Good(slot Slot) bool {
	if slot == SlotB {
		return s.GoodB
	}
	return slot == SlotA && s.GoodA
}

func (s *BootState) setGood(slot Slot, good bool) {
	if slot == SlotB {
		s.GoodB = good
	} else {
		s.GoodA = good
	}
}

// Next is the slot the next boot picks, the rules of every bootloader
// here (rootfs/grub/onair-ab.cfg in GRUB's script):
//
//  1. a trial slot with tries left boots (and loses a try: Booted);
//  2. otherwise the default slot boots;
//  3. a state with no valid default boots a (a wiped environment: the
//     factory slot).
//
// GRUB adds one rule no simulation here can: a trial slot whose kernel it
// cannot load falls back, in the same boot, to the default slot, and records
// that one as booted (onair-ab.cfg's rule 4; TestImageRollsBackThroughGRUB…
// boots it).
func (s BootState) Next() Slot {
	switch {
	case s.Trial.Valid() && s.TriesLeft > 0:
		return s.Trial
	case s.Default.Valid():
		return s.Default
	}
	return SlotA
}

// booted is the state after one boot by the rules of Next: the slot
// picked is Booted and a trial boot has used its try.
func (s BootState) booted() BootState {
	next := s.Next()
	if s.Trial.Valid() && s.TriesLeft > 0 {
		s.TriesLeft--
	}
	s.Booted = next
	return s
}

// Validate checks that s is a state the rules can act on.
func (s BootState) Validate() error {
	switch {
	case !s.Booted.Valid():
		return fmt.Errorf("%w: booted slot %q", ErrBadBootState, s.Booted)
	case !s.Default.Valid():
		return fmt.Errorf("%w: default slot %q", ErrBadBootState, s.Default)
	case !s.Good(s.Default):
		return fmt.Errorf("%w: the default slot %s is not good", ErrBadBootState, s.Default)
	case s.Trial != "" && !s.Trial.Valid():
		return fmt.Errorf("%w: trial slot %q", ErrBadBootState, s.Trial)
	case s.Trial == s.Default && s.Trial != "":
		return fmt.Errorf("%w: the default slot %s is on trial", ErrBadBootState, s.Trial)
	case s.TriesLeft < 0 || s.TriesLeft > maxTries:
		return fmt.Errorf("%w: %d tries left", ErrBadBootState, s.TriesLeft)
	}
	return nil
}

// Bootloader is the boot state the bootloader acts on at the next boot.
// Every method is one atomic change: a crash or a power cut during it
// leaves the old state or the new one. None of them reboots.
type Bootloader interface {
	// State reads the state now. ErrNoBootState: none was ever written.
	State() (BootState, error)
	// SetTrial puts slot on trial for tries boots: slot is no longer good,
	// and the next boots pick it while tries are left. tries 0 abandons a
	// trial: the next boot picks the default slot. It refuses the default
	// slot (ErrDefaultSlot) and tries over 9.
	SetTrial(slot Slot, tries int) error
	// MarkGood marks slot good and makes it the default; a trial ends.
	MarkGood(slot Slot) error
	// MarkBad marks slot not good and ends a trial of it: done before a
	// slot is overwritten, so a half-written slot is never booted. It
	// refuses the default slot (ErrDefaultSlot).
	MarkBad(slot Slot) error
}

// The state changes every Bootloader makes, as pure functions of the
// state read.

func withTrial(s BootState, slot Slot, tries int) (BootState, error) {
	if !slot.Valid() {
		return s, fmt.Errorf("update: set trial: slot %q", slot)
	}
	if slot == s.Default {
		return s, fmt.Errorf("%w: set trial of %s", ErrDefaultSlot, slot)
	}
	if tries < 0 || tries > maxTries {
		return s, fmt.Errorf("update: set trial: %d tries, want 0..%d", tries, maxTries)
	}
	s.setGood(slot, false)
	s.Trial, s.TriesLeft = slot, tries
	return s, nil
}

func withGood(s BootState, slot Slot) (BootState, error) {
	if !slot.Valid() {
		return s, fmt.Errorf("update: mark good: slot %q", slot)
	}
	s.setGood(slot, true)
	s.Default = slot
	s.Trial, s.TriesLeft = "", 0
	return s, nil
}

func withBad(s BootState, slot Slot) (BootState, error) {
	if !slot.Valid() {
		return s, fmt.Errorf("update: mark bad: slot %q", slot)
	}
	if slot == s.Default {
		return s, fmt.Errorf("%w: mark bad %s", ErrDefaultSlot, slot)
	}
	s.setGood(slot, false)
	if s.Trial == slot {
		s.Trial, s.TriesLeft = "", 0
	}
	return s, nil
}

// stateStore is what an implementation provides: whole-state load and an
// atomic whole-state store.
type stateStore interface {
	load() (BootState, error)
	store(BootState) error
}

// change loads the state, applies f and stores the result.
func change(st stateStore, f func(BootState) (BootState, error)) error {
	s, err := st.load()
	if err != nil {
		return err
	}
	n, err := f(s)
	if err != nil {
		return err
	}
	if n == s {
		return nil
	}
	if err := n.Validate(); err != nil {
		return fmt.Errorf("[unexpected] update: the change leads to %w", err)
	}
	return st.store(n)
}
