//! The host's workspace: the roots it indexes (workspace folders and reference corpora) on
//! background threads, in steps, with cancellation; the catalogs loaded at start; files
//! changed, removed or renamed on disk; and the Milvus watch that re-indexes the reference
//! corpora once the server is back.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tunelens_models::abc::{self};
use tunelens_protocol as proto;

use super::host::*;
use crate::memory::release_free_memory;
use crate::queue::Priority;
use tunelens_index::locks::{lock, read, write};
use tunelens_index::vectors::{sync, Backend};
use tunelens_index::{Catalog, FileRecord, IndexError, IndexJob, IndexOptions};

impl Host {
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
                host.keep_store_cache_small();
            })
            .expect("spawning the index thread");
    }

    /// Runs `tick` on a thread of its own (`name`) every `period`, for as long as the host
    /// lives and is not cancelled, or until `tick` says to stop (false).
    fn every(
        self: &Arc<Self>,
        name: &str,
        period: std::time::Duration,
        mut tick: impl FnMut(&Arc<Host>) -> bool + Send + 'static,
    ) {
        let me = self.me.clone();
        let spawned = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || loop {
                std::thread::sleep(period);
                let Some(host) = me.upgrade() else { return };
                if host.cancel.load(Ordering::Relaxed) || !tick(&host) {
                    return;
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, thread = name, "cannot start a background thread");
        }
    }

    /// Reopens the index database, from a thread of its own, whenever enough operations have
    /// gone through it since it was last opened ([`RELEASE_STORE_AFTER`]): sled keeps every
    /// page that edits read and write (see [`Store::release_cache`]), and without this the
    /// daemon bench held ~35 MB more after its edits than once loaded. A request that
    /// arrives meanwhile waits for the reopening (37–137 ms in the bench, median 54), about
    /// once per 10 s of continuous editing.
    pub(super) fn keep_store_cache_small(self: &Arc<Self>) {
        self.every("tunelens-store", STORE_CHECK_EVERY, |host| {
            if host.store.touched() < RELEASE_STORE_AFTER {
                return true;
            }
            match host.store.release_cache() {
                Ok(true) => {
                    release_free_memory();
                    true
                }
                // Not reopened while an operation held the old handle: next time.
                Ok(false) => true,
                Err(e) => {
                    tracing::warn!(error = %e, "reopening the index database to release its cache");
                    false
                }
            }
        });
    }

    /// On Milvus: while the server is down, asks every few seconds whether it is back, and
    /// then indexes the reference corpora again, which pushes what was missed (files whose
    /// push did not finish have no `synced` marker) and skips the rest.
    pub(super) fn watch_remote(self: &Arc<Self>) {
        let Some(remote) = self.remote.clone() else {
            return;
        };
        self.every("tunelens-milvus", PROBE_EVERY, move |host| {
            if remote.is_up() || !remote.probe() {
                return true;
            }
            let roots: Vec<(PathBuf, String)> = lock(&host.roots)
                .iter()
                .filter(|(_, c)| c != WORKSPACE)
                .cloned()
                .collect();
            if !roots.is_empty() {
                host.clone().index_in_background(roots);
            }
            true
        });
    }

    pub(super) fn load_catalogs(&self) -> Result<()> {
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

    pub(super) fn index_in_background(self: Arc<Self>, roots: Vec<(PathBuf, String)>) {
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
    pub(super) fn index_paths(
        &self,
        files: &[PathBuf],
        corpus: &str,
        root: Option<&Path>,
    ) -> Result<()> {
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
            let job = IndexJob {
                store: &self.store,
                backend: &vectors,
                model: &backend,
                model_id: &self.model_id,
                options: &options,
                progress: &|_| {},
                cancel: &self.cancel,
            };
            let report = match job.run(step) {
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

    pub(super) fn drop_missing(&self, root: &Path, corpus: &str, files: &[PathBuf]) -> Result<()> {
        let seen: std::collections::HashSet<String> =
            files.iter().map(|p| p.display().to_string()).collect();
        for path in self.store.paths(corpus)? {
            if Path::new(&path).starts_with(root) && !seen.contains(&path) {
                self.forget(corpus, &path)?;
            }
        }
        Ok(())
    }

    pub(super) fn forget(&self, corpus: &str, path: &str) -> Result<()> {
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

    pub(super) fn emit(&self, event: IndexEvent) {
        if let Some(sink) = lock(&self.progress).as_ref() {
            sink(event);
        }
    }
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
