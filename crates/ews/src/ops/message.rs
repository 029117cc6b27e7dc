//! A message as EWS writes and reads it (MS-OXWSMSG): the properties a
//! shape asks for ([`Props`]), a stored message rendered as `t:Message`
//! in the schema's order ([`render`]), the values restrictions and sort
//! orders read ([`value`], [`sort_key`]), and a `t:Message` of a
//! CreateItem read into the fields the composer takes ([`read_new`]).
//!
//! What a property needs decides how much is read: the row alone
//! ([`Level::Entry`]: flags, dates, size), the metadata parsed at delivery
//! ([`Level::Meta`]: envelope and MIME structure), or the message itself
//! ([`Level::Raw`]: body, attachments, headers, MIME). FindItem reads the
//! least its shape, restriction and sort order need.

use std::collections::BTreeSet;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use mail_parser::{Message, MimeHeaders};
use outpost_activesync::drafts::{Attachment, Draft};
use outpost_mailmeta::flags::{DRAFT, FLAGGED, SEEN};
use outpost_mailmeta::{BodyPart, EnvelopeAddress};
use outpost_xml::Element;

use super::oof::utc;
use super::props::ExtValue;
use crate::ids;
use crate::soap::NS_T;
use crate::{MailEntry, MessageMeta};

/// What a property needs read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Entry,
    /// The subject and the date, kept beside the metadata (restrictions
    /// and sort orders only).
    Columns,
    Meta,
    Raw,
}

/// The extended property PidTagFlagStatus (0x1090, MS-OXOFLAG), as
/// clients without `item:Flag` (exchangelib's `Flag`, DavMail) set it.
pub const FLAG_STATUS: &str = "ext:0x1090";

/// Where in [`FIELDS`] the requested extended properties are written.
const EXTENDED: &str = "ext:*";

/// Every property this server has for a message, in the schema's order
/// (ItemType, then MessageType), with what it needs.
pub const FIELDS: &[(&str, Level)] = &[
    ("item:MimeContent", Level::Raw),
    ("item:ItemId", Level::Entry),
    ("item:ParentFolderId", Level::Entry),
    ("item:ItemClass", Level::Entry),
    ("item:Subject", Level::Meta),
    ("item:Sensitivity", Level::Entry),
    ("item:Body", Level::Raw),
    ("item:Attachments", Level::Raw),
    ("item:DateTimeReceived", Level::Entry),
    ("item:Size", Level::Entry),
    ("item:Categories", Level::Entry),
    ("item:Importance", Level::Raw),
    ("item:InReplyTo", Level::Meta),
    ("item:IsSubmitted", Level::Entry),
    ("item:IsDraft", Level::Entry),
    ("item:IsFromMe", Level::Meta),
    ("item:IsResend", Level::Entry),
    ("item:IsUnmodified", Level::Entry),
    ("item:InternetMessageHeaders", Level::Raw),
    ("item:DateTimeSent", Level::Meta),
    ("item:DateTimeCreated", Level::Entry),
    ("item:ReminderIsSet", Level::Entry),
    ("item:ReminderMinutesBeforeStart", Level::Entry),
    ("item:DisplayCc", Level::Meta),
    ("item:DisplayTo", Level::Meta),
    ("item:HasAttachments", Level::Meta),
    (EXTENDED, Level::Entry),
    ("item:IsAssociated", Level::Entry),
    ("item:Flag", Level::Entry),
    ("item:TextBody", Level::Raw),
    ("message:Sender", Level::Meta),
    ("message:ToRecipients", Level::Meta),
    ("message:CcRecipients", Level::Meta),
    ("message:BccRecipients", Level::Meta),
    ("message:IsReadReceiptRequested", Level::Raw),
    ("message:IsDeliveryReceiptRequested", Level::Raw),
    ("message:ConversationTopic", Level::Meta),
    ("message:From", Level::Meta),
    ("message:InternetMessageId", Level::Meta),
    ("message:IsRead", Level::Entry),
    ("message:IsResponseRequested", Level::Entry),
    ("message:References", Level::Meta),
    ("message:ReplyTo", Level::Meta),
];

/// The keyword a draft filed anew by UpdateItem carries: `$EwsId.F.U`,
/// the UID `U` its ItemId keeps naming while it is in folder `F` (IMAP
/// never changes a message under its UID, Exchange never changes an
/// item's id on an update, and clients such as exchangelib insist).
pub const ALIAS: &str = "$EwsId.";

pub fn alias_keyword(folder: i64, uid: i64) -> String {
    format!("{ALIAS}{folder}.{uid}")
}

/// The UID a message's ItemId names in `folder`: its own, or the one its
/// draft had first.
pub fn id_uid(e: &MailEntry, folder: i64) -> i64 {
    let prefix = format!("{ALIAS}{folder}.");
    e.keywords
        .iter()
        .find_map(|k| k.strip_prefix(&prefix)?.parse().ok())
        .unwrap_or(e.uid)
}

/// What FindItem's `Default` shape gives.
const DEFAULT_FIND: &[&str] = &[
    "item:ItemId",
    "item:ParentFolderId",
    "item:ItemClass",
    "item:Subject",
    "item:Sensitivity",
    "item:DateTimeReceived",
    "item:Size",
    "item:Categories",
    "item:IsSubmitted",
    "item:IsDraft",
    "item:IsFromMe",
    "item:IsResend",
    "item:IsUnmodified",
    "item:DateTimeSent",
    "item:DateTimeCreated",
    "item:ReminderIsSet",
    "item:ReminderMinutesBeforeStart",
    "item:DisplayCc",
    "item:DisplayTo",
    "item:HasAttachments",
    "item:Flag",
    "message:Sender",
    "message:ConversationTopic",
    "message:From",
    "message:InternetMessageId",
    "message:IsRead",
];

/// What GetItem's `Default` shape adds.
const DEFAULT_GET: &[&str] = &[
    "item:Body",
    "item:Attachments",
    "item:Importance",
    "message:ToRecipients",
    "message:CcRecipients",
    "message:BccRecipients",
    "message:ReplyTo",
    "message:IsReadReceiptRequested",
];

/// The body a shape asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyType {
    /// HTML when the message has it, else text.
    Best,
    Html,
    Text,
}

/// The properties one request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Props {
    pub fields: BTreeSet<&'static str>,
    pub body: BodyType,
    /// The `ExtendedFieldURI`s asked for, answered as they were asked.
    pub ext: Vec<Element>,
}

/// The `FieldURI` a `t:FieldURI` path names (or [`FLAG_STATUS`] for that
/// `t:ExtendedFieldURI`), if this server has it.
pub fn path_of(el: &Element) -> Option<&'static str> {
    if el.is(NS_T, "ExtendedFieldURI") {
        return (super::props::key(el).as_deref() == Some("0x1090")).then_some(FLAG_STATUS);
    }
    if !el.is(NS_T, "FieldURI") {
        return None;
    }
    let name = el.attr("FieldURI")?.trim();
    FIELDS
        .iter()
        .map(|(f, _)| *f)
        .find(|f| *f == name && *f != EXTENDED)
}

/// What an extended property (by its [`super::props::key`]) needs read;
/// `None` for one this server does not have for messages.
pub fn ext_level(key: &str) -> Option<Level> {
    Some(match key {
        "0x0037" => Level::Meta,
        k if k.starts_with("InternetHeaders/") => Level::Raw,
        "0x3008"
        | "0x10f3"
        | "0x670e"
        | "0x0ff9"
        | "0x0e07"
        | "0x0e23"
        | "0x1090"
        | "0x1081"
        | "0x0e08"
        | "0x0e06"
        | "Common/0x8570"
        | "0x1083"
        | "PublicStrings/keywords"
        | "0x001a" => Level::Entry,
        _ => return None,
    })
}

/// The value of extended property `key` of a message: the MAPI
/// properties DavMail and the WebDAV-era clients read (PidTagMessageFlags,
/// the IMAP UID, PidTagLastVerbExecuted...), from the same flags IMAP has.
pub fn ext_value(key: &str, v: &View<'_>) -> Option<ExtValue> {
    let e = v.entry;
    let one = |s: String| Some(ExtValue::One(s));
    let has = |k: &str| e.keywords.iter().any(|x| x.eq_ignore_ascii_case(k));
    match key {
        "0x0e23" => one(e.uid.to_string()),
        "0x0e08" => one(e.size.to_string()),
        "0x0e06" | "0x3008" => one(utc(e.internal_date)),
        "0x10f3" => one(format!("{}.EML", e.uid)),
        "0x670e" | "0x0ff9" => one(ids::item_id(v.owner, v.folder, id_uid(e, v.folder))),
        "0x001a" => one("IPM.Note".into()),
        "0x0037" => one(v.meta?.subject.clone()?),
        // MSGFLAG_READ, MSGFLAG_UNMODIFIED, MSGFLAG_UNSENT,
        // MSGFLAG_HASATTACH (MS-OXCMSG 2.2.1.6).
        "0x0e07" => {
            let mut f = 0;
            if e.flags & SEEN != 0 {
                f |= 0x1;
            }
            if e.flags & DRAFT != 0 {
                f |= 0x8;
            } else {
                f |= 0x2;
            }
            if v.meta.is_some_and(|m| has_attachment(&m.body)) {
                f |= 0x10;
            }
            one(f.to_string())
        }
        "0x1090" => (e.flags & FLAGGED != 0).then(|| ExtValue::One("2".into())),
        // 102 replied, 104 forwarded (MS-OXOMSG 2.2.1.33).
        "0x1081" => {
            if e.flags & outpost_mailmeta::flags::ANSWERED != 0 {
                one("102".into())
            } else if has("$Forwarded") {
                one("104".into())
            } else {
                None
            }
        }
        "Common/0x8570" => {
            (e.flags & outpost_mailmeta::flags::DELETED != 0).then(|| ExtValue::One("1".into()))
        }
        "0x1083" => has("$Junk").then(|| ExtValue::One("1".into())),
        "PublicStrings/keywords" => {
            let c = categories(e);
            (!c.is_empty()).then_some(ExtValue::Many(c))
        }
        k => {
            let name = k.strip_prefix("InternetHeaders/")?;
            let value = v.parsed?.header_raw(name)?;
            one(value.split_whitespace().collect::<Vec<_>>().join(" "))
        }
    }
}

impl Props {
    /// Reads `m:ItemShape`; `find` for FindItem (whose `Default` and
    /// `AllProperties` do not include what needs the whole message).
    pub fn read(shape: Option<&Element>, find: bool) -> Props {
        let mut fields = BTreeSet::new();
        fields.insert("item:ItemId");
        let mut body = BodyType::Best;
        let mut ext = Vec::new();
        if let Some(s) = shape {
            let base = s
                .child(NS_T, "BaseShape")
                .map(|b| b.text.trim())
                .unwrap_or("IdOnly");
            match base {
                "Default" => {
                    fields.extend(DEFAULT_FIND);
                    if !find {
                        fields.extend(DEFAULT_GET);
                    }
                }
                "AllProperties" => fields.extend(
                    FIELDS
                        .iter()
                        .filter(|(f, l)| *f != "item:MimeContent" && (!find || *l != Level::Raw))
                        .map(|(f, _)| *f),
                ),
                _ => {}
            }
            if s.child(NS_T, "IncludeMimeContent")
                .is_some_and(|i| i.text.trim() == "true" || i.text.trim() == "1")
            {
                fields.insert("item:MimeContent");
            }
            body = match s.child(NS_T, "BodyType").map(|b| b.text.trim()) {
                Some("HTML") => BodyType::Html,
                Some("Text") => BodyType::Text,
                _ => BodyType::Best,
            };
            if let Some(extra) = s.child(NS_T, "AdditionalProperties") {
                // A path this server does not have is left out of the
                // answer (as Exchange leaves out unset properties).
                for c in &extra.children {
                    if c.is(NS_T, "ExtendedFieldURI") {
                        if super::props::key(c)
                            .as_deref()
                            .and_then(ext_level)
                            .is_some()
                        {
                            ext.push(c.clone());
                        }
                    } else if let Some(f) = path_of(c) {
                        fields.insert(f);
                    }
                }
            }
        }
        Props { fields, body, ext }
    }

    /// The most any wanted property needs.
    pub fn level(&self) -> Level {
        FIELDS
            .iter()
            .filter(|(f, _)| self.fields.contains(f))
            .map(|(_, l)| *l)
            .chain(
                self.ext
                    .iter()
                    .filter_map(|u| super::props::key(u).as_deref().and_then(ext_level)),
            )
            .max()
            .unwrap_or(Level::Entry)
    }
}

/// The level of a field a restriction or sort order reads; `None` for
/// one that cannot be searched here.
pub fn searchable(field: &str) -> Option<Level> {
    if let Some(key) = field.strip_prefix("ext:") {
        return ext_level(key).filter(|l| *l < Level::Raw);
    }
    Some(match field {
        "message:IsRead"
        | "item:DateTimeReceived"
        | "item:DateTimeCreated"
        | "item:Size"
        | "item:IsDraft"
        | "item:ItemClass" => Level::Entry,
        "item:Subject" | "item:DateTimeSent" | "message:ConversationTopic" => Level::Columns,
        "message:From"
        | "message:Sender"
        | "item:HasAttachments"
        | "message:InternetMessageId"
        | "item:DisplayTo"
        | "item:DisplayCc" => Level::Meta,
        _ => return None,
    })
}

/// One message with what has been read of it.
pub struct View<'a> {
    pub owner: i64,
    pub folder: i64,
    pub entry: &'a MailEntry,
    pub meta: Option<&'a MessageMeta>,
    pub raw: Option<&'a [u8]>,
    pub parsed: Option<&'a Message<'a>>,
    /// The user's addresses (IsFromMe).
    pub own: &'a [String],
}

fn b(v: bool) -> String {
    if v { "true" } else { "false" }.to_string()
}

fn t(local: &str, text: impl Into<String>) -> Element {
    Element::new(NS_T, local).with_text(text)
}

/// `local@host` of an envelope address; `None` for group markers.
fn address(a: &EnvelopeAddress) -> Option<String> {
    let host = a.host.as_deref()?;
    let mailbox = a.mailbox.as_deref()?;
    Some(if host.is_empty() {
        mailbox.to_string()
    } else {
        format!("{mailbox}@{host}")
    })
}

/// `t:Mailbox` of an address.
pub fn mailbox(name: Option<&str>, address: &str) -> Element {
    let name = name
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or(address);
    Element::new(NS_T, "Mailbox")
        .with(t("Name", name))
        .with(t("EmailAddress", address))
        .with(t("RoutingType", "SMTP"))
        .with(t("MailboxType", "OneOff"))
}

fn mailboxes(list: &[EnvelopeAddress]) -> Vec<Element> {
    list.iter()
        .filter_map(|a| Some(mailbox(a.name.as_deref(), &address(a)?)))
        .collect()
}

fn display(list: &[EnvelopeAddress]) -> String {
    list.iter()
        .filter_map(|a| {
            a.name
                .clone()
                .filter(|n| !n.trim().is_empty())
                .or_else(|| address(a))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The subject without reply and forward prefixes.
pub fn topic(subject: &str) -> String {
    let mut s = subject.trim();
    loop {
        let lower = s.to_ascii_lowercase();
        let cut = ["re:", "fw:", "fwd:", "aw:", "wg:", "sv:", "vs:"]
            .iter()
            .find(|p| lower.starts_with(*p))
            .map(|p| p.len());
        match cut {
            Some(n) => s = s[n..].trim_start(),
            None => return s.to_string(),
        }
    }
}

/// True when a leaf of the structure is an attachment: a disposition of
/// `attachment`, or a file name on a part that is not inline text.
fn has_attachment(p: &BodyPart) -> bool {
    if !p.parts.is_empty() {
        return p.parts.iter().any(has_attachment);
    }
    if p.mime_type == "multipart" {
        return false;
    }
    let disposition = p.disposition.as_ref();
    if disposition.is_some_and(|(d, _)| d.eq_ignore_ascii_case("attachment")) {
        return true;
    }
    let named = disposition.is_some_and(|(_, ps)| ps.iter().any(|(k, _)| k == "filename"))
        || p.params.iter().any(|(k, _)| k == "name");
    let inline = disposition.is_some_and(|(d, _)| d.eq_ignore_ascii_case("inline"));
    named && !(inline && (p.mime_type == "text" || p.id.is_some()))
        || p.mime_type == "message" && p.subtype == "rfc822"
}

fn keywords_as_categories(keywords: &[String]) -> Vec<String> {
    keywords
        .iter()
        .filter(|k| !k.starts_with('$') && !k.starts_with('\\'))
        .cloned()
        .collect()
}

/// The message's categories: its keywords but IMAP's own (`$Forwarded`,
/// `$Junk`...).
pub fn categories(entry: &MailEntry) -> Vec<String> {
    keywords_as_categories(&entry.keywords)
}

/// 0 low, 1 normal, 2 high, from `Importance:` or `X-Priority:`.
pub fn importance(m: &Message<'_>) -> u8 {
    if let Some(v) = m.header_raw("Importance") {
        return match v.trim().to_ascii_lowercase().as_str() {
            "low" => 0,
            "high" => 2,
            _ => 1,
        };
    }
    match m
        .header_raw("X-Priority")
        .and_then(|v| v.trim().chars().next())
    {
        Some('1' | '2') => 2,
        Some('4' | '5') => 0,
        _ => 1,
    }
}

fn body_element(local: &str, m: &Message<'_>, want: BodyType) -> Element {
    let has_html = m.html_body_count() > 0 && m.html_part(0).is_some_and(|p| p.is_text_html());
    let html = match want {
        BodyType::Html => true,
        BodyType::Text => false,
        BodyType::Best => has_html,
    };
    let text = if html {
        m.body_html(0).map(|h| h.into_owned())
    } else {
        m.body_text(0).map(|h| h.into_owned())
    };
    Element::new(NS_T, local)
        .with_attr("BodyType", if html { "HTML" } else { "Text" })
        .with_attr("IsTruncated", "false")
        .with_text(text.unwrap_or_default())
}

/// One attachment of a parsed message as `t:FileAttachment`, with its
/// content when `content`.
pub fn attachment_element(
    owner: i64,
    folder: i64,
    uid: i64,
    index: u32,
    p: &mail_parser::MessagePart<'_>,
    content: bool,
) -> Element {
    let inline = p
        .content_disposition()
        .is_some_and(|d| d.ctype().eq_ignore_ascii_case("inline"));
    let mut a = Element::new(NS_T, "FileAttachment")
        .with(
            Element::new(NS_T, "AttachmentId")
                .with_attr("Id", ids::attachment_id(owner, folder, uid, index)),
        )
        .with(t("Name", p.attachment_name().unwrap_or("attachment")))
        .with(t("ContentType", outpost_activesync::email::content_type(p)));
    if let Some(cid) = p.content_id() {
        a.push(t("ContentId", cid.trim_matches(['<', '>'])));
    }
    a.push(t("Size", p.contents().len().to_string()));
    a.push(t("IsInline", b(inline)));
    a.push(t("IsContactPhoto", "false"));
    if content {
        a.push(t("Content", STANDARD.encode(p.contents())));
    }
    a
}

/// `t:InternetMessageHeaders` of the message's top-level header.
fn headers_element(m: &Message<'_>, raw: &[u8]) -> Element {
    let mut list = Element::new(NS_T, "InternetMessageHeaders");
    for h in m.root_part().headers() {
        let Some(v) = raw.get(h.offset_start as usize..h.offset_end as usize) else {
            continue;
        };
        let value = String::from_utf8_lossy(v)
            .replace("\r\n", "")
            .replace('\n', "")
            .trim()
            .to_string();
        list.push(
            Element::new(NS_T, "InternetMessageHeader")
                .with_attr("HeaderName", h.name.as_str())
                .with_text(value),
        );
    }
    list
}

fn id_list(ids: &[String]) -> String {
    ids.iter()
        .map(|i| format!("<{}>", i.trim_matches(['<', '>'])))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The element of property `field`, or `None` when the message has no
/// such value or what it needs was not read.
pub fn property(field: &str, v: &View<'_>, body: BodyType) -> Option<Element> {
    let e = v.entry;
    let meta = v.meta;
    let env = meta.map(|m| &m.envelope);
    let parsed = v.parsed;
    let draft = e.flags & DRAFT != 0;
    Some(match field {
        "item:MimeContent" => Element::new(NS_T, "MimeContent")
            .with_attr("CharacterSet", "UTF-8")
            .with_text(STANDARD.encode(v.raw?)),
        "item:ItemId" => item_id(v.owner, v.folder, e),
        "item:ParentFolderId" => Element::new(NS_T, "ParentFolderId")
            .with_attr("Id", ids::folder_id(v.owner, v.folder))
            .with_attr("ChangeKey", ids::change_key(0)),
        "item:ItemClass" => t("ItemClass", "IPM.Note"),
        "item:Subject" => t("Subject", meta?.subject.clone()?),
        "item:Sensitivity" => t(
            "Sensitivity",
            match parsed
                .and_then(|m| m.header_raw("Sensitivity"))
                .map(|s| s.trim().to_ascii_lowercase())
            {
                Some(s) if s == "personal" => "Personal",
                Some(s) if s == "private" => "Private",
                Some(s) if s == "company-confidential" => "Confidential",
                _ => "Normal",
            },
        ),
        "item:Body" => body_element("Body", parsed?, body),
        "item:TextBody" => body_element("TextBody", parsed?, BodyType::Text),
        "item:Attachments" => {
            let m = parsed?;
            let mut list = Element::new(NS_T, "Attachments");
            for (i, p) in m.attachments().enumerate() {
                list.push(attachment_element(
                    v.owner,
                    v.folder,
                    id_uid(e, v.folder),
                    i as u32,
                    p,
                    false,
                ));
            }
            if list.children.is_empty() {
                return None;
            }
            list
        }
        "item:DateTimeReceived" => t("DateTimeReceived", utc(e.internal_date)),
        "item:Size" => t("Size", e.size.to_string()),
        "item:Categories" => {
            let cats = categories(e);
            if cats.is_empty() {
                return None;
            }
            let mut c = Element::new(NS_T, "Categories");
            for k in cats {
                c.push(t("String", k));
            }
            c
        }
        "item:Importance" => t(
            "Importance",
            match importance(parsed?) {
                0 => "Low",
                2 => "High",
                _ => "Normal",
            },
        ),
        "item:InReplyTo" => t("InReplyTo", env?.in_reply_to.clone()?),
        "item:IsSubmitted" => t("IsSubmitted", "false"),
        "item:IsDraft" => t("IsDraft", b(draft)),
        "item:IsFromMe" => {
            let from = env?.from.first().and_then(address);
            t(
                "IsFromMe",
                b(from.is_some_and(|f| v.own.iter().any(|o| o.eq_ignore_ascii_case(&f)))),
            )
        }
        "item:IsResend" => t("IsResend", "false"),
        "item:IsUnmodified" => t("IsUnmodified", b(!draft)),
        "item:InternetMessageHeaders" => headers_element(parsed?, v.raw?),
        "item:DateTimeSent" => t(
            "DateTimeSent",
            utc(meta?.sent_date.unwrap_or(e.internal_date)),
        ),
        "item:DateTimeCreated" => t("DateTimeCreated", utc(e.internal_date)),
        "item:ReminderIsSet" => t("ReminderIsSet", "false"),
        "item:ReminderMinutesBeforeStart" => t("ReminderMinutesBeforeStart", "0"),
        "item:DisplayCc" => t("DisplayCc", display(&env?.cc)),
        "item:DisplayTo" => t("DisplayTo", display(&env?.to)),
        "item:HasAttachments" => t("HasAttachments", b(has_attachment(&meta?.body))),
        "item:IsAssociated" => t("IsAssociated", "false"),
        "item:Flag" => Element::new(NS_T, "Flag").with(t(
            "FlagStatus",
            if e.flags & FLAGGED != 0 {
                "Flagged"
            } else {
                "NotFlagged"
            },
        )),
        "message:Sender" => {
            let env = env?;
            let list = if env.sender.is_empty() {
                &env.from
            } else {
                &env.sender
            };
            Element::new(NS_T, "Sender").with(mailboxes(list).into_iter().next()?)
        }
        "message:From" => {
            Element::new(NS_T, "From").with(mailboxes(&env?.from).into_iter().next()?)
        }
        "message:ToRecipients"
        | "message:CcRecipients"
        | "message:BccRecipients"
        | "message:ReplyTo" => {
            let env = env?;
            let (local, list) = match field {
                "message:ToRecipients" => ("ToRecipients", &env.to),
                "message:CcRecipients" => ("CcRecipients", &env.cc),
                "message:BccRecipients" => ("BccRecipients", &env.bcc),
                _ => ("ReplyTo", &env.reply_to),
            };
            let mut el = Element::new(NS_T, local);
            el.children = mailboxes(list);
            if el.children.is_empty() {
                return None;
            }
            el
        }
        "message:IsReadReceiptRequested" => t(
            "IsReadReceiptRequested",
            b(parsed?.header_raw("Disposition-Notification-To").is_some()),
        ),
        "message:IsDeliveryReceiptRequested" => {
            parsed?;
            t("IsDeliveryReceiptRequested", "false")
        }
        "message:ConversationTopic" => t("ConversationTopic", topic(meta?.subject.as_deref()?)),
        "message:InternetMessageId" => t(
            "InternetMessageId",
            env?.message_id
                .clone()
                .or_else(|| meta?.message_id.as_ref().map(|i| format!("<{i}>")))?,
        ),
        "message:IsRead" => t("IsRead", b(e.flags & SEEN != 0)),
        "message:IsResponseRequested" => t("IsResponseRequested", "false"),
        "message:References" => {
            let refs = &meta?.references;
            if refs.is_empty() {
                return None;
            }
            t("References", id_list(refs))
        }
        _ => return None,
    })
}

/// `t:ItemId` of a message.
pub fn item_id(owner: i64, folder: i64, e: &MailEntry) -> Element {
    Element::new(NS_T, "ItemId")
        .with_attr("Id", ids::item_id(owner, folder, id_uid(e, folder)))
        .with_attr("ChangeKey", ids::change_key(e.modseq))
}

/// `t:Message` with the properties asked for, in the schema's order.
pub fn render(props: &Props, v: &View<'_>) -> Element {
    let mut el = Element::new(NS_T, "Message");
    for (f, _) in FIELDS {
        if *f == EXTENDED {
            for uri in &props.ext {
                let value = super::props::key(uri).and_then(|k| ext_value(&k, v));
                if let Some(value) = value {
                    el.push(super::props::answer_value(uri, value));
                }
            }
        } else if props.fields.contains(f) {
            if let Some(p) = property(f, v, props.body) {
                el.push(p);
            }
        }
    }
    el
}

/// The value a restriction compares for `field` (see [`searchable`]).
pub fn value(field: &str, v: &View<'_>) -> Option<String> {
    let e = v.entry;
    let env = v.meta.map(|m| &m.envelope);
    Some(match field {
        "message:IsRead" => b(e.flags & SEEN != 0),
        "item:IsDraft" => b(e.flags & DRAFT != 0),
        "item:DateTimeReceived" | "item:DateTimeCreated" => utc(e.internal_date),
        "item:Size" => e.size.to_string(),
        "item:ItemClass" => "IPM.Note".into(),
        "item:Subject" => v.meta?.subject.clone()?,
        "message:ConversationTopic" => topic(v.meta?.subject.as_deref()?),
        "message:From" => address(env?.from.first()?)?,
        "message:Sender" => {
            let env = env?;
            address(env.sender.first().or(env.from.first())?)?
        }
        "item:HasAttachments" => b(has_attachment(&v.meta?.body)),
        "item:DateTimeSent" => utc(v.meta?.sent_date.unwrap_or(e.internal_date)),
        "message:InternetMessageId" => env?.message_id.clone()?,
        "item:DisplayTo" => display(&env?.to),
        "item:DisplayCc" => display(&env?.cc),
        f => ext_value(f.strip_prefix("ext:")?, v)?.joined(),
    })
}

/// What a sort order compares.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum SortKey {
    /// No value: first in ascending order.
    Missing,
    Num(i64),
    Text(String),
}

pub fn sort_key(field: &str, v: &View<'_>) -> SortKey {
    let e = v.entry;
    match field {
        "item:DateTimeReceived" | "item:DateTimeCreated" => SortKey::Num(e.internal_date),
        "item:DateTimeSent" => match v.meta {
            Some(m) => SortKey::Num(m.sent_date.unwrap_or(e.internal_date)),
            None => SortKey::Missing,
        },
        "item:Size" => SortKey::Num(e.size),
        "message:IsRead" => SortKey::Num(e.flags & SEEN),
        "item:IsDraft" => SortKey::Num(e.flags & DRAFT),
        "item:HasAttachments" => match v.meta {
            Some(m) => SortKey::Num(has_attachment(&m.body) as i64),
            None => SortKey::Missing,
        },
        "ext:0x0e23" => SortKey::Num(e.uid),
        "ext:0x0e08" => SortKey::Num(e.size),
        "ext:0x0e06" | "ext:0x3008" => SortKey::Num(e.internal_date),
        _ => match value(field, v) {
            Some(s) => SortKey::Text(s.to_lowercase()),
            None => SortKey::Missing,
        },
    }
}

/// A message a CreateItem (or UpdateItem of a draft) gives by its fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewMessage {
    /// `item:MimeContent`: the whole message; the fields are then not used.
    pub mime: Option<Vec<u8>>,
    pub subject: Option<String>,
    /// (HTML, text).
    pub body: Option<(bool, String)>,
    /// Address lists as header values (`"Name" <a@b>, c@d`).
    pub to: Option<String>,
    pub cc: Option<String>,
    pub bcc: Option<String>,
    pub from: Option<String>,
    pub importance: Option<u8>,
    pub read: Option<bool>,
    pub categories: Option<Vec<String>>,
    pub flagged: Option<bool>,
    pub attachments: Vec<Attachment>,
}

/// Most attachments one CreateItem adds, and the most bytes of each.
const MAX_ATTACHMENTS: usize = 50;
const MAX_ATTACHMENT_BYTES: usize = 25 << 20;

/// `Name <address>` of a `t:Mailbox`, the name quoted when it needs it.
fn mailbox_header(el: &Element) -> Result<String, &'static str> {
    let addr = el
        .child(NS_T, "EmailAddress")
        .map(|a| a.text.trim())
        .filter(|a| !a.is_empty())
        .ok_or("A recipient has no EmailAddress.")?;
    if !addr.contains('@')
        || addr
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || matches!(c, '<' | '>' | ',' | '"'))
    {
        return Err("A recipient's EmailAddress is not an SMTP address.");
    }
    let name = el
        .child(NS_T, "Name")
        .map(|n| n.text.trim())
        .filter(|n| !n.is_empty() && !n.eq_ignore_ascii_case(addr));
    Ok(match name {
        Some(n) => {
            let n: String = n.chars().filter(|c| !c.is_control()).collect();
            format!(
                "\"{}\" <{addr}>",
                n.replace('\\', "\\\\").replace('"', "\\\"")
            )
        }
        None => addr.to_string(),
    })
}

/// An address list element (`t:ToRecipients` holding `t:Mailbox`es, or
/// `t:From` holding one) as a header value.
pub fn address_list(el: &Element) -> Result<String, &'static str> {
    let list = el
        .children_named(NS_T, "Mailbox")
        .map(mailbox_header)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(list.join(", "))
}

/// The categories of a `t:Categories`.
pub fn read_categories(el: &Element) -> Vec<String> {
    el.children_named(NS_T, "String")
        .map(|s| s.text.trim().to_string())
        .filter(|s| !s.is_empty() && !s.chars().any(char::is_control))
        .collect()
}

/// Flagged or not, from `t:Flag` or the PidTagFlagStatus extended
/// property.
pub fn read_flag(el: &Element) -> Option<bool> {
    if el.is(NS_T, "Flag") {
        return Some(
            el.child(NS_T, "FlagStatus")
                .is_some_and(|s| s.text.trim() == "Flagged"),
        );
    }
    if el.is(NS_T, "ExtendedProperty") {
        return Some(el.child(NS_T, "Value")?.text.trim() == "2");
    }
    None
}

fn read_bool(el: &Element) -> Result<bool, &'static str> {
    match el.text.trim() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err("A boolean property is neither true nor false."),
    }
}

/// Applies one property element of a `t:Message` to `m`. Properties this
/// server does not keep are left for the caller (`Ok(false)`).
pub fn read_property(m: &mut NewMessage, el: &Element) -> Result<bool, &'static str> {
    if el.name.ns != NS_T {
        return Ok(false);
    }
    match el.name.local.as_str() {
        "MimeContent" => {
            let text: String = el.text.split_whitespace().collect();
            m.mime = Some(
                STANDARD
                    .decode(text)
                    .map_err(|_| "MimeContent is not base64.")?,
            );
        }
        "Subject" => m.subject = Some(el.text.clone()),
        "Body" => {
            m.body = Some((
                el.attr("BodyType")
                    .is_some_and(|t| t.eq_ignore_ascii_case("HTML")),
                el.text.clone(),
            ))
        }
        "ToRecipients" => m.to = Some(address_list(el)?),
        "CcRecipients" => m.cc = Some(address_list(el)?),
        "BccRecipients" => m.bcc = Some(address_list(el)?),
        "From" => m.from = Some(address_list(el)?).filter(|f| !f.is_empty()),
        "Importance" => {
            m.importance = Some(match el.text.trim() {
                "Low" => 0,
                "High" => 2,
                _ => 1,
            })
        }
        "IsRead" => m.read = Some(read_bool(el)?),
        "Categories" => m.categories = Some(read_categories(el)),
        "Flag" => m.flagged = read_flag(el),
        "ExtendedProperty" => {
            let key = el
                .child(NS_T, "ExtendedFieldURI")
                .and_then(super::props::key);
            let num = el
                .child(NS_T, "Value")
                .and_then(|v| v.text.trim().parse::<i64>().ok());
            match (key.as_deref(), num) {
                (Some("0x1090"), Some(n)) => m.flagged = Some(n == 2),
                // PidTagMessageFlags: MSGFLAG_READ.
                (Some("0x0e07"), Some(n)) => m.read = Some(n & 1 != 0),
                _ => return Ok(false),
            }
        }
        "Attachments" => {
            for a in el.children_named(NS_T, "FileAttachment") {
                if m.attachments.len() >= MAX_ATTACHMENTS {
                    return Err("Too many attachments.");
                }
                let text: String = a
                    .child(NS_T, "Content")
                    .map(|c| c.text.split_whitespace().collect())
                    .unwrap_or_default();
                let data = STANDARD
                    .decode(text)
                    .map_err(|_| "An attachment's Content is not base64.")?;
                if data.len() > MAX_ATTACHMENT_BYTES {
                    return Err("An attachment is too large.");
                }
                let get = |n: &str| a.child(NS_T, n).map(|c| c.text.trim().to_string());
                let inline = get("IsInline").is_some_and(|v| v == "true");
                m.attachments.push(Attachment {
                    name: get("Name").unwrap_or_else(|| "attachment".into()),
                    content_type: get("ContentType")
                        .filter(|c| c.contains('/'))
                        .unwrap_or_else(|| "application/octet-stream".into()),
                    content_id: get("ContentId").filter(|_| inline),
                    data,
                });
            }
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// Reads the `t:Message` of a CreateItem: its properties, those this
/// server does not keep left out.
pub fn read_new(el: &Element) -> Result<NewMessage, &'static str> {
    let mut m = NewMessage::default();
    for c in &el.children {
        read_property(&mut m, c)?;
    }
    Ok(m)
}

impl NewMessage {
    /// The composer's fields (`base`: a draft being changed).
    pub fn apply(&self, mut base: Draft) -> Draft {
        let set = |slot: &mut Option<String>, v: &Option<String>| {
            if let Some(v) = v {
                *slot = (!v.trim().is_empty()).then(|| v.clone());
            }
        };
        set(&mut base.to, &self.to);
        set(&mut base.cc, &self.cc);
        set(&mut base.bcc, &self.bcc);
        if let Some(s) = &self.subject {
            base.subject = Some(s.clone());
        }
        if self.importance.is_some() {
            base.importance = self.importance;
        }
        if let Some(r) = self.read {
            base.read = r;
        }
        match &self.body {
            Some((true, h)) => {
                base.html = Some(h.clone());
                base.text = None;
            }
            Some((false, t)) => {
                base.text = Some(t.clone());
                base.html = None;
            }
            None => {}
        }
        base.attachments.extend(self.attachments.iter().cloned());
        base.mime = self.mime.clone();
        base
    }
}

/// The text of an element and its descendants, trimmed: how a property
/// set to what it already is, is recognised.
pub fn flat_text(el: &Element) -> String {
    fn walk(el: &Element, out: &mut Vec<String>) {
        let t = el.text.trim();
        if !t.is_empty() {
            out.push(t.replace("\r\n", "\n"));
        }
        for c in &el.children {
            walk(c, out);
        }
    }
    let mut out = Vec::new();
    walk(el, &mut out);
    out.join("\u{1}")
}

#[cfg(test)]
mod tests {
    use super::*;

    const RAW: &[u8] = b"From: \"Bob B\" <bob@example.test>\r\nTo: alice@example.test, Carol <carol@x.test>\r\nCc: dave@example.test\r\nSubject: Re: Plans\r\nDate: Thu, 03 Dec 2026 10:00:00 +0000\r\nMessage-ID: <m1@example.test>\r\nReferences: <m0@example.test>\r\nImportance: high\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Hello <b>there</b></p>\r\n--b\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\nContent-Disposition: attachment; filename=\"a.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0=\r\n--b--\r\n";

    fn entry() -> MailEntry {
        MailEntry {
            uid: 9,
            modseq: 33,
            internal_date: 1_796_292_000,
            size: RAW.len() as i64,
            flags: SEEN | FLAGGED,
            keywords: vec!["$Forwarded".into(), "Red Category".into()],
        }
    }

    fn shape(xml: &str) -> Element {
        outpost_xml::parse(
            format!(r#"<m:ItemShape xmlns:m="m" xmlns:t="{NS_T}">{xml}</m:ItemShape>"#).as_bytes(),
            &Default::default(),
        )
        .unwrap()
    }

    #[test]
    fn shapes_select_properties_and_levels() {
        let id = Props::read(Some(&shape("<t:BaseShape>IdOnly</t:BaseShape>")), true);
        assert_eq!(id.fields.len(), 1);
        assert_eq!(id.level(), Level::Entry);
        let d = Props::read(Some(&shape("<t:BaseShape>Default</t:BaseShape>")), true);
        assert_eq!(d.level(), Level::Meta);
        let all = Props::read(
            Some(&shape("<t:BaseShape>AllProperties</t:BaseShape>")),
            true,
        );
        assert!(all.level() <= Level::Meta && !all.fields.contains("item:MimeContent"));
        let get = Props::read(
            Some(&shape(
                r#"<t:BaseShape>IdOnly</t:BaseShape><t:IncludeMimeContent>true</t:IncludeMimeContent><t:BodyType>Text</t:BodyType><t:AdditionalProperties><t:FieldURI FieldURI="message:IsRead"/><t:FieldURI FieldURI="item:NoSuchThing"/><t:ExtendedFieldURI PropertyTag="0x1090" PropertyType="Integer"/></t:AdditionalProperties>"#,
            )),
            false,
        );
        assert_eq!(get.body, BodyType::Text);
        assert_eq!(
            get.fields.iter().copied().collect::<Vec<_>>(),
            ["item:ItemId", "item:MimeContent", "message:IsRead"]
        );
        assert_eq!(get.ext.len(), 1);
        assert_eq!(get.level(), Level::Raw);
    }

    #[test]
    fn renders_in_schema_order() {
        let meta = MessageMeta::parse(RAW);
        let parsed = mail_parser::MessageParser::default().parse(RAW).unwrap();
        let e = entry();
        let own = vec!["alice@example.test".to_string()];
        let v = View {
            owner: 7,
            folder: 3,
            entry: &e,
            meta: Some(&meta),
            raw: Some(RAW),
            parsed: Some(&parsed),
            own: &own,
        };
        let mut props = Props::read(
            Some(&shape(
                r#"<t:BaseShape>AllProperties</t:BaseShape><t:AdditionalProperties><t:ExtendedFieldURI PropertyTag="0x1090" PropertyType="Integer"/><t:ExtendedFieldURI PropertyTag="0x0e23" PropertyType="Integer"/><t:ExtendedFieldURI PropertyTag="0x0E07" PropertyType="Integer"/><t:ExtendedFieldURI DistinguishedPropertySetId="PublicStrings" PropertyName="Keywords" PropertyType="StringArray"/><t:ExtendedFieldURI PropertyTag="0x9999" PropertyType="Integer"/></t:AdditionalProperties>"#,
            )),
            false,
        );
        props.fields.insert("item:MimeContent");
        let el = render(&props, &v);
        let names: Vec<&str> = el.children.iter().map(|c| c.name.local.as_str()).collect();
        let pos = |n: &str| {
            names
                .iter()
                .position(|x| *x == n)
                .unwrap_or_else(|| panic!("{n} in {names:?}"))
        };
        assert!(pos("MimeContent") < pos("ItemId") && pos("ItemId") < pos("Subject"));
        assert!(pos("Body") < pos("Attachments") && pos("DateTimeReceived") < pos("Size"));
        assert!(
            pos("HasAttachments") < pos("ExtendedProperty")
                && pos("ExtendedProperty") < pos("Flag")
        );
        assert!(pos("Sender") < pos("ToRecipients") && pos("From") < pos("IsRead"));
        let get = |n: &str| el.children.iter().find(|c| c.name.local == n).unwrap();
        let ext: Vec<(String, String)> = el
            .children_named(NS_T, "ExtendedProperty")
            .map(|p| {
                (
                    p.child(NS_T, "ExtendedFieldURI")
                        .and_then(|u| u.attr("PropertyTag").or(u.attr("PropertyName")))
                        .unwrap()
                        .to_string(),
                    flat_text(p),
                )
            })
            .collect();
        assert_eq!(
            ext,
            [
                ("0x1090".to_string(), "2".to_string()),
                ("0x0e23".into(), "9".into()),
                ("0x0E07".into(), (0x1 | 0x2 | 0x10).to_string()),
                ("Keywords".into(), "Red Category".into()),
            ]
        );
        assert_eq!(get("Subject").text, "Re: Plans");
        assert_eq!(get("ConversationTopic").text, "Plans");
        assert_eq!(get("Importance").text, "High");
        assert_eq!(get("IsRead").text, "true");
        assert_eq!(get("HasAttachments").text, "true");
        assert_eq!(get("DisplayTo").text, "alice@example.test; Carol");
        assert_eq!(get("InternetMessageId").text, "<m1@example.test>");
        assert_eq!(get("References").text, "<m0@example.test>");
        assert_eq!(get("Categories").children.len(), 1);
        assert_eq!(get("Body").attr("BodyType"), Some("HTML"));
        assert!(get("Body").text.contains("<b>there</b>"));
        let from = get("From").child(NS_T, "Mailbox").unwrap();
        assert_eq!(from.child(NS_T, "Name").unwrap().text, "Bob B");
        assert_eq!(
            from.child(NS_T, "EmailAddress").unwrap().text,
            "bob@example.test"
        );
        let att = get("Attachments").child(NS_T, "FileAttachment").unwrap();
        assert_eq!(att.child(NS_T, "Name").unwrap().text, "a.pdf");
        assert_eq!(att.child(NS_T, "Size").unwrap().text, "5");
        let id = att.child(NS_T, "AttachmentId").unwrap().attr("Id").unwrap();
        assert_eq!(ids::decode_attachment(id), Some((7, 3, 9, 0)));
        assert_eq!(
            STANDARD.decode(&get("MimeContent").text).unwrap(),
            RAW.to_vec()
        );
        let headers = get("InternetMessageHeaders");
        assert!(headers
            .children
            .iter()
            .any(|h| h.attr("HeaderName") == Some("Subject") && h.text == "Re: Plans"));
        assert_eq!(
            value("message:From", &v).as_deref(),
            Some("bob@example.test")
        );
        assert_eq!(
            sort_key("item:Subject", &v),
            SortKey::Text("re: plans".into())
        );
        // Without the metadata: only what the row has.
        let bare = View {
            meta: None,
            raw: None,
            parsed: None,
            ..v
        };
        let el = render(&props, &bare);
        assert!(el.child(NS_T, "Subject").is_none() && el.child(NS_T, "IsRead").is_some());
    }

    #[test]
    fn a_refiled_draft_keeps_its_id() {
        let mut e = entry();
        assert_eq!(id_uid(&e, 3), 9);
        e.keywords.push(alias_keyword(3, 4));
        assert_eq!(id_uid(&e, 3), 4);
        // Moved elsewhere: its own UID there.
        assert_eq!(id_uid(&e, 5), 9);
        assert!(!categories(&e).iter().any(|c| c.starts_with('$')));
    }

    #[test]
    fn reads_a_new_message() {
        let el = outpost_xml::parse(
            format!(
                r#"<t:Message xmlns:t="{NS_T}"><t:Subject>Hi</t:Subject><t:Body BodyType="HTML">&lt;p&gt;x&lt;/p&gt;</t:Body><t:Sensitivity>Normal</t:Sensitivity><t:ToRecipients><t:Mailbox><t:Name>Bob "B"</t:Name><t:EmailAddress>bob@example.test</t:EmailAddress></t:Mailbox><t:Mailbox><t:EmailAddress>c@x.test</t:EmailAddress></t:Mailbox></t:ToRecipients><t:IsRead>false</t:IsRead><t:Categories><t:String>Work</t:String></t:Categories></t:Message>"#
            )
            .as_bytes(),
            &Default::default(),
        )
        .unwrap();
        let m = read_new(&el).unwrap();
        assert_eq!(
            m.to.as_deref(),
            Some(r#""Bob \"B\"" <bob@example.test>, c@x.test"#)
        );
        assert_eq!(m.body, Some((true, "<p>x</p>".into())));
        assert_eq!(m.read, Some(false));
        assert_eq!(m.categories, Some(vec!["Work".to_string()]));
        let d = m.apply(Draft::default());
        assert_eq!(d.html.as_deref(), Some("<p>x</p>"));
        assert_eq!(d.subject.as_deref(), Some("Hi"));
        let bad = outpost_xml::parse(
            format!(r#"<t:Message xmlns:t="{NS_T}"><t:ToRecipients><t:Mailbox><t:EmailAddress>a b@c</t:EmailAddress></t:Mailbox></t:ToRecipients></t:Message>"#).as_bytes(),
            &Default::default(),
        )
        .unwrap();
        assert!(read_new(&bad).is_err());
        assert_eq!(topic("RE: Fwd: x"), "x");
    }
}
