//! DKIM keys: where they live and the key a new domain gets. Signing itself
//! is [`outpost_queue::KeyDir`], handed to the queue runner by
//! [`crate::MailFlow::signer`].

use std::path::{Path, PathBuf};

use outpost_config::Config;
pub use outpost_queue::dkim::{dns_txt, key_path, Algorithm};

/// `<data_dir>/dkim`: one PEM key per domain and selector.
pub fn key_dir(cfg: &Config) -> PathBuf {
    cfg.data_dir.join("dkim")
}

/// Creates the key for `domain` under `selector` unless there is one.
/// Returns the key file and whether it was created now. Mail from the
/// domain is signed with it from the next message on (the signer reads
/// keys on first use).
pub fn ensure_key(
    dir: &Path,
    domain: &str,
    selector: &str,
    alg: Algorithm,
) -> Result<(PathBuf, bool), String> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    let path = key_path(dir, &domain, selector);
    if path.exists() {
        return Ok((path, false));
    }
    outpost_queue::dkim::generate(dir, &domain, selector, alg).map(|p| (p, true))
}
