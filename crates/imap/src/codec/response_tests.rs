//! Serializer tests: exact bytes, as in the RFC examples where possible.

use super::response::*;
use super::types::*;

fn enc(r: impl Into<Response>) -> String {
    String::from_utf8(Encoder::default().to_bytes(&r.into())).unwrap()
}

fn enc_utf8(r: impl Into<Response>) -> String {
    String::from_utf8(Encoder { utf8_accept: true }.to_bytes(&r.into())).unwrap()
}

fn tag(s: &str) -> Option<Tag> {
    Some(Tag::new(s).unwrap())
}

fn range(a: u32, b: u32) -> SequenceSet {
    SequenceSet::range(a, b)
}

#[test]
fn status_responses() {
    assert_eq!(
        enc(StatusResponse::ok(tag("a1"), "LOGIN completed")),
        "a1 OK LOGIN completed\r\n"
    );
    assert_eq!(
        enc(StatusResponse::ok(None, "").with_code(Code::UidValidity(3857529045))),
        "* OK [UIDVALIDITY 3857529045] completed\r\n"
    );
    assert_eq!(
        enc(StatusResponse::no(tag("A003"), "Quota exceeded").with_code(Code::OverQuota)),
        "A003 NO [OVERQUOTA] Quota exceeded\r\n"
    );
    assert_eq!(
        enc(StatusResponse::bad(None, "line\r\nbreak")),
        "* BAD line  break\r\n"
    );
    assert_eq!(
        enc(StatusResponse::bye("Logging out")),
        "* BYE Logging out\r\n"
    );
    assert_eq!(
        enc(StatusResponse::preauth("Welcome")),
        "* PREAUTH Welcome\r\n"
    );
}

#[test]
fn response_codes() {
    let c = |code: Code| enc(StatusResponse::ok(tag("t"), "x").with_code(code));
    assert_eq!(
        c(Code::Capability(vec!["IMAP4rev1".into(), "IDLE".into()])),
        "t OK [CAPABILITY IMAP4rev1 IDLE] x\r\n"
    );
    assert_eq!(
        c(Code::PermanentFlags {
            flags: vec![Flag::Deleted, Flag::Seen],
            keywords_allowed: true
        }),
        "t OK [PERMANENTFLAGS (\\Deleted \\Seen \\*)] x\r\n"
    );
    assert_eq!(
        c(Code::PermanentFlags {
            flags: vec![],
            keywords_allowed: false
        }),
        "t OK [PERMANENTFLAGS ()] x\r\n"
    );
    assert_eq!(
        c(Code::AppendUid {
            uid_validity: 38505,
            uids: SequenceSet::from_numbers([3955])
        }),
        "t OK [APPENDUID 38505 3955] x\r\n"
    );
    assert_eq!(
        c(Code::CopyUid {
            uid_validity: 38505,
            source: SequenceSet::from_numbers([304, 319, 320]),
            destination: range(3956, 3958)
        }),
        "t OK [COPYUID 38505 304,319:320 3956:3958] x\r\n"
    );
    assert_eq!(
        c(Code::Modified(SequenceSet::from_numbers([7, 9]))),
        "t OK [MODIFIED 7,9] x\r\n"
    );
    assert_eq!(
        c(Code::HighestModSeq(715194045007)),
        "t OK [HIGHESTMODSEQ 715194045007] x\r\n"
    );
    assert_eq!(
        c(Code::BadCharset(vec!["UTF-8".into()])),
        "t OK [BADCHARSET (UTF-8)] x\r\n"
    );
    assert_eq!(
        c(Code::MailboxId("F2212ea87-6097-4256-9d51-71338625".into())),
        "t OK [MAILBOXID (F2212ea87-6097-4256-9d51-71338625)] x\r\n"
    );
    for (code, text) in [
        (Code::Alert, "ALERT"),
        (Code::ReadOnly, "READ-ONLY"),
        (Code::ReadWrite, "READ-WRITE"),
        (Code::TryCreate, "TRYCREATE"),
        (Code::NoModSeq, "NOMODSEQ"),
        (Code::Closed, "CLOSED"),
        (Code::TooBig, "TOOBIG"),
        (Code::Nonexistent, "NONEXISTENT"),
        (Code::AlreadyExists, "ALREADYEXISTS"),
        (Code::AuthenticationFailed, "AUTHENTICATIONFAILED"),
        (Code::Unavailable, "UNAVAILABLE"),
        (Code::ServerBug, "SERVERBUG"),
        (Code::Cannot, "CANNOT"),
        (Code::InUse, "INUSE"),
        (Code::Limit, "LIMIT"),
        (Code::UidNext(5), "UIDNEXT 5"),
        (Code::Unseen(2), "UNSEEN 2"),
    ] {
        assert_eq!(c(code), format!("t OK [{text}] x\r\n"));
    }
    assert_eq!(
        c(Code::Other(
            Atom::new("X-FOO").unwrap(),
            Some("bar]baz".into())
        )),
        "t OK [X-FOO bar baz] x\r\n"
    );
}

#[test]
fn continuation() {
    assert_eq!(
        enc(Continuation::Text("Ready for literal data".into())),
        "+ Ready for literal data\r\n"
    );
    assert_eq!(enc(Continuation::Base64(vec![])), "+ \r\n");
    assert_eq!(enc(Continuation::Base64(b"hi".to_vec())), "+ aGk=\r\n");
}

#[test]
fn simple_data() {
    assert_eq!(enc(Data::Exists(23)), "* 23 EXISTS\r\n");
    assert_eq!(enc(Data::Recent(0)), "* 0 RECENT\r\n");
    assert_eq!(enc(Data::Expunge(3)), "* 3 EXPUNGE\r\n");
    assert_eq!(
        enc(Data::Flags(vec![
            Flag::Answered,
            Flag::Flagged,
            Flag::Deleted,
            Flag::Seen,
            Flag::Draft,
            Flag::keyword("$Forwarded").unwrap()
        ])),
        "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded)\r\n"
    );
    assert_eq!(
        enc(Data::Capability(vec![
            "IMAP4rev1".into(),
            "LITERAL+".into()
        ])),
        "* CAPABILITY IMAP4rev1 LITERAL+\r\n"
    );
    assert_eq!(
        enc(Data::Enabled(vec!["CONDSTORE".into()])),
        "* ENABLED CONDSTORE\r\n"
    );
    assert_eq!(enc(Data::Enabled(vec![])), "* ENABLED\r\n");
    assert_eq!(
        enc(Data::Vanished {
            earlier: true,
            uids: SequenceSet::from_numbers([41, 43, 44, 45, 46, 47, 48, 49, 50, 51])
        }),
        "* VANISHED (EARLIER) 41,43:51\r\n"
    );
    assert_eq!(
        enc(Data::Vanished {
            earlier: false,
            uids: range(405, 407)
        }),
        "* VANISHED 405:407\r\n"
    );
}

#[test]
fn list_responses() {
    let mut item = ListItem::new(
        Mailbox::new("Entwürfe"),
        Some('/'),
        vec![MailboxAttr::HasNoChildren, MailboxAttr::Drafts],
    );
    assert_eq!(
        enc(Data::List(item.clone())),
        "* LIST (\\HasNoChildren \\Drafts) \"/\" \"Entw&APw-rfe\"\r\n"
    );
    assert_eq!(
        enc_utf8(Data::List(item.clone())),
        "* LIST (\\HasNoChildren \\Drafts) \"/\" \"Entwürfe\"\r\n"
    );
    item.child_info_subscribed = true;
    assert_eq!(
        enc(Data::List(item.clone())),
        "* LIST (\\HasNoChildren \\Drafts) \"/\" \"Entw&APw-rfe\" (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n"
    );
    assert_eq!(
        enc(Data::Lsub(ListItem::new(
            Mailbox::new("a\"b"),
            None,
            vec![MailboxAttr::NoSelect]
        ))),
        "* LSUB (\\Noselect) NIL {3}\r\na\"b\r\n"
    );
    assert_eq!(
        enc(Data::List(ListItem::new(
            Mailbox::new(""),
            Some('/'),
            vec![MailboxAttr::NoSelect]
        ))),
        "* LIST (\\Noselect) \"/\" \"\"\r\n"
    );
    let mut renamed = ListItem::new(Mailbox::new("New"), Some('/'), vec![]);
    renamed.old_name = Some(Mailbox::new("Old"));
    assert_eq!(
        enc(Data::List(renamed)),
        "* LIST () \"/\" \"New\" (\"OLDNAME\" (\"Old\"))\r\n"
    );
}

#[test]
fn status_data() {
    assert_eq!(
        enc(Data::Status {
            mailbox: Mailbox::new("blurdybloop"),
            items: vec![
                StatusValue::Messages(231),
                StatusValue::UidNext(44292),
                StatusValue::HighestModSeq(7011231777),
                StatusValue::Size(1_000_000),
                StatusValue::AppendLimit(None),
                StatusValue::MailboxId("F123".into()),
            ]
        }),
        "* STATUS \"blurdybloop\" (MESSAGES 231 UIDNEXT 44292 HIGHESTMODSEQ 7011231777 SIZE 1000000 APPENDLIMIT NIL MAILBOXID (F123))\r\n"
    );
}

#[test]
fn search_sort_esearch() {
    assert_eq!(
        enc(Data::Search {
            ids: vec![2, 84, 882],
            mod_seq: None
        }),
        "* SEARCH 2 84 882\r\n"
    );
    assert_eq!(
        enc(Data::Search {
            ids: vec![],
            mod_seq: None
        }),
        "* SEARCH\r\n"
    );
    assert_eq!(
        enc(Data::Search {
            ids: vec![2, 5],
            mod_seq: Some(917162500)
        }),
        "* SEARCH 2 5 (MODSEQ 917162500)\r\n"
    );
    assert_eq!(
        enc(Data::Sort {
            ids: vec![5, 3, 4],
            mod_seq: None
        }),
        "* SORT 5 3 4\r\n"
    );
    let mut e = ESearch::new(tag("A282"), false);
    e.min = Some(2);
    e.count = Some(3);
    assert_eq!(
        enc(Data::ESearch(e)),
        "* ESEARCH (TAG \"A282\") MIN 2 COUNT 3\r\n"
    );
    let mut e = ESearch::new(tag("A283"), true);
    e.all = Some(SequenceSet::from_numbers([2, 10, 11, 12]));
    e.mod_seq = Some(7);
    assert_eq!(
        enc(Data::ESearch(e)),
        "* ESEARCH (TAG \"A283\") UID ALL 2,10:12 MODSEQ 7\r\n"
    );
    let mut e = ESearch::new(tag("t"), true);
    e.partial = Some(((-1, -100), None));
    assert_eq!(
        enc(Data::ESearch(e)),
        "* ESEARCH (TAG \"t\") UID PARTIAL (-1:-100 NIL)\r\n"
    );
    let mut e = ESearch::new(tag("t"), false);
    e.partial = Some(((1, 5), Some(range(1, 5))));
    assert_eq!(
        enc(Data::ESearch(e)),
        "* ESEARCH (TAG \"t\") PARTIAL (1:5 1:5)\r\n"
    );
    assert_eq!(
        enc(Data::ESearch(ESearch::new(tag("t"), false))),
        "* ESEARCH (TAG \"t\")\r\n"
    );
}

fn leaf(id: u32) -> ThreadTree {
    ThreadTree {
        id: Some(id),
        children: vec![],
    }
}

fn node(id: Option<u32>, children: Vec<ThreadTree>) -> ThreadTree {
    ThreadTree { id, children }
}

#[test]
fn thread_response() {
    // RFC 5256: (2)(3 6 (4 23)(44 7 96))
    let t = vec![
        leaf(2),
        node(
            Some(3),
            vec![node(
                Some(6),
                vec![
                    node(Some(4), vec![leaf(23)]),
                    node(Some(44), vec![node(Some(7), vec![leaf(96)])]),
                ],
            )],
        ),
    ];
    assert_eq!(
        enc(Data::Thread(t)),
        "* THREAD (2)(3 6 (4 23)(44 7 96))\r\n"
    );
    // A missing parent: ((3)(5))
    let t = vec![node(None, vec![leaf(3), leaf(5)])];
    assert_eq!(enc(Data::Thread(t)), "* THREAD ((3)(5))\r\n");
    assert_eq!(enc(Data::Thread(vec![])), "* THREAD\r\n");
    // A very deep chain is written without recursion trouble.
    let mut deep = leaf(5_000);
    for i in (1..5_000).rev() {
        deep = node(Some(i), vec![deep]);
    }
    let s = enc(Data::Thread(vec![deep]));
    assert!(s.starts_with("* THREAD (1 2 3 "));
    assert!(s.ends_with(" 5000)\r\n"));
}

#[test]
fn fetch_simple_items() {
    let dt = DateTime::new(Date::new(1996, 7, 17).unwrap(), 2, 44, 25, -420).unwrap();
    assert_eq!(
        enc(Data::Fetch {
            seq: 12,
            items: vec![
                FetchValue::Uid(4827313),
                FetchValue::Flags(vec![Flag::Seen]),
                FetchValue::InternalDate(dt),
                FetchValue::Rfc822Size(44827),
                FetchValue::ModSeq(12121231000),
                FetchValue::EmailId("M6d99ac3275bb4e".into()),
                FetchValue::ThreadId(None),
                FetchValue::SaveDate(Some(dt)),
            ]
        }),
        "* 12 FETCH (UID 4827313 FLAGS (\\Seen) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" RFC822.SIZE 44827 MODSEQ (12121231000) EMAILID (M6d99ac3275bb4e) THREADID NIL SAVEDATE \"17-Jul-1996 02:44:25 -0700\")\r\n"
    );
}

#[test]
fn fetch_body_sections() {
    assert_eq!(
        enc(Data::Fetch {
            seq: 1,
            items: vec![
                FetchValue::BodySection {
                    section: Section {
                        part: vec![],
                        text: Some(SectionText::HeaderFields(vec![
                            "From".into(),
                            "Subject".into()
                        ]))
                    },
                    origin: None,
                    data: Some(b"From: a\r\n\r\n".to_vec())
                },
                FetchValue::BodySection {
                    section: Section {
                        part: vec![1, 2],
                        text: Some(SectionText::Mime)
                    },
                    origin: Some(100),
                    data: None
                },
            ]
        }),
        "* 1 FETCH (BODY[HEADER.FIELDS (From Subject)] {11}\r\nFrom: a\r\n\r\n BODY[1.2.MIME]<100> NIL)\r\n"
    );
    assert_eq!(
        enc(Data::Fetch {
            seq: 2,
            items: vec![
                FetchValue::Binary {
                    part: vec![1],
                    origin: None,
                    data: Some(b"a\0b".to_vec())
                },
                FetchValue::Binary {
                    part: vec![2, 1],
                    origin: Some(0),
                    data: Some(b"text".to_vec())
                },
                FetchValue::BinarySize {
                    part: vec![1],
                    size: 3
                },
                FetchValue::Rfc822(Some(b"x".to_vec())),
                FetchValue::Rfc822Header(Some(b"".to_vec())),
                FetchValue::Rfc822Text(None),
            ]
        }),
        "* 2 FETCH (BINARY[1] ~{3}\r\na\0b BINARY[2.1]<0> {4}\r\ntext BINARY.SIZE[1] 3 RFC822 {1}\r\nx RFC822.HEADER {0}\r\n RFC822.TEXT NIL)\r\n"
    );
}

fn sample_envelope() -> Envelope {
    Envelope {
        date: Some("Wed, 17 Jul 1996 02:23:25 -0700 (PDT)".into()),
        subject: Some("IMAP4rev1 WG mtg summary and minutes".into()),
        from: vec![Address::new(
            Some("Terry Gray".into()),
            "gray@cac.washington.edu",
        )],
        sender: vec![Address::new(
            Some("Terry Gray".into()),
            "gray@cac.washington.edu",
        )],
        reply_to: vec![Address::new(
            Some("Terry Gray".into()),
            "gray@cac.washington.edu",
        )],
        to: vec![Address::new(None, "imap@cac.washington.edu")],
        cc: vec![
            Address::new(None, "minutes@CNRI.Reston.VA.US"),
            Address::new(Some("John Klensin".into()), "KLENSIN@MIT.EDU"),
        ],
        bcc: vec![],
        in_reply_to: None,
        message_id: Some("<B27397-0100000@cac.washington.edu>".into()),
    }
}

#[test]
fn envelope_rfc_example() {
    let s = enc(Data::Fetch {
        seq: 12,
        items: vec![FetchValue::Envelope(Box::new(sample_envelope()))],
    });
    assert_eq!(
        s,
        "* 12 FETCH (ENVELOPE (\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev1 WG mtg summary and minutes\" ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((NIL NIL \"imap\" \"cac.washington.edu\")) ((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL \"<B27397-0100000@cac.washington.edu>\"))\r\n"
    );
}

#[test]
fn envelope_quoting_and_groups() {
    let env = Envelope {
        subject: Some("He said \"hi\"".into()),
        from: vec![Address::new(Some("Jörg".into()), "j@example.org")],
        to: vec![
            Address::group_start("undisclosed-recipients"),
            Address::group_end(),
        ],
        ..Default::default()
    };
    let s = enc(Data::Fetch {
        seq: 1,
        items: vec![FetchValue::Envelope(Box::new(env.clone()))],
    });
    assert_eq!(
        s,
        "* 1 FETCH (ENVELOPE (NIL {12}\r\nHe said \"hi\" (({5}\r\nJörg NIL \"j\" \"example.org\")) NIL NIL ((NIL NIL \"undisclosed-recipients\" NIL)(NIL NIL NIL NIL)) NIL NIL NIL NIL))\r\n"
    );
    // With UTF8=ACCEPT the name is quoted UTF-8.
    let s = enc_utf8(Data::Fetch {
        seq: 1,
        items: vec![FetchValue::Envelope(Box::new(env))],
    });
    assert!(s.contains("((\"Jörg\" NIL"));
}

fn text_part(subtype: &str, size: u32, lines: u32) -> BodyStructure {
    BodyStructure::Single {
        fields: BodyFields {
            media_type: "TEXT".into(),
            subtype: subtype.into(),
            params: vec![("CHARSET".into(), "US-ASCII".into())],
            id: None,
            description: None,
            encoding: "7BIT".into(),
            size,
        },
        kind: SingleKind::Text { lines },
        ext: None,
    }
}

#[test]
fn body_structure_single() {
    let b = text_part("PLAIN", 3028, 92);
    assert_eq!(
        enc(Data::Fetch {
            seq: 1,
            items: vec![FetchValue::Body(Box::new(b.clone()))]
        }),
        "* 1 FETCH (BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92))\r\n"
    );
    assert_eq!(
        enc(Data::Fetch {
            seq: 1,
            items: vec![FetchValue::BodyStructure(Box::new(b))]
        }),
        "* 1 FETCH (BODYSTRUCTURE (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 3028 92 NIL NIL NIL NIL))\r\n"
    );
}

#[test]
fn body_structure_multipart_and_message() {
    let attachment = BodyStructure::Single {
        fields: BodyFields {
            media_type: "APPLICATION".into(),
            subtype: "PDF".into(),
            params: vec![("NAME".into(), "a.pdf".into())],
            id: None,
            description: None,
            encoding: "BASE64".into(),
            size: 4096,
        },
        kind: SingleKind::Basic,
        ext: Some(SingleExt {
            md5: None,
            disposition: Some(Disposition {
                kind: "ATTACHMENT".into(),
                params: vec![("FILENAME".into(), "a.pdf".into())],
            }),
            language: vec!["en".into()],
            location: None,
        }),
    };
    let inner = BodyStructure::Single {
        fields: BodyFields {
            media_type: "MESSAGE".into(),
            subtype: "RFC822".into(),
            params: vec![],
            id: None,
            description: None,
            encoding: "7BIT".into(),
            size: 500,
        },
        kind: SingleKind::Message {
            envelope: Box::new(Envelope::default()),
            body: Box::new(text_part("PLAIN", 10, 1)),
            lines: 20,
        },
        ext: None,
    };
    let b = BodyStructure::Multipart {
        parts: vec![text_part("PLAIN", 1152, 23), attachment, inner],
        subtype: "MIXED".into(),
        ext: Some(MultipartExt {
            params: vec![("BOUNDARY".into(), "xyz".into())],
            ..Default::default()
        }),
    };
    let body = enc(Data::Fetch {
        seq: 3,
        items: vec![FetchValue::Body(Box::new(b.clone()))],
    });
    assert_eq!(
        body,
        "* 3 FETCH (BODY ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1152 23)(\"APPLICATION\" \"PDF\" (\"NAME\" \"a.pdf\") NIL NIL \"BASE64\" 4096)(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 500 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 10 1) 20) \"MIXED\"))\r\n"
    );
    let bs = enc(Data::Fetch {
        seq: 3,
        items: vec![FetchValue::BodyStructure(Box::new(b))],
    });
    assert_eq!(
        bs,
        "* 3 FETCH (BODYSTRUCTURE ((\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 1152 23 NIL NIL NIL NIL)(\"APPLICATION\" \"PDF\" (\"NAME\" \"a.pdf\") NIL NIL \"BASE64\" 4096 NIL (\"ATTACHMENT\" (\"FILENAME\" \"a.pdf\")) \"en\" NIL)(\"MESSAGE\" \"RFC822\" NIL NIL NIL \"7BIT\" 500 (NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL) (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7BIT\" 10 1 NIL NIL NIL NIL) 20 NIL NIL NIL NIL) \"MIXED\" (\"BOUNDARY\" \"xyz\") NIL NIL NIL))\r\n"
    );
}

#[test]
fn namespace_quota_id() {
    assert_eq!(
        enc(Data::Namespace {
            personal: vec![NamespaceEntry {
                prefix: "".into(),
                delimiter: Some('/')
            }],
            other: vec![],
            shared: vec![NamespaceEntry {
                prefix: "Shared/".into(),
                delimiter: Some('/')
            }],
        }),
        "* NAMESPACE ((\"\" \"/\")) NIL ((\"Shared/\" \"/\"))\r\n"
    );
    assert_eq!(
        enc(Data::Quota {
            root: "".into(),
            resources: vec![QuotaResource {
                name: Atom::new("STORAGE").unwrap(),
                usage: 10,
                limit: 512
            }]
        }),
        "* QUOTA \"\" (STORAGE 10 512)\r\n"
    );
    assert_eq!(
        enc(Data::QuotaRoot {
            mailbox: Mailbox::new("INBOX"),
            roots: vec!["".into()]
        }),
        "* QUOTAROOT \"INBOX\" \"\"\r\n"
    );
    assert_eq!(
        enc(Data::Id(Some(vec![
            ("name".into(), Some("Outpost".into())),
            ("support-url".into(), None)
        ]))),
        "* ID (\"name\" \"Outpost\" \"support-url\" NIL)\r\n"
    );
    assert_eq!(enc(Data::Id(None)), "* ID NIL\r\n");
}

#[test]
fn framer_and_parser_together() {
    use super::framing::{Frame, Framer, FramerLimits};
    use super::parse::{parse_command, ParseOptions};
    // An APPEND whose message ends in CRLF, pipelined with the next command,
    // fed in awkward chunks.
    let input =
        b"A1 APPEND INBOX (\\Seen) {14}\r\nSubject: x\r\n\r\n\r\nA2 UID FETCH 1:* (FLAGS)\r\n";
    let mut f = Framer::new(FramerLimits::default());
    let mut cmds = Vec::new();
    let mut conts = 0;
    for chunk in input.chunks(7) {
        f.push(chunk);
        while let Some(frame) = f.poll().unwrap() {
            match frame {
                Frame::NeedContinuation { .. } => conts += 1,
                Frame::Command(c) => {
                    cmds.push(parse_command(&c, &ParseOptions::default()).unwrap())
                }
            }
        }
    }
    assert_eq!(conts, 1);
    assert_eq!(cmds.len(), 2);
    let CommandBody::Append { messages, .. } = &cmds[0].body else {
        panic!()
    };
    assert_eq!(
        messages[0].content,
        AppendContent::Literal {
            data: b"Subject: x\r\n\r\n".to_vec(),
            binary: false,
            utf8: false
        }
    );
    assert_eq!(cmds[1].body.name(), "UID FETCH");
}

#[test]
fn text_never_looks_like_a_literal() {
    let mut out = Vec::new();
    Encoder::default().encode(
        &StatusResponse::bad(None, "junk: a2 APPEND INBOX {23}\0x").into(),
        &mut out,
    );
    assert_eq!(out, b"* BAD junk: a2 APPEND INBOX {23} x\r\n");
    out.clear();
    Encoder::default().encode(&StatusResponse::bad(None, "ends {23}").into(), &mut out);
    assert_eq!(out, b"* BAD ends {23}.\r\n");
}
