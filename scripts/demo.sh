#!/usr/bin/env bash
# demo.sh — `make run`: the box in demo mode with every part that exists.
#
# Bonded (as root, with ip, tc and nft): scripts/lab.sh builds the lab (LAB=demo:
# namespaces box-demo and studio-demo, uplinks wired, cell1, cell2 shaped like a
# venue: 20, 5 and 3 Mbit/s); onair-ingest -srtla :5000 records in the studio
# namespace; onaird runs in the box namespace with configs/demo-bonded.yaml
# (cell2 a capped backup); bin/nsforward puts the box's loopback-only status page
# on the host's 127.0.0.1:8080. Ctrl-C stops onaird, then the receiver, then the
# forwarder, and tears the lab down (nothing left: ip netns list, /etc/netns).
#
# Plain (not root, a tool missing, the lab cannot be built, or ONAIR_DEMO=plain):
# onair-ingest on srt://127.0.0.1:9000 and onaird with configs/demo.yaml.
#
# Either way the box's UPS is NUT's real upsd with the dummy-ups driver
# (scripts/ups.sh, in the box namespace when bonded): scripts/ups.sh set OB pulls
# the mains, set "OB LB" is a low battery (the stream ends cleanly; a demo never
# powers off), set OL brings the mains back.
#
# Either way the recording is out/received.ts (playable) and the receiver's
# report out/report.json. The processes run in sessions of their own (setsid), so
# Ctrl-C reaches only this script, which stops them in order.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p out /tmp/onair-demo /tmp/onair-demo/recordings
# The demo's CPU temperature (configs/demo*.yaml thermal.root): a thermal zone
# as sysfs has it, so heat can be shown on a machine without sensors.
mkdir -p /tmp/onair-demo/thermal/thermal_zone0
echo cpu-thermal >/tmp/onair-demo/thermal/thermal_zone0/type
echo 52000 >/tmp/onair-demo/thermal/thermal_zone0/temp
rm -f out/received.ts out/report.json

export LAB=${LAB:-demo}
BOX=box-$LAB
STUDIO=studio-$LAB
SOCK=/tmp/onair-demo/onaird.sock
CTL="bin/onairctl --socket $SOCK"
LABSH="LAB=$LAB scripts/lab.sh"
# The bonded receiver takes what configs/demo-bonded.yaml's output.url says
# (internal/config TestShippedBondedDemoConfigIsValid checks they agree).
SRTLA_FLAGS=(-srtla :5000 -passphrase demo-passphrase-0123 -streamid demo -latency 1500ms -peer-idle-timeout 30s)
LATENCY_S=1.5

ONAIRD="" INGEST="" FORWARD="" LAB_UP="" UPS_UP=""
STOPPED=""
export UPS_DIR=/tmp/onair-demo/ups UPS_PORT=34930

# stop_pid PID NAME SECONDS: SIGTERM, wait up to SECONDS, then SIGKILL.
stop_pid() {
  local pid=$1 name=$2 secs=$3 i
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < secs * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "$name (pid $pid) still running after ${secs}s: killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

stop() {
  trap - INT TERM EXIT
  if [ -n "$STOPPED" ]; then return; fi
  STOPPED=1
  echo
  if [ -n "$ONAIRD" ]; then
    echo "stopping onaird (pid $ONAIRD)…"
    stop_pid "$ONAIRD" onaird 20
    sleep "${RX_TAIL:-1}" # let the receiver take the SRT tail (its latency)
  fi
  if [ -n "$INGEST" ]; then
    echo "stopping the receiver (pid $INGEST)…"
    stop_pid "$INGEST" onair-ingest 10
  fi
  stop_pid "$FORWARD" nsforward 5
  if [ -n "$UPS_UP" ]; then scripts/ups.sh down; fi
  if [ -n "$LAB_UP" ]; then
    scripts/lab.sh down
    if ip netns list | awk '{print $1}' | grep -qxF -e "$BOX" -e "$STUDIO" || [ -e "/etc/netns/$BOX" ]; then
      echo "the lab is still there: $LABSH down" >&2
    fi
  fi
  if [ -s out/received.ts ]; then
    echo "recording: $(pwd)/out/received.ts   report: $(pwd)/out/report.json"
    echo "play it:   ffplay out/received.ts    check it: ffprobe out/received.ts"
  else
    echo "no recording: out/received.ts is empty or missing (see the messages above)"
  fi
}

# why_not_bonded prints why the bonded demo cannot run here (nothing: it can).
why_not_bonded() {
  local t
  if [ "${ONAIR_DEMO:-}" = plain ]; then echo "ONAIR_DEMO=plain"; return; fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "not root: the lab needs network namespaces, tc and nft (sudo make run for the bonded demo)"; return
  fi
  for t in ip tc nft setsid; do
    if ! command -v "$t" >/dev/null; then echo "$t is missing (scripts/deps.sh installs it)"; return; fi
  done
  if [ ! -x bin/nsforward ]; then echo "bin/nsforward is missing (make run builds it)"; return; fi
}

# setup_token: the page's one-time setup token, or what to do instead.
setup_token() {
  $CTL setup-token 2>/dev/null || echo "none: a password is set ($CTL passwd sets a new one)"
}

# wait_api SECONDS: until onaird answers on its unix socket, or it exits.
wait_api() {
  local i
  for ((i = 0; i < $1 * 5; i++)); do
    kill -0 "$ONAIRD" 2>/dev/null || return 1
    if $CTL status >/dev/null 2>&1; then return 0; fi
    sleep 0.2
  done
  return 1
}

# ups_up [NETNS]: the demo's UPS, or a note why there is none.
ups_up() {
  if UPS_NETNS=${1:-} scripts/ups.sh up; then UPS_UP=1; else echo "make run: no UPS in this demo (see above)" >&2; fi
}

plain() {
  RX_TAIL=1
  ups_up
  setsid bin/onair-ingest -listen 127.0.0.1:9000 -out out/received.ts -report out/report.json -fps 30 &
  INGEST=$!
  setsid bin/onaird -config configs/demo.yaml &
  ONAIRD=$!
  trap stop INT TERM EXIT
  wait_api 15 || true
  cat <<MSG

  onair demo is on air (plain SRT, not bonded${1:+: $1}).
    web page:       http://127.0.0.1:8080/   (first time: setup with the token $(setup_token))
    status (CLI):   $CTL status
    failover:       $CTL failover video
    audio:          $CTL audio          (main 1 kHz, backup 440 Hz: both run all the time)
    force backup:   $CTL audio backup   (you hear 440 Hz; back: $CTL audio auto)
    power:          $CTL power
    pull the mains: scripts/ups.sh set OB        (on battery: the bitrate is capped; back: scripts/ups.sh set OL)
    low battery:    scripts/ups.sh set "OB LB"   (the stream ends cleanly; $CTL live goes back on air after OL)
    heat the CPU:   echo 86000 > /tmp/onair-demo/thermal/thermal_zone0/temp   (bitrate capped; cool: echo 60000 > …)
    stop / go live: $CTL stop --yes   /   $CTL live
    front panel:    $CTL panel        (press: $CTL panel press failover)
    events:         $CTL events --since 1h     (logs: $CTL logs -f)
    ISO recording:  /tmp/onair-demo/recordings (1 min segments; $CTL record stop / start)
    recording:      $(pwd)/out/received.ts (written by onair-ingest on srt://127.0.0.1:9000)
  Press Ctrl-C to stop.

MSG
}

bonded() {
  if ip netns list | awk '{print $1}' | grep -qxF -e "$BOX" -e "$STUDIO"; then
    echo "make run: the lab $BOX / $STUDIO exists already (another make run? if not: $LABSH down)" >&2
    exit 1
  fi
  if ! scripts/lab.sh up wired cell1 cell2; then
    return 1 # lab.sh removed what it made
  fi
  LAB_UP=1
  trap stop INT TERM EXIT
  # A venue: the wired line is fast, the modems are not; cell2 is metered.
  scripts/lab.sh shape wired 20000 && scripts/lab.sh shape cell1 5000 && scripts/lab.sh shape cell2 3000 || return 1
  RX_TAIL=$LATENCY_S
  ups_up "$BOX"
  setsid ip netns exec "$STUDIO" bin/onair-ingest "${SRTLA_FLAGS[@]}" \
    -out out/received.ts -report out/report.json -fps 30 &
  INGEST=$!
  setsid ip netns exec "$BOX" bin/onaird -config configs/demo-bonded.yaml &
  ONAIRD=$!
  setsid bin/nsforward -listen 127.0.0.1:8080 -netns "$BOX" -dial 127.0.0.1:8080 &
  FORWARD=$!
  local page="http://127.0.0.1:8080/   (JSON: http://127.0.0.1:8080/api/status)"
  wait_api 20 || true
  if ! kill -0 "$FORWARD" 2>/dev/null; then
    FORWARD=""
    page="not forwarded (is 127.0.0.1:8080 taken on the host?); inside: ip netns exec $BOX curl http://127.0.0.1:8080/api/status"
  fi
  cat <<MSG

  onair demo is on air, bonded over three emulated uplinks (lab $BOX → $STUDIO):
  wired 20 Mbit/s and cell1 5 Mbit/s share the load, cell2 3 Mbit/s is a backup
  capped at 500 MB; onair-ingest -srtla :5000 in $STUDIO records the stream.
    web page:       $page
                    (first time: setup with the token $(setup_token))
    status (CLI):   $CTL status
    uplinks:        $CTL uplinks
    cut a link:     $LABSH cut wired      (one link dies, nothing lost: watch uplinks,
                    and "missing" in out/report.json; back: $LABSH uncut wired)
    disable one:    $CTL uplink cell1 disable      (and: enable)
    bitrate:        $CTL bitrate 3000      (the adaptive bitrate's ceiling)
    failover:       $CTL failover video
    audio:          $CTL audio          (main 1 kHz, backup 440 Hz: both run all the time)
    force backup:   $CTL audio backup   (you hear 440 Hz; back: $CTL audio auto)
    power:          $CTL power
    pull the mains: scripts/ups.sh set OB        (on battery: the bitrate is capped; back: scripts/ups.sh set OL)
    low battery:    scripts/ups.sh set "OB LB"   (the stream ends cleanly; $CTL live goes back on air after OL)
    heat the CPU:   echo 86000 > /tmp/onair-demo/thermal/thermal_zone0/temp   (bitrate capped; cool: echo 60000 > …)
    stop / go live: $CTL stop --yes   /   $CTL live
    front panel:    $CTL panel        (press: $CTL panel press failover)
    events:         $CTL events --since 1h     (logs: $CTL logs -f)
    ISO recording:  /tmp/onair-demo/recordings (1 min segments; $CTL record stop / start)
    the lab:        $LABSH status
    recording:      $(pwd)/out/received.ts (report: out/report.json, rewritten every second)
  Press Ctrl-C to stop (onaird, then the receiver, then the lab).

MSG
}

why=$(why_not_bonded)
if [ -z "$why" ]; then
  if ! bonded; then
    why="the lab could not be built (see above)"
    stop >/dev/null
    ONAIRD="" INGEST="" FORWARD="" LAB_UP="" STOPPED=""
  fi
fi
if [ -n "$why" ]; then
  echo "make run: plain SRT demo, not bonded: $why" >&2
  plain "$why"
fi
wait "$ONAIRD" || true
stop
