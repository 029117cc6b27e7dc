#!/usr/bin/env bash
# bench/dav-bench.sh - CalDAV benchmarks (issue 15, item 11): the shared mixed
# DAV load (../shared/bench/dav-load.py: 20 clients, 30 s, PROPFIND Depth 1 on
# the calendar home / REPORT 7-day time-range on a 500-event calendar / PUT,
# 1:1:1) against SOGo 5.8 (the old stack's server, ../shared/bench/sogo/),
# Radicale (PyPI, pinned in tests/requirements.txt) and Outpost, all in one
# run, then a ratio table (requests/s against SOGo's; target >= 5x SOGo, p99
# under 50 ms). With BIG=1 also bench/dav-big.py (10,000-event calendar) on
# each server.
#
#   bench/dav-bench.sh                              # everything once
#   SERVERS="sogo radicale" bench/dav-bench.sh      # pick servers
#   RUNS=2 SECS=30 CLIENTS=20 USERS=10 EVENTS=500   # knobs
#   BIG=1 BIG_EVENTS=10000 GAL_PATH_OUTPOST=/dav/addressbooks/{user}/gal/
#   BIG_SERVERS="sogo outpost"                      # dav-big only on these (default: every server that is up)
#   GAL_ENTRIES=10000                               # Outpost: directory users for the GAL search (bench/gal-fill.py; 0: none)
#   PPS_PATH_OUTPOST=/dav/principals/users/         # Outpost: principal-property-search target ("" skips)
#   PPS_QUERY=smi,alice.smith@                      # its texts (gal-fill names: 100 Smiths, one alice.smith)
#   GAL_QUERY=smith                                 # GAL addressbook-query text-match (contains)
#   ONLY=big                                        # only dav-big (ONLY="load big" = BIG=1)
#   KEEP_SOGO=1                                     # leave SOGo running afterwards
#   QUIET_WAIT=120                                  # seconds to wait for a quiet machine before each measurement
#   SKIP_BUILD=1 / OUTPOST_BIN=...                  # existing Outpost binary
#
# Every server is reached over TLS on loopback, as clients do: SOGo through
# its nginx front (https://127.0.0.1:9443, as ../shared/bench/sogo sets it
# up), Radicale with its own TLS (a self-signed certificate made here),
# Outpost on its https listener (its self-signed certificate). SOGo is
# started with ../shared/bench/start-ref.sh (its IMAP/SMTP) and
# sogo/start-sogo.sh, and SOGo is stopped again at the end (sogo/stop-sogo.sh)
# unless KEEP_SOGO=1 (the reference Postfix/Dovecot stays: other benchmarks use it). Outpost before its DAV exists: a clear message, no figures.
# Results: JSON and logs in $OUT, the table on stdout and in $OUT/summary.txt.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED_BENCH:-$(cd "$ROOT/../shared/bench" 2>/dev/null && pwd || echo /work/shared/bench)}
SERVERS=${SERVERS:-"sogo radicale outpost"}
USERS=${USERS:-10}; CLIENTS=${CLIENTS:-20}; SECS=${SECS:-30}; RUNS=${RUNS:-1}; EVENTS=${EVENTS:-500}
BIG=${BIG:-}; BIG_EVENTS=${BIG_EVENTS:-10000}; BIG_REPS=${BIG_REPS:-5}; BIG_SERVERS=${BIG_SERVERS:-$SERVERS}
GAL_ENTRIES=${GAL_ENTRIES:-10000}; PPS_PATH_OUTPOST=${PPS_PATH_OUTPOST-/dav/principals/users/}
PPS_QUERY=${PPS_QUERY:-smi,alice.smith@}
GAL_QUERY=${GAL_QUERY:-smith}   # GAL addressbook-query text (gal-fill names: 100 Smiths; "alice.smith" is one)
OP_PASSWORD=${OP_PASSWORD:-benchpass}   # Outpost refuses passwords under 8 characters
VENV=${OUTPOST_VENV:-/var/tmp/outpost-ci-venv}
OUT=${OUT:-/var/tmp/outpost-dav-bench/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
log() { echo "[dav-bench $(date +%T)] $*" | tee -a "$OUT/bench.log" >&2; }
ulimit -n 20000 2>/dev/null || true

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
jget() { python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): d=d[k]
print(d)' "$1" "$2" 2>/dev/null || echo "n/a"; }
machine() { echo "nproc $(nproc), $(free -g | awk '/Mem:/{print $2}') GiB RAM, kernel $(uname -r)"; }
wait_quiet() {  # wait (up to QUIET_WAIT s, default 120) for the 1-minute load to drop under 1.5
  for _ in $(seq 1 $(( ${QUIET_WAIT:-120} / 5 ))); do awk '{exit !($1 < 1.5)}' /proc/loadavg && return 0; sleep 5; done
  log "machine still busy: load $(cut -d' ' -f1-3 /proc/loadavg)"
}
has() { [[ " $SERVERS " == *" $1 "* ]]; }

PIDS_TO_STOP=(); DIRS=()
cleanup() {
  for p in "${PIDS_TO_STOP[@]}"; do kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null || true; done
  for d in "${DIRS[@]}"; do rm -rf "$d"; done
  if has sogo && [ -z "${KEEP_SOGO:-}" ] && [ -n "${SOGO_STARTED:-}" ]; then
    log "stopping SOGo (stop-sogo.sh)"; bash "$SHARED/sogo/stop-sogo.sh" >> "$OUT/stop-sogo.log" 2>&1 || true
  fi
}
trap cleanup EXIT

# load NAME URL HOME_PATTERN PASSWORD PIDS RUN
load() {
  local name=$1 url=$2 home=$3 pw=$4 pids=$5 r=$6
  wait_quiet
  log "run $r: $name: dav-load ($CLIENTS clients, ${SECS}s), load avg $(cut -d' ' -f1-3 /proc/loadavg)"
  cut -d' ' -f1 /proc/loadavg > "$OUT/load-$name-$r.loadavg"
  python3 "$SHARED/dav-load.py" --url "$url" --home-pattern "$home" --user-pattern 'user%d@example.test' \
    --users "$USERS" --password "$pw" --clients "$CLIENTS" --duration "$SECS" --events "$EVENTS" \
    --insecure --pids "$pids" --json "$OUT/load-$name-$r.json" > "$OUT/load-$name-$r.out" 2>&1 \
    || log "$name: dav-load reported errors or unexpected statuses: $(grep -E '^status' "$OUT/load-$name-$r.out" | tail -1)"
  cut -d' ' -f1 /proc/loadavg >> "$OUT/load-$name-$r.loadavg"
  grep -E '^(total|propfind|report|put|status)' "$OUT/load-$name-$r.out" | sed "s/^/  $name: /" >&2 || true
}

# big NAME URL HOME PASSWORD GAL_PATH [PREFILL_DIR [PRINCIPAL_SEARCH_PATH]]
big() {
  local name=$1 url=$2 home=$3 pw=$4 gal=$5 prefill=${6:-} pps=${7:-}
  wait_quiet
  log "$name: dav-big ($BIG_EVENTS events), load avg $(cut -d' ' -f1-3 /proc/loadavg)"
  python3 "$ROOT/bench/dav-big.py" --url "$url" --insecure --home "$home" --user user1@example.test \
    --password "$pw" --events "$BIG_EVENTS" --reps "$BIG_REPS" ${gal:+--gal-path "$gal" --gal-query "$GAL_QUERY"} ${prefill:+--prefill-dir "$prefill"} ${pps:+--principal-search "$pps" --pps-query "$PPS_QUERY"} \
    --json "$OUT/big-$name.json" > "$OUT/big-$name.out" 2>&1 || log "$name: dav-big failed: $(tail -2 "$OUT/big-$name.out")"
  log "$name: dav-big done, load avg $(cut -d' ' -f1-3 /proc/loadavg)"
  grep -vE '^JSON' "$OUT/big-$name.out" | sed "s/^/  $name: /" >&2 || true
}

# ------------------------------------------------------------------ servers
sogo_up() {
  log "SOGo: start-ref.sh + sogo/start-sogo.sh"
  bash "$SHARED/start-ref.sh" >> "$OUT/start-ref.log" 2>&1 || { log "start-ref.sh failed, see $OUT/start-ref.log"; return 1; }
  bash "$SHARED/sogo/start-sogo.sh" >> "$OUT/start-sogo.log" 2>&1 || { log "start-sogo.sh failed, see $OUT/start-sogo.log"; return 1; }
  SOGO_STARTED=1
  SOGO_PIDS="$(cat /run/sogo/sogo.pid),$(cat /opt/sogo-ref/run/nginx.pid)"
}

radicale_up() {
  local d; d=$(mktemp -d /var/tmp/dav-bench-radicale.XXXXXX); DIRS+=("$d"); RAD_DIR=$d
  RAD_PORT=$(free_port)
  for i in $(seq 1 "$USERS"); do echo "user$i@example.test:pw"; done > "$d/users"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=127.0.0.1" \
    -keyout "$d/key.pem" -out "$d/cert.pem" 2>/dev/null
  cat > "$d/rights" <<'EOF'
[own-tree]
user: .+
collection: {user}(/.*)?
permissions: RrWw
[root]
user: .+
collection:
permissions: R
EOF
  # max_connections above the client count: Radicale's default (8) would
  # queue the 20 clients, which is its default, not its capacity.
  cat > "$d/config" <<EOF
[server]
hosts = 127.0.0.1:$RAD_PORT
max_connections = $((CLIENTS + 4))
ssl = True
certificate = $d/cert.pem
key = $d/key.pem
[auth]
type = htpasswd
htpasswd_filename = $d/users
htpasswd_encryption = plain
[rights]
type = from_file
file = $d/rights
[storage]
filesystem_folder = $d/collections
[logging]
level = warning
EOF
  "$VENV/bin/python" -m radicale --config "$d/config" > "$OUT/radicale.log" 2>&1 &
  RAD_PID=$!; PIDS_TO_STOP+=("$RAD_PID")
  for _ in $(seq 1 100); do curl -sk -o /dev/null "https://127.0.0.1:$RAD_PORT/" && return 0; sleep 0.2; done
  log "Radicale did not start: $(tail -3 "$OUT/radicale.log")"; return 1
}

outpost_up() {
  local bin=${OUTPOST_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/release/outpost}
  if [ -z "${SKIP_BUILD:-}" ] && [ -z "${OUTPOST_BIN:-}" ]; then
    log "cargo build --release -p outpost"; (cd "$ROOT" && cargo build --release -p outpost -j 2) >> "$OUT/build.log" 2>&1 \
      || { log "Outpost: build failed, see $OUT/build.log"; return 1; }
  fi
  [ -x "$bin" ] || { log "Outpost: no binary at $bin"; return 1; }
  local d; d=$(mktemp -d /var/tmp/dav-bench-outpost.XXXXXX); DIRS+=("$d")
  OP_PORT=$(free_port)
  cat > "$d/outpost.toml" <<EOF
hostname = "mail.example.test"
data_dir = "$d/data"
[storage]
url = "sqlite://$d/data/outpost.db"
[listen]
https = ["127.0.0.1:$OP_PORT"]
[limits]
connections_per_ip = 1000
EOF
  "$bin" domain add example.test --config "$d/outpost.toml" > "$OUT/outpost-setup.log" 2>&1 \
    || { log "Outpost: config/setup refused: $(tail -2 "$OUT/outpost-setup.log")"; return 1; }
  for i in $(seq 1 "$USERS"); do
    printf '%s\n' "$OP_PASSWORD" | "$bin" user add "user$i@example.test" --password-stdin --config "$d/outpost.toml" >/dev/null
  done
  if [ "$GAL_ENTRIES" -gt 0 ]; then
    python3 "$ROOT/bench/gal-fill.py" --db "$d/data/outpost.db" --domain example.test --count "$GAL_ENTRIES" \
      >> "$OUT/outpost-setup.log" 2>&1 || { log "Outpost: gal-fill failed: $(tail -2 "$OUT/outpost-setup.log")"; return 1; }
  fi
  "$bin" serve --config "$d/outpost.toml" > "$OUT/outpost.log" 2>&1 &
  OP_PID=$!; PIDS_TO_STOP+=("$OP_PID")
  for _ in $(seq 1 100); do [ -f "$d/data/listeners.json" ] && break; sleep 0.1; done
  [ -f "$d/data/listeners.json" ] || { log "Outpost did not start: $(tail -3 "$OUT/outpost.log")"; return 1; }
  if [ "$GAL_ENTRIES" -gt 0 ]; then
    # The store indexes the directory entries gal-fill wrote when it opens
    # (in the background): wait until every principal has its search terms.
    local want n t0=$SECONDS
    want=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from principals").fetchone()[0])' "$d/data/outpost.db")
    for _ in $(seq 1 600); do
      n=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1], timeout=30).execute("select count(distinct principal_id) from directory_terms").fetchone()[0])' "$d/data/outpost.db" 2>/dev/null || echo 0)
      [ "$n" -ge "$want" ] && break; sleep 0.5
    done
    log "Outpost: directory search terms for $n of $want principals ($((SECONDS - t0)) s after start)"
  fi
  local code
  code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 10 -u "user1@example.test:$OP_PASSWORD" -X PROPFIND \
         -H 'Depth: 0' "https://127.0.0.1:$OP_PORT/dav/calendars/user1@example.test/" || true)
  if [ "$code" != 207 ]; then
    log "Outpost: PROPFIND /dav/calendars/user1@example.test/ -> ${code:-no answer}: its DAV is not there yet (no figures)"
    return 1
  fi
}

# ------------------------------------------------------------------ run
{
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "commit: $(cd "$ROOT" && git rev-parse --short HEAD)"
  echo "machine: $(machine)"
  echo "load avg at start: $(cut -d' ' -f1-3 /proc/loadavg) (other jobs on the box show in machine busy %)"
  echo "load: dav-load.py, $CLIENTS clients, ${SECS}s, $USERS users, $EVENTS-event calendar, mix propfind,report,put"
} > "$OUT/summary.txt"

declare -A UP
if has sogo && sogo_up; then UP[sogo]=1; fi
if has radicale && radicale_up; then UP[radicale]=1; fi
if has outpost && outpost_up; then UP[outpost]=1; fi

on() { [ -n "${UP[$1]:-}" ]; }
ONLY=${ONLY:-load${BIG:+ big}}
[[ " $ONLY " == *" big "* ]] && BIG=1
for r in $(seq 1 "$RUNS"); do
  [[ " $ONLY " == *" load "* ]] || break
  if on sogo; then load sogo https://127.0.0.1:9443 '/SOGo/dav/{user}/Calendar/' pw "$SOGO_PIDS" "$r"; fi
  if on radicale; then load radicale "https://127.0.0.1:$RAD_PORT" '/{user}/' pw "$RAD_PID" "$r"; fi
  if on outpost; then load outpost "https://127.0.0.1:$OP_PORT" '/dav/calendars/{user}/' "$OP_PASSWORD" "$OP_PID" "$r"; fi
done
bigon() { on "$1" && [[ " $BIG_SERVERS " == *" $1 "* ]]; }
if [ -n "$BIG" ]; then
  if bigon sogo; then big sogo https://127.0.0.1:9443 '/SOGo/dav/{user}/Calendar/' pw "${GAL_PATH_SOGO:-}"; fi
  # Radicale's calendar is filled on disk (see dav-big.py --prefill-dir): by PUT it takes most of an hour
  if bigon radicale; then big radicale "https://127.0.0.1:$RAD_PORT" '/{user}/' pw "${GAL_PATH_RADICALE:-}" \
      "$RAD_DIR/collections/collection-root/user1@example.test/davbig"; fi
  if bigon outpost; then big outpost "https://127.0.0.1:$OP_PORT" '/dav/calendars/{user}/' "$OP_PASSWORD" "${GAL_PATH_OUTPOST:-}" \
      "" "$PPS_PATH_OUTPOST"; fi
fi

python3 - "$OUT" "$RUNS" <<'EOF' | tee -a "$OUT/summary.txt"
import json, os, sys
out, runs = sys.argv[1], int(sys.argv[2])
def load(name, r):
    p = os.path.join(out, f"load-{name}-{r}.json")
    return json.load(open(p)) if os.path.exists(p) else None
print()
print("| run | server | req/s | p50 ms | p99 ms | propfind p99 | report p99 | put p99 | unexpected | server CPU s | machine busy % | load avg start/end | req/s vs SOGo |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |")
for r in range(1, runs + 1):
    sogo = load("sogo", r)
    for name in ("sogo", "radicale", "outpost"):
        d = load(name, r)
        if d is None:
            print(f"| {r} | {name} | n/a (not run, or its DAV is not there) | | | | | | | | | | |")
            continue
        t = d["total"]
        ratio = f"{t['rps'] / sogo['total']['rps']:.2f}x" if sogo and sogo["total"]["rps"] else "n/a"
        la = os.path.join(out, f"load-{name}-{r}.loadavg")
        la = "/".join(open(la).read().split()) if os.path.exists(la) else "n/a"
        print(f"| {r} | {name} | {t['rps']} | {t['p50_ms']} | {t['p99_ms']} | {d.get('propfind', {}).get('p99_ms')} | "
              f"{d.get('report', {}).get('p99_ms')} | {d.get('put', {}).get('p99_ms')} | {d.get('unexpected_status')} | "
              f"{d.get('server_cpu_s')} | {d.get('machine_busy_pct')} | {la} | {ratio} |")
big = {n: json.load(open(os.path.join(out, f"big-{n}.json"))) for n in ("sogo", "radicale", "outpost")
       if os.path.exists(os.path.join(out, f"big-{n}.json"))}
if big:
    print()
    print("| server | initial sync ms | incremental sync ms | 1-year range + expand ms (instances) | GAL search ms | principal-property-search ms (matches) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for n, d in big.items():
        g = d.get("gal_search", {})
        gal = g.get("median_ms", f"status {g['status']}" if "status" in g else "n/a")
        pps = "; ".join(f"{q!r}: {r.get('median_ms', 'status %s' % r.get('status'))} ({r.get('matches', '-')})"
                        for q, r in d.get("principal_search", {}).items()) or "n/a"
        print(f"| {n} | {d['initial_sync']['median_ms']} ({d['initial_sync']['responses']} items) | "
              f"{d['incremental_sync']['median_ms']} | {d['range_expand']['median_ms']} ({d['range_expand']['instances']}) | {gal} | {pps} |")
EOF
log "results in $OUT"
