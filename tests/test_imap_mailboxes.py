"""Mailbox commands (issue 4): LIST patterns and LIST-EXTENDED/LIST-STATUS,
special-use, CREATE (nested), RENAME (incl. INBOX), DELETE, SUBSCRIBE/LSUB,
STATUS incl. SIZE."""

import re

import pytest

from imap_helpers import Raw, client, msg, send_many, status_word


def names(listing):
    return sorted(n for _, _, n in listing)


def flags_of(listing, name):
    return {f.lower() for fl, _, n in listing if n == name for f in fl}


def test_default_mailboxes_and_special_use(server):
    c = client(server)
    lst = c.list_folders()
    assert names(lst) == ["Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"]
    assert all(d == b"/" for _, d, _ in lst)
    for n, f in [("Sent", b"\\sent"), ("Trash", b"\\trash"), ("Junk", b"\\junk"), ("Drafts", b"\\drafts"),
                 ("Archive", b"\\archive")]:
        assert f in flags_of(lst, n)
    assert c.find_special_folder(b"\\Sent") == "Sent"
    r = Raw(server.port("imap"))
    r.login()
    u = r.ok('LIST (SPECIAL-USE) "" "*"')
    assert len(u) == 5 and not any(b'"INBOX"' in x or b" INBOX\r\n" in x for x in u), u
    u = r.ok('LIST "" ""')
    assert u == [b'* LIST (\\Noselect) "/" ""\r\n'], u
    u = r.ok('LIST "" "*" RETURN (SPECIAL-USE)')
    assert any(b"\\Sent" in x for x in u)
    r.close()
    c.logout()


def test_create_nested_and_list_patterns(server):
    c = client(server)
    c.create_folder("Work/Projects/2026")
    c.create_folder("Work/Notes")
    c.create_folder("Personal")
    all_ = c.list_folders()
    assert {"Work", "Work/Projects", "Work/Projects/2026", "Work/Notes", "Personal"} <= set(names(all_))
    assert b"\\haschildren" in flags_of(all_, "Work")
    assert b"\\hasnochildren" in flags_of(all_, "Work/Notes")
    assert names(c.list_folders("", "%")) == ["Archive", "Drafts", "INBOX", "Junk", "Personal", "Sent", "Trash",
                                              "Work"]
    assert names(c.list_folders("", "Work/%")) == ["Work/Notes", "Work/Projects"]
    assert names(c.list_folders("Work/", "%")) == ["Work/Notes", "Work/Projects"]
    assert names(c.list_folders("", "Work/*")) == ["Work/Notes", "Work/Projects", "Work/Projects/2026"]
    assert names(c.list_folders("", "*2026")) == ["Work/Projects/2026"]
    assert names(c.list_folders("", "w%")) == []  # case-sensitive except INBOX
    assert names(c.list_folders("", "inbox")) == ["INBOX"]
    assert names(c.list_folders("", "Nope*")) == []
    # duplicates and trailing separators
    with pytest.raises(Exception):
        c.create_folder("Personal")
    with pytest.raises(Exception):
        c.create_folder("INBOX")
    c.create_folder("Trailing/")
    assert "Trailing" in names(c.list_folders())
    # non-ASCII names go through modified UTF-7
    c.create_folder("Größe ✓")
    assert "Größe ✓" in names(c.list_folders())
    c.select_folder("Größe ✓")
    c.logout()


def test_rename_and_delete(server):
    send_many(server, [msg("one"), msg("two")])
    c = client(server)
    c.create_folder("Work/Projects")
    c.select_folder("INBOX")
    c.copy([1], "Work/Projects")
    c.unselect_folder()
    c.rename_folder("Work", "Jobs")
    n = names(c.list_folders())
    assert "Jobs" in n and "Jobs/Projects" in n and "Work" not in n and "Work/Projects" not in n
    assert c.select_folder("Jobs/Projects")[b"EXISTS"] == 1
    c.unselect_folder()
    with pytest.raises(Exception):
        c.rename_folder("NoSuch", "Other")
    with pytest.raises(Exception):
        c.rename_folder("Jobs", "Sent")  # target exists
    # DELETE a leaf; deleting a parent with children leaves it \Noselect or refuses (RFC 3501 6.3.4)
    c.delete_folder("Jobs/Projects")
    assert "Jobs/Projects" not in names(c.list_folders())
    c.delete_folder("Jobs")
    assert "Jobs" not in names(c.list_folders())
    with pytest.raises(Exception):
        c.delete_folder("INBOX")
    with pytest.raises(Exception):
        c.delete_folder("NoSuch")
    c.logout()


def test_rename_inbox_moves_messages(server):
    send_many(server, [msg("one"), msg("two")])
    c = client(server)
    v = c.folder_status("INBOX", [b"UIDVALIDITY"])[b"UIDVALIDITY"]
    c.rename_folder("INBOX", "Old Inbox")
    assert c.folder_status("Old Inbox", [b"MESSAGES"])[b"MESSAGES"] == 2
    st = c.folder_status("INBOX", [b"MESSAGES", b"UIDNEXT", b"UIDVALIDITY"])
    assert st[b"MESSAGES"] == 0
    # INBOX keeps existing; any UIDs it hands out later must not collide with the old ones
    assert st[b"UIDVALIDITY"] != v or st[b"UIDNEXT"] >= 3
    c.logout()
    send_many(server, [msg("three")])
    c = client(server)
    assert c.select_folder("INBOX")[b"EXISTS"] == 1
    c.logout()


def test_subscribe_lsub(server):
    c = client(server)
    c.create_folder("Lists/rust")
    c.create_folder("Lists/python")
    c.subscribe_folder("Lists/rust")
    subs = names(c.list_sub_folders())
    assert "Lists/rust" in subs and "Lists/python" not in subs
    c.unsubscribe_folder("Lists/rust")
    assert "Lists/rust" not in names(c.list_sub_folders())
    c.subscribe_folder("Lists/python")
    r = Raw(server.port("imap"))
    r.login()
    u = r.ok('LSUB "" "Lists/*"')
    assert u == [b'* LSUB () "/" Lists/python\r\n'] or (len(u) == 1 and b"Lists/python" in u[0]), u
    u = r.ok('LIST (SUBSCRIBED) "" "Lists/*"')
    assert len(u) == 1 and b"\\Subscribed" in u[0] and b"Lists/python" in u[0], u
    u = r.ok('LIST "" "Lists/*" RETURN (SUBSCRIBED)')
    assert len(u) == 2 and sum(b"\\Subscribed" in x for x in u) == 1, u
    # subscribing to a non-existent name is allowed (RFC 3501 6.3.6) or refused; never breaks
    status, _ = r.cmd("SUBSCRIBE Ghost")
    assert status_word(status) in (b"OK", b"NO")
    r.close()
    c.logout()


def test_status_including_size(server):
    send_many(server, [msg("one"), msg("two", body="x" * 1000 + "\r\n")])
    c = client(server)
    c.select_folder("INBOX")
    sizes = [v[b"RFC822.SIZE"] for v in c.fetch("1:*", ["RFC822.SIZE"]).values()]
    c.add_flags([1], [b"\\Seen"])
    c.unselect_folder()
    st = c.folder_status("INBOX", [b"MESSAGES", b"UIDNEXT", b"UIDVALIDITY", b"UNSEEN", b"SIZE", b"RECENT",
                                   b"HIGHESTMODSEQ"])
    assert st[b"MESSAGES"] == 2 and st[b"UIDNEXT"] == 3 and st[b"UNSEEN"] == 1
    assert st[b"SIZE"] == sum(sizes)
    assert st[b"HIGHESTMODSEQ"] > 0
    assert c.folder_status("Trash", [b"MESSAGES", b"SIZE"]) == {b"MESSAGES": 0, b"SIZE": 0}
    with pytest.raises(Exception):
        c.folder_status("NoSuch", [b"MESSAGES"])
    r = Raw(server.port("imap"))
    r.login()
    u = r.ok('LIST "" "%" RETURN (STATUS (MESSAGES UNSEEN))')
    st = [x for x in u if x.startswith(b"* STATUS")]
    assert any(re.search(rb'"?INBOX"? \(MESSAGES 2 UNSEEN 1\)', x) for x in st), u
    assert len(st) == 6, u
    status, _ = r.cmd("STATUS INBOX (NOSUCH)")
    assert status_word(status) == b"BAD"
    r.close()
    c.logout()


def test_mailbox_names_bad_input(server):
    r = Raw(server.port("imap"))
    r.login()
    for bad in ['CREATE ""', "CREATE /", 'CREATE "a//b"', 'CREATE "Work/"']:
        status, _ = r.cmd(bad)
        assert status_word(status) in (b"OK", b"NO", b"BAD"), (bad, status)
    # every name LIST returns can be selected or is \Noselect
    for line in r.ok('LIST "" "*"'):
        name = line.rsplit(b' "/" ', 1)[1].strip()
        if b"\\Noselect" not in line and b"\\NonExistent" not in line:
            status, _ = r.cmd(b"EXAMINE " + name)
            assert status_word(status) == b"OK", (line, status)
    r.close()


def test_delete_parent_with_children_becomes_noselect(server):
    r = Raw(server.port("imap"))
    r.login()
    r.ok("CREATE p/q")
    status, _ = r.cmd("DELETE p")
    if status_word(status) == b"OK":  # RFC 3501 6.3.4: the name stays, \Noselect
        u = r.ok('LIST "" "%"')
        assert any(b"\\Noselect" in x and x.rstrip().endswith((b' "p"', b" p")) for x in u), u
        status, _ = r.cmd("SELECT p")
        assert status_word(status) == b"NO"
        r.ok("CREATE p")  # can be re-created as a real mailbox
    u = r.ok('LIST "" "p/%"')
    assert len(u) == 1 and b"p/q" in u[0], u
    r.close()
