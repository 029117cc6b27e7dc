//! Stable-toolchain twin of the store's `delivery` fuzz target (`fuzz/`):
//! the same checks (`fuzz/check/delivery.rs`) over the committed seeds and
//! over generated messages whose lines end in CRLF, lone LF or lone CR.
//! (Arbitrary bytes stay with the fuzzer: mail-parser 0.11 has a
//! `debug_assert!` that such input reaches in debug builds.)

#[path = "../fuzz/check/delivery.rs"]
mod check;

use proptest::prelude::*;

#[test]
fn seeds_pass() {
    for data in outpost_testkit::seeds::all(&outpost_testkit::seed_dir!("delivery"), 3) {
        check::delivery(&data);
    }
}

fn line_end() -> impl Strategy<Value = &'static str> {
    prop_oneof![6 => Just("\r\n"), 2 => Just("\n"), 1 => Just("\r")]
}

fn line() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,60}",
        Just("--b1".to_string()),
        Just("--b1--".to_string()),
        Just("Content-Type: text/plain; charset=utf-8".to_string()),
        Just("Content-Transfer-Encoding: binary".to_string()),
        Just(String::new()),
    ]
}

/// A message: headers, an empty line, a body, each line with its own end.
fn message() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec(("[A-Za-z-]{1,12}", "[ -~]{0,40}", line_end()), 0..8),
        line_end(),
        prop::bool::ANY,
        proptest::collection::vec((line(), line_end()), 0..30),
    )
        .prop_map(|(headers, sep, multipart, body)| {
            let mut m = String::new();
            for (name, value, end) in headers {
                m.push_str(&format!("{name}: {value}{end}"));
            }
            if multipart {
                m.push_str("Content-Type: multipart/mixed; boundary=\"b1\"\r\n");
            }
            m.push_str(sep);
            for (l, end) in body {
                m.push_str(&l);
                m.push_str(end);
            }
            m.into_bytes()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn generated_messages(data in message()) {
        check::delivery(&data);
    }

    /// Line ends only where the generator put them: the fast path (already
    /// CRLF) and the slow path agree with the reference.
    #[test]
    fn crlf_matches_reference(data in message()) {
        let norm = outpost_store::crlf_normalized(std::sync::Arc::from(&data[..]));
        let lower = data.to_ascii_lowercase();
        if !lower.windows(6).any(|w| w == b"binary") {
            prop_assert_eq!(&*norm, &check::expected_crlf(&data)[..]);
        }
    }
}
