#!/usr/bin/env bash
# bench/imap-bench.sh - IMAP benchmarks (issue 4), Outpost against the reference
# Dovecot (../shared/bench/start-ref.sh, IMAP on 1143) in the same run, with the
# shared tools:
#   (a) mixed workload: ../shared/bench/imap-load.sh -e py, 20 clients, 30 s
#       (LOGIN/SELECT/FETCH/STORE/APPEND/EXPUNGE/NOOP) -> commands/s, ratio
#       (target >= 1.5x Dovecot);
#   (b) memory per authenticated IDLE connection: ../shared/bench/idle-mem.py
#       --conns 1000 (target <= 20 KiB/conn), as the tool computes it, plus the
#       marginal figure after the first quarter, plus a diagnostic run with
#       glibc's MALLOC_MMAP_THRESHOLD_ pinned (Argon2 login buffers returned to
#       the OS instead of staying resident);
#   (c) a 100,000-message mailbox (bench/imap-big.py): SELECT, UID SEARCH ALL,
#       UID FETCH 1:* (FLAGS), EXAMINE, BIG_REPS times, interleaved with the
#       same on the reference Dovecot (a big@example.test user filled with the
#       same messages); medians and ratios (target: at most Dovecot's time).
#
#   bench/imap-bench.sh                     # everything, once
#   RUNS=2 bench/imap-bench.sh              # repeat (a) and (b)
#   ONLY="load idle big"                    # pick parts
#   QUIET_WAIT=120                          # seconds to wait for a quiet machine before each part
#   SKIP_REF=1 / SKIP_BUILD=1 / KEEP=1      # Outpost only / existing build / keep data dir
#   BIG_N=100000 BIG_REPS=5 CONNS=1000 SECS=30 CLIENTS=20 PREFILL=30
#
# Outpost: release build, fresh data directory (SQLite), listeners imap + lmtp on
# free loopback ports, plaintext LOGIN allowed on loopback, users
# user1..user100@example.test (password "benchpass": the directory refuses
# passwords under 8 characters; Dovecot's are "pw"), each INBOX pre-filled with
# PREFILL messages over LMTP (Dovecot's over its LMTP on 2424 up to the same count).
# Results: JSON and logs in $OUT, a summary on stdout.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED_BENCH:-$(cd "$ROOT/../shared/bench" 2>/dev/null && pwd || echo /work/shared/bench)}
USERS=${USERS:-100}; CLIENTS=${CLIENTS:-20}; SECS=${SECS:-30}; RUNS=${RUNS:-1}
CONNS=${CONNS:-1000}; BIG_N=${BIG_N:-100000}; PREFILL=${PREFILL:-30}
ONLY=${ONLY:-"load idle big"}
PASSWORD=${PASSWORD:-benchpass}
OUT=${OUT:-/var/tmp/outpost-imap-bench/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
log() { echo "[imap-bench $(date +%T)] $*" | tee -a "$OUT/bench.log" >&2; }

ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${OUTPOST_BIN:-$TARGET_DIR/release/outpost}
if [ -z "${SKIP_BUILD:-}" ] && [ -z "${OUTPOST_BIN:-}" ]; then
  log "cargo build --release -p outpost"
  (cd "$ROOT" && cargo build --release -p outpost)
fi
[ -x "$BIN" ] || { echo "no release binary at $BIN" >&2; exit 2; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
jget() { python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): d=d[k]
print(d)' "$1" "$2"; }
machine() { echo "nproc $(nproc), $(free -g | awk '/Mem:/{print $2}') GiB RAM, kernel $(uname -r)"; }

SERVER_PID=; DIR=
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ -n "$DIR" ] && [ -z "${KEEP:-}" ]; then rm -rf "$DIR"; fi
}
trap cleanup EXIT

# LMTP pre-fill: many messages per connection, several connections at once.
# usage: fill HOST PORT USER_PATTERN FIRST LAST COUNT_PER_USER [conns]
fill() {
  python3 - "$@" <<'EOF'
import smtplib, sys, threading
host, port, pat, first, last, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
conns = int(sys.argv[7]) if len(sys.argv) > 7 else 8
jobs = [(u, i) for u in range(first, last + 1) for i in range(count)]
body = ("x" * 70 + "\r\n") * 40
def work(part):
    c = smtplib.LMTP(host, port)
    for n, (u, i) in enumerate(part):
        rcpt = pat % u
        msg = (f"From: Bench <bench@outside.example>\r\nTo: {rcpt}\r\nSubject: bench message {i} for {u}\r\n"
               f"Message-ID: <b{u}.{i}@outside.example>\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\n\r\n{body}")
        c.sendmail("bench@outside.example", [rcpt], msg.encode())
        if n % 500 == 499:
            c.quit(); c = smtplib.LMTP(host, port)
    c.quit()
ts = [threading.Thread(target=work, args=(jobs[k::conns],)) for k in range(conns)]
[t.start() for t in ts]; [t.join() for t in ts]
EOF
}

start_outpost() {
  DIR=$(mktemp -d /var/tmp/outpost-imap-bench.XXXXXX)
  local imap lmtp cfg=$DIR/outpost.toml
  imap=$(free_port); lmtp=$(free_port)
  cat > "$cfg" <<EOF
hostname = "mail.example.test"
data_dir = "$DIR/data"
[storage]
url = "sqlite://$DIR/data/outpost.db"
[listen]
imap = ["127.0.0.1:$imap"]
lmtp = ["127.0.0.1:$lmtp"]
[auth]
allow_plaintext_on_loopback = true
[limits]
connections_per_ip = $((CONNS + 500))
connections_total = $((CONNS + 1000))
EOF
  "$BIN" domain add example.test --config "$cfg" >/dev/null
  for i in $(seq 1 "$USERS"); do
    printf '%s\n' "$PASSWORD" | "$BIN" user add "user$i@example.test" --password-stdin --config "$cfg" >/dev/null
  done
  printf '%s\n' "$PASSWORD" | "$BIN" user add "big@example.test" --password-stdin --config "$cfg" >/dev/null
  env ${SERVER_ENV:-} "$BIN" serve --config "$cfg" > "$DIR/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do [ -f "$DIR/data/listeners.json" ] && break; sleep 0.1; done
  [ -f "$DIR/data/listeners.json" ] || { cat "$DIR/server.log" >&2; exit 1; }
  OP_IMAP=$imap; OP_LMTP=$lmtp
}

stop_outpost() {
  kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
  cp "$DIR/server.log" "$OUT/outpost-$1.server.log" 2>/dev/null || true
  [ -n "${KEEP:-}" ] || rm -rf "$DIR"
  DIR=
}

wait_quiet() {  # wait (up to QUIET_WAIT s, default 120) for the 1-minute load to drop under 1.5
  for _ in $(seq 1 $(( ${QUIET_WAIT:-120} / 5 ))); do
    awk '{exit !($1 < 1.5)}' /proc/loadavg && return 0
    sleep 5
  done
  log "machine still busy: load $(cut -d' ' -f1-3 /proc/loadavg)"
}

ref_up() {
  [ -n "${SKIP_REF:-}" ] && return 1
  "$SHARED/start-ref.sh" >> "$OUT/start-ref.log" 2>&1 || { log "start-ref.sh failed (see $OUT/start-ref.log)"; return 1; }
  REF_PID=$(cat /opt/ref/run/dovecot/master.pid)
  # Same pre-fill as Outpost, topping up each reference INBOX to PREFILL messages.
  python3 - "$USERS" "$PREFILL" <<'EOF' > "$OUT/ref-fill.txt"
import os, sys
users, want = int(sys.argv[1]), int(sys.argv[2])
for u in range(1, users + 1):
    d = f"/opt/ref/vmail/example.test/user{u}/Maildir"
    n = sum(len(os.listdir(f"{d}/{s}")) for s in ("cur", "new") if os.path.isdir(f"{d}/{s}"))
    if n < want:
        print(u, want - n)
EOF
  while read -r u k; do fill 127.0.0.1 2424 'user%d@example.test' "$u" "$u" "$k" 1; done < "$OUT/ref-fill.txt"
  return 0
}

SUMMARY=$OUT/summary.txt
{
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
  echo "commit: $(cd "$ROOT" && git rev-parse --short HEAD)$(cd "$ROOT" && git diff --quiet HEAD -- crates || echo ' (+ uncommitted changes in crates/)')"
  echo "machine: $(machine)"
} > "$SUMMARY"

HAVE_REF=
if [[ " $ONLY " == *" load "* || " $ONLY " == *" idle "* ]]; then
  ref_up && HAVE_REF=1 || true
fi

for r in $(seq 1 "$RUNS"); do
  if [[ " $ONLY " == *" load "* ]]; then
    start_outpost
    log "run $r: pre-fill $USERS x $PREFILL messages"
    fill 127.0.0.1 "$OP_LMTP" 'user%d@example.test' 1 "$USERS" "$PREFILL" 8
    wait_quiet
    log "run $r: outpost load, load avg $(cut -d' ' -f1-3 /proc/loadavg)"
    "$SHARED/imap-load.sh" -e py -H 127.0.0.1 -P "$OP_IMAP" -u 'user%d@example.test' -w "$PASSWORD" \
      -n "$USERS" -c "$CLIENTS" -s "$SECS" -p "$SERVER_PID" -- --json "$OUT/load-outpost-$r.json" \
      > "$OUT/load-outpost-$r.out" 2>&1 || log "outpost load failed: $(tail -3 "$OUT/load-outpost-$r.out")"
    stop_outpost "load-$r"
    op=$(jget "$OUT/load-outpost-$r.json" commands_per_s || echo 0)
    opbusy=$(jget "$OUT/load-outpost-$r.json" machine_busy_pct || echo ?)
    opcpu=$(jget "$OUT/load-outpost-$r.json" server_cores_avg || echo ?)
    if [ -n "$HAVE_REF" ]; then
      wait_quiet
      REF_PID=$(cat /opt/ref/run/dovecot/master.pid)  # (re-read: other benches restart it)
      log "run $r: dovecot load, load avg $(cut -d' ' -f1-3 /proc/loadavg)"
      "$SHARED/imap-load.sh" -e py -H 127.0.0.1 -P 1143 -u 'user%d@example.test' -w pw \
        -n "$USERS" -c "$CLIENTS" -s "$SECS" -p "$REF_PID" -- --json "$OUT/load-ref-$r.json" \
        > "$OUT/load-ref-$r.out" 2>&1 || log "ref load failed: $(tail -3 "$OUT/load-ref-$r.out")"
      rf=$(jget "$OUT/load-ref-$r.json" commands_per_s || echo 0)
      rfbusy=$(jget "$OUT/load-ref-$r.json" machine_busy_pct || echo ?)
      rfcpu=$(jget "$OUT/load-ref-$r.json" server_cores_avg || echo ?)
      ratio=$(python3 -c "print(round($op/$rf, 2) if $rf else 'n/a')")
    else
      rf=n/a; rfbusy=n/a; rfcpu=n/a; ratio=n/a
    fi
    echo "load run $r: outpost $op cmd/s (server cores $opcpu, busy $opbusy%), dovecot $rf cmd/s (server cores $rfcpu, busy $rfbusy%), ratio $ratio" | tee -a "$SUMMARY"
  fi

  if [[ " $ONLY " == *" idle "* ]]; then
    start_outpost
    fill 127.0.0.1 "$OP_LMTP" 'user%d@example.test' 1 "$USERS" 5 8
    wait_quiet
    # Cold figure first (as the tool measures it: includes the memory the
    # first burst of logins leaves behind), then, on the same warm server,
    # the marginal cost of 1000 more idle connections.
    log "run $r: outpost idle-mem $CONNS conns (cold)"
    python3 "$SHARED/idle-mem.py" --port "$OP_IMAP" --user-pattern 'user%d@example.test' --password "$PASSWORD" \
      --users "$USERS" --conns "$CONNS" --pids "$SERVER_PID" --no-tree --json "$OUT/idle-outpost-cold-$r.json" \
      > "$OUT/idle-outpost-cold-$r.out" 2>&1 || log "outpost idle-mem failed: $(tail -3 "$OUT/idle-outpost-cold-$r.out")"
    oc=$(jget "$OUT/idle-outpost-cold-$r.json" kib_per_conn_rss || echo ?)
    stop_outpost "idle-cold-$r"
    # Diagnostic: the same on a server whose allocator returns big blocks to
    # the OS (glibc raises its mmap threshold after the first 19 MiB Argon2
    # buffer is freed, so password hashing memory otherwise stays resident).
    SERVER_ENV="MALLOC_MMAP_THRESHOLD_=131072" start_outpost
    fill 127.0.0.1 "$OP_LMTP" 'user%d@example.test' 1 "$USERS" 5 8
    log "run $r: outpost idle-mem $CONNS conns (MALLOC_MMAP_THRESHOLD_=131072)"
    python3 "$SHARED/idle-mem.py" --port "$OP_IMAP" --user-pattern 'user%d@example.test' --password "$PASSWORD" \
      --users "$USERS" --conns "$CONNS" --pids "$SERVER_PID" --no-tree --json "$OUT/idle-outpost-$r.json" \
      > "$OUT/idle-outpost-$r.out" 2>&1 || log "outpost idle-mem failed: $(tail -3 "$OUT/idle-outpost-$r.out")"
    stop_outpost "idle-$r"
    oi=$(jget "$OUT/idle-outpost-$r.json" kib_per_conn_rss || echo ?)
    # marginal: from the first snapshot (after the first quarter) to the last
    marg() { python3 -c 'import json,sys
d=json.load(open(sys.argv[1])); s=d["steps"]; a,b=s[1],s[-1]
print(round((b["rss_kb"]-a["rss_kb"])/max(1,b["conns"]-a["conns"]),1))' "$1" 2>/dev/null || echo ?; }
    ocm=$(marg "$OUT/idle-outpost-cold-$r.json"); oim=$(marg "$OUT/idle-outpost-$r.json")
    if [ -n "$HAVE_REF" ]; then
      REF_PID=$(cat /opt/ref/run/dovecot/master.pid)
      log "run $r: dovecot idle-mem $CONNS conns"
      python3 "$SHARED/idle-mem.py" --port 1143 --user-pattern 'user%d@example.test' --password pw \
        --users "$USERS" --conns "$CONNS" --pids "$REF_PID" --json "$OUT/idle-ref-$r.json" \
        > "$OUT/idle-ref-$r.out" 2>&1 || log "ref idle-mem failed: $(tail -3 "$OUT/idle-ref-$r.out")"
      ri=$(jget "$OUT/idle-ref-$r.json" kib_per_conn_pss || echo ?)
    else
      ri=n/a
    fi
    echo "idle run $r: outpost $oc KiB/conn RSS (marginal after the first quarter $ocm), with MALLOC_MMAP_THRESHOLD_=131072 $oi KiB/conn (marginal $oim), dovecot $ri KiB/conn PSS" | tee -a "$SUMMARY"
  fi
done

# big_fill HOST PORT FROM TO: LMTP-deliver messages FROM..TO-1 of the big
# mailbox to big@example.test (16 connections, one message per transaction).
big_fill() {
  python3 - "$@" <<'EOF'
import smtplib, sys, threading
host, port, first, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
conns = 16
def work(k):
    c = smtplib.LMTP(host, port)
    for i in range(first + k, n, conns):
        msg = (f"From: a{i % 97}@outside.example\r\nTo: big@example.test\r\nSubject: big {i}\r\n"
               f"Message-ID: <big{i}@outside.example>\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\n\r\nbody {i}\r\n")
        c.sendmail("a@outside.example", ["big@example.test"], msg.encode())
        if i % 2000 < conns:
            c.quit(); c = smtplib.LMTP(host, port)
    c.quit()
ts = [threading.Thread(target=work, args=(k,)) for k in range(conns)]
[t.start() for t in ts]; [t.join() for t in ts]
EOF
}

if [[ " $ONLY " == *" big "* ]]; then
  BIG_REPS=${BIG_REPS:-5}
  # Reference: a big@example.test user added to the reference passwd-file
  # (start-ref.sh only writes user1..userN), its INBOX topped up to BIG_N
  # over Dovecot's LMTP with the same messages. Kept between runs.
  if [ -z "${SKIP_REF:-}" ] && ref_up; then
    HAVE_REF=1
    users=/opt/ref/etc/dovecot/users
    if ! grep -q '^big@example.test:' "$users"; then
      echo "big@example.test:{PLAIN}pw:$(id -u vmail):$(id -g vmail)::/opt/ref/vmail/example.test/big::" >> "$users"
    fi
    md=/opt/ref/vmail/example.test/big/Maildir
    # A fresh reference has no Maildir for big@ yet (find fails; none there).
    have=$( (find "$md/cur" "$md/new" -type f 2>/dev/null || true) | wc -l)
    if [ "$have" -lt "$BIG_N" ]; then
      log "big: filling the reference big@example.test from $have to $BIG_N messages over LMTP"
      t0=$(date +%s)
      big_fill 127.0.0.1 2424 "$have" "$BIG_N"
      log "big: reference filled in $(( $(date +%s) - t0 )) s"
    fi
  fi
  start_outpost
  log "big: filling big@example.test with $BIG_N messages over LMTP"
  t0=$(date +%s)
  big_fill 127.0.0.1 "$OP_LMTP" 0 "$BIG_N"
  log "big: filled in $(( $(date +%s) - t0 )) s"
  # One untimed pass each, so that both servers have built their caches and
  # indexes (Dovecot indexes a Maildir on its first SELECT).
  python3 "$ROOT/bench/imap-big.py" 127.0.0.1 "$OP_IMAP" big@example.test "$PASSWORD" "$BIG_N" 1 > "$OUT/big-outpost-warm.json"
  if [ -n "$HAVE_REF" ]; then
    python3 "$ROOT/bench/imap-big.py" 127.0.0.1 1143 big@example.test pw "$BIG_N" 1 > "$OUT/big-ref-warm.json"
  fi
  wait_quiet
  # Interleaved: Outpost, Dovecot, Outpost, ... so that both see the same load.
  for r in $(seq 1 "$BIG_REPS"); do
    python3 "$ROOT/bench/imap-big.py" 127.0.0.1 "$OP_IMAP" big@example.test "$PASSWORD" "$BIG_N" 1 \
      | tee -a "$OUT/big-outpost.json" | sed 's/^/outpost /' | tee -a "$SUMMARY"
    if [ -n "$HAVE_REF" ]; then
      python3 "$ROOT/bench/imap-big.py" 127.0.0.1 1143 big@example.test pw "$BIG_N" 1 \
        | tee -a "$OUT/big-ref.json" | sed 's/^/dovecot /' | tee -a "$SUMMARY"
    fi
  done
  python3 - "$OUT" <<'EOF' | tee -a "$SUMMARY"
import json, os, statistics, sys
out = sys.argv[1]
def load(name):
    p = os.path.join(out, name)
    return [json.loads(l) for l in open(p)] if os.path.exists(p) else []
op, ref = load("big-outpost.json"), load("big-ref.json")
for k in ("select_s", "uid_search_all_s", "uid_fetch_flags_s", "examine_s"):
    o = statistics.median(r[k] for r in op)
    line = f"big median {k}: outpost {o:.4f} (min {min(r[k] for r in op):.4f})"
    if ref:
        d = statistics.median(r[k] for r in ref)
        ratio = f"{o / d:.2f}" if d > 0 else "n/a (dovecot under 10 us)"
        line += f", dovecot {d:.4f} (min {min(r[k] for r in ref):.4f}), ratio outpost/dovecot {ratio}"
    print(line)
EOF
  stop_outpost big
fi

log "done; results in $OUT"
cat "$SUMMARY"
