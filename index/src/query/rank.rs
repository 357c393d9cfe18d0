//! A catalog asked: the best units for a vector and n-grams, by vector, symbolic or hybrid
//! score, as `Match`es with their places.

use super::*;

impl Catalog {
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
        let keep_id = |id: RowId| self.row_of.get(&id, id_in(&self.rows)).is_some_and(keep);
        let pool = match ranker {
            Ranker::Vector => k,
            _ => (k * HYBRID_POOL_PER_RESULT).max(HYBRID_POOL_MIN),
        };
        // Rows described to test them against `exclude`, kept to become the answers: a
        // hover's candidates were each described twice, string copies and all.
        let mut described: HashMap<u32, Match> = HashMap::new();
        let mut keep_row = |row: u32| match self.describe(row, 0.0, 0.0, 0.0) {
            Some(m) if !exclude(&m) => {
                described.insert(row, m);
                true
            }
            _ => false,
        };
        let mut candidates: HashMap<u32, (f32, f32)> = HashMap::new();
        // The vector scan and the n-gram scores at once: the scan's tasks fill both cores,
        // and the n-gram counting (one pool task) runs in the gaps instead of after them. The
        // scan stays on the caller's thread: a remote store's client needs that thread's async
        // runtime, which a rayon worker does not have.
        // `exclude` usually rejects a handful of rows (the query's own place): ask for a few
        // more without it, and scan with it row by row only when that was not enough.
        let mut symbolic = None;
        let vector_hits = rayon::in_place_scope(|s| {
            if ranker != Ranker::Vector && !ngrams.is_empty() {
                let symbolic = &mut symbolic;
                s.spawn(move |_| {
                    let all = self.symbolic.score_rows(ngrams);
                    let best = all.best(pool + EXCLUDE_SLACK);
                    *symbolic = Some((all, best));
                });
            }
            (ranker != Ranker::Symbolic && !query.is_empty())
                .then(|| vectors.top_k(query, pool + EXCLUDE_SLACK, &self.filter, &|_| true))
                .transpose()
        });
        if let Some(mut hits) = vector_hits? {
            let before = hits.len();
            hits.retain(|h| {
                self.row_of
                    .get(&h.id, id_in(&self.rows))
                    .is_some_and(&mut keep_row)
            });
            if hits.len() < pool && before == pool + EXCLUDE_SLACK {
                hits = vectors.top_k(query, pool, &self.filter, &keep_id)?;
            }
            for hit in hits.into_iter().take(pool) {
                if let Some(row) = self.row_of.get(&hit.id, id_in(&self.rows)) {
                    candidates.insert(row, (hit.score, 0.0));
                }
            }
        }
        if let Some((all, mut best)) = symbolic {
            best.retain(|&(row, _)| keep_row(row));
            if best.len() < pool {
                // More were excluded than the slack: rank them all (not remembering every
                // row described: that could be most of the catalog).
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
        // Candidates found by their n-grams alone get their vector score too, in one request.
        let unscored: Vec<RowId> = candidates
            .iter()
            .filter(|(_, (v, _))| v.is_nan())
            .filter_map(|(row, _)| self.rows.get(row).map(|r| r.id))
            .collect();
        let fetched = if unscored.is_empty() || query.is_empty() {
            HashMap::new()
        } else {
            vectors.scores(query, &unscored)?
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
                        .copied()
                        .unwrap_or(0.0)
                } else {
                    vector
                };
                let score = match ranker {
                    Ranker::Vector => vector,
                    Ranker::Symbolic => symbolic,
                    Ranker::Hybrid => 0.5 * (vector + symbolic),
                };
                let mut m = match described.remove(&row) {
                    Some(m) => m,
                    None => self.describe(row, 0.0, 0.0, 0.0)?,
                };
                (m.score, m.vector_score, m.symbolic_score) = (score, vector, symbolic);
                Some(m)
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

    pub(super) fn describe(
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
            voice: unit.voice.to_string(),
            bars: (unit.level != Level::Tune).then_some([unit.first_bar, unit.last_bar]),
            start: unit.range.start_lc,
            end: unit.range.end_lc,
            measures: measures(file, unit),
            range: unit.range.range(),
            row,
        })
    }
}
