#!/usr/bin/env python3
"""ews-load.py - EWS figures of issue 17, item 4, against a running server:

  1. availability: --attendees users each get --events events over a week
     (CalDAV PUT into their default calendar); then GetUserAvailability for
     all of them over that week (FreeBusy view, 30-minute merged slots),
     --repeat times: p50/p99 ms, and the busy blocks answered.
  2. FindItem on a --messages Inbox (filled over SMTP first, one session):
     IdOnly pages of 100 at the start and at the end of the folder, and a
     Default-shape page of 100, each --repeat times: p50/p99 ms.
  3. SyncFolderItems of that Inbox: the initial sync in batches of 512 (total
     s and messages/s), then the incremental sync after --new deliveries.

Raw SOAP over one keep-alive HTTPS session per step (requests), so the
figures are the server's and the network stack's, not a client library's.
Prints one JSON object last. Talks to --host (127.0.0.1) only.
"""
from __future__ import annotations

import argparse
import json
import smtplib
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from datetime import datetime, timedelta, timezone

import requests
import urllib3

urllib3.disable_warnings()

M = "{http://schemas.microsoft.com/exchange/services/2006/messages}"
T = "{http://schemas.microsoft.com/exchange/services/2006/types}"


def envelope(body: str) -> str:
    return ('<?xml version="1.0" encoding="utf-8"?>'
            '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" '
            'xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">'
            '<s:Header><t:RequestServerVersion Version="Exchange2016"/></s:Header>'
            f"<s:Body>{body}</s:Body></s:Envelope>")


class Ews:
    def __init__(self, args, user):
        self.url = f"https://{args.host}:{args.port}/EWS/Exchange.asmx"
        self.s = requests.Session()
        self.s.verify = False
        self.s.auth = (user, args.password)
        self.s.headers["Content-Type"] = "text/xml; charset=utf-8"

    def call(self, body: str):
        t = time.perf_counter()
        r = self.s.post(self.url, data=envelope(body), timeout=120, verify=False)
        ms = (time.perf_counter() - t) * 1000
        r.raise_for_status()
        root = ET.fromstring(r.content)
        for m in root.iter():
            if m.get("ResponseClass") == "Error":
                raise RuntimeError(ET.tostring(m)[:500])
        if root.find(".//{http://schemas.xmlsoap.org/soap/envelope/}Fault") is not None:
            raise RuntimeError(r.text[:500])
        return root, ms


def pct(xs, p):
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))], 1)


def summary(xs):
    return {"p50": pct(xs, 50), "p99": pct(xs, 99), "n": len(xs)}


def availability(args, week_start):
    users = [f"user{i}@{args.domain}" for i in range(1, args.attendees + 1)]
    dav = requests.Session()
    dav.verify = False
    t0 = time.perf_counter()
    for u in users:
        dav.auth = (u, args.password)
        for k in range(args.events):
            start = week_start + timedelta(days=k % 5, hours=8 + (k * 3) % 9)
            end = start + timedelta(minutes=60)
            uid = str(uuid.uuid4())
            body = ("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//bench//EN\r\nBEGIN:VEVENT\r\n"
                    f"UID:{uid}\r\nDTSTAMP:20261201T000000Z\r\n"
                    f"DTSTART:{start:%Y%m%dT%H%M%SZ}\r\nDTEND:{end:%Y%m%dT%H%M%SZ}\r\n"
                    f"SUMMARY:busy {k}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")
            r = dav.put(f"https://{args.host}:{args.port}/dav/calendars/{u}/personal/{uid}.ics",
                        data=body, headers={"Content-Type": "text/calendar", "If-None-Match": "*"}, timeout=30, verify=False)
            if r.status_code not in (201, 204):
                raise RuntimeError(f"PUT {u}: {r.status_code} {r.text[:200]}")
    fill_s = time.perf_counter() - t0
    mailboxes = "".join(
        f"<t:MailboxData><t:Email><t:Address>{u}</t:Address></t:Email><t:AttendeeType>Required</t:AttendeeType>"
        "<t:ExcludeConflicts>false</t:ExcludeConflicts></t:MailboxData>" for u in users)
    end = week_start + timedelta(days=7)
    body = ("<m:GetUserAvailabilityRequest>"
            "<t:TimeZone><t:Bias>0</t:Bias><t:StandardTime><t:Bias>0</t:Bias><t:Time>02:00:00</t:Time>"
            "<t:DayOrder>5</t:DayOrder><t:Month>10</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek></t:StandardTime>"
            "<t:DaylightTime><t:Bias>0</t:Bias><t:Time>02:00:00</t:Time><t:DayOrder>5</t:DayOrder>"
            "<t:Month>3</t:Month><t:DayOfWeek>Sunday</t:DayOfWeek></t:DaylightTime></t:TimeZone>"
            f"<m:MailboxDataArray>{mailboxes}</m:MailboxDataArray>"
            "<t:FreeBusyViewOptions><t:TimeWindow>"
            f"<t:StartTime>{week_start:%Y-%m-%dT%H:%M:%S}</t:StartTime><t:EndTime>{end:%Y-%m-%dT%H:%M:%S}</t:EndTime>"
            "</t:TimeWindow><t:MergedFreeBusyIntervalInMinutes>30</t:MergedFreeBusyIntervalInMinutes>"
            "<t:RequestedView>FreeBusy</t:RequestedView></t:FreeBusyViewOptions>"
            "</m:GetUserAvailabilityRequest>")
    ews = Ews(args, users[0])
    times, blocks = [], 0
    for _ in range(args.repeat):
        root, ms = ews.call(body)
        times.append(ms)
        blocks = len(root.findall(f".//{T}CalendarEvent"))
    return {"attendees": len(users), "events_each": args.events, "fill_s": round(fill_s, 1),
            "ms": summary(times), "busy_blocks_answered": blocks}


def fill_inbox(args, user):
    t0 = time.perf_counter()
    with smtplib.SMTP(args.host, args.smtp, timeout=120) as s:
        for i in range(args.messages):
            msg = (f"From: sender{i % 50}@outside.example\r\nTo: {user}\r\nSubject: message {i}\r\n"
                   f"Message-ID: <bench-{i}-{uuid.uuid4()}@outside.example>\r\n"
                   f"Date: Tue, 01 Dec 2026 10:00:00 +0000\r\n\r\nbody {i}\r\n")
            s.sendmail(f"sender{i % 50}@outside.example", [user], msg)
    return time.perf_counter() - t0


def find_item(args, ews, offset, shape):
    return ("<m:FindItem Traversal=\"Shallow\"><m:ItemShape>"
            f"<t:BaseShape>{shape}</t:BaseShape></m:ItemShape>"
            f"<m:IndexedPageItemView MaxEntriesReturned=\"100\" Offset=\"{offset}\" BasePoint=\"Beginning\"/>"
            "<m:SortOrder><t:FieldOrder Order=\"Descending\"><t:FieldURI FieldURI=\"item:DateTimeReceived\"/>"
            "</t:FieldOrder></m:SortOrder>"
            "<m:ParentFolderIds><t:DistinguishedFolderId Id=\"inbox\"/></m:ParentFolderIds></m:FindItem>")


def sync_items(state):
    st = f"<m:SyncState>{state}</m:SyncState>" if state else ""
    return ("<m:SyncFolderItems><m:ItemShape><t:BaseShape>IdOnly</t:BaseShape></m:ItemShape>"
            "<m:SyncFolderId><t:DistinguishedFolderId Id=\"inbox\"/></m:SyncFolderId>"
            f"{st}<m:MaxChangesReturned>512</m:MaxChangesReturned></m:SyncFolderItems>")


def mail(args):
    user = f"user{args.attendees + 1}@{args.domain}"
    fill_s = fill_inbox(args, user)
    ews = Ews(args, user)
    out = {"messages": args.messages, "fill_s": round(fill_s, 1)}
    # Wait until every message is in (deliveries are acknowledged when
    # durable, so this is immediate; checked anyway).
    root, _ = ews.call(find_item(args, ews, 0, "IdOnly"))
    total = int(root.find(f".//{M}RootFolder").get("TotalItemsInView"))
    out["inbox_total"] = total
    for name, offset, shape in [("idonly_first_page", 0, "IdOnly"),
                                ("idonly_last_page", max(0, total - 100), "IdOnly"),
                                ("default_first_page", 0, "Default")]:
        times = []
        for _ in range(args.repeat):
            root, ms = ews.call(find_item(args, ews, offset, shape))
            assert len(root.findall(f".//{T}Message")) == min(100, total - offset)
            times.append(ms)
        out[f"finditem_{name}_ms"] = summary(times)
    # SyncFolderItems, initial then incremental.
    t0 = time.perf_counter()
    state, got, calls, last = None, 0, 0, False
    while not last:
        root, _ = ews.call(sync_items(state))
        calls += 1
        state = root.find(f".//{M}SyncState").text
        got += len(root.findall(f".//{T}Create"))
        last = root.find(f".//{M}IncludesLastItemInRange").text == "true"
        if calls > args.messages // 100 + 100:
            raise RuntimeError("SyncFolderItems did not finish")
    initial_s = time.perf_counter() - t0
    out["sync_initial"] = {"s": round(initial_s, 2), "items": got, "calls": calls,
                           "items_per_s": round(got / initial_s, 1)}
    with smtplib.SMTP(args.host, args.smtp, timeout=60) as s:
        for i in range(args.new):
            s.sendmail("late@outside.example", [user],
                       f"From: late@outside.example\r\nTo: {user}\r\nSubject: late {i}\r\n\r\nx\r\n")
    root, ms = ews.call(sync_items(state))
    out["sync_incremental"] = {"ms": round(ms, 1), "new": args.new,
                               "creates": len(root.findall(f".//{T}Create"))}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True, help="HTTPS port")
    ap.add_argument("--smtp", type=int, required=True, help="SMTP port")
    ap.add_argument("--domain", default="example.test")
    ap.add_argument("--password", required=True)
    ap.add_argument("--attendees", type=int, default=50)
    ap.add_argument("--events", type=int, default=20, help="events per attendee over the week")
    ap.add_argument("--messages", type=int, default=10000)
    ap.add_argument("--new", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=30)
    ap.add_argument("--skip", default="", help="comma list: availability,mail")
    ap.add_argument("--json")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    monday = datetime(2026, 12, 7, tzinfo=timezone.utc)
    result = {}
    if "availability" not in skip:
        result["availability"] = availability(args, monday)
        print("availability:", result["availability"], file=sys.stderr)
    if "mail" not in skip:
        result["mail"] = mail(args)
    text = json.dumps(result)
    if args.json:
        open(args.json, "w").write(text)
    print(text)


if __name__ == "__main__":
    main()
