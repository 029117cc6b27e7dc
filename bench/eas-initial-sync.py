#!/usr/bin/env python3
"""ActiveSync initial Sync of a large Inbox (issue 16, item 8).

Fills a user's INBOX to --messages by IMAP APPEND (skipped when it already
holds that many), then, as a fresh device over TLS with pyactivesync:
Provision, FolderSync, Sync with SyncKey 0, and Syncs of WindowSize
--window until MoreAvailable is gone. Prints (and writes with --json) the
wall time of the whole initial sync, the messages received, the number of
Sync requests, per-request latency percentiles and the server's CPU time
(with --pid).

    python3 bench/eas-initial-sync.py --port HTTPS --imap-port IMAP \\
        --user user1@example.test --password pw --messages 10000 --window 100 --pid PID
"""

import argparse
import json
import os
import ssl
import statistics
import time

from imapclient import IMAPClient
from pyactivesync import Client


def cpu_seconds(pid):
    if not pid:
        return None
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fill(args):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    imap = IMAPClient(args.host, port=args.imap_port, ssl=args.imap_ssl, ssl_context=ctx if args.imap_ssl else None,
                      timeout=60)
    imap.login(args.user, args.password)
    have = imap.select_folder("INBOX")[b"EXISTS"]
    t = time.time()
    for n in range(have, args.messages):
        body = ("Plain text of message %d.\r\n" % n) * 20
        msg = (f"From: Sender {n % 97} <sender{n % 97}@outside.example>\r\nTo: {args.user}\r\n"
               f"Subject: Benchmark message {n}\r\nMessage-ID: <bench-{n}@outside.example>\r\n"
               f"Date: Tue, 01 Dec 2026 10:{n % 60:02d}:00 +0000\r\nMIME-Version: 1.0\r\n"
               f"Content-Type: text/plain; charset=utf-8\r\n\r\n{body}")
        imap.append("INBOX", msg.encode())
    imap.logout()
    return args.messages - have, time.time() - t


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True, help="HTTPS port")
    p.add_argument("--imap-port", type=int, required=True)
    p.add_argument("--imap-ssl", action="store_true")
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--messages", type=int, default=10000)
    p.add_argument("--window", type=int, default=100)
    p.add_argument("--pid", type=int)
    p.add_argument("--json")
    args = p.parse_args()

    appended, fill_secs = fill(args)
    c = Client(f"{args.host}:{args.port}", args.user, args.password, device_id=f"bench{int(time.time())}",
               verify_ssl=False, timeout=120)
    c._transport.session.trust_env = False
    cpu0 = cpu_seconds(args.pid)
    t0 = time.time()
    c.provision()
    inbox = {f.name: f for f in c.list_folders()}["INBOX"].id
    r = c.sync_folder(inbox, "0")
    key, got, latencies, requests = r.sync_key, 0, [], 0
    while True:
        t = time.time()
        r = c.sync_folder(inbox, key, window_size=args.window)
        latencies.append((time.time() - t) * 1000)
        requests += 1
        got += len(r.added)
        key = r.sync_key
        if not r.more_available:
            break
    total = time.time() - t0
    cpu1 = cpu_seconds(args.pid)
    latencies.sort()
    out = {
        "messages_in_inbox": args.messages,
        "appended_now": appended,
        "append_secs": round(fill_secs, 1),
        "window": args.window,
        "initial_sync_secs": round(total, 2),
        "messages_received": got,
        "sync_requests": requests,
        "sync_p50_ms": round(statistics.median(latencies), 1),
        "sync_p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))], 1),
        "messages_per_sec": round(got / total, 1),
        "server_cpu_secs": None if cpu0 is None else round(cpu1 - cpu0, 2),
    }
    print(json.dumps(out, indent=2))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
