//! The IMAP wire format: bytes in, typed commands out; typed responses in,
//! bytes out. No I/O, no async, no knowledge of the store.
//!
//! - [`framing`]: cuts the byte stream into whole commands, reports
//!   synchronizing literals, enforces size limits.
//! - [`parse`]: one framed command to a [`types::Command`].
//! - [`types`]: commands and the values they share with responses.
//! - [`response`]: server responses and their serialisation.
//! - [`encode`]: commands back to bytes (tests, fuzzing, clients).
//! - [`utf7`]: modified UTF-7 mailbox names.
//!
//! A session loop looks like this:
//!
//! ```
//! use outpost_imap::codec::framing::{Frame, Framer, FramerLimits};
//! use outpost_imap::codec::parse::{parse_command, ParseOptions};
//! use outpost_imap::codec::response::{Continuation, Encoder, Response, StatusResponse};
//! use outpost_imap::codec::types::CommandBody;
//!
//! let mut framer = Framer::new(FramerLimits::default());
//! let enc = Encoder::default();
//! let mut out = Vec::new();
//! framer.push(b"a1 LOGIN {5}\r\n");
//! framer.push(b"alice secret\r\n");
//! while let Some(frame) = framer.poll().unwrap() {
//!     match frame {
//!         Frame::NeedContinuation { .. } => {
//!             enc.encode(&Continuation::Text("Ready".into()).into(), &mut out)
//!         }
//!         Frame::Command(bytes) => {
//!             let cmd = parse_command(&bytes, &ParseOptions::default()).unwrap();
//!             assert!(matches!(cmd.body, CommandBody::Login { .. }));
//!             let ok = StatusResponse::ok(Some(cmd.tag), "LOGIN completed");
//!             enc.encode(&Response::Status(ok), &mut out);
//!         }
//!     }
//! }
//! assert_eq!(out, b"+ Ready\r\na1 OK LOGIN completed\r\n");
//! ```

pub mod encode;
pub mod framing;
#[doc(hidden)]
pub mod fuzzing;
pub mod parse;
pub mod response;
pub mod types;
pub mod utf7;

pub use framing::{Frame, FrameError, Framer, FramerLimits};
pub use parse::{parse_command, ParseError, ParseOptions};
pub use response::{Code, Data, Encoder, Response, StatusResponse};
pub use types::{Command, CommandBody};

#[cfg(test)]
mod parse_tests;
#[cfg(test)]
mod response_tests;
