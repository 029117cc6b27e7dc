//! What every listener shares: the connection type that can be upgraded to
//! TLS in place (STARTTLS/STLS), TLS configuration loading, per-IP and total
//! connection limits, and the failed-login throttle that counts across all
//! protocols.
//!
//! Protocol crates take a [`Conn`] and a [`Session`]; they never open
//! sockets themselves, so tests can hand them any connection.

mod conn;
mod limits;
mod throttle;
mod tls;

pub use conn::{Conn, Session};
pub use limits::{ConnLimiter, ConnPermit, Refused};
pub use throttle::{AuthThrottle, ThrottleConfig, Verdict};
pub use tls::{load_tls, TlsError};
pub use tokio_rustls::TlsAcceptor;
