"""Issue 6: Sieve at delivery and ManageSieve, from outside: sievelib over
STARTTLS, deliveries through `outpost deliver`, results read from the
database."""

import socket
import sqlite3

import pytest
import sievelib.managesieve as managesieve

from conftest import PASSWORD, Server, client_tls_context, make_message, read_blob


@pytest.fixture(autouse=True)
def _trust_self_signed(monkeypatch):
    # sievelib verifies certificates; the test server's is self-signed.
    ctx = client_tls_context()
    monkeypatch.setattr(managesieve.ssllib, "create_default_context", lambda *a, **k: ctx)


def sieve_client(server, login="user@example.test"):
    c = managesieve.Client("127.0.0.1", server.port("managesieve"))
    assert c.connect(login, PASSWORD, starttls=True, authmech="PLAIN"), c.errmsg
    return c


def db(server):
    return sqlite3.connect(server.data / "outpost.db")


def mailboxes_of(server, address):
    """Mailbox name -> list of subjects."""
    with db(server) as c:
        rows = c.execute(
            "SELECT col.name, m.subject FROM messages m JOIN collections col ON col.id = m.collection_id "
            "JOIN addresses a ON a.principal_id = col.principal_id WHERE a.address = ?", (address,)).fetchall()
    out = {}
    for name, subject in rows:
        out.setdefault(name, []).append(subject)
    return out


def queued(server):
    with db(server) as c:
        return c.execute("SELECT q.mail_from, r.address, q.blob_hash FROM queue_messages q "
                         "JOIN queue_recipients r ON r.message_id = q.id ORDER BY q.id").fetchall()


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
    with db(server) as c:
        flags = c.execute("SELECT m.flags FROM messages m WHERE m.subject = 'please create'").fetchone()[0]
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
