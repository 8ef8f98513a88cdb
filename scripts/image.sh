#!/usr/bin/env bash
# image.sh builds the box's image (make image): a Debian 12 rootfs made with
# mmdebstrap from rootfs/packages.txt, the overlay rootfs/overlay, the onair
# binaries from bin/ and the third-party notices, then the partitions as files
# (mkfs.ext4 -d, mkfs.vfat + mcopy: no loop devices) and a GPT disk image
# assembled with dd. The disk boots by UEFI: GRUB (built from the image's own
# modules) on the EFI system partition with rootfs/grub's grub.cfg and
# onair-ab.cfg and a fresh environment block, the kernel and its initramfs in
# each root slot's /boot.
#
#   out/image/rootfs/       the root tree (booted by e2e/image_test.go in systemd-nspawn)
#   out/image/rootfs.ext4   one root slot's file system (what an update writes)
#   out/image/data.ext4     the data partition as a new box gets it
#   out/image/esp.vfat      the EFI system partition as a new box gets it
#   out/image/onair.img     the whole disk: ESP, root A, root B (empty), data (rootfs/README.md)
#
# Cached and idempotent: the Debian base is a tarball keyed by a hash of the
# package list and the code that builds it (IMAGE_CACHE/base-KEY.tar, outside
# the tree so that make clean and a fresh clone, as CI's, reuse it), so
# only a change there runs mmdebstrap again; the rest is rebuilt only when an
# input changed (overlay, binaries, notices, this script, the seeds below),
# every output is written beside its final name and renamed, and the stamp is
# written last: an interrupted run is redone by the next.
#
# Environment: IMAGE_OUT (out/image), IMAGE_CACHE (/var/cache/onair/image), BIN (bin), ROOT_SIZE_MB (1536 per slot),
# DATA_SIZE_MB (512), ESP_SIZE_MB (128), ONAIR_CONFIG (a config to seed the data partition with,
# default the image's /usr/share/onair/onair.yaml), ONAIR_SSH_KEYS (an
# authorized_keys file for root; without one nobody logs in over SSH),
# IMAGE_REFRESH=1 (make a new base: Debian's updates since the cached one).
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$self")/.."

OUT=${IMAGE_OUT:-out/image}
CACHE=${IMAGE_CACHE:-/var/cache/onair/image}
BIN=${BIN:-bin}
ROOT_SIZE_MB=${ROOT_SIZE_MB:-1536}
DATA_SIZE_MB=${DATA_SIZE_MB:-512}
ESP_SIZE_MB=${ESP_SIZE_MB:-128}
SUITE=bookworm
BINARIES=(onaird onairctl onair-av)

say() { printf 'image: %s\n' "$*" >&2; }
die() {
  say "$*"
  exit 1
}

[ "$(id -u)" -eq 0 ] || die "needs root (mmdebstrap's root mode, root-owned files in the rootfs and its ext4 image)"
for t in mmdebstrap mkfs.ext4 mkfs.vfat mcopy grub-editenv sfdisk go; do
  command -v "$t" >/dev/null || die "$t missing: run scripts/deps.sh"
done
for b in "${BINARIES[@]}"; do
  [ -x "$BIN/$b" ] || die "$BIN/$b missing: run make build"
done
[ -z "${ONAIR_CONFIG:-}" ] || [ -f "$ONAIR_CONFIG" ] || die "ONAIR_CONFIG=$ONAIR_CONFIG: no such file"
[ -z "${ONAIR_SSH_KEYS:-}" ] || [ -f "$ONAIR_SSH_KEYS" ] || die "ONAIR_SSH_KEYS=$ONAIR_SSH_KEYS: no such file"

# packages prints rootfs/packages.txt as mmdebstrap's --include list.
packages() { grep -v -e '^[[:space:]]*#' -e '^[[:space:]]*$' rootfs/packages.txt | paste -sd, -; }

# base_build DEST.tar makes the Debian base. Its code is part of the cache key.
# Documentation goes, except each package's copyright file (the licences of
# what the image ships). The host keys Debian makes at install are removed:
# every box flashed from the image would share them (data-init makes its own).
base_build() {
  mmdebstrap --mode=root --variant=minbase --include="$(packages)" \
    --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --customize-hook='rm -f "$1"/etc/ssh/ssh_host_*' \
    "$SUITE" "$1"
}

sha() { sha256sum | cut -c1-16; }
human() { numfmt --to=iec-i --suffix=B "$1"; }

t0=$(date +%s)
mkdir -p "$OUT" "$CACHE"

# 1. The Debian base, cached.
key=$({
  cat rootfs/packages.txt
  declare -f base_build packages
  echo "$SUITE"
} | sha)
base="$CACHE/base-$key.tar"
if [ "${IMAGE_REFRESH:-}" = 1 ]; then rm -f "$base"; fi
if [ -f "$base" ]; then
  say "[1/6] base: cached $base ($(human "$(stat -c %s "$base")"))"
else
  say "[1/6] base: mmdebstrap $SUITE, minbase + rootfs/packages.txt (about 1-2 min cold) -> $base"
  rm -f "$CACHE"/*.tmp.tar
  base_build "$base.tmp.tar"
  mv "$base.tmp.tar" "$base"
  find "$CACHE" -name 'base-*.tar' ! -name "base-$key.tar" -delete # older bases
  say "[1/6] base: $(human "$(stat -c %s "$base")") in $(($(date +%s) - t0)) s"
fi

# The notices are generated every run (a second): their text is an input.
notices=$(mktemp)
trap 'rm -f "$notices"' EXIT
bash scripts/notices.sh "$base" >"$notices"

# 2-5 run only when an input changed.
stamp=$({
  echo "$key $ROOT_SIZE_MB $DATA_SIZE_MB $ESP_SIZE_MB"
  cat "$self" "$notices" LICENSE README.md rootfs/README.md rootfs/grub/*
  (cd rootfs/overlay && find . \( -type f -o -type l \) -printf '%p %m %l\n' | sort && find . -type f -print0 | sort -z | xargs -0 cat)
  for b in "${BINARIES[@]}"; do sha256sum <"$BIN/$b"; done
  [ -z "${ONAIR_CONFIG:-}" ] || cat "$ONAIR_CONFIG"
  [ -z "${ONAIR_SSH_KEYS:-}" ] || cat "$ONAIR_SSH_KEYS"
} | sha)

summary() {
  local img="$OUT/onair.img"
  say "rootfs:    $OUT/rootfs ($(du -sh --apparent-size "$OUT/rootfs" | cut -f1))"
  say "root slot: $OUT/rootfs.ext4 ($(human "$(stat -c %s "$OUT/rootfs.ext4")"))"
  say "data:      $OUT/data.ext4 ($(human "$(stat -c %s "$OUT/data.ext4")"))"
  say "ESP:       $OUT/esp.vfat ($(human "$(stat -c %s "$OUT/esp.vfat")"); kernel $(cat "$OUT/kernel-version"))"
  say "disk:      $img ($(human "$(stat -c %s "$img")"), $(du -h "$img" | cut -f1) on disk; write it with dd to the box's disk)"
  sfdisk -l -o Device,Start,Sectors,Size,Name "$img" 2>/dev/null | sed -n '/^Device/,$p' | sed 's/^/image:   /' >&2
  printf '%s\n' "$img"
}

if [ -f "$OUT/stamp" ] && [ "$(cat "$OUT/stamp")" = "$stamp" ] && [ -d "$OUT/rootfs" ] && [ -f "$OUT/onair.img" ] && [ -f "$OUT/esp.vfat" ]; then
  say "up to date (stamp $stamp): nothing rebuilt"
  summary
  exit 0
fi
rm -f "$OUT/stamp"

# 2. The root tree: base + overlay + binaries + notices.
say "[2/6] rootfs: base + rootfs/overlay + ${BINARIES[*]} -> $OUT/rootfs"
R="$OUT/rootfs.new"
rm -rf "$R"
mkdir -p "$R"
tar -C "$R" --numeric-owner -xpf "$base"
cp -a --no-preserve=ownership rootfs/overlay/. "$R"/
# NUT's files are read by upsd as user nut: the image's nut (chroot: the
# host's nut, if any, has another gid).
chroot "$R" chown root:nut /etc/nut/nut.conf /etc/nut/upsd.conf /etc/nut/ups.conf
chmod 0640 "$R"/etc/nut/nut.conf "$R"/etc/nut/upsd.conf "$R"/etc/nut/ups.conf
for b in "${BINARIES[@]}"; do install -m 0755 "$BIN/$b" "$R/usr/bin/$b"; done
install -d "$R/usr/share/doc/onair"
install -m 0644 "$notices" "$R/usr/share/doc/onair/THIRD-PARTY-NOTICES"
install -m 0644 LICENSE "$R/usr/share/doc/onair/LICENSE"
install -m 0644 README.md "$R/usr/share/doc/onair/README.md"
install -m 0644 rootfs/README.md "$R/usr/share/doc/onair/IMAGE.md"
"$BIN/onaird" -version >"$R/usr/share/doc/onair/VERSION"
# The config is the data partition's: /etc/onair is a link to it.
install -d "$R/data" "$R/var/lib/onair" "$R/var/log/journal"
rm -rf "$R/etc/onair"
ln -s /var/lib/onair "$R/etc/onair"
# root has no password (keys only over SSH; no console login by password).
sed -i 's/^root:[^:]*:/root:*:/' "$R/etc/shadow"
# Each box makes its own machine id at first boot.
: >"$R/etc/machine-id"
echo onair >"$R/etc/hostname"
systemctl --root="$R" --quiet enable onaird.service onair-data.service data.mount \
  var-lib-onair.mount var-log-journal.mount boot-efi.mount onair-boot.service \
  systemd-timesyncd.service ssh.service
# The kernel and its initramfs at the fixed names onair-ab.cfg boots
# (/boot/vmlinuz, /boot/initrd.img in the slot): each slot carries its own.
kvers=("$R"/boot/vmlinuz-*)
[ ${#kvers[@]} -eq 1 ] && [ -f "${kvers[0]}" ] || die "want exactly one kernel in the image's /boot, found: ${kvers[*]}"
kver=${kvers[0]##*/vmlinuz-}
[ -f "$R/boot/initrd.img-$kver" ] || die "no initramfs for kernel $kver"
ln -sfn "vmlinuz-$kver" "$R/boot/vmlinuz"
ln -sfn "initrd.img-$kver" "$R/boot/initrd.img"
rm -f "$R/vmlinuz" "$R/vmlinuz.old" "$R/initrd.img" "$R/initrd.img.old"
# The boot state (update.grubenv, /boot/grub/grubenv) is the ESP's, mounted
# at /boot/efi by boot-efi.mount.
install -d "$R/boot/efi"
rm -rf "$R/boot/grub"
ln -s efi/grub "$R/boot/grub"
# onaird is the power policy (a clean end of the stream, then power-off):
# upsmon must not power the box off on its own.
systemctl --root="$R" --quiet mask nut-monitor.service
# Checks: onair-av finds every library it links; the default config is valid.
if missing=$(chroot "$R" ldd /usr/bin/onair-av | grep 'not found'); then
  die "onair-av needs libraries the image lacks (add them to rootfs/packages.txt):
$missing"
fi
chroot "$R" /usr/bin/onaird -config /usr/share/onair/onair.yaml -check >/dev/null ||
  die "the image's default config does not validate"
rm -rf "$OUT/rootfs"
mv "$R" "$OUT/rootfs"
echo "$kver" >"$OUT/kernel-version"

# 3. The data partition as a new box gets it: the stored config, its dirs.
say "[3/6] data: the stored config and the dirs for secrets, recordings, the journal"
D="$OUT/data.new"
rm -rf "$D"
install -d -m 0750 "$D/onair" "$D/onair/recordings"
install -d -m 0700 "$D/onair/auth" "$D/onair/ssh"
install -d -m 2755 "$D/journal"
install -m 0600 "${ONAIR_CONFIG:-rootfs/overlay/usr/share/onair/onair.yaml}" "$D/onair/onair.yaml"
if [ -n "${ONAIR_SSH_KEYS:-}" ]; then
  install -m 0600 "$ONAIR_SSH_KEYS" "$D/onair/ssh/authorized_keys"
fi

# 4. The partitions as files (no loop devices).
say "[4/6] partitions: mkfs.ext4 -d (root slot ${ROOT_SIZE_MB} MiB, data ${DATA_SIZE_MB} MiB)"
rm -f "$OUT"/*.ext4.new
truncate -s "${ROOT_SIZE_MB}M" "$OUT/rootfs.ext4.new"
truncate -s "${DATA_SIZE_MB}M" "$OUT/data.ext4.new"
mkfs.ext4 -q -F -L onair-root -E root_owner=0:0 -d "$OUT/rootfs" "$OUT/rootfs.ext4.new" ||
  die "the rootfs does not fit in ROOT_SIZE_MB=$ROOT_SIZE_MB ($(du -sm "$OUT/rootfs" | cut -f1) MiB)"
mkfs.ext4 -q -F -L onair-data -E root_owner=0:0 -d "$D" "$OUT/data.ext4.new"
rm -rf "$D"
for f in "$OUT/rootfs.ext4.new" "$OUT/data.ext4.new"; do
  e2fsck -fn "$f" >/dev/null || die "e2fsck: $f is not clean"
done
mv "$OUT/rootfs.ext4.new" "$OUT/rootfs.ext4"
mv "$OUT/data.ext4.new" "$OUT/data.ext4"

# 5. The EFI system partition: GRUB at the firmware's fallback path (no boot
# entry in NVRAM needed), built from the image's own GRUB with every module
# the boot uses built in and its prefix /grub on this partition;
# rootfs/grub's grub.cfg and onair-ab.cfg; the environment block of a fresh
# box (onair-ab.cfg's header): slot a the default and good, no trial.
say "[5/6] ESP: GRUB (x86_64-efi) at /EFI/BOOT/BOOTX64.EFI, /grub/{grub.cfg,onair-ab.cfg,grubenv} (${ESP_SIZE_MB} MiB vfat)"
E=$(mktemp -d)
trap 'rm -f "$notices"; rm -rf "$E"' EXIT
chroot "$OUT/rootfs" grub-mkimage -O x86_64-efi -p /grub -o /tmp/BOOTX64.EFI \
  part_gpt fat ext2 normal configfile linux loadenv test echo search search_label \
  serial terminal efi_gop all_video sleep ls cat halt reboot
mv "$OUT/rootfs/tmp/BOOTX64.EFI" "$E/BOOTX64.EFI"
grub-editenv "$E/grubenv" create
grub-editenv "$E/grubenv" set onair_default=a onair_trial= onair_tries=0 onair_good_a=1 onair_good_b=0 onair_booted=a
rm -f "$OUT/esp.vfat.new"
truncate -s "${ESP_SIZE_MB}M" "$OUT/esp.vfat.new"
mkfs.vfat -F 32 -n ONAIR-ESP "$OUT/esp.vfat.new" >/dev/null
export MTOOLS_SKIP_CHECK=1
mmd -i "$OUT/esp.vfat.new" ::/EFI ::/EFI/BOOT ::/grub
mcopy -i "$OUT/esp.vfat.new" "$E/BOOTX64.EFI" ::/EFI/BOOT/BOOTX64.EFI
mcopy -i "$OUT/esp.vfat.new" rootfs/grub/grub.cfg rootfs/grub/onair-ab.cfg "$E/grubenv" ::/grub/
mv "$OUT/esp.vfat.new" "$OUT/esp.vfat"

# 6. The disk: GPT, ESP, root A, root B, data; each file dd'd at its offset
# (onair-ab.cfg boots root A from gpt2 and root B from gpt3).
say "[6/6] disk: GPT onair-esp, onair-root-a, onair-root-b (empty: the updater writes it), onair-data"
img="$OUT/onair.img.new"
mib=2048 # sectors
es=$((ESP_SIZE_MB * mib))
rs=$((ROOT_SIZE_MB * mib))
ds=$((DATA_SIZE_MB * mib))
e=$mib
a=$((e + es))
b=$((a + rs))
d=$((b + rs))
rm -f "$img"
truncate -s $(((d + ds + mib) * 512)) "$img"
linux=0FC63DAF-8483-4772-8E79-3D69D8477DE4 # "Linux filesystem": no arch-specific root type, so no gpt-auto surprises
esp=C12A7328-F81F-11D2-BA4B-00A0C93EC93B   # "EFI System"
sfdisk --quiet "$img" <<EOF
label: gpt
unit: sectors
start=$e, size=$es, type=$esp, name=onair-esp
start=$a, size=$rs, type=$linux, name=onair-root-a
start=$b, size=$rs, type=$linux, name=onair-root-b
start=$d, size=$ds, type=$linux, name=onair-data
EOF
dd if="$OUT/esp.vfat" of="$img" bs=1M seek=$((e / mib)) conv=notrunc,sparse status=none
dd if="$OUT/rootfs.ext4" of="$img" bs=1M seek=$((a / mib)) conv=notrunc,sparse status=none
dd if="$OUT/data.ext4" of="$img" bs=1M seek=$((d / mib)) conv=notrunc,sparse status=none
mv "$img" "$OUT/onair.img"

echo "$stamp" >"$OUT/stamp"
say "built in $(($(date +%s) - t0)) s"
summary
