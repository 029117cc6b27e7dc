//! Wake-ups for sessions waiting on a collection (IMAP IDLE; later
//! ActiveSync Ping and DAV push). The writer announces each collection's new
//! highest modseq after its transaction commits. In-process now; a PostgreSQL
//! LISTEN/NOTIFY listener can feed the same `announce` for several nodes.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

#[derive(Default)]
pub struct Notifier {
    senders: Mutex<HashMap<i64, watch::Sender<i64>>>,
}

impl Notifier {
    /// A receiver that changes whenever the collection's modseq does.
    pub fn subscribe(&self, collection: i64) -> watch::Receiver<i64> {
        let mut map = self.senders.lock().unwrap();
        map.entry(collection)
            .or_insert_with(|| watch::channel(0).0)
            .subscribe()
    }

    pub fn announce(&self, collection: i64, modseq: i64) {
        let mut map = self.senders.lock().unwrap();
        if let Some(tx) = map.get(&collection) {
            if tx.receiver_count() == 0 {
                map.remove(&collection);
            } else {
                tx.send_if_modified(|v| {
                    if modseq > *v {
                        *v = modseq;
                        true
                    } else {
                        false
                    }
                });
            }
        }
    }
}
