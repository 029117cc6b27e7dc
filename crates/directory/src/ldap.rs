//! An external LDAP directory (Active Directory, Samba AD, OpenLDAP) as the
//! source of users, addresses and groups.
//!
//! The service account only searches; a login is checked by binding as the
//! user's own DN, so password hashes are never read. Lookups (found or not)
//! are cached for a short time so an SMTP RCPT burst does not hammer the
//! server. Every failure to reach or use the server comes back as
//! [`StoreError::Unavailable`], which each protocol answers with its
//! temporary failure: a directory outage never turns into "user unknown".
//!
//! The pure parts — attribute mapping (`proxyAddresses`, `userAccountControl`,
//! `objectGUID`) and RFC 4515 filter escaping — are plain functions with
//! unit tests below.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError, Scope, SearchEntry};
use outpost_store::{ContactAttrs, PrincipalKind, StoreError};

type Result<T, E = StoreError> = std::result::Result<T, E>;

/// OID of LDAP_MATCHING_RULE_IN_CHAIN ([MS-ADTS] 3.1.1.3.4.4.3): matches
/// through nested group membership in one search.
pub const IN_CHAIN: &str = "1.2.840.113556.1.4.1941";

/// `userAccountControl` flag ACCOUNTDISABLE ([MS-ADTS] 2.2.16).
pub const UAC_ACCOUNTDISABLE: u32 = 0x2;

/// Nested group walks stop after this many entries (treated as a loop).
const MAX_EXPANSION: usize = 10_000;

/// Attribute and filter layout of a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// Which entries are users.
    pub user_filter: String,
    /// Which entries are groups (those with an address are distribution
    /// lists; the others still count when nested).
    pub group_filter: String,
    /// The objectClass value that marks a group entry.
    pub group_class: String,
    /// Attributes a user may log in with besides any mail address.
    pub login_attrs: Vec<String>,
    /// Plain address attributes: the first value of the first one is the
    /// primary address unless `proxy_attr` names one.
    pub address_attrs: Vec<String>,
    /// Exchange-style `proxyAddresses`: `SMTP:` primary, `smtp:` secondary.
    pub proxy_attr: Option<String>,
    /// Display name, first present wins.
    pub name_attrs: Vec<String>,
    /// The stable id: `objectGUID` (binary) or `entryUUID`.
    pub id_attr: String,
    pub id_binary: bool,
    /// Group membership by DN.
    pub member_attr: String,
    /// `userAccountControl`, whose bit 0x2 disables the account.
    pub uac_attr: Option<String>,
    /// An attribute whose presence locks the account (OpenLDAP ppolicy's
    /// `pwdAccountLockedTime`).
    pub locked_attr: Option<String>,
    /// Expand nested groups with LDAP_MATCHING_RULE_IN_CHAIN (falls back to
    /// walking `member` when the server refuses it).
    pub in_chain: bool,
    /// Extra conditions on users listed in the global address list, on top
    /// of `user_filter` and having an address (AD: no contacts, no
    /// critical system objects such as Administrator).
    pub gal_user_filter: String,
    /// The attributes a global address list shows.
    pub contact: ContactAttrNames,
}

/// LDAP attribute names of the directory attributes a global address list
/// shows; an empty name is not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContactAttrNames {
    pub given_name: String,
    pub surname: String,
    pub title: String,
    pub department: String,
    pub company: String,
    pub office: String,
    pub phone: String,
    pub mobile: String,
}

impl ContactAttrNames {
    /// Active Directory (and inetOrgPerson for most of them).
    pub fn ad() -> ContactAttrNames {
        ContactAttrNames {
            given_name: "givenName".into(),
            surname: "sn".into(),
            title: "title".into(),
            department: "department".into(),
            company: "company".into(),
            office: "physicalDeliveryOfficeName".into(),
            phone: "telephoneNumber".into(),
            mobile: "mobile".into(),
        }
    }

    /// OpenLDAP's inetOrgPerson: the department is `ou`, the company `o`.
    pub fn inet_org_person() -> ContactAttrNames {
        ContactAttrNames {
            department: "ou".into(),
            company: "o".into(),
            ..ContactAttrNames::ad()
        }
    }

    fn names(&self) -> [&String; 8] {
        [
            &self.given_name,
            &self.surname,
            &self.title,
            &self.department,
            &self.company,
            &self.office,
            &self.phone,
            &self.mobile,
        ]
    }
}

impl Mapping {
    /// Active Directory and Samba AD.
    pub fn ad() -> Mapping {
        Mapping {
            user_filter: "(&(objectClass=person)(!(objectClass=computer)))".into(),
            group_filter: "(objectClass=group)".into(),
            group_class: "group".into(),
            login_attrs: vec!["sAMAccountName".into(), "userPrincipalName".into()],
            address_attrs: vec!["mail".into()],
            proxy_attr: Some("proxyAddresses".into()),
            name_attrs: vec!["displayName".into(), "cn".into()],
            id_attr: "objectGUID".into(),
            id_binary: true,
            member_attr: "member".into(),
            uac_attr: Some("userAccountControl".into()),
            locked_attr: None,
            in_chain: true,
            // Contacts are `person`s too; Administrator, Guest and krbtgt
            // are critical system objects.
            gal_user_filter:
                "(objectClass=user)(!(objectClass=contact))(!(isCriticalSystemObject=TRUE))".into(),
            contact: ContactAttrNames::ad(),
        }
    }

    /// OpenLDAP with inetOrgPerson users and groupOfNames groups.
    pub fn openldap() -> Mapping {
        Mapping {
            user_filter: "(objectClass=inetOrgPerson)".into(),
            group_filter: "(objectClass=groupOfNames)".into(),
            group_class: "groupOfNames".into(),
            login_attrs: vec!["uid".into()],
            address_attrs: vec!["mail".into(), "mailAlternateAddress".into()],
            proxy_attr: None,
            name_attrs: vec!["displayName".into(), "cn".into()],
            id_attr: "entryUUID".into(),
            id_binary: false,
            member_attr: "member".into(),
            uac_attr: None,
            locked_attr: Some("pwdAccountLockedTime".into()),
            in_chain: false,
            gal_user_filter: String::new(),
            contact: ContactAttrNames::inet_org_person(),
        }
    }

    fn attrs(&self) -> Vec<String> {
        let mut v: Vec<String> = vec!["objectClass".into(), self.id_attr.clone()];
        v.extend(self.login_attrs.iter().cloned());
        v.extend(self.address_attrs.iter().cloned());
        v.extend(self.proxy_attr.iter().cloned());
        v.extend(self.name_attrs.iter().cloned());
        v.extend(self.uac_attr.iter().cloned());
        v.extend(self.locked_attr.iter().cloned());
        v.push(self.member_attr.clone());
        for a in self.contact.names() {
            if !a.is_empty() && !v.iter().any(|x| x.eq_ignore_ascii_case(a)) {
                v.push(a.clone());
            }
        }
        v
    }

    /// `(|(mail=x)(proxyAddresses=smtp:x)...)` for one exact address.
    fn address_clause(&self, address: &str) -> String {
        let a = escape_filter_value(address);
        let mut f = String::from("(|");
        for attr in &self.address_attrs {
            f.push_str(&format!("({attr}={a})"));
        }
        if let Some(p) = &self.proxy_attr {
            // Matching on proxyAddresses is case-insensitive, so this also
            // finds the primary "SMTP:" value.
            f.push_str(&format!("({p}=smtp:{a})"));
        }
        f.push(')');
        f
    }

    /// Users or distribution groups owning an address.
    pub fn address_filter(&self, address: &str) -> String {
        format!(
            "(&(|{}{}){})",
            self.user_filter,
            self.group_filter,
            self.address_clause(address)
        )
    }

    /// Users that may log in with `login`: a login attribute or any address.
    pub fn login_filter(&self, login: &str) -> String {
        let l = escape_filter_value(login);
        let mut f = format!("(&{}(|", self.user_filter);
        for attr in &self.login_attrs {
            f.push_str(&format!("({attr}={l})"));
        }
        if login.contains('@') {
            f.push_str(&self.address_clause(login));
        }
        f.push_str("))");
        f
    }

    /// What the global address list lists: users (with `gal_user_filter`)
    /// and groups that have an address.
    pub fn gal_filter(&self) -> String {
        let mut has = String::from("(|");
        for a in &self.address_attrs {
            has.push_str(&format!("({a}=*)"));
        }
        if let Some(px) = &self.proxy_attr {
            has.push_str(&format!("({px}=smtp:*)"));
        }
        has.push(')');
        format!(
            "(&(|(&{}{}){}){has})",
            self.user_filter, self.gal_user_filter, self.group_filter
        )
    }

    /// Entries of the global address list whose name, given name, surname,
    /// login or any address starts with `prefix` (case-insensitive, as
    /// LDAP's matching rules for these attributes are).
    pub fn prefix_filter(&self, prefix: &str) -> String {
        let p = escape_filter_value(prefix);
        let mut f = format!("(&{}(|", self.gal_filter());
        let c = &self.contact;
        let names = self
            .name_attrs
            .iter()
            .chain([
                &c.given_name,
                &c.surname,
                &c.title,
                &c.department,
                &c.company,
                &c.office,
            ])
            .chain(&self.address_attrs)
            .chain(&self.login_attrs);
        let mut seen: Vec<&String> = Vec::new();
        for attr in names {
            if attr.is_empty() || seen.contains(&attr) {
                continue;
            }
            seen.push(attr);
            f.push_str(&format!("({attr}={p}*)"));
        }
        if let Some(px) = &self.proxy_attr {
            f.push_str(&format!("({px}=smtp:{p}*)"));
        }
        // A number is looked for anywhere in the phone attributes (the
        // store's search finds the local part too); telephoneNumber's
        // substring rule ignores spaces and hyphens (RFC 4517 4.2.29).
        if outpost_store::phone_query(prefix).is_some() {
            for attr in [&c.phone, &c.mobile] {
                if !attr.is_empty() {
                    f.push_str(&format!("({attr}=*{p}*)"));
                }
            }
        }
        f.push_str("))");
        f
    }

    /// An entry by its stable id.
    pub fn id_filter(&self, id: &str) -> Option<String> {
        let value = if self.id_binary {
            escape_filter_bytes(&guid_to_bytes(id)?)
        } else {
            escape_filter_value(id)
        };
        Some(format!("({}={value})", self.id_attr))
    }

    fn is_group(&self, e: &SearchEntry) -> bool {
        values(e, "objectClass")
            .iter()
            .any(|c| c.eq_ignore_ascii_case(&self.group_class))
    }

    /// Maps a search entry to what Outpost needs of it.
    pub fn entry(&self, e: &SearchEntry) -> Option<LdapEntry> {
        let id = if self.id_binary {
            format_guid(&binary_value(e, &self.id_attr)?)?
        } else {
            values(e, &self.id_attr).first()?.to_ascii_lowercase()
        };
        let mut plain = Vec::new();
        for attr in &self.address_attrs {
            plain.extend(values(e, attr));
        }
        let proxies = match &self.proxy_attr {
            Some(p) => values(e, p),
            None => Vec::new(),
        };
        let (primary, secondary) = addresses(&plain, &proxies);
        let kind = if self.is_group(e) {
            PrincipalKind::Group
        } else {
            PrincipalKind::User
        };
        let enabled = match &self.uac_attr {
            Some(a) => values(e, a)
                .first()
                .map(|v| !uac_disabled(v))
                .unwrap_or(true),
            None => true,
        } && self
            .locked_attr
            .as_ref()
            .is_none_or(|a| values(e, a).is_empty());
        let name = self
            .name_attrs
            .iter()
            .find_map(|a| values(e, a).into_iter().next())
            .unwrap_or_default();
        let mut logins = Vec::new();
        for a in &self.login_attrs {
            logins.extend(values(e, a));
        }
        let c = &self.contact;
        let one = |a: &String| {
            if a.is_empty() {
                return None;
            }
            values(e, a)
                .into_iter()
                .map(|v| v.trim().to_string())
                .find(|v| !v.is_empty())
        };
        // Values longer than the store keeps or with line breaks are
        // dropped one by one, not the whole entry.
        let attrs = ContactAttrs {
            given_name: one(&c.given_name),
            surname: one(&c.surname),
            title: one(&c.title),
            department: one(&c.department),
            company: one(&c.company),
            office: one(&c.office),
            phone: one(&c.phone),
            mobile: one(&c.mobile),
        };
        let attrs = sanitize_attrs(attrs);
        Some(LdapEntry {
            dn: e.dn.clone(),
            kind,
            id,
            name,
            primary,
            secondary,
            logins,
            enabled,
            members: values(e, &self.member_attr),
            attrs,
        })
    }
}

/// One user or group as the directory describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LdapEntry {
    pub dn: String,
    pub kind: PrincipalKind,
    /// `objectGUID` (formatted) or `entryUUID`: the key of its mailboxes.
    pub id: String,
    pub name: String,
    pub primary: Option<String>,
    pub secondary: Vec<String>,
    /// Values of the login attributes (sAMAccountName, UPN, uid).
    pub logins: Vec<String>,
    /// False when `userAccountControl` has ACCOUNTDISABLE.
    pub enabled: bool,
    /// Member DNs (groups).
    pub members: Vec<String>,
    /// What the global address list shows besides name and addresses.
    pub attrs: ContactAttrs,
}

/// Keeps each attribute value the store would accept, drops the others.
fn sanitize_attrs(a: ContactAttrs) -> ContactAttrs {
    let keep = |v: Option<String>| {
        v.filter(|v| v.len() <= outpost_store::gal::ATTR_MAX && !v.chars().any(char::is_control))
    };
    ContactAttrs {
        given_name: keep(a.given_name),
        surname: keep(a.surname),
        title: keep(a.title),
        department: keep(a.department),
        company: keep(a.company),
        office: keep(a.office),
        phone: keep(a.phone),
        mobile: keep(a.mobile),
    }
}

impl LdapEntry {
    pub fn has_address(&self, address: &str) -> bool {
        let a = address.to_lowercase();
        self.primary.as_deref() == Some(a.as_str()) || self.secondary.contains(&a)
    }
}

/// Values of an attribute, matched case-insensitively by name.
fn values(e: &SearchEntry, attr: &str) -> Vec<String> {
    e.attrs
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(attr))
        .flat_map(|(_, v)| v.iter().cloned())
        .collect()
}

/// A binary attribute's first value. ldap3 files values that happen to be
/// valid UTF-8 under `attrs`, so both maps are looked at.
fn binary_value(e: &SearchEntry, attr: &str) -> Option<Vec<u8>> {
    e.bin_attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(attr))
        .and_then(|(_, v)| v.first().cloned())
        .or_else(|| values(e, attr).first().map(|s| s.as_bytes().to_vec()))
}

/// Primary and secondary addresses from plain `mail`-like values and
/// `proxyAddresses`. `SMTP:` (upper case) is primary, `smtp:` secondary;
/// other types (`X400:`, `X500:`, `SIP:`, `=EX:`...) are not mail
/// addresses here. Without an `SMTP:` value the first plain value is
/// primary. Addresses are lower-cased; duplicates are dropped.
pub fn addresses(plain: &[String], proxies: &[String]) -> (Option<String>, Vec<String>) {
    let mut primary = None;
    let mut all: Vec<String> = Vec::new();
    let push = |all: &mut Vec<String>, a: &str| {
        let a = a.trim().to_lowercase();
        if a.contains('@') && !all.contains(&a) {
            all.push(a);
        }
    };
    for p in proxies {
        if let Some(a) = p.strip_prefix("SMTP:") {
            if primary.is_none() && a.contains('@') {
                primary = Some(a.trim().to_lowercase());
            }
            push(&mut all, a);
        } else if let Some(a) = p.strip_prefix("smtp:") {
            push(&mut all, a);
        } else if p.len() > 5 && p[..5].eq_ignore_ascii_case("smtp:") {
            // Mixed case ("Smtp:") is not a primary marker.
            push(&mut all, &p[5..]);
        }
    }
    for p in plain {
        push(&mut all, p);
    }
    if primary.is_none() {
        primary = plain
            .iter()
            .map(|a| a.trim().to_lowercase())
            .find(|a| a.contains('@'))
            .or_else(|| all.first().cloned());
    }
    let secondary = all
        .into_iter()
        .filter(|a| Some(a) != primary.as_ref())
        .collect();
    (primary, secondary)
}

/// True when a `userAccountControl` value has ACCOUNTDISABLE. AD writes
/// the flags as a signed 32-bit decimal; an unreadable value counts as
/// disabled (refusing a login is the safe mistake).
pub fn uac_disabled(value: &str) -> bool {
    let v = value.trim();
    let flags = v
        .parse::<i64>()
        .ok()
        .filter(|n| (i32::MIN as i64..=u32::MAX as i64).contains(n));
    match flags {
        Some(n) => (n as u32) & UAC_ACCOUNTDISABLE != 0,
        None => true,
    }
}

/// An `objectGUID` (16 bytes) in the usual text form,
/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`: the first three fields are
/// stored little-endian ([MS-DTYP] 2.3.4.2).
pub fn format_guid(b: &[u8]) -> Option<String> {
    if b.len() != 16 {
        return None;
    }
    Some(format!(
        "{:02x}{:02x}{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
    ))
}

/// The inverse of [`format_guid`].
pub fn guid_to_bytes(s: &str) -> Option<[u8; 16]> {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 || s.len() != 36 {
        return None;
    }
    let mut raw = [0u8; 16];
    for (i, r) in raw.iter_mut().enumerate() {
        *r = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    let order = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
    let mut b = [0u8; 16];
    for (i, &o) in order.iter().enumerate() {
        b[o] = raw[i];
    }
    Some(b)
}

/// Escapes a value for an LDAP filter (RFC 4515 section 3): `*`, `(`, `)`,
/// `\` and NUL become `\2a`, `\28`, `\29`, `\5c`, `\00`. Every piece of user
/// input that goes into a filter passes through here.
pub fn escape_filter_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '*' => out.push_str("\\2a"),
            '(' => out.push_str("\\28"),
            ')' => out.push_str("\\29"),
            '\\' => out.push_str("\\5c"),
            '\0' => out.push_str("\\00"),
            c => out.push(c),
        }
    }
    out
}

/// Every byte as `\xx` (for binary values such as `objectGUID`).
pub fn escape_filter_bytes(b: &[u8]) -> String {
    b.iter().map(|x| format!("\\{x:02x}")).collect()
}

/// How to reach and read the directory.
#[derive(Debug, Clone)]
pub struct LdapSettings {
    /// `ldap://host[:port]` or `ldaps://host[:port]`.
    pub url: String,
    /// Upgrade `ldap://` with StartTLS.
    pub starttls: bool,
    /// PEM file of the CA(s) to trust instead of the system store.
    pub ca_file: Option<PathBuf>,
    /// Check the server's certificate (on unless explicitly turned off).
    pub tls_verify: bool,
    pub bind_dn: String,
    pub bind_password: String,
    pub base_dn: String,
    pub mapping: Mapping,
    /// How long found and not-found answers are kept. Zero: not cached.
    pub cache_ttl: Duration,
    /// Connect and per-operation time limit.
    pub timeout: Duration,
    /// Idle connections kept for user binds.
    pub pool_size: usize,
}

/// What an address or login led to, kept for `cache_ttl`.
#[derive(Clone)]
enum Cached {
    Entry(Box<Option<LdapEntry>>),
    Entries(Vec<LdapEntry>),
}

pub struct LdapSource {
    s: LdapSettings,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// The service account's connection (operations are multiplexed on it).
    service: tokio::sync::Mutex<Option<Ldap>>,
    /// Idle connections for user binds.
    binders: Mutex<Vec<Ldap>>,
    cache: Mutex<HashMap<String, (Instant, Cached)>>,
    /// When the last attempt to connect failed, and why.
    down: Mutex<Option<(Instant, String)>>,
    /// False once the server refused LDAP_MATCHING_RULE_IN_CHAIN.
    in_chain: std::sync::atomic::AtomicBool,
}

const CACHE_MAX: usize = 50_000;

/// Entries per page of a paged search (below AD's MaxPageSize of 1000).
pub const PAGE_SIZE: i32 = 500;

/// After a failed connect, requests fail at once for this long.
const RETRY_AFTER: Duration = Duration::from_secs(1);

fn unavailable(url: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("directory {url}: {e}"))
}

/// True for failures of the connection rather than of the request.
fn is_transport(e: &LdapError) -> bool {
    !matches!(e, LdapError::LdapResult { .. } | LdapError::FilterParsing)
}

impl LdapSource {
    pub fn new(s: LdapSettings) -> Result<LdapSource, String> {
        let tls = if s.url.starts_with("ldaps://") || s.starttls {
            Some(tls_config(&s)?)
        } else {
            None
        };
        let in_chain = s.mapping.in_chain;
        Ok(LdapSource {
            s,
            tls,
            service: Default::default(),
            binders: Default::default(),
            cache: Default::default(),
            down: Default::default(),
            in_chain: in_chain.into(),
        })
    }

    pub fn settings(&self) -> &LdapSettings {
        &self.s
    }

    async fn connect(&self) -> Result<Ldap, LdapError> {
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(self.s.timeout)
            .set_starttls(self.s.starttls && self.s.url.starts_with("ldap://"));
        if let Some(t) = &self.tls {
            settings = settings.set_config(t.clone());
        }
        let (conn, ldap) = LdapConnAsync::with_settings(settings, &self.s.url).await?;
        tokio::spawn(async move {
            if let Err(e) = conn.drive().await {
                tracing::debug!("directory connection ended: {e}");
            }
        });
        Ok(ldap)
    }

    /// The service account's connection, (re)connected and bound as needed.
    async fn service(&self, fresh: bool) -> Result<Ldap> {
        let mut slot = self.service.lock().await;
        if let Some(l) = slot.as_mut() {
            if !fresh && !l.is_closed() {
                return Ok(l.clone());
            }
        }
        *slot = None;
        self.fail_fast()?;
        let r = self.connect_service().await;
        match &r {
            Ok(l) => {
                *slot = Some(l.clone());
                *self.down.lock().unwrap() = None;
            }
            Err(e) => *self.down.lock().unwrap() = Some((Instant::now(), e.to_string())),
        }
        r
    }

    async fn connect_service(&self) -> Result<Ldap> {
        let mut ldap = self
            .connect()
            .await
            .map_err(|e| unavailable(&self.s.url, e))?;
        ldap.with_timeout(self.s.timeout)
            .simple_bind(&self.s.bind_dn, &self.s.bind_password)
            .await
            .and_then(|r| r.success())
            .map_err(|e| {
                unavailable(
                    &self.s.url,
                    format!("bind as the service account {}: {e}", self.s.bind_dn),
                )
            })?;
        Ok(ldap)
    }

    /// Right after a failed connect, answers at once with that failure
    /// instead of making every waiting request time out in turn against a
    /// server that does not answer.
    fn fail_fast(&self) -> Result<()> {
        let down = self.down.lock().unwrap();
        match &*down {
            Some((at, e)) if at.elapsed() < RETRY_AFTER => Err(StoreError::Unavailable(e.clone())),
            _ => Ok(()),
        }
    }

    /// One search under the base DN (or `base` itself with `Scope::Base`),
    /// retried once on a fresh connection when the old one broke (a
    /// restarted server). `limit` > 0 caps the entries (a partial answer is
    /// fine then).
    async fn search(
        &self,
        base: &str,
        scope: Scope,
        filter: &str,
        limit: i32,
    ) -> Result<Vec<SearchEntry>, LdapError> {
        let attrs = self.s.mapping.attrs();
        let mut last = None;
        for attempt in 0..2 {
            let mut ldap = match self.service(attempt > 0).await {
                Ok(l) => l,
                Err(e) => {
                    return Err(LdapError::AdapterInit(e.to_string()));
                }
            };
            let opts = ldap3::SearchOptions::new().sizelimit(limit);
            let r = ldap
                .with_timeout(self.s.timeout)
                .with_search_options(opts)
                .search(base, scope, filter, &attrs)
                .await;
            match r {
                Ok(ldap3::SearchResult(entries, res)) => {
                    // 4: sizeLimitExceeded, 10: referral (entries still good).
                    if res.rc == 0 || (res.rc == 4 && limit > 0) || res.rc == 10 {
                        return Ok(entries
                            .into_iter()
                            .filter(|e| !e.is_ref() && !e.is_intermediate())
                            .map(SearchEntry::construct)
                            .collect());
                    }
                    if res.rc == 32 {
                        // noSuchObject: a member DN that no longer exists.
                        return Ok(Vec::new());
                    }
                    return Err(LdapError::LdapResult { result: res });
                }
                Err(e) if is_transport(&e) => last = Some(e),
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or(LdapError::EndOfStream))
    }

    async fn search_entries(&self, filter: &str, limit: i32) -> Result<Vec<LdapEntry>> {
        let found = self
            .search(&self.s.base_dn, Scope::Subtree, filter, limit)
            .await
            .map_err(|e| unavailable(&self.s.url, format!("search {filter}: {e}")))?;
        Ok(found
            .iter()
            .filter_map(|e| {
                let m = self.s.mapping.entry(e);
                if m.is_none() {
                    tracing::warn!(
                        "directory entry {} has no usable {}; skipped",
                        e.dn,
                        self.s.mapping.id_attr
                    );
                }
                m
            })
            .collect())
    }

    fn cache_get(&self, key: &str) -> Option<Cached> {
        if self.s.cache_ttl.is_zero() {
            return None;
        }
        let mut c = self.cache.lock().unwrap();
        match c.get(key) {
            Some((at, v)) if at.elapsed() < self.s.cache_ttl => Some(v.clone()),
            Some(_) => {
                c.remove(key);
                None
            }
            None => None,
        }
    }

    fn cache_put(&self, key: String, v: Cached) {
        if self.s.cache_ttl.is_zero() {
            return;
        }
        let mut c = self.cache.lock().unwrap();
        if c.len() >= CACHE_MAX {
            let ttl = self.s.cache_ttl;
            c.retain(|_, (at, _)| at.elapsed() < ttl);
            if c.len() >= CACHE_MAX {
                c.clear();
            }
        }
        c.insert(key, (Instant::now(), v));
    }

    /// Connects, binds as the service account and reads the base DN: what
    /// `outpost check` runs to prove the settings work.
    pub async fn probe(&self) -> Result<()> {
        let found = self
            .search(&self.s.base_dn, Scope::Base, "(objectClass=*)", 0)
            .await
            .map_err(|e| unavailable(&self.s.url, e))?;
        if found.is_empty() {
            return Err(StoreError::Invalid(format!(
                "directory {}: base_dn {} does not exist or is not readable by {}",
                self.s.url, self.s.base_dn, self.s.bind_dn
            )));
        }
        Ok(())
    }

    /// Forgets every cached answer.
    pub fn clear_cache(&self) {
        self.cache.lock().unwrap().clear();
    }

    async fn one(&self, key: String, filter: String, want: &str) -> Result<Option<LdapEntry>> {
        if let Some(Cached::Entry(e)) = self.cache_get(&key) {
            return Ok(*e);
        }
        let found = self.search_entries(&filter, 0).await?;
        if found.len() > 1 {
            tracing::warn!(
                "directory: {} entries match {want}; using {}",
                found.len(),
                found[0].dn
            );
        }
        // Prefer a user when a user and a group share an address.
        let e = found
            .iter()
            .find(|e| e.kind == PrincipalKind::User)
            .or(found.first())
            .cloned();
        self.cache_put(key, Cached::Entry(Box::new(e.clone())));
        Ok(e)
    }

    /// The user or distribution group owning `address`.
    pub async fn by_address(&self, address: &str) -> Result<Option<LdapEntry>> {
        let a = address.to_lowercase();
        let f = self.s.mapping.address_filter(&a);
        self.one(format!("a:{a}"), f, &a).await
    }

    /// The user who logs in as `login` (login attribute or any address).
    pub async fn by_login(&self, login: &str) -> Result<Option<LdapEntry>> {
        let l = login.to_lowercase();
        let f = self.s.mapping.login_filter(login);
        Ok(self
            .one(format!("l:{l}"), f, login)
            .await?
            .filter(|e| e.kind == PrincipalKind::User))
    }

    /// An entry by its stable id (`objectGUID`/`entryUUID`).
    pub async fn by_id(&self, id: &str) -> Result<Option<LdapEntry>> {
        let Some(f) = self.s.mapping.id_filter(id) else {
            return Ok(None);
        };
        self.one(format!("i:{id}"), f, id).await
    }

    /// Users and addressed groups whose name or address starts with
    /// `prefix`, at most `limit`.
    pub async fn search_prefix(&self, prefix: &str, limit: usize) -> Result<Vec<LdapEntry>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let f = self.s.mapping.prefix_filter(prefix);
        let mut v = self
            .search_entries(&f, limit.min(i32::MAX as usize) as i32)
            .await?;
        v.truncate(limit);
        Ok(v)
    }

    /// Every entry of the global address list (users and groups with an
    /// address), read with the simple paged results control (RFC 2696) in
    /// pages of [`PAGE_SIZE`]: Active Directory answers at most 1000
    /// entries per search without it (MaxPageSize).
    pub async fn gal_entries(&self) -> Result<Vec<LdapEntry>> {
        let f = self.s.mapping.gal_filter();
        let found = self
            .search_paged(&f)
            .await
            .map_err(|e| unavailable(&self.s.url, format!("search {f}: {e}")))?;
        Ok(found
            .iter()
            .filter_map(|e| self.s.mapping.entry(e))
            .filter(|e| e.primary.is_some())
            .collect())
    }

    /// A subtree search under the base DN, page by page, retried once on a
    /// fresh connection when the old one broke.
    async fn search_paged(&self, filter: &str) -> Result<Vec<SearchEntry>, LdapError> {
        let attrs = self.s.mapping.attrs();
        let mut last = None;
        for attempt in 0..2 {
            let mut ldap = match self.service(attempt > 0).await {
                Ok(l) => l,
                Err(e) => return Err(LdapError::AdapterInit(e.to_string())),
            };
            let adapters: Vec<Box<dyn Adapter<'_, &str, Vec<&str>>>> = vec![
                Box::new(EntriesOnly::new()),
                Box::new(PagedResults::new(PAGE_SIZE)),
            ];
            let attrs: Vec<&str> = attrs.iter().map(String::as_str).collect();
            let mut stream = match ldap
                .with_timeout(self.s.timeout)
                .streaming_search_with(adapters, &self.s.base_dn, Scope::Subtree, filter, attrs)
                .await
            {
                Ok(s) => s,
                Err(e) if is_transport(&e) => {
                    last = Some(e);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut out = Vec::new();
            let mut broken = None;
            loop {
                match stream.next().await {
                    Ok(Some(e)) => out.push(SearchEntry::construct(e)),
                    Ok(None) => break,
                    Err(e) => {
                        broken = Some(e);
                        break;
                    }
                }
            }
            let res = stream.finish().await;
            match broken {
                Some(e) if is_transport(&e) => {
                    last = Some(e);
                    continue;
                }
                Some(e) => return Err(e),
                None => {}
            }
            return match res.rc {
                0 | 10 => Ok(out),
                // sizeLimitExceeded: the server caps even paged searches
                // (OpenLDAP's size.prtotal). What came is still listed.
                4 => {
                    tracing::warn!(
                        "directory {}: the server stopped the address list after {} entries (size limit); raise the service account's limit",
                        self.s.url,
                        out.len()
                    );
                    Ok(out)
                }
                _ => Err(LdapError::LdapResult { result: res }),
            };
        }
        Err(last.unwrap_or(LdapError::EndOfStream))
    }

    /// Every user inside a group, through nested groups, each once; loops
    /// are harmless.
    pub async fn group_users(&self, group: &LdapEntry) -> Result<Vec<LdapEntry>> {
        let key = format!("g:{}", group.id);
        if let Some(Cached::Entries(v)) = self.cache_get(&key) {
            return Ok(v);
        }
        let users = if self.in_chain.load(std::sync::atomic::Ordering::Relaxed) {
            let f = format!(
                "(&{}(memberOf:{IN_CHAIN}:={}))",
                self.s.mapping.user_filter,
                escape_filter_value(&group.dn)
            );
            match self.search(&self.s.base_dn, Scope::Subtree, &f, 0).await {
                Ok(found) => Some(
                    found
                        .iter()
                        .filter_map(|e| self.s.mapping.entry(e))
                        .filter(|e| e.kind == PrincipalKind::User)
                        .collect::<Vec<_>>(),
                ),
                Err(e) if is_transport(&e) => return Err(unavailable(&self.s.url, e)),
                Err(e) => {
                    tracing::info!(
                        "directory refuses LDAP_MATCHING_RULE_IN_CHAIN ({e}); expanding groups by walking member"
                    );
                    self.in_chain
                        .store(false, std::sync::atomic::Ordering::Relaxed);
                    None
                }
            }
        } else {
            None
        };
        let users = match users {
            Some(u) => u,
            None => self.walk_members(group).await?,
        };
        let mut seen = HashSet::new();
        let users: Vec<LdapEntry> = users
            .into_iter()
            .filter(|u| seen.insert(u.id.clone()))
            .collect();
        self.cache_put(key, Cached::Entries(users.clone()));
        Ok(users)
    }

    /// Nested expansion by reading each member DN.
    async fn walk_members(&self, group: &LdapEntry) -> Result<Vec<LdapEntry>> {
        let m = &self.s.mapping;
        let filter = format!("(|{}{})", m.user_filter, m.group_filter);
        let mut seen: HashSet<String> = HashSet::from([group.dn.to_lowercase()]);
        let mut queue: VecDeque<String> = group.members.iter().cloned().collect();
        let mut users = Vec::new();
        while let Some(dn) = queue.pop_front() {
            if !seen.insert(dn.to_lowercase()) || seen.len() > MAX_EXPANSION {
                continue;
            }
            let found = self
                .search(&dn, Scope::Base, &filter, 0)
                .await
                .map_err(|e| unavailable(&self.s.url, format!("read {dn}: {e}")))?;
            for e in found.iter().filter_map(|e| m.entry(e)) {
                match e.kind {
                    PrincipalKind::Group => queue.extend(e.members.iter().cloned()),
                    PrincipalKind::User => users.push(e),
                }
            }
        }
        Ok(users)
    }

    /// Groups a user belongs to, directly or through nesting (kept for
    /// `cache_ttl`: share checks ask on every DAV request).
    pub async fn groups_of(&self, user: &LdapEntry) -> Result<Vec<LdapEntry>> {
        let key = format!("m:{}", user.id);
        if let Some(Cached::Entries(v)) = self.cache_get(&key) {
            return Ok(v);
        }
        let groups = self.find_groups_of(user).await?;
        self.cache_put(key, Cached::Entries(groups.clone()));
        Ok(groups)
    }

    async fn find_groups_of(&self, user: &LdapEntry) -> Result<Vec<LdapEntry>> {
        let m = &self.s.mapping;
        if self.in_chain.load(std::sync::atomic::Ordering::Relaxed) {
            let f = format!(
                "(&{}({}:{IN_CHAIN}:={}))",
                m.group_filter,
                m.member_attr,
                escape_filter_value(&user.dn)
            );
            match self.search(&self.s.base_dn, Scope::Subtree, &f, 0).await {
                Ok(found) => return Ok(found.iter().filter_map(|e| m.entry(e)).collect()),
                Err(e) if is_transport(&e) => return Err(unavailable(&self.s.url, e)),
                Err(_) => {}
            }
        }
        let mut out: Vec<LdapEntry> = Vec::new();
        let mut seen = HashSet::new();
        let mut queue = VecDeque::from([user.dn.clone()]);
        while let Some(dn) = queue.pop_front() {
            if !seen.insert(dn.to_lowercase()) || seen.len() > MAX_EXPANSION {
                continue;
            }
            let f = format!(
                "(&{}({}={}))",
                m.group_filter,
                m.member_attr,
                escape_filter_value(&dn)
            );
            for g in self.search_entries(&f, 0).await? {
                queue.push_back(g.dn.clone());
                if !out.iter().any(|o| o.id == g.id) {
                    out.push(g);
                }
            }
        }
        Ok(out)
    }

    /// Checks a password by binding as `dn`. `Ok(false)` for wrong
    /// credentials (also a disabled or locked account, which AD answers the
    /// same way); an empty password is refused before asking, since LDAP
    /// takes it as an unauthenticated bind that "succeeds".
    pub async fn check_password(&self, dn: &str, password: &str) -> Result<bool> {
        if password.is_empty() || dn.is_empty() {
            return Ok(false);
        }
        self.fail_fast()?;
        let mut last = String::new();
        for _ in 0..2 {
            let pooled = self.binders.lock().unwrap().pop();
            let mut ldap = match pooled.map(|mut l| (l.is_closed(), l)) {
                Some((false, l)) => l,
                _ => self
                    .connect()
                    .await
                    .map_err(|e| unavailable(&self.s.url, e))?,
            };
            match ldap
                .with_timeout(self.s.timeout)
                .simple_bind(dn, password)
                .await
            {
                Ok(res) => {
                    let mut pool = self.binders.lock().unwrap();
                    if pool.len() < self.s.pool_size {
                        pool.push(ldap);
                    }
                    drop(pool);
                    return match res.rc {
                        0 => Ok(true),
                        // invalidCredentials, inappropriateAuthentication,
                        // unwillingToPerform (e.g. a locked account)
                        49 | 48 | 53 => Ok(false),
                        rc => Err(unavailable(
                            &self.s.url,
                            format!("bind as {dn}: result {rc} {}", res.text),
                        )),
                    };
                }
                // A pooled connection the server has closed: try a new one.
                Err(e) if is_transport(&e) => last = e.to_string(),
                Err(e) => return Err(unavailable(&self.s.url, e)),
            }
        }
        Err(unavailable(&self.s.url, last))
    }
}

fn tls_config(s: &LdapSettings) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    if !s.tls_verify {
        // Certificate checking turned off by the administrator; the
        // handshake signatures are still checked.
        return Ok(Arc::new(outpost_net::RelaxedVerifier::client_config(
            outpost_net::Trust::AnyCertificate,
        )));
    }
    let mut roots = rustls::RootCertStore::empty();
    match &s.ca_file {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| format!("cannot read ca_file {}: {e}", path.display()))?;
            let mut n = 0;
            for c in rustls_pemfile::certs(&mut pem.as_slice()) {
                let c = c.map_err(|e| format!("ca_file {}: {e}", path.display()))?;
                roots
                    .add(c)
                    .map_err(|e| format!("ca_file {}: {e}", path.display()))?;
                n += 1;
            }
            if n == 0 {
                return Err(format!(
                    "ca_file {} holds no PEM certificate",
                    path.display()
                ));
            }
        }
        None => {
            for c in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(c);
            }
        }
    }
    Ok(Arc::new(
        builder.with_root_certificates(roots).with_no_client_auth(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn proxy_addresses_primary_and_secondary() {
        let (p, sec) = addresses(
            &s(&["Alice@Example.org"]),
            &s(&[
                "smtp:ali@example.org",
                "SMTP:alice.smith@example.org",
                "X400:c=US;a= ;p=Org;o=Ex;s=Smith;",
                "X500:/o=Org/ou=Exchange/cn=Recipients/cn=alice",
                "=EX:whatever",
                "SIP:alice@example.org",
                "smtp:Alice@example.org",
            ]),
        );
        assert_eq!(p.as_deref(), Some("alice.smith@example.org"));
        assert_eq!(sec, s(&["ali@example.org", "alice@example.org"]));
    }

    #[test]
    fn without_smtp_primary_mail_is_primary() {
        let (p, sec) = addresses(&s(&["bob@example.org"]), &s(&["smtp:b@example.org"]));
        assert_eq!(p.as_deref(), Some("bob@example.org"));
        assert_eq!(sec, s(&["b@example.org"]));
        let (p, sec) = addresses(&[], &s(&["smtp:only@example.org", "X500:/o=x"]));
        assert_eq!(p.as_deref(), Some("only@example.org"));
        assert!(sec.is_empty());
        let (p, sec) = addresses(&[], &s(&["X400:c=US"]));
        assert_eq!(p, None);
        assert!(sec.is_empty());
    }

    #[test]
    fn uac_disable_bit() {
        assert!(!uac_disabled("512")); // NORMAL_ACCOUNT
        assert!(uac_disabled("514")); // NORMAL_ACCOUNT | ACCOUNTDISABLE
        assert!(!uac_disabled("66048")); // + DONT_EXPIRE_PASSWORD
        assert!(uac_disabled("66050"));
        assert!(uac_disabled("-2147483646")); // signed form with bit 1 set
        assert!(uac_disabled("garbage"));
    }

    #[test]
    fn guid_round_trip() {
        // [MS-DTYP] example layout: Data1..Data3 little-endian.
        let raw = [
            0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
            0xee, 0xff,
        ];
        let g = format_guid(&raw).unwrap();
        assert_eq!(g, "00112233-4455-6677-8899-aabbccddeeff");
        assert_eq!(guid_to_bytes(&g).unwrap(), raw);
        assert!(format_guid(&raw[..15]).is_none());
        assert!(guid_to_bytes("not-a-guid").is_none());
        assert_eq!(
            Mapping::ad().id_filter(&g).unwrap(),
            "(objectGUID=\\33\\22\\11\\00\\55\\44\\77\\66\\88\\99\\aa\\bb\\cc\\dd\\ee\\ff)"
        );
    }

    #[test]
    fn filter_escaping() {
        assert_eq!(
            escape_filter_value("a*b(c)d\\e\0"),
            "a\\2ab\\28c\\29d\\5ce\\00"
        );
        assert_eq!(escape_filter_value("José"), "José");
        // An injection attempt stays one value inside its own clause.
        let f = Mapping::ad().login_filter("*)(sAMAccountName=*");
        assert!(
            f.contains("(sAMAccountName=\\2a\\29\\28sAMAccountName=\\2a)"),
            "{f}"
        );
        assert_eq!(f.matches('(').count(), f.matches(')').count());
    }

    #[test]
    fn filters_by_preset() {
        let ad = Mapping::ad();
        assert_eq!(
            ad.login_filter("alice"),
            "(&(&(objectClass=person)(!(objectClass=computer)))(|(sAMAccountName=alice)(userPrincipalName=alice)))"
        );
        assert_eq!(
            ad.address_filter("a@x.org"),
            "(&(|(&(objectClass=person)(!(objectClass=computer)))(objectClass=group))(|(mail=a@x.org)(proxyAddresses=smtp:a@x.org)))"
        );
        let ol = Mapping::openldap();
        assert_eq!(
            ol.login_filter("bob@x.org"),
            "(&(objectClass=inetOrgPerson)(|(uid=bob@x.org)(|(mail=bob@x.org)(mailAlternateAddress=bob@x.org))))"
        );
        let f = ol.prefix_filter("bo*");
        assert!(f.contains("(cn=bo\\2a*)"), "{f}");
    }

    #[test]
    fn entry_mapping_ad() {
        let mut e = SearchEntry {
            dn: "CN=Alice,CN=Users,DC=example,DC=org".into(),
            attrs: HashMap::new(),
            bin_attrs: HashMap::new(),
        };
        e.attrs.insert(
            "objectClass".into(),
            s(&["top", "person", "organizationalPerson", "user"]),
        );
        e.attrs.insert("sAMAccountName".into(), s(&["alice"]));
        e.attrs.insert("cn".into(), s(&["Alice"]));
        e.attrs.insert("useraccountcontrol".into(), s(&["514"]));
        e.attrs.insert(
            "proxyAddresses".into(),
            s(&["SMTP:alice@example.org", "smtp:a@example.org"]),
        );
        e.bin_attrs
            .insert("objectGUID".into(), vec![vec![0xab; 16]]);
        let m = Mapping::ad().entry(&e).unwrap();
        assert_eq!(m.kind, PrincipalKind::User);
        assert!(!m.enabled);
        assert_eq!(m.name, "Alice");
        assert_eq!(m.id, "abababab-abab-abab-abab-abababababab");
        assert!(m.has_address("A@example.org"));
        assert_eq!(m.logins, s(&["alice"]));
        e.attrs.insert("objectClass".into(), s(&["top", "group"]));
        assert_eq!(Mapping::ad().entry(&e).unwrap().kind, PrincipalKind::Group);
        e.bin_attrs.clear();
        assert!(Mapping::ad().entry(&e).is_none());
    }

    #[test]
    fn gal_filters_by_preset() {
        let ad = Mapping::ad();
        assert_eq!(
            ad.gal_filter(),
            "(&(|(&(&(objectClass=person)(!(objectClass=computer)))(objectClass=user)(!(objectClass=contact))(!(isCriticalSystemObject=TRUE)))(objectClass=group))(|(mail=*)(proxyAddresses=smtp:*)))"
        );
        let f = ad.prefix_filter("Sm(");
        assert!(f.starts_with(&format!("(&{}(|", ad.gal_filter())), "{f}");
        for clause in [
            "(displayName=Sm\\28*)",
            "(givenName=Sm\\28*)",
            "(sn=Sm\\28*)",
            "(sAMAccountName=Sm\\28*)",
            "(proxyAddresses=smtp:Sm\\28*)",
        ] {
            assert!(f.contains(clause), "{clause} in {f}");
        }
        assert_eq!(f.matches('(').count(), f.matches(')').count());
        let ol = Mapping::openldap();
        assert_eq!(
            ol.gal_filter(),
            "(&(|(&(objectClass=inetOrgPerson))(objectClass=groupOfNames))(|(mail=*)(mailAlternateAddress=*)))"
        );
        // Each attribute once, although sn and cn overlap the name list.
        let f = ol.prefix_filter("x");
        assert_eq!(f.matches("(cn=x*)").count(), 1, "{f}");
        let attrs = ol.attrs();
        for a in [
            "givenName",
            "sn",
            "title",
            "ou",
            "o",
            "physicalDeliveryOfficeName",
            "telephoneNumber",
            "mobile",
        ] {
            assert!(attrs.iter().any(|x| x == a), "{a}");
        }
    }

    #[test]
    fn entry_mapping_contact_attributes() {
        let mut e = SearchEntry {
            dn: "CN=Alice Smith,CN=Users,DC=example,DC=org".into(),
            attrs: HashMap::new(),
            bin_attrs: HashMap::new(),
        };
        e.attrs
            .insert("objectClass".into(), s(&["top", "person", "user"]));
        e.attrs.insert("displayName".into(), s(&["Alice Smith"]));
        e.attrs.insert("givenname".into(), s(&["Alice"]));
        e.attrs.insert("sn".into(), s(&["Smith"]));
        e.attrs.insert("title".into(), s(&["  CTO "]));
        e.attrs.insert("department".into(), s(&["Board"]));
        e.attrs.insert("company".into(), s(&["Example Inc."]));
        e.attrs
            .insert("physicalDeliveryOfficeName".into(), s(&["B2 R101"]));
        e.attrs
            .insert("telephoneNumber".into(), s(&["", "+1 555 0100"]));
        e.attrs.insert("mobile".into(), s(&["line\nbreak"]));
        e.attrs.insert("mail".into(), s(&["alice@example.org"]));
        e.bin_attrs
            .insert("objectGUID".into(), vec![vec![0x01; 16]]);
        let m = Mapping::ad().entry(&e).unwrap();
        let a = &m.attrs;
        assert_eq!(a.given_name.as_deref(), Some("Alice"));
        assert_eq!(a.surname.as_deref(), Some("Smith"));
        assert_eq!(a.title.as_deref(), Some("CTO"));
        assert_eq!(a.department.as_deref(), Some("Board"));
        assert_eq!(a.company.as_deref(), Some("Example Inc."));
        assert_eq!(a.office.as_deref(), Some("B2 R101"));
        assert_eq!(
            a.phone.as_deref(),
            Some("+1 555 0100"),
            "first non-empty value"
        );
        assert_eq!(a.mobile, None, "a value with a line break is dropped");
        // inetOrgPerson: department in ou, company in o.
        e.attrs.insert("ou".into(), s(&["Research"]));
        e.attrs.insert("o".into(), s(&["Example Ltd"]));
        e.attrs.insert("entryUUID".into(), s(&["abc"]));
        let m = Mapping::openldap().entry(&e).unwrap();
        assert_eq!(m.attrs.department.as_deref(), Some("Research"));
        assert_eq!(m.attrs.company.as_deref(), Some("Example Ltd"));
    }

    #[test]
    fn entry_mapping_openldap_lock() {
        let mut e = SearchEntry {
            dn: "uid=carol,ou=people,dc=example,dc=org".into(),
            attrs: HashMap::new(),
            bin_attrs: HashMap::new(),
        };
        e.attrs
            .insert("objectClass".into(), s(&["top", "inetOrgPerson"]));
        e.attrs.insert(
            "entryUUID".into(),
            s(&["8E2D9D2C-1111-4C3B-9A0B-0123456789AB"]),
        );
        e.attrs
            .insert("mail".into(), s(&["carol@example.org", "c@example.org"]));
        e.attrs
            .insert("mailAlternateAddress".into(), s(&["cc@example.org"]));
        let m = Mapping::openldap().entry(&e).unwrap();
        assert!(m.enabled);
        assert_eq!(m.id, "8e2d9d2c-1111-4c3b-9a0b-0123456789ab");
        assert_eq!(m.primary.as_deref(), Some("carol@example.org"));
        assert_eq!(m.secondary, s(&["c@example.org", "cc@example.org"]));
        e.attrs
            .insert("pwdAccountLockedTime".into(), s(&["000001010000Z"]));
        assert!(!Mapping::openldap().entry(&e).unwrap().enabled);
    }
}
