//! The single writer: batches concurrent write requests into one transaction
//! (group commit), with a savepoint per request so one failing request does
//! not take the others down. A request is answered only after COMMIT.

use std::sync::{Arc, Mutex, Weak};

use futures::future::BoxFuture;
use sqlx::any::AnyConnectOptions;
use sqlx::{AnyConnection, Executor};
use tokio::sync::{mpsc, oneshot};

use crate::{Backend, Inner, Result, StoreError};

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

pub(crate) struct Job {
    f: JobFn,
    done: oneshot::Sender<Result<()>>,
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
    tx.send(Job { f: job, done })
        .await
        .map_err(|_| StoreError::Unavailable("store is shutting down".into()))?;
    rx.await
        .map_err(|_| StoreError::Unavailable("store writer stopped".into()))??;
    let v = slot.lock().unwrap().take();
    v.ok_or_else(|| StoreError::Internal("write produced no value".into()))
}

pub(crate) async fn run(
    opts: AnyConnectOptions,
    backend: Backend,
    mut rx: mpsc::Receiver<Job>,
    store: Weak<Inner>,
) {
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
                    for j in batch {
                        let _ = j.done.send(Err(StoreError::Unavailable(e.to_string())));
                    }
                    continue;
                }
            }
        }
        let c = conn.as_mut().expect("connected above");
        let (touched, healthy) = run_batch(c, backend, batch).await;
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

/// Returns the collections touched by committed jobs, and whether the
/// connection is still usable.
async fn run_batch(
    c: &mut AnyConnection,
    backend: Backend,
    batch: Vec<Job>,
) -> (Vec<(i64, i64)>, bool) {
    let begin = if backend == Backend::Sqlite {
        "BEGIN IMMEDIATE"
    } else {
        "BEGIN"
    };
    if let Err(e) = c.execute(begin).await {
        let err = StoreError::from(e);
        for j in batch {
            let _ = j.done.send(Err(err.clone()));
        }
        return (Vec::new(), false);
    }
    let single = batch.len() == 1;
    let mut waiting = Vec::with_capacity(batch.len());
    let mut touched = Touched::default();
    for job in batch {
        if !single {
            if let Err(e) = c.execute("SAVEPOINT job").await {
                let _ = job.done.send(Err(e.into()));
                continue;
            }
        }
        let mut t = Touched::default();
        match (job.f)(c, &mut t).await {
            Ok(()) => {
                if !single {
                    let _ = c.execute("RELEASE SAVEPOINT job").await;
                }
                touched.0.extend(t.0);
                waiting.push(job.done);
            }
            Err(e) => {
                if single {
                    let _ = c.execute("ROLLBACK").await;
                    let _ = job.done.send(Err(e));
                    return (Vec::new(), true);
                }
                let rolled = c.execute("ROLLBACK TO SAVEPOINT job").await.is_ok()
                    && c.execute("RELEASE SAVEPOINT job").await.is_ok();
                let _ = job.done.send(Err(e));
                if !rolled {
                    let _ = c.execute("ROLLBACK").await;
                    for w in waiting {
                        let _ = w.send(Err(StoreError::Unavailable("transaction aborted".into())));
                    }
                    return (Vec::new(), false);
                }
            }
        }
    }
    match c.execute("COMMIT").await {
        Ok(_) => {
            for w in waiting {
                let _ = w.send(Ok(()));
            }
            (touched.0, true)
        }
        Err(e) => {
            tracing::error!("store commit failed: {e}");
            let err = StoreError::from(e);
            let _ = c.execute("ROLLBACK").await;
            for w in waiting {
                let _ = w.send(Err(err.clone()));
            }
            (Vec::new(), false)
        }
    }
}
