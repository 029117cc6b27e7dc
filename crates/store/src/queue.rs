//! The outbound queue's storage: a message is queued durably (blob and
//! rows in one transaction) before SMTP answers 250.

use std::sync::Arc;

use sqlx::Row;

use crate::mail::acquire_blob;
use crate::{now, Result, Store};

#[derive(Debug, Clone, Default)]
pub struct QueuedRecipient {
    pub address: String,
    pub notify: Option<String>,
    pub orcpt: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct NewQueued {
    pub mail_from: String,
    pub recipients: Vec<QueuedRecipient>,
    pub envid: Option<String>,
    pub ret: Option<String>,
    pub body: String,
    pub smtputf8: bool,
    pub submitted_by: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct QueueEntry {
    pub id: i64,
    pub mail_from: String,
    pub size: i64,
    pub created_at: i64,
    /// (address, status, attempts, last error)
    pub recipients: Vec<(String, String, i64, Option<String>)>,
}

impl Store {
    /// Queues a message for outbound delivery. Returns the queue id once the
    /// message and its recipients are durable.
    pub async fn enqueue(&self, raw: Arc<[u8]>, q: NewQueued) -> Result<i64> {
        let raw = crate::mail::crlf_normalized(raw);
        let blob = self.blobs().put(raw).await?;
        let blobs = self.blobs().clone();
        self.write(move |c, _| {
            Box::pin(async move {
                acquire_blob(c, &blobs, &blob, 1).await?;
                let at = now();
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO queue_messages (blob_hash, size, mail_from, envid, ret, body, smtputf8, submitted_by, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
                )
                .bind(&blob.hash)
                .bind(blob.size as i64)
                .bind(&q.mail_from)
                .bind(&q.envid)
                .bind(&q.ret)
                .bind(&q.body)
                .bind(q.smtputf8 as i64)
                .bind(q.submitted_by)
                .bind(at)
                .fetch_one(&mut *c)
                .await?;
                for r in &q.recipients {
                    let domain = r.address.rsplit_once('@').map(|(_, d)| d.to_lowercase()).unwrap_or_default();
                    sqlx::query(
                        "INSERT INTO queue_recipients (message_id, address, domain, notify, orcpt, next_attempt) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(id)
                    .bind(&r.address)
                    .bind(domain)
                    .bind(&r.notify)
                    .bind(&r.orcpt)
                    .bind(at)
                    .execute(&mut *c)
                    .await?;
                }
                Ok(id)
            })
        })
        .await
    }

    /// The queue as the administrator sees it, oldest first.
    pub async fn queue_list(&self) -> Result<Vec<QueueEntry>> {
        let msgs =
            sqlx::query("SELECT id, mail_from, size, created_at FROM queue_messages ORDER BY id")
                .fetch_all(self.pool())
                .await?;
        let rcpts = sqlx::query(
            "SELECT message_id, address, status, attempts, last_error FROM queue_recipients ORDER BY message_id, id",
        )
        .fetch_all(self.pool())
        .await?;
        let mut out: Vec<QueueEntry> = msgs
            .iter()
            .map(|r| {
                Ok(QueueEntry {
                    id: r.try_get("id")?,
                    mail_from: r.try_get("mail_from")?,
                    size: r.try_get("size")?,
                    created_at: r.try_get("created_at")?,
                    recipients: Vec::new(),
                })
            })
            .collect::<Result<_>>()?;
        for r in &rcpts {
            let mid: i64 = r.try_get("message_id")?;
            if let Some(e) = out.iter_mut().find(|e| e.id == mid) {
                e.recipients.push((
                    r.try_get("address")?,
                    r.try_get("status")?,
                    r.try_get("attempts")?,
                    r.try_get("last_error")?,
                ));
            }
        }
        Ok(out)
    }
}
