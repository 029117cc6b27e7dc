//! The directory: who exists, which addresses reach whom, and who may log in.
//!
//! Every protocol asks the directory the same three questions:
//! [`Directory::resolve`] (who receives mail for this address: users,
//! groups expanded recursively without loops or duplicates, catch-all),
//! [`Directory::authenticate`] (login by primary address or any alias), and
//! [`Directory::may_send_as`] (the submission sender check).
//!
//! The built-in source keeps principals in the store's tables. An external
//! LDAP/Active Directory source plugs in behind the same methods: it maps
//! `mail`/`proxyAddresses` to addresses, `member` to group members, binds as
//! the user to authenticate, and keys principals by `objectGUID`/`entryUUID`
//! through the store's `external_id` so renamed users keep their mailboxes.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use outpost_store::groupware::SharedCollection;
use outpost_store::{
    domain_of, normalize_address, NewPrincipal, Principal, PrincipalKind, Store, StoreError,
};
use sha2::{Digest, Sha256};

pub mod gal;
pub mod gal_sync;
pub mod ldap;
pub use gal::{to_vcard, GalEntry};
pub use gal_sync::{refresh_gal, GalRefresh};
pub use ldap::{ContactAttrNames, LdapEntry, LdapSettings, LdapSource, Mapping};
pub use outpost_store::ContactAttrs;

/// The `source` recorded on principals that stand for LDAP entries.
pub const LDAP_SOURCE: &str = "ldap";

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Where mail for one address goes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolution {
    /// Local users who receive a copy, each once.
    pub users: Vec<Recipient>,
    /// Outside addresses listed as group members (to be sent on).
    pub external: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub principal_id: i64,
    /// The user's primary address.
    pub address: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// The domain is hosted and the address reaches these recipients.
    Local(Resolution),
    /// The domain is hosted but nobody has this address.
    Unknown,
    /// The domain is not hosted here.
    NotLocal,
}

/// Recent logins by a keyed hash of login and password: (principal id,
/// password hash or primary address, when).
type LoginCache = Arc<Mutex<HashMap<[u8; 32], (i64, String, Instant)>>>;

/// What `Directory::describe` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description {
    /// "internal" or "ldap".
    pub source: String,
    pub kind: PrincipalKind,
    pub dn: Option<String>,
    /// objectGUID / entryUUID.
    pub external_id: Option<String>,
    /// The store principal (absent for an LDAP entry never used yet).
    pub principal_id: Option<i64>,
    pub name: String,
    pub primary: Option<String>,
    pub secondary: Vec<String>,
    /// Login attribute values (sAMAccountName, userPrincipalName, uid).
    pub logins: Vec<String>,
    /// Groups the entry belongs to (nested included for LDAP).
    pub groups: Vec<String>,
    pub enabled: bool,
    /// A group's members (LDAP: every user, nested groups expanded).
    pub members: Vec<String>,
}

/// Nesting deeper than this is treated as a loop.
const MAX_EXPANSION: usize = 10_000;

#[derive(Clone)]
pub struct Directory {
    store: Store,
    auth_cache: LoginCache,
    cache_key: [u8; 32],
    /// An external directory consulted for what the store does not know.
    ldap: Option<Arc<LdapSource>>,
    /// Recent LDAP logins: (principal id, primary address, when), kept for
    /// the directory's cache time.
    ldap_auth: LoginCache,
    /// Principal ids of LDAP entries, by entry id, once ensured in the store.
    ldap_ids: Arc<Mutex<HashMap<String, i64>>>,
}

impl Directory {
    pub fn new(store: Store) -> Directory {
        Directory {
            store,
            auth_cache: Arc::default(),
            cache_key: rand::random(),
            ldap: None,
            ldap_auth: Arc::default(),
            ldap_ids: Arc::default(),
        }
    }

    /// The store's principals plus an LDAP directory: users, addresses and
    /// groups come from LDAP; the store's own aliases, groups and users
    /// still work on top (e.g. postmaster@ as a local group of LDAP users).
    pub fn with_ldap(store: Store, ldap: Arc<LdapSource>) -> Directory {
        Directory {
            ldap: Some(ldap),
            ..Directory::new(store)
        }
    }

    pub fn ldap(&self) -> Option<&LdapSource> {
        self.ldap.as_deref()
    }

    /// The store principal standing for an LDAP entry (created with its
    /// mailboxes on first use), by the entry's stable id.
    pub async fn ensure_ldap_principal(&self, e: &LdapEntry) -> Result<i64> {
        if let Some(id) = self.ldap_ids.lock().unwrap().get(&e.id) {
            return Ok(*id);
        }
        let id = self
            .store
            .ensure_external_principal(LDAP_SOURCE, &e.id, e.kind, &e.name)
            .await?;
        self.ldap_ids.lock().unwrap().insert(e.id.clone(), id);
        Ok(id)
    }

    /// The LDAP entry behind a store principal of source "ldap".
    async fn ldap_entry_of(&self, p: &Principal) -> Result<Option<LdapEntry>> {
        match (&self.ldap, &p.external_id) {
            (Some(l), Some(id)) if p.source == LDAP_SOURCE => l.by_id(id).await,
            _ => Ok(None),
        }
    }

    async fn ldap_recipient(&self, e: &LdapEntry, fallback: &str) -> Result<Recipient> {
        Ok(Recipient {
            principal_id: self.ensure_ldap_principal(e).await?,
            address: e.primary.clone().unwrap_or_else(|| fallback.to_string()),
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub async fn is_local_domain(&self, domain: &str) -> Result<bool> {
        Ok(self.store.domain(domain).await?.is_some())
    }

    /// Resolves an address to its recipients: a user, a group expanded
    /// recursively (each user once, loops cut), or the domain's catch-all.
    pub async fn resolve(&self, address: &str) -> Result<Lookup> {
        let address = normalize_address(address);
        // Fast path, one query: the address belongs to an enabled user.
        if let Some(p) = self.store.principal_by_address(&address).await? {
            if p.kind == PrincipalKind::User && !p.disabled && p.source != LDAP_SOURCE {
                let address = p.address.unwrap_or(address);
                return Ok(Lookup::Local(Resolution {
                    users: vec![Recipient {
                        principal_id: p.id,
                        address,
                    }],
                    external: Vec::new(),
                }));
            }
        }
        let Some(domain) = domain_of(&address) else {
            return Ok(Lookup::NotLocal);
        };
        let Some(dom) = self.store.domain(domain).await? else {
            return Ok(Lookup::NotLocal);
        };
        let start = if self.knows(&address).await? {
            address.clone()
        } else {
            match subaddress_base(&address) {
                Some(base) if self.knows(&base).await? => base,
                _ => match dom.catchall {
                    Some(c) => c,
                    None => return Ok(Lookup::Unknown),
                },
            }
        };
        let res = self.expand(&start).await?;
        if res.users.is_empty() && res.external.is_empty() {
            return Ok(Lookup::Unknown);
        }
        Ok(Lookup::Local(res))
    }

    /// Does the store or the LDAP directory have this address?
    pub async fn knows(&self, address: &str) -> Result<bool> {
        if self.store.principal_by_address(address).await?.is_some() {
            return Ok(true);
        }
        match &self.ldap {
            Some(l) => Ok(l.by_address(address).await?.is_some()),
            None => Ok(false),
        }
    }

    /// Breadth-first expansion of an address through groups.
    async fn expand(&self, start: &str) -> Result<Resolution> {
        let mut out = Resolution::default();
        let mut seen_addr = HashSet::new();
        let mut seen_user = HashSet::new();
        let mut queue = VecDeque::from([start.to_string()]);
        while let Some(addr) = queue.pop_front() {
            if !seen_addr.insert(addr.clone()) || seen_addr.len() > MAX_EXPANSION {
                continue;
            }
            let stored = self.store.principal_by_address(&addr).await?;
            if let Some(p) = stored.as_ref().filter(|p| p.source == LDAP_SOURCE) {
                // A local alias or group member naming an LDAP entry.
                if let Some(e) = self.ldap_entry_of(p).await? {
                    self.expand_ldap(&e, &addr, &mut out, &mut seen_user)
                        .await?;
                }
                continue;
            }
            if stored.is_none() {
                if let Some(l) = &self.ldap {
                    if let Some(e) = l.by_address(&addr).await? {
                        self.expand_ldap(&e, &addr, &mut out, &mut seen_user)
                            .await?;
                        continue;
                    }
                }
            }
            match stored {
                Some(p) if p.kind == PrincipalKind::User => {
                    if !p.disabled && seen_user.insert(p.id) {
                        out.users.push(Recipient {
                            principal_id: p.id,
                            address: p.address.unwrap_or(addr),
                        });
                    }
                }
                Some(p) => {
                    if seen_user.insert(-p.id) {
                        queue.extend(self.store.members(p.id).await?);
                    }
                }
                None => {
                    let hosted = match domain_of(&addr) {
                        Some(d) => self.store.domain(d).await?.is_some(),
                        None => true,
                    };
                    if hosted {
                        tracing::warn!("group member {addr} does not exist; skipped");
                    } else if !out.external.contains(&addr) {
                        out.external.push(addr);
                    }
                }
            }
        }
        Ok(out)
    }

    /// An LDAP user, or every user of an LDAP group (nested groups through
    /// the directory). Disabled accounts still receive mail, as in AD,
    /// where shared mailboxes are disabled accounts; they cannot log in.
    async fn expand_ldap(
        &self,
        e: &LdapEntry,
        addr: &str,
        out: &mut Resolution,
        seen_user: &mut HashSet<i64>,
    ) -> Result<()> {
        let users = match e.kind {
            PrincipalKind::User => vec![e.clone()],
            PrincipalKind::Group => match &self.ldap {
                Some(l) => l.group_users(e).await?,
                None => Vec::new(),
            },
        };
        for u in users {
            let r = self.ldap_recipient(&u, addr).await?;
            if seen_user.insert(r.principal_id) {
                out.users.push(r);
            }
        }
        Ok(())
    }

    /// Checks a login (primary address or any alias) and password. `Ok(None)`
    /// for a wrong login or password, a disabled account, or a group.
    pub async fn authenticate(&self, login: &str, password: &str) -> Result<Option<Principal>> {
        let login = normalize_address(login);
        let key = self.cache_entry(&login, password);
        let stored = self.store.principal_by_address(&login).await?;
        if self.ldap.is_some() && stored.as_ref().is_none_or(|p| p.source == LDAP_SOURCE) {
            return self.authenticate_ldap(&login, password, stored, key).await;
        }
        if let Some((id, hash)) = self.cached(&key) {
            // Valid only while the login still names that user and the
            // password has not changed, also when another process (the
            // CLI, another node) changed it.
            if let Some(p) = stored.clone() {
                if p.id == id
                    && !p.disabled
                    && p.kind == PrincipalKind::User
                    && p.password_hash.as_deref() == Some(hash.as_str())
                {
                    return Ok(Some(p));
                }
            }
            self.auth_cache.lock().unwrap().remove(&key);
        }
        let Some(p) = stored else {
            // Spend the same time as a real check so timing tells nothing.
            let _ = verify_limited(password, DUMMY_HASH).await;
            return Ok(None);
        };
        if p.kind != PrincipalKind::User || p.disabled {
            return Ok(None);
        }
        let Some(hash) = p.password_hash.clone() else {
            return Ok(None);
        };
        let ok = verify_limited(password, &hash).await;
        if ok {
            let hash = p.password_hash.clone().unwrap_or_default();
            self.auth_cache
                .lock()
                .unwrap()
                .insert(key, (p.id, hash, Instant::now()));
            Ok(Some(p))
        } else {
            Ok(None)
        }
    }

    /// Login against LDAP: find the user with the service account, then
    /// bind as the user's DN with the password. Successful logins are
    /// remembered for the directory's cache time only.
    async fn authenticate_ldap(
        &self,
        login: &str,
        password: &str,
        stored: Option<Principal>,
        key: [u8; 32],
    ) -> Result<Option<Principal>> {
        let Some(ldap) = &self.ldap else {
            return Ok(None);
        };
        if password.is_empty() {
            return Ok(None);
        }
        let ttl = ldap.settings().cache_ttl;
        let hit = {
            let mut c = self.ldap_auth.lock().unwrap();
            match c.get(&key) {
                Some((id, addr, at)) if at.elapsed() < ttl => Some((*id, addr.clone())),
                Some(_) => {
                    c.remove(&key);
                    None
                }
                None => None,
            }
        };
        if let Some((id, addr)) = hit {
            if let Some(mut p) = self.store.principal(id).await? {
                p.address = Some(addr);
                return Ok(Some(p));
            }
        }
        let entry = match &stored {
            Some(p) => self.ldap_entry_of(p).await?,
            None => ldap.by_login(login).await?,
        };
        let Some(e) = entry.filter(|e| e.kind == PrincipalKind::User) else {
            return Ok(None);
        };
        if !e.enabled {
            tracing::info!("login refused: {} is disabled in the directory", e.dn);
            return Ok(None);
        }
        if !ldap.check_password(&e.dn, password).await? {
            return Ok(None);
        }
        let id = self.ensure_ldap_principal(&e).await?;
        let Some(mut p) = self.store.principal(id).await? else {
            return Ok(None);
        };
        let address = e.primary.clone().unwrap_or_else(|| login.to_string());
        p.address = Some(address.clone());
        if !ttl.is_zero() {
            let mut c = self.ldap_auth.lock().unwrap();
            if c.len() > 10_000 {
                c.retain(|_, (_, _, at)| at.elapsed() < ttl);
            }
            c.insert(key, (id, address, Instant::now()));
        }
        Ok(Some(p))
    }

    fn cache_entry(&self, login: &str, password: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.cache_key);
        h.update(login.as_bytes());
        h.update([0]);
        h.update(password.as_bytes());
        h.finalize().into()
    }

    fn cached(&self, key: &[u8; 32]) -> Option<(i64, String)> {
        let mut c = self.auth_cache.lock().unwrap();
        match c.get(key) {
            Some((id, hash, at)) if at.elapsed() < AUTH_CACHE_TTL => Some((*id, hash.clone())),
            Some(_) => {
                c.remove(key);
                None
            }
            None => None,
        }
    }

    /// Forgets cached logins (after a password change or removal).
    pub fn clear_cache(&self) {
        self.auth_cache.lock().unwrap().clear();
        self.ldap_auth.lock().unwrap().clear();
        if let Some(l) = &self.ldap {
            l.clear_cache();
        }
    }

    /// May this user use `address` as envelope sender or From:? Yes for any
    /// of the user's own addresses and for groups the user belongs to
    /// (directly or through nested groups).
    pub async fn may_send_as(&self, principal_id: i64, address: &str) -> Result<bool> {
        let address = normalize_address(address);
        match self.store.principal_by_address(&address).await? {
            Some(p) if p.id == principal_id => return Ok(true),
            Some(p) if p.kind == PrincipalKind::Group || p.source == LDAP_SOURCE => {
                let res = self.expand(&address).await?;
                return Ok(res.users.iter().any(|r| r.principal_id == principal_id));
            }
            Some(_) => return Ok(false),
            None => {}
        }
        let Some(ldap) = &self.ldap else {
            return Ok(false);
        };
        match ldap.by_address(&address).await? {
            Some(e) if e.kind == PrincipalKind::User => {
                Ok(self.ensure_ldap_principal(&e).await? == principal_id)
            }
            Some(_) => {
                let res = self.expand(&address).await?;
                Ok(res.users.iter().any(|r| r.principal_id == principal_id))
            }
            None => Ok(false),
        }
    }

    /// Every address of a principal, primary first, each once, lower case:
    /// the store's (primary and aliases) and, for an LDAP principal, the
    /// entry's `mail` and secondary `proxyAddresses`. Scheduling matches
    /// ORGANIZER/ATTENDEE against these (an invitation to an alias is the
    /// user's); CalDAV lists them as `calendar-user-address-set`.
    pub async fn addresses_of(&self, principal_id: i64) -> Result<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        let mut add = |a: &str| {
            let a = normalize_address(a);
            if !a.is_empty() && !out.contains(&a) {
                out.push(a);
            }
        };
        let Some(p) = self.store.principal(principal_id).await? else {
            return Ok(Vec::new());
        };
        let stored = self.store.addresses_of(principal_id).await?;
        if let Some(e) = self.ldap_entry_of(&p).await? {
            if let Some(a) = &e.primary {
                add(a);
            }
            for a in &e.secondary {
                add(a);
            }
        }
        for (a, _) in &stored {
            add(a);
        }
        Ok(out)
    }

    // --- inspection -----------------------------------------------------

    /// How a login or address resolves, for `outpost directory lookup`:
    /// the entry behind it, its addresses, groups and state. `None` when
    /// neither the store nor the LDAP directory knows it.
    pub async fn describe(&self, query: &str) -> Result<Option<Description>> {
        let q = normalize_address(query);
        let stored = self.store.principal_by_address(&q).await?;
        let entry = match &stored {
            Some(p) if p.source == LDAP_SOURCE => self.ldap_entry_of(p).await?,
            Some(p) => {
                let addrs = self.store.addresses_of(p.id).await?;
                let mut groups = Vec::new();
                for (a, _) in &addrs {
                    for g in self.store.groups_with_member(a).await? {
                        if let Some(g) = self.store.principal(g).await? {
                            groups.push(g.address.unwrap_or_default());
                        }
                    }
                }
                return Ok(Some(Description {
                    source: p.source.clone(),
                    kind: p.kind,
                    dn: None,
                    external_id: None,
                    principal_id: Some(p.id),
                    name: p.display_name.clone(),
                    primary: p.address.clone(),
                    secondary: addrs
                        .into_iter()
                        .filter(|(_, pr)| !pr)
                        .map(|(a, _)| a)
                        .collect(),
                    logins: Vec::new(),
                    groups,
                    enabled: !p.disabled,
                    members: match p.kind {
                        PrincipalKind::Group => self.store.members(p.id).await?,
                        PrincipalKind::User => Vec::new(),
                    },
                }));
            }
            None => match &self.ldap {
                Some(l) => match l.by_address(&q).await? {
                    Some(e) => Some(e),
                    None => l.by_login(query.trim()).await?,
                },
                None => None,
            },
        };
        let (Some(e), Some(l)) = (entry, &self.ldap) else {
            return Ok(None);
        };
        let groups = l
            .groups_of(&e)
            .await?
            .into_iter()
            .map(|g| match g.primary {
                Some(a) => format!("{a} ({})", g.name),
                None => g.name,
            })
            .collect();
        let members = match e.kind {
            PrincipalKind::Group => l
                .group_users(&e)
                .await?
                .into_iter()
                .map(|u| u.primary.unwrap_or(u.dn))
                .collect(),
            PrincipalKind::User => Vec::new(),
        };
        let principal_id = self
            .store
            .principal_by_external_id(LDAP_SOURCE, &e.id)
            .await?
            .map(|p| p.id);
        Ok(Some(Description {
            source: LDAP_SOURCE.into(),
            kind: e.kind,
            dn: Some(e.dn),
            external_id: Some(e.id),
            principal_id,
            name: e.name,
            primary: e.primary,
            secondary: e.secondary,
            logins: e.logins,
            groups,
            enabled: e.enabled,
            members,
        }))
    }

    // --- administration -------------------------------------------------

    /// Adds a user. Fails with a message saying what to do when the domain
    /// is not hosted.
    pub async fn add_user(&self, address: &str, name: &str, password: &str) -> Result<Principal> {
        let address = self.check_new_address(address).await?;
        check_password(password)?;
        let hash = hash_password(password)?;
        self.store
            .create_principal(NewPrincipal {
                kind: PrincipalKind::User,
                address,
                display_name: name.to_string(),
                password_hash: Some(hash),
                source: "internal".into(),
                external_id: None,
                quota_bytes: 0,
            })
            .await
    }

    pub async fn add_group(&self, address: &str, name: &str) -> Result<Principal> {
        let address = self.check_new_address(address).await?;
        self.store
            .create_principal(NewPrincipal {
                kind: PrincipalKind::Group,
                address,
                display_name: name.to_string(),
                password_hash: None,
                source: "internal".into(),
                external_id: None,
                quota_bytes: 0,
            })
            .await
    }

    pub async fn set_password(&self, address: &str, password: &str) -> Result<()> {
        check_password(password)?;
        let p = self.user(address).await?;
        if p.source != "internal" {
            return Err(StoreError::Invalid(format!(
                "{address} comes from the directory ({}); change the password there",
                p.source
            )));
        }
        self.store
            .set_password_hash(p.id, hash_password(password)?)
            .await?;
        self.clear_cache();
        Ok(())
    }

    /// Changes the display name and directory attributes (title,
    /// department, phones...) of a built-in user or group. Attributes left
    /// `None` keep their value; an empty string clears one.
    pub async fn update_contact(
        &self,
        address: &str,
        name: Option<String>,
        attrs: ContactAttrs,
    ) -> Result<Principal> {
        let p = self
            .store
            .principal_by_address(address)
            .await?
            .ok_or_else(|| {
                StoreError::NotFound(format!(
                    "{} (no user or group has this address)",
                    normalize_address(address)
                ))
            })?;
        if p.source != "internal" {
            return Err(StoreError::Invalid(format!(
                "{address} comes from the directory ({}); change it there",
                p.source
            )));
        }
        let merged = self
            .store
            .contact_attrs(p.id)
            .await?
            .merged(attrs)
            .normalized()?;
        if let Some(n) = name {
            let n = n.trim().to_string();
            if n.chars().any(char::is_control) {
                return Err(StoreError::Invalid(
                    "the name must not contain control characters".into(),
                ));
            }
            self.store.set_display_name(p.id, n).await?;
        }
        self.store.set_contact_attrs(p.id, merged).await?;
        self.store
            .principal(p.id)
            .await?
            .ok_or_else(|| StoreError::NotFound(format!("principal {}", p.id)))
    }

    /// Adds an alias address to the user or group that owns `target`.
    pub async fn add_alias(&self, alias: &str, target: &str) -> Result<()> {
        let alias = self.check_new_address(alias).await?;
        let owner = match self.store.principal_by_address(target).await? {
            Some(p) => p.id,
            // A local alias of an LDAP user or group: it points at the
            // entry's principal, so it follows the entry through renames.
            None => match &self.ldap {
                Some(l) => match l.by_address(target).await? {
                    Some(e) => self.ensure_ldap_principal(&e).await?,
                    None => 0,
                },
                None => 0,
            },
        };
        if owner == 0 {
            return Err(StoreError::NotFound(format!(
                "{target} (no user or group has this address)"
            )));
        }
        self.store.add_address(owner, &alias).await
    }

    /// A user by any of its addresses (or, from LDAP, any login name).
    pub async fn user(&self, address: &str) -> Result<Principal> {
        let found = match self.store.principal_by_address(address).await? {
            Some(p) if p.source == LDAP_SOURCE => {
                let e = self.ldap_entry_of(&p).await?;
                Some(p).map(|mut p| {
                    p.address = e.and_then(|e| e.primary);
                    p
                })
            }
            Some(p) => Some(p),
            None => match &self.ldap {
                Some(l) => match l.by_login(address.trim()).await? {
                    Some(e) => {
                        let id = self.ensure_ldap_principal(&e).await?;
                        self.store.principal(id).await?.map(|mut p| {
                            p.address = e.primary.clone();
                            p
                        })
                    }
                    None => None,
                },
                None => None,
            },
        };
        match found {
            Some(p) if p.kind == PrincipalKind::User => Ok(p),
            _ => Err(StoreError::NotFound(format!(
                "user {}",
                normalize_address(address)
            ))),
        }
    }

    /// A group by any of its addresses: a built-in one, else (with an LDAP
    /// source) a directory group, whose store principal is made on first
    /// use (keyed by the entry's id, as users are).
    pub async fn group(&self, address: &str) -> Result<Principal> {
        let found = match self.store.principal_by_address(address).await? {
            Some(p) => Some(p),
            None => match &self.ldap {
                Some(l) => match l.by_address(&normalize_address(address)).await? {
                    Some(e) if e.kind == PrincipalKind::Group => {
                        let id = self.ensure_ldap_principal(&e).await?;
                        self.store.principal(id).await?.map(|mut p| {
                            p.address = e.primary.clone();
                            p
                        })
                    }
                    _ => None,
                },
                None => None,
            },
        };
        match found {
            Some(p) if p.kind == PrincipalKind::Group => Ok(p),
            _ => Err(StoreError::NotFound(format!(
                "group {}",
                normalize_address(address)
            ))),
        }
    }

    /// Every group a principal belongs to, directly or through nested
    /// groups, as store principal ids: the LDAP directory's groups of an
    /// LDAP entry (each made a store principal on first use) and the
    /// built-in groups that list any address of the principal or of one
    /// of those groups (a local group may hold an LDAP group).
    pub async fn groups_of(&self, principal_id: i64) -> Result<Vec<i64>> {
        let mut groups: Vec<i64> = Vec::new();
        let mut addresses = self.addresses_of(principal_id).await?;
        if let (Some(l), Some(p)) = (&self.ldap, self.store.principal(principal_id).await?) {
            if let Some(e) = self.ldap_entry_of(&p).await? {
                for g in l.groups_of(&e).await? {
                    let id = self.ensure_ldap_principal(&g).await?;
                    if !groups.contains(&id) {
                        groups.push(id);
                        addresses.extend(g.primary.iter().chain(&g.secondary).cloned());
                    }
                }
            }
        }
        for g in self.store.groups_containing(&addresses).await? {
            if !groups.contains(&g) {
                groups.push(g);
            }
        }
        Ok(groups)
    }

    /// Calendars and address books others share with a principal,
    /// directly or through any group of [`Directory::groups_of`], with the
    /// strongest right that applies.
    pub async fn shared_with(&self, principal_id: i64) -> Result<Vec<SharedCollection>> {
        let groups = self.groups_of(principal_id).await?;
        self.store.shared_with_grantees(principal_id, &groups).await
    }

    async fn check_new_address(&self, address: &str) -> Result<String> {
        let address = normalize_address(address);
        let (local, domain) = address.rsplit_once('@').ok_or_else(|| {
            StoreError::Invalid(format!(
                "{address:?} is not an address (expected name@domain)"
            ))
        })?;
        if local.is_empty()
            || local.contains(char::is_whitespace)
            || local.contains(['<', '>', ',', ';', '"', '@'])
        {
            return Err(StoreError::Invalid(format!(
                "{address:?} is not a valid address"
            )));
        }
        if self.store.domain(domain).await?.is_none() {
            return Err(StoreError::Invalid(format!(
                "{domain} is not a hosted domain; add it first with: outpost domain add {domain}"
            )));
        }
        if self.store.principal_by_address(&address).await?.is_some() {
            return Err(StoreError::Exists(format!("address {address}")));
        }
        Ok(address)
    }
}

/// Password checks running at once: argon2id is deliberately costly (CPU
/// and 19 MiB each), so a burst of logins queues instead of exhausting
/// memory; one per core keeps every core busy.
fn hash_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        tokio::sync::Semaphore::new(n)
    })
}

/// Verifies a password on the blocking pool, at most one check per core.
async fn verify_limited(password: &str, phc: &str) -> bool {
    let _slot = hash_slots().acquire().await;
    let (pw, phc) = (password.to_string(), phc.to_string());
    tokio::task::spawn_blocking(move || verify_password(&pw, &phc))
        .await
        .unwrap_or(false)
}

const AUTH_CACHE_TTL: Duration = Duration::from_secs(300);

/// user+tag@domain → user@domain (RFC 5233 subaddressing).
fn subaddress_base(address: &str) -> Option<String> {
    let (local, domain) = address.rsplit_once('@')?;
    let (base, _) = local.split_once('+')?;
    (!base.is_empty()).then(|| format!("{base}@{domain}"))
}

fn check_password(pw: &str) -> Result<()> {
    if pw.chars().count() < 8 {
        return Err(StoreError::Invalid(
            "password must have at least 8 characters".into(),
        ));
    }
    if pw.contains(['\r', '\n', '\0']) {
        return Err(StoreError::Invalid(
            "password must not contain line breaks or NUL".into(),
        ));
    }
    Ok(())
}

/// argon2id with the crate's default parameters (RFC 9106's second
/// recommended set), as a PHC string.
pub fn hash_password(pw: &str) -> Result<String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    Argon2::default()
        .hash_password(pw.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Internal(format!("password hashing failed: {e}")))
}

pub fn verify_password(pw: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) => Argon2::default().verify_password(pw.as_bytes(), &h).is_ok(),
        Err(_) => false,
    }
}

const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$0TvnkXCMy5BMeYo6ebStJwdVgk5u1U9VL0DdW3X0JfQ";
