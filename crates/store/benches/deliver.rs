//! Store ingest benchmark (issue 2): 10,000 distinct 4 KB messages delivered
//! into 100 mailboxes by 20 concurrent writers, durability on (blob fsync +
//! WAL/commit fsync). Prints msgs/s per backend.
//!
//!     cargo bench -p outpost-store --bench deliver
//!
//! Environment: BENCH_MESSAGES (default 10000), BENCH_WRITERS (20),
//! BENCH_MAILBOXES (100), BENCH_INLINE_MAX (bodies up to this size in the
//! database; default the store's, 0 = every body a file), BENCH_BACKENDS
//! ("sqlite,postgres"), OUTPOST_TEST_PG for the PostgreSQL server,
//! BENCH_DROP_INDEX (an index to drop before the run, e.g. `messages_flags`:
//! the cost of one index, measured with the same build).

use std::sync::Arc;
use std::time::Instant;

use outpost_store::testing::{self, TestStore};
use outpost_store::*;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn message(i: usize) -> Arc<[u8]> {
    let mut m = format!(
        "From: sender{i}@outside.example\r\nTo: user{}@bench.test\r\nSubject: bench message {i}\r\n\
         Message-ID: <{i}.bench@outside.example>\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\n\r\n",
        i % 100
    )
    .into_bytes();
    let line = format!(
        "{i:08} lorem ipsum dolor sit amet, consectetur adipiscing elit sed do eiusmod\r\n"
    );
    while m.len() < 4096 {
        m.extend_from_slice(line.as_bytes());
    }
    m.truncate(4094);
    m.extend_from_slice(b"\r\n");
    m.into()
}

async fn run(name: &str, s: TestStore) {
    let messages = env("BENCH_MESSAGES", 10_000);
    let writers = env("BENCH_WRITERS", 20);
    let mailboxes = env("BENCH_MAILBOXES", 100);
    if let Ok(n) = std::env::var("BENCH_INLINE_MAX") {
        s.set_inline_max(n.parse().expect("BENCH_INLINE_MAX is a number"));
    }
    let dropped = std::env::var("BENCH_DROP_INDEX").unwrap_or_default();
    if !dropped.is_empty() {
        assert!(
            dropped
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_'),
            "BENCH_DROP_INDEX is an index name"
        );
        sqlx::query(&format!("DROP INDEX {dropped}"))
            .execute(s.pool())
            .await
            .unwrap();
    }
    s.add_domain("bench.test").await.unwrap();
    let mut boxes = Vec::new();
    for i in 0..mailboxes {
        let p = s
            .create_principal(NewPrincipal {
                kind: PrincipalKind::User,
                address: format!("user{i}@bench.test"),
                display_name: String::new(),
                password_hash: None,
                source: "internal".into(),
                external_id: None,
                quota_bytes: 0,
            })
            .await
            .unwrap();
        boxes.push(s.mailbox(p.id, "INBOX").await.unwrap().unwrap().id);
    }
    let bodies: Vec<Arc<[u8]>> = (0..messages).map(message).collect();
    let bodies = Arc::new(bodies);
    let boxes = Arc::new(boxes);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let st = s.store.clone();
        let bodies = bodies.clone();
        let boxes = boxes.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while i < bodies.len() {
                let mb = boxes[i % boxes.len()];
                st.deliver(
                    bodies[i].clone(),
                    vec![Target {
                        mailbox: mb,
                        flags: 0,
                        keywords: vec![],
                    }],
                    0,
                )
                .await
                .unwrap();
                i += writers;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM messages")
        .fetch_one(s.pool())
        .await
        .unwrap();
    assert_eq!(total as usize, messages);
    println!(
        "store-deliver backend={name} messages={messages} writers={writers} mailboxes={mailboxes} size=4096 \
         inline_max={} dropped_index={} seconds={secs:.2} msgs_per_sec={:.0}",
        s.inline_max(),
        if dropped.is_empty() { "-" } else { &dropped },
        messages as f64 / secs
    );
}

#[tokio::main]
async fn main() {
    // `cargo test --benches` runs bench binaries with no work to do.
    if std::env::args().any(|a| a == "--test" || a == "--list") {
        return;
    }
    let backends = std::env::var("BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    if backends.contains("sqlite") {
        run("sqlite", testing::sqlite().await).await;
    }
    if backends.contains("postgres") {
        match testing::postgres().await {
            Some(s) => run("postgres", s).await,
            None => println!("store-deliver backend=postgres skipped: server unreachable"),
        }
    }
}
