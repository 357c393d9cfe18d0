//! The analysis host: the one owner of state behind both servers. It holds the open
//! documents, the in-memory catalogs (updated file by file), the sled store and the model
//! queue. This file keeps the state and the documents (open, change, analyse, snapshots,
//! checks); `requests.rs` answers (hover, similar, search, labels, status) and `workspace.rs`
//! indexes roots and follows the disk, both as `impl Host` blocks over the same state. Every
//! method is synchronous; the servers call them from blocking tasks.
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
use super::lines::apply_change;
use super::uri;
use crate::queue::{EmbedQueue, Priority};
use tunelens_index::labels::{LabelError, LabelSet};
use tunelens_index::locks::{lock, read, write};
use tunelens_index::search::Precision;
use tunelens_index::vectors::{MilvusConfig, Remote};
use tunelens_index::{
    shared_record, Catalog, ContentKey, FileCache, FileRecord, QueryError, Store, StoreError,
    UnitSettings,
};
use tunelens_models::heads::Head;

/// The corpus of the user's own files (workspace folders and open documents).
pub const WORKSPACE: &str = "workspace";

/// Files not open in the editor that requests asked about, kept analysed.
const DISK_SNAPSHOTS: usize = 8;

/// How long an open document must stay unchanged before its tune vectors are refreshed.
const TUNES_AFTER: std::time::Duration = std::time::Duration::from_millis(300);

/// How often a daemon on Milvus asks a server that is down whether it is back.
pub(super) const PROBE_EVERY: std::time::Duration = std::time::Duration::from_secs(3);

/// How often the index database's cache keeper looks, and after how many operations it
/// reopens the database (see `Host::keep_store_cache_small`). An edit costs ~10 operations
/// and each may bring in a page of a few KB: this bounds what piles up to a few MB.
pub(super) const STORE_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(2);
pub(super) const RELEASE_STORE_AFTER: u64 = 2048;

/// Files per indexing step: after each, the catalogs gain the step's files.
pub(super) const INDEX_STEP: usize = 32;

/// The daemon's catalogs keep only int8 vectors: a quarter of the memory of its largest
/// structure (the f32 ones stay in sled for the CLI); a cosine moves by ~5e-4, less than any
/// difference between passages a user would act on.
pub(super) const PRECISION: Precision = Precision::Int8;

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
    #[error(
        "{client} speaks tunelens protocol {theirs}, this server {}",
        proto::PROTOCOL_VERSION
    )]
    VersionMismatch { client: String, theirs: u32 },
}

/// The answer to `tunelens/handshake`, the same on both transports: who this server is, or a
/// version mismatch.
pub fn handshake(params: &proto::HandshakeParams) -> Result<proto::HandshakeResult> {
    if params.protocol_version != proto::PROTOCOL_VERSION {
        return Err(AnalysisError::VersionMismatch {
            client: params.client_name.clone(),
            theirs: params.protocol_version,
        });
    }
    Ok(proto::HandshakeResult {
        server_name: "tunelens".into(),
        server_version: env!("CARGO_PKG_VERSION").into(),
        protocol_version: proto::PROTOCOL_VERSION,
    })
}

pub type Result<T> = std::result::Result<T, AnalysisError>;

impl AnalysisError {
    /// The JSON-RPC error code both servers answer this error with.
    pub fn rpc_code(&self) -> i64 {
        use proto::jsonrpc::codes;
        match self {
            AnalysisError::Cancelled => codes::CONTENT_MODIFIED,
            AnalysisError::BadUri(_)
            | AnalysisError::InvalidParams(_)
            | AnalysisError::Labels(_) => codes::INVALID_PARAMS,
            AnalysisError::BadDocument { .. } => codes::BAD_DOCUMENT,
            AnalysisError::Indexing(_) => codes::INDEXING,
            AnalysisError::VersionMismatch { .. } => codes::VERSION_MISMATCH,
            _ => codes::INTERNAL_ERROR,
        }
    }
}

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
pub(super) type DiskDoc = ([u8; 32], Arc<Snapshot>);

/// A label set with its prompts' vectors.
pub(super) type Labels = Arc<(LabelSet, Vec<Vec<f32>>)>;

pub(super) type ProgressSink = Box<dyn Fn(IndexEvent) + Send + Sync>;

/// A text's hash and what the registered checks found in it.
pub(super) type CheckFindings = ([u8; 32], Arc<Vec<proto::Diagnostic>>);

pub(super) struct Doc {
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
    pub(super) store: Store,
    /// The server holding the reference corpora's vectors, when there is one.
    pub(super) remote: Option<Arc<Remote>>,
    pub(super) queue: EmbedQueue,
    pub(super) model_id: String,
    pub(super) model_name: String,
    pub(super) device: String,
    pub(super) config: RwLock<proto::Config>,
    pub(super) settings: UnitSettings,
    pub(super) catalogs: RwLock<Catalogs>,
    /// True once the catalogs hold what sled had at start.
    pub(super) loaded: AtomicBool,
    pub(super) docs: Mutex<HashMap<String, Doc>>,
    /// The newest version of each open document, apart from `docs`: a check that holds the
    /// catalogs asks it whether to give up, and analysis holds `docs` while it waits for the
    /// catalogs (taking `docs` there would deadlock).
    pub(super) newest: Mutex<HashMap<String, i32>>,
    /// Files on disk read for the socket, by path: their text's hash and snapshot.
    pub(super) disk: Mutex<HashMap<String, DiskDoc>>,
    pub(super) labels: Mutex<HashMap<String, Labels>>,
    pub(super) heads: Vec<Head>,
    /// Folders indexed and watched, with their corpus.
    pub(super) roots: Mutex<Vec<(PathBuf, String)>>,
    pub(super) indexing: AtomicUsize,
    pub(super) files_done: AtomicUsize,
    pub(super) files_total: AtomicUsize,
    pub(super) cancel: AtomicBool,
    pub(super) progress: Mutex<Option<ProgressSink>>,
    pub(super) checks: RwLock<Vec<Box<dyn DocumentCheck>>>,
    /// The checks' findings of the newest text of each document, by path (keyed by the
    /// text's hash), so a hover inside one can show it without running the checks again.
    pub(super) findings: Mutex<HashMap<String, CheckFindings>>,
    /// Matched corpus files, kept parsed for explanations between requests.
    pub(super) files: FileCache,
    /// Held by each indexing step (read, embed, write) and each forgetting of a file, so a
    /// file deleted while a step is embedding it is forgotten after the step writes it, never
    /// before (which would bring the deleted file back).
    pub(super) writing: Mutex<()>,
    /// The host itself, for work it starts on other threads.
    pub(super) me: std::sync::Weak<Host>,
    /// Called with each new root before its files are listed (the watcher), so a change made
    /// while the root is being indexed is never missed.
    pub(super) on_root: Mutex<Option<RootSink>>,
    /// Told when an open document's tune vectors land, so that its client asks for the code
    /// lenses again; set only for a client that can be asked (`workspace/codeLens/refresh`).
    /// While it is set, lenses of a document being typed answer from `lens_memory` instead of
    /// embedding the whole tune on every keystroke's way.
    pub(super) on_tunes: Mutex<Option<TunesSink>>,
    /// The last label scores of each open document's tunes, by (path, tune index).
    pub(super) lens_memory: Mutex<HashMap<(String, usize), Vec<proto::LabelScore>>>,
}

/// Where new roots go (see [`Host::set_root_sink`]).
pub type RootSink = Box<dyn Fn(&Path) + Send + Sync>;

/// Told the path of an open document whose tune vectors were just embedded (see
/// [`Host::set_tunes_sink`]).
pub type TunesSink = Box<dyn Fn(&str) + Send + Sync>;

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
            on_tunes: Mutex::new(None),
            lens_memory: Mutex::new(HashMap::new()),
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

    /// Where the news goes that an open document's tune vectors were embedded (the LSP asks
    /// its client to refresh the code lenses).
    pub fn set_tunes_sink(&self, sink: TunesSink) {
        *lock(&self.on_tunes) = Some(sink);
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
        lock(&self.lens_memory).retain(|(p, _), _| *p != path);
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

    pub(super) fn disk_snapshot(&self, uri_text: &str, path: &str) -> Result<Arc<Snapshot>> {
        let bad = |reason: String| AnalysisError::BadDocument {
            path: path.to_owned(),
            reason,
        };
        let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        // A MusicXML score is its ABC conversion, as the index read it: positions are in that
        // text (`tunelens patches FILE` prints it), and results name measures.
        let source = if tunelens_models::musicxml::is_musicxml_path(std::path::Path::new(path)) {
            let converted = tunelens_models::musicxml::convert_with(
                &bytes,
                path,
                tunelens_models::musicxml::Limits::default(),
            )
            .map_err(|e| bad(e.to_string()))?;
            abc::SourceText::from_text(converted.abc)
        } else {
            abc::SourceText::from_bytes(&bytes, abc::DEFAULT_SIZE_LIMIT)
                .map_err(|e| bad(e.to_string()))?
        };
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
    pub(super) fn embed_missing(&self, snapshot: &Snapshot, level: Option<Level>) -> Result<bool> {
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
    /// Embeds the snapshot's tunes that have no vector yet; whether any had to be.
    pub fn ensure_tunes(&self, snapshot: &Snapshot) -> Result<bool> {
        if !self.embed_missing(snapshot, Some(Level::Tune))? {
            return Ok(false);
        }
        let docs = lock(&self.docs);
        let current = docs.get(&snapshot.path).map(|d| d.version);
        if snapshot.version.is_some() && current == snapshot.version {
            self.put_in_catalogs(WORKSPACE, &snapshot.path, Some(snapshot.record.clone()))?;
        }
        Ok(true)
    }

    /// `ensure_tunes` for the snapshot of `path` at `version`, on its own thread, once typing
    /// pauses ([`TUNES_AFTER`] without a newer version): a long tune is one model call of
    /// tens of milliseconds, which the next keystroke's windows would otherwise queue behind.
    pub(super) fn tunes_later(&self, path: &str, version: i32) {
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
                    match host.ensure_tunes(&snapshot) {
                        Ok(true) => {
                            if let Some(sink) = lock(&host.on_tunes).as_ref() {
                                sink(&path);
                            }
                        }
                        Ok(false) => {}
                        Err(e) => tracing::debug!(error = %e, path = %path, "embedding the tune"),
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start a thread for the tune vectors");
        }
    }

    /// True when `corpus`'s vectors live on the Milvus server (every corpus but the
    /// workspace, on a daemon started with one).
    pub(super) fn on_server(&self, corpus: &str) -> bool {
        self.remote.is_some() && corpus != WORKSPACE
    }

    pub(super) fn put_in_catalogs(
        &self,
        corpus: &str,
        path: &str,
        record: Option<FileRecord>,
    ) -> Result<()> {
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
    pub(super) fn cached_findings(
        &self,
        snapshot: &Snapshot,
    ) -> Option<Arc<Vec<proto::Diagnostic>>> {
        let hash = super::document::text_hash(snapshot.text());
        lock(&self.findings)
            .get(&snapshot.path)
            .filter(|(h, _)| *h == hash)
            .map(|(_, found)| found.clone())
    }

    pub(super) fn run_checks(&self, snapshot: &Snapshot) -> Arc<Vec<proto::Diagnostic>> {
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

    pub(super) fn indexing_note(&self) -> Option<String> {
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
}

/// The canonical path of a `file://` URI (the path itself when the file does not exist).
pub fn path_of(uri_text: &str) -> Result<String> {
    let path = uri::to_path(uri_text).ok_or_else(|| AnalysisError::BadUri(uri_text.to_owned()))?;
    Ok(std::fs::canonicalize(&path)
        .unwrap_or(path)
        .display()
        .to_string())
}

/// A root's corpus name: its folder's name.
pub(super) fn corpus_name(root: &Path) -> String {
    root.file_name()
        .map_or_else(|| "corpus".to_owned(), |n| n.to_string_lossy().into_owned())
}
