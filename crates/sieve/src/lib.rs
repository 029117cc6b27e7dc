//! Sieve: filtering at delivery and ManageSieve.
//!
//! - [`engine`]: compiles and runs scripts (on `sieve-rs`), global
//!   before/after scripts around the user's active one, producing an
//!   [`Outcome`] that the delivery code carries out.
//! - [`codec`], [`session`], [`serve`]: the ManageSieve server (RFC 5804),
//!   shaped like the POP3 crate: pure codec, sans-I/O session, thin loop;
//!   logins go through `outpost_net`'s shared auth layer.

pub mod engine;

pub use engine::{
    no_auto_reply, sieve_capability, ActiveScript, DeliveryEnvelope, Engine, EngineLimits,
    FileInto, Notify, Outcome, Redirect, Scanners, ScriptError, SieveHost, Vacation, EXTENSIONS,
};

pub mod codec;
mod managesieve;
pub mod oof;
pub mod session;

pub use managesieve::{serve, ManageSieveContext, ManageSieveLimits, SieveBackend};
pub use session::{ScriptInfo, ScriptOpError};
