//! The one out-of-office: what ActiveSync (Settings Oof), EWS
//! (Get/SetUserOofSettings), JMAP (VacationResponse) and the web UI show
//! and set, kept where ManageSieve users already keep theirs — as a Sieve
//! `vacation` in the user's active script. There is no second copy: the
//! script is the source of truth, and this module reads and writes one
//! marked block of it.
//!
//! The block looks like this (the first lines of the script, after the
//! script's own `require`s):
//!
//! ```text
//! # BEGIN outpost out-of-office (edited by ActiveSync, EWS, JMAP and the web UI)
//! # outpost-oof {"state":"scheduled","start":...}
//! require ["vacation", "date", "relational", "envelope"];
//! if allof (currentdate :zone "+0000" :value "ge" "iso8601" "2026-12-24T00:00:00+00:00",
//!           currentdate :zone "+0000" :value "lt" "iso8601" "2027-01-02T00:00:00+00:00") {
//!   if envelope :domain :is "from" ["example.org"] {
//!     vacation :subject "Away" :addresses ["a@example.org"] "internal text";
//!   } else {
//!     vacation :subject "Away" :addresses ["a@example.org"] "external text";
//!   }
//! }
//! # END outpost out-of-office
//! ```
//!
//! The `outpost-oof` comment holds the settings as JSON, so that what a
//! protocol set comes back exactly (a disabled out-of-office keeps its
//! texts for the next time, as Exchange does); the Sieve below it is
//! generated from them and is what delivery runs. Everything outside the
//! block is the user's and is kept byte for byte.
//!
//! "Internal" senders are those whose envelope domain is one of the
//! domains given when the block is written (the hosted domains).
//! Exchange's "known external senders" (those in the user's contacts) has
//! no Sieve test; [`Audience::Known`] is kept as set but answers no
//! external sender, which errs on the side of telling fewer strangers
//! that the user is away.

use serde::{Deserialize, Serialize};

/// First line of the managed block.
pub const BEGIN: &str =
    "# BEGIN outpost out-of-office (edited by ActiveSync, EWS, JMAP and the web UI)";
/// Last line of the managed block.
pub const END: &str = "# END outpost out-of-office";
const META: &str = "# outpost-oof ";

/// Longest reply text or subject accepted, in bytes.
pub const MAX_TEXT: usize = 64 * 1024;
/// Most addresses or domains written into the block.
pub const MAX_LIST: usize = 1000;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OofState {
    #[default]
    Disabled,
    /// Replies until turned off.
    Enabled,
    /// Replies from `start` (inclusive) to `end` (exclusive).
    Scheduled,
}

/// Which senders outside the organisation get the external reply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Audience {
    /// No external sender is answered.
    #[default]
    None,
    /// Exchange's "senders in my contacts": kept, answered like `None`
    /// (see the module notes).
    Known,
    /// Every external sender.
    All,
}

/// The out-of-office settings every protocol shows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutOfOffice {
    pub state: OofState,
    /// Unix seconds (UTC); used when `state` is `Scheduled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<i64>,
    /// Subject of the replies; `None` lets the engine use
    /// "Auto: <original subject>".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// The reply to senders inside the organisation (plain text).
    #[serde(default)]
    pub internal_reply: String,
    /// The reply to external senders; `None`: the internal one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_reply: Option<String>,
    #[serde(default)]
    pub external_audience: Audience,
}

/// What the block needs from outside the settings.
#[derive(Clone, Debug, Default)]
pub struct OofContext {
    /// The user's addresses (Sieve `:addresses`: mail that reached the
    /// user only as a Bcc or through a list is not answered).
    pub addresses: Vec<String>,
    /// Domains whose senders get the internal reply.
    pub internal_domains: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OofError {
    #[error("the out-of-office end is not after its start")]
    BadPeriod,
    #[error("a scheduled out-of-office needs a start and an end")]
    MissingPeriod,
    #[error("the out-of-office text or subject is longer than {MAX_TEXT} bytes")]
    TooLong,
    #[error("a date outside the years 1970-9999")]
    BadDate,
}

impl OutOfOffice {
    /// Checks what a client sent before it is written.
    pub fn validate(&self) -> Result<(), OofError> {
        let texts = [
            Some(self.internal_reply.as_str()),
            self.external_reply.as_deref(),
            self.subject.as_deref(),
        ];
        if texts.iter().flatten().any(|t| t.len() > MAX_TEXT) {
            return Err(OofError::TooLong);
        }
        for t in [self.start, self.end].into_iter().flatten() {
            if !(0..=253_402_300_799).contains(&t) {
                return Err(OofError::BadDate);
            }
        }
        if self.state == OofState::Scheduled {
            let (Some(s), Some(e)) = (self.start, self.end) else {
                return Err(OofError::MissingPeriod);
            };
            if e <= s {
                return Err(OofError::BadPeriod);
            }
        }
        Ok(())
    }

    /// Replies are being sent at `now` (Unix seconds).
    pub fn active_at(&self, now: i64) -> bool {
        match self.state {
            OofState::Disabled => false,
            OofState::Enabled => true,
            OofState::Scheduled => match (self.start, self.end) {
                (Some(s), Some(e)) => s <= now && now < e,
                _ => false,
            },
        }
    }
}

/// The settings in `script`'s managed block; `None` when it has none (or
/// the block's settings line cannot be read).
pub fn read(script: &str) -> Option<OutOfOffice> {
    let (start, end) = block_span(script)?;
    script[start..end]
        .lines()
        .find_map(|l| l.strip_prefix(META))
        .and_then(|json| serde_json::from_str(json.trim()).ok())
}

/// `script` (or a new script when `None`) with its managed block replaced
/// by one for `oof`, inserted after the script's leading `require`s when
/// it had none. The rest of the script is kept as it was.
pub fn apply(
    script: Option<&str>,
    oof: &OutOfOffice,
    ctx: &OofContext,
) -> Result<String, OofError> {
    oof.validate()?;
    let block = render(oof, ctx);
    let script = script.unwrap_or("");
    Ok(match block_span(script) {
        Some((start, end)) => format!("{}{}{}", &script[..start], block, &script[end..]),
        None => {
            let at = after_requires(script);
            let (head, tail) = script.split_at(at);
            let sep = if head.is_empty() || head.ends_with('\n') {
                ""
            } else {
                "\n"
            };
            format!("{head}{sep}{block}{tail}")
        }
    })
}

/// The byte range of the managed block, its END line and line break
/// included.
fn block_span(script: &str) -> Option<(usize, usize)> {
    let mut pos = 0;
    let mut start = None;
    for line in script.split_inclusive('\n') {
        let bare = line.trim_end_matches(['\r', '\n']);
        if start.is_none() && bare == BEGIN {
            start = Some(pos);
        } else if start.is_some() && bare == END {
            return Some((start?, pos + line.len()));
        }
        pos += line.len();
    }
    None
}

fn render(oof: &OutOfOffice, ctx: &OofContext) -> String {
    let mut out = String::new();
    out.push_str(BEGIN);
    out.push('\n');
    out.push_str(META);
    out.push_str(&serde_json::to_string(oof).expect("settings serialize"));
    out.push('\n');
    out.push_str("require [\"vacation\", \"date\", \"relational\", \"envelope\"];\n");
    let vacation = |text: &str| {
        let mut v = String::from("vacation");
        if let Some(s) = &oof.subject {
            v.push_str(" :subject ");
            v.push_str(&quote(s));
        }
        if !ctx.addresses.is_empty() {
            v.push_str(" :addresses ");
            v.push_str(&list(&ctx.addresses));
        }
        v.push(' ');
        v.push_str(&quote(text));
        v.push(';');
        v
    };
    let body = {
        let internal = vacation(&oof.internal_reply);
        let external = (oof.external_audience == Audience::All)
            .then(|| vacation(oof.external_reply.as_deref().unwrap_or(&oof.internal_reply)));
        match (ctx.internal_domains.is_empty(), external) {
            // No domain is internal: everyone is external.
            (true, Some(ext)) => format!("  {ext}\n"),
            (true, None) => String::new(),
            (false, ext) => {
                let mut b = format!(
                    "  if envelope :domain :is \"from\" {} {{\n    {internal}\n  }}",
                    list(&ctx.internal_domains)
                );
                if let Some(ext) = ext {
                    b.push_str(&format!(" else {{\n    {ext}\n  }}"));
                }
                b.push('\n');
                b
            }
        }
    };
    match (oof.state, oof.start, oof.end) {
        (OofState::Disabled, ..) => {}
        (OofState::Enabled, ..) => {
            out.push_str("if true {\n");
            out.push_str(&body);
            out.push_str("}\n");
        }
        (OofState::Scheduled, Some(s), Some(e)) => {
            out.push_str(&format!(
                "if allof (currentdate :zone \"+0000\" :value \"ge\" \"iso8601\" {},\n          currentdate :zone \"+0000\" :value \"lt\" \"iso8601\" {}) {{\n",
                quote(&iso8601(s)),
                quote(&iso8601(e))
            ));
            out.push_str(&body);
            out.push_str("}\n");
        }
        // validate() refuses this; write nothing that replies.
        (OofState::Scheduled, ..) => {}
    }
    out.push_str(END);
    out.push('\n');
    out
}

/// A Sieve quoted string (RFC 5228 §2.4.2: `\` and `"` escaped).
fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        if c != '\0' {
            q.push(c);
        }
    }
    q.push('"');
    q
}

fn list(items: &[String]) -> String {
    let parts: Vec<String> = items.iter().take(MAX_LIST).map(|s| quote(s)).collect();
    format!("[{}]", parts.join(", "))
}

/// The date as sieve-rs prints `currentdate :zone "+0000" "iso8601"`
/// (RFC 3339 with a `+00:00` offset), so that the relational test compares
/// like with like.
fn iso8601(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+00:00",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
/// algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Where the script's leading `require` commands (with the comments and
/// white space around them) end: the block goes there, since Sieve allows
/// `require` only before every other command.
fn after_requires(s: &str) -> usize {
    let b = s.as_bytes();
    let mut i = 0;
    let mut end = 0;
    loop {
        i = skip_blank(b, i);
        if !b[i..]
            .get(..7)
            .is_some_and(|w| w.eq_ignore_ascii_case(b"require"))
            || b.get(i + 7)
                .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
        {
            return end;
        }
        i += 7;
        // To the `;` that ends the command, past quoted strings and
        // comments.
        loop {
            match b.get(i) {
                None => return end,
                Some(b';') => {
                    i += 1;
                    break;
                }
                Some(b'"') => {
                    i += 1;
                    while let Some(&c) = b.get(i) {
                        i += if c == b'\\' { 2 } else { 1 };
                        if c == b'"' {
                            break;
                        }
                    }
                }
                Some(b'#') | Some(b'/') if skip_blank(b, i) > i => i = skip_blank(b, i),
                Some(_) => i += 1,
            }
        }
        // The rest of that line belongs to the require when it is only
        // blanks and a comment.
        let mut j = i;
        while matches!(b.get(j), Some(b' ' | b'\t' | b'\r')) {
            j += 1;
        }
        if b.get(j) == Some(&b'#') {
            while b.get(j).is_some_and(|&c| c != b'\n') {
                j += 1;
            }
        }
        if b.get(j) == Some(&b'\n') {
            i = j + 1;
        }
        end = i.min(b.len());
    }
}

/// Past white space, `#` comments and `/* */` comments.
fn skip_blank(b: &[u8], mut i: usize) -> usize {
    loop {
        match b.get(i) {
            Some(c) if c.is_ascii_whitespace() => i += 1,
            Some(b'#') => {
                while b.get(i).is_some_and(|&c| c != b'\n') {
                    i += 1;
                }
            }
            Some(b'/') if b.get(i + 1) == Some(&b'*') => {
                i += 2;
                while i < b.len() && !(b[i] == b'*' && b.get(i + 1) == Some(&b'/')) {
                    i += 1;
                }
                i = (i + 2).min(b.len());
            }
            _ => return i,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> OofContext {
        OofContext {
            addresses: vec!["ann@example.org".into(), "a.b@example.org".into()],
            internal_domains: vec!["example.org".into()],
        }
    }

    fn scheduled() -> OutOfOffice {
        OutOfOffice {
            state: OofState::Scheduled,
            start: Some(1_798_070_400), // 2026-12-24T00:00:00Z
            end: Some(1_798_848_000),   // 2027-01-02T00:00:00Z
            subject: Some("Away \"for\" the holidays".into()),
            internal_reply: "Back on the 2nd.\nAnn".into(),
            external_reply: Some("I am away.".into()),
            external_audience: Audience::All,
        }
    }

    #[test]
    fn dates_print_as_sieve_rs_prints_them() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00+00:00");
        assert_eq!(iso8601(1_798_070_400), "2026-12-24T00:00:00+00:00");
        assert_eq!(iso8601(951_782_400 + 3661), "2000-02-29T01:01:01+00:00");
        assert_eq!(iso8601(253_402_300_799), "9999-12-31T23:59:59+00:00");
    }

    #[test]
    fn a_new_script_holds_only_the_block_and_reads_back() {
        let s = apply(None, &scheduled(), &ctx()).unwrap();
        assert!(s.starts_with(BEGIN), "{s}");
        assert!(s.ends_with(&format!("{END}\n")), "{s}");
        assert!(s.contains(r#":subject "Away \"for\" the holidays""#), "{s}");
        assert!(s.contains(r#""2026-12-24T00:00:00+00:00""#), "{s}");
        assert!(
            s.contains(r#"envelope :domain :is "from" ["example.org"]"#),
            "{s}"
        );
        assert_eq!(read(&s), Some(scheduled()));
    }

    #[test]
    fn the_users_script_is_kept_and_the_block_goes_after_its_requires() {
        let user = "# my filters\r\nrequire [\"fileinto\",\n \"imap4flags\"]; # why\nrequire \"body\";\n\nif header :contains \"subject\" \"x\" { fileinto \"X\"; }\n";
        let s = apply(Some(user), &scheduled(), &ctx()).unwrap();
        let at = s.find(BEGIN).unwrap();
        assert_eq!(
            &s[..at],
            "# my filters\r\nrequire [\"fileinto\",\n \"imap4flags\"]; # why\nrequire \"body\";\n"
        );
        assert!(s.ends_with("\nif header :contains \"subject\" \"x\" { fileinto \"X\"; }\n"));
        // Rewriting replaces the block in place and nothing else.
        let off = OutOfOffice {
            state: OofState::Disabled,
            ..scheduled()
        };
        let s2 = apply(Some(&s), &off, &ctx()).unwrap();
        assert_eq!(s2.matches(BEGIN).count(), 1);
        assert_eq!(&s2[..at], &s[..at]);
        assert!(s2.ends_with("\nif header :contains \"subject\" \"x\" { fileinto \"X\"; }\n"));
        assert!(
            !s2.contains("vacation :"),
            "a disabled block replies to nobody: {s2}"
        );
        // The texts survive being disabled.
        assert_eq!(read(&s2), Some(off));
    }

    #[test]
    fn a_script_without_requires_gets_the_block_first() {
        let s = apply(Some("keep;\n"), &scheduled(), &ctx()).unwrap();
        assert!(s.starts_with(BEGIN));
        assert!(s.ends_with("\nkeep;\n"));
        // "requires" is not "require".
        assert_eq!(after_requires("requirex;"), 0);
        assert_eq!(after_requires("/* c */ require \"a;b\"; keep;"), 22);
    }

    #[test]
    fn audiences() {
        let mut o = scheduled();
        o.external_audience = Audience::Known;
        let s = apply(None, &o, &ctx()).unwrap();
        assert_eq!(s.matches("vacation :").count(), 1, "{s}");
        assert!(!s.contains("else"), "{s}");
        o.external_audience = Audience::All;
        o.external_reply = None;
        let s = apply(None, &o, &ctx()).unwrap();
        assert_eq!(s.matches("\"Back on the 2nd.\nAnn\";").count(), 2, "{s}");
        let none = OofContext {
            internal_domains: vec![],
            ..ctx()
        };
        let s = apply(None, &o, &none).unwrap();
        assert_eq!(s.matches("vacation :").count(), 1, "{s}");
    }

    #[test]
    fn bad_settings_are_refused() {
        let mut o = scheduled();
        o.end = o.start;
        assert_eq!(apply(None, &o, &ctx()), Err(OofError::BadPeriod));
        o.end = None;
        assert_eq!(apply(None, &o, &ctx()), Err(OofError::MissingPeriod));
        let o = OutOfOffice {
            internal_reply: "x".repeat(MAX_TEXT + 1),
            ..scheduled()
        };
        assert_eq!(apply(None, &o, &ctx()), Err(OofError::TooLong));
        let o = OutOfOffice {
            start: Some(-1),
            ..scheduled()
        };
        assert_eq!(apply(None, &o, &ctx()), Err(OofError::BadDate));
    }

    #[test]
    fn active_at() {
        let o = scheduled();
        assert!(!o.active_at(1_798_070_399));
        assert!(o.active_at(1_798_070_400));
        assert!(!o.active_at(1_798_848_000));
        assert!(OutOfOffice {
            state: OofState::Enabled,
            ..OutOfOffice::default()
        }
        .active_at(0));
        assert!(!OutOfOffice::default().active_at(0));
    }

    #[test]
    fn a_hand_broken_block_reads_as_none() {
        let s = format!("{BEGIN}\n# outpost-oof {{not json\n{END}\n");
        assert_eq!(read(&s), None);
        assert_eq!(read("keep;"), None);
    }

    #[test]
    fn nothing_panics() {
        for s in [
            "require",
            "require \"",
            "require [\"a\"",
            "/* ",
            "#",
            "require \"\\",
            "require;",
        ] {
            let _ = after_requires(s);
            let _ = apply(Some(s), &scheduled(), &ctx());
        }
    }
}
