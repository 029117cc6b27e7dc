//! Exchange Web Services (MS-OXWSCORE, MS-OXWSFOLD, MS-OXWSOOF,
//! MS-OXWAVLS...) at `POST /EWS/Exchange.asmx`.
//!
//! The crate knows no storage. EWS reads and writes what ActiveSync does
//! (the same folders, messages, calendars, contacts, out-of-office, GAL
//! and free/busy), so its backend is ActiveSync's [`EasBackend`] with the
//! few calls EWS needs beside it ([`EwsBackend`]); the binary implements
//! both on one value, and nothing of the mailbox is reached another way.
//!
//! A request is read by [`soap::parse`] (the safe XML reader: no DTD, no
//! entities, bounded), dispatched by operation name to a module of
//! [`ops`], and answered as Exchange 2016 answers: `ServerVersionInfo` in
//! every header, per-item errors as `ResponseClass="Error"` messages, and
//! an operation this server does not have as a SOAP fault with
//! `ErrorInvalidRequest` — inside HTTP 200 (see [`soap`]).

pub mod ids;
pub mod ops;
pub mod soap;
pub mod wsdl;
pub mod zone;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::any;
use axum::Router;
use http::{HeaderValue, Method, StatusCode};
pub use outpost_activesync::{BackendError, EasBackend};
pub use outpost_mailmeta::MessageMeta;
use outpost_net::AuthUser;

/// The SOAP endpoint's path (matched in any letter case).
pub const PATH: &str = "/EWS/Exchange.asmx";
/// The service description's path.
pub const WSDL_PATH: &str = "/EWS/Services.wsdl";

/// True for the paths this crate answers, in any letter case.
pub fn is_path(path: &str) -> bool {
    path.eq_ignore_ascii_case(PATH) || path.eq_ignore_ascii_case(WSDL_PATH)
}

/// Limits of one request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes of a request body (a CreateItem carries a whole message,
    /// base64 in MimeContent).
    pub max_body: usize,
    /// Items or folders one request may name (GetItem, DeleteItem...).
    pub max_ids: usize,
    /// Entries one FindItem/FindFolder page may return.
    pub max_page: usize,
    /// The largest message accepted (`[limits] message_size`), as
    /// MailTips announce it.
    pub max_message_size: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: 40 << 20,
            max_ids: 1000,
            max_page: 1000,
            max_message_size: 50 << 20,
        }
    }
}

/// A folder's message counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub total: i64,
    pub unread: i64,
}

/// What EWS needs beside ActiveSync's backend. `principal` is the
/// authenticated user; a collection of another principal is missing.
#[async_trait]
pub trait EwsBackend: EasBackend {
    /// The IMAP special-use attribute (`\Junk`, `\Archive`, ...) of each
    /// of the principal's mailboxes that has one.
    async fn special_use(&self, principal: i64) -> Result<Vec<(i64, String)>, BackendError>;
    /// Total and unread messages of a mail folder (objects of a calendar
    /// or address book, none unread); `None` when it is not the
    /// principal's.
    async fn counts(&self, principal: i64, collection: i64)
        -> Result<Option<Counts>, BackendError>;
    /// The principal's display name, if the directory has one.
    async fn display_name(&self, principal: i64) -> Result<Option<String>, BackendError>;
    /// What changed in the principal's list of collections after journal
    /// sequence `since` (SyncFolderHierarchy): the current sequence and
    /// each changed collection once, with whether it was created after
    /// `since`; `None` when the journal no longer reaches back that far.
    async fn hierarchy_changes(
        &self,
        principal: i64,
        since: i64,
    ) -> Result<Option<(i64, Vec<(i64, bool)>)>, BackendError>;

    // Messages (ops::mail). Each takes the principal and treats a mail
    // folder of another principal as missing.

    /// Every message of the principal's mail folder `collection`, in UID
    /// order, without content: what FindItem filters, sorts and pages
    /// over. `None` when the folder is not the principal's.
    async fn mail_entries(
        &self,
        principal: i64,
        collection: i64,
    ) -> Result<Option<Vec<MailEntry>>, BackendError>;
    /// One message of it.
    async fn mail_entry(
        &self,
        principal: i64,
        collection: i64,
        uid: i64,
    ) -> Result<Option<MailEntry>, BackendError>;
    /// The metadata parsed at delivery (envelope, MIME structure) of those
    /// messages of the folder that are there, by UID.
    async fn mail_meta(
        &self,
        principal: i64,
        collection: i64,
        uids: &[i64],
    ) -> Result<HashMap<i64, MessageMeta>, BackendError>;
    /// The decoded subject and `Date:` (Unix seconds) of every message of
    /// the folder, by UID, as kept beside the metadata: what restrictions
    /// and sort orders on them read without it. Empty when the folder is
    /// not the principal's.
    async fn mail_subjects(
        &self,
        principal: i64,
        collection: i64,
    ) -> Result<Vec<(i64, Option<String>, Option<i64>)>, BackendError>;
    /// Replaces the message's keywords with `keywords` (system flags
    /// stay): its new modseq, `None` when there is no such message.
    async fn set_mail_keywords(
        &self,
        principal: i64,
        collection: i64,
        uid: i64,
        keywords: &[String],
    ) -> Result<Option<i64>, BackendError>;
    /// Sets the system flags `set` and clears `clear` (bits of
    /// [`outpost_mailmeta::flags`]) of a message: its new modseq, `None`
    /// when there is no such message.
    async fn set_mail_system_flags(
        &self,
        principal: i64,
        collection: i64,
        uid: i64,
        set: i64,
        clear: i64,
    ) -> Result<Option<i64>, BackendError>;
    /// Copies messages to another mail folder of the principal: (old UID,
    /// new UID) of those copied.
    async fn copy_mail(
        &self,
        principal: i64,
        from: i64,
        uids: &[i64],
        to: i64,
    ) -> Result<Vec<(i64, i64)>, BackendError>;
    /// The MIME message of a draft's fields, written by the one composer
    /// (the same as ActiveSync drafts), `From:` being `from` or else the
    /// principal's name and primary address. `None` when an address list
    /// does not read as one.
    async fn compose_mail(
        &self,
        principal: i64,
        draft: &outpost_activesync::drafts::Draft,
        from: Option<&str>,
    ) -> Result<Option<Vec<u8>>, BackendError>;
    /// Files a message in the principal's mail folder (not as a draft),
    /// \Seen when `seen`: the new (UID, modseq), `None` when the folder is
    /// not the principal's.
    async fn file_mail(
        &self,
        principal: i64,
        collection: i64,
        raw: &[u8],
        seen: bool,
    ) -> Result<Option<(i64, i64)>, BackendError>;
    /// What `address` is to this server: a user (with its out-of-office,
    /// for MailTips), a distribution group (with its members), an address
    /// of a hosted domain that nobody has, or an outside address.
    async fn recipient(&self, principal: i64, address: &str) -> Result<Recipient, BackendError>;
    /// The primary addresses of the distribution groups among the GAL
    /// entries `search_gal` finds for `query` (ResolveNames' MailboxType).
    async fn gal_groups(
        &self,
        principal: i64,
        query: &str,
        limit: usize,
    ) -> Result<Vec<String>, BackendError>;
    /// Objects of the principal's calendar `collection` that may have an
    /// instance in `[start, end)` (the store's instance index, as a CalDAV
    /// time-range query finds them; the caller expands them): their item
    /// numbers.
    async fn calendar_range(
        &self,
        principal: i64,
        collection: i64,
        start: i64,
        end: i64,
    ) -> Result<Vec<i64>, BackendError>;
    /// The zone of the principal's default calendar (its
    /// CALDAV:calendar-timezone) as an IANA name, if it has one: the
    /// user's zone as far as this server knows it.
    async fn time_zone(&self, principal: i64) -> Result<Option<String>, BackendError>;
    /// The item number of the object of the principal's calendar or
    /// address book `collection` at resource name `name` (the last
    /// segment of its DAV URL, MAPI's PR_URL_COMP_NAME), if there is one.
    async fn pim_item_by_name(
        &self,
        principal: i64,
        collection: i64,
        name: &str,
    ) -> Result<Option<i64>, BackendError>;
    /// The principal's contacts (its own address books) whose name,
    /// nickname, organisation or address contains `text`: (address book,
    /// item), at most `limit`.
    async fn search_contacts(
        &self,
        principal: i64,
        text: &str,
        limit: usize,
    ) -> Result<Vec<(i64, i64)>, BackendError>;
}

/// What an address is to this server ([`EwsBackend::recipient`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recipient {
    User {
        name: String,
        /// The primary address.
        email: String,
        oof: outpost_activesync::settings::Oof,
    },
    Group {
        name: String,
        email: String,
        members: Vec<Member>,
    },
    /// In a hosted domain, but nobody has it.
    Unknown,
    /// Not in a hosted domain.
    External,
}

/// A member of a distribution group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub email: String,
    /// A group itself.
    pub group: bool,
    /// An outside address.
    pub external: bool,
}

/// A message as [`EwsBackend::mail_entries`] lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailEntry {
    pub uid: i64,
    pub modseq: i64,
    /// Unix seconds.
    pub internal_date: i64,
    pub size: i64,
    /// System flags as bits ([`outpost_mailmeta::flags`]).
    pub flags: i64,
    pub keywords: Vec<String>,
}

/// What an operation works with.
pub struct Ctx<'a> {
    pub backend: &'a dyn EwsBackend,
    pub user: &'a AuthUser,
    /// The schema version asked for (echoed in `ServerVersionInfo`).
    pub version: &'a str,
    /// The request's `TimeZoneContext` (a Windows zone id).
    pub time_zone: Option<&'a str>,
    pub limits: &'a Limits,
    /// The process's notification subscriptions.
    pub subscriptions: &'a ops::push::Subscriptions,
}

struct Service {
    backend: Arc<dyn EwsBackend>,
    limits: Limits,
    subscriptions: ops::push::Subscriptions,
}

/// The EWS router: the SOAP endpoint and the WSDL. It expects an
/// [`AuthUser`] in the request's extensions (the binary wraps it with
/// `outpost_http::require_user`).
pub fn router(backend: Arc<dyn EwsBackend>, limits: Limits) -> Router {
    Router::new()
        .fallback(any(handle))
        .with_state(Arc::new(Service {
            backend,
            limits,
            subscriptions: Default::default(),
        }))
}

fn plain(status: StatusCode, text: &str) -> Response {
    let mut r = Response::new(Body::from(format!("{text}\n")));
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

fn xml(text: String) -> Response {
    let mut r = Response::new(Body::from(text));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    r
}

async fn handle(State(svc): State<Arc<Service>>, req: Request) -> Response {
    let path = req.uri().path();
    if path.eq_ignore_ascii_case(WSDL_PATH) {
        return match *req.method() {
            Method::GET | Method::HEAD => xml(wsdl::document(&public_url(&req))),
            _ => plain(StatusCode::METHOD_NOT_ALLOWED, "Use GET"),
        };
    }
    if !path.eq_ignore_ascii_case(PATH) {
        return plain(StatusCode::NOT_FOUND, "Not found");
    }
    if req.method() != Method::POST {
        let mut r = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "Exchange Web Services: POST SOAP requests here",
        );
        r.headers_mut()
            .insert(http::header::ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    let Some(user) = req.extensions().get::<AuthUser>().cloned() else {
        return plain(StatusCode::UNAUTHORIZED, "Authentication required");
    };
    let long_poll = req.extensions().get::<outpost_http::LongPoll>().cloned();
    let limit = svc.limits.max_body;
    let body = match axum::body::to_bytes(req.into_body(), limit).await {
        Ok(b) => b,
        Err(_) => {
            return xml(soap::fault(
                soap::DEFAULT_VERSION,
                &soap::Fault::new(
                    "ErrorRequestTooLarge",
                    format!("The request is over the limit of {limit} bytes or was cut off."),
                ),
            ))
        }
    };
    let request = match soap::parse(&body, &soap::limits(limit)) {
        Ok(r) => r,
        Err(f) => return xml(soap::fault(soap::DEFAULT_VERSION, &f)),
    };
    let ctx = Ctx {
        backend: svc.backend.as_ref(),
        user: &user,
        version: &request.version,
        time_zone: request.time_zone.as_deref(),
        limits: &svc.limits,
        subscriptions: &svc.subscriptions,
    };
    let name = request.operation.name.local.clone();
    if request.operation.is(soap::NS_M, "GetStreamingEvents") && request.impersonate.is_none() {
        return match ops::push::streaming_request(&ctx, &request.operation) {
            Err(answer) => xml(soap::envelope(&request.version, answer)),
            Ok((ids, until)) => streaming(
                svc.clone(),
                user.clone(),
                request.version.clone(),
                ids,
                until,
                long_poll,
            ),
        };
    }
    let answer = match &request.impersonate {
        Some(who) if !ops::is_own_address(&ctx, who).await => Err(soap::Fault::new(
            "ErrorImpersonateUserDenied",
            "Impersonation is not granted to this account.",
        )),
        _ => Box::pin(ops::dispatch(&ctx, &request.operation)).await,
    };
    match answer {
        Ok(body) => xml(soap::envelope(&request.version, body)),
        Err(f) => {
            tracing::info!(login = %user.login, operation = %name, code = f.code, "ews: fault: {}", f.message);
            xml(soap::fault(&request.version, &f))
        }
    }
}

/// A GetStreamingEvents answer: a body that stays open, one SOAP
/// envelope per message, written by a task that waits on the store's
/// change channels (see [`ops::push::stream`]). The request moves to the
/// long-poll share of the per-address limits while it is open.
fn streaming(
    svc: Arc<Service>,
    user: AuthUser,
    version: String,
    ids: Vec<String>,
    until: std::time::Duration,
    long_poll: Option<outpost_http::LongPoll>,
) -> Response {
    if let Some(lp) = &long_poll {
        lp.park();
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(64);
    tokio::spawn(async move {
        let _held = long_poll;
        let ctx = Ctx {
            backend: svc.backend.as_ref(),
            user: &user,
            version: &version,
            time_zone: None,
            limits: &svc.limits,
            subscriptions: &svc.subscriptions,
        };
        let mut send = |el: outpost_xml::Element| {
            tx.try_send(bytes::Bytes::from(soap::envelope(&version, el)))
                .is_ok()
        };
        if let Err(e) = ops::push::stream(&ctx, &ids, until, &mut send).await {
            tracing::info!(login = %user.login, "ews: streaming notifications ended: {e:?}");
        }
    });
    let body = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, std::convert::Infallible>(b), rx))
    });
    let mut r = Response::new(Body::from_stream(body));
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml; charset=utf-8"),
    );
    r
}

/// `https://host[:port]` of this request, for the WSDL's address.
fn public_url(req: &Request) -> String {
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'))
        })
        .unwrap_or("localhost");
    format!("https://{host}")
}
