//! The host's answers to requests: hover, similar passages, search, labels (heads or
//! zero-shot prompts), code lenses and the genre field edit, and status. Each reads the
//! catalogs as they are and goes through the index's one query pipeline
//! (`tunelens_index::similar`), with `features` turning results into protocol types.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use tunelens_models::abc::Level;
use tunelens_protocol as proto;

use super::document::Snapshot;
use super::features::{self, Scorer, SimilarAsk};
use super::host::*;
use crate::queue::Priority;
use tunelens_index::labels::{head_for, LabelSet, DEFAULT_TEMPLATE};
use tunelens_index::locks::{lock, read};
use tunelens_index::similar::{self, QueryContext};
use tunelens_index::vectors::Health;
use tunelens_index::{
    text_key, Catalog, ContentKey, Filters, Grouping, Position, Refine, RhythmPredictions,
};
use tunelens_models::heads::Head;

impl Host {
    pub fn hover(
        &self,
        snapshot: &Snapshot,
        pos: proto::Position,
    ) -> Result<Option<proto::HoverResult>> {
        let offset = snapshot.offset(pos);
        if snapshot.header_at(offset).is_some() {
            self.ensure_tunes(snapshot)?;
        }
        let c = read(&self.catalogs);
        let note = self.indexing_note();
        if let Some(tune) = snapshot.header_at(offset) {
            let index = tune.index;
            let genre = self.label_scores(snapshot, index, "genre").ok().flatten();
            let rhythm = self.label_scores(snapshot, index, "rhythm").ok().flatten();
            return features::hover_tune(
                snapshot,
                self.query_context(&c.tunes, &c.tunes),
                index,
                [genre, rhythm],
                note.as_deref(),
                &self.files,
            );
        }
        let hover = features::hover_passage(
            snapshot,
            self.query_context(&c.passages, &c.tunes),
            offset,
            note.as_deref(),
            &self.files,
        )?;
        drop(c);
        // Inside a check's finding (a quotation), the hover says what the diagnostic says.
        Ok(hover.map(|mut h| {
            for d in self.cached_findings(snapshot).iter().flat_map(|f| f.iter()) {
                if d.range.start <= pos && pos < d.range.end {
                    h.contents
                        .push_str(&format!("\n**{}:** {}\n", d.source, d.message));
                }
            }
            h
        }))
    }

    pub fn similar(
        &self,
        snapshot: &Snapshot,
        params: &proto::SimilarParams,
    ) -> Result<proto::SimilarResult> {
        self.similar_with(snapshot, params, features::similar)
    }

    /// [`Self::similar`]'s list as the compare page.
    pub fn compare(
        &self,
        snapshot: &Snapshot,
        params: &proto::SimilarParams,
    ) -> Result<proto::CompareResult> {
        self.similar_with(snapshot, params, features::compare_page)
    }

    /// Runs `answer` (the list, or the page) on the unit `params` names, with its filters.
    fn similar_with<T>(
        &self,
        snapshot: &Snapshot,
        params: &proto::SimilarParams,
        answer: impl FnOnce(&Snapshot, SimilarAsk) -> Result<Option<T>>,
    ) -> Result<T> {
        let at = params.range.map_or(params.position, |r| r.start);
        let k = params.k.unwrap_or(10).clamp(1, 1000) as usize;
        if params.level == proto::Level::Tune {
            self.ensure_tunes(snapshot)?;
        }
        let (filters, grouping) = filters_of(&params.filters)?;
        let c = read(&self.catalogs);
        let catalog = c.of(params.level);
        let rhythm = self.rhythm_predictions(&filters, catalog)?;
        let how = Refine::new(&filters, rhythm.as_ref(), grouping);
        let ask = SimilarAsk {
            ctx: self.query_context(catalog, &c.tunes),
            offset: snapshot.offset(at),
            level: params.level,
            k,
            how: &how,
            files: &self.files,
            musicxml: true,
        };
        answer(snapshot, ask)?.ok_or_else(|| {
            AnalysisError::Indexing(
                self.indexing_note()
                    .unwrap_or_else(|| "no passage or tune at this place".into()),
            )
        })
    }

    pub fn search(&self, params: &proto::SearchParams) -> Result<proto::SearchResult> {
        let text = params.text.trim();
        if text.is_empty() || text.chars().count() > 10_000 {
            return Err(AnalysisError::InvalidParams(
                "the search text must hold 1 to 10000 characters".into(),
            ));
        }
        let (filters, grouping) = filters_of(&params.filters)?;
        let vector = self
            .queue
            .embed_text(vec![text.to_owned()], Priority::Interactive)
            .map_err(AnalysisError::Model)?
            .pop()
            .ok_or_else(|| AnalysisError::Model("no vector".into()))?;
        let k = params.k.unwrap_or(10).clamp(1, 1000) as usize;
        let c = read(&self.catalogs);
        let catalog = c.of(params.level);
        let rhythm = self.rhythm_predictions(&filters, catalog)?;
        let how = Refine::new(&filters, rhythm.as_ref(), grouping);
        let hits = similar::search(self.query_context(catalog, &c.tunes), &vector, k, &how)?;
        Ok(proto::SearchResult {
            matches: hits.iter().map(features::to_hit).collect(),
        })
    }

    /// Where a query reads the index: `catalog`, with tune vectors from the in-memory `tunes`.
    pub(super) fn query_context<'a>(
        &'a self,
        catalog: &'a Catalog,
        tunes: &'a Catalog,
    ) -> QueryContext<'a> {
        QueryContext::new(&self.store, &self.model_id, catalog).with_tunes(tunes)
    }

    /// The tune types of the catalog's tunes without `R:`, when a rhythm filter needs them:
    /// from the model's `rhythm` head, or zero-shot (the shipped `rhythm` set, or the
    /// configuration's own of that name, which also wins over the head).
    pub(super) fn rhythm_predictions(
        &self,
        filters: &Filters,
        catalog: &Catalog,
    ) -> Result<Option<RhythmPredictions>> {
        if !filters.needs_rhythm() {
            return Ok(None);
        }
        if let Some(head) = self.head("rhythm") {
            let files = catalog.files().map(|(_, f)| f);
            return Ok(Some(RhythmPredictions::predict(
                &self.store,
                &self.model_id,
                files,
                Some(head),
                &[],
            )?));
        }
        let set = self.label_set("rhythm")?;
        let labels: Vec<(String, Vec<f32>)> = set
            .0
            .labels
            .iter()
            .cloned()
            .zip(set.1.iter().cloned())
            .collect();
        let files = catalog.files().map(|(_, f)| f);
        Ok(Some(RhythmPredictions::predict(
            &self.store,
            &self.model_id,
            files,
            None,
            &labels,
        )?))
    }

    /// The label set `name`: the configuration's own, else a shipped one; its prompts
    /// embedded once.
    pub(super) fn label_set(&self, name: &str) -> Result<Labels> {
        if let Some(s) = lock(&self.labels).get(name) {
            return Ok(s.clone());
        }
        let set = match read(&self.config).label_sets.get(name) {
            Some(labels) => LabelSet::new(labels.clone(), DEFAULT_TEMPLATE)?,
            None => LabelSet::shipped(name)?,
        };
        self.embed_labels(name, set)
    }

    pub(super) fn embed_labels(&self, name: &str, set: LabelSet) -> Result<Labels> {
        let vectors = self.embed_text_cached(set.prompts())?;
        let entry = Arc::new((set, vectors));
        lock(&self.labels).insert(name.to_owned(), entry.clone());
        Ok(entry)
    }

    /// The vectors of `texts`, from the content cache where they are there, the others
    /// embedded in one batch and cached. Label prompts are the same every run: once cached,
    /// a daemon never loads the text tower for them (see `Clamp`'s lazy external tower).
    pub(super) fn embed_text_cached(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>> {
        let keys: Vec<ContentKey> = texts.iter().map(|t| text_key(t)).collect();
        let mut out: Vec<Option<Vec<f32>>> = keys
            .iter()
            .map(|k| self.store.vector(&self.model_id, k))
            .collect::<std::result::Result<_, _>>()?;
        let missing: Vec<usize> = (0..texts.len()).filter(|&i| out[i].is_none()).collect();
        if !missing.is_empty() {
            let embedded = self
                .queue
                .embed_text(
                    missing.iter().map(|&i| texts[i].clone()).collect(),
                    Priority::Interactive,
                )
                .map_err(AnalysisError::Model)?;
            let items: Vec<(ContentKey, Vec<f32>)> =
                missing.iter().map(|&i| keys[i]).zip(embedded).collect();
            self.store.put_vectors(&self.model_id, &items)?;
            for (&i, (_, v)) in missing.iter().zip(items) {
                out[i] = Some(v);
            }
        }
        out.into_iter()
            .map(|v| v.ok_or_else(|| AnalysisError::Model("no vector".into())))
            .collect()
    }

    /// Scores of tune `tune` for a label set, best first: from the model's head of that name
    /// unless the configuration lists its own labels for it, else zero-shot; `None` before its
    /// vector is stored.
    pub fn label_scores(
        &self,
        snapshot: &Snapshot,
        tune: usize,
        set: &str,
    ) -> Result<Option<Vec<proto::LabelScore>>> {
        let (store, model) = (&self.store, self.model_id.as_str());
        if let Some(head) = self.head(set) {
            return features::label_scores(snapshot, store, model, tune, Scorer::Head(head));
        }
        let set = self.label_set(set)?;
        features::label_scores(
            snapshot,
            store,
            model,
            tune,
            Scorer::ZeroShot(&set.0, &set.1),
        )
    }

    /// The model's head for label set `name`, unless the configuration lists its own labels
    /// under that name (a user's list wins over the head).
    pub(super) fn head(&self, name: &str) -> Option<&Head> {
        let configured = read(&self.config).label_sets.contains_key(name);
        head_for(&self.heads, name).filter(|_| !configured)
    }

    pub fn classify(
        &self,
        snapshot: &Snapshot,
        params: &proto::ClassifyParams,
    ) -> Result<proto::ClassifyResult> {
        self.ensure_tunes(snapshot)?;
        let custom = match &params.labels {
            Some(labels) => {
                let set = LabelSet::new(labels.clone(), DEFAULT_TEMPLATE)?;
                let name = format!("\0custom\0{}", labels.join("\0"));
                Some(self.embed_labels(&name, set)?)
            }
            None => None,
        };
        let name = params.label_set.as_deref().unwrap_or("genre");
        let mut tunes = Vec::new();
        for tune in &snapshot.file.tunes {
            let labels = match &custom {
                Some(set) => features::label_scores(
                    snapshot,
                    &self.store,
                    &self.model_id,
                    tune.index,
                    Scorer::ZeroShot(&set.0, &set.1),
                )?,
                None => self.label_scores(snapshot, tune.index, name)?,
            }
            .unwrap_or_default();
            tunes.push(proto::TuneLabels {
                range: snapshot.range(tune.range),
                title: tune.title().map(str::to_owned),
                labels,
            });
        }
        Ok(proto::ClassifyResult { tunes })
    }

    /// The label set the genre lens and action use: the one named like the field's meaning
    /// (`R:` is rhythm, i.e. tune type), else genre.
    pub fn genre_field(&self) -> (char, &'static str) {
        let field = read(&self.config)
            .genre_field
            .as_deref()
            .and_then(|f| f.chars().next())
            .filter(char::is_ascii_alphabetic)
            .unwrap_or('R');
        (field, if field == 'R' { "rhythm" } else { "genre" })
    }

    /// One lens per tune header: "rhythm: jig 0.81 · reel 0.11" (or "genre: ...").
    pub fn code_lenses(&self, snapshot: &Snapshot) -> Result<Vec<proto::Lens>> {
        // A document being typed, for a client that can be asked to refresh: the lens keeps
        // its last scores until the tune is embedded (once typing pauses, `tunes_later`),
        // instead of embedding a long tune on every keystroke's way; the client is then asked
        // for the lenses again. Otherwise the tune is embedded now.
        let typing = snapshot.version.is_some() && lock(&self.on_tunes).is_some();
        if !typing {
            self.ensure_tunes(snapshot)?;
        }
        let (_, set) = self.genre_field();
        let mut out = Vec::new();
        for tune in &snapshot.file.tunes {
            let key = (snapshot.path.clone(), tune.index);
            let scores = match self.label_scores(snapshot, tune.index, set)? {
                Some(fresh) => {
                    lock(&self.lens_memory).insert(key, fresh.clone());
                    Some(fresh)
                }
                None if typing => lock(&self.lens_memory).get(&key).cloned(),
                None => None,
            };
            let line = snapshot.lines.position(snapshot.text(), tune.range.start);
            out.push(proto::Lens {
                range: proto::Range {
                    start: line,
                    end: line,
                },
                title: features::lens_title(
                    set,
                    scores.as_deref(),
                    self.indexing_note().as_deref(),
                ),
            });
        }
        Ok(out)
    }

    /// The edit that sets the genre field of the tune at `pos` to its best label: (label,
    /// range to replace, new text).
    pub fn genre_edit(
        &self,
        snapshot: &Snapshot,
        pos: proto::Position,
    ) -> Result<Option<(String, proto::Range, String)>> {
        self.ensure_tunes(snapshot)?;
        let Some(tune) = snapshot.tune_at(snapshot.offset(pos)) else {
            return Ok(None);
        };
        let (field, set) = self.genre_field();
        let Some(best) = self
            .label_scores(snapshot, tune.index, set)?
            .and_then(|s| s.into_iter().next())
        else {
            return Ok(None);
        };
        let (range, text) = features::field_edit(snapshot, tune, field, &best.label);
        Ok(Some((best.label, range, text)))
    }

    pub fn status(&self) -> Result<proto::StatusResult> {
        let c = read(&self.catalogs);
        let mut corpora: std::collections::BTreeMap<String, proto::CorpusInfo> = Default::default();
        for (corpus, record) in c.tunes.files() {
            let e = corpora
                .entry(corpus.to_owned())
                .or_insert_with(|| proto::CorpusInfo {
                    name: corpus.to_owned(),
                    files: 0,
                    tunes: 0,
                    passages: 0,
                });
            e.files += 1;
            e.tunes += record.tunes.len();
            e.passages += record
                .units
                .iter()
                .filter(|u| u.level == Level::Passage)
                .count();
        }
        let (pending, running) = self.queue.load();
        let indexing =
            self.indexing.load(Ordering::Relaxed) > 0 || !self.loaded.load(Ordering::Relaxed);
        Ok(proto::StatusResult {
            server_version: env!("CARGO_PKG_VERSION").into(),
            protocol_version: proto::PROTOCOL_VERSION,
            model: proto::ModelInfo {
                id: self.model_id.clone(),
                name: self.model_name.clone(),
                dim: self.queue.dim(),
            },
            device: self.device.clone(),
            corpora: corpora.into_values().collect(),
            queue: proto::QueueInfo { pending, running },
            indexing,
            files_done: self.files_done.load(Ordering::Relaxed),
            files_total: self.files_total.load(Ordering::Relaxed),
            store: self.store_info(),
            memory: crate::memory::usage(),
        })
    }

    pub(super) fn store_info(&self) -> proto::StoreInfo {
        let Some(remote) = &self.remote else {
            return proto::StoreInfo::default();
        };
        let (healthy, message) = match remote.health() {
            Health::Up => (true, None),
            Health::Unknown => (false, Some("not reached yet".to_owned())),
            Health::Down { since, error } => {
                let secs = since.elapsed().map_or(0, |d| d.as_secs());
                (false, Some(format!("down for {secs} s: {error}")))
            }
        };
        proto::StoreInfo {
            kind: "milvus".into(),
            uri: Some(remote.uri().to_owned()),
            healthy,
            message,
        }
    }

    // ---- indexing ------------------------------------------------------------------------
}

/// The index's filters and grouping for a request's; a key that reads as no key is a bad
/// parameter.
fn filters_of(f: &proto::ResultFilters) -> Result<(Filters, Grouping)> {
    let filters = Filters {
        corpus: f.corpus.clone(),
        collection: f.collection.clone(),
        meter: f.meter.clone(),
        key: f.key.clone(),
        rhythm: f.rhythm.clone(),
        position: match f.passage_position.unwrap_or_default() {
            proto::PassagePosition::Anywhere => Position::Anywhere,
            proto::PassagePosition::Start => Position::Start,
        },
    };
    filters
        .validate()
        .map_err(|e| AnalysisError::InvalidParams(e.to_string()))?;
    let grouping = match f.group.unwrap_or_default() {
        proto::Grouping::None => Grouping::None,
        proto::Grouping::Tune => Grouping::Tune,
    };
    Ok((filters, grouping))
}
