package update

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// writeAtomic replaces path with what write writes, with mode: a
// temporary file in the same directory, written, fsynced, closed, renamed
// over path, then the directory fsynced. A crash or a power cut (a field
// box loses power) leaves the old file or the new one, never half of one.
func writeAtomic(path string, mode os.FileMode, write func(w io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*") // created 0600
	if err != nil {
		return fmt.Errorf("update: write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err = f.Chmod(mode); err != nil {
		return fmt.Errorf("update: write %s: chmod: %w", path, err)
	}
	bw := bufio.NewWriterSize(f, 256<<10)
	if err = write(bw); err != nil {
		return err
	}
	if err = bw.Flush(); err != nil {
		return fmt.Errorf("update: write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("update: write %s: fsync: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("update: write %s: close: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("update: write %s: rename: %w", path, err)
	}
	// The rename is durable once the directory is.
	return syncDir(dir)
}

// syncDir fsyncs a directory: what makes a rename in it durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("update: open dir: %w", err)
	}
	defer func() { _ = d.Close() }()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("update: fsync %s: %w", dir, err)
	}
	return nil
}
