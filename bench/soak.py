#!/usr/bin/env python3
"""bench/soak.py - memory soak (issue 8): mixed SMTP + IMAP load against one
running `outpost serve` for a long time, sampling the server's RSS every
minute, then a verdict on whether memory grows after warm-up.

    bench/soak.py                       # 60 minutes, release build in target/
    MINUTES=10 bench/soak.py            # shorter
    OUTPOST_BIN=/path/to/outpost bench/soak.py

Load (all on loopback, steady state so that a growing RSS means a leak, not
a growing mailbox):
  - SMTP: SENDERS threads, each opening a connection, sending a batch of
    messages (RCPT to random users, 2-20 KB bodies), QUIT, repeat; about
    RATE messages/s in total.
  - IMAP: READERS threads, each logging in as a random user, SELECT INBOX,
    SEARCH, FETCH flags and a few full bodies, STORE \\Seen, IDLE for a
    moment, then marking everything older than the newest KEEP messages
    \\Deleted and EXPUNGE, LOGOUT, repeat (so mailboxes stay bounded).
  - Every minute: VmRSS and VmHWM of the server from /proc, open fds, thread
    count, messages delivered so far, errors so far, and the pack files and
    bytes under the blob directory.
  - SWEEP=30s (optional): run the store's sweep that often with no grace
    period ([storage] sweep_interval / sweep_grace), so expunged bodies are
    removed and packs compacted while the readers fetch bodies.

Output: CSV and JSON in $OUT, and a summary line: RSS at the end of warm-up,
at the end, and the least-squares slope of RSS after warm-up in KiB/minute.
"""

import csv
import imaplib
import json
import os
import random
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MINUTES = float(os.environ.get("MINUTES", "60"))
WARMUP = float(os.environ.get("WARMUP", "10"))
SAMPLE = float(os.environ.get("SAMPLE_SECS", "60"))
USERS = int(os.environ.get("USERS", "50"))
SENDERS = int(os.environ.get("SENDERS", "4"))
READERS = int(os.environ.get("READERS", "8"))
RATE = float(os.environ.get("RATE", "40"))
KEEP = int(os.environ.get("KEEP", "200"))
PASSWORD = "soakpass1"
SWEEP = os.environ.get("SWEEP")
OUT = os.environ.get("OUT", f"/var/tmp/outpost-soak/{time.strftime('%Y%m%d-%H%M%S')}")


def blob_usage(path):
    """(pack files, bytes of every file) under the blob directory."""
    packs, total = 0, 0
    for d, _, files in os.walk(path):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(d, name))
            except OSError:
                pass
            packs += name.endswith(".pack")
    return packs, total


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "Threads"):
                out[k] = int(v.split()[0])
    out["fds"] = len(os.listdir(f"/proc/{pid}/fd"))
    return out


class Counters:
    def __init__(self):
        self.lock = threading.Lock()
        self.sent = 0
        self.imap_sessions = 0
        self.expunged = 0
        self.errors = 0
        self.last_error = ""

    def add(self, **kw):
        with self.lock:
            for k, v in kw.items():
                setattr(self, k, getattr(self, k) + v)

    def error(self, e):
        with self.lock:
            self.errors += 1
            self.last_error = repr(e)[:200]


def body(n):
    line = "soak " + "x" * 66 + "\r\n"
    return line * max(1, n // len(line))


def sender(stop, port, c, rate_per_thread):
    rnd = random.Random()
    seq = 0
    while not stop.is_set():
        try:
            s = smtplib.SMTP("127.0.0.1", port, timeout=60)
            for _ in range(rnd.randint(5, 30)):
                if stop.is_set():
                    break
                seq += 1
                to = [f"user{rnd.randint(1, USERS)}@example.test" for _ in range(rnd.choice((1, 1, 1, 2, 3)))]
                msg = (f"From: Soak <soak@outside.example>\r\nTo: {', '.join(to)}\r\n"
                       f"Subject: soak {threading.get_ident()} {seq}\r\n"
                       f"Message-ID: <{threading.get_ident()}.{seq}.{time.time()}@soak>\r\n"
                       f"Date: Tue, 24 Nov 2026 10:00:00 +0000\r\n\r\n{body(rnd.randint(2000, 20000))}")
                s.sendmail("soak@outside.example", to, msg.encode())
                c.add(sent=1)
                time.sleep(rnd.expovariate(rate_per_thread))
            s.quit()
        except Exception as e:  # noqa: BLE001 - counted and reported
            c.error(e)
            time.sleep(1)


def reader(stop, port, c):
    rnd = random.Random()
    while not stop.is_set():
        try:
            m = imaplib.IMAP4("127.0.0.1", port, timeout=60)
            m.login(f"user{rnd.randint(1, USERS)}@example.test", PASSWORD)
            typ, data = m.select("INBOX")
            n = int(data[0])
            if n:
                m.search(None, "UNSEEN")
                m.fetch(f"1:{n}", "(FLAGS RFC822.SIZE)")
                for i in rnd.sample(range(1, n + 1), min(3, n)):
                    m.fetch(str(i), "(BODY.PEEK[] BODYSTRUCTURE ENVELOPE)")
                m.store(f"{max(1, n - 10)}:{n}", "+FLAGS", "(\\Seen)")
            # A short IDLE: the server must track and then drop the waiter.
            tag = m._new_tag().decode()
            m.send(f"{tag} IDLE\r\n".encode())
            m.readline()
            time.sleep(rnd.uniform(0.2, 2.0))
            m.send(b"DONE\r\n")
            while not m.readline().startswith(tag.encode()):
                pass
            if n > KEEP:
                m.store(f"1:{n - KEEP}", "+FLAGS.SILENT", "(\\Deleted)")
                m.expunge()
                c.add(expunged=n - KEEP)
            m.logout()
            c.add(imap_sessions=1)
        except Exception as e:  # noqa: BLE001 - counted and reported
            c.error(e)
            time.sleep(1)
        time.sleep(rnd.uniform(0.0, 0.5))


def slope(points):
    """Least-squares slope of (x, y) points."""
    n = len(points)
    if n < 2:
        return 0.0
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    num = sum((x - mx) * (y - my) for x, y in points)
    den = sum((x - mx) ** 2 for x, _ in points)
    return num / den if den else 0.0


def main():
    os.makedirs(OUT, exist_ok=True)
    binary = os.environ.get("OUTPOST_BIN")
    if not binary:
        target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
        subprocess.run(["cargo", "build", "--release", "-p", "outpost"], cwd=ROOT, check=True)
        binary = os.path.join(target, "release", "outpost")
    # Run a private copy so later builds cannot replace the binary mid-soak.
    work = tempfile.mkdtemp(prefix="outpost-soak.", dir="/var/tmp")
    shutil.copy(binary, os.path.join(work, "outpost"))
    binary = os.path.join(work, "outpost")
    smtp, imap = free_port(), free_port()
    cfg = os.path.join(work, "outpost.toml")
    with open(cfg, "w") as f:
        f.write(f"""hostname = "mail.example.test"
data_dir = "{work}/data"
[storage]
url = "sqlite://{work}/data/outpost.db"
{f'sweep_interval = "{SWEEP}"' + chr(10) + 'sweep_grace = "0s"' if SWEEP else ""}
[listen]
smtp = ["127.0.0.1:{smtp}"]
imap = ["127.0.0.1:{imap}"]
[auth]
allow_plaintext_on_loopback = true
[inbound]
check = false
[queue]
dns = false
""")
    run = lambda *a, **kw: subprocess.run([binary, *a, "--config", cfg], check=True,
                                          stdout=subprocess.DEVNULL, **kw)
    run("domain", "add", "example.test")
    for i in range(1, USERS + 1):
        run("user", "add", f"user{i}@example.test", "--password-stdin", input=(PASSWORD + "\n").encode())
    log = open(os.path.join(work, "server.log"), "w")
    server = subprocess.Popen([binary, "serve", "--config", cfg], stdout=log, stderr=subprocess.STDOUT)
    for _ in range(100):
        if os.path.exists(os.path.join(work, "data", "listeners.json")):
            break
        time.sleep(0.1)
    else:
        server.kill()
        sys.exit("server did not start; see " + log.name)

    c = Counters()
    stop = threading.Event()
    threads = [threading.Thread(target=sender, args=(stop, smtp, c, RATE / SENDERS), daemon=True)
               for _ in range(SENDERS)]
    threads += [threading.Thread(target=reader, args=(stop, imap, c), daemon=True) for _ in range(READERS)]
    for t in threads:
        t.start()

    rows = []
    start = time.time()
    header = ["minute", "rss_kib", "hwm_kib", "threads", "fds", "sent", "imap_sessions", "expunged", "errors",
              "packs", "blob_mib"]
    with open(os.path.join(OUT, "rss.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        try:
            while True:
                time.sleep(SAMPLE)
                if server.poll() is not None:
                    sys.exit(f"server exited with {server.returncode}; see {log.name}")
                st = proc_status(server.pid)
                minute = (time.time() - start) / 60
                packs, blob_bytes = blob_usage(os.path.join(work, "data", "blobs"))
                row = [round(minute, 2), st["VmRSS"], st["VmHWM"], st["Threads"], st["fds"],
                       c.sent, c.imap_sessions, c.expunged, c.errors, packs, round(blob_bytes / 2**20, 1)]
                rows.append(row)
                w.writerow(row)
                f.flush()
                print(" ".join(f"{k}={v}" for k, v in zip(header, row)), flush=True)
                if minute >= MINUTES:
                    break
        finally:
            stop.set()
    for t in threads:
        t.join(timeout=90)
    server.terminate()
    server.wait(timeout=60)

    after = [(r[0], r[1]) for r in rows if r[0] >= WARMUP]
    warm = after[0][1] if after else None
    summary = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(start)),
        "machine": f"nproc {os.cpu_count()}, kernel {os.uname().release}",
        "minutes": MINUTES, "warmup_minutes": WARMUP, "users": USERS,
        "senders": SENDERS, "readers": READERS, "rate": RATE,
        "messages_sent": c.sent, "imap_sessions": c.imap_sessions, "expunged": c.expunged,
        "errors": c.errors, "last_error": c.last_error,
        "rss_kib_after_warmup": warm, "rss_kib_end": rows[-1][1] if rows else None,
        "rss_kib_min_after_warmup": min((y for _, y in after), default=None),
        "rss_kib_max_after_warmup": max((y for _, y in after), default=None),
        "slope_kib_per_min_after_warmup": round(slope(after), 1),
        "fds_end": rows[-1][4] if rows else None,
        "sweep": SWEEP,
        "packs_end": rows[-1][9] if rows else None,
        "blob_mib_max": max((r[10] for r in rows), default=None),
        "blob_mib_end": rows[-1][10] if rows else None,
    }
    with open(os.path.join(OUT, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    print(json.dumps(summary, indent=1))
    if not os.environ.get("KEEP"):
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
