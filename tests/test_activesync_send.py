"""ActiveSync SendMail, SmartReply and SmartForward against a running
server: pyactivesync (EAS 16.1) sends, imapclient reads what arrived and
what was filed in Sent, over the one mail flow every sender uses."""

import email
import email.policy
import time
import uuid
from email.message import EmailMessage

import pytest
from pyactivesync._wbxml import WBXMLReader, WBXMLWriter, find, text_of, wtag
from pyactivesync.exceptions import StatusError

from conftest import PASSWORD, Server
from imap_helpers import client as imap_client, smtp_send
from test_activesync import USER, client

OTHER = "other@example.test"
THIRD = "third@example.test"


@pytest.fixture
def eas(tmp_path):
    s = Server(tmp_path, listeners=["https", "smtp", "imap"])
    try:
        s.start()
        s.add_user(USER, name="Test User")
        s.add_user(OTHER, name="Other User")
        s.add_user(THIRD, name="Third User")
    except BaseException:
        s.close()
        raise
    yield s
    s.close()


def message(frm=USER, to=OTHER, subject="hello", body="Hello there.\n", **headers):
    m = EmailMessage()
    m["From"] = frm
    if to:
        m["To"] = to
    m["Subject"] = subject
    for k, v in headers.items():
        m[k.replace("_", "-")] = v
    m.set_content(body)
    return m


def mailbox(server, user, folder="INBOX", wait=10.0, at_least=1):
    """[(uid, flags, parsed message)] of a user's folder, waiting until
    there are at least `at_least` messages."""
    deadline = time.time() + wait
    while True:
        with imap_client(server, user=user) as imap:
            imap.select_folder(folder)
            uids = imap.search("ALL")
            got = []
            if uids:
                for uid, d in imap.fetch(uids, ["FLAGS", "BODY.PEEK[]"]).items():
                    got.append((uid, d[b"FLAGS"], email.message_from_bytes(d[b"BODY[]"], policy=email.policy.default)))
        if len(got) >= at_least or time.time() > deadline:
            return sorted(got, key=lambda g: g[0])
        time.sleep(0.2)


def compose(c, cmd, mime, source=None, client_id=None, save=True, replace=False):
    """A raw ComposeMail request; the Status of the answer, or None for the
    empty success answer."""
    children = [wtag("ComposeMail", "ClientId", text=client_id or uuid.uuid4().hex)]
    if save:
        children.append(wtag("ComposeMail", "SaveInSentItems"))
    if replace:
        children.append(wtag("ComposeMail", "ReplaceMime"))
    if source:
        folder, item = source
        children.append(wtag("ComposeMail", "Source", children=[
            wtag("ComposeMail", "FolderId", text=folder), wtag("ComposeMail", "ItemId", text=item)]))
    children.append(wtag("ComposeMail", "MIME", opaque=mime))
    w = WBXMLWriter()
    w.tag("ComposeMail", cmd, children=children)
    resp = c._post(cmd, w.render())
    if not resp:
        return None
    return text_of(find(WBXMLReader(resp).parse(), "ComposeMail.Status"))


def inbox_item(c, subject):
    """The ServerId of the INBOX message with this subject, after a full Sync."""
    inbox = {f.name: f for f in c.list_folders()}["INBOX"].id
    r = c.sync_folder(inbox, "0")
    r = c.sync_folder(inbox, r.sync_key)
    for i in r.added:
        if i.fields.get("Email.Subject") == subject:
            return inbox, i.server_id
    raise AssertionError(f"{subject!r} not in {[i.fields.get('Email.Subject') for i in r.added]}")


def test_send_mail_delivers_hides_bcc_and_files_sent(eas):
    with client(eas) as c:
        c.provision()
        c.send_mail(message(subject="from the phone", Cc=OTHER, Bcc=THIRD))
    [(_, _, got)] = mailbox(eas, OTHER)
    assert got["Subject"] == "from the phone"
    assert got["Bcc"] is None and THIRD not in got.as_string()
    assert got["Message-ID"] and got["Date"]
    [(_, _, bcc)] = mailbox(eas, THIRD)
    assert bcc["Subject"] == "from the phone" and bcc["Bcc"] is None
    [(_, flags, sent)] = mailbox(eas, USER, "Sent")
    assert sent["Subject"] == "from the phone" and b"\\Seen" in flags
    # Without SaveInSentItems nothing more is filed.
    with client(eas) as c:
        c.provision()
        c.send_mail(message(subject="no copy"), save_in_sent_items=False)
    assert len(mailbox(eas, OTHER, at_least=2)) == 2
    assert len(mailbox(eas, USER, "Sent", wait=0.5)) == 1


def test_resent_client_id_is_not_sent_twice(eas):
    mime = message(subject="once").as_bytes().replace(b"\n", b"\r\n")
    with client(eas) as c:
        c.provision()
        assert compose(c, "SendMail", mime, client_id="same-id-1") is None
        assert compose(c, "SendMail", mime, client_id="same-id-1") == "118"
        assert compose(c, "SendMail", mime, client_id="same-id-2") is None
    assert len(mailbox(eas, OTHER, at_least=2)) == 2
    time.sleep(0.5)
    assert len(mailbox(eas, OTHER, wait=0)) == 2


def test_refusals_have_their_status(eas):
    with client(eas) as c:
        c.provision()
        # Another user's address as From: the one sender check says no.
        with pytest.raises(StatusError) as e:
            c.send_mail(message(frm=OTHER, to=THIRD))
        assert e.value.code == "112"
        # Addressed to nobody.
        with pytest.raises(StatusError) as e:
            c.send_mail(message(to=None))
        assert e.value.code == "119"
        # A hosted domain's address nobody has.
        with pytest.raises(StatusError) as e:
            c.send_mail(message(to="nobody@example.test"))
        assert e.value.code == "116"
        # Not WBXML and not MIME either: an empty body.
        assert compose(c, "SendMail", b"") in ("101", "107")
        # A reply to an item that is not there, or not the user's.
        mime = message(subject="Re: x").as_bytes()
        assert compose(c, "SmartReply", mime, source=("1", "1:999")) == "150"
        assert compose(c, "SmartReply", mime, source=("1", "garbage")) == "150"
    with client(eas, device_id="dev-other", user=OTHER) as o:
        o.provision()
        smtp_send(eas, message(frm="x@outside.example", to=OTHER, subject="private").as_bytes(), rcpts=[OTHER])
        folder, item = inbox_item(o, "private")
    with client(eas) as c:
        c.provision()
        assert compose(c, "SmartForward", message(to=THIRD).as_bytes(), source=(folder, item)) == "150"
    assert mailbox(eas, THIRD, wait=0.5) == []
    assert len(mailbox(eas, OTHER, wait=0)) == 1


def test_smart_reply_quotes_threads_and_marks_answered(eas):
    original = message(frm=OTHER, to=USER, subject="Lunch", body="Shall we meet at noon?\n",
                       Message_ID="<lunch-1@example.test>")
    smtp_send(eas, original.as_bytes(), rcpts=[USER])
    with client(eas) as c:
        c.provision()
        folder, item = inbox_item(c, "Lunch")
        reply = message(to=OTHER, subject="Re: Lunch", body="Noon is fine.\n").as_bytes()
        assert compose(c, "SmartReply", reply, source=(folder, item)) is None
    got = [m for _, _, m in mailbox(eas, OTHER) if m["Subject"] == "Re: Lunch"]
    assert len(got) == 1
    text = got[0].get_body(("plain",)).get_content()
    assert text.startswith("Noon is fine.")
    assert "> Shall we meet at noon?" in text
    assert got[0]["In-Reply-To"] == "<lunch-1@example.test>"
    [(_, flags, _)] = mailbox(eas, USER)
    assert b"\\Answered" in flags
    [(_, _, sent)] = mailbox(eas, USER, "Sent")
    assert "> Shall we meet at noon?" in sent.get_body(("plain",)).get_content()


def test_smart_forward_carries_attachments_and_replace_mime_does_not(eas):
    original = message(frm=OTHER, to=USER, subject="Report", body="The report is attached.\n")
    original.add_attachment(b"%PDF-1.4 report", maintype="application", subtype="pdf", filename="report.pdf")
    smtp_send(eas, original.as_bytes(), rcpts=[USER])
    with client(eas) as c:
        c.provision()
        folder, item = inbox_item(c, "Report")
        fwd = message(to=THIRD, subject="Fwd: Report", body="FYI.\n").as_bytes()
        assert compose(c, "SmartForward", fwd, source=(folder, item)) is None
        own = message(to=THIRD, subject="Fwd: Report (mine)", body="Only this.\n").as_bytes()
        assert compose(c, "SmartForward", own, source=(folder, item), replace=True) is None
    got = {m["Subject"]: m for _, _, m in mailbox(eas, THIRD, at_least=2)}
    f = got["Fwd: Report"]
    text = f.get_body(("plain",)).get_content()
    assert text.startswith("FYI.") and "Forwarded message" in text and "The report is attached." in text
    [att] = list(f.iter_attachments())
    assert att.get_filename() == "report.pdf" and att.get_content() == b"%PDF-1.4 report"
    mine = got["Fwd: Report (mine)"]
    assert "Forwarded message" not in mine.as_string() and not list(mine.iter_attachments())
    [(_, flags, _)] = mailbox(eas, USER)
    assert b"$Forwarded" in flags
