"""Inbound SPF/DKIM/DMARC checks against a real DNS server that loses
queries (issue 14): the checks ask tests/lossy_dns.py on 127.0.0.1 through
[inbound] dns_servers. With every query lost, a message gets 451 4.4.3
within the configured bound and the session goes on; with a few per cent
lost, messages are accepted with their Authentication-Results, quickly."""

import smtplib
import sqlite3
import time

import pytest

from conftest import Server, read_blob
from lossy_dns import LossyDns

ZONE = {
    "good.example": [("TXT", "v=spf1 ip4:127.0.0.1 -all")],
    "_dmarc.good.example": [("TXT", "v=DMARC1; p=reject")],
    "mta.good.example": [("TXT", "v=spf1 ip4:127.0.0.1 -all")],
}


def message(n=0, domain="good.example"):
    return (f"From: someone@{domain}\r\nTo: user@example.test\r\nSubject: check {n}\r\n"
            f"Message-ID: <{n}.x@{domain}>\r\n\r\nbody\r\n").encode()


def mx_server(tmp_path, dns, **inbound):
    lines = [f'dns_servers = ["127.0.0.1:{dns.port}"]'] + [f"{k} = {v}" for k, v in inbound.items()]
    s = Server(tmp_path, extra_config="[inbound]\n" + "\n".join(lines) + "\n")
    s.add_user("user@example.test")
    return s.start()


def stored(server):
    con = sqlite3.connect(server.data / "outpost.db")
    try:
        hashes = [r[0] for r in con.execute("SELECT blob_hash FROM messages ORDER BY id")]
    finally:
        con.close()
    return [read_blob(server, h) for h in hashes]


@pytest.fixture
def dns():
    d = LossyDns(ZONE, drop=0.0, ttl=0, seed=14).start()
    try:
        yield d
    finally:
        d.close()


def deferred_within(server, bound):
    """Sends one message; asserts 451 4.4.3 within `bound` seconds and that
    the same session then takes another command."""
    c = smtplib.SMTP("127.0.0.1", server.port("smtp"), timeout=60)
    try:
        c.ehlo("mta.good.example")
        t0 = time.monotonic()
        with pytest.raises(smtplib.SMTPDataError) as e:
            c.sendmail("someone@good.example", ["user@example.test"], message())
        took = time.monotonic() - t0
        assert e.value.smtp_code == 451, e.value
        assert b"4.4.3" in e.value.smtp_error, e.value
        assert took < bound, f"answered after {took:.1f} s"
        # The transaction is over, the session is not.
        assert c.noop()[0] == 250
        assert c.mail("someone@good.example")[0] == 250
        c.rset()
    finally:
        c.quit()
    assert stored(server) == []
    return took


def test_dns_down_defers_with_443_once_queries_give_up(tmp_path, dns):
    # Every query lost: the queries give up after 0.3 s x 2 tries, all of
    # them at once, and the From: domain's DMARC policy is unknown.
    dns.drop = 1.0
    s = mx_server(tmp_path, dns, dns_timeout_ms=300, dns_retries=1, check_timeout=20)
    try:
        took = deferred_within(s, 3.0)
        assert dns.dropped >= 3, (dns.queries, dns.dropped)
        assert "deferred: the DMARC policy of good.example could not be fetched" in s.log_text()
    finally:
        s.close()
    print(f"deferred after {took:.2f} s")


def test_check_timeout_bounds_the_answer(tmp_path, dns):
    # Queries that would wait 5 s x 3 tries: the session's bound (2 s)
    # answers first.
    dns.drop = 1.0
    s = mx_server(tmp_path, dns, dns_timeout_ms=5000, dns_retries=2, check_timeout=2)
    try:
        took = deferred_within(s, 4.0)
        assert took >= 1.9, took
        assert "inbound checks unfinished after 2 s" in s.log_text()
    finally:
        s.close()


def test_lossy_dns_messages_accepted_with_results_quickly(tmp_path, dns):
    # One query in ten lost, nothing cached (TTL 0): each message asks
    # again, and a lost packet is resent within the try.
    dns.drop = 0.10
    s = mx_server(tmp_path, dns)
    n = 40
    try:
        t0 = time.monotonic()
        c = smtplib.SMTP("127.0.0.1", s.port("smtp"), timeout=60)
        try:
            c.ehlo("mta.good.example")
            for i in range(n):
                c.sendmail("someone@good.example", ["user@example.test"], message(i))
        finally:
            c.quit()
        took = time.monotonic() - t0
        got = stored(s)
        assert len(got) == n
        for m in got:
            head = m.split(b"\r\n\r\n", 1)[0].decode()
            assert "Authentication-Results: mail.example.test;" in head, head
            assert "spf=pass" in head and "dmarc=pass" in head, head
        assert dns.dropped > 0, (dns.queries, dns.dropped)
        # Four queries a message; a lost one costs about a third of a second.
        assert took < 0.25 * n, f"{n} messages took {took:.1f} s"
    finally:
        s.close()
    print(f"{n} messages in {took:.2f} s, {dns.dropped} of {dns.queries} queries lost")


def test_dns_cache_spares_repeat_queries(tmp_path):
    # With a TTL, the second message from a domain asks DNS nothing new.
    d = LossyDns(ZONE, drop=0.0, ttl=300).start()
    try:
        s = mx_server(tmp_path, d)
        try:
            c = smtplib.SMTP("127.0.0.1", s.port("smtp"), timeout=60)
            try:
                c.ehlo("mta.good.example")
                c.sendmail("someone@good.example", ["user@example.test"], message(1))
                first = d.queries
                for i in range(2, 6):
                    c.sendmail("someone@good.example", ["user@example.test"], message(i))
            finally:
                c.quit()
            assert first > 0
            assert d.queries == first, (first, d.queries)
            assert len(stored(s)) == 5
        finally:
            s.close()
    finally:
        d.close()


def test_ten_percent_loss_many_sender_domains_defers_almost_nothing(tmp_path):
    # bench/dns-bench.sh SENDERS=many in small (HELO without SPF, as
    # smtp-source sends it): each message comes from its
    # own sN.lossy.example, so its SPF and _dmarc.sN names are asked once,
    # while _dmarc.lossy.example (the DMARC walk's parent) is asked for by
    # every message, often while another message's lookup of it is in
    # flight. One query in ten is lost. With four tries a lookup fails with
    # probability 10^-4; before the resolver's lookups were made one per
    # name at a time, a message that joined another's lost try spent all
    # its retries on it and about 1 % were deferred (451 4.4.3): 2 and 8
    # of these 600 in two runs then, 0 and 0 after.
    zone = {
        "lossy.example": [("TXT", "v=spf1 ip4:127.0.0.1 -all")],
        "*.lossy.example": [("TXT", "v=spf1 ip4:127.0.0.1 -all")],
        "_dmarc.lossy.example": [("TXT", "v=DMARC1; p=reject")],
    }
    d = LossyDns(zone, drop=0.10, ttl=0, seed=41).start()
    n, conns = 600, 20
    deferred, other = [], []
    try:
        s = mx_server(tmp_path, d)
        try:
            import threading

            def sender(k):
                c = smtplib.SMTP("127.0.0.1", s.port("smtp"), timeout=120)
                try:
                    # No SPF lookup for the HELO name: like smtp-source.
                    c.ehlo("localhost")
                    for i in range(k, n, conns):
                        frm = f"someone@s{i}.lossy.example"
                        try:
                            c.sendmail(frm, ["user@example.test"], message(i, f"s{i}.lossy.example"))
                        except smtplib.SMTPDataError as e:
                            (deferred if e.smtp_code == 451 else other).append((i, e.smtp_code, e.smtp_error))
                finally:
                    c.quit()

            threads = [threading.Thread(target=sender, args=(k,)) for k in range(conns)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert other == [], other
            assert len(stored(s)) == n - len(deferred)
        finally:
            s.close()
    finally:
        d.close()
    hist, lost_all = d.sends_histogram()
    print(f"{n} messages, {d.queries} queries, {d.dropped} lost, {len(deferred)} deferred; "
          f"queries per name: {hist}; names never answered: {lost_all}")
    assert d.dropped > 0
    assert len(deferred) <= 1, deferred
    # A name asked by one message (its SPF, its _dmarc.sN) is looked up
    # once: at most 4 tries of up to 3 packets each.
    once = [asked for (name, _), (asked, _) in d.by_name.items()
            if name.startswith(("s", "_dmarc.s"))]
    assert len(once) >= n and max(once) <= 12, sorted(once)[-5:]
