"""Issue 6: Sieve at delivery and ManageSieve, from outside: sievelib and
sieve-connect over STARTTLS, deliveries through `outpost deliver` and over
SMTP, results read from the database or over IMAP (imapclient), replies
and forwards caught by a local SMTP sink (aiosmtpd) that `[queue] relay`
points at."""

import json
import os
import re
import smtplib
import socket
import subprocess
import time

import pytest
import sievelib.managesieve as managesieve

import conftest
from conftest import PASSWORD, Server, client_tls_context, free_port, make_message, need_tool, read_blob


@pytest.fixture(autouse=True)
def _trust_self_signed(monkeypatch):
    # sievelib verifies certificates; the test server's is self-signed.
    ctx = client_tls_context()
    monkeypatch.setattr(managesieve.ssllib, "create_default_context", lambda *a, **k: ctx)


def sieve_client(server, login="user@example.test"):
    c = managesieve.Client("127.0.0.1", server.port("managesieve"))
    assert c.connect(login, PASSWORD, starttls=True, authmech="PLAIN"), c.errmsg
    return c


def query(server, sql, params=()):
    """Rows from the server's store, SQLite or PostgreSQL."""
    from test_smtp import _query
    return _query(server, sql, params)


def mailboxes_of(server, address):
    """Mailbox name -> list of subjects."""
    rows = query(server,
                 "SELECT col.name, m.subject FROM messages m JOIN collections col ON col.id = m.collection_id "
                 "JOIN addresses a ON a.principal_id = col.principal_id WHERE a.address = ? ORDER BY m.id",
                 (address,))
    out = {}
    for name, subject in rows:
        out.setdefault(name, []).append(subject)
    return out


def queued(server):
    return query(server, "SELECT q.mail_from, r.address, q.blob_hash FROM queue_messages q "
                         "JOIN queue_recipients r ON r.message_id = q.id ORDER BY q.id")


def upload(server, script, name="main", login="user@example.test"):
    c = sieve_client(server, login)
    assert c.putscript(name, script), c.errmsg
    assert c.setactive(name), c.errmsg
    c.logout()


def test_managesieve_with_sievelib(server):
    c = sieve_client(server)
    caps = c.get_sieve_capabilities()
    for ext in ["fileinto", "vacation", "imap4flags", "mailbox", "include", "enotify"]:
        assert ext in caps
    assert c.putscript("one", 'require "fileinto";\nfileinto "A";\n'), c.errmsg
    assert c.putscript("two", "keep;\n")
    active, others = c.listscripts()
    assert active is None and sorted(others) == ["one", "two"]
    assert c.setactive("one")
    active, others = c.listscripts()
    assert active == "one" and others == ["two"]
    assert c.getscript("one").rstrip("\r\n") == 'require "fileinto";\nfileinto "A";'
    assert not c.deletescript("one"), "the active script must not be deleted"
    assert b"ACTIVE" in (c.errcode or b"") or "ACTIVE" in str(c.errcode)
    assert c.renamescript("two", "three")
    assert c.deletescript("three")
    assert c.setactive("")
    assert c.deletescript("one")
    # A broken script is refused with its line number.
    assert not c.putscript("bad", 'require "fileinto";\n\nfileinto "x"\nkeep;\n')
    assert "line 4" in str(c.errmsg), c.errmsg
    assert not c.putscript("bad2", 'require "spamtest";\nkeep;\n')
    assert "line 1" in str(c.errmsg)
    assert c.havespace("x", 100)
    assert not c.havespace("x", 10_000_000)
    c.logout()


def test_managesieve_login_needs_tls_and_bad_input(tmp_path):
    s = Server(tmp_path, plaintext=False)
    try:
        s.add_user("user@example.test")
        s.start()
        with socket.create_connection(("127.0.0.1", s.port("managesieve")), timeout=10) as sock:
            f = sock.makefile("rb")
            greeting = b""
            while not greeting.endswith(b"\r\nOK") and not greeting.startswith(b"OK"):
                line = f.readline()
                greeting += line
                if line.startswith(b"OK"):
                    break
            assert b'"STARTTLS"' in greeting and b'"SASL" ""' in greeting
            sock.sendall(b'AUTHENTICATE "PLAIN" "AHVzZXJAZXhhbXBsZS50ZXN0AHg="\r\n')
            assert f.readline().startswith(b"NO (ENCRYPT-NEEDED)")
            sock.sendall(b"BOGUS \"x\r\n")
            assert f.readline().startswith(b"NO")
            sock.sendall(b"NOOP\r\n")
            assert f.readline().startswith(b"OK")
            sock.sendall(b"LISTSCRIPTS\r\n")
            assert f.readline().startswith(b"NO")
    finally:
        s.close()


def test_fileinto_create_and_missing(server):
    upload(server, 'require ["fileinto", "mailbox", "imap4flags"];\n'
                   'if header :contains "subject" "create" { fileinto :create :flags "\\\\Flagged" "Projects/New"; }\n'
                   'elsif header :contains "subject" "missing" { fileinto "Nowhere"; }\n')
    server.deliver(make_message(subject="please create"), "user@example.test", sender="a@outside.example")
    server.deliver(make_message(subject="missing box"), "user@example.test", sender="a@outside.example")
    boxes = mailboxes_of(server, "user@example.test")
    assert boxes.get("Projects/New") == ["please create"]
    assert boxes.get("INBOX") == ["missing box"]
    flags = int(query(server, "SELECT m.flags FROM messages m WHERE m.subject = 'please create'")[0][0])
    assert flags & 4


def test_global_spam_script_files_into_junk(tmp_path):
    spam = tmp_path / "spam.sieve"
    spam.write_text('require "fileinto";\nif header :is "X-Spam-Flag" "YES" { fileinto "Spam"; stop; }\n')
    s = Server(tmp_path, extra_config=f'[sieve]\nbefore = ["{spam}"]\n')
    try:
        s.add_user("user@example.test")
        s.start()
        s.deliver(make_message(subject="spammy", extra_headers="X-Spam-Flag: YES\r\n"), "user@example.test",
                  sender="x@outside.example")
        s.deliver(make_message(subject="ham"), "user@example.test", sender="x@outside.example")
        boxes = mailboxes_of(s, "user@example.test")
        assert boxes.get("Junk") == ["spammy"]
        assert boxes.get("INBOX") == ["ham"]
    finally:
        s.close()


def test_vacation_once_per_sender_and_not_for_bulk(server):
    upload(server, 'require "vacation";\nvacation :days 1 :subject "Away" "I am away until Monday.";\n')
    for i in range(2):
        server.deliver(make_message(subject=f"hello {i}", sender="ann@outside.example"),
                       "user@example.test", sender="ann@outside.example")
    server.deliver(make_message(subject="newsletter", sender="news@outside.example",
                                extra_headers="Precedence: bulk\r\n"),
                   "user@example.test", sender="news@outside.example")
    q = queued(server)
    assert [(f, to) for f, to, _ in q] == [("", "ann@outside.example")]
    blob = q[0][2]
    body = read_blob(server, blob)
    assert b"Auto-Submitted: auto-replied" in body and b"I am away until Monday." in body
    assert len(mailboxes_of(server, "user@example.test")["INBOX"]) == 3


def test_redirect_to_local_user(server):
    server.add_user("other@example.test")
    upload(server, 'redirect "other@example.test";\n')
    server.deliver(make_message(subject="forward me"), "user@example.test", sender="ann@outside.example")
    assert mailboxes_of(server, "other@example.test").get("INBOX") == ["forward me"]
    assert "INBOX" not in mailboxes_of(server, "user@example.test")


def test_cli_import_of_dovecot_sieve_files(server, tmp_path):
    """`outpost sieve put` takes an existing Pigeonhole file as it is."""
    broken = tmp_path / "broken.sieve"
    broken.write_text('require ["fileinto"];\nif header :contains "subject" "x" {\n  fileinto "A"\n}\n')
    r = server.cli("sieve", "put", "user@example.test", "broken", str(broken), check=False)
    assert r.returncode != 0 and "line" in r.stderr and "nothing was stored" in r.stderr, r.stderr
    good = tmp_path / "dovecot.sieve"
    good.write_text('require ["fileinto", "mailbox"];\n'
                    'if header :contains "subject" "lists" { fileinto :create "Lists"; }\n')
    server.cli("sieve", "put", "user@example.test", "imported", str(good), "--activate")
    assert server.cli("sieve", "list", "user@example.test").stdout.split() == ["imported", "(active)"]
    assert server.cli("sieve", "get", "user@example.test", "imported").stdout == good.read_text()
    r = server.cli("sieve", "remove", "user@example.test", "imported", check=False)
    assert r.returncode != 0, "the active script cannot be removed"
    server.deliver(make_message(subject="from lists"), "user@example.test", sender="a@outside.example")
    assert mailboxes_of(server, "user@example.test").get("Lists") == ["from lists"]
    server.cli("sieve", "activate", "user@example.test", "")
    server.cli("sieve", "remove", "user@example.test", "imported")
    assert server.cli("sieve", "list", "user@example.test").stdout.strip() == ""


# --- over the wire: SMTP in, IMAP and an SMTP sink out ----------------------

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")

from imap_helpers import client as imap_client  # noqa: E402
from test_queue import Sink, wait_for  # noqa: E402

USER = "user@example.test"
OTHER = "other@example.test"


@pytest.fixture
def sink():
    s = Sink()
    c = aiosmtpd_controller.Controller(s, hostname="127.0.0.1", port=free_port())
    c.start()
    try:
        yield s, c.port
    finally:
        c.stop()


def relay_server(tmp_path, port, sieve="", users=(USER, OTHER)):
    s = Server(tmp_path, extra_config=f'[queue]\nrelay = "127.0.0.1:{port}"\nretry = ["1s"]\n'
                                      + (f"[sieve]\n{sieve}\n" if sieve else ""))
    try:
        for u in users:
            s.add_user(u, name=u.split("@")[0].title())
        s.start()
    except BaseException:
        s.close()
        raise
    return s


@pytest.fixture
def wired(tmp_path, sink):
    """(server whose outbound mail goes to the sink, sink)."""
    sk, port = sink
    s = relay_server(tmp_path, port)
    try:
        yield s, sk
    finally:
        s.close()


def mx_send(server, msg, rcpts=(USER,), sender="ann@outside.example"):
    with smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=30) as c:
        return c.sendmail(sender, list(rcpts), msg)


def subjects(server, folder, user=USER):
    c = imap_client(server, user=user)
    try:
        c.select_folder(folder, readonly=True)
        ids = c.search("ALL")
        got = c.fetch(ids, ["ENVELOPE"]) if ids else {}
        return sorted(got[i][b"ENVELOPE"].subject.decode() for i in ids)
    finally:
        c.logout()


def header(raw, name):
    m = re.search(rb"(?im)^" + name.encode() + rb":[ \t]*(.*?)\r?$", raw.split(b"\r\n\r\n", 1)[0])
    return m.group(1).decode() if m else None


def test_vacation_over_smtp_reply_through_the_queue(wired):
    """Two messages from one outside sender give one auto-reply, caught by
    the sink; a bulk message gives none; all three are in INBOX (IMAP)."""
    server, sink = wired
    upload(server, 'require "vacation";\nvacation :days 1 :subject "Away" "I am away until Monday.";\n')
    first = make_message(subject="hello 1", sender="ann@outside.example")
    mx_send(server, first)
    mx_send(server, make_message(subject="hello 2", sender="ann@outside.example"))
    mx_send(server, make_message(subject="newsletter", sender="news@outside.example",
                                 extra_headers="Precedence: bulk\r\n"), sender="news@outside.example")
    got = wait_for(lambda: sink.received_by("ann@outside.example"), what="the vacation reply")
    time.sleep(3)  # anything more (a second reply, one to the list) would be here by now
    assert len(sink.received_by("ann@outside.example")) == 1
    assert sink.received_by("news@outside.example") == []
    mail_from, rcpts, data = got[0]
    assert mail_from in ("", "<>") and rcpts == ["ann@outside.example"]
    assert header(data, "Auto-Submitted") == "auto-replied"
    assert header(data, "In-Reply-To") == header(first, "Message-ID")
    assert header(data, "Subject") == "Away"
    assert USER in header(data, "From") and "ann@outside.example" in header(data, "To")
    assert b"I am away until Monday." in data
    assert subjects(server, "INBOX") == ["hello 1", "hello 2", "newsletter"]


def test_fileinto_create_and_redirect_seen_over_imap(wired):
    server, _ = wired
    upload(server, 'require ["fileinto", "mailbox", "copy"];\n'
                   'if header :contains "subject" "project" { fileinto :create "Projects/New"; }\n'
                   'elsif header :contains "subject" "missing" { fileinto "Nowhere"; }\n'
                   'elsif header :contains "subject" "share" { redirect :copy "other@example.test"; }\n')
    mx_send(server, make_message(subject="project plan"))
    mx_send(server, make_message(subject="missing box"))
    mx_send(server, make_message(subject="share this"))
    c = imap_client(server)
    try:
        names = [f[2] for f in c.list_folders()]
    finally:
        c.logout()
    assert "Projects/New" in names and "Nowhere" not in names
    assert subjects(server, "Projects/New") == ["project plan"]
    assert subjects(server, "INBOX") == ["missing box", "share this"]
    assert subjects(server, "INBOX", user=OTHER) == ["share this"]


def test_redirect_outside_gets_srs_sender_and_bounce_goes_back(wired):
    server, sink = wired
    upload(server, 'redirect "friend@far.example";\n')
    msg = make_message(subject="pass it on", sender="ann@origin.example")
    mx_send(server, msg, sender="ann@origin.example")
    got = wait_for(lambda: sink.received_by("friend@far.example"), what="the redirect")
    mail_from, _, data = got[0]
    m = re.fullmatch(r"SRS0=([^=]{4})=([A-Z2-7]{2})=origin\.example=ann@example\.test", mail_from)
    assert m, mail_from
    # The message itself goes on unmodified; only trace fields are added on top.
    assert data.endswith(msg), data[:400]
    assert header(data, "Delivered-To") == USER
    assert (server.data / "srs.key").exists()
    assert "INBOX" not in mailboxes_of(server, USER)

    # A bounce to the SRS address is accepted and sent on to the original sender.
    dsn = (b"From: MAILER-DAEMON@far.example\r\nTo: " + mail_from.encode() +
           b"\r\nSubject: Undelivered Mail Returned to Sender\r\nAuto-Submitted: auto-replied\r\n\r\n"
           b"friend@far.example: mailbox full\r\n")
    assert mx_send(server, dsn, rcpts=[mail_from], sender="") == {}
    back = wait_for(lambda: sink.received_by("ann@origin.example"), what="the bounce sent back")
    assert back[0][0] in ("", "<>") and b"mailbox full" in back[0][2]
    # Case folded by a relay on the way back: still valid.
    assert mx_send(server, dsn, rcpts=[mail_from.lower()], sender="") == {}

    # Senders in our own domains, and the null sender, are not rewritten.
    upload(server, 'redirect "pal@far.example";\n', login=OTHER)
    server.deliver(make_message(subject="from inside", sender=USER), OTHER, sender=USER)
    server.deliver(make_message(subject="a bounce"), OTHER, sender="")
    got = wait_for(lambda: len(sink.received_by("pal@far.example")) == 2 and sink.received_by("pal@far.example"),
                   what="the two redirects")
    assert sorted(m[0] for m in got) == ["<>", USER]

    # Forged (wrong hash) or broken SRS addresses are refused at RCPT.
    h = m.group(1)
    forged = mail_from.replace(f"SRS0={h}=", "SRS0=" + ("AAAA" if h.upper() != "AAAA" else "BBBB") + "=")
    forged_other = mail_from.replace("origin.example", "victim.example")
    for bad in [forged, forged_other, "SRS0=xx@example.test"]:
        with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
            mx_send(server, dsn, rcpts=[bad], sender="")
        assert list(e.value.recipients.values())[0][0] == 550, e.value.recipients


def test_group_with_outside_member_forwards_with_srs_sender(wired):
    """A group (or alias) with an outside member sends the message on like a
    Sieve redirect: SRS sender in the group's domain, bounces find their way
    back; senders in hosted domains stay as they are."""
    server, sink = wired
    server.cli("group", "add", "team@example.test", "--member", USER, "--member", "friend@far.example")
    msg = make_message(subject="team news", sender="ann@origin.example")
    mx_send(server, msg, rcpts=["team@example.test"], sender="ann@origin.example")
    got = wait_for(lambda: sink.received_by("friend@far.example"), what="the forwarded copy")
    mail_from, rcpts, data = got[0]
    assert re.fullmatch(r"SRS0=[^=]{4}=[A-Z2-7]{2}=origin\.example=ann@example\.test", mail_from), mail_from
    assert rcpts == ["friend@far.example"] and data.endswith(msg)
    assert subjects(server, "INBOX") == ["team news"]

    dsn = (b"From: MAILER-DAEMON@far.example\r\nTo: " + mail_from.encode() +
           b"\r\nSubject: Undelivered Mail Returned to Sender\r\n\r\nfriend@far.example: no such user\r\n")
    assert mx_send(server, dsn, rcpts=[mail_from], sender="") == {}
    back = wait_for(lambda: sink.received_by("ann@origin.example"), what="the bounce sent back")
    assert back[0][0] in ("", "<>") and b"no such user" in back[0][2]

    mx_send(server, make_message(subject="from inside", sender=OTHER), rcpts=["team@example.test"], sender=OTHER)
    got = wait_for(lambda: len(sink.received_by("friend@far.example")) == 2 and sink.received_by("friend@far.example"),
                   what="the second forwarded copy")
    assert OTHER in [m[0] for m in got]


def test_dmarc_quarantine_moves_only_what_goes_to_inbox(tmp_path):
    """Mail failing DMARC under p=quarantine: a script's fileinto elsewhere
    still applies; its implicit keep goes to Junk instead of INBOX."""
    records = ('[inbound.test_txt]\n"quar.example" = "v=spf1 ip4:192.0.2.1 -all"\n'
               '"_dmarc.quar.example" = "v=DMARC1; p=quarantine"\n')
    server = Server(tmp_path, extra_config=records)
    try:
        server.add_user(USER)
        server.start()
        upload(server, 'require "fileinto";\nif header :contains "subject" "work" { fileinto "Archive"; }\n')
        for subject in ["work plan", "other"]:
            mx_send(server, make_message(subject=subject, sender="ann@quar.example"), sender="ann@quar.example")
        assert subjects(server, "Archive") == ["work plan"]
        assert subjects(server, "Junk") == ["other"]
        assert subjects(server, "INBOX") == []
    finally:
        server.close()


def test_redirect_with_original_sender_when_configured(tmp_path, sink):
    sk, port = sink
    server = relay_server(tmp_path, port, sieve='redirect_sender = "original"')
    try:
        upload(server, 'redirect "friend@far.example";\n')
        mx_send(server, make_message(subject="as is", sender="ann@origin.example"), sender="ann@origin.example")
        got = wait_for(lambda: sk.received_by("friend@far.example"), what="the redirect")
        assert got[0][0] == "ann@origin.example"
        assert not (server.data / "srs.key").exists()
    finally:
        server.close()


def test_reject_refused_at_end_of_data_for_one_recipient(wired):
    server, sink = wired
    upload(server, 'require "reject";\nif header :contains "subject" "offer" { reject "No offers, thank you."; }\n')
    with pytest.raises(smtplib.SMTPDataError) as e:
        mx_send(server, make_message(subject="special offer"))
    assert e.value.smtp_code == 550
    assert e.value.smtp_error.decode().startswith("5.7.1"), e.value.smtp_error
    assert "No offers, thank you." in e.value.smtp_error.decode()
    # Two recipients: accepted (the other one gets it), the sender gets a notice.
    assert mx_send(server, make_message(subject="special offer 2"), rcpts=[USER, OTHER]) == {}
    notice = wait_for(lambda: sink.received_by("ann@outside.example"), what="the rejection notice")
    assert notice[0][0] in ("", "<>") and b"No offers, thank you." in notice[0][2]
    assert subjects(server, "INBOX", user=OTHER) == ["special offer 2"]
    assert subjects(server, "INBOX") == []
    # Over LMTP, a single recipient is refused the same way.
    with smtplib.LMTP("127.0.0.1", server.port("lmtp"), timeout=30) as c:
        c.ehlo("mta.example")  # smtplib's LMTP says LHLO
        with pytest.raises(smtplib.SMTPDataError) as e:
            c.sendmail("ann@outside.example", [USER], make_message(subject="offer via lmtp"))
    assert e.value.smtp_code == 550
    # LMTP with several recipients answers each: refused for the one whose
    # script rejects, delivered for the others; a group that reaches a user
    # already served gives no second copy; no rejection notice is sent.
    server.cli("group", "add", "both@example.test", "--member", USER, "--member", OTHER)
    with smtplib.LMTP("127.0.0.1", server.port("lmtp"), timeout=30) as c:
        c.ehlo("mta.example")
        assert c.mail("bob@outside.example")[0] == 250
        for r in (USER, OTHER, "both@example.test"):
            assert c.rcpt(r)[0] == 250
        assert c.docmd("DATA")[0] == 354
        c.send(smtplib.quotedata(make_message(subject="offer for two", sender="bob@outside.example").decode())
               .encode() + b".\r\n")
        replies = [c.getreply() for _ in range(3)]
    assert [r[0] for r in replies] == [550, 250, 250], replies
    assert b"5.7.1" in replies[0][1] and b"No offers, thank you." in replies[0][1], replies
    assert subjects(server, "INBOX", user=OTHER) == ["offer for two", "special offer 2"]
    assert subjects(server, "INBOX") == []
    time.sleep(2)
    assert sink.received_by("bob@outside.example") == []


def test_spamtest_and_virustest_from_scanner_headers(tmp_path):
    s = Server(tmp_path, extra_config='[sieve]\nspam_score_header = "X-Spam-Score"\nspam_score_max = 15.0\n'
                                      'virus_header = "X-Virus-Status"\n')
    try:
        s.add_user(USER)
        s.start()
        c = sieve_client(s)
        caps = c.get_sieve_capabilities()
        assert {"spamtest", "spamtestplus", "virustest"} <= set(caps), caps
        # Everything advertised is accepted, and nothing else.
        for ext in caps:
            assert c.checkscript(f'require "{ext}";\nkeep;\n'), (ext, c.errmsg)
        for ext in ["foreverypart", "extlists", "vnd.dovecot.pipe", "special-use"]:
            assert ext not in caps
            assert not c.checkscript(f'require "{ext}";\nkeep;\n'), ext
        assert c.putscript("spam", 'require ["spamtestplus", "virustest", "fileinto", "mailbox", "relational",\n'
                                   ' "comparator-i;ascii-numeric"];\n'
                                   'if virustest :value "ge" :comparator "i;ascii-numeric" "4" { discard; stop; }\n'
                                   'if spamtest :percent :value "ge" :comparator "i;ascii-numeric" "50"\n'
                                   '  { fileinto "Junk"; stop; }\n'
                                   'if spamtest :value "eq" :comparator "i;ascii-numeric" "0"\n'
                                   '  { fileinto :create "Unscanned"; }\n'), c.errmsg
        assert c.setactive("spam")
        c.logout()
        for subject, extra in [("spammy", "X-Spam-Score: 9.5\r\n"), ("hammy", "X-Spam-Score: -2.1\r\n"),
                               ("borderline", "X-Spam-Score: 7.0\r\n"), ("unscanned", ""),
                               ("infected", "X-Virus-Status: Infected (Eicar-Signature)\r\nX-Spam-Score: 0\r\n")]:
            mx_send(s, make_message(subject=subject, extra_headers=extra))
        assert subjects(s, "Junk") == ["spammy"]
        assert subjects(s, "INBOX") == ["borderline", "hammy"]
        assert subjects(s, "Unscanned") == ["unscanned"]
    finally:
        s.close()


def test_spamtest_not_offered_without_a_score(server):
    c = sieve_client(server)
    caps = c.get_sieve_capabilities()
    assert "spamtest" not in caps and "virustest" not in caps
    c.logout()


# --- import of a Dovecot/Pigeonhole tree ---------------------------------------


def test_sieve_import_of_a_pigeonhole_tree(server, tmp_path):
    server.add_user(OTHER)
    vmail = tmp_path / "vmail"
    user_dir = vmail / "user" / "sieve"
    user_dir.mkdir(parents=True)
    (user_dir / "main.sieve").write_text('require ["fileinto", "mailbox"];\n'
                                         'if header :contains "subject" "lists" { fileinto :create "Lists"; }\n')
    (user_dir / "vacation.sieve").write_text('require "vacation";\nvacation "Away.";\n')
    (user_dir / "broken.sieve").write_text('require "fileinto";\n\nfileinto "x"\nkeep;\n')
    (user_dir / "main.svbin").write_bytes(b"\x00compiled")
    (vmail / "user" / ".dovecot.sieve").symlink_to("sieve/main.sieve")
    other_dir = vmail / "other@example.test" / "sieve"
    other_dir.mkdir(parents=True)
    (other_dir / "filters.sieve").write_text("keep;\n")
    (other_dir / "dovecot.sieve").symlink_to("filters.sieve")
    (vmail / "ghost" / "sieve").mkdir(parents=True)
    (vmail / "ghost" / "sieve" / "x.sieve").write_text("keep;\n")

    r = server.cli("sieve", "import", str(vmail), "--domain", "example.test", check=False)
    assert r.returncode == 1, r.stderr
    assert f"{user_dir / 'broken.sieve'}:4:" in r.stderr, r.stderr
    assert "ghost@example.test" in r.stderr
    assert "3 script(s) imported for 2 user(s), 2 activated, 2 skipped" in r.stdout, r.stdout
    assert server.cli("sieve", "list", USER).stdout.split("\n")[:2] == ["main\t(active)", "vacation"]
    assert server.cli("sieve", "list", OTHER).stdout.strip() == "filters\t(active)"
    assert server.cli("sieve", "get", USER, "vacation").stdout == (user_dir / "vacation.sieve").read_text()
    # The imported active script works at delivery, and ManageSieve sees it.
    server.deliver(make_message(subject="from lists"), USER, sender="a@outside.example")
    assert mailboxes_of(server, USER).get("Lists") == ["from lists"]
    c = sieve_client(server)
    active, others = c.listscripts()
    assert active == "main" and others == ["vacation"]
    c.logout()
    # Without --domain, local-part directories cannot be placed.
    r = server.cli("sieve", "import", str(vmail), "--dry-run", check=False)
    assert r.returncode == 1 and "--domain" in r.stderr


# --- sieve-connect -------------------------------------------------------------


def sieve_connect(server, *args, password=PASSWORD, user=USER):
    """Runs sieve-connect over STARTTLS, verifying the server's certificate
    against the test server's own (self-signed) one."""
    exe = need_tool("sieve-connect")
    rfd, wfd = os.pipe()
    os.write(wfd, (password + "\n").encode())
    os.close(wfd)
    try:
        return subprocess.run(
            [exe, "--server", "127.0.0.1", "--port", str(server.port("managesieve")), "--user", user,
             "--passwordfd", str(rfd), "--tlscafile", str(server.data / "tls" / "cert.pem"),
             "--tlshostname", "mail.example.test", "--authmech", "PLAIN", "--noclearauth", *args],
            pass_fds=(rfd,), capture_output=True, text=True, timeout=60, cwd=server.tmp)
    finally:
        os.close(rfd)


def test_sieve_connect_upload_list_activate_download_delete(server, tmp_path):
    script = tmp_path / "filters.sieve"
    script.write_text('require ["fileinto"];\nif header :contains "subject" "tps" { fileinto "Reports"; }\n')
    r = sieve_connect(server, "--upload", "--localsieve", str(script), "--remotesieve", "filters")
    assert r.returncode == 0, r.stderr
    r = sieve_connect(server, "--activate", "--remotesieve", "filters")
    assert r.returncode == 0, r.stderr
    r = sieve_connect(server, "--list")
    assert r.returncode == 0, r.stderr
    assert re.search(r"^\"filters\" ACTIVE$", r.stdout, re.M), r.stdout
    out = tmp_path / "back.sieve"
    r = sieve_connect(server, "--download", "--remotesieve", "filters", "--localsieve", str(out))
    assert r.returncode == 0, r.stderr
    assert out.read_text().replace("\r\n", "\n") == script.read_text()
    # The active script cannot be deleted; after deactivating it can.
    r = sieve_connect(server, "--delete", "--remotesieve", "filters")
    assert r.returncode != 0
    r = sieve_connect(server, "--deactivate")
    assert r.returncode == 0, r.stderr
    r = sieve_connect(server, "--delete", "--remotesieve", "filters")
    assert r.returncode == 0, r.stderr
    r = sieve_connect(server, "--list")
    assert r.returncode == 0 and "filters" not in r.stdout, r.stdout
    # A broken script is refused with its line.
    bad = tmp_path / "bad.sieve"
    bad.write_text('require "fileinto";\n\nfileinto "x"\nkeep;\n')
    r = sieve_connect(server, "--upload", "--localsieve", str(bad), "--remotesieve", "bad")
    assert r.returncode != 0 and "line 4" in (r.stdout + r.stderr), r.stdout + r.stderr
    # A wrong password is refused.
    r = sieve_connect(server, "--list", password="wrong-password")
    assert r.returncode != 0


def test_out_of_office_is_the_active_scripts_vacation(server):
    """`outpost oof` sets the one out-of-office (what ActiveSync, EWS, JMAP and the
    web UI set): it lands in the active script beside the user's rules, ManageSieve
    shows it, and delivery answers with it."""
    upload(server, 'require "fileinto";\nif header :contains "subject" "lists" { fileinto "INBOX"; }\n')
    assert json.loads(server.cli("oof", "get", USER).stdout)["state"] == "disabled"
    server.cli("oof", "set", USER, "--state", "enabled", "--subject", "Away",
               "--message", "Back on Monday.", "--external-audience", "all")
    got = json.loads(server.cli("oof", "get", USER).stdout)
    assert got["state"] == "enabled" and got["internal_reply"] == "Back on Monday.", got
    c = sieve_client(server)
    active, _ = c.listscripts()
    assert active == "main"
    text = c.getscript("main")
    assert text.startswith('require "fileinto";\n# BEGIN outpost out-of-office'), text
    assert 'if header :contains "subject" "lists"' in text
    server.deliver(make_message(subject="hello", sender="ann@outside.example"),
                   USER, sender="ann@outside.example")
    q = queued(server)
    assert [(f, to) for f, to, _ in q] == [("", "ann@outside.example")]
    assert b"Back on Monday." in read_blob(server, q[0][2])
    # Bad input: one clear error, nothing changed.
    r = server.cli("oof", "set", USER, "--state", "scheduled", "--start", "2026-12-24T00:00:00Z",
                   "--end", "2026-12-01T00:00:00Z", check=False)
    assert r.returncode != 0 and "not after its start" in r.stderr, r.stderr
    r = server.cli("oof", "set", USER, "--state", "sometimes", check=False)
    assert r.returncode != 0 and "disabled, enabled or scheduled" in r.stderr, r.stderr
    assert json.loads(server.cli("oof", "get", USER).stdout)["state"] == "enabled"
    # Off: no reply, the text is kept for the next time.
    server.cli("oof", "set", USER, "--state", "disabled")
    server.deliver(make_message(subject="again", sender="bob@outside.example"),
                   USER, sender="bob@outside.example")
    assert len(queued(server)) == 1
    assert json.loads(server.cli("oof", "get", USER).stdout)["internal_reply"] == "Back on Monday."
