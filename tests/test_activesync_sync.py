"""ActiveSync FolderSync, Sync (Email), GetItemEstimate, MoveItems and Ping
against a running server, driven by pyactivesync (EAS 16.1) and its WBXML
codec, with the same mailbox read and changed over IMAP (imapclient) and
mail delivered over SMTP: what a phone and a desktop client see of one
store."""

import threading
import time

import pytest
from pyactivesync._wbxml import WBXMLReader, WBXMLWriter, find, find_all, text_of, wtag
from pyactivesync.models import EmailChange, FolderType

from conftest import PASSWORD, Server, make_message
from imap_helpers import client as imap_client, smtp_send
from test_activesync import USER, client

OTHER = "other@example.test"


@pytest.fixture
def eas(tmp_path):
    s = Server(tmp_path, listeners=["https", "smtp", "imap"])
    try:
        s.start()
        s.add_user(USER, name="Test User")
        s.add_user(OTHER, name="Other User")
    except BaseException:
        s.close()
        raise
    yield s
    s.close()


def folders(c):
    return {f.name: f for f in c.list_folders()}


def post(c, cmd, root_page, root, children):
    w = WBXMLWriter()
    w.tag(root_page, root, children=children)
    resp = c._post(cmd, w.render())
    return WBXMLReader(resp).parse() if resp else []


def folder_sync(c, key):
    nodes = post(c, "FolderSync", "FolderHierarchy", "FolderSync", [wtag("FolderHierarchy", "SyncKey", text=key)])
    return nodes


def raw_sync(c, collection, key, commands=None, window=25):
    children = [
        wtag("AirSync", "SyncKey", text=key),
        wtag("AirSync", "CollectionId", text=collection),
        wtag("AirSync", "WindowSize", text=str(window)),
    ]
    if commands:
        children.append(wtag("AirSync", "Commands", children=commands))
    return post(c, "Sync", "AirSync", "Sync", [
        wtag("AirSync", "Collections", children=[wtag("AirSync", "Collection", children=children)])])


def subjects(result):
    return sorted(i.fields.get("Email.Subject", "") for i in result.added)


def test_folder_list_and_changes_reach_the_device(eas):
    with client(eas) as c:
        c.provision()
        f = folders(c)
        assert int(f["INBOX"].type) == 2
        assert int(f["Sent"].type) == 5 and int(f["Trash"].type) == 4 and int(f["Drafts"].type) == 3
        nodes = folder_sync(c, "0")
        key = text_of(find(nodes, "FolderHierarchy.SyncKey"))
        # Nothing changed: the same key, no changes.
        nodes = folder_sync(c, key)
        assert text_of(find(nodes, "FolderHierarchy.Status")) == "1"
        assert text_of(find(nodes, "FolderHierarchy.Count")) == "0"
        assert text_of(find(nodes, "FolderHierarchy.SyncKey")) == key
        # A folder made over IMAP, and one deleted, show up incrementally.
        with imap_client(eas) as imap:
            imap.create_folder("Projects")
            imap.create_folder("Projects/2026")
            imap.delete_folder("Junk")
        nodes = folder_sync(c, key)
        adds = {text_of(find(ch, "FolderHierarchy.DisplayName")): text_of(find(ch, "FolderHierarchy.ParentId"))
                for _, _, ch in find_all(nodes, "FolderHierarchy.Add")}
        ids = {text_of(find(ch, "FolderHierarchy.DisplayName")): text_of(find(ch, "FolderHierarchy.ServerId"))
               for _, _, ch in find_all(nodes, "FolderHierarchy.Add")}
        deletes = [text_of(find(ch, "FolderHierarchy.ServerId")) for _, _, ch in find_all(nodes, "FolderHierarchy.Delete")]
        assert set(adds) == {"Projects", "2026"}
        assert adds["2026"] == ids["Projects"] and adds["Projects"] == "0"
        assert deletes == [f["Junk"].id]
        new_key = text_of(find(nodes, "FolderHierarchy.SyncKey"))
        assert new_key != key
        # The previous key again: the same answer (the device lost it).
        again = folder_sync(c, key)
        assert text_of(find(again, "FolderHierarchy.SyncKey")) == new_key
        # An unknown key: 9, start over.
        assert text_of(find(folder_sync(c, "123"), "FolderHierarchy.Status")) == "9"


def test_folder_create_update_delete_are_imap_folders(eas):
    with client(eas) as c:
        c.provision()
        made = c.create_folder("Receipts")
        with imap_client(eas) as imap:
            assert "Receipts" in [n for _, _, n in imap.list_folders()]
        c.update_folder(made.id, "Invoices")
        with imap_client(eas) as imap:
            names = [n for _, _, n in imap.list_folders()]
            assert "Invoices" in names and "Receipts" not in names
        # Special folders stay.
        inbox = folders(c)["INBOX"]
        with pytest.raises(Exception):
            c.delete_folder(inbox.id)
        with pytest.raises(Exception):
            c.create_folder("Invoices")
        c.delete_folder(made.id)
        with imap_client(eas) as imap:
            assert "Invoices" not in [n for _, _, n in imap.list_folders()]


def test_folder_create_delete_of_a_calendar_is_a_dav_collection(eas):
    """FolderCreate of Type 13 (a user calendar) makes a calendar of the
    DAV store, FolderDelete removes it; the default calendar stays."""
    with client(eas) as c:
        c.provision()
        made = c.create_folder("Rota", type=FolderType(13))
        listed = folders(c)
        assert listed["Rota"].id == made.id and int(listed["Rota"].type) == 13
        with pytest.raises(Exception):
            c.create_folder("Rota", type=FolderType(13))
        with pytest.raises(Exception):
            c.delete_folder(listed["Personal Calendar"].id)
        c.delete_folder(made.id)
        assert "Rota" not in folders(c)


def test_mail_sync_window_replay_and_flags(eas):
    for i in range(5):
        smtp_send(eas, make_message(subject=f"msg {i}"))
    with client(eas) as c:
        c.provision()
        inbox = folders(c)["INBOX"].id
        r0 = c.sync_folder(inbox, "0")
        assert not r0.added
        r1 = c.sync_folder(inbox, r0.sync_key, window_size=3)
        assert len(r1.added) == 3 and r1.more_available
        # Newest first.
        assert subjects(r1) == ["msg 2", "msg 3", "msg 4"]
        # The same key again: the same answer, not the next window.
        again = c.sync_folder(inbox, r0.sync_key, window_size=3)
        assert again.sync_key == r1.sync_key and subjects(again) == subjects(r1)
        r2 = c.sync_folder(inbox, r1.sync_key, window_size=3)
        assert subjects(r2) == ["msg 0", "msg 1"] and not r2.more_available
        body = r2.added[0].fields
        assert "hello" in " ".join(body.values())
        # Nothing new: same key.
        r3 = c.sync_folder(inbox, r2.sync_key)
        assert r3.sync_key == r2.sync_key and not (r3.added or r3.changed or r3.deleted)

        # Device -> server: read and flagged reach IMAP, and are not echoed.
        first = r1.added[0].server_id
        res = c.apply_email_changes(inbox, r3.sync_key, [EmailChange(server_id=first, read=True, flagged=True)])
        uid = int(first.split(":")[1])
        with imap_client(eas) as imap:
            imap.select_folder("INBOX")
            flags = imap.get_flags([uid])[uid]
            assert b"\\Seen" in flags and b"\\Flagged" in flags
        r4 = c.sync_folder(inbox, res.sync_key)
        assert not r4.changed

        # Server -> device: IMAP flag change, new mail and an expunge.
        others = [i.server_id for i in r2.added]
        with imap_client(eas) as imap:
            imap.select_folder("INBOX")
            u0, u1 = (int(s.split(":")[1]) for s in others)
            imap.add_flags([u0], [b"\\Seen"])
            imap.add_flags([u1], [b"\\Deleted"])
            imap.expunge()
        smtp_send(eas, make_message(subject="late"))
        r5 = c.sync_folder(inbox, r4.sync_key)
        assert [i.server_id for i in r5.changed] == [others[0]]
        assert r5.changed[0].fields.get("Email.Read") == "1"
        assert r5.deleted == [others[1]]
        assert subjects(r5) == ["late"]

        # Delete on the device: the message moves to Trash.
        res = c.apply_email_changes(inbox, r5.sync_key, [EmailChange(server_id=first, delete=True)])
        with imap_client(eas) as imap:
            imap.select_folder("Trash")
            assert len(imap.search("ALL")) == 1
            imap.select_folder("INBOX")
            assert uid not in imap.search("ALL")
        r6 = c.sync_folder(inbox, res.sync_key)
        assert not r6.deleted  # not echoed


def test_stale_key_and_other_users_folder(eas):
    with client(eas, device_id="other", user=OTHER) as o:
        o.provision()
        theirs = folders(o)["INBOX"].id
    with client(eas) as c:
        c.provision()
        inbox = folders(c)["INBOX"].id
        nodes = raw_sync(c, inbox, "4242")
        assert text_of(find(nodes, "AirSync.Status")) == "3"
        # Another user's folder id: 12 (not found in this hierarchy).
        nodes = raw_sync(c, theirs, "0")
        assert text_of(find(nodes, "AirSync.Status")) == "12"
        # Garbage ServerIds in commands: per-item 8, the session goes on.
        key = c.sync_folder(inbox, "0").sync_key
        nodes = raw_sync(c, inbox, key, commands=[
            wtag("AirSync", "Change", children=[
                wtag("AirSync", "ServerId", text=f"{theirs}:1"),
                wtag("AirSync", "ApplicationData", children=[wtag("Email", "Read", text="1")])]),
            wtag("AirSync", "Delete", children=[wtag("AirSync", "ServerId", text="../../etc")]),
        ])
        statuses = [text_of(find(ch, "AirSync.Status")) for _, _, ch in find_all(nodes, "AirSync.Responses")]
        assert text_of(find(nodes, "AirSync.Collection")) is None or statuses
        assert b"8" in b"".join((s or "").encode() for s in statuses) or "8" in str(nodes)


def test_estimate_and_move(eas):
    for i in range(3):
        smtp_send(eas, make_message(subject=f"m{i}"))
    with client(eas) as c:
        c.provision()
        f = folders(c)
        inbox = f["INBOX"].id
        key = c.sync_folder(inbox, "0").sync_key
        assert c.get_item_estimate(inbox, key) == 3
        r = c.sync_folder(inbox, key)
        assert c.get_item_estimate(inbox, r.sync_key) == 0
        archive = c.create_folder("Kept")
        new_id = c.move_item(r.added[0].server_id, inbox, archive.id)
        assert new_id.startswith(archive.id + ":")
        with imap_client(eas) as imap:
            imap.select_folder("Kept")
            assert len(imap.search("ALL")) == 1
        r2 = c.sync_folder(inbox, r.sync_key)
        assert r2.deleted == [r.added[0].server_id]


def test_ping_wakes_on_new_mail(eas):
    with client(eas) as c:
        c.provision()
        inbox = folders(c)["INBOX"].id
        r = c.sync_folder(inbox, c.sync_folder(inbox, "0").sync_key)
        assert c.ping(inbox, heartbeat=10).status == "5"
        result = {}

        def wait():
            result["ping"] = c.ping(inbox, heartbeat=120, timeout=60)
            result["at"] = time.monotonic()

        t = threading.Thread(target=wait)
        t.start()
        time.sleep(1.5)
        assert t.is_alive(), "Ping answered without a change"
        sent = time.monotonic()
        smtp_send(eas, make_message(subject="wake up"))
        t.join(30)
        assert not t.is_alive()
        assert result["ping"].status == "2" and result["ping"].changed_folder_ids == [inbox]
        assert result["at"] - sent < 5
        r2 = c.sync_folder(inbox, r.sync_key)
        assert subjects(r2) == ["wake up"]


def test_held_pings_leave_the_request_limit(tmp_path):
    # Three Pings held from one address with requests_per_ip = 2: they
    # are parked as long polls, so ordinary requests still get through.
    s = Server(tmp_path, listeners=["https", "smtp", "imap"], extra_config="[http]\nrequests_per_ip = 2\n")
    try:
        s.start()
        s.add_user(USER, name="Test User")
        threads, results = [], []
        for n in range(3):
            c = client(s, device_id=f"held{n}")
            c.provision()
            inbox = folders(c)["INBOX"].id
            c.sync_folder(inbox, c.sync_folder(inbox, "0").sync_key)
            t = threading.Thread(target=lambda c=c, i=inbox: results.append(c.ping(i, heartbeat=120, timeout=60)))
            t.start()
            threads.append(t)
            time.sleep(0.5)
        with client(s, device_id="probe") as p:
            assert p.provision()
            assert folders(p)["INBOX"]
        assert all(t.is_alive() for t in threads)
        smtp_send(s, make_message(subject="wake all"))
        for t in threads:
            t.join(30)
        assert [r.status for r in results] == ["2", "2", "2"]
    finally:
        s.close()


def test_a_second_ping_from_the_device_ends_the_first(eas):
    with client(eas) as c:
        c.provision()
        inbox = folders(c)["INBOX"].id
        c.sync_folder(inbox, c.sync_folder(inbox, "0").sync_key)
        first = {}

        def hold():
            t = time.monotonic()
            first["ping"] = c.ping(inbox, heartbeat=300, timeout=120)
            first["secs"] = time.monotonic() - t

        t = threading.Thread(target=hold)
        t.start()
        time.sleep(1.5)
        assert t.is_alive()
        # The same device pings again (a phone that lost the connection):
        # the first answers at once, as a heartbeat that ran out.
        with client(eas) as again:
            again.provision()
            second = {}
            t2 = threading.Thread(target=lambda: second.update(ping=again.ping(inbox, heartbeat=300, timeout=120)))
            t2.start()
            t.join(10)
            assert not t.is_alive(), "the first Ping is still held"
            assert first["ping"].status == "1" and first["secs"] < 10
            # The second is held until mail comes.
            assert t2.is_alive()
            smtp_send(eas, make_message(subject="for the second"))
            t2.join(30)
            assert second["ping"].status == "2"


def test_a_ping_loop_is_broken(eas):
    # A device that keeps pinging without syncing what the Ping reported
    # (MS-ASCMD clients seen doing so): twice answered, then told to resync
    # its folder list (7), then held until something new arrives.
    with client(eas) as c:
        c.provision()
        inbox = folders(c)["INBOX"].id
        key = c.sync_folder(inbox, c.sync_folder(inbox, "0").sync_key).sync_key
        smtp_send(eas, make_message(subject="never synced"))
        assert [c.ping(inbox, heartbeat=60, timeout=30).status for _ in range(3)] == ["2", "2", "7"]
        result = {}
        t = threading.Thread(target=lambda: result.update(p=c.ping(inbox, heartbeat=60, timeout=90)))
        t.start()
        time.sleep(2)
        assert t.is_alive(), "a looping Ping is answered at once again"
        smtp_send(eas, make_message(subject="something new"))
        t.join(30)
        assert result["p"].status == "2"
        # Once the device syncs, Pings answer as before.
        r = c.sync_folder(inbox, key)
        assert sorted(i.fields.get("Email.Subject") for i in r.added) == ["never synced", "something new"]
        smtp_send(eas, make_message(subject="third"))
        assert c.ping(inbox, heartbeat=60, timeout=30).status == "2"
    assert "Ping loop" in eas.log_text()


def test_ping_answers_7_when_the_folder_list_changes(eas):
    with client(eas) as c:
        c.provision()
        inbox = folders(c)["INBOX"].id
        c.sync_folder(inbox, c.sync_folder(inbox, "0").sync_key)
        result = {}

        def hold():
            t = time.monotonic()
            result["p"] = c.ping(inbox, heartbeat=300, timeout=120)
            result["secs"] = time.monotonic() - t

        t = threading.Thread(target=hold)
        t.start()
        time.sleep(1.5)
        assert t.is_alive()
        with imap_client(eas) as imap:
            imap.create_folder("Made while pinging")
        t.join(15)
        assert not t.is_alive(), "the Ping did not notice the new folder"
        assert result["p"].status == "7" and result["secs"] < 15
        # After a FolderSync the Ping waits again.
        assert "Made while pinging" in folders(c)
        t2 = threading.Thread(target=lambda: result.update(q=c.ping(inbox, heartbeat=300, timeout=120)))
        t2.start()
        time.sleep(1.5)
        assert t2.is_alive()
        smtp_send(eas, make_message(subject="end it"))
        t2.join(30)
        assert result["q"].status == "2"


def test_a_hanging_sync_answers_12_when_the_folder_list_changes(eas):
    with client(eas) as c:
        c.provision()
        inbox = folders(c)["INBOX"].id
        key = c.sync_folder(inbox, c.sync_folder(inbox, "0").sync_key).sync_key
        result = {}

        def hang():
            nodes = post(c, "Sync", "AirSync", "Sync", [
                wtag("AirSync", "Collections", children=[wtag("AirSync", "Collection", children=[
                    wtag("AirSync", "SyncKey", text=key), wtag("AirSync", "CollectionId", text=inbox)])]),
                wtag("AirSync", "HeartbeatInterval", text="300")])
            result["status"] = text_of(find(nodes, "AirSync.Status"))

        c._transport.timeout = 120
        t = threading.Thread(target=hang)
        t.start()
        time.sleep(1.5)
        assert t.is_alive(), "the Sync did not hang"
        with imap_client(eas) as imap:
            imap.create_folder("Made while syncing")
        t.join(15)
        assert not t.is_alive() and result["status"] == "12", result


def attachment_message(subject, payload):
    from email.message import EmailMessage
    m = EmailMessage()
    m["From"] = "sender@outside.example"
    m["To"] = USER
    m["Subject"] = subject
    m.set_content("see the attachment\n")
    m.add_attachment(payload, maintype="application", subtype="octet-stream", filename="data.bin")
    return m.as_bytes().replace(b"\n", b"\r\n")


def test_item_operations_fetch_and_empty(eas):
    payload = bytes(range(256)) * 40
    smtp_send(eas, attachment_message("with attachment", payload))
    with client(eas) as c:
        c.provision()
        f = folders(c)
        inbox = f["INBOX"].id
        r = c.sync_folder(inbox, c.sync_folder(inbox, "0").sync_key)
        sid = r.added[0].server_id
        item = c.fetch_item(inbox, sid)
        assert "see the attachment" in (item.body.data or "")
        assert len(item.attachments) == 1
        ref = item.attachments[0].file_reference
        assert c.fetch_attachment(ref) == payload
        # Another folder's id in the reference, or garbage: not found (6).
        for bad in [f"{f['Trash'].id}:{sid.split(':')[1]}:0", "../../etc/passwd", f"{inbox}:999:0"]:
            nodes = post(c, "ItemOperations", "ItemOperations", "ItemOperations", [
                wtag("ItemOperations", "Fetch", children=[
                    wtag("ItemOperations", "Store", text="Mailbox"),
                    wtag("AirSyncBase", "FileReference", text=bad)])])
            statuses = [text_of(n) for n in find_all(nodes, "ItemOperations.Status")]
            assert statuses == ["1", "6"], (bad, statuses)
        # EmptyFolderContents of Trash.
        c.apply_email_changes(inbox, r.sync_key, [EmailChange(server_id=sid, delete=True)])
        # pyactivesync's code pages lack EmptyFolderContents: the bytes by
        # hand (ItemOperations page 20, AirSync page 0).
        body = (bytes([0x03, 0x01, 0x6a, 0x00, 0x00, 0x14, 0x45, 0x52, 0x00, 0x00, 0x52, 0x03])
                + f["Trash"].id.encode() + bytes([0x00, 0x01, 0x01, 0x01]))
        nodes = WBXMLReader(c._post("ItemOperations", body)).parse()
        assert [text_of(n) for n in find_all(nodes, "ItemOperations.Status")] == ["1", "1"]
        with imap_client(eas) as imap:
            imap.select_folder("Trash")
            assert imap.search("ALL") == []


def test_settings_oof_is_the_one_out_of_office(eas):
    import json
    from pyactivesync.models import OofState
    with client(eas) as c:
        c.provision()
        assert c.get_oof().state == OofState.DISABLED
        c.set_oof(OofState.ENABLED_SCHEDULED, start_time="2026-12-20T00:00:00.000Z",
                  end_time="2027-01-04T00:00:00.000Z", reply_message="Back in January",
                  applies_to=("Internal", "ExternalUnknown"))
        # What outpost oof (the Sieve script's managed block) now says.
        got = json.loads(eas.cli("oof", "get", USER).stdout)
        assert got["state"] == "scheduled" and got["internal_reply"] == "Back in January"
        assert got["external_audience"] == "all"
        # And the other way round.
        eas.cli("oof", "set", USER, "--state", "enabled", "--message", "Gone fishing")
        o = c.get_oof()
        assert o.state == OofState.ENABLED
        internal = [m for m in o.messages if m.applies_to == "Internal"][0]
        assert internal.enabled and internal.reply_message == "Gone fishing"
        # A scheduled state without dates is refused, the old one stays.
        nodes = post(c, "Settings", "Settings", "Settings", [wtag("Settings", "Oof", children=[
            wtag("Settings", "Set", children=[wtag("Settings", "OofState", text="2")])])])
        assert [text_of(n) for n in find_all(nodes, "Settings.Status")] == ["1", "2"]
        assert json.loads(eas.cli("oof", "get", USER).stdout)["state"] == "enabled"
        # UserInformation: the user's addresses.
        # UserInformation (not in pyactivesync's code pages: by hand,
        # Settings page 18; the answer checked with the server's own
        # codec's output as bytes).
        raw = c._post("Settings", bytes([0x03, 0x01, 0x6a, 0x00, 0x00, 0x12, 0x45, 0x5D, 0x07, 0x01, 0x01]))
        assert USER.encode() in raw
