//! Sieve scripts per user (what ManageSieve edits) and the vacation reply
//! log. At most one script per user is active; the engine and the
//! protocol live in the `outpost-sieve` crate, this module only keeps rows.

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::{now, Result, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SieveScript {
    pub name: String,
    pub content: String,
    pub active: bool,
    /// Unix seconds of the last change; with the principal, the key under
    /// which a compiled script may be cached. Strictly increases on every
    /// change of a script (see [`Store::sieve_put`]).
    pub updated_at: i64,
}

fn script_row(r: &AnyRow) -> Result<SieveScript> {
    Ok(SieveScript {
        name: r.try_get("name")?,
        content: r.try_get("content")?,
        active: r.try_get::<i64, _>("active")? != 0,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Script names: 1 to 128 characters, no control characters (RFC 5804
/// §1.6 forbids CR, LF, NUL and other controls), no "/" so a name can be
/// used as a file name when exporting.
pub fn check_script_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.chars().count() > 128
        || name.chars().any(|c| c.is_control() || c == '/')
    {
        return Err(StoreError::Invalid(format!(
            "{name:?} is not a valid script name (1-128 characters, no controls or '/')"
        )));
    }
    Ok(())
}

/// A change stamp that is larger than `prev`: the clock, or `prev + 1`
/// when two changes fall in the same second (caches key on it).
fn stamp(prev: Option<i64>) -> i64 {
    let t = now();
    match prev {
        Some(p) if p >= t => p + 1,
        _ => t,
    }
}

impl Store {
    /// The user's scripts, by name, with their content.
    pub async fn sieve_list(&self, principal: i64) -> Result<Vec<SieveScript>> {
        let rows = sqlx::query(
            "SELECT name, content, active, updated_at FROM sieve_scripts WHERE principal_id = $1 ORDER BY name",
        )
        .bind(principal)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(script_row).collect()
    }

    pub async fn sieve_get(&self, principal: i64, name: &str) -> Result<Option<SieveScript>> {
        sqlx::query(
            "SELECT name, content, active, updated_at FROM sieve_scripts WHERE principal_id = $1 AND name = $2",
        )
        .bind(principal)
        .bind(name)
        .fetch_optional(self.pool())
        .await?
        .as_ref()
        .map(script_row)
        .transpose()
    }

    /// The user's active script, if any.
    pub async fn sieve_active(&self, principal: i64) -> Result<Option<SieveScript>> {
        sqlx::query(
            "SELECT name, content, active, updated_at FROM sieve_scripts WHERE principal_id = $1 AND active = 1",
        )
        .bind(principal)
        .fetch_optional(self.pool())
        .await?
        .as_ref()
        .map(script_row)
        .transpose()
    }

    /// Creates or replaces a script (keeping its active state). The caller
    /// has checked that it compiles and fits the quota.
    pub async fn sieve_put(&self, principal: i64, name: &str, content: &str) -> Result<()> {
        check_script_name(name)?;
        let name = name.to_string();
        let content = content.to_string();
        self.write(move |c, _| {
            Box::pin(async move {
                let prev: Option<i64> = sqlx::query_scalar(
                    "SELECT updated_at FROM sieve_scripts WHERE principal_id = $1 AND name = $2",
                )
                .bind(principal)
                .bind(&name)
                .fetch_optional(&mut *c)
                .await?;
                let at = stamp(prev);
                if prev.is_some() {
                    sqlx::query(
                        "UPDATE sieve_scripts SET content = $1, updated_at = $2 WHERE principal_id = $3 AND name = $4",
                    )
                    .bind(&content)
                    .bind(at)
                    .bind(principal)
                    .bind(&name)
                    .execute(&mut *c)
                    .await?;
                } else {
                    sqlx::query(
                        "INSERT INTO sieve_scripts (principal_id, name, content, active, updated_at) VALUES ($1, $2, $3, 0, $4)",
                    )
                    .bind(principal)
                    .bind(&name)
                    .bind(&content)
                    .bind(at)
                    .execute(&mut *c)
                    .await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// Deletes a script. The active script is refused
    /// (`StoreError::Invalid`), as RFC 5804 §2.10 asks; deactivate first.
    pub async fn sieve_delete(&self, principal: i64, name: &str) -> Result<()> {
        let name = name.to_string();
        self.write(move |c, _| {
            Box::pin(async move {
                let active: Option<i64> = sqlx::query_scalar(
                    "SELECT active FROM sieve_scripts WHERE principal_id = $1 AND name = $2",
                )
                .bind(principal)
                .bind(&name)
                .fetch_optional(&mut *c)
                .await?;
                match active {
                    None => Err(StoreError::NotFound(format!("script {name}"))),
                    Some(a) if a != 0 => Err(StoreError::Invalid(format!(
                        "script {name} is active; deactivate it first"
                    ))),
                    Some(_) => {
                        sqlx::query(
                            "DELETE FROM sieve_scripts WHERE principal_id = $1 AND name = $2",
                        )
                        .bind(principal)
                        .bind(&name)
                        .execute(&mut *c)
                        .await?;
                        Ok(())
                    }
                }
            })
        })
        .await
    }

    /// Renames a script (keeping its active state). `NotFound` if `from`
    /// does not exist, `Exists` if `to` does.
    pub async fn sieve_rename(&self, principal: i64, from: &str, to: &str) -> Result<()> {
        check_script_name(to)?;
        let (from, to) = (from.to_string(), to.to_string());
        self.write(move |c, _| {
            Box::pin(async move {
                let prev: Option<i64> = sqlx::query_scalar(
                    "SELECT updated_at FROM sieve_scripts WHERE principal_id = $1 AND name = $2",
                )
                .bind(principal)
                .bind(&from)
                .fetch_optional(&mut *c)
                .await?;
                let Some(prev) = prev else {
                    return Err(StoreError::NotFound(format!("script {from}")));
                };
                if from == to {
                    return Ok(());
                }
                let taken: Option<i64> = sqlx::query_scalar(
                    "SELECT 1 FROM sieve_scripts WHERE principal_id = $1 AND name = $2",
                )
                .bind(principal)
                .bind(&to)
                .fetch_optional(&mut *c)
                .await?;
                if taken.is_some() {
                    return Err(StoreError::Exists(format!("script {to}")));
                }
                sqlx::query(
                    "UPDATE sieve_scripts SET name = $1, updated_at = $2 WHERE principal_id = $3 AND name = $4",
                )
                .bind(&to)
                .bind(stamp(Some(prev)))
                .bind(principal)
                .bind(&from)
                .execute(&mut *c)
                .await?;
                Ok(())
            })
        })
        .await
    }

    /// Makes `name` the one active script, or deactivates all with `None`
    /// (RFC 5804 SETACTIVE ""). `NotFound` for an unknown name.
    pub async fn sieve_set_active(&self, principal: i64, name: Option<&str>) -> Result<()> {
        let name = name.map(str::to_string);
        self.write(move |c, _| {
            Box::pin(async move {
                if let Some(name) = &name {
                    let found: Option<i64> = sqlx::query_scalar(
                        "SELECT 1 FROM sieve_scripts WHERE principal_id = $1 AND name = $2",
                    )
                    .bind(principal)
                    .bind(name)
                    .fetch_optional(&mut *c)
                    .await?;
                    if found.is_none() {
                        return Err(StoreError::NotFound(format!("script {name}")));
                    }
                }
                sqlx::query(
                    "UPDATE sieve_scripts SET active = 0 WHERE principal_id = $1 AND active <> 0",
                )
                .bind(principal)
                .execute(&mut *c)
                .await?;
                if let Some(name) = &name {
                    sqlx::query(
                        "UPDATE sieve_scripts SET active = 1 WHERE principal_id = $1 AND name = $2",
                    )
                    .bind(principal)
                    .bind(name)
                    .execute(&mut *c)
                    .await?;
                }
                Ok(())
            })
        })
        .await
    }

    /// Decides and records in one transaction whether `principal` may send
    /// a vacation reply to `sender` for `handle` now: true (and the time
    /// recorded) if none was sent within the last `period_secs`, false
    /// otherwise. Also serves the duplicate test (sender "", handle = id):
    /// true means "not seen within the period".
    pub async fn vacation_should_send(
        &self,
        principal: i64,
        sender: &str,
        handle: &str,
        period_secs: i64,
    ) -> Result<bool> {
        let sender = sender.to_lowercase();
        let handle = handle.to_string();
        self.write(move |c, _| {
            Box::pin(async move {
                let at = now();
                let last: Option<i64> = sqlx::query_scalar(
                    "SELECT last_sent FROM sieve_vacation WHERE principal_id = $1 AND sender = $2 AND handle = $3",
                )
                .bind(principal)
                .bind(&sender)
                .bind(&handle)
                .fetch_optional(&mut *c)
                .await?;
                match last {
                    Some(t) if at - t < period_secs.max(0) => Ok(false),
                    Some(_) => {
                        sqlx::query(
                            "UPDATE sieve_vacation SET last_sent = $1 WHERE principal_id = $2 AND sender = $3 AND handle = $4",
                        )
                        .bind(at)
                        .bind(principal)
                        .bind(&sender)
                        .bind(&handle)
                        .execute(&mut *c)
                        .await?;
                        Ok(true)
                    }
                    None => {
                        sqlx::query(
                            "INSERT INTO sieve_vacation (principal_id, sender, handle, last_sent) VALUES ($1, $2, $3, $4)",
                        )
                        .bind(principal)
                        .bind(&sender)
                        .bind(&handle)
                        .bind(at)
                        .execute(&mut *c)
                        .await?;
                        Ok(true)
                    }
                }
            })
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use crate::{NewPrincipal, PrincipalKind, StoreError};

    #[tokio::test]
    async fn scripts_and_vacation() {
        let t = crate::testing::sqlite().await;
        let s = &t.store;
        s.add_domain("example.org").await.unwrap();
        let p = s
            .create_principal(NewPrincipal {
                kind: PrincipalKind::User,
                address: "sieve@example.org".into(),
                display_name: String::new(),
                password_hash: None,
                source: "internal".into(),
                external_id: None,
                quota_bytes: 0,
            })
            .await
            .unwrap()
            .id;
        assert!(s.sieve_list(p).await.unwrap().is_empty());
        s.sieve_put(p, "a", "keep;").await.unwrap();
        let first = s.sieve_get(p, "a").await.unwrap().unwrap();
        s.sieve_put(p, "a", "discard;").await.unwrap();
        let second = s.sieve_get(p, "a").await.unwrap().unwrap();
        assert_eq!(second.content, "discard;");
        assert!(second.updated_at > first.updated_at);
        s.sieve_put(p, "b", "keep;").await.unwrap();
        assert!(s.sieve_active(p).await.unwrap().is_none());
        s.sieve_set_active(p, Some("a")).await.unwrap();
        assert_eq!(s.sieve_active(p).await.unwrap().unwrap().name, "a");
        s.sieve_set_active(p, Some("b")).await.unwrap();
        assert_eq!(s.sieve_active(p).await.unwrap().unwrap().name, "b");
        assert!(matches!(
            s.sieve_set_active(p, Some("zz")).await,
            Err(StoreError::NotFound(_))
        ));
        assert!(matches!(
            s.sieve_delete(p, "b").await,
            Err(StoreError::Invalid(_))
        ));
        assert!(matches!(
            s.sieve_rename(p, "a", "b").await,
            Err(StoreError::Exists(_))
        ));
        s.sieve_rename(p, "b", "c").await.unwrap();
        assert_eq!(s.sieve_active(p).await.unwrap().unwrap().name, "c");
        s.sieve_set_active(p, None).await.unwrap();
        assert!(s.sieve_active(p).await.unwrap().is_none());
        s.sieve_delete(p, "c").await.unwrap();
        assert_eq!(s.sieve_list(p).await.unwrap().len(), 1);
        assert!(s.sieve_put(p, "bad\nname", "keep;").await.is_err());

        assert!(s
            .vacation_should_send(p, "X@Outside.example", "h", 86400)
            .await
            .unwrap());
        assert!(!s
            .vacation_should_send(p, "x@outside.example", "h", 86400)
            .await
            .unwrap());
        assert!(s
            .vacation_should_send(p, "x@outside.example", "other", 86400)
            .await
            .unwrap());
        assert!(s
            .vacation_should_send(p, "x@outside.example", "h", 0)
            .await
            .unwrap());
    }
}
