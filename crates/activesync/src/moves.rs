//! MoveItems (MS-ASCMD 2.2.1.12): messages from one of the user's folders
//! to another.

use outpost_wbxml::Element;

use crate::folders::{child_text, Folder};
use crate::sync::{parse_server_id, server_id, Caller};
use crate::{BackendError, EasBackend};

fn m(name: &str, v: impl Into<String>) -> Element {
    Element::named("Move", name).with_text(v)
}

/// (SrcMsgId, SrcFldId, DstFldId) of each Move; `None` when malformed.
pub fn parse(root: &Element) -> Option<Vec<(String, String, String)>> {
    if !root.is("Move", "MoveItems") {
        return None;
    }
    root.elements()
        .filter(|e| e.is("Move", "Move"))
        .map(|e| {
            Some((
                child_text(e, "Move", "SrcMsgId")?,
                child_text(e, "Move", "SrcFldId")?,
                child_text(e, "Move", "DstFldId")?,
            ))
        })
        .collect()
}

pub async fn answer(
    b: &dyn EasBackend,
    who: &Caller<'_>,
    folders: &[Folder],
    root: &Element,
) -> Result<Option<Element>, BackendError> {
    let Some(moves) = parse(root) else {
        return Ok(None);
    };
    let folder = |id: &str| {
        id.parse::<i64>()
            .ok()
            .filter(|n| folders.iter().any(|f| f.id == *n))
    };
    let mut out = Element::named("Move", "MoveItems");
    for (msg, src, dst) in moves {
        let mut resp = Element::named("Move", "Response").with(m("SrcMsgId", msg.clone()));
        // MS-ASCMD 2.2.3.177.9: 1 bad source, 2 bad destination, 3 moved,
        // 4 source and destination are the same.
        let status = match (folder(&src), folder(&dst)) {
            (None, _) => 1,
            (_, None) => 2,
            (Some(s), Some(d)) if s == d => 4,
            (Some(s), Some(d)) => match parse_server_id(s, &msg) {
                None => 1,
                Some(uid) => match b.move_mail(who.principal, s, &[uid], d).await?.first() {
                    Some(&(_, new)) => {
                        resp = resp.with(m("DstMsgId", server_id(d, new)));
                        3
                    }
                    None => 1,
                },
            },
        };
        // Status goes before DstMsgId.
        let mut children: Vec<Element> = resp.elements().cloned().collect();
        children.insert(1, m("Status", status.to_string()));
        let mut r = Element::named("Move", "Response");
        for c in children {
            r = r.with(c);
        }
        out = out.with(r);
    }
    Ok(Some(out))
}
