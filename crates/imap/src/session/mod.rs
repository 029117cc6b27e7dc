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
    Expunged, FlagChange, FlagOp, FlagRow, MailboxInfo, MessageInfo, NewMessage, StorageError,
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

/// Where the session is (RFC 9051 3). A selected-state command takes the
/// [`Selected`] out for its run (the state reads `Authenticated` then),
/// so handlers get it as a plain `&mut` instead of unwrapping an option.
pub(crate) enum State {
    NotAuthenticated,
    Authenticated(Box<AuthUser>),
    Selected(Box<AuthUser>, Box<Selected>),
    Logout,
}

pub(crate) struct Session {
    pub ctx: Arc<ImapContext>,
    pub net: outpost_net::Session,
    pub tls: bool,
    pub state: State,
    pub enc: Encoder,
    pub out: Vec<u8>,
    pub condstore: bool,
    pub qresync: bool,
    pub rev2: bool,
    pub bad: u32,
    /// The rest of a long FETCH.
    pending: Option<Box<FetchJob>>,
}

/// Commands of the selected state (RFC 9051 6.4).
fn selected_only(b: &CommandBody) -> bool {
    matches!(
        b,
        CommandBody::Close
            | CommandBody::Unselect
            | CommandBody::Expunge
            | CommandBody::UidExpunge(_)
            | CommandBody::Fetch(_)
            | CommandBody::Store(_)
            | CommandBody::Copy { .. }
            | CommandBody::Move { .. }
            | CommandBody::Search(_)
            | CommandBody::Sort(_)
            | CommandBody::Thread(_)
    )
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

pub(crate) fn mailbox_id(mb: &MailboxInfo) -> String {
    format!("F{}-{}", mb.id, mb.uidvalidity)
}

impl Session {
    pub fn new(ctx: Arc<ImapContext>, net: outpost_net::Session, tls: bool) -> Session {
        Session {
            ctx,
            net,
            tls,
            state: State::NotAuthenticated,
            enc: Encoder::default(),
            out: Vec::new(),
            condstore: false,
            qresync: false,
            rev2: false,
            bad: 0,
            pending: None,
        }
    }

    pub fn user(&self) -> Option<&AuthUser> {
        match &self.state {
            State::Authenticated(u) | State::Selected(u, _) => Some(u),
            State::NotAuthenticated | State::Logout => None,
        }
    }

    pub fn selected(&self) -> Option<&Selected> {
        match &self.state {
            State::Selected(_, s) => Some(s),
            _ => None,
        }
    }

    fn selected_mut(&mut self) -> Option<&mut Selected> {
        match &mut self.state {
            State::Selected(_, s) => Some(s),
            _ => None,
        }
    }

    /// Selected → Authenticated, handing back the mailbox view.
    fn deselect(&mut self) -> Option<Box<Selected>> {
        match std::mem::replace(&mut self.state, State::NotAuthenticated) {
            State::Selected(u, s) => {
                self.state = State::Authenticated(u);
                Some(s)
            }
            other => {
                self.state = other;
                None
            }
        }
    }

    /// Authenticated → Selected (a session must be logged in to select).
    fn enter_selected(&mut self, sel: Box<Selected>) {
        match std::mem::replace(&mut self.state, State::NotAuthenticated) {
            State::Authenticated(u) | State::Selected(u, _) => self.state = State::Selected(u, sel),
            other => self.state = other,
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
        self.tls || (self.ctx.listener.allow_plaintext_on_loopback && self.net.is_loopback())
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
        if self.user().is_none() {
            if !self.tls && self.ctx.listener.tls.is_some() {
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
        let storage = self.ctx.storage.clone();
        let Some(sel) = self.selected_mut() else {
            return;
        };
        let mut data = Vec::new();
        if let Err(e) = sel.sync(storage.as_ref(), mode, &mut data).await {
            tracing::warn!(session = self.net.id, "imap: mailbox sync failed: {e}");
        }
        for d in data {
            self.send(d);
        }
    }

    /// Handles one command; responses go to `self.out` (and, for large
    /// results, straight to `w`).
    /// Handles one command; responses go to `self.out`.
    pub async fn handle(&mut self, cmd: Command) -> Next {
        let Command { tag, body } = cmd;
        let authed = self.user().is_some();
        let selected = self.selected().is_some();
        let (next, sync) = match body {
            CommandBody::Capability
            | CommandBody::Noop
            | CommandBody::Check
            | CommandBody::Logout
            | CommandBody::Id(_)
            | CommandBody::StartTls
            | CommandBody::Login { .. }
            | CommandBody::Authenticate { .. } => self.any_state_command(tag, body).await,
            _ if !authed => return self.need_auth(&tag),
            body if !selected_only(&body) => self.authenticated_command(tag, body).await,
            _ if !selected => {
                self.bad_cmd(Some(tag), "No mailbox selected");
                return Next::Continue;
            }
            body => {
                let Some(mut sel) = self.deselect() else {
                    return Next::Continue;
                };
                let (next, keep, expunge_ok) = self.selected_command(&mut sel, tag, body).await;
                if keep {
                    self.enter_selected(sel);
                }
                if let Next::More = next {
                    // The rest follows from `resume`, which syncs at the end.
                    return Next::More;
                }
                self.after_command(expunge_ok).await;
                return next;
            }
        };
        if sync {
            self.after_command(true).await;
        }
        next
    }

    /// Commands valid in every state (RFC 9051 6.1) and the
    /// not-authenticated ones (6.2). Returns what the loop must do and
    /// whether other sessions' changes may be reported after it.
    async fn any_state_command(&mut self, tag: Tag, body: CommandBody) -> (Next, bool) {
        let name = body.name();
        let authed = self.user().is_some();
        match body {
            CommandBody::Capability => {
                let caps = self.capabilities();
                self.send(Data::Capability(caps));
                self.ok(&tag, "CAPABILITY completed");
                (Next::Continue, true)
            }
            CommandBody::Noop | CommandBody::Check => {
                if !authed && matches!(body, CommandBody::Check) {
                    return (self.need_auth(&tag), false);
                }
                self.sync(true).await;
                self.ok(&tag, &format!("{name} completed"));
                (Next::Continue, false)
            }
            CommandBody::Logout => {
                self.send(StatusResponse::bye(format!(
                    "{} logging out",
                    self.ctx.listener.hostname
                )));
                self.ok(&tag, "LOGOUT completed");
                self.state = State::Logout;
                (Next::Logout, false)
            }
            CommandBody::Id(_) => {
                self.send(Data::Id(Some(vec![(
                    "name".into(),
                    Some("Outpost".into()),
                )])));
                self.ok(&tag, "ID completed");
                (Next::Continue, true)
            }
            CommandBody::StartTls => {
                if self.tls || self.ctx.listener.tls.is_none() {
                    self.bad_cmd(Some(tag), "STARTTLS not available");
                    return (Next::Continue, false);
                }
                if authed {
                    self.bad_cmd(Some(tag), "Already authenticated");
                    return (Next::Continue, false);
                }
                self.ok(&tag, "Begin TLS negotiation now");
                (Next::StartTls, false)
            }
            CommandBody::Login { username, password } => {
                if authed {
                    self.bad_cmd(Some(tag), "Already authenticated");
                } else if !self.login_allowed() {
                    self.no(&tag, Some(Code::PrivacyRequired), "Use STARTTLS first");
                } else {
                    self.login(&tag, &username, &password).await;
                }
                (Next::Continue, false)
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
                        (Some(m), _) => return (Next::Authenticate(tag, m), false),
                    }
                }
                (Next::Continue, false)
            }
            _ => (self.need_auth(&tag), false),
        }
    }

    /// The authenticated-state commands (RFC 9051 6.3), also valid when a
    /// mailbox is selected.
    async fn authenticated_command(&mut self, tag: Tag, body: CommandBody) -> (Next, bool) {
        let is_subscribe = matches!(body, CommandBody::Subscribe(_));
        match body {
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
                (Next::Continue, true)
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
                (Next::Continue, true)
            }
            CommandBody::Select {
                mailbox,
                read_only,
                params,
            } => {
                self.select(&tag, mailbox, read_only, params).await;
                (Next::Continue, false)
            }
            CommandBody::Create {
                mailbox,
                special_use,
            } => {
                self.create(&tag, mailbox, special_use).await;
                (Next::Continue, true)
            }
            CommandBody::Delete(mailbox) => {
                self.delete(&tag, mailbox).await;
                (Next::Continue, true)
            }
            CommandBody::Rename { from, to } => {
                self.rename(&tag, from, to).await;
                (Next::Continue, true)
            }
            CommandBody::Subscribe(mb) | CommandBody::Unsubscribe(mb) => {
                let on = is_subscribe;
                self.subscribe(&tag, mb, on).await;
                (Next::Continue, true)
            }
            CommandBody::List(l) => {
                self.list(&tag, l, false).await;
                (Next::Continue, true)
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
                (Next::Continue, true)
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
                (Next::Continue, true)
            }
            CommandBody::Append { mailbox, messages } => {
                self.append(&tag, mailbox, messages).await;
                (Next::Continue, true)
            }
            CommandBody::GetQuota(root) => {
                if !root.is_empty() {
                    self.no(&tag, Some(Code::Nonexistent), "No such quota root");
                } else {
                    self.quota(&tag).await;
                }
                (Next::Continue, true)
            }
            CommandBody::GetQuotaRoot(mailbox) => {
                let quota = self.user().map_or(0, |u| u.quota_bytes);
                let roots = if quota > 0 {
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
                (Next::Continue, true)
            }
            CommandBody::SetQuota { .. } => {
                self.no(
                    &tag,
                    Some(Code::NoPerm),
                    "Quotas are set by the administrator",
                );
                (Next::Continue, true)
            }
            CommandBody::Idle => (Next::Idle(tag), false),
            _ => {
                self.bad_cmd(Some(tag), "Not valid in this state");
                (Next::Continue, false)
            }
        }
    }

    /// The selected-state commands, with the mailbox view taken out of
    /// the state. Returns what the loop must do, whether the mailbox
    /// stays selected, and whether EXPUNGEs may be reported after it
    /// (not after commands that use sequence numbers, RFC 3501 7.4.1).
    async fn selected_command(
        &mut self,
        sel: &mut Selected,
        tag: Tag,
        body: CommandBody,
    ) -> (Next, bool, bool) {
        let mut expunge_ok = true;
        let is_move = matches!(body, CommandBody::Move { .. });
        let next = match body {
            CommandBody::Close | CommandBody::Unselect => {
                // Either way the mailbox is closed, also when the
                // implicit expunge fails.
                let close = matches!(body, CommandBody::Close);
                if close && !sel.read_only {
                    if let Err(e) = self.ctx.storage.expunge(sel.id, None).await {
                        self.send(store_err(&tag, &e));
                        return (Next::Continue, false, true);
                    }
                }
                self.ok(&tag, &format!("{} completed", body.name()));
                return (Next::Continue, false, true);
            }
            CommandBody::Expunge => {
                self.expunge(sel, &tag, None).await;
                Next::Continue
            }
            CommandBody::UidExpunge(set) => {
                self.expunge(sel, &tag, Some(set)).await;
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
            } if !sel.seqset_valid(set) => {
                self.bad_cmd(Some(tag), "Invalid message sequence number");
                return (Next::Continue, true, false);
            }
            CommandBody::Fetch(f) => {
                expunge_ok = f.uid;
                self.fetch(sel, &tag, f).await
            }
            CommandBody::Store(s) => {
                expunge_ok = s.uid;
                self.store(sel, &tag, s).await;
                Next::Continue
            }
            CommandBody::Copy { uid, set, mailbox } | CommandBody::Move { uid, set, mailbox } => {
                let mv = is_move;
                expunge_ok = uid;
                self.copy(sel, &tag, uid, set, mailbox, mv).await;
                Next::Continue
            }
            CommandBody::Search(s) => {
                expunge_ok = s.uid;
                self.search(sel, &tag, s).await;
                Next::Continue
            }
            CommandBody::Sort(s) if SEARCH_EXTENSIONS => {
                expunge_ok = s.uid;
                self.sort(sel, &tag, s).await;
                Next::Continue
            }
            CommandBody::Thread(t) if SEARCH_EXTENSIONS => {
                expunge_ok = t.uid;
                self.thread(sel, &tag, t).await;
                Next::Continue
            }
            CommandBody::Sort(_) | CommandBody::Thread(_) => {
                self.bad_cmd(Some(tag), "Not supported");
                return (Next::Continue, true, false);
            }
            // Handled in `handle` before the mailbox view is taken out.
            _ => {
                self.bad_cmd(Some(tag), "Not valid in the selected state");
                return (Next::Continue, true, true);
            }
        };
        (next, true, expunge_ok)
    }

    /// Reports other sessions' changes after a command. Untagged updates
    /// go before the tagged reply, which is the last response the command
    /// wrote; insert them ahead of it.
    async fn after_command(&mut self, expunge_ok: bool) {
        if self.selected().is_none() {
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
        let Some(mut sel) = self.deselect() else {
            return Next::Continue;
        };
        let next = self.run_fetch(&mut sel, job).await;
        self.enter_selected(sel);
        match next {
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

mod append;
mod auth;
mod fetching;
mod mailbox;
mod searching;
mod select;
mod store;

use fetching::FetchJob;
use select::absent_uids;
