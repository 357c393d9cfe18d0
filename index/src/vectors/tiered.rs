//! The daemon's vectors on a Milvus deployment: the user's own corpora (the workspace) in
//! memory, the reference corpora on the server. A daemon must keep answering while the
//! server is down or restarting, so the server is reached through a [`Remote`] that knows
//! whether it is up, and a query made while it is down answers from the rows in memory
//! without waiting on the network. A background probe ([`Remote::probe`]) brings it back.
//!
//! Why the workspace stays local: it changes with every keystroke (a hover after an edit
//! must not wait on a round trip), and a composer's drafts are not the team's corpus.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use super::{
    Filter, FlatVectors, Milvus, MilvusConfig, MilvusVectors, Result, Row, RowId, VectorError,
    VectorHit, VectorStore,
};
use crate::search::Precision;

/// Whether the server answered the last time it was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Not asked yet (the daemon is starting).
    Unknown,
    Up,
    Down {
        since: SystemTime,
        error: String,
    },
}

/// The longest a daemon's search waits on the server before answering from memory and
/// counting the server down (the configured timeout, when shorter): an editor's request must
/// not wait out a hung server's RPC timeout.
pub const SEARCH_DEADLINE: Duration = Duration::from_secs(1);

/// One model's collection on a Milvus server, connected on demand.
pub struct Remote {
    config: MilvusConfig,
    model: String,
    dim: usize,
    state: Mutex<State>,
}

struct State {
    collection: Option<MilvusVectors>,
    health: Health,
}

impl Remote {
    /// Nothing is contacted until [`probe`](Self::probe).
    pub fn new(config: MilvusConfig, model: &str, dim: usize) -> Self {
        Self {
            config,
            model: model.to_owned(),
            dim,
            state: Mutex::new(State {
                collection: None,
                health: Health::Unknown,
            }),
        }
    }

    pub fn uri(&self) -> &str {
        &self.config.uri
    }

    pub fn health(&self) -> Health {
        self.lock().health.clone()
    }

    pub fn is_up(&self) -> bool {
        self.lock().health == Health::Up
    }

    /// The collection while the server is up, its searches bounded by [`SEARCH_DEADLINE`];
    /// `None` (at once) while it is down.
    pub fn collection(&self) -> Option<MilvusVectors> {
        let state = self.lock();
        match state.health {
            Health::Up => state
                .collection
                .clone()
                .map(|c| c.within(self.config.timeout.min(SEARCH_DEADLINE))),
            _ => None,
        }
    }

    /// The connection, for the indexing job's pushes, while the server is up.
    pub fn milvus(&self) -> Option<Milvus> {
        self.collection().map(|c| c.milvus().clone())
    }

    /// Connects (or checks the connection) now: creates the collection when missing and
    /// counts its rows. Returns whether the server is up; records the answer.
    pub fn probe(&self) -> bool {
        let existing = self.lock().collection.clone();
        let result = match existing {
            Some(c) => c.count(&Filter::default()).map(|_| c),
            None => Milvus::connect(self.config.clone())
                .and_then(|m| m.collection(&self.model, self.dim))
                .and_then(|c| c.count(&Filter::default()).map(|_| c)),
        };
        match result {
            Ok(c) => {
                let mut state = self.lock();
                if state.health != Health::Up {
                    tracing::info!(uri = %self.config.uri, "Milvus is up");
                }
                state.collection = Some(c);
                state.health = Health::Up;
                true
            }
            Err(e) => {
                self.failed(&e);
                false
            }
        }
    }

    /// Records that a call failed: the server is down until a probe says otherwise.
    pub fn failed(&self, e: &VectorError) {
        let mut state = self.lock();
        if !matches!(state.health, Health::Down { .. }) {
            tracing::warn!(uri = %self.config.uri, error = %e, "Milvus is down: answering from the workspace only");
            state.health = Health::Down {
                since: SystemTime::now(),
                error: e.to_string(),
            };
        }
        // A refusal (not a dead server) also drops the connection: the next probe starts
        // over, which is what a restarted server needs.
        state.collection = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        crate::locks::lock(&self.state)
    }
}

/// Rows of `local` corpora in memory, the others on the [`Remote`].
pub struct Tiered {
    local: FlatVectors,
    local_corpora: Vec<String>,
    remote: std::sync::Arc<Remote>,
}

impl Tiered {
    pub fn new(
        remote: std::sync::Arc<Remote>,
        local_corpora: Vec<String>,
        precision: Precision,
    ) -> Result<Self> {
        Ok(Self {
            local: FlatVectors::with_precision(remote.dim, precision)?,
            local_corpora,
            remote,
        })
    }

    fn is_local(&self, corpus: &str) -> bool {
        self.local_corpora.iter().any(|c| c == corpus)
    }

    /// What the server can answer of `filter`: `None` when it holds nothing it selects.
    fn remote_filter(&self, filter: &Filter) -> Option<Filter> {
        if filter.corpora.is_empty() {
            return Some(filter.clone());
        }
        let corpora: Vec<String> = filter
            .corpora
            .iter()
            .filter(|c| !self.is_local(c))
            .cloned()
            .collect();
        let level = filter.level;
        (!corpora.is_empty()).then_some(Filter { corpora, level })
    }

    /// Runs `f` on the server while it is up; a failure marks it down and gives `None`.
    fn remote<T>(&self, f: impl FnOnce(&MilvusVectors) -> Result<T>) -> Option<T> {
        let collection = self.remote.collection()?;
        match f(&collection) {
            Ok(v) => Some(v),
            Err(e) => {
                self.remote.failed(&e);
                None
            }
        }
    }

    /// `ask` of the local rows, then of the server for the ids they lack (nothing from the
    /// server while it is down).
    fn local_then_remote<T>(
        &self,
        ids: &[RowId],
        ask: impl Fn(&dyn VectorStore, &[RowId]) -> Result<HashMap<RowId, T>>,
    ) -> Result<HashMap<RowId, T>> {
        let mut found = ask(&self.local, ids)?;
        let missing: Vec<RowId> = ids
            .iter()
            .filter(|id| !found.contains_key(id))
            .copied()
            .collect();
        if !missing.is_empty() {
            if let Some(more) = self.remote(|c| ask(c, &missing)) {
                found.extend(more);
            }
        }
        Ok(found)
    }
}

impl VectorStore for Tiered {
    fn dim(&self) -> usize {
        self.local.dim()
    }

    fn shrink_to_fit(&self) {
        self.local.shrink_to_fit();
    }

    fn local_vector(&self, id: &RowId) -> Option<Vec<f32>> {
        self.local.local_vector(id)
    }

    /// Only the local corpora's rows are written here: the indexing job writes the server's
    /// (and its catalogs insert those records without vectors).
    fn upsert(&self, rows: &[Row<'_>]) -> Result<()> {
        let local: Vec<Row<'_>> = rows
            .iter()
            .filter(|r| self.is_local(r.corpus))
            .cloned()
            .collect();
        self.local.upsert(&local)
    }

    fn delete_file(&self, corpus: &str, path: &str) -> Result<()> {
        if self.is_local(corpus) {
            self.local.delete_file(corpus, path)
        } else {
            // The job's `sync::forget_file` removes the server's rows with the record.
            Ok(())
        }
    }

    fn delete_corpus(&self, corpus: &str) -> Result<()> {
        if self.is_local(corpus) {
            self.local.delete_corpus(corpus)
        } else {
            Ok(())
        }
    }

    /// Ids name no corpus; a catalog deletes ids only of rows it wrote, which are local.
    fn delete(&self, ids: &[RowId]) -> Result<()> {
        self.local.delete(ids)
    }

    fn top_k(
        &self,
        query: &[f32],
        k: usize,
        filter: &Filter,
        keep: &(dyn Fn(RowId) -> bool + Sync),
    ) -> Result<Vec<VectorHit>> {
        let mut hits = self.local.top_k(query, k, filter, keep)?;
        if let Some(remote_filter) = self.remote_filter(filter) {
            if let Some(more) = self.remote(|c| c.top_k(query, k, &remote_filter, keep)) {
                // A row in both (a workspace file also pushed by `tunelens index`): the
                // local one is the fresher.
                let seen: std::collections::HashSet<RowId> = hits.iter().map(|h| h.id).collect();
                hits.extend(more.into_iter().filter(|h| !seen.contains(&h.id)));
                hits.sort_by(|a, b| b.score.total_cmp(&a.score));
                hits.truncate(k);
            }
        }
        Ok(hits)
    }

    fn vectors(&self, ids: &[RowId]) -> Result<HashMap<RowId, Vec<f32>>> {
        self.local_then_remote(ids, |store, ids| store.vectors(ids))
    }

    fn scores(&self, query: &[f32], ids: &[RowId]) -> Result<HashMap<RowId, f32>> {
        self.local_then_remote(ids, |store, ids| store.scores(query, ids))
    }

    fn count(&self, filter: &Filter) -> Result<usize> {
        let local = self.local.count(filter)?;
        let remote = self
            .remote_filter(filter)
            .and_then(|f| self.remote(|c| c.count(&f)))
            .unwrap_or(0);
        Ok(local + remote)
    }
}
