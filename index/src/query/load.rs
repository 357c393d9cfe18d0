//! Catalogs made: empty, loaded from the store in bulk (one level or both sharing records),
//! or over a tiered store (the workspace in memory, the rest on Milvus).

use super::*;

impl Catalog {
    /// An empty catalog of `level`, its vectors in memory.
    pub fn new(level: Level) -> Self {
        Self::with_precision(level, Precision::F32)
    }

    /// An empty catalog whose in-memory vectors are stored at `precision` (a daemon keeps
    /// int8: a quarter of the memory of its largest structure, cosines within ~5e-4).
    pub fn with_precision(level: Level, precision: Precision) -> Self {
        Self {
            level,
            by_path: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            rows: RowTable::default(),
            row_of: IdTable::default(),
            next_row: 0,
            vectors: None,
            precision,
            filter: Filter {
                corpora: Vec::new(),
                level: Some(level),
            },
            symbolic: SymbolicIndex::default(),
            instance: {
                static MADE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
                MADE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            },
            changes: HashMap::new(),
        }
    }

    /// Loads the units of `level` that `model` embedded, from `corpora` (all when empty), into
    /// memory (the embedded backend). An empty result is an error.
    pub fn load(
        store: &Store,
        model: &str,
        corpora: &[String],
        level: Level,
    ) -> Result<Self, QueryError> {
        Self::open(store, &Backend::Embedded, model, corpora, level)
    }

    /// As [`load`](Self::load), but an empty index gives an empty catalog (the daemon starts
    /// from nothing and fills it as it indexes).
    pub fn load_all(
        store: &Store,
        model: &str,
        corpora: &[String],
        level: Level,
    ) -> Result<Self, QueryError> {
        Self::open_all(store, &Backend::Embedded, model, corpora, level)
    }

    /// The catalog a one-shot job queries: the file records come from the local `store`, the
    /// vectors from `backend` (loaded into memory from the local cache, or searched on
    /// Milvus). An empty result is an error.
    pub fn open(
        store: &Store,
        backend: &Backend,
        model: &str,
        corpora: &[String],
        level: Level,
    ) -> Result<Self, QueryError> {
        let catalog = Self::open_all(store, backend, model, corpora, level)?;
        if catalog.is_empty() || catalog.vectors.is_none() {
            return Err(QueryError::Empty {
                corpora: if corpora.is_empty() {
                    String::new()
                } else {
                    format!(" in corpus {}", corpora.join(", "))
                },
                model: format!(" for model {model}"),
            });
        }
        Ok(catalog)
    }

    pub(super) fn open_all(
        store: &Store,
        backend: &Backend,
        model: &str,
        corpora: &[String],
        level: Level,
    ) -> Result<Self, QueryError> {
        let at = match backend {
            Backend::Embedded => VectorsAt::Memory,
            Backend::Milvus(milvus) => VectorsAt::Server(milvus),
        };
        let [catalog] = Self::open_levels(store, at, model, corpora, [level], Precision::F32)?;
        Ok(catalog)
    }

    /// One catalog per level, from one pass over the records, which they share.
    pub(super) fn open_levels<const N: usize>(
        store: &Store,
        at: VectorsAt<'_>,
        model: &str,
        corpora: &[String],
        levels: [Level; N],
        precision: Precision,
    ) -> Result<[Self; N], QueryError> {
        let names = if corpora.is_empty() {
            store.corpora()?
        } else {
            corpora.to_vec()
        };
        let mut catalogs = levels.map(|l| Self::with_precision(l, precision));
        for catalog in &mut catalogs {
            catalog.filter.corpora = corpora.to_vec();
            match &at {
                VectorsAt::Memory => {}
                VectorsAt::Server(milvus) => {
                    let remote = milvus.find(model)?.ok_or_else(|| QueryError::NotInMilvus {
                        uri: milvus.config().uri.clone(),
                        model: model.to_owned(),
                    })?;
                    catalog.vectors = Some(Box::new(remote));
                }
                VectorsAt::Tiered { remote, local } => {
                    catalog.vectors = Some(Box::new(Tiered::new(
                        Arc::clone(remote),
                        local.to_vec(),
                        precision,
                    )?));
                }
            }
        }
        let mut vector = |key: &ContentKey| store.vector(model, key);
        for corpus in &names {
            // Is this corpus's vectors read from the local cache into memory?
            let in_memory = match &at {
                VectorsAt::Memory => true,
                // The server holds the vectors (the indexing job wrote them).
                VectorsAt::Server(_) => false,
                VectorsAt::Tiered { local, .. } => local.contains(corpus),
            };
            for mut record in store.files(corpus)? {
                if record.model != model {
                    continue;
                }
                // The n-grams live on in the postings only (a fifth of a record's memory):
                // these records are replaced by fresh ones from the store or the editor when
                // their file changes, never inserted again from memory.
                let grams: Vec<Box<[u32]>> = record
                    .units
                    .iter_mut()
                    .map(|u| std::mem::take(&mut u.ngrams))
                    .collect();
                let record = shared_record(record);
                for catalog in &mut catalogs {
                    let vector = in_memory.then_some(&mut vector as &mut VectorOf<'_>);
                    catalog.insert(corpus, record.clone(), Some(&grams), vector)?;
                }
            }
        }
        for catalog in &mut catalogs {
            catalog.shrink_to_fit();
        }
        Ok(catalogs)
    }

    /// Gives back the spare capacity that loading file by file left in the maps, the vector
    /// store and the postings (a third of their memory or more, after a bulk load).
    pub fn shrink_to_fit(&mut self) {
        self.by_path.shrink_to_fit();
        self.slots.shrink_to_fit();
        self.rows.shrink_to_fit();
        self.row_of.shrink_to_fit(id_in(&self.rows));
        if let Some(v) = &self.vectors {
            v.shrink_to_fit();
        }
        self.symbolic.shrink_to_fit();
    }

    /// The passage and tune catalogs a daemon serves (see [`load_all`](Self::load_all)),
    /// sharing one copy of each file record, their vectors at `precision`.
    pub fn load_both(
        store: &Store,
        model: &str,
        precision: Precision,
    ) -> Result<[Self; 2], QueryError> {
        Self::open_levels(
            store,
            VectorsAt::Memory,
            model,
            &[],
            [Level::Passage, Level::Tune],
            precision,
        )
    }

    /// As [`load_both`](Self::load_both) for a daemon on Milvus: the `local` corpora's
    /// vectors in memory, the others' on the server (see [`Tiered`]).
    pub fn load_both_tiered(
        store: &Store,
        model: &str,
        precision: Precision,
        remote: &Arc<Remote>,
        local: &[String],
    ) -> Result<[Self; 2], QueryError> {
        Self::open_levels(
            store,
            VectorsAt::Tiered { remote, local },
            model,
            &[],
            [Level::Passage, Level::Tune],
            precision,
        )
    }
}
