"""DavMail (EWS mode) serving IMAP from Outpost's EWS messages: select,
fetch flags and bodies, set flags; the DavMail fixture is
tests/test_ews_davmail.py's."""

import imaplib

from conftest import PASSWORD, make_message
from ews_helpers import web  # noqa: F401
from test_ews_davmail import davmail  # noqa: F401
from test_ews_mail import imap_by_subject

ALICE = "alice@example.test"


def test_imap_through_davmail_reads_and_flags_messages(web, davmail):
    for i in range(3):
        web.deliver(make_message(subject=f"Via DavMail {i}", to=ALICE, body=f"body {i}\r\n"), ALICE)
    c = imaplib.IMAP4("127.0.0.1", davmail["imap"])
    c.login(ALICE, PASSWORD)
    typ, data = c.select("INBOX")
    assert typ == "OK" and int(data[0]) == 3, data
    typ, data = c.fetch("1:*", "(UID FLAGS RFC822.SIZE)")
    assert typ == "OK" and len(data) == 3, data
    typ, data = c.fetch("1", "(BODY.PEEK[])")
    assert typ == "OK"
    body = data[0][1]
    [(_, raw)] = imap_by_subject(web, "Via DavMail 0").values()
    assert body == raw, (body, raw)
    typ, _ = c.store("1", "+FLAGS", "(\\Seen \\Flagged)")
    assert typ == "OK"
    [(flags, _)] = imap_by_subject(web, "Via DavMail 0").values()
    assert b"\\Seen" in flags and b"\\Flagged" in flags
    c.logout()


def test_imap_through_davmail_copy_append_expunge(web, davmail):
    for i in range(2):
        web.deliver(make_message(subject=f"Keep {i}", to=ALICE), ALICE)
    c = imaplib.IMAP4("127.0.0.1", davmail["imap"])
    c.login(ALICE, PASSWORD)
    c.select("INBOX")
    typ, data = c.copy("1", "Trash")
    assert typ == "OK", data
    assert len(imap_by_subject(web, "Keep 0", "Trash")) == 1
    typ, data = c.append("Drafts", "(\\Seen)", None, make_message(subject="Appended", to=ALICE))
    assert typ == "OK", data
    assert len(imap_by_subject(web, "Appended", "Drafts")) == 1
    typ, data = c.store("2", "+FLAGS", "(\\Deleted)")
    assert typ == "OK", data
    typ, data = c.expunge()
    assert typ == "OK", data
    assert imap_by_subject(web, "Keep 1") == {}
    c.logout()
