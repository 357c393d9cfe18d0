//! A ranked query made into the list a user sees: [`Filters`] applied while candidates are
//! chosen (so they never eat into `k`), enough candidates pulled that `k` tunes remain after
//! grouping, and the list grouped by tune. The CLI and the analysis host both answer through
//! [`refine`], so `similar`, `search` and their LSP and socket twins list the same things.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use tunelens_models::abc::Level;

use super::filter::{Candidate, Filters, RhythmPredictions};
use super::group::{group, Grouping, Source, NEAR_IDENTICAL, POOL_PER_RESULT};
use super::query::{Catalog, Match, QueryError};
use super::store::Store;
use crate::search::kernels::dot_f32;

/// How a result list is cut down and listed.
#[derive(Debug, Clone, Copy, Default)]
pub struct Refine<'a> {
    pub filters: Option<&'a Filters>,
    /// Zero-shot tune types, for a rhythm filter over tunes without `R:`.
    pub rhythm: Option<&'a RhythmPredictions>,
    pub grouping: Grouping,
}

impl<'a> Refine<'a> {
    /// `filters` (none when empty), the tune types a rhythm filter reads, and `grouping`.
    pub fn new(
        filters: &'a Filters,
        rhythm: Option<&'a RhythmPredictions>,
        grouping: Grouping,
    ) -> Self {
        Self {
            filters: (!filters.is_empty()).then_some(filters),
            rhythm,
            grouping,
        }
    }
}

/// One entry of a refined list.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub m: Match,
    /// Grouped: how many other passages of the tune matched (`None` when not grouped).
    pub other_passages: Option<usize>,
    /// Grouped: the tune's other settings, best first.
    pub sources: Vec<Source>,
}

/// Asks the index for the best `pool` matches that the predicate does not reject (it is the
/// `exclude` of [`Catalog::ranked`]).
pub type Ranked<'a> =
    dyn Fn(usize, &(dyn Fn(&Match) -> bool + Sync)) -> Result<Vec<Match>, QueryError> + 'a;

/// Pools grow by this factor while grouping leaves fewer than `k` tunes and the index has
/// more to give.
const POOL_GROWTH: usize = 4;

/// The `k` best hits of `ranked` over `catalog` that `exclude` does not reject and the
/// filters accept, grouped as asked. `same_tune` tells two tunes' settings apart (see
/// [`TuneVectors`]).
pub fn refine(
    catalog: &Catalog,
    k: usize,
    how: &Refine,
    exclude: &(dyn Fn(&Match) -> bool + Sync),
    same_tune: &dyn Fn(&Match, &Match) -> bool,
    ranked: &Ranked,
) -> Result<Vec<Hit>, QueryError> {
    let reject =
        |m: &Match| exclude(m) || how.filters.is_some_and(|f| !accepts(catalog, f, how, m));
    if how.grouping == Grouping::None {
        return Ok(ranked(k, &reject)?
            .into_iter()
            .map(|m| Hit {
                m,
                other_passages: None,
                sources: Vec::new(),
            })
            .collect());
    }
    // A tune often has a dozen windows among the best; ask for more until k tunes remain or
    // the index runs dry (it returned less than asked).
    let most = catalog.len().max(1);
    let mut pool = (k * POOL_PER_RESULT).min(most);
    loop {
        let matches = ranked(pool, &reject)?;
        let exhausted = matches.len() < pool || pool >= most;
        let groups = group(matches, k, |m| m, same_tune);
        if groups.len() >= k || exhausted {
            return Ok(groups
                .into_iter()
                .map(|g| Hit {
                    m: g.best,
                    other_passages: Some(g.other_passages),
                    sources: g.sources,
                })
                .collect());
        }
        pool = (pool * POOL_GROWTH).min(most);
    }
}

/// Whether the filters accept a match (its records read from the catalog).
fn accepts(catalog: &Catalog, filters: &Filters, how: &Refine, m: &Match) -> bool {
    let Some((corpus, file, unit)) = catalog.record(m) else {
        return false;
    };
    filters.accepts(&Candidate {
        corpus,
        file,
        unit,
        tune: file.tunes.iter().find(|t| t.index == unit.tune),
        predicted_rhythm: how.rhythm.and_then(|r| r.get(&file.path, unit.tune)),
    })
}

/// A tune: its file's path and its index there.
type TuneId = (String, usize);

/// The "near-identical tune vectors" test of a family: two matches are one tune when their
/// whole tunes' vectors are (almost) the same. Vectors are read from the store once each.
pub struct TuneVectors<'a> {
    store: &'a Store,
    model: &'a str,
    catalog: &'a Catalog,
    /// The tune catalog, whose in-memory rows are read first: every sled read stays in
    /// sled's cache, which a daemon answering hovers all day would otherwise fill.
    tunes: Option<&'a Catalog>,
    /// Shared slices: grouping compares matches pairwise, and copying a vector per comparison
    /// was most of its time.
    cache: RefCell<HashMap<TuneId, Option<Rc<[f32]>>>>,
}

impl<'a> TuneVectors<'a> {
    pub fn new(store: &'a Store, model: &'a str, catalog: &'a Catalog) -> Self {
        Self {
            store,
            model,
            catalog,
            tunes: None,
            cache: RefCell::new(HashMap::new()),
        }
    }

    /// Reads tune vectors from `tunes`' in-memory rows where it has them.
    pub fn with_tunes(mut self, tunes: &'a Catalog) -> Self {
        self.tunes = Some(tunes);
        self
    }

    pub fn same_tune(&self, a: &Match, b: &Match) -> bool {
        if (&a.path, a.tune) == (&b.path, b.tune) {
            return true;
        }
        match (self.vector(a), self.vector(b)) {
            (Some(x), Some(y)) => cosine(&x, &y) >= NEAR_IDENTICAL,
            _ => false,
        }
    }

    fn vector(&self, m: &Match) -> Option<Rc<[f32]>> {
        let key = (m.path.clone(), m.tune);
        if let Some(v) = self.cache.borrow().get(&key) {
            return v.clone();
        }
        let v = self.catalog.record(m).and_then(|(corpus, file, _)| {
            let (u, unit) = file
                .units
                .iter()
                .enumerate()
                .find(|(_, u)| u.level == Level::Tune && u.tune == m.tune)?;
            if let Some(v) = self
                .tunes
                .and_then(|t| t.local_vector(corpus, &file.path, u))
            {
                return Some(v);
            }
            // A store error only costs the family test; the match itself stands.
            self.store.vector(self.model, &unit.key).ok().flatten()
        });
        let v: Option<Rc<[f32]>> = v.map(Into::into);
        self.cache.borrow_mut().insert(key, v.clone());
        v
    }
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    if a.len() != b.len() {
        return 0.0;
    }
    let norms = (dot_f32(a, a) * dot_f32(b, b)).sqrt();
    if norms <= f32::MIN_POSITIVE {
        return 0.0;
    }
    dot_f32(a, b) / norms
}
