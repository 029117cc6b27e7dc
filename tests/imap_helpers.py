"""Shared helpers for tests/test_imap_*.py: logged-in imapclient sessions,
SMTP delivery, and a small raw IMAP client for exchanges imapclient hides
(untagged responses, IDLE, QRESYNC, crafted bytes)."""

import re
import smtplib
import socket

from imapclient import IMAPClient

from conftest import PASSWORD, client_tls_context, make_message

USER = "user@example.test"


def client(server, tls=None, user=USER, password=PASSWORD, login=True):
    """An imapclient session: tls=None plain on the imap listener (plaintext
    is allowed on loopback in the harness), "starttls", or "imaps"."""
    if tls == "imaps":
        c = IMAPClient("127.0.0.1", port=server.port("imaps"), ssl=True, ssl_context=client_tls_context(),
                       timeout=15)
    else:
        c = IMAPClient("127.0.0.1", port=server.port("imap"), ssl=False, timeout=15)
        if tls == "starttls":
            c.starttls(client_tls_context())
    if login:
        c.login(user, password)
        # imapclient forgets capabilities at login and its literal sender reads
        # the cache directly (TypeError on None): fill it again.
        c.capabilities()
    return c


def smtp_send(server, msg: bytes, rcpts=(USER,), sender="sender@outside.example"):
    """Delivers over the server's SMTP listener; returns when the 250 came."""
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30) as s:
        s.sendmail(sender, list(rcpts), msg)


def send_many(server, msgs, rcpt=USER, sender="sender@outside.example"):
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30) as s:
        for m in msgs:
            s.sendmail(sender, [rcpt], m)


LITERAL = re.compile(rb"\{(\d+)\+?\}\r\n$")


class Raw:
    """A raw IMAP connection: cmd() sends one tagged command and returns
    (tagged status line, [untagged responses]) with literals inlined."""

    def __init__(self, port, tls=False, timeout=10):
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls:
            s = client_tls_context().wrap_socket(s)
        self.sock = s
        self.buf = b""
        self.n = 0
        self.greeting = self.read_response()

    def _fill(self):
        d = self.sock.recv(65536)
        if not d:
            raise EOFError("server closed the connection")
        self.buf += d

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        i = self.buf.index(b"\r\n") + 2
        line, self.buf = self.buf[:i], self.buf[i:]
        return line

    def _bytes(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_response(self):
        """One whole response (a line plus any literals it announces)."""
        out = b""
        while True:
            line = self._line()
            out += line
            m = LITERAL.search(line)
            if not m:
                return out
            out += self._bytes(int(m.group(1)))

    def send(self, data: bytes):
        self.sock.sendall(data)

    def tag(self):
        self.n += 1
        return f"t{self.n}"

    def cmd(self, line, tag=None):
        tag = tag or self.tag()
        if isinstance(line, str):
            line = line.encode()
        self.send(tag.encode() + b" " + line + b"\r\n")
        return self.wait(tag)

    def wait(self, tag):
        untagged = []
        while True:
            r = self.read_response()
            if r.startswith(tag.encode() + b" "):
                return r, untagged
            untagged.append(r)

    def ok(self, line):
        status, untagged = self.cmd(line)
        assert status.split(b" ")[1] == b"OK", (line, status, untagged)
        return untagged

    def login(self, user=USER, password=PASSWORD):
        return self.ok(f'LOGIN "{user}" "{password}"')

    def close(self):
        try:
            self.cmd("LOGOUT")
        except Exception:
            pass
        self.sock.close()


def status_word(status: bytes) -> bytes:
    return status.split(b" ")[1]


def msg(subject="test", body="hello\r\n", **kw):
    return make_message(subject=subject, body=body, **kw)
