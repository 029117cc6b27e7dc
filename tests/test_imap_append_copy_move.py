"""APPEND (flags, date, APPENDUID, MULTIAPPEND, limits), COPY/MOVE (COPYUID),
EXPUNGE / UID EXPUNGE (issue 4)."""

import datetime
import re

import pytest

from conftest import make_message
from imap_helpers import Raw, client, msg, send_many, status_word


def test_append_flags_date_appenduid(server):
    c = client(server)
    when = datetime.datetime(2025, 6, 1, 12, 30, 0, tzinfo=datetime.timezone.utc)
    raw = make_message(subject="appended")
    resp = c.append("Drafts", raw, flags=[b"\\Draft", b"\\Seen", b"Work"], msg_time=when)
    m = re.search(rb"\[APPENDUID (\d+) (\d+)\]", resp)
    assert m, resp
    validity, uid = int(m.group(1)), int(m.group(2))
    info = c.select_folder("Drafts")
    assert info[b"UIDVALIDITY"] == validity and uid == 1
    f = c.fetch([uid], ["FLAGS", "INTERNALDATE", "BODY.PEEK[]", "RFC822.SIZE"])[uid]
    assert set(f[b"FLAGS"]) == {b"\\Draft", b"\\Seen", b"Work"}
    assert f[b"BODY[]"] == raw  # APPEND stores exactly what was sent (no Received prefix)
    assert f[b"RFC822.SIZE"] == len(raw)
    idate = f[b"INTERNALDATE"]
    assert (idate.year, idate.month, idate.day) == (2025, 6, 1)
    # second append: next UID
    resp = c.append("Drafts", make_message(subject="second"))
    assert re.search(rb"\[APPENDUID %d 2\]" % validity, resp), resp
    c.logout()


def test_append_errors_and_multiappend(server):
    r = Raw(server.port("imap"))
    r.login()
    data = make_message(subject="x")
    # TRYCREATE for a missing mailbox
    status, _ = r.cmd(b"APPEND NoSuch {%d+}\r\n" % len(data) + data)
    assert status_word(status) == b"NO" and b"[TRYCREATE]" in status, status
    # MULTIAPPEND: two messages in one command, UID range in APPENDUID
    d2 = make_message(subject="y")
    status, _ = r.cmd(b"APPEND INBOX (\\Seen) {%d+}\r\n" % len(data) + data + b" {%d+}\r\n" % len(d2) + d2)
    assert status_word(status) == b"OK" and re.search(rb"\[APPENDUID \d+ 1:2\]", status), status
    # synchronizing literal: wait for "+"
    tag = r.tag()
    r.send(tag.encode() + b" APPEND INBOX {%d}\r\n" % len(data))
    assert r.read_response().startswith(b"+")
    r.send(data + b"\r\n")
    status, _ = r.wait(tag)
    assert status_word(status) == b"OK", status
    # bad date/flags -> BAD, session continues
    status, _ = r.cmd(b'APPEND INBOX "99-Foo-2026 00:00:00 +0000" {%d+}\r\n' % len(data) + data)
    assert status_word(status) == b"BAD", status
    # over APPENDLIMIT (announced in CAPABILITY): refused before the data is read ([TOOBIG])
    caps = b"".join(r.ok("CAPABILITY"))
    limit = int(re.search(rb"APPENDLIMIT=(\d+)", caps).group(1))
    tag = r.tag()
    r.send(tag.encode() + b" APPEND INBOX {%d}\r\n" % (limit + 1))
    resp = r.read_response()
    assert resp.startswith(tag.encode() + b" NO") and b"TOOBIG" in resp, resp
    r.ok("NOOP")
    st = b"".join(r.ok("STATUS INBOX (MESSAGES)"))
    assert b"MESSAGES 3" in st, st
    r.close()


def test_copy_move_copyuid(server):
    send_many(server, [msg("a"), msg("b"), msg("c"), msg("d")])
    c = client(server)
    c.create_folder("Archive/2026")
    dst = c.folder_status("Archive/2026", [b"UIDVALIDITY"])[b"UIDVALIDITY"]
    c.select_folder("INBOX")
    c.add_flags([2], [b"\\Flagged"])
    r = Raw(server.port("imap"))
    r.login()
    r.ok("SELECT INBOX")
    status, _ = r.cmd("COPY 1:2 Archive/2026")
    assert re.search(rb"OK \[COPYUID %d 1:2 1:2\]" % dst, status), status
    status, untagged = r.cmd("UID MOVE 3:4 Archive/2026")
    assert status_word(status) == b"OK", status
    joined = b"".join(untagged) + status
    assert re.search(rb"\[COPYUID %d 3:4 3:4\]" % dst, joined), joined
    assert sum(u.endswith(b"EXPUNGE\r\n") for u in untagged) == 2, untagged
    status, _ = r.cmd("COPY 1 NoSuch")
    assert status_word(status) == b"NO" and b"TRYCREATE" in status, status
    status, untagged = r.cmd("MOVE 1 Trash")
    assert status_word(status) == b"OK"
    assert any(u == b"* 1 EXPUNGE\r\n" for u in untagged), untagged
    r.close()
    info = c.select_folder("Archive/2026")
    assert info[b"EXISTS"] == 4
    assert set(c.get_flags([2])[2]) == {b"\\Flagged"}  # flags copied
    assert c.select_folder("INBOX")[b"EXISTS"] == 1
    assert c.select_folder("Trash")[b"EXISTS"] == 1
    c.logout()


def test_expunge_and_uid_expunge(server):
    send_many(server, [msg(f"m{i}") for i in range(1, 6)])
    r = Raw(server.port("imap"))
    r.login()
    r.ok("SELECT INBOX")
    r.ok("STORE 1,3,5 +FLAGS.SILENT (\\Deleted)")
    # UID EXPUNGE removes only the given UIDs among the \Deleted ones
    untagged = r.ok("UID EXPUNGE 3")
    assert untagged == [b"* 3 EXPUNGE\r\n"], untagged
    # plain EXPUNGE removes the rest, highest sequence number rules per response
    untagged = r.ok("EXPUNGE")
    assert untagged == [b"* 1 EXPUNGE\r\n", b"* 3 EXPUNGE\r\n"] or \
        untagged == [b"* 4 EXPUNGE\r\n", b"* 1 EXPUNGE\r\n"], untagged
    u = r.ok("UID SEARCH ALL")
    assert u == [b"* SEARCH 2 4\r\n"], u
    r.close()


def test_expunge_readonly_refused(server):
    send_many(server, [msg("a")])
    r = Raw(server.port("imap"))
    r.login()
    r.ok("SELECT INBOX")
    r.ok("STORE 1 +FLAGS (\\Deleted)")
    r.ok("EXAMINE INBOX")
    status, _ = r.cmd("EXPUNGE")
    assert status_word(status) == b"NO", status
    status, _ = r.cmd("MOVE 1 Trash")
    assert status_word(status) == b"NO", status
    r.close()
