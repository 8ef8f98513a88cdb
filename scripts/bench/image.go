package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"onair/update"
)

var imageDir = flag.String("image", "out/image", "make image's output directory (-only image: its sizes; with ONAIR_IMAGE=1 its rootfs booted in systemd-nspawn)")

// The box image and its update, issue 13:
//
//   - update_install_mb_s: update.Installer.Install of a signed bundle of a
//     256 MiB rootfs into a file slot in the work dir (both hashing passes,
//     the write, fsync, the read-back; MB/s of the rootfs, 10^6 bytes), the
//     median of 3, and the slowest. The bundle is read from the page cache
//     (just written); the slot's read-back is not (its cache is dropped).
//   - image_rootfs_mib, image_root_slot_*, image_disk_*: the sizes of make
//     image's output, when -image has one (skipped, saying so, when not).
//   - image_boot_to_first_frame_s, image_sigkill_back_on_air_s,
//     image_sigstop_back_on_air_s: the nspawn test (e2e TestImageOnAirUnderSystemd,
//     as root) on that rootfs, only with ONAIR_IMAGE=1, as make integration:
//     it boots the image (about 1 min with the test's build);
//   - qemu_boot_to_ready_s, qemu_boot_to_first_frame_s: the whole disk
//     booted in QEMU, with ONAIR_IMAGE=1 and ONAIR_QEMU=1 (qemu.go).
func runImage(work string) {
	if err := benchInstall(filepath.Join(work, "install")); err != nil {
		fmt.Fprintln(os.Stderr, "bench: image: install:", err)
	}
	benchImageSize(*imageDir)
	if err := benchImageBoot(*imageDir); err != nil {
		fmt.Fprintln(os.Stderr, "bench: image: nspawn:", err)
	}
	runQEMU(work)
}

func benchInstall(dir string) error {
	const size = 256 << 20
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	priv, pub, err := update.GenerateKeyFiles(filepath.Join(dir, "keys"))
	if err != nil {
		return err
	}
	rootfs := filepath.Join(dir, "rootfs.img")
	if err = writePseudoRandom(rootfs, size); err != nil {
		return err
	}
	bundle := filepath.Join(dir, "onair.bundle")
	ctx := context.Background()
	if err = update.MakeFile(ctx, bundle, priv, "v0.0.1", time.Now(), rootfs); err != nil {
		return err
	}
	if err = os.Remove(rootfs); err != nil {
		return err
	}
	cfg := update.DefaultConfig()
	cfg.PublicKey, cfg.Bootloader, cfg.StateFile = pub, update.BootloaderFile, filepath.Join(dir, "boot.json")
	cfg.SlotA, cfg.SlotB = filepath.Join(dir, "slot-a.img"), filepath.Join(dir, "slot-b.img")
	for _, s := range []string{cfg.SlotA, cfg.SlotB} {
		if err = os.WriteFile(s, nil, 0o600); err != nil {
			return err
		}
	}
	boot := update.NewFileBootloader(cfg.StateFile)
	if err = boot.Init(update.SlotA); err != nil {
		return err
	}
	in, err := update.NewInstaller(cfg, update.InstallerDeps{Boot: boot, Version: "v0.0.0"})
	if err != nil {
		return err
	}
	var rates []float64
	for range 3 {
		res, err := in.Install(ctx, bundle, update.InstallOptions{})
		if err != nil {
			return err
		}
		rates = append(rates, size/1e6/res.Took.Seconds())
	}
	slices.Sort(rates)
	emit("update_install_mb_s", rates[1], "MB/s")
	emit("update_install_mb_s_min", rates[0], "MB/s")
	return nil
}

// writePseudoRandom writes n bytes that do not compress (nothing in the
// path compresses, but a file of zeros could be sparse).
func writePseudoRandom(path string, n int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	buf := make([]byte, 1<<20)
	x := uint64(0x9e3779b97f4a7c15)
	for left := n; left > 0; left -= len(buf) {
		for i := 0; i+8 <= len(buf); i += 8 {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			for j := range 8 {
				buf[i+j] = byte(x >> (8 * j))
			}
		}
		if _, err = f.Write(buf[:min(left, len(buf))]); err != nil {
			_ = f.Close()
			return err
		}
	}
	return f.Close()
}

// benchImageSize emits the sizes of make image's output in dir: the root
// tree (apparent), the root slot's file system (its size, what a bundle
// carries, and the blocks it uses) and the disk (apparent and on disk:
// it is sparse).
func benchImageSize(dir string) {
	disk := filepath.Join(dir, "onair.img")
	if _, err := os.Stat(disk); err != nil {
		fmt.Fprintf(os.Stderr, "bench: image: sizes skipped: no %s (make image builds it, as root)\n", disk)
		return
	}
	// About du --apparent-size's count (scripts/image.sh prints it): every
	// regular file and symlink once, a hard link's inode once (du adds the
	// directories too: 6 MiB more).
	var tree int64
	seen := map[[2]uint64]bool{}
	err := filepath.WalkDir(filepath.Join(dir, "rootfs"), func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, ierr := d.Info()
		if ierr != nil { // gone while walked: not counted
			return nil
		}
		if !fi.Mode().IsRegular() && fi.Mode()&fs.ModeSymlink == 0 {
			return nil
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
			ino := [2]uint64{st.Dev, st.Ino}
			if seen[ino] {
				return nil
			}
			seen[ino] = true
		}
		tree += fi.Size()
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: image: rootfs size:", err)
	} else {
		emit("image_rootfs_mib", float64(tree)/(1<<20), "MiB")
	}
	for _, f := range []struct{ name, file string }{{"image_root_slot", "rootfs.ext4"}, {"image_disk", "onair.img"}} {
		size, used, err := fileSizes(filepath.Join(dir, f.file))
		if err != nil {
			fmt.Fprintln(os.Stderr, "bench: image:", err)
			continue
		}
		emit(f.name+"_mib", float64(size)/(1<<20), "MiB")
		emit(f.name+"_allocated_mib", float64(used)/(1<<20), "MiB")
	}
}

// The nspawn test's lines that carry the figures (e2e/image_test.go).
var imageLogFigures = []struct {
	name string
	re   *regexp.Regexp
}{
	{"image_boot_to_first_frame_s", regexp.MustCompile(`first frame at the receiver (\S+) after boot`)},
	{"image_sigkill_back_on_air_s", regexp.MustCompile(`SIGKILL: back on air in (\S+)`)},
	{"image_sigstop_back_on_air_s", regexp.MustCompile(`SIGSTOP: back on air in (\S+)`)},
}

// benchImageBoot runs the nspawn test on dir's rootfs and emits the times
// it logs. Gated like the test: ONAIR_IMAGE=1 and root.
func benchImageBoot(dir string) error {
	switch {
	case os.Getenv("ONAIR_IMAGE") != "1":
		fmt.Fprintln(os.Stderr, "bench: image: nspawn figures skipped: they boot the image, with ONAIR_IMAGE=1 (as make integration)")
		return nil
	case os.Geteuid() != 0:
		fmt.Fprintln(os.Stderr, "bench: image: nspawn figures skipped: systemd-nspawn needs root")
		return nil
	}
	rootfs, err := filepath.Abs(filepath.Join(dir, "rootfs"))
	if err != nil {
		return err
	}
	if _, err = os.Stat(filepath.Join(rootfs, "usr/bin/onaird")); err != nil {
		return fmt.Errorf("no image rootfs at %s (make image): %w", rootfs, err)
	}
	cmd := exec.Command("go", "test", "-count=1", "-timeout", "10m", "-run", "^TestImageOnAirUnderSystemd$", "-v", "./e2e/")
	cmd.Env = append(os.Environ(), "ONAIR_IMAGE_ROOTFS="+rootfs)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("the nspawn test failed: %w\n%s", err, tailLines(string(out), 30))
	}
	var errs []error
	for _, f := range imageLogFigures {
		m := f.re.FindStringSubmatch(string(out))
		if m == nil {
			errs = append(errs, fmt.Errorf("%s: the test logged no %q (its wording changed?)", f.name, f.re))
			continue
		}
		d, perr := time.ParseDuration(m[1])
		if perr != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f.name, perr))
			continue
		}
		emit(f.name, d.Seconds(), "s")
	}
	return errors.Join(errs...)
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// fileSizes is a file's size and the bytes its blocks take on disk.
func fileSizes(path string) (size, used int64, err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, 0, err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, fmt.Errorf("%s: no block count", path)
	}
	return fi.Size(), st.Blocks * 512, nil
}
