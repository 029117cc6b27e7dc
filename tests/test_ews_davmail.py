"""DavMail (Debian `davmail`, a widely used EWS client that serves local
IMAP, SMTP, CalDAV, CardDAV and LDAP) pointed at Outpost's EWS, and IMAP
and CalDAV conversations through it.

DavMail runs headless (`davmail.server=true`) with its own listeners on
127.0.0.1, in EWS mode against `https://localhost:PORT/EWS/Exchange.asmx`
(the test certificate names localhost; DavMail checks the name and takes
the self-signed certificate by its SHA-1 hash)."""

import hashlib
import imaplib
import socket
import ssl
import subprocess
import time

import pytest

from conftest import CI, PASSWORD, free_port
from ews_helpers import web  # noqa: F401


def davmail_available():
    return subprocess.run(["sh", "-c", "command -v davmail"], capture_output=True).returncode == 0


@pytest.fixture
def davmail(web, tmp_path):
    if not davmail_available():
        if CI:
            pytest.fail("davmail is not installed (.ci/run installs it)")
        pytest.skip("davmail is not installed")
    port = web.port("https")
    pem = ssl.get_server_certificate(("127.0.0.1", port))
    digest = hashlib.sha1(ssl.PEM_cert_to_DER_cert(pem)).hexdigest().upper()
    fingerprint = ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))
    ports = {"imap": free_port(), "caldav": free_port(), "smtp": free_port()}
    props = tmp_path / "davmail.properties"
    props.write_text("\n".join([
        "davmail.server=true",
        "davmail.mode=EWS",
        f"davmail.url=https://localhost:{port}/EWS/Exchange.asmx",
        f"davmail.imapPort={ports['imap']}",
        f"davmail.caldavPort={ports['caldav']}",
        f"davmail.smtpPort={ports['smtp']}",
        "davmail.ldapPort=",
        "davmail.popPort=",
        "davmail.allowRemote=false",
        "davmail.bindAddress=127.0.0.1",
        "davmail.disableUpdateCheck=true",
        "davmail.enableKerberos=false",
        f"davmail.server.certificate.hash={fingerprint}",
        f"davmail.logFilePath={tmp_path}/davmail.log",
        "log4j.rootLogger=WARN",
        "log4j.logger.davmail=DEBUG",
        "",
    ]))
    out = open(tmp_path / "davmail.out", "w")
    p = subprocess.Popen(["davmail", str(props)], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", ports["imap"]), 1).close()
                break
            except OSError:
                if time.monotonic() > deadline or p.poll() is not None:
                    raise AssertionError("DavMail did not start: " + (tmp_path / "davmail.out").read_text()[-2000:])
                time.sleep(0.3)
        yield ports
    finally:
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
        out.close()


def test_imap_through_davmail_login_and_folders(web, davmail):
    """DavMail logs in over EWS (it needs the distinguished folders,
    the Outbox among them) and lists the mailbox's folders over IMAP;
    a wrong password is refused."""
    c = imaplib.IMAP4("127.0.0.1", davmail["imap"])
    typ, _ = c.login("alice@example.test", PASSWORD)
    assert typ == "OK"
    typ, listed = c.list()
    assert typ == "OK"
    names = {line.decode().rsplit(' "/" ', 1)[-1].strip('"') for line in listed}
    assert {"INBOX", "Sent", "Drafts", "Trash", "Junk"} <= names, names
    c.logout()
    bad = imaplib.IMAP4("127.0.0.1", davmail["imap"])
    with pytest.raises(imaplib.IMAP4.error):
        bad.login("alice@example.test", "wrong-password")
