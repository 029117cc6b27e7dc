//! Folders (MS-OXWSFOLD): the tree EWS shows, distinguished folder ids,
//! GetFolder and FindFolder.
//!
//! The tree is the one ActiveSync shows (`EasBackend::folders`: the
//! mailboxes, calendars, task lists and address books) under two folders
//! that are not collections: `root` and, below it, `msgfolderroot` ("Top
//! of Information Store"), the parent of every top-level folder, as in an
//! Exchange mailbox. Distinguished ids come from the folder types
//! (Inbox, Drafts, Sent Items, Deleted Items; the default calendar,
//! contacts and tasks) and the IMAP special-use attributes (`\Junk` is
//! `junkemail`, `\Archive` is `archive`).

use outpost_activesync::{Class, Folder};
use outpost_xml::Element;

use super::{child_tm, invalid, OpResult};
use crate::ids::{self, Decoded, MSG_FOLDER_ROOT, OUTBOX, ROOT};
use crate::soap::{error, response, success, NS_M, NS_T};
use crate::{BackendError, Counts, Ctx};

/// One folder as EWS shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EwsFolder {
    /// Collection id, or [`ROOT`] / [`MSG_FOLDER_ROOT`].
    pub id: i64,
    /// `None` for the root.
    pub parent: Option<i64>,
    pub name: String,
    pub kind: Kind,
    pub distinguished: Option<&'static str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `root` and `msgfolderroot`.
    Root,
    Mail,
    Calendar,
    Contacts,
    Tasks,
}

impl Kind {
    /// The element a folder of this kind is written as.
    pub fn element(self) -> &'static str {
        match self {
            Kind::Root | Kind::Mail => "Folder",
            Kind::Calendar => "CalendarFolder",
            Kind::Contacts => "ContactsFolder",
            Kind::Tasks => "TasksFolder",
        }
    }

    pub fn folder_class(self) -> Option<&'static str> {
        match self {
            Kind::Root => None,
            Kind::Mail => Some("IPF.Note"),
            Kind::Calendar => Some("IPF.Appointment"),
            Kind::Contacts => Some("IPF.Contact"),
            Kind::Tasks => Some("IPF.Task"),
        }
    }
}

/// The distinguished id of an ActiveSync folder type, or of a special-use
/// attribute.
fn distinguished(folder: &Folder, special: Option<&str>) -> Option<&'static str> {
    match folder.folder_type {
        2 => return Some("inbox"),
        3 => return Some("drafts"),
        4 => return Some("deleteditems"),
        5 => return Some("sentitems"),
        6 => return Some("outbox"),
        7 => return Some("tasks"),
        8 => return Some("calendar"),
        9 => return Some("contacts"),
        _ => {}
    }
    match special {
        Some(s) if s.eq_ignore_ascii_case("\\Junk") => Some("junkemail"),
        Some(s) if s.eq_ignore_ascii_case("\\Archive") => Some("archive"),
        _ => None,
    }
}

/// The principal's whole tree, root first, parents before children.
pub async fn tree(ctx: &Ctx<'_>) -> Result<Vec<EwsFolder>, BackendError> {
    let principal = ctx.user.principal_id;
    let folders = ctx.backend.folders(principal).await?;
    let special = ctx.backend.special_use(principal).await?;
    let mut out = vec![
        EwsFolder {
            id: ROOT,
            parent: None,
            name: "Root".into(),
            kind: Kind::Root,
            distinguished: Some("root"),
        },
        EwsFolder {
            id: MSG_FOLDER_ROOT,
            parent: Some(ROOT),
            name: "Top of Information Store".into(),
            kind: Kind::Root,
            distinguished: Some("msgfolderroot"),
        },
    ];
    if !folders.iter().any(|f| f.folder_type == 6) {
        out.push(EwsFolder {
            id: OUTBOX,
            parent: Some(MSG_FOLDER_ROOT),
            name: "Outbox".into(),
            kind: Kind::Mail,
            distinguished: Some("outbox"),
        });
    }
    let ids: std::collections::HashSet<i64> = folders.iter().map(|f| f.id).collect();
    let mut rest: Vec<EwsFolder> = folders
        .iter()
        .map(|f| EwsFolder {
            id: f.id,
            parent: Some(if f.parent != 0 && ids.contains(&f.parent) {
                f.parent
            } else {
                MSG_FOLDER_ROOT
            }),
            // Exchange's name, where IMAP's is INBOX.
            name: if f.folder_type == 2 && f.name.eq_ignore_ascii_case("INBOX") {
                "Inbox".to_string()
            } else {
                f.name.clone()
            },
            kind: match f.class() {
                Class::Email => Kind::Mail,
                Class::Calendar => Kind::Calendar,
                Class::Contacts => Kind::Contacts,
                Class::Tasks => Kind::Tasks,
            },
            distinguished: distinguished(
                f,
                special
                    .iter()
                    .find(|(id, _)| *id == f.id)
                    .map(|(_, s)| s.as_str()),
            ),
        })
        .collect();
    // Parents first: by depth.
    let depth = |f: &EwsFolder| {
        let mut d = 0;
        let mut p = f.parent;
        while let Some(id) = p.filter(|&id| id > 0) {
            d += 1;
            p = folders.iter().find(|x| x.id == id).map(|x| {
                if x.parent == 0 {
                    MSG_FOLDER_ROOT
                } else {
                    x.parent
                }
            });
            if d > 64 {
                break;
            }
        }
        d
    };
    rest.sort_by_key(|f| (depth(f), f.id));
    out.extend(rest);
    Ok(out)
}

/// What a `FolderId` or `DistinguishedFolderId` names, in the tree.
#[derive(Debug)]
pub enum Resolved<'a> {
    Found(&'a EwsFolder),
    /// A response code: the folder is not there, the id is not ours...
    Error(&'static str, &'static str),
}

/// Resolves one `t:FolderId` / `t:DistinguishedFolderId` element.
pub fn resolve<'a>(ctx: &Ctx<'_>, tree: &'a [EwsFolder], el: &Element) -> Resolved<'a> {
    if el.is(NS_T, "DistinguishedFolderId") {
        let Some(name) = el.attr("Id") else {
            return Resolved::Error(
                "ErrorInvalidIdMalformed",
                "DistinguishedFolderId has no Id.",
            );
        };
        // Another user's mailbox (delegate access) is not offered.
        if let Some(addr) = el
            .child(NS_T, "Mailbox")
            .and_then(|m| super::text_of(m, "EmailAddress"))
        {
            if !addr.is_empty() && !addr.eq_ignore_ascii_case(&ctx.user.login) {
                // Checked against all the user's addresses by the caller
                // when it matters; the login is the primary address.
                return Resolved::Error(
                    "ErrorAccessDenied",
                    "Folders of other mailboxes are not shared with this account.",
                );
            }
        }
        return match tree.iter().find(|f| f.distinguished == Some(name)) {
            Some(f) => Resolved::Found(f),
            None => Resolved::Error(
                "ErrorFolderNotFound",
                "This mailbox has no such distinguished folder.",
            ),
        };
    }
    if el.is(NS_T, "FolderId") {
        return match el.attr("Id").and_then(ids::decode) {
            Some(Decoded::Folder { owner, collection }) => {
                if owner != ctx.user.principal_id {
                    return Resolved::Error(
                        "ErrorAccessDenied",
                        "The folder is not one of this mailbox's.",
                    );
                }
                match tree.iter().find(|f| f.id == collection) {
                    Some(f) => Resolved::Found(f),
                    None => Resolved::Error("ErrorFolderNotFound", "The folder does not exist."),
                }
            }
            _ => Resolved::Error("ErrorInvalidIdMalformed", "Id is malformed."),
        };
    }
    Resolved::Error("ErrorInvalidIdMalformed", "Not a folder id.")
}

/// `t:FolderId` of a folder.
pub fn folder_id_element(ctx: &Ctx<'_>, local: &str, id: i64, change: i64) -> Element {
    Element::new(NS_T, local)
        .with_attr("Id", ids::folder_id(ctx.user.principal_id, id))
        .with_attr("ChangeKey", ids::change_key(change))
}

/// A folder element with every property this server has, in the order
/// of the schema (BaseFolderType, then FolderType's UnreadCount).
pub fn folder_element(
    ctx: &Ctx<'_>,
    tree: &[EwsFolder],
    f: &EwsFolder,
    info: Option<FolderInfo>,
    shape: Option<&Element>,
) -> Element {
    let c = info.map(|i| i.counts).unwrap_or_default();
    let children = tree.iter().filter(|x| x.parent == Some(f.id)).count();
    let mut el =
        Element::new(NS_T, f.kind.element()).with(folder_id_element(ctx, "FolderId", f.id, 0));
    if let Some(p) = f.parent {
        el.push(folder_id_element(ctx, "ParentFolderId", p, 0));
    }
    if let Some(class) = f.kind.folder_class() {
        el.push(Element::new(NS_T, "FolderClass").with_text(class));
    }
    el.push(Element::new(NS_T, "DisplayName").with_text(f.name.clone()));
    el.push(Element::new(NS_T, "TotalCount").with_text(c.total.to_string()));
    el.push(Element::new(NS_T, "ChildFolderCount").with_text(children.to_string()));
    // MAPI properties by tag (DavMail asks for these).
    let next_uid = info.and_then(|i| i.next_uid);
    el.children
        .extend(super::props::answers(shape, &|key| match key {
            "0x3613" => f.kind.folder_class().map(str::to_string),
            "0x3001" | "0x10f3" => Some(f.name.clone()),
            "0x3602" => Some(c.total.to_string()),
            "0x3603" => Some(c.unread.to_string()),
            "0x360a" => Some((children > 0).to_string()),
            "0x6751" => next_uid.map(|n| n.to_string()),
            "0x6752" => next_uid.map(|n| (n - 1).max(0).to_string()),
            _ => None,
        }));
    let mut rights = Element::new(NS_T, "EffectiveRights");
    let writable = f.kind != Kind::Root;
    for (name, v) in [
        ("CreateAssociated", writable),
        ("CreateContents", writable),
        (
            "CreateHierarchy",
            f.kind == Kind::Mail || f.id == MSG_FOLDER_ROOT,
        ),
        ("Delete", writable && f.distinguished.is_none()),
        ("Modify", writable),
        ("Read", true),
        ("ViewPrivateItems", true),
    ] {
        rights.push(Element::new(NS_T, name).with_text(if v { "true" } else { "false" }));
    }
    el.push(rights);
    if let Some(d) = f.distinguished {
        if ctx.version >= "Exchange2013" {
            el.push(Element::new(NS_T, "DistinguishedFolderId").with_text(d));
        }
    }
    if matches!(f.kind, Kind::Mail | Kind::Tasks | Kind::Root) {
        el.push(Element::new(NS_T, "UnreadCount").with_text(c.unread.to_string()));
    }
    el
}

/// What a folder element shows beside the tree: counts and, for a mail
/// folder, the next UID.
#[derive(Debug, Clone, Copy, Default)]
pub struct FolderInfo {
    pub counts: Counts,
    pub next_uid: Option<i64>,
}

/// The counts and next UID of a folder (nothing to look up for the
/// virtual ones).
pub async fn info_of(ctx: &Ctx<'_>, f: &EwsFolder) -> Result<Option<FolderInfo>, BackendError> {
    if f.id < 0 {
        return Ok(Some(FolderInfo::default()));
    }
    let principal = ctx.user.principal_id;
    let Some(counts) = ctx.backend.counts(principal, f.id).await? else {
        return Ok(None);
    };
    let next_uid = if f.kind == Kind::Mail {
        ctx.backend
            .mail_point(principal, f.id)
            .await?
            .map(|(_, next)| next)
    } else {
        None
    };
    Ok(Some(FolderInfo { counts, next_uid }))
}

fn folder_ids(op: &Element, local: &str) -> Result<Vec<Element>, super::OpError> {
    let list = child_tm(op, local).ok_or_else(|| invalid(format!("The request needs {local}.")))?;
    Ok(list.children.clone())
}

pub async fn get_folder(ctx: &Ctx<'_>, op: &Element) -> OpResult {
    let wanted = folder_ids(op, "FolderIds")?;
    if wanted.len() > ctx.limits.max_ids {
        return Err(invalid("Too many folder ids in one GetFolder."));
    }
    let tree = tree(ctx).await?;
    let mut messages = Vec::new();
    for id in &wanted {
        match resolve(ctx, &tree, id) {
            Resolved::Found(f) => {
                let info = info_of(ctx, f).await?;
                let el = folder_element(ctx, &tree, f, info, child_tm(op, "FolderShape"));
                messages.push(success("GetFolder").with(Element::new(NS_M, "Folders").with(el)));
            }
            Resolved::Error(code, text) => messages.push(error("GetFolder", code, text)),
        }
    }
    Ok(response("GetFolder", messages))
}

/// Folders below `parent`: its children, or with `deep` all its
/// descendants (parents before children).
pub fn below(tree: &[EwsFolder], parent: i64, deep: bool) -> Vec<&EwsFolder> {
    let mut out: Vec<&EwsFolder> = Vec::new();
    let mut frontier = vec![parent];
    while let Some(p) = frontier.pop() {
        for f in tree.iter().filter(|f| f.parent == Some(p)) {
            out.push(f);
            if deep {
                frontier.push(f.id);
            }
        }
    }
    // Keep the tree's order (parents first).
    out.sort_by_key(|f| tree.iter().position(|x| x.id == f.id));
    out
}

/// A paging view: `IndexedPageFolderView` / `IndexedPageItemView`
/// (offset from the beginning or the end) and `FractionalPage...` (a
/// fraction of the total).
#[derive(Debug, Clone, Copy)]
pub struct Page {
    pub max: usize,
    pub offset: usize,
    pub from_end: bool,
    pub fraction: Option<(usize, usize)>,
}

impl Page {
    /// Reads the first view element of `op` named in `names`.
    pub fn read(op: &Element, names: &[&str], limit: usize) -> Result<Page, super::OpError> {
        for name in names {
            if let Some(v) = op.child(NS_M, name) {
                let num = |a: &str| -> Result<Option<usize>, super::OpError> {
                    v.attr(a)
                        .map(|s| {
                            s.trim()
                                .parse::<usize>()
                                .map_err(|_| invalid(format!("{a} is not a number.")))
                        })
                        .transpose()
                };
                let max = num("MaxEntriesReturned")?.unwrap_or(limit).min(limit);
                if name.starts_with("Fractional") {
                    let n = num("Numerator")?.unwrap_or(0);
                    let d = num("Denominator")?.unwrap_or(1).max(1);
                    return Ok(Page {
                        max,
                        offset: 0,
                        from_end: false,
                        fraction: Some((n, d)),
                    });
                }
                return Ok(Page {
                    max,
                    offset: num("Offset")?.unwrap_or(0),
                    from_end: v.attr("BasePoint") == Some("End"),
                    fraction: None,
                });
            }
        }
        Ok(Page {
            max: limit,
            offset: 0,
            from_end: false,
            fraction: None,
        })
    }

    /// The index range of a list of `total`, and whether it reaches the
    /// last entry.
    pub fn range(&self, total: usize) -> (usize, usize, bool) {
        let start = match self.fraction {
            Some((n, d)) => total * n / d,
            None if self.from_end => total.saturating_sub(self.offset + self.max),
            None => self.offset.min(total),
        };
        let end = (start + self.max).min(total);
        (start, end, end >= total)
    }
}

pub async fn find_folder(ctx: &Ctx<'_>, op: &Element) -> OpResult {
    let deep = match op.attr("Traversal") {
        Some("Deep") => true,
        Some("Shallow") | None => false,
        // SoftDeleted: nothing is kept soft-deleted here.
        Some("SoftDeleted") => {
            return Ok(response(
                "FindFolder",
                vec![error(
                    "FindFolder",
                    "ErrorInvalidRequest",
                    "Soft-deleted folders are not kept.",
                )],
            ))
        }
        Some(_) => return Err(invalid("Traversal must be Shallow or Deep.")),
    };
    let page = Page::read(
        op,
        &["IndexedPageFolderView", "FractionalPageFolderView"],
        ctx.limits.max_page,
    )?;
    let parents = folder_ids(op, "ParentFolderIds")?;
    let tree = tree(ctx).await?;
    let restriction = op.child(NS_M, "Restriction");
    let mut messages = Vec::new();
    for p in &parents {
        let parent = match resolve(ctx, &tree, p) {
            Resolved::Found(f) => f,
            Resolved::Error(code, text) => {
                messages.push(error("FindFolder", code, text));
                continue;
            }
        };
        let mut found = below(&tree, parent.id, deep);
        if let Some(r) = restriction {
            match super::restriction::FolderFilter::read(r) {
                Ok(filter) => found.retain(|f| filter.matches(f)),
                Err(why) => {
                    messages.push(error("FindFolder", "ErrorUnsupportedQueryFilter", why));
                    continue;
                }
            }
        }
        let total = found.len();
        let (start, end, last) = page.range(total);
        let mut list = Element::new(NS_T, "Folders");
        for f in &found[start..end] {
            let info = info_of(ctx, f).await?;
            list.push(folder_element(
                ctx,
                &tree,
                f,
                info,
                child_tm(op, "FolderShape"),
            ));
        }
        messages.push(
            success("FindFolder").with(
                Element::new(NS_M, "RootFolder")
                    .with_attr("IndexedPagingOffset", end.to_string())
                    .with_attr("TotalItemsInView", total.to_string())
                    .with_attr(
                        "IncludesLastItemInRange",
                        if last { "true" } else { "false" },
                    )
                    .with(list),
            ),
        );
    }
    Ok(response("FindFolder", messages))
}
