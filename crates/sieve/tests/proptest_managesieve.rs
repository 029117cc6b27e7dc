//! Stable-toolchain twin of the `managesieve` fuzz target (`fuzz/`): the
//! same checks (`fuzz/check/managesieve.rs`) over the committed seeds,
//! mutations of them and arbitrary bytes; plus round trips from the typed
//! side: a command written out parses back to itself, a string as the
//! server writes it reads back as that string, and a SASL PLAIN response
//! reaches the auth layer as the login and password it was built from.

#[path = "../fuzz/check/managesieve.rs"]
mod check;

use base64::Engine as _;
use outpost_sieve::codec::{self, Command, Decoder, Frame, Limits, Mode, Parsed, Secret};
use outpost_sieve::session::{Action, Machine, MachineConfig};
use proptest::prelude::*;

#[test]
fn seeds_pass_in_every_mode() {
    let dir = outpost_testkit::seed_dir!("managesieve");
    outpost_testkit::seeds::in_every_mode(&dir, 5, 0..=0xff, 0, |data| {
        check::managesieve(data);
    });
}

/// The session seed parses into the commands a client meant, and the
/// scripted world lets it log in and store a script, so the deep checks
/// really run.
#[test]
fn session_seed_gives_its_commands() {
    let dir = outpost_testkit::seed_dir!("managesieve");
    let run = check::managesieve(&std::fs::read(dir.join("session")).unwrap());
    let names: Vec<&str> = run.commands.iter().map(Command::name).collect();
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
    assert_eq!(
        (run.logins, run.stored, run.closed),
        (1, 1, true),
        "{run:?}"
    );
    // The active script could not be deleted; it was renamed.
    assert_eq!(run.store.scripts.keys().collect::<Vec<_>>(), ["away"]);
}

/// The SASL seeds log in by continuation (PLAIN and LOGIN), and a
/// synchronising literal is invited.
#[test]
fn sasl_and_literal_seeds_reach_their_paths() {
    let dir = outpost_testkit::seed_dir!("managesieve");
    for (seed, logins) in [("sasl_plain_continuation", 1), ("sasl_login", 2)] {
        let run = check::managesieve(&std::fs::read(dir.join(seed)).unwrap());
        assert_eq!(run.logins, logins, "{seed}: {run:?}");
    }
    let run = check::managesieve(&std::fs::read(dir.join("sync_literal")).unwrap());
    assert_eq!(run.stored, 1, "{run:?}");
    let t = String::from_utf8_lossy(&run.transcript);
    assert!(t.contains("\"Ready for literal data\"\r\n"), "{t}");
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![".{0,20}", "[\r\n\"\\\\a\0]{0,10}", "a{1020,1030}"]
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        (
            "[A-Za-z0-9-]{1,12}",
            proptest::option::of("[A-Za-z0-9+/=]{0,30}")
        )
            .prop_map(|(mechanism, initial)| Command::Authenticate {
                mechanism,
                initial: initial.map(Secret)
            }),
        Just(Command::StartTls),
        Just(Command::Logout),
        Just(Command::Capability),
        (text(), any::<u64>()).prop_map(|(name, size)| Command::HaveSpace { name, size }),
        (text(), text()).prop_map(|(name, script)| Command::PutScript { name, script }),
        Just(Command::ListScripts),
        text().prop_map(|name| Command::SetActive { name }),
        text().prop_map(|name| Command::GetScript { name }),
        text().prop_map(|name| Command::DeleteScript { name }),
        (text(), text()).prop_map(|(from, to)| Command::RenameScript { from, to }),
        text().prop_map(|script| Command::CheckScript { script }),
        proptest::option::of(text()).prop_map(|tag| Command::Noop { tag }),
        Just(Command::Unauthenticate),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn command_round_trip(cmd in command()) {
        check::round_trip(&cmd);
    }

    /// A string as the server writes it (quoted, else a `{N}` literal)
    /// reads back as the same string, here as NOOP's tag; a literal is
    /// invited first, as every `{N}` is.
    #[test]
    fn string_round_trip(s in text()) {
        let mut line = b"NOOP ".to_vec();
        codec::encode_string(&mut line, &s);
        line.extend_from_slice(b"\r\n");
        let limits = Limits { max_line: 1 << 20, max_literal: 1 << 20 };
        let granted = match codec::parse_command(&line, limits, 0) {
            Parsed::NeedLiteral { size } => {
                prop_assert_eq!(size, s.len());
                1
            }
            _ => 0,
        };
        prop_assert_eq!(
            codec::parse_command(&line, limits, granted),
            Parsed::Done(Command::Noop { tag: Some(s) }, line.len())
        );
    }

    /// AUTHENTICATE PLAIN, with an initial response or by continuation,
    /// asks the auth layer for the login and password it was built from.
    #[test]
    fn plain_round_trip(login in "[^\0]{1,20}", password in "[^\0]{0,20}", authz in any::<bool>(), continuation in any::<bool>()) {
        let z = if authz { login.as_str() } else { "" };
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{z}\0{login}\0{password}"));
        let mut m = Machine::new(MachineConfig {
            hostname: "h".into(),
            tls_available: false,
            is_tls: true,
            plaintext_allowed: false,
            max_bad_commands: 3,
            max_scripts: 1,
            max_script_size: 10,
            sieve_extensions: String::new(),
            max_redirects: 1,
        });
        let mut d = Decoder::new(1000, 10);
        if continuation {
            d.push(b"AUTHENTICATE \"PLAIN\"\r\n");
            let f = d.next_frame(m.input_mode()).unwrap();
            prop_assert!(matches!(m.on_frame(f), Action::Send(_)));
            prop_assert_eq!(m.input_mode(), Mode::SaslResponse);
            d.push(format!("\"{b64}\"\r\n").as_bytes());
        } else {
            d.push(format!("AUTHENTICATE \"PLAIN\" \"{b64}\"\r\n").as_bytes());
        }
        let f = d.next_frame(m.input_mode()).unwrap();
        prop_assert!(matches!(f, Frame::Command(_) | Frame::SaslResponse(_)));
        prop_assert_eq!(m.on_frame(f), Action::Login { login, password: Secret(password) });
    }

    #[test]
    fn arbitrary_bytes(data in prop::collection::vec(any::<u8>(), 0..300)) {
        check::managesieve(&data);
    }

    #[test]
    fn mutated_seeds(seed in any::<prop::sample::Index>(), mode in any::<u8>(), edits in prop::collection::vec((any::<usize>(), prop_oneof![any::<u8>(), prop::sample::select(b"{}+\"\\\r\n *0123456789".to_vec())], 0u8..3), 1..8)) {
        let seeds = outpost_testkit::seeds::all(&outpost_testkit::seed_dir!("managesieve"), 5);
        let mut data = seeds[seed.index(seeds.len())].clone();
        data[0] = mode;
        outpost_testkit::seeds::mutate(&mut data, &edits);
        check::managesieve(&data);
    }
}
