"""Isolation between users over POP3, ManageSieve and SMTP (issue 8; IMAP
has its own file, test_imap_isolation.py): user A can never read, list,
delete or learn the existence of user B's messages or Sieve scripts, whatever
the message numbers or script names A sends ('../', '%', '*', non-UTF-8
bytes, very long names); SMTP VRFY/EXPN reveal nothing."""

import base64
import poplib
import re
import smtplib
import socket
import ssl

import pytest
import sievelib.managesieve as managesieve

from conftest import PASSWORD, client_tls_context, make_message

A = "user@example.test"
B = "other@example.test"
SECRET = "SecretWord-3f9a"


@pytest.fixture
def two_users(server):
    server.add_user(B)  # A (user@example.test) comes with the fixture
    for i in range(3):
        server.deliver(make_message(subject=f"for B {i}", body=SECRET + "\r\n", to=B), B)
    server.deliver(make_message(subject="for A", to=A), A)
    yield server


# --- POP3 ----------------------------------------------------------------

def pop(server, user):
    p = poplib.POP3("127.0.0.1", server.port("pop3"), timeout=10)
    p.user(user)
    p.pass_(PASSWORD)
    return p


def test_pop3_user_sees_only_own_maildrop(two_users):
    s = two_users
    pa = pop(s, A)
    assert pa.stat()[0] == 1
    # UIDLs are unique per maildrop (RFC 1939), so A's may equal B's; A still
    # sees exactly its own one.
    assert len(pa.uidl()[1]) == 1
    body = b"\r\n".join(pa.retr(1)[1])
    assert SECRET.encode() not in body
    pa.quit()
    # B's message numbers do not exist for A, in any spelling. (A fresh
    # session per argument: the server ends a session after 10 errors.)
    for arg in ["2", "3", "4", "0", "-1", "99999999999999999999", "1 2", "../2", "%", "*",
                B, "2\x00", "\xff\xfe"]:
        pa = pop(s, A)
        for cmd in ("RETR", "DELE", "TOP", "LIST", "UIDL"):
            line = f"{cmd} {arg}" + (" 0" if cmd == "TOP" else "")
            try:
                resp = pa._shortcmd(line)
            except poplib.error_proto as e:
                resp = e.args[0]
            if isinstance(resp, str):
                resp = resp.encode("latin-1")
            if cmd in ("LIST", "UIDL") and arg == "1 2":
                continue
            assert resp.startswith(b"-ERR"), (line, resp)
        pa.quit()
    pa = pop(s, A)
    assert pa.stat()[0] == 1
    pa.quit()

    # B's maildrop is intact: nothing A did reached it.
    pb = pop(s, B)
    assert pb.stat()[0] == 3
    assert all(SECRET.encode() in b"\r\n".join(pb.retr(n)[1]) for n in (1, 2, 3))
    pb.quit()


def test_pop3_other_users_password_and_login_forms(two_users):
    s = two_users
    for user, pw in [(A, "wrong-" + PASSWORD), (B + "\x00" + A, PASSWORD), ("other", PASSWORD),
                     ("../" + B, PASSWORD), ("*", PASSWORD), (B.upper() + " ", "x")]:
        p = poplib.POP3("127.0.0.1", s.port("pop3"), timeout=10)
        try:
            p.user(user)
            with pytest.raises(poplib.error_proto):
                p.pass_(pw)
        except poplib.error_proto:
            pass
        finally:
            p.close()


# --- ManageSieve ---------------------------------------------------------

class RawSieve:
    """A ManageSieve session at the byte level (after STARTTLS and AUTH)."""

    def __init__(self, server, login):
        self.sock = socket.create_connection(("127.0.0.1", server.port("managesieve")), timeout=10)
        self.buf = b""
        self.response()
        self.send(b"STARTTLS")
        assert self.response()[0].startswith(b"OK")
        self.sock = client_tls_context().wrap_socket(self.sock, server_hostname="localhost")
        self.buf = b""
        self.response()
        token = base64.b64encode(b"\0" + login.encode() + b"\0" + PASSWORD.encode())
        self.send(b'AUTHENTICATE "PLAIN" "' + token + b'"')
        assert self.response()[0].startswith(b"OK")

    def send(self, line: bytes):
        self.sock.sendall(line + b"\r\n")

    def _line(self):
        while b"\r\n" not in self.buf:
            d = self.sock.recv(65536)
            if not d:
                raise ConnectionError("closed")
            self.buf += d
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _read(self, n):
        while len(self.buf) < n:
            d = self.sock.recv(65536)
            if not d:
                raise ConnectionError("closed")
            self.buf += d
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _logical_line(self):
        """One response line, with any literals in it read inline."""
        out = b""
        while True:
            line = self._line()
            m = re.search(rb"\{(\d+)\+?\}$", line)
            if not m:
                return out + line
            out += line[:m.start()] + self._read(int(m.group(1)))

    def response(self):
        """(final status line, data lines before it)."""
        data = []
        while True:
            line = self._logical_line()
            if line.split(b" ", 1)[0] in (b"OK", b"NO", b"BYE"):
                return line, data
            data.append(line)

    def cmd(self, line: bytes):
        self.send(line)
        return self.response()


def lit(b: bytes) -> bytes:
    return b"{%d+}\r\n" % len(b) + b


CRAFTED_NAMES = [b"secret", b"../secret", b"../other@example.test/secret", b"other@example.test/secret",
                 b"/secret", b"%", b"*", b"..", b"secret\x00", b"\xff\xfesecret", b"x" * 5000,
                 b"../../" + b"a/" * 500]


def test_managesieve_user_cannot_reach_other_users_scripts(two_users):
    s = two_users
    ctx = client_tls_context()
    orig = managesieve.ssllib.create_default_context
    managesieve.ssllib.create_default_context = lambda *a, **k: ctx
    try:
        cb = managesieve.Client("127.0.0.1", s.port("managesieve"))
        assert cb.connect(B, PASSWORD, starttls=True, authmech="PLAIN"), cb.errmsg
        assert cb.putscript("secret", f'# {SECRET}\r\nkeep;\r\n')
        assert cb.setactive("secret")
        cb.logout()
    finally:
        managesieve.ssllib.create_default_context = orig

    a = RawSieve(s, A)
    status, data = a.cmd(b"LISTSCRIPTS")
    assert status.startswith(b"OK") and data == [], data
    # The answers for "B's script" and "no such script" are the same.
    for verb in (b"GETSCRIPT", b"DELETESCRIPT", b"SETACTIVE"):
        s1 = a.cmd(verb + b' "secret"')[0]
        s2 = a.cmd(verb + b' "never-existed"')[0]
        assert s1 == s2 and s1.startswith(b"NO"), (verb, s1, s2)
    for name in CRAFTED_NAMES:
        # A fresh session per name: the server ends a session after 20
        # refused commands (a limit of its own, also tested elsewhere).
        a.cmd(b"LOGOUT")
        a = RawSieve(s, A)
        for verb in (b"GETSCRIPT", b"DELETESCRIPT", b"SETACTIVE"):
            status, data = a.cmd(verb + b" " + lit(name))
            assert not any(SECRET.encode() in d for d in data), (verb, name)
            assert status.startswith(b"NO"), (verb, name, status)
        status, _ = a.cmd(b"RENAMESCRIPT " + lit(name) + b" " + lit(b"mine"))
        assert status.startswith(b"NO"), (name, status)
        # A PUTSCRIPT under a crafted name lands in A's own space or is refused.
        status, _ = a.cmd(b"PUTSCRIPT " + lit(name) + b" " + lit(b"keep;\r\n"))
        assert status.startswith((b"OK", b"NO")), (name, status)
    status, data = a.cmd(b"LISTSCRIPTS")
    assert status.startswith(b"OK")
    assert not any(SECRET.encode() in d for d in data)
    a.cmd(b"LOGOUT")

    # B's script is untouched and still active.
    b = RawSieve(s, B)
    status, data = b.cmd(b"LISTSCRIPTS")
    assert any(l.startswith(b'"secret" ACTIVE') for l in data), data
    status, data = b.cmd(b'GETSCRIPT "secret"')
    assert status.startswith(b"OK") and SECRET.encode() in data[-1]


# --- SMTP ----------------------------------------------------------------

def test_smtp_vrfy_and_expn_reveal_nothing(two_users):
    s = two_users
    s.cli("group", "add", "staff@example.test", "--member", A, "--member", B, check=False)
    with smtplib.SMTP("127.0.0.1", s.port("smtp"), timeout=10) as c:
        answers = {}
        for arg in [A, B, "nobody@example.test", "staff@example.test", "other", "postmaster"]:
            answers[("VRFY", arg)] = c.verify(arg)
            answers[("EXPN", arg)] = c.expn(arg)
        # The same reply whether or not the address exists, and no address in it.
        for verb in ("VRFY", "EXPN"):
            replies = {v for (k, _), v in answers.items() if k == verb}
            assert len(replies) == 1, replies
            code, text = replies.pop()
            assert code in (252, 502), (verb, code, text)
            assert b"@" not in text
    # Over submission, after AUTH as A, still nothing about B.
    with smtplib.SMTP("127.0.0.1", s.port("submission"), timeout=10) as c:
        c.starttls(context=client_tls_context())
        c.login(A, PASSWORD)
        assert c.verify(B) == c.verify("nobody@example.test")
        assert c.expn("staff@example.test") == c.expn("nobody@example.test")
