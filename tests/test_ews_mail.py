"""Messages over EWS (crates/ews/src/ops/mail.rs) with exchangelib against a
running server, checked over IMAP (imapclient) where the same mailbox
shows: send to self through the one submit and find it in the Inbox,
MimeContent equal to IMAP's BODY[], is_read / flag / categories seen as
\\Seen / \\Flagged / keywords, move, copy, Deleted Items and hard delete,
drafts saved, changed and sent, attachments, paging and sorting over 250
messages, a stale ChangeKey, and another user's message ids refused.

Fixtures and helpers: tests/ews_helpers.py."""

import base64
import smtplib
import struct
import time
import xml.etree.ElementTree as ET

import pytest
import urllib3

from conftest import PASSWORD, make_message
from ews_helpers import M, T, account, no_verify, post, resolve_locally, soap, web  # noqa: F401
from imap_helpers import client as imap_client

urllib3.disable_warnings()

ALICE = "alice@example.test"
BOB = "bob@example.test"


def imap(web, user=ALICE):
    return imap_client(web, tls="imaps", user=user)


def wait_for(fn, timeout=15.0):
    deadline = time.time() + timeout
    while True:
        v = fn()
        if v or time.time() > deadline:
            return v
        time.sleep(0.2)


def imap_by_subject(web, subject, folder="INBOX", user=ALICE):
    """{uid: (flags, BODY[])} of the folder's messages with that subject."""
    with imap(web, user) as c:
        c.select_folder(folder)
        uids = c.search(["SUBJECT", subject])
        if not uids:
            return {}
        return {u: (d[b"FLAGS"], d[b"BODY[]"]) for u, d in c.fetch(uids, ["FLAGS", "BODY.PEEK[]"]).items()}


def deliver(web, subject, to=ALICE, body="hello\r\n", extra=""):
    web.deliver(make_message(subject=subject, to=to, body=body, extra_headers=extra), to)


def one(folder, **kw):
    found = wait_for(lambda: list(folder.filter(**kw)))
    assert len(found) == 1, found
    return found[0]


def test_send_to_self_find_and_mime_equals_imap(web, resolve_locally, no_verify):
    from exchangelib import HTMLBody, Mailbox, Message
    a = account(web)
    Message(account=a, subject="Hello over EWS", body=HTMLBody("<p>Hi <b>me</b></p>"),
            to_recipients=[Mailbox(email_address=ALICE)]).send_and_save()
    got = one(a.inbox, subject="Hello over EWS")
    assert got.author.email_address == ALICE
    assert [r.email_address for r in got.to_recipients] == [ALICE]
    assert got.is_read is False and got.is_draft is False
    assert isinstance(got.body, HTMLBody) and "<b>me</b>" in got.body
    assert got.message_id.startswith("<") and got.size > 0
    assert got.datetime_received is not None and got.datetime_sent is not None
    # The newest first by default and with order_by.
    newest = list(a.inbox.all().order_by("-datetime_received")[:10])
    assert newest[0].subject == "Hello over EWS"
    # The copy in Sent Items, read.
    sent = one(a.sent, subject="Hello over EWS")
    assert sent.is_read is True
    # MimeContent is the stored message, as IMAP gives it.
    [(flags, raw)] = imap_by_subject(web, "Hello over EWS").values()
    assert got.mime_content == raw
    assert b"\\Seen" not in flags
    # IdOnly FindItem answers ids only; only() asks for some fields.
    [(subject, read)] = a.inbox.filter(subject="Hello over EWS").values_list("subject", "is_read")
    assert subject == "Hello over EWS" and read is False


def test_is_read_flag_and_categories_are_imap_flags(web, resolve_locally, no_verify):
    from exchangelib import Message
    from exchangelib.extended_properties import Flag
    deliver(web, "Flags please")
    a = account(web)
    item = one(a.inbox, subject="Flags please")
    item.is_read = True
    item.save(update_fields=["is_read"])
    [(flags, _)] = imap_by_subject(web, "Flags please").values()
    assert b"\\Seen" in flags
    item.categories = ["Work", "Later"]
    item.save(update_fields=["categories"])
    [(flags, _)] = imap_by_subject(web, "Flags please").values()
    assert b"Work" in flags and b"Later" in flags
    Message.register("flag", Flag)
    try:
        fresh = a.inbox.get(subject="Flags please")
        assert fresh.flag is None
        fresh.flag = 2
        fresh.save(update_fields=["flag"])
        [(flags, _)] = imap_by_subject(web, "Flags please").values()
        assert b"\\Flagged" in flags
        assert a.inbox.get(subject="Flags please").flag == 2
    finally:
        Message.deregister("flag")
    # Changed over IMAP, seen over EWS.
    with imap(web) as c:
        c.select_folder("INBOX")
        uids = c.search(["SUBJECT", "Flags please"])
        c.remove_flags(uids, [b"\\Seen"])
    again = a.inbox.get(subject="Flags please")
    assert again.is_read is False
    assert sorted(again.categories) == ["Later", "Work"]
    assert again.id == item.id and again.changekey != item.changekey


def test_stale_changekey_is_a_conflict(web, resolve_locally, no_verify):
    from exchangelib.errors import ErrorIrresolvableConflict
    deliver(web, "Conflict")
    a = account(web)
    first = one(a.inbox, subject="Conflict")
    second = a.inbox.get(subject="Conflict")
    first.is_read = True
    first.save(update_fields=["is_read"])
    second.is_read = False
    with pytest.raises(ErrorIrresolvableConflict):
        second.save(update_fields=["is_read"])
    [(flags, _)] = imap_by_subject(web, "Conflict").values()
    assert b"\\Seen" in flags
    # AlwaysOverwrite ignores the ChangeKey.
    from exchangelib.items import ALWAYS_OVERWRITE
    second.save(update_fields=["is_read"], conflict_resolution=ALWAYS_OVERWRITE)
    [(flags, _)] = imap_by_subject(web, "Conflict").values()
    assert b"\\Seen" not in flags


def test_move_copy_trash_and_hard_delete(web, resolve_locally, no_verify):
    with imap(web) as c:
        c.create_folder("Projects")
    for s in ["Move me", "Trash me", "Gone"]:
        deliver(web, s)
    a = account(web)
    projects = a.root.tois / "Projects"
    item = one(a.inbox, subject="Move me")
    old_id = item.id
    item.move(projects)
    assert item.id != old_id
    assert imap_by_subject(web, "Move me") == {}
    assert len(imap_by_subject(web, "Move me", "Projects")) == 1
    assert projects.get(subject="Move me").id == item.id
    item.copy(a.inbox)
    assert len(imap_by_subject(web, "Move me")) == 1
    assert len(imap_by_subject(web, "Move me", "Projects")) == 1
    trash = one(a.inbox, subject="Trash me")
    trash.move_to_trash()
    assert imap_by_subject(web, "Trash me") == {}
    assert len(imap_by_subject(web, "Trash me", "Trash")) == 1
    assert a.trash.get(subject="Trash me").subject == "Trash me"
    # Deleting from Deleted Items removes it.
    a.trash.get(subject="Trash me").move_to_trash()
    assert imap_by_subject(web, "Trash me", "Trash") == {}
    gone = one(a.inbox, subject="Gone")
    gone.delete()
    assert imap_by_subject(web, "Gone") == {}
    assert imap_by_subject(web, "Gone", "Trash") == {}
    assert a.inbox.filter(subject="Gone").count() == 0


def test_draft_saved_changed_and_sent(web, resolve_locally, no_verify):
    from exchangelib import Mailbox, Message
    a = account(web)
    m = Message(account=a, folder=a.drafts, subject="Draft v1", body="first text",
                to_recipients=[Mailbox(email_address=BOB, name="Bob B")])
    m.save()
    [(flags, raw)] = imap_by_subject(web, "Draft v1", "Drafts").values()
    assert b"\\Draft" in flags and b"first text" in raw and b"Alice A" in raw
    saved = a.drafts.get(subject="Draft v1")
    assert saved.is_draft is True and saved.to_recipients[0].email_address == BOB
    # A draft's content changed: filed anew (IMAP never changes a message
    # under its UID) under the same ItemId, as Exchange keeps it.
    old_id = saved.id
    saved.subject = "Draft v2"
    saved.save(update_fields=["subject"])
    assert saved.id == old_id
    assert imap_by_subject(web, "Draft v1", "Drafts") == {}
    [(flags, raw)] = imap_by_subject(web, "Draft v2", "Drafts").values()
    assert b"first text" in raw and BOB.encode() in raw and b"\\Draft" in flags
    again = a.drafts.get(subject="Draft v2")
    assert again.id == old_id and again.changekey == saved.changekey
    saved.body = "second text"
    saved.save(update_fields=["body"])
    assert saved.id == old_id
    [(_, raw)] = imap_by_subject(web, "Draft v2", "Drafts").values()
    assert b"second text" in raw
    assert a.drafts.get(subject="Draft v2").body.strip() == "second text"
    saved.send()
    assert wait_for(lambda: imap_by_subject(web, "Draft v2", user=BOB))
    assert imap_by_subject(web, "Draft v2", "Drafts") == {}
    assert len(imap_by_subject(web, "Draft v2", "Sent")) == 1
    # SendOnly: delivered, no copy.
    Message(account=a, subject="No copy", body="x", to_recipients=[Mailbox(email_address=BOB)]).send(save_copy=False)
    assert wait_for(lambda: imap_by_subject(web, "No copy", user=BOB))
    assert imap_by_subject(web, "No copy", "Sent") == {}


def test_send_as_someone_else_is_refused(web, resolve_locally, no_verify):
    from exchangelib import Mailbox, Message
    from exchangelib.errors import ErrorSendAsDenied
    a = account(web)
    with pytest.raises(ErrorSendAsDenied):
        Message(account=a, subject="Forged", body="x", author=Mailbox(email_address=BOB),
                to_recipients=[Mailbox(email_address=ALICE)]).send()
    time.sleep(0.5)
    assert imap_by_subject(web, "Forged") == {}


def test_attachments_headers_and_text_body(web, resolve_locally, no_verify):
    from exchangelib import FileAttachment
    body = ("MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
            "--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee the file.\r\n"
            "--b\r\nContent-Type: application/octet-stream; name=\"data.bin\"\r\n"
            "Content-Disposition: attachment; filename=\"data.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            + base64.b64encode(bytes(range(256))).decode() + "\r\n--b--\r\n")
    web.deliver(make_message(subject="With file", to=ALICE, body="", extra_headers="Importance: high\r\n")
                .replace(b"\r\n\r\n", b"\r\n" + body.encode(), 1), ALICE)
    a = account(web)
    item = one(a.inbox, subject="With file")
    assert item.has_attachments is True
    assert item.importance == "High"
    assert item.text_body.strip() == "See the file."
    [att] = item.attachments
    assert isinstance(att, FileAttachment) and att.name == "data.bin" and att.size == 256
    assert att.content == bytes(range(256))
    assert any(h.name == "Subject" and h.value == "With file" for h in item.headers)


def test_paging_sorting_and_restrictions(web, resolve_locally, no_verify):
    with smtplib.SMTP("127.0.0.1", web.port("smtp"), timeout=60) as s:
        for i in range(250):
            s.sendmail("sender@outside.example", [ALICE], make_message(subject=f"Page {i:03d}", to=ALICE))
    a = account(web)
    assert wait_for(lambda: a.inbox.all().count() == 250, timeout=60)
    a.inbox.refresh()
    assert a.inbox.total_count == 250
    # Three FindItem pages of 100, sorted by subject.
    subjects = list(a.inbox.all().order_by("subject").values_list("subject", flat=True))
    assert subjects == [f"Page {i:03d}" for i in range(250)]
    desc = list(a.inbox.all().order_by("-subject").values_list("subject", flat=True)[:5])
    assert desc == [f"Page {i:03d}" for i in range(249, 244, -1)]
    assert a.inbox.filter(subject__startswith="Page 1").count() == 100
    assert a.inbox.filter(subject__contains="ge 24").count() == 10
    assert a.inbox.filter(is_read=False).count() == 250
    assert a.inbox.filter(author="sender@outside.example").count() == 250
    # Raw paging from an offset: the last page says so.
    r = post(web, soap(
        '<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape>'
        '<m:IndexedPageItemView MaxEntriesReturned="100" Offset="240" BasePoint="Beginning"/>'
        '<m:ParentFolderIds><t:DistinguishedFolderId Id="inbox"/></m:ParentFolderIds></m:FindItem>'))
    root = ET.fromstring(r.content).find(f".//{M}RootFolder")
    assert root.get("IndexedPagingOffset") == "250" and root.get("TotalItemsInView") == "250"
    assert root.get("IncludesLastItemInRange") == "true"
    assert len(root.find(f"{T}Items")) == 10
    # A restriction over a property this server does not search.
    r = post(web, soap(
        '<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape>'
        '<m:Restriction><t:IsEqualTo><t:FieldURI FieldURI="item:Culture"/><t:FieldURIOrConstant>'
        '<t:Constant Value="en-US"/></t:FieldURIOrConstant></t:IsEqualTo></m:Restriction>'
        '<m:ParentFolderIds><t:DistinguishedFolderId Id="inbox"/></m:ParentFolderIds></m:FindItem>'))
    assert ET.fromstring(r.content).find(f".//{M}ResponseCode").text == "ErrorUnsupportedQueryFilter"


def test_mark_as_junk(web, resolve_locally, no_verify):
    deliver(web, "Spammy")
    a = account(web)
    item = one(a.inbox, subject="Spammy")
    item.mark_as_junk(is_junk=True, move_item=True)
    [(flags, _)] = imap_by_subject(web, "Spammy", "Junk").values()
    assert b"$Junk" in flags
    assert a.junk.get(subject="Spammy").id == item.id
    item.mark_as_junk(is_junk=False, move_item=True)
    [(flags, _)] = imap_by_subject(web, "Spammy").values()
    assert b"$NotJunk" in flags and b"$Junk" not in flags


def item_id_of(web, user, subject):
    r = post(web, soap(
        '<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape>'
        '<m:Restriction><t:IsEqualTo><t:FieldURI FieldURI="item:Subject"/><t:FieldURIOrConstant>'
        f'<t:Constant Value="{subject}"/></t:FieldURIOrConstant></t:IsEqualTo></m:Restriction>'
        '<m:ParentFolderIds><t:DistinguishedFolderId Id="inbox"/></m:ParentFolderIds></m:FindItem>'),
        auth=(user, PASSWORD))
    return ET.fromstring(r.content).find(f".//{T}ItemId").get("Id")


def test_another_users_message_is_refused(web):
    deliver(web, "Bob's secret", to=BOB, body="the secret text\r\n")
    deliver(web, "Alice's own")
    assert wait_for(lambda: imap_by_subject(web, "Bob's secret", user=BOB))
    bobs = item_id_of(web, BOB, "Bob's secret")
    shape = '<m:ItemShape><t:BaseShape>AllProperties</t:BaseShape><t:IncludeMimeContent>true</t:IncludeMimeContent></m:ItemShape>'
    for body in [
        f'<m:GetItem>{shape}<m:ItemIds><t:ItemId Id="{bobs}"/></m:ItemIds></m:GetItem>',
        f'<m:DeleteItem DeleteType="HardDelete"><m:ItemIds><t:ItemId Id="{bobs}"/></m:ItemIds></m:DeleteItem>',
        '<m:MoveItem><m:ToFolderId><t:DistinguishedFolderId Id="inbox"/></m:ToFolderId>'
        f'<m:ItemIds><t:ItemId Id="{bobs}"/></m:ItemIds></m:MoveItem>',
        '<m:UpdateItem ConflictResolution="AlwaysOverwrite" MessageDisposition="SaveOnly"><m:ItemChanges>'
        f'<t:ItemChange><t:ItemId Id="{bobs}"/><t:Updates><t:SetItemField><t:FieldURI FieldURI="message:IsRead"/>'
        '<t:Message><t:IsRead>true</t:IsRead></t:Message></t:SetItemField></t:Updates></t:ItemChange>'
        '</m:ItemChanges></m:UpdateItem>',
        f'<m:SendItem SaveItemToFolder="false"><m:ItemIds><t:ItemId Id="{bobs}"/></m:ItemIds></m:SendItem>',
    ]:
        r = post(web, soap(body))
        assert r.status_code == 200
        codes = [c.text for c in ET.fromstring(r.content).iter(f"{M}ResponseCode")]
        assert codes == ["ErrorAccessDenied"], (body, r.content)
        assert b"secret" not in r.content
    # Bob's numbers under Alice's owner: not found in her mailbox.
    raw = base64.b64decode(bobs)
    alice_own = base64.b64decode(item_id_of(web, ALICE, "Alice's own"))
    forged = base64.b64encode(raw[:2] + alice_own[2:10] + raw[10:]).decode()
    assert struct.unpack(">q", raw[2:10]) != struct.unpack(">q", alice_own[2:10])
    r = post(web, soap(f'<m:GetItem>{shape}<m:ItemIds><t:ItemId Id="{forged}"/></m:ItemIds></m:GetItem>'))
    assert [c.text for c in ET.fromstring(r.content).iter(f"{M}ResponseCode")] == ["ErrorItemNotFound"]
    assert b"secret" not in r.content
    # Bob's message is untouched.
    [(flags, _)] = imap_by_subject(web, "Bob's secret", user=BOB).values()
    assert b"\\Seen" not in flags


def test_full_save_of_a_received_message(web, resolve_locally, no_verify):
    """exchangelib's save() without update_fields sets every field it
    may: what the message already has is accepted, the flags change."""
    deliver(web, "Save all", extra="Importance: high\r\n")
    a = account(web)
    item = one(a.inbox, subject="Save all")
    item.is_read = True
    item.categories = ["Work"]
    item.save()
    [(flags, _)] = imap_by_subject(web, "Save all").values()
    assert b"\\Seen" in flags and b"Work" in flags
    # A change the server cannot keep on a received message is refused.
    from exchangelib.errors import ErrorInvalidPropertyUpdateSentMessage
    item = a.inbox.get(subject="Save all")
    item.subject = "Renamed"
    with pytest.raises(ErrorInvalidPropertyUpdateSentMessage):
        item.save(update_fields=["subject"])
    assert len(imap_by_subject(web, "Save all")) == 1
