#!/usr/bin/env bash
# bench/smtp-bench.sh - SMTP ingest, end to end: Outpost against the reference
# Postfix -> Dovecot LMTP -> Maildir stack, in the same run, with the same load
# generator (../shared/bench/smtp-load.sh, which drives Postfix's smtp-source).
#
#   bench/smtp-bench.sh                 # N=20000 messages of 4 KB, 100 users, 20 connections
#   RUNS=3 bench/smtp-bench.sh          # repeat (each run: Outpost, then the reference)
#   RECORD=1 bench/smtp-bench.sh        # also add a row per run to docs/benchmarks.md
#   SKIP_REF=1 / SKIP_BUILD=1 / KEEP=1  # Outpost only / use the existing build / keep the data dir
#   OUTPOST_BIN=PATH                    # benchmark this binary (implies SKIP_BUILD=1)
#   PERF=1                              # perf record the Outpost server during its load
#
# Outpost: release build, fresh data directory (SQLite store, blobs next to it,
# durability on: every 250 follows fsync), only the smtp listener, on a free
# loopback port; users user1..user100@example.test. "Delivered" means a row in
# `messages`: smtp-load.py normally counts Maildir files or asks IMAP; Outpost
# has no IMAP yet, so its Maildir counter is replaced by a COUNT(*) on the store
# (the rest of the tool - plan, timing, CPU accounting - is used unchanged).
#
# Reference: ../shared/bench/start-ref.sh on freshly wiped mailboxes (port 2525),
# counted in the Maildirs, as ../shared/bench/bench-all.sh does.
#
# Needs: postfix (smtp-source), sqlite3 Python module, root for the reference stack.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED_BENCH:-$(cd "$ROOT/../shared/bench" 2>/dev/null && pwd || echo /work/shared/bench)}
N=${N:-20000}; C=${C:-20}; SIZE=${SIZE:-4096}; USERS=${USERS:-100}; RUNS=${RUNS:-1}
# The directory refuses passwords under 8 characters; smtp-source does not log in anyway.
PASSWORD=${PASSWORD:-benchpass}
SETTLE=${SETTLE:-20}
OUT=${OUT:-/var/tmp/outpost-smtp-bench/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"

log() { echo "[smtp-bench $(date +%T)] $*" | tee -a "$OUT/bench.log" >&2; }

command -v smtp-source >/dev/null || [ -x /usr/sbin/smtp-source ] || {
  echo "smtp-source missing: apt-get install postfix (it ships /usr/sbin/smtp-source)" >&2; exit 2; }

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${OUTPOST_BIN:-$TARGET_DIR/release/outpost}
if [ -z "${SKIP_BUILD:-}" ] && [ -z "${OUTPOST_BIN:-}" ]; then
  log "cargo build --release -p outpost"
  (cd "$ROOT" && cargo build --release -p outpost)
fi
[ -x "$BIN" ] || { echo "no release binary at $BIN" >&2; exit 2; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
json_get() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["summary"][sys.argv[2]])' "$1" "$2"; }

SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT

# Runs the shared load tool with its Maildir counter swapped for a count of
# stored messages in Outpost's SQLite database.
load_outpost() {  # db port json
  python3 - "$SHARED" "$1" -- --host 127.0.0.1 --port "$2" --user-pattern 'user%d@example.test' \
      --users "$USERS" -n "$N" -c "$C" -l "$SIZE" --maildir unused --pids "$SERVER_PID" --json "$3" <<'EOF'
import importlib.util, sqlite3, sys
shared, db = sys.argv[1], sys.argv[2]
sys.path.insert(0, shared)
spec = importlib.util.spec_from_file_location("smtp_load", f"{shared}/smtp-load.py")
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
mod.refstat.maildir_count = lambda *a: conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
sys.argv = ["smtp-load.py"] + sys.argv[sys.argv.index("--") + 1:]
sys.exit(mod.main())
EOF
}

run_outpost() {  # run-number -> prints e2e msgs/s
  local r=$1 dir port cfg
  dir=$(mktemp -d /var/tmp/outpost-bench.XXXXXX)
  port=$(free_port)
  cfg=$dir/outpost.toml
  cat > "$cfg" <<EOF
hostname = "mail.example.test"
data_dir = "$dir/data"
[storage]
url = "sqlite://$dir/data/outpost.db"
[listen]
smtp = ["127.0.0.1:$port"]
[limits]
# smtp-source opens a new connection per message, 20 at a time; the default
# of 20 per client address would refuse a few while old sessions wind down.
connections_per_ip = 200
[inbound]
# The reference stack checks no SPF/DKIM/DMARC, and this machine has no DNS:
# compare like with like (with checks on, each message would wait on DNS).
check = false
EOF
  "$BIN" domain add example.test --config "$cfg" >/dev/null
  for i in $(seq 1 "$USERS"); do
    printf '%s\n' "$PASSWORD" | "$BIN" user add "user$i@example.test" --password-stdin --config "$cfg" >/dev/null
  done
  "$BIN" serve --config "$cfg" > "$dir/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    [ -f "$dir/data/listeners.json" ] && break
    sleep 0.1
  done
  [ -f "$dir/data/listeners.json" ] || { cat "$dir/server.log" >&2; exit 1; }
  sync; sleep "$SETTLE"
  log "outpost run $r: load $(cut -d' ' -f1-3 /proc/loadavg), port $port, data $dir"
  local perf_pid=
  if [ -n "${PERF:-}" ]; then  # PERF=1: profile the server during the load (perf report -i FILE)
    perf record -F 997 -g -p "$SERVER_PID" -o "$OUT/outpost-$r.perf" >/dev/null 2>&1 &
    perf_pid=$!
  fi
  load_outpost "$dir/data/outpost.db" "$port" "$OUT/outpost-$r.json" > "$OUT/outpost-$r.out" 2>&1 \
    || { log "outpost run $r: load tool failed, see $OUT/outpost-$r.out"; cat "$OUT/outpost-$r.out" >&2; }
  if [ -n "$perf_pid" ]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
  kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=
  cp "$dir/server.log" "$OUT/outpost-$r.server.log"
  local stored
  stored=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM messages").fetchone()[0])' "$dir/data/outpost.db")
  log "outpost run $r: $stored messages stored; $(json_get "$OUT/outpost-$r.json" e2e_msgs_per_s) msgs/s e2e"
  [ -n "${KEEP:-}" ] || rm -rf "$dir"
}

run_ref() {
  WIPE=1 "$SHARED/stop-ref.sh" >/dev/null 2>&1 || true
  SKIP_INSTALL=1 SMOKE=0 "$SHARED/start-ref.sh" >/dev/null
  local dp pp
  dp=$(cat /opt/ref/run/dovecot/master.pid); pp=$(tr -d ' ' </var/spool/postfix/pid/master.pid)
  sync; sleep "$SETTLE"
  log "reference run $1: load $(cut -d' ' -f1-3 /proc/loadavg)"
  "$SHARED/smtp-load.sh" --port 2525 --users "$USERS" -n "$N" -c "$C" -l "$SIZE" \
      --maildir '/opt/ref/vmail/example.test/user%d/Maildir' --pids "$dp $pp" \
      --json "$OUT/ref-$1.json" > "$OUT/ref-$1.out" 2>&1 \
    || { log "reference run $1: load tool failed, see $OUT/ref-$1.out"; cat "$OUT/ref-$1.out" >&2; }
  log "reference run $1: $(json_get "$OUT/ref-$1.json" e2e_msgs_per_s) msgs/s e2e"
}

if [ -z "${SKIP_REF:-}" ] && [ ! -f /opt/ref/etc/dovecot/dovecot.conf ]; then
  log "installing the reference stack (start-ref.sh)"
  "$SHARED/start-ref.sh" >/dev/null
fi

COMMIT=${COMMIT:-$(cd "$ROOT" && git rev-parse --short HEAD)$(cd "$ROOT" && git diff --quiet HEAD -- crates || echo "+dirty")}
for r in $(seq 1 "$RUNS"); do
  run_outpost "$r"
  [ -n "${SKIP_REF:-}" ] || run_ref "$r"
done
[ -n "${SKIP_REF:-}" ] || { WIPE=1 "$SHARED/stop-ref.sh" >/dev/null 2>&1 || true; }

# Summary (and, with RECORD=1, one row per run in docs/benchmarks.md).
python3 - "$OUT" "$RUNS" "$COMMIT" "${RECORD:-}" "$ROOT/docs/benchmarks.md" <<'EOF'
import json, os, platform, subprocess, sys, time
out, runs, commit, record, doc = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
def summary(name):
    p = os.path.join(out, name)
    return json.load(open(p))["summary"] if os.path.exists(p) else None
mem = subprocess.run(["free", "-g"], capture_output=True, text=True).stdout.split("\n")[1].split()[1]
machine = f"{os.cpu_count()} CPU, {mem} GB, Linux {platform.release()}"
rows = []
for r in range(1, runs + 1):
    o, ref = summary(f"outpost-{r}.json"), summary(f"ref-{r}.json")
    if not o:
        continue
    ratio = f"{o['e2e_msgs_per_s'] / ref['e2e_msgs_per_s']:.2f}x" if ref and ref["e2e_msgs_per_s"] else "-"
    ok = o["complete"] and not o["errors"] and (ref is None or (ref["complete"] and not ref["errors"]))
    rows.append("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |".format(
        time.strftime("%Y-%m-%d %H:%M"), commit, machine, r, o["e2e_msgs_per_s"],
        ref["e2e_msgs_per_s"] if ref else "-", ratio,
        f"{o['server_cpu_ms_per_msg']} / {ref['server_cpu_ms_per_msg'] if ref else '-'}",
        f"{o['machine_busy_pct']} / {ref['machine_busy_pct'] if ref else '-'}",
        "ok" if ok else f"INCOMPLETE (errors {o['errors']}/{ref['errors'] if ref else '-'})"))
    print(f"run {r}: outpost {o['e2e_msgs_per_s']} msgs/s, reference "
          f"{ref['e2e_msgs_per_s'] if ref else '-'} msgs/s, ratio {ratio}")
print(machine)
print(f"results: {out}")
if record and rows:
    text = open(doc).read() if os.path.exists(doc) else "# Benchmarks\n"
    head = ("| date | commit | machine | run | Outpost msgs/s | reference msgs/s | ratio "
            "| server CPU ms/msg (Outpost / ref) | machine busy % (Outpost / ref) | result |\n"
            "|---|---|---|---|---|---|---|---|---|---|")
    if "## SMTP ingest" not in text:
        text = text.rstrip("\n") + "\n\n## SMTP ingest\n\n" + head + "\n"
    start = text.index("## SMTP ingest")
    nxt = text.find("\n## ", start + 1)
    end = len(text) if nxt < 0 else nxt + 1
    lines = text[start:end].rstrip("\n").split("\n")
    if not any(l.startswith("| date | commit | machine |") for l in lines):
        lines += [""] + head.split("\n")
    last = max(i for i, l in enumerate(lines) if l.startswith("|"))
    lines[last + 1:last + 1] = rows
    text = text[:start] + "\n".join(lines) + "\n" + ("\n" + text[end:] if nxt >= 0 else "")
    open(doc, "w").write(text)
    print(f"recorded in {doc}")
EOF
