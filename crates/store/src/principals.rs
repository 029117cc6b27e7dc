//! Domains, principals (users and groups), their addresses and group
//! members: the tables behind the built-in directory. The directory crate
//! holds the policy (resolution, group expansion, passwords); this module
//! only reads and writes rows.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use crate::{now, Result, Store, StoreError, Touched};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    pub id: i64,
    pub name: String,
    pub catchall: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    User,
    Group,
}

impl PrincipalKind {
    fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::User => "user",
            PrincipalKind::Group => "group",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub id: i64,
    pub kind: PrincipalKind,
    pub display_name: String,
    pub password_hash: Option<String>,
    pub source: String,
    pub external_id: Option<String>,
    pub quota_bytes: i64,
    pub disabled: bool,
    /// The primary address, if the principal has one.
    pub address: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewPrincipal {
    pub kind: PrincipalKind,
    pub address: String,
    pub display_name: String,
    pub password_hash: Option<String>,
    pub source: String,
    pub external_id: Option<String>,
    pub quota_bytes: i64,
}

/// The mailboxes every user gets, with their special-use roles (RFC 6154).
pub const DEFAULT_MAILBOXES: &[(&str, Option<&str>)] = &[
    ("INBOX", None),
    ("Sent", Some("\\Sent")),
    ("Drafts", Some("\\Drafts")),
    ("Trash", Some("\\Trash")),
    ("Junk", Some("\\Junk")),
    ("Archive", Some("\\Archive")),
];

const PRINCIPAL_COLS: &str = "p.id, p.kind, p.display_name, p.password_hash, p.source, p.external_id, \
     p.quota_bytes, p.disabled, (SELECT a.address FROM addresses a WHERE a.principal_id = p.id AND a.is_primary = 1) AS address";

fn principal_row(r: &AnyRow) -> Result<Principal> {
    let kind: String = r.try_get("kind")?;
    Ok(Principal {
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
        address: r.try_get("address")?,
    })
}

/// Lower-cases the domain and keeps the local part as given but compared
/// case-insensitively: addresses are stored lower-case.
pub fn normalize_address(a: &str) -> String {
    a.trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .to_lowercase()
}

pub fn domain_of(a: &str) -> Option<&str> {
    a.rsplit_once('@').map(|(_, d)| d)
}

impl Store {
    pub async fn add_domain(&self, name: &str) -> Result<Domain> {
        let name = name.trim().trim_end_matches('.').to_lowercase();
        if name.is_empty()
            || !name.contains('.') && name != "localhost"
            || name.contains(['@', ' ', '/'])
        {
            return Err(StoreError::Invalid(format!(
                "{name:?} is not a domain name"
            )));
        }
        self.write(move |c, _| {
            Box::pin(async move {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO domains (name, created_at) VALUES ($1, $2) RETURNING id",
                )
                .bind(&name)
                .bind(now())
                .fetch_one(&mut *c)
                .await
                .map_err(|e| match StoreError::from(e) {
                    StoreError::Exists(_) => StoreError::Exists(format!("domain {name}")),
                    e => e,
                })?;
                Ok(Domain {
                    id,
                    name,
                    catchall: None,
                })
            })
        })
        .await
    }

    pub async fn domains(&self) -> Result<Vec<Domain>> {
        let rows = sqlx::query("SELECT id, name, catchall FROM domains ORDER BY name")
            .fetch_all(self.pool())
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Domain {
                    id: r.try_get("id")?,
                    name: r.try_get("name")?,
                    catchall: r.try_get("catchall")?,
                })
            })
            .collect()
    }

    pub async fn domain(&self, name: &str) -> Result<Option<Domain>> {
        let r = sqlx::query("SELECT id, name, catchall FROM domains WHERE name = $1")
            .bind(name.to_lowercase())
            .fetch_optional(self.pool())
            .await?;
        r.map(|r| {
            Ok(Domain {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                catchall: r.try_get("catchall")?,
            })
        })
        .transpose()
    }

    /// Removes a domain that has no addresses left.
    pub async fn remove_domain(&self, name: &str) -> Result<()> {
        let name = name.to_lowercase();
        self.write(move |c, t| {
            Box::pin(async move {
                let id: Option<i64> = sqlx::query_scalar("SELECT id FROM domains WHERE name = $1")
                    .bind(&name)
                    .fetch_optional(&mut *c)
                    .await?;
                let id = id.ok_or_else(|| StoreError::NotFound(format!("domain {name}")))?;
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM addresses WHERE domain_id = $1")
                    .bind(id)
                    .fetch_one(&mut *c)
                    .await?;
                if n > 0 {
                    return Err(StoreError::Invalid(format!(
                        "domain {name} still has {n} address(es); remove its users, aliases and groups first"
                    )));
                }
                // The domain's Global Address List goes with it.
                let gal: Option<i64> = sqlx::query_scalar("SELECT id FROM principals WHERE gal_domain_id = $1")
                    .bind(id)
                    .fetch_optional(&mut *c)
                    .await?;
                if let Some(gal) = gal {
                    remove_principal_tx(c, t, gal).await?;
                }
                sqlx::query("DELETE FROM domains WHERE id = $1").bind(id).execute(&mut *c).await?;
                Ok(())
            })
        })
        .await
    }

    pub async fn set_catchall(&self, domain: &str, target: Option<String>) -> Result<()> {
        let domain = domain.to_lowercase();
        self.write(move |c, _| {
            Box::pin(async move {
                let n = sqlx::query("UPDATE domains SET catchall = $1 WHERE name = $2")
                    .bind(target.map(|t| normalize_address(&t)))
                    .bind(&domain)
                    .execute(&mut *c)
                    .await?
                    .rows_affected();
                if n == 0 {
                    return Err(StoreError::NotFound(format!("domain {domain}")));
                }
                Ok(())
            })
        })
        .await
    }

    /// Creates a user or group with its primary address; a user also gets
    /// the default mailboxes. The address's domain must be hosted.
    pub async fn create_principal(&self, p: NewPrincipal) -> Result<Principal> {
        let address = normalize_address(&p.address);
        let domain = domain_of(&address)
            .ok_or_else(|| StoreError::Invalid(format!("{address:?} is not an address")))?;
        let domain = domain.to_string();
        self.write(move |c, t| {
            Box::pin(async move {
                let domain_id = domain_id(c, &domain).await?;
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO principals (kind, display_name, password_hash, source, external_id, quota_bytes, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
                )
                .bind(p.kind.as_str())
                .bind(&p.display_name)
                .bind(&p.password_hash)
                .bind(&p.source)
                .bind(&p.external_id)
                .bind(p.quota_bytes)
                .bind(now())
                .fetch_one(&mut *c)
                .await?;
                insert_address(c, id, domain_id, &address, true).await?;
                if p.kind == PrincipalKind::User {
                    ensure_default_mailboxes_tx(c, t, id).await?;
                }
                crate::gal::reindex_tx(c, t, id).await?;
                Ok(Principal {
                    id,
                    kind: p.kind,
                    display_name: p.display_name,
                    password_hash: p.password_hash,
                    source: p.source,
                    external_id: p.external_id,
                    quota_bytes: p.quota_bytes,
                    disabled: false,
                    address: Some(address),
                })
            })
        })
        .await
    }

    /// Creates any of the default mailboxes the user lacks (first use of a
    /// directory-sourced user, or repair).
    pub async fn ensure_default_mailboxes(&self, principal: i64) -> Result<()> {
        self.write(move |c, t| {
            Box::pin(async move { ensure_default_mailboxes_tx(c, t, principal).await })
        })
        .await
    }

    pub async fn principal(&self, id: i64) -> Result<Option<Principal>> {
        let q = format!("SELECT {PRINCIPAL_COLS} FROM principals p WHERE p.id = $1");
        sqlx::query(&q)
            .bind(id)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(principal_row)
            .transpose()
    }

    pub async fn principal_by_address(&self, address: &str) -> Result<Option<Principal>> {
        let q = format!(
            "SELECT {PRINCIPAL_COLS} FROM principals p JOIN addresses x ON x.principal_id = p.id WHERE x.address = $1"
        );
        sqlx::query(&q)
            .bind(normalize_address(address))
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(principal_row)
            .transpose()
    }

    pub async fn principal_by_external_id(
        &self,
        source: &str,
        external_id: &str,
    ) -> Result<Option<Principal>> {
        let q = format!(
            "SELECT {PRINCIPAL_COLS} FROM principals p WHERE p.source = $1 AND p.external_id = $2"
        );
        sqlx::query(&q)
            .bind(source)
            .bind(external_id)
            .fetch_optional(self.pool())
            .await?
            .as_ref()
            .map(principal_row)
            .transpose()
    }

    /// The principal standing for an entry of an external directory (an
    /// LDAP user or group), created on first use (a user with its default
    /// mailboxes). Keyed by `(source, external_id)` — `objectGUID` or
    /// `entryUUID` — so an entry renamed in the directory keeps its
    /// mailboxes. The display name follows the directory. Such principals
    /// have no rows in `addresses`: their addresses live in the directory;
    /// local aliases may still point at them.
    pub async fn ensure_external_principal(
        &self,
        source: &str,
        external_id: &str,
        kind: PrincipalKind,
        display_name: &str,
    ) -> Result<i64> {
        let (source, external_id, name) = (
            source.to_string(),
            external_id.to_string(),
            display_name.to_string(),
        );
        self.write(move |c, t| {
            Box::pin(async move {
                let row = sqlx::query(
                    "SELECT id, display_name FROM principals WHERE source = $1 AND external_id = $2",
                )
                .bind(&source)
                .bind(&external_id)
                .fetch_optional(&mut *c)
                .await?;
                if let Some(r) = row {
                    let id: i64 = r.try_get("id")?;
                    let old: String = r.try_get("display_name")?;
                    if old != name {
                        sqlx::query("UPDATE principals SET display_name = $1 WHERE id = $2")
                            .bind(&name)
                            .bind(id)
                            .execute(&mut *c)
                            .await?;
                        crate::gal::reindex_tx(c, t, id).await?;
                    }
                    return Ok(id);
                }
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO principals (kind, display_name, password_hash, source, external_id, quota_bytes, created_at) \
                     VALUES ($1, $2, NULL, $3, $4, 0, $5) RETURNING id",
                )
                .bind(kind.as_str())
                .bind(&name)
                .bind(&source)
                .bind(&external_id)
                .bind(now())
                .fetch_one(&mut *c)
                .await?;
                if kind == PrincipalKind::User {
                    ensure_default_mailboxes_tx(c, t, id).await?;
                }
                crate::gal::reindex_tx(c, t, id).await?;
                Ok(id)
            })
        })
        .await
    }

    pub async fn principals(&self, kind: PrincipalKind) -> Result<Vec<Principal>> {
        let q =
            format!("SELECT {PRINCIPAL_COLS} FROM principals p WHERE p.kind = $1 AND p.gal_domain_id IS NULL ORDER BY address");
        sqlx::query(&q)
            .bind(kind.as_str())
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(principal_row)
            .collect()
    }

    /// Removes a principal with its addresses, mailboxes and messages
    /// (message blobs are released for the sweeper).
    pub async fn remove_principal(&self, id: i64) -> Result<()> {
        self.write(move |c, t| Box::pin(async move { remove_principal_tx(c, t, id).await }))
            .await
    }

    pub async fn set_password_hash(&self, id: i64, hash: String) -> Result<()> {
        self.update_principal(id, "password_hash", Some(hash)).await
    }

    pub async fn set_display_name(&self, id: i64, name: String) -> Result<()> {
        self.update_principal(id, "display_name", Some(name)).await
    }

    async fn update_principal(
        &self,
        id: i64,
        column: &'static str,
        value: Option<String>,
    ) -> Result<()> {
        self.write(move |c, t| {
            Box::pin(async move {
                let q = format!("UPDATE principals SET {column} = $1 WHERE id = $2");
                let n = sqlx::query(&q)
                    .bind(value)
                    .bind(id)
                    .execute(&mut *c)
                    .await?
                    .rows_affected();
                if n == 0 {
                    return Err(StoreError::NotFound(format!("principal {id}")));
                }
                if column == "display_name" {
                    crate::gal::reindex_tx(c, t, id).await?;
                }
                Ok(())
            })
        })
        .await
    }

    pub async fn set_disabled(&self, id: i64, disabled: bool) -> Result<()> {
        self.write(move |c, _| {
            Box::pin(async move {
                sqlx::query("UPDATE principals SET disabled = $1 WHERE id = $2")
                    .bind(disabled as i64)
                    .bind(id)
                    .execute(&mut *c)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    /// Adds a secondary address (an alias) to a principal.
    pub async fn add_address(&self, principal: i64, address: &str) -> Result<()> {
        let address = normalize_address(address);
        let domain = domain_of(&address)
            .ok_or_else(|| StoreError::Invalid(format!("{address:?} is not an address")))?
            .to_string();
        self.write(move |c, t| {
            Box::pin(async move {
                let domain_id = domain_id(c, &domain).await?;
                insert_address(c, principal, domain_id, &address, false).await?;
                crate::gal::reindex_tx(c, t, principal).await
            })
        })
        .await
    }

    /// Removes a secondary address. The primary address goes only with its principal.
    pub async fn remove_address(&self, address: &str) -> Result<()> {
        let address = normalize_address(address);
        self.write(move |c, t| {
            Box::pin(async move {
                let row = sqlx::query(
                    "SELECT is_primary, principal_id FROM addresses WHERE address = $1",
                )
                .bind(&address)
                .fetch_optional(&mut *c)
                .await?;
                let Some(row) = row else {
                    return Err(StoreError::NotFound(format!("address {address}")));
                };
                if row.try_get::<i64, _>("is_primary")? == 1 {
                    return Err(StoreError::Invalid(format!(
                        "{address} is a primary address; remove its user or group instead"
                    )));
                }
                sqlx::query("DELETE FROM addresses WHERE address = $1")
                    .bind(&address)
                    .execute(&mut *c)
                    .await?;
                crate::gal::reindex_tx(c, t, row.try_get("principal_id")?).await
            })
        })
        .await
    }

    /// All addresses of a principal: (address, is_primary), primary first.
    pub async fn addresses_of(&self, principal: i64) -> Result<Vec<(String, bool)>> {
        let rows = sqlx::query(
            "SELECT address, is_primary FROM addresses WHERE principal_id = $1 ORDER BY is_primary DESC, address",
        )
        .bind(principal)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("address")?,
                    r.try_get::<i64, _>("is_primary")? != 0,
                ))
            })
            .collect()
    }

    /// Every secondary address with its principal's primary address.
    pub async fn aliases(&self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT a.address AS alias, p.address AS target FROM addresses a \
             JOIN addresses p ON p.principal_id = a.principal_id AND p.is_primary = 1 \
             WHERE a.is_primary = 0 ORDER BY a.address",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("alias")?, r.try_get("target")?)))
            .collect()
    }

    pub async fn add_member(&self, group: i64, member: &str) -> Result<()> {
        let member = normalize_address(member);
        self.write(move |c, t| {
            Box::pin(async move {
                sqlx::query("INSERT INTO group_members (group_id, member) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                    .bind(group)
                    .bind(&member)
                    .execute(&mut *c)
                    .await?;
                crate::gal::bump_directory_version(c, t).await
            })
        })
        .await
    }

    pub async fn remove_member(&self, group: i64, member: &str) -> Result<()> {
        let member = normalize_address(member);
        self.write(move |c, t| {
            Box::pin(async move {
                let n =
                    sqlx::query("DELETE FROM group_members WHERE group_id = $1 AND member = $2")
                        .bind(group)
                        .bind(&member)
                        .execute(&mut *c)
                        .await?
                        .rows_affected();
                if n == 0 {
                    return Err(StoreError::NotFound(format!("member {member}")));
                }
                crate::gal::bump_directory_version(c, t).await
            })
        })
        .await
    }

    pub async fn members(&self, group: i64) -> Result<Vec<String>> {
        Ok(sqlx::query_scalar(
            "SELECT member FROM group_members WHERE group_id = $1 ORDER BY member",
        )
        .bind(group)
        .fetch_all(self.pool())
        .await?)
    }

    /// Groups that list `address` as a direct member.
    pub async fn groups_with_member(&self, address: &str) -> Result<Vec<i64>> {
        Ok(
            sqlx::query_scalar("SELECT group_id FROM group_members WHERE member = $1")
                .bind(normalize_address(address))
                .fetch_all(self.pool())
                .await?,
        )
    }

    /// The built-in groups that list any of `addresses` as a member,
    /// directly or through nested groups (each once; loops are harmless).
    pub async fn groups_containing(&self, addresses: &[String]) -> Result<Vec<i64>> {
        let mut groups: Vec<i64> = Vec::new();
        let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
        let mut next: Vec<String> = addresses.iter().map(|a| normalize_address(a)).collect();
        while !next.is_empty() {
            next.retain(|a| seen.insert(a.clone()));
            let mut found = Vec::new();
            for chunk in next.chunks(500) {
                let list = (1..=chunk.len())
                    .map(|i| format!("${i}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let sql =
                    format!("SELECT DISTINCT group_id FROM group_members WHERE member IN ({list})");
                let mut q = sqlx::query_scalar::<_, i64>(&sql);
                for a in chunk {
                    q = q.bind(a.clone());
                }
                found.extend(q.fetch_all(self.pool()).await?);
            }
            next = Vec::new();
            for g in found {
                if groups.contains(&g) {
                    continue;
                }
                groups.push(g);
                for (a, _) in self.addresses_of(g).await? {
                    next.push(a);
                }
            }
        }
        Ok(groups)
    }

    /// Total octets of a principal's messages (for quota).
    pub async fn usage(&self, principal: i64) -> Result<i64> {
        Ok(sqlx::query_scalar(
            "SELECT CAST(COALESCE(SUM(m.size), 0) AS BIGINT) FROM messages m JOIN collections k ON k.id = m.collection_id \
             WHERE k.principal_id = $1",
        )
        .bind(principal)
        .fetch_one(self.pool())
        .await?)
    }
}

async fn domain_id(c: &mut AnyConnection, domain: &str) -> Result<i64> {
    let id: Option<i64> = sqlx::query_scalar("SELECT id FROM domains WHERE name = $1")
        .bind(domain)
        .fetch_optional(&mut *c)
        .await?;
    id.ok_or_else(|| StoreError::NotFound(format!("domain {domain}")))
}

async fn insert_address(
    c: &mut AnyConnection,
    principal: i64,
    domain: i64,
    address: &str,
    primary: bool,
) -> Result<()> {
    sqlx::query("INSERT INTO addresses (address, principal_id, domain_id, is_primary) VALUES ($1, $2, $3, $4)")
        .bind(address)
        .bind(principal)
        .bind(domain)
        .bind(primary as i64)
        .execute(&mut *c)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Exists(_) => StoreError::Exists(format!("address {address}")),
            e => e,
        })?;
    Ok(())
}

pub(crate) async fn ensure_default_mailboxes_tx(
    c: &mut AnyConnection,
    t: &mut crate::Touched,
    principal: i64,
) -> Result<()> {
    for (name, role) in DEFAULT_MAILBOXES {
        let created: Option<i64> = sqlx::query_scalar(
            "INSERT INTO collections (principal_id, kind, name, special_use, subscribed, uidvalidity, created_at) \
             VALUES ($1, 'mailbox', $2, $3, 1, $4, $5) ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(principal)
        .bind(*name)
        .bind(role.map(str::to_string))
        .bind(crate::mail::new_uidvalidity())
        .bind(now())
        .fetch_optional(&mut *c)
        .await?;
        if let Some(id) = created {
            crate::sync::journal_collection(
                c,
                t,
                principal,
                id,
                "mailbox",
                crate::sync::CollectionChangeKind::Created,
                name,
                None,
            )
            .await?;
        }
    }
    Ok(())
}

/// Removes a principal with everything it owns, in the caller's
/// transaction.
pub(crate) async fn remove_principal_tx(
    c: &mut AnyConnection,
    t: &mut Touched,
    id: i64,
) -> Result<()> {
    crate::gal::bump_directory_version(c, t).await?;
    crate::groupware::remove_principal_groupware(c, id).await?;
    let rows = sqlx::query(
            "SELECT m.blob_hash, COUNT(*) AS n FROM messages m JOIN collections k ON k.id = m.collection_id \
             WHERE k.principal_id = $1 GROUP BY m.blob_hash",
        )
        .bind(id)
        .fetch_all(&mut *c)
        .await?;
    for r in &rows {
        let hash: String = r.try_get("blob_hash")?;
        let n: i64 = r.try_get("n")?;
        crate::blobs::release_blob(c, &hash, n).await?;
    }
    sqlx::query("DELETE FROM message_keywords WHERE message_id IN (SELECT m.id FROM messages m JOIN collections k ON k.id = m.collection_id WHERE k.principal_id = $1)")
            .bind(id).execute(&mut *c).await?;
    sqlx::query("DELETE FROM messages WHERE collection_id IN (SELECT id FROM collections WHERE principal_id = $1)")
            .bind(id).execute(&mut *c).await?;
    sqlx::query("DELETE FROM changes WHERE collection_id IN (SELECT id FROM collections WHERE principal_id = $1)")
            .bind(id).execute(&mut *c).await?;
    sqlx::query("DELETE FROM principal_changes WHERE principal_id = $1")
        .bind(id)
        .execute(&mut *c)
        .await?;
    sqlx::query("DELETE FROM collections WHERE principal_id = $1")
        .bind(id)
        .execute(&mut *c)
        .await?;
    sqlx::query("DELETE FROM group_members WHERE group_id = $1")
        .bind(id)
        .execute(&mut *c)
        .await?;
    sqlx::query("DELETE FROM addresses WHERE principal_id = $1")
        .bind(id)
        .execute(&mut *c)
        .await?;
    sqlx::query("DELETE FROM directory_terms WHERE principal_id = $1")
        .bind(id)
        .execute(&mut *c)
        .await?;
    let n = sqlx::query("DELETE FROM principals WHERE id = $1")
        .bind(id)
        .execute(&mut *c)
        .await?
        .rows_affected();
    if n == 0 {
        return Err(StoreError::NotFound(format!("principal {id}")));
    }
    Ok(())
}
