//! GetUserOofSettings and SetUserOofSettings (MS-OXWSOOF): the one
//! out-of-office of the account, the same that Sieve vacation, ActiveSync
//! Settings and `outpost oof` read and write (through the backend's
//! `out_of_office`/`set_out_of_office`).
//!
//! Replies sent as HTML (Outlook writes them so) are kept as their text:
//! the vacation reply the server sends is plain text.

use outpost_activesync::settings::Oof;
use outpost_xml::Element;

use super::{invalid, is_own_address, text_of, OpError, OpResult};
use crate::soap::{Fault, NS_M, NS_T};
use crate::Ctx;

fn mailbox_address(op: &Element) -> Option<&str> {
    op.child(NS_T, "Mailbox")
        .and_then(|m| text_of(m, "Address"))
}

async fn check_own(ctx: &Ctx<'_>, op: &Element) -> Result<(), OpError> {
    let address = mailbox_address(op).ok_or_else(|| invalid("The request names no Mailbox."))?;
    if !is_own_address(ctx, address).await {
        return Err(OpError::Fault(Fault::new(
            "ErrorAccessDenied",
            "Only the account's own out-of-office can be read or set.",
        )));
    }
    Ok(())
}

fn state_name(state: u8) -> &'static str {
    match state {
        1 => "Enabled",
        2 => "Scheduled",
        _ => "Disabled",
    }
}

fn audience_name(a: u8) -> &'static str {
    match a {
        1 => "Known",
        2 => "All",
        _ => "None",
    }
}

/// `2026-12-03T10:00:00Z`.
pub fn utc(ts: i64) -> String {
    chrono::DateTime::from_timestamp(ts, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// An `xs:dateTime` as unix seconds (a zone offset or `Z`; without one,
/// UTC).
pub fn parse_time(v: &str) -> Option<i64> {
    let v = v.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Some(t.timestamp());
    }
    chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc().timestamp())
}

fn reply(local: &str, text: &str) -> Element {
    Element::new(NS_T, local).with(Element::new(NS_T, "Message").with_text(text))
}

pub async fn get(ctx: &Ctx<'_>, op: &Element) -> OpResult {
    check_own(ctx, op).await?;
    let oof = ctx.backend.out_of_office(ctx.user.principal_id).await?;
    // A period is always present in Exchange's answer; when none is set
    // it is the next day, as Exchange shows it.
    let now = chrono::Utc::now().timestamp();
    let (start, end) = (
        oof.start.unwrap_or(now - now % 3600),
        oof.end.unwrap_or(now - now % 3600 + 86400),
    );
    let settings = Element::new(NS_T, "OofSettings")
        .with(Element::new(NS_T, "OofState").with_text(state_name(oof.state)))
        .with(Element::new(NS_T, "ExternalAudience").with_text(audience_name(oof.audience)))
        .with(
            Element::new(NS_T, "Duration")
                .with(Element::new(NS_T, "StartTime").with_text(utc(start)))
                .with(Element::new(NS_T, "EndTime").with_text(utc(end))),
        )
        .with(reply("InternalReply", &oof.internal))
        .with(reply(
            "ExternalReply",
            oof.external.as_deref().unwrap_or(&oof.internal),
        ));
    Ok(Element::new(NS_M, "GetUserOofSettingsResponse")
        .with(
            Element::new(NS_M, "ResponseMessage")
                .with_attr("ResponseClass", "Success")
                .with(Element::new(NS_M, "ResponseCode").with_text("NoError")),
        )
        .with(settings)
        .with(Element::new(NS_M, "AllowExternalOof").with_text("All")))
}

fn message_text(el: Option<&Element>) -> Option<String> {
    let m = el?.child(NS_T, "Message")?;
    let t = m.text.trim();
    let looks_html = {
        let l = t.to_ascii_lowercase();
        l.contains("<html")
            || l.contains("<body")
            || l.contains("<p")
            || l.contains("<div")
            || l.contains("<br")
    };
    Some(if looks_html {
        outpost_easconv::calendar::strip_html(t).trim().to_string()
    } else {
        t.to_string()
    })
}

/// What a SetUserOofSettings asks for, or why it is refused.
fn settings_from(el: &Element, old: &Oof) -> Result<Oof, &'static str> {
    let state = match text_of(el, "OofState") {
        Some("Enabled") => 1,
        Some("Scheduled") => 2,
        Some("Disabled") => 0,
        _ => return Err("OofState must be Enabled, Scheduled or Disabled."),
    };
    let audience = match text_of(el, "ExternalAudience") {
        None => old.audience,
        Some("None") => 0,
        Some("Known") => 1,
        Some("All") => 2,
        Some(_) => return Err("ExternalAudience must be None, Known or All."),
    };
    let duration = el.child(NS_T, "Duration");
    let time = |name| {
        duration
            .and_then(|d| text_of(d, name))
            .map(|v| parse_time(v).ok_or("The Duration holds a time that is not an xs:dateTime."))
            .transpose()
    };
    let (start, end) = (time("StartTime")?, time("EndTime")?);
    if state == 2 {
        match (start, end) {
            (Some(s), Some(e)) if s < e => {}
            _ => return Err("A scheduled out-of-office needs a StartTime before its EndTime."),
        }
    }
    let internal = message_text(el.child(NS_T, "InternalReply")).unwrap_or(old.internal.clone());
    let external = match message_text(el.child(NS_T, "ExternalReply")) {
        Some(t) if t == internal => None,
        Some(t) => Some(t),
        None => old.external.clone(),
    };
    Ok(Oof {
        state,
        start: if state == 2 {
            start
        } else {
            start.or(old.start)
        },
        end: if state == 2 { end } else { end.or(old.end) },
        internal,
        external,
        audience,
    })
}

pub async fn set(ctx: &Ctx<'_>, op: &Element) -> OpResult {
    check_own(ctx, op).await?;
    let el = op
        .child(NS_T, "UserOofSettings")
        .ok_or_else(|| invalid("SetUserOofSettings needs UserOofSettings."))?;
    let old = ctx.backend.out_of_office(ctx.user.principal_id).await?;
    let message = match settings_from(el, &old) {
        Err(why) => Element::new(NS_M, "ResponseMessage")
            .with_attr("ResponseClass", "Error")
            .with(Element::new(NS_M, "MessageText").with_text(why))
            .with(Element::new(NS_M, "ResponseCode").with_text("ErrorInvalidParameter"))
            .with(Element::new(NS_M, "DescriptiveLinkKey").with_text("0")),
        Ok(new) => {
            if ctx
                .backend
                .set_out_of_office(ctx.user.principal_id, &new)
                .await?
            {
                Element::new(NS_M, "ResponseMessage")
                    .with_attr("ResponseClass", "Success")
                    .with(Element::new(NS_M, "ResponseCode").with_text("NoError"))
            } else {
                Element::new(NS_M, "ResponseMessage")
                    .with_attr("ResponseClass", "Error")
                    .with(
                        Element::new(NS_M, "MessageText")
                            .with_text("The out-of-office could not be stored."),
                    )
                    .with(Element::new(NS_M, "ResponseCode").with_text("ErrorInvalidParameter"))
                    .with(Element::new(NS_M, "DescriptiveLinkKey").with_text("0"))
            }
        }
    };
    Ok(Element::new(NS_M, "SetUserOofSettingsResponse").with(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn el(xml: &str) -> Element {
        outpost_xml::parse(
            format!(r#"<t:UserOofSettings xmlns:t="{NS_T}">{xml}</t:UserOofSettings>"#).as_bytes(),
            &Default::default(),
        )
        .unwrap()
    }

    #[test]
    fn reads_settings() {
        let old = Oof::default();
        let o = settings_from(
            &el("<t:OofState>Scheduled</t:OofState><t:ExternalAudience>Known</t:ExternalAudience>\
                 <t:Duration><t:StartTime>2026-12-24T00:00:00Z</t:StartTime><t:EndTime>2026-12-31T00:00:00+01:00</t:EndTime></t:Duration>\
                 <t:InternalReply><t:Message>&lt;html&gt;&lt;body&gt;Away&lt;br&gt;back soon&lt;/body&gt;&lt;/html&gt;</t:Message></t:InternalReply>\
                 <t:ExternalReply><t:Message>Gone</t:Message></t:ExternalReply>"),
            &old,
        )
        .unwrap();
        assert_eq!((o.state, o.audience), (2, 1));
        assert_eq!(o.start, parse_time("2026-12-24T00:00:00Z"));
        assert_eq!(o.end, Some(parse_time("2026-12-30T23:00:00Z").unwrap()));
        assert_eq!(o.internal, "Away\nback soon");
        assert_eq!(o.external.as_deref(), Some("Gone"));
        assert!(settings_from(&el("<t:OofState>Scheduled</t:OofState>"), &old).is_err());
        assert!(settings_from(&el("<t:OofState>On</t:OofState>"), &old).is_err());
        let off = settings_from(&el("<t:OofState>Disabled</t:OofState>"), &o).unwrap();
        assert_eq!((off.state, off.internal.as_str()), (0, "Away\nback soon"));
    }
}
