//! `outpost sieve import DIR`: brings over the Sieve scripts of a Dovecot
//! + Pigeonhole installation.
//!
//! Pigeonhole's default script location is
//! `sieve = file:~/sieve;active=~/.dovecot.sieve`: every script is
//! `~/sieve/NAME.sieve` and the active one is the symbolic link
//! `~/.dovecot.sieve` pointing at it. Installations differ a little, so
//! also understood: the link named `dovecot.sieve` (in the home or in
//! `sieve/`), and a plain `.dovecot.sieve` file from before ManageSieve,
//! which is imported as `dovecot.orig` and made active (what Pigeonhole's
//! ManageSieve does with it on first use).
//!
//! Homes are `DIR/<user>` where `<user>` is a full address or a local part
//! (with `--domain`), or `DIR/<domain>/<local part>` (`mail_home =
//! /var/vmail/%d/%n`).

use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

/// One home directory with Sieve scripts.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Home {
    /// The directory's name: a local part or a full address.
    pub name: String,
    /// The domain directory it was found in (`DIR/<domain>/<user>`).
    pub domain: Option<String>,
    pub path: PathBuf,
    /// (script name, file), sorted by name.
    pub scripts: Vec<(String, PathBuf)>,
    /// The script the active link points at.
    pub active: Option<String>,
    /// What could not be understood (dangling links and the like).
    pub problems: Vec<String>,
}

impl Home {
    /// The account this home belongs to.
    pub fn address(&self, default_domain: Option<&str>) -> Option<String> {
        if self.name.contains('@') {
            return Some(self.name.to_ascii_lowercase());
        }
        let domain = self.domain.as_deref().or(default_domain)?;
        Some(format!("{}@{}", self.name, domain).to_ascii_lowercase())
    }
}

const ACTIVE_LINKS: &[&str] = &[".dovecot.sieve", "dovecot.sieve"];

fn is_home(dir: &Path) -> bool {
    dir.join("sieve").is_dir()
        || ACTIVE_LINKS
            .iter()
            .any(|l| std::fs::symlink_metadata(dir.join(l)).is_ok())
}

fn sorted_dirs(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let e = e?;
        let path = e.path();
        if !path.is_dir() {
            continue;
        }
        if let Some(name) = e.file_name().to_str() {
            if !name.starts_with('.') {
                v.push((name.to_string(), path));
            }
        }
    }
    v.sort();
    Ok(v)
}

/// Finds the homes under `root`, with their scripts and active script.
/// Directories that are neither a home nor a domain of homes are skipped.
pub fn scan(root: &Path) -> Result<Vec<Home>> {
    let mut homes = Vec::new();
    for (name, path) in sorted_dirs(root)? {
        if is_home(&path) {
            homes.push(scan_home(name, None, &path)?);
        } else if name.contains('.') {
            for (user, upath) in sorted_dirs(&path)? {
                if is_home(&upath) {
                    homes.push(scan_home(user, Some(name.clone()), &upath)?);
                }
            }
        }
    }
    Ok(homes)
}

fn scan_home(name: String, domain: Option<String>, path: &Path) -> Result<Home> {
    let mut home = Home {
        name,
        domain,
        path: path.to_path_buf(),
        ..Home::default()
    };
    let sieve_dir = path.join("sieve");
    let mut links = Vec::new();
    if sieve_dir.is_dir() {
        for e in std::fs::read_dir(&sieve_dir)
            .with_context(|| format!("reading {}", sieve_dir.display()))?
        {
            let e = e?;
            let p = e.path();
            let Some(file) = e.file_name().to_str().map(str::to_string) else {
                home.problems
                    .push(format!("{}: file name is not UTF-8; skipped", p.display()));
                continue;
            };
            let Some(stem) = file.strip_suffix(".sieve") else {
                continue; // .svbin, tmp/, editor backups
            };
            let meta = std::fs::symlink_metadata(&p)?;
            if meta.file_type().is_symlink() {
                links.push(p);
            } else if meta.is_file() && !stem.is_empty() {
                home.scripts.push((stem.to_string(), p));
            }
        }
    }
    home.scripts.sort();
    for l in ACTIVE_LINKS {
        links.push(path.join(l));
    }
    for link in links {
        let Ok(meta) = std::fs::symlink_metadata(&link) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            match target_script(&link, &home.scripts) {
                Some(name) => {
                    if home.active.is_none() {
                        home.active = Some(name);
                    }
                }
                None => home.problems.push(format!(
                    "{}: the link does not point at a script in {}; no active script taken from it",
                    link.display(),
                    sieve_dir.display()
                )),
            }
        } else if meta.is_file() && link.parent() == Some(path) {
            // A plain script in the active place: from before ManageSieve.
            let name = "dovecot.orig".to_string();
            if !home.scripts.iter().any(|(n, _)| *n == name) {
                home.scripts.push((name.clone(), link.clone()));
            }
            if home.active.is_none() {
                home.active = Some(name);
            }
        }
    }
    Ok(home)
}

/// The script an active link points at, if it is one of `scripts`.
fn target_script(link: &Path, scripts: &[(String, PathBuf)]) -> Option<String> {
    let target = std::fs::canonicalize(link).ok()?;
    scripts
        .iter()
        .find(|(_, p)| std::fs::canonicalize(p).ok().as_deref() == Some(target.as_path()))
        .map(|(n, _)| n.clone())
}

/// Outcome counts for the summary line.
#[derive(Debug, Default)]
pub struct Summary {
    pub users: usize,
    pub scripts: usize,
    pub activated: usize,
    pub failed: usize,
}

/// Imports every home under `root` into the store. Problems are printed
/// to stderr as `FILE:LINE: message` and counted; everything else goes on.
pub async fn import(
    cfg: &outpost_config::Config,
    dir: &outpost_directory::Directory,
    root: &Path,
    default_domain: Option<&str>,
    dry_run: bool,
) -> Result<Summary> {
    let engine = outpost_mailflow::sieve_engine(cfg)?;
    let store = dir.store();
    let mut sum = Summary::default();
    let homes = scan(root)?;
    if homes.is_empty() {
        anyhow::bail!(
            "no home directories with sieve/ or .dovecot.sieve under {}",
            root.display()
        );
    }
    for home in homes {
        for p in &home.problems {
            eprintln!("{p}");
        }
        let Some(address) = home.address(default_domain) else {
            eprintln!(
                "{}: cannot tell which domain user {:?} is in; give --domain DOMAIN",
                home.path.display(),
                home.name
            );
            sum.failed += home.scripts.len().max(1);
            continue;
        };
        let user = match dir.user(&address).await {
            Ok(u) => u,
            Err(e) => {
                eprintln!("{}: {address}: {e}; skipped", home.path.display());
                sum.failed += home.scripts.len().max(1);
                continue;
            }
        };
        sum.users += 1;
        let mut stored = Vec::new();
        for (name, path) in &home.scripts {
            if let Err(e) = outpost_store::sieve::check_script_name(name) {
                eprintln!("{}: {e}; skipped", path.display());
                sum.failed += 1;
                continue;
            }
            let content = match std::fs::read(path) {
                Ok(b) => match String::from_utf8(b) {
                    Ok(s) => s,
                    Err(_) => {
                        eprintln!("{}: not UTF-8 text; skipped", path.display());
                        sum.failed += 1;
                        continue;
                    }
                },
                Err(e) => {
                    eprintln!("{}: {e}; skipped", path.display());
                    sum.failed += 1;
                    continue;
                }
            };
            if let Err(e) = engine.compile(&content) {
                let line = if e.line > 0 {
                    format!(":{}", e.line)
                } else {
                    String::new()
                };
                eprintln!("{}{line}: {}; skipped", path.display(), e.message);
                sum.failed += 1;
                continue;
            }
            if !dry_run {
                store
                    .sieve_put(user.id, name, &content)
                    .await
                    .with_context(|| format!("storing {} for {address}", path.display()))?;
            }
            println!("{address}: {name} <- {}", path.display());
            sum.scripts += 1;
            stored.push(name.clone());
        }
        match &home.active {
            Some(active) if stored.contains(active) => {
                if !dry_run {
                    store.sieve_set_active(user.id, Some(active)).await?;
                }
                println!("{address}: {active} is active");
                sum.activated += 1;
            }
            Some(active) => eprintln!(
                "{address}: the active script {active:?} was not imported; the active script is left as it was"
            ),
            None => {}
        }
    }
    Ok(sum)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn finds_scripts_and_the_active_link() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path();
        // ann: Pigeonhole default layout.
        let ann = root.join("ann/sieve");
        std::fs::create_dir_all(ann.join("tmp")).unwrap();
        std::fs::write(ann.join("main.sieve"), "keep;\n").unwrap();
        std::fs::write(ann.join("vacation.sieve"), "keep;\n").unwrap();
        std::fs::write(ann.join("main.svbin"), "bin").unwrap();
        symlink("sieve/vacation.sieve", root.join("ann/.dovecot.sieve")).unwrap();
        // bob@x.example: the link inside sieve/.
        let bob = root.join("bob@x.example/sieve");
        std::fs::create_dir_all(&bob).unwrap();
        std::fs::write(bob.join("a.sieve"), "keep;\n").unwrap();
        symlink("a.sieve", bob.join("dovecot.sieve")).unwrap();
        // y.example/carol: a plain .dovecot.sieve, no sieve/ directory.
        std::fs::create_dir_all(root.join("y.example/carol")).unwrap();
        std::fs::write(root.join("y.example/carol/.dovecot.sieve"), "discard;\n").unwrap();
        // dan: a dangling link.
        std::fs::create_dir_all(root.join("dan/sieve")).unwrap();
        symlink("sieve/gone.sieve", root.join("dan/.dovecot.sieve")).unwrap();
        // Not a home at all.
        std::fs::create_dir_all(root.join("lost+found")).unwrap();

        let homes = scan(root).unwrap();
        let names: Vec<_> = homes.iter().map(|h| h.name.as_str()).collect();
        assert_eq!(names, ["ann", "bob@x.example", "dan", "carol"]);
        let ann = &homes[0];
        let scripts: Vec<_> = ann.scripts.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(scripts, ["main", "vacation"]);
        assert_eq!(ann.active.as_deref(), Some("vacation"));
        assert_eq!(
            ann.address(Some("d.example")).as_deref(),
            Some("ann@d.example")
        );
        assert_eq!(ann.address(None), None);
        let bob = &homes[1];
        assert_eq!(bob.scripts.len(), 1);
        assert_eq!(bob.active.as_deref(), Some("a"));
        assert_eq!(
            bob.address(Some("d.example")).as_deref(),
            Some("bob@x.example")
        );
        let dan = &homes[2];
        assert!(dan.active.is_none());
        assert_eq!(dan.problems.len(), 1, "{:?}", dan.problems);
        let carol = &homes[3];
        assert_eq!(carol.address(None).as_deref(), Some("carol@y.example"));
        assert_eq!(carol.active.as_deref(), Some("dovecot.orig"));
        assert_eq!(carol.scripts[0].0, "dovecot.orig");
    }
}
