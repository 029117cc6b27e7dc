//! The IMAP session: NotAuthenticated → Authenticated → Selected →
//! Logout. Turns parsed commands into store calls and responses. The
//! socket loop in [`crate::server`] owns the connection and handles the
//! exchanges that need more client input (STARTTLS, AUTHENTICATE, IDLE).

use std::collections::HashMap;
use std::sync::Arc;

use outpost_mailmeta::flags::{ANSWERED, DELETED, DRAFT, FLAGGED, SEEN};
use outpost_mailmeta::MessageMeta;

use crate::codec::response::{
    Code, Continuation, Data, ESearch, Encoder, ListItem, NamespaceEntry, QuotaResource, Response,
    StatusResponse, StatusValue,
};
use crate::codec::types::*;
use crate::fetch;
use crate::mailbox::{Selected, SyncMode};
use crate::search;
use crate::storage::{
    Expunged, FlagChange, FlagOp, MailboxInfo, MessageInfo, NewMessage, StorageError,
};
use crate::ImapContext;
use outpost_net::auth::sasl::{self, Mechanism, SaslError};
use outpost_net::auth::{AuthUser, LoginOutcome};

/// SORT, THREAD, ESORT, WITHIN are advertised once the search module
/// evaluates them (it is developed separately).
pub(crate) const SEARCH_EXTENSIONS: bool = true;

/// What the loop must do after a command.
pub(crate) enum Next {
    Continue,
    Logout,
    /// Answered OK; do the TLS handshake now.
    StartTls,
    /// Output is waiting and the command is not finished: write it, then
    /// call [`Session::resume`].
    More,
    /// Answered `+ idling`; wait for DONE.
    Idle(Tag),
    /// AUTHENTICATE that needs client responses: send the mechanism's
    /// challenges, read one line for each, then call
    /// [`Session::auth_exchange`].
    Authenticate(Tag, Mechanism),
}

pub(crate) struct Session {
    pub ctx: Arc<ImapContext>,
    pub net: outpost_net::Session,
    pub tls: bool,
    pub user: Option<Box<AuthUser>>,
    pub sel: Option<Box<Selected>>,
    pub enc: Encoder,
    pub out: Vec<u8>,
    pub condstore: bool,
    pub qresync: bool,
    pub rev2: bool,
    pub bad: u32,
    /// The rest of a long FETCH.
    pending: Option<Box<FetchJob>>,
}

/// Output size at which a long FETCH hands control back to the loop so
/// that it can write (and the session's buffer stays small).
const OUT_CHUNK: usize = 64 * 1024;

/// A FETCH still producing responses; see [`Session::resume`].
pub(crate) struct FetchJob {
    tag: Tag,
    attrs: Vec<FetchAttr>,
    needs: fetch::Needs,
    changed_since: Option<u64>,
    read_only: bool,
    id: i64,
    /// View indices to answer for, ascending.
    idx: Vec<usize>,
    /// Next index into `idx`.
    pos: usize,
    chunk_size: usize,
    /// The loaded rows for `idx[..chunk.end]`.
    chunk: Option<FetchChunk>,
    failed: Option<String>,
    expunge_ok: bool,
}

struct FetchChunk {
    end: usize,
    infos: HashMap<u32, MessageInfo>,
    metas: HashMap<i64, MessageMeta>,
    seen_set: std::collections::HashSet<u32>,
}

fn store_err(tag: &Tag, e: &StorageError) -> StatusResponse {
    let (code, text) = match e {
        StorageError::NotFound(_) => (Code::Nonexistent, "No such mailbox or message"),
        StorageError::Exists(_) => (Code::AlreadyExists, "Already exists"),
        StorageError::Invalid(_) => (Code::Cannot, "Not allowed"),
        StorageError::Full(_) => (Code::Limit, "Storage is full, try again later"),
        StorageError::Conflict => (Code::Cannot, "Conflicting change, try again"),
        StorageError::Unavailable(_) => (Code::Unavailable, "Storage unavailable, try again later"),
        StorageError::Internal(_) => (Code::ServerBug, "Internal storage error"),
    };
    let text = match e {
        StorageError::Invalid(m) => m.clone(),
        _ => text.to_string(),
    };
    StatusResponse::no(Some(tag.clone()), text).with_code(code)
}

fn flag_bits(flags: &[Flag]) -> (i64, Vec<String>) {
    let mut bits = 0;
    let mut kw = Vec::new();
    for f in flags {
        match f {
            Flag::Seen => bits |= SEEN,
            Flag::Answered => bits |= ANSWERED,
            Flag::Flagged => bits |= FLAGGED,
            Flag::Deleted => bits |= DELETED,
            Flag::Draft => bits |= DRAFT,
            Flag::Recent | Flag::Extension(_) => {}
            Flag::Keyword(k) => kw.push(k.as_str().to_string()),
        }
    }
    (bits, kw)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// `%` matches within one level, `*` across levels (RFC 3501 6.3.8).
fn wildcard(pat: &[char], name: &[char]) -> bool {
    match pat.split_first() {
        None => name.is_empty(),
        Some(('*', rest)) => (0..=name.len()).any(|i| wildcard(rest, &name[i..])),
        Some(('%', rest)) => {
            for i in 0..=name.len() {
                if wildcard(rest, &name[i..]) {
                    return true;
                }
                if i < name.len() && name[i] == '/' {
                    return false;
                }
            }
            false
        }
        Some((c, rest)) => name.first() == Some(c) && wildcard(rest, &name[1..]),
    }
}

fn list_match(pattern: &str, name: &str) -> bool {
    // INBOX is case-insensitive, also as the first level of a pattern.
    let mut p = pattern.to_string();
    if p.len() >= 5 && p.is_char_boundary(5) && p[..5].eq_ignore_ascii_case("inbox") {
        let rest = &p[5..];
        if rest.is_empty() || rest.starts_with('/') {
            p = format!("INBOX{rest}");
        }
    }
    let pat: Vec<char> = p.chars().collect();
    let name: Vec<char> = name.chars().collect();
    wildcard(&pat, &name)
}

pub(crate) fn mailbox_id(mb: &MailboxInfo) -> String {
    format!("F{}-{}", mb.id, mb.uidvalidity)
}

fn contains_modseq(k: &SearchKey) -> bool {
    match k {
        SearchKey::ModSeq { .. } => true,
        SearchKey::Not(k) => contains_modseq(k),
        SearchKey::Or(a, b) => contains_modseq(a) || contains_modseq(b),
        SearchKey::And(v) => v.iter().any(contains_modseq),
        _ => false,
    }
}

impl Session {
    pub fn new(ctx: Arc<ImapContext>, net: outpost_net::Session, tls: bool) -> Session {
        Session {
            ctx,
            net,
            tls,
            user: None,
            sel: None,
            enc: Encoder::default(),
            out: Vec::new(),
            condstore: false,
            qresync: false,
            rev2: false,
            bad: 0,
            pending: None,
        }
    }

    pub fn send(&mut self, r: impl Into<Response>) {
        self.enc.encode(&r.into(), &mut self.out);
    }

    fn ok(&mut self, tag: &Tag, text: &str) {
        self.send(StatusResponse::ok(Some(tag.clone()), text));
    }

    fn no(&mut self, tag: &Tag, code: Option<Code>, text: &str) {
        self.send(StatusResponse::no(Some(tag.clone()), text).with_code(code));
    }

    pub fn bad_cmd(&mut self, tag: Option<Tag>, text: &str) {
        self.bad += 1;
        self.send(StatusResponse::bad(tag, text));
    }

    pub fn login_allowed(&self) -> bool {
        self.tls || (self.ctx.allow_plaintext_on_loopback && self.net.is_loopback())
    }

    pub fn capabilities(&self) -> Vec<String> {
        let mut c: Vec<String> = [
            "IMAP4rev1",
            "IMAP4rev2",
            "LITERAL+",
            "SASL-IR",
            "ID",
            "ENABLE",
            "IDLE",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if self.user.is_none() {
            if !self.tls && self.ctx.tls.is_some() {
                c.push("STARTTLS".into());
            }
            if self.login_allowed() {
                c.push("AUTH=PLAIN".into());
                c.push("AUTH=LOGIN".into());
            } else {
                c.push("LOGINDISABLED".into());
            }
        }
        for s in [
            "NAMESPACE",
            "UNSELECT",
            "CHILDREN",
            "UIDPLUS",
            "MOVE",
            "CONDSTORE",
            "QRESYNC",
            "ESEARCH",
            "SEARCHRES",
            "LIST-EXTENDED",
            "LIST-STATUS",
            "SPECIAL-USE",
            "STATUS=SIZE",
            "BINARY",
            "SAVEDATE",
            "OBJECTID",
            "QUOTA",
            "QUOTA=RES-STORAGE",
            "MULTIAPPEND",
        ] {
            c.push(s.into());
        }
        if SEARCH_EXTENSIONS {
            for s in [
                "SORT",
                "SORT=DISPLAY",
                "THREAD=REFERENCES",
                "THREAD=REFS",
                "THREAD=ORDEREDSUBJECT",
                "ESORT",
                "WITHIN",
            ] {
                c.push(s.into());
            }
        }
        c.push(format!("APPENDLIMIT={}", self.ctx.limits.max_literal));
        c
    }

    fn sync_mode(&self, expunge: bool) -> SyncMode {
        SyncMode {
            expunge,
            condstore: self.condstore,
            qresync: self.qresync,
        }
    }

    /// Reports other sessions' changes to the selected mailbox.
    pub async fn sync(&mut self, expunge: bool) {
        let mode = self.sync_mode(expunge);
        let Some(sel) = self.sel.as_mut() else { return };
        let mut data = Vec::new();
        if let Err(e) = sel.sync(self.ctx.storage.as_ref(), mode, &mut data).await {
            tracing::warn!(session = self.net.id, "imap: mailbox sync failed: {e}");
        }
        for d in data {
            self.send(d);
        }
    }

    /// Handles one command; responses go to `self.out` (and, for large
    /// results, straight to `w`).
    pub async fn handle(&mut self, cmd: Command) -> Next {
        let Command { tag, body } = cmd;
        let name = body.name();
        let authed = self.user.is_some();
        let selected = self.sel.is_some();
        // Commands that use sequence numbers must not see EXPUNGEs
        // (RFC 3501 7.4.1); UID variants and the rest may.
        let mut expunge_ok = true;
        let is_move = matches!(body, CommandBody::Move { .. });
        let is_subscribe = matches!(body, CommandBody::Subscribe(_));
        let next = match body {
            CommandBody::Capability => {
                let caps = self.capabilities();
                self.send(Data::Capability(caps));
                self.ok(&tag, "CAPABILITY completed");
                Next::Continue
            }
            CommandBody::Noop | CommandBody::Check => {
                if !authed && matches!(body, CommandBody::Check) {
                    return self.need_auth(&tag);
                }
                self.sync(true).await;
                self.ok(&tag, &format!("{name} completed"));
                return Next::Continue;
            }
            CommandBody::Logout => {
                self.send(StatusResponse::bye(format!(
                    "{} logging out",
                    self.ctx.hostname
                )));
                self.ok(&tag, "LOGOUT completed");
                return Next::Logout;
            }
            CommandBody::Id(_) => {
                self.send(Data::Id(Some(vec![(
                    "name".into(),
                    Some("Outpost".into()),
                )])));
                self.ok(&tag, "ID completed");
                Next::Continue
            }
            CommandBody::StartTls => {
                if self.tls || self.ctx.tls.is_none() {
                    self.bad_cmd(Some(tag), "STARTTLS not available");
                    return Next::Continue;
                }
                if authed {
                    self.bad_cmd(Some(tag), "Already authenticated");
                    return Next::Continue;
                }
                self.ok(&tag, "Begin TLS negotiation now");
                return Next::StartTls;
            }
            CommandBody::Login { username, password } => {
                if authed {
                    self.bad_cmd(Some(tag), "Already authenticated");
                } else if !self.login_allowed() {
                    self.no(&tag, Some(Code::PrivacyRequired), "Use STARTTLS first");
                } else {
                    self.login(&tag, &username, &password).await;
                }
                return Next::Continue;
            }
            CommandBody::Authenticate {
                mechanism,
                initial_response,
            } => {
                if authed {
                    self.bad_cmd(Some(tag), "Already authenticated");
                } else if !self.login_allowed() {
                    self.no(&tag, Some(Code::PrivacyRequired), "Use STARTTLS first");
                } else {
                    match (Mechanism::parse(mechanism.as_str()), initial_response) {
                        (None, _) => self.no(&tag, Some(Code::Cannot), "Unsupported mechanism"),
                        (Some(Mechanism::Plain), Some(ir)) => self.auth_plain(&tag, &ir).await,
                        (Some(m), _) => return Next::Authenticate(tag, m),
                    }
                }
                return Next::Continue;
            }
            _ if !authed => return self.need_auth(&tag),
            CommandBody::Enable(caps) => {
                let mut on = Vec::new();
                for c in caps {
                    let s = c.as_str().to_ascii_uppercase();
                    match s.as_str() {
                        "CONDSTORE" => self.condstore = true,
                        "QRESYNC" => {
                            self.qresync = true;
                            self.condstore = true;
                        }
                        "IMAP4REV2" => self.rev2 = true,
                        _ => continue,
                    }
                    on.push(c.as_str().to_string());
                }
                self.send(Data::Enabled(on));
                self.ok(&tag, "ENABLE completed");
                Next::Continue
            }
            CommandBody::Namespace => {
                self.send(Data::Namespace {
                    personal: vec![NamespaceEntry {
                        prefix: String::new(),
                        delimiter: Some('/'),
                    }],
                    other: vec![],
                    shared: vec![],
                });
                self.ok(&tag, "NAMESPACE completed");
                Next::Continue
            }
            CommandBody::Select {
                mailbox,
                read_only,
                params,
            } => {
                self.select(&tag, mailbox, read_only, params).await;
                return Next::Continue;
            }
            CommandBody::Create {
                mailbox,
                special_use,
            } => {
                self.create(&tag, mailbox, special_use).await;
                Next::Continue
            }
            CommandBody::Delete(mailbox) => {
                self.delete(&tag, mailbox).await;
                Next::Continue
            }
            CommandBody::Rename { from, to } => {
                self.rename(&tag, from, to).await;
                Next::Continue
            }
            CommandBody::Subscribe(mb) | CommandBody::Unsubscribe(mb) => {
                let on = is_subscribe;
                self.subscribe(&tag, mb, on).await;
                Next::Continue
            }
            CommandBody::List(l) => {
                self.list(&tag, l, false).await;
                Next::Continue
            }
            CommandBody::Lsub { reference, pattern } => {
                let l = ListCommand {
                    reference,
                    patterns: vec![pattern],
                    selection: ListSelection {
                        subscribed: true,
                        ..Default::default()
                    },
                    returns: ListReturn::default(),
                };
                self.list(&tag, l, true).await;
                Next::Continue
            }
            CommandBody::Status { mailbox, items } => {
                match self.status(&mailbox, &items).await {
                    Ok(Some(d)) => {
                        self.send(d);
                        self.ok(&tag, "STATUS completed");
                    }
                    Ok(None) => self.no(&tag, Some(Code::Nonexistent), "No such mailbox"),
                    Err(e) => self.send(store_err(&tag, &e)),
                }
                Next::Continue
            }
            CommandBody::Append { mailbox, messages } => {
                self.append(&tag, mailbox, messages).await;
                Next::Continue
            }
            CommandBody::GetQuota(root) => {
                if !root.is_empty() {
                    self.no(&tag, Some(Code::Nonexistent), "No such quota root");
                } else {
                    self.quota(&tag).await;
                }
                Next::Continue
            }
            CommandBody::GetQuotaRoot(mailbox) => {
                let u = self.user.as_ref().unwrap();
                let roots = if u.quota_bytes > 0 {
                    vec![String::new()]
                } else {
                    vec![]
                };
                let has = !roots.is_empty();
                self.send(Data::QuotaRoot { mailbox, roots });
                if has {
                    self.quota(&tag).await;
                } else {
                    self.ok(&tag, "GETQUOTAROOT completed");
                }
                Next::Continue
            }
            CommandBody::SetQuota { .. } => {
                self.no(
                    &tag,
                    Some(Code::NoPerm),
                    "Quotas are set by the administrator",
                );
                Next::Continue
            }
            CommandBody::Idle => return Next::Idle(tag),
            _ if !selected => {
                self.bad_cmd(Some(tag), "No mailbox selected");
                return Next::Continue;
            }
            CommandBody::Close | CommandBody::Unselect => {
                let close = matches!(body, CommandBody::Close);
                let sel = self.sel.take().unwrap();
                if close && !sel.read_only {
                    if let Err(e) = self.ctx.storage.expunge(sel.id, None).await {
                        self.send(store_err(&tag, &e));
                        return Next::Continue;
                    }
                }
                self.ok(&tag, &format!("{name} completed"));
                return Next::Continue;
            }
            CommandBody::Expunge => {
                self.expunge(&tag, None).await;
                Next::Continue
            }
            CommandBody::UidExpunge(set) => {
                self.expunge(&tag, Some(set)).await;
                Next::Continue
            }
            CommandBody::Fetch(FetchCommand {
                uid: false,
                ref set,
                ..
            })
            | CommandBody::Store(StoreCommand {
                uid: false,
                ref set,
                ..
            })
            | CommandBody::Copy {
                uid: false,
                ref set,
                ..
            }
            | CommandBody::Move {
                uid: false,
                ref set,
                ..
            } if !self.sel.as_ref().unwrap().seqset_valid(set) => {
                self.bad_cmd(Some(tag), "Invalid message sequence number");
                return Next::Continue;
            }
            CommandBody::Fetch(f) => {
                expunge_ok = f.uid;
                if let Next::More = self.fetch(&tag, f).await {
                    // The rest follows from `resume`, which syncs at the end.
                    return Next::More;
                }
                Next::Continue
            }
            CommandBody::Store(s) => {
                expunge_ok = s.uid;
                self.store(&tag, s).await;
                Next::Continue
            }
            CommandBody::Copy { uid, set, mailbox } | CommandBody::Move { uid, set, mailbox } => {
                let mv = is_move;
                expunge_ok = uid;
                self.copy(&tag, uid, set, mailbox, mv).await;
                Next::Continue
            }
            CommandBody::Search(s) => {
                expunge_ok = s.uid;
                self.search(&tag, s).await;
                Next::Continue
            }
            CommandBody::Sort(s) if SEARCH_EXTENSIONS => {
                expunge_ok = s.uid;
                self.sort(&tag, s).await;
                Next::Continue
            }
            CommandBody::Thread(t) if SEARCH_EXTENSIONS => {
                expunge_ok = t.uid;
                self.thread(&tag, t).await;
                Next::Continue
            }
            CommandBody::Sort(_) | CommandBody::Thread(_) => {
                self.bad_cmd(Some(tag), "Not supported");
                return Next::Continue;
            }
        };
        self.after_command(expunge_ok).await;
        next
    }

    /// Reports other sessions' changes after a command. Untagged updates
    /// go before the tagged reply, which is the last response the command
    /// wrote; insert them ahead of it.
    async fn after_command(&mut self, expunge_ok: bool) {
        if self.sel.is_none() {
            return;
        }
        // The tagged reply is the last line written (it has no CRLF
        // inside); pull it off, add the updates, put it back.
        let end = self.out.len();
        let pos = if end >= 2 {
            self.out[..end - 2]
                .windows(2)
                .rposition(|w| w == b"\r\n")
                .map(|p| p + 2)
                .unwrap_or(0)
        } else {
            0
        };
        let tail = self.out.split_off(pos);
        self.sync(expunge_ok).await;
        self.out.extend_from_slice(&tail);
    }

    /// Continues a command that answered [`Next::More`] once the loop has
    /// written the output so far.
    pub async fn resume(&mut self) -> Next {
        let Some(job) = self.pending.take() else {
            return Next::Continue;
        };
        let expunge_ok = job.expunge_ok;
        match self.run_fetch(job).await {
            Next::More => Next::More,
            next => {
                self.after_command(expunge_ok).await;
                next
            }
        }
    }

    fn need_auth(&mut self, tag: &Tag) -> Next {
        self.bad_cmd(Some(tag.clone()), "Log in first");
        Next::Continue
    }
}

// ---------------------------------------------------------------------------
// Authentication

impl Session {
    async fn login(&mut self, tag: &Tag, login: &str, password: &str) {
        let ip = self.net.peer.ip();
        match self.ctx.auth.login(ip, login, password).await {
            LoginOutcome::Success(user) => {
                tracing::info!(session = self.net.id, %ip, user = %user.login, "imap: login");
                self.user = Some(Box::new(user));
                self.bad = 0;
                let caps = self.capabilities();
                self.send(
                    StatusResponse::ok(Some(tag.clone()), "Logged in")
                        .with_code(Code::Capability(caps)),
                );
            }
            LoginOutcome::Blocked => {
                tracing::info!(session = self.net.id, %ip, "imap: login blocked by throttle");
                self.bad += 1;
                self.no(
                    tag,
                    Some(Code::Unavailable),
                    "Too many failed logins, try again later",
                );
            }
            LoginOutcome::Failed => {
                tracing::info!(session = self.net.id, %ip, "imap: failed login");
                self.bad += 1;
                self.no(
                    tag,
                    Some(Code::AuthenticationFailed),
                    "Authentication failed",
                );
            }
            LoginOutcome::Unavailable(e) => {
                tracing::warn!(session = self.net.id, "imap: directory unavailable: {e}");
                self.no(
                    tag,
                    Some(Code::Unavailable),
                    "Authentication temporarily unavailable",
                );
            }
        }
    }

    /// IDLE accepted (RFC 2177): `+ idling`, then what is already waiting.
    pub async fn idle_start(&mut self) {
        self.send(Continuation::Text("idling".into()));
        self.sync(true).await;
    }

    /// The line that ends IDLE: `DONE`, or anything else (BAD).
    pub fn idle_done(&mut self, tag: Tag, line: &[u8]) {
        if line.trim_ascii().eq_ignore_ascii_case(b"DONE") {
            self.send(StatusResponse::ok(Some(tag), "IDLE terminated"));
        } else {
            self.bad_cmd(Some(tag), "Expected DONE");
        }
    }

    /// Finishes AUTHENTICATE with the client's base64 lines, one per
    /// challenge (fewer when it cancelled with `*`).
    pub async fn auth_exchange(&mut self, tag: &Tag, mechanism: Mechanism, answers: &[String]) {
        if answers.iter().any(|a| a.trim() == "*") {
            return self.bad_cmd(Some(tag.clone()), "AUTHENTICATE cancelled");
        }
        match mechanism {
            Mechanism::Plain => match answers.first().map(|a| sasl::decode_response(a)) {
                Some(Ok(data)) => self.auth_plain(tag, &data).await,
                _ => self.bad_cmd(Some(tag.clone()), "Invalid base64"),
            },
            Mechanism::Login => {
                let fields: Result<Vec<String>, _> =
                    answers.iter().map(|a| sasl::login_field(a)).collect();
                match fields.as_deref() {
                    Ok([login, password]) if !login.is_empty() => {
                        self.login(tag, login, password).await
                    }
                    _ => self.bad_cmd(Some(tag.clone()), "Malformed LOGIN response"),
                }
            }
        }
    }

    /// SASL PLAIN (RFC 4616) from its decoded response.
    pub async fn auth_plain(&mut self, tag: &Tag, data: &[u8]) {
        match sasl::plain(data) {
            Ok(c) => self.login(tag, &c.login, &c.password).await,
            Err(SaslError::Authzid) => self.no(
                tag,
                Some(Code::AuthorizationFailed),
                "Cannot act as another user",
            ),
            Err(_) => self.bad_cmd(Some(tag.clone()), "Malformed PLAIN response"),
        }
    }
}

// ---------------------------------------------------------------------------
// Mailboxes

impl Session {
    fn principal(&self) -> i64 {
        self.user.as_ref().map(|u| u.principal_id).unwrap_or(0)
    }

    async fn select(&mut self, tag: &Tag, mailbox: Mailbox, read_only: bool, params: SelectParams) {
        if let Some(old) = self.sel.take() {
            drop(old);
            if self.qresync {
                self.send(
                    StatusResponse::ok(None, "Previous mailbox closed").with_code(Code::Closed),
                );
            }
        }
        if params.qresync.is_some() && !self.qresync {
            self.bad_cmd(Some(tag.clone()), "QRESYNC is not enabled");
            return;
        }
        if params.condstore {
            self.condstore = true;
        }
        let store = self.ctx.storage.clone();
        let mb = match store.mailbox(self.principal(), mailbox.as_str()).await {
            Ok(Some(mb)) => mb,
            Ok(None) => return self.no(tag, Some(Code::Nonexistent), "No such mailbox"),
            Err(e) => return self.send(store_err(tag, &e)),
        };
        let mut watch = store.watch(mb.id);
        watch.borrow_and_update();
        // Read the mailbox again after subscribing so no change falls between.
        let snap = match store.snapshot(mb.id).await {
            Ok(Some(s)) => s,
            Ok(None) => return self.no(tag, Some(Code::Nonexistent), "No such mailbox"),
            Err(e) => return self.send(store_err(tag, &e)),
        };
        let first_unseen = snap.first_unseen;
        let uids = snap.uids;
        let mb = snap.mailbox;
        let sel = Selected {
            id: mb.id,
            read_only,
            uidvalidity: mb.uidvalidity as u32,
            uids,
            pending_expunge: Vec::new(),
            modseq: mb.highest_modseq,
            watch,
            saved: Vec::new(),
        };
        let system = vec![
            Flag::Answered,
            Flag::Flagged,
            Flag::Deleted,
            Flag::Seen,
            Flag::Draft,
        ];
        self.send(Data::Flags(system.clone()));
        self.send(Data::Exists(sel.exists()));
        if !self.rev2 {
            self.send(Data::Recent(0));
            if let Some(i) = first_unseen {
                self.send(
                    StatusResponse::ok(None, "First unseen").with_code(Code::Unseen(i as u32 + 1)),
                );
            }
        }
        let (pflags, kw) = if read_only {
            (vec![], false)
        } else {
            (system, true)
        };
        self.send(
            StatusResponse::ok(None, "Flags permitted").with_code(Code::PermanentFlags {
                flags: pflags,
                keywords_allowed: kw,
            }),
        );
        self.send(
            StatusResponse::ok(None, "UIDs valid").with_code(Code::UidValidity(sel.uidvalidity)),
        );
        self.send(
            StatusResponse::ok(None, "Predicted next UID")
                .with_code(Code::UidNext(mb.uidnext as u32)),
        );
        self.send(
            StatusResponse::ok(None, "Highest")
                .with_code(Code::HighestModSeq(mb.highest_modseq as u64)),
        );
        self.send(StatusResponse::ok(None, "Ok").with_code(Code::MailboxId(mailbox_id(&mb))));
        if let Some(q) = params.qresync {
            if q.uid_validity == sel.uidvalidity {
                if let Err(e) = self.qresync_select(&sel, &q, mb.uidnext as u32).await {
                    return self.send(store_err(tag, &e));
                }
            }
        }
        tracing::debug!(session = self.net.id, mailbox = %mb.name, "imap: select");
        self.sel = Some(Box::new(sel));
        let code = if read_only {
            Code::ReadOnly
        } else {
            Code::ReadWrite
        };
        let verb = if read_only { "EXAMINE" } else { "SELECT" };
        self.send(
            StatusResponse::ok(Some(tag.clone()), format!("{verb} completed")).with_code(code),
        );
    }

    /// RFC 7162 3.2.5: VANISHED (EARLIER) for UIDs expunged since the
    /// client's modseq, FETCH for messages changed since.
    async fn qresync_select(
        &mut self,
        sel: &Selected,
        q: &QResyncParams,
        uidnext: u32,
    ) -> Result<(), StorageError> {
        let changes = self
            .ctx
            .storage
            .changes_since(sel.id, q.mod_seq as i64)
            .await?;
        let last = sel.last_uid().max(1);
        let known = |u: u32| match &q.known_uids {
            Some(set) => set.contains(u, last),
            None => true,
        };
        let gone = match changes.expunged {
            Expunged::Uids(expunged) => {
                let gone: Vec<u32> = expunged
                    .iter()
                    .map(|&u| u as u32)
                    .filter(|&u| known(u) && sel.uids.binary_search(&u).is_err())
                    .collect();
                (!gone.is_empty()).then(|| SequenceSet::from_numbers(gone))
            }
            // The journal no longer reaches back to the client's modseq.
            // RFC 7162 3.2.5.2 lets a server that does not know which
            // messages were expunged report every UID the client may hold
            // that does not exist now: the known UIDs it sent, or else all
            // UIDs below UIDNEXT. The client then drops exactly those.
            Expunged::BeforeFloor => {
                let bound = match &q.known_uids {
                    Some(set) => SequenceSet::Ranges(
                        set.resolved(last)
                            .into_iter()
                            .map(|r| SeqRange::new(*r.start(), *r.end()))
                            .collect(),
                    ),
                    None => SequenceSet::range(1, uidnext.saturating_sub(1).max(1)),
                };
                absent_uids(&sel.uids, &bound, last)
            }
        };
        if let Some(uids) = gone {
            self.send(Data::Vanished {
                earlier: true,
                uids,
            });
        }
        for m in &changes.changed {
            if let Some(seq) = sel.seq_of(m.uid as u32) {
                if !known(m.uid as u32) {
                    continue;
                }
                self.send(Data::Fetch {
                    seq,
                    items: vec![
                        crate::codec::response::FetchValue::Uid(m.uid as u32),
                        crate::codec::response::FetchValue::Flags(fetch::flags_of(m)),
                        crate::codec::response::FetchValue::ModSeq(m.modseq as u64),
                    ],
                });
            }
        }
        Ok(())
    }

    async fn create(&mut self, tag: &Tag, mailbox: Mailbox, special_use: Vec<MailboxAttr>) {
        let name = mailbox.as_str().trim_end_matches('/').to_string();
        let store = self.ctx.storage.clone();
        let p = self.principal();
        if name.is_empty() {
            return self.no(tag, Some(Code::Cannot), "Invalid mailbox name");
        }
        match store.mailbox(p, &name).await {
            Ok(Some(_)) => {
                return self.no(tag, Some(Code::AlreadyExists), "Mailbox already exists")
            }
            Ok(None) => {}
            Err(e) => return self.send(store_err(tag, &e)),
        }
        if special_use.len() > 1 || special_use.iter().any(|a| !a.is_special_use()) {
            return self.no(
                tag,
                Some(Code::UseAttr),
                "One special-use attribute at most",
            );
        }
        // Create missing parents first (RFC 3501 6.3.3).
        let mut prefix = String::new();
        let levels: Vec<&str> = name.split('/').collect();
        for (i, level) in levels.iter().enumerate() {
            if i > 0 {
                prefix.push('/');
            }
            prefix.push_str(level);
            let last = i + 1 == levels.len();
            if !last {
                match store.mailbox(p, &prefix).await {
                    Ok(Some(_)) => continue,
                    Ok(None) => {}
                    Err(e) => return self.send(store_err(tag, &e)),
                }
            }
            let su = if last {
                special_use.first().map(|a| a.to_string())
            } else {
                None
            };
            if let Err(e) = store.create_mailbox(p, &prefix, su).await {
                return self.send(store_err(tag, &e));
            }
        }
        self.ok(tag, "CREATE completed");
    }

    async fn delete(&mut self, tag: &Tag, mailbox: Mailbox) {
        if mailbox.is_inbox() {
            return self.no(tag, Some(Code::Cannot), "INBOX cannot be deleted");
        }
        let store = self.ctx.storage.clone();
        match store.mailbox(self.principal(), mailbox.as_str()).await {
            Ok(Some(mb)) => match store.delete_mailbox(mb.id).await {
                Ok(()) => {
                    if self.sel.as_ref().map(|s| s.id) == Some(mb.id) {
                        self.sel = None;
                    }
                    self.ok(tag, "DELETE completed")
                }
                Err(e) => self.send(store_err(tag, &e)),
            },
            Ok(None) => self.no(tag, Some(Code::Nonexistent), "No such mailbox"),
            Err(e) => self.send(store_err(tag, &e)),
        }
    }

    async fn rename(&mut self, tag: &Tag, from: Mailbox, to: Mailbox) {
        let store = self.ctx.storage.clone();
        let p = self.principal();
        match store.mailbox(p, from.as_str()).await {
            Ok(Some(_)) => {}
            Ok(None) => return self.no(tag, Some(Code::Nonexistent), "No such mailbox"),
            Err(e) => return self.send(store_err(tag, &e)),
        }
        match store.mailbox(p, to.as_str()).await {
            Ok(Some(_)) => return self.no(tag, Some(Code::AlreadyExists), "Target mailbox exists"),
            Ok(None) => {}
            Err(e) => return self.send(store_err(tag, &e)),
        }
        match store
            .rename_mailbox(p, from.as_str(), to.as_str().trim_end_matches('/'))
            .await
        {
            Ok(()) => self.ok(tag, "RENAME completed"),
            Err(e) => self.send(store_err(tag, &e)),
        }
    }

    async fn subscribe(&mut self, tag: &Tag, mailbox: Mailbox, on: bool) {
        let store = self.ctx.storage.clone();
        let verb = if on { "SUBSCRIBE" } else { "UNSUBSCRIBE" };
        match store.mailbox(self.principal(), mailbox.as_str()).await {
            Ok(Some(mb)) => match store.set_subscribed(mb.id, on).await {
                Ok(()) => self.ok(tag, &format!("{verb} completed")),
                Err(e) => self.send(store_err(tag, &e)),
            },
            Ok(None) if !on => self.ok(tag, "UNSUBSCRIBE completed"),
            Ok(None) => self.no(tag, Some(Code::Nonexistent), "No such mailbox"),
            Err(e) => self.send(store_err(tag, &e)),
        }
    }

    async fn list(&mut self, tag: &Tag, l: ListCommand, lsub: bool) {
        let verb = if lsub { "LSUB" } else { "LIST" };
        if !lsub && l.patterns.len() == 1 && l.patterns[0].is_empty() {
            self.send(Data::List(ListItem::new(
                Mailbox::new(""),
                Some('/'),
                vec![MailboxAttr::NoSelect],
            )));
            return self.ok(tag, "LIST completed");
        }
        let all = match self.ctx.storage.mailboxes(self.principal()).await {
            Ok(v) => v,
            Err(e) => return self.send(store_err(tag, &e)),
        };
        let patterns: Vec<String> = l
            .patterns
            .iter()
            .map(|p| format!("{}{}", l.reference, p))
            .collect();
        let matches = |name: &str| patterns.iter().any(|p| list_match(p, name));
        let names: std::collections::BTreeMap<&str, &MailboxInfo> =
            all.iter().map(|m| (m.name.as_str(), m)).collect();
        // Parents that are not mailboxes themselves.
        let mut ghosts: std::collections::BTreeSet<String> = Default::default();
        for m in &all {
            let mut n = m.name.as_str();
            while let Some((parent, _)) = n.rsplit_once('/') {
                if !names.contains_key(parent) {
                    ghosts.insert(parent.to_string());
                }
                n = parent;
            }
        }
        let has_children = |name: &str| {
            let prefix = format!("{name}/");
            all.iter().any(|m| m.name.starts_with(&prefix))
        };
        let subscribed_child = |name: &str| {
            let prefix = format!("{name}/");
            all.iter()
                .any(|m| m.subscribed && m.name.starts_with(&prefix))
        };
        let ext = l.is_extended();
        let mut items: Vec<(ListItem, Option<&MailboxInfo>)> = Vec::new();
        let mut candidates: Vec<(String, Option<&MailboxInfo>)> = all
            .iter()
            .map(|m| (m.name.clone(), Some(m)))
            .chain(ghosts.iter().map(|g| (g.clone(), None)))
            .collect();
        candidates.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, mb) in candidates {
            if !matches(&name) {
                continue;
            }
            let mut attrs = Vec::new();
            let mut child_info = false;
            match mb {
                None => {
                    // A ghost parent: shown only when no child matched too
                    // (`%`), or with RECURSIVEMATCH for subscribed children.
                    let prefix = format!("{name}/");
                    let child_matched = all
                        .iter()
                        .any(|m| m.name.starts_with(&prefix) && matches(&m.name));
                    if l.selection.subscribed {
                        if !(l.selection.recursive_match && subscribed_child(&name)) {
                            continue;
                        }
                        child_info = true;
                        attrs.push(MailboxAttr::NonExistent);
                    } else if l.selection.special_use || child_matched {
                        continue;
                    } else if ext {
                        attrs.push(MailboxAttr::NonExistent);
                    } else {
                        attrs.push(MailboxAttr::NoSelect);
                    }
                }
                Some(m) => {
                    if l.selection.subscribed && !m.subscribed {
                        if l.selection.recursive_match && subscribed_child(&name) {
                            child_info = true;
                        } else {
                            continue;
                        }
                    }
                    if l.selection.special_use && m.special_use.is_none() {
                        continue;
                    }
                    if !lsub && (l.selection.subscribed || l.returns.subscribed) && m.subscribed {
                        attrs.push(MailboxAttr::Subscribed);
                    }
                    if !lsub {
                        if let Some(su) = m
                            .special_use
                            .as_deref()
                            .and_then(|s| MailboxAttr::parse(s).ok())
                        {
                            attrs.push(su);
                        }
                    }
                }
            }
            if !lsub {
                attrs.push(if has_children(&name) {
                    MailboxAttr::HasChildren
                } else {
                    MailboxAttr::HasNoChildren
                });
            }
            let mut item = ListItem::new(Mailbox::new(name), Some('/'), attrs);
            item.child_info_subscribed = child_info && ext;
            items.push((item, mb));
        }
        let status_items = l.returns.status.clone();
        for (item, mb) in items {
            let selectable = mb.is_some();
            let mbname = item.mailbox.clone();
            self.send(if lsub {
                Data::Lsub(item)
            } else {
                Data::List(item)
            });
            if let (Some(si), true) = (&status_items, selectable) {
                match self.status(&mbname, si).await {
                    Ok(Some(d)) => self.send(d),
                    Ok(None) => {}
                    Err(e) => return self.send(store_err(tag, &e)),
                }
            }
        }
        self.ok(tag, &format!("{verb} completed"));
    }

    async fn status(
        &mut self,
        mailbox: &Mailbox,
        items: &[StatusItem],
    ) -> Result<Option<Data>, StorageError> {
        let store = &self.ctx.storage;
        let Some(mb) = store.mailbox(self.principal(), mailbox.as_str()).await? else {
            return Ok(None);
        };
        let st = store.status(mb.id).await?;
        let values = items
            .iter()
            .map(|i| match i {
                StatusItem::Messages => StatusValue::Messages(st.messages as u32),
                StatusItem::Recent => StatusValue::Recent(0),
                StatusItem::UidNext => StatusValue::UidNext(st.uidnext as u32),
                StatusItem::UidValidity => StatusValue::UidValidity(st.uidvalidity as u32),
                StatusItem::Unseen => StatusValue::Unseen(st.unseen as u32),
                StatusItem::HighestModSeq => StatusValue::HighestModSeq(st.highest_modseq as u64),
                StatusItem::Size => StatusValue::Size(st.size as u64),
                StatusItem::AppendLimit => {
                    StatusValue::AppendLimit(Some(self.ctx.limits.max_literal))
                }
                StatusItem::Deleted => StatusValue::Deleted(st.deleted as u32),
                StatusItem::MailboxId => StatusValue::MailboxId(mailbox_id(&mb)),
            })
            .collect();
        Ok(Some(Data::Status {
            mailbox: mailbox.clone(),
            items: values,
        }))
    }

    async fn append(&mut self, tag: &Tag, mailbox: Mailbox, messages: Vec<AppendMessage>) {
        let store = self.ctx.storage.clone();
        let mb = match store.mailbox(self.principal(), mailbox.as_str()).await {
            Ok(Some(mb)) => mb,
            Ok(None) => return self.no(tag, Some(Code::TryCreate), "No such mailbox"),
            Err(e) => return self.send(store_err(tag, &e)),
        };
        // Check everything before storing anything (MULTIAPPEND is
        // all-or-nothing as far as checks go).
        let mut total: u64 = 0;
        for m in &messages {
            match &m.content {
                AppendContent::Literal { data, .. } => {
                    if data.is_empty() {
                        return self.no(tag, None, "Empty message");
                    }
                    if data.len() as u64 > self.ctx.limits.max_literal {
                        return self.no(tag, Some(Code::TooBig), "Message too large");
                    }
                    total += data.len() as u64;
                }
                AppendContent::Catenate(_) => {
                    return self.no(tag, Some(Code::Cannot), "CATENATE is not supported");
                }
            }
        }
        let quota = self.user.as_ref().map(|u| u.quota_bytes).unwrap_or(0);
        if quota > 0 {
            match store.usage(self.principal()).await {
                Ok(used) if used as u64 + total > quota as u64 => {
                    return self.no(tag, Some(Code::OverQuota), "Quota exceeded");
                }
                Ok(_) => {}
                Err(e) => return self.send(store_err(tag, &e)),
            }
        }
        // All messages in one transaction: MULTIAPPEND appends all of them
        // or none (RFC 3502 §6.3.11).
        let mut items = Vec::with_capacity(messages.len());
        for m in messages {
            let AppendContent::Literal { data, .. } = m.content else {
                continue;
            };
            let (flags, keywords) = flag_bits(&m.flags);
            let date = m.date.map(|d| d.unix_timestamp()).unwrap_or_else(now);
            items.push(NewMessage {
                data: data.into(),
                flags,
                keywords,
                internal_date: date,
            });
        }
        let mut uids = Vec::new();
        let mut uidvalidity = mb.uidvalidity;
        match store.append(mb.id, items).await {
            Ok(filed) => {
                for d in filed {
                    uids.push(d.uid as u32);
                    uidvalidity = d.uidvalidity;
                }
            }
            Err(e) => {
                tracing::warn!(session = self.net.id, "imap: append failed: {e}");
                return self.send(store_err(tag, &e));
            }
        }
        let code = Code::AppendUid {
            uid_validity: uidvalidity as u32,
            uids: SequenceSet::from_numbers(uids.iter().copied()),
        };
        self.send(StatusResponse::ok(Some(tag.clone()), "APPEND completed").with_code(code));
    }

    async fn quota(&mut self, tag: &Tag) {
        let quota = self.user.as_ref().map(|u| u.quota_bytes).unwrap_or(0);
        if quota <= 0 {
            return self.no(tag, Some(Code::Nonexistent), "No quota");
        }
        match self.ctx.storage.usage(self.principal()).await {
            Ok(used) => {
                self.send(Data::Quota {
                    root: String::new(),
                    resources: vec![QuotaResource {
                        name: Atom::new("STORAGE").unwrap(),
                        usage: (used as u64).div_ceil(1024),
                        limit: quota as u64 / 1024,
                    }],
                });
                self.ok(tag, "GETQUOTA completed");
            }
            Err(e) => self.send(store_err(tag, &e)),
        }
    }
}

// ---------------------------------------------------------------------------
// Selected state

impl Session {
    /// Removes `gone` (ascending UIDs) from the view and reports them.
    fn report_expunged(&mut self, gone: &[u32]) {
        let sel = self.sel.as_mut().unwrap();
        sel.pending_expunge
            .retain(|u| gone.binary_search(u).is_err());
        if self.qresync {
            sel.uids.retain(|u| gone.binary_search(u).is_err());
            if !gone.is_empty() {
                let d = Data::Vanished {
                    earlier: false,
                    uids: SequenceSet::from_numbers(gone.iter().copied()),
                };
                self.send(d);
            }
            return;
        }
        let mut seqs = Vec::new();
        for u in gone.iter().rev() {
            if let Ok(i) = sel.uids.binary_search(u) {
                sel.uids.remove(i);
                seqs.push(i as u32 + 1);
            }
        }
        for s in seqs {
            self.send(Data::Expunge(s));
        }
    }

    async fn expunge(&mut self, tag: &Tag, set: Option<SequenceSet>) {
        let sel = self.sel.as_ref().unwrap();
        if sel.read_only {
            return self.no(tag, Some(Code::Cannot), "Mailbox is read-only");
        }
        let uids = set.map(|s| {
            sel.resolve(&s, true)
                .into_iter()
                .map(|i| sel.uids[i] as i64)
                .collect::<Vec<_>>()
        });
        let id = sel.id;
        match self.ctx.storage.expunge(id, uids).await {
            Ok(gone) => {
                let gone: Vec<u32> = gone.into_iter().map(|u| u as u32).collect();
                self.report_expunged(&gone);
                self.ok(tag, "EXPUNGE completed");
            }
            Err(e) => self.send(store_err(tag, &e)),
        }
    }

    /// Loads message rows for the given view indices, keyed by UID.
    async fn load_infos(&self, idx: &[usize]) -> Result<HashMap<u32, MessageInfo>, StorageError> {
        let sel = self.sel.as_ref().unwrap();
        let mut out = HashMap::with_capacity(idx.len());
        if idx.is_empty() {
            return Ok(out);
        }
        let lo = sel.uids[idx[0]] as i64;
        let hi = sel.uids[*idx.last().unwrap()] as i64;
        for m in self
            .ctx
            .storage
            .messages_in_uid_range(sel.id, lo, hi)
            .await?
        {
            let u = m.uid as u32;
            if let Ok(i) = sel.uids.binary_search(&u) {
                if idx.binary_search(&i).is_ok() {
                    out.insert(u, m);
                }
            }
        }
        Ok(out)
    }

    async fn fetch(&mut self, tag: &Tag, f: FetchCommand) -> Next {
        let mut attrs = f.items.attrs();
        if f.uid && !attrs.contains(&FetchAttr::Uid) {
            attrs.insert(0, FetchAttr::Uid);
        }
        if f.changed_since.is_some() && !attrs.contains(&FetchAttr::ModSeq) {
            attrs.push(FetchAttr::ModSeq);
        }
        if attrs.contains(&FetchAttr::ModSeq) {
            self.condstore = true;
        }
        if f.vanished && !(f.uid && f.changed_since.is_some() && self.qresync) {
            self.bad_cmd(
                Some(tag.clone()),
                "VANISHED needs UID FETCH, CHANGEDSINCE and QRESYNC",
            );
            return Next::Continue;
        }
        let needs = fetch::needs(&attrs);
        let sel = self.sel.as_ref().unwrap();
        let read_only = sel.read_only;
        let id = sel.id;
        let idx = sel.resolve(&f.set, f.uid);
        if f.vanished {
            let last = sel.last_uid();
            match self
                .ctx
                .storage
                .changes_since(id, f.changed_since.unwrap_or(0) as i64)
                .await
            {
                Ok(changes) => {
                    let gone = match changes.expunged {
                        Expunged::Uids(gone) => {
                            let gone: Vec<u32> = gone
                                .into_iter()
                                .map(|u| u as u32)
                                .filter(|&u| f.set.contains(u, last.max(u)))
                                .collect();
                            (!gone.is_empty()).then(|| SequenceSet::from_numbers(gone))
                        }
                        // Older than the journal's floor: every UID of the
                        // set that does not exist (RFC 7162 3.2.5.2).
                        Expunged::BeforeFloor => absent_uids(&sel.uids, &f.set, last),
                    };
                    if let Some(uids) = gone {
                        self.send(Data::Vanished {
                            earlier: true,
                            uids,
                        });
                    }
                }
                Err(e) => {
                    self.send(store_err(tag, &e));
                    return Next::Continue;
                }
            }
        }
        let job = FetchJob {
            tag: tag.clone(),
            chunk_size: if needs.raw { 50 } else { 5000 },
            attrs,
            needs,
            changed_since: f.changed_since,
            read_only,
            id,
            idx,
            pos: 0,
            chunk: None,
            failed: None,
            expunge_ok: f.uid,
        };
        self.run_fetch(Box::new(job)).await
    }

    /// Produces FETCH responses until the output holds [`OUT_CHUNK`]
    /// octets (then parks the job in `self.pending` and answers
    /// [`Next::More`]) or the command is done.
    async fn run_fetch(&mut self, mut job: Box<FetchJob>) -> Next {
        while job.pos < job.idx.len() {
            let chunk = match job.chunk.take() {
                Some(c) if job.pos < c.end => c,
                _ => {
                    let end = (job.pos + job.chunk_size).min(job.idx.len());
                    match self.load_fetch_chunk(&job, end).await {
                        Ok(c) => c,
                        Err(e) => {
                            self.send(store_err(&job.tag, &e));
                            return Next::Continue;
                        }
                    }
                }
            };
            while job.pos < chunk.end {
                let i = job.idx[job.pos];
                job.pos += 1;
                self.fetch_one(&mut job, &chunk, i).await;
                if self.out.len() >= OUT_CHUNK && job.pos < job.idx.len() {
                    job.chunk = Some(chunk);
                    self.pending = Some(job);
                    return Next::More;
                }
            }
        }
        let tag = job.tag.clone();
        match job.failed.take() {
            None => self.ok(&tag, "FETCH completed"),
            Some(m) => self.no(&tag, None, &m),
        }
        Next::Continue
    }

    /// Rows, metadata and (for a non-PEEK body fetch) the implicit `\Seen`
    /// of the messages `job.idx[job.pos..end]`.
    async fn load_fetch_chunk(
        &mut self,
        job: &FetchJob,
        end: usize,
    ) -> Result<FetchChunk, StorageError> {
        let slice = &job.idx[job.pos..end];
        let mut infos = self.load_infos(slice).await?;
        if let Some(since) = job.changed_since {
            infos.retain(|_, m| m.modseq as u64 > since);
        }
        let mut seen_set = std::collections::HashSet::new();
        if job.needs.sets_seen && !job.read_only {
            let unseen: Vec<i64> = infos
                .values()
                .filter(|m| m.flags & SEEN == 0)
                .map(|m| m.uid)
                .collect();
            if !unseen.is_empty() {
                let change = FlagChange {
                    op: FlagOp::Add,
                    flags: SEEN,
                    keywords: vec![],
                    unchanged_since: None,
                };
                let res = self.ctx.storage.store_flags(job.id, unseen, change).await?;
                for m in res.changed {
                    seen_set.insert(m.uid as u32);
                    infos.insert(m.uid as u32, m);
                }
            }
        }
        let metas = if job.needs.meta {
            let uids: Vec<i64> = infos.keys().map(|&u| u as i64).collect();
            self.ctx.storage.message_meta(job.id, &uids).await?
        } else {
            HashMap::new()
        };
        Ok(FetchChunk {
            end,
            infos,
            metas,
            seen_set,
        })
    }

    /// The FETCH response for the message at view index `i`.
    async fn fetch_one(&mut self, job: &mut FetchJob, chunk: &FetchChunk, i: usize) {
        let Some(uid) = self.sel.as_ref().and_then(|s| s.uids.get(i).copied()) else {
            return;
        };
        let Some(info) = chunk.infos.get(&uid) else {
            return;
        };
        let meta = chunk.metas.get(&(uid as i64));
        let envelope_raw = job.attrs.contains(&FetchAttr::Envelope)
            && meta.is_some_and(|m| fetch::envelope_needs_raw(&m.envelope));
        let raw = if job.needs.raw || envelope_raw {
            match self.ctx.storage.read_body(info).await {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::warn!(session = self.net.id, "imap: blob read failed: {e}");
                    job.failed = Some("Message data unavailable".into());
                    return;
                }
            }
        } else {
            None
        };
        let extra;
        let a: &[FetchAttr] = if chunk.seen_set.contains(&uid) {
            // \Seen was set: report the new flags, and with
            // CONDSTORE also UID and MODSEQ (RFC 7162 3.2).
            let mut v = job.attrs.clone();
            let mut want = vec![FetchAttr::Flags];
            if self.condstore {
                want.extend([FetchAttr::Uid, FetchAttr::ModSeq]);
            }
            for w in want {
                if !v.contains(&w) {
                    v.push(w);
                }
            }
            extra = v;
            &extra
        } else {
            &job.attrs
        };
        match fetch::render(a, info, meta, raw.as_deref(), false, self.enc.utf8_accept) {
            Ok(items) => self.send(Data::Fetch {
                seq: i as u32 + 1,
                items,
            }),
            Err(msg) => job.failed = Some(msg),
        }
    }

    async fn store(&mut self, tag: &Tag, s: StoreCommand) {
        let sel = self.sel.as_ref().unwrap();
        if sel.read_only {
            return self.no(tag, Some(Code::Cannot), "Mailbox is read-only");
        }
        let idx = sel.resolve(&s.set, s.uid);
        let uids: Vec<i64> = idx.iter().map(|&i| sel.uids[i] as i64).collect();
        let id = sel.id;
        let (bits, kw) = flag_bits(&s.flags);
        let op = match s.kind {
            StoreKind::Add => FlagOp::Add,
            StoreKind::Remove => FlagOp::Remove,
            StoreKind::Replace => FlagOp::Replace,
        };
        if s.unchanged_since.is_some() {
            self.condstore = true;
        }
        let res = match self
            .ctx
            .storage
            .store_flags(
                id,
                uids,
                FlagChange {
                    op,
                    flags: bits,
                    keywords: kw,
                    unchanged_since: s.unchanged_since.map(|v| v as i64),
                },
            )
            .await
        {
            Ok(r) => r,
            Err(e) => return self.send(store_err(tag, &e)),
        };
        let sel = self.sel.as_mut().unwrap();
        if res.modseq == sel.modseq + 1 {
            // Nobody else changed the mailbox in between: our own change
            // need not come back as an update.
            sel.modseq = res.modseq;
        }
        if !s.silent || s.unchanged_since.is_some() {
            let mut out = Vec::new();
            for m in &res.changed {
                let Some(seq) = sel.seq_of(m.uid as u32) else {
                    continue;
                };
                let mut items = Vec::new();
                if s.uid || self.condstore {
                    items.push(crate::codec::response::FetchValue::Uid(m.uid as u32));
                }
                if !s.silent {
                    items.push(crate::codec::response::FetchValue::Flags(fetch::flags_of(
                        m,
                    )));
                }
                if self.condstore {
                    items.push(crate::codec::response::FetchValue::ModSeq(m.modseq as u64));
                }
                if !items.is_empty() {
                    out.push(Data::Fetch { seq, items });
                }
            }
            for d in out {
                self.send(d);
            }
        }
        if res.modified.is_empty() {
            self.ok(tag, "STORE completed");
        } else {
            let sel = self.sel.as_ref().unwrap();
            let ids: Vec<u32> = if s.uid {
                res.modified.iter().map(|&u| u as u32).collect()
            } else {
                res.modified
                    .iter()
                    .filter_map(|&u| sel.seq_of(u as u32))
                    .collect()
            };
            self.send(
                StatusResponse::ok(Some(tag.clone()), "Conditional STORE failed")
                    .with_code(Code::Modified(SequenceSet::from_numbers(ids))),
            );
        }
    }

    async fn copy(&mut self, tag: &Tag, uid: bool, set: SequenceSet, mailbox: Mailbox, mv: bool) {
        let sel = self.sel.as_ref().unwrap();
        if mv && sel.read_only {
            return self.no(tag, Some(Code::Cannot), "Mailbox is read-only");
        }
        let idx = sel.resolve(&set, uid);
        let uids: Vec<i64> = idx.iter().map(|&i| sel.uids[i] as i64).collect();
        let from = sel.id;
        let store = self.ctx.storage.clone();
        let dest = match store.mailbox(self.principal(), mailbox.as_str()).await {
            Ok(Some(mb)) => mb,
            Ok(None) => return self.no(tag, Some(Code::TryCreate), "No such mailbox"),
            Err(e) => return self.send(store_err(tag, &e)),
        };
        let verb = if mv { "MOVE" } else { "COPY" };
        if uids.is_empty() {
            return self.ok(tag, &format!("{verb} completed (nothing matched)"));
        }
        let quota = self.user.as_ref().map(|u| u.quota_bytes).unwrap_or(0);
        if quota > 0 && !mv {
            // A copy takes space again as far as the quota goes (RFC 9208 4.2).
            let size: i64 = match self.load_infos(&idx).await {
                Ok(m) => m.values().map(|m| m.size).sum(),
                Err(e) => return self.send(store_err(tag, &e)),
            };
            match store.usage(self.principal()).await {
                Ok(used) if used + size > quota => {
                    return self.no(tag, Some(Code::OverQuota), "Quota exceeded");
                }
                Ok(_) => {}
                Err(e) => return self.send(store_err(tag, &e)),
            }
        }
        match store.copy_messages(from, &uids, dest.id, mv).await {
            Ok(crate::storage::Copied { uidvalidity, pairs }) => {
                let code = Code::CopyUid {
                    uid_validity: uidvalidity as u32,
                    source: SequenceSet::from_numbers(pairs.iter().map(|p| p.0 as u32)),
                    destination: SequenceSet::from_numbers(pairs.iter().map(|p| p.1 as u32)),
                };
                if mv {
                    self.send(StatusResponse::ok(None, "Moved").with_code(code));
                    let mut gone: Vec<u32> = pairs.iter().map(|p| p.0 as u32).collect();
                    gone.sort_unstable();
                    self.report_expunged(&gone);
                    self.ok(tag, "MOVE completed");
                } else {
                    self.send(
                        StatusResponse::ok(Some(tag.clone()), "COPY completed").with_code(code),
                    );
                }
            }
            Err(e) => self.send(store_err(tag, &e)),
        }
    }

    /// Evaluates a search key over the view; returns matching indices.
    async fn run_search(
        &mut self,
        key: &SearchKey,
        meta_for_sort: bool,
    ) -> Result<(Vec<usize>, Vec<MessageInfo>, HashMap<i64, MessageMeta>), StorageError> {
        let sel = self.sel.as_ref().unwrap();
        let id = sel.id;
        let list = self.ctx.storage.messages(id).await?;
        // Only messages this session knows about, in its sequence order.
        let sel = self.sel.as_ref().unwrap();
        let list: Vec<MessageInfo> = list
            .into_iter()
            .filter(|m| sel.uids.binary_search(&(m.uid as u32)).is_ok())
            .collect();
        let needs = search::needs(key);
        let metas = if needs.meta || needs.raw || meta_for_sort {
            let uids: Vec<i64> = list.iter().map(|m| m.uid).collect();
            self.ctx.storage.message_meta(id, &uids).await?
        } else {
            HashMap::new()
        };
        let saved = sel.saved.clone();
        let ctx = search::SearchContext {
            last_seq: sel.exists(),
            last_uid: sel.last_uid(),
            saved: &saved,
            now: now(),
        };
        let mut hits = Vec::new();
        for m in &list {
            let raw = if needs.raw {
                Some(self.ctx.storage.read_body(m).await?)
            } else {
                None
            };
            let seq = sel.seq_of(m.uid as u32).unwrap_or(0);
            let view = search::MessageView {
                seq,
                info: m,
                meta: metas.get(&m.uid),
                raw: raw.as_deref(),
            };
            if search::matches(key, &view, &ctx) {
                hits.push(seq as usize - 1);
            }
        }
        Ok((hits, list, metas))
    }

    async fn search(&mut self, tag: &Tag, mut s: SearchCommand) {
        // RFC 9051 6.4.4: under IMAP4rev2, SEARCH without RETURN answers
        // with ESEARCH, as if RETURN (ALL) had been given.
        if self.rev2 && s.returns.is_none() {
            s.returns = Some(Vec::new());
        }
        let (hits, list, _) = match self.run_search(&s.criteria, false).await {
            Ok(r) => r,
            Err(e) => return self.send(store_err(tag, &e)),
        };
        let sel = self.sel.as_mut().unwrap();
        let uid_of = |i: usize| sel.uids[i];
        let ids: Vec<u32> = hits
            .iter()
            .map(|&i| if s.uid { uid_of(i) } else { i as u32 + 1 })
            .collect();
        let mod_seq = if contains_modseq(&s.criteria) && !hits.is_empty() {
            self.condstore = true;
            let hit_uids: std::collections::HashSet<u32> =
                hits.iter().map(|&i| sel.uids[i]).collect();
            list.iter()
                .filter(|m| hit_uids.contains(&(m.uid as u32)))
                .map(|m| m.modseq as u64)
                .max()
        } else {
            None
        };
        match s.returns {
            None => {
                self.send(Data::Search { ids, mod_seq });
            }
            Some(ret) => {
                let ret = if ret.is_empty() {
                    vec![SearchReturn::All]
                } else {
                    ret
                };
                if ret.contains(&SearchReturn::Save) {
                    sel.saved = hits.iter().map(|&i| sel.uids[i]).collect();
                }
                let only_save = ret.iter().all(|r| *r == SearchReturn::Save);
                if !only_save {
                    let mut e = ESearch::new(Some(tag.clone()), s.uid);
                    for r in &ret {
                        match r {
                            SearchReturn::Min => e.min = ids.first().copied(),
                            SearchReturn::Max => e.max = ids.last().copied(),
                            SearchReturn::Count => e.count = Some(ids.len() as u32),
                            SearchReturn::All if !ids.is_empty() => {
                                e.all = Some(SequenceSet::from_numbers(ids.iter().copied()))
                            }
                            _ => {}
                        }
                    }
                    e.mod_seq = mod_seq;
                    self.send(Data::ESearch(e));
                }
            }
        }
        self.ok(tag, "SEARCH completed");
    }

    async fn sort(&mut self, tag: &Tag, s: SortCommand) {
        let (hits, list, metas) = match self.run_search(&s.search, true).await {
            Ok(r) => r,
            Err(e) => return self.send(store_err(tag, &e)),
        };
        let sel = self.sel.as_ref().unwrap();
        let views = hit_views(&hits, &sel.uids, &list, &metas);
        let order = search::sort(&s.criteria, &views);
        let ids: Vec<u32> = order
            .iter()
            .map(|&k| {
                if s.uid {
                    views[k].info.uid as u32
                } else {
                    views[k].seq
                }
            })
            .collect();
        match s.returns {
            None => self.send(Data::Sort { ids, mod_seq: None }),
            Some(ret) => {
                let ret = if ret.is_empty() {
                    vec![SearchReturn::All]
                } else {
                    ret
                };
                let mut e = ESearch::new(Some(tag.clone()), s.uid);
                for r in &ret {
                    match r {
                        SearchReturn::Min => e.min = ids.iter().min().copied(),
                        SearchReturn::Max => e.max = ids.iter().max().copied(),
                        SearchReturn::Count => e.count = Some(ids.len() as u32),
                        SearchReturn::All if !ids.is_empty() => {
                            e.all = Some(SequenceSet::Ranges(
                                ids.iter().map(|&u| SeqRange::single(u)).collect(),
                            ))
                        }
                        _ => {}
                    }
                }
                self.send(Data::ESearch(e));
            }
        }
        self.ok(tag, "SORT completed");
    }

    async fn thread(&mut self, tag: &Tag, t: ThreadCommand) {
        let (hits, list, metas) = match self.run_search(&t.search, true).await {
            Ok(r) => r,
            Err(e) => return self.send(store_err(tag, &e)),
        };
        let sel = self.sel.as_ref().unwrap();
        let views = hit_views(&hits, &sel.uids, &list, &metas);
        let ids = if t.uid {
            search::ThreadIds::Uid
        } else {
            search::ThreadIds::Seq
        };
        let threads = search::thread(t.algorithm, &views, ids);
        self.send(Data::Thread(threads));
        self.ok(tag, "THREAD completed");
    }
}

/// The search hits (indices into the selected mailbox's UID list) as views
/// for SORT and THREAD, with their metadata.
fn hit_views<'a>(
    hits: &[usize],
    uids: &[u32],
    list: &'a [MessageInfo],
    metas: &'a HashMap<i64, MessageMeta>,
) -> Vec<search::MessageView<'a>> {
    let by_uid: HashMap<u32, &MessageInfo> = list.iter().map(|m| (m.uid as u32, m)).collect();
    hits.iter()
        .filter_map(|&i| {
            let info = *by_uid.get(&uids[i])?;
            Some(search::MessageView {
                seq: i as u32 + 1,
                info,
                meta: metas.get(&info.uid),
                raw: None,
            })
        })
        .collect()
}

/// The UIDs named by `set` (with `*` = `last`) that are not in `present`
/// (ascending), as ranges; `None` when there are none. Works on ranges so
/// that a client claiming `1:4000000000` costs no more than the mailbox.
fn absent_uids(present: &[u32], set: &SequenceSet, last: u32) -> Option<SequenceSet> {
    let mut out: Vec<SeqRange> = Vec::new();
    let mut push = |a: u32, b: u32| {
        if let Some(prev) = out.last_mut() {
            if let (SeqNum::Value(pa), SeqNum::Value(pb)) = (prev.start, prev.end) {
                if pb.checked_add(1) == Some(a) {
                    *prev = SeqRange::new(pa, b);
                    return;
                }
            }
        }
        out.push(SeqRange::new(a, b));
    };
    let mut ranges = set.resolved(last);
    ranges.sort_by_key(|r| *r.start());
    let mut next_free = 0u32; // everything below was already emitted
    for r in ranges {
        let (mut a, b) = ((*r.start()).max(next_free).max(1), *r.end());
        if a > b {
            continue;
        }
        let mut i = present.partition_point(|&u| u < a);
        while a <= b {
            match present.get(i) {
                Some(&u) if u <= b => {
                    if u > a {
                        push(a, u - 1);
                    }
                    a = u.saturating_add(1);
                    i += 1;
                    if u == u32::MAX {
                        break;
                    }
                }
                _ => {
                    push(a, b);
                    break;
                }
            }
        }
        next_free = b.saturating_add(1);
    }
    (!out.is_empty()).then_some(SequenceSet::Ranges(out))
}

#[cfg(test)]
mod tests {
    use super::list_match;
    use super::*;

    #[test]
    fn absent_uid_ranges() {
        let all = SequenceSet::range(1, 10);
        let show = |s: Option<SequenceSet>| s.map(|s| s.resolved(u32::MAX));
        assert_eq!(
            show(absent_uids(&[2, 3, 7], &all, 7)),
            Some(vec![1..=1, 4..=6, 8..=10])
        );
        assert_eq!(
            show(absent_uids(&[1, 2], &SequenceSet::range(1, 2), 2)),
            None
        );
        let two = SequenceSet::Ranges(vec![SeqRange::new(5, 8), SeqRange::new(1, 3)]);
        assert_eq!(
            show(absent_uids(&[2, 6], &two, 6)),
            Some(vec![1..=1, 3..=3, 5..=5, 7..=8])
        );
        assert_eq!(
            show(absent_uids(&[], &SequenceSet::range(1, 4_000_000_000), 1)),
            Some(vec![1..=4_000_000_000])
        );
    }

    #[test]
    fn list_wildcards() {
        assert!(list_match("*", "a/b/c"));
        assert!(list_match("%", "a"));
        assert!(!list_match("%", "a/b"));
        assert!(list_match("a/%", "a/b"));
        assert!(!list_match("a/%", "a/b/c"));
        assert!(list_match("a/*", "a/b/c"));
        assert!(list_match("inbox", "INBOX"));
        assert!(list_match("Inbox/%", "INBOX/x"));
        assert!(!list_match("inbox", "Inboxes"));
        assert!(list_match("%x%", "axb"));
        assert!(!list_match("Sent", "sent"));
    }
}
