//! Test support: a fresh store on SQLite (temporary directory) or on the
//! PostgreSQL server named by `OUTPOST_TEST_PG` (default
//! `postgres://postgres@127.0.0.1:5432`), in a database of its own that is
//! dropped afterwards. Without a reachable PostgreSQL the PostgreSQL tests
//! skip with a note, except under `CI=true`, where they fail.

use std::path::PathBuf;

use crate::{Result, Store};

pub struct TestStore {
    pub store: Store,
    pub dir: tempfile::TempDir,
    pg_db: Option<(String, String)>,
}

impl TestStore {
    /// The database URL, to open the same store a second time (as another
    /// node would).
    pub fn url(&self) -> String {
        match &self.pg_db {
            Some((_, db)) => format!("{}/{db}", pg_base()),
            None => format!("sqlite://{}/outpost.db", self.dir.path().display()),
        }
    }
}

impl std::ops::Deref for TestStore {
    type Target = Store;
    fn deref(&self) -> &Store {
        &self.store
    }
}

impl TestStore {
    pub fn blob_dir(&self) -> PathBuf {
        self.dir.path().join("blobs")
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Some((admin, db)) = self.pg_db.take() {
            // Best effort, on a thread of its own: Drop cannot await.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    use sqlx::Connection;
                    if let Ok(mut c) = sqlx::AnyConnection::connect(&admin).await {
                        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)"))
                            .execute(&mut c)
                            .await;
                    }
                });
            })
            .join();
        }
    }
}

pub fn pg_base() -> String {
    std::env::var("OUTPOST_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub async fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/outpost.db", dir.path().display());
    let store = Store::open(&url, &dir.path().join("blobs"))
        .await
        .expect("open sqlite store");
    TestStore {
        store,
        dir,
        pg_db: None,
    }
}

/// A store on a new PostgreSQL database, or `None` (skip) when the server
/// is unreachable outside CI.
pub async fn postgres() -> Option<TestStore> {
    match try_postgres().await {
        Ok(s) => Some(s),
        Err(e) => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("PostgreSQL is required under CI=true but unavailable: {e}");
            }
            eprintln!("note: skipping PostgreSQL test: {e}");
            None
        }
    }
}

async fn try_postgres() -> Result<TestStore> {
    use sqlx::Connection;
    sqlx::any::install_default_drivers();
    let base = pg_base();
    let admin = format!("{base}/postgres");
    let mut c = sqlx::AnyConnection::connect(&admin).await?;
    let db = format!(
        "outpost_test_{}_{}",
        std::process::id(),
        rand::random::<u32>()
    );
    sqlx::query(&format!("CREATE DATABASE {db}"))
        .execute(&mut c)
        .await?;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("{base}/{db}"), &dir.path().join("blobs")).await?;
    Ok(TestStore {
        store,
        dir,
        pg_db: Some((admin, db)),
    })
}
