//! Message bodies, content-addressed by SHA-256. Small ones (up to the
//! store's inline limit) live in the `blobs` row itself, so the database
//! commit that files a message also makes its body durable: one flush for a
//! whole batch of deliveries. Larger ones are immutable files,
//! `<dir>/<first two hex digits>/<sha256>`: a write goes to a temporary file,
//! is fsynced, renamed into place, and the directory is fsynced, so a blob
//! named in a committed row is always whole on disk.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::StoreError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobRef {
    pub hash: String,
    pub size: u64,
    /// The body, when it is stored in the database row instead of a file.
    pub inline: Option<Arc<[u8]>>,
    /// The body, when the writer is to append it to a pack file.
    pub packed: Option<Arc<[u8]>>,
}

/// Faults a test can switch on to prove that no write failure is ever
/// acknowledged as success.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Fault {
    None = 0,
    /// Blob writes fail as if the disk were full.
    DiskFull = 1,
    /// Blob writes fail with an I/O error.
    Io = 2,
    /// Blob writes succeed, but flushing SQLite's write-ahead log after a
    /// commit fails (see `writer.rs`).
    LogFlush = 3,
}

#[derive(Clone)]
pub struct BlobStore {
    dir: Arc<PathBuf>,
    fault: Arc<AtomicU8>,
    packs: Arc<crate::pack::Packs>,
}

impl BlobStore {
    pub fn open(dir: &Path) -> Result<BlobStore, StoreError> {
        fs::create_dir_all(dir)?;
        // A crash between creating a temporary file and renaming it leaves
        // the temporary file behind; no row ever names it. Remove old ones
        // in the background (old: another node sharing the directory may be
        // writing a young one right now).
        let d = dir.to_path_buf();
        std::thread::spawn(move || {
            let n = remove_stale_tmp(&d, std::time::Duration::from_secs(3600));
            if n > 0 {
                tracing::info!("removed {n} stale temporary blob file(s)");
            }
        });
        Ok(BlobStore {
            dir: Arc::new(dir.to_path_buf()),
            fault: Arc::new(AtomicU8::new(0)),
            packs: crate::pack::Packs::open(dir)?,
        })
    }

    pub fn set_fault(&self, f: Fault) {
        self.fault.store(f as u8, Ordering::SeqCst);
    }

    pub(crate) fn fault(&self) -> u8 {
        self.fault.load(Ordering::SeqCst)
    }

    pub fn hash(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    pub fn path(&self, hash: &str) -> PathBuf {
        self.dir.join(&hash[..2]).join(hash)
    }

    /// Stores `data` durably and returns its reference. Idempotent.
    pub async fn put(&self, data: Arc<[u8]>) -> Result<BlobRef, StoreError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.put_sync(&data, true))
            .await
            .map_err(|e| StoreError::Internal(e.to_string()))?
    }

    /// Writes `data` into place without waiting for the disk; the caller
    /// must call [`BlobStore::sync`] before it commits a row naming the blob.
    /// This is how concurrent deliveries share one flush (group commit).
    pub async fn put_deferred(&self, data: Arc<[u8]>) -> Result<BlobRef, StoreError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.put_sync(&data, false))
            .await
            .map_err(|e| StoreError::Internal(e.to_string()))?
    }

    /// Flushes every blob written with `put_deferred` (and anything else
    /// dirty on the blob file system) to stable storage: one syncfs(2).
    pub async fn sync(&self) -> Result<(), StoreError> {
        let dir = self.dir.clone();
        tokio::task::spawn_blocking(move || sync_filesystem(&dir))
            .await
            .map_err(|e| StoreError::Internal(e.to_string()))?
    }

    /// A reference for a body kept in the database row: nothing is written
    /// here; the row insert carries the bytes.
    pub fn inline(&self, data: Arc<[u8]>) -> Result<BlobRef, StoreError> {
        self.check_fault()?;
        Ok(BlobRef {
            hash: Self::hash(&data),
            size: data.len() as u64,
            inline: Some(data),
            packed: None,
        })
    }

    /// A reference for a body the writer appends to a pack file with the
    /// rest of its batch (see `pack.rs`).
    pub fn for_pack(&self, data: Arc<[u8]>) -> Result<BlobRef, StoreError> {
        self.check_fault()?;
        Ok(BlobRef {
            hash: Self::hash(&data),
            size: data.len() as u64,
            inline: None,
            packed: Some(data),
        })
    }

    /// Reserves places for bodies in the current pack and starts writing
    /// and flushing them in the background; the returned task must have
    /// succeeded before any row naming a place is committed.
    pub(crate) async fn pack_start(
        &self,
        bodies: Vec<Arc<[u8]>>,
    ) -> Result<
        (
            Vec<(i64, i64)>,
            tokio::task::JoinHandle<Result<(), StoreError>>,
        ),
        StoreError,
    > {
        self.check_fault()?;
        let packs = self.packs.clone();
        let (slots, write) = tokio::task::spawn_blocking(move || packs.reserve(&bodies))
            .await
            .map_err(|e| StoreError::Internal(e.to_string()))??;
        Ok((slots, tokio::task::spawn_blocking(move || write.run())))
    }

    pub(crate) async fn pack_read(
        &self,
        pack: i64,
        offset: i64,
        len: i64,
    ) -> Result<Vec<u8>, StoreError> {
        let packs = self.packs.clone();
        tokio::task::spawn_blocking(move || packs.read(pack, offset, len))
            .await
            .map_err(|e| StoreError::Internal(e.to_string()))?
    }

    pub(crate) fn packs(&self) -> &crate::pack::Packs {
        &self.packs
    }

    /// Number of pack files on disk (for tests).
    pub fn count_packs(&self) -> usize {
        self.packs.count()
    }

    /// Size of pack files created from now on (tests make it small).
    pub fn set_pack_size(&self, bytes: u64) {
        self.packs.set_pack_size(bytes)
    }

    /// The path of pack `id` (for tests and repair tools).
    pub fn pack_path(&self, id: i64) -> PathBuf {
        self.packs.path(id)
    }

    fn check_fault(&self) -> Result<(), StoreError> {
        match self.fault.load(Ordering::SeqCst) {
            1 => Err(StoreError::Full(
                "injected fault: no space left on device".into(),
            )),
            2 => Err(StoreError::Unavailable("injected fault: I/O error".into())),
            _ => Ok(()),
        }
    }

    fn put_sync(&self, data: &[u8], durable: bool) -> Result<BlobRef, StoreError> {
        self.check_fault()?;
        let hash = Self::hash(data);
        let path = self.path(&hash);
        let parent = path.parent().expect("blob path has a parent");
        // A file left by a crash before its flush may be short: only a file
        // of the right size counts as present (the file system writes data
        // before it records the size).
        let present = fs::metadata(&path)
            .map(|m| m.len() == data.len() as u64)
            .unwrap_or(false);
        if !present {
            fs::create_dir_all(parent)?;
            // The temporary file lives in the blob's own shard directory:
            // the rename then locks one directory, not two, and concurrent
            // writers spread over 256 directories instead of queueing on one.
            let tmp = parent.join(format!(".tmp.{hash}.{}", rand::random::<u64>()));
            let res = (|| {
                let mut f = File::create(&tmp)?;
                f.write_all(data)?;
                if durable {
                    f.sync_all()?;
                }
                fs::rename(&tmp, &path)
            })();
            if let Err(e) = res {
                let _ = fs::remove_file(&tmp);
                return Err(e.into());
            }
        }
        if durable {
            // Also when the file was already there: its writer may not have
            // synced the directory yet.
            File::open(parent)?.sync_all()?;
        }
        Ok(BlobRef {
            hash,
            size: data.len() as u64,
            inline: None,
            packed: None,
        })
    }

    /// Reads a blob file. Bodies kept inline are read with
    /// `Store::read_blob`, which knows where each blob lives.
    pub async fn get(&self, hash: &str) -> Result<Vec<u8>, StoreError> {
        if hash.len() < 3 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(StoreError::Invalid(format!("bad blob id {hash:?}")));
        }
        let path = self.path(hash);
        match tokio::fs::read(&path).await {
            Ok(d) => Ok(d),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(StoreError::NotFound(format!("blob {hash}")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// True if the blob file ends in CRLF (a missing or unreadable file
    /// counts as true: reading it will report the problem).
    pub fn ends_with_crlf(&self, hash: &str) -> bool {
        use std::io::{Read, Seek, SeekFrom};
        let Ok(mut f) = File::open(self.path(hash)) else {
            return true;
        };
        match f.metadata() {
            Ok(m) if m.len() < 2 => return false,
            Ok(_) => {}
            Err(_) => return true,
        }
        let mut tail = [0u8; 2];
        if f.seek(SeekFrom::End(-2)).is_err() || f.read_exact(&mut tail).is_err() {
            return true;
        }
        tail == *b"\r\n"
    }

    pub fn exists(&self, hash: &str) -> bool {
        self.path(hash).exists()
    }

    pub fn remove(&self, hash: &str) -> Result<(), StoreError> {
        match fs::remove_file(self.path(hash)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Number of blob files on disk (for tests and `outpost check`).
    pub fn count_files(&self) -> usize {
        let Ok(rd) = fs::read_dir(&*self.dir) else {
            return 0;
        };
        rd.filter_map(Result::ok)
            .filter(|e| e.file_name() != "tmp" && e.file_name() != "packs")
            .filter_map(|e| fs::read_dir(e.path()).ok())
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|f| !f.file_name().to_string_lossy().starts_with('.'))
                    .count()
            })
            .sum()
    }
}

/// Removes `.tmp.*` files older than `age` from the shard directories (and
/// the `tmp/` directory of earlier versions). Returns how many went.
pub(crate) fn remove_stale_tmp(dir: &Path, age: std::time::Duration) -> usize {
    let Ok(shards) = fs::read_dir(dir) else {
        return 0;
    };
    let mut n = 0;
    for shard in shards.filter_map(Result::ok) {
        let Ok(files) = fs::read_dir(shard.path()) else {
            continue;
        };
        let legacy_tmp = shard.file_name() == "tmp";
        for f in files.filter_map(Result::ok) {
            if !legacy_tmp && !f.file_name().to_string_lossy().starts_with(".tmp.") {
                continue;
            }
            let old = f
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|e| e >= age);
            if old && fs::remove_file(f.path()).is_ok() {
                n += 1;
            }
        }
    }
    n
}

#[cfg(target_os = "linux")]
fn sync_filesystem(dir: &Path) -> Result<(), StoreError> {
    use std::os::fd::AsRawFd;
    let f = File::open(dir)?;
    // SAFETY: syncfs takes a valid open file descriptor, which `f` holds.
    let rc = unsafe { libc::syncfs(f.as_raw_fd()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn sync_filesystem(_dir: &Path) -> Result<(), StoreError> {
    // Without syncfs(2), fall back to the global sync(2)-less path: callers
    // on other systems use durable puts.
    Err(StoreError::Internal(
        "deferred blob sync needs Linux".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_temporary_files_are_removed_and_blobs_kept() {
        let dir = tempfile::tempdir().unwrap();
        let shard = dir.path().join("ab");
        fs::create_dir_all(&shard).unwrap();
        fs::write(shard.join("abcdef"), b"blob").unwrap();
        fs::write(shard.join(".tmp.abcdef.1"), b"half").unwrap();
        // Young temporary files stay: their writer may still be at work.
        assert_eq!(
            remove_stale_tmp(dir.path(), std::time::Duration::from_secs(3600)),
            0
        );
        assert_eq!(remove_stale_tmp(dir.path(), std::time::Duration::ZERO), 1);
        assert!(shard.join("abcdef").exists());
        assert!(!shard.join(".tmp.abcdef.1").exists());
    }
}
