//! Calendar items: FindItem (with CalendarView, recurrences expanded into
//! occurrences), GetItem (a single item, a recurring master, an
//! occurrence by its id or by `OccurrenceItemId`), CreateItem
//! (invitations through the scheduling engine), UpdateItem, DeleteItem
//! (one occurrence, or the whole item with its cancellations) and the
//! meeting responses AcceptItem, TentativelyAcceptItem and DeclineItem.
//!
//! Every write is the backend's `pim_put`/`pim_delete`: the same ingest,
//! quota, journal and scheduling as a CalDAV PUT or DELETE, so attendees
//! get their invitations (iMIP or their own calendar's inbox) from the
//! one scheduling engine. `SendToNone` writes the attendees with
//! SCHEDULE-AGENT=CLIENT (RFC 6638 §7.1), which the engine leaves alone.
//!
//! Contacts (address books) and tasks (task lists): FindItem, GetItem,
//! CreateItem, UpdateItem (setting fields) and DeleteItem, through
//! ActiveSync's vCard and VTODO mappings ([`super::contacts`],
//! [`super::tasks`]).

use outpost_activesync::meeting::{Answer, Outcome};
use outpost_activesync::{PimObject, PimRefused, Slot};
use outpost_xml::Element;

use super::calendar::{self, Base, Edit, ItemIds, Person, Sending, Stored, Which};
use super::folders::{EwsFolder, Kind, Page};
use super::items::{self, ItemError, ItemRef, ItemResult};
use super::pim_props::{self, Facts};
use super::restriction::{Cmp, Filter};
use super::{child_tm, invalid, OpError};
use crate::ids::{self, Decoded};
use crate::soap::{NS_M, NS_T};
use crate::{zone, Ctx};

fn not_yet() -> ItemResult {
    Ok(Err(ItemError::new(
        "ErrorInvalidRequest",
        "This is not served over EWS by this server yet.",
    )))
}

/// Longest CalendarView (Exchange's limit: two years).
pub const MAX_VIEW: i64 = 2 * 366 * 86_400;

/// The shape asks for ids only.
fn id_only(shape: Option<&Element>) -> bool {
    shape.is_some_and(|s| {
        s.child(NS_T, "BaseShape")
            .is_some_and(|b| b.text.trim() == "IdOnly")
            && s.child(NS_T, "AdditionalProperties")
                .is_none_or(|a| a.children.is_empty())
    })
}

/// The shape asks for MimeContent.
fn wants_mime(shape: Option<&Element>) -> bool {
    shape.is_some_and(|s| {
        s.child(NS_T, "IncludeMimeContent")
            .is_some_and(|m| m.text.trim() == "true")
            || s.child(NS_T, "AdditionalProperties").is_some_and(|a| {
                a.children
                    .iter()
                    .any(|f| f.attr("FieldURI") == Some("item:MimeContent"))
            })
    })
}

async fn own_ids(ctx: &Ctx<'_>) -> Result<Vec<String>, OpError> {
    let mut own = ctx.backend.addresses(ctx.user.principal_id).await?;
    if !own.iter().any(|a| a.eq_ignore_ascii_case(&ctx.user.login)) {
        own.push(ctx.user.login.clone());
    }
    Ok(own)
}

/// One stored calendar object of the user's with its modseq.
struct Loaded {
    stored: Stored,
    modseq: i64,
    /// The object's text and what the store keeps beside it.
    obj: PimObject,
}

/// What the store keeps beside object `item` (`obj`), for its MAPI
/// properties; `id` is the ItemId of the element written.
fn facts(obj: &PimObject, item: i64, id: &str, stored: Option<&Stored>) -> Facts {
    let x = stored
        .and_then(|s| s.master())
        .map(|m| {
            pim_props::X_PROPS
                .iter()
                .filter_map(|(_, name)| {
                    calendar::prop(m, name).map(|v| (name.to_string(), v.to_string()))
                })
                .collect()
        })
        .unwrap_or_default();
    Facts {
        name: obj.name.clone(),
        uid: obj.uid.clone(),
        created: obj.created,
        modified: obj.modified,
        item,
        id: id.to_string(),
        x,
    }
}

async fn load(ctx: &Ctx<'_>, collection: i64, item: i64) -> Result<Option<Loaded>, OpError> {
    let principal = ctx.user.principal_id;
    let Some(obj) = ctx.backend.pim_data(principal, collection, item).await? else {
        return Ok(None);
    };
    let Some(meta) = ctx.backend.mail_item(principal, collection, item).await? else {
        return Ok(None);
    };
    Ok(
        calendar::read(&obj.data, obj.tz.as_deref()).map(|stored| Loaded {
            stored,
            modseq: meta.modseq,
            obj,
        }),
    )
}

fn element_ids(
    ctx: &Ctx<'_>,
    folder: &EwsFolder,
    item: i64,
    modseq: i64,
    rid: Option<i64>,
    own: &[String],
) -> ItemIds {
    let principal = ctx.user.principal_id;
    ItemIds {
        id: match rid {
            Some(r) => ids::occurrence_id(principal, folder.id, item, r),
            None => ids::item_id(principal, folder.id, item),
        },
        change_key: ids::change_key(modseq),
        parent: ids::folder_id(principal, folder.id),
        own: own.to_vec(),
        numbers: (principal, folder.id, item),
    }
}

fn root_folder(list: Vec<Element>, total: usize, offset: usize, last: bool) -> Element {
    let mut items = Element::new(NS_T, "Items");
    items.children = list;
    Element::new(NS_M, "RootFolder")
        .with_attr("IndexedPagingOffset", offset.to_string())
        .with_attr("TotalItemsInView", total.to_string())
        .with_attr(
            "IncludesLastItemInRange",
            if last { "true" } else { "false" },
        )
        .with(items)
}

/// The element name of a contact or task folder's items.
fn simple_name(kind: Kind) -> &'static str {
    if kind == Kind::Tasks {
        "Task"
    } else {
        "Contact"
    }
}

/// A `t:Contact` or `t:Task` of item `item` of `folder`, with what the
/// store keeps beside it.
async fn simple_element(
    ctx: &Ctx<'_>,
    folder: &EwsFolder,
    item: i64,
    only_ids: bool,
) -> Result<Option<(Element, Facts)>, OpError> {
    let principal = ctx.user.principal_id;
    let Some(obj) = ctx.backend.pim_data(principal, folder.id, item).await? else {
        return Ok(None);
    };
    let Some(meta) = ctx.backend.mail_item(principal, folder.id, item).await? else {
        return Ok(None);
    };
    let id = ids::item_id(principal, folder.id, item);
    let facts = facts(&obj, item, &id, None);
    let mut el = Element::new(NS_T, simple_name(folder.kind)).with(
        Element::new(NS_T, "ItemId")
            .with_attr("Id", id)
            .with_attr("ChangeKey", ids::change_key(meta.modseq)),
    );
    if only_ids {
        return Ok(Some((el, facts)));
    }
    let fields = if folder.kind == Kind::Tasks {
        super::tasks::task_fields(&obj.data)
    } else {
        super::contacts::contact_fields(&obj.data)
    };
    let Some(fields) = fields else {
        return Ok(None);
    };
    el.push(
        Element::new(NS_T, "ParentFolderId").with_attr("Id", ids::folder_id(principal, folder.id)),
    );
    el.children.extend(fields);
    Ok(Some((el, facts)))
}

/// Fields a restriction or sort order may name for these items: each is
/// the item element's child of the same local name.
const FILTERABLE: &[&str] = &[
    "item:Subject",
    "item:ItemClass",
    "item:Importance",
    "item:Sensitivity",
    "item:DateTimeCreated",
    "item:LastModifiedTime",
    "calendar:Start",
    "calendar:End",
    "calendar:UID",
    "calendar:Location",
    "calendar:IsAllDayEvent",
    "calendar:IsRecurring",
    "calendar:IsMeeting",
    "calendar:IsCancelled",
    "calendar:CalendarItemType",
    "calendar:LegacyFreeBusyStatus",
    "calendar:MyResponseType",
    "contacts:DisplayName",
    "contacts:FileAs",
    "contacts:GivenName",
    "contacts:Surname",
    "contacts:CompanyName",
    "contacts:JobTitle",
    "contacts:Department",
    "task:Status",
    "task:IsComplete",
    "task:DueDate",
    "task:StartDate",
    "task:PercentComplete",
];

/// Whether a restriction or sort order may name `field`: a simple field,
/// or a MAPI property DavMail searches by ([`pim_props`]).
fn filterable(field: &str) -> bool {
    FILTERABLE.contains(&field) || pim_props::known_field(field)
}

fn field_value(el: &Element, facts: &Facts, field: &str) -> Option<String> {
    if pim_props::known_field(field) {
        return pim_props::field(field, el, facts);
    }
    if !FILTERABLE.contains(&field) {
        return None;
    }
    let local = field.split_once(':')?.1;
    el.child(NS_T, local).map(|c| c.text.trim().to_string())
}

/// Orders two field values: as numbers when both are, else as text (UTC
/// times as written sort as times).
fn order(a: &Option<String>, b: &Option<String>) -> std::cmp::Ordering {
    match (a, b) {
        (Some(x), Some(y)) => match (x.parse::<f64>(), y.parse::<f64>()) {
            (Ok(p), Ok(q)) => p.partial_cmp(&q).unwrap_or(std::cmp::Ordering::Equal),
            _ => x.to_lowercase().cmp(&y.to_lowercase()),
        },
        (None, Some(_)) => std::cmp::Ordering::Less,
        (Some(_), None) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    }
}

/// The request's `SortOrder`: (field, descending) in order.
fn sort_order(op: &Element) -> Result<Vec<(String, bool)>, ItemError> {
    let Some(s) = op.child(NS_M, "SortOrder") else {
        return Ok(Vec::new());
    };
    s.children
        .iter()
        .map(|f| {
            let field = f
                .child(NS_T, "FieldURI")
                .and_then(|u| u.attr("FieldURI"))
                .map(str::to_string)
                .or_else(|| {
                    f.child(NS_T, "ExtendedFieldURI")
                        .and_then(super::props::field_name)
                })
                .filter(|u| filterable(u))
                .ok_or_else(|| {
                    ItemError::new(
                        "ErrorUnsupportedPathForSortGroup",
                        "Items can be sorted by their simple fields only.",
                    )
                })?;
            Ok((field, f.attr("Order") == Some("Descending")))
        })
        .collect()
}

/// One item of `folder` as FindItem shows it without a view: a single
/// calendar item or a series' master, a contact, a task; with what the
/// store keeps beside it.
async fn listed_element(
    ctx: &Ctx<'_>,
    folder: &EwsFolder,
    item: i64,
    only_ids: bool,
    own: &[String],
) -> Result<Option<(Element, Facts)>, OpError> {
    if folder.kind != Kind::Calendar {
        return simple_element(ctx, folder, item, only_ids).await;
    }
    let Some(l) = load(ctx, folder.id, item).await? else {
        return Ok(None);
    };
    let ids = element_ids(ctx, folder, item, l.modseq, None, own);
    let facts = facts(&l.obj, item, &ids.id, Some(&l.stored));
    Ok(calendar::item_element(&l.stored, &Which::Whole, &ids, only_ids).map(|el| (el, facts)))
}

/// The resource name a restriction asks for (`IsEqualTo` of PR_URL_COMP_NAME,
/// alone or in an `And`): DavMail finds an event by the name a CalDAV
/// client gave it so, and the store finds it by that name at once.
fn wanted_name(f: &Filter) -> Option<&str> {
    match f {
        Filter::Compare {
            field,
            op: Cmp::Eq,
            value,
        } if field == "ext:0x10f3" => Some(value),
        Filter::And(list) => list.iter().find_map(wanted_name),
        _ => None,
    }
}

/// The request's `Restriction`, over [`FILTERABLE`] fields only.
fn restriction(op: &Element) -> Result<Option<Filter>, ItemError> {
    match op.child(NS_M, "Restriction").map(Filter::read) {
        None => Ok(None),
        Some(Ok(f)) if f.fields().iter().all(|n| filterable(n)) => Ok(Some(f)),
        Some(Ok(_)) => Err(ItemError::new(
            "ErrorUnsupportedQueryFilter",
            "These items can be searched by their simple fields only.",
        )),
        Some(Err(why)) => Err(ItemError::new("ErrorUnsupportedQueryFilter", why)),
    }
}

/// FindItem without a view: every item once, restricted, sorted, paged.
async fn find_listing(ctx: &Ctx<'_>, folder: &EwsFolder, op: &Element) -> ItemResult {
    let only_ids = id_only(child_tm(op, "ItemShape"));
    let page = Page::read(
        op,
        &["IndexedPageItemView", "FractionalPageItemView"],
        ctx.limits.max_page,
    )?;
    let filter = match restriction(op) {
        Ok(f) => f,
        Err(e) => return Ok(Err(e)),
    };
    let sort = match sort_order(op) {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    let own = own_ids(ctx).await?;
    let shape = child_tm(op, "ItemShape");
    let principal = ctx.user.principal_id;
    let mut numbers: Vec<i64> = match filter.as_ref().and_then(wanted_name) {
        Some(name) => ctx
            .backend
            .pim_item_by_name(principal, folder.id, name)
            .await?
            .into_iter()
            .collect(),
        None => ctx
            .backend
            .mail_below(principal, folder.id, i64::MAX, i64::MIN, 100_000)
            .await?
            .iter()
            .map(|m| m.uid)
            .collect(),
    };
    numbers.sort_unstable();
    let shown = |(mut el, facts): (Element, Facts)| {
        if only_ids {
            el.children.truncate(1);
        } else {
            pim_props::answer(&mut el, shape, &facts);
        }
        el
    };
    if filter.is_none() && sort.is_empty() {
        // Page first: only the page's items are read.
        let total = numbers.len();
        let (from, to, last) = page.range(total);
        let mut list = Vec::new();
        for &item in &numbers[from..to] {
            if let Some(found) = listed_element(ctx, folder, item, only_ids, &own).await? {
                list.push(shown(found));
            }
        }
        return Ok(Ok(vec![root_folder(list, total, to, last)]));
    }
    let mut found = Vec::new();
    for &item in &numbers {
        let Some((el, facts)) = listed_element(ctx, folder, item, false, &own).await? else {
            continue;
        };
        if filter
            .as_ref()
            .is_none_or(|f| f.eval(&|name| field_value(&el, &facts, name)))
        {
            found.push((el, facts));
        }
    }
    for (field, descending) in sort.iter().rev() {
        found.sort_by(|a, b| {
            let o = order(
                &field_value(&a.0, &a.1, field),
                &field_value(&b.0, &b.1, field),
            );
            if *descending {
                o.reverse()
            } else {
                o
            }
        });
    }
    let total = found.len();
    let (from, to, last) = page.range(total);
    let list = found.drain(from..to).map(shown).collect();
    Ok(Ok(vec![root_folder(list, total, to, last)]))
}

pub async fn find(ctx: &Ctx<'_>, folder: &EwsFolder, op: &Element) -> ItemResult {
    match folder.kind {
        Kind::Calendar => {}
        Kind::Contacts | Kind::Tasks => return find_listing(ctx, folder, op).await,
        Kind::Mail | Kind::Root => return not_yet(),
    }
    let principal = ctx.user.principal_id;
    let only_ids = id_only(child_tm(op, "ItemShape"));
    let own = own_ids(ctx).await?;
    if let Some(view) = op.child(NS_M, "CalendarView") {
        let time = |name: &str| {
            view.attr(name)
                .and_then(super::oof::parse_time)
                .ok_or_else(|| invalid(format!("CalendarView needs a {name}.")))
        };
        let (start, end) = (time("StartDate")?, time("EndDate")?);
        if end < start {
            return Ok(Err(ItemError::new(
                "ErrorCalendarEndDateIsEarlierThanStartDate",
                "The CalendarView's EndDate is before its StartDate.",
            )));
        }
        if end - start > MAX_VIEW {
            return Ok(Err(ItemError::new(
                "ErrorCalendarViewRangeTooBig",
                "A CalendarView spans at most two years.",
            )));
        }
        let max = match view.attr("MaxEntriesReturned") {
            Some(v) => v
                .trim()
                .parse::<usize>()
                .map_err(|_| invalid("MaxEntriesReturned is not a number."))?
                .min(ctx.limits.max_page),
            None => ctx.limits.max_page,
        };
        let filter = match restriction(op) {
            Ok(f) => f,
            Err(e) => return Ok(Err(e)),
        };
        let mut found: Vec<(i64, i64, Element)> = Vec::new();
        for item in ctx
            .backend
            .calendar_range(principal, folder.id, start, end)
            .await?
        {
            let Some(l) = load(ctx, folder.id, item).await? else {
                continue;
            };
            for inst in l.stored.instances(start, end) {
                let recurring = l.stored.obj.index.recurring;
                let rid = if recurring { inst.recurrence_id } else { None };
                let which = if recurring {
                    Which::Instance(inst.clone())
                } else {
                    Which::Whole
                };
                let ids = element_ids(ctx, folder, item, l.modseq, rid, &own);
                let Some(mut el) = calendar::item_element(&l.stored, &which, &ids, false) else {
                    continue;
                };
                let facts = facts(&l.obj, item, &ids.id, Some(&l.stored));
                if filter
                    .as_ref()
                    .is_some_and(|f| !f.eval(&|name| field_value(&el, &facts, name)))
                {
                    continue;
                }
                if only_ids {
                    el.children.truncate(1);
                } else {
                    pim_props::answer(&mut el, child_tm(op, "ItemShape"), &facts);
                }
                found.push((inst.start, item, el));
            }
        }
        found.sort_by_key(|(s, i, _)| (*s, *i));
        let total = found.len();
        let last = total <= max;
        let list: Vec<Element> = found.into_iter().take(max).map(|(_, _, e)| e).collect();
        let n = list.len();
        return Ok(Ok(vec![root_folder(list, total, n, last)]));
    }
    // Without a view: each item once (masters, not occurrences).
    find_listing(ctx, folder, op).await
}

/// Which view an id element asks for, or why it names none.
fn which_of(stored: &Stored, id: &Element) -> Result<Which, ItemError> {
    let out_of_range = || {
        ItemError::new(
            "ErrorCalendarOccurrenceIndexIsOutOfRecurrenceRange",
            "The item has no such occurrence.",
        )
    };
    if id.name.local == "OccurrenceItemId" {
        if !stored.obj.index.recurring {
            return Err(ItemError::new(
                "ErrorCalendarOccurrenceIsDeletedFromRecurrence",
                "The item is not recurring.",
            ));
        }
        let n = id
            .attr("InstanceIndex")
            .and_then(|v| v.trim().parse::<usize>().ok())
            .filter(|n| *n >= 1)
            .ok_or_else(|| ItemError::new("ErrorInvalidIdMalformed", "InstanceIndex is bad."))?;
        return stored
            .nth_instance(n)
            .map(Which::Instance)
            .ok_or_else(out_of_range);
    }
    if id.name.local == "RecurringMasterItemId" {
        return Ok(Which::Whole);
    }
    match id.attr("Id").and_then(ids::decode) {
        Some(Decoded::Occurrence { recurrence, .. }) => stored
            .instance_at(recurrence)
            .map(Which::Instance)
            .ok_or_else(out_of_range),
        _ => Ok(Which::Whole),
    }
}

/// `id` is the request's `t:ItemId`, `t:OccurrenceItemId` or
/// `t:RecurringMasterItemId` element.
pub async fn get(
    ctx: &Ctx<'_>,
    item: &ItemRef<'_>,
    id: &Element,
    shape: Option<&Element>,
) -> ItemResult {
    match item.folder.kind {
        Kind::Calendar => {}
        Kind::Contacts | Kind::Tasks => {
            return Ok(
                match simple_element(ctx, item.folder, item.item, id_only(shape)).await? {
                    Some((mut el, facts)) => {
                        pim_props::answer(&mut el, shape, &facts);
                        Ok(vec![items::items(el)])
                    }
                    None => Err(ItemError::not_found()),
                },
            )
        }
        _ => return not_yet(),
    }
    let Some(l) = load(ctx, item.folder.id, item.item).await? else {
        return Ok(Err(ItemError::not_found()));
    };
    let which = match which_of(&l.stored, id) {
        Ok(w) => w,
        Err(e) => return Ok(Err(e)),
    };
    let rid = match &which {
        Which::Instance(i) => i.recurrence_id,
        Which::Whole => None,
    };
    let own = own_ids(ctx).await?;
    let ids = element_ids(ctx, item.folder, item.item, l.modseq, rid, &own);
    match calendar::item_element(&l.stored, &which, &ids, id_only(shape)) {
        Some(mut el) => {
            pim_props::answer(
                &mut el,
                shape,
                &facts(&l.obj, item.item, &ids.id, Some(&l.stored)),
            );
            if wants_mime(shape) && matches!(which, Which::Whole) {
                el.children.insert(0, calendar::mime_content(&l.obj.data));
            }
            Ok(Ok(vec![items::items(el)]))
        }
        None => Ok(Err(ItemError::not_found())),
    }
}

fn refused(r: PimRefused) -> ItemError {
    match r {
        PimRefused::Invalid => ItemError::new(
            "ErrorInvalidPropertySet",
            "The calendar item is not valid (the store refused it).",
        ),
        PimRefused::Full => ItemError::new("ErrorQuotaExceeded", "The mailbox is full."),
        PimRefused::NotFound => ItemError::not_found(),
        PimRefused::Conflict => ItemError::new(
            "ErrorIrresolvableConflict",
            "The item was changed meanwhile, or another item has its UID.",
        ),
    }
}

fn sending(op: &Element, attr: &str) -> Result<Sending, ItemError> {
    match op.attr(attr) {
        None | Some("SendToNone") => Ok(Sending::Quiet),
        Some(
            "SendOnlyToAll"
            | "SendToAllAndSaveCopy"
            | "SendOnlyToChanged"
            | "SendToChangedAndSaveCopy",
        ) => Ok(Sending::Send),
        Some(other) => Err(ItemError::new(
            "ErrorInvalidRequest",
            format!("{attr}={other} is not one EWS knows."),
        )),
    }
}

async fn me(ctx: &Ctx<'_>) -> Result<Person, OpError> {
    let own = ctx.backend.addresses(ctx.user.principal_id).await?;
    Ok(Person {
        email: own
            .first()
            .cloned()
            .unwrap_or_else(|| ctx.user.login.clone()),
        name: ctx.backend.display_name(ctx.user.principal_id).await?,
    })
}

fn default_tz(ctx: &Ctx<'_>) -> chrono_tz::Tz {
    ctx.time_zone
        .and_then(zone::resolve)
        .unwrap_or(chrono_tz::Tz::UTC)
}

fn saved(ctx: &Ctx<'_>, folder: &EwsFolder, item: i64, modseq: i64, rid: Option<i64>) -> Element {
    let principal = ctx.user.principal_id;
    let id = match rid {
        Some(r) => ids::occurrence_id(principal, folder.id, item, r),
        None => ids::item_id(principal, folder.id, item),
    };
    Element::new(NS_T, "CalendarItem").with(
        Element::new(NS_T, "ItemId")
            .with_attr("Id", id)
            .with_attr("ChangeKey", ids::change_key(modseq)),
    )
}

pub async fn create(
    ctx: &Ctx<'_>,
    tree: &[EwsFolder],
    folder: Option<&EwsFolder>,
    item: &Element,
    op: &Element,
) -> ItemResult {
    let principal = ctx.user.principal_id;
    match item.name.local.as_str() {
        "CalendarItem" => {}
        "Contact" => return create_simple(ctx, tree, folder, item, Kind::Contacts).await,
        "Task" => return create_simple(ctx, tree, folder, item, Kind::Tasks).await,
        "AcceptItem" | "TentativelyAcceptItem" | "DeclineItem" => {
            let answer = match item.name.local.as_str() {
                "AcceptItem" => Answer::Accepted,
                "TentativelyAcceptItem" => Answer::Tentative,
                _ => Answer::Declined,
            };
            let Some(reference) = item.child(NS_T, "ReferenceItemId") else {
                return Ok(Err(ItemError::new(
                    "ErrorInvalidIdMalformed",
                    "The response names no ReferenceItemId.",
                )));
            };
            let target = match items::resolve_item(ctx, tree, reference) {
                Ok(t) => t,
                Err(e) => return Ok(Err(e)),
            };
            return match ctx
                .backend
                .meeting_response(principal, target.folder.id, target.item, answer)
                .await?
            {
                Outcome::Done(..) => Ok(Ok(vec![Element::new(NS_M, "Items")])),
                Outcome::NotAMeeting => Ok(Err(ItemError::new(
                    "ErrorInvalidOperation",
                    "The item is not a meeting this user is invited to.",
                ))),
            };
        }
        _ => return not_yet(),
    }
    let folder = match folder.or_else(|| tree.iter().find(|f| f.distinguished == Some("calendar")))
    {
        Some(f) if f.kind == Kind::Calendar => f,
        Some(_) => {
            return Ok(Err(ItemError::new(
                "ErrorInvalidRequest",
                "Calendar items go into a calendar folder.",
            )))
        }
        None => return Ok(Err(ItemError::new("ErrorFolderNotFound", "No calendar."))),
    };
    let how = match sending(op, "SendMeetingInvitations") {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    let mut edit = match Edit::read(item) {
        Ok(e) => e,
        Err(e) => return Ok(Err(e)),
    };
    // MAPI properties: the resource name (DavMail gives the one its CalDAV
    // client PUT to), and fields of the same meaning.
    let write = match pim_props::Write::read(item) {
        Ok(w) => w,
        Err(e) => return Ok(Err(e)),
    };
    edit.take(&write);
    // The whole object may come as MimeContent (DavMail, Outlook for
    // Mac): the other fields, if any, are applied over it.
    let mime = match item.child(NS_T, "MimeContent").map(calendar::mime_calendar) {
        None => None,
        Some(Some(ics)) => Some(ics),
        Some(None) => {
            return Ok(Err(ItemError::new(
                "ErrorInvalidPropertySet",
                "The MimeContent is not an iCalendar object.",
            )))
        }
    };
    let others = item.children.iter().any(|c| c.name.local != "MimeContent");
    let text = match &mime {
        Some(ics) if !others => ics.clone(),
        _ => {
            let times = mime.as_deref().and_then(|m| {
                let s = calendar::read(m, None)?;
                s.times(s.master()?.id)
            });
            let base = Base {
                existing: mime.as_deref(),
                times,
                default_tz: default_tz(ctx),
                me: me(ctx).await?,
                own: own_ids(ctx).await?,
            };
            match calendar::apply(&base, &edit, how) {
                Ok(t) => t,
                Err(e) => return Ok(Err(e)),
            }
        }
    };
    match ctx
        .backend
        .pim_put(
            principal,
            folder.id,
            Slot::New(write.name.as_deref()),
            &text,
        )
        .await?
    {
        Ok((n, modseq)) => Ok(Ok(vec![items::items(saved(ctx, folder, n, modseq, None))])),
        Err(r) => Ok(Err(refused(r))),
    }
}

async fn create_simple(
    ctx: &Ctx<'_>,
    tree: &[EwsFolder],
    folder: Option<&EwsFolder>,
    item: &Element,
    kind: Kind,
) -> ItemResult {
    let distinguished = if kind == Kind::Tasks {
        "tasks"
    } else {
        "contacts"
    };
    let folder =
        match folder.or_else(|| tree.iter().find(|f| f.distinguished == Some(distinguished))) {
            Some(f) if f.kind == kind => f,
            Some(_) => {
                return Ok(Err(ItemError::new(
                    "ErrorInvalidRequest",
                    format!(
                        "A {} goes into a {distinguished} folder.",
                        simple_name(kind)
                    ),
                )))
            }
            None => {
                return Ok(Err(ItemError::new(
                    "ErrorFolderNotFound",
                    "No such folder.",
                )))
            }
        };
    let uid = calendar::new_uid();
    let written = if kind == Kind::Tasks {
        super::tasks::todo_of(item, None, &uid)
    } else {
        super::contacts::vcard_of(item, None, &uid)
    };
    let text = match written {
        Ok(c) => c,
        Err(e) => return Ok(Err(e)),
    };
    let principal = ctx.user.principal_id;
    match ctx
        .backend
        .pim_put(principal, folder.id, Slot::New(None), &text)
        .await?
    {
        Ok((n, modseq)) => Ok(Ok(vec![items::items(simple_saved(ctx, folder, n, modseq))])),
        Err(r) => Ok(Err(refused(r))),
    }
}

fn simple_saved(ctx: &Ctx<'_>, folder: &EwsFolder, item: i64, modseq: i64) -> Element {
    let principal = ctx.user.principal_id;
    Element::new(NS_T, simple_name(folder.kind)).with(
        Element::new(NS_T, "ItemId")
            .with_attr("Id", ids::item_id(principal, folder.id, item))
            .with_attr("ChangeKey", ids::change_key(modseq)),
    )
}

/// UpdateItem of a contact or task: the named fields set over the stored
/// object's, or deleted from it.
async fn update_simple(ctx: &Ctx<'_>, item: &ItemRef<'_>, change: &Element) -> ItemResult {
    let principal = ctx.user.principal_id;
    let folder = item.folder;
    let Some(obj) = ctx
        .backend
        .pim_data(principal, folder.id, item.item)
        .await?
    else {
        return Ok(Err(ItemError::not_found()));
    };
    let Some(meta) = ctx
        .backend
        .mail_item(principal, folder.id, item.item)
        .await?
    else {
        return Ok(Err(ItemError::not_found()));
    };
    if item.change_key.is_some_and(|ck| ck != meta.modseq) {
        return Ok(Err(ItemError::new(
            "ErrorIrresolvableConflict",
            "The item changed since its ChangeKey was read.",
        )));
    }
    let name = simple_name(folder.kind);
    let mut text = obj.data.clone();
    let Some(updates) = change.child(NS_T, "Updates") else {
        return Ok(Err(ItemError::new(
            "ErrorInvalidRequest",
            "The change has no Updates.",
        )));
    };
    for u in &updates.children {
        let r = if u.name.local == "DeleteItemField" {
            let Some(f) = u.children.first() else {
                return Ok(Err(ItemError::new(
                    "ErrorInvalidPropertyDelete",
                    "DeleteItemField names no field.",
                )));
            };
            let uri = f.attr("FieldURI").unwrap_or("");
            if folder.kind == Kind::Tasks {
                super::tasks::todo_without(&text, uri)
            } else {
                super::contacts::vcard_without(&text, uri, f.attr("FieldIndex"))
            }
        } else {
            let Some(fields) = u.child(NS_T, name) else {
                return Ok(Err(ItemError::new(
                    "ErrorInvalidPropertySet",
                    format!("A change of a {name} carries a {name}."),
                )));
            };
            if folder.kind == Kind::Tasks {
                super::tasks::todo_of(fields, Some(&text), "")
            } else {
                super::contacts::vcard_of(fields, Some(&text), "")
            }
        };
        match r {
            Ok(t) => text = t,
            Err(e) => return Ok(Err(e)),
        }
    }
    match ctx
        .backend
        .pim_put(principal, folder.id, Slot::Item(item.item), &text)
        .await?
    {
        Ok((n, modseq)) => Ok(Ok(vec![
            items::items(simple_saved(ctx, folder, n, modseq)),
            Element::new(NS_M, "ConflictResults").with(Element::new(NS_T, "Count").with_text("0")),
        ])),
        Err(r) => Ok(Err(refused(r))),
    }
}

pub async fn update(
    ctx: &Ctx<'_>,
    item: &ItemRef<'_>,
    id: &Element,
    change: &Element,
    op: &Element,
) -> ItemResult {
    match item.folder.kind {
        Kind::Calendar => {}
        Kind::Contacts | Kind::Tasks => return update_simple(ctx, item, change).await,
        Kind::Mail | Kind::Root => return not_yet(),
    }
    let principal = ctx.user.principal_id;
    let Some(l) = load(ctx, item.folder.id, item.item).await? else {
        return Ok(Err(ItemError::not_found()));
    };
    let which = match which_of(&l.stored, id) {
        Ok(w) => w,
        Err(e) => return Ok(Err(e)),
    };
    let overwrite = op.attr("ConflictResolution") == Some("AlwaysOverwrite");
    if let Some(ck) = item.change_key {
        if ck != l.modseq && !overwrite {
            return Ok(Err(ItemError::new(
                "ErrorIrresolvableConflict",
                "The item changed since its ChangeKey was read.",
            )));
        }
    }
    let how = match sending(op, "SendMeetingInvitationsOrCancellations") {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    let mut edit = Edit::default();
    let mut write = pim_props::Write::default();
    let Some(updates) = change.child(NS_T, "Updates") else {
        return Ok(Err(ItemError::new(
            "ErrorInvalidRequest",
            "The change has no Updates.",
        )));
    };
    for u in &updates.children {
        let r = match u.name.local.as_str() {
            // ItemType's own fields may come in a `t:Item` (DavMail).
            "SetItemField" | "AppendToItemField" => match u
                .child(NS_T, "CalendarItem")
                .or_else(|| u.child(NS_T, "Item"))
            {
                Some(ci) => Edit::read(ci)
                    .map(|e| edit.merge(e))
                    .and_then(|()| write.merge(ci)),
                None => Err(ItemError::new(
                    "ErrorInvalidPropertySet",
                    "A change of a calendar item carries a CalendarItem.",
                )),
            },
            "DeleteItemField" => match (
                u.children.iter().find_map(|f| f.attr("FieldURI")),
                u.child(NS_T, "ExtendedFieldURI"),
            ) {
                (Some(uri), _) => edit.delete(uri),
                (None, Some(ext)) => write.delete(ext),
                (None, None) => Err(ItemError::new(
                    "ErrorInvalidPropertyDelete",
                    "DeleteItemField names no field.",
                )),
            },
            _ => Ok(()),
        };
        if let Err(e) = r {
            return Ok(Err(e));
        }
    }
    // The resource name and the UID are the object's for good.
    if write.name.as_ref().is_some_and(|n| *n != l.obj.name)
        || write.uid.as_ref().is_some_and(|u| *u != l.obj.uid)
    {
        return Ok(Err(ItemError::new(
            "ErrorInvalidPropertySet",
            "An item's resource name and UID are given when it is created.",
        )));
    }
    write.uid = None;
    edit.take(&write);
    let master_times = l.stored.master().and_then(|m| l.stored.times(m.id));
    let (target, times, rid) = match &which {
        Which::Whole => (calendar::Target::Master, master_times, None),
        Which::Instance(inst) => {
            let Some(rid) = inst.recurrence_id else {
                return Ok(Err(ItemError::not_found()));
            };
            let position = l
                .stored
                .is_override(inst.component)
                .then(|| {
                    l.stored
                        .tree
                        .children
                        .iter()
                        .position(|c| c.id == inst.component)
                })
                .flatten();
            let tzid = master_times.as_ref().and_then(|t| t.tzid.clone());
            (
                calendar::Target::Occurrence {
                    rid,
                    position,
                    all_day: inst.all_day,
                    floating: l.stored.floating,
                },
                Some(calendar::Times {
                    start: inst.start,
                    end: inst.end,
                    all_day: inst.all_day,
                    tzid,
                }),
                Some(rid),
            )
        }
    };
    let base = Base {
        existing: Some(&l.obj.data),
        times,
        default_tz: default_tz(ctx),
        me: me(ctx).await?,
        own: own_ids(ctx).await?,
    };
    let text = match calendar::apply_at(&base, &edit, how, target) {
        Ok(t) => t,
        Err(e) => return Ok(Err(e)),
    };
    match ctx
        .backend
        .pim_put(principal, item.folder.id, Slot::Item(item.item), &text)
        .await?
    {
        Ok((n, modseq)) => Ok(Ok(vec![
            items::items(saved(ctx, item.folder, n, modseq, rid)),
            Element::new(NS_M, "ConflictResults").with(Element::new(NS_T, "Count").with_text("0")),
        ])),
        Err(r) => Ok(Err(refused(r))),
    }
}

pub async fn delete(ctx: &Ctx<'_>, item: &ItemRef<'_>, id: &Element, op: &Element) -> ItemResult {
    let principal = ctx.user.principal_id;
    match item.folder.kind {
        Kind::Calendar => {}
        Kind::Contacts | Kind::Tasks => {
            let gone = ctx
                .backend
                .pim_delete(principal, item.folder.id, item.item)
                .await?;
            return Ok(if gone {
                Ok(Vec::new())
            } else {
                Err(ItemError::not_found())
            });
        }
        _ => return not_yet(),
    }
    let Some(l) = load(ctx, item.folder.id, item.item).await? else {
        return Ok(Err(ItemError::not_found()));
    };
    let how = match sending(op, "SendMeetingCancellations") {
        Ok(s) => s,
        Err(e) => return Ok(Err(e)),
    };
    match which_of(&l.stored, id) {
        Err(e) => Ok(Err(e)),
        Ok(Which::Instance(inst)) => {
            // One occurrence: an EXDATE on the series (and its override
            // gone), written as a CalDAV client would.
            let text =
                match calendar::exclude(&l.stored, &l.obj.data, &inst, how, &own_ids(ctx).await?) {
                    Ok(t) => t,
                    Err(e) => return Ok(Err(e)),
                };
            match ctx
                .backend
                .pim_put(principal, item.folder.id, Slot::Item(item.item), &text)
                .await?
            {
                Ok(_) => Ok(Ok(Vec::new())),
                Err(r) => Ok(Err(refused(r))),
            }
        }
        Ok(Which::Whole) => {
            let own = own_ids(ctx).await?;
            let organizing = match &l.stored.obj.index.organizer {
                Some(o) => own.iter().any(|a| a.eq_ignore_ascii_case(o)),
                None => true,
            };
            let meeting = !l.stored.obj.index.attendees.is_empty();
            if meeting && organizing && how == Sending::Quiet {
                // Nobody is to be told: the attendees become the client's
                // business first, then the item goes.
                let base = Base {
                    existing: Some(&l.obj.data),
                    times: None,
                    default_tz: default_tz(ctx),
                    me: me(ctx).await?,
                    own: own_ids(ctx).await?,
                };
                if let Ok(text) = calendar::apply(&base, &Edit::default(), Sending::Quiet) {
                    if let Err(r) = ctx
                        .backend
                        .pim_put(principal, item.folder.id, Slot::Item(item.item), &text)
                        .await?
                    {
                        return Ok(Err(refused(r)));
                    }
                }
            }
            if ctx
                .backend
                .pim_delete(principal, item.folder.id, item.item)
                .await?
            {
                Ok(Ok(Vec::new()))
            } else {
                Ok(Err(ItemError::not_found()))
            }
        }
    }
}
