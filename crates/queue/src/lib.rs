//! The outbound half of the mail server: the queue runner that takes due
//! recipients from the store under a lease, delivers them over SMTP (by MX
//! or through a relay), retries on a schedule, and returns DSNs (RFC 3464)
//! for failures; plus DKIM signing of what leaves, and the SPF/DKIM/DMARC
//! checks (Authentication-Results) on what arrives — the mail-auth side of
//! the server lives here with the DKIM keys.
//!
//! Its own crate rather than part of `outpost-smtp`: that crate is the
//! server side (codec, session, listener) and knows nothing of DNS, TLS
//! client configuration or DKIM keys; the runner needs all three and only
//! the store. Neither depends on the other.

pub mod client;
pub mod dkim;
pub mod downgrade;
pub mod dsn;
pub mod inbound;
pub mod resolve;
pub mod runner;

pub use dkim::KeyDir;
pub use resolve::{route, DnsResolver, FixedResolver, Hop, MxAnswer, Resolver, RouteError};
pub use runner::{LocalDelivery, QueueSettings, Runner, Signer};
