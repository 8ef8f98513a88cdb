package update

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"

	"onair/internal/atomicfile"
)

// FileBootloader keeps the boot state in a JSON file (BootState's fields),
// replaced atomically on every change: the tests' bootloader and the nspawn
// image's, where nothing boots by it but the file says what would. Boot
// simulates a boot by the rules GRUB applies.
type FileBootloader struct {
	path string
	mu   sync.Mutex // serialises read-modify-write within the process
}

var _ Bootloader = (*FileBootloader)(nil)

// NewFileBootloader returns the bootloader of the state file at path.
func NewFileBootloader(path string) *FileBootloader { return &FileBootloader{path: path} }

// Init writes the state of a freshly imaged box: slot booted, the default
// and good, no trial. It refuses to overwrite a state (fs.ErrExist).
func (b *FileBootloader) Init(slot Slot) error {
	if !slot.Valid() {
		return fmt.Errorf("update: init boot state: slot %q", slot)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, err := os.Lstat(b.path); err == nil {
		return fmt.Errorf("update: init boot state: %s: %w", b.path, fs.ErrExist)
	}
	s := BootState{Booted: slot, Default: slot}
	s.setGood(slot, true)
	return b.store(s)
}

// State reads the state file.
func (b *FileBootloader) State() (BootState, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.load()
}

// SetTrial implements Bootloader.
func (b *FileBootloader) SetTrial(slot Slot, tries int) error {
	return b.change(func(s BootState) (BootState, error) { return withTrial(s, slot, tries) })
}

// MarkGood implements Bootloader.
func (b *FileBootloader) MarkGood(slot Slot) error {
	return b.change(func(s BootState) (BootState, error) { return withGood(s, slot) })
}

// MarkBad implements Bootloader.
func (b *FileBootloader) MarkBad(slot Slot) error {
	return b.change(func(s BootState) (BootState, error) { return withBad(s, slot) })
}

// Boot simulates a boot: it picks the slot by BootState.Next, takes a try
// from a trial, records the slot as booted and returns it.
func (b *FileBootloader) Boot() (Slot, error) {
	var booted Slot
	err := b.change(func(s BootState) (BootState, error) {
		s = s.booted()
		booted = s.Booted
		return s, nil
	})
	return booted, err
}

func (b *FileBootloader) change(f func(BootState) (BootState, error)) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return change(b, f)
}

func (b *FileBootloader) load() (BootState, error) {
	raw, err := os.ReadFile(b.path)
	if errors.Is(err, fs.ErrNotExist) {
		return BootState{}, fmt.Errorf("%w: %s missing", ErrNoBootState, b.path)
	}
	if err != nil {
		return BootState{}, fmt.Errorf("update: boot state: %w", err)
	}
	var s BootState
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return BootState{}, fmt.Errorf("%w: %s: %w", ErrBadBootState, b.path, err)
	}
	if err := s.Validate(); err != nil {
		return BootState{}, fmt.Errorf("%s: %w", b.path, err)
	}
	return s, nil
}

func (b *FileBootloader) store(s BootState) error {
	raw, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("update: boot state: %w", err)
	}
	return atomicfile.Write(b.path, 0o644, func(w io.Writer) error {
		_, err := w.Write(append(raw, '\n'))
		return err
	})
}
