"""DavMail (Debian `davmail`, a widely used EWS client that serves local
IMAP, SMTP, CalDAV, CardDAV and LDAP) pointed at Outpost's EWS, and IMAP
and CalDAV conversations through it.

DavMail runs headless (`davmail.server=true`) with its own listeners on
127.0.0.1, in EWS mode against `https://localhost:PORT/EWS/Exchange.asmx`
(the test certificate names localhost; DavMail checks the name and takes
the self-signed certificate by its SHA-1 hash).

The CalDAV tests use the `caldav` library against DavMail's CalDAV port
(`/principals/users/EMAIL`, `/users/EMAIL/calendar/`) and check what
DavMail did over Outpost's own CalDAV (`/dav/calendars/...`) and over
EWS with exchangelib. DavMail's log (EWS requests and answers with
DAVMAIL_WIRE=1) is davmail.log in the test's directory."""

import datetime
import hashlib
import imaplib
import os
import re
import socket
import ssl
import subprocess
import time
import xml.etree.ElementTree as ET
from urllib.parse import unquote

import pytest

from conftest import CI, PASSWORD, free_port
from ews_helpers import M, T, account, no_verify, post, resolve_locally, soap, web  # noqa: F401
from test_ews_calendar import caldav_objects, dav, put_event

ALICE = "alice@example.test"
BOB = "bob@example.test"
UTC = datetime.timezone.utc


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
        # DAVMAIL_WIRE=1: the EWS requests and answers in davmail.log too.
        "log4j.logger.httpclient.wire=" + ("DEBUG" if os.environ.get("DAVMAIL_WIRE") else "WARN"),
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


# ---- CalDAV through DavMail ----

def caldav_client(davmail, user=ALICE):
    import caldav
    return caldav.DAVClient(url=f"http://127.0.0.1:{davmail['caldav']}/", username=user,
                            password=PASSWORD, timeout=60)


def home(davmail, user=ALICE):
    return f"http://127.0.0.1:{davmail['caldav']}/users/{user}/calendar/"


def vevent(uid, start, end, summary, extra=""):
    stamp = "20261201T000000Z"
    return (f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n"
            f"DTSTAMP:{stamp}\r\nDTSTART:{start:%Y%m%dT%H%M%SZ}\r\nDTEND:{end:%Y%m%dT%H%M%SZ}\r\n"
            f"SUMMARY:{summary}\r\nTRANSP:OPAQUE\r\n{extra}END:VEVENT\r\nEND:VCALENDAR\r\n")


def outpost_object(web, name, user=ALICE, calendar="personal"):
    r = dav(web, "GET", f"/dav/calendars/{user}/{calendar}/{name}", user=user)
    return r.status_code, r.text


def unfolded(text):
    return text.replace("\r\n ", "").replace("\n ", "")


JAN7 = datetime.datetime(2030, 1, 7, 10, 0, tzinfo=UTC)


def test_caldav_through_davmail_discovers_the_calendar(web, davmail):
    """The principal (the user's primary address, which DavMail learns
    from ConvertId), its calendar home and the calendar in it."""
    c = caldav_client(davmail)
    p = c.principal()
    assert unquote(str(p.url)).rstrip("/").endswith(f"/principals/users/{ALICE}"), p.url
    assert unquote(str(p.calendar_home_set.url)).rstrip("/").endswith(f"/users/{ALICE}/calendar"), \
        p.calendar_home_set.url
    cals = p.calendars()
    assert [x.get_display_name() for x in cals] == ["Personal Calendar"], [x.url for x in cals]


def test_caldav_through_davmail_put_get_update_delete(web, davmail, resolve_locally, no_verify):
    c = caldav_client(davmail)
    cal = c.calendar(url=home(davmail))
    # PUT through DavMail, under the name the client chose.
    saved = cal.save_event(vevent("dm-put-1", JAN7, JAN7 + datetime.timedelta(hours=1), "Planning via DavMail"))
    status, body = outpost_object(web, "dm-put-1.ics")
    assert status == 200, body
    body = unfolded(body)
    assert "UID:dm-put-1" in body and "SUMMARY:Planning via DavMail" in body, body
    # DavMail sends METHOD:PUBLISH and its zone's TZID on UTC times; what
    # is stored has neither.
    assert "METHOD" not in body and "DTSTART:20300107T100000Z" in body, body
    # The same event over EWS, at its time.
    a = account(web)
    view = list(a.calendar.view(start=JAN7 - datetime.timedelta(days=1), end=JAN7 + datetime.timedelta(days=1)))
    assert [(v.subject, v.start, v.end) for v in view] == \
        [("Planning via DavMail", JAN7, JAN7 + datetime.timedelta(hours=1))]
    assert view[0].legacy_free_busy_status == "Busy"
    # Changed again by the name it was PUT to (DavMail finds it by its
    # PR_URL_COMP_NAME).
    saved.icalendar_component["LOCATION"] = "Room 1"
    saved.save()
    status, body = outpost_object(web, "dm-put-1.ics")
    assert status == 200 and "LOCATION:Room 1" in unfolded(body), body
    # Made over Outpost's CalDAV, seen through DavMail with its content.
    later = JAN7 + datetime.timedelta(days=1)
    put_event(web, ALICE, "from-outpost", "outpost-1", f"{later:%Y%m%dT%H%M%SZ}",
              f"{later + datetime.timedelta(hours=2):%Y%m%dT%H%M%SZ}", summary="Made in Outpost")
    events = {e.icalendar_component["UID"]: e for e in cal.events()}
    assert set(events) == {"dm-put-1", "outpost-1"}, events
    made = events["outpost-1"].icalendar_component
    assert str(made["SUMMARY"]) == "Made in Outpost"
    assert made["DTSTART"].dt == later and made["DTEND"].dt == later + datetime.timedelta(hours=2)
    # Listed events are named by their EWS ids; one read by that name.
    listed = events["outpost-1"]
    assert str(listed.url).endswith(".EML"), listed.url
    again = c.calendar(url=home(davmail)).event_by_url(listed.url)
    assert str(again.icalendar_component["UID"]) == "outpost-1"
    # Changed through DavMail (an UpdateItem of its fields): seen over
    # Outpost's CalDAV, the resource name kept.
    ev = events["dm-put-1"]
    comp = ev.icalendar_component
    comp["SUMMARY"] = "Planning, moved"
    comp["DTSTART"].dt = JAN7 + datetime.timedelta(hours=3)
    comp["DTEND"].dt = JAN7 + datetime.timedelta(hours=4)
    ev.save()
    status, body = outpost_object(web, "dm-put-1.ics")
    assert status == 200, body
    body = unfolded(body)
    assert "SUMMARY:Planning\\, moved" in body, body
    (got,) = [v for v in a.calendar.view(start=JAN7 - datetime.timedelta(days=1),
                                         end=JAN7 + datetime.timedelta(days=1))]
    assert (got.subject, got.start) == ("Planning, moved", JAN7 + datetime.timedelta(hours=3))
    # Deleted through DavMail: gone from Outpost.
    events = {e.icalendar_component["UID"]: e for e in cal.events()}
    events["dm-put-1"].delete()
    assert outpost_object(web, "dm-put-1.ics")[0] == 404
    events["outpost-1"].delete()
    assert outpost_object(web, "from-outpost.ics")[0] == 404
    assert caldav_objects(web, ALICE) == {}


def test_caldav_through_davmail_time_range(web, davmail):
    """A calendar-query REPORT with a time-range: DavMail's FindItem with
    a restriction on the start and end."""
    for i, month in enumerate([1, 3, 5]):
        start = datetime.datetime(2030, month, 10, 9, 0, tzinfo=UTC)
        put_event(web, ALICE, f"range-{i}", f"range-{i}", f"{start:%Y%m%dT%H%M%SZ}",
                  f"{start + datetime.timedelta(hours=1):%Y%m%dT%H%M%SZ}", summary=f"Month {month}")
    cal = caldav_client(davmail).calendar(url=home(davmail))
    found = cal.search(start=datetime.datetime(2030, 2, 1, tzinfo=UTC),
                       end=datetime.datetime(2030, 4, 1, tzinfo=UTC), event=True, expand=False)
    assert [str(e.icalendar_component["SUMMARY"]) for e in found] == ["Month 3"]
    found = cal.search(start=datetime.datetime(2030, 1, 1, tzinfo=UTC),
                       end=datetime.datetime(2030, 4, 1, tzinfo=UTC), event=True, expand=False)
    assert sorted(str(e.icalendar_component["SUMMARY"]) for e in found) == ["Month 1", "Month 3"]


def test_caldav_through_davmail_makes_a_calendar(web, davmail, resolve_locally, no_verify):
    """MKCALENDAR through DavMail: an EWS CreateFolder of class
    IPF.Appointment, a calendar of Outpost's DAV store, and events go into
    it. DavMail's CalDAV has no DELETE of a calendar (it answers 200 and
    does nothing); it deletes calendars over EWS itself, the one it makes
    at every start to learn the zone's VTIMEZONE ("davmailtemp"), so none
    is left. DeleteFolder of the new one over EWS removes it."""
    c = caldav_client(davmail)
    url = f"http://127.0.0.1:{davmail['caldav']}/users/{ALICE}/Team/"
    r = c.mkcalendar(url, '<?xml version="1.0" encoding="utf-8"?><C:mkcalendar xmlns:D="DAV:" '
                          'xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop><D:displayname>Team'
                          '</D:displayname></D:prop></D:set></C:mkcalendar>')
    assert r.status in (200, 201), (r.status, r.raw)

    def calendars():
        r = dav(web, "PROPFIND", f"/dav/calendars/{ALICE}/", None, {"Depth": "1"})
        assert r.status_code == 207, r.text
        return dict((name, href) for href, name in re.findall(
            r"<d:href>([^<]+)</d:href>(?:(?!</d:response>).)*?<d:displayname>([^<]*)</d:displayname>", r.text, re.S))

    cals = calendars()
    assert "Team" in cals and "davmailtemp" not in cals, cals
    team = c.calendar(url=url)
    team.save_event(vevent("team-1", JAN7, JAN7 + datetime.timedelta(hours=1), "Team meeting"))
    r = dav(web, "GET", cals["Team"] + "team-1.ics")
    assert r.status_code == 200 and "SUMMARY:Team meeting" in unfolded(r.text), r.text
    assert [str(e.icalendar_component["SUMMARY"]) for e in team.events()] == ["Team meeting"]
    # Not in the default calendar.
    assert caldav_objects(web, ALICE) == {}
    a = account(web)
    folder = a.msg_folder_root / "Team"
    assert folder.folder_class == "IPF.Appointment"
    folder.delete()
    assert "Team" not in calendars()


def test_caldav_through_davmail_free_busy_of_another_user(web, davmail):
    """A free/busy request POSTed to DavMail's outbox: DavMail asks
    GetUserAvailability, which answers from bob's calendar."""
    busy = datetime.datetime(2030, 1, 8, 13, 0, tzinfo=UTC)
    put_event(web, BOB, "bob-busy", "bob-busy", f"{busy:%Y%m%dT%H%M%SZ}",
              f"{busy + datetime.timedelta(hours=1):%Y%m%dT%H%M%SZ}", summary="Private")
    p = caldav_client(davmail).principal()
    answer = p.freebusy_request(datetime.datetime(2030, 1, 8, tzinfo=UTC),
                                datetime.datetime(2030, 1, 9, tzinfo=UTC), [f"mailto:{BOB}"])
    text = unfolded(answer[f"mailto:{BOB}"].data)
    assert "FREEBUSY" in text and "20300108T130000Z" in text, text
    assert "Private" not in text, text


def test_get_user_configuration_answers_the_users_zone(web):
    """GetUserConfiguration of OWA.UserOptions (DavMail asks it for the
    zone it writes events in): ErrorItemNotFound while no zone is known,
    then the default calendar's zone once a CalDAV client set it."""
    req = soap('<m:GetUserConfiguration><m:UserConfigurationName Name="OWA.UserOptions">'
               '<t:DistinguishedFolderId Id="root"/></m:UserConfigurationName>'
               '<m:UserConfigurationProperties>All</m:UserConfigurationProperties></m:GetUserConfiguration>')

    def ask():
        r = post(web, req)
        assert r.status_code == 200, r.text
        msg = ET.fromstring(r.content).find(f".//{M}GetUserConfigurationResponseMessage")
        return msg.find(f"{M}ResponseCode").text, msg

    code, _ = ask()
    assert code == "ErrorItemNotFound"
    tz = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\n"
          "BEGIN:STANDARD\r\nDTSTART:19701025T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\n"
          "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\nBEGIN:DAYLIGHT\r\nDTSTART:19700329T020000\r\n"
          "TZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\n"
          "END:VTIMEZONE\r\nEND:VCALENDAR\r\n")
    patch = ('<?xml version="1.0" encoding="utf-8"?><d:propertyupdate xmlns:d="DAV:" '
             'xmlns:c="urn:ietf:params:xml:ns:caldav"><d:set><d:prop><c:calendar-timezone>'
             f'{tz}</c:calendar-timezone></d:prop></d:set></d:propertyupdate>')
    r = dav(web, "PROPPATCH", f"/dav/calendars/{ALICE}/personal/", patch.encode(),
            {"Content-Type": "application/xml"})
    assert r.status_code == 207, r.text
    code, msg = ask()
    assert code == "NoError", ET.tostring(msg)
    entries = {e.find(f"{T}DictionaryKey/{T}Value").text: e.find(f"{T}DictionaryValue/{T}Value").text
               for e in msg.iter(f"{T}DictionaryEntry")}
    assert entries == {"timezone": "W. Europe Standard Time"}, entries
    # Another configuration is not kept here.
    r = post(web, req.replace("OWA.UserOptions", "OWA.ViewStateConfiguration"))
    assert "ErrorItemNotFound" in r.text, r.text
