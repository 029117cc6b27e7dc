//! WebDAV (RFC 4918), CalDAV (RFC 4791) and CardDAV (RFC 6352) as an
//! `axum::Router` over a [`DavStore`].
//!
//! - [`proto`]: request bodies to typed requests (no I/O).
//! - [`response`]: multistatus and error bodies (no I/O).
//! - [`filter`]: calendar-query / addressbook-query filters (no I/O).
//! - [`content`]: the one module on calcard (iCalendar/vCard parsing).
//! - [`path`]: request paths, decoded once.
//! - [`handler`]: methods to store calls; [`router`] builds the router.
//! - [`lock`], [`ifheader`]: WebDAV locks and the `If` header (no I/O);
//!   `locking`: LOCK, UNLOCK and lock enforcement (class 2).
//! - `schedule`: the RFC 6638 inbox and outbox, free/busy by POST.
//! - [`store`]: the [`DavStore`] trait the binary implements.

pub mod content;
pub mod filter;
pub mod handler;
pub mod ifheader;
pub mod lock;
mod locking;
#[cfg(feature = "testing")]
pub mod memory;
pub mod path;
pub mod proto;
pub mod response;
mod schedule;
pub mod store;

pub use handler::{router, DavConfig};
pub use store::*;
