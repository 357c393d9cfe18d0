//! The analysis host: the one owner of state behind both servers. It holds the open
//! documents, the in-memory catalogs (updated file by file), the sled store and the model
//! queue, and answers in plain protocol types. Every method is synchronous; the servers call
//! them from blocking tasks.
//!
//! Cancellation: each document carries its editor version; analysing an old version stops at
//! the next check (before embedding, after embedding) with [`Cancelled`], and its answers are
//! never published.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tunelens_models::abc::{self, Level};
use tunelens_protocol as proto;

use super::document::Snapshot;
use super::features::{self, Scorer};
use super::lines::apply_change;
use super::uri;
use crate::memory::release_free_memory;
use crate::queue::{EmbedQueue, Priority};
use tunelens_index::labels::{head_for, LabelError, LabelSet, DEFAULT_TEMPLATE};
use tunelens_index::search::Precision;
use tunelens_index::similar::{self, QueryContext};
use tunelens_index::vectors::{sync, Backend, Health, MilvusConfig, Remote};
use tunelens_index::{
    index_files_to, shared_record, text_key, Catalog, ContentKey, FileCache, FileRecord, Filters,
    Grouping, IndexError, IndexOptions, Position, QueryError, Refine, RhythmPredictions, Store,
    StoreError, UnitSettings,
};
use tunelens_models::heads::Head;

/// The corpus of the user's own files (workspace folders and open documents).
pub const WORKSPACE: &str = "workspace";

/// Files not open in the editor that requests asked about, kept analysed.
const DISK_SNAPSHOTS: usize = 8;

/// How long an open document must stay unchanged before its tune vectors are refreshed.
const TUNES_AFTER: std::time::Duration = std::time::Duration::from_millis(300);

/// How often a daemon on Milvus asks a server that is down whether it is back.
const PROBE_EVERY: std::time::Duration = std::time::Duration::from_secs(3);

/// Files per indexing step: after each, the catalogs gain the step's files.
const INDEX_STEP: usize = 32;

/// The daemon's catalogs keep only int8 vectors: a quarter of the memory of its largest
/// structure (the f32 ones stay in sled for the CLI); a cosine moves by ~5e-4, less than any
/// difference between passages a user would act on.
const PRECISION: Precision = Precision::Int8;

#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// A newer version of the document arrived; the answer would be stale.
    #[error("the document changed")]
    Cancelled,
    #[error("{0}: not a file:// URI")]
    BadUri(String),
    #[error("{path}: {reason}")]
    BadDocument { path: String, reason: String },
    #[error("no result yet: {0}")]
    Indexing(String),
    #[error(transparent)]
    Labels(#[from] LabelError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error("the model failed: {0}")]
    Model(String),
    #[error("{0}")]
    InvalidParams(String),
}

pub type Result<T> = std::result::Result<T, AnalysisError>;

/// A check run on every analysed document that adds its own findings (the originality check
/// plugs in here). It sees the snapshot, the catalogs and the configuration in force, and
/// must be quick.
pub trait DocumentCheck: Send + Sync {
    /// `None` when `cancelled` said yes before the check was done. A check holds the catalogs
    /// for reading while it runs, so the next version's analysis waits for it: it should ask
    /// `cancelled` often (the originality check does per window).
    fn check(
        &self,
        doc: &Snapshot,
        passages: &Catalog,
        tunes: &Catalog,
        config: &proto::Config,
        cancelled: &dyn Fn() -> bool,
    ) -> Option<Vec<proto::Diagnostic>>;
}

/// What the host was started with.
pub struct HostOptions {
    pub store: Store,
    pub queue: EmbedQueue,
    pub model_id: String,
    pub model_name: String,
    pub device: String,
    pub config: proto::Config,
    /// The Milvus server of the reference corpora's vectors; `None`: everything embedded.
    /// The workspace's vectors stay in memory either way (see `index::vectors::Tiered`).
    pub milvus: Option<MilvusConfig>,
    /// The model's label heads: they answer for the label sets of their names.
    pub heads: Vec<Head>,
}

/// Progress of indexing, for `$/progress` and status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexEvent {
    Begin { title: String },
    Report { done: usize, total: usize },
    End { message: String },
}

/// A file read from disk: its text's hash and snapshot.
type DiskDoc = ([u8; 32], Arc<Snapshot>);

/// A label set with its prompts' vectors.
type Labels = Arc<(LabelSet, Vec<Vec<f32>>)>;

type ProgressSink = Box<dyn Fn(IndexEvent) + Send + Sync>;

/// A text's hash and what the registered checks found in it.
type CheckFindings = ([u8; 32], Arc<Vec<proto::Diagnostic>>);

struct Doc {
    uri: String,
    text: String,
    version: i32,
    /// The newest analysed version.
    snapshot: Option<Arc<Snapshot>>,
}

pub struct Catalogs {
    pub passages: Catalog,
    pub tunes: Catalog,
}

impl Catalogs {
    /// The catalog of a request's level.
    pub fn of(&self, level: proto::Level) -> &Catalog {
        match level {
            proto::Level::Passage => &self.passages,
            proto::Level::Tune => &self.tunes,
        }
    }
}

pub struct Host {
    store: Store,
    /// The server holding the reference corpora's vectors, when there is one.
    remote: Option<Arc<Remote>>,
    queue: EmbedQueue,
    model_id: String,
    model_name: String,
    device: String,
    config: RwLock<proto::Config>,
    settings: UnitSettings,
    catalogs: RwLock<Catalogs>,
    /// True once the catalogs hold what sled had at start.
    loaded: AtomicBool,
    docs: Mutex<HashMap<String, Doc>>,
    /// The newest version of each open document, apart from `docs`: a check that holds the
    /// catalogs asks it whether to give up, and analysis holds `docs` while it waits for the
    /// catalogs (taking `docs` there would deadlock).
    newest: Mutex<HashMap<String, i32>>,
    /// Files on disk read for the socket, by path: their text's hash and snapshot.
    disk: Mutex<HashMap<String, DiskDoc>>,
    labels: Mutex<HashMap<String, Labels>>,
    heads: Vec<Head>,
    /// Folders indexed and watched, with their corpus.
    roots: Mutex<Vec<(PathBuf, String)>>,
    indexing: AtomicUsize,
    files_done: AtomicUsize,
    files_total: AtomicUsize,
    cancel: AtomicBool,
    progress: Mutex<Option<ProgressSink>>,
    checks: RwLock<Vec<Box<dyn DocumentCheck>>>,
    /// The checks' findings of the newest text of each document, by path (keyed by the
    /// text's hash), so a hover inside one can show it without running the checks again.
    findings: Mutex<HashMap<String, CheckFindings>>,
    /// Matched corpus files, kept parsed for explanations between requests.
    files: FileCache,
    /// Held by each indexing step (read, embed, write) and each forgetting of a file, so a
    /// file deleted while a step is embedding it is forgotten after the step writes it, never
    /// before (which would bring the deleted file back).
    writing: Mutex<()>,
    /// The host itself, for work it starts on other threads.
    me: std::sync::Weak<Host>,
    /// Called with each new root before its files are listed (the watcher), so a change made
    /// while the root is being indexed is never missed.
    on_root: Mutex<Option<RootSink>>,
}

/// Where new roots go (see [`Host::set_root_sink`]).
pub type RootSink = Box<dyn Fn(&Path) + Send + Sync>;

impl Host {
    pub fn new(options: HostOptions) -> Arc<Self> {
        let window = options.config.window_bars.unwrap_or(4).clamp(1, 64);
        let remote = options
            .milvus
            .map(|m| Arc::new(Remote::new(m, &options.model_id, options.queue.dim())));
        Arc::new_cyclic(|me| Self {
            remote,
            me: me.clone(),
            on_root: Mutex::new(None),
            store: options.store,
            queue: options.queue,
            model_id: options.model_id,
            model_name: options.model_name,
            device: options.device,
            config: RwLock::new(options.config),
            settings: UnitSettings { window, stride: 1 },
            catalogs: RwLock::new(Catalogs {
                passages: Catalog::with_precision(Level::Passage, PRECISION),
                tunes: Catalog::with_precision(Level::Tune, PRECISION),
            }),
            loaded: AtomicBool::new(false),
            docs: Mutex::new(HashMap::new()),
            heads: options.heads,
            newest: Mutex::new(HashMap::new()),
            disk: Mutex::new(HashMap::new()),
            labels: Mutex::new(HashMap::new()),
            roots: Mutex::new(Vec::new()),
            indexing: AtomicUsize::new(0),
            files_done: AtomicUsize::new(0),
            files_total: AtomicUsize::new(0),
            cancel: AtomicBool::new(false),
            progress: Mutex::new(None),
            files: FileCache::default(),
            checks: RwLock::new(Vec::new()),
            findings: Mutex::new(HashMap::new()),
            writing: Mutex::new(()),
        })
    }

    /// Where indexing progress goes (the LSP's `$/progress`).
    pub fn set_progress_sink(&self, sink: ProgressSink) {
        *lock(&self.progress) = Some(sink);
    }

    /// Where each new root goes before it is listed (the watcher registers it there).
    pub fn set_root_sink(&self, sink: RootSink) {
        *lock(&self.on_root) = Some(sink);
    }

    pub fn add_check(&self, check: Box<dyn DocumentCheck>) {
        write(&self.checks).push(check);
    }

    pub fn config(&self) -> proto::Config {
        read(&self.config).clone()
    }

    /// Takes a newer configuration (from `workspace/configuration`); new corpora are indexed.
    /// What it leaves out keeps its value (the command line's `--corpus` folders and the
    /// `initializationOptions` stay), and corpora are only added until a restart: their
    /// vectors stay cached either way.
    pub fn set_config(self: &Arc<Self>, mut config: proto::Config) {
        {
            let old = read(&self.config);
            for c in &old.corpora {
                if !config.corpora.contains(c) {
                    config.corpora.push(c.clone());
                }
            }
            config.model_dir = config.model_dir.or_else(|| old.model_dir.clone());
            config.device = config.device.or_else(|| old.device.clone());
            config.window_bars = config.window_bars.or(old.window_bars);
            config.genre_field = config.genre_field.or_else(|| old.genre_field.clone());
            config.originality = config.originality.or_else(|| old.originality.clone());
            config.db_path = config.db_path.or_else(|| old.db_path.clone());
            if config.label_sets.is_empty() {
                config.label_sets = old.label_sets.clone();
            }
        }
        let old = std::mem::replace(&mut *write(&self.config), config.clone());
        lock(&self.labels).clear();
        let added: Vec<PathBuf> = config
            .corpora
            .iter()
            .filter(|c| !old.corpora.contains(c))
            .map(PathBuf::from)
            .collect();
        for root in added {
            let name = corpus_name(&root);
            self.clone().index_in_background(vec![(root, name)]);
        }
    }

    // ---- documents -----------------------------------------------------------------------

    pub fn open(&self, uri_text: &str, version: i32, text: String) -> Result<String> {
        let path = path_of(uri_text)?;
        lock(&self.newest).insert(path.clone(), version);
        lock(&self.docs).insert(
            path.clone(),
            Doc {
                uri: uri_text.to_owned(),
                text,
                version,
                snapshot: None,
            },
        );
        Ok(path)
    }

    /// Applies an editor's changes (whole text when a change has no range).
    pub fn change(
        &self,
        uri_text: &str,
        version: i32,
        changes: &[(Option<proto::Range>, String)],
    ) -> Result<String> {
        let path = path_of(uri_text)?;
        let mut docs = lock(&self.docs);
        let doc = docs
            .get_mut(&path)
            .ok_or_else(|| AnalysisError::InvalidParams(format!("{uri_text} is not open")))?;
        for (range, text) in changes {
            apply_change(&mut doc.text, *range, text);
        }
        doc.version = version;
        lock(&self.newest).insert(path.clone(), version);
        Ok(path)
    }

    /// Forgets an open document; the catalog goes back to the file's indexed record.
    pub fn close(&self, uri_text: &str) -> Result<()> {
        let path = path_of(uri_text)?;
        lock(&self.docs).remove(&path);
        lock(&self.newest).remove(&path);
        lock(&self.findings).remove(&path);
        let record = self.store.file(WORKSPACE, &path)?;
        self.put_in_catalogs(WORKSPACE, &path, record)?;
        Ok(())
    }

    /// The current version of an open document.
    pub fn version(&self, path: &str) -> Option<i32> {
        lock(&self.docs).get(path).map(|d| d.version)
    }

    /// Analyses the open document at `version`: parse, embed the units the cache lacks (one
    /// interactive batch), update the catalogs. [`Cancelled`](AnalysisError::Cancelled) when
    /// a newer version arrived meanwhile.
    pub fn analyze(&self, path: &str, version: i32) -> Result<Arc<Snapshot>> {
        let (uri_text, text) = {
            let docs = lock(&self.docs);
            let doc = docs.get(path).ok_or(AnalysisError::Cancelled)?;
            if doc.version != version {
                return Err(AnalysisError::Cancelled);
            }
            if let Some(s) = doc.snapshot.as_ref().filter(|s| s.version == Some(version)) {
                return Ok(s.clone());
            }
            (doc.uri.clone(), doc.text.clone())
        };
        let t0 = std::time::Instant::now();
        let snapshot = Snapshot::new(
            path.to_owned(),
            uri_text,
            Some(version),
            text,
            &self.model_id,
            self.queue.music_view(),
            self.settings,
        );
        let stale = || self.version(path) != Some(version);
        if stale() {
            return Err(AnalysisError::Cancelled);
        }
        let t1 = std::time::Instant::now();
        // A keystroke waits for its windows only; the whole tune (hundreds of patches for a
        // long one) is embedded right after, off the hover's path (`tunes_later`), or by
        // the first request that needs it (`ensure_tunes`).
        self.embed_missing(&snapshot, Some(Level::Passage))?;
        if stale() {
            return Err(AnalysisError::Cancelled);
        }
        let t2 = std::time::Instant::now();
        let snapshot = Arc::new(snapshot);
        {
            // Checked and written under the documents' lock, so an older version finishing
            // late never replaces a newer one in the catalogs.
            let mut docs = lock(&self.docs);
            match docs.get_mut(path) {
                Some(doc) if doc.version == version => {
                    self.put_in_catalogs(WORKSPACE, path, Some(snapshot.record.clone()))?;
                    doc.snapshot = Some(snapshot.clone());
                }
                _ => return Err(AnalysisError::Cancelled),
            }
        }
        tracing::debug!(
            version,
            parse_us = (t1 - t0).as_micros() as u64,
            embed_us = (t2 - t1).as_micros() as u64,
            catalogs_us = t2.elapsed().as_micros() as u64,
            "document analysed"
        );
        self.tunes_later(path, version);
        Ok(snapshot)
    }

    /// The newest snapshot of `uri`: an open document analysed at its current version, or a
    /// file on disk (read again when it changed).
    pub fn snapshot(&self, uri_text: &str) -> Result<Arc<Snapshot>> {
        let path = path_of(uri_text)?;
        if let Some(version) = self.version(&path) {
            // A newer version may arrive while this one is analysed: then answer for it.
            for _ in 0..8 {
                match self.analyze(&path, version) {
                    Err(AnalysisError::Cancelled) => continue,
                    other => return other,
                }
            }
            return Err(AnalysisError::Cancelled);
        }
        self.disk_snapshot(uri_text, &path)
    }

    fn disk_snapshot(&self, uri_text: &str, path: &str) -> Result<Arc<Snapshot>> {
        let bad = |reason: String| AnalysisError::BadDocument {
            path: path.to_owned(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let source = abc::SourceText::from_bytes(&bytes, abc::DEFAULT_SIZE_LIMIT)
            .map_err(|e| bad(e.to_string()))?;
        let hash = super::document::text_hash(source.text());
        if let Some((h, s)) = lock(&self.disk).get(path) {
            if *h == hash {
                return Ok(s.clone());
            }
        }
        let snapshot = Snapshot::new(
            path.to_owned(),
            uri_text.to_owned(),
            None,
            source.text().to_owned(),
            &self.model_id,
            self.queue.music_view(),
            self.settings,
        );
        if snapshot.file.tunes.is_empty() {
            return Err(bad("no ABC tunes here".into()));
        }
        self.embed_missing(&snapshot, None)?;
        let snapshot = Arc::new(snapshot);
        let mut disk = lock(&self.disk);
        // A snapshot holds every unit's patches (megabytes for a large file): a script asking
        // about a whole corpus, file by file, must not keep them all.
        if disk.len() >= DISK_SNAPSHOTS {
            if let Some(any) = disk.keys().next().cloned() {
                disk.remove(&any);
            }
        }
        disk.insert(path.to_owned(), (hash, snapshot.clone()));
        Ok(snapshot)
    }

    /// Embeds the snapshot's units of `level` (all when `None`) that the cache lacks, as one
    /// interactive batch; returns whether there were any.
    fn embed_missing(&self, snapshot: &Snapshot, level: Option<Level>) -> Result<bool> {
        // Units the catalogs hold a row for have a stored vector; asking sled would leave the
        // page it read in sled's cache, which a day of edits and hovers fills.
        let mut seen: std::collections::HashSet<ContentKey> = {
            let c = read(&self.catalogs);
            let mut held = c.passages.stored_keys(&snapshot.path);
            held.extend(c.tunes.stored_keys(&snapshot.path));
            held.into_iter().collect()
        };
        let mut keys = Vec::new();
        let mut tunes = Vec::new();
        let levels = snapshot.record.units.iter().map(|u| u.level);
        for ((key, patches), l) in snapshot.units().zip(levels) {
            if level.is_some_and(|want| want != l) {
                continue;
            }
            if seen.insert(*key) && !self.store.has_vector(&self.model_id, key)? {
                keys.push(*key);
                tunes.push(patches.clone());
            }
        }
        if tunes.is_empty() {
            return Ok(false);
        }
        let vectors = self
            .queue
            .embed_music(tunes, Priority::Interactive)
            .map_err(AnalysisError::Model)?;
        let items: Vec<_> = keys.into_iter().zip(vectors).collect();
        self.store.put_vectors(&self.model_id, &items)?;
        Ok(true)
    }

    /// The tune vectors of an open document's snapshot, embedded now if `analyze` left them
    /// for later, and the tune catalog brought up to date. Requests that read tune vectors
    /// (header hover, code lens, classify, the genre action, tune-level similar) call it
    /// first; it must not be called holding the catalogs' lock.
    pub fn ensure_tunes(&self, snapshot: &Snapshot) -> Result<()> {
        if !self.embed_missing(snapshot, Some(Level::Tune))? {
            return Ok(());
        }
        let docs = lock(&self.docs);
        let current = docs.get(&snapshot.path).map(|d| d.version);
        if snapshot.version.is_some() && current == snapshot.version {
            self.put_in_catalogs(WORKSPACE, &snapshot.path, Some(snapshot.record.clone()))?;
        }
        Ok(())
    }

    /// `ensure_tunes` for the snapshot of `path` at `version`, on its own thread, once typing
    /// pauses ([`TUNES_AFTER`] without a newer version): a long tune is one model call of
    /// tens of milliseconds, which the next keystroke's windows would otherwise queue behind.
    fn tunes_later(&self, path: &str, version: i32) {
        let Some(host) = self.me.upgrade() else {
            return;
        };
        let path = path.to_owned();
        let spawned = std::thread::Builder::new()
            .name("tunelens-tunes".into())
            .spawn(move || {
                std::thread::sleep(TUNES_AFTER);
                let snapshot = {
                    let docs = lock(&host.docs);
                    match docs.get(&path) {
                        Some(d) if d.version == version => d.snapshot.clone(),
                        _ => None,
                    }
                };
                if let Some(snapshot) = snapshot {
                    if let Err(e) = host.ensure_tunes(&snapshot) {
                        tracing::debug!(error = %e, path = %path, "embedding the tune");
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start a thread for the tune vectors");
        }
    }

    /// True when `corpus`'s vectors live on the Milvus server (every corpus but the
    /// workspace, on a daemon started with one).
    fn on_server(&self, corpus: &str) -> bool {
        self.remote.is_some() && corpus != WORKSPACE
    }

    fn put_in_catalogs(&self, corpus: &str, path: &str, record: Option<FileRecord>) -> Result<()> {
        let mut c = write(&self.catalogs);
        match record {
            Some(record) if self.on_server(corpus) => {
                let record = shared_record(record);
                c.passages.upsert_record(corpus, record.clone())?;
                c.tunes.upsert_record(corpus, record)?;
            }
            Some(record) => {
                let mut vector = |k: &_| self.store.vector(&self.model_id, k);
                let record = shared_record(record);
                c.passages
                    .upsert_file(corpus, record.clone(), &mut vector)?;
                c.tunes.upsert_file(corpus, record, &mut vector)?;
            }
            None => {
                c.passages.remove_file(corpus, path)?;
                c.tunes.remove_file(corpus, path)?;
            }
        }
        Ok(())
    }

    /// Diagnostics of a snapshot: the ABC layer's, then each registered check's.
    pub fn diagnostics(&self, snapshot: &Snapshot) -> Vec<proto::Diagnostic> {
        let mut out = snapshot.diagnostics();
        out.extend(self.run_checks(snapshot).iter().cloned());
        out
    }

    /// The registered checks' findings in a snapshot; run once per text.
    /// The checks' findings for this exact text, if the diagnostics pass has run them. A
    /// hover never runs them itself: checking every window of a long tune against the
    /// corpora takes far longer than a hover may.
    fn cached_findings(&self, snapshot: &Snapshot) -> Option<Arc<Vec<proto::Diagnostic>>> {
        let hash = super::document::text_hash(snapshot.text());
        lock(&self.findings)
            .get(&snapshot.path)
            .filter(|(h, _)| *h == hash)
            .map(|(_, found)| found.clone())
    }

    fn run_checks(&self, snapshot: &Snapshot) -> Arc<Vec<proto::Diagnostic>> {
        let mut found = Vec::new();
        let checks = read(&self.checks);
        if !checks.is_empty() {
            let config = self.config();
            let c = read(&self.catalogs);
            // A newer version of an open document makes these findings useless.
            let cancelled = || {
                let newest = lock(&self.newest).get(&snapshot.path).copied();
                snapshot
                    .version
                    .is_some_and(|v| newest.is_some_and(|n| n != v))
            };
            for check in checks.iter() {
                match check.check(snapshot, &c.passages, &c.tunes, &config, &cancelled) {
                    Some(diagnostics) => found.extend(diagnostics),
                    // Not cached: nothing asks for a stale version's findings again.
                    None => return Arc::new(Vec::new()),
                }
            }
        }
        let found = Arc::new(found);
        let hash = super::document::text_hash(snapshot.text());
        lock(&self.findings).insert(snapshot.path.clone(), (hash, found.clone()));
        found
    }

    // ---- answers -------------------------------------------------------------------------

    fn indexing_note(&self) -> Option<String> {
        let busy =
            self.indexing.load(Ordering::Relaxed) > 0 || !self.loaded.load(Ordering::Relaxed);
        let indexing = busy.then(|| {
            format!(
                "indexing… {}/{} files",
                self.files_done.load(Ordering::Relaxed),
                self.files_total.load(Ordering::Relaxed)
            )
        });
        let down = self.remote.as_ref().filter(|r| !r.is_up()).map(|r| {
            format!(
                "Milvus at {} is unreachable: workspace matches only",
                r.uri()
            )
        });
        match (indexing, down) {
            (Some(a), Some(b)) => Some(format!("{a}; {b}")),
            (a, b) => a.or(b),
        }
    }

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
        let at = params.range.map_or(params.position, |r| r.start);
        let k = params.k.unwrap_or(10).clamp(1, 1000) as usize;
        if params.level == proto::Level::Tune {
            self.ensure_tunes(snapshot)?;
        }
        let (filters, grouping) = filters_of(&params.filters)?;
        let c = read(&self.catalogs);
        let catalog = c.of(params.level);
        let rhythm = self.rhythm_predictions(&filters, catalog)?;
        let how = Refine {
            filters: (!filters.is_empty()).then_some(&filters),
            rhythm: rhythm.as_ref(),
            grouping,
        };
        features::similar(
            snapshot,
            self.query_context(catalog, &c.tunes),
            snapshot.offset(at),
            params.level,
            k,
            &how,
            &self.files,
        )?
        .ok_or_else(|| {
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
        let how = Refine {
            filters: (!filters.is_empty()).then_some(&filters),
            rhythm: rhythm.as_ref(),
            grouping,
        };
        let hits = similar::search(self.query_context(catalog, &c.tunes), &vector, k, &how)?;
        Ok(proto::SearchResult {
            matches: hits.iter().map(features::to_hit).collect(),
        })
    }

    /// Where a query reads the index: `catalog`, with tune vectors from the in-memory `tunes`.
    fn query_context<'a>(&'a self, catalog: &'a Catalog, tunes: &'a Catalog) -> QueryContext<'a> {
        QueryContext {
            store: &self.store,
            model: &self.model_id,
            catalog,
            tunes: Some(tunes),
        }
    }

    /// The tune types of the catalog's tunes without `R:`, when a rhythm filter needs them:
    /// from the model's `rhythm` head, or zero-shot (the shipped `rhythm` set, or the
    /// configuration's own of that name, which also wins over the head).
    fn rhythm_predictions(
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
    fn label_set(&self, name: &str) -> Result<Labels> {
        if let Some(s) = lock(&self.labels).get(name) {
            return Ok(s.clone());
        }
        let set = match read(&self.config).label_sets.get(name) {
            Some(labels) => LabelSet::new(labels.clone(), DEFAULT_TEMPLATE)?,
            None => LabelSet::shipped(name)?,
        };
        self.embed_labels(name, set)
    }

    fn embed_labels(&self, name: &str, set: LabelSet) -> Result<Labels> {
        let vectors = self.embed_text_cached(set.prompts())?;
        let entry = Arc::new((set, vectors));
        lock(&self.labels).insert(name.to_owned(), entry.clone());
        Ok(entry)
    }

    /// The vectors of `texts`, from the content cache where they are there, the others
    /// embedded in one batch and cached. Label prompts are the same every run: once cached,
    /// a daemon never loads the text tower for them (see `Clamp`'s lazy external tower).
    fn embed_text_cached(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>> {
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
    fn head(&self, name: &str) -> Option<&Head> {
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

    /// One lens per tune header: "genre: jig 0.81 · reel 0.11".
    pub fn code_lenses(&self, snapshot: &Snapshot) -> Result<Vec<proto::Lens>> {
        self.ensure_tunes(snapshot)?;
        let (_, set) = self.genre_field();
        let mut out = Vec::new();
        for tune in &snapshot.file.tunes {
            let scores = self.label_scores(snapshot, tune.index, set)?;
            let line = snapshot.lines.position(snapshot.text(), tune.range.start);
            out.push(proto::Lens {
                range: proto::Range {
                    start: line,
                    end: line,
                },
                title: features::lens_title(scores.as_deref(), self.indexing_note().as_deref()),
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
        })
    }

    fn store_info(&self) -> proto::StoreInfo {
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

    /// Loads the catalogs from sled, then indexes `roots` (folder, corpus) and the configured
    /// corpora, on a background thread. Requests are answered meanwhile.
    pub fn start(self: &Arc<Self>, workspace: Vec<PathBuf>) {
        let mut roots: Vec<(PathBuf, String)> = workspace
            .into_iter()
            .map(|w| (w, WORKSPACE.to_owned()))
            .collect();
        for c in &read(&self.config).corpora {
            let p = PathBuf::from(c);
            let name = corpus_name(&p);
            roots.push((p, name));
        }
        let host = self.clone();
        self.indexing.fetch_add(1, Ordering::SeqCst);
        std::thread::Builder::new()
            .name("tunelens-index".into())
            .spawn(move || {
                host.emit(IndexEvent::Begin {
                    title: "tunelens: loading the index".into(),
                });
                if let Some(remote) = &host.remote {
                    // Before loading: the catalogs search the server from their first query.
                    remote.probe();
                }
                let message = match host.load_catalogs() {
                    Ok(()) => {
                        let c = read(&host.catalogs);
                        format!("{} passages, {} tunes", c.passages.len(), c.tunes.len())
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "loading the index");
                        format!("the index could not be loaded: {e}")
                    }
                };
                host.loaded.store(true, Ordering::SeqCst);
                // Closed here, not by the next phase: with no folder to index there is none.
                host.emit(IndexEvent::End { message });
                host.index_roots(roots);
                // Checking every corpus file read its record again: free what that left.
                release_free_memory();
                host.indexing.fetch_sub(1, Ordering::SeqCst);
                host.watch_remote();
            })
            .expect("spawning the index thread");
    }

    /// On Milvus: while the server is down, asks every few seconds whether it is back, and
    /// then indexes the reference corpora again, which pushes what was missed (files whose
    /// push did not finish have no `synced` marker) and skips the rest.
    fn watch_remote(self: &Arc<Self>) {
        let Some(remote) = self.remote.clone() else {
            return;
        };
        let me = self.me.clone();
        let spawned = std::thread::Builder::new()
            .name("tunelens-milvus".into())
            .spawn(move || loop {
                std::thread::sleep(PROBE_EVERY);
                let Some(host) = me.upgrade() else { return };
                if host.cancel.load(Ordering::Relaxed) {
                    return;
                }
                if remote.is_up() || !remote.probe() {
                    continue;
                }
                let roots: Vec<(PathBuf, String)> = lock(&host.roots)
                    .iter()
                    .filter(|(_, c)| c != WORKSPACE)
                    .cloned()
                    .collect();
                if !roots.is_empty() {
                    host.clone().index_in_background(roots);
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the Milvus watcher");
        }
    }

    fn load_catalogs(&self) -> Result<()> {
        let started = std::time::Instant::now();
        let [passages, tunes] = match &self.remote {
            Some(remote) => Catalog::load_both_tiered(
                &self.store,
                &self.model_id,
                PRECISION,
                remote,
                &[WORKSPACE.to_owned()],
            )?,
            None => Catalog::load_both(&self.store, &self.model_id, PRECISION)?,
        };
        let mut c = write(&self.catalogs);
        // Documents opened while loading stay as the editor has them.
        let open: Vec<(String, Arc<FileRecord>)> = c
            .tunes
            .shared_files()
            .map(|(corpus, r)| (corpus.to_owned(), r))
            .collect();
        *c = Catalogs { passages, tunes };
        for (corpus, record) in open {
            let mut vector = |k: &_| self.store.vector(&self.model_id, k);
            c.passages
                .upsert_file(&corpus, record.clone(), &mut vector)?;
            c.tunes.upsert_file(&corpus, record, &mut vector)?;
        }
        let (passages, tunes) = (c.passages.len(), c.tunes.len());
        drop(c);
        // The load read every vector through sled, which keeps most of those pages.
        if let Err(e) = self.store.release_cache() {
            tracing::warn!(error = %e, "reopening the index database to release its cache");
        }
        release_free_memory();
        tracing::info!(
            passages,
            tunes,
            ms = started.elapsed().as_millis() as u64,
            "index loaded"
        );
        Ok(())
    }

    fn index_in_background(self: Arc<Self>, roots: Vec<(PathBuf, String)>) {
        self.indexing.fetch_add(1, Ordering::SeqCst);
        std::thread::spawn(move || {
            self.index_roots(roots);
            self.indexing.fetch_sub(1, Ordering::SeqCst);
        });
    }

    /// Indexes whole folders (or files), then drops records of files under them that are gone.
    pub fn index_roots(&self, roots: Vec<(PathBuf, String)>) {
        for (root, corpus) in roots {
            let Ok(root) = std::fs::canonicalize(&root) else {
                tracing::warn!(root = %root.display(), "cannot index: no such folder");
                continue;
            };
            let new = {
                let mut known = lock(&self.roots);
                let new = !known.iter().any(|(r, _)| *r == root);
                if new {
                    known.push((root.clone(), corpus.clone()));
                }
                new
            };
            if new {
                if let Some(sink) = lock(&self.on_root).as_ref() {
                    sink(&root);
                }
            }
            let files = abc_files(&root);
            self.emit(IndexEvent::Begin {
                title: format!("tunelens: indexing {}", root.display()),
            });
            match self.index_paths(&files, &corpus, Some(&root)) {
                Ok(()) => {
                    if let Err(e) = self.drop_missing(&root, &corpus, &files) {
                        tracing::error!(error = %e, "dropping removed files");
                    }
                }
                Err(e) => tracing::error!(error = %e, root = %root.display(), "indexing"),
            }
            self.emit(IndexEvent::End {
                message: format!("{} files", files.len()),
            });
        }
        self.files_done.store(0, Ordering::Relaxed);
        self.files_total.store(0, Ordering::Relaxed);
    }

    /// Indexes files (canonical paths) into `corpus` and puts them in the catalogs.
    fn index_paths(&self, files: &[PathBuf], corpus: &str, root: Option<&Path>) -> Result<()> {
        let vectors = match &self.remote {
            Some(remote) if corpus != WORKSPACE => match remote.milvus() {
                Some(milvus) => Backend::Milvus(milvus),
                None => {
                    // Nothing can be pushed; the watcher indexes it when the server is back.
                    tracing::warn!(corpus, uri = %remote.uri(), "Milvus is down: indexing this corpus waits for it");
                    return Ok(());
                }
            },
            _ => Backend::Embedded,
        };
        self.files_total.fetch_add(files.len(), Ordering::Relaxed);
        let backend = self.queue.backend(Priority::Background);
        let options = IndexOptions {
            corpus: corpus.to_owned(),
            settings: self.settings,
            max_bytes: abc::DEFAULT_SIZE_LIMIT,
            batch: 64,
            roots: Vec::new(),
            collections_under: root.filter(|_| corpus != WORKSPACE).map(Path::to_owned),
        };
        for step in files.chunks(INDEX_STEP) {
            if self.cancel.load(Ordering::Relaxed) {
                break;
            }
            let _writing = lock(&self.writing);
            let report = match index_files_to(
                &self.store,
                &vectors,
                &backend,
                &self.model_id,
                step,
                &options,
                &|_| {},
                &self.cancel,
            ) {
                Ok(report) => report,
                Err(IndexError::Vectors(e)) => {
                    // What was pushed and recorded stays; the watcher resumes the rest.
                    if let Some(remote) = &self.remote {
                        remote.failed(&e);
                    }
                    return Err(AnalysisError::Model(e.to_string()));
                }
                Err(e) => return Err(AnalysisError::Model(e.to_string())),
            };
            for failed in &report.failed {
                tracing::warn!("{failed}");
            }
            for path in step {
                let name = path.display().to_string();
                if corpus == WORKSPACE && lock(&self.docs).contains_key(&name) {
                    continue; // the editor's text wins over the file's
                }
                // Most files are unchanged when a corpus is checked at start: their catalogs
                // keep the record they hold, and only the stamp is read to tell (reading every
                // record would fill sled's cache with them, and a new copy churn the heap).
                let stamp = self.store.stamp(corpus, &name)?;
                let held = read(&self.catalogs)
                    .tunes
                    .file(corpus, &name)
                    .is_some_and(|old| stamp.as_ref() == Some(&old.stamp()));
                if !held {
                    let record = self.store.file(corpus, &name)?;
                    self.put_in_catalogs(corpus, &name, record)?;
                }
            }
            let done = self.files_done.fetch_add(step.len(), Ordering::Relaxed) + step.len();
            self.emit(IndexEvent::Report {
                done,
                total: self.files_total.load(Ordering::Relaxed),
            });
        }
        Ok(())
    }

    fn drop_missing(&self, root: &Path, corpus: &str, files: &[PathBuf]) -> Result<()> {
        let seen: std::collections::HashSet<String> =
            files.iter().map(|p| p.display().to_string()).collect();
        for path in self.store.paths(corpus)? {
            if Path::new(&path).starts_with(root) && !seen.contains(&path) {
                self.forget(corpus, &path)?;
            }
        }
        Ok(())
    }

    fn forget(&self, corpus: &str, path: &str) -> Result<()> {
        let _writing = lock(&self.writing);
        if self.on_server(corpus) {
            if let (Some(record), Some(milvus)) = (
                self.store.file(corpus, path)?,
                self.remote.as_ref().and_then(|r| r.milvus()),
            ) {
                // Rows left behind while the server is down are harmless: a row no record
                // names is never an answer (`Catalog::ranked`).
                if let Err(e) =
                    sync::forget_file(&self.store, &Backend::Milvus(milvus), corpus, &record)
                {
                    tracing::warn!(error = %e, path, "removing a file's rows from Milvus");
                }
            }
        }
        self.store.remove_file(corpus, path)?;
        if !(corpus == WORKSPACE && lock(&self.docs).contains_key(path)) {
            self.put_in_catalogs(corpus, path, None)?;
        }
        Ok(())
    }

    /// Files that changed on disk (from the watcher): re-indexed when they exist, forgotten
    /// when they are gone (deleted, or the old name of a rename).
    pub fn files_changed(&self, paths: &[PathBuf]) {
        let roots = lock(&self.roots).clone();
        for path in paths {
            let Some((root, corpus)) = roots.iter().find(|(r, _)| path.starts_with(r)) else {
                continue;
            };
            let name = path.display().to_string();
            lock(&self.disk).remove(&name);
            let result = if path.is_file() {
                self.indexing.fetch_add(1, Ordering::SeqCst);
                let r = self.index_paths(std::slice::from_ref(path), corpus, Some(root));
                self.indexing.fetch_sub(1, Ordering::SeqCst);
                r
            } else {
                self.forget(corpus, &name)
            };
            if let Err(e) = result {
                tracing::warn!(error = %e, path = %name, "updating a changed file");
            }
        }
    }

    /// Re-indexes one file or folder (`uri`), or every root.
    pub fn reindex(self: &Arc<Self>, params: &proto::ReindexParams) -> Result<()> {
        let roots = match &params.uri {
            Some(u) => {
                let path = PathBuf::from(path_of(u)?);
                let known = lock(&self.roots).clone();
                let corpus = known
                    .iter()
                    .find(|(r, _)| path.starts_with(r))
                    .map_or_else(|| WORKSPACE.to_owned(), |(_, c)| c.clone());
                vec![(path, corpus)]
            }
            None => lock(&self.roots).clone(),
        };
        self.clone().index_in_background(roots);
        Ok(())
    }

    /// The folders indexed, for the watcher.
    pub fn roots(&self) -> Vec<PathBuf> {
        lock(&self.roots).iter().map(|(r, _)| r.clone()).collect()
    }

    pub fn is_indexing(&self) -> bool {
        self.indexing.load(Ordering::Relaxed) > 0 || !self.loaded.load(Ordering::Relaxed)
    }

    /// Stops indexing between batches (on shutdown); what was indexed is kept.
    pub fn stop(&self) {
        self.cancel.store(true, Ordering::SeqCst);
        let _ = self.store.flush();
    }

    fn emit(&self, event: IndexEvent) {
        if let Some(sink) = lock(&self.progress).as_ref() {
            sink(event);
        }
    }
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

/// The canonical path of a `file://` URI (the path itself when the file does not exist).
pub fn path_of(uri_text: &str) -> Result<String> {
    let path = uri::to_path(uri_text).ok_or_else(|| AnalysisError::BadUri(uri_text.to_owned()))?;
    Ok(std::fs::canonicalize(&path)
        .unwrap_or(path)
        .display()
        .to_string())
}

fn corpus_name(root: &Path) -> String {
    root.file_name()
        .map_or_else(|| "corpus".to_owned(), |n| n.to_string_lossy().into_owned())
}

/// The ABC and MusicXML files under `root` (or `root` itself), sorted, canonical.
pub fn abc_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            if let Ok(entries) = std::fs::read_dir(&p) {
                for e in entries.flatten() {
                    let name = e.file_name();
                    if !name.to_string_lossy().starts_with('.') {
                        stack.push(e.path());
                    }
                }
            }
        } else if is_music_file(&p) {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// What indexing and the watcher take: ABC, and MusicXML (converted by the indexing job).
pub fn is_music_file(p: &Path) -> bool {
    p.extension().is_some_and(|e| e.eq_ignore_ascii_case("abc"))
        || tunelens_models::musicxml::is_musicxml_path(p)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A handler that panicked holding the lock left consistent data (every update is one
    // assignment); keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}
