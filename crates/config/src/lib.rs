//! The configuration file: TOML, typed, every field documented here where it
//! is declared. Unknown keys are errors, so a typo never passes silently.
//! Defaults are safe on a public server: a listener that is not listed is not
//! started, plaintext logins are refused, limits are on.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

mod starter;
pub use starter::starter_config;

/// One clear line naming what is wrong and, where possible, what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config: cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("config: {path}: {message}")]
    Parse { path: String, message: String },
    #[error("config: {key}: {message}")]
    Invalid { key: String, message: String },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The server's host name: used in SMTP greetings and HELO, Received:
    /// headers, and the self-signed certificate. Default: "localhost".
    #[serde(default = "default_hostname")]
    pub hostname: String,
    /// Where the database, message blobs, TLS files and DKIM keys live.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    #[serde(default)]
    pub storage: Storage,
    #[serde(default)]
    pub tls: Tls,
    #[serde(default)]
    pub listen: Listen,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub auth: Auth,
    #[serde(default)]
    pub queue: Queue,
    #[serde(default)]
    pub inbound: Inbound,
    #[serde(default)]
    pub log: Log,
    #[serde(default)]
    pub sieve: Sieve,
    #[serde(default)]
    pub dkim: Dkim,
    #[serde(default)]
    pub http: Http,
    #[serde(default)]
    pub directory: DirectoryConfig,
}

/// Where users, addresses and groups come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DirectorySource {
    /// Outpost's own tables (`outpost user add`, ...).
    #[default]
    Internal,
    /// An LDAP server: Active Directory, Samba AD or OpenLDAP.
    Ldap,
}

/// Attribute and filter layout of an LDAP directory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DirectoryPreset {
    /// Active Directory / Samba AD: users `(&(objectClass=person)(!(objectClass=computer)))`
    /// logging in by `sAMAccountName`, `userPrincipalName` or any address;
    /// addresses from `mail` and `proxyAddresses` (`SMTP:` primary,
    /// `smtp:` secondary); `userAccountControl` 0x2 disables the login;
    /// `(objectClass=group)` with `mail` are distribution lists, nested
    /// through `member`; mailboxes keyed by `objectGUID`.
    #[default]
    Ad,
    /// OpenLDAP: `inetOrgPerson` users logging in by `uid` or `mail`;
    /// addresses `mail` + `mailAlternateAddress`; `groupOfNames` with
    /// `mail` are distribution lists; mailboxes keyed by `entryUUID`.
    Openldap,
}

/// The directory of users, addresses and groups. With `source = "ldap"`,
/// the LDAP server is asked for everything the built-in tables do not hold;
/// local aliases and groups still work on top of it. Hosted domains are
/// still added with `outpost domain add`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DirectoryConfig {
    /// "internal" (default) or "ldap".
    pub source: DirectorySource,
    /// `ldaps://dc1.example.org` (TLS from the start) or
    /// `ldap://dc1.example.org` (upgraded with StartTLS unless `starttls =
    /// false`).
    pub url: Option<String>,
    /// Upgrade an `ldap://` connection with StartTLS. Default: true. Turn
    /// off only for a server on loopback: passwords cross this connection.
    pub starttls: bool,
    /// PEM file with the CA certificate(s) that signed the server's
    /// certificate (e.g. Samba's `private/tls/ca.pem`). Absent: the
    /// system's trust store.
    pub ca_file: Option<PathBuf>,
    /// Check the server's certificate. Default: true. Turning it off lets
    /// anyone on the path read every password; for tests only.
    pub tls_verify: bool,
    /// The service account that searches, e.g.
    /// "CN=outpost,CN=Users,DC=example,DC=org". It needs read access only.
    pub bind_dn: Option<String>,
    /// File whose first line is the service account's password (keep it
    /// readable by Outpost only).
    pub bind_password_file: Option<PathBuf>,
    /// Name of an environment variable holding the password instead.
    pub bind_password_env: Option<String>,
    /// The password inline. Discouraged: Outpost warns when this config
    /// file can be read by other users.
    pub bind_password: Option<String>,
    /// Where users and groups are searched, e.g. "DC=example,DC=org".
    pub base_dn: Option<String>,
    /// "ad" (default) or "openldap".
    pub preset: DirectoryPreset,
    /// Replaces the preset's filter for user entries.
    pub user_filter: Option<String>,
    /// Replaces the preset's filter for group entries.
    pub group_filter: Option<String>,
    /// Replaces the preset's login attributes (addresses always work too).
    pub login_attributes: Option<Vec<String>>,
    /// Replaces the preset's plain address attributes (the first value of
    /// the first is primary unless `proxyAddresses` says `SMTP:`).
    pub address_attributes: Option<Vec<String>>,
    /// How long found and not-found answers (and successful logins) are
    /// reused, e.g. "60s"; "0" turns caching off. Default "60s".
    pub cache_ttl: String,
    /// Time limit to connect and for each operation. Default "5s".
    pub timeout: String,
    /// Idle connections kept open for login binds. Default 4.
    pub pool_size: usize,
    /// How often `serve` reads the whole directory again to bring each
    /// domain's Global Address List address book up to date, e.g. "15m";
    /// "0" turns the timed refresh off. Used with an LDAP source only,
    /// whose changes Outpost is not told about: changes to the built-in
    /// directory are announced by the store and picked up at once (on
    /// SQLite, a change from another process within 2 seconds). Default
    /// "15m".
    pub gal_refresh: String,
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        DirectoryConfig {
            source: DirectorySource::Internal,
            url: None,
            starttls: true,
            ca_file: None,
            tls_verify: true,
            bind_dn: None,
            bind_password_file: None,
            bind_password_env: None,
            bind_password: None,
            base_dn: None,
            preset: DirectoryPreset::Ad,
            user_filter: None,
            group_filter: None,
            login_attributes: None,
            address_attributes: None,
            cache_ttl: "60s".into(),
            timeout: "5s".into(),
            pool_size: 4,
            gal_refresh: "15m".into(),
        }
    }
}

impl DirectoryConfig {
    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            key: format!("directory.{key}"),
            message,
        };
        parse_duration(&self.cache_ttl).map_err(|m| invalid("cache_ttl", m))?;
        parse_duration(&self.gal_refresh).map_err(|m| invalid("gal_refresh", m))?;
        let t = parse_duration(&self.timeout).map_err(|m| invalid("timeout", m))?;
        if t.is_zero() {
            return Err(invalid("timeout", "must be more than 0".into()));
        }
        if self.source == DirectorySource::Internal {
            return Ok(());
        }
        match &self.url {
            None => {
                return Err(invalid(
                    "url",
                    "source = \"ldap\" needs url, e.g. \"ldaps://dc1.example.org\"".into(),
                ))
            }
            Some(u) if !(u.starts_with("ldap://") || u.starts_with("ldaps://")) => {
                return Err(invalid(
                    "url",
                    format!("{u:?}: write ldap://host[:port] or ldaps://host[:port]"),
                ))
            }
            Some(_) => {}
        }
        if self.base_dn.as_deref().is_none_or(str::is_empty) {
            return Err(invalid(
                "base_dn",
                "source = \"ldap\" needs base_dn, e.g. \"DC=example,DC=org\"".into(),
            ));
        }
        if self.bind_dn.as_deref().is_none_or(str::is_empty) {
            return Err(invalid(
                "bind_dn",
                "source = \"ldap\" needs a service account to search with (bind_dn)".into(),
            ));
        }
        let n = [
            self.bind_password_file.is_some(),
            self.bind_password_env.is_some(),
            self.bind_password.is_some(),
        ]
        .iter()
        .filter(|x| **x)
        .count();
        if n != 1 {
            return Err(invalid(
                "bind_password_file",
                "set exactly one of bind_password_file, bind_password_env or bind_password".into(),
            ));
        }
        if self.pool_size == 0 {
            return Err(invalid("pool_size", "must be at least 1".into()));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    /// Database URL: `sqlite:///path/outpost.db` (embedded, the default:
    /// `<data_dir>/outpost.db`) or `postgres://user@host:5432/db`.
    pub url: Option<String>,
    /// Directory for message blobs. Default: `<data_dir>/blobs`.
    pub blobs: Option<PathBuf>,
    /// Message bodies up to this many bytes are stored in the database row
    /// (made durable by the same commit as the message) instead of under
    /// `blobs`. Default 0: every body on the file system.
    pub inline_max: Option<usize>,
    /// Bodies up to this many bytes are appended to pack files under
    /// `blobs/packs/` with the rest of their batch (one write and one flush
    /// per batch); larger ones get a file each. 0: a file for every body.
    /// Default 1048576.
    pub pack_max: Option<usize>,
    /// How often the sweep runs: it removes bodies whose last message went
    /// away, compacts pack files that are mostly dead space and removes
    /// packs nothing names. Default "5m".
    pub sweep_interval: Option<String>,
    /// How long a body stays after its last message went away before the
    /// sweep removes it (a delivery may still take a new reference to it,
    /// and unnamed packs younger than this are left alone). Default "1h".
    pub sweep_grace: Option<String>,
    /// How long the change journals keep a change (tombstones of removed
    /// messages and items, and each user's record of folders created,
    /// renamed and deleted). The sweep prunes older ones; a client whose
    /// last sync is older than this (an IMAP QRESYNC modseq, a DAV sync
    /// token, an ActiveSync SyncKey) is told to start over and lists the
    /// folder again. Long enough for a phone or laptop left off over a
    /// holiday; each change costs about 100 bytes. Default "90d".
    pub journal_keep: Option<String>,
}

impl Storage {
    /// `sweep_interval` (validated when the config is loaded).
    pub fn sweep_interval(&self) -> std::time::Duration {
        self.sweep_interval
            .as_deref()
            .and_then(|s| parse_duration(s).ok())
            .unwrap_or(std::time::Duration::from_secs(300))
    }

    /// `sweep_grace` (validated when the config is loaded).
    pub fn sweep_grace(&self) -> std::time::Duration {
        self.sweep_grace
            .as_deref()
            .and_then(|s| parse_duration(s).ok())
            .unwrap_or(std::time::Duration::from_secs(3600))
    }

    /// `journal_keep` (validated when the config is loaded).
    pub fn journal_keep(&self) -> std::time::Duration {
        self.journal_keep
            .as_deref()
            .and_then(|s| parse_duration(s).ok())
            .unwrap_or(std::time::Duration::from_secs(90 * 86400))
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// PEM certificate chain. Absent: `<data_dir>/tls/cert.pem`, created
    /// self-signed by `outpost init` (or by the demo server).
    pub cert: Option<PathBuf>,
    /// PEM private key. Absent: `<data_dir>/tls/key.pem`.
    pub key: Option<PathBuf>,
}

/// Addresses to listen on, per service. A service that is not listed is not
/// started. Port 0 asks the OS for a free port; the ports actually bound are
/// written to `<data_dir>/listeners.json` and logged.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    /// MX: mail for hosted domains; STARTTLS offered; AUTH allowed after TLS.
    #[serde(default)]
    pub smtp: Vec<SocketAddr>,
    /// Message submission (587): STARTTLS, then AUTH required.
    #[serde(default)]
    pub submission: Vec<SocketAddr>,
    /// Submission over implicit TLS (465): AUTH required.
    #[serde(default)]
    pub submissions: Vec<SocketAddr>,
    /// LMTP for sites that keep their own MTA. Keep it on loopback or a
    /// private network: LMTP has no authentication.
    #[serde(default)]
    pub lmtp: Vec<SocketAddr>,
    /// IMAP with STARTTLS (143).
    #[serde(default)]
    pub imap: Vec<SocketAddr>,
    /// IMAP over implicit TLS (993).
    #[serde(default)]
    pub imaps: Vec<SocketAddr>,
    /// POP3 with STLS (110).
    #[serde(default)]
    pub pop3: Vec<SocketAddr>,
    /// POP3 over implicit TLS (995).
    #[serde(default)]
    pub pop3s: Vec<SocketAddr>,
    /// ManageSieve (4190).
    #[serde(default)]
    pub managesieve: Vec<SocketAddr>,
    /// HTTP (80): `/.well-known/` discovery and redirects to HTTPS
    /// (see `[http]`).
    #[serde(default)]
    pub http: Vec<SocketAddr>,
    /// HTTPS (443): the web, DAV and Exchange services; HTTP/1.1 and
    /// HTTP/2 (ALPN).
    #[serde(default)]
    pub https: Vec<SocketAddr>,
}

impl Listen {
    /// Every configured listener as (service name, address).
    pub fn all(&self) -> Vec<(&'static str, SocketAddr)> {
        let mut v = Vec::new();
        for (name, addrs) in [
            ("smtp", &self.smtp),
            ("submission", &self.submission),
            ("submissions", &self.submissions),
            ("lmtp", &self.lmtp),
            ("imap", &self.imap),
            ("imaps", &self.imaps),
            ("pop3", &self.pop3),
            ("pop3s", &self.pop3s),
            ("managesieve", &self.managesieve),
            ("http", &self.http),
            ("https", &self.https),
        ] {
            for a in addrs {
                v.push((name, *a));
            }
        }
        v
    }
}

/// Connections from one address on a listener whose clients are other
/// servers (`smtp`, `lmtp`), when `limits.connections_per_ip` is unset.
pub const MX_CONNECTIONS_PER_IP: usize = 50;

/// Connections from one address on a listener that mail programs use
/// (submission, IMAP, POP3, ManageSieve, HTTP), when
/// `limits.connections_per_ip` is unset: enough for an office behind one
/// NAT address.
pub const CLIENT_CONNECTIONS_PER_IP: usize = 300;

/// Limits that protect every listener. The defaults suit a public server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest message accepted, in bytes (SMTP SIZE, IMAP APPENDLIMIT).
    pub message_size: u64,
    /// Most recipients of one SMTP transaction.
    pub max_recipients: usize,
    /// Simultaneous connections from one client address, per listener.
    /// Unset (the default), each listener gets what fits its clients:
    /// [`MX_CONNECTIONS_PER_IP`] (50) on `smtp` and `lmtp`, where the
    /// clients are other servers (Postfix's
    /// `smtpd_client_connection_count_limit` is 50 too), and
    /// [`CLIENT_CONNECTIONS_PER_IP`] (300) on the listeners people's mail
    /// programs use (submission, IMAP, POP3, ManageSieve, HTTP). A whole
    /// office often reaches us from one NAT address: 30 Thunderbird users
    /// keep up to 5 IMAP connections each (150), phones on the office Wi-Fi
    /// add their own, and a limit of 20 locked such an office out. Dovecot
    /// has no per-address cap by default, only one per user and address
    /// after login (`mail_max_userip_connections = 10`); 300 still keeps a
    /// single address from taking more than a small share of
    /// `connections_total`. Set, the value applies to every listener.
    pub connections_per_ip: Option<usize>,
    /// Simultaneous connections in total, per listener.
    pub connections_total: usize,
    /// Seconds an SMTP client may take to send a command.
    pub smtp_command_timeout: u64,
    /// Seconds an IMAP client may stay idle (IDLE included; RFC 9051 asks
    /// for at least 30 minutes).
    pub imap_idle_timeout: u64,
    /// Seconds a POP3 client may stay idle.
    pub pop3_idle_timeout: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            message_size: 50 * 1024 * 1024,
            max_recipients: 100,
            connections_per_ip: None,
            connections_total: 5000,
            smtp_command_timeout: 300,
            imap_idle_timeout: 1860,
            pop3_idle_timeout: 600,
        }
    }
}

impl Limits {
    /// The per-address connection limit of the listener named `listener`
    /// (a key of `[listen]`): `connections_per_ip` when set, otherwise the
    /// default for that kind of listener.
    pub fn connections_per_ip_for(&self, listener: &str) -> usize {
        match (self.connections_per_ip, listener) {
            (Some(n), _) => n,
            (None, "smtp" | "lmtp") => MX_CONNECTIONS_PER_IP,
            (None, _) => CLIENT_CONNECTIONS_PER_IP,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Auth {
    /// Allow plaintext logins (IMAP LOGIN, POP3 USER/PASS, SMTP AUTH) without
    /// TLS, but only from loopback clients. Off by default; the demo server
    /// turns it on for its loopback listeners.
    pub allow_plaintext_on_loopback: bool,
    /// Failed logins (per client address or per account) after which each
    /// further attempt is answered slowly.
    pub slow_after: u32,
    /// Failed logins after which the address or account is refused for
    /// `block_seconds`. Blocks are logged as `auth blocked: ip=…` for fail2ban.
    pub block_after: u32,
    /// How long a block lasts, in seconds.
    pub block_seconds: u64,
    /// The window, in seconds, over which failures are counted.
    pub window_seconds: u64,
}

impl Default for Auth {
    fn default() -> Self {
        Auth {
            allow_plaintext_on_loopback: false,
            slow_after: 3,
            block_after: 10,
            block_seconds: 900,
            window_seconds: 600,
        }
    }
}

/// The outbound queue and its delivery. Durations are written as a number
/// with a unit: "30s", "5m", "4h", "5d".
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Queue {
    /// Smarthost for outbound mail, "host:port" (like Postfix's relayhost).
    /// Absent: deliver by MX.
    pub relay: Option<String>,
    /// User name for AUTH at the relay (PLAIN or LOGIN, only after STARTTLS).
    pub relay_username: Option<String>,
    /// File holding the relay password (first line). Kept out of this file
    /// so the config can be world-readable.
    pub relay_password_file: Option<PathBuf>,
    /// Deliveries in flight at once, over all destinations. Default: 16.
    pub workers: usize,
    /// Deliveries in flight at once to one destination domain, so a slow or
    /// dead destination never takes every worker. Default: 4.
    pub domain_workers: usize,
    /// Waits between attempts: the first retry after the first entry, and
    /// so on; the last entry repeats. Default: ["1m","5m","15m","1h","4h"].
    pub retry: Vec<String>,
    /// A recipient still undelivered after this long is bounced. Default "5d".
    pub max_age: String,
    /// After this long undelivered, the sender gets one delay notice (DSN
    /// action "delayed") when NOTIFY allows it. Default "4h".
    pub delay_warning: String,
    /// Domains whose mail goes out only over STARTTLS with a certificate
    /// that verifies against the system's trust store; otherwise the
    /// attempt is deferred. Other destinations use STARTTLS when offered
    /// and accept any certificate (opportunistic TLS, RFC 3207 practice).
    pub require_tls_domains: Vec<String>,
    /// Fixed MX answers instead of DNS: domain -> "host:port". For tests
    /// and closed networks; a domain not listed here is looked up in DNS.
    pub test_mx: std::collections::BTreeMap<String, String>,
    /// Look destinations up in DNS. Off: only `relay` and `test_mx`
    /// destinations are tried, and mail for any other domain stays queued
    /// (deferred) — for test rigs and machines without outside access.
    /// The lookups use the system's name servers (`/etc/resolv.conf`) with
    /// short tries (1 s, 3 retries, as `[inbound]`'s defaults) instead of
    /// the system's 5 s. Default: true.
    pub dns: bool,
}

/// Checks on mail arriving from other servers (the MX role).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Inbound {
    /// Check SPF, DKIM and DMARC (mail-auth) and put the result on top of
    /// the message as an `Authentication-Results:` field (RFC 8601), which
    /// Sieve rules can test. Default: true.
    pub check: bool,
    /// Refuse, with 550 5.7.1 at the end of DATA, mail that fails DMARC
    /// when the From: domain publishes `p=reject`. Default: true.
    pub dmarc_reject: bool,
    /// File mail that fails DMARC when the From: domain publishes
    /// `p=quarantine` into the recipients' Junk mailbox (a Sieve
    /// `fileinto` elsewhere still applies; only what would go to INBOX
    /// moves). Default: true.
    pub dmarc_quarantine_junk: bool,
    /// Fixed DNS TXT records (name -> value) used instead of DNS for these
    /// checks; with any set, or with `queue.dns = false` and no
    /// `dns_servers`, no DNS server is asked. For tests and closed networks.
    pub test_txt: std::collections::BTreeMap<String, String>,
    /// Name servers for these checks, as "IP" (port 53) or "IP:port"
    /// ("[v6]:port"); UDP, and TCP for long answers. Empty: the system's,
    /// from /etc/resolv.conf. A local caching resolver (unbound, or
    /// systemd-resolved's 127.0.0.53) keeps an MX fast. Default: empty.
    pub dns_servers: Vec<String>,
    /// How long one try of a DNS query waits for its answer, in
    /// milliseconds. Within a try a lost UDP packet is sent again after
    /// about a third of a second, so one lost packet costs that much, not
    /// a whole try. Default: 1000.
    pub dns_timeout_ms: u64,
    /// Tries after a DNS query's first try got no answer; a query gives up
    /// after `dns_timeout_ms × (dns_retries + 1)`. Default: 3 (4 s in all:
    /// on a starved machine a local resolver can take a second to answer).
    pub dns_retries: usize,
    /// Longest wait, in seconds, for the checks of one message before its
    /// final reply; then 451 4.4.3 and the client retries later. When DNS
    /// fails and leaves the DMARC decision open (the From: domain's policy
    /// unknown, or reject/quarantine hanging on a failed query) the answer
    /// is 451 4.4.3 too, as soon as that is known (RFC 7208 §8.6). Default:
    /// 20 (RFC 7208 §4.6.4 asks to allow an SPF check at least 20 s).
    pub check_timeout: u64,
}

impl Inbound {
    /// `dns_servers` as socket addresses (validated at load).
    pub fn dns_server_addrs(&self) -> Result<Vec<std::net::SocketAddr>, String> {
        self.dns_servers
            .iter()
            .map(|s| {
                s.parse::<std::net::SocketAddr>()
                    .or_else(|_| {
                        s.parse::<std::net::IpAddr>()
                            .map(|ip| std::net::SocketAddr::new(ip, 53))
                    })
                    .map_err(|_| {
                        format!("{s:?}: write an IP address, with a port if not 53, e.g. \"127.0.0.1:5353\"")
                    })
            })
            .collect()
    }
}

impl Default for Inbound {
    fn default() -> Self {
        Inbound {
            check: true,
            dmarc_reject: true,
            dmarc_quarantine_junk: true,
            test_txt: Default::default(),
            dns_servers: Vec::new(),
            dns_timeout_ms: 1000,
            dns_retries: 3,
            check_timeout: 20,
        }
    }
}

impl Default for Queue {
    fn default() -> Self {
        Queue {
            relay: None,
            relay_username: None,
            relay_password_file: None,
            workers: 16,
            domain_workers: 4,
            retry: ["1m", "5m", "15m", "1h", "4h"].map(String::from).to_vec(),
            max_age: "5d".into(),
            delay_warning: "4h".into(),
            require_tls_domains: Vec::new(),
            test_mx: Default::default(),
            dns: true,
        }
    }
}

impl Queue {
    /// The retry schedule as durations (validated at load).
    pub fn retry_schedule(&self) -> Vec<std::time::Duration> {
        self.retry
            .iter()
            .filter_map(|s| parse_duration(s).ok())
            .collect()
    }
}

/// DKIM signing of outgoing mail. Keys live in `<data_dir>/dkim/` as
/// `<domain>.<selector>.key` (PKCS#8 PEM), made by `outpost dkim generate`;
/// mail from a domain without a key goes out unsigned.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Dkim {
    /// The selector used for signing and for new keys. Default "outpost".
    pub selector: String,
}

impl Default for Dkim {
    fn default() -> Self {
        Dkim {
            selector: "outpost".into(),
        }
    }
}

/// Parses "90", "30s", "5m", "4h" or "5d" into a duration.
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let (num, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&t[..i], t[i..].trim()),
        None => (t, "s"),
    };
    let n: u64 = num.parse().map_err(|_| {
        format!("{s:?} is not a duration; write e.g. \"30s\", \"5m\", \"4h\", \"5d\"")
    })?;
    let mul = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("{s:?}: unknown unit {unit:?}; use s, m, h or d")),
    };
    let secs = n
        .checked_mul(mul)
        .ok_or_else(|| format!("{s:?} is too long a duration"))?;
    Ok(std::time::Duration::from_secs(secs))
}

/// The HTTP stack under every HTTP service (`[listen] http` and `https`):
/// limits and the plain-HTTP policy. Every default is meant for a server
/// on the internet; docs/http.md says more.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Http {
    /// Largest request head (request line and header fields) in bytes;
    /// larger is answered 431 and the connection closed. Default 16384:
    /// twice what the largest DAV and Exchange clients send (long cookies,
    /// `If` headers with lock tokens), small enough that a client cannot
    /// make each connection hold much memory. At least 8192.
    pub max_header_size: usize,
    /// Largest request body in bytes, unless a service sets its own limit
    /// for its routes (a calendar object, an uploaded attachment); larger
    /// is answered 413. Default 1048576 (1 MiB).
    pub body_limit: usize,
    /// Time a client has to send a whole request head, and to send its
    /// first request after connecting (HTTP/1.1: also the wait for the next
    /// request on a kept-alive connection). Default "20s": a slow mobile
    /// link sends a head in well under a second, while a slowloris client
    /// that trickles bytes is cut off.
    pub header_read_timeout: String,
    /// Longest wait for the next piece of a request body once the head is
    /// in (the time between two reads, as nginx's `client_body_timeout`).
    /// Beyond it the request is answered 408 and the connection closed.
    /// Default "60s": a phone on a bad link stalls for seconds, a client
    /// that trickles a body to hold a request slot is cut off.
    pub body_read_timeout: String,
    /// A connection with no request in flight for this long is closed
    /// (HTTP/2: sent GOAWAY). Default "60s", so phones polling DAV every
    /// minute or so may keep theirs.
    pub idle_timeout: String,
    /// Requests being answered at once for one client address, over all
    /// its connections; more get 429 with Retry-After. Default 128: an
    /// office behind one NAT address with dozens of DAV clients fits, a
    /// single client cannot tie up the store.
    pub requests_per_ip: usize,
    /// Requests held open waiting for a change (ActiveSync Ping, hanging
    /// Sync) for one client address; they do not count against
    /// `requests_per_ip` while they wait. Default 5000.
    pub long_polls_per_ip: usize,
    /// Streams open at once on one HTTP/2 connection. Default 100 (the
    /// value RFC 9113 §6.5.2 recommends as the least to allow).
    pub h2_max_concurrent_streams: u32,
    /// Serve requests on the plain `http` listener from loopback clients
    /// like HTTPS ones, Basic logins included (a local proxy that ends
    /// TLS, tests). Default false: plain HTTP answers only `/.well-known/`
    /// and redirects everything else to HTTPS.
    pub allow_plaintext_on_loopback: bool,
}

impl Default for Http {
    fn default() -> Self {
        Http {
            max_header_size: 16 * 1024,
            body_limit: 1024 * 1024,
            header_read_timeout: "20s".into(),
            body_read_timeout: "60s".into(),
            idle_timeout: "60s".into(),
            requests_per_ip: 128,
            long_polls_per_ip: 5000,
            h2_max_concurrent_streams: 100,
            allow_plaintext_on_loopback: false,
        }
    }
}

/// The smallest `http.max_header_size` (hyper's read buffer has this floor).
pub const HTTP_MIN_HEADER_SIZE: usize = 8192;

impl Http {
    /// `header_read_timeout` as a duration (validated at load).
    pub fn header_read_timeout(&self) -> std::time::Duration {
        parse_duration(&self.header_read_timeout).unwrap_or(std::time::Duration::from_secs(20))
    }

    /// `body_read_timeout` as a duration (validated at load).
    pub fn body_read_timeout(&self) -> std::time::Duration {
        parse_duration(&self.body_read_timeout).unwrap_or(std::time::Duration::from_secs(60))
    }

    /// `idle_timeout` as a duration (validated at load).
    pub fn idle_timeout(&self) -> std::time::Duration {
        parse_duration(&self.idle_timeout).unwrap_or(std::time::Duration::from_secs(60))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            key: format!("http.{key}"),
            message,
        };
        if self.max_header_size < HTTP_MIN_HEADER_SIZE {
            return Err(invalid(
                "max_header_size",
                format!("must be at least {HTTP_MIN_HEADER_SIZE}"),
            ));
        }
        if self.body_limit == 0 {
            return Err(invalid("body_limit", "must be more than 0".into()));
        }
        for (key, v) in [
            ("header_read_timeout", &self.header_read_timeout),
            ("body_read_timeout", &self.body_read_timeout),
            ("idle_timeout", &self.idle_timeout),
        ] {
            match parse_duration(v) {
                Ok(d) if d.is_zero() => return Err(invalid(key, "must be more than 0".into())),
                Ok(_) => {}
                Err(m) => return Err(invalid(key, m)),
            }
        }
        if self.requests_per_ip == 0 {
            return Err(invalid("requests_per_ip", "must be at least 1".into()));
        }
        if self.long_polls_per_ip == 0 {
            return Err(invalid("long_polls_per_ip", "must be at least 1".into()));
        }
        if self.h2_max_concurrent_streams == 0 {
            return Err(invalid(
                "h2_max_concurrent_streams",
                "must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Log {
    /// Log filter in `RUST_LOG` syntax, e.g. "info" or "outpost_smtp=debug".
    /// The environment variable RUST_LOG overrides it.
    pub level: String,
}

impl Default for Log {
    fn default() -> Self {
        Log {
            level: "info".into(),
        }
    }
}

/// Sieve filtering at delivery and ManageSieve.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Sieve {
    /// Global scripts run before each user's active script, in order (as
    /// Dovecot's sieve_before), e.g. ["/etc/outpost/spam.sieve"] with
    /// `if header :is "X-Spam-Flag" "YES" { fileinto "Junk"; stop; }`.
    /// A `stop` ends the whole sequence. Default: none.
    pub before: Vec<PathBuf>,
    /// Global scripts run after the user's active script (sieve_after).
    pub after: Vec<PathBuf>,
    /// Scripts a user may keep (ManageSieve quota). Default: 32.
    pub max_scripts: usize,
    /// Largest script in bytes (ManageSieve quota). Default: 65536.
    pub max_script_size: usize,
    /// Redirects one delivery's scripts may do (ManageSieve MAXREDIRECTS).
    /// Default: 4.
    pub max_redirects: usize,
    /// Instructions the scripts of one delivery may run before they are
    /// stopped (the message is then kept in INBOX). Default: 100000.
    pub cpu_limit: usize,
    /// Envelope sender of mail a script `redirect`s to another server, and
    /// of mail a group or alias sends on to its outside members:
    /// "srs" (the default) rewrites it with the Sender Rewriting Scheme to
    /// `SRS0=hash=time=orig-domain=orig-local@<the user's or group's
    /// domain>`, so SPF
    /// passes at the destination and bounces come back here, where they
    /// are checked (hash and age) and sent on to the original sender;
    /// "original" keeps the sender as it was (SPF may then fail at the
    /// destination). The null sender and senders in hosted domains are
    /// never rewritten.
    pub redirect_sender: RedirectSender,
    /// File with the SRS secret: one secret per line, the first signs new
    /// addresses, all are accepted on bounces (add a new first line to
    /// rotate). Default: `<data_dir>/srs.key`, generated (random, mode
    /// 0600) the first time it is needed. Every node of a cluster needs
    /// the same file.
    pub srs_secret_file: Option<PathBuf>,
    /// Days an SRS address stays valid for bounces. Default: 21.
    pub srs_max_age_days: u32,
    /// Header field carrying the spam scanner's score (e.g. "X-Spam-Score"
    /// from SpamAssassin or rspamd): enables the `spamtest` and
    /// `spamtestplus` extensions (RFC 5235), which are advertised only
    /// then. The first number in the topmost such field is the score. Use
    /// a field your scanner always sets or replaces, so a sender cannot
    /// bring their own. Default: none.
    pub spam_score_header: Option<String>,
    /// Score at and above which a message is certainly spam (spamtest 10,
    /// spamtestplus :percent 100); 0 and below is certainly not (1 and 0);
    /// between, proportionally. Default: 10.0.
    pub spam_score_max: f64,
    /// Header field carrying the virus scanner's verdict (e.g.
    /// "X-Virus-Status" from clamav-milter): enables `virustest`
    /// (RFC 5235). A number 1-5 is taken as the RFC 5235 value; text
    /// starting with "clean" or "no" is 1 (clean), "infected", "virus" or
    /// "yes" is 5 (infected); anything else, or no field, is 0 (not
    /// tested). Default: none.
    pub virus_header: Option<String>,
}

/// See [`Sieve::redirect_sender`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RedirectSender {
    Srs,
    Original,
}

impl Default for Sieve {
    fn default() -> Self {
        Sieve {
            before: Vec::new(),
            after: Vec::new(),
            max_scripts: 32,
            max_script_size: 64 * 1024,
            max_redirects: 4,
            cpu_limit: 100_000,
            redirect_sender: RedirectSender::Srs,
            srs_secret_file: None,
            srs_max_age_days: 21,
            spam_score_header: None,
            spam_score_max: 10.0,
            virus_header: None,
        }
    }
}

fn default_hostname() -> String {
    "localhost".into()
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("/var/lib/outpost")
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse(&text, &path.display().to_string())
    }

    /// Parses and validates config text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Config, ConfigError> {
        let cfg: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_string(),
            message: one_line(&e),
        })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The built-in configuration used when there is no config file at all.
    pub fn defaults_with(data_dir: PathBuf) -> Config {
        let mut cfg: Config = toml::from_str("").expect("empty config parses");
        cfg.data_dir = data_dir;
        cfg
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key: &str, message: String| ConfigError::Invalid {
            key: key.into(),
            message,
        };
        if self.hostname.is_empty() || self.hostname.contains(char::is_whitespace) {
            return Err(invalid(
                "hostname",
                format!("{:?} is not a host name", self.hostname),
            ));
        }
        if let Some(url) = &self.storage.url {
            if !(url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://"))
            {
                return Err(invalid(
                    "storage.url",
                    format!("{url:?}: use sqlite:///path/outpost.db or postgres://user@host/db"),
                ));
            }
        }
        if let Some(v) = &self.storage.sweep_interval {
            match parse_duration(v) {
                Ok(d) if d.is_zero() => {
                    return Err(invalid(
                        "storage.sweep_interval",
                        "must be more than 0".into(),
                    ))
                }
                Ok(_) => {}
                Err(m) => return Err(invalid("storage.sweep_interval", m)),
            }
        }
        if let Some(v) = &self.storage.sweep_grace {
            parse_duration(v).map_err(|m| invalid("storage.sweep_grace", m))?;
        }
        if let Some(v) = &self.storage.journal_keep {
            match parse_duration(v) {
                Ok(d) if d.is_zero() => {
                    return Err(invalid(
                        "storage.journal_keep",
                        "must be more than 0 (every sync would start over)".into(),
                    ))
                }
                Ok(_) => {}
                Err(m) => return Err(invalid("storage.journal_keep", m)),
            }
        }
        if self.tls.cert.is_some() != self.tls.key.is_some() {
            return Err(invalid(
                "tls",
                "set both tls.cert and tls.key, or neither".into(),
            ));
        }
        let mut seen = std::collections::HashMap::new();
        for (name, addr) in self.listen.all() {
            if addr.port() != 0 {
                if let Some(other) = seen.insert(addr, name) {
                    return Err(invalid(
                        &format!("listen.{name}"),
                        format!("{addr} is also used by listen.{other}"),
                    ));
                }
            }
        }
        if self.limits.message_size < 1024 {
            return Err(invalid(
                "limits.message_size",
                "must be at least 1024 bytes".into(),
            ));
        }
        if self.limits.max_recipients == 0 {
            return Err(invalid(
                "limits.max_recipients",
                "must be at least 1".into(),
            ));
        }
        if self.limits.connections_per_ip == Some(0) || self.limits.connections_total == 0 {
            return Err(invalid(
                "limits.connections_per_ip",
                "connection limits must be at least 1".into(),
            ));
        }
        if self.auth.block_after == 0 {
            return Err(invalid("auth.block_after", "must be at least 1".into()));
        }
        if self.queue.retry.is_empty() {
            return Err(invalid(
                "queue.retry",
                "give at least one wait, e.g. [\"5m\"]".into(),
            ));
        }
        for d in &self.queue.retry {
            parse_duration(d).map_err(|m| invalid("queue.retry", m))?;
        }
        parse_duration(&self.queue.max_age).map_err(|m| invalid("queue.max_age", m))?;
        parse_duration(&self.queue.delay_warning).map_err(|m| invalid("queue.delay_warning", m))?;
        if self.queue.workers == 0 || self.queue.domain_workers == 0 {
            return Err(invalid(
                "queue.workers",
                "workers and domain_workers must be at least 1".into(),
            ));
        }
        for (key, v) in self
            .queue
            .relay
            .iter()
            .map(|r| ("queue.relay", r))
            .chain(self.queue.test_mx.values().map(|v| ("queue.test_mx", v)))
        {
            if !matches!(v.rsplit_once(':'), Some((h, p)) if !h.is_empty() && p.parse::<u16>().is_ok())
            {
                return Err(invalid(
                    key,
                    format!("{v:?}: write \"host:port\", e.g. \"smtp.example.net:587\""),
                ));
            }
        }
        self.inbound
            .dns_server_addrs()
            .map_err(|m| invalid("inbound.dns_servers", m))?;
        if self.inbound.dns_timeout_ms == 0 || self.inbound.check_timeout == 0 {
            return Err(invalid(
                "inbound.dns_timeout_ms",
                "dns_timeout_ms and check_timeout must be at least 1".into(),
            ));
        }
        if self.queue.relay_username.is_some() != self.queue.relay_password_file.is_some() {
            return Err(invalid(
                "queue.relay_username",
                "set both relay_username and relay_password_file, or neither".into(),
            ));
        }
        self.directory.validate()?;
        self.http.validate()?;
        if self.dkim.selector.is_empty()
            || !self
                .dkim
                .selector
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err(invalid(
                "dkim.selector",
                format!("{:?} is not a DNS label", self.dkim.selector),
            ));
        }
        if !(self.sieve.spam_score_max.is_finite() && self.sieve.spam_score_max > 0.0) {
            return Err(invalid(
                "sieve.spam_score_max",
                "must be a number above 0, e.g. 10.0".into(),
            ));
        }
        for (key, v) in [
            ("sieve.spam_score_header", &self.sieve.spam_score_header),
            ("sieve.virus_header", &self.sieve.virus_header),
        ] {
            if let Some(h) = v {
                if h.is_empty() || !h.chars().all(|c| c.is_ascii_graphic() && c != ':') {
                    return Err(invalid(key, format!("{h:?} is not a header field name")));
                }
            }
        }
        if self.sieve.srs_max_age_days == 0 || self.sieve.srs_max_age_days > 1000 {
            return Err(invalid(
                "sieve.srs_max_age_days",
                "must be between 1 and 1000".into(),
            ));
        }
        Ok(())
    }

    /// The SRS secret file (`[sieve] srs_secret_file` or its default).
    pub fn srs_secret_path(&self) -> PathBuf {
        self.sieve
            .srs_secret_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("srs.key"))
    }

    /// The database URL, defaulting to SQLite inside the data directory.
    pub fn storage_url(&self) -> String {
        match &self.storage.url {
            Some(u) => u.clone(),
            None => format!("sqlite://{}", self.data_dir.join("outpost.db").display()),
        }
    }

    pub fn blob_dir(&self) -> PathBuf {
        self.storage
            .blobs
            .clone()
            .unwrap_or_else(|| self.data_dir.join("blobs"))
    }

    /// Certificate and key paths (configured, or the generated pair).
    pub fn tls_paths(&self) -> (PathBuf, PathBuf, bool) {
        match (&self.tls.cert, &self.tls.key) {
            (Some(c), Some(k)) => (c.clone(), k.clone(), false),
            _ => (
                self.data_dir.join("tls/cert.pem"),
                self.data_dir.join("tls/key.pem"),
                true,
            ),
        }
    }
}

fn one_line(e: &toml::de::Error) -> String {
    // Some toml messages span lines ("invalid table header\nexpected ...").
    let msg = e
        .message()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ");
    match e.span() {
        Some(_) => {
            // toml's Display has the line/column and a snippet; keep the first
            // line only (it names the position) and the message.
            let full = e.to_string();
            let pos = full
                .lines()
                .next()
                .unwrap_or("")
                .trim_start_matches("TOML parse error ")
                .to_string();
            format!("{pos}: {msg}")
        }
        None => msg,
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn http_section_defaults_and_errors() {
        let c = Config::parse("", "t").unwrap();
        assert_eq!(c.http.max_header_size, 16384);
        assert_eq!(c.http.body_limit, 1048576);
        assert_eq!(
            c.http.header_read_timeout(),
            std::time::Duration::from_secs(20)
        );
        assert_eq!(c.http.idle_timeout(), std::time::Duration::from_secs(60));
        assert_eq!(
            c.http.body_read_timeout(),
            std::time::Duration::from_secs(60)
        );
        assert!(!c.http.allow_plaintext_on_loopback);
        let c = Config::parse(
            "[http]\nidle_timeout = \"2m\"\nallow_plaintext_on_loopback = true\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.http.idle_timeout(), std::time::Duration::from_secs(120));
        assert!(c.http.allow_plaintext_on_loopback);
        for (text, key) in [
            ("[http]\nmax_header_size = 1000\n", "http.max_header_size"),
            ("[http]\nidle_timeout = \"0s\"\n", "http.idle_timeout"),
            (
                "[http]\nbody_read_timeout = \"0s\"\n",
                "http.body_read_timeout",
            ),
            (
                "[http]\nheader_read_timeout = \"soon\"\n",
                "http.header_read_timeout",
            ),
            ("[http]\nrequests_per_ip = 0\n", "http.requests_per_ip"),
            ("[http]\nbody_limit = 0\n", "http.body_limit"),
            ("[http]\nmax_body = 5\n", "max_body"),
        ] {
            let e = Config::parse(text, "t").unwrap_err().to_string();
            assert!(e.contains(key), "{text}: {e}");
        }
    }

    #[test]
    fn connection_limits_fit_a_natted_office_unless_set() {
        let c = Config::parse("", "t").unwrap();
        // 30 Thunderbird users behind one address, 5 IMAP connections each
        assert!(c.limits.connections_per_ip_for("imaps") >= 150);
        assert!(c.limits.connections_per_ip_for("imap") >= 150);
        assert_eq!(c.limits.connections_per_ip_for("submission"), 300);
        assert_eq!(c.limits.connections_per_ip_for("smtp"), 50);
        assert_eq!(c.limits.connections_per_ip_for("lmtp"), 50);
        let c = Config::parse("[limits]\nconnections_per_ip = 7\n", "t").unwrap();
        for l in ["smtp", "imaps", "pop3", "https"] {
            assert_eq!(c.limits.connections_per_ip_for(l), 7);
        }
        let e = Config::parse("[limits]\nconnections_per_ip = 0\n", "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("limits.connections_per_ip"), "{e}");
    }

    #[test]
    fn durations_and_queue_settings() {
        assert_eq!(parse_duration("90").unwrap().as_secs(), 90);
        assert_eq!(parse_duration("30s").unwrap().as_secs(), 30);
        assert_eq!(parse_duration("5m").unwrap().as_secs(), 300);
        assert_eq!(parse_duration("4h").unwrap().as_secs(), 14400);
        assert_eq!(parse_duration("5d").unwrap().as_secs(), 432000);
        assert!(parse_duration("5w").is_err() && parse_duration("m").is_err());
        let c =
            Config::parse("[queue]\nretry = [\"1s\", \"2s\"]\nmax_age = \"1h\"\n", "t").unwrap();
        assert_eq!(c.queue.retry_schedule().len(), 2);
        assert_eq!(c.queue.workers, 16);
        assert!(c.queue.dns);
        assert_eq!(c.dkim.selector, "outpost");
        let e = Config::parse("[queue]\nretry = [\"soon\"]\n", "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("queue.retry"), "{e}");
        let e = Config::parse("[queue]\nrelay = \"smtp.example\"\n", "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("host:port"), "{e}");
        let e = Config::parse("[queue]\nrelay_username = \"u\"\n", "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("relay_password_file"), "{e}");
    }
    use super::*;

    #[test]
    fn inbound_dns_settings() {
        let c = Config::parse("", "t").unwrap();
        assert!(c.inbound.dns_servers.is_empty());
        assert_eq!(
            (
                c.inbound.dns_timeout_ms,
                c.inbound.dns_retries,
                c.inbound.check_timeout
            ),
            (1000, 3, 20)
        );
        let c = Config::parse(
            "[inbound]\ndns_servers = [\"127.0.0.1:5353\", \"::1\", \"[::1]:54\"]\n",
            "t",
        )
        .unwrap();
        let addrs: Vec<String> = c
            .inbound
            .dns_server_addrs()
            .unwrap()
            .iter()
            .map(|a| a.to_string())
            .collect();
        assert_eq!(addrs, ["127.0.0.1:5353", "[::1]:53", "[::1]:54"]);
        for bad in [
            "dns_servers = [\"dns.example\"]",
            "dns_timeout_ms = 0",
            "check_timeout = 0",
        ] {
            let e = Config::parse(&format!("[inbound]\n{bad}\n"), "t")
                .unwrap_err()
                .to_string();
            assert!(e.contains("inbound."), "{bad}: {e}");
        }
    }

    /// Found by the config property test: "213503982334602d" is a u64 of
    /// days but not of seconds; the multiplication overflowed (a panic in
    /// debug builds, a wrapped, far too short duration in release).
    #[test]
    fn duration_that_overflows_is_refused() {
        assert!(parse_duration("213503982334602d").is_err());
        assert!(parse_duration("18446744073709551615m").is_err());
        assert_eq!(
            parse_duration("213503982334601d").unwrap().as_secs(),
            213503982334601 * 86400
        );
        let e = Config::parse("[queue]\nmax_age = \"999999999999999d\"\n", "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("queue.max_age"), "{e}");
    }

    #[test]
    fn sieve_forwarding_and_scanner_settings() {
        let c = Config::parse("data_dir = \"/d\"\n", "t").unwrap();
        assert_eq!(c.sieve.redirect_sender, RedirectSender::Srs);
        assert_eq!(c.srs_secret_path(), Path::new("/d/srs.key"));
        assert!(c.sieve.spam_score_header.is_none());
        let c = Config::parse(
            "[sieve]\nredirect_sender = \"original\"\nsrs_secret_file = \"/etc/o/srs\"\nspam_score_header = \"X-Spam-Score\"\nspam_score_max = 15.0\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.sieve.redirect_sender, RedirectSender::Original);
        assert_eq!(c.srs_secret_path(), Path::new("/etc/o/srs"));
        assert_eq!(c.sieve.spam_score_max, 15.0);
        for (bad, key) in [
            (
                "redirect_sender = \"rewrite\"",
                "expected `srs` or `original`",
            ),
            (
                "spam_score_header = \"X-Spam Score\"",
                "sieve.spam_score_header",
            ),
            ("virus_header = \"X-Virus:\"", "sieve.virus_header"),
            ("spam_score_max = 0.0", "sieve.spam_score_max"),
            ("srs_max_age_days = 0", "sieve.srs_max_age_days"),
        ] {
            let e = Config::parse(&format!("[sieve]\n{bad}\n"), "t")
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{bad}: {e}");
        }
    }

    #[test]
    fn empty_is_valid_and_safe() {
        let c = Config::parse("", "t").unwrap();
        assert!(c.listen.all().is_empty());
        assert!(!c.auth.allow_plaintext_on_loopback);
        assert_eq!(c.storage_url(), "sqlite:///var/lib/outpost/outpost.db");
    }

    #[test]
    fn syntax_error_is_one_line() {
        let e = Config::parse("hostname = \"a\"\n[listen\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(!e.contains('\n'), "{e}");
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn unknown_key_is_named() {
        let e = Config::parse("[listen]\nsmpt = [\"127.0.0.1:25\"]\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("smpt"), "{e}");
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn bad_address_is_named() {
        let e = Config::parse("[listen]\nimap = [\"nowhere\"]\n", "t.toml")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn starter_config_parses() {
        let c = Config::parse(
            &starter_config("mail.example.org", Path::new("/srv/outpost")),
            "starter",
        )
        .unwrap();
        assert_eq!(c.hostname, "mail.example.org");
        assert!(!c.listen.all().is_empty());
    }

    #[test]
    fn duplicate_listener() {
        let e = Config::parse(
            "[listen]\nimap=[\"127.0.0.1:143\"]\npop3=[\"127.0.0.1:143\"]\n",
            "t",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("listen.pop3"), "{e}");
    }

    #[test]
    fn directory_section() {
        let c = Config::parse("", "t").unwrap();
        assert_eq!(c.directory.source, DirectorySource::Internal);
        let ok = "[directory]\nsource = \"ldap\"\nurl = \"ldaps://dc1.example.org\"\n\
                  base_dn = \"DC=example,DC=org\"\nbind_dn = \"CN=outpost,CN=Users,DC=example,DC=org\"\n\
                  bind_password_file = \"/etc/outpost/ldap.pw\"\npreset = \"openldap\"\n";
        let c = Config::parse(ok, "t").unwrap();
        assert_eq!(c.directory.preset, DirectoryPreset::Openldap);
        assert!(c.directory.tls_verify && c.directory.starttls);
        let e = Config::parse("[directory]\nsource = \"ldap\"\n", "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("directory.url"), "{e}");
        let e = Config::parse(&ok.replace("ldaps://", "http://"), "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("ldap://host"), "{e}");
        let e = Config::parse(&format!("{ok}bind_password_env = \"PW\"\n"), "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("exactly one"), "{e}");
        let e = Config::parse("[directory]\nsource = \"ad\"\n", "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn half_tls() {
        let e = Config::parse("[tls]\ncert=\"/x\"\n", "t")
            .unwrap_err()
            .to_string();
        assert!(e.contains("tls.key"), "{e}");
    }

    #[test]
    fn sweep_durations() {
        let c = Config::parse("", "t").unwrap();
        assert_eq!(c.storage.sweep_interval().as_secs(), 300);
        assert_eq!(c.storage.sweep_grace().as_secs(), 3600);
        assert_eq!(c.storage.journal_keep().as_secs(), 90 * 86400);
        let c = Config::parse(
            "[storage]\nsweep_interval = \"30s\"\nsweep_grace = \"0s\"\njournal_keep = \"7d\"\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.storage.sweep_interval().as_secs(), 30);
        assert_eq!(c.storage.sweep_grace().as_secs(), 0);
        assert_eq!(c.storage.journal_keep().as_secs(), 7 * 86400);
        for (conf, key) in [
            ("sweep_interval = \"0s\"", "storage.sweep_interval"),
            ("sweep_interval = \"soon\"", "storage.sweep_interval"),
            ("sweep_grace = \"-1h\"", "storage.sweep_grace"),
            ("journal_keep = \"0d\"", "storage.journal_keep"),
            ("journal_keep = \"a while\"", "storage.journal_keep"),
        ] {
            let e = Config::parse(&format!("[storage]\n{conf}\n"), "t")
                .unwrap_err()
                .to_string();
            assert!(e.contains(key), "{conf}: {e}");
        }
    }
}
