//! GetItemEstimate (MS-ASCMD 2.2.1.9): how many changes a Sync of each
//! folder would bring, from the same state Sync keeps.

use outpost_wbxml::Element;

use crate::folders::{child_text, Folder};
use crate::state::{self, ClientKey};
use crate::sync::{self, Caller};
use crate::{BackendError, EasBackend};

fn g(name: &str, v: impl Into<String>) -> Element {
    Element::named("GetItemEstimate", name).with_text(v)
}

/// (SyncKey, CollectionId) of each Collection; `None` when malformed.
pub fn parse(root: &Element) -> Option<Vec<(String, String)>> {
    if !root.is("GetItemEstimate", "GetItemEstimate") {
        return None;
    }
    let cols = root.child("GetItemEstimate", "Collections")?;
    let mut out = Vec::new();
    for c in cols
        .elements()
        .filter(|e| e.is("GetItemEstimate", "Collection"))
    {
        // 14.0 and later put the SyncKey in AirSync's page.
        let key = child_text(c, "AirSync", "SyncKey")
            .or_else(|| child_text(c, "GetItemEstimate", "SyncKey"))?;
        out.push((key, child_text(c, "GetItemEstimate", "CollectionId")?));
    }
    Some(out)
}

fn response(status: u32, id: &str, estimate: Option<i64>) -> Element {
    let mut col = Element::named("GetItemEstimate", "Collection").with(g("CollectionId", id));
    if let Some(n) = estimate {
        col = col.with(g("Estimate", n.to_string()));
    }
    Element::named("GetItemEstimate", "Response")
        .with(g("Status", status.to_string()))
        .with(col)
}

pub async fn answer(
    b: &dyn EasBackend,
    who: &Caller<'_>,
    folders: &[Folder],
    root: &Element,
) -> Result<Element, BackendError> {
    let Some(cols) = parse(root) else {
        return Ok(Element::named("GetItemEstimate", "GetItemEstimate").with(g("Status", "2")));
    };
    let mut out = Element::named("GetItemEstimate", "GetItemEstimate");
    for (key, id) in cols {
        let Some(folder) = id
            .parse::<i64>()
            .ok()
            .and_then(|n| folders.iter().find(|f| f.id == n))
        else {
            // Status 2: a collection that is not the user's.
            out = out.with(response(2, &id, None));
            continue;
        };
        let r = match state::parse_key(&key) {
            // Status 3: the sync state is not primed (SyncKey 0).
            ClientKey::Initial => response(3, &id, None),
            ClientKey::Invalid => response(4, &id, None),
            ClientKey::Key(k) => {
                match b
                    .sync_state(who.principal, who.device_id, folder.id)
                    .await?
                {
                    Some(s) if s.sync_key == k => match sync::pending(b, who, folder.id, &s).await?
                    {
                        Some(n) => response(1, &id, Some(n)),
                        None => response(4, &id, None),
                    },
                    _ => response(4, &id, None),
                }
            }
        };
        out = out.with(r);
    }
    Ok(out)
}
