"""POP3 and POP3S end to end (issue 7): Python's poplib and Debian's
fetchmail against a running `outpost serve`."""

import base64
import os
import poplib
import socket
import ssl
import subprocess
import time

import pytest

from conftest import PASSWORD, PG_BASE, Server, client_tls_context, make_message, need_tool

USER = "user@example.test"


# --- helpers ----------------------------------------------------------------

def pop(server, tls=False):
    """A logged-in poplib session (plain, or STLS first)."""
    p = poplib.POP3("127.0.0.1", server.port("pop3"), timeout=10)
    if tls:
        p.stls(client_tls_context())
    p.user(USER)
    p.pass_(PASSWORD)
    return p


def deliver(server, subject, body="hello\r\n", **kw):
    msg = make_message(subject=subject, body=body, to=USER, **kw)
    server.deliver(msg, USER)
    return msg


def subjects(p):
    out = []
    for n in range(1, p.stat()[0] + 1):
        lines = p.top(n, 0)[1]
        out.append(next(l for l in lines if l.startswith(b"Subject: "))[9:].decode())
    return out


def inbox_count_in_store(server):
    """Messages in the user's INBOX as the database has them."""
    sql = ("SELECT count(*) FROM messages m JOIN collections c ON c.id = m.collection_id "
           "JOIN addresses a ON a.principal_id = c.principal_id "
           f"WHERE c.name = 'INBOX' AND a.address = '{USER}'")
    if server.backend == "postgres":
        r = subprocess.run(["psql", "-tA", f"{PG_BASE}/{server.pg_db}", "-c", sql],
                           capture_output=True, text=True, check=True)
    else:
        r = subprocess.run(["sqlite3", str(server.data / "outpost.db"), sql],
                           capture_output=True, text=True, check=True)
    return int(r.stdout.strip())


class Raw:
    """A POP3 connection at the byte level, for exact-octet checks."""

    def __init__(self, port, tls=False):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        if tls:
            s = client_tls_context().wrap_socket(s)
        self.sock = s
        self.buf = b""
        self.greeting = self.line()

    def send(self, data: bytes):
        self.sock.sendall(data)

    def line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def cmd(self, c: str) -> bytes:
        self.send(c.encode() + b"\r\n")
        return self.line()

    def multi(self, c: str):
        """Status line and the raw (still stuffed) body up to the terminator."""
        status = self.cmd(c)
        assert status.startswith(b"+OK"), status
        while b"\r\n.\r\n" not in b"\r\n" + self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        data = b"\r\n" + self.buf
        end = data.index(b"\r\n.\r\n")
        body = data[2:end + 2]
        self.buf = data[end + 5:]
        return status, body

    def login(self):
        assert self.cmd(f"USER {USER}").startswith(b"+OK")
        r = self.cmd(f"PASS {PASSWORD}")
        assert r.startswith(b"+OK"), r

    def closed(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except OSError:
            return True

    def close(self):
        self.sock.close()


def unstuff(body: bytes) -> bytes:
    return b"".join((l[1:] if l.startswith(b".") else l) + b"\r\n" for l in body.split(b"\r\n")[:-1])


# --- capabilities and login -----------------------------------------------------

def test_greeting_and_capa(server):
    p = poplib.POP3("127.0.0.1", server.port("pop3"), timeout=10)
    assert p.getwelcome().startswith(b"+OK")
    caps = p.capa()
    for c in ["TOP", "UIDL", "USER", "SASL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "STLS",
              "IMPLEMENTATION"]:
        assert c in caps, caps
    assert "PLAIN" in caps["SASL"]
    p.user(USER)
    p.pass_(PASSWORD)
    after = p.capa()
    assert "TOP" in after and "UIDL" in after
    assert "STLS" not in after and "USER" not in after
    assert p.quit().startswith(b"+OK")


def test_user_pass_and_wrong_password(server):
    p = poplib.POP3("127.0.0.1", server.port("pop3"), timeout=10)
    p.user(USER)
    with pytest.raises(poplib.error_proto, match=r"-ERR \[AUTH\]"):
        p.pass_("wrong")
    with pytest.raises(poplib.error_proto):
        p.pass_(PASSWORD)  # PASS without USER
    p.user("nobody@example.test")
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        p.pass_(PASSWORD)
    p.user(USER)
    assert p.pass_(PASSWORD).startswith(b"+OK")
    p.quit()


def test_login_with_alias_address(server):
    server.cli("alias", "add", "other@example.test", USER)
    deliver(server, "via alias")
    p = poplib.POP3("127.0.0.1", server.port("pop3"), timeout=10)
    p.user("other@example.test")
    p.pass_(PASSWORD)
    assert subjects(p) == ["via alias"]
    p.quit()


def test_auth_plain(server):
    deliver(server, "one")
    ir = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()

    # Initial response on the AUTH line.
    p = poplib.POP3("127.0.0.1", server.port("pop3"), timeout=10)
    assert p._shortcmd("AUTH PLAIN " + ir).startswith(b"+OK")
    assert p.stat()[0] == 1
    p.quit()

    # Empty challenge, then the response.
    p = poplib.POP3("127.0.0.1", server.port("pop3"), timeout=10)
    assert p._shortcmd("AUTH PLAIN").startswith(b"+")
    assert p._shortcmd(ir).startswith(b"+OK")
    p.quit()

    # Cancelled, wrong password, authzid of someone else, not base64.
    p = poplib.POP3("127.0.0.1", server.port("pop3"), timeout=10)
    p._shortcmd("AUTH PLAIN")
    with pytest.raises(poplib.error_proto, match="cancel"):
        p._shortcmd("*")
    bad = base64.b64encode(f"\0{USER}\0nope".encode()).decode()
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        p._shortcmd("AUTH PLAIN " + bad)
    other = base64.b64encode(f"admin@example.test\0{USER}\0{PASSWORD}".encode()).decode()
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        p._shortcmd("AUTH PLAIN " + other)
    with pytest.raises(poplib.error_proto):
        p._shortcmd("AUTH PLAIN !!!notbase64")
    with pytest.raises(poplib.error_proto):
        p._shortcmd("AUTH CRAM-MD5")
    # Same session still logs in.
    assert p._shortcmd("AUTH PLAIN " + ir).startswith(b"+OK")
    p.quit()


def test_maildrop_locked_while_in_use(server):
    p1 = pop(server)
    p2 = poplib.POP3("127.0.0.1", server.port("pop3"), timeout=10)
    p2.user(USER)
    with pytest.raises(poplib.error_proto, match=r"\[IN-USE\]"):
        p2.pass_(PASSWORD)
    p1.quit()
    p2.user(USER)
    assert p2.pass_(PASSWORD).startswith(b"+OK")
    p2.quit()


# --- transaction commands ----------------------------------------------------------

def test_stat_list_retr(server):
    m1 = deliver(server, "first")
    m2 = deliver(server, "second", body="two\r\nlines\r\n")
    p = pop(server)
    count, total = p.stat()
    assert count == 2
    resp, listing, _ = p.list()
    sizes = {int(n): int(s) for n, s in (l.split() for l in listing)}
    assert set(sizes) == {1, 2} and sum(sizes.values()) == total
    assert p.list(2) == f"+OK 2 {sizes[2]}".encode()
    for n, original in [(1, m1), (2, m2)]:
        resp, lines, octets = p.retr(n)
        got = b"\r\n".join(lines) + b"\r\n"
        assert octets == sizes[n] == len(got)
        assert resp.split()[1] == str(sizes[n]).encode()
        assert got.startswith(b"Return-Path: <>\r\n")
        assert got.endswith(original)
    p.quit()


def test_top(server):
    deliver(server, "topped", body="b1\r\nb2\r\nb3\r\n")
    p = pop(server)
    _, lines, _ = p.top(1, 0)
    assert lines[-1] == b"" and b"Subject: topped" in lines
    assert b"b1" not in lines
    _, lines, _ = p.top(1, 2)
    assert lines[-3:] == [b"", b"b1", b"b2"]
    _, lines, _ = p.top(1, 100)
    assert lines[-3:] == [b"b1", b"b2", b"b3"]
    with pytest.raises(poplib.error_proto):
        p.top(2, 0)
    with pytest.raises(poplib.error_proto):
        p._shortcmd("TOP 1")
    p.quit()


def test_uidl(server):
    for i in range(3):
        deliver(server, f"m{i}")
    p = pop(server)
    _, listing, _ = p.uidl()
    uidls = {}
    for l in listing:
        n, u = l.split()
        assert 1 <= len(u) <= 70 and all(0x21 <= b <= 0x7E for b in u)
        uidls[int(n)] = u
    assert sorted(uidls) == [1, 2, 3] and len(set(uidls.values())) == 3
    assert p.uidl(2) == b"+OK 2 " + uidls[2]
    p.quit()


def test_dele_rset_noop(server):
    for i in range(3):
        deliver(server, f"m{i}")
    p = pop(server)
    size1 = int(p.list(1).split()[2])
    _, total = p.stat()
    assert p.dele(1).startswith(b"+OK")
    assert p.stat() == (2, total - size1)
    with pytest.raises(poplib.error_proto):
        p.retr(1)
    with pytest.raises(poplib.error_proto):
        p.dele(1)
    with pytest.raises(poplib.error_proto):
        p.list(1)
    assert [l.split()[0] for l in p.list()[1]] == [b"2", b"3"]
    assert [l.split()[0] for l in p.uidl()[1]] == [b"2", b"3"]
    assert p.noop().startswith(b"+OK")
    assert p.rset().startswith(b"+OK")
    assert p.stat() == (3, total)
    p.quit()
    assert inbox_count_in_store(server) == 3


def test_dele_quit_expunges(any_backend_server):
    server = any_backend_server
    for s in ["keep1", "gone", "keep2"]:
        deliver(server, s)
    assert inbox_count_in_store(server) == 3
    p = pop(server)
    assert subjects(p) == ["keep1", "gone", "keep2"]
    p.dele(2)
    assert p.quit().startswith(b"+OK")
    assert inbox_count_in_store(server) == 2
    p = pop(server)
    assert subjects(p) == ["keep1", "keep2"]
    p.quit()


def test_dropped_connection_deletes_nothing(any_backend_server):
    server = any_backend_server
    for s in ["a", "b"]:
        deliver(server, s)
    p = pop(server)
    p.dele(1)
    p.dele(2)
    p.sock.shutdown(socket.SHUT_RDWR)
    p.sock.close()
    # The lock is freed once the server sees the drop; then all is still there.
    deadline = time.time() + 10
    while True:
        try:
            p = pop(server)
            break
        except poplib.error_proto as e:
            assert b"IN-USE" in e.args[0] and time.time() < deadline
            time.sleep(0.1)
    assert subjects(p) == ["a", "b"]
    p.quit()
    assert inbox_count_in_store(server) == 2


def test_maildrop_is_a_snapshot(server):
    deliver(server, "before")
    p = pop(server)
    assert p.stat()[0] == 1
    deliver(server, "during")
    assert p.stat()[0] == 1
    assert len(p.list()[1]) == 1 and len(p.uidl()[1]) == 1
    with pytest.raises(poplib.error_proto):
        p.retr(2)
    p.dele(1)
    p.quit()
    p = pop(server)
    assert subjects(p) == ["during"]
    p.quit()


def test_uidl_stable_across_restart(any_backend_server):
    server = any_backend_server
    for i in range(3):
        deliver(server, f"m{i}")
    p = pop(server)
    before = p.uidl()[1]
    p.dele(1)
    p.quit()
    server.restart()
    deliver(server, "new")
    p = pop(server)
    after = p.uidl()[1]
    p.quit()
    old = {l.split()[1] for l in before}
    new = {l.split()[1] for l in after}
    assert {l.split()[1] for l in before[1:]} <= new
    assert before[0].split()[1] not in new
    assert len(new - old) == 1  # the new message got a UIDL never used before


# --- exact bytes -------------------------------------------------------------------------

def test_dot_stuffing_exact(server):
    body = b".\r\n..\r\n.leading dot\r\nmiddle . dot\r\n...\r\n. \r\nlast\r\n"
    msg = make_message(subject="dots", to=USER).split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n" + body
    server.deliver(msg, USER)
    r = Raw(server.port("pop3"))
    r.login()
    size = int(r.cmd("LIST 1").split()[2])
    status, wire = r.multi("RETR 1")
    assert wire.endswith(b"\r\n..\r\n...\r\n..leading dot\r\nmiddle . dot\r\n....\r\n.. \r\nlast\r\n")
    stored = unstuff(wire)
    assert stored == b"Return-Path: <>\r\n" + msg
    assert len(stored) == size and status.split()[1] == str(size).encode()
    status, wire = r.multi("TOP 1 2")
    assert wire.endswith(b"\r\n\r\n..\r\n...\r\n")
    assert r.cmd("QUIT").startswith(b"+OK")
    r.close()
    # poplib agrees (it undoes the stuffing).
    p = pop(server)
    _, lines, octets = p.retr(1)
    assert b"\r\n".join(lines) + b"\r\n" == stored and octets == size
    p.quit()


def test_lone_lf_and_missing_final_newline(server):
    msg = (b"From: a@outside.example\nTo: user@example.test\nSubject: lf\n\n"
           b"unix line\n.dot after lf\nmixed\r\nno newline at end")
    server.deliver(msg, USER)
    r = Raw(server.port("pop3"))
    r.login()
    stat_size = int(r.cmd("STAT").split()[2])
    list_size = int(r.cmd("LIST 1").split()[2])
    status, wire = r.multi("RETR 1")
    stored = unstuff(wire)
    expected = (b"Return-Path: <>\r\nFrom: a@outside.example\r\nTo: user@example.test\r\nSubject: lf\r\n\r\n"
                b"unix line\r\n.dot after lf\r\nmixed\r\nno newline at end\r\n")
    assert stored == expected
    assert b"\r\n..dot after lf\r\n" in wire
    # Every size POP3 reports is the octets RETR sends (fetchmail compares them).
    assert stat_size == list_size == len(expected) == int(status.split()[1])
    assert b"\n" not in wire.replace(b"\r\n", b"")
    r.cmd("QUIT")
    r.close()


# --- bad input --------------------------------------------------------------------------

def test_malformed_commands_get_err_and_session_goes_on(server):
    deliver(server, "x")
    # A session is closed after 10 bad commands, so spread them over two.
    r = Raw(server.port("pop3"))
    for bad in ["STAT", "FROB", "RETR 1"]:  # wrong state / unknown
        assert r.cmd(bad).startswith(b"-ERR"), bad
    r.login()
    for bad in ["FROB", "RETR", "RETR abc", "LIST -1", "TOP 1 x", "DELE 1 2 3"]:
        assert r.cmd(bad).startswith(b"-ERR"), bad
    assert r.cmd("NOOP").startswith(b"+OK")
    assert r.cmd("QUIT").startswith(b"+OK")
    r.close()

    r = Raw(server.port("pop3"))
    assert r.cmd("x" * 5000).startswith(b"-ERR")
    r.login()
    for bad in ["USER again", "STLS", "x" * 5000, "LIST 99999999999999999999999"]:
        assert r.cmd(bad).startswith(b"-ERR"), bad
    for missing in ["RETR 0", "RETR 99", "UIDL 7", "TOP 2 0"]:
        assert r.cmd(missing).startswith(b"-ERR"), missing
    assert r.cmd("NOOP").startswith(b"+OK")
    status, _ = r.multi("RETR 1")
    assert status.startswith(b"+OK")
    # Lowercase commands and a bare LF line ending are accepted.
    r.send(b"stat\n")
    assert r.line().startswith(b"+OK 1 ")
    assert r.cmd("QUIT").startswith(b"+OK")
    r.close()


def test_binary_garbage_does_not_hurt_other_sessions(server):
    deliver(server, "safe")
    r = Raw(server.port("pop3"))
    r.send(bytes(range(256)) * 8 + b"\r\n\x00\xff\r\n")
    # Either -ERR lines or a close; never a crash.
    try:
        assert r.line().startswith(b"-ERR")
    except EOFError:
        pass
    r.close()
    p = pop(server)
    assert subjects(p) == ["safe"]
    p.quit()


def test_too_many_bad_commands_closes_session(server):
    r = Raw(server.port("pop3"))
    replies = []
    for _ in range(10):
        replies.append(r.cmd("BOGUS"))
    assert all(x.startswith(b"-ERR") for x in replies)
    assert r.closed()
    # The server itself is fine.
    p = pop(server)
    p.quit()


def test_pipelining(server):
    deliver(server, "p1")
    deliver(server, "p2")
    r = Raw(server.port("pop3"))
    r.send(f"USER {USER}\r\nPASS {PASSWORD}\r\nSTAT\r\nUIDL 1\r\nNOOP\r\n".encode())
    lines = [r.line() for _ in range(5)]
    assert all(l.startswith(b"+OK") for l in lines), lines
    assert lines[2].startswith(b"+OK 2 ")
    r.cmd("QUIT")
    r.close()


# --- TLS and plaintext policy ------------------------------------------------------------

def test_stls(server):
    deliver(server, "over stls")
    p = poplib.POP3("127.0.0.1", server.port("pop3"), timeout=10)
    assert p.stls(client_tls_context()).startswith(b"+OK")
    assert isinstance(p.sock, ssl.SSLSocket)
    assert "STLS" not in p.capa()
    with pytest.raises(poplib.error_proto):
        p._shortcmd("STLS")
    p.user(USER)
    p.pass_(PASSWORD)
    assert subjects(p) == ["over stls"]
    assert p.quit().startswith(b"+OK")


def test_stls_discards_pipelined_plaintext(server):
    r = Raw(server.port("pop3"))
    r.send(f"STLS\r\nUSER {USER}\r\n".encode())
    assert r.line().startswith(b"+OK")
    tls = client_tls_context().wrap_socket(r.sock)
    tls.sendall(b"PASS " + PASSWORD.encode() + b"\r\n")
    # The USER sent before the handshake must not count.
    assert tls.recv(4096).startswith(b"-ERR")
    tls.close()


def test_pop3s_implicit_tls(server):
    deliver(server, "over pop3s")
    p = poplib.POP3_SSL("127.0.0.1", server.port("pop3s"), context=client_tls_context(), timeout=10)
    assert p.getwelcome().startswith(b"+OK")
    assert "STLS" not in p.capa()
    p.user(USER)
    p.pass_(PASSWORD)
    _, lines, _ = p.retr(1)
    assert b"Subject: over pop3s" in lines
    p.dele(1)
    p.quit()
    assert inbox_count_in_store(server) == 0


@pytest.fixture
def no_plaintext(tmp_path):
    s = Server(tmp_path, plaintext=False, listeners=["pop3", "pop3s"])
    try:
        s.add_user(USER)
        s.start()
        yield s
    finally:
        s.close()


def test_plaintext_refused_when_not_allowed(no_plaintext):
    server = no_plaintext
    p = poplib.POP3("127.0.0.1", server.port("pop3"), timeout=10)
    caps = p.capa()
    assert "STLS" in caps and "USER" not in caps and "SASL" not in caps
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        p.user(USER)
    ir = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    with pytest.raises(poplib.error_proto, match=r"\[AUTH\]"):
        p._shortcmd("AUTH PLAIN " + ir)
    with pytest.raises(poplib.error_proto):
        p.stat()
    # After STLS the same session may log in.
    p.stls(client_tls_context())
    caps = p.capa()
    assert "USER" in caps and "SASL" in caps
    p.user(USER)
    assert p.pass_(PASSWORD).startswith(b"+OK")
    p.quit()
    p = poplib.POP3_SSL("127.0.0.1", server.port("pop3s"), context=client_tls_context(), timeout=10)
    assert p._shortcmd("AUTH PLAIN " + ir).startswith(b"+OK")
    p.quit()


# --- failed-login throttling ---------------------------------------------------------------

def test_failed_logins_are_throttled(tmp_path):
    s = Server(tmp_path, listeners=["pop3", "pop3s"], extra_config="[auth]\nslow_after = 2\nblock_after = 4\n")
    try:
        s.add_user(USER)
        s.start()

        def attempt(password, port="pop3"):
            if port == "pop3":
                p = poplib.POP3("127.0.0.1", s.port("pop3"), timeout=15)
            else:
                p = poplib.POP3_SSL("127.0.0.1", s.port("pop3s"), context=client_tls_context(), timeout=15)
            p.user(USER)
            started = time.time()
            try:
                p.pass_(password)
                ok, why = True, b""
            except poplib.error_proto as e:
                ok, why = False, e.args[0]
            took = time.time() - started
            try:
                p.quit()
            except Exception:
                pass
            return ok, why, took

        times = []
        for _ in range(4):
            ok, why, took = attempt("wrong")
            assert not ok and b"[AUTH]" in why
            times.append(took)
        # Past slow_after the answers are slowed down (not an absolute bound
        # on the first ones: a password check on a loaded machine can take
        # a second by itself).
        assert min(times[2:]) >= 1.5, times
        assert min(times[2:]) > max(times[:2]) + 0.5, times
        # Past block_after even the right password is refused, on every listener.
        for port in ["pop3", "pop3s"]:
            ok, why, _ = attempt(PASSWORD, port)
            assert not ok and b"[AUTH]" in why, why
        assert "auth blocked: ip=127.0.0.1" in s.log_text()
    finally:
        s.close()


# --- fetchmail -----------------------------------------------------------------------------

def run_fetchmail(tmp_path, server, ssl_mode):
    fetchmail = need_tool("fetchmail")
    out = tmp_path / "mda-out.mbox"
    home = tmp_path / "fmhome"
    home.mkdir(exist_ok=True)
    if ssl_mode == "pop3s":
        ssl_opts = "ssl sslproto 'TLS1.2+' no sslcertck"
        port = server.port("pop3s")
    else:
        # sslproto without `ssl`: STLS is required (fails if not offered).
        ssl_opts = "sslproto 'TLS1.2+' no sslcertck"
        port = server.port("pop3")
    rc = home / ".fetchmailrc"
    rc.write_text(
        "set no syslog\n"
        f"poll 127.0.0.1 with proto POP3 port {port} uidl\n"
        f'  user "{USER}" there with password "{PASSWORD}"\n'
        f"  {ssl_opts}\n"
        f"  mda \"cat >> {out}\"\n"
    )
    os.chmod(rc, 0o600)
    env = dict(os.environ, HOME=str(home), FETCHMAILHOME=str(home))
    r = subprocess.run([fetchmail, "-f", str(rc), "--nodetach", "-v", "--pidfile", str(home / "pid")],
                       capture_output=True, text=True, timeout=60, env=env)
    return r, out


@pytest.mark.parametrize("ssl_mode", ["stls", "pop3s"])
def test_fetchmail(tmp_path, server, ssl_mode):
    need_tool("fetchmail")
    deliver(server, "fetch one", body="first body\r\n.dotted\r\n")
    server.deliver(b"From: b@outside.example\nSubject: fetch two\n\nlone lf body\n", USER)
    r, out = run_fetchmail(tmp_path, server, ssl_mode)
    log = r.stdout + r.stderr
    assert r.returncode == 0, log
    if ssl_mode == "stls":
        assert "STLS" in log or "TLS" in log, log
    text = out.read_text()
    assert "Subject: fetch one" in text and "Subject: fetch two" in text
    assert "\n.dotted\n" in text and "lone lf body" in text
    assert "2 messages" in log, log
    # fetchmail deletes what it fetched (no `keep`): DELE + QUIT went through.
    p = pop(server)
    assert p.stat() == (0, 0)
    p.quit()
    assert inbox_count_in_store(server) == 0


# --- SMTP to POP3, idle timeout -------------------------------------------------------------

def test_message_received_by_smtp_is_retrieved(server):
    import smtplib
    msg = make_message(subject="by smtp", to=USER, body="over the wire\r\n.dot line\r\n")
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=10) as s:
        s.sendmail("sender@outside.example", [USER], msg)
    p = pop(server, tls=True)
    assert subjects(p) == ["by smtp"]
    _, lines, octets = p.retr(1)
    assert lines[-2:] == [b"over the wire", b".dot line"]
    assert octets == int(p.list(1).split()[2])
    p.dele(1)
    p.quit()
    assert inbox_count_in_store(server) == 0


def test_idle_timeout(tmp_path):
    s = Server(tmp_path, listeners=["pop3"], extra_config="[limits]\npop3_idle_timeout = 1\n")
    try:
        s.add_user(USER)
        s.start()
        deliver(s, "stays")
        r = Raw(s.port("pop3"))
        r.login()
        assert r.cmd("DELE 1").startswith(b"+OK")
        time.sleep(2.5)
        # Told why, then closed; the DELE is not carried out.
        assert r.line().startswith(b"-ERR")
        assert r.closed()
        assert inbox_count_in_store(s) == 1
    finally:
        s.close()


def test_dele_quit_is_seen_from_imap(server):
    """DELE+QUIT expunges through the store: an IMAP session that has INBOX
    selected is told (EXPUNGE), and a new one no longer sees the message."""
    import imapclient
    server.deliver(make_message(subject="keep"), "user@example.test")
    server.deliver(make_message(subject="drop"), "user@example.test")
    imap = imapclient.IMAPClient("127.0.0.1", port=server.port("imap"), ssl=False)
    imap.login("user@example.test", PASSWORD)
    assert imap.select_folder("INBOX")[b"EXISTS"] == 2
    p = poplib.POP3("127.0.0.1", server.port("pop3"), timeout=10)
    p.user("user@example.test")
    p.pass_(PASSWORD)
    lines = [p.retr(i)[1] for i in (1, 2)]
    drop = next(i for i, l in enumerate(lines, 1) if b"Subject: drop" in l)
    p.dele(drop)
    p.quit()
    responses = imap.noop()[1]
    assert (drop, b"EXPUNGE") in responses, responses
    imap.logout()
    fresh = imapclient.IMAPClient("127.0.0.1", port=server.port("imap"), ssl=False)
    fresh.login("user@example.test", PASSWORD)
    fresh.select_folder("INBOX")
    msgs = fresh.fetch("1:*", ["BODY.PEEK[HEADER.FIELDS (SUBJECT)]"])
    subjects = [v[b"BODY[HEADER.FIELDS (SUBJECT)]"].strip() for v in msgs.values()]
    assert subjects == [b"Subject: keep"], subjects
    fresh.logout()
