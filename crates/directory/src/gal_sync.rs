//! Keeps each hosted domain's Global Address List address book (the
//! store's `gal_address_book`) equal to what the directory lists.
//!
//! [`refresh_gal`] computes the wanted vCards from
//! [`Directory::gal_entries`] ([`to_vcard`]), groups them by the domain of
//! each entry's primary address, and applies only the difference: a card
//! whose bytes are unchanged is not written again, so a client's
//! sync-collection after a refresh gets exactly the entries that changed
//! (through the one change journal, like any address book).
//!
//! When the directory cannot be listed (an LDAP server that does not
//! answer), nothing is changed: an outage never empties the GAL.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use outpost_store::groupware::{DeleteOutcome, PutOutcome};
use outpost_store::{BlobStore, StoreError};

use crate::gal::{to_vcard, GalEntry};
use crate::{Directory, Result};

/// What one refresh did, over every domain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GalRefresh {
    pub domains: usize,
    pub added: usize,
    pub changed: usize,
    pub removed: usize,
    pub unchanged: usize,
    /// Entries whose primary address is in no hosted domain, or whose card
    /// the store refused (each is logged).
    pub skipped: usize,
}

/// The resource name of an entry in the GAL address book: its stable UID,
/// so a renamed user keeps the same href.
pub fn gal_resource_name(e: &GalEntry) -> String {
    // UIDs are `principal-<id>` or an LDAP GUID/UUID; anything that could
    // not be a URL segment is replaced so the name stays valid.
    let safe: String = e
        .uid
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.vcf")
}

fn domain_of(address: &str) -> Option<String> {
    address
        .rsplit_once('@')
        .map(|(_, d)| d.trim_end_matches('.').to_lowercase())
}

/// Brings every hosted domain's GAL up to date with the directory.
pub async fn refresh_gal(dir: &Directory) -> Result<GalRefresh> {
    let entries = dir.gal_entries().await?;
    refresh_with(dir, entries).await
}

/// [`refresh_gal`] with the entries already listed.
pub async fn refresh_with(dir: &Directory, entries: Vec<GalEntry>) -> Result<GalRefresh> {
    let store = dir.store();
    let mut report = GalRefresh::default();
    // domain -> resource name -> card
    let mut wanted: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let domains = store.domains().await?;
    for d in &domains {
        wanted.insert(d.name.clone(), BTreeMap::new());
    }
    for e in &entries {
        match domain_of(e.primary()).and_then(|d| wanted.get_mut(&d)) {
            Some(cards) => {
                cards.insert(gal_resource_name(e), to_vcard(e));
            }
            None => report.skipped += 1,
        }
    }
    for (domain, cards) in wanted {
        let gal = match store.gal_address_book(&domain).await {
            Ok(g) => g,
            // Removed while we listed: nothing to fill.
            Err(StoreError::NotFound(_)) => continue,
            Err(e) => return Err(e),
        };
        report.domains += 1;
        let mut have: HashMap<String, String> = store
            .groupware_objects(gal.id)
            .await?
            .into_iter()
            .map(|m| (m.name, m.etag))
            .collect();
        for (name, card) in cards {
            let etag = BlobStore::hash(card.as_bytes());
            let existed = match have.remove(&name) {
                Some(old) if old == etag => {
                    report.unchanged += 1;
                    continue;
                }
                Some(_) => true,
                None => false,
            };
            let bytes: Arc<[u8]> = card.into_bytes().into();
            match store.put_gal_entry(gal.id, &name, bytes).await? {
                PutOutcome::Created(_) | PutOutcome::Replaced(_) => {
                    if existed {
                        report.changed += 1;
                    } else {
                        report.added += 1;
                    }
                }
                other => {
                    tracing::warn!(domain = %domain, entry = %name, outcome = ?other, "gal: entry not stored");
                    report.skipped += 1;
                }
            }
        }
        for name in have.into_keys() {
            match store.delete_gal_entry(gal.id, &name).await? {
                DeleteOutcome::Deleted { .. } => report.removed += 1,
                DeleteOutcome::NotFound => {}
                other => {
                    tracing::warn!(domain = %domain, entry = %name, outcome = ?other, "gal: entry not removed")
                }
            }
        }
    }
    Ok(report)
}
