//! Typed IMAP commands and the values they share with responses.
//!
//! Values that have a grammar (tags, atoms, sequence sets) are checked where
//! they are made, so a value of these types can always be written back to the
//! wire.

use std::fmt;
use std::ops::RangeInclusive;

/// A command tag: one or more ASTRING-CHARs other than `+`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tag(String);

impl Tag {
    /// Checks and wraps a tag.
    pub fn new(s: impl Into<String>) -> Result<Tag, InvalidValue> {
        let s = s.into();
        if !s.is_empty() && s.bytes().all(|b| is_astring_char(b) && b != b'+') {
            Ok(Tag(s))
        } else {
            Err(InvalidValue("tag"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An atom: one or more ATOM-CHARs. Used for capabilities, keywords and
/// mechanism names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Atom(String);

impl Atom {
    pub fn new(s: impl Into<String>) -> Result<Atom, InvalidValue> {
        let s = s.into();
        if !s.is_empty() && s.bytes().all(is_atom_char) {
            Ok(Atom(s))
        } else {
            Err(InvalidValue("atom"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Case-insensitive comparison, the way IMAP compares atoms.
    pub fn eq_ignore_case(&self, other: &str) -> bool {
        self.0.eq_ignore_ascii_case(other)
    }
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A value did not fit its grammar; the field names what was being built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidValue(pub &'static str);

impl fmt::Display for InvalidValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}", self.0)
    }
}

impl std::error::Error for InvalidValue {}

/// ATOM-CHAR: any CHAR except atom-specials.
pub fn is_atom_char(b: u8) -> bool {
    b > 0x20 && b < 0x7f && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
}

/// ASTRING-CHAR: ATOM-CHAR or `]`.
pub fn is_astring_char(b: u8) -> bool {
    is_atom_char(b) || b == b']'
}

/// A mailbox name, decoded to Unicode. `INBOX` in any case is stored as
/// `INBOX`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mailbox(String);

impl Mailbox {
    /// Wraps a decoded name, normalising INBOX.
    pub fn new(name: impl Into<String>) -> Mailbox {
        let name = name.into();
        if name.eq_ignore_ascii_case("INBOX") {
            Mailbox("INBOX".to_string())
        } else {
            Mailbox(name)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_inbox(&self) -> bool {
        self.0 == "INBOX"
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Mailbox {
    fn from(s: &str) -> Mailbox {
        Mailbox::new(s)
    }
}

/// One end of a sequence range: a number or `*` (the largest number in use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeqNum {
    Value(u32),
    Last,
}

impl SeqNum {
    /// The number this stands for when `*` is `last`.
    pub fn resolve(self, last: u32) -> u32 {
        match self {
            SeqNum::Value(n) => n,
            SeqNum::Last => last,
        }
    }
}

/// `a`, `a:b`, `a:*`, `*`. Stored as written; `resolve` orders the ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SeqRange {
    pub start: SeqNum,
    pub end: SeqNum,
}

impl SeqRange {
    pub fn single(n: u32) -> SeqRange {
        SeqRange {
            start: SeqNum::Value(n),
            end: SeqNum::Value(n),
        }
    }

    pub fn new(a: u32, b: u32) -> SeqRange {
        SeqRange {
            start: SeqNum::Value(a),
            end: SeqNum::Value(b),
        }
    }

    /// The inclusive range with `*` = `last`, low end first.
    pub fn resolve(&self, last: u32) -> RangeInclusive<u32> {
        let a = self.start.resolve(last);
        let b = self.end.resolve(last);
        a.min(b)..=a.max(b)
    }
}

/// A sequence set (message numbers or UIDs), or `$`, the result saved by
/// the last `SEARCH RETURN (SAVE)` (RFC 5182).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SequenceSet {
    Ranges(Vec<SeqRange>),
    Saved,
}

impl SequenceSet {
    /// The set of exactly these numbers, compressed into ranges. The input
    /// need not be sorted; duplicates are dropped. Zero is not allowed in a
    /// sequence set and is skipped.
    pub fn from_numbers(numbers: impl IntoIterator<Item = u32>) -> SequenceSet {
        let mut v: Vec<u32> = numbers.into_iter().filter(|&n| n != 0).collect();
        v.sort_unstable();
        v.dedup();
        let mut ranges: Vec<SeqRange> = Vec::new();
        for n in v {
            match ranges.last_mut() {
                Some(SeqRange {
                    end: SeqNum::Value(e),
                    ..
                }) if e.checked_add(1) == Some(n) => *e = n,
                _ => ranges.push(SeqRange::single(n)),
            }
        }
        SequenceSet::Ranges(ranges)
    }

    /// A single range `a:b`.
    pub fn range(a: u32, b: u32) -> SequenceSet {
        SequenceSet::Ranges(vec![SeqRange::new(a, b)])
    }

    /// True for `$`.
    pub fn is_saved(&self) -> bool {
        matches!(self, SequenceSet::Saved)
    }

    /// True when the set holds no range (only possible for a set built by
    /// `from_numbers` from nothing; never parsed).
    pub fn is_empty(&self) -> bool {
        matches!(self, SequenceSet::Ranges(r) if r.is_empty())
    }

    /// Whether `n` is in the set, with `*` = `last`. `$` contains nothing;
    /// the session substitutes the saved set first.
    pub fn contains(&self, n: u32, last: u32) -> bool {
        match self {
            SequenceSet::Ranges(r) => r.iter().any(|r| r.resolve(last).contains(&n)),
            SequenceSet::Saved => false,
        }
    }

    /// The ranges with `*` = `last`, each low end first, in the order given.
    pub fn resolved(&self, last: u32) -> Vec<RangeInclusive<u32>> {
        match self {
            SequenceSet::Ranges(r) => r.iter().map(|r| r.resolve(last)).collect(),
            SequenceSet::Saved => Vec::new(),
        }
    }

    /// Whether `*` appears anywhere in the set.
    pub fn uses_last(&self) -> bool {
        match self {
            SequenceSet::Ranges(r) => r
                .iter()
                .any(|r| r.start == SeqNum::Last || r.end == SeqNum::Last),
            SequenceSet::Saved => false,
        }
    }
}

impl fmt::Display for SequenceSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SequenceSet::Saved => f.write_str("$"),
            SequenceSet::Ranges(ranges) => {
                for (i, r) in ranges.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write_seqnum(f, r.start)?;
                    if r.start != r.end {
                        f.write_str(":")?;
                        write_seqnum(f, r.end)?;
                    }
                }
                Ok(())
            }
        }
    }
}

fn write_seqnum(f: &mut fmt::Formatter<'_>, n: SeqNum) -> fmt::Result {
    match n {
        SeqNum::Value(n) => write!(f, "{n}"),
        SeqNum::Last => f.write_str("*"),
    }
}

/// A message flag. `\Recent` is only ever sent by the server; the parser
/// accepts it so the session can refuse it with a clear message.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Flag {
    Seen,
    Answered,
    Flagged,
    Deleted,
    Draft,
    Recent,
    /// Any other `\Name` flag, without the backslash.
    Extension(Atom),
    /// A keyword such as `$Forwarded` or `NonJunk`.
    Keyword(Atom),
}

impl Flag {
    /// Parses the text of a flag (`\Seen`, `$Junk`), case-insensitive for
    /// system flags.
    pub fn parse(s: &str) -> Result<Flag, InvalidValue> {
        if let Some(name) = s.strip_prefix('\\') {
            Ok(match name.to_ascii_lowercase().as_str() {
                "seen" => Flag::Seen,
                "answered" => Flag::Answered,
                "flagged" => Flag::Flagged,
                "deleted" => Flag::Deleted,
                "draft" => Flag::Draft,
                "recent" => Flag::Recent,
                _ => Flag::Extension(Atom::new(name)?),
            })
        } else {
            Ok(Flag::Keyword(Atom::new(s)?))
        }
    }

    pub fn keyword(s: &str) -> Result<Flag, InvalidValue> {
        Ok(Flag::Keyword(Atom::new(s)?))
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Flag::Seen => f.write_str("\\Seen"),
            Flag::Answered => f.write_str("\\Answered"),
            Flag::Flagged => f.write_str("\\Flagged"),
            Flag::Deleted => f.write_str("\\Deleted"),
            Flag::Draft => f.write_str("\\Draft"),
            Flag::Recent => f.write_str("\\Recent"),
            Flag::Extension(a) => write!(f, "\\{a}"),
            Flag::Keyword(a) => f.write_str(a.as_str()),
        }
    }
}

/// A calendar date as IMAP writes it (`1-Feb-2024`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Date {
    pub year: u16,
    pub month: u8,
    pub day: u8,
}

pub(crate) const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl Date {
    /// Checks the day against the month (leap years included).
    pub fn new(year: u16, month: u8, day: u8) -> Result<Date, InvalidValue> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return Err(InvalidValue("date"));
        }
        Ok(Date { year, month, day })
    }

    /// Days since 1970-01-01 (negative before).
    pub fn days_since_epoch(&self) -> i64 {
        // Howard Hinnant's days_from_civil.
        let y = self.year as i64 - if self.month <= 2 { 1 } else { 0 };
        let era = if y >= 0 { y } else { y - 399 } / 400;
        let yoe = y - era * 400;
        let m = self.month as i64;
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + self.day as i64 - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146097 + doe - 719468
    }

    /// The date of a day count from 1970-01-01.
    pub fn from_days_since_epoch(days: i64) -> Date {
        let z = days + 719468;
        let era = if z >= 0 { z } else { z - 146096 } / 146097;
        let doe = z - era * 146097;
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = (yoe + era * 400 + if month <= 2 { 1 } else { 0 }) as u16;
        Date { year, month, day }
    }
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            let leap =
                (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
            if leap {
                29
            } else {
                28
            }
        }
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}-{:04}",
            self.day,
            MONTHS[(self.month - 1) as usize],
            self.year
        )
    }
}

/// A date and time with its zone, as in APPEND and INTERNALDATE
/// (`17-Jul-1996 02:44:25 -0700`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DateTime {
    pub date: Date,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
    /// Offset from UTC in minutes, east positive.
    pub zone_minutes: i16,
}

impl DateTime {
    pub fn new(
        date: Date,
        hour: u8,
        minute: u8,
        second: u8,
        zone_minutes: i16,
    ) -> Result<DateTime, InvalidValue> {
        if hour > 23 || minute > 59 || second > 60 || zone_minutes.abs() >= 100 * 60 {
            return Err(InvalidValue("date-time"));
        }
        Ok(DateTime {
            date,
            hour,
            minute,
            second,
            zone_minutes,
        })
    }

    /// Seconds since the Unix epoch.
    pub fn unix_timestamp(&self) -> i64 {
        self.date.days_since_epoch() * 86400
            + self.hour as i64 * 3600
            + self.minute as i64 * 60
            + self.second as i64
            - self.zone_minutes as i64 * 60
    }

    /// The time `ts` (seconds since the epoch) shown in zone `zone_minutes`.
    pub fn from_unix_timestamp(ts: i64, zone_minutes: i16) -> DateTime {
        let local = ts + zone_minutes as i64 * 60;
        let days = local.div_euclid(86400);
        let secs = local.rem_euclid(86400);
        DateTime {
            date: Date::from_days_since_epoch(days),
            hour: (secs / 3600) as u8,
            minute: (secs / 60 % 60) as u8,
            second: (secs % 60) as u8,
            zone_minutes,
        }
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let z = self.zone_minutes;
        write!(
            f,
            "{:>2}-{}-{:04} {:02}:{:02}:{:02} {}{:02}{:02}",
            self.date.day,
            MONTHS[(self.date.month - 1) as usize],
            self.date.year,
            self.hour,
            self.minute,
            self.second,
            if z < 0 { '-' } else { '+' },
            z.unsigned_abs() / 60,
            z.unsigned_abs() % 60
        )
    }
}

/// A command with its tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub tag: Tag,
    pub body: CommandBody,
}

/// Every command the server understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandBody {
    Capability,
    Noop,
    Logout,
    StartTls,
    /// `AUTHENTICATE mech [initial-response]` (SASL-IR, RFC 4959). The
    /// response is base64-decoded; `=` gives an empty vector.
    Authenticate {
        mechanism: Atom,
        initial_response: Option<Vec<u8>>,
    },
    Login {
        username: String,
        password: String,
    },
    Enable(Vec<Atom>),
    /// SELECT (`read_only` false) or EXAMINE (`read_only` true).
    Select {
        mailbox: Mailbox,
        read_only: bool,
        params: SelectParams,
    },
    Create {
        mailbox: Mailbox,
        /// `(USE (\Sent ...))` from RFC 6154.
        special_use: Vec<MailboxAttr>,
    },
    Delete(Mailbox),
    Rename {
        from: Mailbox,
        to: Mailbox,
    },
    Subscribe(Mailbox),
    Unsubscribe(Mailbox),
    List(ListCommand),
    Lsub {
        reference: String,
        pattern: String,
    },
    Namespace,
    Status {
        mailbox: Mailbox,
        items: Vec<StatusItem>,
    },
    /// APPEND, with several messages under MULTIAPPEND (RFC 3502).
    Append {
        mailbox: Mailbox,
        messages: Vec<AppendMessage>,
    },
    Idle,
    Check,
    Close,
    Unselect,
    Expunge,
    /// `UID EXPUNGE set` (UIDPLUS).
    UidExpunge(SequenceSet),
    Search(SearchCommand),
    Sort(SortCommand),
    Thread(ThreadCommand),
    Fetch(FetchCommand),
    Store(StoreCommand),
    Copy {
        uid: bool,
        set: SequenceSet,
        mailbox: Mailbox,
    },
    Move {
        uid: bool,
        set: SequenceSet,
        mailbox: Mailbox,
    },
    GetQuota(String),
    GetQuotaRoot(Mailbox),
    SetQuota {
        root: String,
        limits: Vec<QuotaLimit>,
    },
    /// `ID NIL` is `None`.
    Id(Option<Vec<(String, Option<String>)>>),
}

impl CommandBody {
    /// The command's name as it is usually written, for logs and replies
    /// such as "FETCH completed".
    pub fn name(&self) -> &'static str {
        match self {
            CommandBody::Capability => "CAPABILITY",
            CommandBody::Noop => "NOOP",
            CommandBody::Logout => "LOGOUT",
            CommandBody::StartTls => "STARTTLS",
            CommandBody::Authenticate { .. } => "AUTHENTICATE",
            CommandBody::Login { .. } => "LOGIN",
            CommandBody::Enable(_) => "ENABLE",
            CommandBody::Select {
                read_only: false, ..
            } => "SELECT",
            CommandBody::Select {
                read_only: true, ..
            } => "EXAMINE",
            CommandBody::Create { .. } => "CREATE",
            CommandBody::Delete(_) => "DELETE",
            CommandBody::Rename { .. } => "RENAME",
            CommandBody::Subscribe(_) => "SUBSCRIBE",
            CommandBody::Unsubscribe(_) => "UNSUBSCRIBE",
            CommandBody::List(_) => "LIST",
            CommandBody::Lsub { .. } => "LSUB",
            CommandBody::Namespace => "NAMESPACE",
            CommandBody::Status { .. } => "STATUS",
            CommandBody::Append { .. } => "APPEND",
            CommandBody::Idle => "IDLE",
            CommandBody::Check => "CHECK",
            CommandBody::Close => "CLOSE",
            CommandBody::Unselect => "UNSELECT",
            CommandBody::Expunge => "EXPUNGE",
            CommandBody::UidExpunge(_) => "UID EXPUNGE",
            CommandBody::Search(c) if c.uid => "UID SEARCH",
            CommandBody::Search(_) => "SEARCH",
            CommandBody::Sort(c) if c.uid => "UID SORT",
            CommandBody::Sort(_) => "SORT",
            CommandBody::Thread(c) if c.uid => "UID THREAD",
            CommandBody::Thread(_) => "THREAD",
            CommandBody::Fetch(c) if c.uid => "UID FETCH",
            CommandBody::Fetch(_) => "FETCH",
            CommandBody::Store(c) if c.uid => "UID STORE",
            CommandBody::Store(_) => "STORE",
            CommandBody::Copy { uid: true, .. } => "UID COPY",
            CommandBody::Copy { .. } => "COPY",
            CommandBody::Move { uid: true, .. } => "UID MOVE",
            CommandBody::Move { .. } => "MOVE",
            CommandBody::GetQuota(_) => "GETQUOTA",
            CommandBody::GetQuotaRoot(_) => "GETQUOTAROOT",
            CommandBody::SetQuota { .. } => "SETQUOTA",
            CommandBody::Id(_) => "ID",
        }
    }
}

/// SELECT/EXAMINE parameters (RFC 7162).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SelectParams {
    pub condstore: bool,
    pub qresync: Option<QResyncParams>,
}

/// `QRESYNC (uidvalidity modseq [known-uids] [(seq-set uid-set)])`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QResyncParams {
    pub uid_validity: u32,
    pub mod_seq: u64,
    pub known_uids: Option<SequenceSet>,
    /// Known message numbers and the UIDs they had, same length.
    pub seq_match: Option<(SequenceSet, SequenceSet)>,
}

/// Mailbox attributes in LIST responses and CREATE's USE (RFC 3501, 3348,
/// 5258, 6154).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MailboxAttr {
    NoInferiors,
    NoSelect,
    Marked,
    Unmarked,
    NonExistent,
    Subscribed,
    Remote,
    HasChildren,
    HasNoChildren,
    All,
    Archive,
    Drafts,
    Flagged,
    Junk,
    Sent,
    Trash,
    Important,
    /// Another `\Name`, without the backslash.
    Other(Atom),
}

impl MailboxAttr {
    /// Parses `\Name` (the backslash is required), case-insensitive.
    pub fn parse(s: &str) -> Result<MailboxAttr, InvalidValue> {
        let name = s
            .strip_prefix('\\')
            .ok_or(InvalidValue("mailbox attribute"))?;
        Ok(match name.to_ascii_lowercase().as_str() {
            "noinferiors" => MailboxAttr::NoInferiors,
            "noselect" => MailboxAttr::NoSelect,
            "marked" => MailboxAttr::Marked,
            "unmarked" => MailboxAttr::Unmarked,
            "nonexistent" => MailboxAttr::NonExistent,
            "subscribed" => MailboxAttr::Subscribed,
            "remote" => MailboxAttr::Remote,
            "haschildren" => MailboxAttr::HasChildren,
            "hasnochildren" => MailboxAttr::HasNoChildren,
            "all" => MailboxAttr::All,
            "archive" => MailboxAttr::Archive,
            "drafts" => MailboxAttr::Drafts,
            "flagged" => MailboxAttr::Flagged,
            "junk" => MailboxAttr::Junk,
            "sent" => MailboxAttr::Sent,
            "trash" => MailboxAttr::Trash,
            "important" => MailboxAttr::Important,
            _ => MailboxAttr::Other(Atom::new(name)?),
        })
    }

    /// Whether this is one of the RFC 6154 / 8457 special-use attributes.
    pub fn is_special_use(&self) -> bool {
        matches!(
            self,
            MailboxAttr::All
                | MailboxAttr::Archive
                | MailboxAttr::Drafts
                | MailboxAttr::Flagged
                | MailboxAttr::Junk
                | MailboxAttr::Sent
                | MailboxAttr::Trash
                | MailboxAttr::Important
        )
    }
}

impl fmt::Display for MailboxAttr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            MailboxAttr::NoInferiors => "\\Noinferiors",
            MailboxAttr::NoSelect => "\\Noselect",
            MailboxAttr::Marked => "\\Marked",
            MailboxAttr::Unmarked => "\\Unmarked",
            MailboxAttr::NonExistent => "\\NonExistent",
            MailboxAttr::Subscribed => "\\Subscribed",
            MailboxAttr::Remote => "\\Remote",
            MailboxAttr::HasChildren => "\\HasChildren",
            MailboxAttr::HasNoChildren => "\\HasNoChildren",
            MailboxAttr::All => "\\All",
            MailboxAttr::Archive => "\\Archive",
            MailboxAttr::Drafts => "\\Drafts",
            MailboxAttr::Flagged => "\\Flagged",
            MailboxAttr::Junk => "\\Junk",
            MailboxAttr::Sent => "\\Sent",
            MailboxAttr::Trash => "\\Trash",
            MailboxAttr::Important => "\\Important",
            MailboxAttr::Other(a) => return write!(f, "\\{a}"),
        };
        f.write_str(s)
    }
}

/// LIST, basic (RFC 3501) or extended (RFC 5258).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListCommand {
    /// The reference name, decoded; not INBOX-normalised.
    pub reference: String,
    /// One pattern for basic LIST; one or more with LIST-EXTENDED. An empty
    /// pattern asks for the hierarchy delimiter.
    pub patterns: Vec<String>,
    pub selection: ListSelection,
    pub returns: ListReturn,
}

impl ListCommand {
    /// Whether the client used any LIST-EXTENDED syntax, so the answer may
    /// carry extended data.
    pub fn is_extended(&self) -> bool {
        self.selection != ListSelection::default()
            || self.returns != ListReturn::default()
            || self.patterns.len() != 1
    }
}

/// LIST selection options.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListSelection {
    pub subscribed: bool,
    pub remote: bool,
    pub recursive_match: bool,
    pub special_use: bool,
}

/// LIST return options (RFC 5258, 6154, 5819).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListReturn {
    pub children: bool,
    pub subscribed: bool,
    pub special_use: bool,
    /// `STATUS (items)` from LIST-STATUS.
    pub status: Option<Vec<StatusItem>>,
}

/// A STATUS data item name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusItem {
    Messages,
    Recent,
    UidNext,
    UidValidity,
    Unseen,
    HighestModSeq,
    Size,
    AppendLimit,
    Deleted,
    MailboxId,
}

impl StatusItem {
    pub fn name(self) -> &'static str {
        match self {
            StatusItem::Messages => "MESSAGES",
            StatusItem::Recent => "RECENT",
            StatusItem::UidNext => "UIDNEXT",
            StatusItem::UidValidity => "UIDVALIDITY",
            StatusItem::Unseen => "UNSEEN",
            StatusItem::HighestModSeq => "HIGHESTMODSEQ",
            StatusItem::Size => "SIZE",
            StatusItem::AppendLimit => "APPENDLIMIT",
            StatusItem::Deleted => "DELETED",
            StatusItem::MailboxId => "MAILBOXID",
        }
    }

    pub fn from_name(s: &str) -> Option<StatusItem> {
        Some(match s.to_ascii_uppercase().as_str() {
            "MESSAGES" => StatusItem::Messages,
            "RECENT" => StatusItem::Recent,
            "UIDNEXT" => StatusItem::UidNext,
            "UIDVALIDITY" => StatusItem::UidValidity,
            "UNSEEN" => StatusItem::Unseen,
            "HIGHESTMODSEQ" => StatusItem::HighestModSeq,
            "SIZE" => StatusItem::Size,
            "APPENDLIMIT" => StatusItem::AppendLimit,
            "DELETED" => StatusItem::Deleted,
            "MAILBOXID" => StatusItem::MailboxId,
            _ => return None,
        })
    }
}

/// One message of an APPEND.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendMessage {
    pub flags: Vec<Flag>,
    pub date: Option<DateTime>,
    pub content: AppendContent,
}

/// The message itself, or the parts to CATENATE (RFC 4469).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendContent {
    /// `binary` is true for a literal8 (`~{N}`, RFC 3516) or the `UTF8 (...)`
    /// form of RFC 6855; `utf8` marks the latter.
    Literal {
        data: Vec<u8>,
        binary: bool,
        utf8: bool,
    },
    Catenate(Vec<CatenatePart>),
}

/// A CATENATE part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatenatePart {
    /// An IMAP URL (RFC 5092), possibly with `;PARTIAL=` (URL-PARTIAL).
    Url(String),
    Text {
        data: Vec<u8>,
        binary: bool,
    },
}

/// SEARCH / UID SEARCH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchCommand {
    pub uid: bool,
    /// `None` for a plain SEARCH (answered with `* SEARCH`); `Some` when the
    /// client wrote RETURN (answered with `* ESEARCH`). An empty list means
    /// `RETURN ()`, which RFC 4731 treats as ALL.
    pub returns: Option<Vec<SearchReturn>>,
    /// As written, upper-cased; the strings in `criteria` are already
    /// decoded to Unicode.
    pub charset: Option<String>,
    /// The criteria, ANDed. Always `SearchKey::And` of one or more keys.
    pub criteria: SearchKey,
}

/// ESEARCH return options (RFC 4731, 5182, 5267, 9394).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SearchReturn {
    Min,
    Max,
    All,
    Count,
    Save,
    /// CONTEXT=SEARCH.
    Update,
    Context,
    /// `PARTIAL 1:100` or `PARTIAL -1:-100` (RFC 9394); positions are
    /// 1-based, negative counts from the end.
    Partial(i32, i32),
}

/// A search key (RFC 3501 6.4.4 and extensions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    All,
    Answered,
    Bcc(String),
    Before(Date),
    Body(String),
    Cc(String),
    Deleted,
    Draft,
    Flagged,
    From(String),
    Header(String, String),
    Keyword(Atom),
    Larger(u64),
    New,
    Not(Box<SearchKey>),
    Old,
    On(Date),
    Or(Box<SearchKey>, Box<SearchKey>),
    Recent,
    Seen,
    SentBefore(Date),
    SentOn(Date),
    SentSince(Date),
    Since(Date),
    Smaller(u64),
    Subject(String),
    Text(String),
    To(String),
    Uid(SequenceSet),
    Unanswered,
    Undeleted,
    Undraft,
    Unflagged,
    Unkeyword(Atom),
    Unseen,
    /// Message numbers (or `$`).
    SequenceSet(SequenceSet),
    /// A parenthesised list, or the top level: all must match.
    And(Vec<SearchKey>),
    /// CONDSTORE: `MODSEQ ["/flags/\\seen" all] 123`.
    ModSeq {
        entry: Option<(String, EntryType)>,
        mod_seq: u64,
    },
    /// WITHIN (RFC 5032), seconds.
    Older(u32),
    Younger(u32),
    /// SAVEDATE (RFC 8514).
    SavedBefore(Date),
    SavedOn(Date),
    SavedSince(Date),
    SaveDateSupported,
    /// OBJECTID (RFC 8474).
    EmailId(String),
    ThreadId(String),
}

/// The entry type in a MODSEQ search key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryType {
    Private,
    Shared,
    All,
}

/// SORT / UID SORT (RFC 5256, 5957; ESORT from RFC 5267).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortCommand {
    pub uid: bool,
    pub returns: Option<Vec<SearchReturn>>,
    pub criteria: Vec<SortCriterion>,
    pub charset: String,
    /// Always `SearchKey::And`.
    pub search: SearchKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SortCriterion {
    pub reverse: bool,
    pub key: SortKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortKey {
    Arrival,
    Cc,
    Date,
    From,
    Size,
    Subject,
    To,
    DisplayFrom,
    DisplayTo,
}

impl SortKey {
    pub fn name(self) -> &'static str {
        match self {
            SortKey::Arrival => "ARRIVAL",
            SortKey::Cc => "CC",
            SortKey::Date => "DATE",
            SortKey::From => "FROM",
            SortKey::Size => "SIZE",
            SortKey::Subject => "SUBJECT",
            SortKey::To => "TO",
            SortKey::DisplayFrom => "DISPLAYFROM",
            SortKey::DisplayTo => "DISPLAYTO",
        }
    }
}

/// THREAD / UID THREAD (RFC 5256, REFS from RFC 9051's companion draft).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadCommand {
    pub uid: bool,
    pub algorithm: ThreadAlgorithm,
    pub charset: String,
    pub search: SearchKey,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThreadAlgorithm {
    OrderedSubject,
    References,
    Refs,
}

impl ThreadAlgorithm {
    pub fn name(self) -> &'static str {
        match self {
            ThreadAlgorithm::OrderedSubject => "ORDEREDSUBJECT",
            ThreadAlgorithm::References => "REFERENCES",
            ThreadAlgorithm::Refs => "REFS",
        }
    }
}

/// FETCH / UID FETCH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchCommand {
    pub uid: bool,
    pub set: SequenceSet,
    pub items: FetchItems,
    /// CHANGEDSINCE (RFC 7162).
    pub changed_since: Option<u64>,
    /// VANISHED (QRESYNC; only valid with UID FETCH and CHANGEDSINCE).
    pub vanished: bool,
}

/// What FETCH asks for: a macro or a list of attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchItems {
    All,
    Fast,
    Full,
    Attrs(Vec<FetchAttr>),
}

impl FetchItems {
    /// The attributes with macros expanded (RFC 3501 6.4.5).
    pub fn attrs(&self) -> Vec<FetchAttr> {
        use FetchAttr::*;
        match self {
            FetchItems::All => vec![Flags, InternalDate, Rfc822Size, Envelope],
            FetchItems::Fast => vec![Flags, InternalDate, Rfc822Size],
            FetchItems::Full => vec![Flags, InternalDate, Rfc822Size, Envelope, Body],
            FetchItems::Attrs(a) => a.clone(),
        }
    }
}

/// A FETCH attribute.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FetchAttr {
    Envelope,
    Flags,
    InternalDate,
    /// RFC822, same as BODY[].
    Rfc822,
    /// RFC822.HEADER, same as BODY.PEEK[HEADER].
    Rfc822Header,
    Rfc822Size,
    /// RFC822.TEXT, same as BODY[TEXT].
    Rfc822Text,
    /// BODY without section: the non-extensible body structure.
    Body,
    BodyStructure,
    Uid,
    /// BODY[section]<partial> or BODY.PEEK[...].
    BodySection {
        peek: bool,
        section: Section,
        partial: Option<Partial>,
    },
    /// BINARY[part]<partial> or BINARY.PEEK (RFC 3516).
    Binary {
        peek: bool,
        part: Vec<u32>,
        partial: Option<Partial>,
    },
    BinarySize {
        part: Vec<u32>,
    },
    ModSeq,
    EmailId,
    ThreadId,
    SaveDate,
}

/// `<offset.length>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Partial {
    pub offset: u32,
    pub length: u32,
}

/// A body section: a part path (empty for the whole message) and what of
/// it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Section {
    pub part: Vec<u32>,
    pub text: Option<SectionText>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SectionText {
    Header,
    /// Field names as sent; compare case-insensitively.
    HeaderFields(Vec<String>),
    HeaderFieldsNot(Vec<String>),
    Text,
    /// Only after a part number.
    Mime,
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.part.iter().enumerate() {
            if i > 0 {
                f.write_str(".")?;
            }
            write!(f, "{p}")?;
        }
        if let Some(text) = &self.text {
            if !self.part.is_empty() {
                f.write_str(".")?;
            }
            match text {
                SectionText::Header => f.write_str("HEADER")?,
                SectionText::Text => f.write_str("TEXT")?,
                SectionText::Mime => f.write_str("MIME")?,
                SectionText::HeaderFields(v) | SectionText::HeaderFieldsNot(v) => {
                    f.write_str(if matches!(text, SectionText::HeaderFields(_)) {
                        "HEADER.FIELDS ("
                    } else {
                        "HEADER.FIELDS.NOT ("
                    })?;
                    for (i, h) in v.iter().enumerate() {
                        if i > 0 {
                            f.write_str(" ")?;
                        }
                        f.write_str(h)?;
                    }
                    f.write_str(")")?;
                }
            }
        }
        Ok(())
    }
}

/// STORE / UID STORE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreCommand {
    pub uid: bool,
    pub set: SequenceSet,
    pub kind: StoreKind,
    /// `.SILENT`: no untagged FETCH for the changed flags (except under
    /// CONDSTORE rules).
    pub silent: bool,
    pub flags: Vec<Flag>,
    /// UNCHANGEDSINCE (RFC 7162).
    pub unchanged_since: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreKind {
    Replace,
    Add,
    Remove,
}

/// A resource limit in SETQUOTA (RFC 9208), e.g. `STORAGE 512`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaLimit {
    /// Upper-cased resource name (`STORAGE`, `MESSAGE`, ...).
    pub resource: Atom,
    pub limit: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_atoms() {
        assert!(Tag::new("a001").is_ok());
        assert!(Tag::new("A.1]").is_ok());
        assert!(Tag::new("").is_err());
        assert!(Tag::new("a+b").is_err());
        assert!(Tag::new("a b").is_err());
        assert!(Atom::new("x]").is_err());
        assert!(Atom::new("$Forwarded").is_ok());
    }

    #[test]
    fn sequence_sets() {
        let s = SequenceSet::from_numbers([5, 1, 2, 3, 9, 10, 3]);
        assert_eq!(s.to_string(), "1:3,5,9:10");
        assert!(s.contains(10, 100));
        assert!(!s.contains(4, 100));
        let s = SequenceSet::Ranges(vec![SeqRange {
            start: SeqNum::Last,
            end: SeqNum::Value(3),
        }]);
        assert_eq!(s.resolved(7), vec![3..=7]);
        assert!(s.uses_last());
        assert_eq!(SequenceSet::Saved.to_string(), "$");
    }

    #[test]
    fn dates() {
        let d = Date::new(2024, 2, 29).unwrap();
        assert!(Date::new(2023, 2, 29).is_err());
        assert_eq!(Date::from_days_since_epoch(d.days_since_epoch()), d);
        assert_eq!(Date::new(1970, 1, 1).unwrap().days_since_epoch(), 0);
        let dt = DateTime::new(Date::new(1996, 7, 17).unwrap(), 2, 44, 25, -420).unwrap();
        assert_eq!(dt.to_string(), "17-Jul-1996 02:44:25 -0700");
        assert_eq!(dt.unix_timestamp(), 837596665);
        let back = DateTime::from_unix_timestamp(837596665, -420);
        assert_eq!(back, dt);
        let dt = DateTime::from_unix_timestamp(0, 60);
        assert_eq!(dt.to_string(), " 1-Jan-1970 01:00:00 +0100");
    }

    #[test]
    fn flags() {
        assert_eq!(Flag::parse("\\SEEN").unwrap(), Flag::Seen);
        assert_eq!(Flag::parse("$Forwarded").unwrap().to_string(), "$Forwarded");
        assert_eq!(Flag::parse("\\Foo").unwrap().to_string(), "\\Foo");
        assert!(Flag::parse("a b").is_err());
    }

    #[test]
    fn inbox_normalised() {
        assert_eq!(Mailbox::new("inBox").as_str(), "INBOX");
        assert_eq!(Mailbox::new("inbox/x").as_str(), "inbox/x");
    }
}
