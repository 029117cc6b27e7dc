"""Crash safety (issue 8): a message that got 250 after DATA is in its
recipients' mailboxes after the server is killed with SIGKILL mid-load and
restarted. At-least-once is allowed: duplicates are counted and reported."""

import smtplib
import sqlite3
import subprocess
import threading
import time
import uuid

from conftest import PG_BASE


def stored_message_ids(server):
    q = "SELECT message_id FROM messages"
    if server.backend == "postgres":
        out = subprocess.run(["psql", "-At", f"{PG_BASE}/{server.pg_db}", "-c", q],
                             capture_output=True, text=True, check=True).stdout
        return [l for l in out.splitlines() if l]
    con = sqlite3.connect(server.data / "outpost.db")
    try:
        return [r[0] for r in con.execute(q) if r[0]]
    finally:
        con.close()


def sender(port, tag, acked, stop, errors):
    """Sends messages until told to stop; records Message-IDs that got 250."""
    n = 0
    while not stop.is_set():
        try:
            c = smtplib.SMTP("127.0.0.1", port, timeout=10)
            c.ehlo("crash.test")
            while not stop.is_set():
                mid = f"{tag}-{n}-{uuid.uuid4().hex[:8]}@crash.test"
                n += 1
                msg = (f"From: a@outside.example\r\nTo: user@example.test\r\nSubject: crash {mid}\r\n"
                       f"Message-ID: <{mid}>\r\n\r\n" + "x" * 2000 + "\r\n").encode()
                c.sendmail("a@outside.example", ["user@example.test"], msg)
                acked.append(mid)  # only after the 250
        except (OSError, smtplib.SMTPException) as e:
            errors.append(repr(e))
            time.sleep(0.05)


def run_crash(server, seconds_before_kill=2.0, connections=20):
    port = server.port("smtp")
    acked, errors = [], []
    stop = threading.Event()
    threads = [threading.Thread(target=sender, args=(port, f"c{i}", acked, stop, errors), daemon=True)
               for i in range(connections)]
    for t in threads:
        t.start()
    time.sleep(seconds_before_kill)
    assert server.kill() is not None
    acked_at_kill = list(acked)
    stop.set()
    for t in threads:
        t.join(15)
    server.start()
    stored = stored_message_ids(server)
    counts = {}
    for m in stored:
        counts[m] = counts.get(m, 0) + 1
    lost = [m for m in acked_at_kill if m not in counts]
    duplicates = sum(c - 1 for c in counts.values() if c > 1)
    print(f"\ncrash test ({server.backend}): acknowledged {len(acked_at_kill)}, stored {len(stored)}, "
          f"lost {len(lost)}, duplicates {duplicates}")
    assert len(acked_at_kill) > 50, f"load too small to mean anything: {len(acked_at_kill)} ({errors[:3]})"
    assert not lost, f"{len(lost)} acknowledged messages lost, e.g. {lost[:5]}"


def test_sigkill_mid_smtp_load_loses_nothing(any_backend_server):
    run_crash(any_backend_server)
    # and the server works after recovery
    c = smtplib.SMTP("127.0.0.1", any_backend_server.port("smtp"))
    c.sendmail("a@outside.example", ["user@example.test"], b"Subject: after\r\n\r\nok\r\n")
    c.quit()


def appender(port, tag, acked, stop, errors):
    """APPENDs until told to stop; records Message-IDs that got OK."""
    import imaplib
    from conftest import PASSWORD
    n = 0
    while not stop.is_set():
        try:
            m = imaplib.IMAP4("127.0.0.1", port, timeout=10)
            m.login("user@example.test", PASSWORD)
            while not stop.is_set():
                mid = f"{tag}-{n}-{uuid.uuid4().hex[:8]}@crash.test"
                n += 1
                msg = (f"From: a@outside.example\r\nTo: user@example.test\r\nSubject: append {mid}\r\n"
                       f"Message-ID: <{mid}>\r\n\r\n" + "z" * 3000 + "\r\n").encode()
                typ, _ = m.append("INBOX", "(\\Seen)", None, msg)
                if typ == "OK":
                    acked.append(mid)  # only after the tagged OK
        except (OSError, imaplib.IMAP4.error) as e:
            errors.append(repr(e))
            time.sleep(0.05)


def test_sigkill_mid_imap_append_loses_nothing(any_backend_server):
    s = any_backend_server
    port = s.port("imap")
    acked, errors = [], []
    stop = threading.Event()
    threads = [threading.Thread(target=appender, args=(port, f"a{i}", acked, stop, errors), daemon=True)
               for i in range(10)]
    for t in threads:
        t.start()
    time.sleep(2.0)
    assert s.kill() is not None
    acked_at_kill = list(acked)
    stop.set()
    for t in threads:
        t.join(15)
    s.start()
    stored = stored_message_ids(s)
    lost = [m for m in acked_at_kill if m not in stored]
    print(f"\nAPPEND crash test ({s.backend}): acknowledged {len(acked_at_kill)}, stored {len(stored)}, "
          f"lost {len(lost)}, duplicates {len(stored) - len(set(stored))}")
    assert len(acked_at_kill) > 20, f"load too small to mean anything: {len(acked_at_kill)} ({errors[:3]})"
    assert not lost, f"{len(lost)} acknowledged APPENDs lost, e.g. {lost[:5]}"
