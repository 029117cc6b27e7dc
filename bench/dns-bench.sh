#!/usr/bin/env bash
# bench/dns-bench.sh - SMTP ingest with the inbound SPF/DKIM/DMARC checks ON,
# against a local DNS server that loses a fraction of the queries
# (tests/lossy_dns.py), driven by the shared load tool (smtp-load.py, Postfix's
# smtp-source) as bench/smtp-bench.sh does.
#
#   bench/dns-bench.sh                     # N=5000 messages, 20 connections, 2 % of queries lost, TTL 0
#   DROP=0.1 TTL=300 N=20000 bench/dns-bench.sh
#   OUTPOST_BIN=/path/to/old/outpost bench/dns-bench.sh   # measure another build
#   SENDERS=many bench/dns-bench.sh       # every smtp-source run from its own domain
#   INBOUND_EXTRA='dns_retries = 3' ...   # more [inbound] lines (builds that know them)
# smtp-source does not retry a 451 4.4.3: a run with deferred messages ends
# after LOAD_TIMEOUT (120 s) of waiting for them, marked incomplete.
#
# The DNS server listens on 127.0.0.1:53 and the server runs in a private
# mount namespace whose /etc/resolv.conf says "nameserver 127.0.0.1", so any
# build - also one from before [inbound] dns_servers existed - uses it through
# the system resolver configuration, the way a production MX does. Needs root
# (unshare, port 53), postfix (smtp-source) and dnspython (tests/requirements.txt).
#
# Mail comes from loadgen@loadgen.test (HELO loadgen.test, 127.0.0.1), which
# publishes SPF "ip4:127.0.0.1 -all" and DMARC p=reject: every message passes,
# after an SPF query and the DMARC tree walk (_dmarc.loadgen.test, _dmarc.test).
# TTL=0 (the default) keeps every answer out of every cache; still, messages
# checked at the same moment share the resolver's queries in flight. With
# SENDERS=many each smtp-source run (N/USERS messages) comes from its own
# domain sN.loadgen.test (SPF from a wildcard, DMARC from loadgen.test's
# record), so nothing is shared: four queries a message. TTL=300 shows the cache.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SHARED=${SHARED_BENCH:-$(cd "$ROOT/../shared/bench" 2>/dev/null && pwd || echo /work/shared/bench)}
N=${N:-5000}; C=${C:-20}; SIZE=${SIZE:-4096}; USERS=${USERS:-100}
DROP=${DROP:-0.02}; TTL=${TTL:-0}
PYTHON=${PYTHON:-$( [ -x /var/tmp/outpost-ci-venv/bin/python ] && echo /var/tmp/outpost-ci-venv/bin/python || echo "$ROOT/.venv/bin/python")}
PASSWORD=benchpass
OUT=${OUT:-/var/tmp/outpost-dns-bench/$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT"
log() { echo "[dns-bench $(date +%T)] $*" | tee -a "$OUT/bench.log" >&2; }

TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
BIN=${OUTPOST_BIN:-$TARGET_DIR/release/outpost}
[ -x "$BIN" ] || { echo "no binary at $BIN (cargo build --release -p outpost)" >&2; exit 2; }
command -v smtp-source >/dev/null || [ -x /usr/sbin/smtp-source ] || {
  echo "smtp-source missing: apt-get install postfix" >&2; exit 2; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

DNS_PID= SERVER_PID=
cleanup() {
  for p in $SERVER_PID $DNS_PID; do
    if kill -0 "$p" 2>/dev/null; then kill -TERM "$p"; wait "$p" 2>/dev/null || true; fi
  done
}
trap cleanup EXIT

"$PYTHON" "$ROOT/tests/lossy_dns.py" --port 53 --drop "$DROP" --ttl "$TTL" \
  --record 'loadgen.test TXT v=spf1 ip4:127.0.0.1 -all' \
  --record '*.loadgen.test TXT v=spf1 ip4:127.0.0.1 -all' \
  --record '_dmarc.loadgen.test TXT v=DMARC1; p=reject' \
  --record 'mail.example.test A 127.0.0.1' > "$OUT/dns.log" 2>&1 &
DNS_PID=$!
sleep 1
kill -0 "$DNS_PID" || { cat "$OUT/dns.log" >&2; exit 1; }
echo "nameserver 127.0.0.1" > "$OUT/resolv.conf"

dir=$(mktemp -d /var/tmp/outpost-dns-bench.XXXXXX)
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
connections_per_ip = 200
[inbound]
check = true
${INBOUND_EXTRA:-}
EOF
"$BIN" domain add example.test --config "$cfg" >/dev/null
for i in $(seq 1 "$USERS"); do
  printf '%s\n' "$PASSWORD" | "$BIN" user add "user$i@example.test" --password-stdin --config "$cfg" >/dev/null
done
unshare -m --propagation private sh -c \
  'mount --bind "$1" /etc/resolv.conf && exec "$2" serve --config "$3"' _ "$OUT/resolv.conf" "$BIN" "$cfg" \
  > "$dir/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do [ -f "$dir/data/listeners.json" ] && break; sleep 0.1; done
[ -f "$dir/data/listeners.json" ] || { cat "$dir/server.log" >&2; exit 1; }
# (the pid is the exec'd outpost itself: the wrapper shell execs it)
log "binary $BIN; drop $DROP, ttl $TTL, senders ${SENDERS:-one}; $N messages, $C connections; load $(cut -d' ' -f1-3 /proc/loadavg)"

SENDERS=${SENDERS:-one} python3 - "$SHARED" "$dir/data/outpost.db" -- --host 127.0.0.1 --port "$port" --user-pattern 'user%d@example.test' \
    --users "$USERS" -n "$N" -c "$C" -l "$SIZE" --maildir unused --pids "$SERVER_PID" --json "$OUT/load.json" \
    --timeout "${LOAD_TIMEOUT:-120}" \
    > "$OUT/load.out" 2>&1 <<'EOF' || { log "load tool failed, see $OUT/load.out"; cat "$OUT/load.out" >&2; }
import importlib.util, os, sqlite3, sys
shared, db = sys.argv[1], sys.argv[2]
sys.path.insert(0, shared)
spec = importlib.util.spec_from_file_location("smtp_load", f"{shared}/smtp-load.py")
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
mod.refstat.maildir_count = lambda *a: conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
if os.environ.get("SENDERS") == "many":
    import itertools, subprocess, threading
    run, ids, lock = subprocess.run, itertools.count(1), threading.Lock()
    def run_as_new_sender(cmd, *a, **kw):
        with lock:
            n = next(ids)
        cmd = list(cmd)
        cmd[cmd.index("-f") + 1] = f"loadgen@s{n}.loadgen.test"
        cmd[cmd.index("-M") + 1] = f"s{n}.loadgen.test"
        return run(cmd, *a, **kw)
    mod.subprocess = type(sys)("subprocess_many")
    mod.subprocess.__dict__.update(subprocess.__dict__, run=run_as_new_sender)
sys.argv = ["smtp-load.py"] + sys.argv[sys.argv.index("--") + 1:]
sys.exit(mod.main())
EOF
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
kill -TERM "$DNS_PID"; wait "$DNS_PID" 2>/dev/null || true; DNS_PID=
cp "$dir/server.log" "$OUT/server.log"
stored=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT COUNT(*) FROM messages").fetchone()[0])' "$dir/data/outpost.db")
deferred=$(grep -cF "lookup failed" "$OUT/server.log" || true)
log "$stored messages stored; $(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["summary"]; print(s["e2e_msgs_per_s"], "msgs/s e2e, errors", s["errors"])' "$OUT/load.json"); deferred (451 4.4.3): $deferred"
log "$(tail -1 "$OUT/dns.log")"
log "results: $OUT"
[ -n "${KEEP:-}" ] || rm -rf "$dir"
