//! Messages: FindItem, GetItem, CreateItem, UpdateItem, DeleteItem,
//! MoveItem and CopyItem for items of mail folders, and the operations
//! only messages have: SendItem, GetAttachment, MarkAsJunk.
//!
//! A message's ItemId is (owner, folder, UID), its ChangeKey its modseq:
//! a flag change keeps the id and changes the key; a move, or a change of
//! a draft's content (filed anew, as ActiveSync drafts are), gives a new
//! id, answered in the response. Sending goes through the backend's one
//! submit (`send_mail`: sender check, DKIM, the Sent copy); messages given
//! by their fields are written by the one composer (`compose_mail`).
//! How properties are read and written: [`super::message`].

use std::collections::HashMap;

use mail_parser::{Message, MessageParser};
use outpost_activesync::drafts::Draft;
use outpost_activesync::SendRefused;
use outpost_mailmeta::flags::{ANSWERED, DELETED, DRAFT, FLAGGED, SEEN};
use outpost_xml::Element;

use super::folders::{self, EwsFolder, Kind, Page};
use super::items::{self, ItemError, ItemRef, ItemResult};
use super::message::{self, Level, NewMessage, Props, SortKey, View, FLAG_STATUS};
use super::restriction::Filter;
use super::{child_tm, invalid, OpResult};
use crate::ids;
use crate::soap::{response, NS_M, NS_T};
use crate::{Ctx, MailEntry, MessageMeta};

fn root_folder(offset: usize, total: usize, last: bool, list: Element) -> Element {
    Element::new(NS_M, "RootFolder")
        .with_attr("IndexedPagingOffset", offset.to_string())
        .with_attr("TotalItemsInView", total.to_string())
        .with_attr(
            "IncludesLastItemInRange",
            if last { "true" } else { "false" },
        )
        .with(list)
}

fn refused(code: &'static str, text: impl Into<String>) -> ItemResult {
    Ok(Err(ItemError::new(code, text)))
}

/// The user's addresses, when a property needs them (IsFromMe).
async fn own_addresses(ctx: &Ctx<'_>, props: &Props) -> Result<Vec<String>, super::OpError> {
    if props.fields.contains("item:IsFromMe") {
        Ok(ctx.backend.addresses(ctx.user.principal_id).await?)
    } else {
        Ok(Vec::new())
    }
}

/// A sort order: (field, descending) in order of precedence.
fn sort_order(op: &Element) -> Result<Vec<(String, bool)>, String> {
    let Some(s) = op.child(NS_M, "SortOrder") else {
        return Ok(vec![("item:DateTimeReceived".into(), true)]);
    };
    let mut out = Vec::new();
    for f in s.children_named(NS_T, "FieldOrder") {
        let field = f
            .child(NS_T, "FieldURI")
            .and_then(|u| u.attr("FieldURI"))
            .map(str::to_string)
            .or_else(|| {
                f.child(NS_T, "ExtendedFieldURI")
                    .and_then(super::props::field_name)
            })
            .ok_or("Messages are sorted by FieldURI or ExtendedFieldURI properties only.")?;
        if message::searchable(&field).is_none() {
            return Err(format!("Messages cannot be sorted by {field} here."));
        }
        out.push((field, f.attr("Order") != Some("Ascending")));
    }
    Ok(out)
}

pub async fn find(ctx: &Ctx<'_>, folder: &EwsFolder, op: &Element) -> ItemResult {
    match op.attr("Traversal") {
        Some("Shallow") | None => {}
        // No folder-associated items are kept: none to list.
        Some("Associated") => {
            return Ok(Ok(vec![root_folder(
                0,
                0,
                true,
                Element::new(NS_T, "Items"),
            )]))
        }
        Some(_) => {
            return refused(
                "ErrorInvalidRequest",
                "Only a Shallow traversal of a mail folder is supported.",
            )
        }
    }
    for unsupported in [
        "QueryString",
        "GroupBy",
        "DistinguishedGroupBy",
        "CalendarView",
        "ContactsView",
    ] {
        if op.child(NS_M, unsupported).is_some() {
            return refused(
                "ErrorUnsupportedQueryFilter",
                format!("{unsupported} is not supported on mail folders by this server."),
            );
        }
    }
    let props = Props::read(child_tm(op, "ItemShape"), true);
    let page = Page::read(
        op,
        &["IndexedPageItemView", "FractionalPageItemView"],
        ctx.limits.max_page,
    )?;
    let filter = match op.child(NS_M, "Restriction").map(Filter::read) {
        None => None,
        Some(Err(why)) => return refused("ErrorUnsupportedQueryFilter", why),
        Some(Ok(f)) => Some(f),
    };
    let mut need = Level::Entry;
    if let Some(f) = &filter {
        for field in f.fields() {
            match message::searchable(field) {
                Some(l) => need = need.max(l),
                None => {
                    return refused(
                        "ErrorUnsupportedQueryFilter",
                        format!("Messages cannot be searched by {field} here."),
                    )
                }
            }
        }
    }
    let order = match sort_order(op) {
        Ok(o) => o,
        Err(why) => return refused("ErrorUnsupportedPathForSortGroup", why),
    };
    for (field, _) in &order {
        need = need.max(message::searchable(field).unwrap_or(Level::Meta));
    }
    let principal = ctx.user.principal_id;
    let Some(entries) = ctx.backend.mail_entries(principal, folder.id).await? else {
        return refused("ErrorFolderNotFound", "The folder does not exist.");
    };
    // The metadata of every message only when the restriction or the
    // order reads it; else of the page's messages only.
    let mut metas: HashMap<i64, MessageMeta> = if need >= Level::Meta {
        let uids: Vec<i64> = entries.iter().map(|e| e.uid).collect();
        ctx.backend.mail_meta(principal, folder.id, &uids).await?
    } else {
        HashMap::new()
    };
    let own = own_addresses(ctx, &props).await?;
    let mut chosen: Vec<usize> = (0..entries.len())
        .filter(|&i| {
            filter.as_ref().is_none_or(|f| {
                let v = make_view(principal, folder.id, &entries[i], &metas, &own);
                f.eval(&|field| message::value(field, &v))
            })
        })
        .collect();
    // Sort keys by position in `entries` (only the chosen ones filled).
    let mut keys: Vec<Vec<SortKey>> = vec![Vec::new(); entries.len()];
    for &i in &chosen {
        let v = make_view(principal, folder.id, &entries[i], &metas, &own);
        keys[i] = order
            .iter()
            .map(|(f, _)| message::sort_key(f, &v))
            .collect();
    }
    chosen.sort_by(|a, b| {
        for (n, (_, desc)) in order.iter().enumerate() {
            let o = keys[*a][n].cmp(&keys[*b][n]);
            let o = if *desc { o.reverse() } else { o };
            if o.is_ne() {
                return o;
            }
        }
        // Newest first among equals.
        entries[*b].uid.cmp(&entries[*a].uid)
    });
    let total = chosen.len();
    let (start, end, last) = page.range(total);
    let shown = &chosen[start..end];
    let level = props.level();
    if level >= Level::Meta {
        let missing: Vec<i64> = shown
            .iter()
            .map(|&i| entries[i].uid)
            .filter(|u| !metas.contains_key(u))
            .collect();
        if !missing.is_empty() {
            metas.extend(
                ctx.backend
                    .mail_meta(principal, folder.id, &missing)
                    .await?,
            );
        }
    }
    let mut raws: Vec<Option<Vec<u8>>> = Vec::new();
    if level == Level::Raw {
        for &i in shown {
            raws.push(
                ctx.backend
                    .mail_raw(principal, folder.id, entries[i].uid)
                    .await?,
            );
        }
    }
    let parsed: Vec<Option<Message<'_>>> = raws
        .iter()
        .map(|r| r.as_deref().and_then(|r| MessageParser::default().parse(r)))
        .collect();
    let mut list = Element::new(NS_T, "Items");
    for (n, &i) in shown.iter().enumerate() {
        let mut v = make_view(principal, folder.id, &entries[i], &metas, &own);
        v.raw = raws.get(n).and_then(|r| r.as_deref());
        v.parsed = parsed.get(n).and_then(|p| p.as_ref());
        list.push(message::render(&props, &v));
    }
    Ok(Ok(vec![root_folder(end, total, last, list)]))
}

fn make_view<'a>(
    owner: i64,
    folder: i64,
    e: &'a MailEntry,
    metas: &'a HashMap<i64, MessageMeta>,
    own: &'a [String],
) -> View<'a> {
    View {
        owner,
        folder,
        entry: e,
        meta: metas.get(&e.uid),
        raw: None,
        parsed: None,
        own,
    }
}

/// The message with all there is of it, for GetItem and for comparing
/// what an UpdateItem sets.
struct Full {
    entry: MailEntry,
    raw: Option<Vec<u8>>,
    meta: Option<MessageMeta>,
}

/// The message an ItemId's UID names in `folder`: the message of that
/// UID, or the draft filed anew in its place ([`message::id_uid`]).
async fn locate(ctx: &Ctx<'_>, folder: i64, uid: i64) -> Result<Option<MailEntry>, super::OpError> {
    let principal = ctx.user.principal_id;
    if let Some(e) = ctx.backend.mail_entry(principal, folder, uid).await? {
        return Ok(Some(e));
    }
    let alias = message::alias_keyword(folder, uid);
    Ok(ctx
        .backend
        .mail_entries(principal, folder)
        .await?
        .and_then(|list| list.into_iter().find(|e| e.keywords.contains(&alias))))
}

async fn load(
    ctx: &Ctx<'_>,
    folder: i64,
    uid: i64,
    level: Level,
) -> Result<Option<Full>, super::OpError> {
    let principal = ctx.user.principal_id;
    let Some(entry) = locate(ctx, folder, uid).await? else {
        return Ok(None);
    };
    let uid = entry.uid;
    let raw = if level == Level::Raw {
        ctx.backend.mail_raw(principal, folder, uid).await?
    } else {
        None
    };
    let meta = match &raw {
        Some(r) => Some(MessageMeta::parse(r)),
        None if level >= Level::Meta => ctx
            .backend
            .mail_meta(principal, folder, &[uid])
            .await?
            .remove(&uid),
        None => None,
    };
    Ok(Some(Full { entry, raw, meta }))
}

impl Full {
    fn render(&self, ctx: &Ctx<'_>, folder: i64, props: &Props, own: &[String]) -> Element {
        let parsed = self
            .raw
            .as_deref()
            .and_then(|r| MessageParser::default().parse(r));
        let v = View {
            owner: ctx.user.principal_id,
            folder,
            entry: &self.entry,
            meta: self.meta.as_ref(),
            raw: self.raw.as_deref(),
            parsed: parsed.as_ref(),
            own,
        };
        message::render(props, &v)
    }
}

pub async fn get(ctx: &Ctx<'_>, item: &ItemRef<'_>, shape: Option<&Element>) -> ItemResult {
    let props = Props::read(shape, false);
    let Some(full) = load(ctx, item.folder.id, item.item, props.level()).await? else {
        return Ok(Err(ItemError::not_found()));
    };
    let own = own_addresses(ctx, &props).await?;
    Ok(Ok(vec![items::items(full.render(
        ctx,
        item.folder.id,
        &props,
        &own,
    ))]))
}

fn send_refused(r: SendRefused) -> ItemError {
    let (code, text) = match r {
        SendRefused::NotAllowed => (
            "ErrorSendAsDenied",
            "This account may not send as the message's From or Sender address.",
        ),
        SendRefused::BadMessage => ("ErrorMimeContentInvalid", "The message cannot be read."),
        SendRefused::UnknownRecipient => ("ErrorInvalidRecipients", "A recipient does not exist."),
        SendRefused::NoRecipients => ("ErrorInvalidRecipients", "The message has no recipients."),
        SendRefused::Full => ("ErrorQuotaExceeded", "The mailbox is full."),
        SendRefused::Temporary => (
            "ErrorServerBusy",
            "The message could not be sent now; try again later.",
        ),
        SendRefused::ReplyFailed | SendRefused::Failed => (
            "ErrorMessageSubmissionBlocked",
            "The message was refused for sending.",
        ),
    };
    ItemError::new(code, text)
}

/// Sends `mime` as the user through the one submit; the copy goes to Sent
/// (`copy` None or Sent Items) or to the folder `copy` names.
async fn send(
    ctx: &Ctx<'_>,
    mime: &[u8],
    save: bool,
    copy: Option<&EwsFolder>,
) -> Result<Result<(), ItemError>, super::OpError> {
    let principal = ctx.user.principal_id;
    let to_sent = copy.is_none_or(|f| f.distinguished == Some("sentitems"));
    if let Err(r) = ctx
        .backend
        .send_mail(principal, mime, save && to_sent, None)
        .await?
    {
        return Ok(Err(send_refused(r)));
    }
    if let (true, false, Some(f)) = (save, to_sent, copy) {
        ctx.backend.file_mail(principal, f.id, mime, true).await?;
    }
    Ok(Ok(()))
}

/// The MIME of a new message: the client's own, or its fields composed.
async fn mime_of(
    ctx: &Ctx<'_>,
    m: &NewMessage,
    base: Draft,
    from: Option<&str>,
) -> Result<Option<Vec<u8>>, super::OpError> {
    if let Some(mime) = &m.mime {
        if MessageParser::new().parse_headers(mime).is_none() {
            return Ok(None);
        }
        return Ok(Some(mime.clone()));
    }
    let draft = m.apply(base);
    Ok(ctx
        .backend
        .compose_mail(ctx.user.principal_id, &draft, from.or(m.from.as_deref()))
        .await?)
}

/// Sets flags and categories of a filed message: its new modseq.
async fn set_state(
    ctx: &Ctx<'_>,
    folder: i64,
    uid: i64,
    read: Option<bool>,
    flagged: Option<bool>,
    keywords: Option<Vec<String>>,
) -> Result<Option<i64>, super::OpError> {
    let principal = ctx.user.principal_id;
    let mut modseq = None;
    if read.is_some() || flagged.is_some() {
        modseq = ctx
            .backend
            .set_mail_flags(principal, folder, uid, read, flagged)
            .await?;
        if modseq.is_none() {
            return Ok(None);
        }
    }
    if let Some(k) = keywords {
        modseq = ctx
            .backend
            .set_mail_keywords(principal, folder, uid, &k)
            .await?;
    }
    Ok(modseq)
}

/// `m:Items` with the message's new id.
fn new_id(ctx: &Ctx<'_>, folder: i64, uid: i64, modseq: i64) -> Element {
    items::items(Element::new(NS_T, "Message").with(message::item_id(
        ctx.user.principal_id,
        folder,
        &MailEntry {
            uid,
            modseq,
            ..MailEntry::default()
        },
    )))
}

/// The categories of `cats` with the keywords that are not categories
/// (`$Forwarded`...) of `current`.
fn keywords_with(current: &[String], cats: &[String]) -> Vec<String> {
    let mut k: Vec<String> = current
        .iter()
        .filter(|k| k.starts_with('$') || k.starts_with('\\'))
        .cloned()
        .collect();
    for c in cats {
        if !k.iter().any(|x| x.eq_ignore_ascii_case(c)) {
            k.push(c.clone());
        }
    }
    k
}

pub async fn create(
    ctx: &Ctx<'_>,
    tree: &[EwsFolder],
    folder: Option<&EwsFolder>,
    item: &Element,
    op: &Element,
) -> ItemResult {
    let disposition = op.attr("MessageDisposition").unwrap_or("SaveOnly");
    let m = match message::read_new(item) {
        Ok(m) => m,
        Err(why) => return refused("ErrorInvalidRequest", why),
    };
    if let Some(f) = folder {
        if f.kind != Kind::Mail {
            return refused(
                "ErrorInvalidRequest",
                "Messages are saved in mail folders only.",
            );
        }
    }
    let base = Draft {
        read: true,
        ..Draft::default()
    };
    let Some(mime) = mime_of(ctx, &m, base, None).await? else {
        return refused(
            "ErrorInvalidRecipients",
            "An address list of the message is not one, or the MimeContent is not a message.",
        );
    };
    match disposition {
        "SaveOnly" => {
            let Some(target) =
                folder.or_else(|| tree.iter().find(|f| f.distinguished == Some("drafts")))
            else {
                return refused("ErrorFolderNotFound", "This mailbox has no Drafts folder.");
            };
            let draft = Draft {
                mime: Some(mime),
                read: m.read.unwrap_or(true),
                ..Draft::default()
            };
            let principal = ctx.user.principal_id;
            let Some((uid, mut modseq)) = ctx
                .backend
                .save_draft(principal, target.id, &draft, None)
                .await?
            else {
                return refused("ErrorItemSave", "The message could not be saved.");
            };
            let keywords = m.categories.as_ref().map(|c| keywords_with(&[], c));
            if m.flagged.is_some() || keywords.is_some() {
                if let Some(s) = set_state(ctx, target.id, uid, None, m.flagged, keywords).await? {
                    modseq = s;
                }
            }
            Ok(Ok(vec![new_id(ctx, target.id, uid, modseq)]))
        }
        "SendOnly" | "SendAndSaveCopy" => {
            let save = disposition == "SendAndSaveCopy";
            Ok(send(ctx, &mime, save, folder)
                .await?
                .map(|()| vec![Element::new(NS_M, "Items")]))
        }
        _ => Err(invalid(
            "MessageDisposition must be SaveOnly, SendOnly or SendAndSaveCopy.",
        )),
    }
}

/// A property only a draft's content has (changing it files the draft
/// anew).
fn content_field(field: &str) -> bool {
    matches!(
        field,
        "item:Subject"
            | "item:Body"
            | "item:Importance"
            | "item:MimeContent"
            | "message:ToRecipients"
            | "message:CcRecipients"
            | "message:BccRecipients"
            | "message:From"
    )
}

pub async fn update(
    ctx: &Ctx<'_>,
    item: &ItemRef<'_>,
    change: &Element,
    op: &Element,
) -> ItemResult {
    let principal = ctx.user.principal_id;
    let folder = item.folder.id;
    let Some(full) = load(ctx, folder, item.item, Level::Raw).await? else {
        return Ok(Err(ItemError::not_found()));
    };
    let resolution = op.attr("ConflictResolution").unwrap_or("AutoResolve");
    if !matches!(
        resolution,
        "NeverOverwrite" | "AutoResolve" | "AlwaysOverwrite"
    ) {
        return Err(invalid(
            "ConflictResolution must be NeverOverwrite, AutoResolve or AlwaysOverwrite.",
        ));
    }
    if let Some(k) = item.change_key {
        if k != full.entry.modseq && resolution != "AlwaysOverwrite" {
            return refused(
                "ErrorIrresolvableConflict",
                "The item has changed since its ChangeKey was read.",
            );
        }
    }
    let disposition = op.attr("MessageDisposition").unwrap_or("SaveOnly");
    if !matches!(disposition, "SaveOnly" | "SendOnly" | "SendAndSaveCopy") {
        return Err(invalid(
            "MessageDisposition must be SaveOnly, SendOnly or SendAndSaveCopy.",
        ));
    }
    let e = &full.entry;
    let is_draft = e.flags & DRAFT != 0;
    let mut read = None;
    let mut flagged = None;
    let mut cats: Option<Vec<String>> = None;
    // System flags set and cleared, and keywords added and removed, by
    // the MAPI properties DavMail writes.
    let (mut set_bits, mut clear_bits) = (0i64, 0i64);
    let mut kw_add: Vec<&str> = Vec::new();
    let mut kw_remove: Vec<&str> = Vec::new();
    let mut content = NewMessage::default();
    let mut edited = false;
    // Everything this server answers for the message, to recognise a
    // property set to what it already is (a client saving all fields).
    let mut all = Props::read(None, false);
    all.fields.extend(message::FIELDS.iter().map(|(f, _)| *f));
    let current = full.render(ctx, folder, &all, &[]);
    let empty = Element::new(NS_T, "Updates");
    for u in &change.child(NS_T, "Updates").unwrap_or(&empty).children {
        let kind = u.name.local.as_str();
        if !matches!(
            kind,
            "SetItemField" | "AppendToItemField" | "DeleteItemField"
        ) {
            return Err(invalid(format!("{kind} is not an item change.")));
        }
        let path = u.children.iter().find(|c| {
            c.name.ns == NS_T
                && matches!(
                    c.name.local.as_str(),
                    "FieldURI" | "ExtendedFieldURI" | "IndexedFieldURI"
                )
        });
        let field = path.and_then(message::path_of);
        let value = u
            .children
            .iter()
            .find(|c| c.is(NS_T, "Message") || c.is(NS_T, "Item"))
            .and_then(|m| m.children.first());
        let deleting = kind == "DeleteItemField";
        if !deleting && value.is_none() {
            return Err(invalid(format!("{kind} has no value.")));
        }
        let ext_key = path
            .filter(|p| p.is(NS_T, "ExtendedFieldURI"))
            .and_then(super::props::key);
        let ext_num = value
            .and_then(|v| v.child(NS_T, "Value"))
            .map(|x| x.text.trim().parse::<i64>().unwrap_or(0));
        let on = !deleting && ext_num.unwrap_or(0) != 0;
        match ext_key.as_deref() {
            // Common/PidLidImapDeleted: \Deleted.
            Some("Common/0x8570") => {
                if on {
                    set_bits |= DELETED;
                } else {
                    clear_bits |= DELETED;
                }
                continue;
            }
            // PidTagLastVerbExecuted: 102/103 replied, 104 forwarded.
            Some("0x1081") => {
                match ext_num.filter(|_| !deleting) {
                    Some(102 | 103) => set_bits |= ANSWERED,
                    Some(104) => kw_add.push("$Forwarded"),
                    _ => {
                        clear_bits |= ANSWERED;
                        kw_remove.push("$Forwarded");
                    }
                }
                continue;
            }
            // Junk (DavMail's 0x1083): $Junk.
            Some("0x1083") => {
                if on {
                    kw_add.push("$Junk");
                    kw_remove.push("$NotJunk");
                } else {
                    kw_remove.push("$Junk");
                }
                continue;
            }
            // PidTagIconIndex: follows the verb, nothing of its own.
            Some("0x1080") => continue,
            Some("PublicStrings/keywords") => {
                cats = Some(
                    value
                        .and_then(|v| v.child(NS_T, "Values"))
                        .map(|vs| {
                            vs.children_named(NS_T, "Value")
                                .map(|x| x.text.trim().to_string())
                                .filter(|x| !x.is_empty())
                                .collect()
                        })
                        .unwrap_or_default(),
                );
                continue;
            }
            _ => {}
        }
        match field {
            Some("message:IsRead") => {
                read = Some(match value {
                    Some(v) => match v.text.trim() {
                        "true" | "1" => true,
                        "false" | "0" => false,
                        _ => return Err(invalid("IsRead is neither true nor false.")),
                    },
                    None => false,
                })
            }
            Some("item:Flag") | Some(FLAG_STATUS) => {
                flagged = Some(value.and_then(message::read_flag).unwrap_or(false))
            }
            Some("item:Categories") => {
                let given = value.map(message::read_categories).unwrap_or_default();
                cats = Some(match kind {
                    "AppendToItemField" => {
                        let mut c = cats.unwrap_or_else(|| message::categories(e));
                        for g in given {
                            if !c.iter().any(|x| x.eq_ignore_ascii_case(&g)) {
                                c.push(g);
                            }
                        }
                        c
                    }
                    _ => given,
                });
            }
            Some(f) if content_field(f) && is_draft => {
                edited = true;
                match value {
                    Some(v) => {
                        if let Err(why) = message::read_property(&mut content, v) {
                            return refused("ErrorInvalidPropertySet", why);
                        }
                    }
                    None => match f {
                        "item:Subject" => content.subject = Some(String::new()),
                        "item:Body" => content.body = Some((false, String::new())),
                        "message:ToRecipients" => content.to = Some(String::new()),
                        "message:CcRecipients" => content.cc = Some(String::new()),
                        "message:BccRecipients" => content.bcc = Some(String::new()),
                        "item:Importance" => content.importance = Some(1),
                        _ => {}
                    },
                }
            }
            _ => {
                // Not kept or not changeable here: fine when it would
                // not change what is answered.
                let Some(v) = value else { continue };
                let now = current
                    .children
                    .iter()
                    .find(|c| c.name == v.name)
                    .map(message::flat_text)
                    .unwrap_or_default();
                if !same_value(&message::flat_text(v), &now) {
                    let name = path
                        .and_then(|p| p.attr("FieldURI").or(p.attr("PropertyTag")))
                        .unwrap_or("?");
                    return refused(
                        if field.is_some_and(content_field) {
                            "ErrorInvalidPropertyUpdateSentMessage"
                        } else {
                            "ErrorInvalidPropertySet"
                        },
                        format!("The property {name} cannot be changed on this message here."),
                    );
                }
            }
        }
    }
    let mut uid = e.uid;
    // The UID the answered ItemId names (kept across a draft's re-filing).
    let id = message::id_uid(e, folder);
    let mut modseq = e.modseq;
    let mut keywords = cats.map(|c| keywords_with(&e.keywords, &c));
    if !kw_add.is_empty() || !kw_remove.is_empty() {
        let mut k = keywords.take().unwrap_or_else(|| e.keywords.clone());
        k.retain(|x| !kw_remove.iter().any(|r| r.eq_ignore_ascii_case(x)));
        for a in &kw_add {
            if !k.iter().any(|x| x.eq_ignore_ascii_case(a)) {
                k.push(a.to_string());
            }
        }
        keywords = Some(k);
    }
    if edited {
        // A draft's new content: composed and filed anew, the old one
        // removed; its flags and keywords carried over.
        let raw = full.raw.as_deref().unwrap_or_default();
        let parsed = MessageParser::default().parse(raw);
        let from = parsed
            .as_ref()
            .and_then(|p| p.header_raw("From"))
            .map(|f| f.trim().to_string());
        let base = outpost_activesync::drafts::from_message(raw);
        let Some(mime) = mime_of(ctx, &content, base, from.as_deref()).await? else {
            return refused(
                "ErrorInvalidRecipients",
                "An address list of the message is not one.",
            );
        };
        let draft = Draft {
            mime: Some(mime),
            read: read.unwrap_or(e.flags & SEEN != 0),
            ..Draft::default()
        };
        let Some((n, m)) = ctx
            .backend
            .save_draft(principal, folder, &draft, Some(uid))
            .await?
        else {
            return refused("ErrorItemSave", "The draft could not be saved.");
        };
        uid = n;
        modseq = m;
        read = None;
        if flagged.is_none() && e.flags & FLAGGED != 0 {
            flagged = Some(true);
        }
        let alias = message::alias_keyword(folder, id);
        let mut k = keywords.take().unwrap_or_else(|| e.keywords.clone());
        k.retain(|x| !x.starts_with(message::ALIAS) || *x == alias);
        if !k.contains(&alias) {
            k.push(alias);
        }
        keywords = Some(k);
    }
    if read.is_some() || flagged.is_some() || keywords.is_some() {
        match set_state(ctx, folder, uid, read, flagged, keywords).await? {
            Some(m) => modseq = m,
            None => return Ok(Err(ItemError::not_found())),
        }
    }
    if set_bits != 0 || clear_bits != 0 {
        match ctx
            .backend
            .set_mail_system_flags(principal, folder, uid, set_bits, clear_bits)
            .await?
        {
            Some(m) => modseq = m,
            None => return Ok(Err(ItemError::not_found())),
        }
    }
    if disposition != "SaveOnly" {
        let Some(raw) = ctx.backend.mail_raw(principal, folder, uid).await? else {
            return Ok(Err(ItemError::not_found()));
        };
        if let Err(e) = send(ctx, &raw, disposition == "SendAndSaveCopy", None).await? {
            return Ok(Err(e));
        }
        ctx.backend.expunge_mail(principal, folder, &[uid]).await?;
        return Ok(Ok(vec![Element::new(NS_M, "Items")]));
    }
    Ok(Ok(vec![
        new_id(ctx, folder, id, modseq),
        Element::new(NS_M, "ConflictResults").with(Element::new(NS_T, "Count").with_text("0")),
    ]))
}

/// Two property texts that mean the same: equal, or the same xs:boolean
/// spelt `1`/`0` and `true`/`false`.
fn same_value(a: &str, b: &str) -> bool {
    let norm = |s: &str| match s {
        "1" | "true" => "true".to_string(),
        "0" | "false" => "false".to_string(),
        s => s.replace("\r\n", "\n").trim_end().to_string(),
    };
    norm(a) == norm(b)
}

pub async fn delete(
    ctx: &Ctx<'_>,
    tree: &[EwsFolder],
    item: &ItemRef<'_>,
    how: &str,
) -> ItemResult {
    let principal = ctx.user.principal_id;
    let folder = item.folder.id;
    let Some(e) = locate(ctx, folder, item.item).await? else {
        return Ok(Err(ItemError::not_found()));
    };
    let trash = tree
        .iter()
        .find(|f| f.distinguished == Some("deleteditems"));
    let done = match trash {
        // Moved to Deleted Items, unless it is there already (then, as
        // Exchange does, it is gone).
        Some(t) if how != "HardDelete" && t.id != folder => !ctx
            .backend
            .move_mail(principal, folder, &[e.uid], t.id)
            .await?
            .is_empty(),
        _ => !ctx
            .backend
            .expunge_mail(principal, folder, &[e.uid])
            .await?
            .is_empty(),
    };
    if done {
        Ok(Ok(Vec::new()))
    } else {
        Ok(Err(ItemError::not_found()))
    }
}

pub async fn move_or_copy(
    ctx: &Ctx<'_>,
    item: &ItemRef<'_>,
    to: &EwsFolder,
    copy: bool,
) -> ItemResult {
    let principal = ctx.user.principal_id;
    let from = item.folder.id;
    let Some(e) = locate(ctx, from, item.item).await? else {
        return Ok(Err(ItemError::not_found()));
    };
    let pairs = if copy {
        ctx.backend
            .copy_mail(principal, from, &[e.uid], to.id)
            .await?
    } else {
        ctx.backend
            .move_mail(principal, from, &[e.uid], to.id)
            .await?
    };
    let Some(&(_, uid)) = pairs.first() else {
        return Ok(Err(ItemError::not_found()));
    };
    let modseq = ctx
        .backend
        .mail_entry(principal, to.id, uid)
        .await?
        .map_or(0, |e| e.modseq);
    Ok(Ok(vec![new_id(ctx, to.id, uid, modseq)]))
}

/// SendItem: sends saved messages (drafts) and removes them; the copy
/// goes to `SavedItemFolderId` or Sent Items when `SaveItemToFolder`.
pub async fn send_item(ctx: &Ctx<'_>, op: &Element) -> OpResult {
    let wanted = items::ids_of(op, "ItemIds", ctx)?;
    let save = !matches!(op.attr("SaveItemToFolder"), Some("false" | "0"));
    let tree = folders::tree(ctx).await?;
    let copy = items::target_folder(ctx, &tree, child_tm(op, "SavedItemFolderId"));
    let principal = ctx.user.principal_id;
    let mut messages = Vec::new();
    for id in wanted {
        let r = match (items::resolve_item(ctx, &tree, id), &copy) {
            (Err(e), _) => Err(e),
            (_, Some(Err(e))) => Err(e.clone()),
            (Ok(item), _) if item.folder.kind != Kind::Mail => Err(ItemError::new(
                "ErrorInvalidItemForOperation",
                "Only messages can be sent.",
            )),
            (Ok(item), copy) => {
                let copy = match copy {
                    Some(Ok(f)) if f.kind == Kind::Mail => Some(*f),
                    _ => None,
                };
                let uid = locate(ctx, item.folder.id, item.item).await?.map(|e| e.uid);
                let raw = match uid {
                    Some(u) => ctx.backend.mail_raw(principal, item.folder.id, u).await?,
                    None => None,
                };
                match (uid, raw) {
                    (Some(uid), Some(raw)) => match send(ctx, &raw, save, copy).await? {
                        Err(e) => Err(e),
                        Ok(()) => {
                            ctx.backend
                                .expunge_mail(principal, item.folder.id, &[uid])
                                .await?;
                            Ok(Vec::new())
                        }
                    },
                    _ => Err(ItemError::not_found()),
                }
            }
        };
        messages.push(items::message("SendItem", r));
    }
    Ok(response("SendItem", messages))
}

/// GetAttachment: attachments of messages, with their content.
pub async fn get_attachment(ctx: &Ctx<'_>, op: &Element) -> OpResult {
    let wanted = items::ids_of(op, "AttachmentIds", ctx)?;
    let tree = folders::tree(ctx).await?;
    let principal = ctx.user.principal_id;
    let mut messages = Vec::new();
    for id in wanted {
        let r = match id.attr("Id").and_then(ids::decode_attachment) {
            None => Err(ItemError::new(
                "ErrorInvalidIdMalformed",
                "Id is malformed.",
            )),
            Some((owner, _, _, _)) if owner != principal => Err(ItemError::new(
                "ErrorAccessDenied",
                "The attachment is not one of this mailbox's.",
            )),
            Some((_, folder, uid, index)) => {
                let mail = tree.iter().any(|f| f.id == folder && f.kind == Kind::Mail);
                let real = if mail {
                    locate(ctx, folder, uid).await?.map(|e| e.uid)
                } else {
                    None
                };
                let raw = match real {
                    Some(u) => ctx.backend.mail_raw(principal, folder, u).await?,
                    None => None,
                };
                let parsed = raw
                    .as_deref()
                    .and_then(|r| MessageParser::default().parse(r));
                match parsed.as_ref().and_then(|m| m.attachment(index)) {
                    None => Err(ItemError::new(
                        "ErrorAttachmentNotFound",
                        "The attachment was not found.",
                    )),
                    Some(p) => Ok(vec![Element::new(NS_M, "Attachments").with(
                        message::attachment_element(principal, folder, uid, index, p, true),
                    )]),
                }
            }
        };
        messages.push(items::message("GetAttachment", r));
    }
    Ok(response("GetAttachment", messages))
}

/// MarkAsJunk: `$Junk` (or `$NotJunk`) set, and with `MoveItem` the
/// message moved to Junk Email (or back to the Inbox).
pub async fn mark_as_junk(ctx: &Ctx<'_>, op: &Element) -> OpResult {
    let wanted = items::ids_of(op, "ItemIds", ctx)?;
    let junk = matches!(op.attr("IsJunk"), Some("true" | "1"));
    let move_it = matches!(op.attr("MoveItem"), Some("true" | "1"));
    let tree = folders::tree(ctx).await?;
    let principal = ctx.user.principal_id;
    let to = tree
        .iter()
        .find(|f| f.distinguished == Some(if junk { "junkemail" } else { "inbox" }));
    let mut messages = Vec::new();
    for id in wanted {
        let r = match items::resolve_item(ctx, &tree, id) {
            Err(e) => Err(e),
            Ok(item) if item.folder.kind != Kind::Mail => Err(ItemError::new(
                "ErrorInvalidItemForOperation",
                "Only messages can be marked as junk.",
            )),
            Ok(item) => match locate(ctx, item.folder.id, item.item).await? {
                None => Err(ItemError::not_found()),
                Some(e) => {
                    let (add, drop) = if junk {
                        ("$Junk", "$NotJunk")
                    } else {
                        ("$NotJunk", "$Junk")
                    };
                    let mut k: Vec<String> = e
                        .keywords
                        .iter()
                        .filter(|k| !k.eq_ignore_ascii_case(drop) && !k.eq_ignore_ascii_case(add))
                        .cloned()
                        .collect();
                    k.push(add.to_string());
                    let mut modseq = ctx
                        .backend
                        .set_mail_keywords(principal, item.folder.id, e.uid, &k)
                        .await?
                        .unwrap_or(e.modseq);
                    let mut at = (item.folder.id, e.uid);
                    if let Some(t) = to.filter(|t| move_it && t.id != item.folder.id) {
                        if let Some(&(_, n)) = ctx
                            .backend
                            .move_mail(principal, item.folder.id, &[e.uid], t.id)
                            .await?
                            .first()
                        {
                            at = (t.id, n);
                            modseq = ctx
                                .backend
                                .mail_entry(principal, t.id, n)
                                .await?
                                .map_or(0, |e| e.modseq);
                        }
                    }
                    Ok(if move_it {
                        vec![Element::new(NS_M, "MovedItemId")
                            .with_attr("Id", ids::item_id(principal, at.0, at.1))
                            .with_attr("ChangeKey", ids::change_key(modseq))]
                    } else {
                        Vec::new()
                    })
                }
            },
        };
        messages.push(items::message("MarkAsJunk", r));
    }
    Ok(response("MarkAsJunk", messages))
}
