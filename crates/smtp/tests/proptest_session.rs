//! Stable-toolchain twin of the `session` fuzz target (`fuzz/`): the same
//! checks (`fuzz/check/session.rs`) over the committed seeds, mutations of
//! them and generated conversations; plus round trips through the session:
//! a dot-stuffed DATA body and BDAT chunks come out of the machine as the
//! client meant them, and every reply reads back through smtp-proto's
//! client parser with its code, enhanced code and text.

#[path = "../fuzz/check/session.rs"]
mod check;

use check::{drive, replies, setup, Fake};
use outpost_smtp::reply::Reply;
use outpost_smtp::session::Machine;
use proptest::prelude::*;
use smtp_proto::response::parser::ResponseReceiver;

#[test]
fn seeds_pass_in_every_mode() {
    let dir = outpost_testkit::seed_dir!("session");
    let modes = [0x00, 0x01, 0x02, 0x0d, 0x15, 0x24, 0x80, 0xc0];
    outpost_testkit::seeds::in_every_mode(&dir, 5, modes, 0x3f, |data| {
        check::session(data);
    });
}

/// The scripted backend really lets seeds through to delivery (otherwise
/// the checks would only ever see refusals).
#[test]
fn seeds_reach_delivery() {
    let dir = outpost_testkit::seed_dir!("session");
    for (name, want) in [
        ("mx_data", 1),
        ("submission_auth_plain", 1),
        ("lmtp", 2),
        ("mx_bdat", 2),
    ] {
        let seed = std::fs::read(dir.join(name)).unwrap();
        let (bodies, codes) = deliver_through_session(seed[0] | 0xc0, &seed[1..]);
        assert_eq!(bodies.len(), want, "{name}: {codes:?}");
    }
}

/// The reply checker refuses what a client could not read; guards
/// against it silently accepting anything.
#[test]
#[should_panic(expected = "reply code out of range")]
fn checker_rejects_bad_code() {
    replies(b"199 nope\r\n");
}

#[test]
#[should_panic(expected = "multi-line reply changes its code")]
fn checker_rejects_mixed_multiline() {
    replies(b"250-a\r\n251 b\r\n");
}

fn command_line() -> impl Strategy<Value = Vec<u8>> {
    let word = "[a-zA-Z0-9.@<>=:+,;_ -]{0,20}";
    prop_oneof![
        Just(b"EHLO client.example".to_vec()),
        Just(b"LHLO client.example".to_vec()),
        Just(b"MAIL FROM:<a@remote.example>".to_vec()),
        Just(b"RCPT TO:<bob@example.org>".to_vec()),
        Just(b"RCPT TO:<far@away.test>".to_vec()),
        Just(b"DATA".to_vec()),
        Just(b".".to_vec()),
        Just(b"RSET".to_vec()),
        Just(b"STARTTLS".to_vec()),
        Just(b"AUTH PLAIN AGFsaWNlAHNlY3JldA==".to_vec()),
        Just(b"AUTH LOGIN".to_vec()),
        (0u32..8, any::<bool>()).prop_map(|(n, last)| {
            format!("BDAT {n}{}", if last { " LAST" } else { "" }).into_bytes()
        }),
        (
            prop::sample::select(vec![
                "MAIL FROM:",
                "RCPT TO:",
                "EHLO ",
                "HELO ",
                "VRFY ",
                "NOOP "
            ]),
            word
        )
            .prop_map(|(k, w)| format!("{k}{w}").into_bytes()),
        word.prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..30),
    ]
}

fn conversation() -> impl Strategy<Value = Vec<u8>> {
    (
        any::<u8>(),
        prop::collection::vec((command_line(), any::<bool>()), 0..24),
    )
        .prop_map(|(mode, lines)| {
            let mut data = vec![mode];
            for (l, crlf) in lines {
                data.extend_from_slice(&l);
                data.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
            }
            data
        })
}

#[derive(Debug, Clone)]
enum Mutation {
    Insert(usize, u8),
    Delete(usize),
    Replace(usize, u8),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let byte = prop_oneof![
        any::<u8>(),
        prop::sample::select(b"\r\n .:<>@=0123456789".to_vec())
    ];
    prop_oneof![
        (any::<usize>(), byte.clone()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        (any::<usize>(), byte).prop_map(|(i, b)| Mutation::Replace(i, b)),
        (any::<usize>(), 1usize..40).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
    ]
}

fn apply(mut data: Vec<u8>, muts: Vec<Mutation>) -> Vec<u8> {
    for m in muts {
        let n = data.len().max(1);
        match m {
            Mutation::Insert(i, b) => data.insert(i % (data.len() + 1), b),
            Mutation::Delete(i) if data.len() > 1 => {
                data.remove(1 + i % (data.len() - 1));
            }
            Mutation::Delete(_) => {}
            Mutation::Replace(i, b) => data[i % n] = b,
            Mutation::Duplicate(i, len) => {
                let at = i % n;
                let end = (at + len).min(data.len());
                let piece = data[at..end].to_vec();
                data.splice(at..at, piece);
            }
        }
    }
    data
}

/// What a client sends for `body` after DATA: lines dot-stuffed, CRLF
/// after each, then the final dot.
fn dot_stuffed(lines: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for l in lines {
        if l.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(l);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// Runs `input` through a fresh MX session (all at once) and returns the
/// delivered messages with our Received: header taken off, and all codes.
fn deliver_through_session(mode: u8, input: &[u8]) -> (Vec<Vec<u8>>, Vec<u16>) {
    let mut m = Machine::new(setup(mode).cfg);
    let mut fake = Fake::default();
    m.greeting();
    m.feed(input);
    let (out, _) = drive(&mut m, &mut fake);
    let codes = replies(&out);
    let bodies = fake
        .delivered
        .iter()
        .map(|d| strip_received(&d.message).to_vec())
        .collect();
    (bodies, codes)
}

/// The message without the Received: header we put on top: it ends with
/// the line after ";" + CRLF + TAB (the date).
fn strip_received(msg: &[u8]) -> &[u8] {
    assert!(msg.starts_with(b"Received: "));
    let semi = find(msg, b";\r\n\t").expect("Received: header has a date");
    let end = semi + 4 + find(&msg[semi + 4..], b"\r\n").expect("date line ends with CRLF");
    &msg[end + 2..]
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn body_line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(
            any::<u8>().prop_filter("no CR/LF", |b| *b != b'\r' && *b != b'\n'),
            0..60
        ),
        Just(b".".to_vec()),
        Just(b"..".to_vec()),
        "[ -~]{0,20}".prop_map(|s| format!(".{s}").into_bytes()),
        Just(Vec::new()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn generated_conversations(data in conversation()) {
        check::session(&data);
    }

    #[test]
    fn mutated_seeds(seed in any::<prop::sample::Index>(), muts in prop::collection::vec(mutation(), 1..8)) {
        let seeds = outpost_testkit::seeds::all(&outpost_testkit::seed_dir!("session"), 5);
        let data = apply(seeds[seed.index(seeds.len())].clone(), muts);
        check::session(&data);
    }

    /// DATA: what the client dot-stuffs is what the backend gets, byte
    /// for byte, with CRLF after the last line.
    #[test]
    fn data_body_round_trip(lines in prop::collection::vec(body_line(), 0..12)) {
        let mut input = b"EHLO c\r\nMAIL FROM:<a@remote.example> BODY=8BITMIME\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n".to_vec();
        input.extend_from_slice(&dot_stuffed(&lines));
        let (bodies, codes) = deliver_through_session(0xc0, &input);
        prop_assert_eq!(codes, vec![220, 250, 250, 250, 354, 250]);
        let mut want = Vec::new();
        for l in &lines {
            want.extend_from_slice(l);
            want.extend_from_slice(b"\r\n");
        }
        prop_assert_eq!(bodies.len(), 1);
        prop_assert_eq!(&bodies[0], &want);
    }

    /// BDAT: the chunks, concatenated, are the message, whatever bytes
    /// they hold (CRLF.CRLF included).
    #[test]
    fn bdat_chunks_round_trip(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..50), 1..5)) {
        let mut input = b"EHLO c\r\nMAIL FROM:<a@remote.example> BODY=BINARYMIME\r\nRCPT TO:<bob@example.org>\r\n".to_vec();
        for (i, c) in chunks.iter().enumerate() {
            let last = if i + 1 == chunks.len() { " LAST" } else { "" };
            input.extend_from_slice(format!("BDAT {}{last}\r\n", c.len()).as_bytes());
            input.extend_from_slice(c);
        }
        input.extend_from_slice(b"QUIT\r\n");
        let (bodies, codes) = deliver_through_session(0xc0, &input);
        let mut want_codes = vec![220, 250, 250, 250];
        want_codes.extend(std::iter::repeat_n(250, chunks.len()));
        want_codes.push(221);
        prop_assert_eq!(codes, want_codes);
        prop_assert_eq!(bodies.len(), 1);
        prop_assert_eq!(&bodies[0], &chunks.concat());
    }

    /// A reply reads back through the client parser with its code,
    /// enhanced code and (cleaned) text.
    #[test]
    fn reply_round_trip(code in 200u16..600, esc in (2u8..6, 0u8..10, 0u8..100), text in ".{0,500}") {
        let r = Reply::new(code, [esc.0, esc.1, esc.2], &text);
        prop_assert!(r.text.len() <= 403);
        prop_assert!(r.text.bytes().all(|b| (b' '..=b'~').contains(&b)));
        let mut out = Vec::new();
        r.write_to(&mut out);
        prop_assert_eq!(replies(&out), vec![code]);
        let parsed = ResponseReceiver::default().parse(&mut out.iter()).unwrap();
        prop_assert_eq!(parsed.code, code);
        prop_assert_eq!(parsed.esc, [esc.0, esc.1, esc.2]);
        prop_assert_eq!(parsed.message, r.text);
    }
}
