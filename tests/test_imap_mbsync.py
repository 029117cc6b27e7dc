"""mbsync (isync, Debian) against Outpost (issue 4): two-way sync of INBOX and
a folder with a local Maildir over STARTTLS and over IMAPS; server messages
arrive as Maildir files, a file put in the local Maildir is APPENDed, flags
travel both ways, expunges propagate, and a second run is a no-op."""

import os
import subprocess
from pathlib import Path

import pytest

from conftest import PASSWORD, need_tool
from imap_helpers import USER, client, msg, send_many


def maildir_files(d: Path):
    return sorted(p for sub in ("cur", "new") if (d / sub).is_dir() for p in (d / sub).iterdir())


def run_mbsync(rc: Path):
    r = subprocess.run([need_tool("mbsync"), "-c", str(rc), "-a", "-V"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout + r.stderr


def write_rc(tmp: Path, server, mode):
    port = server.port("imap" if mode == "STARTTLS" else "imaps")
    local = tmp / f"maildir-{mode}"
    local.mkdir()
    rc = tmp / f"mbsyncrc-{mode}"
    rc.write_text(f"""IMAPAccount outpost
Host 127.0.0.1
Port {port}
User {USER}
Pass {PASSWORD}
SSLType {mode}
CertificateFile {server.data / 'tls' / 'cert.pem'}
SystemCertificates no
AuthMechs PLAIN LOGIN

IMAPStore remote
Account outpost

MaildirStore local
Path {local}/
Inbox {local}/INBOX
SubFolders Verbatim

Channel sync
Far :remote:
Near :local:
Patterns INBOX Work
Create Both
Expunge Both
Sync All
SyncState *
""")
    os.chmod(rc, 0o600)
    return rc, local


LOCAL_MSG = (b"From: me@example.test\r\nTo: someone@outside.example\r\nSubject: written locally\r\n"
             b"Message-ID: <local-1@example.test>\r\nDate: Tue, 24 Nov 2026 11:00:00 +0000\r\n\r\nlocal body\r\n")


@pytest.mark.parametrize("mode", ["STARTTLS", "IMAPS"])
def test_mbsync_two_way(server, tmp_path, mode):
    need_tool("mbsync")
    send_many(server, [msg("server one"), msg("server two")])
    c = client(server)
    c.create_folder("Work")
    c.append("Work", msg("work item"), flags=[b"\\Flagged"])
    c.logout()
    rc, local = write_rc(tmp_path, server, mode)

    run_mbsync(rc)
    inbox = maildir_files(local / "INBOX")
    assert len(inbox) == 2, inbox
    assert {b"server one", b"server two"} == {
        [l for l in p.read_bytes().split(b"\n") if l.startswith(b"Subject: ")][0][9:] for p in inbox}
    # full messages, byte-exact apart from mbsync's CRLF -> LF for Maildir
    c = client(server)
    c.select_folder("INBOX")
    server_bodies = {v[b"BODY[]"].replace(b"\r\n", b"\n") for v in c.fetch("1:*", ["BODY.PEEK[]"]).values()}
    c.logout()
    # (mbsync inserts its own X-TUID header while it tracks a message)
    local_bodies = {b"".join(l for l in p.read_bytes().splitlines(True) if not l.startswith(b"X-TUID: "))
                    for p in inbox}
    assert local_bodies == server_bodies
    work = maildir_files(local / "Work")
    assert len(work) == 1 and work[0].name.split(":2,")[1].count("F") == 1  # \Flagged -> F

    # local -> server: a new file in the Maildir is APPENDed; a local flag change is stored
    (local / "INBOX" / "new" / "1700000000.local1.host").write_bytes(LOCAL_MSG.replace(b"\r\n", b"\n"))
    first = inbox[0]
    base = first.name.split(":2,")[0]
    first.rename(local / "INBOX" / "cur" / f"{base}:2,S")
    run_mbsync(rc)
    c = client(server)
    c.select_folder("INBOX")
    uids = c.search(["SUBJECT", "written locally"])
    assert len(uids) == 1
    uploaded = c.fetch(uids, ["BODY.PEEK[]"])[uids[0]][b"BODY[]"]
    assert b"".join(l for l in uploaded.splitlines(True) if not l.startswith(b"X-TUID: ")) == LOCAL_MSG
    assert len(c.search(["SEEN"])) == 1
    # server -> local: a flag and an expunge made on the server
    c.add_flags(c.search(["SUBJECT", "server two"]), [b"\\Answered"])
    c.select_folder("Work")
    c.add_flags([1], [b"\\Deleted"])
    c.expunge()
    c.logout()
    run_mbsync(rc)
    assert maildir_files(local / "Work") == []
    two = [p for p in maildir_files(local / "INBOX") if b"Subject: server two\n" in p.read_bytes()][0]
    assert "R" in two.name.split(":2,")[1]

    # a second run changes nothing on either side
    snapshot = [p.name for p in maildir_files(local / "INBOX")]
    c = client(server)
    status = c.folder_status("INBOX", [b"MESSAGES", b"HIGHESTMODSEQ", b"UIDNEXT"])
    c.logout()
    out = run_mbsync(rc)
    assert [p.name for p in maildir_files(local / "INBOX")] == snapshot
    c = client(server)
    assert c.folder_status("INBOX", [b"MESSAGES", b"HIGHESTMODSEQ", b"UIDNEXT"]) == status
    c.logout()
    assert "error" not in out.lower(), out
