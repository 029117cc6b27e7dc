//! Calendars, task lists and address books: to come with CalDAV, CardDAV,
//! ActiveSync, EWS and JMAP.
//!
//! They will live here, beside [`crate::mail`]: collections of kind
//! `calendar` and `addressbook` in the one `collections` table, so they
//! share ids, ACLs and the change journals ([`crate::sync`]); items whose
//! iCalendar or vCard source is an immutable blob, stored once, with what
//! queries need in indexed columns (the resource name and UID, times in
//! UTC, recurrence instances over a window, attendees, e-mail addresses).
//! Each item takes its collection's next item number (from `uidnext`, as a
//! message takes a UID) and modseq, and its removal leaves a tombstone with
//! its resource name and UID, so DAV, ActiveSync, EWS and JMAP can all name
//! what went away.
