//! The single writer: batches concurrent write requests into one transaction
//! (group commit). Closure jobs get a savepoint each, so one failing request
//! does not take the others down; deliveries are filed together in bulk
//! (see `bulk.rs`), and one by one only if the bulk attempt fails. Every
//! request is answered only after COMMIT.

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
    Deliver {
        req: DeliverReq,
        done: oneshot::Sender<Result<Vec<Delivered>>>,
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
    req: DeliverReq,
) -> Result<Vec<Delivered>> {
    let (done, rx) = oneshot::channel();
    tx.send(Job::Deliver { req, done })
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
    let mut conn: Option<AnyConnection> = None;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        if conn.is_none() {
            match crate::connect_writer(&opts, backend).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    tracing::error!("store writer cannot connect: {e}");
                    fail_all(batch, &e);
                    continue;
                }
            }
        }
        let c = conn.as_mut().expect("connected above");
        let (touched, healthy) = run_batch(c, backend, &blobs, batch).await;
        if !healthy {
            conn = None;
        }
        if let Some(inner) = store.upgrade() {
            for (coll, modseq) in touched {
                inner.notifier.announce(coll, modseq);
            }
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
    Deliver(oneshot::Sender<Result<Vec<Delivered>>>, Vec<Delivered>),
}

/// Returns the collections touched by committed jobs, and whether the
/// connection is still usable.
async fn run_batch(
    c: &mut AnyConnection,
    backend: Backend,
    blobs: &BlobStore,
    batch: Vec<Job>,
) -> (Vec<(i64, i64)>, bool) {
    let begin = if backend == Backend::Sqlite {
        "BEGIN IMMEDIATE"
    } else {
        "BEGIN"
    };
    if let Err(e) = c.execute(begin).await {
        fail_all(batch, &e.into());
        return (Vec::new(), false);
    }
    let mut waiting = Vec::with_capacity(batch.len());
    let mut touched = Touched::default();
    let mut deliveries = Vec::new();
    let mut healthy = true;
    for job in batch {
        match job {
            Job::Deliver { req, done } => deliveries.push((req, done)),
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
    if deliveries.iter().any(|(r, _)| r.needs_sync) && healthy {
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
    if healthy && deliveries.iter().any(|(r, _)| r.blob.packed.is_some()) {
        let reqs: Vec<&DeliverReq> = deliveries.iter().map(|(r, _)| r).collect();
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
        let reqs: Vec<&DeliverReq> = deliveries.iter().map(|(r, _)| r).collect();
        let mut t = Touched::default();
        let r = match c.execute("SAVEPOINT job").await {
            Ok(_) => {
                let r = deliver_all(c, blobs, &slots, &reqs, &mut t).await;
                end_savepoint(c, r).await
            }
            Err(e) => Err(e.into()),
        };
        drop(reqs);
        match r {
            Ok(Ok(results)) => {
                touched.0.extend(t.0);
                for ((_, done), r) in deliveries.into_iter().zip(results) {
                    waiting.push(Waiting::Deliver(done, r));
                }
            }
            Ok(Err(e)) => {
                // File them one by one so only the faulty ones fail.
                tracing::debug!("bulk delivery failed ({e}); retrying one by one");
                for (req, done) in deliveries {
                    let mut t = Touched::default();
                    let r = match c.execute("SAVEPOINT job").await {
                        Ok(_) => {
                            let r = deliver_all(c, blobs, &slots, &[&req], &mut t).await;
                            end_savepoint(c, r).await
                        }
                        Err(e) => Err(e.into()),
                    };
                    match r {
                        Ok(Ok(mut r)) => {
                            touched.0.extend(t.0);
                            waiting.push(Waiting::Deliver(done, r.pop().unwrap_or_default()));
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
            return (Vec::new(), false);
        }
    }
    let commit = if healthy {
        c.execute("COMMIT").await.map_err(StoreError::from)
    } else {
        Err(StoreError::Unavailable("transaction aborted".into()))
    };
    match commit {
        Ok(_) => {
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
            (touched.0, true)
        }
        Err(err) => {
            tracing::error!("store commit failed: {err}");
            let _ = c.execute("ROLLBACK").await;
            fail_waiting(waiting, &err);
            (Vec::new(), false)
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
