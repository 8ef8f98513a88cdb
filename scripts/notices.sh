#!/usr/bin/env bash
# notices.sh BASE.tar prints the image's THIRD-PARTY-NOTICES
# (/usr/share/doc/onair/THIRD-PARTY-NOTICES): onair's own licence, what
# onair-av links (FFmpeg and libx264 as built by Debian, GPL), the written
# source offer that distributing onair-av requires, the Debian packages the
# image ships (from BASE.tar's dpkg status) and the licence of every Go module
# linked into the shipped binaries (go list -deps; the module cache's LICENSE
# texts, which the MIT/BSD licences require reproducing). Run by image.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:?usage: notices.sh BASE.tar}
export GOFLAGS=-mod=mod

# licence_name FILE guesses the licence of a licence text, for the summary
# line only: the text itself follows.
licence_name() {
  local f=$1
  if grep -q 'Apache License' "$f"; then echo Apache-2.0
  elif grep -q 'Mozilla Public License' "$f"; then echo MPL-2.0
  elif grep -q 'Permission is hereby granted, free of charge' "$f"; then echo MIT
  elif grep -q 'Permission to use, copy, modify, and/or distribute' "$f"; then echo ISC
  elif grep -q 'Neither the name' "$f"; then echo BSD-3-Clause
  elif grep -q 'Redistribution and use in source and binary forms' "$f"; then echo BSD-2-Clause
  else echo "see text"
  fi
}

cat <<'EOF'
THIRD-PARTY NOTICES of the onair box image
==========================================

onair (onaird, onairctl, onair-av) is licensed under the Apache License,
Version 2.0: /usr/share/doc/onair/LICENSE.

1. FFmpeg and x264, linked by onair-av
--------------------------------------

onair-av (/usr/bin/onair-av) links dynamically against FFmpeg 5.1's libraries
(libavcodec, libavformat, libavfilter, libavdevice, libswscale,
libswresample, libavutil) as built by Debian 12, and through libavcodec
against libx264 (x264, GPL-2.0-or-later). Debian builds FFmpeg with
--enable-gpl, so these FFmpeg libraries are under the GNU General Public
License, version 2 or later (FFmpeg's own code is LGPL-2.1-or-later; the
GPL applies to the build as a whole). Their licences and copyright notices are
in /usr/share/doc/libavcodec59/copyright, /usr/share/doc/libx264-164/copyright
and beside them; the GPL's text is /usr/share/common-licenses/GPL-2 (and
GPL-3), the LGPL's /usr/share/common-licenses/LGPL-2.1.

onair-av, as distributed in this image together with these libraries, is
distributed under the terms of the GNU General Public License, version 3
(Apache-2.0 code may be combined with GPL-3.0 code; FFmpeg and x264 are
"version 2 or later"). onaird and onairctl do not link FFmpeg or x264: they
run onair-av as a separate program.

2. Written offer of source code
-------------------------------

For at least three years from the date on which you received this product,
and for as long as we offer spare parts or support for it, we offer to give
anyone who asks, for a charge no more than our cost of physically performing
the distribution, a complete machine-readable copy of the corresponding
source code of every program in this image licensed under the GNU GPL or
LGPL, including FFmpeg, x264 and onair-av, together with the scripts used to
control their compilation and installation, on a medium customarily used for
software interchange. The exact versions are the Debian source packages
listed in section 3 and the onair source tree of the version in
/usr/share/doc/onair/VERSION (`onaird -version`).

Write to: the onair project, licensing <address to be set by the
distributor before the first box ships>, naming this product and the
version above.

3. Debian packages in this image
--------------------------------

Each package's licence and copyright notice is in
/usr/share/doc/PACKAGE/copyright. Package, version, source package:

EOF
{ tar -xOf "$base" ./var/lib/dpkg/status 2>/dev/null || tar -xOf "$base" var/lib/dpkg/status; } | awk '
  /^Package: /{p=$2; v=""; s=$2}
  /^Source: /{s=$2}
  /^Version: /{v=$2}
  /^$/{ if (p != "") printf "  %-36s %-32s %s\n", p, v, s; p="" }
  END{ if (p != "") printf "  %-36s %-32s %s\n", p, v, s }' | sort

cat <<'EOF'

4. Go modules linked into onaird, onairctl and onair-av
-------------------------------------------------------

Module, version, licence; each licence's full text follows the list.

EOF
# One line per linked package: module path, version, module dir, package dir.
pkgs=$(go list -deps -f '{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}} {{.Dir}} {{$.Dir}}{{end}}{{end}}' \
  ./cmd/onaird ./cmd/onairctl ./cmd/onair-av | sort -u)
[ -n "$pkgs" ] || { echo "notices: go list found no modules" >&2; exit 1; }

# header_licence PKGDIR... prints the licence comment at the top of the first
# source file that carries one, for modules that ship no licence file (their
# authors put it in each file's header).
header_licence() {
  local d f
  for d in "$@"; do
    for f in "$d"/*.go; do
      case $f in *_test.go) continue ;; esac
      if head -5 "$f" | grep -q 'Copyright'; then
        awk '/^\/\//{sub(/^\/\/ ?/, ""); print; next} {exit}' "$f"
        return 0
      fi
    done
  done
  return 1
}

# The Go standard library and runtime are linked into every binary.
goroot=$(go env GOROOT)
printf '  %-48s %-36s %s\n' "Go standard library" "$(go env GOVERSION)" "$(licence_name "$goroot/LICENSE")"
texts=("Go-standard-library $(go env GOVERSION) $goroot/LICENSE")
while read -r path version dir; do
  lic=$(find "$dir" -maxdepth 1 -type f \( -iname 'LICENSE*' -o -iname 'LICENCE*' -o -iname 'COPYING*' \) | sort | head -1)
  if [ -n "$lic" ]; then
    printf '  %-48s %-36s %s\n' "$path" "$version" "$(licence_name "$lic")"
    texts+=("$path $version $lic")
    continue
  fi
  mapfile -t pdirs < <(awk -v m="$path" '$1 == m {print $4}' <<<"$pkgs")
  hdr=$(mktemp)
  if ! header_licence "${pdirs[@]}" >"$hdr"; then
    echo "notices: $path $version has no licence file and no licence header" >&2
    exit 1
  fi
  printf '  %-48s %-36s %s\n' "$path" "$version" "$(licence_name "$hdr") (from its source files' header)"
  texts+=("$path $version $hdr")
done < <(awk '{print $1, $2, $3}' <<<"$pkgs" | sort -u)

for t in "${texts[@]}"; do
  read -r path version lic <<<"$t"
  printf '\n---- %s %s ----\n\n' "$path" "$version"
  cat "$lic"
  case $lic in /tmp/*) rm -f "$lic"; continue ;; esac
  notice=$(find "$(dirname "$lic")" -maxdepth 1 -type f -iname 'NOTICE*' | head -1)
  if [ -n "$notice" ]; then
    printf '\n---- %s NOTICE ----\n\n' "$path"
    cat "$notice"
  fi
done
