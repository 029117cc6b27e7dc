//! The queue's leases and settling, on SQLite (and PostgreSQL when reachable).

use std::collections::HashMap;
use std::sync::Arc;

use outpost_store::testing;
use outpost_store::{NewQueued, QueuedRecipient, RecipientOutcome, Store};

fn rcpt(a: &str) -> QueuedRecipient {
    QueuedRecipient {
        address: a.into(),
        ..Default::default()
    }
}

async fn exercise(store: &Store) {
    let msg: Arc<[u8]> = Arc::from(&b"Subject: x\r\n\r\nhi\r\n"[..]);
    let id = store
        .enqueue(
            msg,
            NewQueued {
                mail_from: "a@example.test".into(),
                recipients: vec![
                    rcpt("x@one.example"),
                    rcpt("y@one.example"),
                    rcpt("z@two.example"),
                ],
                body: "7bit".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let groups = store
        .queue_lease(now, 300, 10, 4, HashMap::new())
        .await
        .unwrap();
    assert_eq!(groups.len(), 2, "one group per domain");
    let one = groups.iter().find(|g| g.domain == "one.example").unwrap();
    assert_eq!(one.recipients.len(), 2);
    // Leased: a second lease gets nothing.
    assert!(store
        .queue_lease(now, 300, 10, 4, HashMap::new())
        .await
        .unwrap()
        .is_empty());
    // A busy domain is skipped.
    let finished = store
        .queue_settle(
            id,
            one.recipients
                .iter()
                .map(|r| {
                    (
                        r.id,
                        RecipientOutcome::Deferred {
                            next_attempt: now + 1,
                            error: "451 later".into(),
                            delay_notified: false,
                        },
                    )
                })
                .collect(),
        )
        .await
        .unwrap();
    assert!(!finished);
    let busy = HashMap::from([("one.example".to_string(), 4usize)]);
    assert!(store
        .queue_lease(now + 5, 300, 10, 4, busy)
        .await
        .unwrap()
        .is_empty());
    let again = store
        .queue_lease(now + 5, 300, 10, 4, HashMap::new())
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].recipients[0].attempts, 1);
    let mut outcomes: Vec<_> = again[0]
        .recipients
        .iter()
        .map(|r| (r.id, RecipientOutcome::Delivered("250 ok".into())))
        .collect();
    let two = groups.iter().find(|g| g.domain == "two.example").unwrap();
    outcomes.push((
        two.recipients[0].id,
        RecipientOutcome::Failed("550 no".into()),
    ));
    assert!(
        store.queue_settle(id, outcomes).await.unwrap(),
        "all final: finished"
    );
    assert!(store.queue_list().await.unwrap().is_empty());
    assert!(!store.queue_remove(id).await.unwrap());

    // A lease held by a worker that died (kill -9) runs out, and the
    // recipient is leased again — not before.
    let id = store
        .enqueue(
            Arc::from(&b"Subject: y\r\n\r\nhi\r\n"[..]),
            NewQueued {
                mail_from: "a@example.test".into(),
                recipients: vec![rcpt("x@three.example")],
                body: "7bit".into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let now = now + 10;
    assert_eq!(
        store
            .queue_lease(now, 60, 10, 4, HashMap::new())
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(store
        .queue_lease(now + 59, 60, 10, 4, HashMap::new())
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.queue_next_due().await.unwrap(), Some(now + 60));
    let again = store
        .queue_lease(now + 60, 60, 10, 4, HashMap::new())
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].message.id, id);
    // A running attempt renews its lease: not leased again at the old end.
    let rid = vec![again[0].recipients[0].id];
    store
        .queue_renew(rid.clone(), now + 90, now + 180)
        .await
        .unwrap();
    assert!(store
        .queue_lease(now + 121, 60, 10, 4, HashMap::new())
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.queue_next_due().await.unwrap(), Some(now + 180));
    // An expired lease is not revived by a late renewal (another worker
    // may hold the recipient by then).
    store.queue_renew(rid, now + 200, now + 300).await.unwrap();
    assert_eq!(store.queue_next_due().await.unwrap(), Some(now + 180));
    assert!(store.queue_retry(id).await.unwrap());
    assert!(store.queue_remove(id).await.unwrap());
    assert!(store.queue_list().await.unwrap().is_empty());
}

#[tokio::test]
async fn lease_settle_finish_sqlite() {
    let s = testing::sqlite().await;
    exercise(&s).await;
}

#[tokio::test]
async fn lease_settle_finish_postgres() {
    if let Some(s) = testing::postgres().await {
        exercise(&s).await;
    }
}
