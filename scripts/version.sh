#!/bin/sh
# The build's version, as update.ParseVersion orders it (update/version.go):
# git describe of the last v tag (v1.4.2, v1.4.2-7-g3f2a9c1, …-dirty), or,
# before the first tag, the same shape from v0.0.0: v0.0.0-COMMITS-gHASH
# (COMMITS = commits in HEAD's history: each new commit on main is newer). A
# bare hash (git describe --always) would have no place in the order, and a
# box refuses a bundle it cannot order. "dev" outside a git checkout.
set -eu
git rev-parse --git-dir >/dev/null 2>&1 || { echo dev; exit 0; }
git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null && exit 0
dirty=
git update-index -q --refresh >/dev/null 2>&1 || true
git diff-index --quiet HEAD -- 2>/dev/null || dirty=-dirty
echo "v0.0.0-$(git rev-list --count HEAD)-g$(git rev-parse --short HEAD)$dirty"
