//! The Milvus backend against a real server (scripts/milvus.sh start; scripts/test.sh starts
//! one). Without `TUNELENS_MILVUS_URI` these tests fail loudly: they never mock Milvus.

use std::time::Duration;

use tunelens_index::records::ContentKey;
use tunelens_index::vectors::{
    Filter, FlatVectors, IndexKind, Milvus, MilvusConfig, Row, VectorStore,
};
use tunelens_models::abc::Level;

const DIM: usize = 64;

fn milvus(prefix: &str, index: IndexKind) -> Milvus {
    let uri = std::env::var("TUNELENS_MILVUS_URI").unwrap_or_else(|_| {
        panic!("TUNELENS_MILVUS_URI is not set: start a server with scripts/milvus.sh start and export TUNELENS_MILVUS_URI=$(scripts/milvus.sh uri)")
    });
    // A prefix per test and run: tests share one server and must not see each other's rows.
    let prefix = format!("{prefix}_{}", std::process::id());
    Milvus::connect(MilvusConfig {
        uri,
        index,
        prefix,
        ..MilvusConfig::default()
    })
    .expect("the Milvus server answers")
}

/// Seeded xorshift vectors.
fn vectors(n: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut s = seed | 1;
    (0..n)
        .map(|_| {
            (0..DIM)
                .map(|_| {
                    s ^= s >> 12;
                    s ^= s << 25;
                    s ^= s >> 27;
                    ((s.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 23) as f32)
                        - 1.0
                })
                .collect()
        })
        .collect()
}

fn rows<'a>(vs: &'a [Vec<f32>], paths: &'a [String]) -> Vec<Row<'a>> {
    vs.iter()
        .enumerate()
        .map(|(i, v)| Row {
            corpus: if i % 3 == 0 { "a" } else { "b" },
            path: &paths[i / 10],
            unit: i % 10,
            level: if i % 2 == 0 {
                Level::Passage
            } else {
                Level::Tune
            },
            key: ContentKey([0; 32]),
            vector: v,
        })
        .collect()
}

#[test]
fn flat_collection_answers_like_the_embedded_store() {
    let m = milvus("parity", IndexKind::Flat);
    let vs = vectors(2000, 7);
    let paths: Vec<String> = (0..200)
        .map(|i| format!("/corpus/file \"{i}\".abc"))
        .collect();
    let rows = rows(&vs, &paths);
    let remote = m.collection("model0", DIM).expect("collection");
    let local = FlatVectors::new(DIM).expect("dim");
    remote.upsert(&rows).expect("upsert");
    // Idempotent by key: writing everything again changes nothing.
    remote.upsert(&rows).expect("upsert again");
    local.upsert(&rows).expect("upsert");
    let all = Filter::default();
    assert_eq!(remote.count(&all).expect("count"), 2000);
    let filters = [
        all.clone(),
        Filter {
            corpora: vec!["a".into()],
            level: Some(Level::Passage),
        },
    ];
    for (q, query) in vectors(20, 99).iter().enumerate() {
        for filter in &filters {
            // Leave some rows out, as `similar` leaves out the query's own windows.
            let keep = |id| id != rows[q].id();
            let a = local.top_k(query, 10, filter, &keep).expect("local");
            let b = remote.top_k(query, 10, filter, &keep).expect("remote");
            let ids = |h: &[tunelens_index::vectors::VectorHit]| {
                h.iter().map(|x| x.id).collect::<Vec<_>>()
            };
            assert_eq!(ids(&a), ids(&b), "query {q}");
            for (x, y) in a.iter().zip(&b) {
                assert!(
                    (x.score - y.score).abs() < 1e-4,
                    "{} vs {}",
                    x.score,
                    y.score
                );
            }
        }
    }
    // Stored vectors come back normalised, as the flat index keeps them.
    let ids: Vec<_> = rows[..5].iter().map(|r| r.id()).collect();
    let got = remote.vectors(&ids).expect("vectors");
    let want = local.vectors(&ids).expect("vectors");
    assert_eq!(got.len(), 5);
    for id in &ids {
        for (x, y) in got[id].iter().zip(&want[id]) {
            assert!((x - y).abs() < 1e-6);
        }
    }
    remote
        .delete_file("b", &paths[0])
        .expect("delete a file's rows");
    let b_in_file0 = rows[..10].iter().filter(|r| r.corpus == "b").count();
    assert_eq!(remote.count(&all).expect("count"), 2000 - b_in_file0);
    remote.delete_corpus("a").expect("delete a corpus");
    let a_rows = rows.iter().filter(|r| r.corpus == "a").count();
    assert_eq!(
        remote.count(&all).expect("count"),
        2000 - b_in_file0 - a_rows
    );
    m.drop_collection("model0", DIM).expect("drop");
}

#[test]
fn hnsw_recall_at_10_is_at_least_095() {
    let m = milvus("recall", IndexKind::default());
    // Embeddings cluster (tunes of one kind, transposed copies); uniform random vectors, the
    // worst case for a graph index, gave 0.55 at ef 64 (64 components), so the data here are
    // points around 400 centres.
    let centres = vectors(400, 5);
    let noise = vectors(20_000, 3);
    let vs: Vec<Vec<f32>> = noise
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let c = &centres[i % centres.len()];
            c.iter().zip(n).map(|(c, n)| c + 0.35 * n).collect()
        })
        .collect();
    let paths: Vec<String> = (0..2000).map(|i| format!("/f{i}")).collect();
    let rows = rows(&vs, &paths);
    let remote = m.collection("model1", DIM).expect("collection");
    let local = FlatVectors::new(DIM).expect("dim");
    remote.upsert(&rows).expect("upsert");
    local.upsert(&rows).expect("upsert");
    remote
        .flush_and_wait_index(Duration::from_secs(120))
        .expect("index built");
    let mut found = 0;
    let queries: Vec<Vec<f32>> = vectors(50, 11)
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let c = &centres[(i * 7) % centres.len()];
            c.iter().zip(n).map(|(c, n)| c + 0.35 * n).collect()
        })
        .collect();
    for q in &queries {
        let exact = local
            .top_k(q, 10, &Filter::default(), &|_| true)
            .expect("exact");
        let approx = remote
            .top_k(q, 10, &Filter::default(), &|_| true)
            .expect("hnsw");
        found += approx
            .iter()
            .filter(|h| exact.iter().any(|e| e.id == h.id))
            .count();
    }
    let recall = found as f64 / (10 * queries.len()) as f64;
    eprintln!(
        "HNSW (M 16, efConstruction 128, ef 64) recall@10 over 20k clustered x {DIM}: {recall:.3}"
    );
    assert!(recall >= 0.95, "recall@10 {recall}");
    m.drop_collection("model1", DIM).expect("drop");
}

#[test]
fn an_unreachable_server_is_a_clear_error() {
    let err = Milvus::connect(MilvusConfig {
        uri: "http://127.0.0.1:9".into(),
        timeout: Duration::from_secs(2),
        ..MilvusConfig::default()
    })
    .err()
    .expect("nothing listens on port 9");
    assert!(err.is_unavailable(), "{err}");
    assert!(err.to_string().contains("unreachable"), "{err}");
}
