"""The Global Address List and sharing over DAV (issue 15, items 7 and 8),
against a running `outpost serve`: the GAL in every user's address book
home, read-only, searchable, kept current from the directory (a CLI change
in another process shows up as a sync-collection delta), one GAL per
domain; `outpost share` giving read and read-write on calendars, and
free/busy visible to the users of the same domain without a share."""

import time
import uuid
import xml.etree.ElementTree as ET

import pytest

from conftest import _backends
from dav_helpers import CARDDAV_NS, OTHER, USER, DavTarget, OutpostTarget

D = "{DAV:}"
CARD = "{" + CARDDAV_NS + "}"
C = "{urn:ietf:params:xml:ns:caldav}"


@pytest.fixture(scope="module", params=_backends())
def dav(request, tmp_path_factory):
    t = OutpostTarget(tmp_path_factory.mktemp("gal"), backend=request.param)
    try:
        yield t
    finally:
        t.close()


def responses(body):
    """{href: (status or None, {tag: element}, {tag: propstat status})}"""
    root = ET.fromstring(body)
    assert root.tag == D + "multistatus", body[:300]
    out = {}
    for r in root.findall(D + "response"):
        href = r.findtext(D + "href")
        props, stats = {}, {}
        for ps in r.findall(D + "propstat"):
            st = ps.findtext(D + "status")
            for p in ps.find(D + "prop"):
                props[p.tag] = p
                stats[p.tag] = st
        out[href] = (r.findtext(D + "status"), props, stats)
    return out


def gal_path(login):
    return f"/dav/addressbooks/{login}/gal/"


QUERY_ALL = ('<?xml version="1.0"?><C:addressbook-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav">'
             '<D:prop><D:getetag/><C:address-data/></D:prop></C:addressbook-query>')


def query(text):
    """What Apple Contacts and Evolution send for a server-side search:
    anyof over names and addresses, contains."""
    tm = f'<C:text-match collation="i;unicode-casemap" match-type="contains">{text}</C:text-match>'
    return ('<?xml version="1.0"?><C:addressbook-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:carddav">'
            '<D:prop><D:getetag/><C:address-data/></D:prop><C:filter test="anyof">'
            f'<C:prop-filter name="FN">{tm}</C:prop-filter><C:prop-filter name="EMAIL">{tm}</C:prop-filter>'
            f'<C:prop-filter name="NICKNAME">{tm}</C:prop-filter></C:filter></C:addressbook-query>')


def cards(dav, body, login=USER, path=None):
    st, _, data = dav.request("REPORT", path or gal_path(login), body, {"Depth": "1"}, login=login)
    assert st == 207, (st, data[:300])
    return {h: p[CARD + "address-data"].text for h, (_, p, _) in responses(data).items()
            if CARD + "address-data" in p}


def wait_for(pred, what, timeout=20):
    deadline = time.time() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


def sync(dav, token, login=USER):
    body = ('<?xml version="1.0"?><D:sync-collection xmlns:D="DAV:">'
            f'<D:sync-token>{token}</D:sync-token><D:sync-level>1</D:sync-level>'
            '<D:prop><D:getetag/></D:prop></D:sync-collection>')
    st, _, data = dav.request("REPORT", gal_path(login), body, login=login)
    assert st == 207, (st, data[:300])
    root = ET.fromstring(data)
    return root.findtext(D + "sync-token"), responses(data)


def test_gal_in_every_home_with_directory_attributes(dav):
    dav.server.cli("user", "set", USER, "--title", "CTO", "--department", "Board",
                   "--company", "Example Inc.", "--phone", "+1 555 0100")
    st, _, data = dav.request("PROPFIND", f"/dav/addressbooks/{USER}/",
                              '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:displayname/>'
                              '<D:resourcetype/><D:current-user-privilege-set/></D:prop></D:propfind>',
                              {"Depth": "1"})
    assert st == 207, data[:300]
    listed = responses(data)
    assert gal_path(USER) in listed, list(listed)
    _, props, _ = listed[gal_path(USER)]
    assert props[D + "displayname"].text == "Global Address List"
    assert props[D + "resourcetype"].find(CARD + "addressbook") is not None
    privs = {p[0].tag for p in props[D + "current-user-privilege-set"]}
    assert D + "read" in privs and D + "write" not in privs and D + "bind" not in privs, privs
    # The refresh after the CLI change (another process) brings the title.
    got = wait_for(lambda: [c for c in cards(dav, QUERY_ALL).values() if "TITLE:CTO" in c],
                   "the title in the GAL")
    card = got[0]
    assert "FN:Test User" in card and USER in card, card
    assert "Example Inc." in card and "Board" in card and "+1 555 0100" in card, card
    everyone = cards(dav, QUERY_ALL)
    assert any(OTHER in c for c in everyone.values()), everyone
    # The other user sees the same list in their own home.
    assert any(USER in c for c in cards(dav, QUERY_ALL, login=OTHER).values())


def test_gal_search(dav):
    wait_for(lambda: len(cards(dav, QUERY_ALL)) >= 2, "two entries")
    hits = cards(dav, query("Othe"))
    assert len(hits) == 1 and OTHER in next(iter(hits.values())), hits
    hits = cards(dav, query("user@example"))
    assert len(hits) == 1 and "FN:Test User" in next(iter(hits.values())), hits
    assert cards(dav, query("nobody-has-this")) == {}


def test_gal_is_read_only(dav):
    entry = next(iter(cards(dav, QUERY_ALL)))
    vcf = "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:x-1\r\nFN:Intruder\r\nEND:VCARD\r\n"
    st, _, _ = dav.request("PUT", gal_path(USER) + "intruder.vcf", vcf, {"Content-Type": "text/vcard"})
    assert st == 403
    st, _, _ = dav.request("PUT", entry, vcf, {"Content-Type": "text/vcard"})
    assert st == 403
    st, _, _ = dav.request("DELETE", entry)
    assert st == 403
    st, _, _ = dav.request("DELETE", gal_path(USER))
    assert st == 403
    st, _, _ = dav.request("PROPPATCH", gal_path(USER),
                           '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop>'
                           '<D:displayname>Mine</D:displayname></D:prop></D:set></D:propertyupdate>')
    assert st == 403
    st, _, _ = dav.request("MKCOL", gal_path(USER))
    assert st in (403, 405)
    # Still there, unchanged.
    st, _, body = dav.request("GET", entry)
    assert st == 200 and b"BEGIN:VCARD" in body


def test_gal_sync_delta_after_user_add(dav):
    wait_for(lambda: len(cards(dav, QUERY_ALL)) >= 2, "two entries")
    token, first = sync(dav, "")
    assert len(first) >= 2
    new = f"new-{uuid.uuid4().hex[:6]}@example.test"
    dav.server.cli("user", "add", new, "--name", "Newcomer Person", "--password-stdin", input="pw-123456\n")
    def delta():
        t, r = sync(dav, token)
        return (t, r) if r else None
    token2, changed = wait_for(delta, "a sync-collection delta")
    assert token2 != token
    assert len(changed) == 1, changed
    href = next(iter(changed))
    st, _, body = dav.request("GET", href)
    assert st == 200 and new.encode() in body
    # And a removal comes as a 404 response.
    dav.server.cli("user", "remove", new)
    def removal():
        t, r = sync(dav, token2)
        return (t, r) if r else None
    _, gone = wait_for(removal, "the removal")
    assert gone[href][0].split()[1] == "404", gone


def test_other_domains_gal_is_separate(dav):
    dav.server.cli("domain", "add", "other.test")
    dav.server.cli("user", "add", "ann@other.test", "--name", "Ann Other", "--password-stdin",
                   input="pw-123456\n")
    dav.passwords["ann@other.test"] = "pw-123456"
    ann = wait_for(lambda: cards(dav, QUERY_ALL, login="ann@other.test"), "ann's GAL")
    assert all("@other.test" in c and USER not in c for c in ann.values()), ann
    assert not any("ann@other.test" in c for c in cards(dav, QUERY_ALL).values())
    # Ann cannot reach example.test's list through a user of it.
    st, _, _ = dav.request("REPORT", gal_path(USER), QUERY_ALL, {"Depth": "1"}, login="ann@other.test")
    assert st == 403


def ics(uid, summary="Meeting"):
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20300105T100000Z\r\n"
            f"DTEND:20300105T110000Z\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")


def test_sharing_read_and_read_write(dav):
    cal = f"/dav/calendars/{OTHER}/personal/"
    # Other makes an event in their calendar (this also makes their defaults).
    st, _, _ = dav.request("PUT", cal + "e1.ics", ics("e1"), {"Content-Type": "text/calendar"}, login=OTHER)
    assert st == 201
    # Not shared: the user cannot read it.
    st, _, _ = dav.request("GET", cal + "e1.ics")
    assert st == 403
    out = dav.server.cli("share", "add", OTHER, "calendars/personal", USER, "--rights", "read").stdout
    assert "read" in out
    st, _, data = dav.request("PROPFIND", f"/dav/calendars/{USER}/",
                              '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:displayname/>'
                              '</D:prop></D:propfind>', {"Depth": "1"})
    assert cal in responses(data), data[:600]
    st, _, body = dav.request("GET", cal + "e1.ics")
    assert st == 200 and b"UID:e1" in body
    st, _, _ = dav.request("PUT", cal + "e2.ics", ics("e2"), {"Content-Type": "text/calendar"})
    assert st == 403
    listed = dav.server.cli("share", "list", OTHER).stdout
    assert f"calendars/personal\t{USER}\tread" in listed, listed
    # Read-write: the user may add and change events.
    dav.server.cli("share", "add", OTHER, "calendars/personal", USER, "--rights", "read-write")
    st, _, _ = dav.request("PUT", cal + "e2.ics", ics("e2"), {"Content-Type": "text/calendar"})
    assert st == 201
    st, _, body = dav.request("GET", cal + "e2.ics", login=OTHER)
    assert st == 200 and b"UID:e2" in body
    # Removed: no access again.
    dav.server.cli("share", "remove", OTHER, "calendars/personal", USER)
    st, _, _ = dav.request("GET", cal + "e1.ics")
    assert st == 403
    r = dav.server.cli("share", "remove", OTHER, "calendars/personal", USER, check=False)
    assert r.returncode != 0 and "no share" in r.stderr
    r = dav.server.cli("share", "add", OTHER, "personal", USER, check=False)
    assert r.returncode != 0 and "calendars/personal" in r.stderr, r.stderr
    r = dav.server.cli("share", "add", OTHER, "calendars/personal", USER, "--rights", "all", check=False)
    assert r.returncode != 0 and "read-write" in r.stderr


def test_free_busy_visible_in_the_domain(dav):
    cal = f"/dav/calendars/{OTHER}/personal/"
    dav.request("PUT", cal + "fb.ics", ics("fb"), {"Content-Type": "text/calendar"}, login=OTHER)
    body = ('<?xml version="1.0"?><C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">'
            '<C:time-range start="20300105T000000Z" end="20300106T000000Z"/></C:free-busy-query>')
    st, _, data = dav.request("REPORT", cal, body, {"Depth": "1"})
    assert st == 200, (st, data[:300])
    assert b"FREEBUSY" in data and b"20300105T100000Z" in data, data
    # ... but not the events themselves.
    st, _, _ = dav.request("GET", cal + "fb.ics")
    assert st == 403
    st, _, _ = dav.request("PROPFIND", cal, "", {"Depth": "1"})
    assert st == 403
    # Another domain's user sees nothing.
    dav.passwords.setdefault("ann@other.test", "pw-123456")
    if "ann@other.test" in dav.server.cli("user", "list").stdout:
        st, _, _ = dav.request("REPORT", cal, body, {"Depth": "1"}, login="ann@other.test")
        assert st == 403


def test_two_nodes_on_one_postgres_both_follow_the_directory(tmp_path):
    """Two `outpost serve` on one PostgreSQL database (bodies in the
    database, so both read every card): a user added through the CLI — a
    third process — reaches the GAL of both nodes by LISTEN/NOTIFY; on
    PostgreSQL no node polls the directory."""
    from conftest import PG_BASE, Server as Node
    extra = "[http]\nallow_plaintext_on_loopback = true\n"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = Node(tmp_path / "a", backend="postgres", listeners=["http", "imap"], extra_config=extra)
    b = Node(tmp_path / "b", backend="sqlite", listeners=["http", "imap"], extra_config=extra)
    url = f"{PG_BASE}/{a.pg_db}"
    for n in (a, b):
        text = n.config.read_text().split("\n")
        i = next(k for k, line in enumerate(text) if line.startswith("url = "))
        text[i] = f'url = "{url}"\ninline_max = 1048576'
        n.config.write_text("\n".join(text))
    try:
        a.add_user(USER, name="Test User")
        a.start()
        b.start()
        targets = []
        for n in (a, b):
            t = OutpostTarget.__new__(OutpostTarget)
            DavTarget.__init__(t, "127.0.0.1", n.port("http"))
            t.server = n
            targets.append(t)
        for t in targets:
            wait_for(lambda: any("FN:Test User" in c for c in cards(t, QUERY_ALL).values()), "the first entry")
        tokens = [sync(t, "")[0] for t in targets]
        a.cli("user", "add", "second@example.test", "--name", "Second Node", "--password-stdin",
              input="pw-123456\n")
        for t, token in zip(targets, tokens):
            def delta():
                _, r = sync(t, token)
                return r or None
            changed = wait_for(delta, f"the delta on {t.base}", timeout=15)
            assert len(changed) == 1, changed
            st, _, body = t.request("GET", next(iter(changed)))
            assert st == 200 and b"second@example.test" in body
    finally:
        b.stop()
        a.close()
