"""Storage faults seen from the wire (issue 8): when the disk is full or the
database is gone, SMTP answers 452 4.3.1 / 451 4.3.0 and IMAP APPEND answers
NO - never an acknowledgement for mail that was not stored - and the server
recovers by itself when the fault goes away.

The full disk is real: the data directory is a small tmpfs (needs root to
mount; skipped otherwise, a failure under CI=true). The database outage is
real too: the PostgreSQL test database stops accepting connections and the
server's connections are terminated."""

import imaplib
import os
import smtplib
import subprocess
import time
import uuid

import pytest

from conftest import PASSWORD, PG_BASE, Server, pg_available

USER = "user@example.test"


def message(size, tag):
    mid = f"{tag}-{uuid.uuid4().hex[:10]}@faults.test"
    line = "y" * 76 + "\r\n"
    body = line * (size // len(line) + 1)
    return mid, (f"From: a@outside.example\r\nTo: {USER}\r\nSubject: fault {mid}\r\n"
                 f"Message-ID: <{mid}>\r\n\r\n{body}").encode()


def imap_login(server):
    m = imaplib.IMAP4("127.0.0.1", server.port("imap"))
    m.login(USER, PASSWORD)
    return m


def inbox_message_ids(server):
    m = imap_login(server)
    try:
        typ, data = m.select("INBOX", readonly=True)
        assert typ == "OK"
        if int(data[0]) == 0:
            return []
        typ, data = m.fetch("1:*", "(BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        assert typ == "OK"
        out = []
        for item in data:
            if isinstance(item, tuple):
                v = item[1].decode().split(":", 1)[1].strip()
                out.append(v.strip("<>"))
        return out
    finally:
        m.logout()


@pytest.fixture
def small_disk(tmp_path):
    """A server whose whole data directory lives on a 12 MiB tmpfs."""
    data = tmp_path / "data"
    data.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(data)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        if os.environ.get("CI") == "true":
            pytest.fail(f"cannot mount a tmpfs for the full-disk test: {r.stderr}")
        pytest.skip(f"cannot mount a tmpfs (needs root): {r.stderr.strip()}")
    s = Server(tmp_path, listeners=["smtp", "imap"])
    try:
        s.add_user(USER)
        s.start()
        yield s
    finally:
        s.close()
        subprocess.run(["umount", "-l", str(data)], check=False)


def test_full_disk_is_refused_with_452_and_nothing_acknowledged_is_lost(small_disk):
    s = small_disk
    data = s.data
    acked, refused = [], []
    c = smtplib.SMTP("127.0.0.1", s.port("smtp"), timeout=30)
    # Small bodies go into the database, large ones into blob files: fill
    # with both until the server refuses.
    sizes = [20_000, 150_000]
    for i in range(400):
        mid, raw = message(sizes[i % 2], f"fill{i}")
        try:
            c.sendmail("a@outside.example", [USER], raw)
            acked.append(mid)
        except smtplib.SMTPDataError as e:
            refused.append((e.smtp_code, e.smtp_error.decode()))
            if len(refused) >= 4:
                break
        except smtplib.SMTPRecipientsRefused as e:
            refused.append(list(e.recipients.values())[0])
            if len(refused) >= 4:
                break
    assert refused, "the disk never filled up"
    for code, text in refused:
        assert code in (452, 451), (code, text)
        assert code != 452 or "4.3.1" in text, text
    assert any(code == 452 for code, _ in refused), refused
    # The session is still usable after the refusals.
    assert c.noop()[0] == 250

    # IMAP APPEND is refused with NO, and the connection stays open.
    m = imap_login(s)
    big = message(300_000, "append")[1]
    typ, data_ = m.append("INBOX", None, None, big)
    assert typ == "NO", (typ, data_)
    assert m.noop()[0] == "OK"
    m.logout()

    # Grow the file system: the server accepts mail again by itself...
    subprocess.run(["mount", "-o", "remount,size=64m", str(data)], check=True)
    deadline = time.time() + 30
    while True:
        mid, raw = message(20_000, "after")
        try:
            c.sendmail("a@outside.example", [USER], raw)
            acked.append(mid)
            break
        except (smtplib.SMTPDataError, smtplib.SMTPRecipientsRefused):
            assert time.time() < deadline, "no recovery after the disk grew"
            time.sleep(0.5)
    c.quit()
    # ... and every acknowledged message is there, readable, once.
    stored = inbox_message_ids(s)
    missing = [m for m in acked if m not in stored]
    assert not missing, f"{len(missing)} acknowledged messages missing: {missing[:3]}"
    # Restarting on the grown disk keeps all of it.
    s.restart()
    assert sorted(inbox_message_ids(s)) == sorted(stored)


def psql(db, sql):
    subprocess.run(["psql", f"{PG_BASE}/{db}", "-v", "ON_ERROR_STOP=1", "-qAtc", sql],
                   check=True, capture_output=True, text=True, timeout=30)


@pytest.fixture
def pg_server(tmp_path):
    if not pg_available():
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL is required under CI=true")
        pytest.skip("PostgreSQL not available")
    s = Server(tmp_path, backend="postgres", listeners=["smtp", "imap"])
    try:
        s.add_user(USER)
        s.start()
        yield s
    finally:
        psql("postgres", f"ALTER DATABASE {s.pg_db} WITH ALLOW_CONNECTIONS true")
        s.close()


def test_database_gone_gives_temporary_failures_then_recovers(pg_server):
    s = pg_server
    # A session opened while everything works...
    c = smtplib.SMTP("127.0.0.1", s.port("smtp"), timeout=60)
    m = imap_login(s)
    assert m.select("INBOX")[0] == "OK"
    mid, raw = message(4000, "before")
    c.sendmail("a@outside.example", [USER], raw)
    acked = [mid]

    # A transaction whose RCPT is accepted before the outage ...
    mid, raw = message(4000, "during-data")
    assert c.mail("a@outside.example")[0] == 250
    assert c.rcpt(USER)[0] == 250

    # ... then the database goes away under it.
    psql("postgres", f"ALTER DATABASE {s.pg_db} WITH ALLOW_CONNECTIONS false")
    psql("postgres", f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     f"WHERE datname = '{s.pg_db}' AND pid <> pg_backend_pid()")

    # End of DATA: 451 4.3.0, never a 250.
    code, text = c.data(raw)
    assert code == 451 and b"4.3.0" in text, (code, text)
    # A new RCPT cannot be looked up: 451 4.4.3, never "user unknown" (550).
    assert c.mail("a@outside.example")[0] == 250
    code, text = c.rcpt(USER)
    assert code == 451 and b"4.4.3" in text, (code, text)
    c.rset()

    typ, data = m.append("INBOX", None, None, message(4000, "append-during")[1])
    assert typ == "NO", (typ, data)

    # The database comes back: the server reconnects without a restart.
    psql("postgres", f"ALTER DATABASE {s.pg_db} WITH ALLOW_CONNECTIONS true")
    deadline = time.time() + 60
    while True:
        mid, raw = message(4000, "after")
        try:
            c.sendmail("a@outside.example", [USER], raw)
            acked.append(mid)
            break
        except (smtplib.SMTPDataError, smtplib.SMTPRecipientsRefused):
            assert time.time() < deadline, "no recovery after the database came back:\n" + s.log_text()
            c.rset()
            time.sleep(1)
    c.quit()
    try:
        m.logout()
    except (imaplib.IMAP4.error, OSError):
        pass
    stored = inbox_message_ids(s)
    assert all(a in stored for a in acked), (acked, stored)
    assert not any(x.startswith(("during", "append-during")) for x in stored), stored
