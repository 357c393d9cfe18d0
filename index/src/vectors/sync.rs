//! Keeping a remote vector store in step with the local file records.
//!
//! The local database stays the record of what was indexed (see ARCHITECTURE.md); a remote
//! store gets each file's rows after its vectors are cached and before its record is written,
//! and a marker (tree `synced`: target \0 corpus \0 path → file sha256 + model) says the push
//! finished. A file whose marker is missing or stale is pushed again by the next `index` run
//! or `store migrate`, from the cache, without embedding anything. Writes are idempotent by row
//! id, so a push redone after a crash converges to the same rows.

use super::{Backend, Milvus, MilvusVectors, Result, Row, VectorStore};
use crate::records::{FileRecord, FileStamp};
use crate::store::Store;

const TREE: &str = "synced";

/// Which server and collection family a marker is about.
fn target(milvus: &Milvus) -> String {
    format!("{}#{}", milvus.config().uri, milvus.config().prefix)
}

fn marker_key(target: &str, corpus: &str, path: &str) -> Vec<u8> {
    let mut k = target.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(corpus.as_bytes());
    k.push(0);
    k.extend_from_slice(path.as_bytes());
    k
}

fn marker_value(sha256: &[u8; 32], model: &str) -> Vec<u8> {
    let mut v = sha256.to_vec();
    v.extend_from_slice(model.as_bytes());
    v
}

/// True when the rows of the file at `path`, indexed as `stamp` says, are in the backend as
/// recorded (always, for the embedded one).
pub fn is_current(
    store: &Store,
    backend: &Backend,
    corpus: &str,
    path: &str,
    stamp: &FileStamp,
) -> Result<bool> {
    let Backend::Milvus(milvus) = backend else {
        return Ok(true);
    };
    let tree = store.tree(TREE)?;
    let found = tree
        .get(marker_key(&target(milvus), corpus, path))
        .map_err(|e| store.io(e))?;
    Ok(found.is_some_and(|v| v.as_ref() == marker_value(&stamp.sha256, &stamp.model).as_slice()))
}

/// Writes `record`'s rows (vectors from the local cache) to the backend, replacing the file's
/// earlier rows. Nothing to do for the embedded backend: the record is its row.
pub fn push_file(
    store: &Store,
    backend: &Backend,
    corpus: &str,
    record: &FileRecord,
) -> Result<()> {
    let Backend::Milvus(milvus) = backend else {
        return Ok(());
    };
    let tree = store.tree(TREE)?;
    let key = marker_key(&target(milvus), corpus, &record.path);
    // Gone first: a push cut short must not look finished.
    tree.remove(&key).map_err(|e| store.io(e))?;
    let mut vectors = Vec::with_capacity(record.units.len());
    for (u, unit) in record.units.iter().enumerate() {
        // A record names only stored vectors (index::job); one removed by hand is skipped, as
        // the embedded catalog skips it.
        if let Some(v) = store.vector(&record.model, &unit.key)? {
            vectors.push((u, unit, v));
        }
    }
    if let Some((_, _, first)) = vectors.first() {
        let collection = milvus.collection(&record.model, first.len())?;
        let rows: Vec<Row<'_>> = vectors
            .iter()
            .map(|(u, unit, v)| Row {
                corpus,
                path: &record.path,
                unit: *u,
                level: unit.level,
                key: unit.key,
                vector: v,
            })
            .collect();
        collection.delete_units_from(corpus, &record.path, record.units.len())?;
        collection.upsert(&rows)?;
    }
    tree.insert(key, marker_value(&record.sha256, &record.model))
        .map_err(|e| store.io(e))?;
    Ok(())
}

/// Removes a file's rows from the backend (its record is being dropped).
pub fn forget_file(
    store: &Store,
    backend: &Backend,
    corpus: &str,
    record: &FileRecord,
) -> Result<()> {
    let Backend::Milvus(milvus) = backend else {
        return Ok(());
    };
    let tree = store.tree(TREE)?;
    tree.remove(marker_key(&target(milvus), corpus, &record.path))
        .map_err(|e| store.io(e))?;
    if let Some(collection) = milvus.find(&record.model)? {
        collection.delete_file(corpus, &record.path)?;
    }
    Ok(())
}

/// What `migrate` did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MigrateReport {
    pub files_pushed: usize,
    /// Files whose rows were already there (pushed by an earlier run).
    pub files_current: usize,
    pub rows: usize,
    /// Collections written, by name.
    pub collections: Vec<String>,
}

/// Copies every record of the local index (all corpora, all models) to Milvus, from the
/// cache: nothing is embedded again. With `force`, files already pushed are pushed again.
pub fn migrate(
    store: &Store,
    milvus: &Milvus,
    force: bool,
    progress: &dyn Fn(usize, usize),
) -> Result<MigrateReport> {
    let backend = Backend::Milvus(milvus.clone());
    let mut report = MigrateReport::default();
    let mut all = Vec::new();
    for corpus in store.corpora()? {
        for record in store.files(&corpus)? {
            all.push((corpus.clone(), record));
        }
    }
    for (i, (corpus, record)) in all.iter().enumerate() {
        if !force && is_current(store, &backend, corpus, &record.path, &record.stamp())? {
            report.files_current += 1;
        } else {
            push_file(store, &backend, corpus, record)?;
            report.files_pushed += 1;
            report.rows += record.units.len();
        }
        if let Some(c) = collection_of(store, milvus, record)? {
            if !report.collections.contains(&c.name().to_owned()) {
                report.collections.push(c.name().to_owned());
            }
        }
        progress(i + 1, all.len());
    }
    store.flush()?;
    Ok(report)
}

fn collection_of(
    store: &Store,
    milvus: &Milvus,
    record: &FileRecord,
) -> Result<Option<MilvusVectors>> {
    for unit in &record.units {
        if let Some(v) = store.vector(&record.model, &unit.key)? {
            return milvus.collection(&record.model, v.len()).map(Some);
        }
    }
    Ok(None)
}
