//! The single writer: batches concurrent write requests into one transaction
//! (group commit). Closure jobs get a savepoint each, so one failing request
//! does not take the others down; deliveries are filed together in bulk
//! (see `bulk.rs`), and one by one only if the bulk attempt fails. Every
//! request is answered only after its transaction is on stable storage.
//!
//! On SQLite the flush is pipelined: the writer's connection commits with
//! `synchronous = NORMAL` (the WAL frames are written, not flushed) and hands
//! the batch to a syncer thread, which flushes the WAL file with one
//! `fdatasync` for every batch committed since its last flush and only then
//! answers the requests and wakes waiters. Meanwhile the writer already runs
//! the next batch, so the flush is off the writer's critical path. Because the
//! WAL is append-only, flushing it makes every earlier commit durable too;
//! SQLite itself flushes the WAL before a checkpoint copies it into the
//! database file. A committed batch is visible to readers for the moment
//! before its flush, but nothing is acknowledged before it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use futures::future::BoxFuture;
use sqlx::any::AnyConnectOptions;
use sqlx::{AnyConnection, Executor};
use tokio::sync::{mpsc, oneshot};

use crate::bulk::{deliver_all, pack_bodies, DeliverReq};
use crate::{Backend, BlobStore, Delivered, Inner, Result, StoreError};

const MAX_BATCH: usize = 512;

/// Collections changed by a write, with their new highest modseq; announced
/// to waiters after the transaction commits.
#[derive(Default, Debug)]
pub struct Touched(pub(crate) Vec<(i64, i64)>);

impl Touched {
    pub fn add(&mut self, collection: i64, modseq: i64) {
        self.0.push((collection, modseq));
    }
}

type JobFn = Box<
    dyn for<'c> FnOnce(&'c mut AnyConnection, &'c mut Touched) -> BoxFuture<'c, Result<()>> + Send,
>;

pub(crate) enum Job {
    Closure {
        f: JobFn,
        done: oneshot::Sender<Result<()>>,
    },
    /// Deliveries filed together or not at all (one for SMTP/LMTP; all
    /// messages of an IMAP MULTIAPPEND).
    Deliver {
        reqs: Vec<DeliverReq>,
        done: oneshot::Sender<Result<Vec<Vec<Delivered>>>>,
    },
}

pub(crate) async fn submit<T, F>(tx: &mpsc::Sender<Job>, f: F) -> Result<T>
where
    T: Send + 'static,
    F: for<'c> FnOnce(&'c mut AnyConnection, &'c mut Touched) -> BoxFuture<'c, Result<T>>
        + Send
        + 'static,
{
    let slot: Arc<Mutex<Option<T>>> = Arc::new(Mutex::new(None));
    let out = slot.clone();
    let job: JobFn = Box::new(move |conn, touched| {
        Box::pin(async move {
            let v = f(conn, touched).await?;
            *out.lock().unwrap() = Some(v);
            Ok(())
        })
    });
    let (done, rx) = oneshot::channel();
    tx.send(Job::Closure { f: job, done })
        .await
        .map_err(|_| stopped())?;
    rx.await.map_err(|_| stopped())??;
    let v = slot.lock().unwrap().take();
    v.ok_or_else(|| StoreError::Internal("write produced no value".into()))
}

pub(crate) async fn submit_delivery(
    tx: &mpsc::Sender<Job>,
    reqs: Vec<DeliverReq>,
) -> Result<Vec<Vec<Delivered>>> {
    let (done, rx) = oneshot::channel();
    tx.send(Job::Deliver { reqs, done })
        .await
        .map_err(|_| stopped())?;
    rx.await.map_err(|_| stopped())?
}

fn stopped() -> StoreError {
    StoreError::Unavailable("store writer stopped".into())
}

pub(crate) async fn run(
    opts: AnyConnectOptions,
    backend: Backend,
    mut rx: mpsc::Receiver<Job>,
    store: Weak<Inner>,
) {
    let Some(blobs) = store.upgrade().map(|s| s.blobs.clone()) else {
        return;
    };
    let syncer = Syncer::start(store.clone());
    let mut conn: Option<(AnyConnection, Option<Arc<Path>>)> = None;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        if conn.is_none() {
            match connect(&opts, backend).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    tracing::error!("store writer cannot connect: {e}");
                    fail_all(batch, &e);
                    continue;
                }
            }
        }
        let (c, wal) = conn.as_mut().expect("connected above");
        let wal = wal.clone();
        match run_batch(c, backend, &blobs, batch).await {
            Ok(done) => syncer.send(Committed { wal, done }),
            Err(()) => conn = None,
        }
    }
}

/// The writer's connection and, when its commits leave the WAL flush to the
/// syncer, the WAL file to flush.
async fn connect(
    opts: &AnyConnectOptions,
    backend: Backend,
) -> Result<(AnyConnection, Option<Arc<Path>>)> {
    let mut c = crate::connect_writer(opts, backend).await?;
    if backend != Backend::Sqlite {
        return Ok((c, None));
    }
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut c)
        .await?;
    let file: String =
        sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
            .fetch_one(&mut c)
            .await?;
    if !mode.eq_ignore_ascii_case("wal") || file.is_empty() {
        // In memory or not in WAL mode: COMMIT flushes by itself.
        return Ok((c, None));
    }
    c.execute("PRAGMA synchronous = NORMAL").await?;
    let wal = PathBuf::from(format!("{file}-wal"));
    Ok((c, Some(wal.into())))
}

/// A committed batch waiting for its flush.
struct Committed {
    /// The WAL to flush first; `None` when the commit is already durable.
    wal: Option<Arc<Path>>,
    done: Done,
}

/// A committed transaction's answers and the collections it changed.
struct Done {
    waiting: Vec<Waiting>,
    touched: Vec<(i64, i64)>,
}

/// Flushes committed batches in order and then answers them (see the module
/// documentation). Runs on its own thread: `fdatasync` blocks.
struct Syncer {
    tx: std::sync::mpsc::Sender<Committed>,
}

impl Syncer {
    fn start(store: Weak<Inner>) -> Syncer {
        let (tx, rx) = std::sync::mpsc::channel::<Committed>();
        let spawned = std::thread::Builder::new()
            .name("outpost-store-sync".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut group = vec![first];
                    group.extend(rx.try_iter());
                    let inner = store.upgrade();
                    let flushed = match group.iter().find_map(|c| c.wal.clone()) {
                        Some(_)
                            if inner.as_ref().is_some_and(|i| {
                                i.blobs.fault() == crate::Fault::LogFlush as u8
                            }) =>
                        {
                            Err(StoreError::Unavailable(
                                "injected fault: flushing the database failed".into(),
                            ))
                        }
                        Some(wal) => flush_wal(&wal),
                        None => Ok(()),
                    };
                    for c in group {
                        match &flushed {
                            Ok(()) => {
                                // Announced first: a session that wrote
                                // looks for news right after its answer.
                                if let Some(inner) = &inner {
                                    for (coll, modseq) in c.done.touched {
                                        inner.notifier.announce(coll, modseq);
                                    }
                                }
                                answer(c.done.waiting);
                            }
                            Err(e) => fail_waiting(c.done.waiting, e),
                        }
                    }
                }
            });
        if let Err(e) = spawned {
            // Without a thread the answers cannot wait for a flush; the
            // writer would hang its clients, so fail loudly instead.
            panic!("cannot start the store's flush thread: {e}");
        }
        Syncer { tx }
    }

    fn send(&self, c: Committed) {
        if let Err(std::sync::mpsc::SendError(c)) = self.tx.send(c) {
            fail_waiting(c.done.waiting, &stopped());
        }
    }
}

/// Flushes the WAL file (opened afresh: SQLite may have removed and
/// recreated it when every connection closed, after checkpointing it into
/// the database file; a WAL that is gone holds nothing unflushed).
fn flush_wal(wal: &Path) -> Result<()> {
    match std::fs::OpenOptions::new().write(true).open(wal) {
        Ok(f) => f.sync_data().map_err(|e| {
            tracing::error!("flushing {} failed: {e}", wal.display());
            StoreError::Unavailable(format!("flushing the database failed: {e}"))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => {
            tracing::error!("opening {} to flush it failed: {e}", wal.display());
            Err(StoreError::Unavailable(format!(
                "flushing the database failed: {e}"
            )))
        }
    }
}

fn fail_all(batch: Vec<Job>, e: &StoreError) {
    for j in batch {
        match j {
            Job::Closure { done, .. } => {
                let _ = done.send(Err(e.clone()));
            }
            Job::Deliver { done, .. } => {
                let _ = done.send(Err(e.clone()));
            }
        }
    }
}

/// A request that succeeded inside the open transaction, waiting for COMMIT.
enum Waiting {
    Closure(oneshot::Sender<Result<()>>),
    Deliver(
        oneshot::Sender<Result<Vec<Vec<Delivered>>>>,
        Vec<Vec<Delivered>>,
    ),
}

/// Runs a batch in one transaction. `Ok`: it committed (its requests are
/// answered once it is flushed); `Err`: it did not, its requests are
/// answered with the error, and the connection should be replaced.
async fn run_batch(
    c: &mut AnyConnection,
    backend: Backend,
    blobs: &BlobStore,
    batch: Vec<Job>,
) -> std::result::Result<Done, ()> {
    // A batch of deliveries only (the common case under load) opens the
    // deliveries' savepoint with the transaction: each statement is a round
    // trip to the database thread.
    let only_deliveries = batch.iter().all(|j| matches!(j, Job::Deliver { .. }));
    let begin = match (backend, only_deliveries) {
        (Backend::Sqlite, false) => "BEGIN IMMEDIATE",
        (Backend::Sqlite, true) => "BEGIN IMMEDIATE; SAVEPOINT job",
        (Backend::Postgres, false) => "BEGIN",
        (Backend::Postgres, true) => "BEGIN; SAVEPOINT job",
    };
    if let Err(e) = c.execute(begin).await {
        fail_all(batch, &e.into());
        return Err(());
    }
    let mut waiting = Vec::with_capacity(batch.len());
    let mut touched = Touched::default();
    let mut deliveries = Vec::new();
    let mut healthy = true;
    for job in batch {
        match job {
            Job::Deliver { reqs, done } => deliveries.push((reqs, done)),
            Job::Closure { f, done } => {
                if !healthy {
                    let _ = done.send(Err(StoreError::Unavailable("transaction aborted".into())));
                    continue;
                }
                let mut t = Touched::default();
                let r = match c.execute("SAVEPOINT job").await {
                    Ok(_) => {
                        let r = f(c, &mut t).await;
                        end_savepoint(c, r).await
                    }
                    Err(e) => Err(e.into()),
                };
                match r {
                    Ok(Ok(())) => {
                        touched.0.extend(t.0);
                        waiting.push(Waiting::Closure(done));
                    }
                    Ok(Err(e)) => {
                        let _ = done.send(Err(e));
                    }
                    Err(e) => {
                        let _ = done.send(Err(e));
                        healthy = false;
                    }
                }
            }
        }
    }
    if deliveries.iter().flat_map(|(r, _)| r).any(|r| r.needs_sync) && healthy {
        if let Err(e) = blobs.sync().await {
            tracing::error!("flushing message blobs failed: {e}");
            for (_, done) in deliveries.drain(..) {
                let _ = done.send(Err(e.clone()));
            }
        }
    }
    // Bodies bound for a pack: appended and flushed before any row names them.
    // The pack write runs while the rows are inserted; COMMIT waits for it.
    let mut slots = std::collections::HashMap::new();
    let mut pack_write = None;
    if healthy
        && deliveries
            .iter()
            .flat_map(|(r, _)| r)
            .any(|r| r.blob.packed.is_some())
    {
        let reqs: Vec<&DeliverReq> = deliveries.iter().flat_map(|(r, _)| r).collect();
        match pack_bodies(c, blobs, &reqs).await {
            Ok((s, w)) => {
                slots = s;
                pack_write = w;
            }
            Err(e) => {
                tracing::error!("writing message bodies to a pack failed: {e}");
                for (_, done) in deliveries.drain(..) {
                    let _ = done.send(Err(e.clone()));
                }
            }
        }
    }
    if !deliveries.is_empty() && healthy {
        let reqs: Vec<&DeliverReq> = deliveries.iter().flat_map(|(r, _)| r).collect();
        let mut t = Touched::default();
        let opened = if only_deliveries {
            Ok(())
        } else {
            c.execute("SAVEPOINT job").await.map(|_| ())
        };
        let r = match opened {
            Ok(()) => match deliver_all(c, blobs, &slots, &reqs, &mut t).await {
                // Not released: COMMIT ends it with the transaction.
                Ok(v) => Ok(Ok(v)),
                Err(e) => end_savepoint(c, Err(e)).await,
            },
            Err(e) => Err(e.into()),
        };
        drop(reqs);
        match r {
            Ok(Ok(results)) => {
                touched.0.extend(t.0);
                let mut results = results.into_iter();
                for (reqs, done) in deliveries {
                    let mine = results.by_ref().take(reqs.len()).collect();
                    waiting.push(Waiting::Deliver(done, mine));
                }
            }
            Ok(Err(e)) => {
                // File them one request (one all-or-nothing group) at a
                // time, so only the faulty ones fail.
                tracing::debug!("bulk delivery failed ({e}); retrying one by one");
                for (reqs, done) in deliveries {
                    let mut t = Touched::default();
                    let refs: Vec<&DeliverReq> = reqs.iter().collect();
                    let r = match c.execute("SAVEPOINT job").await {
                        Ok(_) => {
                            let r = deliver_all(c, blobs, &slots, &refs, &mut t).await;
                            end_savepoint(c, r).await
                        }
                        Err(e) => Err(e.into()),
                    };
                    match r {
                        Ok(Ok(r)) => {
                            touched.0.extend(t.0);
                            waiting.push(Waiting::Deliver(done, r));
                        }
                        Ok(Err(e)) => {
                            let _ = done.send(Err(e));
                        }
                        Err(e) => {
                            let _ = done.send(Err(e));
                            healthy = false;
                        }
                    }
                }
            }
            Err(e) => {
                for (_, done) in deliveries {
                    let _ = done.send(Err(e.clone()));
                }
                healthy = false;
            }
        }
    } else {
        for (_, done) in deliveries {
            let _ = done.send(Err(StoreError::Unavailable("transaction aborted".into())));
        }
    }
    if let Some(w) = pack_write {
        let flushed = w
            .await
            .map_err(|e| StoreError::Internal(e.to_string()))
            .and_then(|r| r);
        if let Err(e) = flushed {
            // Rows naming bodies that are not on disk must not commit; the
            // whole batch fails and is retried by its clients.
            tracing::error!("writing message bodies to a pack failed: {e}");
            let _ = c.execute("ROLLBACK").await;
            fail_waiting(waiting, &e);
            return Err(());
        }
    }
    // Other nodes on the same PostgreSQL database hear of the changes when
    // this commits (see `notify.rs`).
    if healthy && backend == Backend::Postgres {
        for stmt in crate::notify::notify_statements(&touched.0) {
            if let Err(e) = c.execute(stmt.as_str()).await {
                tracing::error!("announcing changes failed: {e}");
                healthy = false;
                break;
            }
        }
    }
    let commit = if healthy {
        c.execute("COMMIT").await.map_err(StoreError::from)
    } else {
        Err(StoreError::Unavailable("transaction aborted".into()))
    };
    match commit {
        Ok(_) => Ok(Done {
            waiting,
            touched: touched.0,
        }),
        Err(err) => {
            tracing::error!("store commit failed: {err}");
            let _ = c.execute("ROLLBACK").await;
            fail_waiting(waiting, &err);
            Err(())
        }
    }
}

/// Answers every request of a transaction that is durable.
fn answer(waiting: Vec<Waiting>) {
    for w in waiting {
        match w {
            Waiting::Closure(d) => {
                let _ = d.send(Ok(()));
            }
            Waiting::Deliver(d, r) => {
                let _ = d.send(Ok(r));
            }
        }
    }
}

/// Answers every request of a transaction that did not commit.
fn fail_waiting(waiting: Vec<Waiting>, err: &StoreError) {
    for w in waiting {
        match w {
            Waiting::Closure(d) => {
                let _ = d.send(Err(err.clone()));
            }
            Waiting::Deliver(d, _) => {
                let _ = d.send(Err(err.clone()));
            }
        }
    }
}

/// Releases the savepoint after success or rolls back to it after an
/// error. Outer `Err`: the transaction is broken.
async fn end_savepoint<T>(
    c: &mut AnyConnection,
    r: Result<T>,
) -> std::result::Result<Result<T>, StoreError> {
    match r {
        Ok(v) => {
            c.execute("RELEASE SAVEPOINT job").await?;
            Ok(Ok(v))
        }
        Err(e) => {
            c.execute("ROLLBACK TO SAVEPOINT job").await?;
            c.execute("RELEASE SAVEPOINT job").await?;
            Ok(Err(e))
        }
    }
}
