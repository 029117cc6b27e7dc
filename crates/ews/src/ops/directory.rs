//! The directory over EWS: ResolveNames (the GAL, as ActiveSync's
//! ResolveRecipients searches it, and the user's own contacts), ExpandDL
//! (a distribution group's members) and GetMailTips (recipients'
//! out-of-office, from each user's one out-of-office; groups' sizes;
//! outside and unknown recipients). Addresses are SMTP addresses: there
//! are no X.400/X.500 ones here.

use outpost_activesync::search::GalHit;
use outpost_activesync::settings::Oof;
use outpost_xml::Element;

use super::{child_tm, invalid, text_of, OpResult};
use crate::ids;
use crate::soap::{error, response, success, NS_M, NS_T};
use crate::{Ctx, Member, Recipient};

/// Candidates one ResolveNames entry returns at most (Exchange's limit).
pub const MAX_CANDIDATES: usize = 100;

/// `smtp:bob@example.test` and `SMTP:bob@...` are the address.
fn strip_smtp(v: &str) -> &str {
    let v = v.trim();
    match v.get(..5) {
        Some(p) if p.eq_ignore_ascii_case("smtp:") => v[5..].trim(),
        _ => v,
    }
}

fn mailbox(name: &str, email: &str, kind: &str) -> Element {
    Element::new(NS_T, "Mailbox")
        .with(Element::new(NS_T, "Name").with_text(name))
        .with(Element::new(NS_T, "EmailAddress").with_text(email))
        .with(Element::new(NS_T, "RoutingType").with_text("SMTP"))
        .with(Element::new(NS_T, "MailboxType").with_text(kind))
}

fn opt(el: &mut Element, local: &str, v: Option<&str>) {
    if let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) {
        el.push(Element::new(NS_T, local).with_text(v));
    }
}

fn email_entries(emails: &[String]) -> Option<Element> {
    if emails.is_empty() {
        return None;
    }
    let mut list = Element::new(NS_T, "EmailAddresses");
    for (i, e) in emails.iter().take(3).enumerate() {
        list.push(
            Element::new(NS_T, "Entry")
                .with_attr("Key", format!("EmailAddress{}", i + 1))
                .with_text(format!("SMTP:{e}")),
        );
    }
    Some(list)
}

/// The `t:Contact` of a GAL entry (schema order of ContactItemType).
fn gal_contact(h: &GalHit) -> Element {
    let mut c = Element::new(NS_T, "Contact");
    opt(&mut c, "DisplayName", Some(&h.display_name));
    opt(&mut c, "GivenName", h.first_name.as_deref());
    opt(&mut c, "CompanyName", h.company.as_deref());
    if let Some(e) = email_entries(std::slice::from_ref(&h.email)) {
        c.push(e);
    }
    let mut phones = Element::new(NS_T, "PhoneNumbers");
    for (key, v) in [("BusinessPhone", &h.phone), ("MobilePhone", &h.mobile)] {
        if let Some(v) = v.as_deref().filter(|v| !v.trim().is_empty()) {
            phones.push(
                Element::new(NS_T, "Entry")
                    .with_attr("Key", key)
                    .with_text(v.trim()),
            );
        }
    }
    if !phones.children.is_empty() {
        c.push(phones);
    }
    c.push(Element::new(NS_T, "ContactSource").with_text("ActiveDirectory"));
    opt(&mut c, "JobTitle", h.title.as_deref());
    opt(&mut c, "OfficeLocation", h.office.as_deref());
    opt(&mut c, "Surname", h.last_name.as_deref());
    c
}

/// One candidate of a ResolveNames entry.
struct Candidate {
    mailbox: Element,
    contact: Element,
    email: String,
}

async fn gal_candidates(ctx: &Ctx<'_>, query: &str) -> Result<Vec<Candidate>, super::OpError> {
    let principal = ctx.user.principal_id;
    let hits = ctx
        .backend
        .search_gal(principal, query, MAX_CANDIDATES + 1)
        .await?;
    let groups = ctx
        .backend
        .gal_groups(principal, query, MAX_CANDIDATES + 1)
        .await?;
    let mut out = Vec::new();
    for h in hits {
        let kind = if groups.iter().any(|g| g.eq_ignore_ascii_case(&h.email)) {
            "PublicDL"
        } else {
            "Mailbox"
        };
        out.push(Candidate {
            mailbox: mailbox(&h.display_name, &h.email, kind),
            contact: gal_contact(&h),
            email: h.email.clone(),
        });
    }
    Ok(out)
}

async fn contact_candidates(ctx: &Ctx<'_>, query: &str) -> Result<Vec<Candidate>, super::OpError> {
    let principal = ctx.user.principal_id;
    let found = ctx
        .backend
        .search_contacts(principal, query, MAX_CANDIDATES + 1)
        .await?;
    let mut out = Vec::new();
    let limits = outpost_pim::Limits::default();
    for (book, item) in found {
        let Some(obj) = ctx.backend.pim_data(principal, book, item).await? else {
            continue;
        };
        let Ok(card) = outpost_pim::parse_vcard(obj.data.as_bytes(), &limits) else {
            continue;
        };
        let idx = &card.index;
        let name = idx.display_name();
        let id = ids::item_id(principal, book, item);
        // A contact resolves to each of its addresses that matches, or to
        // its first when the name matched.
        let q = query.to_lowercase();
        let mut emails: Vec<&String> = idx
            .emails
            .iter()
            .filter(|e| e.to_lowercase().contains(&q))
            .collect();
        if emails.is_empty() {
            emails.extend(idx.emails.first());
        }
        for email in emails {
            let mut c = Element::new(NS_T, "Contact");
            opt(&mut c, "DisplayName", Some(&name));
            opt(
                &mut c,
                "GivenName",
                idx.name.as_ref().map(|n| n.given.as_str()),
            );
            opt(&mut c, "CompanyName", idx.organization.as_deref());
            if let Some(e) = email_entries(&idx.emails) {
                c.push(e);
            }
            c.push(Element::new(NS_T, "ContactSource").with_text("Store"));
            opt(
                &mut c,
                "Surname",
                idx.name.as_ref().map(|n| n.family.as_str()),
            );
            out.push(Candidate {
                mailbox: mailbox(&name, email, "Contact")
                    .with(Element::new(NS_T, "ItemId").with_attr("Id", id.clone())),
                contact: c,
                email: email.clone(),
            });
        }
    }
    Ok(out)
}

pub async fn resolve_names(ctx: &Ctx<'_>, op: &Element) -> OpResult {
    let full = matches!(op.attr("ReturnFullContactData"), Some("true" | "1"));
    let scope = op.attr("SearchScope").unwrap_or("ActiveDirectoryContacts");
    let (gal, contacts, contacts_first) = match scope {
        "ActiveDirectory" => (true, false, false),
        "ActiveDirectoryContacts" => (true, true, false),
        "Contacts" => (false, true, true),
        "ContactsActiveDirectory" => (true, true, true),
        _ => return Err(invalid("SearchScope is not one EWS knows.")),
    };
    let entries: Vec<&Element> = op
        .children
        .iter()
        .filter(|c| c.name.local == "UnresolvedEntry")
        .collect();
    if entries.is_empty() {
        return Err(invalid("ResolveNames needs an UnresolvedEntry."));
    }
    if entries.len() > ctx.limits.max_ids {
        return Err(invalid("Too many entries in one ResolveNames."));
    }
    let mut messages = Vec::new();
    for entry in entries {
        let query = strip_smtp(&entry.text);
        if query.is_empty() || query.len() > 256 {
            messages.push(error(
                "ResolveNames",
                "ErrorNameResolutionNoResults",
                "No results were found.",
            ));
            continue;
        }
        let mut found = Vec::new();
        let from_gal = if gal {
            gal_candidates(ctx, query).await?
        } else {
            Vec::new()
        };
        let mut from_contacts = if contacts {
            contact_candidates(ctx, query).await?
        } else {
            Vec::new()
        };
        // A contact with a directory entry's address is that entry.
        from_contacts.retain(|c| {
            !from_gal
                .iter()
                .any(|g| g.email.eq_ignore_ascii_case(&c.email))
        });
        if contacts_first {
            found.extend(from_contacts);
            found.extend(from_gal);
        } else {
            found.extend(from_gal);
            found.extend(from_contacts);
        }
        // An address typed in full is that one.
        if let Some(i) = found
            .iter()
            .position(|c| c.email.eq_ignore_ascii_case(query))
        {
            let one = found.swap_remove(i);
            found = vec![one];
        }
        if found.is_empty() {
            messages.push(error(
                "ResolveNames",
                "ErrorNameResolutionNoResults",
                "No results were found.",
            ));
            continue;
        }
        let last = found.len() <= MAX_CANDIDATES;
        found.truncate(MAX_CANDIDATES);
        let mut set = Element::new(NS_M, "ResolutionSet")
            .with_attr("TotalItemsInView", found.len().to_string())
            .with_attr(
                "IncludesLastItemInRange",
                if last { "true" } else { "false" },
            );
        let many = found.len() > 1;
        for c in found {
            let mut r = Element::new(NS_T, "Resolution").with(c.mailbox);
            if full {
                r.push(c.contact);
            }
            set.push(r);
        }
        let mut m = if many {
            Element::new(NS_M, "ResolveNamesResponseMessage")
                .with_attr("ResponseClass", "Warning")
                .with(Element::new(NS_M, "MessageText").with_text("Multiple results were found."))
                .with(
                    Element::new(NS_M, "ResponseCode")
                        .with_text("ErrorNameResolutionMultipleResults"),
                )
                .with(Element::new(NS_M, "DescriptiveLinkKey").with_text("0"))
        } else {
            success("ResolveNames")
        };
        m.push(set);
        messages.push(m);
    }
    Ok(response("ResolveNames", messages))
}

fn member_mailbox(m: &Member) -> Element {
    let kind = if m.external {
        "OneOff"
    } else if m.group {
        "PublicDL"
    } else {
        "Mailbox"
    };
    mailbox(
        if m.name.is_empty() { &m.email } else { &m.name },
        &m.email,
        kind,
    )
}

pub async fn expand_dl(ctx: &Ctx<'_>, op: &Element) -> OpResult {
    let address = child_tm(op, "Mailbox")
        .and_then(|m| text_of(m, "EmailAddress"))
        .map(strip_smtp)
        .filter(|a| !a.is_empty())
        .ok_or_else(|| invalid("ExpandDL needs a Mailbox with an EmailAddress."))?;
    let message = match ctx
        .backend
        .recipient(ctx.user.principal_id, address)
        .await?
    {
        Recipient::Group { members, .. } => {
            let mut set = Element::new(NS_M, "DLExpansion")
                .with_attr("TotalItemsInView", members.len().to_string())
                .with_attr("IncludesLastItemInRange", "true");
            for m in &members {
                set.push(member_mailbox(m));
            }
            success("ExpandDL").with(set)
        }
        _ => error(
            "ExpandDL",
            "ErrorNameResolutionNoResults",
            "No distribution group has this address.",
        ),
    };
    Ok(response("ExpandDL", vec![message]))
}

/// Whether an out-of-office answers now.
pub fn oof_active(oof: &Oof, now: i64) -> bool {
    match oof.state {
        1 => true,
        2 => oof.start.is_none_or(|s| s <= now) && oof.end.is_none_or(|e| now < e),
        _ => false,
    }
}

fn wants(list: &[&str], tip: &str) -> bool {
    list.iter().any(|t| *t == "All" || *t == tip)
}

fn tip_bool(local: &str, v: bool) -> Element {
    Element::new(NS_T, local).with_text(if v { "true" } else { "false" })
}

fn mail_tips(address: &str, r: &Recipient, asked: &[&str], now: i64) -> Element {
    let name = match r {
        Recipient::User { name, .. } | Recipient::Group { name, .. } => name.as_str(),
        _ => "",
    };
    let mut tips = Element::new(NS_M, "MailTips").with(
        Element::new(NS_T, "RecipientAddress")
            .with(Element::new(NS_T, "Name").with_text(name))
            .with(Element::new(NS_T, "EmailAddress").with_text(address))
            .with(Element::new(NS_T, "RoutingType").with_text("SMTP")),
    );
    if wants(asked, "OutOfOfficeMessage") {
        let mut o = Element::new(NS_T, "OutOfOffice");
        let mut body = Element::new(NS_T, "ReplyBody");
        match r {
            Recipient::User { oof, .. } if oof_active(oof, now) => {
                body.push(Element::new(NS_T, "Message").with_text(oof.internal.clone()));
                o.push(body);
                if let (2, Some(s), Some(e)) = (oof.state, oof.start, oof.end) {
                    o.push(
                        Element::new(NS_T, "Duration")
                            .with(Element::new(NS_T, "StartTime").with_text(super::oof::utc(s)))
                            .with(Element::new(NS_T, "EndTime").with_text(super::oof::utc(e))),
                    );
                }
            }
            _ => {
                body.push(Element::new(NS_T, "Message"));
                o.push(body);
            }
        }
        tips.push(o);
    }
    let (total, external) = match r {
        Recipient::Group { members, .. } => {
            (members.len(), members.iter().filter(|m| m.external).count())
        }
        Recipient::External => (1, 1),
        Recipient::User { .. } => (1, 0),
        Recipient::Unknown => (0, 0),
    };
    if wants(asked, "TotalMemberCount") {
        tips.push(Element::new(NS_T, "TotalMemberCount").with_text(total.to_string()));
    }
    if wants(asked, "ExternalMemberCount") {
        tips.push(Element::new(NS_T, "ExternalMemberCount").with_text(external.to_string()));
    }
    if wants(asked, "DeliveryRestriction") {
        tips.push(tip_bool("DeliveryRestricted", false));
    }
    if wants(asked, "ModerationStatus") {
        tips.push(tip_bool("IsModerated", false));
    }
    if wants(asked, "InvalidRecipient") {
        tips.push(tip_bool(
            "InvalidRecipient",
            matches!(r, Recipient::Unknown),
        ));
    }
    tips
}

pub async fn get_mail_tips(ctx: &Ctx<'_>, op: &Element) -> OpResult {
    let recipients =
        child_tm(op, "Recipients").ok_or_else(|| invalid("GetMailTips needs Recipients."))?;
    if recipients.children.len() > 100 {
        return Err(invalid("At most 100 recipients in one GetMailTips."));
    }
    let asked_text = child_tm(op, "MailTipsRequested")
        .map(|e| e.text.clone())
        .unwrap_or_else(|| "All".to_string());
    let asked: Vec<&str> = asked_text.split_whitespace().collect();
    let now = chrono::Utc::now().timestamp();
    let mut list = Element::new(NS_M, "ResponseMessages");
    for r in &recipients.children {
        let address = text_of(r, "EmailAddress").map(strip_smtp).unwrap_or("");
        let message = if address.is_empty() {
            error(
                "MailTips",
                "ErrorInvalidRecipients",
                "The recipient has no EmailAddress.",
            )
        } else {
            let who = ctx
                .backend
                .recipient(ctx.user.principal_id, address)
                .await?;
            Element::new(NS_M, "MailTipsResponseMessageType")
                .with_attr("ResponseClass", "Success")
                .with(Element::new(NS_M, "ResponseCode").with_text("NoError"))
                .with(mail_tips(address, &who, &asked, now))
        };
        list.push(message);
    }
    Ok(Element::new(NS_M, "GetMailTipsResponse")
        .with_attr("ResponseClass", "Success")
        .with(Element::new(NS_M, "ResponseCode").with_text("NoError"))
        .with(list))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_out_of_office() {
        assert_eq!(strip_smtp(" SMTP:bob@example.test"), "bob@example.test");
        assert_eq!(strip_smtp("bob"), "bob");
        let mut oof = Oof {
            state: 2,
            start: Some(100),
            end: Some(200),
            internal: "Away".into(),
            ..Oof::default()
        };
        assert!(oof_active(&oof, 150));
        assert!(!oof_active(&oof, 200));
        oof.state = 0;
        assert!(!oof_active(&oof, 150));
        let user = Recipient::User {
            name: "Bob".into(),
            email: "bob@example.test".into(),
            oof: Oof {
                state: 1,
                internal: "Away".into(),
                ..Oof::default()
            },
        };
        let xml = outpost_xml::write(
            &mail_tips("bob@example.test", &user, &["All"], 0),
            &[(NS_M, "m"), (NS_T, "t")],
        );
        assert!(xml.contains("<t:Message>Away</t:Message>"), "{xml}");
        assert!(xml.contains("<t:InvalidRecipient>false</t:InvalidRecipient>"));
        let xml = outpost_xml::write(
            &mail_tips(
                "x@example.test",
                &Recipient::Unknown,
                &["InvalidRecipient"],
                0,
            ),
            &[(NS_M, "m"), (NS_T, "t")],
        );
        assert!(xml.contains("<t:InvalidRecipient>true</t:InvalidRecipient>"));
        assert!(!xml.contains("OutOfOffice"));
    }
}
