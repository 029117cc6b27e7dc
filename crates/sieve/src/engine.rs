//! The Sieve engine: compiles scripts with `sieve-rs` and runs the global
//! `before` scripts, the user's active script and the global `after`
//! scripts over one message, as Pigeonhole's `sieve_before`/`sieve_after`
//! did: one shared implicit keep, and a `stop` anywhere ends the whole
//! sequence (RFC 6609 include semantics: the sequence is a generated
//! script that includes each in turn).
//!
//! The result is an [`Outcome`]: what to file where, what to send. The
//! engine does no I/O itself; what it must ask the store (does a mailbox
//! exist, was this id seen, an included personal script) goes through
//! [`SieveHost`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use sieve::compiler::grammar::Capability;
use sieve::runtime::RuntimeError;
use sieve::{Compiler, Event, Input, Mailbox, Recipient, Runtime, Script, Sieve};

/// The extensions that work end to end here, in the order ManageSieve
/// lists them. Scripts requiring anything else are refused at upload.
pub const EXTENSIONS: &[&str] = &[
    "fileinto",
    "reject",
    "ereject",
    "envelope",
    "encoded-character",
    "comparator-i;ascii-numeric",
    "copy",
    "body",
    "variables",
    "relational",
    "regex",
    "imap4flags",
    "vacation",
    "vacation-seconds",
    "date",
    "index",
    "mailbox",
    "subaddress",
    "editheader",
    "include",
    "duplicate",
    "enotify",
];

/// Extensions that work only when the matching [`Scanners`] field is set.
pub const SPAM_EXTENSIONS: &[&str] = &["spamtest", "spamtestplus"];
pub const VIRUS_EXTENSIONS: &[&str] = &["virustest"];

/// The SIEVE capability string of an engine without [`Scanners`]
/// (space-separated [`EXTENSIONS`]); see [`Engine::capability`].
pub fn sieve_capability() -> String {
    EXTENSIONS.join(" ")
}

/// Where the spam and virus scanners' verdicts are read from, for
/// spamtest/spamtestplus/virustest (RFC 5235). An extension whose field
/// is not configured is neither advertised nor accepted: without a score
/// it could only ever answer "not tested".
#[derive(Clone, Debug)]
pub struct Scanners {
    /// Header field with the spam score (first number in the topmost one).
    pub spam_header: Option<String>,
    /// Score at and above which a message is certainly spam.
    pub spam_max: f64,
    /// Header field with the virus verdict.
    pub virus_header: Option<String>,
}

impl Default for Scanners {
    fn default() -> Self {
        Scanners {
            spam_header: None,
            spam_max: 10.0,
            virus_header: None,
        }
    }
}

impl Scanners {
    fn extensions(&self) -> Vec<&'static str> {
        let mut v = EXTENSIONS.to_vec();
        if self.spam_header.is_some() {
            v.extend_from_slice(SPAM_EXTENSIONS);
        }
        if self.virus_header.is_some() {
            v.extend_from_slice(VIRUS_EXTENSIONS);
        }
        v
    }

    /// The spam status for `message`: unknown without a configured field
    /// or a number in it; else the score's place between 0 and the max.
    pub fn spam_status(&self, message: &[u8]) -> sieve::SpamStatus {
        let Some(name) = &self.spam_header else {
            return sieve::SpamStatus::Unknown;
        };
        let Some(score) = header_value(message, name)
            .as_deref()
            .and_then(first_number)
        else {
            return sieve::SpamStatus::Unknown;
        };
        if score <= 0.0 {
            sieve::SpamStatus::Ham
        } else if score >= self.spam_max {
            sieve::SpamStatus::Spam
        } else {
            sieve::SpamStatus::MaybeSpam(score / self.spam_max)
        }
    }

    /// The virus status for `message` (RFC 5235 §2.3 values).
    pub fn virus_status(&self, message: &[u8]) -> sieve::VirusStatus {
        let Some(name) = &self.virus_header else {
            return sieve::VirusStatus::Unknown;
        };
        let Some(v) = header_value(message, name) else {
            return sieve::VirusStatus::Unknown;
        };
        let v = v.trim().to_ascii_lowercase();
        if let Ok(n) = v
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap_or("")
            .parse::<u32>()
        {
            return sieve::VirusStatus::from_number(n);
        }
        if v.starts_with("clean") || v.starts_with("no") {
            sieve::VirusStatus::Clean
        } else if v.starts_with("infected") || v.starts_with("virus") || v.starts_with("yes") {
            sieve::VirusStatus::Virus
        } else {
            sieve::VirusStatus::Unknown
        }
    }
}

/// The unfolded value of the first `name:` field in the header section.
fn header_value(message: &[u8], name: &str) -> Option<String> {
    let end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| message.windows(2).position(|w| w == b"\n\n"))
        .unwrap_or(message.len());
    let head = String::from_utf8_lossy(&message[..end]);
    let mut found: Option<String> = None;
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(v) = found.as_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if found.is_some() {
            break;
        }
        if let Some((n, v)) = line.split_once(':') {
            if n.trim_end().eq_ignore_ascii_case(name) {
                found = Some(v.trim().to_string());
            }
        }
    }
    found.map(|v| v.trim().to_string())
}

/// The first decimal number in `s` ("-1.5", "7.3 / 15.0", "Yes, score=7.3").
fn first_number(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let start = b.iter().position(|c| c.is_ascii_digit())?;
    let mut from = start;
    if from > 0 && b[from - 1] == b'-' {
        from -= 1;
    }
    let mut end = start;
    let mut dot = false;
    while end < b.len() && (b[end].is_ascii_digit() || (b[end] == b'.' && !dot)) {
        dot |= b[end] == b'.';
        end += 1;
    }
    s[from..end].trim_end_matches('.').parse().ok()
}

/// Notification methods (RFC 5435) we carry out.
pub const NOTIFY_METHODS: &[&str] = &["mailto"];

/// Name under which the generated sequence script includes the user's
/// active script.
const USER_SCRIPT: &str = "outpost:user";

#[derive(Clone, Debug)]
pub struct EngineLimits {
    /// Instructions one delivery may execute across all scripts.
    pub cpu_limit: usize,
    /// Redirects per delivery (ManageSieve MAXREDIRECTS).
    pub max_redirects: usize,
    /// Generated messages (vacation replies, notifications) per delivery.
    pub max_out_messages: usize,
    /// fileinto actions per delivery; more are ignored (and logged).
    pub max_fileinto: usize,
    /// Largest script accepted, in bytes.
    pub max_script_size: usize,
}

impl Default for EngineLimits {
    fn default() -> Self {
        EngineLimits {
            cpu_limit: 100_000,
            max_redirects: 4,
            max_out_messages: 3,
            max_fileinto: 32,
            max_script_size: 64 * 1024,
        }
    }
}

/// A script refused by the compiler (or requiring an extension that is
/// not supported). `line` is 1-based; 0 when unknown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptError {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for ScriptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.line > 0 {
            write!(f, "line {}: {}", self.line, self.message)
        } else {
            f.write_str(&self.message)
        }
    }
}

impl std::error::Error for ScriptError {}

/// One copy to file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInto {
    /// Mailbox name as the script gave it ("INBOX" for keep).
    pub mailbox: String,
    /// `:specialuse` role (RFC 8579), if given.
    pub special_use: Option<String>,
    /// IMAP flags and keywords ("\\Seen", "$label1").
    pub flags: Vec<String>,
    /// `:create` (RFC 5490): make the mailbox if it is missing.
    pub create: bool,
    /// The message as edited by editheader, when it differs from the
    /// delivered one.
    pub edited: Option<Arc<[u8]>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Redirect {
    pub address: String,
    /// `:copy`: the redirect did not cancel the implicit keep.
    pub copy: bool,
    /// The message as edited by editheader, if it was.
    pub edited: Option<Arc<[u8]>>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vacation {
    /// The envelope sender the reply goes to.
    pub to: String,
    /// The complete reply (From, To, Subject, In-Reply-To, References,
    /// Date, Message-ID, Auto-Submitted: auto-replied, body).
    pub message: Vec<u8>,
    /// `:handle`, or the reason text when none was given: replies are
    /// tracked per (sender, handle).
    pub handle: String,
    /// `:days`/`:seconds` in seconds.
    pub period_secs: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notify {
    /// Recipients from the mailto: URI.
    pub to: Vec<String>,
    /// The complete notification message (Auto-Submitted: auto-notified).
    pub message: Vec<u8>,
}

/// What the scripts decided for one recipient.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Copies to file; empty with `discard` (or when everything was
    /// redirected). The implicit keep appears here as "INBOX".
    pub file_into: Vec<FileInto>,
    /// `discard` ran and cancelled the implicit keep.
    pub discarded: bool,
    /// reject/ereject text (RFC 5429); no copy is filed.
    pub reject: Option<String>,
    pub redirects: Vec<Redirect>,
    pub vacations: Vec<Vacation>,
    pub notifies: Vec<Notify>,
    /// Runtime errors and ignored actions, for the log.
    pub notes: Vec<String>,
}

impl Outcome {
    /// Implicit keep only: INBOX, no flags.
    pub fn keep() -> Outcome {
        Outcome {
            file_into: vec![FileInto {
                mailbox: "INBOX".into(),
                special_use: None,
                flags: Vec::new(),
                create: false,
                edited: None,
            }],
            ..Outcome::default()
        }
    }
}

/// The envelope of the delivery being filtered.
#[derive(Clone, Debug, Default)]
pub struct DeliveryEnvelope {
    /// Envelope sender, "" for the null sender.
    pub from: String,
    /// The recipient address being delivered to.
    pub to: String,
    /// The recipient's display name (vacation From:).
    pub to_name: String,
}

/// What the engine asks of the store while a script runs.
#[async_trait::async_trait]
pub trait SieveHost: Send + Sync {
    /// True if the user has a mailbox of this name (`mailboxexists`).
    async fn mailbox_exists(&self, name: &str) -> bool;
    /// True if the user has a mailbox with this special-use role.
    async fn special_use_exists(&self, role: &str) -> bool;
    /// The `duplicate` test (RFC 7352): true if `id` was seen within
    /// `period_secs`; records it either way.
    async fn duplicate(&self, id: &str, period_secs: u64) -> bool;
    /// A personal script for `include :personal`: (content, updated_at).
    async fn personal_script(&self, name: &str) -> Option<(String, i64)>;
}

/// The user's active script.
#[derive(Clone, Debug)]
pub struct ActiveScript {
    /// Cache key: the principal.
    pub owner: i64,
    pub name: String,
    pub content: String,
    pub updated_at: i64,
}

struct Global {
    name: String,
    script: Arc<Sieve>,
}

/// A compiled user script and the `updated_at` of the source it came from.
type Compiled = (i64, Arc<Sieve>);

pub struct Engine {
    compiler: Compiler,
    runtime: Runtime,
    limits: EngineLimits,
    scanners: Scanners,
    before: Vec<Global>,
    after: Vec<Global>,
    /// The generated sequence scripts: [without user script, with].
    sequence: [Arc<Sieve>; 2],
    /// (owner, script name) → (updated_at, compiled).
    cache: Mutex<HashMap<(i64, String), Compiled>>,
}

fn allowed_capabilities(scanners: &Scanners) -> Vec<Capability> {
    let mut v: Vec<Capability> = scanners
        .extensions()
        .iter()
        .map(|e| Capability::parse(e))
        .collect();
    v.push(Capability::parse("comparator-i;octet"));
    v.push(Capability::parse("comparator-i;ascii-casemap"));
    v
}

impl Engine {
    /// Builds the engine and compiles the global scripts, given as
    /// (name for logs and errors, source). A global script that does not
    /// compile is an error naming it and the line.
    pub fn new(
        hostname: &str,
        limits: EngineLimits,
        before: Vec<(String, String)>,
        after: Vec<(String, String)>,
    ) -> Result<Engine, String> {
        Engine::with_scanners(hostname, limits, Scanners::default(), before, after)
    }

    /// [`Engine::new`] with spam/virus scanner fields, which enable
    /// spamtest, spamtestplus and virustest.
    pub fn with_scanners(
        hostname: &str,
        limits: EngineLimits,
        scanners: Scanners,
        before: Vec<(String, String)>,
        after: Vec<(String, String)>,
    ) -> Result<Engine, String> {
        let compiler = Compiler::new()
            .with_max_script_size(limits.max_script_size)
            .with_max_includes(16);
        let allowed = allowed_capabilities(&scanners);
        let not_allowed: Vec<Capability> = Capability::all()
            .iter()
            .filter(|c| !allowed.contains(c))
            .cloned()
            .collect();
        let runtime = Runtime::new()
            .without_capabilities(not_allowed)
            .with_cpu_limit(limits.cpu_limit)
            .with_max_redirects(limits.max_redirects)
            .with_max_out_messages(limits.max_out_messages)
            .with_max_nested_includes(4)
            .with_valid_notification_uri("mailto")
            .with_local_hostname(hostname.to_string())
            .with_env_variable("name", "Outpost")
            .with_env_variable("version", env!("CARGO_PKG_VERSION"))
            .with_env_variable("domain", hostname.to_string())
            .with_env_variable("host", hostname.to_string())
            .with_env_variable("phase", "during");
        // The sequence script may include more than a user script may.
        let seq_compiler = Compiler::new().with_max_includes(before.len() + after.len() + 2);
        let compile_all = |list: Vec<(String, String)>| -> Result<Vec<Global>, String> {
            list.into_iter()
                .map(|(name, src)| {
                    compile_with(&compiler, &runtime, limits.max_script_size, &src)
                        .map(|script| Global {
                            name: name.clone(),
                            script,
                        })
                        .map_err(|e| format!("sieve script {name}: {e}"))
                })
                .collect()
        };
        let before = compile_all(before)?;
        let after = compile_all(after)?;
        let seq = |with_user: bool| -> Result<Arc<Sieve>, String> {
            let mut src = String::from("require \"include\";\n");
            for i in 0..before.len() {
                src.push_str(&format!("include :global \"outpost:before:{i}\";\n"));
            }
            if with_user {
                src.push_str(&format!("include :global \"{USER_SCRIPT}\";\n"));
            }
            for i in 0..after.len() {
                src.push_str(&format!("include :global \"outpost:after:{i}\";\n"));
            }
            seq_compiler
                .compile(src.as_bytes())
                .map(Arc::new)
                .map_err(|e| format!("sieve sequence: {e}"))
        };
        let sequence = [seq(false)?, seq(true)?];
        Ok(Engine {
            compiler,
            runtime,
            limits,
            scanners,
            before,
            after,
            sequence,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// True when `[sieve] before`/`after` scripts are configured.
    pub fn has_global_scripts(&self) -> bool {
        !self.before.is_empty() || !self.after.is_empty()
    }

    pub fn limits(&self) -> &EngineLimits {
        &self.limits
    }

    /// The SIEVE capability string: exactly the extensions scripts may
    /// require here (ManageSieve's SIEVE capability).
    pub fn capability(&self) -> String {
        self.scanners.extensions().join(" ")
    }

    /// Compiles a script as PUTSCRIPT/CHECKSCRIPT must: syntax errors and
    /// extensions we do not support are refused with their line.
    pub fn compile(&self, source: &str) -> Result<Arc<Sieve>, ScriptError> {
        compile_with(
            &self.compiler,
            &self.runtime,
            self.limits.max_script_size,
            source,
        )
    }

    fn cached(
        &self,
        owner: i64,
        name: &str,
        updated_at: i64,
        source: &str,
    ) -> Result<Arc<Sieve>, ScriptError> {
        let key = (owner, name.to_string());
        {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((at, s)) = cache.get(&key) {
                if *at == updated_at {
                    return Ok(s.clone());
                }
            }
        }
        let s = self.compile(source)?;
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(key, (updated_at, s.clone()));
        Ok(s)
    }

    /// Runs the script sequence over `message` for one recipient. Never
    /// fails: a script that does not compile, a runtime error or a limit
    /// reached gives the implicit keep, with the reason in `notes`.
    pub async fn run(
        &self,
        message: &[u8],
        envelope: &DeliveryEnvelope,
        active: Option<&ActiveScript>,
        host: &dyn SieveHost,
    ) -> Outcome {
        let user = match active {
            Some(a) => match self.cached(a.owner, &a.name, a.updated_at, &a.content) {
                Ok(s) => Some(s),
                Err(e) => {
                    let mut o = self.run_inner(message, envelope, None, host).await;
                    o.notes.push(format!(
                        "script {:?} does not compile, skipped: {e}",
                        a.name
                    ));
                    return o;
                }
            },
            None => None,
        };
        if user.is_none() && self.before.is_empty() && self.after.is_empty() {
            return Outcome::keep();
        }
        self.run_inner(
            message,
            envelope,
            user.map(|s| (active.map(|a| a.owner).unwrap_or(0), s)),
            host,
        )
        .await
    }

    async fn run_inner(
        &self,
        message: &[u8],
        envelope: &DeliveryEnvelope,
        user: Option<(i64, Arc<Sieve>)>,
        host: &dyn SieveHost,
    ) -> Outcome {
        let owner = user.as_ref().map(|u| u.0).unwrap_or(0);
        let mut ctx = self
            .runtime
            .filter(message)
            .with_envelope(sieve::Envelope::From, envelope.from.as_str())
            .with_envelope(sieve::Envelope::To, envelope.to.as_str())
            .with_user_address(envelope.to.as_str())
            .with_user_full_name(&envelope.to_name)
            .with_spam_status(self.scanners.spam_status(message))
            .with_virus_status(self.scanners.virus_status(message));
        let seq = self.sequence[user.is_some() as usize].clone();
        let mut input = Input::script(Script::Global("outpost:sequence".into()), seq);
        let mut out = Outcome::default();
        let mut created: HashMap<usize, Arc<[u8]>> = HashMap::new();
        let mut pending_vacation: Option<(String, u64)> = None;
        let mut vacation_ids: HashMap<usize, (String, u64)> = HashMap::new();
        let mut failed = false;
        let from_lc = envelope.from.to_ascii_lowercase();
        let edited = |created: &HashMap<usize, Arc<[u8]>>, id: usize| {
            if id == 0 {
                None
            } else {
                created.get(&id).cloned()
            }
        };
        while let Some(result) = ctx.run(input) {
            input = Input::True;
            let event = match result {
                Ok(e) => e,
                Err(e) => {
                    out.notes.push(format!("runtime error: {}", describe(&e)));
                    failed = true;
                    // The context queues its final (implicit) keep; we
                    // replace the whole outcome with the implicit keep.
                    continue;
                }
            };
            match event {
                Event::IncludeScript { name, optional } => {
                    match self
                        .resolve_include(&name, owner, user.as_ref().map(|u| &u.1), host)
                        .await
                    {
                        Some(script) => input = Input::Script { name, script },
                        None if optional => input = Input::False,
                        None => {
                            out.notes
                                .push(format!("included script {name:?} not found"));
                            failed = true;
                            break;
                        }
                    }
                }
                Event::MailboxExists {
                    mailboxes,
                    special_use,
                } => {
                    let mut all = true;
                    for m in &mailboxes {
                        let ok = match m {
                            Mailbox::Name(n) => host.mailbox_exists(n).await,
                            Mailbox::Id(_) => false,
                        };
                        if !ok {
                            all = false;
                            break;
                        }
                    }
                    if all {
                        for su in &special_use {
                            if !host.special_use_exists(su).await {
                                all = false;
                                break;
                            }
                        }
                    }
                    input = all.into();
                }
                Event::ListContains { .. } => input = Input::False,
                Event::DuplicateId { id, expiry, .. } => {
                    let vac_prefix = format!("_v{from_lc}");
                    if let Some(handle) = id.strip_prefix(&vac_prefix) {
                        // The vacation test: the store decides (and records)
                        // when the reply is queued; here "not yet replied".
                        pending_vacation = Some((handle.to_string(), expiry));
                        input = Input::False;
                    } else {
                        input = host.duplicate(&id, expiry).await.into();
                    }
                }
                Event::SetEnvelope { .. } => {}
                Event::Function { .. } => {
                    input = Input::result(sieve::runtime::Variable::default())
                }
                Event::CreatedMessage {
                    message_id,
                    message,
                } => {
                    if let Some(v) = pending_vacation.take() {
                        vacation_ids.insert(message_id, v);
                    }
                    created.insert(message_id, Arc::from(message));
                }
                Event::Keep { flags, message_id } => {
                    out.file_into.push(FileInto {
                        mailbox: "INBOX".into(),
                        special_use: None,
                        flags,
                        create: false,
                        edited: edited(&created, message_id),
                    });
                }
                Event::FileInto {
                    folder,
                    flags,
                    special_use,
                    create,
                    message_id,
                    ..
                } => {
                    if vacation_ids.contains_key(&message_id) {
                        out.notes.push("vacation :fcc ignored".into());
                    } else if out.file_into.len() >= self.limits.max_fileinto {
                        out.notes.push(format!(
                            "fileinto {folder:?} ignored: more than {} copies",
                            self.limits.max_fileinto
                        ));
                    } else {
                        out.file_into.push(FileInto {
                            mailbox: folder,
                            special_use,
                            flags,
                            create,
                            edited: edited(&created, message_id),
                        });
                    }
                }
                Event::Discard => out.discarded = true,
                Event::Reject { reason, .. } => out.reject = Some(reason),
                Event::SendMessage {
                    recipient,
                    message_id,
                    ..
                } => {
                    let to = match recipient {
                        Recipient::Address(a) => a,
                        Recipient::List(l) => l,
                        Recipient::Group(g) => {
                            // enotify's mailto (RFC 5436) sends to a group.
                            if let Some(m) = created.get(&message_id) {
                                out.notifies.push(Notify {
                                    to: g,
                                    message: m.to_vec(),
                                });
                            }
                            continue;
                        }
                    };
                    if let Some((handle, period)) = vacation_ids.remove(&message_id) {
                        if let Some(m) = created.get(&message_id) {
                            out.vacations.push(Vacation {
                                to,
                                message: m.to_vec(),
                                handle,
                                period_secs: period,
                            });
                        }
                    } else {
                        out.redirects.push(Redirect {
                            address: to,
                            copy: false,
                            edited: edited(&created, message_id),
                        });
                    }
                }
                Event::Notify { method, .. } => {
                    out.notes
                        .push(format!("notify method {method:?} not supported"));
                }
            }
        }
        if !out.vacations.is_empty() {
            if let Some(why) = no_auto_reply(message, &envelope.from) {
                out.vacations.clear();
                out.notes.push(format!("vacation not sent: {why}"));
            }
        }
        if failed {
            let mut keep = Outcome::keep();
            keep.notes = out.notes;
            return keep;
        }
        // A redirect that did not cancel the implicit keep was a :copy.
        let kept = out.file_into.iter().any(|f| f.mailbox == "INBOX");
        for r in &mut out.redirects {
            r.copy = kept;
        }
        if out.reject.is_some() {
            out.file_into.clear();
        }
        out
    }

    async fn resolve_include(
        &self,
        name: &Script,
        owner: i64,
        user: Option<&Arc<Sieve>>,
        host: &dyn SieveHost,
    ) -> Option<Arc<Sieve>> {
        match name {
            Script::Global(n) if n == USER_SCRIPT => user.cloned(),
            Script::Global(n) => {
                if let Some(i) = n.strip_prefix("outpost:before:") {
                    return self
                        .before
                        .get(i.parse::<usize>().ok()?)
                        .map(|g| g.script.clone());
                }
                if let Some(i) = n.strip_prefix("outpost:after:") {
                    return self
                        .after
                        .get(i.parse::<usize>().ok()?)
                        .map(|g| g.script.clone());
                }
                self.before
                    .iter()
                    .chain(&self.after)
                    .find(|g| &g.name == n)
                    .map(|g| g.script.clone())
            }
            Script::Personal(n) => {
                let (src, at) = host.personal_script(n).await?;
                self.cached(owner, n, at, &src).ok()
            }
        }
    }
}

fn compile_with(
    compiler: &Compiler,
    runtime: &Runtime,
    max_size: usize,
    source: &str,
) -> Result<Arc<Sieve>, ScriptError> {
    if source.len() > max_size {
        return Err(ScriptError {
            line: 0,
            message: format!("script is larger than {max_size} bytes"),
        });
    }
    let script = compiler
        .compile(source.as_bytes())
        .map_err(|e| ScriptError {
            line: e.line_num(),
            message: e.to_string(),
        })?;
    let script = Arc::new(script);
    // The runtime checks `require` when the script starts: run it once
    // over an empty message up to its first event to catch extensions that
    // compile but are not supported here.
    let mut ctx = runtime.filter(b"\r\n");
    if let Some(Err(e)) = ctx.run(Input::script(
        Script::Personal("check".into()),
        script.clone(),
    )) {
        let ext = match e {
            RuntimeError::CapabilityNotAllowed(c) => Some(c.to_string()),
            RuntimeError::CapabilityNotSupported(c) => Some(c),
            _ => None,
        };
        if let Some(ext) = ext {
            return Err(ScriptError {
                line: line_of(source, &format!("\"{ext}\"")),
                message: format!("extension \"{ext}\" is not supported"),
            });
        }
    }
    Ok(script)
}

/// RFC 5230 §4.5 and RFC 3834 §2: never answer the null sender, mailer
/// daemons, mailing lists, bulk or automatically submitted mail. Returns
/// why not, or `None` when a reply is allowed.
pub fn no_auto_reply(message: &[u8], envelope_from: &str) -> Option<&'static str> {
    let from = envelope_from.to_ascii_lowercase();
    if from.is_empty() || from == "<>" {
        return Some("null sender");
    }
    let local = from.split('@').next().unwrap_or("");
    if local == "mailer-daemon"
        || local == "postmaster"
        || local.starts_with("owner-")
        || local.ends_with("-request")
    {
        return Some("sender is a daemon or list address");
    }
    let end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .or_else(|| message.windows(2).position(|w| w == b"\n\n"))
        .unwrap_or(message.len());
    let head = String::from_utf8_lossy(&message[..end]);
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = fields.last_mut() {
                last.1.push_str(line.trim());
            }
        } else if let Some((n, v)) = line.split_once(':') {
            fields.push((n.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase()));
        }
    }
    for (name, value) in &fields {
        match name.as_str() {
            "auto-submitted" if value != "no" => return Some("auto-submitted message"),
            "precedence" if ["bulk", "list", "junk"].contains(&value.as_str()) => {
                return Some("bulk or list precedence")
            }
            n if n.starts_with("list-") => return Some("mailing list message"),
            "x-auto-response-suppress" if value.contains("all") || value.contains("oof") => {
                return Some("auto responses suppressed")
            }
            _ => {}
        }
    }
    None
}

fn describe(e: &RuntimeError) -> String {
    match e {
        RuntimeError::TooManyIncludes => "too many nested includes".into(),
        RuntimeError::CPULimitReached => "CPU limit reached".into(),
        RuntimeError::InvalidInstruction(i) => format!(
            "invalid instruction {:?} at line {}",
            i.name(),
            i.line_num()
        ),
        RuntimeError::ScriptErrorMessage(m) => format!("error {m:?}"),
        RuntimeError::CapabilityNotAllowed(c) => format!("extension {c} not allowed"),
        RuntimeError::CapabilityNotSupported(c) => format!("extension {c} not supported"),
    }
}

/// The 1-based line where `needle` first occurs (1 if nowhere).
fn line_of(source: &str, needle: &str) -> usize {
    source
        .find(needle)
        .map(|p| source[..p].matches('\n').count() + 1)
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Host {
        mailboxes: Vec<&'static str>,
        scripts: Vec<(&'static str, &'static str)>,
        seen: Mutex<Vec<String>>,
    }

    #[async_trait::async_trait]
    impl SieveHost for Host {
        async fn mailbox_exists(&self, name: &str) -> bool {
            self.mailboxes.iter().any(|m| m.eq_ignore_ascii_case(name))
        }
        async fn special_use_exists(&self, role: &str) -> bool {
            role == "\\Junk"
        }
        async fn duplicate(&self, id: &str, _period: u64) -> bool {
            let mut seen = self.seen.lock().unwrap();
            if seen.iter().any(|s| s == id) {
                true
            } else {
                seen.push(id.to_string());
                false
            }
        }
        async fn personal_script(&self, name: &str) -> Option<(String, i64)> {
            self.scripts
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, s)| (s.to_string(), 1))
        }
    }

    const MSG: &[u8] = b"From: Ann <ann@outside.example>\r\nTo: bob@example.org\r\nSubject: Hello there\r\nMessage-ID: <m1@outside.example>\r\nX-Spam-Flag: YES\r\n\r\nHi Bob, the tps report.\r\n";

    fn env() -> DeliveryEnvelope {
        DeliveryEnvelope {
            from: "ann@outside.example".into(),
            to: "bob@example.org".into(),
            to_name: "Bob".into(),
        }
    }

    fn engine() -> Engine {
        Engine::new("mail.example.org", EngineLimits::default(), vec![], vec![]).unwrap()
    }

    async fn run_with(e: &Engine, script: &str, host: &Host) -> Outcome {
        let active = ActiveScript {
            owner: 1,
            // The cache keys on (owner, name, updated_at): one name per text.
            name: script.into(),
            content: script.into(),
            updated_at: 1,
        };
        e.run(MSG, &env(), Some(&active), host).await
    }

    async fn run(script: &str) -> Outcome {
        run_with(&engine(), script, &Host::default()).await
    }

    fn boxes(o: &Outcome) -> Vec<&str> {
        o.file_into.iter().map(|f| f.mailbox.as_str()).collect()
    }

    #[tokio::test]
    async fn no_script_is_implicit_keep() {
        let o = engine().run(MSG, &env(), None, &Host::default()).await;
        assert_eq!(o, Outcome::keep());
    }

    #[tokio::test]
    async fn fileinto_flags_and_create() {
        let o = run(r#"require ["fileinto", "imap4flags", "mailbox", "body"];
            if body :contains "tps" { fileinto :create :flags ["\\Seen", "$tps"] "Reports/TPS"; }"#)
        .await;
        assert_eq!(boxes(&o), ["Reports/TPS"]);
        assert!(o.file_into[0].create);
        assert_eq!(o.file_into[0].flags, ["\\Seen", "$tps"]);
        let o = run(r#"require ["fileinto", "copy"]; fileinto :copy "A";"#).await;
        assert_eq!(boxes(&o), ["A", "INBOX"]);
    }

    #[tokio::test]
    async fn discard_reject_and_keep_flags() {
        assert!(run("discard;").await.file_into.is_empty());
        assert!(run("discard;").await.discarded);
        let o = run(r#"require "reject"; reject "go away";"#).await;
        assert_eq!(o.reject.as_deref(), Some("go away"));
        assert!(o.file_into.is_empty());
        let o = run(r#"require "ereject"; ereject "no";"#).await;
        assert_eq!(o.reject.as_deref(), Some("no"));
        let o = run(r#"require "imap4flags"; addflag "\\Flagged"; keep;"#).await;
        assert_eq!(boxes(&o), ["INBOX"]);
        assert_eq!(o.file_into[0].flags, ["\\Flagged"]);
    }

    #[tokio::test]
    async fn redirect_with_and_without_copy() {
        let o = run(r#"redirect "carol@example.org";"#).await;
        assert_eq!(o.redirects.len(), 1);
        assert_eq!(o.redirects[0].address, "carol@example.org");
        assert!(o.file_into.is_empty());
        let o = run(r#"require "copy"; redirect :copy "carol@example.org";"#).await;
        assert_eq!(o.redirects.len(), 1);
        assert!(o.redirects[0].copy);
        assert_eq!(boxes(&o), ["INBOX"]);
    }

    #[tokio::test]
    async fn vacation_reply_with_handle_and_period() {
        let o = run(r#"require ["vacation", "vacation-seconds"];
            vacation :seconds 3600 :handle "away" :subject "Out" "I am away.";"#)
        .await;
        assert_eq!(boxes(&o), ["INBOX"]);
        assert_eq!(o.vacations.len(), 1);
        let v = &o.vacations[0];
        assert_eq!(v.to, "ann@outside.example");
        assert_eq!(v.handle, "away");
        assert_eq!(v.period_secs, 3600);
        let text = String::from_utf8_lossy(&v.message);
        assert!(text.contains("Auto-Submitted: auto-replied"), "{text}");
        assert!(text.contains("Subject: Out"), "{text}");
        assert!(text.contains("In-Reply-To: <m1@outside.example>"), "{text}");
        assert!(text.contains("I am away."), "{text}");
        let o = run(r#"require "vacation"; vacation :days 7 "Away.";"#).await;
        assert_eq!(o.vacations[0].period_secs, 7 * 86400);
        assert_eq!(o.vacations[0].handle, "Away.");
    }

    #[tokio::test]
    async fn vacation_skips_bulk_lists_and_auto_submitted() {
        let e = engine();
        let script = r#"require "vacation"; vacation "Away.";"#;
        let active = ActiveScript {
            owner: 1,
            name: "v".into(),
            content: script.into(),
            updated_at: 1,
        };
        for extra in [
            "Precedence: bulk\r\n",
            "List-Id: <l.example>\r\n",
            "Auto-Submitted: auto-generated\r\n",
        ] {
            let msg = format!(
                "{extra}From: ann@outside.example\r\nTo: bob@example.org\r\nSubject: x\r\n\r\nbody\r\n"
            );
            let o = e
                .run(msg.as_bytes(), &env(), Some(&active), &Host::default())
                .await;
            assert!(o.vacations.is_empty(), "{extra}");
        }
        let mut null = env();
        null.from = String::new();
        let o = e.run(MSG, &null, Some(&active), &Host::default()).await;
        assert!(o.vacations.is_empty());
    }

    #[tokio::test]
    async fn variables_regex_relational_envelope_subaddress_date_index() {
        let o = run(r#"require ["fileinto", "variables", "regex"];
            if header :regex "subject" "^(Hello) (.*)$" { fileinto "x-${2}"; }"#)
        .await;
        assert_eq!(boxes(&o), ["x-there"]);
        let o = run(
            r#"require ["fileinto", "relational", "comparator-i;ascii-numeric"];
            if header :count "ge" :comparator "i;ascii-numeric" "to" "1" { fileinto "counted"; }"#,
        )
        .await;
        assert_eq!(boxes(&o), ["counted"]);
        let o = run(r#"require ["fileinto", "envelope", "subaddress"];
            if envelope :domain "from" "outside.example" { fileinto "env"; }
            if envelope :user "to" "bob" { fileinto "user"; }
            if envelope :detail "to" "" { fileinto "nodetail"; }"#)
        .await;
        // RFC 5233 §4: without a separator, :detail tests fail.
        assert_eq!(boxes(&o), ["env", "user"]);
        let o = run(r#"require ["fileinto", "date", "index", "relational"];
            if currentdate :value "ge" "year" "2020" { fileinto "now"; }
            if header :index 1 :is "subject" "Hello there" { fileinto "idx"; }"#)
        .await;
        assert_eq!(boxes(&o), ["now", "idx"]);
    }

    #[tokio::test]
    async fn editheader_changes_the_filed_copy() {
        let o = run(r#"require ["editheader"]; addheader "X-Filtered" "yes"; keep;"#).await;
        assert_eq!(boxes(&o), ["INBOX"]);
        let edited = o.file_into[0].edited.clone().expect("edited copy");
        assert!(String::from_utf8_lossy(&edited).contains("X-Filtered: yes"));
    }

    #[tokio::test]
    async fn mailboxexists_duplicate_and_notify() {
        let host = Host {
            mailboxes: vec!["INBOX", "Lists"],
            ..Host::default()
        };
        let e = engine();
        let o = run_with(
            &e,
            r#"require ["fileinto", "mailbox"];
            if mailboxexists "Lists" { fileinto "yes"; }
            if mailboxexists "Nope" { fileinto "no"; }"#,
            &host,
        )
        .await;
        assert_eq!(boxes(&o), ["yes"]);
        let dup = r#"require ["duplicate", "fileinto"]; if duplicate { fileinto "dups"; }"#;
        assert_eq!(boxes(&run_with(&e, dup, &host).await), ["INBOX"]);
        assert_eq!(boxes(&run_with(&e, dup, &host).await), ["dups"]);
        let o = run(r#"require "enotify"; notify :message "new mail" "mailto:alert@example.org";"#)
            .await;
        assert_eq!(o.notifies.len(), 1);
        assert_eq!(o.notifies[0].to, ["alert@example.org"]);
        let text = String::from_utf8_lossy(&o.notifies[0].message);
        assert!(text.contains("new mail"), "{text}");
        assert!(o.redirects.is_empty());
    }

    #[tokio::test]
    async fn include_personal() {
        let host = Host {
            scripts: vec![("lib", r#"require "fileinto"; fileinto "from-lib";"#)],
            ..Host::default()
        };
        let o = run_with(
            &engine(),
            r#"require "include"; include :personal "lib";"#,
            &host,
        )
        .await;
        assert_eq!(boxes(&o), ["from-lib"]);
        let o = run_with(
            &engine(),
            r#"require "include"; include :personal "missing";"#,
            &host,
        )
        .await;
        assert_eq!(
            o,
            Outcome {
                notes: o.notes.clone(),
                ..Outcome::keep()
            }
        );
        assert!(!o.notes.is_empty());
    }

    #[tokio::test]
    async fn before_and_after_scripts() {
        let spam = r#"require "fileinto"; if header :contains "X-Spam-Flag" "YES" { fileinto "Junk"; stop; }"#;
        let after = r#"require "fileinto"; fileinto :copy "Archive";"#;
        let e = Engine::new(
            "h",
            EngineLimits::default(),
            vec![("spam.sieve".into(), spam.into())],
            vec![(
                "after.sieve".into(),
                r#"require ["fileinto", "copy"]; fileinto :copy "Archive";"#.into(),
            )],
        )
        .unwrap();
        let _ = after;
        // The spam script stops: neither the user's script nor after runs.
        let o = run_with(
            &e,
            r#"require "fileinto"; fileinto "User";"#,
            &Host::default(),
        )
        .await;
        assert_eq!(boxes(&o), ["Junk"]);
        // Without the flag: user script, then after; implicit keep cancelled by the user.
        let clean = b"From: a@b.example\r\nSubject: s\r\n\r\nx\r\n";
        let active = ActiveScript {
            owner: 1,
            name: "u".into(),
            content: r#"require "fileinto"; fileinto "User";"#.into(),
            updated_at: 1,
        };
        let o = e.run(clean, &env(), Some(&active), &Host::default()).await;
        assert_eq!(boxes(&o), ["User", "Archive"]);
        // No user script: after still runs, implicit keep stays.
        let o = e.run(clean, &env(), None, &Host::default()).await;
        assert_eq!(boxes(&o), ["Archive", "INBOX"]);
        assert!(Engine::new(
            "h",
            EngineLimits::default(),
            vec![("bad".into(), "if {".into())],
            vec![]
        )
        .is_err());
    }

    #[tokio::test]
    async fn errors_keep_and_limits() {
        let o = run(r#"require ["variables"]; set "a" "b"; error "boom";"#).await;
        // `error` is not enabled: refused at compile; at delivery a broken
        // script is skipped and the message kept.
        assert_eq!(boxes(&o), ["INBOX"]);
        let limits = EngineLimits {
            cpu_limit: 50,
            ..Default::default()
        };
        let e = Engine::new("h", limits, vec![], vec![]).unwrap();
        let mut src = String::from("require \"fileinto\";\n");
        for _ in 0..100 {
            src.push_str("if header :contains \"subject\" \"zzz\" { discard; }\n");
        }
        src.push_str("fileinto \"late\";\n");
        let o = run_with(&e, &src, &Host::default()).await;
        assert_eq!(boxes(&o), ["INBOX"]);
        assert!(o.notes.iter().any(|n| n.contains("CPU")), "{:?}", o.notes);
        let o = run(r#"redirect "a@x.example"; redirect "b@x.example"; redirect "c@x.example"; redirect "d@x.example"; redirect "e@x.example";"#).await;
        assert!(o.redirects.len() <= 4);
    }

    #[tokio::test]
    async fn spamtest_and_virustest_from_scanner_fields() {
        let scanners = Scanners {
            spam_header: Some("X-Spam-Score".into()),
            spam_max: 15.0,
            virus_header: Some("X-Virus-Status".into()),
        };
        let e =
            Engine::with_scanners("h", EngineLimits::default(), scanners, vec![], vec![]).unwrap();
        assert!(e.capability().contains("spamtestplus"));
        assert!(e.capability().contains("virustest"));
        assert!(!engine().capability().contains("spamtest"));
        let script = r#"require ["spamtestplus", "virustest", "fileinto", "relational", "comparator-i;ascii-numeric"];
            if virustest :value "eq" :comparator "i;ascii-numeric" "5" { fileinto "Virus"; stop; }
            if spamtest :value "eq" :comparator "i;ascii-numeric" "0" { fileinto "Untested"; stop; }
            if spamtest :percent :value "ge" :comparator "i;ascii-numeric" "50" { fileinto "Junk"; stop; }
            if spamtest :value "eq" :comparator "i;ascii-numeric" "1" { fileinto "Clean"; stop; }
            fileinto "Maybe";"#;
        let active = ActiveScript {
            owner: 1,
            name: "s".into(),
            content: script.into(),
            updated_at: 1,
        };
        let run = |head: &str| {
            let msg = format!("{head}From: a@b.example\r\nSubject: s\r\n\r\nx\r\n");
            let e = &e;
            let active = &active;
            async move {
                let o = e
                    .run(msg.as_bytes(), &env(), Some(active), &Host::default())
                    .await;
                assert!(o.notes.is_empty(), "{:?}", o.notes);
                o.file_into[0].mailbox.clone()
            }
        };
        assert_eq!(run("").await, "Untested");
        assert_eq!(run("X-Spam-Score: 9.1\r\n").await, "Junk");
        assert_eq!(run("X-Spam-Score: 30\r\n").await, "Junk");
        assert_eq!(run("X-Spam-Score: -0.4\r\n").await, "Clean");
        assert_eq!(run("X-Spam-Score: 2.0\r\n").await, "Maybe");
        assert_eq!(run("X-Spam-Score: none\r\n").await, "Untested");
        assert_eq!(
            run("X-Virus-Status: Infected (Eicar-Test-Signature)\r\nX-Spam-Score: 0\r\n").await,
            "Virus"
        );
        assert_eq!(
            run("X-Virus-Status: Clean\r\nX-Spam-Score: 0\r\n").await,
            "Clean"
        );
        // Not configured: refused at upload.
        assert!(engine().compile("require \"spamtest\";\nkeep;\n").is_err());
        assert!(e.compile("require \"spamtest\";\nkeep;\n").is_ok());
    }

    #[test]
    fn numbers_in_scanner_fields() {
        assert_eq!(first_number("7.3"), Some(7.3));
        assert_eq!(first_number("-1.5"), Some(-1.5));
        assert_eq!(first_number("Yes, score=7.3 required=5.0"), Some(7.3));
        assert_eq!(first_number("default: False [3.50 / 15.00]"), Some(3.5));
        assert_eq!(first_number("12."), Some(12.0));
        assert_eq!(first_number("none"), None);
        let m = b"A: 1\r\nX-Spam-Score: \r\n 4.5\r\nX-Spam-Score: 99\r\n\r\nX-Spam-Score: 1\r\n";
        assert_eq!(header_value(m, "x-spam-score").as_deref(), Some("4.5"));
        assert_eq!(header_value(m, "b"), None);
    }

    #[test]
    fn compile_errors_have_lines() {
        let e = engine();
        let err = e
            .compile("require \"fileinto\";\n\nfileinto \"x\"\nkeep;\n")
            .unwrap_err();
        assert_eq!(err.line, 4, "{err}");
        let err = e.compile("keep;\nrequire \"spamtest\";\n").unwrap_err();
        assert!(err.line >= 1, "{err}");
        let err = e
            .compile("# c\nrequire [\"fileinto\",\n \"foreverypart\"];\nkeep;\n")
            .unwrap_err();
        assert_eq!(err.line, 3, "{err}");
        assert!(err.message.contains("foreverypart"), "{err}");
        let err = e.compile("if true {\n").unwrap_err();
        assert!(err.line >= 1);
        assert!(e.compile(&"#".repeat(70_000)).is_err());
        for ext in EXTENSIONS {
            e.compile(&format!("require \"{ext}\";\n")).unwrap();
        }
    }
}
