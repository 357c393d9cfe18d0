//! The index against a brute-force reference: f64 dot products over the stored vectors, all
//! rows, full sort. Scores are compared with a tolerance and, rank by rank, the reference's
//! score at that rank, so the check does not depend on how near-ties round.

use proptest::prelude::*;

use super::rng::XorShift;
use super::*;

/// Every scan mode with every storage precision (the reference reads the stored, decoded
/// vectors, so int8-stored indexes are held to the same exactness).
const MODES: [(ScanMode, Precision); 4] = [
    (ScanMode::Exact, Precision::F32),
    (ScanMode::Int8Rerank, Precision::F32),
    (ScanMode::Exact, Precision::Int8),
    (ScanMode::Int8Rerank, Precision::Int8),
];

fn empty_index(dim: usize, (mode, precision): (ScanMode, Precision)) -> FlatIndex {
    FlatIndex::with_precision(dim, mode, precision).expect("valid dim")
}

/// The reference: every (id, score) that passes the filter, best first, ties by id.
fn reference(ix: &FlatIndex, query: &[f32], filter: &dyn Fn(u64) -> bool) -> Vec<(u64, f64)> {
    let qn = query
        .iter()
        .map(|&x| x as f64 * x as f64)
        .sum::<f64>()
        .sqrt();
    let mut all: Vec<(u64, f64)> = ix
        .ids
        .iter()
        .filter(|&&id| filter(id))
        .map(|&id| {
            let v = ix.get(id).expect("listed id");
            let s = v
                .iter()
                .zip(query)
                .map(|(a, b)| *a as f64 * *b as f64)
                .sum::<f64>();
            (id, s / qn)
        })
        .collect();
    all.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    all
}

/// Checks `hits` is a correct top k of `want` (the reference's full ranking).
fn check(hits: &[Hit], want: &[(u64, f64)], k: usize) {
    const TOL: f64 = 1e-5;
    assert_eq!(hits.len(), k.min(want.len()), "number of hits");
    let mut seen = std::collections::HashSet::new();
    for (rank, h) in hits.iter().enumerate() {
        assert!(seen.insert(h.id), "id {} twice", h.id);
        let exact = want
            .iter()
            .find(|w| w.0 == h.id)
            .unwrap_or_else(|| panic!("id {} is not admissible", h.id))
            .1;
        assert!((h.score as f64 - exact).abs() < TOL, "score of {}", h.id);
        assert!((h.score as f64 - want[rank].1).abs() < TOL, "rank {rank}");
    }
    for w in hits.windows(2) {
        let ordered = w[0].score > w[1].score || (w[0].score == w[1].score && w[0].id < w[1].id);
        assert!(ordered, "order {w:?}");
    }
}

fn random_index(
    rng: &mut XorShift,
    dim: usize,
    n: usize,
    mode: (ScanMode, Precision),
) -> FlatIndex {
    let mut ix = empty_index(dim, mode);
    for i in 0..n {
        // Sparse, shuffled ids: rows and ids must not be confused anywhere.
        let id = (i as u64).wrapping_mul(0x9E37_79B9) ^ 0x5555;
        let v: Vec<f32> = (0..dim).map(|_| rng.gaussian() * 3.0).collect();
        ix.add(id, &v).expect("valid vector");
    }
    ix
}

#[test]
fn matches_reference_on_many_dims_and_ks() {
    let mut rng = XorShift::new(1);
    for mode in MODES {
        for (dim, n) in [
            (64, 1),
            (65, 300),
            (127, 700),
            (256, 1500),
            (333, 900),
            (1024, 400),
        ] {
            let ix = random_index(&mut rng, dim, n, mode);
            for k in [1, 3, 10, 100, n, n + 5, 10_000] {
                let q: Vec<f32> = (0..dim).map(|_| rng.gaussian()).collect();
                let hits = ix.top_k(&q, k, None).expect("valid query");
                check(&hits, &reference(&ix, &q, &|_| true), k);
            }
        }
    }
}

#[test]
fn large_index_runs_in_parallel_and_in_int8_with_and_without_second_pass() {
    let mut rng = XorShift::new(2);
    // 6000 × 96 components: above the parallel threshold, several chunks.
    for mode in MODES {
        let mut ix = random_index(&mut rng, 96, 6000, mode);
        let q: Vec<f32> = (0..96).map(|_| rng.gaussian()).collect();
        let (hits, stats) = ix.top_k_with_stats(&q, 10, None).expect("valid query");
        check(&hits, &reference(&ix, &q, &|_| true), 10);
        assert_eq!(stats.mode, Some(mode.0));
        // Now crowd the query's neighbourhood: 2000 near-copies of it score within the int8
        // bound of each other, so the shortlist cannot be confirmed and the second pass runs.
        for i in 0..2000u64 {
            let v: Vec<f32> = q.iter().map(|x| x + 0.01 * rng.gaussian()).collect();
            ix.add(1 << 40 | i, &v).expect("valid vector");
        }
        let (hits, stats) = ix.top_k_with_stats(&q, 10, None).expect("valid query");
        check(&hits, &reference(&ix, &q, &|_| true), 10);
        if mode.0 == ScanMode::Int8Rerank {
            assert!(
                stats.second_pass && stats.rescored > stats.shortlist,
                "{stats:?}"
            );
        }
        let odd = |id: u64| id % 2 == 1;
        let hits = ix.top_k(&q, 25, Some(&odd)).expect("valid query");
        check(&hits, &reference(&ix, &q, &odd), 25);
    }
}

#[test]
fn both_modes_give_identical_results() {
    let mut rng = XorShift::new(9);
    for precision in [Precision::F32, Precision::Int8] {
        let mut ix = random_index(&mut rng, 200, 3000, (ScanMode::Exact, precision));
        for _ in 0..20 {
            let q: Vec<f32> = (0..200).map(|_| rng.gaussian()).collect();
            ix.set_mode(ScanMode::Exact);
            let exact = ix.top_k(&q, 10, None).expect("valid query");
            ix.set_mode(ScanMode::Int8Rerank);
            let (int8, stats) = ix.top_k_with_stats(&q, 10, None).expect("valid query");
            assert_eq!(stats.mode, Some(ScanMode::Int8Rerank));
            // Same rows re-scored by the same kernel: equal to the bit.
            assert_eq!(exact, int8);
        }
    }
}

#[test]
fn empty_index_zero_k_and_excluding_filter_give_nothing() {
    for mode in MODES {
        let mut rng = XorShift::new(4);
        let empty = empty_index(128, mode);
        let q = rng.unit_vector(128);
        assert_eq!(empty.top_k(&q, 10, None), Ok(vec![]));
        let ix = random_index(&mut rng, 128, 3000, mode);
        assert_eq!(ix.top_k(&q, 0, None), Ok(vec![]));
        let none = |_: u64| false;
        assert_eq!(ix.top_k(&q, 10, Some(&none)), Ok(vec![]));
        // A filter keeping a single row.
        let one = ix.ids[1234];
        let only = move |id: u64| id == one;
        let hits = ix.top_k(&q, 10, Some(&only)).expect("valid query");
        assert_eq!(hits.iter().map(|h| h.id).collect::<Vec<_>>(), [one]);
    }
}

#[test]
fn bad_queries_are_errors() {
    let ix = FlatIndex::new(64).expect("valid dim");
    assert_eq!(
        ix.top_k(&[1.0; 65], 1, None),
        Err(SearchError::DimMismatch {
            expected: 64,
            got: 65
        })
    );
    assert_eq!(ix.top_k(&[0.0; 64], 1, None), Err(SearchError::ZeroVector));
    let mut nan = vec![1.0; 64];
    nan[3] = f32::NAN;
    assert_eq!(ix.top_k(&nan, 1, None), Err(SearchError::NonFinite));
}

#[test]
fn equal_scores_are_ordered_by_id() {
    for mode in MODES {
        let mut rng = XorShift::new(6);
        let mut ix = random_index(&mut rng, 64, 500, mode);
        let v = rng.unit_vector(64);
        for id in [900, 7, 300, 42] {
            ix.add(id, &v).expect("valid vector");
        }
        let hits = ix.top_k(&v, 4, None).expect("valid query");
        assert_eq!(
            hits.iter().map(|h| h.id).collect::<Vec<_>>(),
            [7, 42, 300, 900]
        );
        assert!(hits.iter().all(|h| h.score == hits[0].score));
    }
}

#[test]
fn removals_and_replacements_are_seen_by_queries() {
    for mode in MODES {
        let mut rng = XorShift::new(8);
        let mut ix = random_index(&mut rng, 80, 4000, mode);
        let q = rng.unit_vector(80);
        // Remove the current best ten (one of them the last row, one the first) and others.
        let mut gone: Vec<u64> = ix
            .top_k(&q, 10, None)
            .expect("ok")
            .iter()
            .map(|h| h.id)
            .collect();
        gone.extend([ix.ids[0], *ix.ids.last().expect("not empty")]);
        gone.extend(ix.ids.iter().step_by(7).copied().collect::<Vec<_>>());
        for id in &gone {
            ix.remove(*id);
        }
        let hits = ix.top_k(&q, 10, None).expect("valid query");
        assert!(hits.iter().all(|h| !gone.contains(&h.id)));
        check(&hits, &reference(&ix, &q, &|_| true), 10);
        // Point one survivor at the query: it becomes the best.
        let id = ix.ids[17];
        assert_eq!(ix.upsert(id, &q), Ok(true));
        let hits = ix.top_k(&q, 10, None).expect("valid query");
        assert_eq!(hits[0].id, id);
        // Its stored copy is the query rounded to the index's precision.
        let tol = if mode.1 == Precision::Int8 {
            1e-2
        } else {
            1e-5
        };
        assert!((hits[0].score - 1.0).abs() < tol);
        check(&hits, &reference(&ix, &q, &|_| true), 10);
    }
}

/// One step of a random workload.
#[derive(Debug, Clone)]
enum Op {
    Upsert(u64, Vec<f32>),
    Remove(u64),
}

fn op(dim: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u64..64, prop::collection::vec(-1.0f32..1.0, dim)).prop_map(|(id, v)| Op::Upsert(id, v)),
        1 => (0u64..64).prop_map(Op::Remove),
    ]
}

type Case = (usize, Vec<Op>, Vec<f32>, usize, u64, usize);

fn case() -> impl Strategy<Value = Case> {
    prop_oneof![Just(64usize), Just(65), Just(97), Just(128)].prop_flat_map(|dim| {
        (
            Just(dim),
            prop::collection::vec(op(dim), 0..120),
            prop::collection::vec(-1.0f32..1.0, dim),
            0usize..80,
            1u64..5,
            0usize..12,
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any sequence of upserts and removals, then any query, k and modulus filter: both modes
    /// agree with the reference. Short int8 shortlists make small indexes take the int8 path,
    /// with its proof and second pass. (All-zero vectors are refused and change nothing.)
    #[test]
    fn random_workloads_match_reference((dim, ops, q, k, m, extra) in case()) {
        for mode in MODES {
            let mut ix = empty_index(dim, mode);
            ix.set_shortlist_extra(extra);
            let mut model = std::collections::BTreeMap::new();
            for op in &ops {
                match op {
                    Op::Upsert(id, v) => {
                        if ix.upsert(*id, v).is_ok() {
                            model.insert(*id, ());
                        }
                    }
                    Op::Remove(id) => prop_assert_eq!(ix.remove(*id), model.remove(id).is_some()),
                }
            }
            prop_assert_eq!(ix.len(), model.len());
            let filter = move |id: u64| (id / m) * m == id;
            match ix.top_k(&q, k, Some(&filter)) {
                Ok(hits) => check(&hits, &reference(&ix, &q, &filter), k),
                Err(e) => prop_assert_eq!(e, SearchError::ZeroVector),
            }
        }
    }
}

/// The int8 path with a shortlist shorter than the index, at random: ties from duplicated
/// vectors and a filter, so the proof, the second pass and the tie order are all exercised.
#[test]
fn int8_shortlist_with_duplicates_matches_reference() {
    let mut rng = XorShift::new(12);
    for round in 0..6 {
        let dim = 64 + round * 37;
        let precision = [Precision::F32, Precision::Int8][round % 2];
        let mut ix = random_index(&mut rng, dim, 1200, (ScanMode::Int8Rerank, precision));
        let base = rng.unit_vector(dim);
        for i in 0..300u64 {
            let v = if i % 3 == 0 {
                base.clone()
            } else {
                rng.unit_vector(dim)
            };
            ix.add(1 << 50 | i, &v).expect("valid vector");
        }
        for k in [1, 10, 150] {
            let even = |id: u64| id & 1 == 0;
            let hits = ix.top_k(&base, k, Some(&even)).expect("valid query");
            check(&hits, &reference(&ix, &base, &even), k);
        }
    }
}

/// Tiny shortlists on a small index: both the confirmed path and the second pass are taken
/// (counted), and every answer matches the reference.
#[test]
fn short_shortlists_take_both_int8_paths() {
    let mut rng = XorShift::new(13);
    let mut ix = random_index(&mut rng, 64, 400, (ScanMode::Int8Rerank, Precision::F32));
    let (mut confirmed, mut second) = (0, 0);
    for extra in [0, 1, 4, 32] {
        ix.set_shortlist_extra(extra);
        for k in [1, 5, 20] {
            for _ in 0..10 {
                let q = rng.unit_vector(64);
                let (hits, stats) = ix.top_k_with_stats(&q, k, None).expect("valid query");
                check(&hits, &reference(&ix, &q, &|_| true), k);
                assert_eq!(stats.mode, Some(ScanMode::Int8Rerank));
                if stats.second_pass {
                    second += 1;
                } else {
                    confirmed += 1;
                }
            }
        }
    }
    assert!(
        confirmed > 0 && second > 0,
        "{confirmed} confirmed, {second} second passes"
    );
}

/// What int8 storage costs in score: the same rows stored at both precisions, the same queries.
/// Each stored vector is within its `err` (~0.009 at 384 components) of the f32 one, but the
/// rounding errors point every which way, so a cosine moves by far less.
#[test]
fn int8_storage_moves_cosines_by_little() {
    let mut rng = XorShift::new(21);
    let dim = 384;
    let mut f32_ix = empty_index(dim, (ScanMode::Int8Rerank, Precision::F32));
    let mut int8_ix = empty_index(dim, (ScanMode::Int8Rerank, Precision::Int8));
    for id in 0..2000u64 {
        let v: Vec<f32> = (0..dim).map(|_| rng.gaussian()).collect();
        f32_ix.add(id, &v).expect("valid vector");
        int8_ix.add(id, &v).expect("valid vector");
    }
    let (mut worst, mut sum, mut n) = (0.0f64, 0.0f64, 0);
    for _ in 0..20 {
        // A query near a stored row, so the top scores are high, as a real match's are.
        let base = f32_ix.get(rng.below(2000)).expect("row").into_owned();
        let q: Vec<f32> = base.iter().map(|x| x + 0.02 * rng.gaussian()).collect();
        let exact = f32_ix.top_k(&q, 2000, None).expect("valid query");
        let scores: std::collections::HashMap<u64, f32> =
            exact.iter().map(|h| (h.id, h.score)).collect();
        for h in int8_ix.top_k(&q, 2000, None).expect("valid query") {
            let d = (h.score - scores[&h.id]).abs() as f64;
            worst = worst.max(d);
            sum += d;
            n += 1;
        }
    }
    let mean = sum / n as f64;
    eprintln!("int8 storage: mean |Δcos| {mean:.2e}, worst {worst:.2e}");
    assert!(mean < 5e-4 && worst < 3e-3, "mean {mean}, worst {worst}");
}

/// Rows near an 8-dimensional subspace of `dim`, as a music encoder's vectors are near a
/// subspace of theirs.
fn low_rank_index(rng: &mut XorShift, dim: usize, n: usize) -> FlatIndex {
    let dirs: Vec<Vec<f32>> = (0..8).map(|_| rng.unit_vector(dim)).collect();
    let mut ix = empty_index(dim, (ScanMode::Int8Rerank, Precision::Int8));
    for i in 0..n as u64 {
        ix.add(i * 7 + 3, &low_rank_vector(rng, &dirs))
            .expect("valid vector");
    }
    ix
}

fn low_rank_vector(rng: &mut XorShift, dirs: &[Vec<f32>]) -> Vec<f32> {
    let dim = dirs[0].len();
    let mut v: Vec<f32> = (0..dim).map(|_| 0.02 * rng.gaussian()).collect();
    for d in dirs {
        let c = rng.gaussian();
        v.iter_mut().zip(d).for_each(|(x, y)| *x += c * y);
    }
    v
}

/// A fitted basis: scans read row heads, results still match the reference (over the stored
/// vectors, turned back), before and after rows are added, replaced and removed across the
/// chunks of the codes' layout; and `scores` agrees with the scan.
#[test]
fn a_fitted_basis_reads_heads_and_stays_exact() {
    let mut rng = XorShift::new(31);
    let dim = 96;
    // Two whole layout chunks and part of a third; parallel (above 2^18 components).
    let n = 2 * scan::CHUNK_ROWS + 1500;
    let mut ix = low_rank_index(&mut rng, dim, n);
    let before: Vec<Vec<f32>> = (0..20)
        .map(|i| ix.get(i * 7 + 3).expect("row").into_owned())
        .collect();
    assert!(!ix.fit_basis(n + 1), "too few rows");
    assert!(ix.fit_basis(n));
    assert!(!ix.fit_basis(n), "once");
    assert_eq!(ix.scan_width(), 16);
    // Rounded once more, in the new basis: still within int8 rounding of what it was.
    for (i, old) in before.iter().enumerate() {
        let new = ix.get(i as u64 * 7 + 3).expect("row");
        let d: f32 = old
            .iter()
            .zip(new.iter())
            .map(|(a, b)| (a - b).powi(2))
            .sum();
        assert!(d.sqrt() < 0.02, "row {i} moved by {}", d.sqrt());
    }
    let dirs: Vec<Vec<f32>> = (0..8).map(|_| rng.unit_vector(dim)).collect();
    let check_all = |ix: &FlatIndex, rng: &mut XorShift, rescored_max: usize| {
        for k in [3, 200] {
            // Queries near a stored row (as a hover's are) and at random.
            let near = ix
                .get(ix.ids[rng.below(ix.len() as u64) as usize])
                .expect("row");
            let q: Vec<f32> = near.iter().map(|x| x + 0.05 * rng.gaussian()).collect();
            let odd = |id: u64| id % 2 == 1;
            let (hits, stats) = ix.top_k_with_stats(&q, k, Some(&odd)).expect("valid query");
            check(&hits, &reference(ix, &q, &odd), k);
            assert!(stats.rescored <= rescored_max, "{stats:?}");
            let ids: Vec<u64> = hits.iter().map(|h| h.id).chain([u64::MAX]).collect();
            let scores = ix.scores(&q, &ids).expect("valid query");
            for (h, s) in hits.iter().zip(&scores) {
                assert_eq!(*s, Some(h.score));
            }
            assert_eq!(scores.last(), Some(&None));
            let q = rng.unit_vector(dim);
            let hits = ix.top_k(&q, k, None).expect("valid query");
            check(&hits, &reference(ix, &q, &|_| true), k);
        }
    };
    // Heads hold nearly everything, so few rows are read whole.
    check_all(&ix, &mut rng, n / 4);
    // Rows added in the basis, replaced, and removed from every chunk (the last row moves into
    // the hole), until the third chunk is gone.
    for i in 0..300u64 {
        ix.add(1 << 40 | i, &low_rank_vector(&mut rng, &dirs))
            .expect("valid vector");
        ix.upsert(i * 7 + 3, &rng.unit_vector(dim))
            .expect("valid vector");
    }
    check_all(&ix, &mut rng, n);
    let ids: Vec<u64> = ix.ids.iter().copied().step_by(3).collect();
    for id in ids.iter().take(ix.len() - 2 * scan::CHUNK_ROWS + 10) {
        assert!(ix.remove(*id));
    }
    assert!(ix.len() < 2 * scan::CHUNK_ROWS);
    check_all(&ix, &mut rng, n);
}

/// No basis where it would not pay or cannot hold: rows at f32, rows in every direction.
#[test]
fn no_basis_for_f32_rows_or_isotropic_ones() {
    let mut rng = XorShift::new(32);
    let mut ix = random_index(&mut rng, 64, 3000, (ScanMode::Int8Rerank, Precision::Int8));
    assert!(!ix.fit_basis(0));
    assert_eq!(ix.scan_width(), 64);
    let mut ix = low_rank_index(&mut rng, 64, 10);
    ix.precision = Precision::F32;
    assert!(!ix.fit_basis(0));
}
