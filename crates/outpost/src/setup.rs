//! Creating and opening what a server needs: config, data directory,
//! certificate, store; and the demo that runs when there is no config.

use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use outpost_config::{starter_config, Config};
use outpost_net::TlsAcceptor;
use outpost_store::Store;

pub const DEMO_DIR: &str = "outpost-data";
pub const DEMO_DOMAIN: &str = "example.test";
pub const DEMO_USER: &str = "demo@example.test";

/// Demo listeners: loopback, high ports, away from the usual ones.
pub const DEMO_PORTS: &[(&str, u16)] = &[
    ("smtp", 10025),
    ("submission", 10587),
    ("submissions", 10465),
    ("lmtp", 10024),
    ("imap", 10143),
    ("imaps", 10993),
    ("pop3", 10110),
    ("pop3s", 10995),
    ("managesieve", 10190),
    ("http", 10080),
    ("https", 10443),
];

/// `outpost init`: config file, data directory, self-signed certificate.
pub fn init(path: &Path, hostname: &str, data_dir: &Path, force: bool) -> Result<()> {
    if path.exists() && !force {
        bail!("{} exists; use --force to overwrite it", path.display());
    }
    let data_dir = absolute(data_dir)?;
    let text = starter_config(hostname, &data_dir);
    let cfg = Config::parse(&text, "starter config")?;
    fs::create_dir_all(&data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let (cert, key, _) = cfg.tls_paths();
    ensure_self_signed(&cert, &key, hostname)?;
    write_atomically(path, text.as_bytes())?;
    println!(
        "wrote {} (data in {}, self-signed certificate in {})",
        path.display(),
        data_dir.display(),
        cert.display()
    );
    println!("next: outpost check --config {0}; outpost domain add DOMAIN --config {0}; outpost serve --config {0}", path.display());
    Ok(())
}

fn absolute(p: &Path) -> Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    })
}

pub fn write_atomically(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("writing {}", path.display()))?;
    std::io::Write::write_all(&mut tmp, data)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .map_err(|e| anyhow!("writing {}: {}", path.display(), e.error))?;
    Ok(())
}

/// Creates a self-signed certificate and key unless both exist.
pub fn ensure_self_signed(cert: &Path, key: &Path, hostname: &str) -> Result<()> {
    if cert.exists() && key.exists() {
        return Ok(());
    }
    let dir = cert.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let names = vec![hostname.to_string(), "localhost".to_string()];
    let ck = rcgen::generate_simple_self_signed(names)
        .context("generating a self-signed certificate")?;
    write_atomically(cert, ck.cert.pem().as_bytes())?;
    write_atomically(key, ck.key_pair.serialize_pem().as_bytes())?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(key, fs::Permissions::from_mode(0o600))?;
    }
    Ok(())
}

/// The TLS acceptor for the configured (or generated) certificate.
/// `generate`: create the self-signed pair when it is the default one and missing.
pub fn tls_acceptor(cfg: &Config, generate: bool) -> Result<TlsAcceptor> {
    let (cert, key, generated) = cfg.tls_paths();
    if generated && generate {
        ensure_self_signed(&cert, &key, &cfg.hostname)?;
    }
    let key_name = if generated {
        "the generated key"
    } else {
        "tls.key"
    };
    let cert_name = if generated {
        "the generated certificate (run outpost init)"
    } else {
        "tls.cert"
    };
    outpost_net::load_tls(&cert, &key).map_err(|e| {
        let which = match &e {
            outpost_net::TlsError::NoKey { .. } => key_name,
            outpost_net::TlsError::Read { path, .. } if Path::new(path) == key => key_name,
            _ => cert_name,
        };
        anyhow!("config: {which}: {e}")
    })
}

pub async fn open_store(cfg: &Config) -> Result<Store> {
    let url = cfg.storage_url();
    let store = Store::open(&url, &cfg.blob_dir())
        .await
        .map_err(|e| anyhow!("storage: {e}"))?;
    if let Some(n) = cfg.storage.inline_max {
        store.set_inline_max(n);
    }
    if let Some(n) = cfg.storage.pack_max {
        store.set_pack_max(n);
    }
    Ok(store)
}

/// The demo configuration: ./outpost-data, loopback listeners on high ports.
pub fn demo_config() -> Config {
    let dir = std::env::current_dir().unwrap_or_default().join(DEMO_DIR);
    let mut cfg = Config::defaults_with(dir);
    cfg.auth.allow_plaintext_on_loopback = true;
    cfg.http.allow_plaintext_on_loopback = true;
    // Demo mail comes from loopback clients; SPF/DKIM/DMARC lookups would
    // only wait on DNS.
    cfg.inbound.check = false;
    cfg
}

pub fn demo_listeners(cfg: &mut Config) {
    for (name, port) in DEMO_PORTS {
        let addr: SocketAddr = ([127, 0, 0, 1], *port).into();
        let l = &mut cfg.listen;
        match *name {
            "smtp" => l.smtp = vec![addr],
            "submission" => l.submission = vec![addr],
            "submissions" => l.submissions = vec![addr],
            "lmtp" => l.lmtp = vec![addr],
            "imap" => l.imap = vec![addr],
            "imaps" => l.imaps = vec![addr],
            "pop3" => l.pop3 = vec![addr],
            "pop3s" => l.pop3s = vec![addr],
            "managesieve" => l.managesieve = vec![addr],
            "http" => l.http = vec![addr],
            "https" => l.https = vec![addr],
            _ => {}
        }
    }
}

/// Creates the demo domain and user on first run. Returns the password when
/// the user was created now (it is shown once).
pub async fn provision_demo(store: &Store) -> Result<Option<String>> {
    let dir = outpost_directory::Directory::new(store.clone());
    if store.domain(DEMO_DOMAIN).await?.is_none() {
        store.add_domain(DEMO_DOMAIN).await?;
    }
    if store.principal_by_address(DEMO_USER).await?.is_some() {
        return Ok(None);
    }
    let pw: String = {
        use rand::Rng;
        const CHARS: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
        let mut rng = rand::thread_rng();
        (0..16)
            .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
            .collect()
    };
    dir.add_user(DEMO_USER, "Demo User", &pw).await?;
    Ok(Some(pw))
}

// --- directory source ----------------------------------------------------------

/// The directory over `store`: built-in only, or with the configured LDAP
/// source on top. Build it once per process and clone it (clones share the
/// LDAP connection pool and caches). `config_path` is checked for other
/// users' read access when the service password is written inline.
pub fn directory(
    cfg: &Config,
    store: Store,
    config_path: Option<&Path>,
) -> Result<outpost_directory::Directory> {
    Ok(match ldap_source(cfg, config_path)? {
        Some(src) => outpost_directory::Directory::with_ldap(store, std::sync::Arc::new(src)),
        None => outpost_directory::Directory::new(store),
    })
}

/// Builds the LDAP source described by `[directory]`, or `None` when the
/// directory is the built-in one.
pub fn ldap_source(
    cfg: &Config,
    config_path: Option<&Path>,
) -> Result<Option<outpost_directory::LdapSource>> {
    use outpost_config::{DirectoryPreset, DirectorySource};
    let d = &cfg.directory;
    if d.source != DirectorySource::Ldap {
        return Ok(None);
    }
    let password = if let Some(f) = &d.bind_password_file {
        let text = fs::read_to_string(f).map_err(|e| {
            anyhow!(
                "config: directory.bind_password_file: cannot read {}: {e}",
                f.display()
            )
        })?;
        text.lines().next().unwrap_or("").to_string()
    } else if let Some(var) = &d.bind_password_env {
        std::env::var(var).map_err(|_| {
            anyhow!("config: directory.bind_password_env: environment variable {var} is not set")
        })?
    } else {
        if let Some(p) = config_path {
            use std::os::unix::fs::PermissionsExt;
            if let Ok(m) = fs::metadata(p) {
                if m.permissions().mode() & 0o004 != 0 {
                    tracing::warn!(
                        "config: directory.bind_password is inline and {} is readable by every user; \
                         move it to bind_password_file or run chmod o-r {}",
                        p.display(),
                        p.display()
                    );
                }
            }
        }
        d.bind_password.clone().unwrap_or_default()
    };
    if password.is_empty() {
        bail!("config: directory: the service account's password is empty (an empty password is an anonymous bind)");
    }
    let mut mapping = match d.preset {
        DirectoryPreset::Ad => outpost_directory::Mapping::ad(),
        DirectoryPreset::Openldap => outpost_directory::Mapping::openldap(),
    };
    if let Some(f) = &d.user_filter {
        mapping.user_filter = f.clone();
    }
    if let Some(f) = &d.group_filter {
        mapping.group_filter = f.clone();
    }
    if let Some(a) = &d.login_attributes {
        mapping.login_attrs = a.clone();
    }
    if let Some(a) = &d.address_attributes {
        mapping.address_attrs = a.clone();
    }
    let url = d.url.clone().unwrap_or_default();
    if url.starts_with("ldap://") && !d.starttls {
        tracing::warn!("directory: {url} without StartTLS: passwords cross the network in the clear (fine on loopback only)");
    }
    if !d.tls_verify {
        tracing::warn!("directory: tls_verify = false: the server's certificate is not checked");
    }
    let settings = outpost_directory::LdapSettings {
        url,
        starttls: d.starttls,
        ca_file: d.ca_file.clone(),
        tls_verify: d.tls_verify,
        bind_dn: d.bind_dn.clone().unwrap_or_default(),
        bind_password: password,
        base_dn: d.base_dn.clone().unwrap_or_default(),
        mapping,
        cache_ttl: outpost_config::parse_duration(&d.cache_ttl).unwrap_or_default(),
        timeout: outpost_config::parse_duration(&d.timeout)
            .unwrap_or(std::time::Duration::from_secs(5)),
        pool_size: d.pool_size,
    };
    outpost_directory::LdapSource::new(settings)
        .map(Some)
        .map_err(|e| anyhow!("config: directory: {e}"))
}
