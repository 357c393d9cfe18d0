//! Single-query latency of exact top-10 search over random unit vectors (seeded), at 100k and
//! 500k vectors of 256, 384 and 768 components, in both scan modes. Each index is built once
//! per size and dimension and dropped before the next (500k × 768 is 1.5 GB of f32).
//!
//! Besides the timings it prints, per index, how often the int8 mode needed its second pass and
//! whether its results equalled the f32 scan's (recall@10 vs exact). `Int8Rerank-crowded` times
//! a query whose 2000 nearest rows are near-copies of it, which forces the second pass. Results:
//! docs/benchmarks.md, "Vector search".
//!
//! `SEARCH_BENCH_SIZES=100000` (comma-separated) and `SEARCH_BENCH_DIMS=256` narrow the grid.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use tunelens_index::search::{kernels, FlatIndex, ScanMode};

/// xorshift64*: seeded random data without a crate for it.
struct XorShift(u64);

impl XorShift {
    fn next_f32(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        // Uniform in [-1, 1): random directions need no more than this once normalised.
        (x >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }

    fn vector(&mut self, dim: usize) -> Vec<f32> {
        (0..dim).map(|_| self.next_f32()).collect()
    }
}

fn list(var: &str, default: &[usize]) -> Vec<usize> {
    match std::env::var(var) {
        Ok(s) => s.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
        Err(_) => default.to_vec(),
    }
}

fn build(n: usize, dim: usize) -> FlatIndex {
    let mut rng = XorShift(0x1234_5678_9abc_def1 ^ (n * dim) as u64);
    let mut ix = FlatIndex::with_mode(dim, ScanMode::Exact).expect("supported dim");
    ix.reserve(n);
    for id in 0..n as u64 {
        ix.add(id, &rng.vector(dim))
            .expect("random vectors are valid");
    }
    ix
}

fn search(c: &mut Criterion) {
    eprintln!(
        "kernels: {}, threads: {}",
        kernels::kernel_name(),
        rayon::current_num_threads()
    );
    for n in list("SEARCH_BENCH_SIZES", &[100_000, 500_000]) {
        for dim in list("SEARCH_BENCH_DIMS", &[256, 384, 768]) {
            let mut ix = build(n, dim);
            let mut rng = XorShift(0xfeed_beef ^ dim as u64);
            let queries: Vec<Vec<f32>> = (0..16).map(|_| rng.vector(dim)).collect();

            let mut group = c.benchmark_group(format!("search/top10/{n}x{dim}"));
            group
                .sample_size(10)
                .warm_up_time(Duration::from_millis(500))
                .measurement_time(Duration::from_secs(3));
            for mode in [ScanMode::Exact, ScanMode::Int8Rerank] {
                ix.set_mode(mode);
                let mut i = 0;
                group.bench_function(BenchmarkId::from_parameter(format!("{mode:?}")), |b| {
                    b.iter(|| {
                        i = (i + 1) % queries.len();
                        ix.top_k(&queries[i], 10, None).expect("valid query")
                    })
                });
            }
            report_int8(&mut ix, &queries);

            // Crowded: 2000 rows become near-copies of one query (cosines ~0.99), so its 266
            // nearest all lie within the int8 bound and the second pass must run.
            let q = &queries[0];
            for id in 0..2000u64 {
                let v: Vec<f32> = q.iter().map(|x| x + 0.03 * rng.next_f32()).collect();
                ix.upsert(id, &v).expect("valid vector");
            }
            group.bench_function(BenchmarkId::from_parameter("Int8Rerank-crowded"), |b| {
                b.iter(|| ix.top_k(q, 10, None).expect("valid query"))
            });
            group.finish();
            let (_, stats) = ix.top_k_with_stats(q, 10, None).expect("valid query");
            eprintln!("{n}x{dim} crowded: {stats:?}");
            // `ix` is dropped here, before the next size is built.
        }
    }
}

/// Recall@10 of the int8 mode against the f32 scan, and how often it needed the second pass.
fn report_int8(ix: &mut FlatIndex, queries: &[Vec<f32>]) {
    ix.set_mode(ScanMode::Exact);
    let exact: Vec<_> = queries.iter().map(|q| ix.top_k(q, 10, None)).collect();
    ix.set_mode(ScanMode::Int8Rerank);
    let (mut found, mut second, mut rescored) = (0, 0, 0);
    for (q, want) in queries.iter().zip(exact) {
        let want = want.expect("valid query");
        let (got, stats) = ix.top_k_with_stats(q, 10, None).expect("valid query");
        found += got
            .iter()
            .filter(|h| want.iter().any(|w| w.id == h.id))
            .count();
        second += stats.second_pass as usize;
        rescored += stats.rescored;
        assert_eq!(got, want, "int8 mode must equal the exact scan");
    }
    eprintln!(
        "{}x{}: int8 recall@10 {:.3}, second pass {}/{}, rows re-scored per query {}",
        ix.len(),
        ix.dim(),
        found as f64 / (10 * queries.len()) as f64,
        second,
        queries.len(),
        rescored / queries.len()
    );
}

criterion_group!(benches, search);
criterion_main!(benches);
