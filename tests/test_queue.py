"""Outbound queue (issue 5), against a real receiving peer: an aiosmtpd
sink on loopback that accepts, temp-fails once (451) then accepts, or
rejects (550) by recipient local part. Outpost relays to it through
`[queue] relay`, so nothing leaves the machine.

Checked: delivery of submitted mail with a DKIM signature that dkimpy
verifies against the record `outpost dns` prints; retry after 451; a DSN
in the sender's INBOX after 550; a restart in the middle of the retry
schedule loses nothing and sends nothing twice; the queue CLI.
"""

import collections
import re
import time

import pytest

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")
dkim = pytest.importorskip("dkim")

import conftest  # noqa: E402
from conftest import Server, free_port, make_message  # noqa: E402
from test_smtp import mailbox, submission  # noqa: E402

USER = "user@example.test"


class Sink:
    """reject*@ → 550; later*@ → 451 on the first try, then 250;
    never*@ → 451 always; else 250."""

    def __init__(self):
        self.messages = []  # (mail_from, [rcpts], bytes)
        self.tries = collections.Counter()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.tries[address] += 1
        local = address.split("@")[0]
        if local.startswith("reject"):
            return "550 5.1.1 no such user here"
        if local.startswith("never") or (local.startswith("later") and self.tries[address] == 1):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 2.0.0 queued"

    def received_by(self, rcpt):
        return [m for m in self.messages if rcpt in m[1]]


@pytest.fixture(params=conftest._backends())
def backend(request):
    return request.param


@pytest.fixture
def sink():
    s = Sink()
    c = aiosmtpd_controller.Controller(s, hostname="127.0.0.1", port=free_port())
    c.start()
    try:
        yield s, c.port
    finally:
        c.stop()


def make_server(tmp_path, port, retry='["1s", "2s"]', backend="sqlite", extra=""):
    s = Server(tmp_path, backend=backend,
               extra_config=f'[queue]\nrelay = "127.0.0.1:{port}"\nretry = {retry}\n{extra}')
    # `domain add` (through add_user) made the domain's DKIM key: mail is
    # signed from the first message without `outpost dkim generate`.
    s.add_user(USER, name="Test User")
    s.start()
    return s


@pytest.fixture
def srv_and_sink(tmp_path, sink, backend):
    sk, port = sink
    s = make_server(tmp_path, port, backend=backend)
    try:
        yield s, sk
    finally:
        s.close()


def submit(server, to, subject="outbound"):
    msg = make_message(subject=subject, sender=USER, to=", ".join(to))
    with submission(server) as c:
        refused = c.sendmail(USER, to, msg)
    assert refused == {}
    return msg


def wait_for(cond, timeout=20, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def dkim_txt(server, domain="example.test"):
    out = server.cli("dns", domain).stdout
    line = next(l for l in out.splitlines() if "._domainkey." in l and " TXT " in l)
    return "".join(re.findall(r'"([^"]*)"', line))


def test_delivered_dkim_signed_and_verifiable(srv_and_sink):
    server, sink = srv_and_sink
    submit(server, ["friend@outside.example"])
    got = wait_for(lambda: sink.received_by("friend@outside.example"), what="delivery")
    assert len(got) == 1
    mail_from, _, data = got[0]
    assert mail_from == USER
    assert data.startswith(b"DKIM-Signature:"), data[:200]
    txt = dkim_txt(server)
    assert txt.startswith("v=DKIM1; k=rsa; p=")

    def dnsfunc(name, timeout=5):
        assert name in (b"outpost._domainkey.example.test.", "outpost._domainkey.example.test."), name
        return txt.encode()

    assert dkim.verify(data, dnsfunc=dnsfunc), "DKIM signature does not verify"
    # Tampered: no longer verifies.
    assert not dkim.verify(data.replace(b"hello", b"hullo"), dnsfunc=dnsfunc)
    wait_for(lambda: "queue is empty" in server.cli("queue", "list").stdout, what="queue emptied")


def test_temp_failure_retried_then_delivered(srv_and_sink):
    server, sink = srv_and_sink
    submit(server, ["later1@outside.example"])
    got = wait_for(lambda: sink.received_by("later1@outside.example"), what="delivery after retry")
    assert len(got) == 1
    assert sink.tries["later1@outside.example"] == 2
    time.sleep(2.5)
    assert len(sink.received_by("later1@outside.example")) == 1, "sent twice"


def test_permanent_failure_bounces_to_sender_inbox(srv_and_sink):
    server, sink = srv_and_sink
    before = len(mailbox(server, USER))
    submit(server, ["reject1@outside.example", "ok1@outside.example"], subject="mixed")
    wait_for(lambda: sink.received_by("ok1@outside.example"), what="delivery of the good recipient")
    inbox = wait_for(lambda: mailbox(server, USER)[before:], what="DSN in INBOX")
    assert len(inbox) == 1
    dsn = inbox[0]
    assert b"Return-Path: <>" in dsn
    assert b"multipart/report" in dsn and b"report-type=delivery-status" in dsn
    assert b"Final-Recipient: rfc822; reject1@outside.example" in dsn
    assert b"Action: failed" in dsn and b"Status: 5.1.1" in dsn
    assert b"550 5.1.1 no such user here" in dsn
    assert b"ok1@outside.example" not in dsn.split(b"message/delivery-status")[1].split(b"message/rfc822")[0]
    assert b"Subject: mixed" in dsn, "original message attached"
    assert sink.tries["reject1@outside.example"] == 1, "a 5xx is not retried"
    wait_for(lambda: "queue is empty" in server.cli("queue", "list").stdout, what="queue emptied")


def test_no_bounce_when_notify_never(srv_and_sink):
    server, sink = srv_and_sink
    before = len(mailbox(server, USER))
    msg = make_message(subject="quiet", sender=USER, to="reject2@outside.example")
    with submission(server) as c:
        c.ehlo()
        if not c.has_extn("dsn"):
            pytest.skip("submission does not offer DSN")
        c.sendmail(USER, ["reject2@outside.example"], msg, rcpt_options=["NOTIFY=NEVER"])
    wait_for(lambda: sink.tries["reject2@outside.example"] >= 1, what="attempt")
    wait_for(lambda: "queue is empty" in server.cli("queue", "list").stdout, what="queue emptied")
    time.sleep(1)
    assert len(mailbox(server, USER)) == before


@pytest.mark.parametrize("how", ["restart", "kill -9"])
def test_queue_survives_restart_mid_retry(tmp_path, sink, backend, how):
    sk, port = sink
    server = make_server(tmp_path, port, retry='["4s"]', backend=backend)
    try:
        submit(server, ["later2@outside.example"])
        wait_for(lambda: "later2@outside.example\tpending\t1 attempt(s)" in server.cli("queue", "list").stdout,
                 what="first attempt recorded")
        assert sk.tries["later2@outside.example"] == 1
        if how == "restart":
            server.restart()
        else:
            server.kill()
            server.start()
        got = wait_for(lambda: sk.received_by("later2@outside.example"), what="delivery after restart")
        assert len(got) == 1
        time.sleep(2)
        assert len(sk.received_by("later2@outside.example")) == 1, "sent twice"
        assert sk.tries["later2@outside.example"] == 2
    finally:
        server.close()


def test_queue_cli_retry_and_remove(tmp_path, sink, backend):
    sk, port = sink
    server = make_server(tmp_path, port, retry='["1h"]', backend=backend)
    try:
        submit(server, ["later3@outside.example"])
        wait_for(lambda: "1 attempt(s)" in server.cli("queue", "list").stdout, what="first attempt recorded")
        qid = server.cli("queue", "list").stdout.split()[0]
        server.cli("queue", "retry", qid)
        wait_for(lambda: sk.received_by("later3@outside.example"), what="delivery after queue retry")
        submit(server, ["later4@outside.example"])
        wait_for(lambda: "1 attempt(s)" in server.cli("queue", "list").stdout, what="first attempt recorded")
        qid = server.cli("queue", "list").stdout.split()[0]
        assert "removed" in server.cli("queue", "remove", qid).stdout
        assert "queue is empty" in server.cli("queue", "list").stdout
        assert server.cli("queue", "remove", qid, check=False).returncode != 0
    finally:
        server.close()


def test_dns_records(tmp_path):
    s = Server(tmp_path)
    s.add_domain("example.test")
    s.cli("dkim", "generate", "example.test", "--algorithm", "ed25519", "--selector", "ed")
    out = s.cli("dns", "example.test").stdout
    for want in ["example.test. IN MX 10 mail.example.test.", '"v=spf1 mx -all"', "_dmarc.example.test.",
                 "_submission._tcp.example.test. IN SRV 0 1 587 mail.example.test.",
                 "_submissions._tcp.example.test. IN SRV 0 1 465", "_imap._tcp.example.test. IN SRV 0 1 143",
                 "_imaps._tcp.example.test. IN SRV 0 1 993", "_pop3s._tcp.example.test. IN SRV 0 1 995",
                 "autoconfig.example.test. IN CNAME mail.example.test.",
                 "autodiscover.example.test. IN CNAME mail.example.test."]:
        assert want in out, (want, out)
    # `domain add` made the key of the configured selector (outpost).
    assert "outpost._domainkey.example.test. IN TXT" in out
    assert s.cli("dkim", "generate", "example.test", check=False).returncode != 0, "no overwrite"
    # Without it, the output says how to make one.
    (s.data / "dkim" / "example.test.outpost.key").unlink()
    out = s.cli("dns", "example.test").stdout
    assert "outpost dkim generate example.test" in out
    s.cli("dkim", "generate", "example.test")
    assert "outpost._domainkey.example.test. IN TXT" in s.cli("dns", "example.test").stdout


def test_delivery_by_mx_from_fixed_table(tmp_path, sink):
    """Without a relay: the MX route, with [queue] test_mx standing in for
    DNS; a domain not in the table stays queued (DNS is off in tests)."""
    sk, port = sink
    s = Server(tmp_path, extra_config=f'[queue]\nretry = ["1s"]\ntest_mx = {{ "mx.example" = "127.0.0.1:{port}" }}\n')
    s.add_user(USER)
    s.start()
    try:
        submit(s, ["someone@mx.example", "someone@nowhere.example"])
        got = wait_for(lambda: sk.received_by("someone@mx.example"), what="delivery by MX")
        assert len(got) == 1 and got[0][1] == ["someone@mx.example"]
        listing = wait_for(lambda: (lambda o: "someone@nowhere.example\tpending" in o and o)(s.cli("queue", "list").stdout),
                           what="other domain still queued")
        assert "DNS lookups are off" in listing
        assert "someone@mx.example\tdelivered" in listing
    finally:
        s.close()


def test_delay_notice_once_then_bounce_at_max_age(tmp_path, sink, backend):
    sk, port = sink
    server = make_server(tmp_path, port, retry='["1s"]', backend=backend,
                         extra='delay_warning = "2s"\nmax_age = "6s"\n')
    try:
        before = len(mailbox(server, USER))
        submit(server, ["never1@outside.example"], subject="slow")
        dsns = wait_for(lambda: [m for m in mailbox(server, USER)[before:] if b"Action: failed" in m] and
                        mailbox(server, USER)[before:], timeout=30, what="bounce after max_age")
        delayed = [m for m in dsns if b"Action: delayed" in m]
        failed = [m for m in dsns if b"Action: failed" in m]
        assert len(delayed) == 1, "one delay notice, not one per attempt"
        assert len(failed) == 1
        assert b"Will-Retry-Until:" in delayed[0]
        assert b"Status: 4.3.0" in delayed[0]
        assert b"gave up after" in failed[0] and b"451 4.3.0 try again later" in failed[0]
        assert sk.tries["never1@outside.example"] >= 3
        wait_for(lambda: "queue is empty" in server.cli("queue", "list").stdout, what="queue emptied")
    finally:
        server.close()


def test_relay_auth_plain(tmp_path, backend):
    """[queue] relay_username/relay_password_file: AUTH at the relay (sent
    without TLS only because the relay is on loopback)."""
    from aiosmtpd.smtp import AuthResult

    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((mechanism, auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"relay-secret")

    sk = Sink()
    c = aiosmtpd_controller.Controller(sk, hostname="127.0.0.1", port=free_port(), authenticator=authenticator,
                                       auth_require_tls=False, auth_required=True)
    c.start()
    pw = tmp_path / "relay.pw"
    pw.write_text("relay-secret\n")
    server = make_server(tmp_path, c.port, backend=backend,
                         extra=f'relay_username = "outpost"\nrelay_password_file = "{pw}"\n')
    try:
        submit(server, ["friend2@outside.example"])
        wait_for(lambda: sk.received_by("friend2@outside.example"), what="delivery through the relay")
        assert logins and logins[0][1:] == (b"outpost", b"relay-secret")
    finally:
        server.close()
        c.stop()


def test_outpost_to_outpost_starttls_pipelining(tmp_path, backend):
    """Outbound to another Outpost's MX (found through [queue] test_mx): a
    peer that offers STARTTLS (self-signed: accepted, opportunistic),
    PIPELINING, 8BITMIME and DSN. The 8-bit message arrives intact over
    TLS, and an unknown recipient there bounces back to the sender."""
    b_dir = tmp_path / "b"
    b_dir.mkdir()
    b = Server(b_dir, backend=backend, listeners=["smtp"])
    b.add_user("friend@other.test")
    b.start()
    a_dir = tmp_path / "a"
    a_dir.mkdir()
    a = Server(a_dir, backend=backend,
               extra_config=f'[queue]\nretry = ["1s"]\ntest_mx = {{ "other.test" = "127.0.0.1:{b.port("smtp")}" }}\n')
    a.add_user(USER)
    a.start()
    try:
        body = "Grüße aus Köln\r\n"
        msg = make_message(subject="8bit", sender=USER, to="friend@other.test", body=body,
                           extra_headers="MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
                                         "Content-Transfer-Encoding: 8bit\r\n")
        with submission(a) as c:
            assert c.sendmail(USER, ["friend@other.test", "nobody@other.test"], msg,
                              mail_options=["BODY=8BITMIME"]) == {}
        [got] = wait_for(lambda: mailbox(b, "friend@other.test"), what="delivery to the other server")
        assert body.encode() in got
        assert b"with ESMTPS" in got or b"TLS" in got, got[:600]
        dsn = wait_for(lambda: mailbox(a, USER), what="bounce for the unknown recipient")
        assert b"Final-Recipient: rfc822; nobody@other.test" in dsn[0]
        assert b"Action: failed" in dsn[0] and b"Status: 5.1.1" in dsn[0]
    finally:
        a.close()
        b.close()


def test_slow_destination_does_not_block_others(tmp_path, sink, backend):
    """A destination that accepts the connection and never greets holds
    its own worker only: mail for another domain goes out at once."""
    import socket

    sk, port = sink
    tarpit = socket.socket()
    tarpit.bind(("127.0.0.1", 0))
    tarpit.listen(16)
    slow_port = tarpit.getsockname()[1]
    s = Server(tmp_path, backend=backend, extra_config=(
        f'[queue]\nretry = ["1s"]\nworkers = 2\ndomain_workers = 1\n'
        f'test_mx = {{ "slow.example" = "127.0.0.1:{slow_port}", "fast.example" = "127.0.0.1:{port}" }}\n'))
    s.add_user(USER)
    s.start()
    try:
        submit(s, ["a@slow.example"], subject="slow 1")
        submit(s, ["b@slow.example"], subject="slow 2")
        time.sleep(1.5)
        t0 = time.time()
        submit(s, ["c@fast.example"], subject="fast")
        wait_for(lambda: sk.received_by("c@fast.example"), timeout=10, what="fast delivery")
        assert time.time() - t0 < 5
        listing = s.cli("queue", "list").stdout
        assert "a@slow.example\tpending" in listing and "b@slow.example\tpending" in listing
    finally:
        s.close()
        tarpit.close()


def test_dsn_echoes_envid_orcpt_and_honours_ret_hdrs(srv_and_sink):
    server, sink = srv_and_sink
    before = len(mailbox(server, USER))
    msg = make_message(subject="with dsn params", sender=USER, to="reject3@outside.example",
                       body="secret body\r\n")
    with submission(server) as c:
        c.ehlo()
        assert c.has_extn("dsn")
        assert c.sendmail(USER, ["reject3@outside.example"], msg, mail_options=["ENVID=env-42", "RET=HDRS"],
                          rcpt_options=["NOTIFY=FAILURE", "ORCPT=rfc822;Reject3@outside.example"]) == {}
    [dsn] = wait_for(lambda: mailbox(server, USER)[before:], what="DSN")
    assert b"Original-Envelope-Id: env-42\r\n" in dsn
    assert b"Original-Recipient: rfc822;Reject3@outside.example\r\n" in dsn
    assert b"Content-Type: text/rfc822-headers" in dsn
    assert b"Subject: with dsn params" in dsn and b"secret body" not in dsn


class SevenBitSink(Sink):
    """A peer that does not announce 8BITMIME (aiosmtpd's EHLO hook)."""

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        return [r for r in responses if "8BITMIME" not in r]


def test_8bit_mail_is_converted_for_a_peer_without_8bitmime(tmp_path):
    """RFC 6152 §3: the message reaches the 7-bit peer as 7-bit MIME, reads
    the same after decoding, and carries a DKIM signature that verifies
    over what was sent."""
    import email
    import email.policy

    sk = SevenBitSink()
    c = aiosmtpd_controller.Controller(sk, hostname="127.0.0.1", port=free_port())
    c.start()
    s = make_server(tmp_path, c.port)
    try:
        body = "Grüße aus Köln, ça va?\r\nZweite Zeile.\r\n"
        msg = (f"From: Test User <{USER}>\r\nTo: friend@outside.example\r\nSubject: umlauts\r\n"
               f"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
               f"Content-Transfer-Encoding: 8bit\r\nMessage-ID: <8bit@example.test>\r\n\r\n{body}").encode()
        with submission(s) as sm:
            assert sm.sendmail(USER, ["friend@outside.example"], msg, mail_options=["BODY=8BITMIME"]) == {}
        got = wait_for(lambda: sk.received_by("friend@outside.example"), what="delivery")
        mail_from, _, data = got[0]
        assert all(b < 0x80 for b in data), "8-bit octets reached a 7-bit peer"
        parsed = email.message_from_bytes(data, policy=email.policy.default)
        assert parsed["Content-Transfer-Encoding"] in ("quoted-printable", "base64")
        assert parsed.get_content().replace("\r\n", "\n") == body.replace("\r\n", "\n")
        txt = dkim_txt(s)
        assert dkim.verify(data, dnsfunc=lambda name, timeout=5: txt.encode()), "DKIM does not verify"
    finally:
        s.close()
        c.stop()


def test_notify_success_local_delivered_and_remote_relayed(srv_and_sink):
    """NOTIFY=SUCCESS (RFC 3461): for a local recipient the sender gets a
    "delivered" report; for a recipient handed to a peer without DSN (the
    aiosmtpd sink announces none) a "relayed" one; without NOTIFY, none."""
    server, sink = srv_and_sink
    server.add_user("friend@example.test")
    msg = make_message(subject="tell me", sender=USER, to="friend@example.test, far@outside.example")
    with submission(server) as c:
        c.ehlo()
        assert c.has_extn("dsn")
        c.mail(USER, ["ENVID=track-42"])
        assert c.rcpt("friend@example.test", ["NOTIFY=SUCCESS,FAILURE"])[0] == 250
        assert c.rcpt("far@outside.example", ["NOTIFY=SUCCESS"])[0] == 250
        assert c.data(msg)[0] == 250
    wait_for(lambda: sink.received_by("far@outside.example"), what="relay delivery")
    reports = wait_for(lambda: [m for m in mailbox(server, USER) if b"multipart/report" in m]
                       if len([m for m in mailbox(server, USER) if b"multipart/report" in m]) >= 2 else None,
                       what="two success reports")
    text = b"\n".join(reports).decode()
    assert "Action: delivered" in text and "Final-Recipient: rfc822; friend@example.test" in text, text
    assert "Action: relayed" in text and "Final-Recipient: rfc822; far@outside.example" in text, text
    assert text.count("Original-Envelope-Id: track-42") == 2, text
    assert "Subject: Successful Mail Delivery Report" in text
    assert "friend@example.test" in text and len(mailbox(server, "friend@example.test")) == 1

    # Without NOTIFY: no report at all.
    before = len(mailbox(server, USER))
    submit(server, ["friend@example.test", "far2@outside.example"], subject="quiet")
    wait_for(lambda: sink.received_by("far2@outside.example"), what="relay delivery")
    time.sleep(1.5)
    assert len(mailbox(server, USER)) == before
