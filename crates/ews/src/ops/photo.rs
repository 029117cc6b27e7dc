//! GetUserPhoto (MS-OXWSUPHOTO). The directory keeps no photos (LDAP
//! `thumbnailPhoto`/`jpegPhoto` are not imported), so a user's photo is
//! answered as Exchange answers a user without one: `ErrorItemNotFound`,
//! `HasChanged` false. Clients then show initials. An address that is not
//! a user here gets the same answer: it says nothing about who exists.

use outpost_xml::Element;

use super::{child_tm, invalid, OpResult};
use crate::soap::NS_M;
use crate::Ctx;

pub async fn get_user_photo(_ctx: &Ctx<'_>, op: &Element) -> OpResult {
    let email = child_tm(op, "Email").map(|e| e.text.trim()).unwrap_or("");
    if email.is_empty() || !email.contains('@') {
        return Err(invalid("GetUserPhoto needs the Email of a user."));
    }
    Ok(Element::new(NS_M, "GetUserPhotoResponse")
        .with_attr("ResponseClass", "Error")
        .with(Element::new(NS_M, "MessageText").with_text("There is no photo for this user."))
        .with(Element::new(NS_M, "ResponseCode").with_text("ErrorItemNotFound"))
        .with(Element::new(NS_M, "DescriptiveLinkKey").with_text("0"))
        .with(Element::new(NS_M, "HasChanged").with_text("false"))
        .with(Element::new(NS_M, "PictureData")))
}
