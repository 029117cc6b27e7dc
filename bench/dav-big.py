#!/usr/bin/env python3
"""dav-big.py - a 10,000-event calendar on a CalDAV server (issue 15, item 11).

Stdlib only (http.client + ssl), one keep-alive connection for the timed
requests, so it runs against any server: Outpost, SOGo, Radicale.

Setup (not timed): the calendar HOME/NAME/ is made (MKCALENDAR) when missing
and filled up to --events events: --recurring of them weekly recurring (two
years each, starting over the span), the rest single one-hour events spread
evenly from --span-start over --span-years. Deterministic UIDs
(davbig-<i>), so a second run against the same server reuses the calendar.

Timed, each --reps times, median and max reported:
  initial-sync   REPORT sync-collection with an empty token (getetag), the
                 pages a server splits it into followed (RFC 6578 3.6), the
                 whole collection's hrefs and ETags (what a new client does);
  incr-sync      PUT of one changed event (not timed), then REPORT
                 sync-collection from the previous token: the one change;
  range-expand   REPORT calendar-query, VEVENT time-range of one year from
                 --range-start, calendar-data with <C:expand> over that year;
  gal-search     (with --gal-path) REPORT addressbook-query on that address
                 book: text-match --gal-query (contains, i;unicode-casemap)
                 on FN or EMAIL, props getetag + address-data;
  principal-search (with --principal-search) REPORT principal-property-search
                 (RFC 3744 9.4, Depth 0) on that principal collection, each
                 --pps-query (comma-separated) matched against displayname or
                 calendar-user-address-set (test="anyof", as Apple's clients
                 ask), props displayname + calendar-user-address-set: the
                 directory search a client's attendee lookup makes.
Targets (issue 15): initial sync < 2 s, incremental sync < 20 ms, one-year
range with expansion < 100 ms, GAL search over 10,000 entries < 20 ms.

  ./dav-big.py --url https://127.0.0.1:9443 --insecure --home '/SOGo/dav/{user}/Calendar/' \
      --user user1@example.test --password pw \
      --gal-path '/SOGo/dav/{user}/Contacts/users/'

Prints one line per measurement and a JSON line (also to --json FILE).
"""
import argparse
import base64
import http.client
import json
import re
import ssl
import statistics
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from urllib.parse import unquote, urlsplit

UTC = timezone.utc
F = "%Y%m%dT%H%M%SZ"


def ics(uid, start, summary, rrule=None):
    end = start + timedelta(hours=1)
    rr = f"RRULE:{rrule}\r\n" if rrule else ""
    return ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//dav-big//EN\r\nBEGIN:VEVENT\r\n"
            f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{start.strftime(F)}\r\n"
            f"DTEND:{end.strftime(F)}\r\n{rr}SUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n").encode()


class Conn:
    def __init__(self, a):
        u = urlsplit(a.url)
        self.host, self.port = u.hostname, u.port or (443 if u.scheme == "https" else 80)
        self.tls = u.scheme == "https"
        self.ctx = None
        if self.tls:
            self.ctx = ssl.create_default_context()
            if a.insecure:
                self.ctx.check_hostname = False
                self.ctx.verify_mode = ssl.CERT_NONE
        self.auth = "Basic " + base64.b64encode(f"{a.user}:{a.password}".encode()).decode()
        self.timeout = a.timeout
        self.c = None

    def _open(self):
        if self.tls:
            self.c = http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout, context=self.ctx)
        else:
            self.c = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def request(self, method, path, body=b"", headers=None):
        h = {"Authorization": self.auth, "Content-Length": str(len(body)), "User-Agent": "dav-big/1"}
        h.update(headers or {})
        for attempt in (0, 1):
            if self.c is None:
                self._open()
            try:
                self.c.request(method, path, body=body, headers=h)
                r = self.c.getresponse()
                data = r.read()
                if (r.getheader("connection") or "").lower() == "close" or r.version == 10:
                    self.close()
                return r.status, data
            except (http.client.RemoteDisconnected, ConnectionError, BrokenPipeError):
                self.close()
                if attempt:
                    raise

    def close(self):
        if self.c:
            self.c.close()
        self.c = None


XML = {"Content-Type": "application/xml; charset=utf-8"}


def sync_body(token):
    return ('<?xml version="1.0" encoding="utf-8"?><D:sync-collection xmlns:D="DAV:">'
            f'<D:sync-token>{token}</D:sync-token><D:sync-level>1</D:sync-level>'
            '<D:prop><D:getetag/></D:prop></D:sync-collection>').encode()


def range_body(start, end):
    return ('<?xml version="1.0" encoding="utf-8"?><C:calendar-query xmlns:D="DAV:" '
            'xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/><C:calendar-data>'
            f'<C:expand start="{start.strftime(F)}" end="{end.strftime(F)}"/></C:calendar-data></D:prop>'
            '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
            f'<C:time-range start="{start.strftime(F)}" end="{end.strftime(F)}"/>'
            '</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>').encode()


def gal_body(q):
    q = q.replace("&", "&amp;").replace("<", "&lt;")
    return ('<?xml version="1.0" encoding="utf-8"?><A:addressbook-query xmlns:D="DAV:" '
            'xmlns:A="urn:ietf:params:xml:ns:carddav"><D:prop><D:getetag/><A:address-data/></D:prop>'
            '<A:filter test="anyof">'
            f'<A:prop-filter name="FN"><A:text-match collation="i;unicode-casemap" match-type="contains">{q}'
            '</A:text-match></A:prop-filter>'
            f'<A:prop-filter name="EMAIL"><A:text-match collation="i;unicode-casemap" match-type="contains">{q}'
            '</A:text-match></A:prop-filter></A:filter></A:addressbook-query>').encode()


def pps_body(q):
    q = q.replace("&", "&amp;").replace("<", "&lt;")
    return ('<?xml version="1.0" encoding="utf-8"?><D:principal-property-search xmlns:D="DAV:" '
            'xmlns:C="urn:ietf:params:xml:ns:caldav" test="anyof">'
            f'<D:property-search><D:prop><D:displayname/></D:prop><D:match>{q}</D:match></D:property-search>'
            '<D:property-search><D:prop><C:calendar-user-address-set/></D:prop>'
            f'<D:match>{q}</D:match></D:property-search>'
            '<D:prop><D:displayname/><C:calendar-user-address-set/></D:prop></D:principal-property-search>').encode()


def responses(data):
    return len(re.findall(rb"<(?:\w+:)?response[\s>]", data))


def token_of(data):
    m = re.search(rb"<(?:\w+:)?sync-token>([^<]+)</(?:\w+:)?sync-token>", data)
    return m.group(1).decode() if m else None


def event_of(a, i):
    """Event i of the calendar (deterministic)."""
    span = timedelta(days=365 * a.span_years)
    start0 = datetime.fromisoformat(a.span_start).replace(tzinfo=UTC)
    if i < a.recurring:
        start = start0 + span * i / max(1, a.recurring)
        start = start.replace(minute=0, second=0, microsecond=0)
        return ics(f"davbig-{i}", start, f"weekly {i}", "FREQ=WEEKLY;COUNT=104")
    n = a.events - a.recurring
    start = start0 + span * (i - a.recurring) / max(1, n)
    start = start.replace(minute=0, second=0, microsecond=0)
    return ics(f"davbig-{i}", start, f"event {i}")


def setup(a, cal):
    c = Conn(a)
    st, _ = c.request("PROPFIND", cal, b"", {"Depth": "0"})
    if st == 404:
        st, data = c.request("MKCALENDAR", cal)
        if st not in (200, 201):
            raise SystemExit(f"MKCALENDAR {cal} -> {st} {data[:300]!r}")
    elif st != 207:
        raise SystemExit(f"PROPFIND {cal} -> {st}: is --home right? ({a.url}{cal})")
    st, data = c.request("PROPFIND", cal, b'<D:propfind xmlns:D="DAV:"><D:prop><D:getetag/></D:prop></D:propfind>',
                         dict(XML, Depth="1"))
    have = set(int(x) for x in re.findall(rb"davbig-(\d+)\.ics", unquote(data.decode(errors="replace")).encode()))
    c.close()
    missing = [i for i in range(a.events) if i not in have]
    t0 = time.monotonic()
    if a.prefill_dir:
        # Radicale's filesystem storage: one file per item in the collection's
        # directory, which it reads as it finds them; its PUT into a large
        # collection slows down with the collection's size (3.6/s at 1,800
        # events on the loaded 2-core box), so filling 10,000 by PUT takes
        # most of an hour.
        import os

        for i in missing:
            with open(os.path.join(a.prefill_dir, f"davbig-{i}.ics"), "wb") as f:
                f.write(event_of(a, i))
        print(f"# setup: {cal}: {len(have)} events there, {len(missing)} written into {a.prefill_dir} "
              f"in {time.monotonic() - t0:.1f}s", flush=True)
        return
    errors = []
    lock = threading.Lock()

    def work(part):
        cc = Conn(a)
        for i in part:
            st, data = cc.request("PUT", f"{cal}davbig-{i}.ics", event_of(a, i),
                                  {"Content-Type": "text/calendar; charset=utf-8"})
            if st not in (200, 201, 204):
                with lock:
                    errors.append(f"PUT davbig-{i} -> {st} {data[:200]!r}")
                    return
        cc.close()

    ts = [threading.Thread(target=work, args=(missing[k::a.setup_conns],)) for k in range(a.setup_conns)]
    [t.start() for t in ts]
    [t.join() for t in ts]
    if errors:
        raise SystemExit(errors[0])
    print(f"# setup: {cal}: {len(have)} events there, {len(missing)} PUT in {time.monotonic() - t0:.1f}s", flush=True)


def timed(c, method, path, body, headers, ok=(207,)):
    t = time.monotonic()
    try:
        st, data = c.request(method, path, body, headers)
    except TimeoutError:
        raise SystemExit(f"{method} {path}: no answer within {c.timeout:.0f}s (--timeout)")
    dt = time.monotonic() - t
    if st not in ok:
        raise SystemExit(f"{method} {path} -> {st} {data[:300]!r}")
    return dt, data


def full_sync(c, cal, token):
    """sync-collection from token, following a server's paging (RFC 6578
    3.6: a 507 response for the collection with
    number-of-matches-within-limits, and a token to go on from) until the
    answer is complete, as a client does. Returns (seconds, item responses,
    pages, bytes, last token)."""
    t, n, pages, size = 0.0, 0, 0, 0
    while True:
        dt, data = timed(c, "REPORT", cal, sync_body(token), dict(XML, Depth="0"))
        t += dt
        pages += 1
        size += len(data)
        more = b"number-of-matches-within-limits" in data
        n += responses(data) - (1 if more else 0)
        new = token_of(data)
        if not more or new is None or new == token or pages > 1000:
            return t, n, pages, size, new
        token = new


def summary(name, xs, extra=""):
    med, mx = statistics.median(xs), max(xs)
    print(f"{name:13s} median {1000 * med:9.1f} ms  max {1000 * mx:9.1f} ms  ({len(xs)} runs){extra}", flush=True)
    return {"median_ms": round(1000 * med, 1), "max_ms": round(1000 * mx, 1), "runs": len(xs)}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--url", required=True)
    p.add_argument("--home", required=True, help="calendar home path, {user} = --user")
    p.add_argument("--calendar", default="davbig")
    p.add_argument("--user", default="user1@example.test")
    p.add_argument("--password", default="pw")
    p.add_argument("--events", type=int, default=10000)
    p.add_argument("--recurring", type=int, default=100)
    p.add_argument("--span-start", default="2026-01-05T09:00:00")
    p.add_argument("--span-years", type=int, default=10)
    p.add_argument("--range-start", default="2030-01-01T00:00:00")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--setup-conns", type=int, default=4)
    p.add_argument("--gal-path", default="", help="address book path of the GAL, {user} = --user (empty: skip)")
    p.add_argument("--gal-query", default="user12")
    p.add_argument("--principal-search", default="",
                   help="principal collection for REPORT principal-property-search (empty: skip)")
    p.add_argument("--pps-query", default="smi,alice.smith@",
                   help="comma-separated texts, each timed on its own")
    p.add_argument("--insecure", action="store_true")
    p.add_argument("--timeout", type=float, default=300)
    p.add_argument("--skip-setup", action="store_true")
    p.add_argument("--prefill-dir", default="",
                   help="write the missing events as files into this directory instead of PUT "
                        "(Radicale's storage directory of the calendar)")
    p.add_argument("--json", default="")
    a = p.parse_args()

    cal = a.home.format(user=a.user).rstrip("/") + "/" + a.calendar + "/"
    if not a.skip_setup:
        setup(a, cal)
    res = {"url": a.url, "calendar": cal, "events": a.events, "recurring": a.recurring}
    c = Conn(a)
    # warm-up (first request after setup may pay for caches)
    timed(c, "REPORT", cal, sync_body(""), dict(XML, Depth="0"))

    xs, n = [], 0
    for _ in range(a.reps):
        dt, n, pages, size, token = full_sync(c, cal, "")
        xs.append(dt)
    res["initial_sync"] = summary("initial-sync", xs, f", {n} responses in {pages} page(s), {size} bytes")
    res["initial_sync"].update(responses=n, pages=pages)
    if n < a.events:
        print(f"# warning: initial sync returned {n} responses for {a.events} events", flush=True)

    xs, ns = [], []
    for k in range(a.reps):
        i = a.recurring + k  # a single event
        body = event_of(a, i).replace(f"event {i}".encode(), f"event {i} changed {time.time()}".encode())
        st, data = c.request("PUT", f"{cal}davbig-{i}.ics", body, {"Content-Type": "text/calendar; charset=utf-8"})
        if st not in (200, 201, 204):
            raise SystemExit(f"PUT change -> {st} {data[:200]!r}")
        if token is None:
            raise SystemExit("server returned no sync-token")
        dt, m, _, _, token2 = full_sync(c, cal, token)
        xs.append(dt)
        ns.append(m)
        token = token2 or token
    res["incremental_sync"] = summary("incr-sync", xs, f", responses {ns}")
    res["incremental_sync"]["responses"] = ns

    start = datetime.fromisoformat(a.range_start).replace(tzinfo=UTC)
    end = start + timedelta(days=365)
    xs = []
    for _ in range(a.reps):
        dt, data = timed(c, "REPORT", cal, range_body(start, end), dict(XML, Depth="1"))
        xs.append(dt)
    inst = data.count(b"BEGIN:VEVENT")
    res["range_expand"] = summary("range-expand", xs, f", {responses(data)} resources, {inst} instances, "
                                                      f"{len(data)} bytes")
    res["range_expand"].update(resources=responses(data), instances=inst)

    if a.gal_path:
        gal = a.gal_path.format(user=a.user)
        xs = []
        st, data = c.request("REPORT", gal, gal_body(a.gal_query), dict(XML, Depth="1"))  # warm-up
        if st != 207:
            print(f"gal-search    REPORT addressbook-query {gal} -> {st}: not measured", flush=True)
            res["gal_search"] = {"status": st}
        else:
            for _ in range(a.reps):
                dt, data = timed(c, "REPORT", gal, gal_body(a.gal_query), dict(XML, Depth="1"))
                xs.append(dt)
            res["gal_search"] = summary("gal-search", xs, f", {responses(data)} matches for {a.gal_query!r}")
            res["gal_search"]["matches"] = responses(data)
    if a.principal_search:
        res["principal_search"] = {}
        for q in a.pps_query.split(","):
            st, data = c.request("REPORT", a.principal_search, pps_body(q), dict(XML, Depth="0"))  # warm-up
            if st != 207:
                print(f"principal-search {q!r} -> {st}: not measured", flush=True)
                res["principal_search"][q] = {"status": st}
                continue
            xs = []
            for _ in range(a.reps):
                dt, data = timed(c, "REPORT", a.principal_search, pps_body(q), dict(XML, Depth="0"))
                xs.append(dt)
            r = summary(f"pps {q!r}", xs, f", {responses(data)} principals, {len(data)} bytes")
            r["matches"] = responses(data)
            res["principal_search"][q] = r
    c.close()
    print("JSON " + json.dumps(res, sort_keys=True), flush=True)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
