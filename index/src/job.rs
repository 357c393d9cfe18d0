//! Indexing files: parse, cut into units, look every unit up in the content-addressed cache,
//! embed only what is missing (in length-bucketed batches), then record the file.
//!
//! Crash safety without a journal: vectors are written before the file record that names them,
//! and a file record is written only when all its vectors are stored. A run killed at any
//! point leaves vectors without a record (harmless: the next run finds them in the cache) but
//! never a record without its vectors.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;
use sha2::{Digest, Sha256};
use tunelens_models::abc::{self, Level, MusicView, PatchOptions, Patchilizer, SourceText};
use tunelens_models::encoders::{EmbeddingBackend, LongTunes, MusicBatch, PatchIds};
use tunelens_models::musicxml;

use super::records::{
    BarRecord, ContentKey, FileRecord, MeasureLoc, Span, TuneRecord, UnitRecord, UnitSettings,
    VoiceId,
};
use super::store::{Store, StoreError};
use super::symbolic::passage_ngrams;
use super::vectors::{sync, Backend, VectorError};

/// What to index and how.
#[derive(Debug, Clone)]
pub struct IndexOptions {
    /// The corpus the files belong to (`workspace` for the user's own files).
    pub corpus: String,
    pub settings: UnitSettings,
    /// Files larger than this are reported and skipped.
    pub max_bytes: usize,
    /// Units per call to the model.
    pub batch: usize,
    /// Folders that were indexed whole: records of files under them that are gone are dropped.
    pub roots: Vec<PathBuf>,
    /// When set, a file's collection is the first folder of its path below this one.
    pub collections_under: Option<PathBuf>,
}

/// Counts reported while indexing and at the end.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Progress {
    pub files_total: usize,
    pub files_done: usize,
    /// Units whose vectors were computed in this run.
    pub embedded: usize,
    /// Units whose vectors were already in the cache.
    pub cached: usize,
    /// Units still waiting for the model in the current group of files.
    pub queued: usize,
}

#[derive(Debug, Default, serde::Serialize)]
pub struct IndexReport {
    pub progress: Progress,
    pub files_indexed: usize,
    pub files_unchanged: usize,
    pub files_removed: usize,
    /// Files that could not be read, with the reason (naming the file).
    pub failed: Vec<String>,
    /// True when the run was cancelled before the end; what was done is kept.
    pub cancelled: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the model failed: {0}")]
    Model(String),
    /// The vector backend (Milvus) failed; what was recorded before stays, and a rerun resumes.
    #[error(transparent)]
    Vectors(#[from] VectorError),
}

/// Files are prepared and recorded in groups of this many, so a cancelled run loses at most
/// one group's unrecorded work (and its vectors stay cached).
const GROUP: usize = 64;

/// Indexes `files` into `store` for `model_id`, embedding with `model`. `progress` is called
/// after every batch; `cancel` is checked between batches.
pub fn index_files(
    store: &Store,
    model: &(dyn EmbeddingBackend + Sync),
    model_id: &str,
    files: &[PathBuf],
    options: &IndexOptions,
    progress: &(dyn Fn(&Progress) + Sync),
    cancel: &AtomicBool,
) -> Result<IndexReport, IndexError> {
    IndexJob {
        store,
        backend: &Backend::Embedded,
        model,
        model_id,
        options,
        progress,
        cancel,
    }
    .run(files)
}

/// One indexing run's context: where records and vectors go, what embeds, how it reports and
/// when it stops.
pub struct IndexJob<'a> {
    pub store: &'a Store,
    /// Where the rows are also written (Milvus) before each file's record.
    pub backend: &'a Backend,
    pub model: &'a (dyn EmbeddingBackend + Sync),
    pub model_id: &'a str,
    pub options: &'a IndexOptions,
    /// Called after every batch.
    pub progress: &'a (dyn Fn(&Progress) + Sync),
    /// Checked between batches.
    pub cancel: &'a AtomicBool,
}

impl IndexJob<'_> {
    /// Indexes `files`, writing each file's rows to the backend before its record: a file is
    /// recorded only once the server has its rows, so a run stopped by the server going away
    /// resumes from the first file not recorded.
    pub fn run(&self, files: &[PathBuf]) -> Result<IndexReport, IndexError> {
        let (store, backend, options) = (self.store, self.backend, self.options);
        let mut report = IndexReport {
            progress: Progress {
                files_total: files.len(),
                ..Progress::default()
            },
            ..IndexReport::default()
        };
        for group in files.chunks(GROUP) {
            if self.cancel.load(Ordering::Relaxed) {
                report.cancelled = true;
                break;
            }
            let view = self.model.music_view();
            let prepared: Vec<Prepared> = group
                .par_iter()
                .map(|path| prepare(store, backend, self.model_id, view, path, options))
                .collect::<Result<_, _>>()?;
            if !self.embed_missing(&prepared, &mut report)? {
                report.cancelled = true;
                break;
            }
            for p in prepared {
                match p {
                    Prepared::Unchanged => report.files_unchanged += 1,
                    Prepared::Failed(reason) => report.failed.push(reason),
                    Prepared::Ready { record, .. } => {
                        sync::push_file(store, backend, &options.corpus, &record)?;
                        store.put_file(&options.corpus, &record)?;
                        report.files_indexed += 1;
                    }
                }
                report.progress.files_done += 1;
            }
            (self.progress)(&report.progress);
        }
        if !report.cancelled {
            report.files_removed = drop_missing(store, backend, files, options)?;
        }
        store.flush()?;
        Ok(report)
    }

    /// Embeds the units of `prepared` that the cache lacks. Returns false when cancelled.
    fn embed_missing(
        &self,
        prepared: &[Prepared],
        report: &mut IndexReport,
    ) -> Result<bool, IndexError> {
        let (store, model_id) = (self.store, self.model_id);
        let mut missing: Vec<(ContentKey, &[PatchIds])> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for p in prepared {
            let Prepared::Ready { units, .. } = p else {
                continue;
            };
            for (key, patches) in units {
                if !seen.insert(*key) {
                    continue;
                }
                if store.has_vector(model_id, key)? {
                    report.progress.cached += 1;
                } else {
                    missing.push((*key, patches));
                }
            }
        }
        // Similar lengths together, so that the model's own bucketing has full batches to cut.
        missing.sort_by_key(|(_, p)| p.len());
        report.progress.queued = missing.len();
        for chunk in missing.chunks(self.options.batch.max(1)) {
            if self.cancel.load(Ordering::Relaxed) {
                return Ok(false);
            }
            let batch = MusicBatch {
                tunes: chunk.iter().map(|(_, p)| p.to_vec()).collect(),
                long_tunes: LongTunes::Segment,
            };
            let vectors = self
                .model
                .embed_music(&batch)
                .map_err(|e| IndexError::Model(e.to_string()))?;
            let items: Vec<(ContentKey, Vec<f32>)> =
                chunk.iter().map(|(k, _)| *k).zip(vectors).collect();
            store.put_vectors(model_id, &items)?;
            report.progress.embedded += items.len();
            report.progress.queued -= items.len();
            (self.progress)(&report.progress);
        }
        Ok(true)
    }
}

/// A file read, parsed and cut into units, with the patches of each unit.
enum Prepared {
    Unchanged,
    Failed(String),
    Ready {
        record: FileRecord,
        /// (key, patches) of every unit, in record order.
        units: Vec<(ContentKey, Vec<PatchIds>)>,
    },
}

fn prepare(
    store: &Store,
    backend: &Backend,
    model_id: &str,
    view: MusicView,
    path: &Path,
    options: &IndexOptions,
) -> Result<Prepared, IndexError> {
    let name = path.display().to_string();
    let bytes = match read_limited(path, options.max_bytes) {
        Ok(b) => b,
        Err(reason) => return Ok(Prepared::Failed(format!("{name}: {reason}"))),
    };
    let sha256: [u8; 32] = Sha256::digest(&bytes).into();
    if let Some(old) = store.stamp(&options.corpus, &name)? {
        if old.sha256 == sha256
            && old.model == model_id
            && old.settings == options.settings
            && sync::is_current(store, backend, &options.corpus, &name, &old)?
        {
            return Ok(Prepared::Unchanged);
        }
    }
    // MusicXML is converted to ABC first; its bars remember their measures.
    let (source, converted) = if musicxml::is_musicxml_path(path) {
        let limits = musicxml::Limits {
            max_bytes: options.max_bytes,
        };
        match musicxml::convert_with(&bytes, &name, limits) {
            Ok(c) => (SourceText::from_text(c.abc.clone()), Some(c)),
            Err(e) => return Ok(Prepared::Failed(e.to_string())),
        }
    } else {
        match SourceText::from_bytes(&bytes, options.max_bytes) {
            Ok(s) => (s, None),
            Err(e) => return Ok(Prepared::Failed(format!("{name}: {e}"))),
        }
    };
    let file = abc::parse(&source);
    if file.tunes.is_empty() {
        return Ok(Prepared::Failed(format!(
            "{name}: no ABC tunes here (no X: field, and no K: field or bar lines)"
        )));
    }
    let collection = options.collections_under.as_deref().and_then(|root| {
        let first = path.strip_prefix(root).ok()?.components().next()?;
        // A file directly under the root is a collection of its own.
        Some(
            first
                .as_os_str()
                .to_string_lossy()
                .trim_end_matches(".abc")
                .trim_end_matches(".mxl")
                .trim_end_matches(".musicxml")
                .trim_end_matches(".xml")
                .to_owned(),
        )
    });
    let (mut record, units) = record_source(
        &source,
        &file,
        converted.as_ref(),
        name,
        model_id,
        view,
        options.settings,
    );
    record.sha256 = sha256;
    record.collection = collection;
    Ok(Prepared::Ready { record, units })
}

/// The record of a parsed text and the patches of each of its units, in record order: what
/// indexing a file and analysing an editor's buffer share. `sha256` is of the text; the
/// caller sets `collection`. `converted` is the MusicXML the text came from, if any: its bars
/// keep their measures. `view` is how the model reads music (its patches, and so the units'
/// content keys, are of that view).
pub fn record_source(
    source: &SourceText,
    file: &abc::AbcFile,
    converted: Option<&musicxml::Converted>,
    path: String,
    model_id: &str,
    view: MusicView,
    settings: UnitSettings,
) -> (FileRecord, Vec<(ContentKey, Vec<PatchIds>)>) {
    let span = |r: abc::TextRange| Span::new(r, source.line_col(r.start), source.line_col(r.end));
    let mut patchilizer = Patchilizer::with_view(view);
    let mut tunes = Vec::new();
    let mut bars = Vec::new();
    let mut unit_records = Vec::new();
    let mut units = Vec::new();
    for tune in &file.tunes {
        let (t, b, u) = record_tune(source, tune, converted, settings, &mut patchilizer, &span);
        tunes.push(t);
        bars.extend(b);
        for (record, patches) in u {
            units.push((record.key, patches));
            unit_records.push(record);
        }
    }
    let record = FileRecord {
        path,
        sha256: Sha256::digest(source.text().as_bytes()).into(),
        model: model_id.to_owned(),
        settings,
        collection: None,
        tunes,
        bars,
        units: unit_records,
    };
    (record, units)
}

/// One tune's record, bars, and units with their patches.
#[allow(clippy::type_complexity)]
fn record_tune(
    source: &SourceText,
    tune: &abc::Tune,
    converted: Option<&musicxml::Converted>,
    settings: UnitSettings,
    patchilizer: &mut Patchilizer,
    span: &dyn Fn(abc::TextRange) -> Span,
) -> (TuneRecord, Vec<BarRecord>, Vec<(UnitRecord, Vec<PatchIds>)>) {
    let record = TuneRecord {
        index: tune.index,
        reference: tune.reference().map(str::to_owned),
        title: tune.title().map(str::to_owned),
        meter: tune.meter().map(str::to_owned),
        key: tune.key().map(str::to_owned),
        rhythm: tune.rhythm().map(str::to_owned),
        fields: tune
            .header
            .iter()
            .map(|f| (f.key, f.value.clone()))
            .collect(),
        range: span(tune.range),
    };
    let mut bars = Vec::new();
    for voice in &tune.voices {
        bars.extend(voice.bars.iter().map(|b| {
            BarRecord {
                tune: tune.index,
                voice: VoiceId::interned(&voice.id),
                number: b.number,
                range: span(b.range),
                measure: converted
                    .and_then(|c| c.measure_of(&voice.id, b.number))
                    .map(|m| {
                        Box::new(MeasureLoc {
                            part: m.part,
                            part_name: m.part_name.clone(),
                            measure: m.measure.clone(),
                        })
                    }),
            }
        }));
    }
    let notes = abc::notes::tune_notes(source, tune);
    let window = settings.window as usize;
    let stride = settings.stride as usize;
    let all = abc::units(source, tune, Level::Tune, window, stride)
        .into_iter()
        .chain(abc::units(source, tune, Level::Passage, window, stride));
    let mut units = Vec::new();
    for unit in all {
        // Every patch goes to the model; segment mode averages tunes past its limit.
        let patches = patchilizer.encode_ids(&unit.text, PatchOptions::ALL);
        let key = content_key(&patches);
        let record = UnitRecord {
            level: unit.level,
            tune: tune.index,
            voice: tune
                .voices
                .get(unit.voice)
                .map_or_else(VoiceId::default, |v| VoiceId::interned(&v.id)),
            first_bar: unit.first_bar,
            last_bar: unit.last_bar,
            range: span(unit.range),
            key,
            ngrams: match (unit.level, notes.get(unit.voice)) {
                (Level::Passage, Some(n)) => {
                    passage_ngrams(n, unit.first_bar, unit.last_bar).into()
                }
                _ => Box::default(),
            },
        };
        units.push((record, patches));
    }
    (record, bars, units)
}

/// The cache key of a unit: a hash of exactly what the model reads (its patches) and how
/// (segment mode). Equal music anywhere shares one vector.
pub fn content_key(patches: &[PatchIds]) -> ContentKey {
    let mut h = Sha256::new();
    h.update(b"tunelens-unit-v1\0segment\0");
    for p in patches {
        h.update(p);
    }
    ContentKey(h.finalize().into())
}

/// The cache key of a text's vector (a label prompt): its own domain, so that no text can
/// share a key with music.
pub fn text_key(text: &str) -> ContentKey {
    let mut h = Sha256::new();
    h.update(b"tunelens-text-v1\0");
    h.update(text.as_bytes());
    ContentKey(h.finalize().into())
}

fn read_limited(path: &Path, limit: usize) -> Result<Vec<u8>, String> {
    let meta = std::fs::metadata(path).map_err(|e| e.to_string())?;
    if meta.len() > limit as u64 {
        return Err(format!(
            "{} bytes, over the limit of {limit} bytes",
            meta.len()
        ));
    }
    std::fs::read(path).map_err(|e| e.to_string())
}

/// Drops the records of files under `options.roots` that were not in this run's file list
/// (deleted or renamed since the last run).
fn drop_missing(
    store: &Store,
    backend: &Backend,
    files: &[PathBuf],
    options: &IndexOptions,
) -> Result<usize, IndexError> {
    if options.roots.is_empty() {
        return Ok(0);
    }
    let seen: std::collections::HashSet<String> =
        files.iter().map(|p| p.display().to_string()).collect();
    let roots: Vec<String> = options
        .roots
        .iter()
        .map(|r| r.display().to_string())
        .collect();
    let mut removed = 0;
    for path in store.paths(&options.corpus)? {
        let under_root = roots.iter().any(|r| Path::new(&path).starts_with(r));
        if under_root && !seen.contains(&path) {
            if let Some(record) = store.file(&options.corpus, &path)? {
                sync::forget_file(store, backend, &options.corpus, &record)?;
            }
            store.remove_file(&options.corpus, &path)?;
            removed += 1;
        }
    }
    Ok(removed)
}
