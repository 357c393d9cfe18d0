//! Both vector stores in one run (issue 11): how fast rows go in, and how long one top-10
//! query takes (p50 / p99), for the embedded store ([`FlatVectors`]: every row in memory, exact
//! SIMD scan) and for Milvus (the real server `scripts/milvus.sh start` runs; the default HNSW
//! index, M 16, efConstruction 128, ef 64), at 100k and 1M rows of 384 components, the
//! dimension of the default model's joint space. HNSW's recall@10 is measured against the
//! embedded store's exact answers, and the Milvus server's RSS is read after each load.
//! Milvus is searched at strong consistency (the CLI's default) and bounded (the daemon's).
//!
//! The rows are clustered, as embeddings are (passages of one tune sit together): 1 centre per
//! 50 rows, each row its centre plus noise of the same norm. Uniformly random directions would
//! be the worst case for a graph index and unlike any real corpus. Queries are other noisy
//! copies of the centres.
//!
//! Rows go in as the indexing job writes them: upserts of 2000 rows (one file of a large
//! collection). Each Milvus collection is dropped when its size is done.
//!
//! `TUNELENS_MILVUS_URI=$(scripts/milvus.sh uri) cargo bench -p tunelens-index --bench stores`;
//! `STORE_BENCH_SIZES=100000` narrows the sizes. The summary is printed and written to
//! `target/bench-data/stores-summary.json`. Results: docs/benchmarks.md, "Vector stores".

use std::time::{Duration, Instant};

use criterion::Criterion;
use serde_json::{json, Value};
use tunelens_index::records::ContentKey;
use tunelens_index::vectors::{
    Consistency, Filter, FlatVectors, IndexKind, Milvus, MilvusConfig, Row, RowId, VectorStore,
};
use tunelens_models::abc::Level;

const DIM: usize = 384;
const ROWS_PER_CENTRE: usize = 50;
const BATCH: usize = 2000;
const QUERIES: usize = 200;
const K: usize = 10;

struct XorShift(u64);

impl XorShift {
    fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    fn unit(&mut self) -> Vec<f32> {
        let v: Vec<f32> = (0..DIM).map(|_| self.next_f32()).collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / n).collect()
    }

    /// `centre` plus noise of `scale` times its norm, normalised.
    fn near(&mut self, centre: &[f32], scale: f32) -> Vec<f32> {
        let noise = self.unit();
        let v: Vec<f32> = centre
            .iter()
            .zip(noise)
            .map(|(c, e)| c + scale * e)
            .collect();
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.into_iter().map(|x| x / n).collect()
    }
}

struct Data {
    vectors: Vec<Vec<f32>>,
    paths: Vec<String>,
    queries: Vec<Vec<f32>>,
}

fn data(n: usize) -> Data {
    let mut rng = XorShift(0x5eed_0000 ^ n as u64);
    let centres: Vec<Vec<f32>> = (0..n.div_ceil(ROWS_PER_CENTRE))
        .map(|_| rng.unit())
        .collect();
    let vectors = (0..n)
        .map(|i| rng.near(&centres[i / ROWS_PER_CENTRE], 1.0))
        .collect();
    let paths = (0..n.div_ceil(BATCH))
        .map(|f| format!("/bench/file{f:06}.abc"))
        .collect();
    let queries = (0..QUERIES)
        .map(|q| rng.near(&centres[(q * 7919) % centres.len()], 1.0))
        .collect();
    Data {
        vectors,
        paths,
        queries,
    }
}

fn rows(d: &Data, batch: usize) -> Vec<Row<'_>> {
    let start = batch * BATCH;
    let end = (start + BATCH).min(d.vectors.len());
    (start..end)
        .map(|i| Row {
            corpus: "bench",
            path: &d.paths[batch],
            unit: i - start,
            level: Level::Passage,
            key: ContentKey([0; 32]),
            vector: &d.vectors[i],
        })
        .collect()
}

fn insert(store: &dyn VectorStore, d: &Data) -> f64 {
    let started = Instant::now();
    for b in 0..d.paths.len() {
        store.upsert(&rows(d, b)).expect("upsert");
    }
    d.vectors.len() as f64 / started.elapsed().as_secs_f64()
}

fn top(store: &dyn VectorStore, q: &[f32]) -> Vec<RowId> {
    store
        .top_k(q, K, &Filter::default(), &|_| true)
        .expect("top_k")
        .into_iter()
        .map(|h| h.id)
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

/// Criterion's timing of one query at a time, keeping every sample for the percentiles.
fn latency(c: &mut Criterion, name: &str, store: &dyn VectorStore, d: &Data) -> Value {
    let mut samples = Vec::new();
    let mut next = 0;
    let mut group = c.benchmark_group("stores");
    group
        .sample_size(30)
        .measurement_time(Duration::from_secs(10))
        .warm_up_time(Duration::from_secs(1));
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let q = &d.queries[next % d.queries.len()];
                next += 1;
                let t = Instant::now();
                std::hint::black_box(top(store, q));
                let e = t.elapsed();
                samples.push(e);
                total += e;
            }
            total
        })
    });
    group.finish();
    samples.sort();
    json!({
        "samples": samples.len(),
        "p50_ms": percentile(&samples, 0.5),
        "p99_ms": percentile(&samples, 0.99),
    })
}

/// Resident memory of the Milvus server processes (the standalone binary), in MiB.
fn milvus_rss_mib() -> Option<f64> {
    let mut kib = 0u64;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if comm.trim() != "milvus" {
            continue;
        }
        let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
        kib += status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    (kib > 0).then(|| kib as f64 / 1024.0)
}

fn sizes() -> Vec<usize> {
    match std::env::var("STORE_BENCH_SIZES") {
        Ok(s) => s.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
        Err(_) => vec![100_000, 1_000_000],
    }
}

fn main() {
    let uri = std::env::var("TUNELENS_MILVUS_URI").unwrap_or_else(|_| {
        panic!("TUNELENS_MILVUS_URI is not set: scripts/milvus.sh start, then TUNELENS_MILVUS_URI=$(scripts/milvus.sh uri) cargo bench --bench stores")
    });
    let milvus = Milvus::connect(MilvusConfig {
        uri,
        index: IndexKind::default(),
        prefix: format!("bench_{}", std::process::id()),
        timeout: Duration::from_secs(30),
        ..MilvusConfig::default()
    })
    .expect("the Milvus server answers");
    // The same server and collections, searched at bounded consistency (a daemon's default):
    // a strong search waits for the server's next time tick.
    let bounded = Milvus::connect(MilvusConfig {
        consistency: Consistency::Bounded,
        ..milvus.config().clone()
    })
    .expect("the Milvus server answers");
    let mut c = Criterion::default().configure_from_args();
    let mut summary = Vec::new();
    for n in sizes() {
        let d = data(n);

        let flat = FlatVectors::new(DIM).expect("dim");
        let flat_insert = insert(&flat, &d);
        let exact: Vec<Vec<RowId>> = d.queries.iter().map(|q| top(&flat, q)).collect();
        let flat_latency = latency(&mut c, &format!("embedded/{n}"), &flat, &d);
        drop(flat);

        let model = format!("bench{n}");
        let _ = milvus.drop_collection(&model, DIM);
        let collection = milvus.collection(&model, DIM).expect("collection");
        let milvus_insert = insert(&collection, &d);
        let started = Instant::now();
        collection
            .flush_and_wait_index(Duration::from_secs(3600))
            .expect("index built");
        let index_seconds = started.elapsed().as_secs_f64();
        let rss = milvus_rss_mib();
        let found: usize = d
            .queries
            .iter()
            .zip(&exact)
            .map(|(q, want)| {
                top(&collection, q)
                    .iter()
                    .filter(|id| want.contains(id))
                    .count()
            })
            .sum();
        let recall = found as f64 / (exact.len() * K) as f64;
        let strong = latency(&mut c, &format!("milvus-hnsw-strong/{n}"), &collection, &d);
        let bounded_collection = bounded.collection(&model, DIM).expect("collection");
        let bounded_latency = latency(
            &mut c,
            &format!("milvus-hnsw-bounded/{n}"),
            &bounded_collection,
            &d,
        );
        let _ = milvus.drop_collection(&model, DIM);

        let row = json!({
            "rows": n,
            "dim": DIM,
            "embedded": {"insert_rows_per_s": flat_insert.round(), "top10": flat_latency},
            "milvus_hnsw": {
                "insert_rows_per_s": milvus_insert.round(),
                "flush_and_index_s": (index_seconds * 10.0).round() / 10.0,
                "recall_at_10": recall,
                "server_rss_mib": rss.map(f64::round),
                "top10_strong": strong,
                "top10_bounded": bounded_latency,
            },
        });
        println!("{row}");
        summary.push(row);
    }
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data");
    let _ = std::fs::create_dir_all(&out);
    let _ = std::fs::write(
        out.join("stores-summary.json"),
        serde_json::to_string_pretty(&summary).unwrap_or_default(),
    );
}
