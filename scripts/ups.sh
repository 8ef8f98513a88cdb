#!/usr/bin/env bash
# ups.sh — the demo's UPS: NUT's real upsd with the dummy-ups driver, run from
# a directory of its own (no /etc/nut, no system service), so the box's power
# state is live in `make run`.
#
#   scripts/ups.sh up            start dummy-ups and upsd (UPS "dummy" on 127.0.0.1:$UPS_PORT)
#   scripts/ups.sh set OB        pull the mains (on battery); "OB LB": low battery; OL: mains back
#   scripts/ups.sh set OB 40 300 the same with battery.charge 40 % and battery.runtime 300 s
#   scripts/ups.sh status        what upsd says
#   scripts/ups.sh down          stop both and remove the directory
#
# UPS_DIR (default /tmp/onair-demo/ups) holds the config, the state and the
# PIDs; UPS_NETNS runs upsd in a network namespace (the bonded demo's box).
# The driver re-reads its .dev file only when the file's mtime (in whole
# seconds) changes (NUT 2.8 dummy-once mode), so set gives every rewrite a new
# mtime of its own.
set -euo pipefail
D=${UPS_DIR:-/tmp/onair-demo/ups}
PORT=${UPS_PORT:-34930}
NS=${UPS_NETNS:-}
in_ns() { if [ -n "$NS" ]; then ip netns exec "$NS" "$@"; else "$@"; fi; }

write_dev() { # status charge runtime
  local n
  n=$(($(date +%s) + 1))
  if [ -f "$D/mtime" ]; then n=$(($(cat "$D/mtime") + 1 > n ? $(cat "$D/mtime") + 1 : n)); fi
  printf 'ups.mfr: onair\nups.model: demo UPS\nups.status: %s\nbattery.charge: %s\nbattery.runtime: %s\n' "$1" "$2" "$3" >"$D/etc/dummy.tmp"
  touch -d "@$n" "$D/etc/dummy.tmp"
  echo "$n" >"$D/mtime"
  mv "$D/etc/dummy.tmp" "$D/etc/dummy.dev"
}

case "${1:-}" in
up)
  if [ -f "$D/upsd.pid" ] && kill -0 "$(cat "$D/upsd.pid")" 2>/dev/null; then
    echo "ups: already up ($D)"; exit 0
  fi
  if [ ! -x /lib/nut/upsd ] || [ ! -x /lib/nut/dummy-ups ]; then
    echo "ups: /lib/nut/upsd or dummy-ups missing (scripts/deps.sh installs nut-server)" >&2; exit 1
  fi
  rm -rf "$D"
  mkdir -p "$D/etc" "$D/state"
  chmod 700 "$D/state"
  printf '[dummy]\n  driver = dummy-ups\n  port = dummy.dev\n  pollinterval = 1\n  desc = "onair demo UPS"\n' >"$D/etc/ups.conf"
  printf 'LISTEN 127.0.0.1 %s\n' "$PORT" >"$D/etc/upsd.conf"
  : >"$D/etc/upsd.users"
  chmod 600 "$D/etc/upsd.users"
  write_dev OL 100 3600
  export NUT_CONFPATH=$D/etc NUT_STATEPATH=$D/state
  # -u root: without it both drop to user nut, who cannot enter $D/state.
  setsid /lib/nut/dummy-ups -a dummy -u root -F >"$D/driver.log" 2>&1 &
  echo $! >"$D/driver.pid"
  for _ in $(seq 100); do [ -S "$D/state/dummy-ups-dummy" ] && break; sleep 0.05; done
  # ip netns exec execs upsd itself: the PID is upsd's.
  if [ -n "$NS" ]; then
    setsid ip netns exec "$NS" /lib/nut/upsd -u root -F >"$D/upsd.log" 2>&1 &
  else
    setsid /lib/nut/upsd -u root -F >"$D/upsd.log" 2>&1 &
  fi
  echo $! >"$D/upsd.pid"
  echo "ups: dummy@127.0.0.1:$PORT (${NS:-host}) starting: OL, charge 100 %"
  ;;
set)
  [ -d "$D/etc" ] || { echo "ups: not up (scripts/ups.sh up)" >&2; exit 1; }
  st=${2:?"set STATUS [CHARGE RUNTIME], e.g. set OB or set 'OB LB' 15 60"}
  charge=${3:-}
  runtime=${4:-}
  case "$st" in
  OL*) charge=${charge:-100} runtime=${runtime:-3600} ;;
  *LB*) charge=${charge:-10} runtime=${runtime:-60} ;;
  *) charge=${charge:-80} runtime=${runtime:-1800} ;;
  esac
  write_dev "$st" "$charge" "$runtime"
  echo "ups: $st, charge $charge %, runtime $runtime s (upsd shows it within about a second)"
  ;;
status)
  in_ns upsc "dummy@127.0.0.1:$PORT" 2>&1 | grep -E '^(ups.status|battery)' || true
  ;;
down)
  for p in upsd driver; do
    if [ -f "$D/$p.pid" ]; then
      pid=$(cat "$D/$p.pid")
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$D"
  ;;
*)
  sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
  ;;
esac
