//! What the global address list shows of a principal (title, department,
//! company, office, phones, given name and surname), and the indexed
//! prefix search over names and addresses that GAL clients use
//! (ActiveSync GAL search, EWS ResolveNames, CardDAV addressbook-query, the
//! web UI). The policy — which principals are listed, how LDAP entries are
//! merged in — is the directory crate's; this module reads and writes rows.
//!
//! Search terms live in `directory_terms` (see migration 0010): each
//! lower-cased address, display name, given name, surname, title,
//! department, company and office, each word of those, and the digits of
//! the phone numbers ([`phone_terms`]), as UTF-8 bytes, so a prefix match
//! is one index range scan.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::{Principal, PrincipalKind, Result, Store, StoreError, Touched};

/// Longest value kept for one attribute, in bytes.
pub const ATTR_MAX: usize = 256;

/// Directory attributes of a person or group beyond name and addresses.
/// `None`: not set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactAttrs {
    pub given_name: Option<String>,
    pub surname: Option<String>,
    pub title: Option<String>,
    pub department: Option<String>,
    pub company: Option<String>,
    /// Office location (AD `physicalDeliveryOfficeName`).
    pub office: Option<String>,
    /// Work telephone.
    pub phone: Option<String>,
    pub mobile: Option<String>,
}

impl ContactAttrs {
    /// (column, value) pairs in table order.
    fn columns(&self) -> [(&'static str, &Option<String>); 8] {
        [
            ("given_name", &self.given_name),
            ("surname", &self.surname),
            ("title", &self.title),
            ("department", &self.department),
            ("company", &self.company),
            ("office", &self.office),
            ("phone", &self.phone),
            ("mobile", &self.mobile),
        ]
    }

    /// Trims every value, turns empty ones into `None`, and refuses values
    /// that are too long or hold control characters (they end up in vCards
    /// and protocol answers).
    pub fn normalized(self) -> Result<ContactAttrs> {
        let clean = |name: &str, v: Option<String>| -> Result<Option<String>> {
            let Some(v) = v else { return Ok(None) };
            let v = v.trim().to_string();
            if v.is_empty() {
                return Ok(None);
            }
            if v.len() > ATTR_MAX {
                return Err(StoreError::Invalid(format!(
                    "{name} is longer than {ATTR_MAX} bytes"
                )));
            }
            if v.chars().any(char::is_control) {
                return Err(StoreError::Invalid(format!(
                    "{name} must not contain control characters"
                )));
            }
            Ok(Some(v))
        };
        Ok(ContactAttrs {
            given_name: clean("given name", self.given_name)?,
            surname: clean("surname", self.surname)?,
            title: clean("title", self.title)?,
            department: clean("department", self.department)?,
            company: clean("company", self.company)?,
            office: clean("office", self.office)?,
            phone: clean("phone", self.phone)?,
            mobile: clean("mobile", self.mobile)?,
        })
    }

    /// `self` with every value `other` sets replaced (a partial update).
    pub fn merged(mut self, other: ContactAttrs) -> ContactAttrs {
        let pick = |a: &mut Option<String>, b: Option<String>| {
            if b.is_some() {
                *a = b;
            }
        };
        pick(&mut self.given_name, other.given_name);
        pick(&mut self.surname, other.surname);
        pick(&mut self.title, other.title);
        pick(&mut self.department, other.department);
        pick(&mut self.company, other.company);
        pick(&mut self.office, other.office);
        pick(&mut self.phone, other.phone);
        pick(&mut self.mobile, other.mobile);
        self
    }
}

/// A principal as the directory lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryRow {
    pub principal: Principal,
    pub attrs: ContactAttrs,
    /// Every address, primary first.
    pub addresses: Vec<String>,
    /// A group's member addresses (empty for users).
    pub members: Vec<String>,
}

const ATTR_COLS: &str =
    "p.given_name, p.surname, p.title, p.department, p.company, p.office, p.phone, p.mobile";

fn attrs_row(r: &AnyRow) -> Result<ContactAttrs> {
    Ok(ContactAttrs {
        given_name: r.try_get("given_name")?,
        surname: r.try_get("surname")?,
        title: r.try_get("title")?,
        department: r.try_get("department")?,
        company: r.try_get("company")?,
        office: r.try_get("office")?,
        phone: r.try_get("phone")?,
        mobile: r.try_get("mobile")?,
    })
}

/// The search terms of a principal: every value lower-cased, plus each of
/// its words (split at spaces and punctuation other than those inside
/// addresses), each at most [`ATTR_MAX`] bytes.
pub fn search_terms<'a>(values: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |t: &str| {
        let t = t.trim();
        if !t.is_empty() && t.len() <= ATTR_MAX && !out.iter().any(|o| o == t) {
            out.push(t.to_string());
        }
    };
    for v in values {
        let v = v.trim().to_lowercase();
        push(&v);
        if !v.contains('@') {
            for w in v.split(|c: char| c.is_whitespace() || ",;()\"/-".contains(c)) {
                push(w);
            }
        }
    }
    out
}

/// The search terms of a telephone number: its digits, and the digits
/// from the start of each later group (`+1 555 0100` gives `15550100`,
/// `5550100` and `0100`), so a number is found by its start or by the local
/// part, however it is spaced. Empty for a value without digits.
pub fn phone_terms(number: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut starts = vec![0];
    let chars: Vec<char> = number.chars().collect();
    for i in 1..chars.len() {
        if chars[i].is_ascii_digit() && !chars[i - 1].is_ascii_digit() {
            starts.push(i);
        }
    }
    for s in starts {
        let d: String = chars[s..].iter().filter(|c| c.is_ascii_digit()).collect();
        if !d.is_empty() && d.len() <= ATTR_MAX && !out.contains(&d) {
            out.push(d);
        }
    }
    out
}

/// A query that can only be (part of) a telephone number: digits with
/// the usual separators. It is searched by its digits (see
/// [`phone_terms`]).
pub fn phone_query(q: &str) -> Option<String> {
    let q = q.trim();
    let digits: String = q.chars().filter(|c| c.is_ascii_digit()).collect();
    let phone_chars = q
        .chars()
        .all(|c| c.is_ascii_digit() || " +-./()".contains(c));
    (phone_chars && !digits.is_empty()).then_some(digits)
}

/// The exclusive upper end of the byte range of strings starting with
/// `prefix`: UTF-8 never contains 0xFF, so `prefix || 0xFF` is above every
/// extension of it.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    end.push(0xff);
    end
}

/// The directory search: principals of a source ($1) with a term in the
/// byte range [$2, $3), at most $4. The range is a scan of
/// `directory_terms`' primary key; public so tests can check the plan.
pub const SEARCH_SQL: &str = "SELECT p.id FROM \
     (SELECT DISTINCT t.principal_id FROM directory_terms t WHERE t.term >= $2 AND t.term < $3) m \
     JOIN principals p ON p.id = m.principal_id WHERE p.source = $1 \
     AND EXISTS (SELECT 1 FROM addresses a WHERE a.principal_id = p.id) \
     ORDER BY LOWER(p.display_name), p.id LIMIT $4";

/// `settings` row: which terms `reindex_tx` computes. Principals indexed
/// under an older version are indexed again at start (2: title,
/// department, company, office and phone numbers were added).
const TERMS_VERSION_KEY: &str = "directory_terms_version";
const TERMS_VERSION: i64 = 2;

/// `settings` row counting changes to the directory's tables. Each write
/// announces the new count on [`crate::notify::DIRECTORY`] (in this process,
/// and to other nodes through PostgreSQL's NOTIFY); a server on SQLite also
/// reads it to notice changes another process (the CLI) made.
const DIRECTORY_VERSION: &str = "directory_version";

/// Counts one change to principals, addresses or group members (in the
/// writing transaction) and announces the new count when it commits.
pub(crate) async fn bump_directory_version(c: &mut AnyConnection, t: &mut Touched) -> Result<()> {
    let v: String = sqlx::query_scalar(
        "INSERT INTO settings (name, value) VALUES ($1, '1') ON CONFLICT (name) \
         DO UPDATE SET value = CAST(CAST(settings.value AS BIGINT) + 1 AS TEXT) RETURNING value",
    )
    .bind(DIRECTORY_VERSION)
    .fetch_one(&mut *c)
    .await?;
    if let Ok(v) = v.parse() {
        t.add(crate::notify::DIRECTORY, v);
    }
    Ok(())
}

pub(crate) async fn directory_version_in(pool: &sqlx::AnyPool) -> Result<i64> {
    let v: Option<String> = sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
        .bind(DIRECTORY_VERSION)
        .fetch_optional(pool)
        .await?;
    Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// Recomputes a principal's search terms from its row and addresses (and
/// counts a directory change).
pub(crate) async fn reindex_tx(
    c: &mut AnyConnection,
    t: &mut Touched,
    principal: i64,
) -> Result<()> {
    bump_directory_version(c, t).await?;
    sqlx::query("DELETE FROM directory_terms WHERE principal_id = $1")
        .bind(principal)
        .execute(&mut *c)
        .await?;
    let row = sqlx::query(
        "SELECT p.display_name, p.given_name, p.surname, p.title, p.department, p.company, \
         p.office, p.phone, p.mobile FROM principals p WHERE p.id = $1",
    )
    .bind(principal)
    .fetch_optional(&mut *c)
    .await?;
    let Some(row) = row else { return Ok(()) };
    let mut values: Vec<String> = vec![row.try_get("display_name")?];
    for col in [
        "given_name",
        "surname",
        "title",
        "department",
        "company",
        "office",
    ] {
        values.extend(row.try_get::<Option<String>, _>(col)?);
    }
    let mut phones: Vec<String> = Vec::new();
    for col in ["phone", "mobile"] {
        if let Some(p) = row.try_get::<Option<String>, _>(col)? {
            phones.extend(phone_terms(&p));
        }
    }
    let addrs: Vec<String> =
        sqlx::query_scalar("SELECT address FROM addresses WHERE principal_id = $1")
            .bind(principal)
            .fetch_all(&mut *c)
            .await?;
    values.extend(addrs);
    let mut terms = search_terms(values.iter().map(String::as_str));
    for p in phones {
        if !terms.contains(&p) {
            terms.push(p);
        }
    }
    for t in terms {
        sqlx::query("INSERT INTO directory_terms (term, principal_id) VALUES ($1, $2)")
            .bind(t.into_bytes())
            .bind(principal)
            .execute(&mut *c)
            .await?;
    }
    Ok(())
}

impl Store {
    /// A number that grows with every change to principals, addresses and
    /// group members (0 before the first). Cheap to read: a running server
    /// compares it to notice changes another process made.
    pub async fn directory_version(&self) -> Result<i64> {
        directory_version_in(self.pool()).await
    }

    /// Changes whenever a write to the built-in directory commits, with
    /// the new [`Store::directory_version`]: writes of this process at
    /// once, and on PostgreSQL those of every other process and node on
    /// the database (LISTEN/NOTIFY, as for collections). On SQLite another
    /// process's writes are not announced; read the version to see them.
    pub fn directory_changes(&self) -> tokio::sync::watch::Receiver<i64> {
        self.subscribe(crate::notify::DIRECTORY)
    }

    /// The directory attributes of a principal.
    pub async fn contact_attrs(&self, principal: i64) -> Result<ContactAttrs> {
        let q = format!("SELECT {ATTR_COLS} FROM principals p WHERE p.id = $1");
        let r = sqlx::query(&q)
            .bind(principal)
            .fetch_optional(self.pool())
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("principal {principal}")))?;
        attrs_row(&r)
    }

    /// Replaces every directory attribute of a principal (and its search
    /// terms) in one transaction.
    pub async fn set_contact_attrs(&self, principal: i64, attrs: ContactAttrs) -> Result<()> {
        let attrs = attrs.normalized()?;
        self.write(move |c, t| {
            Box::pin(async move {
                let sets: Vec<String> = attrs
                    .columns()
                    .iter()
                    .enumerate()
                    .map(|(i, (col, _))| format!("{col} = ${}", i + 1))
                    .collect();
                let q = format!("UPDATE principals SET {} WHERE id = $9", sets.join(", "));
                let mut query = sqlx::query(&q);
                for (_, v) in attrs.columns() {
                    query = query.bind(v.clone());
                }
                let n = query
                    .bind(principal)
                    .execute(&mut *c)
                    .await?
                    .rows_affected();
                if n == 0 {
                    return Err(StoreError::NotFound(format!("principal {principal}")));
                }
                reindex_tx(c, t, principal).await
            })
        })
        .await
    }

    /// Ids of principals of `source` (users and groups with an address)
    /// that have a search term starting with `prefix` (compared
    /// lower-cased; a telephone-like prefix by its digits), ordered by display name, at most `limit`. An index
    /// range scan: the directory is never read as a whole.
    pub async fn search_directory(
        &self,
        source: &str,
        prefix: &str,
        limit: usize,
    ) -> Result<Vec<i64>> {
        let p = match phone_query(prefix) {
            Some(digits) => digits,
            None => prefix.trim().to_lowercase(),
        }
        .into_bytes();
        if p.len() > ATTR_MAX {
            return Ok(Vec::new());
        }
        let end = prefix_end(&p);
        let ids = sqlx::query_scalar(SEARCH_SQL)
            .bind(source)
            .bind(p)
            .bind(end)
            .bind(limit.min(i64::MAX as usize) as i64)
            .fetch_all(self.pool())
            .await?;
        Ok(ids)
    }

    /// The directory rows of the given principals, in the given order
    /// (ids that do not exist are left out).
    pub async fn directory_rows(&self, ids: &[i64]) -> Result<Vec<DirectoryRow>> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let list = chunk
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            let mut rows = self.rows_where(&format!("p.id IN ({list})")).await?;
            for id in chunk {
                if let Some(i) = rows.iter().position(|r| r.principal.id == *id) {
                    out.push(rows.swap_remove(i));
                }
            }
        }
        Ok(out)
    }

    /// Every user and group of `source` that has an address, ordered by
    /// display name: the whole address list.
    pub async fn directory_listing(&self, source: &str) -> Result<Vec<DirectoryRow>> {
        let src = source.replace('\'', "''");
        let mut rows = self.rows_where(&format!("p.source = '{src}'")).await?;
        rows.retain(|r| !r.addresses.is_empty());
        rows.sort_by(|a, b| {
            a.principal
                .display_name
                .to_lowercase()
                .cmp(&b.principal.display_name.to_lowercase())
                .then(a.principal.id.cmp(&b.principal.id))
        });
        Ok(rows)
    }

    /// Principals matching `cond` (a condition on `p` built from trusted
    /// parts only) with attributes, addresses and members, in three
    /// queries.
    async fn rows_where(&self, cond: &str) -> Result<Vec<DirectoryRow>> {
        let q = format!(
            "SELECT p.id, p.kind, p.display_name, p.password_hash, p.source, p.external_id, \
             p.quota_bytes, p.disabled, {ATTR_COLS} FROM principals p WHERE {cond}"
        );
        let rows = sqlx::query(&q).fetch_all(self.pool()).await?;
        let mut out: Vec<DirectoryRow> = Vec::with_capacity(rows.len());
        let mut index = std::collections::HashMap::new();
        for r in &rows {
            let kind: String = r.try_get("kind")?;
            let principal = Principal {
                id: r.try_get("id")?,
                kind: if kind == "group" {
                    PrincipalKind::Group
                } else {
                    PrincipalKind::User
                },
                display_name: r.try_get("display_name")?,
                password_hash: r.try_get("password_hash")?,
                source: r.try_get("source")?,
                external_id: r.try_get("external_id")?,
                quota_bytes: r.try_get("quota_bytes")?,
                disabled: r.try_get::<i64, _>("disabled")? != 0,
                address: None,
            };
            index.insert(principal.id, out.len());
            out.push(DirectoryRow {
                principal,
                attrs: attrs_row(r)?,
                addresses: Vec::new(),
                members: Vec::new(),
            });
        }
        let q = format!(
            "SELECT a.principal_id, a.address, a.is_primary FROM addresses a JOIN principals p ON p.id = a.principal_id \
             WHERE {cond} ORDER BY a.principal_id, a.is_primary DESC, a.address"
        );
        for r in sqlx::query(&q).fetch_all(self.pool()).await? {
            let id: i64 = r.try_get("principal_id")?;
            if let Some(&i) = index.get(&id) {
                let a: String = r.try_get("address")?;
                if r.try_get::<i64, _>("is_primary")? != 0 {
                    out[i].principal.address = Some(a.clone());
                }
                out[i].addresses.push(a);
            }
        }
        let q = format!(
            "SELECT m.group_id, m.member FROM group_members m JOIN principals p ON p.id = m.group_id \
             WHERE {cond} ORDER BY m.group_id, m.member"
        );
        for r in sqlx::query(&q).fetch_all(self.pool()).await? {
            let id: i64 = r.try_get("group_id")?;
            if let Some(&i) = index.get(&id) {
                out[i].members.push(r.try_get("member")?);
            }
        }
        Ok(out)
    }

    /// Computes search terms for principals that have none (rows written
    /// before migration 10). Returns how many were indexed.
    pub async fn backfill_directory_terms(&self) -> Result<usize> {
        self.write(|c, t| {
            Box::pin(async move {
                let have: Option<String> =
                    sqlx::query_scalar("SELECT value FROM settings WHERE name = $1")
                        .bind(TERMS_VERSION_KEY)
                        .fetch_optional(&mut *c)
                        .await?;
                let current = have.and_then(|v| v.parse::<i64>().ok()) == Some(TERMS_VERSION);
                let ids: Vec<i64> = if current {
                    sqlx::query_scalar(
                        "SELECT p.id FROM principals p WHERE NOT EXISTS \
                         (SELECT 1 FROM directory_terms t WHERE t.principal_id = p.id)",
                    )
                    .fetch_all(&mut *c)
                    .await?
                } else {
                    sqlx::query_scalar("SELECT id FROM principals")
                        .fetch_all(&mut *c)
                        .await?
                };
                let mut n = 0;
                for id in ids {
                    reindex_tx(c, t, id).await?;
                    n += 1;
                }
                if !current {
                    sqlx::query(
                        "INSERT INTO settings (name, value) VALUES ($1, $2) ON CONFLICT (name) \
                         DO UPDATE SET value = excluded.value",
                    )
                    .bind(TERMS_VERSION_KEY)
                    .bind(TERMS_VERSION.to_string())
                    .execute(&mut *c)
                    .await?;
                }
                Ok(n)
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_are_lower_case_values_and_words() {
        let t = search_terms(["Anne-Marie O'Neil", "ANNE@Example.org", "  "]);
        assert_eq!(
            t,
            [
                "anne-marie o'neil",
                "anne",
                "marie",
                "o'neil",
                "anne@example.org"
            ]
        );
        assert!(search_terms(["Émile Zola"]).contains(&"émile".to_string()));
    }

    #[test]
    fn prefix_range_covers_exactly_the_extensions() {
        let p = "ann".as_bytes();
        let end = prefix_end(p);
        for s in ["ann", "anne", "ann\u{10ffff}", "annü"] {
            assert!(s.as_bytes() >= p && s.as_bytes() < end.as_slice(), "{s}");
        }
        for s in ["anm", "ano", "an", "b"] {
            assert!(!(s.as_bytes() >= p && s.as_bytes() < end.as_slice()), "{s}");
        }
    }

    #[test]
    fn attrs_are_checked() {
        let a = ContactAttrs {
            title: Some("  CTO ".into()),
            phone: Some("".into()),
            ..Default::default()
        }
        .normalized()
        .unwrap();
        assert_eq!(a.title.as_deref(), Some("CTO"));
        assert_eq!(a.phone, None);
        let bad = ContactAttrs {
            office: Some("a\nb".into()),
            ..Default::default()
        };
        assert!(bad.normalized().is_err());
        let long = ContactAttrs {
            company: Some("x".repeat(ATTR_MAX + 1)),
            ..Default::default()
        };
        assert!(long.normalized().is_err());
    }
}
