use sqlx::{AnyPool, Executor};

use crate::{Backend, Result};

/// Migrations in order. Each is applied once, in its own transaction.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../migrations/0001_init.sql")),
    (2, include_str!("../migrations/0002_queue.sql")),
    (3, include_str!("../migrations/0003_sieve.sql")),
    (4, include_str!("../migrations/0004_queue_lease.sql")),
    (5, include_str!("../migrations/0005_inline_blobs.sql")),
    (6, include_str!("../migrations/0006_blob_packs.sql")),
    (7, include_str!("../migrations/0007_sync_journal.sql")),
    (8, include_str!("../migrations/0008_flags_index.sql")),
    (9, include_str!("../migrations/0009_groupware.sql")),
    (10, include_str!("../migrations/0010_directory_attrs.sql")),
    (11, include_str!("../migrations/0011_schedule_state.sql")),
    (12, include_str!("../migrations/0012_activesync.sql")),
    (13, include_str!("../migrations/0013_activesync_sync.sql")),
];

pub(crate) async fn migrate(pool: &AnyPool, backend: Backend) -> Result<()> {
    let mut conn = pool.acquire().await?;
    conn.execute("CREATE TABLE IF NOT EXISTS outpost_schema (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
        .await?;
    if backend == Backend::Postgres {
        // Several nodes may start at once: one migrates, the others wait.
        conn.execute("SELECT pg_advisory_lock(7470)").await?;
    }
    let res = apply(&mut conn, backend).await;
    if backend == Backend::Postgres {
        conn.execute("SELECT pg_advisory_unlock(7470)").await?;
    }
    res
}

async fn apply(conn: &mut sqlx::AnyConnection, backend: Backend) -> Result<()> {
    // Each migration not yet recorded, in order: branches may add numbers
    // below one already applied (8 merged after 9), so "above the highest"
    // would skip them.
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM outpost_schema")
        .fetch_all(&mut *conn)
        .await?;
    for (version, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        let id = match backend {
            Backend::Sqlite => "INTEGER PRIMARY KEY AUTOINCREMENT",
            Backend::Postgres => "BIGSERIAL PRIMARY KEY",
        };
        let bytes = match backend {
            Backend::Sqlite => "BLOB",
            Backend::Postgres => "BYTEA",
        };
        let sql = sql.replace("{ID}", id).replace("{BYTES}", bytes);
        conn.execute("BEGIN").await?;
        let mut res = Ok(());
        for stmt in statements(&sql) {
            if let Err(e) = conn.execute(stmt.as_str()).await {
                res = Err(e);
                break;
            }
        }
        if res.is_ok() {
            res = sqlx::query("INSERT INTO outpost_schema (version, applied_at) VALUES ($1, $2)")
                .bind(*version)
                .bind(crate::now())
                .execute(&mut *conn)
                .await
                .map(|_| ());
        }
        match res {
            Ok(()) => {
                conn.execute("COMMIT").await?;
            }
            Err(e) => {
                let _ = conn.execute("ROLLBACK").await;
                return Err(crate::StoreError::Internal(format!(
                    "migration {version} failed: {e}"
                )));
            }
        }
    }
    Ok(())
}

/// Splits a migration into statements at semicolons that end a line,
/// dropping comment-only lines.
fn statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in sql.lines() {
        let t = line.trim();
        if t.starts_with("--") || t.is_empty() {
            continue;
        }
        cur.push_str(line);
        cur.push('\n');
        if t.ends_with(';') {
            out.push(cur.trim().trim_end_matches(';').to_string());
            cur.clear();
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}
