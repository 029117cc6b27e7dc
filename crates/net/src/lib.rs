//! What every listener shares: the connection type that can be upgraded to
//! TLS in place (STARTTLS/STLS), TLS configuration loading, per-IP and total
//! connection limits, the failed-login throttle that counts across all
//! protocols, the one authentication layer ([`auth`]) that every login goes
//! through, the one relaxed certificate verifier ([`RelaxedVerifier`]), and
//! the listener context and per-connection preamble every protocol shares
//! ([`listener`]).
//!
//! Protocol crates take a [`Conn`] and a [`Session`]; they never open
//! sockets themselves, so tests can hand them any connection.

pub mod auth;
mod conn;
mod limits;
pub mod listener;
mod throttle;
mod tls;
mod verify;

pub use auth::{AuthLayer, AuthUser, Authenticator, LoginOutcome, TempFail};
pub use conn::{Conn, Session};
pub use limits::{ConnLimiter, ConnPermit, Refused};
pub use listener::{run_session, ListenerContext};
pub use throttle::{AuthThrottle, ThrottleConfig, Verdict};
pub use tls::{load_tls, TlsError};
pub use tokio_rustls::TlsAcceptor;
pub use verify::{RelaxedVerifier, Trust};
