//! GetUserConfiguration (MS-OXWSUSRCFG): the user configuration objects
//! (folder-associated settings such as OWA's options) a client reads.
//!
//! This server keeps no configuration objects of its own; it answers the
//! one it can fill from what it knows: `OWA.UserOptions` in the root
//! folder, whose `timezone` entry is the user's zone (the zone of the
//! default calendar, CALDAV:calendar-timezone, by its Windows id where
//! one names exactly that zone, else its IANA name). DavMail reads it to
//! learn the zone it writes events in. A configuration it does not have
//! (another name, or OWA.UserOptions while no zone is known) is
//! `ErrorItemNotFound`, as Exchange answers for a configuration never
//! saved.

use outpost_xml::Element;

use super::folders::{self, Resolved};
use super::{child_tm, invalid, OpResult};
use crate::soap::{error, response, success, t, NS_M, NS_T};
use crate::{zone, Ctx};

const NAME: &str = "GetUserConfiguration";

/// The configuration this server fills.
pub const OWA_USER_OPTIONS: &str = "OWA.UserOptions";

/// `t:DictionaryEntry` of a string key and a string value.
fn entry(key: &str, value: &str) -> Element {
    let typed = |local: &str, v: &str| {
        Element::new(NS_T, local)
            .with(t("Type", "String"))
            .with(t("Value", v))
    };
    Element::new(NS_T, "DictionaryEntry")
        .with(typed("DictionaryKey", key))
        .with(typed("DictionaryValue", value))
}

pub async fn get_user_configuration(ctx: &Ctx<'_>, op: &Element) -> OpResult {
    let wanted = child_tm(op, "UserConfigurationName")
        .ok_or_else(|| invalid("GetUserConfiguration needs UserConfigurationName."))?;
    let name = wanted
        .attr("Name")
        .ok_or_else(|| invalid("UserConfigurationName needs a Name."))?;
    let properties = child_tm(op, "UserConfigurationProperties")
        .map(|p| p.text.trim())
        .ok_or_else(|| invalid("GetUserConfiguration needs UserConfigurationProperties."))?;
    // A list of Id, Dictionary, XmlData, BinaryData or All.
    let asked: Vec<&str> = properties.split_whitespace().collect();
    if asked.is_empty()
        || asked
            .iter()
            .any(|p| !matches!(*p, "Id" | "Dictionary" | "XmlData" | "BinaryData" | "All"))
    {
        return Err(invalid(format!(
            "UserConfigurationProperties {properties:?} is not a list of Id, Dictionary, XmlData, BinaryData, All."
        )));
    }
    let Some(folder_el) = wanted.children.first() else {
        return Err(invalid("UserConfigurationName needs a folder."));
    };
    let tree = folders::tree(ctx).await?;
    let folder = match folders::resolve(ctx, &tree, folder_el) {
        Resolved::Found(f) => f,
        Resolved::Error(code, text) => return Ok(response(NAME, vec![error(NAME, code, text)])),
    };
    let zone = if name == OWA_USER_OPTIONS && folder.distinguished == Some("root") {
        ctx.backend.time_zone(ctx.user.principal_id).await?
    } else {
        None
    };
    let Some(zone) = zone else {
        return Ok(response(
            NAME,
            vec![error(
                NAME,
                "ErrorItemNotFound",
                format!("There is no configuration {name} in this folder."),
            )],
        ));
    };
    let id = zone::resolve(&zone)
        .and_then(zone::windows_id)
        .map(str::to_string)
        .unwrap_or(zone);
    let mut folder_id = folder_el.clone();
    folder_id.children.clear();
    let mut config = Element::new(NS_M, "UserConfiguration").with(
        Element::new(NS_T, "UserConfigurationName")
            .with_attr("Name", name)
            .with(folder_id),
    );
    if asked.iter().any(|p| matches!(*p, "Dictionary" | "All")) {
        config.push(Element::new(NS_T, "Dictionary").with(entry("timezone", &id)));
    }
    Ok(response(NAME, vec![success(NAME).with(config)]))
}
