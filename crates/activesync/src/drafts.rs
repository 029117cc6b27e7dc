//! Drafts (16.x): the device adds and changes mail in the Drafts folder by
//! its fields (MS-ASEMAIL: To, Cc, Bcc, Subject, Importance, Body,
//! Attachments Add/Delete) and sends one with `Email2:Send`. The server
//! writes the message (the backend builds the MIME) and files it with
//! \Draft; a change files the new version and removes the old one (the
//! device then gets Delete of the old ServerId and Add of the new).

use mail_parser::{MessageParser, MimeHeaders};
use outpost_wbxml::Element;

use crate::folders::child_text;

/// A draft's fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Draft {
    pub to: Option<String>,
    pub cc: Option<String>,
    pub bcc: Option<String>,
    pub subject: Option<String>,
    pub importance: Option<u8>,
    pub text: Option<String>,
    pub html: Option<String>,
    pub attachments: Vec<Attachment>,
    /// The whole message, when the device wrote it as MIME (Body Type 4:
    /// pyactivesync and, its docs say, Exchange take drafts so); the
    /// fields above are then not used.
    pub mime: Option<Vec<u8>>,
    /// \Seen (the device's Read; drafts are read unless it says not).
    pub read: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attachment {
    pub name: String,
    pub content_type: String,
    pub content_id: Option<String>,
    pub data: Vec<u8>,
}

/// What the device's ApplicationData says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Edit {
    pub to: Option<String>,
    pub cc: Option<String>,
    pub bcc: Option<String>,
    pub subject: Option<String>,
    pub importance: Option<u8>,
    /// (type 1 text / 2 HTML, data).
    pub body: Option<(u8, String)>,
    /// Attachments added: (ClientId, attachment).
    pub add: Vec<(String, Attachment)>,
    /// Attachment indexes removed (FileReference `folder:uid:index`).
    pub delete: Vec<usize>,
    pub send: bool,
    pub read: Option<bool>,
}

impl Edit {
    /// True when the data edits the message, not just its flags.
    pub fn edits_message(&self) -> bool {
        self.to.is_some()
            || self.cc.is_some()
            || self.bcc.is_some()
            || self.subject.is_some()
            || self.importance.is_some()
            || self.body.is_some()
            || !self.add.is_empty()
            || !self.delete.is_empty()
            || self.send
    }
}

/// Most attachments one edit adds, and the most bytes of each.
pub const MAX_ATTACHMENTS: usize = 50;
pub const MAX_ATTACHMENT_BYTES: usize = 25 << 20;

/// Reads the ApplicationData of an Add or Change; `None` when it is not
/// well formed (status 6).
pub fn parse(app: &Element) -> Option<Edit> {
    let t = |page: &str, name: &str| child_text(app, page, name);
    let mut e = Edit {
        to: t("Email", "To"),
        cc: t("Email", "Cc"),
        bcc: t("Email2", "Bcc"),
        subject: t("Email", "Subject"),
        importance: match t("Email", "Importance") {
            Some(v) => Some(v.trim().parse().ok().filter(|i: &u8| *i <= 2)?),
            None => None,
        },
        send: app.child("Email2", "Send").is_some(),
        read: t("Email", "Read").map(|v| v.trim() == "1"),
        ..Edit::default()
    };
    if let Some(b) = app.child("AirSyncBase", "Body") {
        let ty: u8 = child_text(b, "AirSyncBase", "Type")?.trim().parse().ok()?;
        if !matches!(ty, 1 | 2 | 4) {
            return None;
        }
        e.body = Some((ty, child_text(b, "AirSyncBase", "Data").unwrap_or_default()));
    }
    if let Some(atts) = app.child("AirSyncBase", "Attachments") {
        for a in atts.elements() {
            if a.is("AirSyncBase", "Add") {
                if e.add.len() >= MAX_ATTACHMENTS {
                    return None;
                }
                // Opaque in WBXML (MS-ASWBXML lists Content as binary).
                let data = a.child("AirSyncBase", "Content")?.bytes();
                if data.len() > MAX_ATTACHMENT_BYTES {
                    return None;
                }
                let inline = child_text(a, "AirSyncBase", "IsInline").as_deref() == Some("1");
                e.add.push((
                    child_text(a, "AirSyncBase", "ClientId")?,
                    Attachment {
                        name: child_text(a, "AirSyncBase", "DisplayName")
                            .unwrap_or_else(|| "attachment".into()),
                        content_type: child_text(a, "AirSyncBase", "ContentType")
                            .unwrap_or_else(|| "application/octet-stream".into()),
                        content_id: child_text(a, "AirSyncBase", "ContentId").filter(|_| inline),
                        data,
                    },
                ));
            } else if a.is("AirSyncBase", "Delete") {
                let r = child_text(a, "AirSyncBase", "FileReference")?;
                let idx = r.rsplit(':').next()?.parse().ok()?;
                e.delete.push(idx);
            }
        }
    }
    Some(e)
}

/// The draft a stored message is (for a Change: what the device does not
/// change stays).
pub fn from_message(raw: &[u8]) -> Draft {
    let Some(m) = MessageParser::default().parse(raw) else {
        return Draft {
            read: true,
            ..Draft::default()
        };
    };
    let list = |name: &str| {
        m.header_raw(name)
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|v| !v.is_empty())
    };
    let html = (m.html_body_count() > 0 && m.html_part(0).is_some_and(|p| p.is_text_html()))
        .then(|| m.body_html(0).map(|h| h.into_owned()))
        .flatten();
    Draft {
        to: list("To"),
        cc: list("Cc"),
        bcc: list("Bcc"),
        subject: m.subject().map(str::to_string),
        importance: m.header_raw("Importance").map(|v| {
            match v.trim().to_ascii_lowercase().as_str() {
                "low" => 0,
                "high" => 2,
                _ => 1,
            }
        }),
        text: m.body_text(0).map(|t| t.into_owned()),
        html,
        attachments: m
            .attachments()
            .map(|p| Attachment {
                name: p.attachment_name().unwrap_or("attachment").to_string(),
                content_type: crate::email::content_type(p),
                content_id: p
                    .content_id()
                    .filter(|_| {
                        p.content_disposition()
                            .is_some_and(|d| d.ctype().eq_ignore_ascii_case("inline"))
                    })
                    .map(|c| c.trim_matches(['<', '>']).to_string()),
                data: p.contents().to_vec(),
            })
            .collect(),
        mime: None,
        read: true,
    }
}

/// `base` with the edit applied.
pub fn apply(mut base: Draft, e: &Edit) -> Draft {
    let set = |slot: &mut Option<String>, v: &Option<String>| {
        if let Some(v) = v {
            *slot = (!v.trim().is_empty()).then(|| v.clone());
        }
    };
    set(&mut base.to, &e.to);
    set(&mut base.cc, &e.cc);
    set(&mut base.bcc, &e.bcc);
    if let Some(s) = &e.subject {
        base.subject = Some(s.clone());
    }
    if e.importance.is_some() {
        base.importance = e.importance;
    }
    if let Some(r) = e.read {
        base.read = r;
    }
    match &e.body {
        Some((4, mime)) => base.mime = Some(mime.as_bytes().to_vec()),
        Some((2, h)) => {
            base.html = Some(h.clone());
            base.text = None;
        }
        Some((_, t)) => {
            base.text = Some(t.clone());
            base.html = None;
        }
        None => {}
    }
    let mut i = 0;
    base.attachments.retain(|_| {
        let keep = !e.delete.contains(&i);
        i += 1;
        keep
    });
    base.attachments
        .extend(e.add.iter().map(|(_, a)| a.clone()));
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(page: &str, name: &str, v: &str) -> Element {
        Element::named(page, name).with_text(v)
    }

    #[test]
    fn an_edit_is_read_and_applied() {
        let app = Element::named("AirSync", "ApplicationData")
            .with(el("Email", "To", "bob@example.test"))
            .with(el("Email", "Subject", "Plans"))
            .with(el("Email", "Importance", "2"))
            .with(
                Element::named("AirSyncBase", "Body")
                    .with(el("AirSyncBase", "Type", "1"))
                    .with(el("AirSyncBase", "Data", "Draft text")),
            )
            .with(
                Element::named("AirSyncBase", "Attachments").with(
                    Element::named("AirSyncBase", "Add")
                        .with(el("AirSyncBase", "ClientId", "a1"))
                        .with(el("AirSyncBase", "DisplayName", "n.txt"))
                        .with(
                            Element::named("AirSyncBase", "Content").with_opaque(b"note".to_vec()),
                        ),
                ),
            );
        let e = parse(&app).unwrap();
        assert!(e.edits_message() && !e.send);
        let d = apply(Draft::default(), &e);
        assert_eq!(d.subject.as_deref(), Some("Plans"));
        assert_eq!(d.importance, Some(2));
        assert_eq!(d.attachments[0].data, b"note");
        // A later Change: only the subject, and the attachment removed.
        let change = Element::named("AirSync", "ApplicationData")
            .with(el("Email", "Subject", "Plans v2"))
            .with(Element::named("Email2", "Send"))
            .with(Element::named("AirSyncBase", "Attachments").with(
                Element::named("AirSyncBase", "Delete").with(el(
                    "AirSyncBase",
                    "FileReference",
                    "3:9:0",
                )),
            ));
        let e2 = parse(&change).unwrap();
        assert!(e2.send);
        let d2 = apply(d, &e2);
        assert_eq!(d2.subject.as_deref(), Some("Plans v2"));
        assert_eq!(d2.text.as_deref(), Some("Draft text"));
        assert!(d2.attachments.is_empty());
        // Flags only: not an edit.
        let flags = Element::named("AirSync", "ApplicationData").with(el("Email", "Read", "1"));
        assert!(!parse(&flags).unwrap().edits_message());
        // Bad values.
        let bad = Element::named("AirSync", "ApplicationData").with(el("Email", "Importance", "9"));
        assert!(parse(&bad).is_none());
    }

    #[test]
    fn a_stored_message_reads_back() {
        let raw = b"From: a@b.c\r\nTo: bob@example.test\r\nSubject: s\r\nImportance: high\r\n\r\nbody\r\n";
        let d = from_message(raw);
        assert_eq!(d.to.as_deref(), Some("bob@example.test"));
        assert_eq!(d.importance, Some(2));
        assert!(d.text.unwrap().starts_with("body"));
    }
}
