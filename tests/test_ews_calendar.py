"""EWS calendar, availability and directory (crates/ews: ops/pim.rs,
ops/availability.rs, ops/directory.rs) against a running server with
exchangelib: calendar items seen over CalDAV and CalendarView, weekly
recurrences expanded into occurrences, meetings that reach the attendee
through the scheduling engine, another user's free/busy, ResolveNames,
ExpandDL and MailTips; contacts and tasks both ways with CardDAV/CalDAV.

Fixtures and helpers: tests/ews_helpers.py."""

import datetime
import xml.etree.ElementTree as ET

import httpx
import pytest
import urllib3

from conftest import PASSWORD, client_tls_context
from ews_helpers import M, T, account, no_verify, post, resolve_locally, soap, web  # noqa: F401

urllib3.disable_warnings()

ALICE = "alice@example.test"
BOB = "bob@example.test"


def dav(server, method, path, body=None, headers=None, user=ALICE):
    with httpx.Client(verify=client_tls_context(), timeout=15) as c:
        return c.request(method, f"https://127.0.0.1:{server.port('https')}{path}", content=body,
                         headers=headers or {}, auth=(user, PASSWORD))


def put_event(server, user, name, uid, start, end, summary="Busy", extra=""):
    body = (f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n"
            f"DTSTAMP:20261201T000000Z\r\nDTSTART:{start}\r\nDTEND:{end}\r\nSUMMARY:{summary}\r\n"
            f"{extra}END:VEVENT\r\nEND:VCALENDAR\r\n").encode()
    r = dav(server, "PUT", f"/dav/calendars/{user}/personal/{name}.ics", body,
            {"Content-Type": "text/calendar"}, user=user)
    assert r.status_code in (201, 204), r.text


def ics(t):
    return t.strftime("%Y%m%dT%H%M%SZ")


def next_monday(hour=0):
    from exchangelib.ewsdatetime import UTC
    today = datetime.datetime.now(tz=UTC).replace(hour=hour, minute=0, second=0, microsecond=0)
    return today + datetime.timedelta(days=7 - today.weekday())


def test_free_busy_of_another_user(web, resolve_locally, no_verify):
    """bob's busy time, put over CalDAV, seen by alice through
    GetUserAvailability (after GetServerTimeZones, as exchangelib does),
    in the zone she asks in; an unknown address gets its own error."""
    from exchangelib import EWSTimeZone
    from exchangelib.errors import ErrorMailRecipientNotFound
    monday = next_monday()
    busy_start = monday + datetime.timedelta(hours=9)
    put_event(web, BOB, "standup", "standup-1", ics(busy_start), ics(busy_start + datetime.timedelta(hours=1)))
    put_event(web, BOB, "maybe", "maybe-1", ics(busy_start + datetime.timedelta(hours=3)),
              ics(busy_start + datetime.timedelta(hours=4)), extra="STATUS:TENTATIVE\r\n")
    a = account(web)
    tz = EWSTimeZone("Europe/Copenhagen")
    start = monday.astimezone(tz)
    end = start + datetime.timedelta(days=1)
    views = list(a.protocol.get_free_busy_info(
        accounts=[(BOB, "Required", False), ("nobody@example.test", "Required", False),
                  ("someone@elsewhere.example", "Optional", False)],
        start=start, end=end, merged_free_busy_interval=60))
    bob, nobody, outside = views
    assert isinstance(nobody, ErrorMailRecipientNotFound), nobody
    assert isinstance(outside, ErrorMailRecipientNotFound), outside
    assert bob.view_type == "FreeBusyMerged"
    events = sorted(bob.calendar_events, key=lambda e: e.start)
    assert [e.busy_type for e in events] == ["Busy", "Tentative"]
    assert events[0].start == busy_start and events[0].end == busy_start + datetime.timedelta(hours=1)
    # The wall times are Copenhagen's, an hour ahead of UTC in winter or two in summer.
    assert events[0].start.astimezone(tz).hour == busy_start.astimezone(tz).hour
    # One digit per hour from the window's start (midnight UTC).
    assert bob.merged[9] == "2" and bob.merged[12] == "1"
    assert bob.merged.count("2") == 1 and len(bob.merged) == 24
    assert bob.working_hours and bob.working_hours[0].weekdays


def test_server_time_zones(web, resolve_locally, no_verify):
    a = account(web)
    zones = {z.id: z for z in a.protocol.get_timezones(return_full_timezone_data=True)}
    assert "W. Europe Standard Time" in zones and "UTC" in zones
    std, dst, period = zones["W. Europe Standard Time"].get_std_and_dst(for_year=2026)
    assert period.bias_in_minutes == -60
    assert (std.iso_month, dst.iso_month) == (10, 3) and dst.bias == -60


def test_resolve_names_and_expand_dl(web, resolve_locally, no_verify):
    a = account(web)
    # exchangelib learns the version from the account's first call.
    assert a.version.api_version == "Exchange2016"
    found = a.protocol.resolve_names(["bob"])
    assert [m.email_address for m in found] == [BOB]
    assert found[0].name == "Bob B" and found[0].mailbox_type == "Mailbox"
    full = a.protocol.resolve_names([f"SMTP:{BOB}"], return_full_contact_data=True)
    (mailbox, contact), = full
    assert mailbox.email_address == BOB and contact.display_name == "Bob B"
    from exchangelib.errors import ErrorNameResolutionNoResults
    none = a.protocol.resolve_names(["zzz-nobody"])
    assert none == [] or isinstance(none[0], ErrorNameResolutionNoResults), none
    # A contact of alice's own resolves too, marked as a contact.
    card = ("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:carol-1\r\nFN:Carol Outside\r\nN:Outside;Carol;;;\r\n"
            "EMAIL:carol@elsewhere.example\r\nEND:VCARD\r\n").encode()
    r = dav(web, "PUT", f"/dav/addressbooks/{ALICE}/personal/carol.vcf", card, {"Content-Type": "text/vcard"})
    assert r.status_code == 201, r.text
    carol = a.protocol.resolve_names(["carol"])
    assert [(m.email_address, m.mailbox_type) for m in carol] == [("carol@elsewhere.example", "Contact")]
    # A group of the directory expands into its members.
    web.cli("group", "add", "team@example.test", "--name", "Team", "--member", ALICE, "--member", BOB)
    members = a.protocol.expand_dl("team@example.test")
    assert sorted(m.email_address for m in members) == [ALICE, BOB]
    team = a.protocol.resolve_names(["team@example.test"])
    assert team[0].mailbox_type == "PublicDL"


def test_mail_tips_show_out_of_office(web, resolve_locally, no_verify):
    from exchangelib import OofSettings
    from exchangelib.properties import Mailbox, SendingAs
    from exchangelib.services import GetMailTips
    b = account(web, BOB)
    b.oof_settings = OofSettings(state=OofSettings.ENABLED, external_audience="All",
                                 internal_reply="Bob is away", external_reply="Away")
    a = account(web)
    tips = list(GetMailTips(protocol=a.protocol).call(
        sending_as=SendingAs(email_address=ALICE),
        recipients=[Mailbox(email_address=BOB), Mailbox(email_address="nobody@example.test"),
                    Mailbox(email_address="carol@elsewhere.example")],
        mail_tips_requested="All"))
    bob, nobody, carol = tips
    assert bob.out_of_office.reply_body == "Bob is away"
    assert bob.invalid_recipient is False and bob.total_member_count == 1
    assert nobody.invalid_recipient is True
    assert carol.external_member_count == 1
    assert not carol.out_of_office.reply_body


def test_availability_errors_are_not_faults(web):
    """Raw requests: an unknown mailbox is its own error response, a
    window over 42 days the request's fault (inside HTTP 200)."""
    def request(start, end, who):
        return soap(
            "<m:GetUserAvailabilityRequest>"
            "<t:TimeZone><t:Bias>0</t:Bias><t:StandardTime><t:Bias>0</t:Bias><t:Time>00:00:00</t:Time>"
            "<t:DayOrder>1</t:DayOrder><t:Month>0</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek></t:StandardTime>"
            "<t:DaylightTime><t:Bias>0</t:Bias><t:Time>00:00:00</t:Time><t:DayOrder>1</t:DayOrder>"
            "<t:Month>0</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek></t:DaylightTime></t:TimeZone>"
            f"<m:MailboxDataArray><t:MailboxData><t:Email><t:Address>{who}</t:Address></t:Email>"
            "<t:AttendeeType>Required</t:AttendeeType></t:MailboxData></m:MailboxDataArray>"
            f"<t:FreeBusyViewOptions><t:TimeWindow><t:StartTime>{start}</t:StartTime><t:EndTime>{end}</t:EndTime>"
            "</t:TimeWindow><t:MergedFreeBusyIntervalInMinutes>30</t:MergedFreeBusyIntervalInMinutes>"
            "<t:RequestedView>MergedOnly</t:RequestedView></t:FreeBusyViewOptions>"
            "</m:GetUserAvailabilityRequest>")
    r = post(web, request("2026-12-07T00:00:00", "2026-12-08T00:00:00", "nobody@example.test"))
    assert r.status_code == 200
    x = ET.fromstring(r.content)
    codes = [e.text for e in x.iter(f"{M}ResponseCode")]
    assert codes == ["ErrorMailRecipientNotFound"], r.text
    r = post(web, request("2026-12-07T00:00:00", "2026-12-08T00:00:00", BOB))
    x = ET.fromstring(r.content)
    assert [e.text for e in x.iter(f"{T}MergedFreeBusy")] == ["0" * 48], r.text
    r = post(web, request("2026-12-07T00:00:00", "2027-03-08T00:00:00", BOB))
    assert r.status_code == 200 and b"ErrorTimeIntervalTooBig" in r.content and b"Fault" in r.content


def wait_for(fn, what, timeout=10):
    import time
    end = time.time() + timeout
    while True:
        got = fn()
        if got:
            return got
        if time.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def caldav_objects(server, user):
    """{href: body} of the user's default calendar, by PROPFIND and GET."""
    import re
    path = f"/dav/calendars/{user}/personal/"
    r = dav(server, "PROPFIND", path, None, {"Depth": "1"}, user=user)
    assert r.status_code == 207, r.text
    hrefs = re.findall(r"<(?:\w+:)?href>([^<]+\.ics)</(?:\w+:)?href>", r.text)
    return {h: dav(server, "GET", h, user=user).text for h in hrefs}


def test_calendar_item_seen_over_caldav_and_calendar_view(web, resolve_locally, no_verify):
    from exchangelib import CalendarItem, EWSTimeZone
    a = account(web)
    tz = EWSTimeZone("Europe/Copenhagen")
    start = next_monday().astimezone(tz).replace(hour=12)
    item = CalendarItem(account=a, folder=a.calendar, subject="Lunch", start=start,
                        end=start + datetime.timedelta(hours=1), location="Canteen", body="Bring food",
                        reminder_is_set=True, reminder_minutes_before_start=10)
    item.save()
    assert item.id and item.changekey
    (body,) = caldav_objects(web, ALICE).values()
    assert "SUMMARY:Lunch" in body and "LOCATION:Canteen" in body, body
    # Romance Standard Time, as exchangelib names the zone: Europe/Paris.
    assert "DTSTART;TZID=Europe/Paris:" in body and "T120000" in body, body
    view = list(a.calendar.view(start=start - datetime.timedelta(days=1), end=start + datetime.timedelta(days=1)))
    assert [v.subject for v in view] == ["Lunch"]
    got = view[0]
    assert got.start == start and got.end == start + datetime.timedelta(hours=1)
    assert got.location == "Canteen" and got.body == "Bring food"
    assert got.type == "Single" and got.is_all_day is False and got.legacy_free_busy_status == "Busy"
    assert got.reminder_minutes_before_start == 10
    # GetItem by id; an update; an all-day event.
    again = a.calendar.get(id=item.id)
    assert again.subject == "Lunch" and again.uid
    again.subject = "Long lunch"
    again.end = start + datetime.timedelta(hours=2)
    again.save(update_fields=["subject", "end"])
    (body,) = caldav_objects(web, ALICE).values()
    assert "SUMMARY:Long lunch" in body and "LOCATION:Canteen" in body, body
    assert a.calendar.get(id=item.id).end == start + datetime.timedelta(hours=2)
    day = CalendarItem(account=a, folder=a.calendar, subject="Holiday", is_all_day=True,
                       start=start.date() + datetime.timedelta(days=1), end=start.date() + datetime.timedelta(days=2))
    day.save()
    assert any("DTSTART;VALUE=DATE:" in b for b in caldav_objects(web, ALICE).values())
    got = a.calendar.get(id=day.id)
    assert got.is_all_day and got.start == start.date() + datetime.timedelta(days=1)
    # Made over CalDAV, seen over EWS.
    put_event(web, ALICE, "dav-made", "dav-made-1", ics(start + datetime.timedelta(days=2)),
              ics(start + datetime.timedelta(days=2, hours=1)), summary="From CalDAV")
    subjects = sorted(v.subject for v in a.calendar.view(start=start - datetime.timedelta(days=1),
                                                         end=start + datetime.timedelta(days=3)))
    assert subjects == ["From CalDAV", "Holiday", "Long lunch"]
    # Restrictions and sort orders over the items (not their occurrences).
    assert [x.subject for x in a.calendar.filter(subject="Holiday")] == ["Holiday"]
    assert [x.subject for x in a.calendar.filter(subject__startswith="Lo")] == ["Long lunch"]
    ordered = [x.subject for x in a.calendar.all().order_by("-subject")]
    assert ordered == ["Long lunch", "Holiday", "From CalDAV"]
    assert [x.subject for x in a.calendar.view(start=start - datetime.timedelta(days=1),
                                               end=start + datetime.timedelta(days=3)).filter(subject="Holiday")] \
        == ["Holiday"]
    # Deleted over EWS: gone from CalDAV.
    item.delete()
    assert not any("Long lunch" in b for b in caldav_objects(web, ALICE).values())


def test_weekly_recurrence_expanded_in_calendar_view(web, resolve_locally, no_verify):
    from exchangelib import CalendarItem
    from exchangelib.ewsdatetime import UTC
    from exchangelib.recurrence import Recurrence, WeeklyPattern
    a = account(web)
    start = next_monday(hour=8)
    series = CalendarItem(account=a, folder=a.calendar, subject="Weekly", start=start,
                          end=start + datetime.timedelta(minutes=30),
                          recurrence=Recurrence(pattern=WeeklyPattern(interval=1, weekdays=["Monday"]),
                                                start=start.date(), number=4))
    series.save()
    (body,) = caldav_objects(web, ALICE).values()
    assert "RRULE:FREQ=WEEKLY;COUNT=4;BYDAY=MO" in body, body
    window = dict(start=start - datetime.timedelta(days=1), end=start + datetime.timedelta(days=40))
    occurrences = list(a.calendar.view(**window))
    assert [o.start for o in occurrences] == [start + datetime.timedelta(weeks=w) for w in range(4)]
    assert {o.type for o in occurrences} == {"Occurrence"}
    assert len({o.id for o in occurrences}) == 4
    # The master, by GetItem of the series.
    master = a.calendar.get(id=series.id)
    assert master.type == "RecurringMaster"
    assert master.recurrence.boundary.number == 4
    assert master.recurrence.pattern.weekdays == [1]  # Monday
    # One occurrence by its id, another by its index.
    second = a.calendar.get(id=occurrences[1].id)
    assert second.start == start + datetime.timedelta(weeks=1) and second.type == "Occurrence"
    third = master.occurrence(index=3)
    third.refresh()
    assert third.start.astimezone(UTC) == start + datetime.timedelta(weeks=2)
    # Deleting one occurrence leaves three.
    occurrences[1].delete()
    left = [o.start for o in a.calendar.view(**window)]
    assert left == [start, start + datetime.timedelta(weeks=2), start + datetime.timedelta(weeks=3)]
    assert "EXDATE" in list(caldav_objects(web, ALICE).values())[0]
    # The series changed: the old ChangeKey of an occurrence is stale.
    from exchangelib.errors import ErrorIrresolvableConflict
    stale = occurrences[3]
    stale.subject = "Stale"
    try:
        stale.save(update_fields=["subject"])
        raise AssertionError("a stale ChangeKey was accepted")
    except ErrorIrresolvableConflict:
        pass
    # Changing one makes it an exception of the series, moved an hour.
    last = list(a.calendar.view(**window))[2]
    last.subject = "Weekly, later"
    last.start = last.start + datetime.timedelta(hours=1)
    last.end = last.end + datetime.timedelta(hours=1)
    last.save(update_fields=["subject", "start", "end"])
    now = list(a.calendar.view(**window))
    assert [(o.subject, o.type) for o in now] == [("Weekly", "Occurrence"), ("Weekly", "Occurrence"),
                                                  ("Weekly, later", "Exception")]
    assert now[2].start == start + datetime.timedelta(weeks=3, hours=1)
    (body,) = caldav_objects(web, ALICE).values()
    assert "RECURRENCE-ID" in body and "SUMMARY:Weekly\\, later" in body, body
    master = a.calendar.get(id=series.id)
    assert [d.start for d in master.deleted_occurrences] == [start + datetime.timedelta(weeks=1)]
    assert [m.original_start for m in master.modified_occurrences] == [start + datetime.timedelta(weeks=3)]
    assert master.first_occurrence.start == start
    assert master.last_occurrence.start == start + datetime.timedelta(weeks=3, hours=1)
    # Another user's id gets an error, not the item.
    b = account(web, BOB)
    from exchangelib.errors import ErrorAccessDenied
    with pytest.raises(ErrorAccessDenied):
        list(b.fetch(ids=[(series.id, None)]))


def test_meeting_reaches_the_attendee_who_accepts(web, resolve_locally, no_verify):
    """A meeting made over EWS with bob as attendee: the scheduling engine
    files it in bob's calendar; bob sees it over EWS and accepts; alice's
    copy shows the answer; bob's free/busy shows the time busy."""
    from exchangelib import CalendarItem
    from exchangelib.items import SEND_TO_ALL_AND_SAVE_COPY
    a = account(web)
    start = next_monday(hour=14)
    end = start + datetime.timedelta(hours=1)
    # Saved without invitations first: bob is not told of this one.
    quiet = CalendarItem(account=a, folder=a.calendar, subject="Not told", start=start - datetime.timedelta(hours=3),
                         end=start - datetime.timedelta(hours=2), required_attendees=[BOB])
    quiet.save()
    meeting = CalendarItem(account=a, folder=a.calendar, subject="Planning", start=start, end=end,
                           required_attendees=[BOB])
    meeting.save(send_meeting_invitations=SEND_TO_ALL_AND_SAVE_COPY)
    body = [b for b in caldav_objects(web, ALICE).values() if "Planning" in b][0]
    assert "ATTENDEE" in body and "bob@example.test" in body and "ORGANIZER" in body, body
    b = account(web, BOB)
    window = dict(start=start - datetime.timedelta(hours=1), end=end + datetime.timedelta(hours=1))
    (invite,) = wait_for(lambda: list(b.calendar.view(**window)), "bob's copy")
    assert [x.subject for x in b.calendar.all()] == ["Planning"]
    assert invite.subject == "Planning" and invite.organizer.email_address == ALICE
    assert invite.my_response_type == "NoResponseReceived"
    invite.accept()
    # bob's own change of his copy (a reminder) tells nobody and keeps it his.
    mine = b.calendar.get(id=invite.id)
    mine.reminder_is_set = True
    mine.reminder_minutes_before_start = 5
    mine.save(update_fields=["reminder_is_set", "reminder_minutes_before_start"])
    got = wait_for(lambda: [x for x in a.calendar.view(**window)
                            if x.required_attendees and x.required_attendees[0].response_type == "Accept"],
                   "alice's copy with bob's answer")
    assert got[0].required_attendees[0].mailbox.email_address == BOB
    assert got[0].my_response_type == "Organizer"
    (fb,) = a.protocol.get_free_busy_info(accounts=[(BOB, "Required", False)],
                                          start=start - datetime.timedelta(hours=2),
                                          end=end + datetime.timedelta(hours=2))
    assert [(e.start, e.end, e.busy_type) for e in fb.calendar_events] == [(start, end, "Busy")]
    # Cancelled by the organizer: bob's copy says so.
    from exchangelib.items import SEND_TO_ALL_AND_SAVE_COPY as ALL
    a.calendar.get(id=meeting.id).delete(send_meeting_cancellations=ALL)
    wait_for(lambda: all(x.is_cancelled for x in b.calendar.view(**window)) or not list(b.calendar.view(**window)),
             "bob's copy cancelled")


def test_contacts_both_ways_with_carddav(web, resolve_locally, no_verify):
    import re
    from exchangelib import Contact
    from exchangelib.indexed_properties import EmailAddress, PhoneNumber
    a = account(web)
    c = Contact(account=a, folder=a.contacts, given_name="Dora", surname="Explorer", display_name="Dora Explorer",
                company_name="Maps Inc", job_title="Guide",
                email_addresses=[EmailAddress(label="EmailAddress1", email="dora@elsewhere.example")],
                phone_numbers=[PhoneNumber(label="MobilePhone", phone_number="+1 555 0101")])
    c.save()
    r = dav(web, "PROPFIND", f"/dav/addressbooks/{ALICE}/personal/", None, {"Depth": "1"})
    (href,) = re.findall(r"<(?:\w+:)?href>([^<]+\.vcf)</(?:\w+:)?href>", r.text)
    card = dav(web, "GET", href).text
    assert "FN:Dora Explorer" in card and "dora@elsewhere.example" in card and "Maps Inc" in card, card
    # Made over CardDAV, listed over EWS with what EWS has of it.
    vcf = ("BEGIN:VCARD\r\nVERSION:3.0\r\nUID:erin-1\r\nFN:Erin Example\r\nN:Example;Erin;;;\r\n"
           "EMAIL;TYPE=WORK:erin@elsewhere.example\r\nTEL;TYPE=WORK:+1 555 0102\r\nEND:VCARD\r\n").encode()
    assert dav(web, "PUT", f"/dav/addressbooks/{ALICE}/personal/erin.vcf", vcf,
               {"Content-Type": "text/vcard"}).status_code == 201
    people = {p.display_name: p for p in a.contacts.all()}
    assert set(people) == {"Dora Explorer", "Erin Example"}
    erin = people["Erin Example"]
    assert erin.given_name == "Erin" and erin.surname == "Example"
    assert [e.email for e in erin.email_addresses] == ["erin@elsewhere.example"]
    assert [p.phone_number for p in erin.phone_numbers] == ["+1 555 0102"]
    dora = a.contacts.get(id=c.id)
    assert dora.company_name == "Maps Inc" and dora.job_title == "Guide"
    assert [p.display_name for p in a.contacts.filter(surname="Example")] == ["Erin Example"]
    assert [p.display_name for p in a.contacts.all().order_by("-display_name")] == ["Erin Example", "Dora Explorer"]
    # An update sets what it names and keeps the rest.
    dora.job_title = "Chief guide"
    dora.save(update_fields=["job_title"])
    card = dav(web, "GET", href).text
    assert "TITLE:Chief guide" in card and "dora@elsewhere.example" in card, card
    dora = a.contacts.get(id=c.id)
    dora.job_title = None
    dora.save(update_fields=["job_title"])
    card = dav(web, "GET", href).text
    assert "TITLE" not in card and "Maps Inc" in card, card
    dora = a.contacts.get(id=c.id)
    dora.delete()
    assert [p.display_name for p in a.contacts.all()] == ["Erin Example"]


def test_tasks_both_ways_with_caldav(web, resolve_locally, no_verify):
    import re
    from decimal import Decimal
    from exchangelib import Task
    from exchangelib.ewsdatetime import UTC
    a = account(web)
    due = datetime.datetime(2026, 12, 10, tzinfo=UTC)
    t = Task(account=a, folder=a.tasks, subject="File taxes", due_date=due.date(), importance="High")
    t.save()
    path = f"/dav/calendars/{ALICE}/tasks/"
    r = dav(web, "PROPFIND", path, None, {"Depth": "1"})
    (href,) = re.findall(r"<(?:\w+:)?href>([^<]+\.ics)</(?:\w+:)?href>", r.text)
    todo = dav(web, "GET", href).text
    assert "BEGIN:VTODO" in todo and "SUMMARY:File taxes" in todo and "DUE" in todo, todo
    (got,) = list(a.tasks.all())
    assert got.subject == "File taxes" and got.importance == "High" and got.status == "NotStarted"
    got.status = "Completed"
    got.percent_complete = Decimal(100)
    got.save(update_fields=["status", "percent_complete"])
    todo = dav(web, "GET", href).text
    assert "STATUS:COMPLETED" in todo or "COMPLETED:" in todo, todo
    assert a.tasks.get(id=t.id).status == "Completed"


def test_calendar_bad_input_gets_the_protocols_errors(web):
    """Raw requests: bad times and recurrences are the item's error, a
    CalendarView without an end the request's fault, all inside HTTP 200;
    bob cannot read or change alice's item by its id."""
    def codes(r):
        assert r.status_code == 200, r.status_code
        return [e.text for e in ET.fromstring(r.content).iter(f"{M}ResponseCode")]

    def create(item):
        return post(web, soap('<m:CreateItem SendMeetingInvitations="SendToNone">'
                              '<m:SavedItemFolderId><t:DistinguishedFolderId Id="calendar"/></m:SavedItemFolderId>'
                              f"<m:Items><t:CalendarItem>{item}</t:CalendarItem></m:Items></m:CreateItem>"))
    assert codes(create("<t:Subject>x</t:Subject><t:Start>tomorrow</t:Start>")) == ["ErrorInvalidPropertySet"]
    assert codes(create("<t:Subject>x</t:Subject><t:Start>2026-12-07T10:00:00Z</t:Start>"
                        "<t:End>2026-12-07T09:00:00Z</t:End>")) == ["ErrorCalendarEndDateIsEarlierThanStartDate"]
    assert codes(create("<t:Start>2026-12-07T10:00:00Z</t:Start><t:End>2026-12-07T11:00:00Z</t:End>"
                        "<t:Recurrence><t:HourlyRecurrence/><t:NoEndRecurrence><t:StartDate>2026-12-07</t:StartDate>"
                        "</t:NoEndRecurrence></t:Recurrence>")) == ["ErrorInvalidPropertySet"]
    r = create("<t:Subject>Mine</t:Subject><t:Start>2026-12-07T10:00:00Z</t:Start><t:End>2026-12-07T11:00:00Z</t:End>")
    assert codes(r) == ["NoError"]
    item_id = ET.fromstring(r.content).find(f".//{T}ItemId").get("Id")

    def find(view):
        return post(web, soap('<m:FindItem Traversal="Shallow"><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape>'
                              f"</m:ItemShape>{view}<m:ParentFolderIds>"
                              '<t:DistinguishedFolderId Id="calendar"/></m:ParentFolderIds></m:FindItem>'))
    r = find('<m:CalendarView StartDate="2026-12-07T00:00:00Z"/>')
    assert r.status_code == 200 and b"Fault" in r.content and b"ErrorSchemaValidation" in r.content
    assert codes(find('<m:CalendarView StartDate="2026-12-08T00:00:00Z" EndDate="2026-12-07T00:00:00Z"/>')) \
        == ["ErrorCalendarEndDateIsEarlierThanStartDate"]
    r = find('<m:CalendarView StartDate="2026-12-07T00:00:00Z" EndDate="2026-12-08T00:00:00Z"/>')
    assert codes(r) == ["NoError"] and len(list(ET.fromstring(r.content).iter(f"{T}CalendarItem"))) == 1
    bob = ("bob@example.test", PASSWORD)
    r = post(web, soap(f'<m:GetItem><m:ItemShape><t:BaseShape>AllProperties</t:BaseShape></m:ItemShape>'
                       f'<m:ItemIds><t:ItemId Id="{item_id}"/></m:ItemIds></m:GetItem>'), auth=bob)
    assert codes(r) == ["ErrorAccessDenied"] and b"Mine" not in r.content
    r = post(web, soap('<m:DeleteItem DeleteType="HardDelete" SendMeetingCancellations="SendToNone">'
                       f'<m:ItemIds><t:ItemId Id="{item_id}"/></m:ItemIds></m:DeleteItem>'), auth=bob)
    assert codes(r) == ["ErrorAccessDenied"]
    r = find('<m:CalendarView StartDate="2026-12-07T00:00:00Z" EndDate="2026-12-08T00:00:00Z"/>')
    assert len(list(ET.fromstring(r.content).iter(f"{T}CalendarItem"))) == 1


def test_calendar_item_as_mime_content(web, resolve_locally, no_verify):
    """The whole iCalendar object as MimeContent, both ways (as DavMail and
    Outlook for Mac use it)."""
    import base64
    ics = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:mime-1\r\n"
           "DTSTAMP:20261201T000000Z\r\nDTSTART:20261209T150000Z\r\nDTEND:20261209T160000Z\r\n"
           "SUMMARY:From MIME\r\nX-KEPT:yes\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
    r = post(web, soap('<m:CreateItem SendMeetingInvitations="SendToNone">'
                       '<m:SavedItemFolderId><t:DistinguishedFolderId Id="calendar"/></m:SavedItemFolderId>'
                       '<m:Items><t:CalendarItem><t:MimeContent CharacterSet="UTF-8">'
                       f"{base64.b64encode(ics.encode()).decode()}</t:MimeContent></t:CalendarItem></m:Items>"
                       "</m:CreateItem>"))
    x = ET.fromstring(r.content)
    assert [e.text for e in x.iter(f"{M}ResponseCode")] == ["NoError"], r.text
    item_id = x.find(f".//{T}ItemId").get("Id")
    (body,) = caldav_objects(web, ALICE).values()
    assert "UID:mime-1" in body and "X-KEPT:yes" in body, body
    a = account(web)
    got = a.calendar.get(id=item_id)
    assert got.subject == "From MIME" and got.uid == "mime-1"
    assert b"X-KEPT:yes" in got.mime_content
