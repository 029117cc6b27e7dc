//! Stable-toolchain twin of the `managesieve` fuzz target (`fuzz/`): the
//! same checks (`fuzz/check/managesieve.rs`) over the committed seeds,
//! mutations of them and arbitrary bytes; plus round trips from the typed
//! side: a command written out parses back to itself, `codec::string`
//! reads back as the string it quoted, and a SASL PLAIN response decodes
//! to the login and password it was built from.

#[path = "../fuzz/check/managesieve.rs"]
mod check;

use std::path::PathBuf;

use base64::Engine as _;
use outpost_sieve::codec::{self, Arg, Command, Parsed};
use outpost_sieve::decode_plain;
use proptest::prelude::*;

fn seeds() -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/managesieve");
    let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| {
            let p = e.unwrap().path();
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    out.sort();
    assert!(out.len() >= 5, "seed corpus missing");
    out.into_iter().map(|(_, b)| b).collect()
}

#[test]
fn seeds_pass_in_every_mode() {
    for seed in seeds() {
        for mode in 0..=0x7f {
            let mut data = seed.clone();
            data[0] = mode;
            check::managesieve(&data);
        }
    }
}

/// The session seed parses into the commands a client meant.
#[test]
fn session_seed_gives_its_commands() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/managesieve");
    let events = check::managesieve(&std::fs::read(dir.join("session")).unwrap());
    let names: Vec<&str> = events
        .iter()
        .map(|e| match e {
            check::Event::Command(c, _) => c.name.as_str(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        names,
        [
            "CAPABILITY",
            "AUTHENTICATE",
            "LISTSCRIPTS",
            "PUTSCRIPT",
            "CHECKSCRIPT",
            "SETACTIVE",
            "GETSCRIPT",
            "RENAMESCRIPT",
            "HAVESPACE",
            "DELETESCRIPT",
            "NOOP",
            "UNAUTHENTICATE",
            "LOGOUT"
        ]
    );
}

fn arg() -> impl Strategy<Value = Arg> {
    prop_oneof![
        "[A-Za-z0-9_.*+=/-]{1,10}".prop_map(Arg::Atom),
        ".{0,20}".prop_map(|s| Arg::Str(s.into_bytes())),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(Arg::Str),
    ]
}

fn command() -> impl Strategy<Value = Command> {
    ("[A-Z][A-Z0-9]{0,12}", prop::collection::vec(arg(), 0..4))
        .prop_map(|(name, args)| Command { name, args })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn command_round_trip(cmd in command()) {
        check::round_trip(&cmd);
    }

    /// `codec::string` (used for every string the server sends) reads
    /// back as the same string, quoted or as a literal.
    #[test]
    fn string_round_trip(s in prop_oneof![".{0,40}", "[\r\n\"\\\\a\0]{0,10}", "a{1020,1030}"]) {
        let mut line = b"X ".to_vec();
        line.extend_from_slice(codec::string(&s).as_bytes());
        line.extend_from_slice(b"\r\n");
        prop_assert_eq!(
            codec::parse(&line, 1 << 20, 1 << 20),
            Parsed::Command(Command { name: "X".into(), args: vec![Arg::Str(s.into_bytes())] }, line.len())
        );
    }

    #[test]
    fn plain_round_trip(login in "[^\0]{1,20}", password in "[^\0]{0,20}", authz in any::<bool>()) {
        let z = if authz { login.as_str() } else { "" };
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{z}\0{login}\0{password}"));
        prop_assert_eq!(decode_plain(&b64), Some((login, password)));
    }

    #[test]
    fn arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..300)) {
        check::managesieve(&data);
    }

    #[test]
    fn mutated_seeds(seed in any::<prop::sample::Index>(), mode in any::<u8>(), edits in prop::collection::vec((any::<usize>(), prop_oneof![any::<u8>(), prop::sample::select(b"{}+\"\\\r\n 0123456789".to_vec())], 0u8..3), 1..8)) {
        let seeds = seeds();
        let mut data = seeds[seed.index(seeds.len())].clone();
        data[0] = mode;
        for (at, b, kind) in edits {
            let i = 1 + at % data.len();
            match kind {
                0 => data.insert(i.min(data.len()), b),
                1 if i < data.len() => { data.remove(i); }
                _ if i < data.len() => data[i] = b,
                _ => {}
            }
        }
        check::managesieve(&data);
    }
}
