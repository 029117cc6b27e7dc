#!/bin/bash
# bench/imap-callgrind.sh - instruction counts of large-mailbox IMAP commands
# (issue 14), repeatable on a loaded machine: fills big@example.test with N
# messages over LMTP once (1:N/2 then \Seen), then runs the server under
# valgrind's callgrind and zeroes/dumps the counters around each of
# UID SEARCH ALL, SEARCH UNSEEN, UID FETCH 1:* (FLAGS) and
# UID SEARCH KEYWORD $Junk. Prints one "totals:" line per command.
#
#   bench/imap-callgrind.sh BIN LABEL [N]      (CG_DIR: work directory)
#
# Compare two builds of the same profile on the same CG_DIR (the fill is
# kept between runs; delete CG_DIR/filled to refill).
set -e
BIN=$1; LABEL=$2; N=${3:-20000}
D=${CG_DIR:-/var/tmp/imap-callgrind}; mkdir -p $D
cfg=$D/outpost.toml
port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
if [ ! -f $D/filled ]; then
  rm -rf $D/data; imap=$(port); lmtp=$(port)
  cat > $cfg <<EOC
hostname = "mail.example.test"
data_dir = "$D/data"
[storage]
url = "sqlite://$D/data/outpost.db"
[listen]
imap = ["127.0.0.1:$imap"]
lmtp = ["127.0.0.1:$lmtp"]
[auth]
allow_plaintext_on_loopback = true
EOC
  $BIN domain add example.test --config $cfg >/dev/null
  printf 'password1\n' | $BIN user add big@example.test --password-stdin --config $cfg >/dev/null
  $BIN serve --config $cfg > $D/fill.log 2>&1 & pid=$!
  for _ in $(seq 100); do [ -f $D/data/listeners.json ] && break; sleep 0.2; done
  python3 - $lmtp $N <<'EOP'
import smtplib, sys, threading
port, n = int(sys.argv[1]), int(sys.argv[2])
def work(k):
    c = smtplib.LMTP("127.0.0.1", port)
    for i in range(k, n, 8):
        c.sendmail("s@x.test", ["big@example.test"], f"From: s@x.test\r\nSubject: m{i}\r\nMessage-ID: <{i}@x>\r\n\r\nbody {i}\r\n".encode())
    c.quit()
ts = [threading.Thread(target=work, args=(k,)) for k in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
EOP
  kill -TERM $pid; wait $pid || true
  touch $D/filled
fi
imap=$(grep '^imap' $cfg | grep -o '[0-9]*"' | tr -d '"')
valgrind --tool=callgrind --callgrind-out-file=$D/cg.$LABEL.%p $BIN serve --config $cfg > $D/cg.$LABEL.log 2>&1 & vpid=$!
trap "kill -TERM $vpid 2>/dev/null" EXIT
for _ in $(seq 600); do python3 -c "import socket;socket.create_connection(('127.0.0.1',$imap)).close()" 2>/dev/null && break; sleep 0.5; done
python3 - $imap $vpid $LABEL $N <<'EOP'
import socket, subprocess, sys
port, vpid, label, half = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]) // 2
s = socket.create_connection(("127.0.0.1", port)); f = s.makefile("rb")
f.readline()
def cmd(tag, line):
    s.sendall(f"{tag} {line}\r\n".encode()); size = 0
    while True:
        l = f.readline(); size += len(l)
        if l.startswith(tag.encode() + b" "):
            assert b" OK" in l, l; return size
cmd("a", "LOGIN big@example.test password1")
cmd("b", "SELECT INBOX")
cmd("b2", f"STORE 1:{half} +FLAGS.SILENT (\\Seen)")
for tag, line in [("c", "UID SEARCH ALL"), ("d", "SEARCH UNSEEN"), ("e", "UID FETCH 1:* (FLAGS)"), ("f", "UID SEARCH KEYWORD $Junk")]:
    cmd("w" + tag, "NOOP")
    subprocess.run(["callgrind_control", "-z", vpid], check=True, capture_output=True)
    size = cmd(tag, line)
    subprocess.run(["callgrind_control", "--dump=" + f"{label}-{tag}", vpid], check=True, capture_output=True)
    print(line, size, "bytes")
cmd("z", "LOGOUT")
EOP
kill -TERM $vpid; wait $vpid || true
for f in $D/cg.$LABEL.*; do
  case $f in *.log) continue;; esac
  desc=$(grep -m1 '^desc: Trigger' $f || true); tot=$(grep -m1 '^totals:' $f || grep -m1 '^summary:' $f)
  echo "$(basename $f) $desc $tot"
done
