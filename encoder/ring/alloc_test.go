package ring

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"onair/internal/testutil"
)

// A full /dev/shm used to pass Create (the ring was only truncated, so its
// pages were sparse) and kill capture with SIGBUS on the first write to a
// page tmpfs could not allocate. Create must fail at once with a clear
// error and leave no file behind.
func TestCreateOnFullShmFailsClearlyInsteadOfSIGBUS(t *testing.T) {
	testutil.NeedRoot(t, "mounts a 1 MiB tmpfs")
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	g := Geometry{Width: 640, Height: 360, FPSNum: 25, FPSDen: 1} // 12 slots ≈ 4 MiB
	_, err := Create(filepath.Join(dir, "video.ring"), g, 12, 0)
	if !errors.Is(err, ErrNoSpace) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Create on a full tmpfs: %v, want ErrNoSpace", err)
	}
	t.Logf("Create: %v", err)
	if msg := err.Error(); !strings.Contains(msg, "ring: "+dir+" full: need 4.0 MiB") || !strings.Contains(msg, "MiB free") {
		t.Fatalf("error does not say what is missing: %q", msg)
	}
	left, err := os.ReadDir(dir)
	if err != nil || len(left) != 0 {
		t.Fatalf("files left on the tmpfs: %v %v", left, err)
	}
	// a ring that fits still works there
	r, err := Create(filepath.Join(dir, "small.ring"), Geometry{Width: 64, Height: 32, FPSNum: 25, FPSDen: 1}, 4, 0)
	if err != nil {
		t.Fatalf("a small ring on the same tmpfs: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Error(err)
	}
}

// The ring's pages are allocated by Create, not on first write.
func TestCreateAllocatesEveryPage(t *testing.T) {
	dir := "/dev/shm"
	if _, err := os.Stat(dir); err != nil {
		dir = t.TempDir()
	}
	path := filepath.Join(dir, "onair-alloc-test-"+strings.ReplaceAll(t.Name(), "/", "_")+".ring")
	r, err := Create(path, Geometry{Width: 320, Height: 240, FPSNum: 25, FPSDen: 1}, 8, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Error(err)
		}
		if err := os.Remove(path); err != nil {
			t.Error(err)
		}
	})
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Blocks*512 < st.Size {
		t.Fatalf("ring of %d bytes has only %d bytes allocated: sparse, a full /dev/shm would SIGBUS later", st.Size, st.Blocks*512)
	}
}
