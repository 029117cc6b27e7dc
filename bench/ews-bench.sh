#!/usr/bin/env bash
# bench/ews-bench.sh - EWS benchmarks (issue 17, item 4): a release Outpost
# on the embedded store, ATTENDEES+1 users, then bench/ews-load.py:
# GetUserAvailability for ATTENDEES attendees over a week (EVENTS events
# each), FindItem on a MESSAGES-message Inbox, SyncFolderItems initial and
# incremental (NEW new messages).
#
#   bench/ews-bench.sh                                # everything
#   MESSAGES=2000 REPEAT=10 bench/ews-bench.sh        # a quick run
#   SKIP_BUILD=1 / OUTPOST_BIN=...                    # an existing binary
# Results: JSON and logs in $OUT, a summary on stdout and in $OUT/summary.txt.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
ATTENDEES=${ATTENDEES:-50}; EVENTS=${EVENTS:-20}; MESSAGES=${MESSAGES:-10000}; NEW=${NEW:-10}
REPEAT=${REPEAT:-30}; OP_PASSWORD=${OP_PASSWORD:-benchpass}
VENV=${OUTPOST_VENV:-/var/tmp/outpost-ci-venv}
OUT=${OUT:-/var/tmp/outpost-ews-bench/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
log() { echo "[ews-bench $(date +%T)] $*" | tee -a "$OUT/bench.log" >&2; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

bin=${OUTPOST_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/outpost}
if [ -z "${SKIP_BUILD:-}" ] && [ -z "${OUTPOST_BIN:-}" ]; then
  log "cargo build --release -p outpost"
  (cd "$ROOT" && cargo build --release -p outpost -j 2) >> "$OUT/build.log" 2>&1 || { log "build failed: $OUT/build.log"; exit 1; }
fi
d=$(mktemp -d /var/tmp/ews-bench-outpost.XXXXXX)
PID=
cleanup() { [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null; rm -rf "$d"; }
trap cleanup EXIT
HTTPS=$(free_port); SMTP=$(free_port)
cat > "$d/outpost.toml" <<EOF
hostname = "mail.example.test"
data_dir = "$d/data"
[storage]
url = "sqlite://$d/data/outpost.db"
[listen]
https = ["127.0.0.1:$HTTPS"]
smtp = ["127.0.0.1:$SMTP"]
EOF
{
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "commit: $(cd "$ROOT" && git rev-parse --short HEAD)"
  echo "machine: nproc $(nproc), $(free -g | awk '/Mem:/{print $2}') GiB RAM, kernel $(uname -r)"
  echo "load avg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$OUT/summary.txt"
"$bin" domain add example.test --config "$d/outpost.toml" > "$OUT/setup.log" 2>&1
for i in $(seq 1 $((ATTENDEES + 1))); do
  printf '%s\n' "$OP_PASSWORD" | "$bin" user add "user$i@example.test" --password-stdin --config "$d/outpost.toml" >/dev/null
done
"$bin" serve --config "$d/outpost.toml" > "$OUT/outpost.log" 2>&1 &
PID=$!
for _ in $(seq 1 100); do [ -f "$d/data/listeners.json" ] && break; sleep 0.1; done
log "ews-load: $ATTENDEES attendees x $EVENTS events, $MESSAGES messages, repeat $REPEAT"
"$VENV/bin/python" "$ROOT/bench/ews-load.py" --port "$HTTPS" --smtp "$SMTP" --password "$OP_PASSWORD" \
  --attendees "$ATTENDEES" --events "$EVENTS" --messages "$MESSAGES" --new "$NEW" --repeat "$REPEAT" \
  --json "$OUT/ews.json" > "$OUT/ews.out" 2> "$OUT/ews.err" || { log "ews-load failed: $(tail -3 "$OUT/ews.err")"; exit 1; }
echo "server CPU (utime+stime, s): $(awk '{print ($14+$15)/100}' /proc/$PID/stat)" >> "$OUT/summary.txt"
echo "server RSS (KiB): $(awk '/VmRSS/{print $2}' /proc/$PID/status)" >> "$OUT/summary.txt"
cat "$OUT/ews.json" >> "$OUT/summary.txt"; echo >> "$OUT/summary.txt"
cat "$OUT/summary.txt"
