"""WebDAV locks (RFC 4918 class 2) against a running `outpost serve`: a
second user on a shared calendar can neither write through nor remove
another user's lock, and the steps of litmus' `locks` suite that litmus
itself cannot take here (its bodies are plain text, which a calendar
refuses) replayed with iCalendar bodies: owner writes with the token,
conditional PUTs on token and ETag, a lock that does not follow a COPY, a
Depth infinity lock on a calendar covering a new member, and a refresh
through that member."""

import re
import xml.etree.ElementTree as ET

import pytest

from conftest import _backends
from dav_helpers import OTHER, USER, OutpostTarget

D = "{DAV:}"


@pytest.fixture(scope="module", params=_backends())
def dav(request, tmp_path_factory):
    t = OutpostTarget(tmp_path_factory.mktemp("locks"), backend=request.param)
    try:
        yield t
    finally:
        t.close()


def ics(uid, summary="event"):
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20300105T100000Z\r\n"
            f"DTEND:20300105T110000Z\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")


LOCKINFO = ('<?xml version="1.0" encoding="utf-8"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:{scope}/>'
            '</D:lockscope><D:locktype><D:write/></D:locktype><D:owner>{owner}</D:owner></D:lockinfo>')


def lock(dav, path, login=USER, scope="exclusive", depth="0", expect=(200, 201)):
    st, h, body = dav.request("LOCK", path, LOCKINFO.format(scope=scope, owner=f"test {login}"),
                              {"Depth": depth, "Timeout": "Second-600",
                               "Content-Type": "application/xml"}, login=login)
    assert st in expect, (st, body[:500])
    tok = re.fullmatch(r"<(.+)>", h["lock-token"]).group(1)
    assert tok.encode() in body
    return tok


def put(dav, path, uid, login=USER, headers=None, summary="event"):
    h = {"Content-Type": "text/calendar"}
    h.update(headers or {})
    st, hdrs, body = dav.request("PUT", path, ics(uid, summary), h, login=login)
    return st, hdrs.get("etag"), body


def lockdiscovery(dav, path, login=USER):
    st, _, body = dav.request("PROPFIND", path, '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop>'
                              '<D:lockdiscovery/><D:supportedlock/></D:prop></D:propfind>',
                              {"Depth": "0"}, login=login)
    assert st == 207, (st, body[:300])
    root = ET.fromstring(body)
    return [(a.findtext(f"{D}locktoken/{D}href"), a.findtext(f"{D}owner"))
            for a in root.iter(D + "activelock")]


def test_options_lists_class_2(dav):
    st, h, _ = dav.request("OPTIONS", f"/dav/calendars/{USER}/")
    assert st == 200
    assert "2" in [c.strip() for c in h["dav"].split(",")], h["dav"]
    assert "LOCK" in h["allow"] and "UNLOCK" in h["allow"]


def test_second_user_cannot_write_through_or_unlock_anothers_lock(dav):
    cal = f"/dav/calendars/{OTHER}/personal/"
    ev = cal + "locked.ics"
    assert put(dav, ev, "locked", login=OTHER)[0] == 201
    dav.server.cli("share", "add", OTHER, "calendars/personal", USER, "--rights", "read-write")
    # The user may write the shared calendar...
    assert put(dav, cal + "mine.ics", "mine")[0] == 201
    # ...until its owner locks an event.
    tok = lock(dav, ev, login=OTHER)
    assert lockdiscovery(dav, ev, login=USER) == [(tok, f"test {OTHER}")]
    for headers in ({}, {"If": f"(<{tok}>)"}, {"If": f"<{dav.url(ev)}> (<{tok}>)"}):
        st, _, body = put(dav, ev, "locked", headers=headers, summary="hijack")
        assert st == 423 and b"lock-token-submitted" in body, (headers, st, body)
        st, _, _ = dav.request("DELETE", ev, headers=headers)
        assert st == 423
    st, _, body = dav.request("UNLOCK", ev, headers={"Lock-Token": f"<{tok}>"})
    assert st == 403, body
    st, _, body = dav.request("LOCK", ev, LOCKINFO.format(scope="shared", owner="x"),
                              {"Depth": "0", "Content-Type": "application/xml"})
    assert st == 423 and b"no-conflicting-lock" in body
    # A refresh of someone else's lock is refused too.
    st, _, _ = dav.request("LOCK", ev, headers={"If": f"(<{tok}>)"})
    assert st == 403
    st, _, body = dav.request("GET", ev, login=OTHER)
    assert b"SUMMARY:hijack" not in body
    # The owner writes with the token, unlocks, and the user writes again.
    assert put(dav, ev, "locked", login=OTHER, headers={"If": f"(<{tok}>)"}, summary="owner")[0] == 204
    st, _, _ = dav.request("UNLOCK", ev, headers={"Lock-Token": f"<{tok}>"}, login=OTHER)
    assert st == 204
    assert put(dav, ev, "locked", summary="after")[0] == 204
    # The user's own lock binds the owner the same way; the calendar's
    # owner may break it (UNLOCK), not write through it.
    tok = lock(dav, ev, login=USER)
    assert put(dav, ev, "locked", login=OTHER, headers={"If": f"(<{tok}>)"})[0] == 423
    st, _, _ = dav.request("UNLOCK", ev, headers={"Lock-Token": f"<{tok}>"}, login=OTHER)
    assert st == 204
    assert put(dav, ev, "locked", login=OTHER, summary="owner again")[0] == 204
    dav.server.cli("share", "remove", OTHER, "calendars/personal", USER)
    # Without a share there is nothing to lock.
    st, _, _ = dav.request("LOCK", ev, LOCKINFO.format(scope="exclusive", owner="x"),
                           {"Content-Type": "application/xml"})
    assert st == 403


def test_litmus_locks_steps_with_calendar_objects(dav):
    cal = f"/dav/calendars/{USER}/personal/"
    res, res2 = cal + "lockme.ics", cal + "notlocked.ics"
    assert put(dav, res, "lockme")[0] == 201
    assert put(dav, res2, "notlocked")[0] == 201
    tok = lock(dav, res)
    # owner_modify: the owner writes with the token (neon tags it).
    st, etag, _ = put(dav, res, "lockme", headers={"If": f"<{dav.url(res)}> (<{tok}>)"}, summary="v2")
    assert st == 204 and etag
    # notowner_modify (the same user without the token): 423 for each.
    assert put(dav, res, "lockme", summary="v3")[0] == 423
    for m, h in (("DELETE", {}), ("MOVE", {"Destination": cal + "whocares.ics"})):
        assert dav.request(m, res, headers=h)[0] == 423, m
    assert dav.request("COPY", res2, headers={"Destination": dav.url(res), "Overwrite": "T"})[0] == 423
    # cond_put / fail_cond_put / cond_put_with_not / cond_put_corrupt_token
    # / complex_cond_put / fail_complex_cond_put.
    assert put(dav, res, "lockme", headers={"If": f"(<{tok}> [{etag}])"}, summary="v3")[0] == 204
    etag = dav.request("HEAD", res)[1]["etag"]
    assert put(dav, res, "lockme", headers={"If": f"(<DAV:no-lock> [{etag}])"})[0] == 412
    assert put(dav, res, "lockme", headers={"If": f"(<{tok}>) (Not <DAV:no-lock>)"}, summary="v4")[0] == 204
    assert put(dav, res, "lockme", headers={"If": f"(<{tok}x>) (Not <DAV:no-lock>)"})[0] == 423
    etag = dav.request("HEAD", res)[1]["etag"]
    hdr = f"(<{tok}> [{etag}]) (Not <DAV:no-lock> [{etag}])"
    assert put(dav, res, "lockme", headers={"If": hdr}, summary="v5")[0] == 204
    bad = etag[:-3] + chr(ord(etag[-3]) + 1) + etag[-2:]
    hdr = f"(<{tok}> [{bad}]) (Not <DAV:no-lock> [{bad}])"
    assert put(dav, res, "lockme", headers={"If": hdr})[0] == 412
    # copy: the lock does not follow a COPY (into another calendar: one
    # UID per calendar).
    st, _, _ = dav.request("MKCALENDAR", f"/dav/calendars/{USER}/copies/")
    assert st == 201
    dest = f"/dav/calendars/{USER}/copies/lockme.ics"
    assert dav.request("COPY", res, headers={"Destination": dav.url(dest)})[0] == 201
    assert lockdiscovery(dav, dest) == []
    assert dav.request("DELETE", dest)[0] == 204
    assert dav.request("UNLOCK", res, headers={"Lock-Token": f"<{tok}>"})[0] == 204
    assert put(dav, res, "lockme", headers={"If": "(<DAV:no-lock>)"})[0] == 412
    # lock_collection / owner_modify / refresh / indirect_refresh on a
    # Depth infinity lock of a calendar.
    coll = f"/dav/calendars/{USER}/lockcoll/"
    assert dav.request("MKCALENDAR", coll)[0] == 201
    tok = lock(dav, coll, depth="infinity")
    member = coll + "lockme.ics"
    assert put(dav, member, "member")[0] == 423
    assert put(dav, member, "member", headers={"If": f"<{dav.url(coll)}> (<{tok}>)"})[0] == 201
    assert lockdiscovery(dav, member) == [(tok, f"test {USER}")]
    for path in (coll, member):
        st, _, body = dav.request("LOCK", path, headers={"If": f"(<{tok}>)", "Timeout": "Second-300"})
        assert st == 200 and tok.encode() in body, (path, st, body[:300])
    assert dav.request("UNLOCK", coll, headers={"Lock-Token": f"<{tok}>"})[0] == 204
    # unmapped_lock: 201 and a locked empty resource until unlocked.
    unmapped = cal + "unmapped_url.ics"
    tok = lock(dav, unmapped, expect=(201,))
    st, _, body = dav.request("GET", unmapped)
    assert st == 200 and body == b""
    assert dav.request("UNLOCK", unmapped, headers={"Lock-Token": f"<{tok}>"})[0] == 204
    assert dav.request("GET", unmapped)[0] == 404
