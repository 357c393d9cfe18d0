//! Queries over the index: the units of some corpora, their vectors in a [`VectorStore`], and
//! their answers as places in files with titles and scores.

mod load;
mod rank;
mod update;

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
use crate::id_table::IdTable;
use crate::search::{Precision, SearchError};

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Search(#[from] SearchError),
    #[error(transparent)]
    Vectors(#[from] VectorError),
    #[error("nothing indexed{}{}: index some files first", .corpora, .model)]
    Empty { corpora: String, model: String },
    #[error("Milvus at {uri} holds no vectors of model {model}: index into Milvus, or copy the local index there (`tunelens store migrate`)")]
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
    /// Id → row, reading each row's id from `rows`.
    row_of: IdTable,
    next_row: u32,
    /// Where the vectors are searched: in memory or on a server (see `index::vectors`). The
    /// embedded store is created with the first vector (its width is the model's).
    vectors: Option<Box<dyn VectorStore>>,
    /// How an embedded store keeps its rows.
    precision: Precision,
    filter: Filter,
    /// The same rows' interval n-grams (passages only).
    symbolic: SymbolicIndex,
    /// Which catalog of the process this is, and how many times each corpus's files were
    /// added, replaced or removed in it: what [`Catalog::revision_outside`] reports.
    instance: u64,
    changes: HashMap<String, u64>,
}

pub(super) struct Entry {
    corpus: String,
    /// Shared with the other level's catalog: a file record (units, bars, n-grams) is the
    /// largest thing a catalog holds, and both levels read the same one.
    record: Arc<FileRecord>,
    /// The catalog rows of this file's units of the catalog's level (`rows` holds their ids).
    rows: Vec<u32>,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct RowRef {
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
pub(super) struct RowTable {
    dense: Vec<Option<RowRef>>,
    sparse: HashMap<u32, RowRef>,
    live: usize,
}

/// Each row's id, as the id map reads it.
pub(super) fn id_in<'a>(rows: &'a RowTable) -> impl Fn(u32) -> Option<&'a RowId> + 'a {
    move |row| rows.get(&row).map(|r| &r.id)
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
pub(super) enum VectorsAt<'a> {
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
                entry.rows.iter().filter_map(|row| {
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
    Arc::new(record)
}

/// The measures a unit of a MusicXML file spans (a whole tune: its voice's first and last).
fn measures(file: &FileRecord, unit: &UnitRecord) -> Option<[MeasureLoc; 2]> {
    if file.bars.first().is_none_or(|b| b.measure.is_none()) {
        return None;
    }
    // Every match of a score is described with its measures, and a score can have thousands
    // of bars: the numbers are compared before the voices' names (a profile of hovers had
    // most of `describe` in comparing those names).
    let in_voice = |b: &&crate::records::BarRecord| b.tune == unit.tune && *b.voice == *unit.voice;
    let (first, last) = if unit.level == Level::Tune {
        (
            file.bars.iter().find(in_voice)?,
            file.bars.iter().rev().find(in_voice)?,
        )
    } else {
        let at = |n: u32| file.bars.iter().find(|b| b.number == n && in_voice(b));
        (at(unit.first_bar)?, at(unit.last_bar)?)
    };
    Some([
        first.measure.as_deref()?.clone(),
        last.measure.as_deref()?.clone(),
    ])
}
