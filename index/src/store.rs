//! The sled database behind the index: one tree of vectors keyed by (model, content), one of
//! file records per corpus, and a little metadata (the schema version).
//!
//! Key layout:
//! - `vectors`: `model id (utf-8) \0 content key (32 bytes)` → little-endian f32s;
//! - `files`: `corpus \0 path` → [`FileRecord`] as JSON;
//! - `stamps`: the same keys → [`FileStamp`] (a few bytes): what a check for changed files
//!   reads, and the list of a corpus's files, written in one transaction with the record;
//! - `meta`: `schema` → version (u32, big-endian).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use sled::transaction::{TransactionError, Transactional};

use super::records::{ContentKey, FileRecord, FileStamp, SCHEMA_VERSION};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: cannot open the index database ({source}); if it is damaged, move it away or delete it and index again")]
    Open { path: PathBuf, source: sled::Error },
    #[error("{path}: written by a newer tunelens (schema {found}, this one reads {SCHEMA_VERSION}); upgrade tunelens, index into another database, or rebuild this one (replacing it with a new index)")]
    TooNew { path: PathBuf, found: u32 },
    #[error("{path}: an older index (schema {found}); rebuild it (delete it and index again)")]
    TooOld { path: PathBuf, found: u32 },
    #[error("{path}: damaged record {what}: {reason}; rebuild the index")]
    Corrupt {
        path: PathBuf,
        what: String,
        reason: String,
    },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: sled::Error },
    #[error("{path}: the index is in use by another tunelens process (a daemon, or an index run); wait for it or use another index database")]
    InUse { path: PathBuf },
}

/// How long `open` waits for a lock held by this process's own last handle: sled releases
/// its file lock from a background thread, a moment after the handle is dropped.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

pub type Result<T> = std::result::Result<T, StoreError>;

/// The open database.
pub struct Store {
    path: PathBuf,
    /// Replaced only by [`release_cache`](Self::release_cache); every operation holds a clone
    /// of the `Arc` while it runs.
    trees: RwLock<Option<Arc<Trees>>>,
    /// Operations since the database was last opened; see [`touched`](Self::touched).
    touched: AtomicU64,
}

struct Trees {
    db: sled::Db,
    vectors: sled::Tree,
    files: sled::Tree,
    stamps: sled::Tree,
}

impl Trees {
    fn open(db: sled::Db, open_err: impl Fn(sled::Error) -> StoreError) -> Result<Self> {
        Ok(Self {
            vectors: db.open_tree("vectors").map_err(&open_err)?,
            files: db.open_tree("files").map_err(&open_err)?,
            stamps: db.open_tree("stamps").map_err(&open_err)?,
            db,
        })
    }
}

impl Store {
    /// Opens (or creates) the database at `path`, checking its schema version. With
    /// `rebuild`, an existing database of another schema is emptied first.
    pub fn open(path: &Path, rebuild: bool) -> Result<Self> {
        let open_err = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        if let Some(parent) = path.parent() {
            // sled creates the folder itself, but not a missing parent chain on every platform.
            let _ = std::fs::create_dir_all(parent);
        }
        let db = open_waiting(path, CACHE_BYTES)?;
        let meta = db.open_tree("meta").map_err(open_err)?;
        let found = meta.get("schema").map_err(open_err)?.map(|v| {
            <[u8; 4]>::try_from(v.as_ref())
                .map(u32::from_be_bytes)
                .unwrap_or(0)
        });
        match found {
            Some(v) if v > SCHEMA_VERSION && !rebuild => {
                return Err(StoreError::TooNew {
                    path: path.to_owned(),
                    found: v,
                })
            }
            Some(v) if v != SCHEMA_VERSION && !rebuild => {
                return Err(StoreError::TooOld {
                    path: path.to_owned(),
                    found: v,
                })
            }
            // Rebuilding, which only the user asks for, empties the database whatever was wrong
            // with it (another schema, a damaged record); the next index run refills it.
            _ if rebuild || found.is_none() => {
                for name in db.tree_names() {
                    if name.as_ref() != b"__sled__default" {
                        db.drop_tree(&name).map_err(open_err)?;
                    }
                }
                let meta = db.open_tree("meta").map_err(open_err)?;
                meta.insert("schema", &SCHEMA_VERSION.to_be_bytes())
                    .map_err(open_err)?;
            }
            _ => {}
        }
        let trees = Trees::open(db, open_err)?;
        let backfill = trees.stamps.is_empty() && !trees.files.is_empty();
        let store = Self {
            path: path.to_owned(),
            trees: RwLock::new(Some(Arc::new(trees))),
            touched: AtomicU64::new(0),
        };
        // An index written before stamps existed gets them once, from its records.
        if backfill {
            store.backfill_stamps()?;
        }
        Ok(store)
    }

    /// The open trees, for one operation.
    fn t(&self) -> Result<Arc<Trees>> {
        self.touched.fetch_add(1, Ordering::Relaxed);
        let slot = crate::locks::read(&self.trees);
        slot.clone().ok_or_else(|| StoreError::InUse {
            path: self.path.clone(),
        })
    }

    /// Closes and reopens the database, which hands back sled's page cache. sled keeps far
    /// more pages than its `cache_capacity` after a bulk read (its cache counts a page only
    /// after 64 reads of its shard, and 256 shards rarely see that many in one pass): loading
    /// a daemon's catalogs left ~80 MB of vector pages resident. Called once they are loaded.
    /// Operations wait meanwhile; one still running keeps the old handle alive, and then
    /// nothing is released. True when the database was reopened.
    ///
    /// A daemon also calls it while serving, once [`touched`](Self::touched) says enough
    /// pages may have piled up: each edit reads and writes a few vectors at random places of
    /// the vectors tree, and the pages that brings in stay (~35 MB after the daemon bench's
    /// edits). Reopening a 300k-vector database held operations for ~35 ms on an idle
    /// machine, 37–137 ms during the daemon bench's edits.
    pub fn release_cache(&self) -> Result<bool> {
        let started = std::time::Instant::now();
        // Most of the writes go to disk before operations are held up; what the last moment
        // adds is flushed below.
        self.flush()?;
        let mut slot = crate::locks::write(&self.trees);
        let held = std::time::Instant::now();
        if let Some(trees) = slot.as_ref() {
            trees.db.flush().map_err(|e| self.io(e))?;
        }
        let Some(trees) = slot.take() else {
            return Ok(false);
        };
        let trees = match Arc::try_unwrap(trees) {
            Ok(trees) => trees,
            Err(shared) => {
                tracing::debug!("the index database is in use; its cache stays");
                *slot = Some(shared);
                return Ok(false);
            }
        };
        drop(trees);
        let open_err = |source| StoreError::Open {
            path: self.path.clone(),
            source,
        };
        *slot = Some(Arc::new(Trees::open(
            open_waiting(&self.path, SERVING_CACHE_BYTES)?,
            open_err,
        )?));
        self.touched.store(0, Ordering::Relaxed);
        tracing::debug!(
            micros = started.elapsed().as_micros() as u64,
            held_micros = held.elapsed().as_micros() as u64,
            "reopened the index database"
        );
        Ok(true)
    }

    fn backfill_stamps(&self) -> Result<()> {
        let t = self.t()?;
        let mut batch = sled::Batch::default();
        for item in t.files.iter() {
            let (key, bytes) = item.map_err(|e| self.io(e))?;
            // A damaged record gets no stamp: its file is indexed again, which replaces it.
            match serde_json::from_slice::<FileRecord>(&bytes) {
                Ok(record) => batch.insert(key, record.stamp().to_bytes()),
                Err(e) => tracing::warn!(
                    file = %String::from_utf8_lossy(&key),
                    error = %e,
                    "damaged record: its file will be indexed again"
                ),
            }
        }
        t.stamps.apply_batch(batch).map_err(|e| self.io(e))
    }

    /// Operations (reads, writes, scans; a batch counts its items) since the database was
    /// last opened: a bound on the pages they brought into sled's cache, which sled keeps
    /// (see [`release_cache`](Self::release_cache)).
    pub fn touched(&self) -> u64 {
        self.touched.load(Ordering::Relaxed)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Another tree of the same database, for state that belongs beside the records (the
    /// vector backends' push markers, `index::vectors::sync`). Emptied by `--rebuild` with the rest.
    pub(crate) fn tree(&self, name: &str) -> Result<sled::Tree> {
        self.t()?.db.open_tree(name).map_err(|e| self.io(e))
    }

    pub(crate) fn io(&self, source: sled::Error) -> StoreError {
        StoreError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn corrupt(&self, what: String, reason: impl ToString) -> StoreError {
        StoreError::Corrupt {
            path: self.path.clone(),
            what,
            reason: reason.to_string(),
        }
    }

    pub fn has_vector(&self, model: &str, key: &ContentKey) -> Result<bool> {
        self.t()?
            .vectors
            .contains_key(vector_key(model, key))
            .map_err(|e| self.io(e))
    }

    pub fn vector(&self, model: &str, key: &ContentKey) -> Result<Option<Vec<f32>>> {
        let Some(bytes) = self
            .t()?
            .vectors
            .get(vector_key(model, key))
            .map_err(|e| self.io(e))?
        else {
            return Ok(None);
        };
        if bytes.len() % 4 != 0 {
            return Err(self.corrupt(format!("vector of {model}"), "length not a multiple of 4"));
        }
        Ok(Some(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ))
    }

    /// Stores vectors in one atomic batch.
    pub fn put_vectors(&self, model: &str, items: &[(ContentKey, Vec<f32>)]) -> Result<()> {
        let mut batch = sled::Batch::default();
        for (key, vector) in items {
            let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
            batch.insert(vector_key(model, key), bytes);
        }
        self.touched
            .fetch_add(items.len().saturating_sub(1) as u64, Ordering::Relaxed);
        self.t()?.vectors.apply_batch(batch).map_err(|e| self.io(e))
    }

    pub fn file(&self, corpus: &str, path: &str) -> Result<Option<FileRecord>> {
        let key = file_key(corpus, path);
        let Some(bytes) = self.t()?.files.get(&key).map_err(|e| self.io(e))? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| self.corrupt(format!("file {path} of corpus {corpus}"), e))
    }

    /// What decides whether `path` must be indexed again (see [`FileStamp`]): a few bytes,
    /// where [`file`](Self::file) reads and parses the whole record.
    pub fn stamp(&self, corpus: &str, path: &str) -> Result<Option<FileStamp>> {
        let Some(bytes) = self
            .t()?
            .stamps
            .get(file_key(corpus, path))
            .map_err(|e| self.io(e))?
        else {
            return Ok(None);
        };
        FileStamp::from_bytes(&bytes)
            .map(Some)
            .ok_or_else(|| self.corrupt(format!("stamp of {path} in corpus {corpus}"), "too short"))
    }

    /// Writes a file's record and its stamp together.
    pub fn put_file(&self, corpus: &str, record: &FileRecord) -> Result<()> {
        let bytes = serde_json::to_vec(record)
            .map_err(|e| self.corrupt(format!("file {}", record.path), e))?;
        let key = file_key(corpus, &record.path);
        let stamp = record.stamp().to_bytes();
        self.transaction(|files, stamps| {
            files.insert(key.as_slice(), bytes.as_slice())?;
            stamps.insert(key.as_slice(), stamp.as_slice())?;
            Ok(())
        })
    }

    pub fn remove_file(&self, corpus: &str, path: &str) -> Result<()> {
        let key = file_key(corpus, path);
        self.transaction(|files, stamps| {
            files.remove(key.as_slice())?;
            stamps.remove(key.as_slice())?;
            Ok(())
        })
    }

    /// Runs `f` on the `files` and `stamps` trees as one transaction.
    fn transaction(
        &self,
        f: impl Fn(
            &sled::transaction::TransactionalTree,
            &sled::transaction::TransactionalTree,
        ) -> sled::transaction::ConflictableTransactionResult<()>,
    ) -> Result<()> {
        let t = self.t()?;
        (&t.files, &t.stamps)
            .transaction(|(files, stamps)| f(files, stamps))
            .map_err(|e| match e {
                TransactionError::Storage(e) => self.io(e),
                // `f` never aborts.
                TransactionError::Abort(()) => self.corrupt("a write".into(), "aborted"),
            })
    }

    /// The paths of `corpus`'s files, in order, from their stamps (no record is read).
    pub fn paths(&self, corpus: &str) -> Result<Vec<String>> {
        let mut prefix = corpus.as_bytes().to_vec();
        prefix.push(0);
        self.t()?
            .stamps
            .scan_prefix(&prefix)
            .keys()
            .map(|key| {
                let key = key.map_err(|e| self.io(e))?;
                Ok(String::from_utf8_lossy(&key[prefix.len()..]).into_owned())
            })
            .collect()
    }

    /// Every file record of `corpus`, in path order.
    pub fn files(&self, corpus: &str) -> Result<Vec<FileRecord>> {
        let mut prefix = corpus.as_bytes().to_vec();
        prefix.push(0);
        self.t()?
            .files
            .scan_prefix(prefix)
            .map(|item| {
                let (key, bytes) = item.map_err(|e| self.io(e))?;
                serde_json::from_slice(&bytes).map_err(|e| {
                    self.corrupt(
                        format!("file {}", String::from_utf8_lossy(&key[corpus.len() + 1..])),
                        e,
                    )
                })
            })
            .collect()
    }

    /// The bytes `corpus`'s file records take in the database (keys and values).
    pub fn corpus_bytes(&self, corpus: &str) -> Result<u64> {
        let mut prefix = corpus.as_bytes().to_vec();
        prefix.push(0);
        let mut total = 0u64;
        for item in self.t()?.files.scan_prefix(prefix) {
            let (key, value) = item.map_err(|e| self.io(e))?;
            total += (key.len() + value.len()) as u64;
        }
        Ok(total)
    }

    /// The corpora that have files.
    pub fn corpora(&self) -> Result<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        for key in self.t()?.stamps.iter().keys() {
            let key = key.map_err(|e| self.io(e))?;
            let corpus = key.split(|&b| b == 0).next().unwrap_or(&[]);
            let corpus = String::from_utf8_lossy(corpus).into_owned();
            if out.last() != Some(&corpus) {
                out.push(corpus);
            }
        }
        Ok(out)
    }

    /// Writes everything to disk now (sled also does so on its own every few hundred ms).
    pub fn flush(&self) -> Result<()> {
        self.t()?.db.flush().map(|_| ()).map_err(|e| self.io(e))
    }
}

/// sled's page cache. Its default (1 GiB) is what a long-running daemon would keep after
/// loading its catalogs once; vectors are read in bulk at start and then one edit at a time,
/// so a small cache costs little. sled's nodes cost about twice what it counts against this
/// (heaptrack: ~141 MB at 64 MiB); at 16 MiB the daemon bench's RSS fell by 64 MiB and its
/// hover latencies did not move.
const CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// The cache of a store reopened once its catalogs are in memory ([`Store::release_cache`]):
/// from then on it reads a vector or record per edited unit and writes a few, and every page
/// those touch stayed (edits read and wrote pages all over the vectors tree: ~35 MB after the
/// daemon bench's edits at 16 MiB).
const SERVING_CACHE_BYTES: u64 = 2 * 1024 * 1024;

/// `sled::open`, waiting out a lock that is about to be released; a lock still held after
/// [`LOCK_WAIT`] belongs to another process.
fn open_waiting(path: &Path, cache: u64) -> Result<sled::Db> {
    let started = std::time::Instant::now();
    loop {
        match sled::Config::new().path(path).cache_capacity(cache).open() {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                if started.elapsed() > LOCK_WAIT {
                    return Err(StoreError::InUse {
                        path: path.to_owned(),
                    });
                }
                // Short: a daemon reopening while serving holds its requests meanwhile.
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            Err(source) => {
                return Err(StoreError::Open {
                    path: path.to_owned(),
                    source,
                })
            }
        }
    }
}

fn model_prefix(model: &str) -> Vec<u8> {
    let mut k = model.as_bytes().to_vec();
    k.push(0);
    k
}

fn vector_key(model: &str, key: &ContentKey) -> Vec<u8> {
    let mut k = model_prefix(model);
    k.extend_from_slice(&key.0);
    k
}

fn file_key(corpus: &str, path: &str) -> Vec<u8> {
    let mut k = corpus.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(path.as_bytes());
    k
}
