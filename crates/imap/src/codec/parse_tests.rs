//! Parser tests, mostly with command lines real clients send.

use super::parse::{parse_command, ParseOptions};
use super::response::Code;
use super::types::*;

fn p(s: &str) -> CommandBody {
    p_bytes(s.as_bytes())
}

fn p_bytes(s: &[u8]) -> CommandBody {
    match parse_command(s, &ParseOptions::default()) {
        Ok(c) => c.body,
        Err(e) => panic!("{:?} failed: {e}", String::from_utf8_lossy(s)),
    }
}

fn err(s: &str) -> super::parse::ParseError {
    match parse_command(s.as_bytes(), &ParseOptions::default()) {
        Ok(c) => panic!("{s:?} parsed as {c:?}"),
        Err(e) => e,
    }
}

fn set(s: &str) -> SequenceSet {
    match p(&format!("t UID EXPUNGE {s}")) {
        CommandBody::UidExpunge(s) => s,
        _ => unreachable!(),
    }
}

fn mbox(s: &str) -> Mailbox {
    Mailbox::new(s)
}

fn atom(s: &str) -> Atom {
    Atom::new(s).unwrap()
}

fn date(y: u16, m: u8, d: u8) -> Date {
    Date::new(y, m, d).unwrap()
}

#[test]
fn simple_commands_any_case() {
    assert_eq!(p("1 capability"), CommandBody::Capability);
    assert_eq!(p("a NOOP"), CommandBody::Noop);
    assert_eq!(p("a logout"), CommandBody::Logout);
    assert_eq!(p("a StartTLS"), CommandBody::StartTls);
    assert_eq!(p("a IDLE"), CommandBody::Idle);
    assert_eq!(p("a CHECK"), CommandBody::Check);
    assert_eq!(p("a CLOSE"), CommandBody::Close);
    assert_eq!(p("a UNSELECT"), CommandBody::Unselect);
    assert_eq!(p("a EXPUNGE"), CommandBody::Expunge);
    assert_eq!(p("a NAMESPACE"), CommandBody::Namespace);
    // Trailing spaces are tolerated.
    assert_eq!(p("a NOOP  "), CommandBody::Noop);
}

#[test]
fn tag_is_kept() {
    let c = parse_command(b"ABCD1 NOOP", &ParseOptions::default()).unwrap();
    assert_eq!(c.tag.as_str(), "ABCD1");
    let c = parse_command(b"A.1] NOOP", &ParseOptions::default()).unwrap();
    assert_eq!(c.tag.as_str(), "A.1]");
}

#[test]
fn login_variants() {
    // imaplib quotes when needed; Outlook always quotes.
    assert_eq!(
        p(r#"ABCD1 LOGIN "user@example.org" "pa ss\"w\\d""#),
        CommandBody::Login {
            username: "user@example.org".into(),
            password: "pa ss\"w\\d".into()
        }
    );
    assert_eq!(
        p("a LOGIN bob {6}\r\nsecret"),
        CommandBody::Login {
            username: "bob".into(),
            password: "secret".into()
        }
    );
    assert_eq!(
        p("a LOGIN {3+}\r\nbob {6+}\r\npässw"),
        CommandBody::Login {
            username: "bob".into(),
            password: "pässw".into()
        }
    );
}

#[test]
fn authenticate() {
    // Thunderbird / mbsync with SASL-IR.
    assert_eq!(
        p("2 authenticate PLAIN AGFsaWNlAHNlY3JldA=="),
        CommandBody::Authenticate {
            mechanism: atom("PLAIN"),
            initial_response: Some(b"\0alice\0secret".to_vec())
        }
    );
    assert_eq!(
        p("a AUTHENTICATE plain"),
        CommandBody::Authenticate {
            mechanism: atom("PLAIN"),
            initial_response: None
        }
    );
    assert_eq!(
        p("a AUTHENTICATE PLAIN ="),
        CommandBody::Authenticate {
            mechanism: atom("PLAIN"),
            initial_response: Some(vec![])
        }
    );
    assert!(err("a AUTHENTICATE PLAIN !!!").message.contains("base64"));
}

#[test]
fn id_and_enable() {
    // Apple Mail.
    let c = p(
        r#"1 ID ("name" "Mac OS X Mail" "version" "16.0 (3731.500.231)" "os" "Mac OS X" "os-version" "13.4 (22F66)" "vendor" "Apple Inc.")"#,
    );
    let CommandBody::Id(Some(params)) = c else {
        panic!()
    };
    assert_eq!(params.len(), 5);
    assert_eq!(params[0], ("name".into(), Some("Mac OS X Mail".into())));
    assert_eq!(p("a ID NIL"), CommandBody::Id(None));
    assert_eq!(
        p(r#"a ID ("name" NIL)"#),
        CommandBody::Id(Some(vec![("name".into(), None)]))
    );
    assert_eq!(
        p("a ENABLE CONDSTORE QRESYNC UTF8=ACCEPT"),
        CommandBody::Enable(vec![
            atom("CONDSTORE"),
            atom("QRESYNC"),
            atom("UTF8=ACCEPT")
        ])
    );
    assert!(err("a ENABLE").message.contains("capability"));
}

#[test]
fn select_and_examine() {
    assert_eq!(
        p("5 select \"INBOX\" (CONDSTORE)"),
        CommandBody::Select {
            mailbox: mbox("INBOX"),
            read_only: false,
            params: SelectParams {
                condstore: true,
                qresync: None
            }
        }
    );
    assert_eq!(
        p("a EXAMINE inbox"),
        CommandBody::Select {
            mailbox: mbox("INBOX"),
            read_only: true,
            params: SelectParams::default()
        }
    );
    // RFC 7162 examples.
    assert_eq!(
        p("A02 SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541))"),
        CommandBody::Select {
            mailbox: mbox("INBOX"),
            read_only: false,
            params: SelectParams {
                condstore: false,
                qresync: Some(QResyncParams {
                    uid_validity: 67890007,
                    mod_seq: 20050715194045000,
                    known_uids: Some(set("41,43:211,214:541")),
                    seq_match: None
                })
            }
        }
    );
    let CommandBody::Select { params, .. } = p(
        "B04 SELECT INBOX (QRESYNC (67890007 90060115194045000 1:29997 (5000,7500,9000,9990:9999 15000,22500,27000,29970,29973,29976,29979,29982,29985,29988,29991,29994,29997)))",
    ) else {
        panic!()
    };
    let q = params.qresync.unwrap();
    assert_eq!(q.known_uids, Some(set("1:29997")));
    assert_eq!(q.seq_match.unwrap().0, set("5000,7500,9000,9990:9999"));
    let CommandBody::Select { params, .. } =
        p("a SELECT INBOX (QRESYNC (1 2 (1:2 3:4)) CONDSTORE)")
    else {
        panic!()
    };
    assert!(params.condstore);
    assert_eq!(
        params.qresync.unwrap().seq_match,
        Some((set("1:2"), set("3:4")))
    );
    assert!(err("a SELECT INBOX (FOO)").message.contains("FOO"));
}

#[test]
fn mailbox_names() {
    assert_eq!(
        p("a DELETE \"Entw&APw-rfe\""),
        CommandBody::Delete(mbox("Entwürfe"))
    );
    assert_eq!(
        p("a SUBSCRIBE InBoX"),
        CommandBody::Subscribe(mbox("INBOX"))
    );
    assert_eq!(
        p("a UNSUBSCRIBE {5}\r\nTrash"),
        CommandBody::Unsubscribe(mbox("Trash"))
    );
    assert_eq!(
        p("a RENAME \"Old Stuff\" Archive/2023"),
        CommandBody::Rename {
            from: mbox("Old Stuff"),
            to: mbox("Archive/2023")
        }
    );
    assert!(err("a DELETE \"&Jjo\"").message.contains("UTF-7"));
    // With UTF8=ACCEPT, names are UTF-8 and `&` is just a character.
    let c = parse_command(
        "a SELECT \"Entwürfe & Co\"".as_bytes(),
        &ParseOptions { utf8_accept: true },
    )
    .unwrap();
    assert_eq!(
        c.body,
        CommandBody::Select {
            mailbox: mbox("Entwürfe & Co"),
            read_only: false,
            params: SelectParams::default()
        }
    );
    // Raw UTF-8 without UTF8=ACCEPT is taken as meant.
    assert_eq!(p("a DELETE \"Müll\""), CommandBody::Delete(mbox("Müll")));
}

#[test]
fn create_with_special_use() {
    assert_eq!(
        p("t1 CREATE \"Important Messages\" (USE (\\Important))"),
        CommandBody::Create {
            mailbox: mbox("Important Messages"),
            special_use: vec![MailboxAttr::Important]
        }
    );
    assert_eq!(
        p("a CREATE Sent"),
        CommandBody::Create {
            mailbox: mbox("Sent"),
            special_use: vec![]
        }
    );
}

#[test]
fn list_basic_and_extended() {
    let CommandBody::List(l) = p("2 LIST \"\" \"*\"") else {
        panic!()
    };
    assert_eq!(l.reference, "");
    assert_eq!(l.patterns, vec!["*"]);
    assert!(!l.is_extended());

    let CommandBody::List(l) = p("A LIST \"\" %") else {
        panic!()
    };
    assert_eq!(l.patterns, vec!["%"]);

    // Thunderbird.
    let CommandBody::List(l) = p("3 list (subscribed) \"\" \"*\" return (special-use)") else {
        panic!()
    };
    assert!(l.selection.subscribed);
    assert!(l.returns.special_use);
    assert!(l.is_extended());

    // RFC 5258 / 5819.
    let CommandBody::List(l) =
        p("A01 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (\"%\" Other/%) RETURN (CHILDREN STATUS (MESSAGES UNSEEN))")
    else {
        panic!()
    };
    assert!(l.selection.subscribed && l.selection.recursive_match);
    assert_eq!(l.patterns, vec!["%", "Other/%"]);
    assert!(l.returns.children);
    assert_eq!(
        l.returns.status,
        Some(vec![StatusItem::Messages, StatusItem::Unseen])
    );
    assert!(err("a LIST (RECURSIVEMATCH) \"\" *")
        .message
        .contains("RECURSIVEMATCH"));

    let CommandBody::List(l) = p("a LIST \"\" \"&ZeVnLIqe-/%\"") else {
        panic!()
    };
    assert_eq!(l.patterns, vec!["日本語/%"]);

    assert_eq!(
        p("13 lsub \"\" \"*\""),
        CommandBody::Lsub {
            reference: "".into(),
            pattern: "*".into()
        }
    );
}

#[test]
fn status() {
    assert_eq!(
        p("a STATUS \"Sent Messages\" (MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ)"),
        CommandBody::Status {
            mailbox: mbox("Sent Messages"),
            items: vec![
                StatusItem::Messages,
                StatusItem::UidNext,
                StatusItem::UidValidity,
                StatusItem::Unseen,
                StatusItem::HighestModSeq
            ]
        }
    );
    assert_eq!(
        p("a status INBOX (size appendlimit deleted mailboxid recent)"),
        CommandBody::Status {
            mailbox: mbox("INBOX"),
            items: vec![
                StatusItem::Size,
                StatusItem::AppendLimit,
                StatusItem::Deleted,
                StatusItem::MailboxId,
                StatusItem::Recent
            ]
        }
    );
    assert!(err("a STATUS INBOX ()").message.contains("Empty"));
    assert!(err("a STATUS INBOX (BOGUS)").message.contains("BOGUS"));
}

#[test]
fn append_forms() {
    // imaplib: empty flag list and a quoted date.
    assert_eq!(
        p("ABCD7 APPEND INBOX () \" 1-Jan-2024 00:00:00 +0000\" {5}\r\nhello"),
        CommandBody::Append {
            mailbox: mbox("INBOX"),
            messages: vec![AppendMessage {
                flags: vec![],
                date: Some(DateTime::new(date(2024, 1, 1), 0, 0, 0, 0).unwrap()),
                content: AppendContent::Literal {
                    data: b"hello".to_vec(),
                    binary: false,
                    utf8: false
                }
            }]
        }
    );
    // mbsync: LITERAL+ and a time zone.
    let CommandBody::Append { messages, .. } =
        p("5 APPEND \"Sent\" (\\Seen $Forwarded) \"27-Mar-2024 10:11:12 -0730\" {4+}\r\nab\r\n")
    else {
        panic!()
    };
    assert_eq!(
        messages[0].flags,
        vec![Flag::Seen, Flag::keyword("$Forwarded").unwrap()]
    );
    assert_eq!(messages[0].date.unwrap().zone_minutes, -450);
    // MULTIAPPEND.
    let CommandBody::Append { messages, .. } =
        p("A003 APPEND saved-messages (\\Seen) {3}\r\nabc (\\Draft) {3}\r\ndef {1}\r\ng")
    else {
        panic!()
    };
    assert_eq!(messages.len(), 3);
    assert_eq!(messages[1].flags, vec![Flag::Draft]);
    // Binary literal.
    let CommandBody::Append { messages, .. } = p_bytes(b"a APPEND INBOX ~{3}\r\na\0b") else {
        panic!()
    };
    assert_eq!(
        messages[0].content,
        AppendContent::Literal {
            data: b"a\0b".to_vec(),
            binary: true,
            utf8: false
        }
    );
    // NUL in a normal literal is refused.
    assert!(parse_command(b"a APPEND INBOX {3}\r\na\0b", &ParseOptions::default()).is_err());
    // RFC 6855 UTF8 form.
    let CommandBody::Append { messages, .. } = p("a APPEND INBOX UTF8 (~{2}\r\nhi)") else {
        panic!()
    };
    assert!(matches!(
        messages[0].content,
        AppendContent::Literal { utf8: true, .. }
    ));
}

#[test]
fn append_catenate() {
    let cmd = "A003 APPEND Drafts (\\Seen \\Draft $MDNSent) CATENATE (URL \"/Drafts;UIDVALIDITY=385759045/;UID=20/;section=HEADER\" TEXT {6}\r\n\r\nText URL \"/Drafts;UIDVALIDITY=385759045/;UID=30;PARTIAL=0.100\")";
    let CommandBody::Append { mailbox, messages } = p(cmd) else {
        panic!()
    };
    assert_eq!(mailbox, mbox("Drafts"));
    let AppendContent::Catenate(parts) = &messages[0].content else {
        panic!()
    };
    assert_eq!(
        parts,
        &vec![
            CatenatePart::Url("/Drafts;UIDVALIDITY=385759045/;UID=20/;section=HEADER".into()),
            CatenatePart::Text {
                data: b"\r\nText".to_vec(),
                binary: false
            },
            CatenatePart::Url("/Drafts;UIDVALIDITY=385759045/;UID=30;PARTIAL=0.100".into()),
        ]
    );
}

#[test]
fn search_basic() {
    let CommandBody::Search(s) = p("ABCD3 SEARCH ALL") else {
        panic!()
    };
    assert!(!s.uid && s.returns.is_none() && s.charset.is_none());
    assert_eq!(s.criteria, SearchKey::And(vec![SearchKey::All]));

    let CommandBody::Search(s) = p("5 UID SEARCH 1:* NOT DELETED") else {
        panic!()
    };
    assert!(s.uid);
    assert_eq!(
        s.criteria,
        SearchKey::And(vec![
            SearchKey::SequenceSet(set("1:*")),
            SearchKey::Not(Box::new(SearchKey::Deleted))
        ])
    );

    let CommandBody::Search(s) = p(
        "A282 SEARCH FLAGGED SINCE 1-Feb-1994 NOT FROM \"Smith\" OR (SEEN UNANSWERED) LARGER 10000",
    ) else {
        panic!()
    };
    assert_eq!(
        s.criteria,
        SearchKey::And(vec![
            SearchKey::Flagged,
            SearchKey::Since(date(1994, 2, 1)),
            SearchKey::Not(Box::new(SearchKey::From("Smith".into()))),
            SearchKey::Or(
                Box::new(SearchKey::And(vec![SearchKey::Seen, SearchKey::Unanswered])),
                Box::new(SearchKey::Larger(10000))
            ),
        ])
    );
}

#[test]
fn search_charset_and_literals() {
    // imapclient sends non-ASCII text as a literal with CHARSET UTF-8.
    let CommandBody::Search(s) = p("a SEARCH CHARSET UTF-8 SUBJECT {6}\r\nnaïve") else {
        panic!()
    };
    assert_eq!(s.charset.as_deref(), Some("UTF-8"));
    assert_eq!(
        s.criteria,
        SearchKey::And(vec![SearchKey::Subject("naïve".into())])
    );
    let CommandBody::Search(s) = p_bytes(b"a SEARCH CHARSET ISO-8859-1 BODY {4}\r\nna\xefv") else {
        panic!()
    };
    assert_eq!(
        s.criteria,
        SearchKey::And(vec![SearchKey::Body("naïv".into())])
    );
    let e = err("a SEARCH CHARSET KOI8-R TEXT x");
    assert_eq!(e.tag.unwrap().as_str(), "a");
    assert!(matches!(e.code, Some(Code::BadCharset(_))));
    let CommandBody::Search(s) =
        p("a SEARCH HEADER Message-ID \"<abc@example.org>\" TEXT \"\" KEYWORD $Junk UNKEYWORD NonJunk")
    else {
        panic!()
    };
    assert_eq!(
        s.criteria,
        SearchKey::And(vec![
            SearchKey::Header("Message-ID".into(), "<abc@example.org>".into()),
            SearchKey::Text("".into()),
            SearchKey::Keyword(atom("$Junk")),
            SearchKey::Unkeyword(atom("NonJunk")),
        ])
    );
}

#[test]
fn search_extensions() {
    let CommandBody::Search(s) = p("A282 SEARCH RETURN (MIN COUNT) FLAGGED") else {
        panic!()
    };
    assert_eq!(
        s.returns,
        Some(vec![SearchReturn::Min, SearchReturn::Count])
    );
    let CommandBody::Search(s) = p("a SEARCH RETURN () ALL") else {
        panic!()
    };
    assert_eq!(s.returns, Some(vec![]));
    let CommandBody::Search(s) = p("A301 UID SEARCH RETURN (SAVE) SINCE 19-Mar-2007 NOT SEEN")
    else {
        panic!()
    };
    assert_eq!(s.returns, Some(vec![SearchReturn::Save]));
    let CommandBody::Search(s) = p("a UID SEARCH RETURN (PARTIAL -1:-100 COUNT) UNDELETED") else {
        panic!()
    };
    assert_eq!(
        s.returns,
        Some(vec![SearchReturn::Partial(-1, -100), SearchReturn::Count])
    );
    assert!(err("a SEARCH RETURN (PARTIAL 1:-5) ALL")
        .message
        .contains("PARTIAL"));

    let CommandBody::Search(s) = p(
        "a SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338 MODSEQ 5 YOUNGER 3600 OLDER 60 $ UID $",
    ) else {
        panic!()
    };
    assert_eq!(
        s.criteria,
        SearchKey::And(vec![
            SearchKey::ModSeq {
                entry: Some(("/flags/\\draft".into(), EntryType::All)),
                mod_seq: 620162338
            },
            SearchKey::ModSeq {
                entry: None,
                mod_seq: 5
            },
            SearchKey::Younger(3600),
            SearchKey::Older(60),
            SearchKey::SequenceSet(SequenceSet::Saved),
            SearchKey::Uid(SequenceSet::Saved),
        ])
    );
    let CommandBody::Search(s) = p(
        "a SEARCH SAVEDBEFORE 1-Jan-2024 SAVEDON \"2-Jan-2024\" SAVEDSINCE 3-jan-2024 SAVEDATESUPPORTED EMAILID M6d99ac3275bb4e THREADID T64b478a75b7ea9",
    ) else {
        panic!()
    };
    assert_eq!(
        s.criteria,
        SearchKey::And(vec![
            SearchKey::SavedBefore(date(2024, 1, 1)),
            SearchKey::SavedOn(date(2024, 1, 2)),
            SearchKey::SavedSince(date(2024, 1, 3)),
            SearchKey::SaveDateSupported,
            SearchKey::EmailId("M6d99ac3275bb4e".into()),
            SearchKey::ThreadId("T64b478a75b7ea9".into()),
        ])
    );
    let CommandBody::Search(s) = p("a SEARCH SENTBEFORE 1-Jan-2024 SENTON 2-Jan-2024 SENTSINCE 3-Jan-2024 BEFORE 4-Jan-2024 ON 5-Jan-2024 NEW OLD RECENT ANSWERED DRAFT UNDRAFT UNFLAGGED UNDELETED UNSEEN SMALLER 5 BCC x CC y TO z") else {
        panic!()
    };
    let SearchKey::And(keys) = s.criteria else {
        panic!()
    };
    assert_eq!(keys.len(), 18);
}

#[test]
fn search_errors() {
    assert!(err("a SEARCH").message.contains("Missing"));
    assert!(err("a SEARCH BOGUS").message.contains("BOGUS"));
    assert!(err("a SEARCH 0").message.contains("0"));
    assert!(err("a SEARCH SINCE 31-Feb-2024").message.contains("date"));
    assert!(err("a SEARCH (SEEN").message.contains("Missing"));
    let deep = format!("a SEARCH {}SEEN{}", "(".repeat(200), ")".repeat(200));
    assert!(err(&deep).message.contains("deeply"));
    let nots = format!("a SEARCH {}SEEN", "NOT ".repeat(200));
    assert!(err(&nots).message.contains("deeply"));
}

#[test]
fn sort_and_thread() {
    let CommandBody::Sort(s) = p("A282 SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994") else {
        panic!()
    };
    assert_eq!(
        s.criteria,
        vec![SortCriterion {
            reverse: false,
            key: SortKey::Subject
        }]
    );
    assert_eq!(s.charset, "UTF-8");
    let CommandBody::Sort(s) =
        p("a UID SORT RETURN (MIN COUNT) (REVERSE ARRIVAL DISPLAYFROM reverse displayto) us-ascii ALL")
    else {
        panic!()
    };
    assert!(s.uid);
    assert_eq!(
        s.returns,
        Some(vec![SearchReturn::Min, SearchReturn::Count])
    );
    assert_eq!(s.charset, "US-ASCII");
    assert_eq!(
        s.criteria,
        vec![
            SortCriterion {
                reverse: true,
                key: SortKey::Arrival
            },
            SortCriterion {
                reverse: false,
                key: SortKey::DisplayFrom
            },
            SortCriterion {
                reverse: true,
                key: SortKey::DisplayTo
            },
        ]
    );
    let CommandBody::Thread(t) = p("A283 THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000") else {
        panic!()
    };
    assert_eq!(t.algorithm, ThreadAlgorithm::OrderedSubject);
    assert_eq!(
        t.search,
        SearchKey::And(vec![SearchKey::Since(date(2000, 3, 5))])
    );
    let CommandBody::Thread(t) = p("a UID THREAD REFS UTF-8 ALL") else {
        panic!()
    };
    assert!(t.uid);
    assert_eq!(t.algorithm, ThreadAlgorithm::Refs);
    assert!(err("a THREAD BOGUS UTF-8 ALL").message.contains("BOGUS"));
}

#[test]
fn fetch_thunderbird_and_apple() {
    let CommandBody::Fetch(f) = p("8 UID fetch 245 (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Bcc Subject Date Message-ID Priority X-Priority References Newsgroups In-Reply-To Content-Type Reply-To)])") else {
        panic!()
    };
    assert!(f.uid);
    assert_eq!(f.set, set("245"));
    let FetchItems::Attrs(a) = &f.items else {
        panic!()
    };
    assert_eq!(a[0], FetchAttr::Uid);
    assert_eq!(a[1], FetchAttr::Rfc822Size);
    assert_eq!(a[2], FetchAttr::Flags);
    let FetchAttr::BodySection {
        peek: true,
        section,
        partial: None,
    } = &a[3]
    else {
        panic!()
    };
    let Some(SectionText::HeaderFields(fields)) = &section.text else {
        panic!()
    };
    assert_eq!(fields.len(), 14);
    assert_eq!(fields[0], "From");

    let CommandBody::Fetch(f) = p("11 UID fetch 245 (UID RFC822.SIZE BODY.PEEK[]<0.10240>)") else {
        panic!()
    };
    assert_eq!(
        f.items,
        FetchItems::Attrs(vec![
            FetchAttr::Uid,
            FetchAttr::Rfc822Size,
            FetchAttr::BodySection {
                peek: true,
                section: Section::default(),
                partial: Some(Partial {
                    offset: 0,
                    length: 10240
                })
            }
        ])
    );

    let CommandBody::Fetch(f) = p("6 UID FETCH 1:10 (BODYSTRUCTURE INTERNALDATE ENVELOPE BODY[1.2.MIME] body[2.text] BODY[3.HEADER.FIELDS.NOT (Received)] BODY[1] RFC822.HEADER RFC822.TEXT RFC822 BODY)") else {
        panic!()
    };
    let FetchItems::Attrs(a) = &f.items else {
        panic!()
    };
    let sec = |attr: &FetchAttr| match attr {
        FetchAttr::BodySection { section, .. } => section.clone(),
        _ => panic!(),
    };
    assert_eq!(
        sec(&a[3]),
        Section {
            part: vec![1, 2],
            text: Some(SectionText::Mime)
        }
    );
    assert_eq!(
        sec(&a[4]),
        Section {
            part: vec![2],
            text: Some(SectionText::Text)
        }
    );
    assert_eq!(
        sec(&a[5]),
        Section {
            part: vec![3],
            text: Some(SectionText::HeaderFieldsNot(vec!["Received".into()]))
        }
    );
    assert_eq!(
        sec(&a[6]),
        Section {
            part: vec![1],
            text: None
        }
    );
    assert_eq!(a[10], FetchAttr::Body);
    assert!(err("a FETCH 1 BODY[MIME]").message.contains("MIME"));
}

#[test]
fn fetch_macros_and_modifiers() {
    let CommandBody::Fetch(f) = p("a FETCH 1:* ALL") else {
        panic!()
    };
    assert_eq!(f.items, FetchItems::All);
    assert_eq!(f.items.attrs().len(), 4);
    let CommandBody::Fetch(f) = p("a FETCH 1 fast") else {
        panic!()
    };
    assert_eq!(f.items, FetchItems::Fast);
    let CommandBody::Fetch(f) = p("a FETCH 1 FULL") else {
        panic!()
    };
    assert_eq!(f.items.attrs().len(), 5);
    let CommandBody::Fetch(f) = p("a FETCH 2 UID") else {
        panic!()
    };
    assert_eq!(f.items, FetchItems::Attrs(vec![FetchAttr::Uid]));
    let CommandBody::Fetch(f) = p("6 UID fetch 1:* (FLAGS) (CHANGEDSINCE 1234)") else {
        panic!()
    };
    assert_eq!(f.changed_since, Some(1234));
    assert!(!f.vanished);
    let CommandBody::Fetch(f) = p("s100 UID FETCH 300:500 (FLAGS) (CHANGEDSINCE 12345 VANISHED)")
    else {
        panic!()
    };
    assert!(f.vanished);
    assert!(err("a FETCH 1 (FLAGS) (VANISHED CHANGEDSINCE 1)")
        .message
        .contains("VANISHED"));
    let CommandBody::Fetch(f) = p(
        "a UID FETCH $ (MODSEQ EMAILID THREADID SAVEDATE BINARY.PEEK[1.2]<0.100> BINARY[] BINARY.SIZE[3])",
    ) else {
        panic!()
    };
    assert_eq!(f.set, SequenceSet::Saved);
    assert_eq!(
        f.items,
        FetchItems::Attrs(vec![
            FetchAttr::ModSeq,
            FetchAttr::EmailId,
            FetchAttr::ThreadId,
            FetchAttr::SaveDate,
            FetchAttr::Binary {
                peek: true,
                part: vec![1, 2],
                partial: Some(Partial {
                    offset: 0,
                    length: 100
                })
            },
            FetchAttr::Binary {
                peek: false,
                part: vec![],
                partial: None
            },
            FetchAttr::BinarySize { part: vec![3] },
        ])
    );
    assert!(err("a FETCH 1 (FLAGS").message.contains("Missing"));
    assert!(err("a FETCH 1 (BOGUS)").message.contains("BOGUS"));
    assert!(err("a FETCH 1:0 FLAGS").message.contains("0"));
}

#[test]
fn store_forms() {
    assert_eq!(
        p("10 uid store 245 +Flags (\\Seen)"),
        CommandBody::Store(StoreCommand {
            uid: true,
            set: set("245"),
            kind: StoreKind::Add,
            silent: false,
            flags: vec![Flag::Seen],
            unchanged_since: None
        })
    );
    assert_eq!(
        p("d105 STORE 7,5,9 (UNCHANGEDSINCE 320162338) -FLAGS.SILENT (\\Deleted $Junk)"),
        CommandBody::Store(StoreCommand {
            uid: false,
            set: set("7,5,9"),
            kind: StoreKind::Remove,
            silent: true,
            flags: vec![Flag::Deleted, Flag::keyword("$Junk").unwrap()],
            unchanged_since: Some(320162338)
        })
    );
    // Flags without parentheses (RFC 3501 allows it).
    assert_eq!(
        p("a STORE 1 FLAGS \\Seen \\Flagged"),
        CommandBody::Store(StoreCommand {
            uid: false,
            set: set("1"),
            kind: StoreKind::Replace,
            silent: false,
            flags: vec![Flag::Seen, Flag::Flagged],
            unchanged_since: None
        })
    );
    let CommandBody::Store(s) = p("a STORE 1 FLAGS ()") else {
        panic!()
    };
    assert!(s.flags.is_empty());
    assert!(err("a STORE 1 +LABELS (x)").message.contains("LABELS"));
}

#[test]
fn copy_move_expunge() {
    assert_eq!(
        p("16 uid move 245 \"Trash\""),
        CommandBody::Move {
            uid: true,
            set: set("245"),
            mailbox: mbox("Trash")
        }
    );
    assert_eq!(
        p("a COPY 2:4 MEETING"),
        CommandBody::Copy {
            uid: false,
            set: set("2:4"),
            mailbox: mbox("MEETING")
        }
    );
    assert_eq!(p("15 UID EXPUNGE 1:3"), CommandBody::UidExpunge(set("1:3")));
    assert!(err("a UID FOO 1").message.contains("FOO"));
}

#[test]
fn quota() {
    assert_eq!(
        p("12 getquotaroot \"INBOX\""),
        CommandBody::GetQuotaRoot(mbox("INBOX"))
    );
    assert_eq!(p("a GETQUOTA \"\""), CommandBody::GetQuota("".into()));
    assert_eq!(
        p("A001 SETQUOTA \"\" (STORAGE 512 message 1000)"),
        CommandBody::SetQuota {
            root: "".into(),
            limits: vec![
                QuotaLimit {
                    resource: atom("STORAGE"),
                    limit: 512
                },
                QuotaLimit {
                    resource: atom("MESSAGE"),
                    limit: 1000
                }
            ]
        }
    );
}

#[test]
fn sequence_set_shapes() {
    let s = set("1,3:5,*,7:*");
    assert_eq!(s.to_string(), "1,3:5,*,7:*");
    assert!(s.contains(100, 100));
    assert!(!s.contains(2, 100));
    assert_eq!(set("$"), SequenceSet::Saved);
    assert!(err("a UID EXPUNGE 1,").message.contains("sequence set"));
    assert!(err("a UID EXPUNGE 4294967296")
        .message
        .contains("sequence set"));
}

#[test]
fn errors_carry_tag() {
    let e = err("a1 FOO");
    assert_eq!(e.tag.unwrap().as_str(), "a1");
    assert!(e.message.contains("Unknown command FOO"));
    let e = err("");
    assert!(e.tag.is_none());
    let e = err("+ x");
    assert!(e.tag.is_none());
    let e = err("a3 SELECT");
    assert_eq!(e.tag.unwrap().as_str(), "a3");
    let e = err("a LOGIN \"unterminated");
    assert!(e.message.contains("Unterminated"));
    let e = err("a LOGIN {10}\r\nshort");
    assert!(e.message.contains("shorter"));
    let e = err("a NOOP extra");
    assert!(e.message.contains("end of command"));
    let e = err("a LOGIN \"a\\b\" c");
    assert!(e.message.contains("escape"));
    let e = err("a");
    assert_eq!(e.tag.unwrap().as_str(), "a");
}
