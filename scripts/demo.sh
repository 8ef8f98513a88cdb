#!/usr/bin/env bash
# demo.sh — `make run`: starts a local studio receiver (onair-ingest) and the
# box (onaird with configs/demo.yaml: test pattern, tone, twin encoders), and
# stops both cleanly on Ctrl-C, leaving a playable out/received.ts.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p out /tmp/onair-demo
rm -f out/received.ts out/report.json

bin/onair-ingest -listen 127.0.0.1:9000 -out out/received.ts -report out/report.json -fps 30 &
INGEST=$!
bin/onaird -config configs/demo.yaml &
ONAIRD=$!

stop() {
  trap - INT TERM
  echo; echo "stopping onaird (pid $ONAIRD), then the receiver (pid $INGEST)…"
  kill -TERM "$ONAIRD" 2>/dev/null || true
  wait "$ONAIRD" 2>/dev/null || true
  sleep 1 # let the receiver take the SRT tail
  kill -TERM "$INGEST" 2>/dev/null || true
  wait "$INGEST" 2>/dev/null || true
  echo "recording: $(pwd)/out/received.ts   report: $(pwd)/out/report.json"
  echo "play it:   ffplay out/received.ts    check it: ffprobe out/received.ts"
  exit 0
}
trap stop INT TERM

sleep 2
cat <<MSG

  onair demo is on air.
    status (JSON):  http://127.0.0.1:8080/api/status
    status (CLI):   bin/onairctl --socket /tmp/onair-demo/onaird.sock status
    failover:       bin/onairctl --socket /tmp/onair-demo/onaird.sock failover video
    recording:      $(pwd)/out/received.ts (written by onair-ingest on srt://127.0.0.1:9000)
  Press Ctrl-C to stop.

MSG
wait "$ONAIRD" || true
stop
