package e2e

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"onair/update"
	"onair/web/api"
)

// An update on a running box, with files as the two root slots and the
// file bootloader: refused on air without --force or --at-stop; a bundle
// with a flipped byte refused before the slot is touched; a good one
// written to slot b and set on trial, the stream going on without a gap.
// Then a "reboot" into slot b (the file bootloader's Boot, as the
// bootloader would), and onaird marks it good once healthy for
// update.healthy_after.
func TestUpdateOnARunningBoxTrialThenMarkedGood(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	priv, pub, err := update.GenerateKeyFiles(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	random := func(name string, n int) string {
		b := make([]byte, n)
		if _, rerr := rand.Read(b); rerr != nil {
			t.Fatal(rerr)
		}
		p := filepath.Join(dir, name)
		if werr := os.WriteFile(p, b, 0o600); werr != nil {
			t.Fatal(werr)
		}
		return p
	}
	slotA, rootfs := random("slot-a", 8<<20), random("rootfs-v2", 8<<20)
	slotB := filepath.Join(dir, "slot-b")
	if err = os.WriteFile(slotB, make([]byte, 8<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "boot.json")
	boot := update.NewFileBootloader(state)
	if err = boot.Init(update.SlotA); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(dir, "v2.bundle")
	if err = update.MakeFile(ctx, bundle, priv, "v2", time.Now(), rootfs); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	raw[len(raw)-100] ^= 1 // a byte of the rootfs part
	corrupt := filepath.Join(dir, "corrupt.bundle")
	if err = os.WriteFile(corrupt, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("update:\n  public_key: %q\n  slot_a: %q\n  slot_b: %q\n  bootloader: file\n  state_file: %q\n  healthy_after: 10s\n",
		pub, slotA, slotB, state)

	port, out, rx := independentReceiver(t)
	b := startBox(t, boxOpts{url: fmt.Sprintf("srt://127.0.0.1:%d?latency=200", port), twins: true, gop: 30, extra: cfg})
	b.waitFor(t, 20*time.Second, "locked", func(st api.Status) bool { return connected(st) && locked(st) })
	if _, err = onairctl(t, b, "", "update", bundle); err == nil || !strings.Contains(err.Error(), "--at-stop") {
		t.Errorf("update on air: %v; want refused naming --at-stop and --force", err)
	}
	if _, err = onairctl(t, b, "", "update", "--force", corrupt); err == nil || !strings.Contains(err.Error(), "still boots") {
		t.Errorf("a corrupt bundle: %v; want refused", err)
	}
	// A validly signed bundle the box cannot place after what it runs (the
	// bare commit hash the Makefile stamped before scripts/version.sh) is
	// refused at once, in one line naming the way past it.
	unordered := filepath.Join(dir, "unordered.bundle")
	if err = update.WriteFile(ctx, unordered, mustPriv(t, priv), "51e94c8", time.Now(), []update.PartFile{{Name: update.PartRootfs, Path: rootfs}}); err != nil {
		t.Fatal(err)
	}
	if _, err = onairctl(t, b, "", "update", "--force", unordered); err == nil || !strings.Contains(err.Error(), "not newer than the running version") ||
		!strings.Contains(err.Error(), "--allow-downgrade") || strings.Contains(err.Error(), "\n") {
		t.Errorf("an unordered bundle: %v; want refused in one line naming --allow-downgrade", err)
	}
	if got, _ := os.ReadFile(slotB); !bytes.Equal(got, make([]byte, 8<<20)) {
		t.Fatal("a refused bundle touched slot b")
	}
	res, err := onairctl(t, b, "", "update", "--force", bundle)
	if err != nil || !strings.Contains(res, "v2 written to slot b") {
		t.Fatalf("update: %v\n%s", err, res)
	}
	want, _ := os.ReadFile(rootfs)
	if got, _ := os.ReadFile(slotB); !bytes.Equal(got, want) {
		t.Fatal("slot b does not hold the new rootfs")
	}
	bs, err := boot.State()
	if err != nil || bs.Trial != update.SlotB || bs.Next() != update.SlotB || bs.Booted != update.SlotA {
		t.Fatalf("boot state %+v, %v; want a trial of b next, a running", bs, err)
	}
	if res, err = onairctl(t, b, "", "events"); err != nil || !strings.Contains(res, "v2 written to slot b") || !strings.Contains(res, "refused or failed") {
		t.Errorf("events: %v\n%s", err, res)
	}
	b.stop(t, 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	rx.stop(t, 5*time.Second)
	noGap(t, out)

	// The reboot: the bootloader takes a try and boots b.
	slot, err := boot.Boot()
	if err != nil || slot != update.SlotB {
		t.Fatalf("boot: %s, %v; want slot b", slot, err)
	}
	port, _, _ = independentReceiver(t)
	b = startBox(t, boxOpts{url: fmt.Sprintf("srt://127.0.0.1:%d?latency=200", port), twins: true, gop: 30, extra: cfg})
	st := b.waitFor(t, 60*time.Second, "the trial slot marked good", func(st api.Status) bool {
		return st.Update != nil && st.Update.State == api.UpdateGood && st.Update.Slot == "b"
	})
	t.Logf("update: %+v", *st.Update)
	if bs, err = boot.State(); err != nil || !bs.GoodB || bs.Trial != "" || bs.Next() != update.SlotB {
		t.Errorf("boot state %+v, %v; want b good and the default", bs, err)
	}
}

func mustPriv(t *testing.T, path string) ed25519.PrivateKey {
	t.Helper()
	k, err := update.ReadPrivateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
