//! Queries over the index: the units of some corpora loaded into a flat vector index, and
//! their answers as places in files with titles and scores.

use std::collections::HashMap;

use serde::Serialize;
use tunelens_models::abc::{Level, TextRange};

use super::records::{FileRecord, LineColRecord, MeasureLoc, TuneRecord, UnitRecord};
use super::store::{Store, StoreError};
use super::symbolic::SymbolicIndex;
use super::vectors::{Backend, Filter, FlatVectors, Row, RowId, VectorError, VectorStore};
use crate::search::kernels::dot_f32;
use crate::search::SearchError;

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
}

/// The indexed units of one level, from some corpora, searchable.
pub struct Catalog {
    files: Vec<(String, FileRecord)>,
    /// Row → (file, unit).
    units: Vec<(usize, usize)>,
    /// Row → its id in the vector store, and back.
    ids: Vec<RowId>,
    rows: HashMap<RowId, u32>,
    /// Where the vectors are searched: in memory or on a server (see `index::vectors`).
    vectors: Box<dyn VectorStore>,
    filter: Filter,
    /// The same rows' interval n-grams (passages only).
    symbolic: SymbolicIndex,
}

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
const HYBRID_POOL_PER_RESULT: usize = 10;
const HYBRID_POOL_MIN: usize = 200;

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
    /// Loads the units of `level` that `model` embedded, from `corpora` (all when empty), into
    /// memory (the embedded backend).
    pub fn load(
        store: &Store,
        model: &str,
        corpora: &[String],
        level: Level,
    ) -> Result<Self, QueryError> {
        Self::open(store, &Backend::Embedded, model, corpora, level)
    }

    /// The one place a catalog is made: the file records come from the local `store`, the
    /// vectors from `backend` (loaded into memory from the local cache, or searched on Milvus).
    pub fn open(
        store: &Store,
        backend: &Backend,
        model: &str,
        corpora: &[String],
        level: Level,
    ) -> Result<Self, QueryError> {
        let names = if corpora.is_empty() {
            store.corpora()?
        } else {
            corpora.to_vec()
        };
        let mut files = Vec::new();
        for corpus in &names {
            for record in store.files(corpus)? {
                if record.model == model {
                    files.push((corpus.clone(), record));
                }
            }
        }
        let mut units = Vec::new();
        let mut ids = Vec::new();
        let mut flat: Option<FlatVectors> = None;
        let mut symbolic = SymbolicIndex::default();
        let remote = match backend {
            Backend::Embedded => None,
            Backend::Milvus(milvus) => {
                Some(milvus.find(model)?.ok_or_else(|| QueryError::NotInMilvus {
                    uri: milvus.config().uri.clone(),
                    model: model.to_owned(),
                })?)
            }
        };
        for (f, (corpus, record)) in files.iter().enumerate() {
            for (u, unit) in record.units.iter().enumerate() {
                if unit.level != level {
                    continue;
                }
                if remote.is_none() {
                    let Some(vector) = store.vector(model, &unit.key)? else {
                        // A record names only stored vectors (see index::job); a miss means
                        // the vector was removed by hand. Skip it rather than fail the query.
                        continue;
                    };
                    let flat = match &mut flat {
                        Some(i) => i,
                        None => flat.insert(FlatVectors::new(vector.len())?),
                    };
                    flat.upsert(&[Row {
                        corpus,
                        path: &record.path,
                        unit: u,
                        level,
                        key: unit.key,
                        vector: &vector,
                    }])?;
                }
                ids.push(RowId::new(corpus, &record.path, u));
                symbolic.push(&unit.ngrams);
                units.push((f, u));
            }
        }
        let vectors: Option<Box<dyn VectorStore>> = match (remote, flat) {
            (Some(remote), _) if !units.is_empty() => Some(Box::new(remote)),
            (None, Some(flat)) => Some(Box::new(flat)),
            _ => None,
        };
        let Some(vectors) = vectors else {
            return Err(QueryError::Empty {
                corpora: if corpora.is_empty() {
                    String::new()
                } else {
                    format!(" in corpus {}", corpora.join(", "))
                },
                model: format!(" for model {model}"),
            });
        };
        let rows = ids
            .iter()
            .enumerate()
            .map(|(r, id)| (*id, r as u32))
            .collect();
        Ok(Self {
            files,
            units,
            ids,
            rows,
            vectors,
            filter: Filter {
                corpora: corpora.to_vec(),
                level: Some(level),
            },
            symbolic,
        })
    }

    pub fn len(&self) -> usize {
        self.units.len()
    }

    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    pub fn dim(&self) -> usize {
        self.vectors.dim()
    }

    /// The corpus, file record and unit record behind a match (filters and grouping read
    /// the tune's header fields and the file's collection from them).
    pub fn record(&self, m: &Match) -> Option<(&str, &FileRecord, &UnitRecord)> {
        let &(f, u) = self.units.get(m.row as usize)?;
        let (corpus, file) = &self.files[f];
        Some((corpus, file, &file.units[u]))
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
        let keep = |row: u64| !exclude(&self.describe(row, 0.0, 0.0, 0.0));
        // Rows the store holds but these records do not name (another machine's corpus) are
        // not answers here: they cannot be shown as places in files.
        let keep_id = |id: RowId| self.rows.get(&id).is_some_and(|&r| keep(u64::from(r)));
        let pool = match ranker {
            Ranker::Vector => k,
            _ => (k * HYBRID_POOL_PER_RESULT).max(HYBRID_POOL_MIN),
        };
        let mut candidates: HashMap<u32, (f32, f32)> = HashMap::new();
        if ranker != Ranker::Symbolic {
            for hit in self.vectors.top_k(query, pool, &self.filter, &keep_id)? {
                candidates.insert(self.rows[&hit.id], (hit.score, 0.0));
            }
        }
        if ranker != Ranker::Vector && !ngrams.is_empty() {
            let all = self.symbolic.scores(ngrams);
            let mut symbolic: Vec<(u32, f32)> = all.iter().map(|(&r, &s)| (r, s)).collect();
            symbolic.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            let best = symbolic
                .into_iter()
                .filter(|&(row, _)| keep(u64::from(row)))
                .take(pool);
            for (row, _) in best {
                candidates.entry(row).or_insert((f32::NAN, 0.0));
            }
            // Every candidate, found by its vector or its n-grams, gets its n-gram score.
            for (row, scores) in candidates.iter_mut() {
                scores.1 = all.get(row).copied().unwrap_or(0.0);
            }
        }
        let q = normalised(query);
        // Candidates found by their n-grams alone get their vector score too, in one request.
        let unscored: Vec<RowId> = candidates
            .iter()
            .filter(|(_, (v, _))| v.is_nan())
            .map(|(&row, _)| self.ids[row as usize])
            .collect();
        let fetched = if unscored.is_empty() || query.is_empty() {
            HashMap::new()
        } else {
            self.vectors.vectors(&unscored)?
        };
        let mut matches: Vec<Match> = candidates
            .into_iter()
            .map(|(row, (vector, symbolic))| {
                // A query without a vector (symbolic only) has no vector part.
                let vector = if query.is_empty() {
                    0.0
                } else if vector.is_nan() {
                    fetched
                        .get(&self.ids[row as usize])
                        .map_or(0.0, |v| dot_f32(v, &q))
                } else {
                    vector
                };
                let score = match ranker {
                    Ranker::Vector => vector,
                    Ranker::Symbolic => symbolic,
                    Ranker::Hybrid => 0.5 * (vector + symbolic),
                };
                self.describe(u64::from(row), score, vector, symbolic)
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

    fn describe(&self, id: u64, score: f32, vector_score: f32, symbolic_score: f32) -> Match {
        let (f, u) = self.units[id as usize];
        let (corpus, file) = &self.files[f];
        let unit: &UnitRecord = &file.units[u];
        let tune = file.tunes.iter().find(|t| t.index == unit.tune);
        Match {
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
            row: id as u32,
        }
    }
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
