//! Exchange ActiveSync (MS-ASHTTP, MS-ASCMD, MS-ASPROV) over HTTP:
//! `POST`/`OPTIONS /Microsoft-Server-ActiveSync`.
//!
//! The crate knows no storage: the binary implements [`EasBackend`].
//! Each command has a module of pure functions over
//! [`outpost_wbxml::Element`] (request parsing, answer building); the
//! axum handler in [`http`] is thin: it reads the request line
//! ([`query`]), checks the protocol version and the policy key, decodes
//! the body under [`Limits`], and dispatches.
//!
//! Commands answered so far: Provision. The others answer HTTP 501
//! (MS-ASHTTP 3.2.5.1.1: a command the server does not support) until
//! their modules land.

pub mod http;
pub mod memory;
pub mod provision;
pub mod query;

pub use query::{Command, RequestLine, Version};

use async_trait::async_trait;

/// The `MS-ASProtocolCommands` an `OPTIONS` announces: the commands this
/// server answers.
pub const ANNOUNCED_COMMANDS: &[Command] = &[Command::Provision];

/// Limits of one request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes of a request body (a SendMail carries a whole message).
    pub max_body: usize,
    /// The WBXML decoder's limits.
    pub wbxml: outpost_wbxml::Limits,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: 40 << 20,
            wbxml: outpost_wbxml::Limits {
                max_size: 40 << 20,
                max_depth: 32,
                max_elements: 200_000,
                max_string: 36 << 20,
            },
        }
    }
}

/// One device of one principal, as the store keeps it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Device {
    pub device_type: String,
    pub user_agent: Option<String>,
    /// The final policy key; `None` until the device has provisioned.
    pub policy_key: Option<u32>,
    /// The temporary key handed out with the policy, until acknowledged.
    pub pending_key: Option<u32>,
    pub wipe_requested: bool,
    pub wipe_acknowledged: bool,
}

/// Why a backend call failed.
#[derive(Debug, Clone)]
pub enum BackendError {
    /// The store could not answer (HTTP 503; the client retries).
    Unavailable(String),
}

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendError::Unavailable(e) => write!(f, "store unavailable: {e}"),
        }
    }
}

/// What a command could not do, mapped by the dispatcher to the
/// command's own status or an HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The command's top-level Status value.
    Status(u32),
    /// Provision: the policy type is not the WBXML one (status 3 in the
    /// Policy element).
    PolicyType,
}

/// Storage the protocol needs. `principal` is the authenticated user's
/// login as the auth layer gave it.
#[async_trait]
pub trait EasBackend: Send + Sync + 'static {
    /// The device, if it has been seen (a removed device is unknown).
    async fn device(&self, principal: i64, device_id: &str)
        -> Result<Option<Device>, BackendError>;
    /// Creates or replaces the device's state, and records it as seen now.
    async fn put_device(
        &self,
        principal: i64,
        device_id: &str,
        device: &Device,
    ) -> Result<(), BackendError>;
}
