//! The outbound queue's storage: a message is queued durably (blob and
//! rows in one transaction) before SMTP answers 250.

use std::sync::Arc;

use sqlx::Row;

use crate::blobs::{acquire_blob, release_blob};
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
        let blob = self.put_blob(raw, false).await?;
        let blobs = self.blobs().clone();
        let id = self.write(move |c, _| {
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
        .await?;
        self.announce_queue();
        Ok(id)
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

/// The message of a leased delivery group.
#[derive(Debug, Clone)]
pub struct LeasedMessage {
    pub id: i64,
    pub blob_hash: String,
    pub size: i64,
    pub mail_from: String,
    pub envid: Option<String>,
    pub ret: Option<String>,
    pub body: String,
    pub smtputf8: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct LeasedRecipient {
    pub id: i64,
    pub address: String,
    pub notify: Option<String>,
    pub orcpt: Option<String>,
    pub attempts: i64,
    pub delay_notified: bool,
}

/// Due recipients of one message at one destination domain, leased to the
/// caller until the lease given to [`Store::queue_lease`] ends.
#[derive(Debug, Clone)]
pub struct LeasedGroup {
    pub message: LeasedMessage,
    pub domain: String,
    pub recipients: Vec<LeasedRecipient>,
}

/// What became of one recipient after an attempt.
#[derive(Debug, Clone)]
pub enum RecipientOutcome {
    Delivered(String),
    Failed(String),
    Deferred {
        next_attempt: i64,
        error: String,
        delay_notified: bool,
    },
}

impl Store {
    /// Leases due recipients, grouped by message and destination domain:
    /// at most `max_groups` groups, and per domain no more than
    /// `per_domain` minus what `in_flight` says is already being delivered
    /// there. On PostgreSQL the candidate rows are locked with
    /// `FOR UPDATE SKIP LOCKED`, so nodes sharing the queue never lease the
    /// same recipient; the lease itself (`lease_until`) outlives the
    /// transaction and frees the rows if this node dies.
    pub async fn queue_lease(
        &self,
        now: i64,
        lease_secs: i64,
        max_groups: usize,
        per_domain: usize,
        in_flight: std::collections::HashMap<String, usize>,
    ) -> Result<Vec<LeasedGroup>> {
        if max_groups == 0 {
            return Ok(Vec::new());
        }
        let lock = if self.backend() == crate::Backend::Postgres {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        };
        let sql = format!(
            "SELECT id, message_id, address, domain, notify, orcpt, attempts, delay_notified FROM queue_recipients \
             WHERE status = 'pending' AND next_attempt <= $1 AND lease_until <= $1 \
             ORDER BY next_attempt, id LIMIT 1000{lock}"
        );
        self.write(move |c, _| {
            Box::pin(async move {
                let rows = sqlx::query(&sql).bind(now).fetch_all(&mut *c).await?;
                let mut groups: Vec<(i64, String, Vec<LeasedRecipient>)> = Vec::new();
                let mut per: std::collections::HashMap<String, usize> = in_flight;
                for r in &rows {
                    let mid: i64 = r.try_get("message_id")?;
                    let domain: String = r.try_get("domain")?;
                    let rcpt = LeasedRecipient {
                        id: r.try_get("id")?,
                        address: r.try_get("address")?,
                        notify: r.try_get("notify")?,
                        orcpt: r.try_get("orcpt")?,
                        attempts: r.try_get("attempts")?,
                        delay_notified: r.try_get::<i64, _>("delay_notified")? != 0,
                    };
                    if let Some(g) = groups.iter_mut().find(|g| g.0 == mid && g.1 == domain) {
                        g.2.push(rcpt);
                        continue;
                    }
                    if groups.len() >= max_groups {
                        continue;
                    }
                    let n = per.entry(domain.clone()).or_insert(0);
                    if *n >= per_domain {
                        continue;
                    }
                    *n += 1;
                    groups.push((mid, domain, vec![rcpt]));
                }
                let until = now + lease_secs;
                let mut out = Vec::with_capacity(groups.len());
                for (mid, domain, recipients) in groups {
                    for rc in &recipients {
                        sqlx::query("UPDATE queue_recipients SET lease_until = $1 WHERE id = $2")
                            .bind(until)
                            .bind(rc.id)
                            .execute(&mut *c)
                            .await?;
                    }
                    let m = sqlx::query(
                        "SELECT id, blob_hash, size, mail_from, envid, ret, body, smtputf8, created_at FROM queue_messages WHERE id = $1",
                    )
                    .bind(mid)
                    .fetch_one(&mut *c)
                    .await?;
                    out.push(LeasedGroup {
                        message: LeasedMessage {
                            id: m.try_get("id")?,
                            blob_hash: m.try_get("blob_hash")?,
                            size: m.try_get("size")?,
                            mail_from: m.try_get("mail_from")?,
                            envid: m.try_get("envid")?,
                            ret: m.try_get("ret")?,
                            body: m.try_get("body")?,
                            smtputf8: m.try_get::<i64, _>("smtputf8")? != 0,
                            created_at: m.try_get("created_at")?,
                        },
                        domain,
                        recipients,
                    });
                }
                Ok(out)
            })
        })
        .await
    }

    /// Extends the lease of recipients whose attempt is still running, so
    /// a lease can be short (a crashed node's recipients come back soon)
    /// while an attempt may take longer than one lease.
    pub async fn queue_renew(&self, recipients: Vec<i64>, now: i64, until: i64) -> Result<()> {
        if recipients.is_empty() {
            return Ok(());
        }
        self.write(move |c, _| {
            Box::pin(async move {
                let ids = crate::mail::id_list(&recipients);
                let q = format!(
                    "UPDATE queue_recipients SET lease_until = $1 \
                     WHERE id IN ({ids}) AND status = 'pending' AND lease_until > $2"
                );
                sqlx::query(&q)
                    .bind(until)
                    .bind(now)
                    .execute(&mut *c)
                    .await?;
                Ok(())
            })
        })
        .await
    }

    /// Records the outcome of an attempt for each recipient (ending its
    /// lease) and, when no recipient of the message is left pending,
    /// removes the message and releases its blob. Returns whether the
    /// message was finished.
    pub async fn queue_settle(
        &self,
        message_id: i64,
        outcomes: Vec<(i64, RecipientOutcome)>,
    ) -> Result<bool> {
        self.write(move |c, _| {
            Box::pin(async move {
                for (rid, o) in &outcomes {
                    let (status, next, err, notified): (&str, Option<i64>, Option<&str>, Option<bool>) = match o {
                        RecipientOutcome::Delivered(reply) => ("delivered", None, Some(reply.as_str()), None),
                        RecipientOutcome::Failed(e) => ("failed", None, Some(e.as_str()), None),
                        RecipientOutcome::Deferred {
                            next_attempt,
                            error,
                            delay_notified,
                        } => ("pending", Some(*next_attempt), Some(error.as_str()), Some(*delay_notified)),
                    };
                    sqlx::query(
                        "UPDATE queue_recipients SET status = $1, attempts = attempts + 1, \
                         next_attempt = COALESCE($2, next_attempt), last_error = $3, lease_until = 0, \
                         delay_notified = CASE WHEN $4 = 1 THEN 1 ELSE delay_notified END WHERE id = $5",
                    )
                    .bind(status)
                    .bind(next)
                    .bind(err)
                    .bind(notified.map(|b| b as i64).unwrap_or(0))
                    .bind(rid)
                    .execute(&mut *c)
                    .await?;
                }
                finish_if_done(c, message_id).await
            })
        })
        .await
    }

    /// Makes every pending recipient of message `id` due now. Returns false
    /// when there is no such message with pending recipients.
    pub async fn queue_retry(&self, id: i64) -> Result<bool> {
        self.write(move |c, _| {
            Box::pin(async move {
                let n = sqlx::query(
                    "UPDATE queue_recipients SET next_attempt = $1 WHERE message_id = $2 AND status = 'pending'",
                )
                .bind(now())
                .bind(id)
                .execute(&mut *c)
                .await?
                .rows_affected();
                Ok(n > 0)
            })
        })
        .await
    }

    /// Removes message `id` from the queue without a bounce. Returns false
    /// when there is no such message.
    pub async fn queue_remove(&self, id: i64) -> Result<bool> {
        self.write(move |c, _| {
            Box::pin(async move {
                let hash: Option<String> =
                    sqlx::query_scalar("SELECT blob_hash FROM queue_messages WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&mut *c)
                        .await?;
                let Some(hash) = hash else { return Ok(false) };
                delete_message(c, id, &hash).await?;
                Ok(true)
            })
        })
        .await
    }

    /// Earliest time something in the queue becomes due (pending and not
    /// leased), if anything is pending.
    pub async fn queue_next_due(&self) -> Result<Option<i64>> {
        let v: Option<i64> = sqlx::query_scalar(
            "SELECT MIN(CASE WHEN lease_until > next_attempt THEN lease_until ELSE next_attempt END) \
             FROM queue_recipients WHERE status = 'pending'",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(v)
    }
}

async fn finish_if_done(c: &mut sqlx::AnyConnection, message_id: i64) -> Result<bool> {
    let pending: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM queue_recipients WHERE message_id = $1 AND status = 'pending'",
    )
    .bind(message_id)
    .fetch_one(&mut *c)
    .await?;
    if pending > 0 {
        return Ok(false);
    }
    let hash: Option<String> =
        sqlx::query_scalar("SELECT blob_hash FROM queue_messages WHERE id = $1")
            .bind(message_id)
            .fetch_optional(&mut *c)
            .await?;
    if let Some(hash) = hash {
        delete_message(c, message_id, &hash).await?;
    }
    Ok(true)
}

async fn delete_message(c: &mut sqlx::AnyConnection, id: i64, hash: &str) -> Result<()> {
    sqlx::query("DELETE FROM queue_recipients WHERE message_id = $1")
        .bind(id)
        .execute(&mut *c)
        .await?;
    sqlx::query("DELETE FROM queue_messages WHERE id = $1")
        .bind(id)
        .execute(&mut *c)
        .await?;
    release_blob(c, hash, 1).await
}
