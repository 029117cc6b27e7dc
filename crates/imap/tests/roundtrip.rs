//! Property tests: a command written by the encoder parses back to the same
//! value, also when the bytes arrive through the framer in arbitrary chunks;
//! and no input makes the framer or parser panic.

use outpost_imap::codec::framing::{Frame, Framer, FramerLimits};
use outpost_imap::codec::parse::{parse_command, ParseOptions};
use outpost_imap::codec::types::*;
use proptest::prelude::*;

fn tag() -> impl Strategy<Value = Tag> {
    "[A-Za-z0-9.]{1,8}".prop_map(|s| Tag::new(s).unwrap())
}

fn mailbox() -> impl Strategy<Value = Mailbox> {
    prop_oneof![
        Just(Mailbox::new("INBOX")),
        "[a-zA-Z0-9 &/\"\\\\äöü日本.%*()\\]-]{0,12}".prop_map(Mailbox::new),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9@.]{0,10}",
        "[ -~]{0,12}",
        "[a-z äß€\r\n\"\\\\]{0,12}",
    ]
}

fn seq_num() -> impl Strategy<Value = SeqNum> {
    prop_oneof![
        1 => Just(SeqNum::Last),
        6 => (1u32..=u32::MAX).prop_map(SeqNum::Value),
    ]
}

fn seq_set() -> impl Strategy<Value = SequenceSet> {
    prop_oneof![
        1 => Just(SequenceSet::Saved),
        8 => prop::collection::vec(
            (seq_num(), seq_num()).prop_map(|(start, end)| SeqRange { start, end }),
            1..5
        )
        .prop_map(SequenceSet::Ranges),
    ]
}

fn keyword() -> impl Strategy<Value = Atom> {
    "[$A-Za-z][A-Za-z0-9_$-]{0,8}".prop_map(|s| Atom::new(s).unwrap())
}

fn flag() -> impl Strategy<Value = Flag> {
    prop_oneof![
        Just(Flag::Seen),
        Just(Flag::Answered),
        Just(Flag::Flagged),
        Just(Flag::Deleted),
        Just(Flag::Draft),
        keyword().prop_map(Flag::Keyword),
    ]
}

fn date() -> impl Strategy<Value = Date> {
    (1900u16..2100, 1u8..=12, 1u8..=28).prop_map(|(y, m, d)| Date::new(y, m, d).unwrap())
}

fn date_time() -> impl Strategy<Value = DateTime> {
    (date(), 0u8..24, 0u8..60, 0u8..=60, -720i16..=840)
        .prop_map(|(d, h, m, s, z)| DateTime::new(d, h, m, s, z).unwrap())
}

fn mod_seq() -> impl Strategy<Value = u64> {
    1u64..=i64::MAX as u64
}

fn search_key() -> impl Strategy<Value = SearchKey> {
    use SearchKey as K;
    let leaf = prop_oneof![
        Just(K::All),
        Just(K::Answered),
        Just(K::Deleted),
        Just(K::Seen),
        Just(K::Unseen),
        Just(K::New),
        Just(K::Recent),
        Just(K::SaveDateSupported),
        text().prop_map(K::From),
        text().prop_map(K::Subject),
        text().prop_map(K::Body),
        text().prop_map(K::Text),
        ("[A-Za-z-]{1,10}", text()).prop_map(|(h, v)| K::Header(h, v)),
        keyword().prop_map(K::Keyword),
        keyword().prop_map(K::Unkeyword),
        any::<u64>().prop_map(K::Larger),
        any::<u64>().prop_map(K::Smaller),
        date().prop_map(K::Since),
        date().prop_map(K::SentBefore),
        date().prop_map(K::SavedOn),
        seq_set().prop_map(K::Uid),
        seq_set().prop_map(K::SequenceSet),
        (1u32..=u32::MAX).prop_map(K::Older),
        (1u32..=u32::MAX).prop_map(K::Younger),
        (
            prop::option::of((
                "/flags/[a-z\\\\$]{1,8}",
                prop_oneof![
                    Just(EntryType::Private),
                    Just(EntryType::Shared),
                    Just(EntryType::All)
                ]
            )),
            mod_seq()
        )
            .prop_map(|(entry, mod_seq)| K::ModSeq { entry, mod_seq }),
        "[A-Za-z0-9_-]{1,20}".prop_map(K::EmailId),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(|k| K::Not(Box::new(k))),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| K::Or(Box::new(a), Box::new(b))),
            prop::collection::vec(inner, 1..4).prop_map(K::And),
        ]
    })
}

fn partial() -> impl Strategy<Value = Option<Partial>> {
    prop::option::of(
        (any::<u32>(), 1u32..=u32::MAX).prop_map(|(offset, length)| Partial { offset, length }),
    )
}

fn section() -> impl Strategy<Value = Section> {
    let fields = prop::collection::vec("[A-Za-z-]{1,12}", 1..4);
    (
        prop::collection::vec(1u32..100, 0..3),
        prop_oneof![
            Just(None),
            Just(Some(SectionText::Header)),
            Just(Some(SectionText::Text)),
            Just(Some(SectionText::Mime)),
            fields
                .clone()
                .prop_map(|f| Some(SectionText::HeaderFields(f))),
            fields.prop_map(|f| Some(SectionText::HeaderFieldsNot(f))),
        ],
    )
        .prop_map(|(part, text)| {
            let text = match text {
                Some(SectionText::Mime) if part.is_empty() => Some(SectionText::Header),
                t => t,
            };
            Section { part, text }
        })
}

fn fetch_attr() -> impl Strategy<Value = FetchAttr> {
    use FetchAttr as A;
    prop_oneof![
        Just(A::Envelope),
        Just(A::Flags),
        Just(A::InternalDate),
        Just(A::Rfc822),
        Just(A::Rfc822Header),
        Just(A::Rfc822Size),
        Just(A::Rfc822Text),
        Just(A::Body),
        Just(A::BodyStructure),
        Just(A::Uid),
        Just(A::ModSeq),
        Just(A::EmailId),
        Just(A::ThreadId),
        Just(A::SaveDate),
        (any::<bool>(), section(), partial()).prop_map(|(peek, section, partial)| {
            A::BodySection {
                peek,
                section,
                partial,
            }
        }),
        (
            any::<bool>(),
            prop::collection::vec(1u32..100, 0..3),
            partial()
        )
            .prop_map(|(peek, part, partial)| A::Binary {
                peek,
                part,
                partial
            }),
        prop::collection::vec(1u32..100, 0..3).prop_map(|part| A::BinarySize { part }),
    ]
}

fn search_returns() -> impl Strategy<Value = Option<Vec<SearchReturn>>> {
    prop::option::of(prop::collection::vec(
        prop_oneof![
            Just(SearchReturn::Min),
            Just(SearchReturn::Max),
            Just(SearchReturn::All),
            Just(SearchReturn::Count),
            Just(SearchReturn::Save),
            (1i32..1000, 1i32..1000).prop_map(|(a, b)| SearchReturn::Partial(a, b)),
            (1i32..1000, 1i32..1000).prop_map(|(a, b)| SearchReturn::Partial(-a, -b)),
        ],
        0..4,
    ))
}

fn status_items() -> impl Strategy<Value = Vec<StatusItem>> {
    prop::collection::vec(
        prop_oneof![
            Just(StatusItem::Messages),
            Just(StatusItem::Recent),
            Just(StatusItem::UidNext),
            Just(StatusItem::UidValidity),
            Just(StatusItem::Unseen),
            Just(StatusItem::HighestModSeq),
            Just(StatusItem::Size),
            Just(StatusItem::AppendLimit),
            Just(StatusItem::Deleted),
            Just(StatusItem::MailboxId),
        ],
        1..5,
    )
}

fn body() -> impl Strategy<Value = CommandBody> {
    use CommandBody as C;
    prop_oneof![
        Just(C::Capability),
        Just(C::Noop),
        Just(C::Idle),
        Just(C::Namespace),
        (text(), text()).prop_map(|(username, password)| C::Login { username, password }),
        (
            mailbox(),
            any::<bool>(),
            any::<bool>(),
            prop::option::of((
                1u32..=u32::MAX,
                mod_seq(),
                prop::option::of(seq_set()),
                prop::option::of((seq_set(), seq_set()))
            ))
        )
            .prop_map(|(mailbox, read_only, condstore, q)| C::Select {
                mailbox,
                read_only,
                params: SelectParams {
                    condstore,
                    qresync: q.map(|(uid_validity, mod_seq, known_uids, seq_match)| {
                        QResyncParams {
                            uid_validity,
                            mod_seq,
                            known_uids,
                            seq_match,
                        }
                    }),
                },
            }),
        mailbox().prop_map(C::Delete),
        (mailbox(), mailbox()).prop_map(|(from, to)| C::Rename { from, to }),
        (mailbox(), status_items()).prop_map(|(mailbox, items)| C::Status { mailbox, items }),
        (
            any::<bool>(),
            prop::option::of(search_returns().prop_filter("some", |r| r.is_some())),
            prop::option::of(Just("UTF-8".to_string())),
            prop::collection::vec(search_key(), 1..4)
        )
            .prop_map(|(uid, returns, charset, keys)| C::Search(SearchCommand {
                uid,
                returns: returns.flatten(),
                charset,
                criteria: SearchKey::And(keys),
            })),
        (
            any::<bool>(),
            seq_set(),
            prop_oneof![
                Just(FetchItems::All),
                Just(FetchItems::Fast),
                Just(FetchItems::Full),
                prop::collection::vec(fetch_attr(), 1..5).prop_map(FetchItems::Attrs),
            ],
            prop::option::of(mod_seq()),
            any::<bool>()
        )
            .prop_map(|(uid, set, items, changed_since, vanished)| C::Fetch(
                FetchCommand {
                    uid,
                    set,
                    items,
                    vanished: vanished && uid && changed_since.is_some(),
                    changed_since,
                }
            )),
        (
            any::<bool>(),
            seq_set(),
            prop_oneof![
                Just(StoreKind::Replace),
                Just(StoreKind::Add),
                Just(StoreKind::Remove)
            ],
            any::<bool>(),
            prop::collection::vec(flag(), 0..4),
            prop::option::of(0u64..=i64::MAX as u64)
        )
            .prop_map(|(uid, set, kind, silent, flags, unchanged_since)| {
                C::Store(StoreCommand {
                    uid,
                    set,
                    kind,
                    silent,
                    flags,
                    unchanged_since,
                })
            }),
        (any::<bool>(), any::<bool>(), seq_set(), mailbox()).prop_map(
            |(is_move, uid, set, mailbox)| if is_move {
                C::Move { uid, set, mailbox }
            } else {
                C::Copy { uid, set, mailbox }
            }
        ),
        (
            mailbox(),
            prop::collection::vec(
                (
                    prop::collection::vec(flag(), 0..3),
                    prop::option::of(date_time()),
                    prop::collection::vec(any::<u8>(), 0..40),
                    any::<bool>()
                ),
                1..3
            )
        )
            .prop_map(|(mailbox, msgs)| C::Append {
                mailbox,
                messages: msgs
                    .into_iter()
                    .map(|(flags, date, data, binary)| {
                        let binary = binary || data.contains(&0);
                        AppendMessage {
                            flags,
                            date,
                            content: AppendContent::Literal {
                                data,
                                binary,
                                utf8: false,
                            },
                        }
                    })
                    .collect(),
            }),
        (
            "[a-zA-Z/]{0,6}",
            prop::collection::vec("[a-zA-Z%*/ ]{1,6}", 1..3),
            any::<(bool, bool, bool)>(),
            prop::option::of(status_items())
        )
            .prop_map(|(reference, patterns, (sub, children, special), status)| {
                C::List(ListCommand {
                    reference,
                    patterns,
                    selection: ListSelection {
                        subscribed: sub,
                        remote: false,
                        recursive_match: sub && special,
                        special_use: false,
                    },
                    returns: ListReturn {
                        children,
                        subscribed: false,
                        special_use: special,
                        status,
                    },
                })
            }),
        seq_set().prop_map(C::UidExpunge),
        prop::option::of(prop::collection::vec(
            ("[a-z-]{1,10}", prop::option::of(text())),
            0..4
        ))
        .prop_map(C::Id),
    ]
}

fn command() -> impl Strategy<Value = Command> {
    (tag(), body()).prop_map(|(tag, body)| Command { tag, body })
}

proptest! {
    // 512 cases by default; PROPTEST_CASES=20000 for a longer run.
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(512)
    ))]

    #[test]
    fn encode_then_parse_is_identity(cmd in command(), utf8 in any::<bool>()) {
        let bytes = cmd.to_bytes(utf8);
        let parsed = parse_command(&bytes, &ParseOptions { utf8_accept: utf8 });
        prop_assert_eq!(parsed.as_ref().ok(), Some(&cmd),
            "wire: {:?}, error: {:?}", String::from_utf8_lossy(&bytes), parsed.as_ref().err());
    }

    #[test]
    fn framing_in_any_chunks(cmds in prop::collection::vec(command(), 1..4), chunk in 1usize..64) {
        let mut wire = Vec::new();
        for c in &cmds {
            c.encode(&mut wire, false);
            wire.extend_from_slice(b"\r\n");
        }
        let mut framer = Framer::new(FramerLimits::default());
        let mut got = Vec::new();
        for piece in wire.chunks(chunk) {
            framer.push(piece);
            while let Some(frame) = framer.poll().unwrap() {
                if let Frame::Command(bytes) = frame {
                    got.push(parse_command(&bytes, &ParseOptions::default()).unwrap());
                }
            }
        }
        prop_assert_eq!(got, cmds);
        prop_assert_eq!(framer.buffered(), 0);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut framer = Framer::new(FramerLimits { max_line: 64, max_literal: 50, max_non_sync_literal: None, max_command: 100 });
        framer.push(&data);
        for _ in 0..1000 {
            match framer.poll() {
                Ok(None) => break,
                Ok(Some(Frame::Command(c))) => { let _ = parse_command(&c, &ParseOptions::default()); }
                Ok(Some(Frame::NeedContinuation { .. })) | Err(_) => {}
            }
        }
        let _ = parse_command(&data, &ParseOptions { utf8_accept: true });
    }

    #[test]
    fn structured_garbage_never_panics(s in "[a-zA-Z0-9 ()\\[\\]<>.:,*$\"\\\\{}+~%-]{0,80}") {
        let line = format!("t {s}");
        let _ = parse_command(line.as_bytes(), &ParseOptions::default());
        let line = format!("t UID FETCH 1 {s}");
        let _ = parse_command(line.as_bytes(), &ParseOptions::default());
        let line = format!("t SEARCH {s}");
        let _ = parse_command(line.as_bytes(), &ParseOptions::default());
    }
}
