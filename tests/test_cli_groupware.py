"""`outpost calendar` and `outpost contacts` (issue 15, item 9): import splits
a file into one object per UID and reports what it skipped; export gives back
what was stored; default collections are named as SOGo names them."""

import pytest

from conftest import Server, pg_available

ICS = """BEGIN:VCALENDAR\r
VERSION:2.0\r
PRODID:-//Mozilla.org/NONSGML Mozilla Calendar V1.1//EN\r
METHOD:PUBLISH\r
BEGIN:VTIMEZONE\r
TZID:Europe/Berlin\r
BEGIN:STANDARD\r
DTSTART:19701025T030000\r
TZOFFSETFROM:+0200\r
TZOFFSETTO:+0100\r
RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r
END:STANDARD\r
BEGIN:DAYLIGHT\r
DTSTART:19700329T020000\r
TZOFFSETFROM:+0100\r
TZOFFSETTO:+0200\r
RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r
END:DAYLIGHT\r
END:VTIMEZONE\r
BEGIN:VEVENT\r
UID:weekly@example.test\r
DTSTAMP:20260101T000000Z\r
DTSTART;TZID=Europe/Berlin:20260105T100000\r
DTEND;TZID=Europe/Berlin:20260105T110000\r
RRULE:FREQ=WEEKLY;COUNT=4\r
EXDATE;TZID=Europe/Berlin:20260112T100000\r
SUMMARY:Weekly\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:weekly@example.test\r
RECURRENCE-ID;TZID=Europe/Berlin:20260119T100000\r
DTSTAMP:20260101T000000Z\r
DTSTART;TZID=Europe/Berlin:20260120T150000\r
DTEND;TZID=Europe/Berlin:20260120T160000\r
SUMMARY:Weekly (moved)\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:single@example.test\r
DTSTAMP:20260101T000000Z\r
DTSTART;VALUE=DATE:20260301\r
SUMMARY:All day\r
END:VEVENT\r
BEGIN:VEVENT\r
UID:bad-zone@example.test\r
DTSTAMP:20260101T000000Z\r
DTSTART;TZID=Mars/Olympus:20260301T100000\r
SUMMARY:Nowhere\r
END:VEVENT\r
BEGIN:VEVENT\r
DTSTAMP:20260101T000000Z\r
DTSTART:20260301T100000Z\r
SUMMARY:No UID\r
END:VEVENT\r
END:VCALENDAR\r
"""

VCF = """BEGIN:VCARD\r
VERSION:3.0\r
UID:john@example.test\r
FN:John Doe\r
N:Doe;John;;;\r
EMAIL;TYPE=INTERNET:john@example.test\r
END:VCARD\r
BEGIN:VCARD\r
VERSION:4.0\r
UID:urn:uuid:team\r
KIND:group\r
FN:Team\r
MEMBER:urn:uuid:x\r
END:VCARD\r
BEGIN:VCARD\r
VERSION:3.0\r
FN:Nobody\r
END:VCARD\r
"""


def backends():
    return ["sqlite", "postgres"] if pg_available() else ["sqlite"]


@pytest.fixture(params=backends())
def srv(request, tmp_path):
    s = Server(tmp_path, backend=request.param)
    try:
        s.add_user("user@example.test", name="Test User")
        yield s
    finally:
        s.close()


def test_default_collections_as_sogo_names_them(srv):
    out = srv.cli("calendar", "list", "user@example.test").stdout
    assert "personal\tPersonal Calendar\t0 object(s)\tVEVENT" in out
    assert "tasks\tTasks\t0 object(s)\tVTODO" in out
    out = srv.cli("contacts", "list", "user@example.test").stdout
    assert "personal\tPersonal Address Book\t0 object(s)" in out


def test_calendar_import_export_round_trip(srv, tmp_path):
    f = tmp_path / "in.ics"
    f.write_text(ICS, newline="")
    r = srv.cli("calendar", "import", "user@example.test", str(f))
    assert "imported 2 object(s)" in r.stdout, r.stdout
    assert "skipped 2" in r.stdout
    assert "bad-zone@example.test" in r.stdout and "Mars/Olympus" in r.stdout
    assert "without UID" in r.stdout
    assert "personal\tPersonal Calendar\t2 object(s)" in srv.cli("calendar", "list", "user@example.test").stdout
    # Importing again replaces, it does not duplicate.
    r = srv.cli("calendar", "import", "user@example.test", str(f))
    assert "imported 2 object(s)" in r.stdout
    assert "2 object(s)" in srv.cli("calendar", "list", "user@example.test").stdout
    out = tmp_path / "out.ics"
    srv.cli("calendar", "export", "user@example.test", str(out))
    text = out.read_text()
    assert text.count("BEGIN:VCALENDAR") == 1
    assert text.count("BEGIN:VTIMEZONE") == 1
    assert text.count("BEGIN:VEVENT") == 3  # master, override, all-day
    assert "RECURRENCE-ID;TZID=Europe/Berlin:20260119T100000" in text
    assert "METHOD" not in text
    # The export imports cleanly into another calendar of the same user.
    r = srv.cli("calendar", "import", "user@example.test", str(out), "--to", "tasks")
    # The task list takes no events: each is reported.
    assert "imported 0 object(s)" in r.stdout and "does not support VEVENT" in r.stdout


def test_contacts_import_export(srv, tmp_path):
    f = tmp_path / "in.vcf"
    f.write_text(VCF, newline="")
    r = srv.cli("contacts", "import", "user@example.test", str(f))
    assert "imported 2 object(s)" in r.stdout, r.stdout
    assert 'vCard "Nobody" has no UID' in r.stdout
    text = srv.cli("contacts", "export", "user@example.test").stdout
    assert text.count("BEGIN:VCARD") == 2
    assert "john@example.test" in text and "MEMBER:urn:uuid:x" in text


def test_errors_are_one_clear_line(srv, tmp_path):
    r = srv.cli("calendar", "list", "nobody@example.test", check=False)
    assert r.returncode != 0 and "nobody@example.test" in r.stderr
    r = srv.cli("calendar", "import", "user@example.test", str(tmp_path / "missing.ics"), check=False)
    assert r.returncode != 0 and "missing.ics" in r.stderr
    r = srv.cli("calendar", "export", "user@example.test", "--from", "nope", check=False)
    assert r.returncode != 0 and "nope" in r.stderr
