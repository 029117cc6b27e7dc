//! Pack files: message bodies of a batch of deliveries appended to one
//! file, `<blobs>/packs/<id>.pack`, with one `fdatasync` for the batch.
//!
//! Why: a file per body costs an inode, a directory entry and a flush of
//! its own; a pack costs one write and one flush per batch. A new pack is
//! filled with zeros and flushed before its first use, so later appends
//! overwrite blocks that already exist: the flush then writes data only,
//! without a journal commit for a changed file size.
//!
//! The database is the index: a `blobs` row names the pack and offset, and
//! is committed only after the bytes are flushed. Bytes past the last
//! committed body (a crash between the flush and the commit) are never
//! referenced. Each process starts a new pack, so no process writes into a
//! pack another one may have left half-written, and holds an exclusive
//! `flock` on the pack it writes, so no other process removes it.
//!
//! Space comes back in `Store::sweep_blobs`: a pack is removed when no row
//! names it any more (which also covers a pack whose only batch never
//! committed), and a pack that is mostly dead space is compacted first: its
//! live bodies are checked against their hashes, appended to the current
//! pack, and their rows moved, in one transaction.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::StoreError;

/// Size of a new pack (larger when one batch needs more).
pub const PACK_SIZE: u64 = 8 * 1024 * 1024;

struct Current {
    id: i64,
    file: File,
    pos: u64,
    capacity: u64,
}

pub struct Packs {
    dir: PathBuf,
    state: Mutex<(Option<Current>, i64)>,
    /// Size of a new pack (tests make it small).
    size: std::sync::atomic::AtomicU64,
}

/// Bodies to write at their reserved place, and flush.
pub struct PackWrite {
    packs: Arc<Packs>,
    id: i64,
    file: File,
    pos: u64,
    buf: Vec<u8>,
}

impl PackWrite {
    /// Writes and flushes (data only: the pack's blocks already exist).
    /// Blocking.
    pub fn run(self) -> Result<(), StoreError> {
        let res = self
            .file
            .write_all_at(&self.buf, self.pos)
            .and_then(|_| self.file.sync_data());
        if let Err(e) = res {
            self.packs.retire(self.id);
            return Err(e.into());
        }
        Ok(())
    }
}

impl Packs {
    pub fn open(blob_dir: &Path) -> Result<Arc<Packs>, StoreError> {
        let dir = blob_dir.join("packs");
        fs::create_dir_all(&dir)?;
        let mut max = 0;
        for e in fs::read_dir(&dir)?.filter_map(Result::ok) {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if let Some(n) = name
                .strip_suffix(".pack")
                .and_then(|n| n.parse::<i64>().ok())
            {
                max = max.max(n);
            }
        }
        Ok(Arc::new(Packs {
            dir,
            state: Mutex::new((None, max + 1)),
            size: PACK_SIZE.into(),
        }))
    }

    pub fn path(&self, id: i64) -> PathBuf {
        self.dir.join(format!("{id:08}.pack"))
    }

    /// Appends the bodies, flushes them, and returns (pack, offset) for
    /// each, in order. Blocking.
    #[cfg(test)]
    pub fn append(self: &Arc<Self>, bodies: &[Arc<[u8]>]) -> Result<Vec<(i64, i64)>, StoreError> {
        let (slots, write) = self.reserve(bodies)?;
        write.run()?;
        Ok(slots)
    }

    /// Assigns each body its place, opening a new pack when the current
    /// one is full, and returns the places and the write that puts the
    /// bodies there. Nothing may name a place before that write has run.
    /// Blocking (a new pack is filled with zeros).
    pub fn reserve(
        self: &Arc<Self>,
        bodies: &[Arc<[u8]>],
    ) -> Result<(Vec<(i64, i64)>, PackWrite), StoreError> {
        let total: u64 = bodies.iter().map(|b| b.len() as u64).sum();
        let mut st = self.state.lock().unwrap();
        let need_new = match &st.0 {
            Some(c) => c.pos + total > c.capacity,
            None => true,
        };
        if need_new {
            let capacity = self
                .size
                .load(std::sync::atomic::Ordering::Relaxed)
                .max(total);
            // Another process on the same data directory (`outpost
            // deliver`, an import) may have taken the next number since
            // this one counted: take the next free one.
            let mut tries = 0;
            let (id, file) = loop {
                let id = st.1;
                st.1 += 1;
                match self.create(id, capacity)? {
                    Some(file) => break (id, file),
                    None if tries < 1000 => tries += 1,
                    None => {
                        return Err(StoreError::Unavailable(
                            "no free pack file name".to_string(),
                        ))
                    }
                }
            };
            st.0 = Some(Current {
                id,
                file,
                pos: 0,
                capacity,
            });
        }
        let cur = st.0.as_mut().expect("a current pack");
        let mut buf = Vec::with_capacity(total as usize);
        let mut out = Vec::with_capacity(bodies.len());
        for b in bodies {
            out.push((cur.id, cur.pos as i64 + buf.len() as i64));
            buf.extend_from_slice(b);
        }
        let write = PackWrite {
            packs: Arc::clone(self),
            id: cur.id,
            file: cur.file.try_clone()?,
            pos: cur.pos,
            buf,
        };
        cur.pos += total;
        Ok((out, write))
    }

    /// Stops writing to pack `id` (after a failed write): the next batch
    /// opens a new one.
    fn retire(&self, id: i64) {
        let mut st = self.state.lock().unwrap();
        if st.0.as_ref().is_some_and(|c| c.id == id) {
            st.0 = None;
        }
    }

    /// A new pack of `capacity` zero bytes, flushed, its name flushed into
    /// the directory; `None` when a pack of that number exists already.
    fn create(&self, id: i64, capacity: u64) -> Result<Option<File>, StoreError> {
        let path = self.path(id);
        let mut file = match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let res = (|| {
            if !try_lock(&file) {
                return Err(std::io::Error::other("pack is locked by another process"));
            }
            let zeros = vec![0u8; 1 << 20];
            let mut left = capacity;
            while left > 0 {
                let n = left.min(zeros.len() as u64) as usize;
                file.write_all(&zeros[..n])?;
                left -= n as u64;
            }
            file.sync_all()?;
            File::open(&self.dir)?.sync_all()
        })();
        if let Err(e) = res {
            let _ = fs::remove_file(&path);
            return Err(e.into());
        }
        Ok(Some(file))
    }

    /// Reads `len` bytes at `offset` of pack `id`. Blocking.
    pub fn read(&self, id: i64, offset: i64, len: i64) -> Result<Vec<u8>, StoreError> {
        let f = match File::open(self.path(id)) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StoreError::NotFound(format!("pack {id}")))
            }
            Err(e) => return Err(e.into()),
        };
        let mut buf = vec![0u8; len.max(0) as usize];
        f.read_exact_at(&mut buf, offset.max(0) as u64)?;
        Ok(buf)
    }

    /// Size of packs created from now on.
    pub fn set_pack_size(&self, bytes: u64) {
        self.size
            .store(bytes.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// The pack this process appends to, if it has one.
    pub fn current(&self) -> Option<i64> {
        self.state.lock().unwrap().0.as_ref().map(|c| c.id)
    }

    /// Every pack file: id, length and last modification.
    pub fn list(&self) -> Result<Vec<(i64, u64, std::time::SystemTime)>, StoreError> {
        let mut out = Vec::new();
        for e in fs::read_dir(&self.dir)?.filter_map(Result::ok) {
            let name = e.file_name();
            let Some(id) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".pack"))
                .and_then(|n| n.parse::<i64>().ok())
            else {
                continue;
            };
            if let Ok(m) = e.metadata() {
                out.push((id, m.len(), m.modified()?));
            }
        }
        out.sort();
        Ok(out)
    }

    /// The whole of pack `id`. Blocking.
    pub fn read_all(&self, id: i64) -> Result<Vec<u8>, StoreError> {
        Ok(fs::read(self.path(id))?)
    }

    /// Locks pack `id` for removal: `None` when this or another process is
    /// writing it (the writer holds a `flock` on it from its creation) or it
    /// is gone. While the lock is held nobody writes into the pack, so rows
    /// naming it can only be ones already committed: check for them, then
    /// [`Removal::remove`].
    pub fn lock_for_removal(&self, id: i64) -> Result<Option<Removal>, StoreError> {
        let st = self.state.lock().unwrap();
        if st.0.as_ref().is_some_and(|c| c.id == id) {
            return Ok(None);
        }
        let path = self.path(id);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        Ok(try_lock(&file).then_some(Removal { path, _file: file }))
    }

    /// Removes pack `id` if nobody writes it (tests).
    #[cfg(test)]
    pub fn remove(&self, id: i64) -> Result<bool, StoreError> {
        match self.lock_for_removal(id)? {
            Some(r) => r.remove().map(|_| true),
            None => Ok(!self.path(id).exists()),
        }
    }

    /// Pack files on disk (for tests).
    pub fn count(&self) -> usize {
        fs::read_dir(&self.dir)
            .map(|d| d.filter_map(Result::ok).count())
            .unwrap_or(0)
    }
}

/// A pack locked for removal.
pub struct Removal {
    path: PathBuf,
    _file: File,
}

impl Removal {
    pub fn remove(self) -> Result<(), StoreError> {
        match fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// An exclusive, non-blocking `flock`: held for as long as any handle of
/// this open file lives. False when another open file holds it.
fn try_lock(f: &File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a valid open descriptor, which `f` holds.
    unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_read_and_roll_over() {
        let dir = tempfile::tempdir().unwrap();
        let packs = Packs::open(dir.path()).unwrap();
        let a: Arc<[u8]> = Arc::from(&b"first body\r\n"[..]);
        let b: Arc<[u8]> = Arc::from(&b"second\r\n"[..]);
        let slots = packs.append(&[a.clone(), b.clone()]).unwrap();
        assert_eq!(slots, vec![(1, 0), (1, a.len() as i64)]);
        assert_eq!(packs.read(1, slots[1].1, b.len() as i64).unwrap(), &b[..]);
        // A batch larger than what is left opens the next pack.
        let big: Arc<[u8]> = vec![7u8; PACK_SIZE as usize].into();
        let slots = packs.append(std::slice::from_ref(&big)).unwrap();
        assert_eq!(slots, vec![(2, 0)]);
        assert_eq!(packs.count(), 2);
        // The pack being written stays; an old one can go.
        assert!(!packs.remove(2).unwrap());
        assert!(packs.remove(1).unwrap());
        assert_eq!(packs.count(), 1);
        assert!(matches!(packs.read(1, 0, 1), Err(StoreError::NotFound(_))));
        // A new process numbers on from the files it finds, and cannot
        // remove the pack the first one writes (it holds a flock on it).
        let again = Packs::open(dir.path()).unwrap();
        assert_eq!(again.append(&[a]).unwrap(), vec![(3, 0)]);
        assert!(!packs.remove(3).unwrap());
        assert!(packs.path(3).exists());
        drop(again);
        assert!(packs.remove(3).unwrap());
    }

    #[test]
    fn two_processes_number_their_packs_apart() {
        // A server and `outpost deliver` open the same directory, both
        // counting from what they found; the one that opens a pack second
        // takes the next free number instead of failing.
        let dir = tempfile::tempdir().unwrap();
        let server = Packs::open(dir.path()).unwrap();
        let cli = Packs::open(dir.path()).unwrap();
        let a: Arc<[u8]> = Arc::from(&b"from the cli\r\n"[..]);
        let b: Arc<[u8]> = Arc::from(&b"from the server\r\n"[..]);
        assert_eq!(cli.append(std::slice::from_ref(&a)).unwrap(), vec![(1, 0)]);
        assert_eq!(
            server.append(std::slice::from_ref(&b)).unwrap(),
            vec![(2, 0)]
        );
        assert_eq!(cli.read(1, 0, a.len() as i64).unwrap(), &a[..]);
        assert_eq!(server.read(2, 0, b.len() as i64).unwrap(), &b[..]);
    }
}
