"""EWS (crates/ews) against a running server with exchangelib (pinned in
tests/requirements.txt): the account found through SOAP Autodiscover, the
version read from ConvertId, the folder walk, out-of-office shared with
Sieve vacation and ActiveSync, and the SOAP-level answers to bad input
(unknown operations and faults inside HTTP 200, XML bombs, other users'
ids) checked with raw requests.

Fixtures and helpers: tests/ews_helpers.py."""

import xml.etree.ElementTree as ET

import pytest

import requests
import urllib3

from conftest import PASSWORD
from ews_helpers import E, M, S, T, account, ews_url, no_verify, post, resolve_locally, soap, web  # noqa: F401

urllib3.disable_warnings()


def test_exchangelib_connects_and_reads_the_version(web, resolve_locally, no_verify):
    a = account(web)
    assert a.protocol.auth_type == "basic"
    assert a.version.api_version == "Exchange2016"
    assert a.version.build.major_version == 15
    assert a.root.name == "Root"
    assert a.inbox.name == "Inbox"


def test_folder_walk(web, resolve_locally, no_verify):
    from exchangelib.folders import Calendar, Contacts, Inbox, SentItems, Tasks
    a = account(web)
    walked = {f.name: f for f in a.root.walk()}
    assert "Top of Information Store" in walked
    classes = {type(f) for f in walked.values()}
    assert {Calendar, Contacts, Tasks} <= classes, classes
    assert isinstance(a.inbox, Inbox)
    assert isinstance(a.sent, SentItems)
    assert a.calendar.folder_class == "IPF.Appointment"
    assert a.contacts.folder_class == "IPF.Contact"
    tois = a.root.tois
    names = [f.name for f in tois.children]
    assert a.inbox.name in names and a.calendar.name in names
    assert a.inbox.parent.id == tois.id
    assert a.inbox.total_count == 0 and a.inbox.unread_count == 0
    # By id, in a new session (ids are stable).
    b = account(web)
    again = b.root.get_folder(a.inbox)
    assert again.id == a.inbox.id and again.name == a.inbox.name


def test_oof_is_the_one_out_of_office(web, resolve_locally, no_verify):
    """Set over EWS, seen over `outpost oof get` (the Sieve vacation) and
    answered at delivery; set over the CLI, read over EWS; disabled."""
    import datetime
    from exchangelib import OofSettings
    from exchangelib.ewsdatetime import UTC
    a = account(web)
    assert a.oof_settings.state == OofSettings.DISABLED
    a.oof_settings = OofSettings(state=OofSettings.ENABLED, external_audience="All",
                                 internal_reply="<html><body>Away until Monday</body></html>",
                                 external_reply="Out of office")
    got = a.oof_settings
    assert got.state == OofSettings.ENABLED
    assert got.internal_reply == "Away until Monday"
    assert got.external_reply == "Out of office"
    cli = web.cli("oof", "get", "alice@example.test").stdout
    assert "Away until Monday" in cli and "enabled" in cli.lower()
    start = datetime.datetime.now(tz=UTC) + datetime.timedelta(days=1)
    end = start + datetime.timedelta(days=7)
    a.oof_settings = OofSettings(state=OofSettings.SCHEDULED, start=start, end=end,
                                 internal_reply="Holiday", external_reply="Holiday")
    got = a.oof_settings
    assert got.state == OofSettings.SCHEDULED
    assert abs((got.start - start).total_seconds()) < 1 and abs((got.end - end).total_seconds()) < 1
    a.oof_settings = OofSettings(state=OofSettings.DISABLED)
    assert a.oof_settings.state == OofSettings.DISABLED
    assert "disabled" in web.cli("oof", "get", "alice@example.test").stdout.lower()


def test_unknown_operation_is_a_fault_inside_200(web):
    r = post(web, soap("<m:FrobnicateItem/>"))
    assert r.status_code == 200
    root = ET.fromstring(r.content)
    info = root.find(f"{S}Header/{T}ServerVersionInfo")
    assert info is not None and info.get("MajorVersion") == "15"
    fault = root.find(f"{S}Body/{S}Fault")
    assert fault.find(f"detail/{E}ResponseCode").text == "ErrorInvalidRequest"
    # Not SOAP at all, no body, a bomb: a fault, HTTP 200, the server fine.
    for data in ["not xml", soap("").replace("<s:Body></s:Body>", ""),
                 '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "x"><!ENTITY y "&x;&x;">]>' + soap("<m:GetFolder>&y;</m:GetFolder>"),
                 soap("<m:GetFolder/>", header='<t:RequestServerVersion Version="Exchange1999"/>')]:
        r = post(web, data)
        assert r.status_code == 200
        code = ET.fromstring(r.content).find(f"{S}Body/{S}Fault/detail/{E}ResponseCode").text
        assert code.startswith("Error"), code
    # Without credentials: 401 with Basic only.
    r = requests.post(ews_url(web), data=soap("<m:GetFolder/>"), verify=False, timeout=10)
    assert r.status_code == 401 and r.headers["WWW-Authenticate"].startswith("Basic")
    # The WSDL.
    r = requests.get(ews_url(web).replace("Exchange.asmx", "Services.wsdl"), verify=False, timeout=10,
                     auth=("alice@example.test", PASSWORD))
    assert r.status_code == 200 and b"ExchangeServices" in r.content
    ET.fromstring(r.content)


def folder_id_of(web, user, distinguished):
    r = post(web, soap(
        "<m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape>"
        f'<m:FolderIds><t:DistinguishedFolderId Id="{distinguished}"/></m:FolderIds></m:GetFolder>'),
        auth=(user, PASSWORD))
    el = ET.fromstring(r.content).find(f".//{T}FolderId")
    return el.get("Id")


def test_other_users_ids_are_refused(web):
    bobs_inbox = folder_id_of(web, "bob@example.test", "inbox")
    r = post(web, soap(
        "<m:GetFolder><m:FolderShape><t:BaseShape>AllProperties</t:BaseShape></m:FolderShape>"
        f'<m:FolderIds><t:FolderId Id="{bobs_inbox}"/></m:FolderIds></m:GetFolder>'))
    assert r.status_code == 200
    msg = ET.fromstring(r.content).find(f".//{M}GetFolderResponseMessage")
    assert msg.get("ResponseClass") == "Error"
    assert msg.find(f"{M}ResponseCode").text == "ErrorAccessDenied"
    assert b"Bob" not in r.content and b"DisplayName" not in r.content
    # Another user's mailbox by address.
    r = post(web, soap(
        "<m:GetFolder><m:FolderShape><t:BaseShape>AllProperties</t:BaseShape></m:FolderShape>"
        '<m:FolderIds><t:DistinguishedFolderId Id="inbox"><t:Mailbox><t:EmailAddress>bob@example.test'
        "</t:EmailAddress></t:Mailbox></t:DistinguishedFolderId></m:FolderIds></m:GetFolder>"))
    msg = ET.fromstring(r.content).find(f".//{M}GetFolderResponseMessage")
    assert msg.find(f"{M}ResponseCode").text == "ErrorAccessDenied"
    # Another user's out-of-office.
    r = post(web, soap(
        "<m:GetUserOofSettingsRequest><t:Mailbox><t:Address>bob@example.test</t:Address></t:Mailbox>"
        "</m:GetUserOofSettingsRequest>"))
    code = ET.fromstring(r.content).find(f"{S}Body/{S}Fault/detail/{E}ResponseCode").text
    assert code == "ErrorAccessDenied"


def test_folder_changes_and_hierarchy_sync(web, resolve_locally, no_verify):
    """CreateFolder, UpdateFolder, MoveFolder, DeleteFolder through
    exchangelib, seen over IMAP, and SyncFolderHierarchy reporting each
    change from the collection journal."""
    from exchangelib.folders import Folder
    from imapclient import IMAPClient
    a = account(web)
    root = a.root.tois
    # The initial sync names every folder.
    initial = list(root.sync_hierarchy())
    state = root.folder_sync_state
    assert state
    assert {k for k, _ in initial} == {"create"}
    assert {"Inbox", "Sent", "Trash", "Personal Calendar", "Tasks"} <= {f.name for _, f in initial}
    work = Folder(parent=root, name="Projects")
    work.save()
    sub = Folder(parent=work, name="Old")
    sub.save()
    sub.name = "Archive 2026"
    sub.save(update_fields=["name"])
    target = Folder(parent=root, name="Elsewhere")
    target.save()
    sub.move(to_folder=target)
    c = IMAPClient("127.0.0.1", port=web.port("imaps"), ssl=True, ssl_context=_no_verify_ctx())
    c.login("alice@example.test", PASSWORD)
    listed = {f[2] for f in c.list_folders()}
    assert {"Projects", "Elsewhere", "Elsewhere/Archive 2026"} <= listed, listed
    assert "Projects/Old" not in listed
    # What changed since the first sync.
    root.folder_sync_state = state
    changes = {(k, f.name) for k, f in root.sync_hierarchy()}
    # Created after the state: Create, whatever happened to them since.
    assert {("create", "Projects"), ("create", "Elsewhere"), ("create", "Archive 2026")} <= changes, changes
    state2 = root.folder_sync_state
    work_id = work.id
    work.delete()
    root.folder_sync_state = state2
    assert [(k, f.id) for k, f in root.sync_hierarchy()] == [("delete", work_id)]
    # Nothing since: nothing.
    assert list(root.sync_hierarchy()) == []
    # A state that is not ours: the error, for the client to start over.
    from exchangelib.errors import ErrorInvalidSyncStateData
    root.folder_sync_state = "AAAA"
    with pytest.raises(ErrorInvalidSyncStateData):
        list(root.sync_hierarchy())
    # The special folders stay.
    from exchangelib.errors import ErrorDeleteDistinguishedFolder
    with pytest.raises(ErrorDeleteDistinguishedFolder):
        a.inbox.delete()
    c.logout()


def _no_verify_ctx():
    import ssl
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def test_pull_and_streaming_notifications(web, resolve_locally, no_verify):
    """Subscribe (pull): GetEvents has a StatusEvent only, then after a
    delivery (by `outpost deliver`, another process: the journal is what
    is read) a NewMailEvent and a CreatedEvent for the new message, and
    after the message is deleted over IMAP a DeletedEvent; streaming: a
    delivery made while GetStreamingEvents is open arrives on it within a
    second; Unsubscribe ends it; another user's subscription id is not
    theirs."""
    import threading
    import time
    from exchangelib.properties import CreatedEvent, DeletedEvent, NewMailEvent, StatusEvent
    from imapclient import IMAPClient
    from conftest import make_message
    from imap_helpers import smtp_send
    a = account(web)
    sid, watermark = a.inbox.subscribe_to_pull()
    notes = list(a.inbox.get_events(sid, watermark))
    assert [type(e) for n in notes for e in n.events] == [StatusEvent]
    watermark = notes[-1].events[-1].watermark
    web.deliver(make_message(subject="pushed", to="alice@example.test"), "alice@example.test")
    notes = list(a.inbox.get_events(sid, watermark))
    events = [e for n in notes for e in n.events]
    kinds = {type(e) for e in events}
    assert {NewMailEvent, CreatedEvent} <= kinds, events
    new = next(e for e in events if isinstance(e, NewMailEvent))
    assert new.parent_folder_id.id == a.inbox.id
    watermark = events[-1].watermark
    # The same watermark again: the same events (nothing is consumed).
    again = [e for n in a.inbox.get_events(sid, notes[0].previous_watermark) for e in n.events]
    assert {type(e) for e in again} == kinds
    c = IMAPClient("127.0.0.1", port=web.port("imaps"), ssl=True, ssl_context=_no_verify_ctx())
    c.login("alice@example.test", PASSWORD)
    c.select_folder("INBOX")
    c.delete_messages(c.search(["SUBJECT", "pushed"]))
    c.expunge()
    events = [e for n in a.inbox.get_events(sid, watermark) for e in n.events]
    assert [type(e) for e in events] == [DeletedEvent], events
    a.inbox.unsubscribe(sid)
    from exchangelib.errors import ErrorSubscriptionNotFound
    with pytest.raises(ErrorSubscriptionNotFound):
        list(a.inbox.get_events(sid, watermark))
    # Bob cannot read alice's subscription.
    sid2, wm2 = a.inbox.subscribe_to_pull()
    b = account(web, "bob@example.test")
    with pytest.raises(ErrorSubscriptionNotFound):
        list(b.inbox.get_events(sid2, wm2))

    # Streaming.
    sid = a.inbox.subscribe_to_streaming()
    got = []
    started = threading.Event()

    def listen():
        for n in a.inbox.get_streaming_events(sid, connection_timeout=1):
            started.set()
            for e in n.events:
                got.append((time.monotonic(), e))
            if any(isinstance(e, NewMailEvent) for _, e in got):
                return

    t = threading.Thread(target=listen, daemon=True)
    t.start()
    time.sleep(1.0)
    sent = time.monotonic()
    # Over SMTP: the server's own change channel wakes the stream.
    smtp_send(web, make_message(subject="streamed", to="alice@example.test"), rcpts=["alice@example.test"])
    t.join(timeout=20)
    assert not t.is_alive()
    arrived = next(at for at, e in got if isinstance(e, NewMailEvent))
    assert arrived - sent < 5
    a.inbox.unsubscribe(sid)


def test_service_configuration(web):
    """What Outlook asks at start: MailTips on, the domains and the size
    limit; Unified Messaging off."""
    r = post(web, soap(
        "<m:GetServiceConfiguration><m:RequestedConfiguration>"
        "<m:ConfigurationName>MailTips</m:ConfigurationName>"
        "<m:ConfigurationName>UnifiedMessagingConfiguration</m:ConfigurationName>"
        "</m:RequestedConfiguration></m:GetServiceConfiguration>"))
    assert r.status_code == 200
    root = ET.fromstring(r.content)
    msg = root.find(f".//{M}ServiceConfigurationResponseMessageType")
    assert msg.get("ResponseClass") == "Success"
    tips = msg.find(f"{M}MailTipsConfiguration")
    assert tips.find(f"{T}MailTipsEnabled").text == "true"
    assert int(tips.find(f"{T}MaxMessageSize").text) > 1024
    assert [d.get("Name") for d in tips.find(f"{T}InternalDomains")] == ["example.test"]
    assert msg.find(f"{M}UnifiedMessagingConfiguration/{T}UmEnabled").text == "false"


def test_user_photo_is_not_found(web):
    """The directory keeps no photos: a colleague's and a stranger's are
    answered alike, ErrorItemNotFound, HTTP 200."""
    for who in ["bob@example.test", "nobody@example.test"]:
        r = post(web, soap(f"<m:GetUserPhoto><m:Email>{who}</m:Email><m:SizeRequested>HR96x96</m:SizeRequested>"
                           "</m:GetUserPhoto>"))
        assert r.status_code == 200
        resp = ET.fromstring(r.content).find(f".//{M}GetUserPhotoResponse")
        assert resp.find(f"{M}ResponseCode").text == "ErrorItemNotFound"
        assert resp.find(f"{M}HasChanged").text == "false"


def test_sync_folder_items(web, resolve_locally, no_verify):
    """SyncFolderItems as exchangelib pages it: the first sync in pages of
    10 gives every message once, then a delivery is a create, an IMAP flag
    change an update, an expunge a delete; a made-up state is refused."""
    from imapclient import IMAPClient
    from conftest import make_message
    from imap_helpers import smtp_send
    a = account(web)
    with __import__("smtplib").SMTP("127.0.0.1", web.port("smtp"), timeout=30) as s:
        for i in range(25):
            s.sendmail("sender@outside.example", ["alice@example.test"],
                       make_message(subject=f"sync {i}", to="alice@example.test"))
    first = list(a.inbox.sync_items(max_changes_returned=10))
    assert {k for k, _ in first} == {"create"}
    assert sorted(i.subject for _, i in first) == sorted(f"sync {i}" for i in range(25))
    assert len({i.id for _, i in first}) == 25
    state = a.inbox.item_sync_state
    assert list(a.inbox.sync_items()) == []
    smtp_send(web, make_message(subject="after", to="alice@example.test"), rcpts=["alice@example.test"])
    c = IMAPClient("127.0.0.1", port=web.port("imaps"), ssl=True, ssl_context=_no_verify_ctx())
    c.login("alice@example.test", PASSWORD)
    c.select_folder("INBOX")
    c.add_flags(c.search(["SUBJECT", "sync 3"]), [b"\\Flagged"])
    gone = c.search(["SUBJECT", "sync 7"])
    c.delete_messages(gone)
    c.expunge()
    changes = list(a.inbox.sync_items())
    kinds = sorted(k for k, _ in changes)
    assert kinds == ["create", "delete", "update"], changes
    created = next(i for k, i in changes if k == "create")
    assert created.subject == "after"
    updated = next(i for k, i in changes if k == "update")
    assert updated.subject == "sync 3"
    deleted = next(i for k, i in changes if k == "delete")
    assert deleted.id in {i.id for _, i in first if i.subject == "sync 7"}
    c.logout()
    # A state that is not ours.
    from exchangelib.errors import ErrorInvalidSyncStateData
    a.inbox.item_sync_state = "AAAA"
    with pytest.raises(ErrorInvalidSyncStateData):
        list(a.inbox.sync_items())
    a.inbox.item_sync_state = state


def test_copy_folder(web):
    """CopyFolder copies a mail folder with its messages and subfolders;
    a folder cannot be copied into itself; special folders cannot be the
    source of a second Inbox."""
    from imapclient import IMAPClient
    from conftest import make_message
    c = IMAPClient("127.0.0.1", port=web.port("imaps"), ssl=True, ssl_context=_no_verify_ctx())
    c.login("alice@example.test", PASSWORD)
    c.create_folder("Src")
    c.create_folder("Src/Inner")
    c.create_folder("Dest")
    for i in range(3):
        c.append("Src", make_message(subject=f"copy {i}", to="alice@example.test"))
    c.append("Src/Inner", make_message(subject="inner", to="alice@example.test"))

    def fid(name):
        r = post(web, soap(
            '<m:FindFolder Traversal="Deep"><m:FolderShape><t:BaseShape>Default</t:BaseShape></m:FolderShape>'
            '<m:ParentFolderIds><t:DistinguishedFolderId Id="msgfolderroot"/></m:ParentFolderIds></m:FindFolder>'))
        for f in ET.fromstring(r.content).iter(f"{T}Folder"):
            if f.find(f"{T}DisplayName").text == name:
                return f.find(f"{T}FolderId").get("Id")
        raise AssertionError(name)

    src, dest = fid("Src"), fid("Dest")
    r = post(web, soap(f'<m:CopyFolder><m:ToFolderId><t:FolderId Id="{dest}"/></m:ToFolderId>'
                       f'<m:FolderIds><t:FolderId Id="{src}"/></m:FolderIds></m:CopyFolder>'))
    msg = ET.fromstring(r.content).find(f".//{M}CopyFolderResponseMessage")
    assert msg.get("ResponseClass") == "Success", r.text
    assert msg.find(f".//{T}FolderId").get("Id") not in (src, dest)
    c.select_folder("Dest/Src")
    assert sorted(m[b"ENVELOPE"].subject.decode() for m in c.fetch("1:*", ["ENVELOPE"]).values()) == \
        ["copy 0", "copy 1", "copy 2"]
    c.select_folder("Dest/Src/Inner")
    assert len(c.search()) == 1
    c.select_folder("Src")
    assert len(c.search()) == 3, "the source keeps its messages"
    r = post(web, soap(f'<m:CopyFolder><m:ToFolderId><t:FolderId Id="{src}"/></m:ToFolderId>'
                       f'<m:FolderIds><t:FolderId Id="{src}"/></m:FolderIds></m:CopyFolder>'))
    code = ET.fromstring(r.content).find(f".//{M}ResponseCode").text
    assert code == "ErrorMoveCopyFailed"
    c.logout()
