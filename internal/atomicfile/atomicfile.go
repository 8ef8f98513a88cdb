// Package atomicfile replaces files so that a crash or a power cut (a field
// box loses power) leaves the old file or the new one, never half of one:
// a temporary file in the same directory, written, fsynced, closed, renamed
// over the path, then the directory fsynced so the rename is durable. The
// config, the web password and certificate, the update keys, the bundle's
// parts and the boot state are all written this way.
//
// Not for: files that grow while they are written (recording segments, the
// journal), where a rename would come too late.
package atomicfile

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Write replaces path with what write writes (through a 256 KiB buffer),
// with mode. An error of write is returned as it is; nothing is renamed
// and the temporary file is removed.
func Write(path string, mode os.FileMode, write func(w io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*") // created 0600
	if err != nil {
		return fmt.Errorf("atomicfile: write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close() // already failed: the first error is the one to tell
			_ = os.Remove(tmp)
		}
	}()
	if err = f.Chmod(mode); err != nil {
		return fmt.Errorf("atomicfile: write %s: chmod: %w", path, err)
	}
	bw := bufio.NewWriterSize(f, 256<<10)
	if err = write(bw); err != nil {
		return err
	}
	if err = bw.Flush(); err != nil {
		return fmt.Errorf("atomicfile: write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("atomicfile: write %s: fsync: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("atomicfile: write %s: close: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("atomicfile: write %s: rename: %w", path, err)
	}
	return SyncDir(dir)
}

// WriteFile replaces path with data, with mode (Write of a byte slice).
func WriteFile(path string, data []byte, mode os.FileMode) error {
	return Write(path, mode, func(w io.Writer) error {
		if _, err := w.Write(data); err != nil {
			return fmt.Errorf("atomicfile: write %s: %w", path, err)
		}
		return nil
	})
}

// SyncDir fsyncs a directory: what makes a rename or a new file in it
// durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("atomicfile: open dir %s: %w", dir, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("atomicfile: fsync dir %s: %w", dir, err)
	}
	return nil
}
