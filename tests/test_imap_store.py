"""STORE (issue 4): system flags, keywords, .SILENT, UID STORE, CONDSTORE
(MODSEQ, UNCHANGEDSINCE -> [MODIFIED], CHANGEDSINCE, HIGHESTMODSEQ)."""

import re

from imap_helpers import Raw, client, msg, send_many, status_word


def modseq_of(line):
    return int(re.search(rb"MODSEQ \((\d+)\)", line).group(1))


def test_flags_and_keywords(server):
    send_many(server, [msg("a"), msg("b"), msg("c")])
    c = client(server)
    c.select_folder("INBOX")
    c.add_flags([1, 2], [b"\\Flagged", b"\\Seen"])
    assert c.get_flags([1, 2, 3]) == {1: (b"\\Flagged", b"\\Seen"), 2: (b"\\Flagged", b"\\Seen"), 3: ()} or \
        {k: set(v) for k, v in c.get_flags([1, 2, 3]).items()} == {1: {b"\\Flagged", b"\\Seen"},
                                                                  2: {b"\\Flagged", b"\\Seen"}, 3: set()}
    c.remove_flags([2], [b"\\Flagged"])
    assert set(c.get_flags([2])[2]) == {b"\\Seen"}
    c.set_flags([3], [b"\\Answered", b"$Forwarded", b"Work"])
    assert set(c.get_flags([3])[3]) == {b"\\Answered", b"$Forwarded", b"Work"}
    c.set_flags([3], [b"\\Draft"])
    assert c.get_flags([3])[3] == (b"\\Draft",)
    # keywords are case-insensitive and survive a reselect; FLAGS lists them
    c.add_flags([1], [b"Project-X"])
    # (the FLAGS response lists only the system flags; RFC 3501 7.2.6 asks for at least those)
    c.select_folder("INBOX")
    assert b"Project-X" in c.get_flags([1])[1]
    c.remove_flags([1], [b"project-x"])
    assert b"Project-X" not in c.get_flags([1])[1]
    c.logout()


def test_store_silent_and_uid_store(server):
    send_many(server, [msg("a"), msg("b")])
    r = Raw(server.port("imap"))
    r.login()
    r.ok("SELECT INBOX")
    untagged = r.ok("STORE 1 +FLAGS.SILENT (\\Seen)")
    assert not any(b"FETCH" in u for u in untagged), untagged
    untagged = r.ok("STORE 1:2 +FLAGS (\\Flagged)")
    assert sum(b"FETCH" in u for u in untagged) == 2
    untagged = r.ok("UID STORE 2 -FLAGS (\\Flagged)")
    assert any(b"UID 2" in u and b"FETCH" in u for u in untagged), untagged
    status, _ = r.cmd("STORE 1 +FLAGS (\\Recent)")
    assert status_word(status) in (b"BAD", b"NO", b"OK")  # \Recent cannot be stored; must not break
    status, _ = r.cmd("STORE 1 FROB (\\Seen)")
    assert status_word(status) == b"BAD"
    r.ok("NOOP")
    r.close()


def test_condstore_modseq_unchangedsince(server):
    send_many(server, [msg("a"), msg("b")])
    r = Raw(server.port("imap"))
    r.login()
    status, untagged = r.cmd("SELECT INBOX (CONDSTORE)")
    hm0 = int(re.search(rb"HIGHESTMODSEQ (\d+)", b"".join(untagged)).group(1))
    f = r.ok("FETCH 1:2 (MODSEQ FLAGS)")
    m1, m2 = modseq_of(f[0]), modseq_of(f[1])
    assert max(m1, m2) <= hm0
    # STORE with a current UNCHANGEDSINCE succeeds and bumps the modseq
    f = r.ok(f"STORE 1 (UNCHANGEDSINCE {m1}) +FLAGS (\\Seen)")
    new1 = modseq_of([u for u in f if b"FETCH" in u][0])
    assert new1 > hm0
    # a second session changes message 2
    r2 = Raw(server.port("imap"))
    r2.login()
    r2.ok("SELECT INBOX")
    r2.ok("STORE 2 +FLAGS (\\Flagged)")
    r2.close()
    # now UNCHANGEDSINCE with the old modseq fails for 2 only: OK [MODIFIED 2]
    status, untagged = r.cmd(f"STORE 1:2 (UNCHANGEDSINCE {max(m2, new1)}) +FLAGS (\\Answered)")
    assert status_word(status) == b"OK" and b"[MODIFIED 2]" in status, (status, untagged)
    fl = r.ok("FETCH 1:2 (FLAGS)")
    joined = b"".join(fl)
    assert b"\\Answered" in [l for l in fl if l.startswith(b"* 1 FETCH")][0]
    assert b"\\Answered" not in [l for l in fl if l.startswith(b"* 2 FETCH")][0], joined
    # CHANGEDSINCE returns only what changed after a modseq
    f = r.ok(f"FETCH 1:* (FLAGS) (CHANGEDSINCE {new1})")
    assert any(u.startswith(b"* 2 FETCH") or u.startswith(b"* 1 FETCH") for u in f)
    f = r.ok("FETCH 1:* (FLAGS) (CHANGEDSINCE 999999999)")
    assert not any(b"FETCH" in u for u in f), f
    # HIGHESTMODSEQ via STATUS grows
    st = b"".join(r.ok("STATUS INBOX (HIGHESTMODSEQ)"))
    assert int(re.search(rb"HIGHESTMODSEQ (\d+)", st).group(1)) > new1
    # UNCHANGEDSINCE 0 always fails (RFC 7162 3.1.3)
    status, _ = r.cmd("STORE 1 (UNCHANGEDSINCE 0) +FLAGS (\\Draft)")
    assert b"[MODIFIED 1]" in status, status
    r.close()


def test_store_in_other_session_seen_as_fetch(server):
    send_many(server, [msg("a")])
    a = Raw(server.port("imap"))
    a.login()
    a.ok("SELECT INBOX")
    b = client(server)
    b.select_folder("INBOX")
    b.add_flags([1], [b"\\Flagged"])
    b.logout()
    untagged = a.ok("NOOP")
    assert any(u.startswith(b"* 1 FETCH") and b"\\Flagged" in u for u in untagged), untagged
    a.close()


def test_unsolicited_fetch_carries_modseq_after_enable_condstore(server):
    send_many(server, [msg("a")])
    a = Raw(server.port("imap"))
    a.login()
    a.ok("ENABLE CONDSTORE")
    a.ok("SELECT INBOX")
    b = Raw(server.port("imap"))
    b.login()
    b.ok("SELECT INBOX")
    b.ok("STORE 1 +FLAGS (\\Flagged)")
    b.close()
    u = a.ok("NOOP")
    f = [x for x in u if x.startswith(b"* 1 FETCH")]
    assert f and b"\\Flagged" in f[0] and b"MODSEQ (" in f[0], u  # RFC 7162 3.1
    a.close()
