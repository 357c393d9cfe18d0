//! The scale-out backend: Milvus through the official client (`milvus-sdk-rust`, ClientV2).
//!
//! One collection per (model id, dimension), named `{prefix}_s{schema}_{model}_d{dim}`, with
//! the row schema below; the collection's description carries the schema version, so a
//! collection of another layout is refused instead of misread. Vectors are stored normalised
//! and compared by inner product: the same cosine the embedded index computes.
//!
//! The client is async; the index is synchronous, so [`Milvus`] owns a small tokio runtime and
//! blocks on each call. Call it from plain threads (or `spawn_blocking` in an async server),
//! never from inside a tokio task.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use milvus::v2::prelude::*;
use tunelens_models::abc::Level;

use super::{normalised, Filter, Result, Row, RowId, VectorError, VectorHit, VectorStore};

/// Bumped when the fields below change meaning; part of every collection's name.
pub const VECTOR_SCHEMA: u32 = 1;

const PK: &str = "pk";
const VECTOR: &str = "embedding";
const CORPUS: &str = "corpus";
const PATH: &str = "path";
const UNIT: &str = "unit";
const LEVEL: &str = "level";
const CONTENT: &str = "content";

/// Rows per insert request: ~7 MB at 384 components, well under the server's 64 MB limit.
const WRITE_BATCH: usize = 4096;
/// Milvus caps top-k at 16384.
const MAX_LIMIT: usize = 16_384;

pub use super::milvus_config::{Consistency, IndexKind, MilvusConfig, Secret};

/// A connection to one Milvus server; cheap to clone.
#[derive(Clone)]
pub struct Milvus {
    inner: Arc<Inner>,
}

struct Inner {
    runtime: tokio::runtime::Runtime,
    client: ClientV2,
    config: MilvusConfig,
    /// Collections already checked (and created, indexed, loaded) in this process.
    ready: Mutex<HashMap<String, usize>>,
}

impl Milvus {
    /// Connects, failing with [`VectorError::Unavailable`] when nothing answers within the
    /// configured timeout.
    pub fn connect(config: MilvusConfig) -> Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("tunelens-milvus")
            .enable_all()
            .build()
            .map_err(|e| VectorError::Config(format!("cannot start the Milvus client: {e}")))?;
        let mut connect = ConnectConfig::new()
            .uri(config.uri.clone())
            .connect_timeout(config.timeout)
            .rpc_timeout(config.timeout.max(Duration::from_secs(30)))
            // The default retries for minutes; a one-shot job should say "down" quickly. The
            // indexing job resumes on its own when run again.
            .retry(
                RetryConfig::new()
                    .max_attempts(4)
                    .max_retry_timeout(config.timeout),
            )
            .telemetry(TelemetryConfig::new().enabled(false));
        if let Some(token) = &config.token {
            connect = connect.token(token.expose().to_owned());
        }
        let client = runtime
            .block_on(ClientV2::new(&connect))
            .map_err(|e| classify(&config.uri, "connect", e))?;
        Ok(Self {
            inner: Arc::new(Inner {
                runtime,
                client,
                config,
                ready: Mutex::new(HashMap::new()),
            }),
        })
    }

    pub fn config(&self) -> &MilvusConfig {
        &self.inner.config
    }

    pub fn collection_name(&self, model: &str, dim: usize) -> String {
        let model: String = model
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        format!(
            "{}_s{VECTOR_SCHEMA}_{model}_d{dim}",
            self.inner.config.prefix
        )
    }

    fn block<F: std::future::Future>(&self, f: F) -> F::Output {
        self.inner.runtime.block_on(f)
    }

    fn err(&self, op: &'static str) -> impl Fn(Error) -> VectorError + '_ {
        move |e| classify(&self.inner.config.uri, op, e)
    }

    /// Runs request `f` (operation `op`, for the error) to its end.
    fn call<T>(
        &self,
        op: &'static str,
        f: impl std::future::Future<Output = std::result::Result<T, Error>>,
    ) -> Result<T> {
        self.block(f).map_err(self.err(op))
    }

    /// [`Self::call`], given up after `deadline` when there is one: a server that hangs
    /// (accepts, never answers) is then "unavailable" at once, not after the client's retries
    /// and its 30 s RPC timeout.
    fn call_within<T>(
        &self,
        op: &'static str,
        deadline: Option<Duration>,
        f: impl std::future::Future<Output = std::result::Result<T, Error>>,
    ) -> Result<T> {
        let Some(d) = deadline else {
            return self.call(op, f);
        };
        match self.block(tokio::time::timeout(d, f)) {
            Ok(r) => r.map_err(self.err(op)),
            Err(_) => Err(VectorError::Unavailable {
                uri: self.inner.config.uri.clone(),
                op,
                message: format!("no answer within {} ms", d.as_millis()),
            }),
        }
    }

    /// The store of `model`'s vectors of `dim` components, created (with its index, loaded)
    /// when missing.
    pub fn collection(&self, model: &str, dim: usize) -> Result<MilvusVectors> {
        let name = self.collection_name(model, dim);
        let known = self
            .inner
            .ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&name);
        if !known {
            self.prepare(&name, model, dim)?;
            self.inner
                .ready
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(name.clone(), dim);
        }
        Ok(MilvusVectors {
            milvus: self.clone(),
            name,
            dim,
            deadline: None,
        })
    }

    /// The existing store of `model`'s vectors, whatever their dimension; `None` when nothing
    /// of that model was written (with this prefix and schema).
    pub fn find(&self, model: &str) -> Result<Option<MilvusVectors>> {
        let head = self.collection_name(model, 0);
        let head = head.trim_end_matches('0');
        let names = self.call(
            "list collections",
            self.inner.client.list_collections(
                ListCollectionsRequest::builder()
                    .build()
                    .map_err(|e| VectorError::Config(format!("list collections: {e}")))?,
            ),
        )?;
        let dim = names
            .collection_names()
            .iter()
            .find_map(|n| n.strip_prefix(head).and_then(|d| d.parse::<usize>().ok()));
        dim.map(|d| self.collection(model, d)).transpose()
    }

    fn prepare(&self, name: &str, model: &str, dim: usize) -> Result<()> {
        let client = &self.inner.client;
        let bad = |e: Error| VectorError::Config(format!("request for {name}: {e}"));
        let description = format!(
            "tunelens vectors schema {VECTOR_SCHEMA}; model {model}; dim {dim}; cosine on normalised vectors (IP)"
        );
        let exists = self
            .call(
                "has collection",
                client.has_collection(
                    HasCollectionRequest::builder()
                        .collection_name(name)
                        .build()
                        .map_err(bad)?,
                ),
            )?
            .exists();
        if exists {
            let found = self.call(
                "describe collection",
                client.describe_collection(
                    DescribeCollectionRequest::builder()
                        .collection_name(name)
                        .build()
                        .map_err(bad)?,
                ),
            )?;
            let text = found
                .description()
                .get_schema()
                .get_description()
                .to_owned();
            if !text.starts_with(&format!("tunelens vectors schema {VECTOR_SCHEMA};")) {
                return Err(VectorError::Schema {
                    collection: name.into(),
                    reason: format!(
                        "not written by this tunelens (description {text:?}); drop it or use another --milvus-prefix"
                    ),
                });
            }
        } else {
            let varchar = |n: &str, len: u32| {
                FieldSchema::new()
                    .name(n)
                    .data_type(DataType::VarChar)
                    .max_length(len)
            };
            let schema = CollectionSchema::new()
                .description(description.clone())
                .add_field(varchar(PK, 32).primary_key(true).auto_id(false))
                .add_field(
                    FieldSchema::new()
                        .name(VECTOR)
                        .data_type(DataType::FloatVector)
                        .dimension(dim as u32),
                )
                .add_field(varchar(CORPUS, 1024))
                .add_field(varchar(PATH, 65_535))
                .add_field(FieldSchema::new().name(UNIT).data_type(DataType::Int64))
                .add_field(varchar(LEVEL, 16))
                .add_field(varchar(CONTENT, 64));
            self.call(
                "create collection",
                client.create_collection(
                    CreateCollectionRequest::builder()
                        .collection_name(name)
                        .description(description)
                        .schema(schema)
                        .build()
                        .map_err(bad)?,
                ),
            )?;
            let (kind, params) = self.inner.config.index.build_params();
            self.call(
                "create index",
                client.create_index(
                    CreateIndexRequest::builder()
                        .collection_name(name)
                        .index_params(vec![IndexParam::new()
                            .field_name(VECTOR)
                            .index_type(kind)
                            .metric_type(MetricType::Ip)
                            .extra_params(params)])
                        .sync(false)
                        .build()
                        .map_err(bad)?,
                ),
            )?;
        }
        self.call(
            "load collection",
            client.load_collection(
                LoadCollectionRequest::builder()
                    .collection_name(name)
                    .timeout_ms(120_000)
                    .build()
                    .map_err(bad)?,
            ),
        )?;
        Ok(())
    }

    /// Removes a collection (tests, and `store migrate --rebuild`).
    pub fn drop_collection(&self, model: &str, dim: usize) -> Result<()> {
        let name = self.collection_name(model, dim);
        let client = &self.inner.client;
        let exists = self
            .call(
                "has collection",
                client.has_collection(
                    HasCollectionRequest::builder()
                        .collection_name(&name)
                        .build()
                        .map_err(|e| VectorError::Config(e.to_string()))?,
                ),
            )?
            .exists();
        if exists {
            self.call(
                "drop collection",
                client.drop_collection(
                    DropCollectionRequest::builder()
                        .collection_name(&name)
                        .build()
                        .map_err(|e| VectorError::Config(e.to_string()))?,
                ),
            )?;
        }
        self.inner
            .ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&name);
        Ok(())
    }
}

/// Transport failures and timeouts mean "down or restarting"; anything the server said is a
/// refusal.
fn classify(uri: &str, op: &'static str, e: Error) -> VectorError {
    let unavailable = match &e {
        Error::Grpc(_) | Error::Timeout(_) | Error::Cancelled(_) => true,
        Error::RetryExhausted { source, .. } => {
            matches!(**source, Error::Grpc(_) | Error::Timeout(_))
        }
        Error::Server(s) => {
            // A restarting server answers, but says its parts are not ready yet.
            let text = s.to_string().to_ascii_lowercase();
            text.contains("not ready")
                || text.contains("unavailable")
                || text.contains("not healthy")
                || text.contains("service not")
        }
        _ => false,
    };
    let message = e.to_string();
    if unavailable {
        VectorError::Unavailable {
            uri: uri.into(),
            op,
            message,
        }
    } else {
        VectorError::Refused {
            uri: uri.into(),
            op,
            message,
        }
    }
}

/// Milvus expression string literal.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Tune => "tune",
        Level::Bar => "bar",
        Level::Passage => "passage",
    }
}

fn expression(filter: &Filter) -> String {
    let mut parts = vec![format!("{PK} != \"\"")];
    if !filter.corpora.is_empty() {
        let list: Vec<String> = filter.corpora.iter().map(|c| quoted(c)).collect();
        parts.push(format!("{CORPUS} in [{}]", list.join(", ")));
    }
    if let Some(level) = filter.level {
        parts.push(format!("{LEVEL} == \"{}\"", level_name(level)));
    }
    parts.join(" && ")
}

/// One model's collection.
#[derive(Clone)]
pub struct MilvusVectors {
    milvus: Milvus,
    name: String,
    dim: usize,
    /// How long a search may take before the server counts as down (a daemon's, which must
    /// answer an editor); `None`: the client's own timeouts (a one-shot command).
    deadline: Option<Duration>,
}

impl MilvusVectors {
    /// The same collection, its searches given up after `deadline`.
    pub fn within(mut self, deadline: Duration) -> Self {
        self.deadline = Some(deadline);
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The server connection it came from.
    pub fn milvus(&self) -> &Milvus {
        &self.milvus
    }

    fn client(&self) -> &ClientV2 {
        &self.milvus.inner.client
    }

    fn bad(&self) -> impl Fn(Error) -> VectorError + '_ {
        move |e| VectorError::Config(format!("request for {}: {e}", self.name))
    }

    fn delete_where(&self, expr: String) -> Result<()> {
        self.milvus.call(
            "delete",
            self.client().delete(
                DeleteRequest::builder()
                    .collection_name(&self.name)
                    .filter(expr)
                    .build()
                    .map_err(self.bad())?,
            ),
        )?;
        Ok(())
    }

    /// Removes a file's rows from unit `first` on: what is left of an older, longer version of
    /// the file once the new one is upserted over the rest.
    pub fn delete_units_from(&self, corpus: &str, path: &str, first: usize) -> Result<()> {
        self.delete_where(format!(
            "{CORPUS} == {} && {PATH} == {} && {UNIT} >= {first}",
            quoted(corpus),
            quoted(path)
        ))
    }

    /// Seals what was written and waits until the vector index covers every row (HNSW and
    /// IVF search sealed segments by their index; growing ones are scanned).
    pub fn flush_and_wait_index(&self, timeout: Duration) -> Result<()> {
        self.milvus.call(
            "flush",
            self.client().flush(
                FlushRequest::builder()
                    .collection_names([self.name.as_str()])
                    .wait_flushed_ms(timeout.as_millis() as i64)
                    .build()
                    .map_err(self.bad())?,
            ),
        )?;
        let started = std::time::Instant::now();
        loop {
            let desc = self.milvus.call(
                "describe index",
                self.client().describe_index(
                    DescribeIndexRequest::builder()
                        .collection_name(&self.name)
                        .field_name(VECTOR)
                        .build()
                        .map_err(self.bad())?,
                ),
            )?;
            let done = desc
                .indexes()
                .iter()
                .all(|i| i.get_pending_rows() == 0 && i.get_indexed_rows() >= i.get_total_rows());
            if done {
                return Ok(());
            }
            if started.elapsed() > timeout {
                return Err(VectorError::Unavailable {
                    uri: self.milvus.inner.config.uri.clone(),
                    op: "index build",
                    message: format!("the index of {} is not built after {timeout:?}", self.name),
                });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl VectorStore for MilvusVectors {
    fn dim(&self) -> usize {
        self.dim
    }

    fn upsert(&self, rows: &[Row<'_>]) -> Result<()> {
        for chunk in rows.chunks(WRITE_BATCH) {
            let mut vectors = Vec::with_capacity(chunk.len());
            for row in chunk {
                if row.vector.len() != self.dim {
                    return Err(crate::search::SearchError::DimMismatch {
                        expected: self.dim,
                        got: row.vector.len(),
                    }
                    .into());
                }
                if row.vector.iter().any(|x| !x.is_finite()) {
                    return Err(crate::search::SearchError::NonFinite.into());
                }
                vectors.push(normalised(row.vector));
            }
            let columns = vec![
                FieldData::varchar(PK, chunk.iter().map(|r| r.id().hex()).collect()),
                FieldData::float_vector(VECTOR, vectors),
                FieldData::varchar(CORPUS, chunk.iter().map(|r| r.corpus.to_owned()).collect()),
                FieldData::varchar(PATH, chunk.iter().map(|r| r.path.to_owned()).collect()),
                FieldData::int64(UNIT, chunk.iter().map(|r| r.unit as i64).collect()),
                FieldData::varchar(
                    LEVEL,
                    chunk
                        .iter()
                        .map(|r| level_name(r.level).to_owned())
                        .collect(),
                ),
                FieldData::varchar(
                    CONTENT,
                    chunk
                        .iter()
                        .map(|r| r.key.0.iter().map(|b| format!("{b:02x}")).collect())
                        .collect(),
                ),
            ];
            let insert = InsertRequest::builder()
                .collection_name(&self.name)
                .columns(columns)
                .build()
                .map_err(self.bad())?;
            self.milvus.call(
                "upsert",
                self.client().upsert(
                    UpsertRequest::builder()
                        .insert(insert)
                        .build()
                        .map_err(self.bad())?,
                ),
            )?;
        }
        Ok(())
    }

    fn delete_file(&self, corpus: &str, path: &str) -> Result<()> {
        self.delete_where(format!(
            "{CORPUS} == {} && {PATH} == {}",
            quoted(corpus),
            quoted(path)
        ))
    }

    fn delete_corpus(&self, corpus: &str) -> Result<()> {
        self.delete_where(format!("{CORPUS} == {}", quoted(corpus)))
    }

    fn delete(&self, ids: &[RowId]) -> Result<()> {
        for chunk in ids.chunks(WRITE_BATCH) {
            let list: Vec<String> = chunk.iter().map(|id| format!("\"{}\"", id.hex())).collect();
            self.delete_where(format!("{PK} in [{}]", list.join(", ")))?;
        }
        Ok(())
    }

    fn top_k(
        &self,
        query: &[f32],
        k: usize,
        filter: &Filter,
        keep: &(dyn Fn(RowId) -> bool + Sync),
    ) -> Result<Vec<VectorHit>> {
        if query.len() != self.dim {
            return Err(crate::search::SearchError::DimMismatch {
                expected: self.dim,
                got: query.len(),
            }
            .into());
        }
        if k == 0 {
            return Ok(Vec::new());
        }
        let q = normalised(query);
        let expr = expression(filter);
        let config = &self.milvus.inner.config;
        // The server cannot run `keep`: ask for more than k and widen until k are kept or the
        // server has no more.
        let mut limit = (k + 16).min(MAX_LIMIT);
        loop {
            let request = SearchRequest::builder()
                .collection_name(&self.name)
                .vector_field(VECTOR)
                .vectors(SearchVectors::Float(vec![q.clone()]))
                .filter(expr.clone())
                .limit(limit as i64)
                .metric_type(MetricType::Ip)
                .extra_params(config.index.search_params(limit))
                .consistency_level(config.consistency.level())
                .build()
                .map_err(self.bad())?;
            let response =
                self.milvus
                    .call_within("search", self.deadline, self.client().search(request))?;
            let Some(result) = response.results().iter().next() else {
                return Ok(Vec::new());
            };
            let ids = match result.get_ids() {
                Ids::VarChar(ids) => ids.clone(),
                Ids::Int64(ids) if ids.is_empty() => Vec::new(),
                _ => {
                    return Err(VectorError::Schema {
                        collection: self.name.clone(),
                        reason: "integer primary keys: not a tunelens collection".into(),
                    })
                }
            };
            let found = ids.len();
            let mut hits = Vec::with_capacity(k);
            for (id, &score) in ids.iter().zip(result.get_scores()) {
                let Some(id) = RowId::from_hex(id) else {
                    continue;
                };
                if keep(id) {
                    hits.push(VectorHit { id, score });
                    if hits.len() == k {
                        break;
                    }
                }
            }
            if hits.len() == k || found < limit || limit == MAX_LIMIT {
                // Equal scores in id order, as the embedded index breaks ties.
                hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
                return Ok(hits);
            }
            limit = (limit * 4).min(MAX_LIMIT);
        }
    }

    fn vectors(&self, ids: &[RowId]) -> Result<HashMap<RowId, Vec<f32>>> {
        let mut out = HashMap::new();
        for chunk in ids.chunks(1024) {
            let list: Vec<String> = chunk.iter().map(|id| format!("\"{}\"", id.hex())).collect();
            let response = self.milvus.call(
                "query",
                self.client().query(
                    QueryRequest::builder()
                        .collection_name(&self.name)
                        .filter(format!("{PK} in [{}]", list.join(", ")))
                        .output_fields([PK, VECTOR])
                        .consistency_level(self.milvus.inner.config.consistency.level())
                        .build()
                        .map_err(self.bad())?,
                ),
            )?;
            let results = response.results();
            let (Some(pks), Some(vectors)) = (
                results.get_output_field(PK).and_then(|f| f.as_varchar()),
                results
                    .get_output_field(VECTOR)
                    .and_then(|f| f.as_float_vectors()),
            ) else {
                continue;
            };
            for (pk, v) in pks.iter().zip(vectors) {
                if let Some(id) = RowId::from_hex(pk) {
                    out.insert(id, v.clone());
                }
            }
        }
        Ok(out)
    }

    fn count(&self, filter: &Filter) -> Result<usize> {
        let response = self.milvus.call(
            "count",
            self.client().query(
                QueryRequest::builder()
                    .collection_name(&self.name)
                    .filter(expression(filter))
                    .output_fields(["count(*)"])
                    .consistency_level(ConsistencyLevel::Strong)
                    .build()
                    .map_err(self.bad())?,
            ),
        )?;
        let n = response
            .results()
            .get_output_field("count(*)")
            .and_then(|f| f.as_int64())
            .and_then(|v| v.first().copied())
            .ok_or_else(|| VectorError::Schema {
                collection: self.name.clone(),
                reason: "the server's count(*) reply had no count".into(),
            })?;
        Ok(n.max(0) as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_kinds_parse_with_their_parameters() {
        let p = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        assert_eq!(
            IndexKind::parse("HNSW", &[p("M", "8"), p("ef", "100")]).ok(),
            Some(IndexKind::Hnsw {
                m: 8,
                ef_construction: 128,
                ef: 100
            })
        );
        assert_eq!(IndexKind::parse("flat", &[]).ok(), Some(IndexKind::Flat));
        assert!(IndexKind::parse("flat", &[p("M", "8")]).is_err());
        assert!(IndexKind::parse("ivf-flat", &[p("nprobe", "x")]).is_err());
        assert!(IndexKind::parse("annoy", &[]).is_err());
    }

    #[test]
    fn expressions_quote_what_users_name() {
        let f = Filter {
            corpora: vec!["a\"b".into(), "c\\d".into()],
            level: Some(Level::Passage),
        };
        assert_eq!(
            expression(&f),
            r#"pk != "" && corpus in ["a\"b", "c\\d"] && level == "passage""#
        );
    }

    #[test]
    fn secrets_are_not_printed() {
        let c = MilvusConfig {
            token: Some(Secret::new("root:Milvus")),
            ..MilvusConfig::default()
        };
        assert!(!format!("{c:?}").contains("Milvus\""));
        assert!(!format!("{c:?}").contains("root:"));
    }
}
