package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"go.uber.org/zap"

	"onair/ingest"
	"onair/internal/testutil"
	"onair/update"
)

// The QEMU boot of the disk image (make integration, ONAIR_IMAGE=1): the
// whole disk as a box gets it, UEFI firmware (OVMF), GRUB from the ESP
// running rootfs/grub/onair-ab.cfg, the kernel and initramfs from root slot
// A, systemd, onaird. The VM's only network is a tap device inside a network
// namespace this test makes (no route anywhere else); the receiver listens
// there, outside the VM.
const (
	ovmfFirmware = "/usr/share/ovmf/OVMF.fd"
	vmTapAddr    = "192.0.2.1" // the receiver's side of the tap (TEST-NET-1, in the test's namespace only)
	vmGuestAddr  = "192.0.2.2"
)

// imageGate skips unless the image tests were asked for (make test-image,
// the last step of make test, and make integration), before any tool is
// looked for: the e2e run of make test-live skips them.
func imageGate(t *testing.T) {
	t.Helper()
	if os.Getenv("ONAIR_IMAGE") != "1" && os.Getenv("ONAIR_IMAGE_ROOTFS") == "" {
		t.Skip("the image test runs under make integration (ONAIR_IMAGE=1): it builds the image (minutes cold) and boots it")
	}
}

// imageDisk is the built disk image beside the rootfs imageRootfs returns
// ($ONAIR_IMAGE_DISK overrides it).
func imageDisk(t *testing.T) string {
	t.Helper()
	rootfs := imageRootfs(t)
	if p := os.Getenv("ONAIR_IMAGE_DISK"); p != "" {
		return p
	}
	return filepath.Join(filepath.Dir(rootfs), "onair.img")
}

// gptPart is one partition of sfdisk -J's table.
type gptPart struct {
	Start int64  `json:"start"` // sectors of 512 bytes
	Size  int64  `json:"size"`
	Type  string `json:"type"`
	Name  string `json:"name"`
}

func (p gptPart) offset() int64 { return p.Start * 512 }

// readGPT returns the disk's partitions in table order.
func readGPT(t *testing.T, disk string) []gptPart {
	t.Helper()
	out, err := exec.Command("sfdisk", "-J", disk).Output()
	if err != nil {
		t.Fatalf("sfdisk -J %s: %v", disk, err)
	}
	var table struct {
		PartitionTable struct {
			Label      string    `json:"label"`
			Partitions []gptPart `json:"partitions"`
		} `json:"partitiontable"`
	}
	if err = json.Unmarshal(out, &table); err != nil {
		t.Fatalf("sfdisk -J: %v", err)
	}
	if table.PartitionTable.Label != "gpt" {
		t.Fatalf("%s: label %q, want gpt", disk, table.PartitionTable.Label)
	}
	return table.PartitionTable.Partitions
}

// espGet copies a file out of the disk's ESP (mtools, no loop device).
func espGet(t *testing.T, disk string, esp gptPart, path, to string) {
	t.Helper()
	run(t, "mcopy", "-o", "-i", fmt.Sprintf("%s@@%d", disk, esp.offset()), "::"+path, to)
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), "MTOOLS_SKIP_CHECK=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// grubEnvList is grub-editenv FILE list as a map.
func grubEnvList(t *testing.T, file string) map[string]string {
	t.Helper()
	env := map[string]string{}
	for line := range strings.SplitSeq(run(t, "grub-editenv", file, "list"), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	return env
}

// freshGrubEnv is the block of a freshly imaged box (onair-ab.cfg's header).
var freshGrubEnv = map[string]string{"onair_default": "a", "onair_trial": "", "onair_tries": "0",
	"onair_good_a": "1", "onair_good_b": "0", "onair_booted": "a"}

// TestImageDiskIsLaidOutForUEFIAndAB inspects the disk image without booting
// it: the GPT onair-ab.cfg boots from (1 ESP, 2 root A, 3 root B, 4 data),
// GRUB at the firmware's fallback path with rootfs/grub's files beside the
// environment block of a fresh box, and a kernel and initramfs at the names
// onair-ab.cfg loads in slot A.
func TestImageDiskIsLaidOutForUEFIAndAB(t *testing.T) {
	imageGate(t)
	testutil.NeedRoot(t, "make image builds the image as root")
	need(t, "sfdisk", "mcopy", "grub-editenv", "debugfs")
	disk := imageDisk(t)
	parts := readGPT(t, disk)
	want := []struct{ name, typ string }{
		{"onair-esp", "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"},
		{"onair-root-a", "0FC63DAF-8483-4772-8E79-3D69D8477DE4"},
		{"onair-root-b", "0FC63DAF-8483-4772-8E79-3D69D8477DE4"},
		{"onair-data", "0FC63DAF-8483-4772-8E79-3D69D8477DE4"},
	}
	if len(parts) != len(want) {
		t.Fatalf("%d partitions, want %d: %+v", len(parts), len(want), parts)
	}
	for i, w := range want {
		if parts[i].Name != w.name || !strings.EqualFold(parts[i].Type, w.typ) {
			t.Errorf("partition %d: %s type %s, want %s type %s", i+1, parts[i].Name, parts[i].Type, w.name, w.typ)
		}
	}

	dir := t.TempDir()
	espGet(t, disk, parts[0], "/EFI/BOOT/BOOTX64.EFI", filepath.Join(dir, "BOOTX64.EFI"))
	if efi, _ := os.ReadFile(filepath.Join(dir, "BOOTX64.EFI")); !bytes.HasPrefix(efi, []byte("MZ")) {
		t.Error("/EFI/BOOT/BOOTX64.EFI is not a PE image")
	}
	for _, f := range []string{"grub.cfg", "onair-ab.cfg"} {
		espGet(t, disk, parts[0], "/grub/"+f, filepath.Join(dir, f))
		got, _ := os.ReadFile(filepath.Join(dir, f))
		src, _ := os.ReadFile(filepath.Join("..", "rootfs", "grub", f))
		if !bytes.Equal(got, src) {
			t.Errorf("the ESP's /grub/%s is not rootfs/grub/%s", f, f)
		}
	}
	espGet(t, disk, parts[0], "/grub/grubenv", filepath.Join(dir, "grubenv"))
	if fi, err := os.Stat(filepath.Join(dir, "grubenv")); err != nil || fi.Size() != 1024 {
		t.Errorf("grubenv: %v, %v; want a 1024-byte block", fi, err)
	}
	env := grubEnvList(t, filepath.Join(dir, "grubenv"))
	for k, v := range freshGrubEnv {
		if got, ok := env[k]; !ok || got != v {
			t.Errorf("grubenv %s=%q (set: %v), want %q", k, got, ok, v)
		}
	}
	// What onaird reads through update.GrubEnv: slot a booted, good, no trial.
	if s, err := update.NewGrubEnv(filepath.Join(dir, "grubenv")).State(); err != nil || s.Booted != update.SlotA || !s.GoodA || s.Trial != "" {
		t.Errorf("the fresh block as onaird reads it: %+v, %v", s, err)
	}

	// Slot A: the kernel and initramfs at the fixed names, /boot/grub the ESP's.
	slotA := filepath.Join(dir, "root-a.ext4")
	run(t, "dd", "if="+disk, "of="+slotA, "bs=1M", fmt.Sprintf("skip=%d", parts[1].offset()>>20),
		fmt.Sprintf("count=%d", (parts[1].Size*512)>>20), "conv=sparse", "status=none")
	stat := func(p string) string { return run(t, "debugfs", "-R", "stat "+p, slotA) }
	for _, p := range []string{"/boot/vmlinuz", "/boot/initrd.img", "/boot/grub"} {
		if s := stat(p); !strings.Contains(s, "Type: symlink") {
			t.Errorf("slot A %s is not a link:\n%s", p, tail(s, 5))
		}
	}
	ls := run(t, "debugfs", "-R", "ls -l /boot", slotA)
	if !strings.Contains(ls, "vmlinuz-") || !strings.Contains(ls, "initrd.img-") {
		t.Errorf("slot A /boot has no kernel or initramfs:\n%s", ls)
	}
}

// vmConsole reads the VM's serial console line by line, keeping every line
// with the time it arrived.
type vmConsole struct {
	mu    sync.Mutex
	lines []consoleLine
	log   io.Writer
	more  chan struct{} // closed and replaced at every line
	done  chan struct{} // closed at EOF
}

// ansiEscape matches the colour codes systemd writes to the console.
var ansiEscape = regexp.MustCompile(`\x1b\[[0-9;?]*[A-Za-z]`)

type consoleLine struct {
	at   time.Time
	text string
}

func newVMConsole(r io.Reader, log io.Writer) *vmConsole {
	c := &vmConsole{log: log, more: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			text := ansiEscape.ReplaceAllString(strings.TrimRight(sc.Text(), "\r"), "")
			c.mu.Lock()
			c.lines = append(c.lines, consoleLine{time.Now(), text})
			close(c.more)
			c.more = make(chan struct{})
			c.mu.Unlock()
			fmt.Fprintln(c.log, text)
		}
	}()
	return c
}

// waitFor returns when the first line holding substr arrived.
func (c *vmConsole) waitFor(ctx context.Context, substr string) (time.Time, error) {
	for i := 0; ; {
		c.mu.Lock()
		for ; i < len(c.lines); i++ {
			if strings.Contains(c.lines[i].text, substr) {
				at := c.lines[i].at
				c.mu.Unlock()
				return at, nil
			}
		}
		more := c.more
		c.mu.Unlock()
		select {
		case <-more:
		case <-c.done:
			return time.Time{}, fmt.Errorf("the console closed (the VM stopped) before %q", substr)
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("no %q on the console: %w", substr, ctx.Err())
		}
	}
}

// find returns when the first line holding substr arrived, zero if none did.
func (c *vmConsole) find(substr string) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range c.lines {
		if strings.Contains(l.text, substr) {
			return l.at
		}
	}
	return time.Time{}
}

func (c *vmConsole) text() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, l := range c.lines {
		b.WriteString(l.text + "\n")
	}
	return b.String()
}

// vmNetns makes a network namespace with a tap device for the VM, the
// receiver's address on it, and nothing else: no route leaves it. Removed
// in t.Cleanup (after the VM, which holds the tap).
func vmNetns(t *testing.T) string {
	t.Helper()
	ns := fmt.Sprintf("onair-vm-%d", os.Getpid())
	_ = exec.Command("ip", "netns", "del", ns).Run() // left by a killed run of this process id
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v %s", ns, err, out)
		}
	})
	run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	run(t, "ip", "-n", ns, "tuntap", "add", "dev", "tap0", "mode", "tap")
	run(t, "ip", "-n", ns, "addr", "add", vmTapAddr+"/24", "dev", "tap0")
	run(t, "ip", "-n", ns, "link", "set", "tap0", "up")
	return ns
}

// startReceiverIn runs onair-ingest's server in this process with its
// socket in the namespace: the goroutine that opens it runs on a thread
// moved into ns and locked there, which ends with it (never unlocked, so
// no other goroutine ever runs in ns).
func startReceiverIn(t *testing.T, ns string, port int, out string) *imageReceiver {
	t.Helper()
	srv, err := ingest.New(ingest.Config{Listen: net.JoinHostPort(vmTapAddr, strconv.Itoa(port)), OutFile: out, Analyzer: ingest.Options{FPS: 30}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &imageReceiver{srv: srv, out: out, cancel: cancel, done: make(chan error, 1)}
	go func() {
		runtime.LockOSThread()
		h, err := netns.GetFromName(ns)
		if err == nil {
			err = netns.Set(h)
			_ = h.Close()
		}
		if err != nil {
			r.done <- fmt.Errorf("enter %s: %w", ns, err)
			return
		}
		r.done <- srv.Run(ctx)
	}()
	select {
	case <-srv.Ready():
	case err := <-r.done:
		t.Fatalf("receiver: %v", err)
	}
	t.Cleanup(r.stop)
	return r
}

// qemuAccel is the accelerator and CPU model: TCG unless ONAIR_QEMU_ACCEL=kvm.
// Not KVM by default although /dev/kvm opens here: on these machines (a VM
// themselves, no vmx flag) a KVM guest hangs in the kernel's real-mode setup
// ("Probing EDD", -cpu host,-arch-capabilities; plain -cpu host or max
// aborts on MSR 0x10a).
func qemuAccel() (accel, cpu string) {
	if os.Getenv("ONAIR_QEMU_ACCEL") == "kvm" {
		return "kvm", "host,-arch-capabilities"
	}
	return "tcg", "max"
}

// vmDisk copies the image's disk for one boot and writes the test's data
// partition and kernel arguments into the copy: the image stays as built.
func vmDisk(t *testing.T, disk, dir string, data string, args string) (string, []gptPart) {
	t.Helper()
	vm := filepath.Join(dir, "disk.img")
	run(t, "cp", "--sparse=always", disk, vm)
	parts := readGPT(t, vm)
	dataPart := parts[3]
	dataImg := filepath.Join(dir, "data.ext4")
	run(t, "truncate", "-s", strconv.FormatInt(dataPart.Size*512, 10), dataImg)
	run(t, "mkfs.ext4", "-q", "-F", "-L", "onair-data", "-E", "root_owner=0:0", "-d", data, dataImg)
	run(t, "dd", "if="+dataImg, "of="+vm, "bs=1M", fmt.Sprintf("seek=%d", dataPart.offset()>>20), "conv=notrunc,sparse", "status=none")
	_ = os.Remove(dataImg)
	vmGrubEnvSet(t, vm, parts[0], dir, "onair_args="+args)
	return vm, parts
}

// vmGrubEnvSet sets variables in the GRUB environment block on the VM
// disk's ESP, as grub-editenv does on a box.
func vmGrubEnvSet(t *testing.T, vm string, esp gptPart, dir string, kv ...string) {
	t.Helper()
	env := filepath.Join(dir, "grubenv")
	espGet(t, vm, esp, "/grub/grubenv", env)
	run(t, "grub-editenv", append([]string{env, "set"}, kv...)...)
	run(t, "mcopy", "-o", "-i", fmt.Sprintf("%s@@%d", vm, esp.offset()), env, "::/grub/grubenv")
}

// TestImageBootsInQEMUAndGoesOnAir boots the whole disk image in QEMU (TCG;
// qemuAccel) with UEFI firmware: GRUB picks slot A
// by onair-ab.cfg and records it in the ESP's environment block, the kernel
// and initramfs mount root A by its GPT name, systemd starts onaird
// (READY, seen on the serial console as systemd's "Started" line), and onaird
// streams the demo to a receiver outside the VM. The times from power-on to
// READY and to the first frame at the receiver are logged; the GRUB block
// afterwards says slot a was booted, and onair-boot.service found it so.
func TestImageBootsInQEMUAndGoesOnAir(t *testing.T) {
	dir, port, args, vm, parts := newVMDisk(t)
	ns := vmNetns(t)
	rx := startReceiverIn(t, ns, port, filepath.Join(dir, "received.ts"))
	v := bootVM(t, vm, dir, ns, false)
	start, con, accel := v.start, v.con, v.accel

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	ready, err := con.waitFor(ctx, "Started onaird.service")
	if err != nil {
		t.Fatal(err)
	}
	_, first := rx.backOnAir(t, 0, 5*time.Minute)
	// The milestones the console shows on the way (a quiet kernel prints
	// nothing): the firmware starting GRUB, systemd starting.
	grub, systemd := con.find("BdsDxe: starting"), con.find("Welcome to")
	since := func(at time.Time) string {
		if at.IsZero() {
			return "unseen"
		}
		return at.Sub(start).Round(time.Millisecond).String()
	}
	t.Logf("QEMU (%s): firmware starts GRUB %s, systemd %s, onaird READY %s, first frame at the receiver %s after power-on",
		accel, since(grub), since(systemd), since(ready), since(first))
	if os.Getenv("ONAIR_BENCH_OUT") != "" {
		benchLine(t, "qemu_boot_to_first_frame_s", first.Sub(start).Seconds(), "s")
		benchLine(t, "qemu_boot_to_ready_s", ready.Sub(start).Seconds(), "s")
	}

	// A few seconds on air, then the power button (ACPI, through QMP):
	// logind powers off, the journal on the data partition is complete.
	time.Sleep(6 * time.Second)
	if frames := rx.frames(); frames < 30 {
		t.Errorf("only %d video frames in the first 6 s on air (10 fps)", frames)
	}
	v.powerOff(t, dir)
	rx.stop()

	// GRUB recorded the boot in the block on the ESP (save_env on FAT), and
	// the box found it so.
	got := vmGrubEnvAfter(t, vm, parts[0], dir, freshGrubEnv)
	if got["onair_args"] != args {
		t.Errorf("grubenv after the boot lost onair_args: %q", got["onair_args"])
	}
	journal := vmJournal(t, vm, parts[3], dir)
	if !strings.Contains(journal, "GRUB booted slot a") {
		t.Errorf("onair-boot.service did not find GRUB's record of slot a:\n%s", tail(journal, 40))
	}
	if !regexp.MustCompile(`boot state\s+\{"state": ?"good"`).MatchString(journal) {
		t.Errorf("onaird's update marker did not read a good boot state:\n%s", tail(journal, 40))
	}
}

// newVMDisk gates a QEMU test and makes its disk: the built image with the
// VM's demo data partition (vmDemo) and the test's kernel arguments. It
// returns the test's directory, the receiver's port and the arguments.
func newVMDisk(t *testing.T) (dir string, port int, args, vm string, parts []gptPart) {
	t.Helper()
	imageGate(t)
	if os.Getenv("ONAIR_QEMU") != "1" {
		// QEMU and OVMF are installed only with ONAIR_QEMU=1 (make
		// integration sets it): make test does not pay for them. Measured
		// here (2 cores, TCG: no usable KVM): READY 32-46 s after power-on,
		// the first frame at the receiver about 1 s later.
		t.Skip("the QEMU boots run with ONAIR_QEMU=1 (make integration)")
	}
	testutil.NeedRoot(t, "a tap device in a network namespace, the image built as root")
	need(t, "qemu-system-x86_64", "ip", "sfdisk", "mcopy", "mkfs.ext4", "grub-editenv", "debugfs", "journalctl", "ffmpeg")
	if _, err := os.Stat(ovmfFirmware); err != nil {
		testutil.Need(t, "ovmf-firmware-at-"+ovmfFirmware) // skips (fails in CI): the ovmf package
	}
	disk := imageDisk(t)
	dir = t.TempDir()
	var apiPort int
	port, apiPort = freePort(t, "udp"), freePort(t, "tcp")
	data, args := vmDemo(t, dir, port, apiPort)
	vm, parts = vmDisk(t, disk, dir, data, args)
	return dir, port, args, vm, parts
}

// powerOff presses the power button (ACPI, through QMP) and waits for the
// VM to end: logind powers off, the journal on the data partition is
// complete.
func (v *qemuVM) powerOff(t *testing.T, dir string) {
	t.Helper()
	off := time.Now()
	if err := qmpPowerdown(filepath.Join(dir, "qmp.sock")); err != nil {
		t.Errorf("power button: %v", err)
	}
	select {
	case <-v.exited:
		t.Logf("powered off in %s", time.Since(off).Round(time.Millisecond))
	case <-time.After(90 * time.Second):
		t.Errorf("the VM did not power off within 90 s of the power button")
	}
	v.stop()
}

// vmGrubEnvAfter reads the GRUB block off the VM disk's ESP after the VM
// ended, checks the variables of want and returns every variable.
func vmGrubEnvAfter(t *testing.T, vm string, esp gptPart, dir string, want map[string]string) map[string]string {
	t.Helper()
	env := filepath.Join(dir, "grubenv.after")
	espGet(t, vm, esp, "/grub/grubenv", env)
	got := grubEnvList(t, env)
	for k, w := range want {
		if got[k] != w {
			t.Errorf("grubenv after the boot: %s=%q, want %q", k, got[k], w)
		}
	}
	return got
}

// vmDemo writes the VM's data partition tree under dir (the demo, small
// and with one encoder, streaming to the test's receiver outside; updates
// through GRUB) and returns it with the test's kernel arguments.
func vmDemo(t *testing.T, dir string, port, apiPort int) (data, args string) {
	t.Helper()
	data = filepath.Join(dir, "data")
	// The demo, smaller and one encoder: TCG emulates every instruction.
	writeImageConfigTo(t, data, vmTapAddr, port, apiPort, 320, 180)
	cfgPath := filepath.Join(data, "onair", "onair.yaml")
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	// Under TCG every instruction is emulated: 10 frames a second, a low
	// bitrate, and room for the children to start (supervisor.start_timeout:
	// the 10 s default killed the encoder before its first frame) and to
	// fall behind for a moment without a stall restart.
	for _, r := range [][2]string{
		{"twins: true", "twins: false\n  stall_after: 10s\n  hang_after: 5s"},
		{"rate=30", "rate=10"}, {"fps: 30", "fps: 10"}, {"bitrate_kbps: 4000", "bitrate_kbps: 600"}, {"gop: 60", "gop: 20"},
	} {
		if !bytes.Contains(raw, []byte(r[0])) {
			t.Fatalf("the image config has no %q to replace", r[0])
		}
		raw = bytes.Replace(raw, []byte(r[0]), []byte(r[1]), 1)
	}
	raw = append(raw, "supervisor:\n  start_timeout: 5m\n"...)
	if err = os.WriteFile(cfgPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	// Updates on, through GRUB: onair-boot.service checks GRUB's record of
	// the slot, onaird's Marker reads the block.
	pub := writeUpdateKey(t, filepath.Join(data, "onair"))
	appendConfig(t, filepath.Join(data, "onair", "onair.yaml"), fmt.Sprintf(`update:
  public_key: /var/lib/onair/%s
  slot_a: /dev/disk/by-partlabel/onair-root-a
  slot_b: /dev/disk/by-partlabel/onair-root-b
  bootloader: grub
  grubenv: /boot/grub/grubenv
`, filepath.Base(pub)))
	// The test's own: the network (the kernel's ip= through
	// systemd-network-generator, networkd), every unit's status on the console.
	args = fmt.Sprintf("systemd.show_status=1 systemd.status_unit_format=name net.ifnames=0 ip=%s::%s:255.255.255.0:onair:eth0:off "+
		"systemd.wants=systemd-network-generator.service systemd.wants=systemd-networkd.service", vmGuestAddr, vmTapAddr)
	return data, args
}

// qemuVM is a running VM: its serial console and when it started.
type qemuVM struct {
	con    *vmConsole
	start  time.Time
	exited chan struct{}
	stop   func()
	accel  string
}

// bootVM powers on the disk vm in QEMU with UEFI firmware, its only network
// a tap in ns, its console read by the test. With reboot false a reboot of
// the guest ends QEMU (-no-reboot); with it true the guest reboots in place
// and only a poweroff ends it. Stopped in t.Cleanup, where a failed test
// gets the console's tail.
func bootVM(t *testing.T, vm, dir, ns string, reboot bool) *qemuVM {
	t.Helper()
	accel, cpu := qemuAccel()
	consoleLog, err := os.Create(filepath.Join(dir, "console.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = consoleLog.Close() })
	argv := []string{"netns", "exec", ns, "qemu-system-x86_64",
		"-accel", accel, "-cpu", cpu, "-smp", "2", "-m", "2048",
		"-bios", ovmfFirmware, "-display", "none", "-monitor", "none", "-serial", "stdio",
		"-qmp", "unix:" + filepath.Join(dir, "qmp.sock") + ",server=on,wait=off",
		"-drive", "file=" + vm + ",if=virtio,format=raw",
		"-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
		"-device", "virtio-net-pci,netdev=n0,romfile=",
		// Entropy from the host: without it the guest's first getrandom
		// (ssh-keygen of the box's host key) blocked for minutes under TCG.
		"-device", "virtio-rng-pci"}
	if !reboot {
		argv = append(argv, "-no-reboot")
	}
	qemu := exec.Command("ip", argv...)
	qemu.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := qemu.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	qemu.Stderr = &stderr
	start := time.Now()
	if err = qemu.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = qemu.Wait() // killed or powered off: the test checks what it needs
		close(exited)
	}()
	stopVM := func() {
		select {
		case <-exited:
			return
		default:
		}
		_ = syscall.Kill(-qemu.Process.Pid, syscall.SIGKILL) // ip netns exec execs qemu: its own group
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Errorf("qemu (pid %d) did not exit", qemu.Process.Pid)
		}
	}
	con := newVMConsole(stdout, consoleLog)
	t.Cleanup(func() {
		stopVM()
		if t.Failed() {
			t.Logf("qemu (%s) stderr: %s\nserial console (tail):\n%s", accel, stderr.String(), tail(con.text(), 120))
		}
	})

	return &qemuVM{con: con, start: start, exited: exited, stop: stopVM, accel: accel}
}

// A trial of slot B whose write never finished (an empty slot: the update
// was cut before a byte of the file system landed, or a bundle's root was
// broken): GRUB takes the try, cannot load B's kernel and, by onair-ab.cfg's
// rule 4, falls back in the same boot to slot A and records A as booted.
// The box is on air again without anyone at it, and onaird reads the trial
// as rolled back. Before rule 4 GRUB stopped at "Failed to boot" and the box
// stayed dark.
func TestImageRollsBackThroughGRUBWhenTheTrialSlotCannotBoot(t *testing.T) {
	dir, port, _, vm, parts := newVMDisk(t)
	// Slot B as an interrupted write leaves it: no file system.
	run(t, "dd", "if=/dev/zero", "of="+vm, "bs=1M", fmt.Sprintf("seek=%d", parts[2].offset()>>20), "count=64", "conv=notrunc", "status=none")
	// What update.Installer writes once a slot is written: B on trial, one try.
	vmGrubEnvSet(t, vm, parts[0], dir, "onair_trial=b", "onair_tries=1", "onair_good_b=0")

	ns := vmNetns(t)
	rx := startReceiverIn(t, ns, port, filepath.Join(dir, "received.ts"))
	v := bootVM(t, vm, dir, ns, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	ready, err := v.con.waitFor(ctx, "Started onaird.service")
	if err != nil {
		t.Fatal(err)
	}
	_, first := rx.backOnAir(t, 0, 5*time.Minute)
	t.Logf("QEMU (%s): onaird READY %s, first frame %s after power-on, through the fallback to slot a",
		v.accel, ready.Sub(v.start).Round(time.Millisecond), first.Sub(v.start).Round(time.Millisecond))
	if v.con.find("Falling back to").IsZero() {
		t.Errorf("GRUB did not say it fell back (no \"Falling back to\" on the console)")
	}
	time.Sleep(3 * time.Second)
	v.powerOff(t, dir)
	rx.stop()

	vmGrubEnvAfter(t, vm, parts[0], dir, map[string]string{"onair_booted": "a", "onair_default": "a", "onair_trial": "b",
		"onair_tries": "0", "onair_good_a": "1", "onair_good_b": "0"})
	journal := vmJournal(t, vm, parts[3], dir)
	if !strings.Contains(journal, "GRUB booted slot a") {
		t.Errorf("onair-boot.service did not find GRUB's record of slot a:\n%s", tail(journal, 40))
	}
	if !regexp.MustCompile(`boot state\s+\{"state": ?"rolled_back"`).MatchString(journal) {
		t.Errorf("onaird did not read the trial as rolled back:\n%s", tail(journal, 40))
	}
}

// A trial slot whose onaird fails at every start (here slot B is slot A with
// onaird.service's ExecStart replaced by /bin/false; in the field: a crash at
// start, a library it cannot load). onaird's Marker, the only thing that
// abandons a trial, never runs, and onaird.service restarts forever: the box
// stayed off air until someone power-cycled it once per try. On a trial boot
// GRUB passes onair.trial=1 and the generator onair-trial gives onaird a
// start limit that reboots: ten failed starts, the reboot, GRUB has no try
// left and boots A, the box is on air by itself.
func TestImageTrialSlotWhoseOnairdNeverStartsRebootsIntoTheOldSlot(t *testing.T) {
	dir, port, _, vm, parts := newVMDisk(t)
	// Slot B: slot A's system, its onaird unable to start.
	slot := filepath.Join(dir, "b.ext4")
	run(t, "dd", "if="+vm, "of="+slot, "bs=1M", fmt.Sprintf("skip=%d", parts[1].offset()>>20),
		fmt.Sprintf("count=%d", (parts[1].Size*512)>>20), "conv=sparse", "status=none")
	broken := filepath.Join(dir, "broken.conf")
	if err := os.WriteFile(broken, []byte("[Service]\nExecStart=\nExecStart=/bin/false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "debugfs", "-w", "-R", "mkdir /etc/systemd/system/onaird.service.d", slot)
	run(t, "debugfs", "-w", "-R", "write "+broken+" /etc/systemd/system/onaird.service.d/broken.conf", slot)
	run(t, "dd", "if="+slot, "of="+vm, "bs=1M", fmt.Sprintf("seek=%d", parts[2].offset()>>20), "conv=notrunc,sparse", "status=none")
	_ = os.Remove(slot)
	vmGrubEnvSet(t, vm, parts[0], dir, "onair_trial=b", "onair_tries=1", "onair_good_b=0")

	ns := vmNetns(t)
	rx := startReceiverIn(t, ns, port, filepath.Join(dir, "received.ts"))
	v := bootVM(t, vm, dir, ns, true) // the guest reboots in place
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	// The first boot (B) never starts onaird; the line is A's.
	ready, err := v.con.waitFor(ctx, "Started onaird.service")
	if err != nil {
		t.Fatal(err)
	}
	_, first := rx.backOnAir(t, 0, 5*time.Minute)
	t.Logf("QEMU (%s): B's onaird failed, the box rebooted into A: onaird READY %s, first frame %s after power-on",
		v.accel, ready.Sub(v.start).Round(time.Millisecond), first.Sub(v.start).Round(time.Millisecond))
	time.Sleep(3 * time.Second)
	v.powerOff(t, dir)
	rx.stop()

	vmGrubEnvAfter(t, vm, parts[0], dir, map[string]string{"onair_booted": "a", "onair_default": "a", "onair_trial": "b",
		"onair_tries": "0", "onair_good_b": "0"})
	journal := vmJournal(t, vm, parts[3], dir)
	for _, line := range []string{"GRUB booted trial slot b", "Start request repeated too quickly", "GRUB booted slot a"} {
		if !strings.Contains(journal, line) {
			t.Errorf("the journal of both boots has no %q:\n%s", line, tail(journal, 60))
		}
	}
	if !regexp.MustCompile(`boot state\s+\{"state": ?"rolled_back"`).MatchString(journal) {
		t.Errorf("onaird in slot a did not read the trial as rolled back:\n%s", tail(journal, 40))
	}
}

// qmpPowerdown presses the VM's ACPI power button through QEMU's QMP socket.
func qmpPowerdown(sock string) error {
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		return fmt.Errorf("qmp: %w", err)
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	if _, err = r.ReadString('\n'); err != nil { // the greeting
		return fmt.Errorf("qmp greeting: %w", err)
	}
	for _, cmd := range []string{"qmp_capabilities", "system_powerdown"} {
		if _, err = fmt.Fprintf(c, "{\"execute\": %q}\n", cmd); err != nil {
			return fmt.Errorf("qmp %s: %w", cmd, err)
		}
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return fmt.Errorf("qmp %s: %w", cmd, err)
			}
			if strings.Contains(line, `"error"`) {
				return fmt.Errorf("qmp %s: %s", cmd, strings.TrimSpace(line))
			}
			if strings.Contains(line, `"return"`) {
				break
			}
		}
	}
	return nil
}

// benchLine appends one "name value unit" line to $ONAIR_BENCH_OUT (make
// bench runs this test and prints the file).
func benchLine(t *testing.T, name string, value float64, unit string) {
	t.Helper()
	f, err := os.OpenFile(os.Getenv("ONAIR_BENCH_OUT"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	if _, err = fmt.Fprintf(f, "%s %.2f %s\n", name, value, unit); err != nil {
		t.Fatal(err)
	}
}

// vmJournal reads the journal off the VM's data partition (debugfs: no
// mount) and returns onair-boot's and onaird's lines.
func vmJournal(t *testing.T, vm string, dataPart gptPart, dir string) string {
	t.Helper()
	img := filepath.Join(dir, "data-after.ext4")
	run(t, "dd", "if="+vm, "of="+img, "bs=1M", fmt.Sprintf("skip=%d", dataPart.offset()>>20),
		fmt.Sprintf("count=%d", (dataPart.Size*512)>>20), "conv=sparse", "status=none")
	out := filepath.Join(dir, "journal-after")
	if err := os.Mkdir(out, 0o755); err != nil {
		t.Fatal(err)
	}
	run(t, "debugfs", "-R", "rdump /journal "+out, img)
	j, err := exec.Command("journalctl", "-D", filepath.Join(out, "journal"), "-u", "onair-boot.service", "-u", "onaird.service",
		"-o", "cat", "--no-pager").CombinedOutput()
	if err != nil {
		t.Errorf("journalctl on the VM's data partition: %v\n%s", err, j)
	}
	return string(j)
}

// writeUpdateKey writes a test public key for updates into dir (the data
// partition's onair/) and returns its path.
func writeUpdateKey(t *testing.T, dir string) string {
	t.Helper()
	keys := t.TempDir()
	_, pub, err := update.GenerateKeyFiles(keys)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(pub)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "update.pub")
	if err = os.WriteFile(p, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func appendConfig(t *testing.T, path, yaml string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err = f.WriteString(yaml); err != nil {
		t.Fatal(err)
	}
	if err = f.Close(); err != nil {
		t.Fatal(err)
	}
}
