#!/usr/bin/env python3
# bench/imap-big.py - large-mailbox timings (issue 4 and 14): one client,
# one connection, time from sending a command to its tagged OK, for SELECT,
# UID SEARCH ALL, UID FETCH 1:* (FLAGS) and EXAMINE, on a mailbox that
# already holds N messages. Prints one JSON object per repetition.
#
#   imap-big.py HOST PORT USER PASSWORD N [REPS]
import json
import socket
import sys
import time

host, port, user, pw, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
reps = int(sys.argv[6]) if len(sys.argv) > 6 else 1


def session():
    s = socket.create_connection((host, port))
    f = s.makefile("rb", buffering=1 << 20)
    f.readline()

    def cmd(tag, line):
        s.sendall(f"{tag} {line}\r\n".encode())
        t = time.monotonic()
        size = 0
        untagged = []
        end = tag.encode() + b" "
        while True:
            l = f.readline()
            if not l:
                raise SystemExit(f"connection closed during {line!r}")
            size += len(l)
            if l.startswith(end):
                assert b" OK" in l, l
                return time.monotonic() - t, size, untagged
            if len(untagged) < 20:
                untagged.append(l)

    return s, cmd


for r in range(reps):
    s, cmd = session()
    cmd("a", f"LOGIN {user} {pw}")
    sel, _, u = cmd("b", "SELECT INBOX")
    assert any(f"* {n} EXISTS".encode() in l for l in u), u
    srch, srch_size, _ = cmd("c", "UID SEARCH ALL")
    fet, fet_size, _ = cmd("d", "UID FETCH 1:* (FLAGS)")
    ex, _, _ = cmd("e", "EXAMINE INBOX")
    cmd("f", "LOGOUT")
    s.close()
    print(json.dumps({
        "rep": r + 1, "messages": n,
        "select_s": round(sel, 5),
        "uid_search_all_s": round(srch, 5), "uid_search_all_bytes": srch_size,
        "uid_fetch_flags_s": round(fet, 5), "uid_fetch_flags_bytes": fet_size,
        "examine_s": round(ex, 5),
        "load1": float(open("/proc/loadavg").read().split()[0]),
    }), flush=True)
