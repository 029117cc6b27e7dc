"""SELECT / EXAMINE / UNSELECT / CLOSE (issue 4): responses, read-only state,
UIDVALIDITY and UIDNEXT stable across restarts, UIDs never reused."""

from imap_helpers import Raw, client, msg, send_many, status_word


def untagged_map(untagged):
    return b"".join(untagged)


def test_select_responses(server):
    send_many(server, [msg("one"), msg("two"), msg("three")])
    r = Raw(server.port("imap"))
    r.login()
    status, untagged = r.cmd("SELECT INBOX")
    assert status_word(status) == b"OK" and b"[READ-WRITE]" in status, status
    u = untagged_map(untagged)
    assert b"* 3 EXISTS" in u
    assert b"* FLAGS (" in u and b"\\Seen" in u
    assert b"[PERMANENTFLAGS (" in u
    assert b"[UIDVALIDITY " in u and b"[UIDNEXT 4]" in u
    assert b"[UNSEEN 1]" in u
    status, untagged = r.cmd("EXAMINE INBOX")
    assert status_word(status) == b"OK" and b"[READ-ONLY]" in status, status
    u = untagged_map(untagged)
    assert b"* 3 EXISTS" in u
    # RFC 3501: selecting another mailbox sends [CLOSED] with QRESYNC/rev2 only; plain rev1 fine either way.
    status, _ = r.cmd("STORE 1 +FLAGS (\\Seen)")
    assert status_word(status) == b"NO", status  # read-only
    r.ok("UNSELECT")
    status, _ = r.cmd("FETCH 1 FLAGS")
    assert status_word(status) == b"BAD", status
    status, _ = r.cmd("SELECT NoSuchMailbox")
    assert status_word(status) == b"NO", status
    # A failed SELECT leaves no mailbox selected.
    status, _ = r.cmd("FETCH 1 FLAGS")
    assert status_word(status) == b"BAD", status
    r.close()


def test_select_case_insensitive_inbox_and_condstore(server):
    send_many(server, [msg("one")])
    c = client(server)
    info = c.select_folder("inbox")
    assert info[b"EXISTS"] == 1
    info = c.select_folder("INBOX", readonly=True)
    assert info[b"READ-ONLY"]
    r = Raw(server.port("imap"))
    r.login()
    status, untagged = r.cmd("SELECT INBOX (CONDSTORE)")
    assert status_word(status) == b"OK"
    assert b"[HIGHESTMODSEQ " in untagged_map(untagged)
    r.close()


def test_close_expunges_but_examine_close_does_not(server):
    send_many(server, [msg("a"), msg("b")])
    c = client(server)
    c.select_folder("INBOX")
    c.add_flags([1], [b"\\Deleted"])
    c.select_folder("INBOX", readonly=True)
    c.close_folder()  # read-only CLOSE: no expunge
    assert c.select_folder("INBOX")[b"EXISTS"] == 2
    c.close_folder()
    assert c.select_folder("INBOX")[b"EXISTS"] == 1
    c.logout()


def test_uidvalidity_and_uidnext_survive_restart(server):
    send_many(server, [msg("a"), msg("b"), msg("c")])
    c = client(server)
    c.create_folder("Keep")
    before = c.select_folder("INBOX")
    keep_before = c.folder_status("Keep", [b"UIDVALIDITY", b"UIDNEXT"])
    # expunge the highest UID: UIDNEXT must not go back
    c.add_flags([3], [b"\\Deleted"])
    c.expunge()
    c.logout()
    server.restart()
    c = client(server)
    after = c.select_folder("INBOX")
    assert after[b"UIDVALIDITY"] == before[b"UIDVALIDITY"]
    assert after[b"UIDNEXT"] == before[b"UIDNEXT"] == 4
    assert after[b"EXISTS"] == 2
    assert c.folder_status("Keep", [b"UIDVALIDITY", b"UIDNEXT"]) == keep_before
    c.logout()
    send_many(server, [msg("d")])
    c = client(server)
    c.select_folder("INBOX")
    assert sorted(c.search("ALL")) == [1, 2, 4]  # UID 3 never reused
    c.logout()


def test_uidnext_after_restart_with_deliver_cli(server):
    server.deliver(msg("x"), "user@example.test")
    c = client(server)
    v = c.select_folder("INBOX")[b"UIDVALIDITY"]
    c.logout()
    server.restart()
    server.deliver(msg("y"), "user@example.test")
    c = client(server)
    info = c.select_folder("INBOX")
    assert info[b"UIDVALIDITY"] == v and info[b"UIDNEXT"] == 3
    c.logout()
