//! Runs the fuzz target's body (framer + parser + round-trip check) over
//! real client commands and random mutations of them, so the property is
//! checked on stable Rust in every `cargo test`.

use outpost_imap::codec::fuzzing::command_parser;
use proptest::prelude::*;

const SEEDS: &[&str] = &[
    "1 capability\r\n",
    "2 authenticate PLAIN AGFsaWNlAHNlY3JldA==\r\n",
    "3 ID (\"name\" \"Thunderbird\" \"version\" \"115.0\")\r\n",
    "4 list (subscribed) \"\" \"*\" return (special-use)\r\n",
    "5 select \"INBOX\" (CONDSTORE)\r\n",
    "6 UID fetch 1:* (FLAGS) (CHANGEDSINCE 1234)\r\n",
    "7 UID fetch 245 (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS (From To Cc Subject Date Message-ID)])\r\n",
    "8 UID fetch 245 (UID RFC822.SIZE BODY.PEEK[]<0.10240>)\r\n",
    "9 uid store 245 +Flags (\\Seen)\r\n",
    "10 IDLE\r\nDONE\r\n",
    "11 APPEND \"Sent\" (\\Seen) \"27-Mar-2024 10:11:12 -0730\" {12+}\r\nSubject: x\r\n\r\n",
    "12 APPEND Drafts CATENATE (URL \"/Drafts;UIDVALIDITY=1/;UID=2\" TEXT {4}\r\nabcd)\r\n",
    "a SELECT INBOX (QRESYNC (67890007 20050715194045000 41,43:211,214:541 (1:3 41:43)))\r\n",
    "a UID SEARCH RETURN (SAVE MIN PARTIAL -1:-50) CHARSET UTF-8 OR (SUBJECT {6}\r\nna\u{ef}ve FROM x) NOT SEEN SINCE 1-Feb-1994\r\n",
    "a UID FETCH $ (MODSEQ EMAILID BINARY.PEEK[1.2]<0.100> BINARY.SIZE[1]) (CHANGEDSINCE 5 VANISHED)\r\n",
    "a SEARCH MODSEQ \"/flags/\\\\draft\" all 620162338 YOUNGER 60 SAVEDBEFORE 1-Jan-2024\r\n",
    "a UID SORT RETURN (COUNT) (REVERSE DATE DISPLAYFROM) UTF-8 UNDELETED\r\n",
    "a THREAD REFERENCES UTF-8 ALL\r\n",
    "a STORE 1:* (UNCHANGEDSINCE 5) -FLAGS.SILENT (\\Deleted $Junk)\r\n",
    "a LIST (SUBSCRIBED RECURSIVEMATCH) \"\" (\"%\" \"Archive/*\") RETURN (CHILDREN STATUS (MESSAGES SIZE))\r\n",
    "a CREATE \"Entw&APw-rfe\" (USE (\\Drafts))\r\n",
    "a SETQUOTA \"\" (STORAGE 512)\r\n",
    "a LOGIN {3}\r\nbob ~{6}\r\nsecret\r\n",
    "a SEARCH CHARSET ISO-8859-1 BODY {4}\r\nnaiv\r\n",
];

#[test]
fn seeds_are_valid_commands() {
    use outpost_imap::codec::framing::{Frame, Framer, FramerLimits};
    use outpost_imap::codec::parse::{parse_command, ParseOptions};
    for seed in SEEDS {
        let mut f = Framer::new(FramerLimits::default());
        f.push(seed.as_bytes());
        while let Some(frame) = f.poll().unwrap() {
            if let Frame::Command(c) = frame {
                if c != b"DONE" {
                    parse_command(&c, &ParseOptions::default())
                        .unwrap_or_else(|e| panic!("{seed:?}: {e}"));
                }
            }
        }
    }
}

#[test]
fn seeds_pass() {
    for seed in SEEDS {
        for first in [0u8, 1, 7, 0x80, 0xff] {
            let mut data = vec![first];
            data.extend_from_slice(seed.as_bytes());
            command_parser(&data);
        }
    }
}

#[derive(Debug, Clone)]
enum Mutation {
    Insert(usize, u8),
    Delete(usize),
    Replace(usize, u8),
    Splice(usize, usize),
}

fn interesting_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        any::<u8>(),
        prop::sample::select(b" ()[]<>{}~+-\"\\*$:,.%\r\n0123456789".to_vec()),
    ]
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), interesting_byte()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        (any::<usize>(), interesting_byte()).prop_map(|(i, b)| Mutation::Replace(i, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(s, i)| Mutation::Splice(s, i)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(2000)
    ))]

    #[test]
    fn mutated_seeds(seed in 0..SEEDS.len(), first in any::<u8>(), muts in prop::collection::vec(mutation(), 1..6)) {
        let mut data: Vec<u8> = SEEDS[seed].as_bytes().to_vec();
        for m in muts {
            let n = data.len().max(1);
            match m {
                Mutation::Insert(i, b) => data.insert(i % (data.len() + 1), b),
                Mutation::Delete(i) => { if !data.is_empty() { data.remove(i % n); } }
                Mutation::Replace(i, b) => { if !data.is_empty() { data[i % n] = b; } }
                Mutation::Splice(s, i) => {
                    let other = SEEDS[s % SEEDS.len()].as_bytes();
                    let at = i % (data.len() + 1);
                    data.splice(at..at, other.iter().copied());
                }
            }
        }
        let mut input = vec![first];
        input.extend_from_slice(&data);
        command_parser(&input);
    }
}
