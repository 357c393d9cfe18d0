//! Queries over the index: the units of some corpora loaded into a flat vector index, and
//! their answers as places in files with titles and scores.

use serde::Serialize;
use tunelens_models::abc::{Level, TextRange};

use super::records::{FileRecord, LineColRecord, UnitRecord};
use super::store::{Store, StoreError};
use crate::search::{FlatIndex, Hit, SearchError};

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Search(#[from] SearchError),
    #[error("nothing indexed{}{}: run `tunelens index` first", .corpora, .model)]
    Empty { corpora: String, model: String },
}

/// The indexed units of one level, from some corpora, searchable.
pub struct Catalog {
    files: Vec<(String, FileRecord)>,
    /// Row id in `index` → (file, unit).
    units: Vec<(usize, usize)>,
    index: FlatIndex,
}

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
    pub voice: String,
    /// First and last bar of a passage.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bars: Option<[u32; 2]>,
    pub start: LineColRecord,
    pub end: LineColRecord,
    #[serde(skip)]
    pub range: TextRange,
}

impl Catalog {
    /// Loads the units of `level` that `model` embedded, from `corpora` (all when empty).
    pub fn load(
        store: &Store,
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
        let mut index: Option<FlatIndex> = None;
        for (f, (_, record)) in files.iter().enumerate() {
            for (u, unit) in record.units.iter().enumerate() {
                if unit.level != level {
                    continue;
                }
                let Some(vector) = store.vector(model, &unit.key)? else {
                    // A record names only stored vectors (see index::job); a miss means the
                    // vector was removed by hand. Skip it rather than fail the query.
                    continue;
                };
                let index = match &mut index {
                    Some(i) => i,
                    None => index.insert(FlatIndex::new(vector.len())?),
                };
                index.add(units.len() as u64, &vector)?;
                units.push((f, u));
            }
        }
        let Some(index) = index else {
            return Err(QueryError::Empty {
                corpora: if corpora.is_empty() {
                    String::new()
                } else {
                    format!(" in corpus {}", corpora.join(", "))
                },
                model: format!(" for model {model}"),
            });
        };
        Ok(Self {
            files,
            units,
            index,
        })
    }

    pub fn len(&self) -> usize {
        self.units.len()
    }

    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    pub fn dim(&self) -> usize {
        self.index.dim()
    }

    /// The `k` units closest to `query`, leaving out those `exclude` rejects.
    pub fn nearest(
        &self,
        query: &[f32],
        k: usize,
        exclude: &(dyn Fn(&Match) -> bool + Sync),
    ) -> Result<Vec<Match>, QueryError> {
        let keep = |id: u64| !exclude(&self.describe(id, 0.0));
        let hits = self.index.top_k(query, k, Some(&keep))?;
        Ok(hits
            .into_iter()
            .map(|Hit { id, score }| self.describe(id, score))
            .collect())
    }

    fn describe(&self, id: u64, score: f32) -> Match {
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
            voice: unit.voice.clone(),
            bars: (unit.level != Level::Tune).then_some([unit.first_bar, unit.last_bar]),
            start: unit.range.start_lc,
            end: unit.range.end_lc,
            range: unit.range.range(),
        }
    }
}
