//! Unit tests for SEARCH, SORT and THREAD evaluation.

use crate::storage::MessageInfo;
use outpost_mailmeta::flags::{ANSWERED, DELETED, DRAFT, FLAGGED, SEEN};
use outpost_mailmeta::MessageMeta;

use super::*;
use crate::codec::parse::{parse_command, ParseOptions};
use crate::codec::types::{CommandBody, Date, SortKey};

/// One stored message for a test: raw text, its parsed meta and info.
struct Msg {
    raw: Vec<u8>,
    meta: MessageMeta,
    info: MessageInfo,
}

const DAY: i64 = 86_400;
/// 2024-02-01 00:00:00 UTC.
const FEB1: i64 = 19_754 * DAY;

fn msg(uid: i64, headers: &str, body: &str) -> Msg {
    let raw = format!(
        "{}\r\n\r\n{}",
        headers.trim_end().replace('\n', "\r\n"),
        body
    )
    .into_bytes();
    let meta = MessageMeta::parse(&raw);
    let info = MessageInfo {
        id: uid,
        uid,
        flags: 0,
        keywords: Vec::new(),
        modseq: 1,
        size: raw.len() as i64,
        internal_date: FEB1,
        save_date: FEB1,
        blob_hash: "0123456789abcdef0123456789abcdef".into(),
    };
    Msg { raw, meta, info }
}

fn view(m: &Msg, seq: u32) -> MessageView<'_> {
    MessageView {
        seq,
        info: &m.info,
        meta: Some(&m.meta),
        raw: Some(&m.raw),
    }
}

fn views(ms: &[Msg]) -> Vec<MessageView<'_>> {
    ms.iter()
        .enumerate()
        .map(|(i, m)| view(m, i as u32 + 1))
        .collect()
}

/// The criteria of `SEARCH <criteria>` as the codec parses them.
fn key(criteria: &str) -> SearchKey {
    // Non-ASCII strings go as literals under CHARSET UTF-8, as clients send
    // them.
    let line = if criteria.is_ascii() {
        format!("a SEARCH {criteria}")
    } else {
        let mut out = String::from("a SEARCH CHARSET UTF-8");
        for (i, part) in criteria.split('"').enumerate() {
            if i % 2 == 1 {
                out.push_str(&format!(" {{{}}}\r\n{part}", part.len()));
            } else if part.is_ascii() {
                out.push(' ');
                out.push_str(part.trim());
            } else {
                for word in part.split_whitespace() {
                    if word.is_ascii() {
                        out.push_str(&format!(" {word}"));
                    } else {
                        out.push_str(&format!(" {{{}}}\r\n{word}", word.len()));
                    }
                }
            }
        }
        out.trim_end().to_string()
    };
    match parse_command(line.as_bytes(), &ParseOptions::default()) {
        Ok(c) => match c.body {
            CommandBody::Search(s) => s.criteria,
            other => panic!("not a search: {other:?}"),
        },
        Err(e) => panic!("{criteria}: {e:?}"),
    }
}

const CTX: SearchContext<'static> = SearchContext {
    last_seq: 3,
    last_uid: 30,
    saved: &[20],
    now: FEB1 + 1000,
};

/// Which of `ms` (seq 1..) match `criteria`.
fn hits(ms: &[Msg], criteria: &str) -> Vec<u32> {
    let k = key(criteria);
    views(ms)
        .iter()
        .filter(|v| matches(&k, v, &CTX))
        .map(|v| v.seq)
        .collect()
}

fn plain() -> Msg {
    msg(
        10,
        "From: Alice Example <alice@example.org>\n\
         To: Bob <bob@example.net>, carol@example.com\n\
         Cc: Dave <dave@example.com>\n\
         Bcc: eve@example.com\n\
         Subject: Quarterly report\n\
         Date: Thu, 01 Feb 2024 23:30:00 -0500\n\
         Message-ID: <a1@example.org>\n\
         X-Custom: Hello World",
        "Numbers are up.\r\n",
    )
}

#[test]
fn needs_only_what_keys_use() {
    assert_eq!(
        needs(&key("SEEN UID 1:* LARGER 5 SINCE 1-Jan-2020")),
        Needs::default()
    );
    assert_eq!(
        needs(&key("OR SEEN FROM alice")),
        Needs {
            meta: true,
            raw: false
        }
    );
    assert_eq!(
        needs(&key("NOT (BODY x)")),
        Needs {
            meta: false,
            raw: true
        }
    );
    assert!(needs(&key("HEADER X-Y z SENTON 1-Feb-2024")).meta);
    assert!(
        sort_needs(&[SortCriterion {
            reverse: false,
            key: SortKey::Subject
        }])
        .meta
    );
    assert!(
        !sort_needs(&[SortCriterion {
            reverse: true,
            key: SortKey::Size
        }])
        .meta
    );
}

#[test]
fn flags_and_keywords() {
    let mut ms = vec![plain(), plain(), plain()];
    ms[0].info.flags = SEEN | FLAGGED;
    ms[1].info.flags = ANSWERED | DELETED | DRAFT;
    ms[1].info.keywords = vec!["$Forwarded".into()];
    assert_eq!(hits(&ms, "SEEN"), [1]);
    assert_eq!(hits(&ms, "UNSEEN"), [2, 3]);
    assert_eq!(hits(&ms, "FLAGGED"), [1]);
    assert_eq!(hits(&ms, "UNFLAGGED"), [2, 3]);
    assert_eq!(hits(&ms, "ANSWERED DELETED DRAFT"), [2]);
    assert_eq!(hits(&ms, "UNANSWERED"), [1, 3]);
    assert_eq!(hits(&ms, "UNDELETED UNDRAFT"), [1, 3]);
    assert_eq!(hits(&ms, "KEYWORD $forwarded"), [2]);
    assert_eq!(hits(&ms, "UNKEYWORD $Forwarded"), [1, 3]);
    assert_eq!(hits(&ms, "ALL"), [1, 2, 3]);
    assert_eq!(hits(&ms, "RECENT"), Vec::<u32>::new());
    assert_eq!(hits(&ms, "NEW"), Vec::<u32>::new());
    assert_eq!(hits(&ms, "OLD"), [1, 2, 3]);
    assert_eq!(hits(&ms, "OR SEEN DRAFT"), [1, 2]);
    assert_eq!(hits(&ms, "NOT SEEN"), [2, 3]);
    assert_eq!(hits(&ms, "(SEEN FLAGGED) UNDELETED"), [1]);
}

#[test]
fn sequence_and_uid_sets() {
    let mut ms = vec![plain(), plain(), plain()];
    ms[0].info.uid = 10;
    ms[1].info.uid = 20;
    ms[2].info.uid = 30;
    assert_eq!(hits(&ms, "2:*"), [2, 3]);
    assert_eq!(hits(&ms, "*"), [3]);
    assert_eq!(hits(&ms, "1,3"), [1, 3]);
    assert_eq!(hits(&ms, "UID 15:25"), [2]);
    assert_eq!(hits(&ms, "UID *"), [3]);
    // `*:100` with 100 beyond the last UID still includes the last one.
    assert_eq!(hits(&ms, "UID 100:*"), [3]);
    // `$` is the saved result (UID 20) in either form.
    assert_eq!(hits(&ms, "$"), [2]);
    assert_eq!(hits(&ms, "UID $"), [2]);
    assert_eq!(hits(&ms, "NOT $"), [1, 3]);
}

#[test]
fn size_modseq_within_and_ids() {
    let mut ms = vec![plain(), plain()];
    ms[0].info.size = 100;
    ms[1].info.size = 200;
    ms[0].info.modseq = 5;
    ms[1].info.modseq = 9;
    ms[0].info.internal_date = CTX.now - 10;
    ms[1].info.internal_date = CTX.now - 100;
    ms[1].info.blob_hash = "ffeeddccbbaa99887766554433221100".into();
    assert_eq!(hits(&ms, "LARGER 100"), [2]);
    assert_eq!(hits(&ms, "SMALLER 200"), [1]);
    assert_eq!(hits(&ms, "LARGER 99 SMALLER 201"), [1, 2]);
    assert_eq!(hits(&ms, "MODSEQ 9"), [2]);
    assert_eq!(hits(&ms, "MODSEQ \"/flags/\\\\seen\" all 5"), [1, 2]);
    assert_eq!(hits(&ms, "OLDER 10"), [2]);
    assert_eq!(hits(&ms, "YOUNGER 10"), [1]);
    assert_eq!(email_id(&ms[1].info), "Mffeeddccbbaa998877665544");
    assert_eq!(hits(&ms, "EMAILID Mffeeddccbbaa998877665544"), [2]);
    assert_eq!(hits(&ms, "THREADID T1"), Vec::<u32>::new());
}

#[test]
fn internal_and_save_dates_by_utc_day() {
    let mut ms = vec![plain(), plain(), plain()];
    ms[0].info.internal_date = FEB1 - 1; // 31 Jan 23:59:59 UTC
    ms[1].info.internal_date = FEB1; // 1 Feb 00:00 UTC
    ms[2].info.internal_date = FEB1 + DAY; // 2 Feb
    assert_eq!(hits(&ms, "BEFORE 1-Feb-2024"), [1]);
    assert_eq!(hits(&ms, "ON 1-Feb-2024"), [2]);
    assert_eq!(hits(&ms, "SINCE 1-Feb-2024"), [2, 3]);
    ms[0].info.save_date = FEB1 + 2 * DAY;
    ms[2].info.save_date = 0; // unknown: the internal date stands in
    assert_eq!(hits(&ms, "SAVEDON 3-Feb-2024"), [1]);
    assert_eq!(hits(&ms, "SAVEDBEFORE 2-Feb-2024"), [2]);
    assert_eq!(hits(&ms, "SAVEDSINCE 2-Feb-2024"), [1, 3]);
    assert_eq!(hits(&ms, "SAVEDATESUPPORTED"), [1, 2, 3]);
}

#[test]
fn sent_dates_use_the_headers_own_zone() {
    // 23:30 -0500 on 1 Feb is 2 Feb in UTC; the search goes by 1 Feb.
    let ms = vec![plain()];
    assert_eq!(hits(&ms, "SENTON 1-Feb-2024"), [1]);
    assert_eq!(hits(&ms, "SENTON 2-Feb-2024"), Vec::<u32>::new());
    assert_eq!(hits(&ms, "SENTBEFORE 2-Feb-2024"), [1]);
    assert_eq!(hits(&ms, "SENTSINCE 2-Feb-2024"), Vec::<u32>::new());
    assert_eq!(hits(&ms, "SENTSINCE 1-Feb-2024"), [1]);
}

#[test]
fn address_and_subject_keys() {
    let ms = vec![plain()];
    assert_eq!(hits(&ms, "FROM alice"), [1]);
    assert_eq!(hits(&ms, "FROM \"ALICE EXAMPLE\""), [1]);
    assert_eq!(hits(&ms, "FROM alice@EXAMPLE.org"), [1]);
    assert_eq!(hits(&ms, "FROM bob"), Vec::<u32>::new());
    assert_eq!(hits(&ms, "TO carol@example.com"), [1]);
    assert_eq!(hits(&ms, "TO bob"), [1]);
    assert_eq!(hits(&ms, "CC dave"), [1]);
    assert_eq!(hits(&ms, "BCC eve"), [1]);
    assert_eq!(hits(&ms, "CC eve"), Vec::<u32>::new());
    assert_eq!(hits(&ms, "SUBJECT REPORT"), [1]);
    assert_eq!(hits(&ms, "SUBJECT weekly"), Vec::<u32>::new());
}

#[test]
fn encoded_words_are_decoded_for_subject_and_header() {
    let ms = vec![msg(
        1,
        "From: =?ISO-8859-1?Q?Andr=E9?= Pirard <pirard@example.be>\n\
         Subject: =?utf-8?B?w5xiZXJnw7bDn2U=?= =?utf-8?Q?_Gr=C3=BC=C3=9Fe?=\n\
         X-Note: =?utf-8?q?caf=C3=A9?= au lait",
        "x\r\n",
    )];
    assert_eq!(hits(&ms, "SUBJECT \"übergöße grüße\""), [1]);
    assert_eq!(hits(&ms, "FROM andré"), [1]);
    assert_eq!(hits(&ms, "HEADER X-Note \"CAFÉ AU\""), [1]);
    assert_eq!(hits(&ms, "TEXT ANDRÉ"), [1]);
}

#[test]
fn header_key() {
    let ms = vec![plain()];
    assert_eq!(hits(&ms, "HEADER x-custom world"), [1]);
    assert_eq!(hits(&ms, "HEADER X-Custom \"\""), [1]);
    assert_eq!(hits(&ms, "HEADER X-Missing \"\""), Vec::<u32>::new());
    assert_eq!(hits(&ms, "HEADER Subject report"), [1]);
    assert_eq!(hits(&ms, "HEADER X-Custom mars"), Vec::<u32>::new());
}

#[test]
fn body_and_text_search_decoded_text() {
    let qp = msg(
        1,
        "Subject: qp\nMIME-Version: 1.0\n\
         Content-Type: text/plain; charset=iso-8859-1\n\
         Content-Transfer-Encoding: quoted-printable",
        "Gr=FC=DFe aus K=F6ln, =\r\nsch=F6ne Stra=DFe\r\n",
    );
    let b64 = msg(
        2,
        "Subject: b64\nMIME-Version: 1.0\n\
         Content-Type: multipart/alternative; boundary=XX",
        &format!(
            "--XX\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{}\r\n\
             --XX\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
             <p>Only in <b>HTML</b> part</p>\r\n--XX--\r\n",
            base64::Engine::encode(
                &base64::engine::general_purpose::STANDARD,
                "ΠΡΟΣΟΧΗ: Ελληνικό κείμενο"
            )
        ),
    );
    let ms = vec![qp, b64];
    assert_eq!(hits(&ms, "BODY \"KÖLN, SCHÖNE\""), [1]);
    assert_eq!(hits(&ms, "BODY straße"), [1]);
    assert_eq!(hits(&ms, "BODY προσοχη"), [2]);
    assert_eq!(hits(&ms, "BODY \"ελληνικό ΚΕΊΜΕΝΟ\""), [2]);
    assert_eq!(hits(&ms, "BODY \"in html\""), [2]);
    // Encoded text is not what is searched.
    assert_eq!(hits(&ms, "BODY K=F6ln"), Vec::<u32>::new());
    // BODY is not the header; TEXT is both.
    assert_eq!(hits(&ms, "BODY b64"), Vec::<u32>::new());
    assert_eq!(hits(&ms, "TEXT b64"), [2]);
    assert_eq!(hits(&ms, "TEXT köln"), [1]);
}

#[test]
fn keys_needing_missing_data_do_not_match() {
    let m = plain();
    let bare = MessageView {
        seq: 1,
        info: &m.info,
        meta: None,
        raw: None,
    };
    for k in [
        "FROM alice",
        "SUBJECT report",
        "BODY numbers",
        "HEADER x-custom \"\"",
    ] {
        assert!(!matches(&key(k), &bare, &CTX), "{k}");
    }
    assert!(matches(&key("BODY numbers"), &view(&m, 1), &CTX));
}

#[test]
fn base_subject_rfc5256_examples() {
    let cases = [
        ("Re: test", "test"),
        ("re: Re: RE: test", "test"),
        ("Fwd: test", "test"),
        ("Fw: test", "test"),
        ("FWD:test", "test"),
        ("Re[2]: test", "test"),
        ("Re [2] : test", "test"),
        ("[list] Re: test", "test"),
        ("Re: [list] test", "test"),
        ("[list] [other] test", "test"),
        ("test (fwd)", "test"),
        ("test (FWD) (fwd)  ", "test"),
        ("[Fwd: Re: test]", "test"),
        ("[fwd: [fwd: test] (fwd)]", "test"),
        ("  test   with\t spaces ", "test with spaces"),
        // A blob that is the whole subject is kept.
        ("[list]", "[list]"),
        ("Re: [list]", "[list]"),
        ("Reply to all", "Reply to all"),
        ("", ""),
        ("=?utf-8?Q?Re=3A_caf=C3=A9?=", "café"),
    ];
    for (input, want) in cases {
        assert_eq!(base_subject(input), want, "{input:?}");
    }
    assert!(subject::extract("Re: x").1);
    assert!(subject::extract("x (fwd)").1);
    assert!(!subject::extract("[list] x").1);
}

fn sort_msgs() -> Vec<Msg> {
    vec![
        msg(
            1,
            "From: \"Zed\" <aaron@example.org>\nTo: mike@example.org\n\
             Subject: Re: banana\nDate: Fri, 02 Feb 2024 10:00:00 +0000",
            "",
        ),
        msg(
            2,
            "From: Bert <zoe@example.org>\nTo: \"Anna\" <zz@example.org>\n\
             Subject: apple\nDate: Thu, 01 Feb 2024 10:00:00 +0000",
            "",
        ),
        msg(
            3,
            "From: carl@example.org\nSubject: [list] Banana\n\
             Date: Fri, 02 Feb 2024 10:00:00 +0000",
            "",
        ),
        // No Date: the internal date (31 Jan) stands in.
        msg(4, "From: ZED@example.org\nSubject: cherry", ""),
    ]
}

fn sorted(ms: &[Msg], criteria: &[(bool, SortKey)]) -> Vec<u32> {
    let c: Vec<SortCriterion> = criteria
        .iter()
        .map(|&(reverse, key)| SortCriterion { reverse, key })
        .collect();
    let vs = views(ms);
    sort(&c, &vs).into_iter().map(|i| vs[i].seq).collect()
}

#[test]
fn sort_keys_ties_and_reverse() {
    let mut ms = sort_msgs();
    ms[3].info.internal_date = FEB1 - DAY;
    for (i, m) in ms.iter_mut().enumerate() {
        m.info.size = [30, 10, 30, 20][i];
        m.info.internal_date = [FEB1 + 5, FEB1 + 1, FEB1 + 3, FEB1 - DAY][i];
    }
    use SortKey::*;
    assert_eq!(sorted(&ms, &[(false, Arrival)]), [4, 2, 3, 1]);
    // Equal sizes keep sequence order, also under REVERSE.
    assert_eq!(sorted(&ms, &[(false, Size)]), [2, 4, 1, 3]);
    assert_eq!(sorted(&ms, &[(true, Size)]), [1, 3, 4, 2]);
    assert_eq!(sorted(&ms, &[(false, Date)]), [4, 2, 1, 3]);
    assert_eq!(sorted(&ms, &[(true, Date)]), [1, 3, 2, 4]);
    assert_eq!(sorted(&ms, &[(false, Subject)]), [2, 1, 3, 4]);
    assert_eq!(
        sorted(&ms, &[(false, Subject), (true, Arrival)]),
        [2, 1, 3, 4]
    );
    assert_eq!(
        sorted(&ms, &[(false, Subject), (false, Size), (true, Arrival)]),
        [2, 1, 3, 4]
    );
    // FROM: local parts aaron, zoe, carl, zed (case-insensitive).
    assert_eq!(sorted(&ms, &[(false, From)]), [1, 3, 4, 2]);
    // DISPLAYFROM: Zed, Bert, carl@example.org, ZED@example.org.
    assert_eq!(sorted(&ms, &[(false, DisplayFrom)]), [2, 3, 1, 4]);
    // TO: a message without To sorts first.
    assert_eq!(sorted(&ms, &[(false, To)]), [3, 4, 1, 2]);
    assert_eq!(sorted(&ms, &[(false, DisplayTo)]), [3, 4, 2, 1]);
    assert_eq!(sorted(&ms, &[(false, Cc), (true, Size)]), [1, 3, 4, 2]);
}

fn tree(id: u32, children: Vec<ThreadTree>) -> ThreadTree {
    ThreadTree {
        id: Some(id),
        children,
    }
}

fn leaf(id: u32) -> ThreadTree {
    tree(id, Vec::new())
}

fn dummy(children: Vec<ThreadTree>) -> ThreadTree {
    ThreadTree { id: None, children }
}

/// A reply graph:
/// 1 <r1> "Plan"            2 Feb 10:00
/// 2 <r2> Re: Plan, refs r1 2 Feb 11:00
/// 3 <r3> Re: Plan, refs r1 r2 2 Feb 12:00 (reply to 2)
/// 4 <r4> Re: Lunch, refs <gone> (missing parent)  2 Feb 09:00
/// 5 <r5> Re: Lunch, refs <gone>                  2 Feb 13:00
/// 6 <r6> "Re: Plan", no refs (subject-only match) 2 Feb 14:00
/// 7 <r7> "Other", in-reply-to r2                 1 Feb 08:00
fn thread_msgs() -> Vec<Msg> {
    let h = |id: u32, subject: &str, refs: &str, hour: u32| {
        format!(
            "From: a@example.org\nSubject: {subject}\nMessage-ID: <r{id}@x>\n{refs}\
             Date: Fri, 02 Feb 2024 {hour:02}:00:00 +0000"
        )
    };
    vec![
        msg(1, &h(1, "Plan", "", 10), ""),
        msg(2, &h(2, "Re: Plan", "References: <r1@x>\n", 11), ""),
        msg(3, &h(3, "Re: Plan", "References: <r1@x> <r2@x>\n", 12), ""),
        msg(4, &h(4, "Re: Lunch", "References: <gone@x>\n", 9), ""),
        msg(5, &h(5, "Re: Lunch", "References: <gone@x>\n", 13), ""),
        msg(6, &h(6, "Re: Plan", "", 14), ""),
        msg(
            7,
            "From: a@example.org\nSubject: Other\nMessage-ID: <r7@x>\n\
             In-Reply-To: <r2@x>\nDate: Thu, 01 Feb 2024 08:00:00 +0000",
            "",
        ),
    ]
}

#[test]
fn thread_references() {
    let ms = thread_msgs();
    let vs = views(&ms);
    let got = thread(ThreadAlgorithm::References, &vs, ThreadIds::Seq);
    let want = vec![
        // The missing parent <gone> stays as a dummy holding 4 and 5.
        dummy(vec![leaf(4), leaf(5)]),
        // 6 joins thread 1 by subject only ("Re: Plan" under "Plan").
        tree(1, vec![tree(2, vec![leaf(7), leaf(3)]), leaf(6)]),
    ];
    assert_eq!(got, want);
}

#[test]
fn thread_refs_no_subject_merge_latest_first_order() {
    let ms = thread_msgs();
    let vs = views(&ms);
    let got = thread(ThreadAlgorithm::Refs, &vs, ThreadIds::Seq);
    let want = vec![
        // Latest message: thread 1 has 12:00, <gone> 13:00, 6 is 14:00.
        tree(1, vec![tree(2, vec![leaf(7), leaf(3)])]),
        dummy(vec![leaf(4), leaf(5)]),
        leaf(6),
    ];
    assert_eq!(got, want);
}

#[test]
fn thread_ordered_subject() {
    let ms = thread_msgs();
    let vs = views(&ms);
    let got = thread(ThreadAlgorithm::OrderedSubject, &vs, ThreadIds::Uid);
    let want = vec![
        tree(7, vec![]),
        tree(4, vec![leaf(5)]),
        tree(1, vec![leaf(2), leaf(3), leaf(6)]),
    ];
    assert_eq!(got, want);
}

#[test]
fn thread_survives_loops_duplicates_and_depth() {
    // Two messages claiming each other as parent, one duplicate id.
    let mut ms = vec![
        msg(1, "Subject: a\nMessage-ID: <a@x>\nReferences: <b@x>", ""),
        msg(2, "Subject: b\nMessage-ID: <b@x>\nReferences: <a@x>", ""),
        msg(3, "Subject: c\nMessage-ID: <a@x>", ""),
    ];
    // A long chain.
    for i in 0..3000u32 {
        let refs = if i == 0 {
            String::new()
        } else {
            format!("In-Reply-To: <c{}@x>\n", i - 1)
        };
        ms.push(msg(
            4 + i as i64,
            &format!("Subject: chain\n{refs}Message-ID: <c{i}@x>"),
            "",
        ));
    }
    let vs = views(&ms);
    for alg in [
        ThreadAlgorithm::References,
        ThreadAlgorithm::Refs,
        ThreadAlgorithm::OrderedSubject,
    ] {
        let got = thread(alg, &vs, ThreadIds::Seq);
        let mut seen = Vec::new();
        let mut stack: Vec<&ThreadTree> = got.iter().collect();
        while let Some(t) = stack.pop() {
            seen.extend(t.id);
            stack.extend(t.children.iter());
        }
        seen.sort_unstable();
        assert_eq!(seen, (1..=ms.len() as u32).collect::<Vec<_>>(), "{alg:?}");
        let mut deepest = 0;
        let mut stack: Vec<(&ThreadTree, usize)> = got.iter().map(|t| (t, 1)).collect();
        while let Some((t, d)) = stack.pop() {
            deepest = deepest.max(d);
            stack.extend(t.children.iter().map(|c| (c, d + 1)));
        }
        assert!(deepest <= thread::MAX_DEPTH + 1, "{alg:?}: depth {deepest}");
    }
}

#[test]
fn date_helpers_agree_with_codec() {
    assert_eq!(
        Date::new(2024, 2, 1).unwrap().days_since_epoch() * DAY,
        FEB1
    );
}
