"""SMTP, submission and LMTP (issue 3), checked from outside with real
clients: Python smtplib, swaks, and raw sockets where a library would hide
the wire. Delivered mail is read back from the store (the database and the
blob files); IMAP does not exist yet.

Each rule of the issue is its own test.
"""

import base64
import hashlib
import smtplib
import socket
import sqlite3
import subprocess
import time

import pytest

import conftest
from conftest import PASSWORD, Server, client_tls_context, make_message, need_tool

USER = "user@example.test"
OTHER = "other@example.test"
CLIENT_NAME = "client.outside.example"


# --- reading the store back ----------------------------------------------


def _query(server, sql, params=()):
    """Rows of a query on the server's store (SQLite file or PostgreSQL)."""
    if server.backend == "postgres":
        # psql has no bind parameters on the command line; the values come
        # from the tests themselves, quote them as SQL literals anyway.
        for p in params:
            lit = "'" + str(p).replace("'", "''") + "'" if isinstance(p, str) else str(p)
            sql = sql.replace("?", lit, 1)
        r = subprocess.run(["psql", f"{conftest.PG_BASE}/{server.pg_db}", "-At", "-F", "\t", "-c", sql],
                           capture_output=True, text=True, check=True, timeout=30)
        return [tuple(line.split("\t")) for line in r.stdout.splitlines() if line]
    db = sqlite3.connect(f"file:{server.data / 'outpost.db'}?mode=ro", uri=True, timeout=10)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


def blob(server, sha256):
    return conftest.read_blob(server, sha256)


def mailbox(server, address, name="INBOX"):
    """The messages in `address`'s mailbox `name`, as stored bytes, in UID order."""
    rows = _query(server,
                  "SELECT m.blob_hash FROM messages m"
                  " JOIN collections c ON c.id = m.collection_id"
                  " JOIN addresses a ON a.principal_id = c.principal_id"
                  " WHERE a.address = ? AND c.kind = 'mailbox' AND c.name = ?"
                  " ORDER BY m.uid", (address, name))
    return [blob(server, r[0]) for r in rows]


def message_count(server):
    return int(_query(server, "SELECT COUNT(*) FROM messages")[0][0])


def split_message(raw):
    """(header fields as (name, value) in order, body) of stored bytes."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    assert sep, "no header/body separator"
    fields = []
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            name, value = fields[-1]
            fields[-1] = (name, value + b"\r\n" + line)
        else:
            name, _, value = line.partition(b":")
            fields.append((name.decode().lower(), value))
    return fields, body


def added_by_server(stored, original):
    """The header fields Outpost put in front of `original` (which must
    follow them byte for byte)."""
    assert stored.endswith(original), "stored message is not the sent one with fields prepended"
    prefix = stored[: len(stored) - len(original)]
    fields, _ = split_message(prefix + b"\r\n")
    return fields


# --- clients -----------------------------------------------------------------


def smtp(server, listener="smtp"):
    c = smtplib.SMTP("127.0.0.1", server.port(listener), local_hostname=CLIENT_NAME, timeout=30)
    c.ehlo()
    return c


def submission(server, login=USER, password=PASSWORD):
    """A logged-in submission session (587, STARTTLS then AUTH)."""
    c = smtp(server, "submission")
    c.starttls(context=client_tls_context())
    c.ehlo()
    if login:
        c.login(login, password)
    return c


def lines_of(ehlo_reply):
    return [l.decode().upper() for l in ehlo_reply.split(b"\n")]


def keywords(client):
    return {k.upper() for k in client.esmtp_features}


class Raw:
    """A raw client socket with a line reader. close() really closes (a
    socket with a makefile() reader open stays open otherwise)."""

    def __init__(self, server, listener="smtp"):
        self.sock = socket.create_connection(("127.0.0.1", server.port(listener)), timeout=30)
        self.file = self.sock.makefile("rb")

    def sendall(self, data):
        self.sock.sendall(data)

    def close(self):
        self.file.close()
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def raw_connect(server, listener="smtp"):
    r = Raw(server, listener)
    greeting = r.file.readline()
    assert greeting.startswith(b"220"), greeting
    return r, r.file


def read_reply(f):
    """One (possibly multi-line) reply: (code, text of every line)."""
    lines = []
    while True:
        line = f.readline()
        assert line, "connection closed"
        lines.append(line.decode(errors="replace").rstrip("\r\n"))
        if line[3:4] != b"-":
            return int(line[:3]), "\n".join(l[4:] for l in lines)


def cmd(s, f, line):
    s.sendall(line.encode() + b"\r\n")
    return read_reply(f)


def expect_code(exc_info, code, enhanced=None):
    err = exc_info.value
    assert err.smtp_code == code, err
    if enhanced:
        assert err.smtp_error.decode().startswith(enhanced), err


# --- servers ------------------------------------------------------------------


def start_server(tmp_path, users=(USER, OTHER), backend="sqlite", **kw):
    """A started server; plaintext AUTH on loopback off unless asked for,
    so the listeners behave as on a public address."""
    kw.setdefault("plaintext", False)
    s = Server(tmp_path, backend=backend, **kw)
    try:
        for u in users:
            s.add_user(u, name=u.split("@")[0].title())
        s.start()
    except BaseException:
        s.close()
        raise
    return s


@pytest.fixture
def srv(tmp_path):
    s = start_server(tmp_path)
    yield s
    s.close()


# --- EHLO per listener ----------------------------------------------------------

COMMON = {"PIPELINING", "SIZE", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES", "DSN", "CHUNKING", "BINARYMIME"}


def test_ehlo_mx_offers_starttls_not_auth(srv):
    with smtp(srv) as c:
        assert COMMON <= keywords(c), c.esmtp_features
        assert c.has_extn("starttls")
        assert not c.has_extn("auth"), "AUTH offered on a plain MX connection"
        assert int(c.esmtp_features["size"]) > 0


def test_ehlo_mx_after_starttls_offers_auth(srv):
    with smtp(srv) as c:
        c.starttls(context=client_tls_context())
        c.ehlo()
        assert COMMON <= keywords(c)
        assert not c.has_extn("starttls")
        assert set(c.esmtp_features["auth"].upper().split()) >= {"PLAIN", "LOGIN"}


def test_ehlo_submission_before_and_after_starttls(srv):
    with smtp(srv, "submission") as c:
        assert COMMON <= keywords(c)
        assert c.has_extn("starttls")
        assert not c.has_extn("auth"), "AUTH advertised before STARTTLS"
        c.starttls(context=client_tls_context())
        c.ehlo()
        assert not c.has_extn("starttls")
        assert set(c.esmtp_features["auth"].upper().split()) >= {"PLAIN", "LOGIN"}
        assert COMMON <= keywords(c)


def test_ehlo_submissions_implicit_tls(srv):
    with smtplib.SMTP_SSL("127.0.0.1", srv.port("submissions"), local_hostname=CLIENT_NAME,
                          context=client_tls_context(), timeout=30) as c:
        c.ehlo()
        assert COMMON <= keywords(c)
        assert not c.has_extn("starttls")
        assert set(c.esmtp_features["auth"].upper().split()) >= {"PLAIN", "LOGIN"}


def test_lhlo_lmtp(srv):
    with smtplib.LMTP("127.0.0.1", srv.port("lmtp"), local_hostname=CLIENT_NAME, timeout=30) as c:
        code, _ = c.ehlo()  # smtplib.LMTP sends LHLO
        assert code == 250
        assert {"PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME", "CHUNKING"} <= keywords(c)
        assert not c.has_extn("auth")
        # EHLO is not LMTP's greeting.
        assert c.docmd("EHLO", CLIENT_NAME)[0] == 500


def test_every_reply_has_an_enhanced_status_code(srv):
    s, f = raw_connect(srv)
    with s:
        for line in ["EHLO " + CLIENT_NAME, "NOOP", "MAIL FROM:<a@outside.example>", "RCPT TO:<nobody@example.test>",
                     "RCPT TO:<x@elsewhere.example>", "RCPT TO:<%s>" % USER, "RSET", "VRFY user", "BOGUS", "QUIT"]:
            code, text = cmd(s, f, line)
            if line.startswith("EHLO"):
                continue
            assert text.split(" ", 1)[0].count(".") == 2 and text[0] == str(code)[0], (line, code, text)


# --- MX -------------------------------------------------------------------------------


def test_mx_delivers_to_hosted_user_with_trace_fields(srv):
    msg = make_message(subject="mx plain")
    with smtp(srv) as c:
        assert c.sendmail("alice@outside.example", [USER], msg) == {}
    [stored] = mailbox(srv, USER)
    fields = added_by_server(stored, msg)
    names = [n for n, _ in fields]
    # From another server (MX, not authenticated): SPF/DKIM/DMARC results too.
    assert names == ["return-path", "received", "authentication-results"], names
    assert fields[0][1].strip() == b"<alice@outside.example>"
    received = fields[1][1].decode()
    assert CLIENT_NAME in received and "127.0.0.1" in received and "mail.example.test" in received
    assert "with ESMTP " in received + " " and "TLS" not in received
    assert f"for <{USER}>" in received


def test_mx_received_has_tls_details_after_starttls(srv):
    msg = make_message(subject="mx tls")
    with smtp(srv) as c:
        c.starttls(context=client_tls_context())
        c.ehlo()
        version = c.sock.version()
        cipher = c.sock.cipher()[0]
        c.sendmail("alice@outside.example", [USER], msg)
    [stored] = mailbox(srv, USER)
    received = dict(added_by_server(stored, msg))["received"].decode()
    assert "with ESMTPS" in received, received
    assert version.replace("v", "").replace("TLS", "TLS") in received.replace("v", ""), (version, received)
    # Cipher names differ between OpenSSL and rustls spellings; the suite's
    # distinctive part (e.g. AES_256_GCM / CHACHA20) must be there.
    core = cipher.replace("TLS_", "").replace("-", "_").split("_SHA")[0]
    assert core in received.replace("TLS13_", ""), (cipher, received)


def test_mx_client_return_path_is_replaced(srv):
    msg = make_message(extra_headers="X-Test: 1\r\n")
    msg = b"Return-Path: <forged@evil.example>\r\n" + msg
    with smtp(srv) as c:
        c.sendmail("real@outside.example", [USER], msg)
    [stored] = mailbox(srv, USER)
    assert b"forged@evil.example" not in stored
    assert stored.startswith(b"Return-Path: <real@outside.example>\r\n")


def test_mx_null_sender_gets_empty_return_path(srv):
    msg = make_message(subject="bounce")
    with smtp(srv) as c:
        c.sendmail("<>", [USER], msg)
    [stored] = mailbox(srv, USER)
    assert stored.startswith(b"Return-Path: <>\r\n")


def test_mx_unknown_local_user_refused_at_rcpt(srv):
    with smtp(srv) as c:
        c.mail("alice@outside.example")
        code, text = c.rcpt("nobody@example.test")
        assert code == 550 and text.startswith(b"5.1.1"), (code, text)
        # The session goes on: a good recipient is still accepted.
        assert c.rcpt(USER)[0] == 250
        assert c.data(make_message())[0] == 250
    assert len(mailbox(srv, USER)) == 1


def test_mx_refuses_relaying(srv):
    with smtp(srv) as c:
        c.mail("alice@outside.example")
        code, text = c.rcpt("bob@elsewhere.example")
        assert code in (550, 554) and text.startswith(b"5.7.1"), (code, text)
        # even when the sender claims to be local
        c.rset()
        c.mail(USER)
        code, text = c.rcpt("bob@elsewhere.example")
        assert code in (550, 554) and text.startswith(b"5.7.1"), (code, text)
    assert _query(srv, "SELECT COUNT(*) FROM queue_recipients")[0][0] in (0, "0")


def test_mx_relays_when_authenticated(srv):
    with smtp(srv) as c:
        c.starttls(context=client_tls_context())
        c.ehlo()
        c.login(USER, PASSWORD)
        assert c.sendmail(USER, ["bob@elsewhere.example"], make_message(sender=USER, to="bob@elsewhere.example")) == {}
    rows = _query(srv, "SELECT address, status FROM queue_recipients")
    assert [tuple(map(str, r)) for r in rows] == [("bob@elsewhere.example", "pending")]


def test_mx_alias_is_delivered_to_its_target(srv):
    srv.cli("alias", "add", "info@example.test", USER)
    msg = make_message(to="info@example.test")
    with smtp(srv) as c:
        assert c.sendmail("alice@outside.example", ["info@example.test"], msg) == {}
    [stored] = mailbox(srv, USER)
    assert stored.endswith(msg)


def test_mx_catch_all(srv):
    # No CLI for it yet: set the domain's catch-all in the store directly.
    db = sqlite3.connect(srv.data / "outpost.db", timeout=10)
    with db:
        db.execute("UPDATE domains SET catchall = ? WHERE name = 'example.test'", (OTHER,))
    db.close()
    with smtp(srv) as c:
        assert c.sendmail("alice@outside.example", ["whoever@example.test"], make_message()) == {}
        # an existing address still goes to its owner, not to the catch-all
        assert c.sendmail("alice@outside.example", [USER], make_message()) == {}
        # other domains are still relaying
        c.mail("alice@outside.example")
        assert c.rcpt("x@elsewhere.example")[0] in (550, 554)
    assert len(mailbox(srv, OTHER)) == 1 and len(mailbox(srv, USER)) == 1


def test_mx_subaddress_goes_to_the_user(srv):
    with smtp(srv) as c:
        assert c.sendmail("alice@outside.example", ["user+lists@example.test"], make_message()) == {}
        c.mail("alice@outside.example")
        assert c.rcpt("nobody+x@example.test")[0] == 550
    assert len(mailbox(srv, USER)) == 1


def test_mx_recipient_case_and_domain_case_insensitive(srv):
    with smtp(srv) as c:
        assert c.sendmail("alice@outside.example", ["User@EXAMPLE.test"], make_message()) == {}
    assert len(mailbox(srv, USER)) == 1


# --- submission --------------------------------------------------------------------------


def test_submission_refuses_auth_before_starttls(srv):
    s, f = raw_connect(srv, "submission")
    with s:
        code, text = cmd(s, f, "EHLO " + CLIENT_NAME)
        assert code == 250 and "AUTH" not in text.upper()
        plain = base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode()
        code, text = cmd(s, f, "AUTH PLAIN " + plain)
        assert code == 530 and text.startswith("5.7.0"), (code, text)
        code, text = cmd(s, f, "AUTH LOGIN")
        assert code == 530, (code, text)
        # Not logged in: MAIL still needs AUTH.
        code, text = cmd(s, f, f"MAIL FROM:<{USER}>")
        assert code == 530, (code, text)


def test_submission_mail_before_auth_refused(srv):
    with submission(srv, login=None) as c:
        code, text = c.mail(USER)
        assert code == 530 and text.startswith(b"5.7.0"), (code, text)


@pytest.mark.parametrize("mech", ["PLAIN", "LOGIN"])
def test_submission_auth_after_starttls(srv, mech):
    with submission(srv, login=None) as c:
        c.user, c.password = USER, PASSWORD
        auth = c.auth_plain if mech == "PLAIN" else c.auth_login
        code, text = c.auth(mech, auth)
        assert code == 235 and text.startswith(b"2.7.0"), (code, text)
        msg = make_message(sender=USER, to=OTHER, subject=mech)
        assert c.sendmail(USER, [OTHER], msg) == {}
    [stored] = mailbox(srv, OTHER)
    received = dict(added_by_server(stored, msg))["received"].decode()
    assert "ESMTPSA" in received, received
    # no copy filed into the sender's Sent by the server
    assert mailbox(srv, USER, "Sent") == [] and mailbox(srv, USER) == []


def test_submission_wrong_password(srv):
    with submission(srv, login=None) as c:
        with pytest.raises(smtplib.SMTPAuthenticationError) as e:
            c.login(USER, "wrong-password")
        expect_code(e, 535, "5.7.8")


def test_submission_sender_not_owned_envelope(srv):
    with submission(srv) as c:
        code, text = c.mail(OTHER)
        assert code == 553 and text.startswith(b"5.7.1"), (code, text)
        code, text = c.mail("someone@outside.example")
        assert code == 553 and text.startswith(b"5.7.1"), (code, text)
        # The session goes on with the right sender.
        assert c.sendmail(USER, [OTHER], make_message(sender=USER, to=OTHER)) == {}
    assert len(mailbox(srv, OTHER)) == 1


def test_submission_sender_not_owned_from_header(srv):
    with submission(srv) as c:
        # Envelope sender is the user's own; the From: header is not.
        msg = make_message(sender=f'"Other" <{OTHER}>', to=OTHER)
        with pytest.raises(smtplib.SMTPDataError) as e:
            c.sendmail(USER, [OTHER], msg)
        expect_code(e, 553, "5.7.1")
        # A second From: address that is not owned is caught too.
        msg = make_message(sender=f"{USER}, boss@outside.example", to=OTHER)
        with pytest.raises(smtplib.SMTPDataError) as e:
            c.sendmail(USER, [OTHER], msg)
        expect_code(e, 553, "5.7.1")
    assert mailbox(srv, OTHER) == []


def test_submission_alias_accepted_as_sender(srv):
    srv.cli("alias", "add", "u.alias@example.test", USER)
    with submission(srv) as c:
        msg = make_message(sender="u.alias@example.test", to=OTHER)
        assert c.sendmail("u.alias@example.test", [OTHER], msg) == {}
    [stored] = mailbox(srv, OTHER)
    assert stored.startswith(b"Return-Path: <u.alias@example.test>\r\n")


def test_submission_group_address_of_member_accepted_as_sender(srv):
    srv.cli("group", "add", "team@example.test", "--member", USER, "--member", OTHER)
    srv.cli("group", "add", "board@example.test", "--member", OTHER)
    with submission(srv) as c:
        msg = make_message(sender="team@example.test", to=OTHER)
        assert c.sendmail("team@example.test", [OTHER], msg) == {}
        # a group the user is not a member of
        code, text = c.mail("board@example.test")
        assert code == 553 and text.startswith(b"5.7.1"), (code, text)
    assert len(mailbox(srv, OTHER)) == 1


def test_submission_login_by_any_address_case(srv):
    with submission(srv, login="USER@Example.Test") as c:
        assert c.sendmail(USER, [OTHER], make_message(sender=USER, to=OTHER)) == {}


def test_submissions_implicit_tls(srv):
    with smtplib.SMTP_SSL("127.0.0.1", srv.port("submissions"), local_hostname=CLIENT_NAME,
                          context=client_tls_context(), timeout=30) as c:
        c.ehlo()
        assert c.mail(USER)[0] == 530
        c.rset()
        c.login(USER, PASSWORD)
        msg = make_message(sender=USER, to=OTHER, subject="465")
        assert c.sendmail(USER, [OTHER], msg) == {}
        with pytest.raises(smtplib.SMTPSenderRefused) as e:
            c.sendmail(OTHER, [USER], make_message(sender=OTHER))
        expect_code(e, 553, "5.7.1")
    [stored] = mailbox(srv, OTHER)
    assert "ESMTPSA" in dict(added_by_server(stored, msg))["received"].decode()


def test_submission_remote_recipient_is_queued(srv):
    msg = make_message(sender=USER, to="friend@elsewhere.example")
    with submission(srv) as c:
        assert c.sendmail(USER, ["friend@elsewhere.example", OTHER], msg) == {}
    rows = _query(srv, "SELECT r.address, r.domain, r.status, q.mail_from, q.blob_hash FROM queue_recipients r"
                       " JOIN queue_messages q ON q.id = r.message_id")
    assert len(rows) == 1
    address, domain, status, mail_from, h = rows[0]
    assert (address, domain, status, mail_from) == ("friend@elsewhere.example", "elsewhere.example", "pending", USER)
    assert blob(srv, h).endswith(msg)
    # The local recipient got it at once, the remote one is not in any mailbox.
    assert len(mailbox(srv, OTHER)) == 1
    assert message_count(srv) == 1


def test_swaks_submission_tls_auth(srv):
    swaks = need_tool("swaks")
    r = subprocess.run([swaks, "--server", "127.0.0.1", "--port", str(srv.port("submission")), "--tls",
                        "--auth", "PLAIN", "--auth-user", USER, "--auth-password", PASSWORD,
                        "--from", USER, "--to", OTHER, "--header", "Subject: via swaks", "--body", "swaks body",
                        "--helo", CLIENT_NAME],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    [stored] = mailbox(srv, OTHER)
    assert b"Subject: via swaks" in stored and b"swaks body" in stored


def test_swaks_mx_relay_denied(srv):
    swaks = need_tool("swaks")
    r = subprocess.run([swaks, "--server", "127.0.0.1", "--port", str(srv.port("smtp")),
                        "--from", "a@outside.example", "--to", "b@elsewhere.example", "--helo", CLIENT_NAME],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "5.7.1" in r.stdout, r.stdout


# --- groups and delivery -----------------------------------------------------------------


def test_group_of_two_lands_once_in_each_inbox(srv):
    srv.cli("group", "add", "team@example.test", "--member", USER, "--member", OTHER)
    msg = make_message(to="team@example.test", subject="to the team")
    with smtp(srv) as c:
        assert c.sendmail("alice@outside.example", ["team@example.test"], msg) == {}
    for u in (USER, OTHER):
        stored = mailbox(srv, u)
        assert len(stored) == 1, (u, len(stored))
        assert stored[0].endswith(msg)
    assert message_count(srv) == 2
    # one blob for both copies
    assert len({r[0] for r in _query(srv, "SELECT blob_hash FROM messages")}) == 1


def test_recipient_reached_twice_gets_one_copy(srv):
    srv.cli("group", "add", "team@example.test", "--member", USER, "--member", OTHER)
    srv.cli("group", "add", "all@example.test", "--member", "team@example.test", "--member", USER)
    with smtp(srv) as c:
        # directly, via a group, and via a group inside a group
        assert c.sendmail("alice@outside.example", [USER, "team@example.test", "all@example.test"],
                          make_message(to="team@example.test")) == {}
    assert len(mailbox(srv, USER)) == 1
    assert len(mailbox(srv, OTHER)) == 1


def test_group_loop_does_not_hang_or_duplicate(srv):
    srv.cli("group", "add", "a@example.test", "--member", OTHER)
    srv.cli("group", "add", "b@example.test", "--member", "a@example.test")
    srv.cli("group", "add", "a@example.test", "--member", "b@example.test")
    with smtp(srv) as c:
        assert c.sendmail("alice@outside.example", ["a@example.test"], make_message()) == {}
    assert len(mailbox(srv, OTHER)) == 1


def test_message_stays_byte_exact(srv):
    body = (b"first line\r\n"
            b".a line that starts with a dot\r\n"
            b"..two dots\r\n"
            b"trailing spaces   \r\n"
            b"\ttab\r\n"
            b"\r\n"
            b"8-bit: \xc3\xa4\xc3\xb6\xc3\xbc \xe2\x82\xac\r\n"
            + b"x" * 990 + b"\r\n"
            b".\r\n"  # a lone dot inside the text
            b"last\r\n")
    msg = make_message(body="").replace(b"\r\n\r\n", b"\r\nContent-Type: text/plain; charset=utf-8\r\n"
                                        b"Content-Transfer-Encoding: 8bit\r\n\r\n") + body
    with smtp(srv) as c:
        assert c.sendmail("alice@outside.example", [USER], msg, mail_options=["BODY=8BITMIME"]) == {}
    [stored] = mailbox(srv, USER)
    assert stored.endswith(msg)
    assert split_message(stored)[1] == body


def test_bdat_raw_socket(srv):
    msg = make_message(subject="bdat", body="line one\r\n.dot line\r\nend\r\n")
    s, f = raw_connect(srv)
    with s:
        assert cmd(s, f, "EHLO " + CLIENT_NAME)[0] == 250
        assert cmd(s, f, "MAIL FROM:<alice@outside.example>")[0] == 250
        assert cmd(s, f, f"RCPT TO:<{USER}>")[0] == 250
        first, second = msg[:50], msg[50:]
        s.sendall(b"BDAT %d\r\n" % len(first) + first)
        code, text = read_reply(f)
        assert code == 250, text
        s.sendall(b"BDAT %d LAST\r\n" % len(second) + second)
        code, text = read_reply(f)
        assert code == 250 and text.startswith("2."), text
        # DATA is not allowed for BINARYMIME
        assert cmd(s, f, "MAIL FROM:<alice@outside.example> BODY=BINARYMIME")[0] == 250
        assert cmd(s, f, f"RCPT TO:<{USER}>")[0] == 250
        assert cmd(s, f, "DATA")[0] == 503
        assert cmd(s, f, "QUIT")[0] == 221
    [stored] = mailbox(srv, USER)
    assert stored.endswith(msg)
    assert [n for n, _ in added_by_server(stored, msg)] == ["return-path", "received",
                                                            "authentication-results"]


def test_bdat_binarymime_stays_byte_exact(srv):
    # RFC 3030: binary content is labelled; the store then keeps every byte
    # (elsewhere it stores lines with CRLF endings).
    binary = make_message(subject="binary", extra_headers="MIME-Version: 1.0\r\n"
                          "Content-Transfer-Encoding: binary\r\n").replace(
        b"hello\r\n", b"\x00\x01\xff raw\nbytes\r")
    s, f = raw_connect(srv)
    with s:
        assert cmd(s, f, "EHLO " + CLIENT_NAME)[0] == 250
        assert cmd(s, f, "MAIL FROM:<alice@outside.example> BODY=BINARYMIME")[0] == 250
        assert cmd(s, f, f"RCPT TO:<{USER}>")[0] == 250
        s.sendall(b"BDAT %d LAST\r\n" % len(binary) + binary)
        assert read_reply(f)[0] == 250
    [stored] = mailbox(srv, USER)
    assert stored.endswith(binary)


def test_pipelined_transactions(srv):
    s, f = raw_connect(srv)
    with s:
        assert cmd(s, f, "EHLO " + CLIENT_NAME)[0] == 250
        m1, m2 = make_message(subject="p1"), make_message(subject="p2")
        s.sendall(b"MAIL FROM:<a@outside.example>\r\nRCPT TO:<nobody@example.test>\r\nRCPT TO:<" + USER.encode()
                  + b">\r\nDATA\r\n")
        codes = [read_reply(f)[0] for _ in range(4)]
        assert codes == [250, 550, 250, 354], codes
        s.sendall(m1 + b".\r\nMAIL FROM:<b@outside.example>\r\nRCPT TO:<" + USER.encode() + b">\r\nDATA\r\n")
        codes = [read_reply(f)[0] for _ in range(4)]
        assert codes == [250, 250, 250, 354], codes
        s.sendall(m2 + b".\r\nQUIT\r\n")
        assert [read_reply(f)[0] for _ in range(2)] == [250, 221]
    stored = mailbox(srv, USER)
    assert len(stored) == 2 and stored[0].endswith(m1) and stored[1].endswith(m2)


# --- LMTP ---------------------------------------------------------------------------------


def test_lmtp_per_recipient_replies(srv):
    msg = make_message(subject="lmtp")
    with smtplib.LMTP("127.0.0.1", srv.port("lmtp"), local_hostname=CLIENT_NAME, timeout=30) as c:
        c.ehlo()
        assert c.mail("alice@outside.example")[0] == 250
        assert c.rcpt(USER)[0] == 250
        code, text = c.rcpt("nobody@example.test")
        assert code == 550 and text.startswith(b"5.1.1"), (code, text)
        code, text = c.rcpt("x@elsewhere.example")
        assert code >= 500, (code, text)  # LMTP never relays
        assert c.rcpt(OTHER)[0] == 250
        # smtplib.sendmail reads a single reply after DATA; LMTP sends one
        # per accepted recipient, so drive DATA by hand.
        code, _ = c.docmd("DATA")
        assert code == 354
        c.send(smtplib.quotedata(msg.decode()).encode() + b".\r\n")
        replies = [c.getreply() for _ in range(2)]
        assert [r[0] for r in replies] == [250, 250], replies
        assert USER.encode() in replies[0][1] and OTHER.encode() in replies[1][1], replies
        assert c.noop()[0] == 250
    for u in (USER, OTHER):
        [stored] = mailbox(srv, u)
        fields = dict(added_by_server(stored, msg))
        assert "LMTP" in fields["received"].decode()
        assert fields["return-path"].strip() == b"<alice@outside.example>"


def test_unqualified_postmaster_is_accepted(srv):
    """RFC 5321 §4.1.1.3: RCPT TO:<Postmaster> without a domain reaches the
    postmaster of the hosted domain the server's name is in."""
    with smtp(srv) as c:
        c.mail("alice@outside.example")
        code, text = c.docmd("RCPT TO:<Postmaster>")
        assert code == 550 and text.startswith(b"5.1.1"), (code, text)  # no postmaster address yet
    srv.cli("alias", "add", "postmaster@example.test", USER)
    with smtp(srv) as c:
        c.mail("alice@outside.example")
        assert c.docmd("RCPT TO:<POSTMASTER>")[0] == 250
        assert c.docmd("RCPT TO: <postmaster> NOTIFY=NEVER")[0] == 250
        code, _ = c.data(make_message(subject="to the postmaster"))
        assert code == 250
    [m] = mailbox(srv, USER)
    assert b"to the postmaster" in m


def test_lmtp_group_recipient(srv):
    srv.cli("group", "add", "team@example.test", "--member", USER, "--member", OTHER)
    with smtplib.LMTP("127.0.0.1", srv.port("lmtp"), local_hostname=CLIENT_NAME, timeout=30) as c:
        c.ehlo()
        c.mail("alice@outside.example")
        assert c.rcpt("team@example.test")[0] == 250
        assert c.docmd("DATA")[0] == 354
        c.send(make_message() + b".\r\n")
        assert c.getreply()[0] == 250
    assert len(mailbox(srv, USER)) == 1 and len(mailbox(srv, OTHER)) == 1


# --- limits and bad input ------------------------------------------------------------------


@pytest.fixture
def small(tmp_path):
    s = start_server(tmp_path, extra_config="[limits]\nmessage_size = 20000\nmax_recipients = 3\n")
    yield s
    s.close()


def test_size_advertised(small):
    with smtp(small) as c:
        assert c.esmtp_features["size"] == "20000"


def test_size_parameter_too_big(small):
    with smtp(small) as c:
        code, text = c.mail("alice@outside.example", ["SIZE=20001"])
        assert code == 552 and text.startswith(b"5.3.4"), (code, text)
        assert c.mail("alice@outside.example", ["SIZE=19000"])[0] == 250


def test_message_data_too_big(small):
    msg = make_message(body="y" * 998 + "\r\n") * 1
    big = make_message(body=("z" * 78 + "\r\n") * 300)  # ~24 KB, no SIZE= given
    with smtp(small) as c:
        c.mail("alice@outside.example")
        c.rcpt(USER)
        code, text = c.data(big)
        assert code == 552 and text.startswith(b"5.3.4"), (code, text)
        # The client lied in SIZE=: still refused.
        c.mail("alice@outside.example", ["SIZE=1000"])
        c.rcpt(USER)
        code, text = c.data(big)
        assert code == 552 and text.startswith(b"5.3.4"), (code, text)
        # BDAT beyond the limit as well
        assert c.sendmail("alice@outside.example", [USER], msg) == {}
    assert len(mailbox(small, USER)) == 1


def test_bdat_too_big(small):
    big = make_message(body="z" * 25000)
    s, f = raw_connect(small)
    with s:
        cmd(s, f, "EHLO " + CLIENT_NAME)
        cmd(s, f, "MAIL FROM:<alice@outside.example>")
        cmd(s, f, f"RCPT TO:<{USER}>")
        s.sendall(b"BDAT %d LAST\r\n" % len(big) + big)
        code, text = read_reply(f)
        assert code == 552 and text.startswith("5.3.4"), (code, text)
        assert cmd(s, f, "NOOP")[0] == 250
    assert message_count(small) == 0


def test_max_recipients(small):
    small.cli("alias", "add", "a1@example.test", USER)
    small.cli("alias", "add", "a2@example.test", USER)
    small.cli("alias", "add", "a3@example.test", USER)
    with smtp(small) as c:
        c.mail("alice@outside.example")
        for r in (USER, "a1@example.test", "a2@example.test"):
            assert c.rcpt(r)[0] == 250
        code, text = c.rcpt("a3@example.test")
        assert code == 452 and text.startswith(b"4.5.3"), (code, text)
        assert c.data(make_message())[0] == 250
    # the accepted three all lead to one mailbox: one copy
    assert len(mailbox(small, USER)) == 1


def test_command_line_too_long(srv):
    s, f = raw_connect(srv)
    with s:
        cmd(s, f, "EHLO " + CLIENT_NAME)
        code, text = cmd(s, f, "MAIL FROM:<" + "a" * 1200 + "@outside.example>")
        assert code == 500 and text.startswith("5.5."), (code, text)
        code, text = cmd(s, f, "NOOP " + "x" * 5000)
        assert code == 500, (code, text)
        # the session goes on
        assert cmd(s, f, "NOOP")[0] == 250
        assert cmd(s, f, "MAIL FROM:<alice@outside.example>")[0] == 250


def test_submission_data_line_too_long(srv):
    msg = make_message(sender=USER, to=OTHER, body="w" * 1200 + "\r\n")
    with submission(srv) as c:
        with pytest.raises(smtplib.SMTPDataError) as e:
            c.sendmail(USER, [OTHER], msg)
        assert e.value.smtp_code == 500
        assert c.noop()[0] == 250
    assert mailbox(srv, OTHER) == []


def test_malformed_commands_session_goes_on(srv):
    s, f = raw_connect(srv)
    with s:
        assert cmd(s, f, "MAIL FROM:<a@outside.example>")[0] == 503  # before EHLO
        assert cmd(s, f, "EHLO " + CLIENT_NAME)[0] == 250
        for line, codes in [("FOO BAR", (500,)), ("MAIL FROM:<unterminated", (501,)),
                            ("MAIL FROM: no brackets at all", (501,)), ("RCPT TO:<x@example.test>", (503,)),
                            ("DATA", (503,)), ("MAIL TO:<x@y>", (501, 500)), ("\x01\x02\x7f", (500, 501)),
                            ("MAIL FROM:<a@outside.example> FOO=BAR", (555, 501)),
                            ("EXPN staff", (502,)), ("", (500, 501))]:
            code, text = cmd(s, f, line)
            assert code in codes, (line, code, text)
            assert text[:1] == "5" and text.split(" ")[0].count(".") == 2, (line, text)
        assert cmd(s, f, "MAIL FROM:<a@outside.example>")[0] == 250
        assert cmd(s, f, "RCPT TO:<bad address>")[0] == 501
        assert cmd(s, f, f"RCPT TO:<{USER}>")[0] == 250
        assert cmd(s, f, "DATA")[0] == 354
        s.sendall(make_message() + b".\r\n")
        assert read_reply(f)[0] == 250
    assert len(mailbox(srv, USER)) == 1


def test_too_many_errors_closes_session(srv):
    """Postfix's smtpd_hard_error_limit: a client that only sends errors is
    hung up on with 421 (here after 20 errors)."""
    s, f = raw_connect(srv)
    with s:
        codes = []
        for _ in range(25):
            s.sendall(b"BOGUS\r\n")
            line = f.readline()
            if not line:
                break
            codes.append(int(line[:3]))
            if codes[-1] == 421:
                break
        assert codes[-1] == 421 and set(codes[:-1]) == {500}, codes
        assert 10 <= len(codes) <= 21, codes
        assert f.read() == b""


def test_http_request_on_smtp_port_is_hung_up(srv):
    s, f = raw_connect(srv)
    with s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert f.readline().startswith(b"421")
        assert f.read() == b""


def test_client_vanishing_mid_data_leaves_nothing(srv):
    s, f = raw_connect(srv)
    cmd(s, f, "EHLO " + CLIENT_NAME)
    cmd(s, f, "MAIL FROM:<a@outside.example>")
    assert cmd(s, f, f"RCPT TO:<{USER}>")[0] == 250
    assert cmd(s, f, "DATA")[0] == 354
    s.sendall(make_message(body="partial " * 500)[:3000])
    s.close()
    # a full message without the final dot is not a message either
    s, f = raw_connect(srv)
    cmd(s, f, "EHLO " + CLIENT_NAME)
    cmd(s, f, "MAIL FROM:<a@outside.example>")
    cmd(s, f, f"RCPT TO:<{USER}>")
    assert cmd(s, f, "DATA")[0] == 354
    s.sendall(make_message())
    s.close()
    # and one vanishing in the middle of a BDAT chunk
    s, f = raw_connect(srv)
    cmd(s, f, "EHLO " + CLIENT_NAME)
    cmd(s, f, "MAIL FROM:<a@outside.example>")
    cmd(s, f, f"RCPT TO:<{USER}>")
    s.sendall(b"BDAT 10000 LAST\r\n" + b"x" * 4000)
    s.close()
    # The server notices each hang-up and discards what it had ...
    deadline = time.time() + 10
    while srv.log_text().count("vanished mid-message") < 3:
        assert time.time() < deadline, srv.log_text()
        time.sleep(0.1)
    # ... and nothing of it is stored: no message rows, no blob files but
    # those of groupware objects (the Global Address List's vCards, filled
    # from the directory when the server starts).
    assert message_count(srv) == 0
    # A GAL entry's file is written just before its row commits, so a file
    # without a row is given a few seconds; a leaked body stays leaked.
    blobs = srv.data / "blobs"
    deadline = time.time() + 5
    while True:
        files = [p for p in blobs.rglob("*") if p.is_file()] if blobs.exists() else []
        groupware = {r[0] for r in _query(srv, "SELECT blob_hash FROM groupware_objects")}
        leftover = [p for p in files if p.name not in groupware]
        if not leftover or time.time() > deadline:
            break
        time.sleep(0.2)
    assert leftover == []
    # the server is fine
    with smtp(srv) as c:
        assert c.sendmail("a@outside.example", [USER], make_message()) == {}
    assert message_count(srv) == 1


def auth_plain(client, login, password):
    """One AUTH PLAIN attempt (smtplib's login() falls back to other
    mechanisms after a failure, which would count twice)."""
    client.user, client.password = login, password
    try:
        return client.auth("PLAIN", client.auth_plain)[0]
    except smtplib.SMTPAuthenticationError as e:
        return e.smtp_code


def test_failed_auth_repeated_is_blocked(tmp_path):
    s = start_server(tmp_path, auth={"block_after": 3, "slow_after": 100, "block_seconds": 600})
    try:
        # three failures in separate sessions (per-session limit not involved)
        for _ in range(3):
            with submission(s, login=None) as c:
                assert auth_plain(c, USER, "wrong-password") == 535
        # Now even the right password is refused with 421 and the session ends.
        c = submission(s, login=None)
        assert auth_plain(c, USER, PASSWORD) == 421
        with pytest.raises(smtplib.SMTPServerDisconnected):
            c.noop()
        c.close()
        # ... also for another account from the same address
        with submission(s, login=None) as c:
            assert auth_plain(c, OTHER, PASSWORD) == 421
        assert "auth blocked: ip=127.0.0.1" in s.log_text()
    finally:
        s.close()


def test_failed_auth_per_session_limit(srv):
    with submission(srv, login=None) as c:
        codes = [auth_plain(c, "nobody@example.test", "nope") for _ in range(3)]
        assert codes[:2] == [535, 535], codes
        assert codes[2] in (421, 535), codes
        with pytest.raises(smtplib.SMTPServerDisconnected):
            c.noop()
            c.noop()


def test_connections_per_ip_limit(tmp_path):
    s = start_server(tmp_path, extra_config="[limits]\nconnections_per_ip = 2\n")
    try:
        a, fa = raw_connect(s)
        b, fb = raw_connect(s)
        with Raw(s) as third:
            greeting = third.file.readline()
            assert greeting.startswith(b"421 4.7.0"), greeting
            assert third.file.read() == b""
        # smtplib sees the refusal as a failed connect
        with pytest.raises(smtplib.SMTPConnectError) as e:
            smtplib.SMTP("127.0.0.1", s.port("smtp"), timeout=30)
        assert e.value.smtp_code == 421
        # the two open sessions still work
        assert cmd(a, fa, "NOOP")[0] == 250
        assert cmd(b, fb, "NOOP")[0] == 250
        a.close()
        b.close()
        # once they are gone, a new connection is served again
        deadline = time.time() + 10
        while True:
            with Raw(s) as c:
                line = c.file.readline()
            if line.startswith(b"220") or time.time() > deadline:
                break
            time.sleep(0.1)
        assert line.startswith(b"220"), line
    finally:
        s.close()


# --- both backends ------------------------------------------------------------------------------


def test_core_delivery_on_each_backend(any_backend_server):
    s = any_backend_server
    s.add_user(OTHER)
    s.cli("group", "add", "team@example.test", "--member", USER, "--member", OTHER)
    msg = make_message(to="team@example.test", subject="backend " + s.backend)
    with smtp(s) as c:
        c.mail("alice@outside.example")
        assert c.rcpt("nobody@example.test")[0] == 550
        assert c.rcpt("x@elsewhere.example")[0] in (550, 554)
        assert c.rcpt("team@example.test")[0] == 250
        assert c.rcpt(USER)[0] == 250
        assert c.data(msg)[0] == 250
    for u in (USER, OTHER):
        [stored] = mailbox(s, u)
        fields = added_by_server(stored, msg)
        assert [n for n, _ in fields] == ["return-path", "received", "authentication-results"]
    with submission(s) as c:
        assert c.sendmail(USER, ["far@elsewhere.example"], make_message(sender=USER)) == {}
    rows = _query(s, "SELECT address, status FROM queue_recipients")
    assert [tuple(map(str, r)) for r in rows] == [("far@elsewhere.example", "pending")]
