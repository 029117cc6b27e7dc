//! Calendar items, contacts and tasks: FindItem (with CalendarView),
//! GetItem, CreateItem (invitations through the scheduling engine),
//! UpdateItem and DeleteItem for items of calendars, address books and
//! task lists.
//!
//! Not written yet: every entry point answers `ErrorInvalidRequest`.

use outpost_xml::Element;

use super::folders::EwsFolder;
use super::items::{ItemError, ItemRef, ItemResult};
use crate::Ctx;

fn not_yet() -> ItemResult {
    Ok(Err(ItemError::new(
        "ErrorInvalidRequest",
        "Calendar items, contacts and tasks are not served over EWS by this server yet.",
    )))
}

pub async fn find(_ctx: &Ctx<'_>, _folder: &EwsFolder, _op: &Element) -> ItemResult {
    not_yet()
}

/// `id` is the request's `t:ItemId` or `t:OccurrenceItemId` element.
pub async fn get(
    _ctx: &Ctx<'_>,
    _item: &ItemRef<'_>,
    _id: &Element,
    _shape: Option<&Element>,
) -> ItemResult {
    not_yet()
}

pub async fn create(
    _ctx: &Ctx<'_>,
    _tree: &[EwsFolder],
    _folder: Option<&EwsFolder>,
    _item: &Element,
    _op: &Element,
) -> ItemResult {
    not_yet()
}

pub async fn update(
    _ctx: &Ctx<'_>,
    _item: &ItemRef<'_>,
    _id: &Element,
    _change: &Element,
    _op: &Element,
) -> ItemResult {
    not_yet()
}

pub async fn delete(
    _ctx: &Ctx<'_>,
    _item: &ItemRef<'_>,
    _id: &Element,
    _op: &Element,
) -> ItemResult {
    not_yet()
}
