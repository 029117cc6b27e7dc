#!/usr/bin/env bash
# bench/eas-bench.sh - ActiveSync push benchmarks (issue 16, item 8).
#
# 1. Outpost: ../shared/bench/eas-ping-load.py - DEVICES devices (over USERS users)
#    Provision, FolderSync and Sync their Inbox with pyactivesync, then hold one Ping
#    each over TLS (HEARTBEAT s), in STEPS steps, reading the server's memory after
#    each: KiB per held Ping (target <= 20 KiB, 10,000 held in <= 200 MiB); a fresh
#    device's FolderSync meanwhile; WAKES SMTP deliveries to pinging users and the
#    time from the SMTP 250 to the Ping's answer (target p99 < 100 ms).
# 2. The same server under ../shared/bench/sogo/ping-starvation.py (PINGS Pings held
#    for HOLD s while DAV and EAS probes run), and SOGo 5.8 under the same tool
#    (it holds 15: one worker per Ping), for the side-by-side figure.
# 3. bench/eas-initial-sync.py: a fresh device's initial Sync of an INBOX_MESSAGES
#    Inbox (filled by IMAP APPEND) with WindowSize SYNC_WINDOW.
#
#   bench/eas-bench.sh                                   # everything
#   SERVERS=outpost DEVICES=1000 bench/eas-bench.sh      # a quick run
#   DEVICES=10000 USERS=100 HEARTBEAT=900 STEPS=4 WAKES=50 PINGS=50 HOLD=60
#   SKIP_BUILD=1 / OUTPOST_BIN=...                       # existing binary
#   KEEP_SOGO=1                                          # leave SOGo running
# Results: JSON and logs in $OUT, a summary on stdout and in $OUT/summary.txt.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED_BENCH:-$(cd "$ROOT/../shared/bench" 2>/dev/null && pwd || echo /work/shared/bench)}
SERVERS=${SERVERS:-"outpost sogo"}
DEVICES=${DEVICES:-10000}; USERS=${USERS:-100}; HEARTBEAT=${HEARTBEAT:-900}; STEPS=${STEPS:-4}
WAKES=${WAKES:-50}; PINGS=${PINGS:-50}; HOLD=${HOLD:-60}
INBOX_MESSAGES=${INBOX_MESSAGES:-10000}; SYNC_WINDOW=${SYNC_WINDOW:-100}
OP_PASSWORD=${OP_PASSWORD:-benchpass}
VENV=${OUTPOST_VENV:-/var/tmp/outpost-ci-venv}
OUT=${OUT:-/var/tmp/outpost-eas-bench/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
log() { echo "[eas-bench $(date +%T)] $*" | tee -a "$OUT/bench.log" >&2; }
ulimit -n 65000 2>/dev/null || ulimit -n 20000 2>/dev/null || true
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
has() { [[ " $SERVERS " == *" $1 "* ]]; }
PY="$VENV/bin/python"

PIDS_TO_STOP=(); DIRS=()
cleanup() {
  for p in "${PIDS_TO_STOP[@]}"; do kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
  for d in "${DIRS[@]}"; do rm -rf "$d"; done
  if [ -z "${KEEP_SOGO:-}" ] && [ -n "${SOGO_STARTED:-}" ]; then
    bash "$SHARED/sogo/stop-sogo.sh" >> "$OUT/stop-sogo.log" 2>&1 || true
  fi
}
trap cleanup EXIT

{
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "commit: $(cd "$ROOT" && git rev-parse --short HEAD)"
  echo "machine: nproc $(nproc), $(free -g | awk '/Mem:/{print $2}') GiB RAM, kernel $(uname -r)"
  echo "load avg at start: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$OUT/summary.txt"

if has outpost; then
  bin=${OUTPOST_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/outpost}
  if [ -z "${SKIP_BUILD:-}" ] && [ -z "${OUTPOST_BIN:-}" ]; then
    log "cargo build --release -p outpost"
    (cd "$ROOT" && cargo build --release -p outpost -j 2) >> "$OUT/build.log" 2>&1 || { log "build failed: $OUT/build.log"; exit 1; }
  fi
  d=$(mktemp -d /var/tmp/eas-bench-outpost.XXXXXX); DIRS+=("$d")
  HTTPS=$(free_port); SMTP=$(free_port); IMAP=$(free_port)
  # Every held Ping is a connection and a request in flight from 127.0.0.1:
  # the per-address limits are raised so that they measure the server, not
  # the limits.
  cat > "$d/outpost.toml" <<EOF
hostname = "mail.example.test"
data_dir = "$d/data"
[storage]
url = "sqlite://$d/data/outpost.db"
[listen]
https = ["127.0.0.1:$HTTPS"]
smtp = ["127.0.0.1:$SMTP"]
imap = ["127.0.0.1:$IMAP"]
[auth]
allow_plaintext_on_loopback = true
[limits]
connections_per_ip = $((DEVICES + 1000))
connections_total = $((DEVICES + 2000))
[http]
requests_per_ip = $((DEVICES + 1000))
long_polls_per_ip = $((DEVICES + 1000))
EOF
  "$bin" domain add example.test --config "$d/outpost.toml" > "$OUT/outpost-setup.log" 2>&1
  for i in $(seq 1 "$USERS"); do
    printf '%s\n' "$OP_PASSWORD" | "$bin" user add "user$i@example.test" --password-stdin --config "$d/outpost.toml" >/dev/null
  done
  "$bin" serve --config "$d/outpost.toml" > "$OUT/outpost.log" 2>&1 &
  OP_PID=$!; PIDS_TO_STOP+=("$OP_PID")
  for _ in $(seq 1 100); do [ -f "$d/data/listeners.json" ] && break; sleep 0.1; done
  log "Outpost: eas-ping-load, $DEVICES devices over $USERS users, heartbeat $HEARTBEAT s"
  "$PY" "$SHARED/eas-ping-load.py" --port "$HTTPS" --smtp "$SMTP" --users "$USERS" --password "$OP_PASSWORD" \
    --devices "$DEVICES" --heartbeat "$HEARTBEAT" --steps "$STEPS" --wakes "$WAKES" --pids "$OP_PID" \
    --json "$OUT/ping-outpost.json" > "$OUT/ping-outpost.out" 2>&1 || log "eas-ping-load reported errors: $(tail -2 "$OUT/ping-outpost.out")"
  tail -5 "$OUT/ping-outpost.out" | sed 's/^/  outpost: /' >&2
  # A fresh server for the starvation probe (the held Pings above end with
  # their connections when eas-ping-load exits).
  log "Outpost: ping-starvation, $PINGS Pings held ${HOLD}s"
  "$PY" "$SHARED/sogo/ping-starvation.py" --port "$HTTPS" --insecure --users "$USERS" --password "$OP_PASSWORD" \
    --pings "$PINGS" --heartbeat $((HOLD * 3)) --hold "$HOLD" --protocol-version 16.1 \
    --dav-probe '/dav/calendars/{user}/' --pids "$OP_PID" --json "$OUT/starve-outpost.json" \
    > "$OUT/starve-outpost.out" 2>&1 || log "ping-starvation (Outpost) reported errors"
  tail -5 "$OUT/starve-outpost.out" | sed 's/^/  outpost: /' >&2
  log "Outpost: initial Sync of a ${INBOX_MESSAGES}-message Inbox, WindowSize $SYNC_WINDOW"
  "$PY" "$ROOT/bench/eas-initial-sync.py" --port "$HTTPS" --imap-port "$IMAP" --user "user1@example.test" \
    --password "$OP_PASSWORD" --messages "$INBOX_MESSAGES" --window "$SYNC_WINDOW" --pid "$OP_PID" \
    --json "$OUT/initial-sync-outpost.json" > "$OUT/initial-sync-outpost.out" 2>&1 \
    || log "eas-initial-sync reported errors: $(tail -2 "$OUT/initial-sync-outpost.out")"
  tail -12 "$OUT/initial-sync-outpost.out" | sed 's/^/  outpost: /' >&2
fi

if has sogo; then
  log "SOGo: start-ref.sh + sogo/start-sogo.sh (FORCE_RESTART: no Pings left over)"
  if bash "$SHARED/start-ref.sh" >> "$OUT/start-ref.log" 2>&1 \
     && FORCE_RESTART=1 bash "$SHARED/sogo/start-sogo.sh" >> "$OUT/start-sogo.log" 2>&1; then
    SOGO_STARTED=1
    log "SOGo: ping-starvation, $PINGS Pings held ${HOLD}s"
    "$PY" "$SHARED/sogo/ping-starvation.py" --port 9443 --insecure --users "$USERS" --password pw \
      --pings "$PINGS" --heartbeat $((HOLD * 3)) --hold "$HOLD" --backlog-port 20000 \
      --pids "$(cat /run/sogo/sogo.pid)" --json "$OUT/starve-sogo.json" > "$OUT/starve-sogo.out" 2>&1 \
      || log "ping-starvation (SOGo) reported errors"
    tail -5 "$OUT/starve-sogo.out" | sed 's/^/  sogo: /' >&2
  else
    log "SOGo did not start: see $OUT/start-sogo.log"
  fi
fi

{
  echo
  for f in "$OUT"/ping-*.json "$OUT"/starve-*.json "$OUT"/initial-sync-*.json; do
    [ -f "$f" ] && { echo "$(basename "$f"):"; cat "$f"; echo; }
  done
} | tee -a "$OUT/summary.txt"
