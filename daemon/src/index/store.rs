//! The sled database behind the index: one tree of vectors keyed by (model, content), one of
//! file records per corpus, and a little metadata (the schema version).
//!
//! Key layout:
//! - `vectors`: `model id (utf-8) \0 content key (32 bytes)` → little-endian f32s;
//! - `files`: `corpus \0 path` → [`FileRecord`] as JSON;
//! - `meta`: `schema` → version (u32, big-endian).

use std::path::{Path, PathBuf};

use super::records::{ContentKey, FileRecord, SCHEMA_VERSION};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: cannot open the index database ({source}); if it is damaged, move it away or delete it and index again")]
    Open { path: PathBuf, source: sled::Error },
    #[error("{path}: written by a newer tunelens (schema {found}, this one reads {SCHEMA_VERSION}); upgrade tunelens, index into another --db, or pass --rebuild to replace it with a new index")]
    TooNew { path: PathBuf, found: u32 },
    #[error("{path}: an older index (schema {found}); rebuild it: delete it and index again, or pass --rebuild")]
    TooOld { path: PathBuf, found: u32 },
    #[error("{path}: damaged record {what}: {reason}; rebuild the index (--rebuild)")]
    Corrupt {
        path: PathBuf,
        what: String,
        reason: String,
    },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: sled::Error },
    #[error("{path}: the index is in use by another tunelens process (a daemon, or an index run); wait for it or pass another --db")]
    InUse { path: PathBuf },
}

/// How long `open` waits for a lock held by this process's own last handle: sled releases
/// its file lock from a background thread, a moment after the handle is dropped.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

pub type Result<T> = std::result::Result<T, StoreError>;

/// The open database.
pub struct Store {
    path: PathBuf,
    db: sled::Db,
    vectors: sled::Tree,
    files: sled::Tree,
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
        let db = open_waiting(path)?;
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
        let vectors = db.open_tree("vectors").map_err(open_err)?;
        let files = db.open_tree("files").map_err(open_err)?;
        Ok(Self {
            path: path.to_owned(),
            db,
            vectors,
            files,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Another tree of the same database, for state that belongs beside the records (the
    /// vector backends' push markers, `index::vectors::sync`). Emptied by `--rebuild` with the rest.
    pub(crate) fn tree(&self, name: &str) -> Result<sled::Tree> {
        self.db.open_tree(name).map_err(|e| self.io(e))
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
        self.vectors
            .contains_key(vector_key(model, key))
            .map_err(|e| self.io(e))
    }

    pub fn vector(&self, model: &str, key: &ContentKey) -> Result<Option<Vec<f32>>> {
        let Some(bytes) = self
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
        self.vectors.apply_batch(batch).map_err(|e| self.io(e))
    }

    pub fn file(&self, corpus: &str, path: &str) -> Result<Option<FileRecord>> {
        let key = file_key(corpus, path);
        let Some(bytes) = self.files.get(&key).map_err(|e| self.io(e))? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| self.corrupt(format!("file {path} of corpus {corpus}"), e))
    }

    pub fn put_file(&self, corpus: &str, record: &FileRecord) -> Result<()> {
        let bytes = serde_json::to_vec(record)
            .map_err(|e| self.corrupt(format!("file {}", record.path), e))?;
        self.files
            .insert(file_key(corpus, &record.path), bytes)
            .map_err(|e| self.io(e))?;
        Ok(())
    }

    pub fn remove_file(&self, corpus: &str, path: &str) -> Result<()> {
        self.files
            .remove(file_key(corpus, path))
            .map_err(|e| self.io(e))?;
        Ok(())
    }

    /// Every file record of `corpus`, in path order.
    pub fn files(&self, corpus: &str) -> Result<Vec<FileRecord>> {
        let mut prefix = corpus.as_bytes().to_vec();
        prefix.push(0);
        self.files
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

    /// The corpora that have files.
    pub fn corpora(&self) -> Result<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        for item in self.files.iter() {
            let (key, _) = item.map_err(|e| self.io(e))?;
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
        self.db.flush().map(|_| ()).map_err(|e| self.io(e))
    }
}

/// sled's page cache. Its default (1 GiB) is what a long-running daemon would keep after
/// loading its catalogs once; vectors are read in bulk at start and then one edit at a time,
/// so a small cache costs little. sled's nodes cost about twice what it counts against this
/// (heaptrack: ~141 MB at 64 MiB); at 16 MiB the daemon bench's RSS fell by 64 MiB and its
/// hover latencies did not move.
const CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// `sled::open`, waiting out a lock that is about to be released; a lock still held after
/// [`LOCK_WAIT`] belongs to another process.
fn open_waiting(path: &Path) -> Result<sled::Db> {
    let started = std::time::Instant::now();
    loop {
        match sled::Config::new()
            .path(path)
            .cache_capacity(CACHE_BYTES)
            .open()
        {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                if started.elapsed() > LOCK_WAIT {
                    return Err(StoreError::InUse {
                        path: path.to_owned(),
                    });
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
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
