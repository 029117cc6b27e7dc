//! ActiveSync Calendar (MS-ASCAL), Tasks (MS-ASTASK) and Contacts
//! (MS-ASCNTC) items to and from iCalendar and vCard. Pure conversion: the
//! Sync command calls it, answering any [`Error`] with status 6 (error in
//! client/server conversion).
//!
//! iCalendar and vCard are read and written by calcard: [`model`] parses
//! one whole object with calcard (after the limits below, and with checks
//! of its structure), hands the conversions a component tree of calcard's
//! entries, and writes the result back through calcard's writer. What an
//! item does not represent stays calcard's parsed value and is written back
//! as such.

pub mod calendar;
pub mod contacts;
pub mod model;
pub mod tasks;
pub mod tz;

pub use calendar::{eas_to_event, event_to_eas, EventOptions, IncomingOptions};
pub use contacts::{eas_to_vcard, vcard_to_eas};
pub use tasks::{eas_to_todo, todo_to_eas};

/// Largest iCalendar object or text accepted.
pub const MAX_INPUT: usize = 1 << 20;
/// Most content lines in one object.
pub const MAX_LINES: usize = 20_000;
/// Most attendees in one item.
pub const MAX_ATTENDEES: usize = 500;
/// Most exceptions (deleted or modified instances) in one item.
pub const MAX_EXCEPTIONS: usize = 1_000;
/// Most categories in one item.
pub const MAX_CATEGORIES: usize = 100;
/// Longest single text field (Subject, Location, Name...), in bytes.
pub const MAX_FIELD: usize = 32 * 1024;
/// Longest body, in bytes.
pub const MAX_BODY: usize = 512 * 1024;
/// Years outside this range are refused.
pub const YEARS: std::ops::RangeInclusive<i32> = 1900..=2200;

/// The protocol version of the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum EasVersion {
    V12_1,
    V14_0,
    V14_1,
    V16_0,
    V16_1,
}

impl EasVersion {
    pub fn is_16(self) -> bool {
        self >= EasVersion::V16_0
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("invalid item: {0}")]
    Invalid(String),
    #[error("too large: {0}")]
    TooLarge(&'static str),
}

pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests;
