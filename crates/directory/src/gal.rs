//! The global address list: the directory's mail users and distribution
//! groups as GAL clients show them (SOGo's "Shared Addressbook", Outlook's
//! address book, ActiveSync GAL search, EWS ResolveNames).
//!
//! [`Directory::gal_entries`] lists every entry; [`Directory::search_gal`]
//! finds entries whose name or address starts with a query without reading
//! the whole directory: built-in principals through the store's indexed
//! search terms, LDAP entries with a server-side filter bounded by the
//! limit (the directory server's indexes answer it). [`to_vcard`] renders
//! an entry as a vCard 4.0 for the read-only GAL address book.

use calcard::vcard::{
    VCard, VCardEntry, VCardParameter, VCardProperty, VCardType, VCardValue, VCardVersion,
};
use outpost_store::{ContactAttrs, DirectoryRow, PrincipalKind};

use crate::{Directory, LdapEntry, Result, LDAP_SOURCE};

/// At most this many entries come back from one search.
pub const SEARCH_MAX: usize = 1000;

/// One entry of the global address list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GalEntry {
    /// Stable across renames: `principal-<id>` for built-in principals,
    /// the `objectGUID` / `entryUUID` for LDAP entries.
    pub uid: String,
    pub kind: PrincipalKind,
    /// "internal" or "ldap".
    pub source: String,
    pub display_name: String,
    /// Every address, primary first (never empty).
    pub addresses: Vec<String>,
    pub attrs: ContactAttrs,
    /// A group's member addresses: for built-in groups every listed
    /// member; for LDAP groups, in [`Directory::gal_entries`], the members
    /// that are themselves in the list (search results leave them empty).
    pub members: Vec<String>,
}

impl GalEntry {
    pub fn primary(&self) -> &str {
        &self.addresses[0]
    }

    fn from_row(r: DirectoryRow) -> Option<GalEntry> {
        if r.addresses.is_empty() {
            return None;
        }
        Some(GalEntry {
            uid: format!("principal-{}", r.principal.id),
            kind: r.principal.kind,
            source: r.principal.source,
            display_name: r.principal.display_name,
            addresses: r.addresses,
            attrs: r.attrs,
            members: r.members,
        })
    }

    fn from_ldap(e: LdapEntry) -> Option<GalEntry> {
        let mut addresses = vec![e.primary?];
        addresses.extend(e.secondary);
        Some(GalEntry {
            uid: e.id,
            kind: e.kind,
            source: LDAP_SOURCE.into(),
            display_name: e.name,
            addresses,
            attrs: e.attrs,
            members: Vec::new(),
        })
    }

    /// The name a list shows: the display name, else the primary address.
    pub fn shown_name(&self) -> &str {
        if self.display_name.trim().is_empty() {
            self.primary()
        } else {
            &self.display_name
        }
    }
}

fn sort_key(e: &GalEntry) -> (String, String) {
    (e.shown_name().to_lowercase(), e.primary().to_string())
}

/// Built-in entries first, then LDAP entries whose primary address no
/// built-in entry has; sorted by name.
fn merge(mut local: Vec<GalEntry>, ldap: Vec<GalEntry>) -> Vec<GalEntry> {
    let taken: std::collections::HashSet<String> = local
        .iter()
        .flat_map(|e| e.addresses.iter().cloned())
        .collect();
    local.extend(ldap.into_iter().filter(|e| !taken.contains(e.primary())));
    local.sort_by_cached_key(sort_key);
    local
}

impl Directory {
    /// Every user and distribution group with an address: the built-in
    /// ones and, with an LDAP source, the directory's (paged search).
    pub async fn gal_entries(&self) -> Result<Vec<GalEntry>> {
        let local: Vec<GalEntry> = self
            .store()
            .directory_listing("internal")
            .await?
            .into_iter()
            .filter_map(GalEntry::from_row)
            .collect();
        let ldap = match self.ldap() {
            Some(l) => {
                let entries = l.gal_entries().await?;
                let by_dn: std::collections::HashMap<String, String> = entries
                    .iter()
                    .filter_map(|e| Some((e.dn.to_lowercase(), e.primary.clone()?)))
                    .collect();
                entries
                    .into_iter()
                    .filter_map(|e| {
                        let members: Vec<String> = e
                            .members
                            .iter()
                            .filter_map(|dn| by_dn.get(&dn.to_lowercase()).cloned())
                            .collect();
                        let mut g = GalEntry::from_ldap(e)?;
                        g.members = members;
                        Some(g)
                    })
                    .collect()
            }
            None => Vec::new(),
        };
        Ok(merge(local, ldap))
    }

    /// Entries whose display name, given name, surname, any word of those,
    /// or any address starts with `query` (case-insensitive), sorted by
    /// name, at most `limit` (and at most [`SEARCH_MAX`]). An empty query
    /// matches every entry (still bounded by the limit).
    pub async fn search_gal(&self, query: &str, limit: usize) -> Result<Vec<GalEntry>> {
        let limit = limit.min(SEARCH_MAX);
        let q = query.trim().to_lowercase();
        if limit == 0 {
            return Ok(Vec::new());
        }
        let ids = self.store().search_directory("internal", &q, limit).await?;
        let local: Vec<GalEntry> = self
            .store()
            .directory_rows(&ids)
            .await?
            .into_iter()
            .filter_map(GalEntry::from_row)
            .collect();
        let ldap = match self.ldap() {
            Some(l) => l
                .search_prefix(&q, limit)
                .await?
                .into_iter()
                .filter_map(GalEntry::from_ldap)
                .collect(),
            None => Vec::new(),
        };
        let mut all = merge(local, ldap);
        all.truncate(limit);
        Ok(all)
    }
}

/// The entry as a vCard 4.0 (RFC 6350) built with calcard: UID, FN, N,
/// EMAIL (the primary with PREF=1), TITLE, ORG (company; department), the
/// office as a work ADR's extended address, TEL (work voice, cell), and for
/// groups KIND:group with a MEMBER (`mailto:`) per member.
pub fn to_vcard(e: &GalEntry) -> String {
    let mut card = VCard::default();
    let text = |p: VCardProperty, v: &str| VCardEntry::new(p).with_value(v.to_string());
    card.entries.push(text(VCardProperty::Uid, &e.uid));
    if e.kind == PrincipalKind::Group {
        card.entries
            // Lower case as in RFC 6350's examples (calcard's KIND value
            // would be written upper case, which some clients compare
            // case-sensitively).
            .push(VCardEntry::new(VCardProperty::Kind).with_value("group".to_string()));
    }
    card.entries.push(text(VCardProperty::Fn, e.shown_name()));
    let a = &e.attrs;
    if e.kind == PrincipalKind::User || a.surname.is_some() || a.given_name.is_some() {
        // N: family; given; additional; prefixes; suffixes.
        card.entries
            .push(VCardEntry::new(VCardProperty::N).with_values(vec![
                VCardValue::Text(a.surname.clone().unwrap_or_default()),
                VCardValue::Text(a.given_name.clone().unwrap_or_default()),
                VCardValue::Text(String::new()),
                VCardValue::Text(String::new()),
                VCardValue::Text(String::new()),
            ]));
    }
    for (i, addr) in e.addresses.iter().enumerate() {
        let mut entry =
            VCardEntry::new(VCardProperty::Email).with_param(VCardParameter::typ(VCardType::Work));
        if i == 0 {
            entry = entry.with_param(VCardParameter::pref(1u32));
        }
        card.entries.push(entry.with_value(addr.clone()));
    }
    if let Some(t) = &a.title {
        card.entries.push(text(VCardProperty::Title, t));
    }
    if a.company.is_some() || a.department.is_some() {
        let mut org = vec![VCardValue::Text(a.company.clone().unwrap_or_default())];
        if let Some(d) = &a.department {
            org.push(VCardValue::Text(d.clone()));
        }
        card.entries
            .push(VCardEntry::new(VCardProperty::Org).with_values(org));
    }
    if let Some(o) = &a.office {
        // vCard has no office property; the "extended address" of a work
        // ADR (RFC 6350 6.3.1: suite, room) is the nearest one.
        card.entries.push(
            VCardEntry::new(VCardProperty::Adr)
                .with_param(VCardParameter::typ(VCardType::Work))
                .with_values(vec![
                    VCardValue::Text(String::new()),
                    VCardValue::Text(o.clone()),
                    VCardValue::Text(String::new()),
                    VCardValue::Text(String::new()),
                    VCardValue::Text(String::new()),
                    VCardValue::Text(String::new()),
                    VCardValue::Text(String::new()),
                ]),
        );
    }
    if let Some(p) = &a.phone {
        card.entries.push(
            VCardEntry::new(VCardProperty::Tel)
                .with_param(VCardParameter::typ(VCardType::Work))
                .with_param(VCardParameter::typ(VCardType::Voice))
                .with_value(p.clone()),
        );
    }
    if let Some(m) = &a.mobile {
        card.entries.push(
            VCardEntry::new(VCardProperty::Tel)
                .with_param(VCardParameter::typ(VCardType::Cell))
                .with_value(m.clone()),
        );
    }
    if e.kind == PrincipalKind::Group {
        for m in &e.members {
            card.entries
                .push(text(VCardProperty::Member, &format!("mailto:{m}")));
        }
    }
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = card.write_to(&mut out, VCardVersion::V4_0);
    out
}
