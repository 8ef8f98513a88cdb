#!/usr/bin/env bash
# deps.sh installs everything onair needs to build, run the demo and run every test
# on a Debian 12 machine. Idempotent: when everything is present it returns in well
# under a second without touching apt.
set -euo pipefail

# Debian packages, by what needs them:
#   build (cgo onair-av):   pkg-config gcc libav*-dev libx264-dev
#   demo and tests:         ffmpeg (ffmpeg/ffprobe CLIs), srt-tools (srt-live-transmit),
#                           procps (pgrep/ps), util-linux (setsid)
#   netns labs and tests:   iproute2 (ip netns/link/addr/route/rule, tc), nftables (nft loss and cuts)
#   audio device tests:     pulseaudio (userspace server with null sinks), pulseaudio-utils (pactl),
#                           libasound2-plugins (ALSA "pulse" PCM type; internal/pulselab)
#   power tests and demo:   nut-server (upsd, dummy-ups), nut-client (upsc, for people),
#                           dbus (dbus-daemon: a private system bus with a test logind)
#   maintenance tunnel:     openssh-server (sshd: internal/sshlab runs its own), openssh-client
#                           (ssh, ssh-keygen: keys and the through-the-tunnel login)
#   web page browser test:  chromium (headless, driven by chromedp in web/page)
#   A/B update tests:       grub-common (grub-editenv: update.GrubEnv against the real tool)
#   the box image:          mmdebstrap (the Debian rootfs), e2fsprogs (mkfs.ext4 -d: partitions as
#                           files), fdisk (sfdisk: the GPT), systemd-container (systemd-nspawn:
#                           make integration boots the image), dosfstools + mtools (mkfs.vfat,
#                           mcopy: the EFI system partition as a file), qemu-system-x86 + ovmf
#                           (ONAIR_QEMU=1 make integration boots the disk image in a VM with
#                           UEFI firmware; installed only then)
PKGS=(
  pkg-config gcc make
  libavcodec-dev libavformat-dev libavfilter-dev libavdevice-dev
  libswscale-dev libswresample-dev libavutil-dev libx264-dev
  ffmpeg srt-tools procps util-linux
  iproute2 nftables
  pulseaudio pulseaudio-utils libasound2-plugins
  nut-server nut-client dbus
  openssh-server openssh-client
  chromium
  grub-common
  mmdebstrap e2fsprogs fdisk systemd-container
  dosfstools mtools
)
# The QEMU boot of the disk image runs only with ONAIR_QEMU=1 (make
# integration): its VM and firmware are installed only then, so make test
# does not pay for them.
if [ "${ONAIR_QEMU:-}" = 1 ]; then
  PKGS+=(qemu-system-x86 ovmf)
fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v go >/dev/null 2>&1 && [ ! -x /usr/local/go/bin/go ]; then
  echo "deps: Go is not installed (expected /usr/local/go); install Go >= 1.23 first" >&2
  exit 1
fi
