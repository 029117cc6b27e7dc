"""Connection limits as clients meet them: an office behind one NAT address
is not locked out by the defaults, and a client refused on an implicit-TLS
listener (imaps, pop3s, submissions) reads the refusal in its protocol,
inside TLS, instead of a TLS error ("wrong version number") from plaintext
sent before the handshake."""

import imaplib
import poplib
import smtplib
import socket
import ssl
import time

import pytest

from conftest import Server, client_tls_context

TLS_LISTENERS = ["imaps", "pop3s", "submissions"]


def start(tmp_path, extra_config=""):
    s = Server(tmp_path, extra_config=extra_config, listeners=TLS_LISTENERS + ["imap", "smtp"])
    try:
        s.add_user("user@example.test")
        s.start()
    except BaseException:
        s.close()
        raise
    return s


def tls_line(port):
    """Connects with TLS and returns the first line the server sends."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=15)
    with client_tls_context().wrap_socket(raw, server_hostname="mail.example.test") as t:
        f = t.makefile("rb")
        line = f.readline()
        rest = f.read()
    return line, rest


@pytest.fixture
def limited(tmp_path):
    s = start(tmp_path, "[limits]\nconnections_per_ip = 1\n")
    yield s
    s.close()


def test_refusal_on_imaps_is_an_imap_bye_inside_tls(limited):
    port = limited.port("imaps")
    first = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=client_tls_context(), timeout=15)
    try:
        line, rest = tls_line(port)
        assert line.startswith(b"* BYE [UNAVAILABLE] Too many connections"), line
        assert rest == b""
        with pytest.raises(imaplib.IMAP4.error) as e:
            imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=client_tls_context(), timeout=15)
        assert "Too many connections" in str(e.value), e.value
        # the admitted session is untouched
        assert first.noop()[0] == "OK"
    finally:
        first.logout()


def test_refusal_on_pop3s_is_an_err_inside_tls(limited):
    port = limited.port("pop3s")
    first = poplib.POP3_SSL("127.0.0.1", port, context=client_tls_context(), timeout=15)
    try:
        line, _ = tls_line(port)
        assert line.startswith(b"-ERR [SYS/TEMP] Too many connections"), line
        with pytest.raises(poplib.error_proto) as e:
            poplib.POP3_SSL("127.0.0.1", port, context=client_tls_context(), timeout=15)
        assert b"[SYS/TEMP]" in e.value.args[0], e.value
        assert "USER" in first.capa()
    finally:
        first.quit()


def test_refusal_on_submissions_is_a_421_inside_tls(limited):
    port = limited.port("submissions")
    first = smtplib.SMTP_SSL("127.0.0.1", port, context=client_tls_context(), timeout=15)
    try:
        line, _ = tls_line(port)
        assert line.startswith(b"421 4.7.0"), line
        with pytest.raises(smtplib.SMTPConnectError) as e:
            smtplib.SMTP_SSL("127.0.0.1", port, context=client_tls_context(), timeout=15)
        assert e.value.smtp_code == 421
        assert first.noop()[0] == 250
    finally:
        first.quit()


def test_refused_client_that_never_handshakes_is_closed(limited):
    port = limited.port("imaps")
    first = imaplib.IMAP4_SSL("127.0.0.1", port, ssl_context=client_tls_context(), timeout=15)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
            started = time.time()
            # No ClientHello: no plaintext either, just a close after the
            # short handshake timeout.
            assert raw.recv(100) == b""
            assert time.time() - started < 20
    finally:
        first.logout()


def test_plain_listeners_still_refuse_in_plaintext(limited):
    port = limited.port("imap")
    with socket.create_connection(("127.0.0.1", port), timeout=15) as a:
        assert a.makefile("rb").readline().startswith(b"* OK")
        with socket.create_connection(("127.0.0.1", port), timeout=15) as b:
            assert b.makefile("rb").readline().startswith(b"* BYE [UNAVAILABLE]")


def test_defaults_admit_an_office_behind_one_address(tmp_path):
    """30 Thunderbird users behind one NAT address keep several IMAP
    connections each; the old default of 20 per address locked them out."""
    s = start(tmp_path)
    conns = []
    try:
        for _ in range(60):
            c = imaplib.IMAP4_SSL("127.0.0.1", s.port("imaps"), ssl_context=client_tls_context(), timeout=15)
            conns.append(c)
        for c in conns:
            assert c.noop()[0] == "OK"
    finally:
        for c in conns:
            try:
                c.logout()
            except (imaplib.IMAP4.error, OSError, ssl.SSLError):
                pass
        s.close()
