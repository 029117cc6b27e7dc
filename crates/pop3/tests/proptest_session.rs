//! Stable-toolchain twin of the POP3 `session` fuzz target (`fuzz/`): the
//! same checks (`fuzz/check/session.rs`) over the committed seeds,
//! mutations of them and generated conversations; plus the codec's round
//! trips: a typed command survives `to_line` and the parser, and a stored
//! message survives RETR/TOP's line-end normalisation and dot-stuffing.

#[path = "../fuzz/check/session.rs"]
mod check;

use outpost_pop3::codec::{parse_command, unstuff, Command, MsgNum, Response, Secret};
use outpost_pop3::wire_size;
use proptest::prelude::*;

#[test]
fn seeds_pass_in_every_mode() {
    let dir = outpost_testkit::seed_dir!("session");
    outpost_testkit::seeds::in_every_mode(&dir, 5, [0x00, 0x10, 0x20, 0x30], 0x0f, |data| {
        let _ = check::session(data);
    });
}

/// The scripted backend lets the seeds log in, fetch and expunge, so the
/// model checks really run.
#[test]
fn seeds_reach_the_transaction_state() {
    let dir = outpost_testkit::seed_dir!("session");
    let r = check::session(&std::fs::read(dir.join("login_retr")).unwrap());
    assert_eq!((r.logins, r.fetches, r.expunges), (1, 8, 0), "{r:?}");
    let r = check::session(&std::fs::read(dir.join("dele_rset_quit")).unwrap());
    assert_eq!((r.logins, r.expunges), (1, 1), "{r:?}");
    let r = check::session(&std::fs::read(dir.join("sasl")).unwrap());
    assert_eq!(r.logins, 1, "{r:?}");
}

/// The checker's own idea of what RETR/TOP send, on fixed cases (it is
/// the oracle for the crate's `Lines`/`Response::message`).
#[test]
fn wire_form_is_what_retr_sends() {
    assert_eq!(check::wire(b"a\nb\r\nc\rd", None), b"a\r\nb\r\nc\r\nd\r\n");
    assert_eq!(
        check::wire(b"H: 1\n\nb1\nb2\n", Some(1)),
        b"H: 1\r\n\r\nb1\r\n"
    );
    assert_eq!(check::wire(b"", None), b"");
}

fn command() -> impl Strategy<Value = Command> {
    let num = || any::<u64>().prop_map(MsgNum);
    prop_oneof![
        "[!-~]{1,20}".prop_map(Command::User),
        "[^\r\n]{0,20}".prop_map(|p| Command::Pass(Secret(p))),
        (
            proptest::option::of("[A-Z0-9-]{1,12}"),
            proptest::option::of("[!-~]{1,30}")
        )
            .prop_map(|(mechanism, initial)| {
                let initial = mechanism.as_ref().and(initial).map(Secret);
                Command::Auth { mechanism, initial }
            }),
        Just(Command::Apop),
        Just(Command::Capa),
        Just(Command::Stls),
        Just(Command::Quit),
        Just(Command::Stat),
        Just(Command::Noop),
        Just(Command::Rset),
        proptest::option::of(num()).prop_map(Command::List),
        proptest::option::of(num()).prop_map(Command::Uidl),
        num().prop_map(Command::Retr),
        num().prop_map(Command::Dele),
        (num(), any::<u64>()).prop_map(|(n, l)| Command::Top(n, l)),
    ]
}

fn client_line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        command().prop_map(|c| c.to_line().into_bytes()),
        Just(b"USER alice\r\n".to_vec()),
        Just(b"PASS secret\r\n".to_vec()),
        Just(b"AUTH PLAIN\r\nAGFsaWNlAHNlY3JldA==\r\n".to_vec()),
        (1u64..6).prop_map(|n| format!("RETR {n}\r\n").into_bytes()),
        (1u64..6).prop_map(|n| format!("DELE {n}\r\n").into_bytes()),
        (1u64..6, 0u64..4).prop_map(|(n, l)| format!("TOP {n} {l}\r\n").into_bytes()),
        prop::collection::vec(any::<u8>(), 0..40),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// A typed command written by `to_line` parses back to itself.
    #[test]
    fn command_round_trip(cmd in command()) {
        let line = cmd.to_line();
        prop_assert!(line.ends_with("\r\n"));
        prop_assert_eq!(parse_command(line.trim_end_matches("\r\n").as_bytes()), Ok(cmd));
        check::round_trip(line.trim_end_matches("\r\n").as_bytes());
    }

    /// Any line that parses round-trips (the fuzz target's check).
    #[test]
    fn parsed_lines_round_trip(line in prop::collection::vec(any::<u8>(), 0..60)) {
        check::round_trip(&line);
    }

    /// RETR/TOP: unstuffed, the response is the message with CRLF line
    /// ends (TOP: header and n body lines), and RETR's size is wire_size.
    #[test]
    fn message_survives_dot_stuffing(raw in prop::collection::vec(prop_oneof![
        any::<u8>(), Just(b'.'), Just(b'\r'), Just(b'\n')], 0..200), top in proptest::option::of(0u64..5)) {
        let r = Response::message("x", &raw, top);
        let bytes = r.as_bytes();
        prop_assert!(bytes.starts_with(b"+OK x\r\n"));
        prop_assert!(bytes.ends_with(b"\r\n.\r\n"));
        let body = &bytes[b"+OK x\r\n".len()..];
        // The terminator is the only lone dot.
        let lone_dots = body.split(|&b| b == b'\n').filter(|l| *l == b".\r").count();
        prop_assert_eq!(lone_dots, 1);
        prop_assert_eq!(unstuff(body), check::wire(&raw, top));
        if top.is_none() {
            prop_assert_eq!(wire_size(&raw), check::wire(&raw, None).len() as u64);
        }
    }

    #[test]
    fn generated_conversations(mode in any::<u8>(), lines in prop::collection::vec(client_line(), 0..30)) {
        let mut data = vec![mode];
        for l in lines {
            data.extend_from_slice(&l);
        }
        let _ = check::session(&data);
    }

    #[test]
    fn mutated_seeds(seed in any::<prop::sample::Index>(), edits in prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..8)) {
        let seeds = outpost_testkit::seeds::all(&outpost_testkit::seed_dir!("session"), 5);
        let mut data = seeds[seed.index(seeds.len())].clone();
        outpost_testkit::seeds::mutate(&mut data, &edits);
        let _ = check::session(&data);
    }
}
