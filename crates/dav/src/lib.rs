//! WebDAV (RFC 4918), CalDAV (RFC 4791) and CardDAV (RFC 6352) as an
//! `axum::Router` over a [`DavStore`].

pub mod store;

pub use store::*;
