//! CalDAV scheduling collections (RFC 6638 §2): each principal's schedule
//! inbox and outbox at `/dav/scheduling/<login>/inbox/` and `.../outbox/`.
//!
//! Scheduling itself is implicit: the store's PUT and DELETE of a
//! calendar object hand the change to the scheduling engine, which files
//! invitations straight into the attendees' calendars (and answers into
//! the organizer's copy). RFC 6638 §4.1 lets a server do that without
//! keeping inbox copies, so the inbox is a real collection that is always
//! empty; it is there because clients look for it, and it carries
//! `schedule-default-calendar-URL`. The outbox answers a POST of a
//! VFREEBUSY REQUEST (§5) with a CALDAV:schedule-response, one
//! VFREEBUSY REPLY per attendee (`outpost_pim::itip::free_busy_reply`).
//! Other iTIP messages are not taken by POST: the server schedules.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use outpost_pim::itip::{self, Busy};
use outpost_xml::Element;

use crate::handler::*;
use crate::path::{self, ScheduleBox};
use crate::proto::{self, CALDAV, DAV};
use crate::response::*;
use crate::store::*;

/// Longest free/busy range one POST asks for, in seconds (two years; the
/// engine's own bound).
pub const MAX_FREE_BUSY_RANGE: i64 = 2 * 366 * 86_400;
/// Most attendees one free/busy POST asks about.
pub const MAX_FREE_BUSY_ATTENDEES: usize = 500;

impl<S: DavStore> Ctx<'_, S> {
    /// The scheduling properties of the caller's own principal.
    pub(crate) fn schedule_principal_props(&self, p: &DavPrincipal, v: &mut Vec<Element>) {
        v.push(href_prop(
            CALDAV,
            "schedule-inbox-URL",
            &path::schedule_href(&p.login, ScheduleBox::Inbox),
        ));
        v.push(href_prop(
            CALDAV,
            "schedule-outbox-URL",
            &path::schedule_href(&p.login, ScheduleBox::Outbox),
        ));
    }

    /// `CALDAV:schedule-default-calendar-URL`, when there is a calendar.
    async fn default_calendar_prop(&self) -> R<Option<Element>> {
        self.ensure_defaults(CollectionKind::Calendar).await?;
        Ok(self.store().default_calendar(self.me.id).await?.map(|c| {
            href_prop(
                CALDAV,
                "schedule-default-calendar-URL",
                &path::collection_href(CollectionKind::Calendar, &self.me.login, &c.name),
            )
        }))
    }

    async fn box_props(&self, b: ScheduleBox) -> R<Vec<Element>> {
        let (kind, name, privs): (&str, &str, &[&str]) = match b {
            ScheduleBox::Inbox => (
                "schedule-inbox",
                "Inbox",
                &[
                    "schedule-deliver",
                    "schedule-deliver-invite",
                    "schedule-deliver-reply",
                    "schedule-query-freebusy",
                ],
            ),
            ScheduleBox::Outbox => (
                "schedule-outbox",
                "Outbox",
                &[
                    "schedule-send",
                    "schedule-send-invite",
                    "schedule-send-reply",
                    "schedule-send-freebusy",
                ],
            ),
        };
        let mut v = vec![
            dav("resourcetype")
                .with(dav("collection"))
                .with(Element::new(CALDAV, kind)),
            text(DAV, "displayname", name),
            href_prop(DAV, "owner", &path::principal_href(&self.me.login)),
        ];
        let mut cups = dav("current-user-privilege-set");
        cups.push(dav("privilege").with(dav("read")));
        for p in privs {
            cups.push(dav("privilege").with(Element::new(CALDAV, p)));
        }
        v.push(cups);
        if b == ScheduleBox::Inbox {
            if let Some(e) = self.default_calendar_prop().await? {
                v.push(e);
            }
            // Empty, and never changes (see the module comment).
            v.push(text(DAV, "sync-token", "http://outpost.invalid/ns/sync/0"));
        }
        self.common_props(&mut v);
        Ok(v)
    }

    /// Every method on an inbox or outbox.
    pub(crate) async fn schedule_box(
        &self,
        login: &str,
        b: ScheduleBox,
        method: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> R<Response> {
        let owner = self.owner(login).await?;
        if owner.id != self.me.id {
            return Err(st(
                StatusCode::FORBIDDEN,
                "another user's scheduling collection",
            ));
        }
        let href = path::schedule_href(&self.me.login, b);
        match method {
            "PROPFIND" => {
                let depth = headers
                    .get("depth")
                    .and_then(|v| v.to_str().ok())
                    .map(|s| s.trim().to_ascii_lowercase());
                if !matches!(depth.as_deref(), None | Some("0") | Some("1")) {
                    return Err(cond(StatusCode::FORBIDDEN, DAV, "propfind-finite-depth"));
                }
                let req = proto::parse_propfind(body)?;
                let props = self.box_props(b).await?;
                Ok(multi(
                    vec![prop_response(&href, self.answer(&req, props, None)?)],
                    None,
                ))
            }
            "REPORT" if b == ScheduleBox::Inbox => {
                // Nothing is kept in the inbox: every report on it is empty.
                let _ = proto::parse_report(body)?;
                Ok(multi(
                    Vec::new(),
                    Some("http://outpost.invalid/ns/sync/0".into()),
                ))
            }
            "POST" if b == ScheduleBox::Outbox => self.outbox_post(headers, body).await,
            "GET" | "HEAD" => Err(st(
                StatusCode::METHOD_NOT_ALLOWED,
                "a scheduling collection",
            )),
            _ => Ok((
                StatusCode::METHOD_NOT_ALLOWED,
                [(header::ALLOW, "OPTIONS, PROPFIND, REPORT, POST")],
            )
                .into_response()),
        }
    }

    /// RFC 6638 §5: free/busy of each ATTENDEE of a VFREEBUSY REQUEST.
    async fn outbox_post(&self, headers: &HeaderMap, body: &[u8]) -> R<Response> {
        let ctype = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if ctype != "text/calendar" {
            return Err(cond(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                CALDAV,
                "supported-calendar-data",
            ));
        }
        let limits = outpost_pim::Limits {
            max_bytes: self.dav.config.max_resource_size,
            max_attendees: MAX_FREE_BUSY_ATTENDEES,
            ..outpost_pim::Limits::default()
        };
        let req = match itip::parse_free_busy_request(body, &limits) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "dav: outbox POST refused");
                return Err(cond(
                    StatusCode::BAD_REQUEST,
                    CALDAV,
                    "valid-scheduling-message",
                ));
            }
        };
        // The organizer of the request is the caller (RFC 6638 §5.1:
        // CALDAV:organizer-allowed).
        match &req.organizer {
            Some(o) if self.me.addresses.iter().any(|a| a.eq_ignore_ascii_case(o)) => {}
            _ => return Err(cond(StatusCode::FORBIDDEN, CALDAV, "organizer-allowed")),
        }
        if req.end - req.start > MAX_FREE_BUSY_RANGE {
            return Err(st(
                StatusCode::FORBIDDEN,
                format!(
                    "free/busy range is longer than {} days",
                    MAX_FREE_BUSY_RANGE / 86_400
                ),
            ));
        }
        let answers = self
            .store()
            .schedule_free_busy(&req.attendees, req.start, req.end)
            .await?;
        let mut root = Element::new(CALDAV, "schedule-response");
        for (asked, (_, fb)) in req.attendees.iter().zip(answers) {
            let mut r = Element::new(CALDAV, "response")
                .with(Element::new(CALDAV, "recipient").with(href(&format!("mailto:{asked}"))));
            match fb {
                ScheduleFreeBusy::Busy(periods) => {
                    let busy: Vec<Busy> = periods
                        .iter()
                        .filter(|p| p.end > req.start && p.start < req.end)
                        .map(|p| Busy {
                            start: p.start.max(req.start),
                            end: p.end.min(req.end),
                            tentative: p.kind == BusyType::Tentative,
                        })
                        .collect();
                    let cal = itip::free_busy_reply(
                        req.organizer.as_deref(),
                        asked,
                        req.uid.as_deref(),
                        req.start,
                        req.end,
                        &busy,
                    );
                    r.push(text(CALDAV, "request-status", "2.0;Success"));
                    r.push(text(CALDAV, "calendar-data", cal));
                }
                ScheduleFreeBusy::NotHosted | ScheduleFreeBusy::Unknown => {
                    r.push(text(CALDAV, "request-status", "3.7;Invalid calendar user"));
                }
            }
            root.push(r);
        }
        Ok(xml_response(StatusCode::OK, to_xml(&root)))
    }
}

/// `CALDAV:schedule-tag` of a scheduling object resource (RFC 6638 §3.3).
pub(crate) fn schedule_tag_prop(m: &ObjectMeta) -> Option<Element> {
    m.schedule_tag
        .as_deref()
        .map(|t| text(CALDAV, "schedule-tag", etag_header(t)))
}

/// The `Schedule-Tag` response header of a scheduling object resource
/// (RFC 6638 §3.2.10, on GET and PUT).
pub(crate) fn schedule_tag_header(h: &mut HeaderMap, m: &ObjectMeta) {
    if let Some(v) = m
        .schedule_tag
        .as_deref()
        .and_then(|t| HeaderValue::from_str(&etag_header(t)).ok())
    {
        h.insert("schedule-tag", v);
    }
}

impl<S: DavStore> Ctx<'_, S> {
    /// The tag an `If-Schedule-Tag-Match` header asks for (RFC 6638
    /// §8.3), without its quotes.
    pub(crate) fn schedule_tag_wanted(&self, headers: &HeaderMap) -> R<Option<String>> {
        let Some(want) = headers.get("if-schedule-tag-match") else {
            return Ok(None);
        };
        Ok(Some(
            want.to_str()
                .map_err(|_| st(StatusCode::BAD_REQUEST, "If-Schedule-Tag-Match is not text"))?
                .trim()
                .trim_matches('"')
                .to_string(),
        ))
    }

    /// RFC 6638 §8.3 `If-Schedule-Tag-Match` on a PUT: the object must
    /// exist with that Schedule-Tag (else 412). Its ETag then guards the
    /// write (a change in between fails it). An organizer's copy may have
    /// had answers merged into it since the client read it, which does not
    /// change the tag (§3.2.10): the attendees' PARTSTATs of the stored copy
    /// are kept in what is written (`itip::keep_answers`), unless the
    /// client raised SEQUENCE. Without the header: `condition` and `body`
    /// as they are.
    pub(crate) async fn if_schedule_tag(
        &self,
        collection: i64,
        owner: &DavPrincipal,
        name: &str,
        headers: &HeaderMap,
        condition: PutCondition,
        body: &[u8],
    ) -> R<(PutCondition, Vec<u8>)> {
        let Some(want) = self.schedule_tag_wanted(headers)? else {
            return Ok((condition, body.to_vec()));
        };
        let Some(current) = self.store().object(collection, name).await? else {
            return Err(st(StatusCode::PRECONDITION_FAILED, "no such object"));
        };
        if current.meta.schedule_tag.as_deref() != Some(want.as_str()) {
            return Err(st(
                StatusCode::PRECONDITION_FAILED,
                "the Schedule-Tag does not match",
            ));
        }
        if let PutCondition::IfMatch(e) = &condition {
            if *e != current.meta.etag {
                return Err(st(StatusCode::PRECONDITION_FAILED, "precondition failed"));
            }
        }
        let limits = outpost_pim::Limits {
            max_bytes: self.dav.config.max_resource_size,
            ..outpost_pim::Limits::default()
        };
        let merged = match (
            itip::parse(&current.data, &limits),
            itip::parse(body, &limits),
        ) {
            (Ok(stored), Ok(new)) => match new.role(&owner.addresses) {
                itip::Role::Organizer(me) => itip::keep_answers(&stored, &new, &me),
                _ => None,
            },
            _ => None,
        };
        Ok((
            PutCondition::IfMatch(current.meta.etag),
            merged.map_or_else(|| body.to_vec(), String::into_bytes),
        ))
    }

    /// The answer to a successful PUT: its ETag only when what is stored
    /// is what the client sent (RFC 4791 §5.3.4: the server may have merged
    /// answers, or written SCHEDULE-STATUS, into an organizer's copy), and
    /// the Schedule-Tag of a scheduling object resource.
    pub(crate) async fn put_done(
        &self,
        code: StatusCode,
        collection: i64,
        name: &str,
        etag: &str,
        sent: &[u8],
    ) -> R<Response> {
        let mut r = code.into_response();
        let stored = self.store().object(collection, name).await?;
        let h = r.headers_mut();
        let same = stored
            .as_ref()
            .is_none_or(|o| o.meta.etag == etag && o.data == sent);
        if same {
            if let Ok(v) = HeaderValue::from_str(&etag_header(etag)) {
                h.insert(header::ETAG, v);
            }
        }
        if let Some(o) = &stored {
            schedule_tag_header(h, &o.meta);
        }
        Ok(r)
    }
}
