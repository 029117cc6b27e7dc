//! Development only: the DAV router over the in-memory store on
//! 127.0.0.1 (port from the first argument, default 0 = any), every
//! request as the user `alice@example.com` (no password check; the real
//! server authenticates in `outpost_http`). Prints the URL, then serves
//! until killed. Point a client at it:
//!
//! ```text
//! cargo run -p outpost-dav --features testing --example dev_server
//! ```

use std::sync::Arc;

use axum::extract::Request;
use axum::middleware::{self, Next};
use outpost_dav::memory::MemDavStore;
use outpost_dav::{router, DavConfig};
use outpost_net::auth::AuthUser;

#[tokio::main]
async fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    let store = Arc::new(MemDavStore::new());
    let id = store.add_principal("alice@example.com", &["alias@example.com"], None);
    store.add_principal("bob@example.com", &[], None);
    let app = router(store, DavConfig::default()).layer(middleware::from_fn(
        move |mut req: Request, next: Next| async move {
            req.extensions_mut().insert(AuthUser {
                principal_id: id,
                login: "alice@example.com".into(),
                quota_bytes: 0,
            });
            next.run(req).await
        },
    ));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    println!("http://{}/dav/", listener.local_addr().unwrap());
    axum::serve(listener, app).await.unwrap();
}
