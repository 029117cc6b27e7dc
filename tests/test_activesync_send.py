"""ActiveSync SendMail, SmartReply and SmartForward against a running
server: pyactivesync (EAS 16.1) sends, imapclient reads what arrived and
what was filed in Sent, over the one mail flow every sender uses."""

import email
import email.policy
import time
import uuid
from email.message import EmailMessage

import pytest
from pyactivesync import _codepages
from pyactivesync._wbxml import WBXMLReader, WBXMLWriter, find, find_all, text_of, wtag
from pyactivesync.exceptions import StatusError

from conftest import PASSWORD, Server
from imap_helpers import client as imap_client, smtp_send
from test_activesync import USER, client

# MS-ASWBXML tags pyactivesync's tables lack: AirSyncBase's 16.0 attachment
# edits (page 17) and Email2 (page 22).
for _tag, _tok in {"Add": 0x1C, "Delete": 0x1D, "ClientId": 0x1E, "Content": 0x1F}.items():
    _codepages.CODEPAGES["AirSyncBase"].setdefault(_tag, _tok)
    _codepages.REVERSE[17][_tok] = _tag
if "Email2" not in _codepages.PAGE_INDEX:
    _codepages.CODEPAGES["Email2"] = {"IsDraft": 0x15, "Bcc": 0x16, "Send": 0x17}
    _codepages.PAGE_INDEX["Email2"] = 22
    _codepages.PAGE_ORDER[22] = "Email2"
    _codepages.REVERSE[22] = {0x15: "IsDraft", 0x16: "Bcc", 0x17: "Send"}

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


def sync_raw(c, collection, key, commands=None):
    children = [wtag("AirSync", "SyncKey", text=key), wtag("AirSync", "CollectionId", text=collection)]
    if commands:
        children.append(wtag("AirSync", "Commands", children=commands))
    w = WBXMLWriter()
    w.tag("AirSync", "Sync", children=[wtag("AirSync", "Collections", children=[
        wtag("AirSync", "Collection", children=children)])])
    resp = c._post("Sync", w.render())
    return WBXMLReader(resp).parse() if resp else []


def test_drafts_are_written_changed_and_sent(eas):
    with client(eas) as c:
        c.provision()
        drafts = {f.name: f for f in c.list_folders()}["Drafts"].id
        key = c.sync_folder(drafts, "0").sync_key
        # pyactivesync's form: the whole message as MIME (Body Type 4).
        made = c.create_email_draft(drafts, key, message(subject="MIME draft", body="As MIME.\n"))
        assert made.status == "1" and made.server_id.startswith(f"{drafts}:")
        # The fields form (MS-ASEMAIL 16.0): To, Subject, Body, an attachment.
        add = wtag("AirSync", "Add", children=[
            wtag("AirSync", "ClientId", text="d-2"),
            wtag("AirSync", "ApplicationData", children=[
                wtag("Email", "To", text=OTHER),
                wtag("Email", "Subject", text="Field draft"),
                wtag("AirSyncBase", "Body", children=[
                    wtag("AirSyncBase", "Type", text="1"), wtag("AirSyncBase", "Data", text="By fields.")]),
                wtag("AirSyncBase", "Attachments", children=[wtag("AirSyncBase", "Add", children=[
                    wtag("AirSyncBase", "ClientId", text="att-1"),
                    wtag("AirSyncBase", "Content", opaque=b"notes inside"),
                    wtag("AirSyncBase", "DisplayName", text="notes.txt"),
                    wtag("AirSyncBase", "ContentType", text="text/plain")])]),
            ])])
        nodes = sync_raw(c, drafts, made.sync_key, [add])
        [(status, sid)] = [(text_of(find(ch, "AirSync.Status")), text_of(find(ch, "AirSync.ServerId")))
                           for _, _, ch in find_all(nodes, "AirSync.Add")]
        assert status == "1", nodes
        key = text_of(find(nodes, "AirSync.SyncKey"))
        stored = {m["Subject"]: (flags, m) for _, flags, m in mailbox(eas, USER, "Drafts", at_least=2)}
        assert set(stored) == {"MIME draft", "Field draft"}
        flags, m = stored["Field draft"]
        assert b"\\Draft" in flags and m["To"] == OTHER
        [att] = list(m.iter_attachments())
        assert att.get_filename() == "notes.txt" and att.get_content() == "notes inside"
        # A Change of the subject: the new version replaces the old, the
        # attachment stays.
        change = wtag("AirSync", "Change", children=[wtag("AirSync", "ServerId", text=sid), wtag(
            "AirSync", "ApplicationData", children=[wtag("Email", "Subject", text="Field draft v2")])])
        nodes = sync_raw(c, drafts, key, [change])
        # The device learns of the new ServerId in the same answer: Delete
        # of the old, Add of the new.
        deleted = [text_of(find(ch, "AirSync.ServerId")) for _, _, ch in find_all(nodes, "AirSync.Delete")]
        added = [(text_of(find(ch, "AirSync.ServerId")), text_of(find(ch, "Email.Subject")))
                 for _, _, ch in find_all(nodes, "AirSync.Add")]
        assert deleted == [sid] and [s for _, s in added] == ["Field draft v2"], nodes
        assert not [ch for _, _, ch in find_all(nodes, "AirSync.Change")], nodes
        key = text_of(find(nodes, "AirSync.SyncKey"))
        stored = {m["Subject"]: m for _, _, m in mailbox(eas, USER, "Drafts")}
        assert set(stored) == {"MIME draft", "Field draft v2"}
        assert [a.get_filename() for a in stored["Field draft v2"].iter_attachments()] == ["notes.txt"]
        new_sid = added[0][0]
        key = text_of(find(nodes, "AirSync.SyncKey"))
        # Send: delivered, filed in Sent, gone from Drafts.
        send = wtag("AirSync", "Change", children=[wtag("AirSync", "ServerId", text=new_sid), wtag(
            "AirSync", "ApplicationData", children=[wtag("Email2", "Send")])])
        nodes = sync_raw(c, drafts, key, [send])
        assert not [ch for _, _, ch in find_all(nodes, "AirSync.Change")], nodes
        key = text_of(find(nodes, "AirSync.SyncKey"))
        [(_, _, got)] = mailbox(eas, OTHER)
        assert got["Subject"] == "Field draft v2" and [a.get_filename() for a in got.iter_attachments()] == ["notes.txt"]
        assert [m["Subject"] for _, _, m in mailbox(eas, USER, "Sent")] == ["Field draft v2"]
        assert [m["Subject"] for _, _, m in mailbox(eas, USER, "Drafts")] == ["MIME draft"]
        # A To: that is no address: status 6, nothing filed.
        bad = wtag("AirSync", "Add", children=[wtag("AirSync", "ClientId", text="d-3"), wtag(
            "AirSync", "ApplicationData", children=[wtag("Email", "To", text="not an address"),
                                                    wtag("Email", "Subject", text="bad")])])
        nodes = sync_raw(c, drafts, key, [bad])
        assert [text_of(find(ch, "AirSync.Status")) for _, _, ch in find_all(nodes, "AirSync.Add")] == ["6"]
        # Outside Drafts, Add of mail is still refused.
        inbox = {f.name: f for f in c.list_folders()}["INBOX"].id
        ikey = c.sync_folder(inbox, "0").sync_key
        nodes = sync_raw(c, inbox, ikey, [wtag("AirSync", "Add", children=[
            wtag("AirSync", "ClientId", text="x"), wtag("AirSync", "ApplicationData", children=[
                wtag("Email", "Subject", text="no")])])])
        assert [text_of(find(ch, "AirSync.Status")) for _, _, ch in find_all(nodes, "AirSync.Add")] == ["6"]
