//! Parsing one whole command (as the framer hands it over, literals inline)
//! into a [`Command`].
//!
//! The grammar is RFC 3501 / RFC 9051 with the extensions listed in the
//! crate documentation. The parser is strict where a mistake would change
//! meaning and lenient where real clients are sloppy (trailing spaces, bare
//! LF after a literal's length, keyword case).

use std::borrow::Cow;

use base64::Engine as _;

use super::response::Code;
use super::types::*;
use super::utf7;

/// How to read a command; changes with the session's state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// `ENABLE UTF8=ACCEPT` (RFC 6855) is in force: mailbox names are UTF-8,
    /// not modified UTF-7.
    pub utf8_accept: bool,
}

/// A command that could not be parsed. When the tag could be read it is
/// here, so the session answers `tag BAD message`; otherwise `* BAD`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub tag: Option<Tag>,
    pub message: String,
    /// A response code to send with the BAD (or NO), e.g. BADCHARSET.
    pub code: Option<Code>,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.tag {
            Some(t) => write!(f, "{t}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ParseError {}

/// Parses one command. `input` is what [`crate::codec::framing::Frame::Command`]
/// carries: the command line(s) with literals inline and without the final
/// CRLF. (A trailing CRLF is not stripped: it may be the end of a literal.)
pub fn parse_command(input: &[u8], opts: &ParseOptions) -> Result<Command, ParseError> {
    let mut p = P {
        b: input,
        i: 0,
        utf8: opts.utf8_accept,
    };
    let tag = match p.tag() {
        Ok(t) => t,
        Err(e) => {
            return Err(ParseError {
                tag: None,
                message: e.msg.into_owned(),
                code: e.code,
            })
        }
    };
    match p.command_body() {
        Ok(body) => Ok(Command { tag, body }),
        Err(e) => Err(ParseError {
            tag: Some(tag),
            message: e.msg.into_owned(),
            code: e.code,
        }),
    }
}

/// Reads the tag at the start of a command, if there is a valid one. The
/// framer uses this to tag its own errors.
pub fn peek_tag(input: &[u8]) -> Option<Tag> {
    let end = input
        .iter()
        .position(|&b| !(is_astring_char(b) && b != b'+'))
        .unwrap_or(input.len());
    if end == 0 {
        return None;
    }
    Tag::new(std::str::from_utf8(&input[..end]).ok()?).ok()
}

struct E {
    msg: Cow<'static, str>,
    code: Option<Code>,
}

impl From<&'static str> for E {
    fn from(s: &'static str) -> E {
        E {
            msg: Cow::Borrowed(s),
            code: None,
        }
    }
}

impl From<String> for E {
    fn from(s: String) -> E {
        E {
            msg: Cow::Owned(s),
            code: None,
        }
    }
}

type R<T> = Result<T, E>;

/// Nesting limit for parenthesised search keys and NOT/OR chains.
const MAX_DEPTH: usize = 64;

struct P<'a> {
    b: &'a [u8],
    i: usize,
    utf8: bool,
}

impl<'a> P<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eof(&self) -> bool {
        self.i >= self.b.len()
    }

    /// End of command, allowing trailing spaces.
    fn at_end(&self) -> bool {
        self.b[self.i.min(self.b.len())..]
            .iter()
            .all(|&b| b == b' ')
    }

    fn end(&mut self) -> R<()> {
        if self.at_end() {
            self.i = self.b.len();
            Ok(())
        } else {
            Err(format!(
                "Unexpected characters at end of command: {}",
                self.excerpt()
            )
            .into())
        }
    }

    fn excerpt(&self) -> String {
        let rest = &self.b[self.i.min(self.b.len())..];
        let cut = &rest[..rest.len().min(30)];
        String::from_utf8_lossy(cut).into_owned()
    }

    fn expect(&mut self, c: u8) -> R<()> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else if self.eof() {
            Err(format!("Missing '{}' at end of command", c as char).into())
        } else {
            Err(format!("Expected '{}' at: {}", c as char, self.excerpt()).into())
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn sp(&mut self) -> R<()> {
        if self.eof() {
            return Err("Missing arguments".into());
        }
        self.expect(b' ')
    }

    fn take_while(&mut self, f: impl Fn(u8) -> bool) -> &'a [u8] {
        let start = self.i;
        while self.i < self.b.len() && f(self.b[self.i]) {
            self.i += 1;
        }
        &self.b[start..self.i]
    }

    fn tag(&mut self) -> R<Tag> {
        let t = self.take_while(|b| is_astring_char(b) && b != b'+');
        if t.is_empty() {
            return Err("Missing or invalid tag".into());
        }
        let t = std::str::from_utf8(t).expect("ascii");
        Tag::new(t).map_err(|_| "Invalid tag".into())
    }

    /// An atom, upper-cased: command names and keywords.
    fn keyword(&mut self) -> R<String> {
        let a = self.take_while(is_atom_char);
        if a.is_empty() {
            return Err(if self.eof() {
                "Missing arguments".into()
            } else {
                format!("Expected a keyword at: {}", self.excerpt()).into()
            });
        }
        Ok(std::str::from_utf8(a).expect("ascii").to_ascii_uppercase())
    }

    fn atom(&mut self) -> R<Atom> {
        let a = self.take_while(is_atom_char);
        if a.is_empty() {
            return Err(format!("Expected an atom at: {}", self.excerpt()).into());
        }
        Ok(Atom::new(std::str::from_utf8(a).expect("ascii")).expect("atom chars"))
    }

    fn digits(&mut self) -> R<&'a [u8]> {
        let d = self.take_while(|b| b.is_ascii_digit());
        if d.is_empty() {
            Err(format!("Expected a number at: {}", self.excerpt()).into())
        } else {
            Ok(d)
        }
    }

    fn number64(&mut self) -> R<u64> {
        let d = self.digits()?;
        std::str::from_utf8(d)
            .expect("digits")
            .parse()
            .map_err(|_| "Number too large".into())
    }

    fn number(&mut self) -> R<u32> {
        let n = self.number64()?;
        u32::try_from(n).map_err(|_| "Number too large".into())
    }

    fn nz_number(&mut self) -> R<u32> {
        match self.number()? {
            0 => Err("Zero is not allowed here".into()),
            n => Ok(n),
        }
    }

    /// mod-sequence-value: 1..2^63-1.
    fn mod_seq(&mut self) -> R<u64> {
        let n = self.number64()?;
        if n > i64::MAX as u64 {
            return Err("Mod-sequence too large".into());
        }
        Ok(n)
    }

    /// `{N}` / `{N+}` / `{N-}` / `~{N}` CRLF bytes. Returns the bytes and
    /// whether it was a literal8.
    fn literal(&mut self) -> R<(&'a [u8], bool)> {
        let binary = self.eat(b'~');
        self.expect(b'{')?;
        let n = self.number64()?;
        let _ = self.eat(b'+') || self.eat(b'-');
        self.expect(b'}')?;
        self.eat(b'\r');
        self.expect(b'\n')?;
        let n = usize::try_from(n).map_err(|_| E::from("Literal too large"))?;
        if self.b.len() - self.i < n {
            return Err("Literal shorter than announced".into());
        }
        let data = &self.b[self.i..self.i + n];
        self.i += n;
        if !binary && data.contains(&0) {
            return Err("NUL in a literal; use a literal8 (~{N})".into());
        }
        Ok((data, binary))
    }

    fn quoted(&mut self) -> R<Cow<'a, [u8]>> {
        self.expect(b'"')?;
        let start = self.i;
        let mut owned: Option<Vec<u8>> = None;
        loop {
            let Some(c) = self.peek() else {
                return Err("Unterminated quoted string".into());
            };
            self.i += 1;
            match c {
                b'"' => {
                    return Ok(match owned {
                        Some(v) => Cow::Owned(v),
                        None => Cow::Borrowed(&self.b[start..self.i - 1]),
                    })
                }
                b'\\' => {
                    let Some(n) = self.peek() else {
                        return Err("Unterminated quoted string".into());
                    };
                    if n != b'"' && n != b'\\' {
                        return Err("Invalid escape in quoted string".into());
                    }
                    self.i += 1;
                    let v = owned.get_or_insert_with(|| self.b[start..self.i - 2].to_vec());
                    v.push(n);
                }
                b'\r' | b'\n' | 0 => return Err("CR, LF or NUL in a quoted string".into()),
                _ => {
                    if let Some(v) = owned.as_mut() {
                        v.push(c)
                    }
                }
            }
        }
    }

    /// At `{` or `~{`. (A lone `~` is an atom character: `~peter/mail`.)
    fn at_literal(&self) -> bool {
        match self.peek() {
            Some(b'{') => true,
            Some(b'~') => self.b.get(self.i + 1) == Some(&b'{'),
            _ => false,
        }
    }

    fn string(&mut self) -> R<Cow<'a, [u8]>> {
        if self.at_literal() {
            return Ok(Cow::Borrowed(self.literal()?.0));
        }
        match self.peek() {
            Some(b'"') => self.quoted(),
            _ => Err(format!("Expected a string at: {}", self.excerpt()).into()),
        }
    }

    fn astring(&mut self) -> R<Cow<'a, [u8]>> {
        if self.peek() == Some(b'"') || self.at_literal() {
            return self.string();
        }
        let a = self.take_while(is_astring_char);
        if a.is_empty() {
            Err(if self.eof() {
                "Missing arguments".into()
            } else {
                format!("Expected a string at: {}", self.excerpt()).into()
            })
        } else {
            Ok(Cow::Borrowed(a))
        }
    }

    fn nil(&mut self) -> bool {
        if self.b[self.i..].len() >= 3 && self.b[self.i..self.i + 3].eq_ignore_ascii_case(b"NIL") {
            let next = self.b.get(self.i + 3).copied();
            if next.is_none_or(|b| !is_atom_char(b)) {
                self.i += 3;
                return true;
            }
        }
        false
    }

    fn nstring(&mut self) -> R<Option<Cow<'a, [u8]>>> {
        if self.nil() {
            Ok(None)
        } else {
            self.string().map(Some)
        }
    }

    fn utf8_string(&mut self, what: &str, bytes: Cow<'_, [u8]>) -> R<String> {
        String::from_utf8(bytes.into_owned()).map_err(|_| format!("{what} is not UTF-8").into())
    }

    fn astring_utf8(&mut self, what: &str) -> R<String> {
        let a = self.astring()?;
        self.utf8_string(what, a)
    }

    fn decode_name(&self, raw: &[u8]) -> R<String> {
        if self.utf8 || !raw.is_ascii() {
            // Raw UTF-8 from a client that did not ENABLE UTF8=ACCEPT is
            // taken as meant rather than refused.
            return String::from_utf8(raw.to_vec()).map_err(|_| "Mailbox name is not UTF-8".into());
        }
        utf7::decode(raw).map_err(|_| "Mailbox name is not valid modified UTF-7".into())
    }

    fn mailbox(&mut self) -> R<Mailbox> {
        let raw = self.astring()?;
        Ok(Mailbox::new(self.decode_name(&raw)?))
    }

    /// list-mailbox: list-chars (atom chars plus `%`, `*`, `]`) or a string.
    fn list_mailbox(&mut self) -> R<String> {
        let raw: Cow<'a, [u8]> = match self.peek() {
            Some(b'"') => self.string()?,
            _ if self.at_literal() => self.string()?,
            _ => {
                let a = self.take_while(|b| is_astring_char(b) || b == b'%' || b == b'*');
                if a.is_empty() {
                    return Err("Missing mailbox pattern".into());
                }
                Cow::Borrowed(a)
            }
        };
        self.decode_name(&raw)
    }

    fn sequence_set(&mut self) -> R<SequenceSet> {
        if self.eat(b'$') {
            return Ok(SequenceSet::Saved);
        }
        let mut ranges = Vec::new();
        loop {
            let start = self.seq_num()?;
            let end = if self.eat(b':') {
                self.seq_num()?
            } else {
                start
            };
            ranges.push(SeqRange { start, end });
            if !self.eat(b',') {
                break;
            }
        }
        Ok(SequenceSet::Ranges(ranges))
    }

    fn seq_num(&mut self) -> R<SeqNum> {
        if self.eat(b'*') {
            Ok(SeqNum::Last)
        } else {
            match self.number() {
                Ok(0) => Err("Invalid sequence set: 0 is not a message number".into()),
                Ok(n) => Ok(SeqNum::Value(n)),
                Err(_) => Err(format!("Invalid sequence set at: {}", self.excerpt()).into()),
            }
        }
    }

    fn flag(&mut self) -> R<Flag> {
        let start = self.i;
        self.eat(b'\\');
        let a = self.take_while(is_atom_char);
        let text = std::str::from_utf8(&self.b[start..self.i]).expect("ascii");
        if a.is_empty() {
            return Err(format!("Invalid flag at: {}", self.excerpt()).into());
        }
        Flag::parse(text).map_err(|_| format!("Invalid flag {text}").into())
    }

    fn flag_list(&mut self) -> R<Vec<Flag>> {
        self.expect(b'(')?;
        let mut flags = Vec::new();
        if self.eat(b')') {
            return Ok(flags);
        }
        loop {
            flags.push(self.flag()?);
            if self.eat(b')') {
                return Ok(flags);
            }
            self.sp()?;
        }
    }

    /// Parenthesised list of items separated by SP; `()` allowed when
    /// `empty_ok`.
    fn paren_list<T>(
        &mut self,
        empty_ok: bool,
        mut item: impl FnMut(&mut Self) -> R<T>,
    ) -> R<Vec<T>> {
        self.expect(b'(')?;
        let mut out = Vec::new();
        if self.eat(b')') {
            if empty_ok {
                return Ok(out);
            }
            return Err("Empty list".into());
        }
        loop {
            out.push(item(self)?);
            if self.eat(b')') {
                return Ok(out);
            }
            self.sp()?;
        }
    }

    fn month(&mut self) -> R<u8> {
        let m = self.take_while(|b| b.is_ascii_alphabetic());
        MONTHS
            .iter()
            .position(|x| x.as_bytes().eq_ignore_ascii_case(m))
            .map(|i| i as u8 + 1)
            .ok_or_else(|| "Invalid month in date".into())
    }

    fn fixed_digits(&mut self, n: usize) -> R<u32> {
        let d = self.take_while(|b| b.is_ascii_digit());
        if d.len() != n {
            return Err("Invalid date".into());
        }
        Ok(std::str::from_utf8(d)
            .expect("digits")
            .parse()
            .expect("digits"))
    }

    /// date = date-text / DQUOTE date-text DQUOTE; date-text = d[d]-Mon-yyyy.
    fn date(&mut self) -> R<Date> {
        let quoted = self.eat(b'"');
        let day = self.take_while(|b| b.is_ascii_digit());
        if day.is_empty() || day.len() > 2 {
            return Err("Invalid date".into());
        }
        let day: u8 = std::str::from_utf8(day)
            .expect("digits")
            .parse()
            .expect("digits");
        self.expect(b'-')?;
        let month = self.month()?;
        self.expect(b'-')?;
        let year = self.fixed_digits(4)? as u16;
        if quoted {
            self.expect(b'"')?;
        }
        Date::new(year, month, day).map_err(|_| "Invalid date".into())
    }

    /// date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP
    /// time SP zone DQUOTE.
    fn date_time(&mut self) -> R<DateTime> {
        self.expect(b'"')?;
        self.eat(b' ');
        let day = self.take_while(|b| b.is_ascii_digit());
        if day.is_empty() || day.len() > 2 {
            return Err("Invalid date-time".into());
        }
        let day: u8 = std::str::from_utf8(day)
            .expect("digits")
            .parse()
            .expect("digits");
        self.expect(b'-')?;
        let month = self.month()?;
        self.expect(b'-')?;
        let year = self.fixed_digits(4)? as u16;
        self.expect(b' ')?;
        let hour = self.fixed_digits(2)? as u8;
        self.expect(b':')?;
        let minute = self.fixed_digits(2)? as u8;
        self.expect(b':')?;
        let second = self.fixed_digits(2)? as u8;
        self.expect(b' ')?;
        let sign = match self.peek() {
            Some(b'+') => 1,
            Some(b'-') => -1,
            _ => return Err("Invalid zone in date-time".into()),
        };
        self.i += 1;
        let zone = self.fixed_digits(4)? as i16;
        self.expect(b'"')?;
        let date = Date::new(year, month, day).map_err(|_| E::from("Invalid date-time"))?;
        if zone % 100 >= 60 {
            return Err("Invalid zone in date-time".into());
        }
        DateTime::new(
            date,
            hour,
            minute,
            second,
            sign * (zone / 100 * 60 + zone % 100),
        )
        .map_err(|_| "Invalid date-time".into())
    }

    // ---- commands ----

    fn command_body(&mut self) -> R<CommandBody> {
        self.sp().map_err(|_| E::from("Missing command"))?;
        let name = self.keyword().map_err(|_| E::from("Missing command"))?;
        let body = match name.as_str() {
            "CAPABILITY" => CommandBody::Capability,
            "NOOP" => CommandBody::Noop,
            "LOGOUT" => CommandBody::Logout,
            "STARTTLS" => CommandBody::StartTls,
            "IDLE" => CommandBody::Idle,
            "CHECK" => CommandBody::Check,
            "CLOSE" => CommandBody::Close,
            "UNSELECT" => CommandBody::Unselect,
            "EXPUNGE" => CommandBody::Expunge,
            "NAMESPACE" => CommandBody::Namespace,
            "AUTHENTICATE" => self.authenticate()?,
            "LOGIN" => {
                self.sp()?;
                let username = self.astring_utf8("User name")?;
                self.sp()?;
                let password = self.astring_utf8("Password")?;
                CommandBody::Login { username, password }
            }
            "ENABLE" => {
                let mut caps = Vec::new();
                while !self.at_end() {
                    self.sp()?;
                    caps.push(self.atom()?);
                }
                if caps.is_empty() {
                    return Err("ENABLE needs at least one capability".into());
                }
                CommandBody::Enable(caps)
            }
            "SELECT" | "EXAMINE" => {
                self.sp()?;
                let mailbox = self.mailbox()?;
                let params = if self.peek() == Some(b' ') && !self.at_end() {
                    self.sp()?;
                    self.select_params()?
                } else {
                    SelectParams::default()
                };
                CommandBody::Select {
                    mailbox,
                    read_only: name == "EXAMINE",
                    params,
                }
            }
            "CREATE" => {
                self.sp()?;
                let mailbox = self.mailbox()?;
                let mut special_use = Vec::new();
                if !self.at_end() {
                    self.sp()?;
                    let params = self.paren_list(true, |p| {
                        let k = p.keyword()?;
                        if k != "USE" {
                            return Err(format!("Unknown CREATE parameter {k}").into());
                        }
                        p.sp()?;
                        p.paren_list(false, |p| {
                            let start = p.i;
                            p.expect(b'\\')?;
                            p.atom()?;
                            let s = std::str::from_utf8(&p.b[start..p.i]).expect("ascii");
                            MailboxAttr::parse(s).map_err(|_| "Invalid attribute".into())
                        })
                    })?;
                    special_use = params.into_iter().flatten().collect();
                }
                CommandBody::Create {
                    mailbox,
                    special_use,
                }
            }
            "DELETE" => CommandBody::Delete(self.sp_mailbox()?),
            "SUBSCRIBE" => CommandBody::Subscribe(self.sp_mailbox()?),
            "UNSUBSCRIBE" => CommandBody::Unsubscribe(self.sp_mailbox()?),
            "RENAME" => {
                let from = self.sp_mailbox()?;
                let to = self.sp_mailbox()?;
                CommandBody::Rename { from, to }
            }
            "LIST" => CommandBody::List(self.list()?),
            "LSUB" => {
                self.sp()?;
                let reference = self.list_reference()?;
                self.sp()?;
                let pattern = self.list_mailbox()?;
                CommandBody::Lsub { reference, pattern }
            }
            "STATUS" => {
                let mailbox = self.sp_mailbox()?;
                self.sp()?;
                let items = self.paren_list(false, |p| p.status_item())?;
                CommandBody::Status { mailbox, items }
            }
            "APPEND" => self.append()?,
            "SEARCH" => CommandBody::Search(self.search(false)?),
            "SORT" => CommandBody::Sort(self.sort(false)?),
            "THREAD" => CommandBody::Thread(self.thread(false)?),
            "FETCH" => CommandBody::Fetch(self.fetch(false)?),
            "STORE" => CommandBody::Store(self.store(false)?),
            "COPY" => {
                let (set, mailbox) = self.set_and_mailbox()?;
                CommandBody::Copy {
                    uid: false,
                    set,
                    mailbox,
                }
            }
            "MOVE" => {
                let (set, mailbox) = self.set_and_mailbox()?;
                CommandBody::Move {
                    uid: false,
                    set,
                    mailbox,
                }
            }
            "UID" => {
                self.sp()?;
                let sub = self.keyword()?;
                match sub.as_str() {
                    "SEARCH" => CommandBody::Search(self.search(true)?),
                    "SORT" => CommandBody::Sort(self.sort(true)?),
                    "THREAD" => CommandBody::Thread(self.thread(true)?),
                    "FETCH" => CommandBody::Fetch(self.fetch(true)?),
                    "STORE" => CommandBody::Store(self.store(true)?),
                    "COPY" => {
                        let (set, mailbox) = self.set_and_mailbox()?;
                        CommandBody::Copy {
                            uid: true,
                            set,
                            mailbox,
                        }
                    }
                    "MOVE" => {
                        let (set, mailbox) = self.set_and_mailbox()?;
                        CommandBody::Move {
                            uid: true,
                            set,
                            mailbox,
                        }
                    }
                    "EXPUNGE" => {
                        self.sp()?;
                        CommandBody::UidExpunge(self.sequence_set()?)
                    }
                    _ => return Err(format!("Unknown UID command {sub}").into()),
                }
            }
            "GETQUOTA" => {
                self.sp()?;
                CommandBody::GetQuota(self.astring_utf8("Quota root")?)
            }
            "GETQUOTAROOT" => CommandBody::GetQuotaRoot(self.sp_mailbox()?),
            "SETQUOTA" => {
                self.sp()?;
                let root = self.astring_utf8("Quota root")?;
                self.sp()?;
                let limits = self.paren_list(true, |p| {
                    let resource = Atom::new(p.keyword()?).expect("keyword is an atom");
                    p.sp()?;
                    let limit = p.number64()?;
                    Ok(QuotaLimit { resource, limit })
                })?;
                CommandBody::SetQuota { root, limits }
            }
            "ID" => {
                self.sp()?;
                if self.nil() {
                    CommandBody::Id(None)
                } else {
                    self.expect(b'(')?;
                    let mut params = Vec::new();
                    if !self.eat(b')') {
                        loop {
                            let k = self.string()?;
                            let k = self.utf8_string("ID field", k)?;
                            self.sp()?;
                            let v = self
                                .nstring()?
                                .map(|v| String::from_utf8_lossy(&v).into_owned());
                            params.push((k, v));
                            if params.len() > 30 {
                                return Err("Too many ID fields".into());
                            }
                            if self.eat(b')') {
                                break;
                            }
                            self.sp()?;
                        }
                    }
                    CommandBody::Id(Some(params))
                }
            }
            _ => return Err(format!("Unknown command {name}").into()),
        };
        self.end()?;
        Ok(body)
    }

    fn sp_mailbox(&mut self) -> R<Mailbox> {
        self.sp()?;
        self.mailbox()
    }

    fn set_and_mailbox(&mut self) -> R<(SequenceSet, Mailbox)> {
        self.sp()?;
        let set = self.sequence_set()?;
        let mailbox = self.sp_mailbox()?;
        Ok((set, mailbox))
    }

    fn authenticate(&mut self) -> R<CommandBody> {
        self.sp()?;
        let mechanism = self.atom()?;
        let mechanism = Atom::new(mechanism.as_str().to_ascii_uppercase()).expect("atom");
        let mut initial_response = None;
        if !self.at_end() {
            self.sp()?;
            let data = self.take_while(|b| b != b' ');
            if data == b"=" {
                initial_response = Some(Vec::new());
            } else {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .map_err(|_| E::from("Invalid base64 in initial response"))?;
                initial_response = Some(decoded);
            }
        }
        Ok(CommandBody::Authenticate {
            mechanism,
            initial_response,
        })
    }

    fn select_params(&mut self) -> R<SelectParams> {
        let mut params = SelectParams::default();
        self.paren_list(false, |p| {
            let k = p.keyword()?;
            match k.as_str() {
                "CONDSTORE" => params.condstore = true,
                "QRESYNC" => {
                    p.sp()?;
                    p.expect(b'(')?;
                    let uid_validity = p.nz_number()?;
                    p.sp()?;
                    let mod_seq = p.mod_seq()?;
                    let mut known_uids = None;
                    let mut seq_match = None;
                    if p.eat(b' ') {
                        if p.peek() != Some(b'(') {
                            known_uids = Some(p.sequence_set()?);
                            if p.eat(b' ') {
                                seq_match = Some(p.seq_match()?);
                            }
                        } else {
                            seq_match = Some(p.seq_match()?);
                        }
                    }
                    p.expect(b')')?;
                    params.qresync = Some(QResyncParams {
                        uid_validity,
                        mod_seq,
                        known_uids,
                        seq_match,
                    });
                }
                _ => return Err(format!("Unknown SELECT parameter {k}").into()),
            }
            Ok(())
        })?;
        Ok(params)
    }

    fn seq_match(&mut self) -> R<(SequenceSet, SequenceSet)> {
        self.expect(b'(')?;
        let a = self.sequence_set()?;
        self.sp()?;
        let b = self.sequence_set()?;
        self.expect(b')')?;
        Ok((a, b))
    }

    fn list_reference(&mut self) -> R<String> {
        let raw = self.astring()?;
        self.decode_name(&raw)
    }

    fn list(&mut self) -> R<ListCommand> {
        let mut cmd = ListCommand::default();
        self.sp()?;
        if self.peek() == Some(b'(') {
            let sel = &mut cmd.selection;
            self.paren_list(true, |p| {
                let k = p.keyword()?;
                match k.as_str() {
                    "SUBSCRIBED" => sel.subscribed = true,
                    "REMOTE" => sel.remote = true,
                    "RECURSIVEMATCH" => sel.recursive_match = true,
                    "SPECIAL-USE" => sel.special_use = true,
                    _ => return Err(format!("Unknown LIST selection option {k}").into()),
                }
                Ok(())
            })?;
            if cmd.selection.recursive_match
                && !(cmd.selection.subscribed || cmd.selection.special_use)
            {
                return Err("RECURSIVEMATCH needs another selection option".into());
            }
            self.sp()?;
        }
        cmd.reference = self.list_reference()?;
        self.sp()?;
        if self.peek() == Some(b'(') {
            cmd.patterns = self.paren_list(false, |p| p.list_mailbox())?;
        } else {
            cmd.patterns = vec![self.list_mailbox()?];
        }
        if !self.at_end() {
            self.sp()?;
            let k = self.keyword()?;
            if k != "RETURN" {
                return Err(format!("Expected RETURN, got {k}").into());
            }
            self.sp()?;
            let ret = &mut cmd.returns;
            self.paren_list(true, |p| {
                let k = p.keyword()?;
                match k.as_str() {
                    "CHILDREN" => ret.children = true,
                    "SUBSCRIBED" => ret.subscribed = true,
                    "SPECIAL-USE" => ret.special_use = true,
                    "STATUS" => {
                        p.sp()?;
                        ret.status = Some(p.paren_list(false, |p| p.status_item())?);
                    }
                    _ => return Err(format!("Unknown LIST return option {k}").into()),
                }
                Ok(())
            })?;
        }
        Ok(cmd)
    }

    fn status_item(&mut self) -> R<StatusItem> {
        let k = self.keyword()?;
        StatusItem::from_name(&k).ok_or_else(|| format!("Unknown STATUS item {k}").into())
    }

    fn append(&mut self) -> R<CommandBody> {
        let mailbox = self.sp_mailbox()?;
        let mut messages = Vec::new();
        loop {
            self.sp()?;
            let mut flags = Vec::new();
            let mut date = None;
            if self.peek() == Some(b'(') {
                flags = self.flag_list()?;
                self.sp()?;
            }
            if self.peek() == Some(b'"') {
                date = Some(self.date_time()?);
                self.sp()?;
            }
            let content = match self.peek() {
                _ if self.at_literal() => {
                    let (data, binary) = self.literal()?;
                    AppendContent::Literal {
                        data: data.to_vec(),
                        binary,
                        utf8: false,
                    }
                }
                _ => {
                    let k = self.keyword()?;
                    match k.as_str() {
                        "CATENATE" => {
                            self.sp()?;
                            AppendContent::Catenate(self.paren_list(false, |p| {
                                let k = p.keyword()?;
                                p.sp()?;
                                match k.as_str() {
                                    "URL" => {
                                        let url = p.astring()?;
                                        Ok(CatenatePart::Url(p.utf8_string("URL", url)?))
                                    }
                                    "TEXT" => {
                                        let (data, binary) = p.literal()?;
                                        Ok(CatenatePart::Text {
                                            data: data.to_vec(),
                                            binary,
                                        })
                                    }
                                    _ => Err(format!("Unknown CATENATE part {k}").into()),
                                }
                            })?)
                        }
                        "UTF8" => {
                            self.sp()?;
                            self.expect(b'(')?;
                            let (data, binary) = self.literal()?;
                            if !binary {
                                return Err("UTF8 needs a literal8 (~{N})".into());
                            }
                            self.expect(b')')?;
                            AppendContent::Literal {
                                data: data.to_vec(),
                                binary: true,
                                utf8: true,
                            }
                        }
                        _ => return Err(format!("Expected a message literal, got {k}").into()),
                    }
                }
            };
            messages.push(AppendMessage {
                flags,
                date,
                content,
            });
            if self.at_end() {
                break;
            }
        }
        Ok(CommandBody::Append { mailbox, messages })
    }

    fn search_returns(&mut self) -> R<Option<Vec<SearchReturn>>> {
        // Called after "SEARCH"/"SORT": look for SP RETURN.
        let save = self.i;
        if self.eat(b' ') {
            let k = self.take_while(is_atom_char);
            if k.eq_ignore_ascii_case(b"RETURN") {
                self.sp()?;
                let opts = self.paren_list(true, |p| {
                    let k = p.keyword()?;
                    Ok(match k.as_str() {
                        "MIN" => SearchReturn::Min,
                        "MAX" => SearchReturn::Max,
                        "ALL" => SearchReturn::All,
                        "COUNT" => SearchReturn::Count,
                        "SAVE" => SearchReturn::Save,
                        "UPDATE" => SearchReturn::Update,
                        "CONTEXT" => SearchReturn::Context,
                        "PARTIAL" => {
                            p.sp()?;
                            let a = p.signed()?;
                            p.expect(b':')?;
                            let b = p.signed()?;
                            if a == 0 || b == 0 || (a < 0) != (b < 0) {
                                return Err("Invalid PARTIAL range".into());
                            }
                            SearchReturn::Partial(a, b)
                        }
                        _ => return Err(format!("Unknown RETURN option {k}").into()),
                    })
                })?;
                return Ok(Some(opts));
            }
        }
        self.i = save;
        Ok(None)
    }

    fn signed(&mut self) -> R<i32> {
        let neg = self.eat(b'-');
        let n = self.number()?;
        let n = i32::try_from(n).map_err(|_| E::from("Number too large"))?;
        Ok(if neg { -n } else { n })
    }

    fn search(&mut self, uid: bool) -> R<SearchCommand> {
        let returns = self.search_returns()?;
        self.sp()?;
        let mut charset = None;
        let save = self.i;
        if self.keyword().ok().as_deref() == Some("CHARSET") {
            self.sp()?;
            let cs = self.astring()?;
            charset = Some(String::from_utf8_lossy(&cs).to_ascii_uppercase());
            self.sp()?;
        } else {
            self.i = save;
        }
        let cs = Charset::from_name(charset.as_deref())?;
        let criteria = self.search_program(cs)?;
        Ok(SearchCommand {
            uid,
            returns,
            charset,
            criteria,
        })
    }

    fn search_program(&mut self, cs: Charset) -> R<SearchKey> {
        let mut keys = vec![self.search_key(cs, 0)?];
        while !self.at_end() {
            self.sp()?;
            keys.push(self.search_key(cs, 0)?);
        }
        Ok(SearchKey::And(keys))
    }

    fn search_string(&mut self, cs: Charset) -> R<String> {
        let s = self.astring()?;
        cs.decode(&s)
    }

    fn sp_search_string(&mut self, cs: Charset) -> R<String> {
        self.sp()?;
        self.search_string(cs)
    }

    fn sp_date(&mut self) -> R<Date> {
        self.sp()?;
        self.date()
    }

    fn search_key(&mut self, cs: Charset, depth: usize) -> R<SearchKey> {
        if depth > MAX_DEPTH {
            return Err("Search keys nested too deeply".into());
        }
        match self.peek() {
            Some(b'(') => {
                self.i += 1;
                let mut keys = vec![self.search_key(cs, depth + 1)?];
                while !self.eat(b')') {
                    self.sp()?;
                    keys.push(self.search_key(cs, depth + 1)?);
                }
                return Ok(SearchKey::And(keys));
            }
            Some(c) if c.is_ascii_digit() || c == b'*' || c == b'$' => {
                return Ok(SearchKey::SequenceSet(self.sequence_set()?));
            }
            _ => {}
        }
        let k = self.keyword()?;
        use SearchKey as K;
        Ok(match k.as_str() {
            "ALL" => K::All,
            "ANSWERED" => K::Answered,
            "BCC" => K::Bcc(self.sp_search_string(cs)?),
            "BEFORE" => K::Before(self.sp_date()?),
            "BODY" => K::Body(self.sp_search_string(cs)?),
            "CC" => K::Cc(self.sp_search_string(cs)?),
            "DELETED" => K::Deleted,
            "DRAFT" => K::Draft,
            "FLAGGED" => K::Flagged,
            "FROM" => K::From(self.sp_search_string(cs)?),
            "HEADER" => {
                let name = self.sp_search_string(cs)?;
                let value = self.sp_search_string(cs)?;
                K::Header(name, value)
            }
            "KEYWORD" => {
                self.sp()?;
                K::Keyword(self.atom()?)
            }
            "UNKEYWORD" => {
                self.sp()?;
                K::Unkeyword(self.atom()?)
            }
            "LARGER" => {
                self.sp()?;
                K::Larger(self.number64()?)
            }
            "SMALLER" => {
                self.sp()?;
                K::Smaller(self.number64()?)
            }
            "NEW" => K::New,
            "NOT" => {
                self.sp()?;
                K::Not(Box::new(self.search_key(cs, depth + 1)?))
            }
            "OLD" => K::Old,
            "ON" => K::On(self.sp_date()?),
            "OR" => {
                self.sp()?;
                let a = self.search_key(cs, depth + 1)?;
                self.sp()?;
                let b = self.search_key(cs, depth + 1)?;
                K::Or(Box::new(a), Box::new(b))
            }
            "RECENT" => K::Recent,
            "SEEN" => K::Seen,
            "SENTBEFORE" => K::SentBefore(self.sp_date()?),
            "SENTON" => K::SentOn(self.sp_date()?),
            "SENTSINCE" => K::SentSince(self.sp_date()?),
            "SINCE" => K::Since(self.sp_date()?),
            "SUBJECT" => K::Subject(self.sp_search_string(cs)?),
            "TEXT" => K::Text(self.sp_search_string(cs)?),
            "TO" => K::To(self.sp_search_string(cs)?),
            "UID" => {
                self.sp()?;
                K::Uid(self.sequence_set()?)
            }
            "UNANSWERED" => K::Unanswered,
            "UNDELETED" => K::Undeleted,
            "UNDRAFT" => K::Undraft,
            "UNFLAGGED" => K::Unflagged,
            "UNSEEN" => K::Unseen,
            "MODSEQ" => {
                self.sp()?;
                let entry = if self.peek() == Some(b'"') || self.at_literal() {
                    let name = self.string()?;
                    let name = self.utf8_string("Entry name", name)?;
                    self.sp()?;
                    let t = match self.keyword()?.as_str() {
                        "PRIV" => EntryType::Private,
                        "SHARED" => EntryType::Shared,
                        "ALL" => EntryType::All,
                        other => return Err(format!("Unknown entry type {other}").into()),
                    };
                    self.sp()?;
                    Some((name, t))
                } else {
                    None
                };
                K::ModSeq {
                    entry,
                    mod_seq: self.mod_seq()?,
                }
            }
            "OLDER" => {
                self.sp()?;
                K::Older(self.nz_number()?)
            }
            "YOUNGER" => {
                self.sp()?;
                K::Younger(self.nz_number()?)
            }
            "SAVEDBEFORE" => K::SavedBefore(self.sp_date()?),
            "SAVEDON" => K::SavedOn(self.sp_date()?),
            "SAVEDSINCE" => K::SavedSince(self.sp_date()?),
            "SAVEDATESUPPORTED" => K::SaveDateSupported,
            "EMAILID" => {
                self.sp()?;
                K::EmailId(self.object_id()?)
            }
            "THREADID" => {
                self.sp()?;
                K::ThreadId(self.object_id()?)
            }
            _ => return Err(format!("Unknown search key {k}").into()),
        })
    }

    /// objectid = 1*255(ALPHA / DIGIT / "_" / "-")
    fn object_id(&mut self) -> R<String> {
        let id = self.take_while(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if id.is_empty() || id.len() > 255 {
            return Err("Invalid object id".into());
        }
        Ok(String::from_utf8(id.to_vec()).expect("ascii"))
    }

    fn sort(&mut self, uid: bool) -> R<SortCommand> {
        let returns = self.search_returns()?;
        self.sp()?;
        let criteria = self.paren_list(false, |p| {
            let mut k = p.keyword()?;
            let reverse = k == "REVERSE";
            if reverse {
                p.sp()?;
                k = p.keyword()?;
            }
            let key = match k.as_str() {
                "ARRIVAL" => SortKey::Arrival,
                "CC" => SortKey::Cc,
                "DATE" => SortKey::Date,
                "FROM" => SortKey::From,
                "SIZE" => SortKey::Size,
                "SUBJECT" => SortKey::Subject,
                "TO" => SortKey::To,
                "DISPLAYFROM" => SortKey::DisplayFrom,
                "DISPLAYTO" => SortKey::DisplayTo,
                _ => return Err(format!("Unknown sort criterion {k}").into()),
            };
            Ok(SortCriterion { reverse, key })
        })?;
        self.sp()?;
        let charset = self.charset_name()?;
        let cs = Charset::from_name(Some(&charset))?;
        self.sp()?;
        let search = self.search_program(cs)?;
        Ok(SortCommand {
            uid,
            returns,
            criteria,
            charset,
            search,
        })
    }

    fn charset_name(&mut self) -> R<String> {
        let cs = self.astring()?;
        Ok(String::from_utf8_lossy(&cs).to_ascii_uppercase())
    }

    fn thread(&mut self, uid: bool) -> R<ThreadCommand> {
        self.sp()?;
        let k = self.keyword()?;
        let algorithm = match k.as_str() {
            "ORDEREDSUBJECT" => ThreadAlgorithm::OrderedSubject,
            "REFERENCES" => ThreadAlgorithm::References,
            "REFS" => ThreadAlgorithm::Refs,
            _ => return Err(format!("Unknown threading algorithm {k}").into()),
        };
        self.sp()?;
        let charset = self.charset_name()?;
        let cs = Charset::from_name(Some(&charset))?;
        self.sp()?;
        let search = self.search_program(cs)?;
        Ok(ThreadCommand {
            uid,
            algorithm,
            charset,
            search,
        })
    }

    fn fetch(&mut self, uid: bool) -> R<FetchCommand> {
        self.sp()?;
        let set = self.sequence_set()?;
        self.sp()?;
        let items = if self.peek() == Some(b'(') {
            FetchItems::Attrs(self.paren_list(false, |p| p.fetch_attr())?)
        } else {
            let save = self.i;
            match self.keyword()?.as_str() {
                "ALL" => FetchItems::All,
                "FAST" => FetchItems::Fast,
                "FULL" => FetchItems::Full,
                _ => {
                    self.i = save;
                    FetchItems::Attrs(vec![self.fetch_attr()?])
                }
            }
        };
        let mut cmd = FetchCommand {
            uid,
            set,
            items,
            changed_since: None,
            vanished: false,
        };
        if !self.at_end() {
            self.sp()?;
            self.paren_list(false, |p| {
                let k = p.keyword()?;
                match k.as_str() {
                    "CHANGEDSINCE" => {
                        p.sp()?;
                        cmd.changed_since = Some(p.mod_seq()?);
                    }
                    "VANISHED" => cmd.vanished = true,
                    _ => return Err(format!("Unknown FETCH modifier {k}").into()),
                }
                Ok(())
            })?;
            if cmd.vanished && (!uid || cmd.changed_since.is_none()) {
                return Err("VANISHED needs UID FETCH and CHANGEDSINCE".into());
            }
        }
        Ok(cmd)
    }

    fn fetch_attr(&mut self) -> R<FetchAttr> {
        let name = self.take_while(|b| is_atom_char(b) && b != b'[' && b != b'<');
        if name.is_empty() {
            return Err(format!("Expected a FETCH attribute at: {}", self.excerpt()).into());
        }
        let name = std::str::from_utf8(name)
            .expect("ascii")
            .to_ascii_uppercase();
        use FetchAttr as A;
        Ok(match name.as_str() {
            "ENVELOPE" => A::Envelope,
            "FLAGS" => A::Flags,
            "INTERNALDATE" => A::InternalDate,
            "RFC822" => A::Rfc822,
            "RFC822.HEADER" => A::Rfc822Header,
            "RFC822.SIZE" => A::Rfc822Size,
            "RFC822.TEXT" => A::Rfc822Text,
            "BODYSTRUCTURE" => A::BodyStructure,
            "UID" => A::Uid,
            "MODSEQ" => A::ModSeq,
            "EMAILID" => A::EmailId,
            "THREADID" => A::ThreadId,
            "SAVEDATE" => A::SaveDate,
            "BODY" if self.peek() != Some(b'[') => A::Body,
            "BODY" | "BODY.PEEK" => {
                let section = self.section()?;
                let partial = self.partial()?;
                A::BodySection {
                    peek: name == "BODY.PEEK",
                    section,
                    partial,
                }
            }
            "BINARY" | "BINARY.PEEK" => {
                let part = self.binary_part()?;
                let partial = self.partial()?;
                A::Binary {
                    peek: name == "BINARY.PEEK",
                    part,
                    partial,
                }
            }
            "BINARY.SIZE" => A::BinarySize {
                part: self.binary_part()?,
            },
            _ => return Err(format!("Unknown FETCH attribute {name}").into()),
        })
    }

    fn binary_part(&mut self) -> R<Vec<u32>> {
        self.expect(b'[')?;
        let mut part = Vec::new();
        if !self.eat(b']') {
            loop {
                part.push(self.nz_number()?);
                if self.eat(b']') {
                    break;
                }
                self.expect(b'.')?;
            }
        }
        Ok(part)
    }

    fn section(&mut self) -> R<Section> {
        self.expect(b'[')?;
        let mut section = Section::default();
        if self.eat(b']') {
            return Ok(section);
        }
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            section.part.push(self.nz_number()?);
            if !self.eat(b'.') {
                break;
            }
        }
        if self.peek() != Some(b']') {
            let k = self.take_while(|b| b.is_ascii_alphabetic() || b == b'.');
            let k = std::str::from_utf8(k).expect("ascii").to_ascii_uppercase();
            section.text = Some(match k.as_str() {
                "HEADER" => SectionText::Header,
                "TEXT" => SectionText::Text,
                "MIME" if !section.part.is_empty() => SectionText::Mime,
                "HEADER.FIELDS" | "HEADER.FIELDS.NOT" => {
                    self.sp()?;
                    let fields = self.paren_list(false, |p| {
                        let f = p.astring()?;
                        let f = p.utf8_string("Header field name", f)?;
                        Ok(f)
                    })?;
                    if k == "HEADER.FIELDS" {
                        SectionText::HeaderFields(fields)
                    } else {
                        SectionText::HeaderFieldsNot(fields)
                    }
                }
                _ => return Err(format!("Invalid section {k}").into()),
            });
        }
        self.expect(b']')?;
        Ok(section)
    }

    fn partial(&mut self) -> R<Option<Partial>> {
        if !self.eat(b'<') {
            return Ok(None);
        }
        let offset = self.number()?;
        self.expect(b'.')?;
        let length = self.nz_number()?;
        self.expect(b'>')?;
        Ok(Some(Partial { offset, length }))
    }

    fn store(&mut self, uid: bool) -> R<StoreCommand> {
        self.sp()?;
        let set = self.sequence_set()?;
        self.sp()?;
        let mut unchanged_since = None;
        if self.peek() == Some(b'(') {
            self.paren_list(false, |p| {
                let k = p.keyword()?;
                if k != "UNCHANGEDSINCE" {
                    return Err(format!("Unknown STORE modifier {k}").into());
                }
                p.sp()?;
                // mod-sequence-valzer: zero allowed.
                unchanged_since = Some(p.mod_seq()?);
                Ok(())
            })?;
            self.sp()?;
        }
        let kind = if self.eat(b'+') {
            StoreKind::Add
        } else if self.eat(b'-') {
            StoreKind::Remove
        } else {
            StoreKind::Replace
        };
        let item = self.keyword()?;
        let silent = match item.as_str() {
            "FLAGS" => false,
            "FLAGS.SILENT" => true,
            _ => return Err(format!("Unknown STORE item {item}").into()),
        };
        self.sp()?;
        let flags = if self.peek() == Some(b'(') {
            self.flag_list()?
        } else {
            let mut flags = vec![self.flag()?];
            while !self.at_end() {
                self.sp()?;
                flags.push(self.flag()?);
            }
            flags
        };
        Ok(StoreCommand {
            uid,
            set,
            kind,
            silent,
            flags,
            unchanged_since,
        })
    }
}

/// The charsets SEARCH understands: UTF-8 (and its subset US-ASCII) and
/// ISO-8859-1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Charset {
    Utf8,
    Latin1,
}

impl Charset {
    fn from_name(name: Option<&str>) -> R<Charset> {
        match name.map(|n| n.to_ascii_uppercase()).as_deref() {
            None | Some("UTF-8") | Some("UTF8") | Some("US-ASCII") | Some("ASCII") => {
                Ok(Charset::Utf8)
            }
            Some("ISO-8859-1") | Some("LATIN1") | Some("ISO8859-1") => Ok(Charset::Latin1),
            Some(other) => Err(E {
                msg: format!("Unsupported charset {other}").into(),
                code: Some(Code::BadCharset(vec![
                    "UTF-8".into(),
                    "US-ASCII".into(),
                    "ISO-8859-1".into(),
                ])),
            }),
        }
    }

    fn decode(self, bytes: &[u8]) -> R<String> {
        match self {
            Charset::Utf8 => String::from_utf8(bytes.to_vec())
                .map_err(|_| "Search string is not valid UTF-8".into()),
            Charset::Latin1 => Ok(bytes.iter().map(|&b| b as char).collect()),
        }
    }
}
