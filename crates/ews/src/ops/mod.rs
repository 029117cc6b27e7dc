//! The operations, one module each, and the dispatcher by operation
//! name. Each handler takes the operation element and returns the body
//! element of the answer; per-item failures are error response messages
//! inside it, and only a request that cannot be answered at all is a
//! [`Fault`].

pub mod availability;
pub mod calendar;
pub mod config;
pub mod contacts;
pub mod convert_id;
pub mod directory;
pub mod folders;
pub mod hierarchy;
pub mod items;
pub mod mail;
pub mod message;
pub mod oof;
pub mod photo;
pub mod pim;
pub mod pim_props;
pub mod props;
pub mod push;
pub mod restriction;
pub mod sync_items;
pub mod tasks;
pub mod userconfig;

use outpost_xml::Element;

use crate::soap::{Fault, NS_M, NS_T};
use crate::{BackendError, Ctx};

/// The operations this server answers, as the WSDL lists them.
pub const OPERATIONS: &[&str] = &[
    "ConvertId",
    "GetFolder",
    "FindFolder",
    "SyncFolderHierarchy",
    "CreateFolder",
    "UpdateFolder",
    "MoveFolder",
    "CopyFolder",
    "DeleteFolder",
    "EmptyFolder",
    "GetUserOofSettings",
    "SetUserOofSettings",
    "FindItem",
    "GetItem",
    "CreateItem",
    "UpdateItem",
    "DeleteItem",
    "MoveItem",
    "CopyItem",
    "Subscribe",
    "Unsubscribe",
    "GetEvents",
    "GetStreamingEvents",
    "GetServiceConfiguration",
    "GetUserPhoto",
    "SyncFolderItems",
    "SendItem",
    "GetAttachment",
    "CreateAttachment",
    "DeleteAttachment",
    "MarkAsJunk",
    "GetUserAvailability",
    "GetServerTimeZones",
    "ResolveNames",
    "ExpandDL",
    "GetMailTips",
    "GetUserConfiguration",
];

/// Runs the operation `op` (an element of the messages namespace).
pub async fn dispatch(ctx: &Ctx<'_>, op: &Element) -> Result<Element, Fault> {
    if op.name.ns != NS_M {
        return Err(unknown(&op.name.local));
    }
    let r = match op.name.local.as_str() {
        "ConvertId" => convert_id::handle(ctx, op).await,
        "GetFolder" => folders::get_folder(ctx, op).await,
        "FindFolder" => folders::find_folder(ctx, op).await,
        "SyncFolderHierarchy" => hierarchy::sync_folder_hierarchy(ctx, op).await,
        "CreateFolder" => hierarchy::create_folder(ctx, op).await,
        "UpdateFolder" => hierarchy::update_folder(ctx, op).await,
        "MoveFolder" => hierarchy::move_folder(ctx, op).await,
        "CopyFolder" => hierarchy::copy_folder(ctx, op).await,
        "DeleteFolder" => hierarchy::delete_folder(ctx, op).await,
        "EmptyFolder" => hierarchy::empty_folder(ctx, op).await,
        "GetUserOofSettingsRequest" => oof::get(ctx, op).await,
        "SetUserOofSettingsRequest" => oof::set(ctx, op).await,
        "FindItem" => items::find_item(ctx, op).await,
        "GetItem" => items::get_item(ctx, op).await,
        "CreateItem" => items::create_item(ctx, op).await,
        "UpdateItem" => items::update_item(ctx, op).await,
        "DeleteItem" => items::delete_item(ctx, op).await,
        "MoveItem" => items::move_item(ctx, op, false).await,
        "CopyItem" => items::move_item(ctx, op, true).await,
        "Subscribe" => push::subscribe(ctx, op).await,
        "Unsubscribe" => push::unsubscribe(ctx, op).await,
        "GetEvents" => push::get_events(ctx, op).await,
        "GetServiceConfiguration" => config::get_service_configuration(ctx, op).await,
        "GetUserPhoto" => photo::get_user_photo(ctx, op).await,
        "SyncFolderItems" => sync_items::sync_folder_items(ctx, op).await,
        "SendItem" => mail::send_item(ctx, op).await,
        "GetAttachment" => mail::get_attachment(ctx, op).await,
        "CreateAttachment" => mail::create_attachment(ctx, op).await,
        "DeleteAttachment" => mail::delete_attachment(ctx, op).await,
        "MarkAsJunk" => mail::mark_as_junk(ctx, op).await,
        "GetUserAvailabilityRequest" => availability::get_user_availability(ctx, op).await,
        "GetServerTimeZones" => availability::get_server_time_zones(ctx, op),
        "ResolveNames" => directory::resolve_names(ctx, op).await,
        "ExpandDL" => directory::expand_dl(ctx, op).await,
        "GetMailTips" => directory::get_mail_tips(ctx, op).await,
        "GetUserConfiguration" => userconfig::get_user_configuration(ctx, op).await,
        other => return Err(unknown(other)),
    };
    r.map_err(|e| match e {
        OpError::Fault(f) => f,
        OpError::Backend(BackendError::Unavailable(m)) => {
            tracing::warn!("ews: store unavailable: {m}");
            Fault::new(
                "ErrorServerBusy",
                "The mailbox store is unavailable; try again later.",
            )
        }
    })
}

fn unknown(name: &str) -> Fault {
    Fault::new(
        "ErrorInvalidRequest",
        format!("The operation {name} is not supported by this server."),
    )
}

/// Why an operation could not answer at all.
#[derive(Debug)]
pub enum OpError {
    Fault(Fault),
    Backend(BackendError),
}

impl From<BackendError> for OpError {
    fn from(e: BackendError) -> OpError {
        OpError::Backend(e)
    }
}

impl From<Fault> for OpError {
    fn from(f: Fault) -> OpError {
        OpError::Fault(f)
    }
}

pub type OpResult = Result<Element, OpError>;

/// A request that does not have what the schema requires.
pub fn invalid(message: impl Into<String>) -> OpError {
    OpError::Fault(Fault::new("ErrorSchemaValidation", message))
}

/// True when `address` is one of the user's own (case-insensitive).
pub async fn is_own_address(ctx: &Ctx<'_>, address: &str) -> bool {
    let address = address.trim();
    if address.eq_ignore_ascii_case(&ctx.user.login) {
        return true;
    }
    match ctx.backend.addresses(ctx.user.principal_id).await {
        Ok(list) => list.iter().any(|a| a.eq_ignore_ascii_case(address)),
        Err(_) => false,
    }
}

/// The text of the `t:` child `local`, trimmed.
pub fn text_of<'a>(el: &'a Element, local: &str) -> Option<&'a str> {
    el.child(NS_T, local).map(|c| c.text.trim())
}

/// A `t:` child or an `m:` one of that name (EWS requests put some
/// elements in either, depending on the operation).
pub fn child_tm<'a>(el: &'a Element, local: &str) -> Option<&'a Element> {
    el.child(NS_M, local).or_else(|| el.child(NS_T, local))
}
