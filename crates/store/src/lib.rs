//! The storage model and its backends: SQLite (embedded default, WAL) and
//! PostgreSQL, through sqlx's `Any` driver so one set of queries serves both.
//!
//! - Relational and readable with `sqlite3`/`psql`: principals, addresses,
//!   collections (mailboxes), messages, keywords, the change journal.
//! - Message bodies are content-addressed files ([`blob`]), stored once
//!   however many mailboxes hold them, reference-counted and swept.
//! - Every write goes through one writer task that batches concurrent
//!   requests into one transaction (group commit): a write returns only after
//!   its transaction is durable, and many deliveries share one fsync.
//! - Every change to a collection takes that collection's next modseq and a
//!   row in `changes`, in the same transaction; changes to a principal's set
//!   of collections go to its own journal ([`sync`]). Waiters are woken
//!   after commit.
//!
//! Modules by subject: [`mail`] (mailboxes and messages), [`groupware`]
//! (calendars, task lists and address books), [`sync`] (the change journals
//! every sync protocol reads), `blobs`/[`blob`]/`pack` (message bodies),
//! [`sweep`] (periodic clean-up), [`principals`], [`queue`], [`sieve`].

pub mod activesync;
pub mod blob;
mod blobs;
mod bulk;
mod error;
pub mod gal;
pub mod groupware;
pub mod mail;
mod notify;
mod pack;
pub mod principals;
pub mod queue;
mod schema;
pub mod sieve;
pub mod sweep;
pub mod sync;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod writer;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyConnection, AnyPool, ConnectOptions, Connection, Executor};
use tokio::sync::watch;

pub use blob::{BlobRef, BlobStore, Fault};
pub use error::StoreError;
pub use gal::{phone_query, phone_terms, ContactAttrs, DirectoryRow, SEARCH_SQL};
pub use mail::*;
pub use notify::hierarchy_channel;
pub use outpost_mailmeta as meta;
pub use outpost_mailmeta::MessageMeta;
pub use outpost_pim as pim;
pub use principals::*;
pub use queue::*;
pub use sweep::{SweepPolicy, SweepReport, DEFAULT_JOURNAL_KEEP_SECS};
pub use sync::{
    CollectionChange, CollectionChangeKind, CollectionChanges, ItemChange, JournalState,
    PrincipalChanges, PruneReport, Since, Tombstone,
};
pub use writer::Touched;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    backend: Backend,
    pool: AnyPool,
    writer: tokio::sync::mpsc::Sender<writer::Job>,
    blobs: BlobStore,
    notifier: notify::Notifier,
    /// Signalled after new queue entries commit (the outbound runner waits
    /// on it instead of only polling).
    queue_wakeup: tokio::sync::Notify,
    /// Bodies up to this size are kept in the database row.
    inline_max: std::sync::atomic::AtomicUsize,
    /// Larger bodies up to this size go into pack files; larger still,
    /// a file each.
    pack_max: std::sync::atomic::AtomicUsize,
}

/// Default for [`Store::set_inline_max`]: bodies live on the file system
/// (in pack files) unless configured otherwise.
pub const DEFAULT_INLINE_MAX: usize = 0;

/// Default for [`Store::set_pack_max`].
pub const DEFAULT_PACK_MAX: usize = 1024 * 1024;

impl Store {
    /// Opens (creating and migrating if needed) the database at `url` and the
    /// blob directory. SQLite files and directories are created.
    pub async fn open(url: &str, blob_dir: &Path) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let (backend, url) = normalize_url(url)?;
        if backend == Backend::Sqlite {
            if let Some(parent) =
                sqlite_path(&url).and_then(|p| Path::new(p).parent().map(Path::to_path_buf))
            {
                std::fs::create_dir_all(parent)?;
            }
        }
        let opts = AnyConnectOptions::from_str(&url)
            .map_err(|e| StoreError::Invalid(format!("storage.url: {e}")))?
            .disable_statement_logging();
        // One direct connection first: a pool only reports "timed out"
        // after its acquire timeout, hiding the cause (refused, unknown
        // host, authentication, no such database).
        match tokio::time::timeout(Duration::from_secs(10), AnyConnection::connect_with(&opts))
            .await
        {
            Ok(Ok(c)) => {
                let _ = c.close().await;
            }
            Ok(Err(e)) => {
                return Err(StoreError::Unavailable(format!(
                    "cannot open database {}: {e}",
                    redact(&url)
                )))
            }
            Err(_) => {
                return Err(StoreError::Unavailable(format!(
                    "cannot open database {}: no answer within 10 s",
                    redact(&url)
                )))
            }
        }
        let pool = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(10))
            // A SQLite connection is a file handle in this process: pinging
            // it before every query (sqlx's default) doubled the round trips
            // to its worker thread and found nothing. PostgreSQL keeps the
            // check: a server restart leaves dead sockets in the pool.
            .test_before_acquire(backend != Backend::Sqlite)
            .after_connect(move |conn, _| {
                Box::pin(async move { prepare_connection(conn, backend).await })
            })
            .connect_with(opts.clone())
            .await
            .map_err(|e| {
                StoreError::Unavailable(format!("cannot open database {}: {e}", redact(&url)))
            })?;
        schema::migrate(&pool, backend).await?;
        let blobs = BlobStore::open(blob_dir)?;
        let (tx, rx) = tokio::sync::mpsc::channel(4096);
        let store = Store {
            inner: Arc::new(Inner {
                backend,
                pool,
                writer: tx,
                blobs,
                notifier: notify::Notifier::default(),
                queue_wakeup: tokio::sync::Notify::new(),
                inline_max: DEFAULT_INLINE_MAX.into(),
                pack_max: DEFAULT_PACK_MAX.into(),
            }),
        };
        let weak = Arc::downgrade(&store.inner);
        // The writer runs on a thread of its own with its own (one-thread)
        // runtime: each of its statements is a round trip to the database
        // thread, and on the shared runtime every wake-up of the writer
        // queued behind the request tasks, which made a PUT under load
        // wait for the other requests' work between its statements.
        {
            let opts = opts.clone();
            let weak = weak.clone();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| StoreError::Internal(format!("store writer runtime: {e}")))?;
            std::thread::Builder::new()
                .name("outpost-store-writer".into())
                .spawn(move || rt.block_on(writer::run(opts, backend, rx, weak)))
                .map_err(|e| StoreError::Internal(format!("store writer thread: {e}")))?;
        }
        if backend == Backend::Postgres {
            tokio::spawn(notify::listen(url.clone(), weak));
        }
        let indexer = store.clone();
        tokio::spawn(async move {
            match indexer.backfill_directory_terms().await {
                Ok(0) => {}
                Ok(n) => tracing::info!("indexed {n} principals for directory search"),
                Err(e) => tracing::warn!("indexing principals for directory search: {e}"),
            }
        });
        let filler = store.clone();
        tokio::spawn(async move {
            match filler.backfill_ends_crlf().await {
                Ok(0) => {}
                Ok(n) => tracing::info!("recorded the line ending of {n} stored message bodies"),
                Err(e) => tracing::warn!("recording the line endings of stored bodies: {e}"),
            }
        });
        Ok(store)
    }

    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// The reader pool, for queries.
    pub fn pool(&self) -> &AnyPool {
        &self.inner.pool
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.inner.blobs
    }

    /// Bodies up to `bytes` are stored in the database, larger ones as
    /// files; 0 puts every body in a file. Applies to later writes.
    /// Resolves after the next new queue entry (or at once if one came
    /// since the last wait): the outbound runner's wake-up.
    pub async fn queue_changed(&self) {
        self.inner.queue_wakeup.notified().await
    }

    pub(crate) fn announce_queue(&self) {
        self.inner.queue_wakeup.notify_one();
    }

    pub fn set_inline_max(&self, bytes: usize) {
        self.inner
            .inline_max
            .store(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    /// Bodies above the inline limit and up to `bytes` are appended to
    /// pack files, larger ones get a file each; 0: no packs.
    pub fn set_pack_max(&self, bytes: usize) {
        self.inner
            .pack_max
            .store(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn pack_max(&self) -> usize {
        self.inner
            .pack_max
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn inline_max(&self) -> usize {
        self.inner
            .inline_max
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs `f` inside the writer's next transaction (group commit) and
    /// returns its value once that transaction is durable. `f` records the
    /// collections it changed in `Touched` so their waiters are woken.
    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(
                &'c mut AnyConnection,
                &'c mut Touched,
            ) -> futures::future::BoxFuture<'c, Result<T>>
            + Send
            + 'static,
    {
        writer::submit(&self.inner.writer, f).await
    }

    pub(crate) fn writer(&self) -> &tokio::sync::mpsc::Sender<writer::Job> {
        &self.inner.writer
    }

    /// Waits for changes to a collection: the receiver's value is the
    /// collection's highest modseq as last announced.
    pub fn subscribe(&self, collection: i64) -> watch::Receiver<i64> {
        self.inner.notifier.subscribe(collection)
    }

    /// Closes the pool after the writer drained. Used at shutdown.
    pub async fn close(&self) {
        self.inner.pool.close().await;
    }
}

async fn prepare_connection(conn: &mut AnyConnection, backend: Backend) -> Result<(), sqlx::Error> {
    if backend == Backend::Sqlite {
        conn.execute("PRAGMA journal_mode = WAL").await?;
        conn.execute("PRAGMA synchronous = FULL").await?;
        conn.execute("PRAGMA foreign_keys = ON").await?;
        conn.execute("PRAGMA busy_timeout = 10000").await?;
        // Statement journals and sort spills in memory, not in temporary
        // files created and unlinked for every batch.
        conn.execute("PRAGMA temp_store = MEMORY").await?;
    }
    Ok(())
}

pub(crate) async fn connect_writer(
    opts: &AnyConnectOptions,
    backend: Backend,
) -> Result<AnyConnection> {
    let mut conn = AnyConnection::connect_with(opts).await?;
    prepare_connection(&mut conn, backend).await?;
    Ok(conn)
}

fn normalize_url(url: &str) -> Result<(Backend, String)> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok((Backend::Postgres, url.to_string()))
    } else if url.starts_with("sqlite:") {
        let mut u = url.to_string();
        if !u.contains("mode=") {
            u.push_str(if u.contains('?') {
                "&mode=rwc"
            } else {
                "?mode=rwc"
            });
        }
        Ok((Backend::Sqlite, u))
    } else {
        Err(StoreError::Invalid(format!(
            "storage.url {url:?}: expected sqlite:// or postgres://"
        )))
    }
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    Some(rest.split('?').next().unwrap_or(rest))
}

/// The URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..s + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Seconds since the Unix epoch, as the store records times.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
