package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// runQEMU: the box image booted in QEMU (issue 13), part of -only image,
// behind the same gates as the test (ONAIR_IMAGE=1 and ONAIR_QEMU=1, root; ONAIR_QEMU_ACCEL=kvm where
// KVM works): e2e's TestImageBootsInQEMUAndGoesOnAir
// builds the image if needed, boots the whole disk (OVMF, GRUB, the
// kernel, systemd; TCG) and writes its figures to $ONAIR_BENCH_OUT:
//
//   - qemu_boot_to_ready_s: power-on to systemd's "Started onaird.service"
//     on the serial console (onaird READY);
//   - qemu_boot_to_first_frame_s: power-on to the first video frame at the
//     receiver outside the VM.
func runQEMU(work string) {
	if os.Getenv("ONAIR_IMAGE") != "1" || os.Getenv("ONAIR_QEMU") != "1" || os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "bench: image: QEMU figures skipped (ONAIR_IMAGE=1 ONAIR_QEMU=1 and root: it builds the image and boots it in QEMU, minutes)")
		return
	}
	if err := benchQEMU(filepath.Join(work, "qemu")); err != nil {
		fmt.Fprintln(os.Stderr, "bench: image: qemu:", err)
	}
}

func benchQEMU(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	out := filepath.Join(dir, "figures.txt")
	cmd := exec.Command("go", "test", "-count=1", "-timeout", "15m", "-run", "^TestImageBootsInQEMUAndGoesOnAir$", "./e2e/")
	cmd.Env = append(os.Environ(), "ONAIR_BENCH_OUT="+out)
	if log, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("the QEMU boot test: %w\n%s", err, log)
	}
	f, err := os.Open(out)
	if err != nil {
		return fmt.Errorf("no figures from the QEMU boot test: %w", err)
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 {
			continue
		}
		v, err := strconv.ParseFloat(fields[1], 64)
		if err != nil {
			return fmt.Errorf("figure %q: %w", sc.Text(), err)
		}
		emit(fields[0], v, fields[2])
	}
	return sc.Err()
}
