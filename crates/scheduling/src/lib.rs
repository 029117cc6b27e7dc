//! Calendar scheduling (RFC 6638 implicit scheduling, iTIP RFC 5546, iMIP
//! RFC 6047) as an engine every protocol shares: CalDAV PUT/DELETE today,
//! ActiveSync MeetingResponse, EWS CreateItem with attendees and JMAP
//! later call the same [`Scheduler`].
//!
//! - [`Scheduler::after_write`]: after a calendar object was stored or
//!   deleted, the calendar's owner is the organizer or an attendee (by
//!   *every* address the directory gives the owner: primary, aliases, LDAP
//!   secondaries, so an invitation to an alias is the user's). The
//!   organizer's change becomes REQUESTs and CANCELs, an attendee's PARTSTAT
//!   change a REPLY ([`outpost_pim::itip`] decides which).
//! - Each recipient is resolved by the directory. A hosted user, room or
//!   resource gets the message applied to its calendar at once: a REQUEST
//!   creates or updates the copy in the default calendar (or wherever the
//!   copy already is, found by UID) with PARTSTAT=NEEDS-ACTION, a REPLY
//!   updates that attendee's PARTSTAT in the organizer's copy, a CANCEL
//!   marks the copy cancelled. Rooms and resources (calendar user type
//!   `room`/`resource`) answer by themselves: ACCEPTED unless another
//!   event of theirs overlaps an instance, then DECLINED (and no copy
//!   kept, so a declined booking does not block the slot); their REPLY
//!   goes back through the same engine. Anyone else gets an iMIP mail
//!   (`multipart/alternative`: a text part and `text/calendar;
//!   method=...`) sent through the one [`MailFlow::submit`] as the
//!   organizer's or attendee's address, so it is DKIM-signed and queued
//!   like any mail.
//! - Incoming iMIP: the mail flow hands calendar parts of delivered mail
//!   to the [`outpost_mailflow::ImipHandler`] this type implements
//!   (the binary installs it with `MailFlow::set_imip_handler`). The
//!   trait lives in the mail flow because this crate depends on the mail
//!   flow to send; the mail flow cannot depend back. A part is applied
//!   when its originator (the ORGANIZER of a REQUEST/CANCEL, the ATTENDEE
//!   of a REPLY) is the message's `From:` and is not a hosted address
//!   (hosted users schedule through the server; a mail claiming to come
//!   from one is not trusted), the recipient is an attendee (REQUEST,
//!   CANCEL) or the organizer (REPLY), and a stored copy it changes has
//!   the same organizer.
//! - [`Scheduler::free_busy`]: busy time of hosted calendar users from the
//!   store's precomputed instances (CalDAV outbox POST, EWS
//!   GetUserAvailability later).
//!
//! The calendar user of a write is the calendar's owner: a delegate
//! writing into a shared calendar schedules as the owner. The store has
//! no schedule inbox collection yet: messages are applied to calendars
//! directly (RFC 6638 allows the server to do so) and no inbox copy is
//! kept.

use std::sync::Arc;

use outpost_directory::{Directory, Lookup};
use outpost_mailflow::{ImipDelivery, ImipHandler, MailFlow};
use outpost_pim::itip::{self, ItipMessage, Method, Role, SchedulingObject};
use outpost_pim::{ComponentKind, IngestOptions, InstanceStatus, Limits, PimError};
use outpost_store::groupware::{
    BusyPeriod, CalendarUserType, CollectionKind, Precondition, PutOutcome, ScheduleState,
    DEFAULT_CALENDAR, DEFAULT_TASKS, MAX_OBJECT_BYTES,
};
use outpost_store::{Store, StoreError};
use tracing::{info, warn};

mod imip_out;

/// Instances of an invitation a room checks for conflicts; a longer
/// series is judged by its first ones.
pub const MAX_CONFLICT_CHECKS: usize = 200;
/// Longest free/busy range answered, in seconds (two years).
pub const MAX_FREE_BUSY_RANGE: i64 = 2 * 366 * 86_400;
/// Hosted recipients of one message (a bound on the work one PUT causes).
pub const MAX_RECIPIENTS: usize = 500;
/// Nested scheduling (an invitation a room answers, whose reply updates
/// the organizer) goes no deeper than this.
const MAX_DEPTH: u8 = 3;

#[derive(Debug, thiserror::Error)]
pub enum SchedError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("not a valid scheduling object: {0}")]
    Invalid(#[from] PimError),
    #[error("{0}")]
    BadRequest(String),
}

pub type Result<T, E = SchedError> = std::result::Result<T, E>;

/// What became of one message to one recipient, as RFC 6638's
/// SCHEDULE-STATUS says it ([`Status::schedule_status`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Applied to a hosted calendar user's calendar (1.2).
    Delivered,
    /// Handed to the outbound queue as iMIP mail (1.1).
    Sent,
    /// Nothing to apply: the message is older than the recipient's copy,
    /// or there is no copy to update (1.2 as well: delivered, not an
    /// error).
    Ignored(String),
    /// A hosted domain, but nobody has the address (3.7).
    UnknownUser,
    /// Could not be delivered (5.1); the reason is for the log.
    Failed(String),
}

impl Status {
    /// The SCHEDULE-STATUS code (RFC 6638 §3.2.9): 1.2 delivered, 1.1
    /// sent, 3.7 invalid calendar user, 5.1 could not be delivered.
    pub fn schedule_status(&self) -> &'static str {
        match self {
            Status::Delivered | Status::Ignored(_) => "1.2",
            Status::Sent => "1.1",
            Status::UnknownUser => "3.7",
            Status::Failed(_) => "5.1",
        }
    }
}

/// One message to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub method: Method,
    /// The calendar address as the object lists it.
    pub recipient: String,
    pub status: Status,
}

/// What a write caused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The calendar owner's role in the object.
    pub role: Role,
    pub sent: Vec<Sent>,
}

/// Free/busy of one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FreeBusy {
    /// A hosted calendar user: busy periods, merged, in the range.
    Busy(Vec<BusyPeriod>),
    /// Not hosted here (no free/busy to give; RFC 6638 request-status 3.7
    /// for a CalDAV outbox POST).
    NotHosted,
    /// A hosted domain, but not one calendar user (unknown, or a group).
    Unknown,
}

/// The scheduling engine of one server: built once (`serve`), shared.
#[derive(Clone)]
pub struct Scheduler {
    flow: Arc<MailFlow>,
}

fn limits() -> Limits {
    Limits {
        max_bytes: MAX_OBJECT_BYTES,
        ..Limits::default()
    }
}

/// A resource name for a new copy: the UID where it is a safe segment,
/// else its hash.
fn object_name(uid: &str) -> String {
    let safe = !uid.is_empty()
        && uid.len() <= 200
        && uid
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
        && !uid.starts_with('.');
    if safe {
        format!("{uid}.ics")
    } else {
        use sha2::Digest;
        let h = sha2::Sha256::digest(uid.as_bytes());
        format!("{}.ics", hex::encode(&h[..16]))
    }
}

/// A new Schedule-Tag value.
fn new_tag() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// The tag after a write from `old` (with its state) to `new`: kept when
/// the change does not count ([`itip::schedule_tag_changes`]), else new.
fn next_tag(
    old: Option<(&SchedulingObject, &ScheduleState)>,
    new: &SchedulingObject,
    organizer_side: bool,
) -> String {
    match old {
        Some((o, st)) if !itip::schedule_tag_changes(o, new, organizer_side) => {
            st.tag.clone().unwrap_or_else(new_tag)
        }
        _ => new_tag(),
    }
}

impl Scheduler {
    pub fn new(flow: Arc<MailFlow>) -> Scheduler {
        Scheduler { flow }
    }

    fn dir(&self) -> &Directory {
        self.flow.directory()
    }

    fn store(&self) -> &Store {
        self.flow.store()
    }

    /// Call after a successful PUT (`new` Some) or DELETE (`new` None) of a
    /// calendar object in `collection`, with the object's bytes before
    /// (`old`, None when it was created) and after. `principal` is who
    /// wrote it; the calendar's owner is the calendar user. Sends what the
    /// change implies and says what became of each message. A `new` that
    /// does not parse is an error; an `old` that does not is read as none.
    pub async fn after_write(
        &self,
        principal: i64,
        collection: i64,
        old: Option<&[u8]>,
        new: Option<&[u8]>,
    ) -> Result<Outcome> {
        self.after_write_with(principal, collection, old, new, true)
            .await
    }

    /// [`Scheduler::after_write`], with `reply` false when the client asked
    /// that an attendee's change send the organizer no reply
    /// (`Schedule-Reply: F`, RFC 6638 §8.1). An organizer's changes are
    /// sent either way: the header is only about attendees.
    pub async fn after_write_with(
        &self,
        principal: i64,
        collection: i64,
        old: Option<&[u8]>,
        new: Option<&[u8]>,
        reply: bool,
    ) -> Result<Outcome> {
        let owner = match self.store().groupware_collection_by_id(collection).await? {
            Some(c) if c.kind == CollectionKind::Calendar => c.owner,
            Some(_) => {
                return Ok(Outcome {
                    role: Role::None,
                    sent: Vec::new(),
                })
            }
            None => principal,
        };
        let new = new.map(|b| itip::parse(b, &limits())).transpose()?;
        let old = old.and_then(|b| itip::parse(b, &limits()).ok());
        let addresses = self.dir().addresses_of(owner).await?;
        let role = match new.as_ref().or(old.as_ref()) {
            Some(o) => o.role(&addresses),
            None => Role::None,
        };
        let messages: Vec<ItipMessage> = match &role {
            Role::Organizer(me) => itip::organizer_messages(old.as_ref(), new.as_ref(), me),
            Role::Attendee(_) if !reply => Vec::new(),
            Role::Attendee(me) => itip::attendee_reply(old.as_ref(), new.as_ref(), me)
                .into_iter()
                .collect(),
            Role::None => Vec::new(),
        };
        let mut sent = Vec::new();
        for m in &messages {
            sent.extend(self.dispatch(owner, m, 0).await);
        }
        if let (Role::Organizer(_), Some(n)) = (&role, &new) {
            if let Err(e) = self.write_status(owner, collection, &n.uid, &sent).await {
                warn!("scheduling: SCHEDULE-STATUS of {} not written: {e}", n.uid);
            }
        }
        Ok(Outcome { role, sent })
    }

    /// The scheduling state a client's write of `new` over `old` (with
    /// its state) gives a calendar object in `collection`: a Schedule-Tag
    /// for a scheduling object resource, new when the change counts
    /// (RFC 6638 §3.2.10; an attendee saving its answer keeps it), and on
    /// an attendee's copy the organizer's last SEQUENCE and DTSTAMP kept.
    /// The DAV adapter stores it with the object
    /// (`Store::put_icalendar_scheduled`).
    pub async fn client_write_state(
        &self,
        collection: i64,
        old: Option<(&[u8], &ScheduleState)>,
        new: &[u8],
    ) -> Result<ScheduleState> {
        let owner = match self.store().groupware_collection_by_id(collection).await? {
            Some(c) if c.kind == CollectionKind::Calendar => c.owner,
            _ => return Ok(ScheduleState::default()),
        };
        let Ok(n) = itip::parse(new, &limits()) else {
            return Ok(ScheduleState::default());
        };
        let old = old.and_then(|(b, st)| Some((itip::parse(b, &limits()).ok()?, st)));
        let addresses = self.dir().addresses_of(owner).await?;
        let old_ref = old.as_ref().map(|(o, st)| (o, *st));
        Ok(match n.role(&addresses) {
            Role::None => ScheduleState::default(),
            Role::Organizer(_) => ScheduleState {
                tag: Some(next_tag(old_ref, &n, true)),
                organizer_sequence: None,
                organizer_stamp: None,
            },
            Role::Attendee(_) => {
                let kept = old_ref.map(|(_, st)| st.clone()).unwrap_or_default();
                ScheduleState {
                    tag: Some(next_tag(old_ref, &n, false)),
                    ..kept
                }
            }
        })
    }

    /// Writes what became of each REQUEST and CANCEL into the organizer's
    /// copy (RFC 6638 §3.2.9: SCHEDULE-STATUS on each ATTENDEE). A server
    /// change: the Schedule-Tag stays. A client writing the copy at that
    /// moment wins (If-Match); the next try reads its version.
    async fn write_status(
        &self,
        owner: i64,
        collection: i64,
        uid: &str,
        sent: &[Sent],
    ) -> Result<()> {
        let statuses: Vec<(String, String)> = sent
            .iter()
            .filter(|s| matches!(s.method, Method::Request | Method::Cancel))
            .map(|s| (s.recipient.clone(), s.status.schedule_status().to_string()))
            .collect();
        if statuses.is_empty() {
            return Ok(());
        }
        for _ in 0..3 {
            let Some(meta) = self
                .store()
                .calendar_objects_by_uid(owner, uid)
                .await?
                .into_iter()
                .find(|m| m.collection == collection)
            else {
                return Ok(());
            };
            let Some(o) = self
                .store()
                .groupware_object(collection, &meta.name)
                .await?
            else {
                continue;
            };
            let Ok(obj) = itip::parse(&o.data, &limits()) else {
                return Ok(());
            };
            let Some(text) = itip::set_schedule_status(&obj, &statuses) else {
                return Ok(());
            };
            match self
                .store()
                .put_icalendar(
                    collection,
                    &meta.name,
                    Arc::from(text.into_bytes()),
                    Precondition::IfMatch(o.meta.etag.clone()),
                )
                .await?
            {
                PutOutcome::PreconditionFailed => continue,
                _ => return Ok(()),
            }
        }
        Ok(())
    }

    /// Carries one message to its recipients: hosted ones through their
    /// calendars, the others as one iMIP mail.
    async fn dispatch(&self, sender: i64, msg: &ItipMessage, depth: u8) -> Vec<Sent> {
        let mut out = Vec::new();
        let parsed = match itip::parse(msg.bytes(), &limits()) {
            Ok(p) => p,
            Err(e) => {
                warn!(
                    "scheduling: a {} for {} does not parse again: {e}",
                    msg.method.as_str(),
                    msg.uid
                );
                return out;
            }
        };
        let mut outside: Vec<String> = Vec::new();
        let mut hosted = 0usize;
        for r in &msg.recipients {
            let status = match self.dir().resolve(r).await {
                Ok(Lookup::Local(res)) => {
                    for x in &res.external {
                        if !outside.contains(x) {
                            outside.push(x.clone());
                        }
                    }
                    // One status for the address: the first failure, else
                    // delivered if any user got it, else ignored.
                    let mut status: Option<Status> = None;
                    for u in res.users.iter().filter(|u| u.principal_id != sender) {
                        hosted += 1;
                        if hosted > MAX_RECIPIENTS {
                            status = Some(Status::Failed("too many hosted recipients".into()));
                            break;
                        }
                        let s = Box::pin(self.apply(u.principal_id, r, &msg.from, &parsed, depth))
                            .await;
                        let replace = match (&status, &s) {
                            (None, _) => true,
                            (Some(Status::Failed(_)), _) => false,
                            (_, Status::Failed(_)) => true,
                            (Some(Status::Ignored(_)), Status::Delivered) => true,
                            _ => false,
                        };
                        if replace {
                            status = Some(s);
                        }
                    }
                    match status {
                        Some(s) => s,
                        None => continue,
                    }
                }
                Ok(Lookup::NotLocal) => {
                    if !outside.contains(r) {
                        outside.push(r.clone());
                    }
                    continue;
                }
                Ok(Lookup::Unknown) => Status::UnknownUser,
                Err(e) => Status::Failed(e.to_string()),
            };
            info!(
                "scheduling: {} {} from {} to {r}: {status:?}",
                msg.method.as_str(),
                msg.uid,
                msg.from
            );
            out.push(Sent {
                method: msg.method,
                recipient: r.clone(),
                status,
            });
        }
        if !outside.is_empty() {
            let status = match imip_out::send(&self.flow, sender, msg, &outside).await {
                Ok(()) => Status::Sent,
                Err(e) => Status::Failed(e),
            };
            info!(
                "scheduling: {} {} from {} to {} outside address(es) by mail: {status:?}",
                msg.method.as_str(),
                msg.uid,
                msg.from,
                outside.len()
            );
            for r in outside {
                out.push(Sent {
                    method: msg.method,
                    recipient: r,
                    status: status.clone(),
                });
            }
        }
        out
    }

    /// Applies a message to a hosted calendar user's calendar. `listed`
    /// is the address the message was sent to (as the object lists it),
    /// `originator` who sent it (organizer, or the replying attendee).
    async fn apply(
        &self,
        principal: i64,
        listed: &str,
        originator: &str,
        msg: &SchedulingObject,
        depth: u8,
    ) -> Status {
        match self.apply_inner(principal, listed, msg, depth).await {
            Ok(s) => s,
            Err(e) => {
                warn!(
                    "scheduling: applying {} {} from {originator} for principal {principal} failed: {e}",
                    msg.method.as_deref().unwrap_or("?"),
                    msg.uid
                );
                Status::Failed(e.to_string())
            }
        }
    }

    async fn apply_inner(
        &self,
        principal: i64,
        listed: &str,
        msg: &SchedulingObject,
        depth: u8,
    ) -> Result<Status> {
        let method = msg
            .method
            .as_deref()
            .and_then(Method::parse)
            .ok_or_else(|| SchedError::BadRequest("no scheduling METHOD".into()))?;
        let mine = self.dir().addresses_of(principal).await?;
        // Up to three tries: a client may write the copy between our read
        // and our write (If-Match keeps that write).
        for _ in 0..3 {
            let existing = self
                .store()
                .calendar_objects_by_uid(principal, &msg.uid)
                .await?
                .into_iter()
                .next();
            let stored = match &existing {
                Some(meta) => match self
                    .store()
                    .groupware_object(meta.collection, &meta.name)
                    .await?
                {
                    Some(o) => {
                        let mut s = itip::parse(&o.data, &limits())?;
                        s.received =
                            o.meta
                                .schedule
                                .organizer_sequence
                                .map(|sequence| itip::Received {
                                    sequence,
                                    stamp: o.meta.schedule.organizer_stamp,
                                });
                        Some((o.meta, s))
                    }
                    None => continue,
                },
                None => None,
            };
            if let Some((_, s)) = &stored {
                let expected = match method {
                    Method::Reply => s
                        .organizer
                        .as_deref()
                        .filter(|o| mine.iter().any(|m| m == o)),
                    _ => s
                        .organizer
                        .as_deref()
                        .filter(|o| *o == msg.organizer.as_deref().unwrap_or("")),
                };
                if expected.is_none() {
                    return Ok(Status::Ignored(format!(
                        "the stored copy of {} has another organizer",
                        msg.uid
                    )));
                }
            }
            let text = match method {
                Method::Request => itip::apply_request(stored.as_ref().map(|s| &s.1), msg, &mine)?,
                Method::Reply => match &stored {
                    Some((_, s)) => itip::apply_reply(s, msg)?,
                    None => {
                        return Ok(Status::Ignored(format!("no copy of {} to update", msg.uid)))
                    }
                },
                Method::Cancel => match &stored {
                    Some((_, s)) => itip::apply_cancel(s, msg)?,
                    None => {
                        return Ok(Status::Ignored(format!("no copy of {} to cancel", msg.uid)))
                    }
                },
            };
            let Some(mut text) = text else {
                return Ok(Status::Ignored(format!(
                    "{} is older than the stored copy",
                    msg.uid
                )));
            };
            // A room or resource answers a request by itself.
            let mut answer: Option<(SchedulingObject, SchedulingObject)> = None;
            if method == Method::Request {
                let cutype = self.store().calendar_user_type(principal).await?;
                if matches!(cutype, CalendarUserType::Room | CalendarUserType::Resource) {
                    let asked = itip::parse(text.as_bytes(), &limits())?;
                    if asked.partstat(listed).as_deref() == Some("NEEDS-ACTION") {
                        let busy = self.conflicts(principal, text.as_bytes(), &msg.uid).await?;
                        let partstat = if busy { "DECLINED" } else { "ACCEPTED" };
                        text = itip::set_attendee_partstat(&asked, listed, partstat);
                        answer = Some((asked, itip::parse(text.as_bytes(), &limits())?));
                        if busy {
                            // A declined booking keeps no copy: it would
                            // count as busy time.
                            if let Some((meta, _)) = &stored {
                                self.store()
                                    .delete_object(
                                        meta.collection,
                                        &meta.name,
                                        Precondition::IfMatch(meta.etag.clone()),
                                    )
                                    .await?;
                            }
                            info!("scheduling: {listed} declines {}: busy", msg.uid);
                            self.answer(principal, listed, answer, depth).await;
                            return Ok(Status::Delivered);
                        }
                        info!("scheduling: {listed} accepts {}", msg.uid);
                    }
                }
            }
            // The organizer's message to an attendee's copy: remembered
            // with it (what orders the next one), and a new Schedule-Tag
            // when what changed counts. A REPLY merged into the
            // organizer's copy keeps its tag (RFC 6638 §3.2.10).
            let state = match method {
                Method::Reply => None,
                Method::Request | Method::Cancel => {
                    let new = itip::parse(text.as_bytes(), &limits())?;
                    let old = stored.as_ref().map(|(m, s)| (s, &m.schedule));
                    Some(ScheduleState {
                        tag: Some(next_tag(old, &new, true)),
                        organizer_sequence: Some(msg.sequence),
                        organizer_stamp: msg.stamp,
                    })
                }
            };
            let data: Arc<[u8]> = Arc::from(text.into_bytes());
            let outcome = match &stored {
                Some((meta, _)) => {
                    self.put_copy(
                        meta.collection,
                        &meta.name,
                        data,
                        Precondition::IfMatch(meta.etag.clone()),
                        &state,
                    )
                    .await?
                }
                None => {
                    let cal = self.default_calendar(principal, msg.kind).await?;
                    let name = object_name(&msg.uid);
                    match self
                        .put_copy(
                            cal,
                            &name,
                            data.clone(),
                            Precondition::IfNoneMatchAny,
                            &state,
                        )
                        .await?
                    {
                        PutOutcome::PreconditionFailed => {
                            // The name is taken by another object: a
                            // name of our own.
                            let name = format!("{:032x}.ics", rand::random::<u128>());
                            self.put_copy(cal, &name, data, Precondition::IfNoneMatchAny, &state)
                                .await?
                        }
                        o => o,
                    }
                }
            };
            return match outcome {
                PutOutcome::Created(_) | PutOutcome::Replaced(_) => {
                    if answer.is_some() {
                        self.answer(principal, listed, answer, depth).await;
                    }
                    Ok(Status::Delivered)
                }
                PutOutcome::PreconditionFailed | PutOutcome::UidConflict { .. } => continue,
                PutOutcome::NotAllowed(why) => Ok(Status::Failed(why)),
                PutOutcome::Invalid(e) => Ok(Status::Failed(e.to_string())),
            };
        }
        Ok(Status::Failed(format!(
            "{} kept changing; gave up",
            msg.uid
        )))
    }

    /// A server write of a copy: with its scheduling state when given,
    /// else leaving the state as it is.
    async fn put_copy(
        &self,
        collection: i64,
        name: &str,
        data: Arc<[u8]>,
        pre: Precondition,
        state: &Option<ScheduleState>,
    ) -> Result<PutOutcome> {
        Ok(match state {
            Some(st) => {
                self.store()
                    .put_icalendar_scheduled(collection, name, data, pre, st.clone())
                    .await?
            }
            None => {
                self.store()
                    .put_icalendar(collection, name, data, pre)
                    .await?
            }
        })
    }

    /// Sends the REPLY of a room or resource that answered by itself.
    async fn answer(
        &self,
        principal: i64,
        listed: &str,
        answer: Option<(SchedulingObject, SchedulingObject)>,
        depth: u8,
    ) {
        let Some((asked, answered)) = answer else {
            return;
        };
        if depth >= MAX_DEPTH {
            return;
        }
        if let Some(reply) = itip::attendee_reply(Some(&asked), Some(&answered), listed) {
            Box::pin(self.dispatch(principal, &reply, depth + 1)).await;
        }
    }

    /// The calendar a new copy of a `kind` object goes to: the default
    /// calendar ([`DEFAULT_CALENDAR`]) for events, the task list
    /// ([`DEFAULT_TASKS`]) for tasks, created on first use; a user who
    /// removed it (or changed what it takes) gets the first writable
    /// calendar that takes the kind.
    async fn default_calendar(&self, principal: i64, kind: ComponentKind) -> Result<i64> {
        self.store().ensure_default_groupware(principal).await?;
        let name = match kind {
            ComponentKind::Todo => DEFAULT_TASKS.0,
            _ => DEFAULT_CALENDAR.0,
        };
        let takes = |c: &outpost_store::groupware::GroupwareCollection| {
            !c.read_only && (c.components.is_empty() || c.components.contains(&kind))
        };
        if let Some(c) = self
            .store()
            .groupware_collection(principal, CollectionKind::Calendar, name)
            .await?
            .filter(|c| takes(c))
        {
            return Ok(c.id);
        }
        self.store()
            .groupware_collections(principal, Some(CollectionKind::Calendar))
            .await?
            .into_iter()
            .find(|c| takes(c))
            .map(|c| c.id)
            .ok_or_else(|| {
                SchedError::Store(StoreError::NotFound(format!(
                    "a calendar of principal {principal} that takes {kind}"
                )))
            })
    }

    /// Does another event of the principal overlap an instance of this
    /// object? Instances over the store's window, at most
    /// [`MAX_CONFLICT_CHECKS`]; other objects with the same UID (an older
    /// copy of this one) do not count, nor transparent or cancelled ones.
    async fn conflicts(&self, principal: i64, data: &[u8], uid: &str) -> Result<bool> {
        let mut opts = IngestOptions::new(outpost_store::now());
        opts.limits = limits();
        let obj = outpost_pim::ingest_icalendar(data, &opts)?;
        let calendars = self
            .store()
            .groupware_collections(principal, Some(CollectionKind::Calendar))
            .await?;
        for inst in obj.index.instances.iter().take(MAX_CONFLICT_CHECKS) {
            if inst.transparent || inst.status == InstanceStatus::Cancelled {
                continue;
            }
            for cal in &calendars {
                let hits = self
                    .store()
                    .time_range_candidates(
                        cal.id,
                        inst.start,
                        inst.end.max(inst.start + 1),
                        Some(ComponentKind::Event),
                    )
                    .await?;
                for hit in hits.into_iter().filter(|h| h.meta.uid != uid) {
                    let busy = if hit.exact {
                        self.store()
                            .object_instances(hit.meta.id, inst.start, inst.end.max(inst.start + 1))
                            .await?
                            .iter()
                            .any(|i| !i.transparent && i.status != InstanceStatus::Cancelled)
                    } else {
                        let Some(o) = self
                            .store()
                            .groupware_object(hit.meta.collection, &hit.meta.name)
                            .await?
                        else {
                            continue;
                        };
                        let mut w = opts;
                        w.window = outpost_pim::Window {
                            start: inst.start,
                            end: inst.end.max(inst.start + 1),
                        };
                        outpost_pim::ingest_icalendar(&o.data, &w).is_ok_and(|x| {
                            x.index
                                .instances
                                .iter()
                                .any(|i| !i.transparent && i.status != InstanceStatus::Cancelled)
                        })
                    };
                    if busy {
                        return Ok(true);
                    }
                }
            }
        }
        Ok(false)
    }

    /// Busy time of each address over `[start, end)` (CalDAV outbox POST
    /// of a VFREEBUSY request; [`outpost_pim::itip::free_busy_reply`]
    /// writes the answer).
    pub async fn free_busy(
        &self,
        addresses: &[String],
        start: i64,
        end: i64,
    ) -> Result<Vec<(String, FreeBusy)>> {
        if end <= start || end - start > MAX_FREE_BUSY_RANGE {
            return Err(SchedError::BadRequest(format!(
                "free/busy range must be positive and at most {} days",
                MAX_FREE_BUSY_RANGE / 86_400
            )));
        }
        if addresses.len() > MAX_RECIPIENTS {
            return Err(SchedError::BadRequest(format!(
                "at most {MAX_RECIPIENTS} addresses per free/busy request"
            )));
        }
        let mut out = Vec::with_capacity(addresses.len());
        for a in addresses {
            let a = outpost_pim::calcard::icalendar::utils::strip_mailto_scheme(a.trim())
                .trim()
                .to_lowercase();
            let fb = match self.dir().resolve(&a).await? {
                Lookup::Local(res) if res.users.len() == 1 && res.external.is_empty() => {
                    FreeBusy::Busy(
                        self.store()
                            .free_busy(res.users[0].principal_id, start, end)
                            .await?,
                    )
                }
                Lookup::Local(_) | Lookup::Unknown => FreeBusy::Unknown,
                Lookup::NotLocal => FreeBusy::NotHosted,
            };
            out.push((a, fb));
        }
        Ok(out)
    }

    /// Applies a calendar part received by mail (the
    /// [`ImipHandler`] half); what it refuses is logged and returned.
    pub async fn receive_imip(&self, d: &ImipDelivery) -> Status {
        match self.receive_inner(d).await {
            Ok(s) => s,
            Err(e) => Status::Failed(e.to_string()),
        }
    }

    async fn receive_inner(&self, d: &ImipDelivery) -> Result<Status> {
        let msg = itip::parse(&d.calendar, &limits())?;
        if msg.method.as_deref() == Some("REFRESH") {
            return self.refresh(d, &msg).await;
        }
        let method = msg
            .method
            .as_deref()
            .and_then(Method::parse)
            .ok_or_else(|| {
                SchedError::BadRequest(format!("METHOD {:?} is not applied", msg.method))
            })?;
        let originator = match method {
            Method::Request | Method::Cancel => msg.organizer.clone(),
            Method::Reply => {
                let a = msg.attendees();
                if a.len() != 1 {
                    return Err(SchedError::BadRequest(
                        "a REPLY names exactly one attendee".into(),
                    ));
                }
                Some(a[0].address.clone())
            }
        }
        .ok_or_else(|| SchedError::BadRequest("no originator (ORGANIZER/ATTENDEE)".into()))?;
        if !d.from.contains(&originator) {
            return Err(SchedError::BadRequest(format!(
                "the message is from {:?}, the {} from {originator}",
                d.from,
                method.as_str()
            )));
        }
        if !matches!(self.dir().resolve(&originator).await?, Lookup::NotLocal) {
            return Err(SchedError::BadRequest(format!(
                "{originator} is hosted here: its scheduling does not come by mail"
            )));
        }
        let mine = self.dir().addresses_of(d.principal_id).await?;
        let listed = match method {
            Method::Reply => msg.organizer.clone().filter(|o| mine.contains(o)),
            _ => msg
                .attendees()
                .into_iter()
                .map(|p| p.address)
                .find(|a| mine.contains(a)),
        }
        .ok_or_else(|| {
            SchedError::BadRequest(format!(
                "{} is not {} of {}",
                d.address,
                if method == Method::Reply {
                    "the organizer"
                } else {
                    "an attendee"
                },
                msg.uid
            ))
        })?;
        let status = self
            .apply(d.principal_id, &listed, &originator, &msg, 0)
            .await;
        info!(
            "scheduling: iMIP {} {} from {originator} for {listed}: {status:?}",
            method.as_str(),
            msg.uid
        );
        Ok(status)
    }
}

impl Scheduler {
    /// An outside attendee asks for the current version (RFC 5546
    /// §3.2.6, REFRESH): the organizer side answers with a REQUEST of its
    /// copy to that attendee alone (a CANCEL when it is cancelled). The
    /// REFRESH must come from the attendee (its `From:`), be addressed to
    /// the organizer's copy's organizer, and name an attendee of it.
    async fn refresh(&self, d: &ImipDelivery, msg: &SchedulingObject) -> Result<Status> {
        let a = msg.attendees();
        let [asker] = a.as_slice() else {
            return Err(SchedError::BadRequest(
                "a REFRESH names exactly one attendee".into(),
            ));
        };
        let asker = asker.address.clone();
        if !d.from.contains(&asker) {
            return Err(SchedError::BadRequest(format!(
                "the message is from {:?}, the REFRESH from {asker}",
                d.from
            )));
        }
        if !matches!(self.dir().resolve(&asker).await?, Lookup::NotLocal) {
            return Err(SchedError::BadRequest(format!(
                "{asker} is hosted here: its scheduling does not come by mail"
            )));
        }
        let mine = self.dir().addresses_of(d.principal_id).await?;
        let Some(meta) = self
            .store()
            .calendar_objects_by_uid(d.principal_id, &msg.uid)
            .await?
            .into_iter()
            .next()
        else {
            return Ok(Status::Ignored(format!(
                "no copy of {} to refresh",
                msg.uid
            )));
        };
        let Some(o) = self
            .store()
            .groupware_object(meta.collection, &meta.name)
            .await?
        else {
            return Ok(Status::Ignored(format!(
                "no copy of {} to refresh",
                msg.uid
            )));
        };
        let copy = itip::parse(&o.data, &limits())?;
        let Role::Organizer(me) = copy.role(&mine) else {
            return Err(SchedError::BadRequest(format!(
                "{} is not the organizer of {}",
                d.address, msg.uid
            )));
        };
        let Some(answer) = itip::refresh_answer(&copy, &me, &asker) else {
            return Err(SchedError::BadRequest(format!(
                "{asker} is not an attendee of {}",
                msg.uid
            )));
        };
        let sent = self.dispatch(d.principal_id, &answer, 0).await;
        info!(
            "scheduling: REFRESH {} from {asker}: {} sent",
            msg.uid,
            answer.method.as_str()
        );
        Ok(sent
            .into_iter()
            .next()
            .map(|s| s.status)
            .unwrap_or(Status::Ignored("nothing to send".into())))
    }
}

#[async_trait::async_trait]
impl ImipHandler for Scheduler {
    async fn received(&self, d: ImipDelivery) {
        let s = self.receive_imip(&d).await;
        if let Status::Failed(why) = &s {
            info!(
                "scheduling: iMIP {} to {} not applied: {why}",
                d.method, d.address
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_are_safe_segments() {
        assert_eq!(object_name("abc-1@example.test"), "abc-1@example.test.ics");
        let n = object_name("../../etc/passwd");
        assert!(n.ends_with(".ics") && !n.contains('/') && n.len() == 36);
        assert_ne!(object_name("a/b"), object_name("a/c"));
        assert!(!object_name(".hidden").starts_with('.'));
    }

    #[test]
    fn statuses_map_to_schedule_status() {
        assert_eq!(Status::Delivered.schedule_status(), "1.2");
        assert_eq!(Status::Ignored("old".into()).schedule_status(), "1.2");
        assert_eq!(Status::Sent.schedule_status(), "1.1");
        assert_eq!(Status::UnknownUser.schedule_status(), "3.7");
        assert_eq!(Status::Failed("x".into()).schedule_status(), "5.1");
    }
}
