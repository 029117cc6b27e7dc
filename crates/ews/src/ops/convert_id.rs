//! ConvertId (MS-OXWSCORE 3.1.4.3): ids from one format into another.
//!
//! This server has one id per object (see [`crate::ids`]); the EWS
//! formats (`EwsId`, `EwsLegacyId`, `OwaId`) are that id, `EntryId` is the
//! same bytes in base64 and `HexEntryId` in hex, so a conversion is a
//! re-encoding after checking that the id is one of the user's. exchangelib
//! sends a ConvertId of the id "DUMMY" first, only to read the answer's
//! `ServerVersionInfo`: it gets `ErrorInvalidIdMalformed` for it. The
//! answer's `Mailbox` is the owner's primary address, whatever the request
//! said: DavMail converts the root folder's id (with a made-up mailbox) to
//! learn its user's address.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use outpost_xml::{Element, Name};

use super::{invalid, OpResult};
use crate::ids;
use crate::soap::{error, response, success, NS_M, NS_XSI};
use crate::Ctx;

const FORMATS: &[&str] = &[
    "EwsId",
    "EwsLegacyId",
    "OwaId",
    "EntryId",
    "HexEntryId",
    "StoreId",
];

/// Our id from `id` written in `format`.
fn to_ews(format: &str, id: &str) -> Option<String> {
    let bytes = match format {
        "EwsId" | "EwsLegacyId" | "OwaId" => return Some(id.trim().to_string()),
        "EntryId" | "StoreId" => STANDARD.decode(id.trim()).ok()?,
        "HexEntryId" => hex_decode(id.trim())?,
        _ => return None,
    };
    Some(STANDARD.encode(bytes))
}

fn from_ews(format: &str, id: &str) -> Option<String> {
    let bytes = STANDARD.decode(id).ok()?;
    Some(match format {
        "EwsId" | "EwsLegacyId" | "OwaId" => id.to_string(),
        "EntryId" | "StoreId" => STANDARD.encode(bytes),
        "HexEntryId" => bytes.iter().map(|b| format!("{b:02X}")).collect(),
        _ => return None,
    })
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || s.len() > 512 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

pub async fn handle(ctx: &Ctx<'_>, op: &Element) -> OpResult {
    let dest = op.attr("DestinationFormat").unwrap_or("");
    if !FORMATS.contains(&dest) {
        return Err(invalid(format!(
            "DestinationFormat {dest:?} is not one of {FORMATS:?}."
        )));
    }
    let sources = op
        .child(NS_M, "SourceIds")
        .ok_or_else(|| invalid("ConvertId needs SourceIds."))?;
    if sources.children.len() > ctx.limits.max_ids {
        return Err(invalid("Too many ids in one ConvertId."));
    }
    // The answer names the mailbox the id belongs to, as Exchange does
    // (DavMail reads its user's primary address from it): ids here are
    // only ever the caller's own.
    let mailbox = ctx
        .backend
        .addresses(ctx.user.principal_id)
        .await?
        .into_iter()
        .next()
        .unwrap_or_else(|| ctx.user.login.clone());
    let mut messages = Vec::new();
    for source in &sources.children {
        let name = "ConvertId";
        let (Some(format), Some(id)) = (source.attr("Format"), source.attr("Id")) else {
            messages.push(error(
                name,
                "ErrorInvalidIdMalformed",
                "The id has no Format or Id.",
            ));
            continue;
        };
        let ews = to_ews(format, id);
        match ews.as_deref().and_then(ids::decode) {
            None => messages.push(error(name, "ErrorInvalidIdMalformed", "Id is malformed.")),
            Some(d) if d.owner() != ctx.user.principal_id => messages.push(error(
                name,
                "ErrorAccessDenied",
                "The id is not one of this mailbox's.",
            )),
            Some(_) => {
                let out = ews
                    .as_deref()
                    .and_then(|e| from_ews(dest, e))
                    .unwrap_or_default();
                let mut alt = Element::new(NS_M, "AlternateId")
                    .with_attr("Format", dest)
                    .with_attr("Id", out)
                    .with_attr("Mailbox", mailbox.clone());
                alt.attributes
                    .insert(0, (Name::new(NS_XSI, "type"), "t:AlternateIdType".into()));
                messages.push(success(name).with(alt));
            }
        }
    }
    Ok(response("ConvertId", messages))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_round_trip() {
        let id = ids::item_id(3, 4, 5);
        for f in FORMATS {
            let out = from_ews(f, &id).unwrap();
            assert_eq!(to_ews(f, &out).as_deref(), Some(id.as_str()), "{f}");
        }
        assert_eq!(to_ews("HexEntryId", "zz"), None);
        assert_eq!(to_ews("Nope", "x"), None);
    }
}
