//! The one query pipeline: a unit (or a text's vector) → the index's nearest units, ranked,
//! filtered, grouped and explained. The CLI's `similar` and `search`, the daemon's
//! `tunelens/similar` and `tunelens/search`, and its hovers all answer through here, so a
//! passage gets the same list whichever asks.

use serde::Serialize;
use tunelens_models::abc::notes::{voice_notes, Note};
use tunelens_models::abc::{Level, SourceText, TextRange, Tune};

use crate::symbolic::passage_ngrams;
use crate::thesession;
use crate::{
    refine, Catalog, Explainer, Explanation, Hit, Match, QueryError, Ranker, Refine, Source, Store,
    TuneVectors,
};

/// Where one query reads the index.
#[derive(Clone, Copy)]
pub struct QueryContext<'a> {
    pub store: &'a Store,
    /// The model id: the key of its vectors in the store.
    pub model: &'a str,
    /// The catalog of the level asked for.
    pub catalog: &'a Catalog,
    /// The tune catalog when it is in memory (a daemon's): settings of one tune are told apart
    /// by tune vectors, read from its rows instead of the store.
    pub tunes: Option<&'a Catalog>,
}

impl<'a> QueryContext<'a> {
    /// `catalog` of `model`'s vectors in `store`, tune vectors read from the store.
    pub fn new(store: &'a Store, model: &'a str, catalog: &'a Catalog) -> Self {
        Self {
            store,
            model,
            catalog,
            tunes: None,
        }
    }

    /// Tune vectors read from `tunes`' in-memory rows.
    pub fn with_tunes(self, tunes: &'a Catalog) -> Self {
        Self {
            tunes: Some(tunes),
            ..self
        }
    }

    fn tune_vectors(&self) -> TuneVectors<'a> {
        let tunes = TuneVectors::new(self.store, self.model, self.catalog);
        match self.tunes {
            Some(t) => tunes.with_tunes(t),
            None => tunes,
        }
    }
}

/// The unit a `similar` query starts from.
pub struct Query<'a> {
    pub level: Level,
    pub vector: &'a [f32],
    /// A passage's notes (for explanations) and interval n-grams (for the symbolic ranker):
    /// [`passage_notes`]; empty for a whole tune.
    pub notes: &'a [Note],
    pub ngrams: &'a [u32],
    /// The first and last bar of a passage.
    pub bars: [u32; 2],
    /// Where the unit stands in an indexed file, so that it never finds itself; `None` for
    /// music typed in.
    pub place: Option<Place<'a>>,
}

/// A unit's place: the file's canonical path (as the index keys it), its tune and byte range.
pub struct Place<'a> {
    pub path: &'a str,
    pub tune: usize,
    pub range: TextRange,
}

/// A hit with why it matched (passages only), and when grouped how many more passages of its
/// tune matched and where else the tune is.
#[derive(Debug, Clone, Serialize)]
pub struct Explained {
    #[serde(flatten)]
    pub m: Match,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<Explanation>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub other_passages: Option<usize>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Source>,
    /// The match's page, for a corpus whose tunes have one (The Session's settings).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

impl Explained {
    pub fn new(h: Hit, explain: Option<Explanation>) -> Self {
        Self {
            m: h.m,
            explain,
            other_passages: h.other_passages,
            sources: h.sources,
            link: None,
        }
    }

    /// Fills in the pages of the match and of its tune's other settings from `catalog`.
    fn with_links(mut self, catalog: &Catalog) -> Self {
        self.link = page(catalog, &self.m.corpus, &self.m.path, self.m.tune);
        for s in &mut self.sources {
            s.link = page(catalog, &s.corpus, &s.path, s.tune);
        }
        self
    }
}

/// The page of tune `tune` of `path` in `corpus`, when the corpus has pages.
fn page(catalog: &Catalog, corpus: &str, path: &str, tune: usize) -> Option<String> {
    if corpus != thesession::CORPUS {
        return None;
    }
    let record = catalog.file(corpus, path)?;
    let tune = record.tunes.iter().find(|t| t.index == tune)?;
    thesession::link_of(path, tune.reference.as_deref())
}

/// The notes of bars `bars` of `voice` (an index into `tune.voices`) and their interval
/// n-grams: what a passage query carries.
pub fn passage_notes(
    source: &SourceText,
    tune: &Tune,
    voice: usize,
    bars: [u32; 2],
) -> (Vec<Note>, Vec<u32>) {
    let notes = voice_notes(source, tune, voice);
    let [first, last] = bars;
    (
        notes
            .bars(first.saturating_sub(1) as usize..last as usize)
            .to_vec(),
        passage_ngrams(&notes, first, last),
    )
}

/// The `k` units of the context's catalog nearest to `query`, never the query's own place,
/// refined as `how` says and each explained through `explainer`. A whole tune has no n-grams,
/// so it is ranked by its vector whatever `ranker` says (a hybrid score would be half its
/// cosine).
pub fn similar(
    ctx: QueryContext,
    query: &Query,
    ranker: Ranker,
    k: usize,
    how: &Refine,
    explainer: &mut Explainer,
) -> Result<Vec<Explained>, QueryError> {
    let ranker = if query.level == Level::Tune {
        Ranker::Vector
    } else {
        ranker
    };
    let exclude = |m: &Match| {
        query.place.as_ref().is_some_and(|p| {
            m.path == p.path
                && match query.level {
                    Level::Tune => m.tune == p.tune,
                    _ => m.range.start < p.range.end && p.range.start < m.range.end,
                }
        })
    };
    let tunes = ctx.tune_vectors();
    let started = std::time::Instant::now();
    // The pools asked for: grouping asks again with a larger pool when too few tunes remain,
    // and each ask is a scan of the whole catalog.
    let pools = std::cell::RefCell::new(Vec::new());
    let hits = refine(
        ctx.catalog,
        k,
        how,
        &exclude,
        &|a, b| tunes.same_tune(a, b),
        &|pool, reject| {
            pools.borrow_mut().push(pool);
            ctx.catalog
                .ranked(query.vector, query.ngrams, ranker, pool, reject)
        },
    )?;
    let ranked = started.elapsed();
    let out = hits
        .into_iter()
        .map(|h| {
            let explain = explainer.explain(query.notes, query.bars, &h.m);
            Explained::new(h, explain).with_links(ctx.catalog)
        })
        .collect();
    tracing::debug!(
        pools = ?pools.borrow(),
        rank_ms = ranked.as_secs_f64() * 1e3,
        explain_ms = (started.elapsed() - ranked).as_secs_f64() * 1e3,
        "similar"
    );
    Ok(out)
}

/// The `k` units nearest to a text's vector, refined as `how` says.
pub fn search(
    ctx: QueryContext,
    vector: &[f32],
    k: usize,
    how: &Refine,
) -> Result<Vec<Explained>, QueryError> {
    let tunes = ctx.tune_vectors();
    let hits = refine(
        ctx.catalog,
        k,
        how,
        &|_| false,
        &|a, b| tunes.same_tune(a, b),
        &|pool, reject| ctx.catalog.nearest(vector, pool, reject),
    )?;
    Ok(hits
        .into_iter()
        .map(|h| Explained::new(h, None).with_links(ctx.catalog))
        .collect())
}
