"""CalDAV scheduling end to end (issue 15, item 5; RFC 6638 implicit
scheduling, iTIP, iMIP): the `caldav` library as the clients, an aiosmtpd
sink standing in for the outside attendee's mail server (`[queue] test_mx`).

The organizer (USER) PUTs an event inviting a hosted user by an alias of
hers (bee@ is OTHER's alias) and an outside address. The hosted attendee
finds it in her calendar with PARTSTAT=NEEDS-ACTION, the outside one gets
an iMIP REQUEST by mail; the hosted attendee's acceptance (a PUT with
PARTSTAT=ACCEPTED) shows in the organizer's copy; the organizer's outbox
answers free/busy of the attendee; deleting the event cancels it.
"""

import time
import uuid
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone
from email import message_from_bytes, policy

import pytest

from conftest import Server, _backends, free_port
from dav_helpers import OTHER, USER, DavTarget, same_path

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")

ALIAS = "bee@example.test"
OUTSIDE = "guest@outside.example"
THIRD = "third@example.test"  # schedules by her own client (SCHEDULE-AGENT=CLIENT)
ROOM = "room7@example.test"  # a room (`outpost user set --type room`)
C = "{urn:ietf:params:xml:ns:caldav}"
D = "{DAV:}"
UTC = timezone.utc


class Sink:
    def __init__(self):
        self.messages = []  # (mail_from, [rcpts], bytes)

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        return "250 2.0.0 queued"


class SchedTarget(DavTarget):
    kind = "outpost"
    root = "/dav/"

    def __init__(self, tmp, backend, sink_port):
        self.server = Server(tmp, backend=backend, listeners=["http"], extra_config=(
            "[http]\nallow_plaintext_on_loopback = true\n"
            f'[queue]\nretry = ["1s"]\ntest_mx = {{ "outside.example" = "127.0.0.1:{sink_port}" }}\n'))
        self.server.add_user(USER, name="Test User")
        self.server.add_user(OTHER, name="Other User")
        self.server.add_user(THIRD, name="Third User")
        self.server.add_user(ROOM, name="Room 7")
        self.server.cli("alias", "add", ALIAS, OTHER)
        self.server.cli("user", "set", ROOM, "--type", "room")
        self.server.start()
        super().__init__("127.0.0.1", self.server.port("http"))
        self.passwords[THIRD] = self.passwords[USER]

    def close(self):
        self.server.close()


@pytest.fixture(scope="module", params=_backends())
def sched(request, tmp_path_factory):
    sink = Sink()
    c = aiosmtpd_controller.Controller(sink, hostname="127.0.0.1", port=free_port())
    c.start()
    t = SchedTarget(tmp_path_factory.mktemp("sched"), request.param, c.port)
    try:
        yield t, sink
    finally:
        t.close()
        c.stop()


def invitation(uid, start, summary="planning"):
    f = "%Y%m%dT%H%M%SZ"
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//outpost-tests//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{start.strftime(f)}\r\n"
            f"DTEND:{(start + timedelta(hours=1)).strftime(f)}\r\nSUMMARY:{summary}\r\nSEQUENCE:0\r\n"
            f"ORGANIZER;CN=Test User:mailto:{USER}\r\n"
            f"ATTENDEE;CN=Test User;PARTSTAT=ACCEPTED;ROLE=CHAIR:mailto:{USER}\r\n"
            f"ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{ALIAS}\r\n"
            f"ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{OUTSIDE}\r\n"
            "END:VEVENT\r\nEND:VCALENDAR\r\n")


def wait_for(pred, what, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def unfold(ics):
    return ics.replace("\r\n ", "").replace("\n ", "")


def attendee_partstat(ics, address):
    for line in unfold(ics).splitlines():
        if line.upper().startswith("ATTENDEE") and line.lower().endswith("mailto:" + address):
            for p in line.split(":", 1)[0].split(";"):
                if p.upper().startswith("PARTSTAT="):
                    return p.split("=", 1)[1].upper()
    return None


def personal(client):
    return client.principal().calendar(cal_id="personal")


def copy_of(cal, uid):
    try:
        return cal.event_by_uid(uid)
    except Exception:  # caldav raises NotFoundError
        return None


def test_principal_scheduling_properties(sched):
    dav, _ = sched
    p = dav.caldav_client(USER).principal()
    assert same_path(p.schedule_inbox().url, f"/dav/scheduling/{USER}/inbox/"), p.schedule_inbox().url
    assert same_path(p.schedule_outbox().url, f"/dav/scheduling/{USER}/outbox/"), p.schedule_outbox().url
    st, h, _ = dav.request("OPTIONS", "/dav/")
    assert st == 200 and "calendar-auto-schedule" in h.get("dav", ""), h
    # the inbox names the calendar invitations are filed into
    body = ('<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
            '<D:prop><D:resourcetype/><C:schedule-default-calendar-URL/></D:prop></D:propfind>')
    st, _, data = dav.request("PROPFIND", f"/dav/scheduling/{USER}/inbox/", body, {"Depth": "0"})
    assert st == 207, (st, data[:300])
    root = ET.fromstring(data)
    assert root.find(f".//{D}resourcetype/{C}schedule-inbox") is not None, data
    href = root.findtext(f".//{C}schedule-default-calendar-URL/{D}href")
    assert same_path(href, f"/dav/calendars/{USER}/personal/"), href
    # another user's outbox is not ours
    st, _, _ = dav.request("PROPFIND", f"/dav/scheduling/{OTHER}/outbox/", body, {"Depth": "0"})
    assert st == 403, st


def test_invite_reply_free_busy_cancel(sched):
    dav, sink = sched
    a, b = dav.caldav_client(USER), dav.caldav_client(OTHER)
    uid = f"sched-{uuid.uuid4().hex[:10]}"
    start = datetime(2032, 5, 6, 9, tzinfo=UTC)
    personal(a).save_event(invitation(uid, start))

    # the hosted attendee, invited by her alias, has it in her calendar
    ev = wait_for(lambda: copy_of(personal(b), uid), "the attendee's copy", timeout=5)
    assert attendee_partstat(ev.data, ALIAS) == "NEEDS-ACTION", ev.data

    # the outside attendee gets an iMIP REQUEST through the queue
    def imip():
        return [m for m in sink.messages if OUTSIDE in m[1]]
    mails = wait_for(imip, "the iMIP mail at the sink")
    msg = message_from_bytes(mails[0][2], policy=policy.default)
    assert USER in msg["From"], msg["From"]
    parts = [p for p in msg.walk() if p.get_content_type() == "text/calendar"]
    assert parts, msg.as_string()[:500]
    assert parts[0].get_param("method", "").upper() == "REQUEST"
    assert uid in parts[0].get_content()

    # she accepts: her client PUTs her copy with PARTSTAT=ACCEPTED
    ev.data = ev.data.replace(
        f"PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{ALIAS}", f"PARTSTAT=ACCEPTED:mailto:{ALIAS}")
    assert attendee_partstat(ev.data, ALIAS) == "ACCEPTED", ev.data
    # An attendee does not change SEQUENCE (RFC 5546 §2.1.4); the caldav
    # library bumps it by default, which the server copes with
    # (test_an_attendee_raising_sequence_still_gets_the_move_and_the_cancel).
    ev.save(increase_seqno=False)
    org = copy_of(personal(a), uid)
    assert attendee_partstat(org.data, ALIAS) == "ACCEPTED", org.data
    assert attendee_partstat(org.data, OUTSIDE) == "NEEDS-ACTION", org.data

    # free/busy of the attendee through the organizer's outbox (RFC 6638 §5)
    f = "%Y%m%dT%H%M%SZ"
    req = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//outpost-tests//EN\r\nMETHOD:REQUEST\r\n"
           "BEGIN:VFREEBUSY\r\nUID:fb-1\r\nDTSTAMP:20260101T000000Z\r\n"
           f"DTSTART:{(start - timedelta(days=1)).strftime(f)}\r\nDTEND:{(start + timedelta(days=1)).strftime(f)}\r\n"
           f"ORGANIZER:mailto:{USER}\r\nATTENDEE:mailto:{OTHER}\r\nATTENDEE:mailto:{OUTSIDE}\r\n"
           "END:VFREEBUSY\r\nEND:VCALENDAR\r\n")
    st, h, data = dav.request("POST", f"/dav/scheduling/{USER}/outbox/", req,
                              {"Content-Type": "text/calendar; charset=utf-8"})
    assert st == 200, (st, data[:500])
    root = ET.fromstring(data)
    assert root.tag == C + "schedule-response", data[:300]
    answers = {r.findtext(f"{C}recipient/{D}href").lower(): r for r in root.findall(C + "response")}
    mine = answers[f"mailto:{OTHER}"]
    assert mine.findtext(C + "request-status").startswith("2.0"), data
    fb = mine.findtext(C + "calendar-data")
    busy = f"{start.strftime(f)}/{(start + timedelta(hours=1)).strftime(f)}"
    assert "FREEBUSY" in fb and busy in fb.replace("\r\n ", ""), fb
    assert answers[f"mailto:{OUTSIDE}"].findtext(C + "request-status").startswith("3.7"), data
    # only the caller may be the organizer of a free/busy request
    st, _, data = dav.request("POST", f"/dav/scheduling/{USER}/outbox/", req.replace(f"ORGANIZER:mailto:{USER}", f"ORGANIZER:mailto:{OTHER}"),
                              {"Content-Type": "text/calendar"})
    assert st == 403 and b"organizer-allowed" in data, (st, data)
    st, _, _ = dav.request("POST", f"/dav/scheduling/{USER}/outbox/", "BEGIN:VCALENDAR\r\nnonsense",
                           {"Content-Type": "text/calendar"})
    assert st == 400, st

    # the organizer deletes the event: the attendee's copy is cancelled,
    # the outside attendee gets a CANCEL
    org.delete()
    gone = copy_of(personal(b), uid)
    assert gone is not None and "STATUS:CANCELLED" in gone.data, gone and gone.data

    def cancel():
        return [m for m in imip() if b"method=CANCEL" in m[2] or b"METHOD:CANCEL" in m[2]]
    wait_for(cancel, "the iMIP CANCEL at the sink")


def param(ics, address, name):
    """Parameter NAME of the ATTENDEE line of ADDRESS."""
    for line in unfold(ics).splitlines():
        if line.upper().startswith("ATTENDEE") and line.lower().endswith("mailto:" + address):
            for p in line.split(":", 1)[0].split(";"):
                if p.upper().startswith(name + "="):
                    return p.split("=", 1)[1].strip('"').upper()
    return None


def set_partstat(ics, address, partstat):
    out = []
    for line in unfold(ics).splitlines():
        if line.upper().startswith("ATTENDEE") and line.lower().endswith("mailto:" + address):
            head, value = line.split(":", 1)
            parts = [p for p in head.split(";") if not p.upper().startswith(("PARTSTAT=", "RSVP="))]
            line = ";".join(parts + [f"PARTSTAT={partstat}"]) + ":" + value
        out.append(line)
    return "\r\n".join(out) + "\r\n"


def sequence(ics):
    for line in unfold(ics).splitlines():
        if line.upper().startswith("SEQUENCE:"):
            return int(line.split(":", 1)[1])
    return 0


def obj_path(ev):
    from urllib.parse import urlsplit
    return urlsplit(str(ev.url)).path


def test_an_attendee_raising_sequence_still_gets_the_move_and_the_cancel(sched):
    """RFC 5546 §2.1.5: the organizer's SEQUENCE orders the organizer's
    messages; the attendee's client raising it on her own copy (the caldav
    library does on every save, Lightning and Apple in some versions) does
    not make her copy newer than the organizer's next update."""
    dav, _ = sched
    a, b = dav.caldav_client(USER), dav.caldav_client(OTHER)
    uid = f"seq-{uuid.uuid4().hex[:10]}"
    start = datetime(2032, 6, 7, 9, tzinfo=UTC)
    personal(a).save_event(invitation(uid, start))
    ev = wait_for(lambda: copy_of(personal(b), uid), "the attendee's copy", timeout=5)
    # she answers twice, her client raising SEQUENCE each time
    for answer in ("ACCEPTED", "TENTATIVE"):
        ev.data = set_partstat(ev.data, ALIAS, answer)
        ev.save()
        ev.load()
    org = copy_of(personal(a), uid)
    assert attendee_partstat(org.data, ALIAS) == "TENTATIVE", org.data
    assert sequence(ev.data) > sequence(org.data) + 1, (ev.data, org.data)
    # the organizer moves the event (his client raises SEQUENCE by one)
    f = "%Y%m%dT%H%M%SZ"
    later = start + timedelta(days=1, hours=2)
    org.data = (org.data.replace(start.strftime(f), later.strftime(f))
                .replace((start + timedelta(hours=1)).strftime(f), (later + timedelta(hours=1)).strftime(f)))
    org.save()
    mine = copy_of(personal(b), uid)
    assert f"DTSTART:{later.strftime(f)}" in mine.data, mine.data
    # ... and deletes it: her copy is cancelled
    copy_of(personal(a), uid).delete()
    gone = copy_of(personal(b), uid)
    assert gone is not None and "STATUS:CANCELLED" in gone.data, gone.data


def test_schedule_tag_and_schedule_status(sched):
    """RFC 6638 §3.2.10, §8: Schedule-Tag on GET/PUT and as a property,
    unchanged by an answer merged into the organizer's copy or an
    attendee saving her answer, If-Schedule-Tag-Match honoured;
    §3.2.9: SCHEDULE-STATUS in the organizer's copy; §7.1: an attendee
    with SCHEDULE-AGENT=CLIENT gets nothing from the server."""
    dav, _ = sched
    a, b = dav.caldav_client(USER), dav.caldav_client(OTHER)
    uid = f"tag-{uuid.uuid4().hex[:10]}"
    start = datetime(2032, 7, 8, 9, tzinfo=UTC)
    ics = invitation(uid, start).replace(
        "END:VEVENT", f"ATTENDEE;SCHEDULE-AGENT=CLIENT;PARTSTAT=NEEDS-ACTION:mailto:{THIRD}\r\n"
        f"ATTENDEE;PARTSTAT=NEEDS-ACTION:mailto:nobody@example.test\r\nEND:VEVENT")
    ev = personal(a).save_event(ics)
    assert ev.schedule_tag, "the PUT answers with a Schedule-Tag"
    path = obj_path(ev)
    st, h, data = dav.request("GET", path)
    assert st == 200 and h.get("schedule-tag"), h
    tag0 = h["schedule-tag"]
    read = data.decode()  # the organizer's client's version
    assert param(data.decode(), ALIAS, "SCHEDULE-STATUS") == "1.2", data
    assert param(data.decode(), OUTSIDE, "SCHEDULE-STATUS") == "1.1", data
    assert param(data.decode(), "nobody@example.test", "SCHEDULE-STATUS") == "3.7", data
    assert param(data.decode(), THIRD, "SCHEDULE-STATUS") is None, data
    st, _, data = dav.request("GET", f"/dav/calendars/{THIRD}/personal/{uid}.ics", login=THIRD)
    assert st == 404, (st, data[:300], "SCHEDULE-AGENT=CLIENT: the server sends her nothing")
    body = ('<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
            '<D:prop><C:schedule-tag/><D:getetag/></D:prop></D:propfind>')
    st, _, pf = dav.request("PROPFIND", path, body, {"Depth": "0"})
    assert st == 207 and ET.fromstring(pf).findtext(f".//{C}schedule-tag") == tag0, pf
    etag0 = h["etag"]

    # she accepts, her client raising SEQUENCE: her tag stays, the
    # organizer's copy changes (ETag) but not its tag
    mine = wait_for(lambda: copy_of(personal(b), uid), "the attendee's copy", timeout=5)
    mine.load()
    her_tag = mine.schedule_tag
    assert her_tag, "the attendee's copy has a Schedule-Tag"
    mine.data = set_partstat(mine.data, ALIAS, "ACCEPTED")
    mine.save()
    mine.load()
    assert mine.schedule_tag == her_tag
    st, h, data = dav.request("GET", path)
    assert attendee_partstat(data.decode(), ALIAS) == "ACCEPTED", data
    assert h["etag"] != etag0 and h["schedule-tag"] == tag0, h

    # a wrong tag: 412; the right one over the stale version: written, and
    # her answer merged in
    stale = read.replace("SUMMARY:planning", "SUMMARY:planning (room 4)")
    assert attendee_partstat(stale, ALIAS) == "NEEDS-ACTION"
    hdr = {"Content-Type": "text/calendar; charset=utf-8"}
    st, _, _ = dav.request("PUT", path, stale, {**hdr, "If-Schedule-Tag-Match": '"nope"'})
    assert st == 412, st
    st, h, _ = dav.request("PUT", path, stale, {**hdr, "If-Schedule-Tag-Match": tag0})
    assert st in (200, 204), st
    assert "etag" not in h, "what is stored is not what was sent: no ETag (RFC 4791 §5.3.4)"
    new_tag = h.get("schedule-tag")
    assert new_tag and new_tag != tag0, "a new SUMMARY is a change attendees see"
    st, h, data = dav.request("GET", path)
    assert "room 4" in data.decode() and attendee_partstat(data.decode(), ALIAS) == "ACCEPTED", data
    # her copy got the change: a new tag there too
    mine.load()
    assert "room 4" in mine.data and mine.schedule_tag != her_tag, mine.data
    # DELETE honours If-Schedule-Tag-Match too (§8.3): a stale tag is 412
    # and deletes nothing; the current one deletes.
    st, _, _ = dav.request("DELETE", path, b"", {"If-Schedule-Tag-Match": tag0})
    assert st == 412, st
    assert dav.request("GET", path)[0] == 200
    st, _, _ = dav.request("DELETE", path, b"", {"If-Schedule-Tag-Match": new_tag})
    assert st == 204, st
    assert dav.request("GET", path)[0] == 404


def test_calendar_user_type_comes_from_the_directory(sched):
    dav, _ = sched
    body = ('<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
            '<D:prop><C:calendar-user-type/></D:prop></D:propfind>')
    for login, want in ((USER, "INDIVIDUAL"), (ROOM, "ROOM")):
        st, _, data = dav.request("PROPFIND", f"/dav/principals/users/{login}/", body, {"Depth": "0"})
        assert st == 207, (st, data[:300])
        assert ET.fromstring(data).findtext(f".//{C}calendar-user-type") == want, data


def test_schedule_reply_f_sends_the_organizer_nothing(sched):
    """RFC 6638 §8.1: an attendee's PUT or DELETE with `Schedule-Reply: F`
    sends no reply; without it her answer reaches the organizer's copy."""
    dav, _ = sched
    a, b = dav.caldav_client(USER), dav.caldav_client(OTHER)
    uid = f"reply-{uuid.uuid4().hex[:10]}"
    personal(a).save_event(invitation(uid, datetime(2032, 9, 1, 9, tzinfo=UTC)))
    mine = wait_for(lambda: copy_of(personal(b), uid), "the attendee's copy", timeout=5)
    path = obj_path(mine)
    accepted = mine.data.replace(f"PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{ALIAS}",
                                 f"PARTSTAT=ACCEPTED:mailto:{ALIAS}")
    assert accepted != mine.data
    hdr = {"Content-Type": "text/calendar; charset=utf-8"}
    st, _, _ = dav.request("PUT", path, accepted, {**hdr, "Schedule-Reply": "F"}, login=OTHER)
    assert st in (201, 204), st
    time.sleep(0.5)
    org = copy_of(personal(a), uid)
    assert attendee_partstat(org.data, ALIAS) == "NEEDS-ACTION", "no reply was sent"
    # Deleting her copy with Schedule-Reply: F declines nothing either.
    st, _, _ = dav.request("DELETE", path, b"", {"Schedule-Reply": "F"}, login=OTHER)
    assert st == 204, st
    time.sleep(0.5)
    org = copy_of(personal(a), uid)
    assert attendee_partstat(org.data, ALIAS) == "NEEDS-ACTION", org.data
