"""Inbound checks on the MX role (issue 5): SPF, DKIM and DMARC with
mail-auth, the result as an Authentication-Results: field, and DMARC
p=reject honoured at the end of DATA. DNS answers come from fixed records
in the config ([inbound] test_txt): nothing leaves loopback."""

import smtplib
import sqlite3

import pytest

from conftest import Server, read_blob

RECORDS = """
[inbound.test_txt]
"good.example" = "v=spf1 ip4:127.0.0.1 -all"
"_dmarc.good.example" = "v=DMARC1; p=reject"
"bad.example" = "v=spf1 ip4:192.0.2.1 -all"
"_dmarc.bad.example" = "v=DMARC1; p=reject"
"soft.example" = "v=spf1 ip4:192.0.2.1 -all"
"_dmarc.soft.example" = "v=DMARC1; p=none"
"quar.example" = "v=spf1 ip4:192.0.2.1 -all"
"_dmarc.quar.example" = "v=DMARC1; p=quarantine"
"""


@pytest.fixture
def mx(tmp_path):
    s = Server(tmp_path, extra_config=RECORDS)
    try:
        s.add_user("user@example.test")
        s.start()
        yield s
    finally:
        s.close()


def stored(server):
    con = sqlite3.connect(server.data / "outpost.db")
    try:
        hashes = [r[0] for r in con.execute("SELECT blob_hash FROM messages ORDER BY id")]
    finally:
        con.close()
    return [read_blob(server, h) for h in hashes]


def send(server, sender_domain):
    msg = (f"From: someone@{sender_domain}\r\nTo: user@example.test\r\nSubject: check\r\n"
           f"Message-ID: <x@{sender_domain}>\r\n\r\nbody\r\n").encode()
    c = smtplib.SMTP("127.0.0.1", server.port("smtp"))
    try:
        c.ehlo("mta.example")
        return c.sendmail(f"someone@{sender_domain}", ["user@example.test"], msg)
    finally:
        c.quit()


def header_block(raw):
    return raw.split(b"\r\n\r\n", 1)[0].decode()


def test_spf_pass_is_recorded(mx):
    send(mx, "good.example")
    [m] = stored(mx)
    h = header_block(m)
    assert "Authentication-Results: mail.example.test;" in h, h
    assert "spf=pass" in h, h
    # Return-Path, our Received:, then the results
    names = [l.split(":", 1)[0].lower() for l in h.split("\r\n") if l and not l[0].isspace()]
    assert names[:3] == ["return-path", "received", "authentication-results"], names


def test_dmarc_reject_is_refused_at_data(mx):
    with pytest.raises(smtplib.SMTPDataError) as e:
        send(mx, "bad.example")
    assert e.value.smtp_code == 550
    assert b"5.7.1" in e.value.smtp_error and b"DMARC" in e.value.smtp_error
    assert stored(mx) == []


def test_dmarc_none_is_delivered_with_fail(mx):
    send(mx, "soft.example")
    [m] = stored(mx)
    h = header_block(m)
    assert "spf=fail" in h and "dmarc=fail" in h, h


def folders(server, user="user@example.test"):
    """Mailbox name -> subjects, as an IMAP client sees them."""
    from imap_helpers import client
    c = client(server, user=user)
    try:
        out = {}
        for _, _, name in c.list_folders():
            c.select_folder(name, readonly=True)
            ids = c.search("ALL")
            got = c.fetch(ids, ["ENVELOPE"]) if ids else {}
            out[name] = sorted(got[i][b"ENVELOPE"].subject.decode() for i in ids)
        return out
    finally:
        c.logout()


def test_dmarc_quarantine_goes_to_junk(mx):
    send(mx, "quar.example")
    send(mx, "soft.example")
    got = folders(mx)
    assert got["Junk"] == ["check"] and got["INBOX"] == ["check"], got
    [junk, _] = stored(mx)
    assert "dmarc=fail" in header_block(junk)


def test_dmarc_quarantine_to_inbox_when_configured(tmp_path):
    config = RECORDS.replace("[inbound.test_txt]", "[inbound]\ndmarc_quarantine_junk = false\n\n[inbound.test_txt]")
    s = Server(tmp_path, extra_config=config)
    try:
        s.add_user("user@example.test")
        s.start()
        send(s, "quar.example")
        got = folders(s)
        assert got["INBOX"] == ["check"] and got["Junk"] == [], got
    finally:
        s.close()


def test_authenticated_submission_is_not_checked(mx):
    # Mail from our own users is signed and sent by us; the MX checks are
    # for other servers only.
    import ssl
    from conftest import client_tls_context, PASSWORD
    c = smtplib.SMTP("127.0.0.1", mx.port("submission"))
    c.starttls(context=client_tls_context())
    c.login("user@example.test", PASSWORD)
    c.sendmail("user@example.test", ["user@example.test"],
               b"From: user@example.test\r\nTo: user@example.test\r\nSubject: self\r\n\r\nhi\r\n")
    c.quit()
    [m] = stored(mx)
    assert "Authentication-Results" not in header_block(m)


def test_arc_chain_from_a_forwarder_is_verified(tmp_path):
    """A list/forwarder seals the message with ARC (dkimpy's arc_sign, RSA);
    the MX reports arc=pass, and arc=fail once the body was changed after
    sealing."""
    import re
    import dkim

    # The forwarder's key: made by Outpost's own CLI in a scratch config.
    (tmp_path / "keygen").mkdir()
    (tmp_path / "mx").mkdir()
    keygen = Server(tmp_path / "keygen")
    out = keygen.cli("dkim", "generate", "forwarder.example", "--selector", "arc").stdout
    line = next(l for l in out.splitlines() if "arc._domainkey." in l and " TXT " in l)
    txt = "".join(re.findall(r'"([^"]*)"', line))
    pem = (keygen.data / "dkim" / "forwarder.example.arc.key").read_bytes()

    s = Server(tmp_path / "mx", extra_config=RECORDS + f'"arc._domainkey.forwarder.example" = "{txt}"\n')
    try:
        s.add_user("user@example.test")
        s.start()
        msg = (b"From: someone@origin.example\r\nTo: list@forwarder.example\r\nSubject: via the list\r\n"
               b"Date: Tue, 24 Nov 2026 10:00:00 +0000\r\nMessage-ID: <arc1@origin.example>\r\n\r\nHello list\r\n")
        # What the forwarder found when the message reached it, then its seal.
        msg = b"Authentication-Results: forwarder.example; spf=pass smtp.mailfrom=origin.example\r\n" + msg
        seal = dkim.arc_sign(msg, b"arc", b"forwarder.example", pem, b"forwarder.example",
                             include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
        sealed = b"".join(seal) + msg
        for body in (sealed, sealed.replace(b"Hello list", b"Hello there")):
            c = smtplib.SMTP("127.0.0.1", s.port("smtp"))
            c.ehlo("forwarder.example")
            c.sendmail("", ["user@example.test"], body)
            c.quit()
        first, second = stored(s)
        assert "arc=pass" in header_block(first), header_block(first)
        h = header_block(second)
        assert "arc=" in h and "arc=pass" not in h, h
    finally:
        s.close()
