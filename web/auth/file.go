package auth

import (
	"fmt"
	"os"
	"path/filepath"
)

// writeFileAtomic replaces path with data, with mode: a temporary file in
// the same directory, written, fsynced, closed, renamed over path, then the
// directory fsynced. A crash or power loss (a field box loses power) leaves
// either the old file or the new one, never a half-written one.
func writeFileAtomic(path string, data []byte, mode os.FileMode) (err error) {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*") // created 0600
	if err != nil {
		return fmt.Errorf("auth: write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()
	if err = f.Chmod(mode); err != nil {
		return fmt.Errorf("auth: write %s: chmod: %w", path, err)
	}
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("auth: write %s: %w", path, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("auth: write %s: fsync: %w", path, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("auth: write %s: close: %w", path, err)
	}
	if err = os.Rename(tmp, path); err != nil {
		return fmt.Errorf("auth: write %s: rename: %w", path, err)
	}
	// The rename is durable once the directory is.
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("auth: write %s: open dir: %w", path, err)
	}
	defer func() { _ = d.Close() }()
	if err = d.Sync(); err != nil {
		return fmt.Errorf("auth: write %s: fsync dir: %w", path, err)
	}
	return nil
}
