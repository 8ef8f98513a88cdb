package record

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"onair/internal/testutil"
)

// mountTmpfs mounts a tmpfs with opts on a temp dir, unmounted in
// t.Cleanup; it needs root.
func mountTmpfs(t *testing.T, flags uintptr, opts string) string {
	t.Helper()
	testutil.NeedRoot(t, "mounts a tmpfs")
	dir := filepath.Join(t.TempDir(), "disk")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", flags, opts); err != nil {
		if testutil.RequireAll() {
			t.Fatalf("mount tmpfs: %v", err)
		}
		t.Skipf("cannot mount a tmpfs (%v)", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	return dir
}

// A read-only mount (a card with its lock switch on) is named at Start,
// not found at the first write. Root writes through permission bits, so as
// root the test mounts a read-only tmpfs; otherwise a mode 0500 directory.
func TestStartOnReadOnlyDiskSaysNotWritable(t *testing.T) {
	var dir string
	if os.Geteuid() == 0 {
		dir = mountTmpfs(t, syscall.MS_RDONLY, "size=1m")
	} else {
		dir = filepath.Join(t.TempDir(), "ro")
		if err := os.Mkdir(dir, 0o500); err != nil {
			t.Fatal(err)
		}
	}
	r, err := New(Config{Dir: dir}, Deps{Log: testutil.NilLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	err = r.Start("operator")
	if !errors.Is(err, ErrDirUnwritable) || !strings.Contains(err.Error(), "recording.dir "+dir) {
		t.Fatalf("Start: %v, want ErrDirUnwritable naming %s", err, dir)
	}
	if st := r.Status(); st.State != StateError || st.Reason != err.Error() {
		t.Fatalf("status %+v", st)
	}
}

// A full card must stop the recording, not the stream: Write keeps
// returning at once before, while and after the disk fills, the recording
// stops with reason "disk full", the last segment is cut back to its last
// whole write and closed, and every segment still decodes from a key frame.
func TestDiskFullStopsRecordingKeepsSegmentsPlayableNeverBlocksWrite(t *testing.T) {
	dir := mountTmpfs(t, 0, "size=2m")
	ts := ffmpegTS(t, 8, 12) // about 3.3 MB into 2 MiB
	g := newRig(t, Config{Dir: dir, Segment: 2 * time.Second}, Deps{})
	if err := g.r.Start("test"); err != nil {
		t.Fatal(err)
	}
	tw := &timed{w: g.r}
	feedTS(t, tw, g.clock, ts)
	st := waitFor(t, g.r, "stopped", func(st Status) bool { return st.State == StateStopped })
	if !strings.HasPrefix(st.Reason, "disk full: ") || !strings.Contains(st.Reason, "no space left on device") {
		t.Fatalf("status %+v, want stopped with reason disk full", st)
	}
	if st.File != "" {
		t.Fatalf("segment %s still open after the failure", st.File)
	}
	feedTS(t, tw, g.clock, ts) // with the recording stopped on a full disk
	if tw.max > writeBound {
		t.Fatalf("a Write took %s (of %d)", tw.max, tw.n)
	}
	if now := g.r.Status(); now.Bytes != st.Bytes || now.BytesQueued != 0 || now.Segments != st.Segments {
		t.Fatalf("writes after the stop changed the recording: %+v, was %+v", now, st)
	}

	got := files(t, dir)
	if len(got) < 2 {
		t.Fatalf("segments %q", got)
	}
	var size int64
	for _, f := range got {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		size += fi.Size()
		n, key := probe(t, f)
		if n == 0 || !key {
			t.Errorf("%s: %d frames, first a key frame: %v", filepath.Base(f), n, key)
		}
	}
	if uint64(size) != st.Bytes || st.Segments != len(got) {
		t.Fatalf("status %+v for %d segments of %d bytes", st, len(got), size)
	}
	t.Logf("%d segments, %d bytes, %d writes, the longest %s; %s", len(got), size, tw.n, tw.max, st.Reason)
}
