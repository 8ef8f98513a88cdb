package update

import (
	"os"

	"golang.org/x/sys/unix"
)

// dropCache drops f's pages from the page cache (after an fsync: they are
// clean), so the read-back reads the medium, not the cache. Advisory: where
// the kernel does not honour it the read-back checks less.
func dropCache(f *os.File) {
	_ = unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}
