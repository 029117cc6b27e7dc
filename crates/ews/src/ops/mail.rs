//! Messages: FindItem, GetItem, CreateItem, UpdateItem, DeleteItem,
//! MoveItem and CopyItem for items of mail folders.
//!
//! Not written yet: every entry point answers `ErrorInvalidRequest`.

use outpost_xml::Element;

use super::folders::EwsFolder;
use super::items::{ItemError, ItemRef, ItemResult};
use crate::Ctx;

fn not_yet() -> ItemResult {
    Ok(Err(ItemError::new(
        "ErrorInvalidRequest",
        "Messages are not served over EWS by this server yet.",
    )))
}

pub async fn find(_ctx: &Ctx<'_>, _folder: &EwsFolder, _op: &Element) -> ItemResult {
    not_yet()
}

pub async fn get(_ctx: &Ctx<'_>, _item: &ItemRef<'_>, _shape: Option<&Element>) -> ItemResult {
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
    _change: &Element,
    _op: &Element,
) -> ItemResult {
    not_yet()
}

pub async fn delete(
    _ctx: &Ctx<'_>,
    _tree: &[EwsFolder],
    _item: &ItemRef<'_>,
    _how: &str,
) -> ItemResult {
    not_yet()
}

pub async fn move_or_copy(
    _ctx: &Ctx<'_>,
    _item: &ItemRef<'_>,
    _to: &EwsFolder,
    _copy: bool,
) -> ItemResult {
    not_yet()
}
