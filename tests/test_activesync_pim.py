"""ActiveSync Calendar, Contacts and Tasks folders against a running
server: pyactivesync (EAS 16.1; its WBXML codec taught the Calendar code
page of MS-ASWBXML here, which it lacks) on one side, CalDAV/CardDAV over
HTTP on the other, the same calendars and address books in between."""

import re
import threading
import time
import uuid

import httpx
import pytest
from pyactivesync import _codepages
from pyactivesync._wbxml import WBXMLReader, WBXMLWriter, find, find_all, text_of, wtag
from pyactivesync.models import Contact, ContactChange

from conftest import PASSWORD, Server, client_tls_context
from test_activesync import USER, client

# MS-ASWBXML 2.1.2.1.5, code page 4 (Calendar): the tags used here.
CALENDAR_PAGE = {
    "Timezone": 0x05, "AllDayEvent": 0x06, "BusyStatus": 0x0D, "DtStamp": 0x11, "EndTime": 0x12,
    "Location": 0x17, "MeetingStatus": 0x18, "OrganizerEmail": 0x19, "Reminder": 0x24,
    "Sensitivity": 0x25, "Subject": 0x26, "StartTime": 0x27, "UID": 0x28,
}
if "Calendar" not in _codepages.PAGE_INDEX:
    _codepages.CODEPAGES["Calendar"] = CALENDAR_PAGE
    _codepages.PAGE_INDEX["Calendar"] = 4
    _codepages.PAGE_ORDER[4] = "Calendar"
    _codepages.REVERSE[4] = {tok: tag for tag, tok in CALENDAR_PAGE.items()}


@pytest.fixture
def eas(tmp_path):
    s = Server(tmp_path, listeners=["https", "smtp", "imap"])
    try:
        s.start()
        s.add_user(USER, name="Test User")
        s.add_user("other@example.test", name="Other User")
    except BaseException:
        s.close()
        raise
    yield s
    s.close()


def dav(server, method, path, body=None, headers=None, user=USER):
    with httpx.Client(verify=client_tls_context(), timeout=15) as c:
        return c.request(method, f"https://127.0.0.1:{server.port('https')}{path}", content=body,
                         headers=headers or {}, auth=(user, PASSWORD))


CAL = f"/dav/calendars/{USER}/personal/"
BOOK = f"/dav/addressbooks/{USER}/personal/"


def event(uid, summary, start="20261210T090000Z", end="20261210T100000Z"):
    return (f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n"
            f"DTSTAMP:20261201T000000Z\r\nDTSTART:{start}\r\nDTEND:{end}\r\nSUMMARY:{summary}\r\n"
            "LOCATION:Room 1\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n").encode()


def objects(server, collection):
    """{href: body} of the objects of a collection, by PROPFIND and GET."""
    r = dav(server, "PROPFIND", collection, None, {"Depth": "1"})
    assert r.status_code == 207, r.text
    hrefs = re.findall(r"<(?:\w+:)?href>([^<]+\.(?:ics|vcf))</(?:\w+:)?href>", r.text)
    return {h: dav(server, "GET", h).text for h in hrefs}


def folders(c):
    return {int(f.type): f for f in c.list_folders() if int(f.type) in (7, 8, 9, 13, 14, 15)}


def post(c, cmd, page, root, children):
    w = WBXMLWriter()
    w.tag(page, root, children=children)
    resp = c._post(cmd, w.render())
    return WBXMLReader(resp).parse() if resp else []


def sync(c, collection, key, commands=None, window=50):
    children = [wtag("AirSync", "SyncKey", text=key), wtag("AirSync", "CollectionId", text=collection),
                wtag("AirSync", "WindowSize", text=str(window))]
    if commands:
        children.append(wtag("AirSync", "Commands", children=commands))
    nodes = post(c, "Sync", "AirSync", "Sync", [
        wtag("AirSync", "Collections", children=[wtag("AirSync", "Collection", children=children)])])
    return nodes


def key_of(nodes):
    return text_of(find(nodes, "AirSync.SyncKey"))


def subjects(nodes, kind="Add"):
    return sorted(text_of(find(ch, "Calendar.Subject")) for _, _, ch in find_all(nodes, f"AirSync.{kind}"))


def test_folders_show_calendar_contacts_and_tasks(eas):
    with client(eas) as c:
        c.provision()
        f = folders(c)
        assert set(f) == {7, 8, 9}
        assert f[8].name == "Personal Calendar" and f[9].name == "Personal Address Book" and f[7].name == "Tasks"
        # A calendar made over CalDAV shows up as a user calendar.
        r = dav(eas, "MKCALENDAR", f"/dav/calendars/{USER}/work/")
        assert r.status_code == 201, r.text
        f = folders(c)
        assert 13 in f


def test_calendar_both_ways_with_caldav(eas):
    assert dav(eas, "PUT", CAL + "dav-made.ics", event("dav-made", "From CalDAV"),
               {"Content-Type": "text/calendar"}).status_code == 201
    with client(eas) as c:
        c.provision()
        cal = folders(c)[8].id
        k0 = key_of(sync(c, cal, "0"))
        first = sync(c, cal, k0)
        assert subjects(first) == ["From CalDAV"]
        assert text_of(find(first, "Calendar.StartTime")) == "20261210T090000Z"
        k1 = key_of(first)
        # The phone makes an event: it is in the calendar for CalDAV.
        add = wtag("AirSync", "Add", children=[
            wtag("AirSync", "ClientId", text="c-1"),
            wtag("AirSync", "ApplicationData", children=[
                wtag("Calendar", "Subject", text="From the phone"),
                wtag("Calendar", "StartTime", text="20261211T140000Z"),
                wtag("Calendar", "EndTime", text="20261211T150000Z"),
                wtag("Calendar", "BusyStatus", text="2"),
                wtag("Calendar", "AllDayEvent", text="0"),
            ])])
        added = sync(c, cal, k1, [add])
        st = text_of(find(added, "AirSync.Status"))
        assert st == "1"
        resp = [(text_of(find(ch, "AirSync.ClientId")), text_of(find(ch, "AirSync.Status")),
                 text_of(find(ch, "AirSync.ServerId"))) for _, _, ch in find_all(added, "AirSync.Add")]
        assert len(resp) == 1 and resp[0][:2] == ("c-1", "1") and resp[0][2].startswith(f"{cal}:")
        phone_sid = resp[0][2]
        k2 = key_of(added)
        body = "".join(objects(eas, CAL).values())
        assert "SUMMARY:From the phone" in body and "20261211T140000Z" in body, body
        # Its own Add does not come back to it.
        again = sync(c, cal, k2)
        assert subjects(again) == [] and key_of(again) == k2
        # A CalDAV change reaches the phone as a Change.
        assert dav(eas, "PUT", CAL + "dav-made.ics", event("dav-made", "Moved in CalDAV",
                                                            "20261212T090000Z", "20261212T100000Z"),
                   {"Content-Type": "text/calendar"}).status_code == 204
        changed = sync(c, cal, k2)
        assert subjects(changed, "Change") == ["Moved in CalDAV"]
        k3 = key_of(changed)
        # The phone deletes its event: gone for CalDAV too.
        gone = sync(c, cal, k3, [wtag("AirSync", "Delete", children=[wtag("AirSync", "ServerId", text=phone_sid)])])
        assert text_of(find(gone, "AirSync.Status")) == "1"
        left = objects(eas, CAL)
        assert [h.rsplit("/", 1)[1] for h in left] == ["dav-made.ics"], left
        k4 = key_of(gone)
        # Garbage from the phone: status 6 for that item, the rest goes on.
        bad = wtag("AirSync", "Add", children=[
            wtag("AirSync", "ClientId", text="c-bad"),
            wtag("AirSync", "ApplicationData", children=[
                wtag("Calendar", "Subject", text="no times"),
                wtag("Calendar", "StartTime", text="yesterday-ish"),
            ])])
        bad_answer = sync(c, cal, k4, [bad])
        statuses = [text_of(find(ch, "AirSync.Status")) for _, _, ch in find_all(bad_answer, "AirSync.Add")]
        assert statuses == ["6"]
        # A ServerId of another folder: 8.
        other = sync(c, cal, key_of(bad_answer), [wtag("AirSync", "Change", children=[
            wtag("AirSync", "ServerId", text="1:1"),
            wtag("AirSync", "ApplicationData", children=[wtag("Calendar", "Subject", text="x")])])])
        statuses = [text_of(find(ch, "AirSync.Status")) for _, _, ch in find_all(other, "AirSync.Change")]
        assert statuses == ["8"]


def test_contacts_both_ways_with_carddav(eas):
    card = ("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:dav-card\r\nFN:Ann Smith\r\nN:Smith;Ann;;;\r\n"
            "EMAIL;TYPE=WORK:ann@example.test\r\nEND:VCARD\r\n").encode()
    assert dav(eas, "PUT", BOOK + "dav-card.vcf", card, {"Content-Type": "text/vcard"}).status_code == 201
    with client(eas) as c:
        c.provision()
        book = folders(c)[9].id
        r0 = c.sync_folder(book, "0")
        r1 = c.sync_folder(book, r0.sync_key)
        [ann] = r1.added
        assert ann.fields.get("Contacts.Email1Address", "").endswith("ann@example.test")
        assert ann.fields.get("Contacts.LastName") == "Smith"
        made = c.create_contact(book, r1.sync_key, Contact(first_name="Bob", last_name="Jones",
                                                           email1_address="bob@example.test",
                                                           company_name="Acme"))
        assert made.status == "1" and made.server_id
        cards = objects(eas, BOOK)
        bob = [t for t in cards.values() if "Jones" in t]
        assert len(bob) == 1 and "bob@example.test" in bob[0] and "Acme" in bob[0], cards
        ch = c.apply_contact_changes(book, made.sync_key, [ContactChange(
            server_id=made.server_id, contact=Contact(first_name="Bob", last_name="Jones",
                                                      email1_address="bob@example.test", company_name="Acme Ltd"))])
        assert set(ch.statuses.values()) == {"1"}
        assert any("Acme Ltd" in t for t in objects(eas, BOOK).values())
        ch2 = c.apply_contact_changes(book, ch.sync_key, [ContactChange(server_id=ann.server_id, delete=True)])
        assert set(ch2.statuses.values()) == {"1"}
        assert dav(eas, "GET", BOOK + "dav-card.vcf").status_code == 404


def test_ping_wakes_on_a_caldav_change(eas):
    with client(eas) as c:
        c.provision()
        cal = folders(c)[8].id
        k = key_of(sync(c, cal, "0"))
        sync(c, cal, k)
        answer = {}

        def ping():
            t = time.time()
            r = c.ping(cal, folder_class="Calendar", heartbeat=120, timeout=60)
            answer["status"], answer["ids"], answer["secs"] = r.status, r.changed_folder_ids, time.time() - t

        th = threading.Thread(target=ping)
        th.start()
        time.sleep(1.5)
        assert dav(eas, "PUT", CAL + f"{uuid.uuid4().hex}.ics", event(uuid.uuid4().hex, "wake"),
                   {"Content-Type": "text/calendar"}).status_code == 201
        th.join(20)
        assert answer.get("status") == "2" and answer["ids"] == [cal], answer
        assert answer["secs"] < 10


def test_tasks_both_ways_with_caldav(eas):
    # MS-ASWBXML code page 9 tags pyactivesync's table lacks.
    _codepages.CODEPAGES["Tasks"].setdefault("Complete", 0x0A)
    _codepages.CODEPAGES["Tasks"].setdefault("Importance", 0x0E)
    _codepages.REVERSE[9].update({0x0A: "Complete", 0x0E: "Importance"})
    tasks = f"/dav/calendars/{USER}/tasks/"
    todo = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VTODO\r\nUID:dav-todo\r\n"
            "DTSTAMP:20261201T000000Z\r\nSUMMARY:Water the plants\r\nDUE:20261215T170000Z\r\n"
            "PRIORITY:1\r\nEND:VTODO\r\nEND:VCALENDAR\r\n").encode()
    assert dav(eas, "PUT", tasks + "dav-todo.ics", todo, {"Content-Type": "text/calendar"}).status_code == 201
    with client(eas) as c:
        c.provision()
        folder = folders(c)[7].id
        k0 = key_of(sync(c, folder, "0"))
        first = sync(c, folder, k0)
        got = [(text_of(find(ch, "Tasks.Subject")), text_of(find(ch, "Tasks.Importance")))
               for _, _, ch in find_all(first, "AirSync.Add")]
        assert got == [("Water the plants", "2")], first
        add = wtag("AirSync", "Add", children=[
            wtag("AirSync", "ClientId", text="t-1"),
            wtag("AirSync", "ApplicationData", children=[
                wtag("Tasks", "Subject", text="Call the plumber"),
                wtag("Tasks", "Importance", text="1"),
                wtag("Tasks", "Complete", text="0"),
                wtag("Tasks", "UtcDueDate", text="2026-12-20T12:00:00.000Z"),
                wtag("Tasks", "DueDate", text="2026-12-20T12:00:00.000Z"),
            ])])
        added = sync(c, folder, key_of(first), [add])
        statuses = [text_of(find(ch, "AirSync.Status")) for _, _, ch in find_all(added, "AirSync.Add")]
        assert statuses == ["1"], added
    body = "".join(objects(eas, tasks).values())
    assert "BEGIN:VTODO" in body and "SUMMARY:Call the plumber" in body and "20261220T120000Z" in body, body


def test_meeting_response_replies_to_the_organizer(eas):
    # MS-ASWBXML code page 8, which pyactivesync's table lacks.
    page = {"CalendarId": 0x05, "CollectionId": 0x06, "MeetingResponse": 0x07, "RequestId": 0x08,
            "Request": 0x09, "Result": 0x0A, "Status": 0x0B, "UserResponse": 0x0C, "InstanceId": 0x0E}
    _codepages.CODEPAGES.setdefault("MeetingResponse", page)
    _codepages.PAGE_INDEX.setdefault("MeetingResponse", 8)
    _codepages.PAGE_ORDER.setdefault(8, "MeetingResponse")
    _codepages.REVERSE.setdefault(8, {tok: tag for tag, tok in page.items()})
    organizer = "other@example.test"
    invite = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:meet-1\r\n"
              "DTSTAMP:20261201T000000Z\r\nDTSTART:20261216T090000Z\r\nDTEND:20261216T100000Z\r\n"
              f"SUMMARY:Planning\r\nORGANIZER;CN=Other User:mailto:{organizer}\r\n"
              f"ATTENDEE;CN=Other User;PARTSTAT=ACCEPTED:mailto:{organizer}\r\n"
              f"ATTENDEE;CN=Test User;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{USER}\r\n"
              "END:VEVENT\r\nEND:VCALENDAR\r\n").encode()
    org_path = f"/dav/calendars/{organizer}/personal/meet-1.ics"
    assert dav(eas, "PUT", org_path, invite, {"Content-Type": "text/calendar"}, user=organizer).status_code == 201
    # A plain event of the user's own: not a meeting.
    assert dav(eas, "PUT", CAL + "mine.ics", event("mine", "Dentist"),
               {"Content-Type": "text/calendar"}).status_code == 201

    def respond(c, folder, request_id, answer):
        nodes = post(c, "MeetingResponse", "MeetingResponse", "MeetingResponse", [
            wtag("MeetingResponse", "Request", children=[
                wtag("MeetingResponse", "UserResponse", text=answer),
                wtag("MeetingResponse", "CollectionId", text=folder),
                wtag("MeetingResponse", "RequestId", text=request_id)])])
        return (text_of(find(nodes, "MeetingResponse.Status")), text_of(find(nodes, "MeetingResponse.CalendarId")))

    with client(eas) as c:
        c.provision()
        cal = folders(c)[8].id
        nodes = sync(c, cal, key_of(sync(c, cal, "0")))
        items = {text_of(find(ch, "Calendar.Subject")): text_of(find(ch, "AirSync.ServerId"))
                 for _, _, ch in find_all(nodes, "AirSync.Add")}
        assert set(items) == {"Planning", "Dentist"}, items
        status, calendar_id = respond(c, cal, items["Planning"], "1")
        assert status == "1" and calendar_id == items["Planning"]
        assert respond(c, cal, items["Dentist"], "1")[0] == "2"
        assert respond(c, cal, f"{cal}:99999", "1")[0] == "2"
        assert respond(c, cal, items["Planning"], "7")[0] == "2"
        assert respond(c, "424242", items["Planning"], "1")[0] == "2"
    # The organizer's copy has the answer (the scheduling engine's REPLY).
    deadline = time.time() + 10
    while True:
        copy = dav(eas, "GET", org_path, user=organizer).text
        line = [l for l in copy.replace("\r\n ", "").splitlines() if "ATTENDEE" in l and USER in l]
        if line and "PARTSTAT=ACCEPTED" in line[0] or time.time() > deadline:
            break
        time.sleep(0.2)
    assert line and "PARTSTAT=ACCEPTED" in line[0], copy
    mine = "".join(t for h, t in objects(eas, CAL).items() if "meet-1" in t)
    assert "PARTSTAT=ACCEPTED" in mine.replace("\r\n ", ""), mine
