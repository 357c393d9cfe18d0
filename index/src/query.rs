//! Queries over the index: the units of some corpora, their vectors in a [`VectorStore`], and
//! their answers as places in files with titles and scores.

use std::collections::HashMap;
use std::sync::Arc;

use serde::Serialize;
use tunelens_models::abc::{Level, TextRange};

use super::records::{ContentKey, FileRecord, LineColRecord, MeasureLoc, TuneRecord, UnitRecord};
use super::store::{Store, StoreError};
use super::symbolic::SymbolicIndex;
use super::vectors::{
    Backend, Filter, FlatVectors, Milvus, Remote, Row, RowId, Tiered, VectorError, VectorStore,
};
use crate::search::kernels::dot_f32;
use crate::search::{Precision, SearchError};

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Search(#[from] SearchError),
    #[error(transparent)]
    Vectors(#[from] VectorError),
    #[error("nothing indexed{}{}: run `tunelens index` first", .corpora, .model)]
    Empty { corpora: String, model: String },
    #[error("Milvus at {uri} holds no vectors of model {model}: run `tunelens index --store milvus`, or copy the local index with `tunelens store migrate --to milvus`")]
    NotInMilvus { uri: String, model: String },
    /// The caller gave up (a newer version of the document arrived).
    #[error("cancelled")]
    Cancelled,
}

/// The indexed units of one level, from some corpora, searchable. A one-shot job opens it
/// once ([`open`](Self::open)); the daemon keeps one in memory and updates it file by file
/// ([`upsert_file`](Self::upsert_file), [`remove_file`](Self::remove_file)) rather than
/// reloading sled per query.
pub struct Catalog {
    level: Level,
    /// (corpus, path) → slot in `slots`.
    by_path: HashMap<(String, String), usize>,
    slots: Vec<Option<Entry>>,
    free: Vec<usize>,
    /// Catalog row (what the symbolic index and [`Match::row`] name) → where it comes from.
    /// Numbers are never reused.
    rows: RowTable,
    row_of: HashMap<RowId, u32>,
    next_row: u32,
    /// Where the vectors are searched: in memory or on a server (see `index::vectors`). The
    /// embedded store is created with the first vector (its width is the model's).
    vectors: Option<Box<dyn VectorStore>>,
    /// How an embedded store keeps its rows.
    precision: Precision,
    filter: Filter,
    /// The same rows' interval n-grams (passages only).
    symbolic: SymbolicIndex,
}

struct Entry {
    corpus: String,
    /// Shared with the other level's catalog: a file record (units, bars, n-grams) is the
    /// largest thing a catalog holds, and both levels read the same one.
    record: Arc<FileRecord>,
    /// The store ids and catalog rows of this file's units of the catalog's level.
    rows: Vec<(RowId, u32)>,
}

#[derive(Debug, Clone, Copy)]
struct RowRef {
    slot: u32,
    unit: u32,
    id: RowId,
}

impl RowRef {
    fn slot(&self) -> usize {
        self.slot as usize
    }

    fn unit(&self) -> usize {
        self.unit as usize
    }
}

/// Rows by number. Numbers are handed out in order and never reused: the rows a catalog is
/// filled with, in order, sit in a vector indexed by row (28 bytes a row, where a hash map
/// took about 60); rows added after the first out-of-order one (every edit gives a file's
/// rows new numbers) go to a map, so that a long editing session does not grow the vector.
#[derive(Default)]
struct RowTable {
    dense: Vec<Option<RowRef>>,
    sparse: HashMap<u32, RowRef>,
    live: usize,
}

impl RowTable {
    fn get(&self, row: &u32) -> Option<&RowRef> {
        match self.dense.get(*row as usize) {
            Some(r) => r.as_ref(),
            None => self.sparse.get(row),
        }
    }

    fn insert(&mut self, row: u32, r: RowRef) {
        let i = row as usize;
        let replaced = if i < self.dense.len() {
            self.dense[i].replace(r)
        } else if i == self.dense.len() && self.sparse.is_empty() {
            self.dense.push(Some(r));
            None
        } else {
            self.sparse.insert(row, r)
        };
        if replaced.is_none() {
            self.live += 1;
        }
    }

    fn remove(&mut self, row: &u32) -> Option<RowRef> {
        let r = match self.dense.get_mut(*row as usize) {
            Some(r) => r.take(),
            None => self.sparse.remove(row),
        };
        if r.is_some() {
            self.live -= 1;
        }
        r
    }

    fn len(&self) -> usize {
        self.live
    }

    fn is_empty(&self) -> bool {
        self.live == 0
    }

    fn shrink_to_fit(&mut self) {
        self.dense.shrink_to_fit();
        self.sparse.shrink_to_fit();
    }
}

/// Where a catalog's vectors are searched.
enum VectorsAt<'a> {
    /// Read from the local cache into memory (the embedded backend).
    Memory,
    /// On the server, for every corpus.
    Server(&'a Milvus),
    /// The `local` corpora in memory, the others on the server (a daemon on Milvus).
    Tiered {
        remote: &'a Arc<Remote>,
        local: &'a [String],
    },
}

/// Where a catalog gets a unit's vector (the store, usually).
pub type VectorOf<'a> = dyn FnMut(&ContentKey) -> Result<Option<Vec<f32>>, StoreError> + 'a;

/// How matches are ranked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ranker {
    /// Cosine of the music vectors.
    Vector,
    /// Shared interval n-grams (Dice): key- and tempo-independent.
    Symbolic,
    /// The mean of both.
    Hybrid,
}

/// Candidates taken from each side before a hybrid ranking, per result asked for.
const HYBRID_POOL_PER_RESULT: usize = 4;
const HYBRID_POOL_MIN: usize = 200;
/// Extra vector candidates taken so that the few a query excludes need no second scan.
const EXCLUDE_SLACK: usize = 32;

/// One answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Match {
    pub score: f32,
    pub corpus: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    pub path: String,
    pub tune: usize,
    pub title: Option<String>,
    pub level: Level,
    /// The two parts of a hybrid score: music vector cosine and n-gram similarity.
    pub vector_score: f32,
    pub symbolic_score: f32,
    pub voice: String,
    /// First and last bar of a passage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bars: Option<[u32; 2]>,
    pub start: LineColRecord,
    pub end: LineColRecord,
    /// For a MusicXML file: the first and last measure of the passage (or tune).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measures: Option<[MeasureLoc; 2]>,
    #[serde(skip)]
    pub range: TextRange,
    /// The unit's row in its catalog (see [`Catalog::record`]).
    #[serde(skip)]
    pub row: u32,
}

impl Catalog {
    /// An empty catalog of `level`, its vectors in memory.
    pub fn new(level: Level) -> Self {
        Self::with_precision(level, Precision::F32)
    }

    /// An empty catalog whose in-memory vectors are stored at `precision` (a daemon keeps
    /// int8: a quarter of the memory of its largest structure, cosines within ~5e-4).
    pub fn with_precision(level: Level, precision: Precision) -> Self {
        Self {
            level,
            by_path: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            rows: RowTable::default(),
            row_of: HashMap::new(),
            next_row: 0,
            vectors: None,
            precision,
            filter: Filter {
                corpora: Vec::new(),
                level: Some(level),
            },
            symbolic: SymbolicIndex::default(),
        }
    }

    /// Loads the units of `level` that `model` embedded, from `corpora` (all when empty), into
    /// memory (the embedded backend). An empty result is an error.
    pub fn load(
        store: &Store,
        model: &str,
        corpora: &[String],
        level: Level,
    ) -> Result<Self, QueryError> {
        Self::open(store, &Backend::Embedded, model, corpora, level)
    }

    /// As [`load`](Self::load), but an empty index gives an empty catalog (the daemon starts
    /// from nothing and fills it as it indexes).
    pub fn load_all(
        store: &Store,
        model: &str,
        corpora: &[String],
        level: Level,
    ) -> Result<Self, QueryError> {
        Self::open_all(store, &Backend::Embedded, model, corpora, level)
    }

    /// The catalog a one-shot job queries: the file records come from the local `store`, the
    /// vectors from `backend` (loaded into memory from the local cache, or searched on
    /// Milvus). An empty result is an error.
    pub fn open(
        store: &Store,
        backend: &Backend,
        model: &str,
        corpora: &[String],
        level: Level,
    ) -> Result<Self, QueryError> {
        let catalog = Self::open_all(store, backend, model, corpora, level)?;
        if catalog.is_empty() || catalog.vectors.is_none() {
            return Err(QueryError::Empty {
                corpora: if corpora.is_empty() {
                    String::new()
                } else {
                    format!(" in corpus {}", corpora.join(", "))
                },
                model: format!(" for model {model}"),
            });
        }
        Ok(catalog)
    }

    fn open_all(
        store: &Store,
        backend: &Backend,
        model: &str,
        corpora: &[String],
        level: Level,
    ) -> Result<Self, QueryError> {
        let at = match backend {
            Backend::Embedded => VectorsAt::Memory,
            Backend::Milvus(milvus) => VectorsAt::Server(milvus),
        };
        let [catalog] = Self::open_levels(store, at, model, corpora, [level], Precision::F32)?;
        Ok(catalog)
    }

    /// One catalog per level, from one pass over the records, which they share.
    fn open_levels<const N: usize>(
        store: &Store,
        at: VectorsAt<'_>,
        model: &str,
        corpora: &[String],
        levels: [Level; N],
        precision: Precision,
    ) -> Result<[Self; N], QueryError> {
        let names = if corpora.is_empty() {
            store.corpora()?
        } else {
            corpora.to_vec()
        };
        let mut catalogs = levels.map(|l| Self::with_precision(l, precision));
        for catalog in &mut catalogs {
            catalog.filter.corpora = corpora.to_vec();
            match &at {
                VectorsAt::Memory => {}
                VectorsAt::Server(milvus) => {
                    let remote = milvus.find(model)?.ok_or_else(|| QueryError::NotInMilvus {
                        uri: milvus.config().uri.clone(),
                        model: model.to_owned(),
                    })?;
                    catalog.vectors = Some(Box::new(remote));
                }
                VectorsAt::Tiered { remote, local } => {
                    catalog.vectors = Some(Box::new(Tiered::new(
                        Arc::clone(remote),
                        local.to_vec(),
                        precision,
                    )?));
                }
            }
        }
        let mut vector = |key: &ContentKey| store.vector(model, key);
        for corpus in &names {
            // Is this corpus's vectors read from the local cache into memory?
            let in_memory = match &at {
                VectorsAt::Memory => true,
                // The server holds the vectors (the indexing job wrote them).
                VectorsAt::Server(_) => false,
                VectorsAt::Tiered { local, .. } => local.contains(corpus),
            };
            for mut record in store.files(corpus)? {
                if record.model != model {
                    continue;
                }
                // The n-grams live on in the postings only (a fifth of a record's memory):
                // these records are replaced by fresh ones from the store or the editor when
                // their file changes, never inserted again from memory.
                let grams: Vec<Vec<u32>> = record
                    .units
                    .iter_mut()
                    .map(|u| std::mem::take(&mut u.ngrams))
                    .collect();
                let record = shared_record(record);
                for catalog in &mut catalogs {
                    let vector = in_memory.then_some(&mut vector as &mut VectorOf<'_>);
                    catalog.insert(corpus, record.clone(), Some(&grams), vector)?;
                }
            }
        }
        for catalog in &mut catalogs {
            catalog.shrink_to_fit();
        }
        Ok(catalogs)
    }

    /// Gives back the spare capacity that loading file by file left in the maps, the vector
    /// store and the postings (a third of their memory or more, after a bulk load).
    pub fn shrink_to_fit(&mut self) {
        self.by_path.shrink_to_fit();
        self.slots.shrink_to_fit();
        self.rows.shrink_to_fit();
        self.row_of.shrink_to_fit();
        if let Some(v) = &self.vectors {
            v.shrink_to_fit();
        }
        self.symbolic.shrink_to_fit();
    }

    /// The passage and tune catalogs a daemon serves (see [`load_all`](Self::load_all)),
    /// sharing one copy of each file record, their vectors at `precision`.
    pub fn load_both(
        store: &Store,
        model: &str,
        precision: Precision,
    ) -> Result<[Self; 2], QueryError> {
        Self::open_levels(
            store,
            VectorsAt::Memory,
            model,
            &[],
            [Level::Passage, Level::Tune],
            precision,
        )
    }

    /// As [`load_both`](Self::load_both) for a daemon on Milvus: the `local` corpora's
    /// vectors in memory, the others' on the server (see [`Tiered`]).
    pub fn load_both_tiered(
        store: &Store,
        model: &str,
        precision: Precision,
        remote: &Arc<Remote>,
        local: &[String],
    ) -> Result<[Self; 2], QueryError> {
        Self::open_levels(
            store,
            VectorsAt::Tiered { remote, local },
            model,
            &[],
            [Level::Passage, Level::Tune],
            precision,
        )
    }

    /// Adds a file's units whose vectors the catalog's server already holds (the indexing
    /// job pushed them), replacing what the file had.
    pub fn upsert_record(
        &mut self,
        corpus: &str,
        record: Arc<FileRecord>,
    ) -> Result<(), QueryError> {
        self.insert(corpus, record, None, None)
    }

    /// Adds a file's units of this catalog's level, replacing what the file had, and writes
    /// their vectors to the catalog's store. `vector` gives each unit's vector; a unit without
    /// one is left out (a record names only stored vectors, see `index::job`, so a miss means
    /// it was removed by hand).
    /// `record` comes from [`shared_record`], so that both levels' catalogs hold one copy.
    pub fn upsert_file(
        &mut self,
        corpus: &str,
        record: Arc<FileRecord>,
        vector: &mut VectorOf<'_>,
    ) -> Result<(), QueryError> {
        self.insert(corpus, record, None, Some(vector))
    }

    /// `vector: None`: the store already holds the rows. `grams`: each unit's n-grams when
    /// the record's own were taken out (a bulk load keeps them only in the postings).
    fn insert(
        &mut self,
        corpus: &str,
        record: Arc<FileRecord>,
        grams: Option<&[Vec<u32>]>,
        mut vector: Option<&mut VectorOf<'_>>,
    ) -> Result<(), QueryError> {
        // Units whose row already holds their vector (same place, same content) keep it: an
        // edit re-reads and re-writes only the vectors of the units it changed.
        let unchanged: std::collections::HashSet<usize> = self
            .by_path
            .get(&(corpus.to_owned(), record.path.clone()))
            .and_then(|&slot| self.slots[slot].as_ref())
            .map(|old| {
                old.rows
                    .iter()
                    .filter_map(|(_, row)| self.rows.get(row))
                    .filter(|r| {
                        old.record.units.get(r.unit()).map(|u| u.key)
                            == record.units.get(r.unit()).map(|u| u.key)
                    })
                    .map(|r| r.unit())
                    .collect()
            })
            .unwrap_or_default();
        let mut fetched = Vec::new();
        let mut units = Vec::new();
        let mut to_write = Vec::new();
        for (u, unit) in record.units.iter().enumerate() {
            if unit.level != self.level {
                continue;
            }
            if let Some(vector) = vector.as_mut() {
                if !unchanged.contains(&u) {
                    let Some(v) = vector(&unit.key)? else {
                        continue;
                    };
                    fetched.push(v);
                    to_write.push(u);
                }
            }
            units.push(u);
        }
        if let Some(first) = fetched.first() {
            if self.vectors.is_none() {
                self.vectors = Some(Box::new(FlatVectors::with_precision(
                    first.len(),
                    self.precision,
                )?));
            }
        }
        // Write the vectors before touching the bookkeeping: a refused vector (wrong width)
        // leaves the catalog as it was.
        if let Some(store) = &self.vectors {
            if !fetched.is_empty() {
                let rows: Vec<Row<'_>> = to_write
                    .iter()
                    .zip(&fetched)
                    .map(|(&u, v)| Row {
                        corpus,
                        path: &record.path,
                        unit: u,
                        level: self.level,
                        key: record.units[u].key,
                        vector: v,
                    })
                    .collect();
                store.upsert(&rows)?;
            }
        }
        let key = (corpus.to_owned(), record.path.clone());
        let slot = match self.by_path.get(&key) {
            Some(&slot) => slot,
            None => self.free.pop().unwrap_or_else(|| {
                self.slots.push(None);
                self.slots.len() - 1
            }),
        };
        let mut gone: HashMap<RowId, u32> = HashMap::new();
        if let Some(old) = self.slots[slot].take() {
            gone.extend(old.rows.iter().copied());
        }
        let mut rows = Vec::with_capacity(units.len());
        for &u in &units {
            let id = RowId::new(corpus, &record.path, u);
            let old = gone.remove(&id);
            // An unchanged unit keeps its row and its postings: an edit re-indexes only the
            // windows it touched (re-inserting all of a long file's rows grew the postings by
            // its whole size per keystroke until a sweep).
            if let (Some(row), true) = (old, unchanged.contains(&u)) {
                rows.push((id, row));
                continue;
            }
            if let Some(old) = old {
                self.symbolic.remove(old);
                self.rows.remove(&old);
            }
            // A new row number otherwise: the symbolic index drops a removed row's postings
            // lazily, so a number is never given to other n-grams.
            let row = self.next_row;
            self.next_row += 1;
            self.rows.insert(
                row,
                RowRef {
                    slot: slot as u32,
                    unit: u as u32,
                    id,
                },
            );
            self.row_of.insert(id, row);
            let unit_grams = grams
                .and_then(|g| g.get(u))
                .unwrap_or(&record.units[u].ngrams);
            self.symbolic.insert(row, unit_grams);
            rows.push((id, row));
        }
        // Units the file no longer has (it got shorter, or lost a vector).
        let stale: Vec<RowId> = gone.keys().copied().collect();
        for (id, row) in gone {
            self.symbolic.remove(row);
            self.rows.remove(&row);
            self.row_of.remove(&id);
        }
        if let (Some(store), true) = (&self.vectors, vector.is_some() && !stale.is_empty()) {
            store.delete(&stale)?;
        }
        self.by_path.insert(key, slot);
        self.slots[slot] = Some(Entry {
            corpus: corpus.to_owned(),
            record,
            rows,
        });
        Ok(())
    }

    /// Drops a file's units (and their vectors, from an embedded store); returns whether it
    /// was there.
    pub fn remove_file(&mut self, corpus: &str, path: &str) -> Result<bool, QueryError> {
        let Some(slot) = self.by_path.remove(&(corpus.to_owned(), path.to_owned())) else {
            return Ok(false);
        };
        if let Some(entry) = self.slots[slot].take() {
            for &(id, row) in &entry.rows {
                if self.rows.remove(&row).is_some() {
                    self.symbolic.remove(row);
                }
                self.row_of.remove(&id);
            }
            if let Some(store) = &self.vectors {
                store.delete_file(corpus, path)?;
            }
        }
        self.free.push(slot);
        Ok(true)
    }

    /// The record of a file in the catalog.
    pub fn file(&self, corpus: &str, path: &str) -> Option<&FileRecord> {
        let slot = *self.by_path.get(&(corpus.to_owned(), path.to_owned()))?;
        self.slots[slot].as_ref().map(|e| &*e.record)
    }

    /// Every (corpus, file record) held.
    pub fn files(&self) -> impl Iterator<Item = (&str, &FileRecord)> {
        self.slots
            .iter()
            .flatten()
            .map(|e| (e.corpus.as_str(), &*e.record))
    }

    /// As [`files`](Self::files), with the shared records themselves (to move them into
    /// another catalog without a copy).
    pub fn shared_files(&self) -> impl Iterator<Item = (&str, Arc<FileRecord>)> {
        self.slots
            .iter()
            .flatten()
            .map(|e| (e.corpus.as_str(), e.record.clone()))
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn level(&self) -> Level {
        self.level
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The content keys of `path`'s units that have a row here (in any corpus): their vectors
    /// are stored, so a caller need not ask the store.
    pub fn stored_keys(&self, path: &str) -> Vec<ContentKey> {
        self.by_path
            .iter()
            .filter(|((_, p), _)| p == path)
            .filter_map(|(_, &slot)| self.slots.get(slot)?.as_ref())
            .flat_map(|entry| {
                entry.rows.iter().filter_map(|(_, row)| {
                    let r = self.rows.get(row)?;
                    Some(entry.record.units.get(r.unit())?.key)
                })
            })
            .collect()
    }

    /// The stored vector of unit `unit` of `path`, when it is held in memory (the embedded
    /// store, or a tiered one's local corpora); `None` otherwise, and for other levels' units.
    pub fn local_vector(&self, corpus: &str, path: &str, unit: usize) -> Option<Vec<f32>> {
        self.vectors
            .as_ref()?
            .local_vector(&RowId::new(corpus, path, unit))
    }

    /// The vectors' width (0 before the first vector).
    pub fn dim(&self) -> usize {
        self.vectors.as_ref().map_or(0, |v| v.dim())
    }

    /// The corpus, file record and unit record behind a match (filters and grouping read
    /// the tune's header fields and the file's collection from them).
    pub fn record(&self, m: &Match) -> Option<(&str, &FileRecord, &UnitRecord)> {
        let r = self.rows.get(&m.row)?;
        let entry = self.slots.get(r.slot())?.as_ref()?;
        Some((
            &entry.corpus,
            &*entry.record,
            entry.record.units.get(r.unit())?,
        ))
    }

    /// The header fields of a match's tune.
    pub fn tune_record(&self, m: &Match) -> Option<&TuneRecord> {
        let (_, file, unit) = self.record(m)?;
        file.tunes.iter().find(|t| t.index == unit.tune)
    }

    /// The `k` units closest to `query` by their vectors, leaving out those `exclude` rejects.
    pub fn nearest(
        &self,
        query: &[f32],
        k: usize,
        exclude: &(dyn Fn(&Match) -> bool + Sync),
    ) -> Result<Vec<Match>, QueryError> {
        self.ranked(query, &[], Ranker::Vector, k, exclude)
    }

    /// The `k` best units for a query given as a vector and (for passages) its interval
    /// n-grams (`index::symbolic::passage_ngrams`), ranked by `ranker`.
    pub fn ranked(
        &self,
        query: &[f32],
        ngrams: &[u32],
        ranker: Ranker,
        k: usize,
        exclude: &(dyn Fn(&Match) -> bool + Sync),
    ) -> Result<Vec<Match>, QueryError> {
        let Some(vectors) = &self.vectors else {
            return Ok(Vec::new());
        };
        let keep = |row: u32| {
            self.describe(row, 0.0, 0.0, 0.0)
                .is_some_and(|m| !exclude(&m))
        };
        // Rows the store holds but these records do not name (another machine's corpus) are
        // not answers here: they cannot be shown as places in files.
        let keep_id = |id: RowId| self.row_of.get(&id).is_some_and(|&r| keep(r));
        let pool = match ranker {
            Ranker::Vector => k,
            _ => (k * HYBRID_POOL_PER_RESULT).max(HYBRID_POOL_MIN),
        };
        let mut candidates: HashMap<u32, (f32, f32)> = HashMap::new();
        if ranker != Ranker::Symbolic && !query.is_empty() {
            // `exclude` usually rejects a handful of rows (the query's own place): ask for a
            // few more without it, and scan with it row by row only when that was not enough.
            let mut hits = vectors.top_k(query, pool + EXCLUDE_SLACK, &self.filter, &|_| true)?;
            let before = hits.len();
            hits.retain(|h| keep_id(h.id));
            if hits.len() < pool && before == pool + EXCLUDE_SLACK {
                hits = vectors.top_k(query, pool, &self.filter, &keep_id)?;
            }
            for hit in hits.into_iter().take(pool) {
                if let Some(&row) = self.row_of.get(&hit.id) {
                    candidates.insert(row, (hit.score, 0.0));
                }
            }
        }
        if ranker != Ranker::Vector && !ngrams.is_empty() {
            let all = self.symbolic.score_rows(ngrams);
            let mut best = all.best(pool + EXCLUDE_SLACK);
            best.retain(|&(row, _)| keep(row));
            if best.len() < pool {
                // More were excluded than the slack: rank them all.
                best = all.best(usize::MAX);
                best.retain(|&(row, _)| keep(row));
            }
            for &(row, _) in best.iter().take(pool) {
                candidates.entry(row).or_insert((f32::NAN, 0.0));
            }
            // Every candidate, found by its vector or its n-grams, gets its n-gram score.
            for (row, scores) in candidates.iter_mut() {
                scores.1 = all.get(*row);
            }
        }
        let q = normalised(query);
        // Candidates found by their n-grams alone get their vector score too, in one request.
        let unscored: Vec<RowId> = candidates
            .iter()
            .filter(|(_, (v, _))| v.is_nan())
            .filter_map(|(row, _)| self.rows.get(row).map(|r| r.id))
            .collect();
        let fetched = if unscored.is_empty() || query.is_empty() {
            HashMap::new()
        } else {
            vectors.vectors(&unscored)?
        };
        let mut matches: Vec<Match> = candidates
            .into_iter()
            .filter_map(|(row, (vector, symbolic))| {
                // A query without a vector (symbolic only) has no vector part.
                let vector = if query.is_empty() {
                    0.0
                } else if vector.is_nan() {
                    self.rows
                        .get(&row)
                        .and_then(|r| fetched.get(&r.id))
                        .map_or(0.0, |v| dot_f32(v, &q))
                } else {
                    vector
                };
                let score = match ranker {
                    Ranker::Vector => vector,
                    Ranker::Symbolic => symbolic,
                    Ranker::Hybrid => 0.5 * (vector + symbolic),
                };
                self.describe(row, score, vector, symbolic)
            })
            .collect();
        matches.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.path.cmp(&b.path))
                .then(a.range.start.cmp(&b.range.start))
        });
        matches.truncate(k);
        Ok(matches)
    }

    fn describe(
        &self,
        row: u32,
        score: f32,
        vector_score: f32,
        symbolic_score: f32,
    ) -> Option<Match> {
        let r = self.rows.get(&row)?;
        let Entry {
            corpus,
            record: file,
            ..
        } = self.slots.get(r.slot())?.as_ref()?;
        let unit: &UnitRecord = file.units.get(r.unit())?;
        let tune = file.tunes.iter().find(|t| t.index == unit.tune);
        Some(Match {
            score,
            corpus: corpus.clone(),
            collection: file.collection.clone(),
            path: file.path.clone(),
            tune: unit.tune,
            title: tune.and_then(|t| t.title.clone()),
            level: unit.level,
            vector_score,
            symbolic_score,
            voice: unit.voice.clone(),
            bars: (unit.level != Level::Tune).then_some([unit.first_bar, unit.last_bar]),
            start: unit.range.start_lc,
            end: unit.range.end_lc,
            measures: measures(file, unit),
            range: unit.range.range(),
            row,
        })
    }
}

/// A file record as catalogs keep it, shared by the passage and tune catalogs: without the bars
/// of an ABC file (only a MusicXML file's bars are read, to name measures, and there is a bar
/// for nearly every passage), and with no spare capacity (JSON lists grow by doubling as they
/// are read).
pub fn shared_record(mut record: FileRecord) -> Arc<FileRecord> {
    if record.bars.iter().all(|b| b.measure.is_none()) {
        record.bars = Vec::new();
    }
    record.bars.shrink_to_fit();
    record.tunes.shrink_to_fit();
    for t in &mut record.tunes {
        t.fields.shrink_to_fit();
    }
    record.units.shrink_to_fit();
    for u in &mut record.units {
        u.ngrams.shrink_to_fit();
    }
    Arc::new(record)
}

/// The measures a unit of a MusicXML file spans (a whole tune: its voice's first and last).
fn measures(file: &FileRecord, unit: &UnitRecord) -> Option<[MeasureLoc; 2]> {
    if file.bars.first().is_none_or(|b| b.measure.is_none()) {
        return None;
    }
    let in_voice = || {
        file.bars
            .iter()
            .filter(|b| b.tune == unit.tune && b.voice == unit.voice)
    };
    let (first, last) = if unit.level == Level::Tune {
        (in_voice().next()?, in_voice().next_back()?)
    } else {
        let at = |n: u32| in_voice().find(|b| b.number == n);
        (at(unit.first_bar)?, at(unit.last_bar)?)
    };
    Some([first.measure.clone()?, last.measure.clone()?])
}

fn normalised(v: &[f32]) -> Vec<f32> {
    let norm = dot_f32(v, v).sqrt().max(f32::MIN_POSITIVE);
    v.iter().map(|x| x / norm).collect()
}
