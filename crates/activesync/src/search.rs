//! Search (MS-ASCMD 2.2.1.16): the GAL store through the directory's
//! search (the one GAL search, which CardDAV and later EWS ResolveNames
//! use too), and the Mailbox store by free text in the user's mail
//! folders (IMAP SEARCH TEXT's test). Results come in the Range the device
//! asks for (default 0-99), with the Total.

use outpost_wbxml::Element;

use crate::email::{self, BodyPreference};
use crate::folders::{child_text, Class, Folder};
use crate::sync::{self, Caller};
use crate::{BackendError, EasBackend};

/// Most results in one answer, whatever the Range says.
pub const MAX_RANGE: usize = 100;
/// Most GAL entries a search looks at (the directory's own bound).
pub const GAL_LIMIT: usize = 1000;

/// One GAL entry as Search shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GalHit {
    pub display_name: String,
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub title: Option<String>,
    pub company: Option<String>,
    pub office: Option<String>,
    pub phone: Option<String>,
    pub mobile: Option<String>,
}

/// A mail search's answer from the backend.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailHits {
    /// Matches found (at most the backend's bound).
    pub total: usize,
    /// (folder, message) of the matches in `range`, newest first.
    pub items: Vec<(i64, sync::MailItem)>,
}

/// A mailbox query, read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailQuery {
    pub folders: Vec<i64>,
    pub text: String,
    /// DateReceived GreaterThan / LessThan, Unix seconds.
    pub after: Option<i64>,
    pub before: Option<i64>,
}

fn s(name: &str, v: impl Into<String>) -> Element {
    Element::named("Search", name).with_text(v)
}

fn g(name: &str, v: impl Into<String>) -> Element {
    Element::named("GAL", name).with_text(v)
}

/// "first-last" (inclusive); the default 0-99; `None` when malformed.
pub fn parse_range(r: Option<&str>) -> Option<(usize, usize)> {
    let Some(r) = r else {
        return Some((0, MAX_RANGE - 1));
    };
    let (a, b) = r.trim().split_once('-')?;
    let (a, b): (usize, usize) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
    if b < a {
        return None;
    }
    Some((a, b.min(a + MAX_RANGE - 1)))
}

fn answer(
    store_status: u32,
    results: Vec<Element>,
    range: Option<(usize, usize)>,
    total: Option<usize>,
) -> Element {
    let mut store = Element::named("Search", "Store").with(s("Status", store_status.to_string()));
    for r in results {
        store = store.with(r);
    }
    if let Some((a, b)) = range {
        store = store.with(s("Range", format!("{a}-{b}")));
    }
    if let Some(t) = total {
        store = store.with(s("Total", t.to_string()));
    }
    Element::named("Search", "Search")
        .with(s("Status", "1"))
        .with(Element::named("Search", "Response").with(store))
}

/// A Search answer with only a top-level status (2: protocol error).
fn top_status(status: u32) -> Element {
    Element::named("Search", "Search").with(s("Status", status.to_string()))
}

fn gal_result(h: &GalHit) -> Element {
    let mut p =
        Element::named("Search", "Properties").with(g("DisplayName", h.display_name.clone()));
    let opt = [
        ("Phone", &h.phone),
        ("Office", &h.office),
        ("Title", &h.title),
        ("Company", &h.company),
        ("FirstName", &h.first_name),
        ("LastName", &h.last_name),
        ("MobilePhone", &h.mobile),
    ];
    for (name, v) in opt {
        if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
            p = p.with(g(name, v.clone()));
        }
    }
    if let Some((alias, _)) = h.email.split_once('@') {
        p = p.with(g("Alias", alias));
    }
    p = p.with(g("EmailAddress", h.email.clone()));
    Element::named("Search", "Result").with(p)
}

fn parse_date(e: &Element) -> Option<i64> {
    let v = child_text(e, "Search", "Value")?;
    crate::settings::parse_date(&v)
}

/// Reads a Mailbox store's Query; `None` for one this server does not
/// understand (status 8, too complex) or that names no text.
pub fn parse_mail_query(query: &Element, folders: &[Folder]) -> Option<MailQuery> {
    let and = query.child("Search", "And").unwrap_or(query);
    let mut q = MailQuery::default();
    for c in and.elements() {
        if c.is("AirSync", "Class") {
            if c.text().trim() != "Email" {
                return None;
            }
        } else if c.is("AirSync", "CollectionId") || c.is("Search", "FolderId") {
            let id: i64 = c.text().trim().parse().ok()?;
            let f = folders.iter().find(|f| f.id == id)?;
            if f.class() != Class::Email {
                return None;
            }
            q.folders.push(id);
        } else if c.is("Search", "FreeText") {
            q.text = c.text().trim().to_string();
        } else if c.is("Search", "GreaterThan") && c.child("Email", "DateReceived").is_some() {
            q.after = Some(parse_date(c)?);
        } else if c.is("Search", "LessThan") && c.child("Email", "DateReceived").is_some() {
            q.before = Some(parse_date(c)?);
        } else {
            return None;
        }
    }
    if q.text.is_empty() && q.after.is_none() && q.before.is_none() {
        return None;
    }
    Some(q)
}

/// Answers a Search request.
pub async fn search(
    b: &dyn EasBackend,
    who: &Caller<'_>,
    folders: &[Folder],
    root: &Element,
) -> Result<Element, BackendError> {
    let Some(store) = root
        .child("Search", "Store")
        .filter(|_| root.is("Search", "Search"))
    else {
        return Ok(top_status(2));
    };
    let name = child_text(store, "Search", "Name").unwrap_or_default();
    let options = store.child("Search", "Options");
    let Some(range) = parse_range(
        options
            .and_then(|o| child_text(o, "Search", "Range"))
            .as_deref(),
    ) else {
        return Ok(answer(2, vec![], None, None));
    };
    let Some(query) = store.child("Search", "Query") else {
        return Ok(answer(2, vec![], None, None));
    };
    match name.as_str() {
        "GAL" => {
            let text = query.text().trim().to_string();
            if text.is_empty() {
                return Ok(answer(2, vec![], None, None));
            }
            let hits = b.search_gal(who.principal, &text, GAL_LIMIT).await?;
            let total = hits.len();
            let page: Vec<Element> = hits
                .iter()
                .skip(range.0)
                .take(range.1 - range.0 + 1)
                .map(gal_result)
                .collect();
            if page.is_empty() {
                return Ok(answer(1, vec![], None, Some(total)));
            }
            let shown = (range.0, range.0 + page.len() - 1);
            Ok(answer(1, page, Some(shown), Some(total)))
        }
        "Mailbox" => {
            let Some(mut q) = parse_mail_query(query, folders) else {
                return Ok(answer(8, vec![], None, None));
            };
            let deep = options.is_some_and(|o| o.child("Search", "DeepTraversal").is_some());
            q.folders = scope(folders, std::mem::take(&mut q.folders), deep);
            let prefs: Vec<BodyPreference> =
                options.map(email::body_preferences).unwrap_or_default();
            let hits = b.search_mail(who.principal, &q, range).await?;
            let mut results = Vec::new();
            for (col, m) in &hits.items {
                let Some(data) = sync::full_data(b, who, *col, Class::Email, m, &prefs).await?
                else {
                    continue;
                };
                let mut props = Element::named("Search", "Properties");
                for c in data.elements() {
                    props = props.with(c.clone());
                }
                results.push(
                    Element::named("Search", "Result")
                        .with(Element::named("AirSync", "Class").with_text("Email"))
                        .with(s("LongId", sync::server_id(*col, m.uid)))
                        .with(Element::named("AirSync", "CollectionId").with_text(col.to_string()))
                        .with(props),
                );
            }
            if results.is_empty() {
                return Ok(answer(1, vec![], None, Some(hits.total)));
            }
            let shown = (range.0, range.0 + results.len() - 1);
            Ok(answer(1, results, Some(shown), Some(hits.total)))
        }
        // Document library search is not offered.
        _ => Ok(answer(3, vec![], None, None)),
    }
}

fn f(name: &str, v: impl Into<String>) -> Element {
    Element::named("Find", name).with_text(v)
}

fn find_status(status: u32) -> Element {
    Element::named("Find", "Find").with(f("Status", status.to_string()))
}

/// The folders a mailbox search covers: those named (and below them with
/// DeepTraversal), or every mail folder.
fn scope(folders: &[Folder], named: Vec<i64>, deep: bool) -> Vec<i64> {
    let mut out = named;
    if out.is_empty() {
        return folders
            .iter()
            .filter(|f| f.class() == Class::Email)
            .map(|f| f.id)
            .collect();
    }
    if deep {
        let mut i = 0;
        while i < out.len() {
            let parent = out[i];
            for x in folders
                .iter()
                .filter(|x| x.parent == parent && x.class() == Class::Email)
            {
                if !out.contains(&x.id) {
                    out.push(x.id);
                }
            }
            i += 1;
        }
    }
    out
}

/// Find (MS-ASCMD 2.2.1.2, 16.1): the same two searches as Search, with
/// the answer's properties those of a result list (subject, sender, date,
/// preview...).
pub async fn find(
    b: &dyn EasBackend,
    who: &Caller<'_>,
    folders: &[Folder],
    root: &Element,
) -> Result<Element, BackendError> {
    let exec = root
        .child("Find", "ExecuteSearch")
        .filter(|_| root.is("Find", "Find") && child_text(root, "Find", "SearchId").is_some());
    let Some(exec) = exec else {
        return Ok(find_status(2));
    };
    let (criterion, gal) = match (
        exec.child("Find", "MailBoxSearchCriterion"),
        // MS-ASWBXML spells it GalSearchCriterion (MS-ASCMD: GALSearchCriterion).
        exec.child("Find", "GalSearchCriterion"),
    ) {
        (Some(c), None) => (c, false),
        (None, Some(c)) => (c, true),
        _ => return Ok(find_status(2)),
    };
    let options = criterion.child("Find", "Options");
    let Some(range) = parse_range(
        options
            .and_then(|o| child_text(o, "Find", "Range"))
            .as_deref(),
    ) else {
        return Ok(find_status(2));
    };
    let Some(query) = criterion.child("Find", "Query") else {
        return Ok(find_status(2));
    };
    let mut response = Element::named("Find", "Response")
        .with(Element::named("ItemOperations", "Store").with_text(if gal {
            "GAL"
        } else {
            "Mailbox"
        }))
        .with(f("Status", "1"));
    let (total, results) = if gal {
        // The query as text, or (as some clients send it) in FreeText.
        let text = child_text(query, "Find", "FreeText")
            .unwrap_or_else(|| query.text())
            .trim()
            .to_string();
        if text.is_empty() {
            return Ok(find_status(2));
        }
        let hits = b.search_gal(who.principal, &text, GAL_LIMIT).await?;
        let page: Vec<Element> = hits
            .iter()
            .skip(range.0)
            .take(range.1 - range.0 + 1)
            .map(|h| {
                let p = gal_result(h)
                    .child("Search", "Properties")
                    .cloned()
                    .unwrap_or_else(|| Element::named("Search", "Properties"));
                let mut props = Element::named("Find", "Properties");
                for c in p.elements() {
                    props = props.with(c.clone());
                }
                Element::named("Find", "Result").with(props)
            })
            .collect();
        (hits.len(), page)
    } else {
        let mut q = MailQuery::default();
        let mut named = Vec::new();
        for c in query.elements() {
            if c.is("AirSync", "Class") {
                if c.text().trim() != "Email" {
                    return Ok(find_status(2));
                }
            } else if c.is("AirSync", "CollectionId") {
                match c.text().trim().parse::<i64>().ok().and_then(|id| {
                    folders
                        .iter()
                        .find(|x| x.id == id && x.class() == Class::Email)
                }) {
                    Some(x) => named.push(x.id),
                    // Not one of the user's mail folders: nothing to find.
                    None => return Ok(find_status(2)),
                }
            } else if c.is("Find", "FreeText") {
                q.text = c.text().trim().to_string();
            }
        }
        if q.text.is_empty() {
            return Ok(find_status(2));
        }
        let deep = options.is_some_and(|o| o.child("Find", "DeepTraversal").is_some());
        q.folders = scope(folders, named, deep);
        let hits = b.search_mail(who.principal, &q, range).await?;
        let mut page = Vec::new();
        for (col, m) in &hits.items {
            let prefs = [BodyPreference {
                body_type: 1,
                truncation_size: Some(0),
                all_or_none: false,
                preview: Some(255),
            }];
            let Some(data) = sync::full_data(b, who, *col, Class::Email, m, &prefs).await? else {
                continue;
            };
            let mut props = Element::named("Find", "Properties");
            for c in data.elements() {
                if c.is("Email", "Subject")
                    || c.is("Email", "DateReceived")
                    || c.is("Email", "DisplayTo")
                    || c.is("Email", "Importance")
                    || c.is("Email", "Read")
                    || c.is("Email", "From")
                {
                    props = props.with(c.clone());
                }
            }
            if let Some(p) = data
                .child("AirSyncBase", "Body")
                .and_then(|body| child_text(body, "AirSyncBase", "Preview"))
            {
                props = props.with(f("Preview", p));
            }
            let has = data.child("AirSyncBase", "Attachments").is_some();
            props = props.with(f("HasAttachments", if has { "1" } else { "0" }));
            page.push(
                Element::named("Find", "Result")
                    .with(Element::named("AirSync", "Class").with_text("Email"))
                    .with(
                        Element::named("AirSync", "ServerId")
                            .with_text(sync::server_id(*col, m.uid)),
                    )
                    .with(Element::named("AirSync", "CollectionId").with_text(col.to_string()))
                    .with(props),
            );
        }
        (hits.total, page)
    };
    let n = results.len();
    for r in results {
        response = response.with(r);
    }
    if n > 0 {
        response = response.with(f("Range", format!("{}-{}", range.0, range.0 + n - 1)));
    }
    response = response.with(f("Total", total.to_string()));
    Ok(Element::named("Find", "Find")
        .with(f("Status", "1"))
        .with(response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None), Some((0, 99)));
        assert_eq!(parse_range(Some("0-9")), Some((0, 9)));
        assert_eq!(parse_range(Some("10-5000")), Some((10, 109)));
        assert_eq!(parse_range(Some("9-0")), None);
        assert_eq!(parse_range(Some("x")), None);
    }

    #[test]
    fn mail_queries() {
        let folders = vec![
            Folder {
                id: 3,
                parent: 0,
                name: "INBOX".into(),
                folder_type: 2,
            },
            Folder {
                id: 9,
                parent: 0,
                name: "Personal Calendar".into(),
                folder_type: 8,
            },
        ];
        let q = Element::named("Search", "Query").with(
            Element::named("Search", "And")
                .with(Element::named("AirSync", "Class").with_text("Email"))
                .with(Element::named("AirSync", "CollectionId").with_text("3"))
                .with(Element::named("Search", "FreeText").with_text("invoice")),
        );
        let m = parse_mail_query(&q, &folders).unwrap();
        assert_eq!((m.folders, m.text.as_str()), (vec![3], "invoice"));
        // A calendar, another user's folder, no text: not a mail query.
        for bad in ["9", "77"] {
            let q = Element::named("Search", "Query").with(
                Element::named("Search", "And")
                    .with(Element::named("AirSync", "CollectionId").with_text(bad))
                    .with(Element::named("Search", "FreeText").with_text("x")),
            );
            assert!(parse_mail_query(&q, &folders).is_none());
        }
        let q = Element::named("Search", "Query").with(
            Element::named("Search", "And")
                .with(Element::named("AirSync", "Class").with_text("Email")),
        );
        assert!(parse_mail_query(&q, &folders).is_none());
    }

    #[test]
    fn gal_results_carry_the_fields() {
        let r = gal_result(&GalHit {
            display_name: "Ann Smith".into(),
            email: "ann@example.test".into(),
            last_name: Some("Smith".into()),
            phone: Some(String::new()),
            ..GalHit::default()
        });
        let p = r.child("Search", "Properties").unwrap();
        assert_eq!(child_text(p, "GAL", "Alias").as_deref(), Some("ann"));
        assert_eq!(child_text(p, "GAL", "LastName").as_deref(), Some("Smith"));
        assert!(p.child("GAL", "Phone").is_none());
    }
}
