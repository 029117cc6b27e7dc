"""Changes from other sessions (issue 4): IDLE sees an SMTP delivery within a
second, NOOP reports EXISTS/EXPUNGE/FETCH, QRESYNC VANISHED (EARLIER) after
expunges, and a core flow on both backends."""

import re
import socket
import time

from imap_helpers import Raw, client, msg, send_many, smtp_send, status_word


def read_until(r, pred, timeout):
    """Reads untagged responses until pred(line) or timeout; returns lines."""
    got = []
    deadline = time.time() + timeout
    while time.time() < deadline:
        r.sock.settimeout(max(0.05, deadline - time.time()))
        try:
            line = r.read_response()
        except (socket.timeout, TimeoutError):
            break
        got.append(line)
        if pred(line):
            return got, True
    r.sock.settimeout(10)
    return got, False


def test_idle_sees_smtp_delivery_within_a_second(server):
    send_many(server, [msg("old")])
    r = Raw(server.port("imap"))
    r.login()
    r.ok("SELECT INBOX")
    r.send(b"i1 IDLE\r\n")
    assert r.read_response().startswith(b"+")
    t0 = time.time()
    smtp_send(server, msg("new"))
    got, ok = read_until(r, lambda l: l == b"* 2 EXISTS\r\n", 1.0 + (time.time() - t0))
    elapsed = time.time() - t0
    assert ok, got
    assert elapsed < 1.5, elapsed  # from sending; the store notification itself must be prompt
    # another session flags and expunges: FETCH and EXPUNGE arrive during IDLE
    c = client(server)
    c.select_folder("INBOX")
    c.add_flags([1], [b"\\Deleted"])
    c.expunge()
    c.logout()
    got, ok = read_until(r, lambda l: l == b"* 1 EXPUNGE\r\n", 2.0)
    assert ok, got
    r.send(b"DONE\r\n")
    status, _ = r.wait("i1")
    assert status_word(status) == b"OK", status
    u = r.ok("UID SEARCH ALL")
    assert u == [b"* SEARCH 2\r\n"], u
    r.close()


def test_idle_with_imapclient(server):
    c = client(server)
    c.select_folder("INBOX")
    c.idle()
    smtp_send(server, msg("during idle"))
    responses = c.idle_check(timeout=3)
    c.idle_done()
    assert (1, b"EXISTS") in responses, responses
    c.logout()


def test_noop_reports_changes_from_other_sessions(server):
    send_many(server, [msg("a"), msg("b")])
    a = Raw(server.port("imap"))
    a.login()
    a.ok("SELECT INBOX")
    smtp_send(server, msg("c"))
    u = a.ok("NOOP")
    assert b"* 3 EXISTS\r\n" in u, u
    b = client(server)
    b.select_folder("INBOX")
    b.add_flags([2], [b"\\Deleted", b"\\Seen"])
    b.expunge()
    b.logout()
    u = a.ok("NOOP")
    assert b"* 2 EXPUNGE\r\n" in u, u
    # no EXPUNGE during FETCH/STORE/SEARCH (RFC 3501 7.4.1): only on NOOP/IDLE/CHECK etc.
    b = client(server)
    b.select_folder("INBOX")
    b.add_flags([1], [b"\\Deleted"])
    b.expunge()
    b.logout()
    u = a.ok("FETCH 1:* (FLAGS)")
    assert not any(x.endswith(b"EXPUNGE\r\n") for x in u), u
    u = a.ok("SEARCH ALL")
    assert not any(x.endswith(b"EXPUNGE\r\n") for x in u), u
    u = a.ok("NOOP")
    assert b"* 1 EXPUNGE\r\n" in u, u
    a.close()


def test_qresync_vanished_earlier(server):
    send_many(server, [msg(f"m{i}") for i in range(1, 7)])
    r = Raw(server.port("imap"))
    r.login()
    r.ok("ENABLE QRESYNC")
    status, untagged = r.cmd("SELECT INBOX (CONDSTORE)")
    j = b"".join(untagged)
    validity = int(re.search(rb"UIDVALIDITY (\d+)", j).group(1))
    modseq = int(re.search(rb"HIGHESTMODSEQ (\d+)", j).group(1))
    r.ok("UNSELECT")
    # another session expunges UIDs 2 and 5 and flags 3
    c = client(server)
    c.select_folder("INBOX")
    c.add_flags([2, 5], [b"\\Deleted"])
    c.add_flags([3], [b"\\Flagged"])
    c.expunge()
    c.logout()
    status, untagged = r.cmd(f"SELECT INBOX (QRESYNC ({validity} {modseq} 1:6))")
    assert status_word(status) == b"OK", status
    v = [u for u in untagged if u.startswith(b"* VANISHED")]
    assert v == [b"* VANISHED (EARLIER) 2,5\r\n"], untagged
    fetches = [u for u in untagged if b"FETCH" in u]
    assert any(b"UID 3" in f and b"\\Flagged" in f for f in fetches), untagged
    assert b"* 4 EXISTS\r\n" in untagged
    # UID FETCH ... (CHANGEDSINCE m VANISHED)
    u = r.ok(f"UID FETCH 1:* (FLAGS) (CHANGEDSINCE {modseq} VANISHED)")
    assert b"* VANISHED (EARLIER) 2,5\r\n" in u, u
    # live expunge while selected with QRESYNC -> VANISHED (not EXPUNGE)
    c = client(server)
    c.select_folder("INBOX")
    c.add_flags([6], [b"\\Deleted"])
    c.expunge()
    c.logout()
    u = r.ok("NOOP")
    assert b"* VANISHED 6\r\n" in u and not any(x.endswith(b"EXPUNGE\r\n") for x in u), u
    r.close()


def test_core_flow_both_backends(any_backend_server):
    s = any_backend_server
    smtp_send(s, msg("hello both"))
    r = Raw(s.port("imap"))
    r.login()
    r.ok("SELECT INBOX")
    r.send(b"i1 IDLE\r\n")
    assert r.read_response().startswith(b"+")
    smtp_send(s, msg("second"))
    got, ok = read_until(r, lambda l: l == b"* 2 EXISTS\r\n", 2.0)
    assert ok, got
    r.send(b"DONE\r\n")
    r.wait("i1")
    r.close()
    c = client(s, tls="starttls")
    c.select_folder("INBOX")
    assert c.search(["SUBJECT", "hello"]) == [1]
    c.add_flags([1], [b"\\Seen", b"Work"])
    c.create_folder("Kept")
    c.move([1], "Kept")
    c.append("Kept", msg("appended"), flags=[b"\\Draft"])
    c.logout()
    s.restart()
    c = client(s, tls="imaps")
    info = c.select_folder("Kept")
    assert info[b"EXISTS"] == 2 and info[b"UIDNEXT"] == 3
    assert set(c.get_flags([1])[1]) == {b"\\Seen", b"Work"}
    body = c.fetch([1], ["BODY.PEEK[]"])[1][b"BODY[]"]
    assert body.startswith(b"Return-Path: <sender@outside.example>\r\n") and b"Subject: hello both" in body
    assert c.select_folder("INBOX")[b"EXISTS"] == 1
    c.logout()
