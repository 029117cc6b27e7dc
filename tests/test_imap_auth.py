"""IMAP authentication (issue 4): LOGIN, AUTHENTICATE PLAIN (with and without
SASL-IR), LOGINDISABLED before STARTTLS, STARTTLS, IMAPS, wrong passwords,
failed-login throttling, bad input answered BAD with the session going on."""

import base64
import time

import imapclient
import pytest

from conftest import PASSWORD, Server
from imap_helpers import USER, Raw, client, status_word


def caps(raw):
    untagged = raw.ok("CAPABILITY")
    line = [u for u in untagged if u.startswith(b"* CAPABILITY ")][0]
    return set(line.strip().split(b" ")[2:])


def test_capabilities_before_and_after_login(server):
    r = Raw(server.port("imap"))
    assert r.greeting.startswith(b"* OK")
    before = caps(r)
    for c in [b"IMAP4rev1", b"IMAP4rev2", b"STARTTLS", b"AUTH=PLAIN", b"SASL-IR", b"LITERAL+", b"IDLE",
              b"UIDPLUS", b"MOVE", b"CONDSTORE", b"QRESYNC", b"ESEARCH", b"SPECIAL-USE", b"ENABLE", b"ID",
              b"NAMESPACE", b"UNSELECT", b"BINARY", b"LIST-STATUS", b"STATUS=SIZE"]:
        assert c in before, c
    assert b"LOGINDISABLED" not in before  # plaintext allowed on loopback in the harness
    status, untagged = r.cmd(f'LOGIN "{USER}" "{PASSWORD}"')
    assert status_word(status) == b"OK"
    after = caps(r)
    assert b"STARTTLS" not in after and b"AUTH=PLAIN" not in after and b"LOGINDISABLED" not in after
    assert b"IDLE" in after
    r.close()


def test_login_and_logout(server):
    c = client(server)
    assert c.select_folder("INBOX")[b"EXISTS"] == 0
    assert c.logout().startswith(b"LOGOUT") or True


def test_authenticate_plain_imapclient(server):
    c = client(server, login=False)
    c.plain_login(USER, PASSWORD)
    c.select_folder("INBOX")
    c.logout()


def test_authenticate_plain_sasl_ir_and_continuation(server):
    ir = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    r = Raw(server.port("imap"))
    r.ok(f"AUTHENTICATE PLAIN {ir}")
    r.close()
    # Without SASL-IR: "+ " continuation, then the response.
    r = Raw(server.port("imap"))
    r.send(b"a1 AUTHENTICATE PLAIN\r\n")
    assert r.read_response().startswith(b"+")
    r.send(ir.encode() + b"\r\n")
    status, _ = r.wait("a1")
    assert status_word(status) == b"OK", status
    r.close()
    # Cancelled with "*" -> BAD; wrong password -> NO; session goes on.
    r = Raw(server.port("imap"))
    r.send(b"a2 AUTHENTICATE PLAIN\r\n")
    assert r.read_response().startswith(b"+")
    r.send(b"*\r\n")
    status, _ = r.wait("a2")
    assert status_word(status) == b"BAD", status
    bad = base64.b64encode(f"\0{USER}\0wrong-password".encode()).decode()
    status, _ = r.cmd(f"AUTHENTICATE PLAIN {bad}")
    assert status_word(status) == b"NO", status
    status, _ = r.cmd("AUTHENTICATE PLAIN !!notbase64!!")
    assert status_word(status) in (b"BAD", b"NO"), status
    r.ok("NOOP")
    r.login()
    r.close()


def test_wrong_password_and_unknown_user(server):
    for user, pw in [(USER, "wrong-password"), ("nobody@example.test", PASSWORD), ("", "")]:
        r = Raw(server.port("imap"))
        status, _ = r.cmd(f'LOGIN "{user}" "{pw}"')
        assert status_word(status) == b"NO", status
        if user:
            assert b"[AUTHENTICATIONFAILED]" in status, status
        # still not authenticated
        status, _ = r.cmd("SELECT INBOX")
        assert status_word(status) == b"BAD", status
        r.close()
    c = client(server, login=False)
    with pytest.raises(imapclient.exceptions.LoginError):
        c.login(USER, "nope-nope-nope")


@pytest.fixture
def tls_only_server(tmp_path):
    s = Server(tmp_path, listeners=["imap", "imaps", "smtp"], plaintext=False)
    try:
        s.add_user(USER)
        s.start()
        yield s
    finally:
        s.close()


def test_logindisabled_before_starttls(tls_only_server):
    s = tls_only_server
    r = Raw(s.port("imap"))
    before = caps(r)
    assert b"LOGINDISABLED" in before and b"STARTTLS" in before
    assert b"AUTH=PLAIN" not in before
    status, _ = r.cmd(f'LOGIN "{USER}" "{PASSWORD}"')
    assert status_word(status) == b"NO" and b"PRIVACYREQUIRED" in status, status
    ir = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
    status, _ = r.cmd(f"AUTHENTICATE PLAIN {ir}")
    assert status_word(status) == b"NO", status
    # STARTTLS on the same connection, then LOGIN works.
    r.ok("STARTTLS")
    r.sock = __import__("conftest").client_tls_context().wrap_socket(r.sock)
    after = caps(r)
    assert b"STARTTLS" not in after and b"LOGINDISABLED" not in after and b"AUTH=PLAIN" in after
    r.login()
    r.ok("SELECT INBOX")
    r.close()


def test_starttls_and_imaps_with_imapclient(tls_only_server):
    s = tls_only_server
    c = client(s, tls="starttls")
    assert c.select_folder("INBOX")[b"EXISTS"] == 0
    c.logout()
    c = client(s, tls="imaps")
    assert b"IMAP4REV1" in c.capabilities()
    c.select_folder("INBOX", readonly=True)
    c.logout()


def test_starttls_refused_after_tls_and_after_login(server):
    r = Raw(server.port("imaps"), tls=True)
    status, _ = r.cmd("STARTTLS")
    assert status_word(status) in (b"BAD", b"NO"), status
    r.login()
    r.close()


def test_malformed_commands_get_bad_and_session_goes_on(server):
    r = Raw(server.port("imap"))
    for line in [b"", b"FROBNICATE", b"LOGIN", b"SELECT", b'LOGIN "unterminated', b"\x00\xff\xfe",
                 b"FETCH 1:* (FLAGS)"]:
        tag = r.tag()
        r.send(tag.encode() + (b" " + line if line else b"") + b"\r\n")
        status, _ = r.wait(tag)
        assert status_word(status) == b"BAD", (line, status)
    r.send(b"\r\n")  # an empty line is BAD too (untagged or tagged "*")
    r.login()
    status, _ = r.cmd("FETCH x (FLAGS)")
    assert status_word(status) == b"BAD"
    r.ok("SELECT INBOX")
    r.ok("NOOP")
    r.close()


def test_failed_logins_are_throttled(tmp_path):
    s = Server(tmp_path, listeners=["imap", "imaps"], auth={"slow_after": 2, "block_after": 4})
    try:
        s.add_user(USER)
        s.start()

        def attempt(password, port="imap"):
            r = Raw(s.port(port), tls=(port == "imaps"), timeout=30)
            t = time.time()
            status, _ = r.cmd(f'LOGIN "{USER}" "{password}"')
            took = time.time() - t
            r.close()
            return status, took

        times = []
        for _ in range(4):
            status, took = attempt("wrong-password")
            assert status_word(status) == b"NO", status
            times.append(took)
        assert min(times[2:]) >= 1.0, times  # past slow_after: answered slowly
        for port in ["imap", "imaps"]:
            status, _ = attempt(PASSWORD, port)
            assert status_word(status) == b"NO", status  # blocked, even with the right password
        assert "auth blocked: ip=127.0.0.1" in s.log_text()
    finally:
        s.close()


def test_id_and_namespace(server):
    r = Raw(server.port("imap"))
    untagged = r.ok('ID ("name" "pytest")')
    assert any(u.startswith(b"* ID ") for u in untagged)
    r.login()
    untagged = r.ok("NAMESPACE")
    assert any(u.startswith(b'* NAMESPACE (("" "/"))') for u in untagged), untagged
    r.close()


def test_limits_long_line_big_literal_pipelining(server):
    r = Raw(server.port("imap"))
    r.login()
    status, _ = r.cmd("NOOP " + "x" * 200000)
    assert status_word(status) == b"BAD", status
    r.ok("NOOP")
    # a synchronizing literal bigger than allowed is refused at once (no "+")
    r.send(b"z1 LOGIN {999999999}\r\n")
    resp = r.read_response()
    assert resp.startswith(b"z1 NO") or resp.startswith(b"z1 BAD"), resp
    r.ok("NOOP")
    # pipelined commands are answered in order
    r.send(b"p1 NOOP\r\np2 CAPABILITY\r\np3 NOOP\r\n")
    status, untagged = r.wait("p3")
    assert untagged[0].startswith(b"p1 OK") and untagged[-1].startswith(b"p2 OK"), untagged
    r.close()
