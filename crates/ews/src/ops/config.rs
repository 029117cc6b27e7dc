//! GetServiceConfiguration (MS-OXWCONFIG): what Outlook asks at start to
//! know whether MailTips are served and what the organisation's domains
//! and limits are. Unified Messaging is off (there is none); protection
//! rules are empty (none are kept).

use outpost_xml::Element;

use super::{child_tm, invalid, OpResult};
use crate::soap::{NS_M, NS_T};
use crate::Ctx;

/// Recipients one GetMailTips may name (what the MailTips operation
/// accepts).
pub const MAX_MAILTIPS_RECIPIENTS: usize = 50;
/// A group at least this large is a "large audience".
pub const LARGE_AUDIENCE: usize = 25;

fn t(name: &str, v: impl Into<String>) -> Element {
    Element::new(NS_T, name).with_text(v)
}

pub async fn get_service_configuration(ctx: &Ctx<'_>, op: &Element) -> OpResult {
    let wanted: Vec<String> = child_tm(op, "RequestedConfiguration")
        .ok_or_else(|| invalid("GetServiceConfiguration needs RequestedConfiguration."))?
        .children
        .iter()
        .map(|c| c.text.trim().to_string())
        .collect();
    let mut domains: Vec<String> = ctx
        .backend
        .addresses(ctx.user.principal_id)
        .await?
        .iter()
        .filter_map(|a| a.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()))
        .collect();
    domains.sort();
    domains.dedup();
    let mut msg = Element::new(NS_M, "ServiceConfigurationResponseMessageType")
        .with_attr("ResponseClass", "Success")
        .with(Element::new(NS_M, "ResponseCode").with_text("NoError"));
    for name in &wanted {
        match name.as_str() {
            "MailTips" => {
                let mut internal = Element::new(NS_T, "InternalDomains");
                for d in &domains {
                    internal.push(Element::new(NS_T, "Domain").with_attr("Name", d.clone()));
                }
                msg.push(
                    Element::new(NS_M, "MailTipsConfiguration")
                        .with(t("MailTipsEnabled", "true"))
                        .with(t(
                            "MaxRecipientsPerGetMailTipsRequest",
                            MAX_MAILTIPS_RECIPIENTS.to_string(),
                        ))
                        .with(t("MaxMessageSize", ctx.limits.max_message_size.to_string()))
                        .with(t("LargeAudienceThreshold", LARGE_AUDIENCE.to_string()))
                        .with(t("ShowExternalRecipientCount", "true"))
                        .with(internal),
                );
            }
            "UnifiedMessagingConfiguration" => msg.push(
                Element::new(NS_M, "UnifiedMessagingConfiguration")
                    .with(t("UmEnabled", "false"))
                    .with(t("PlayOnPhoneDialString", ""))
                    .with(t("PlayOnPhoneEnabled", "false")),
            ),
            "ProtectionRules" => {
                let mut internal = Element::new(NS_T, "InternalDomains");
                for d in &domains {
                    internal.push(Element::new(NS_T, "Domain").with_attr("Name", d.clone()));
                }
                msg.push(
                    Element::new(NS_M, "ProtectionRulesConfiguration")
                        .with_attr("RefreshInterval", "24")
                        .with(Element::new(NS_T, "Rules"))
                        .with(internal),
                )
            }
            // PolicyNudges and the rest: nothing is configured.
            _ => {}
        }
    }
    if wanted.is_empty() {
        return Err(invalid("RequestedConfiguration names nothing."));
    }
    Ok(Element::new(NS_M, "GetServiceConfigurationResponse")
        .with_attr("ResponseClass", "Success")
        .with(Element::new(NS_M, "ResponseCode").with_text("NoError"))
        .with(Element::new(NS_M, "ResponseMessages").with(msg)))
}
