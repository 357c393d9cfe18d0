//! Scores of an evaluation: retrieval ranks, confusion matrices and what they give.

use serde::Serialize;

use crate::search::kernels::dot_f32;

/// Text → music retrieval over ranks (1 = first).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Retrieval {
    pub mrr: f64,
    #[serde(rename = "hr@1")]
    pub hr1: f64,
    #[serde(rename = "hr@10")]
    pub hr10: f64,
    #[serde(rename = "hr@100")]
    pub hr100: f64,
}

impl Retrieval {
    /// `None` without ranks.
    pub fn of(ranks: &[usize]) -> Option<Self> {
        if ranks.is_empty() {
            return None;
        }
        let n = ranks.len() as f64;
        let hr = |k: usize| ranks.iter().filter(|&&r| r <= k).count() as f64 / n;
        Some(Self {
            mrr: ranks.iter().map(|&r| 1.0 / r as f64).sum::<f64>() / n,
            hr1: hr(1),
            hr10: hr(10),
            hr100: hr(100),
        })
    }
}

/// The rank of `own` among `candidates` for `query`: one more than the candidates scoring
/// strictly higher (ties go to the query's favour).
pub fn rank_among<'a>(
    query: &[f32],
    own: &[f32],
    candidates: impl IntoIterator<Item = &'a Vec<f32>>,
) -> usize {
    let own = dot_f32(query, own);
    1 + candidates
        .into_iter()
        .filter(|m| dot_f32(query, m) > own)
        .count()
}

/// The index of the largest value (the first of equals; 0 when empty).
pub fn argmax(xs: impl Iterator<Item = f32>) -> usize {
    xs.enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, x)| {
            if x > best.1 {
                (i, x)
            } else {
                best
            }
        })
        .0
}

/// `confusion[gold][predicted]`.
pub fn confusion(gold: &[usize], predicted: &[usize], classes: usize) -> Vec<Vec<usize>> {
    let mut m = vec![vec![0; classes]; classes];
    for (&g, &p) in gold.iter().zip(predicted) {
        m[g][p] += 1;
    }
    m
}

pub fn accuracy(m: &[Vec<usize>]) -> f64 {
    let total: usize = m.iter().flatten().sum();
    let right: usize = (0..m.len()).map(|i| m[i][i]).sum();
    right as f64 / total.max(1) as f64
}

/// Mean F1 over the classes present in the gold labels.
pub fn macro_f1(m: &[Vec<usize>]) -> f64 {
    let mut f1s = Vec::new();
    for c in 0..m.len() {
        let tp = m[c][c] as f64;
        let gold: usize = m[c].iter().sum();
        if gold == 0 {
            continue;
        }
        let predicted: usize = m.iter().map(|row| row[c]).sum();
        let (p, r) = (tp / predicted.max(1) as f64, tp / gold as f64);
        f1s.push(if p + r > 0.0 {
            2.0 * p * r / (p + r)
        } else {
            0.0
        });
    }
    f1s.iter().sum::<f64>() / f1s.len().max(1) as f64
}

/// The accuracy of always answering the most frequent gold class.
pub fn majority_accuracy(gold: &[usize], classes: usize) -> f64 {
    let mut counts = vec![0usize; classes];
    for &g in gold {
        counts[g] += 1;
    }
    counts.iter().max().copied().unwrap_or(0) as f64 / gold.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_of_a_small_confusion() {
        let m = confusion(&[0, 0, 1, 1], &[0, 1, 1, 1], 2);
        assert_eq!(m, vec![vec![1, 1], vec![0, 2]]);
        assert!((accuracy(&m) - 0.75).abs() < 1e-12);
        // F1: class 0 p=1 r=.5 → 2/3; class 1 p=2/3 r=1 → 0.8.
        assert!((macro_f1(&m) - (2.0 / 3.0 + 0.8) / 2.0).abs() < 1e-12);
        assert!((majority_accuracy(&[0, 1, 1], 2) - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn accuracy_and_macro_f1_by_hand() {
        // gold: a a b b c; predicted: a b b b a.
        let m = confusion(&[0, 0, 1, 1, 2], &[0, 1, 1, 1, 0], 3);
        assert_eq!(m, vec![vec![1, 1, 0], vec![0, 2, 0], vec![1, 0, 0]]);
        assert!((accuracy(&m) - 0.6).abs() < 1e-12);
        // F1: a = 0.5 (p 1/2, r 1/2), b = 0.8 (p 2/3, r 1), c = 0.
        assert!((macro_f1(&m) - (0.5 + 0.8 + 0.0) / 3.0).abs() < 1e-12);
    }

    #[test]
    fn retrieval_from_ranks() {
        let r = Retrieval::of(&[1, 2, 20, 200]).expect("ranks");
        assert!((r.mrr - (1.0 + 0.5 + 0.05 + 0.005) / 4.0).abs() < 1e-12);
        assert_eq!((r.hr1, r.hr10, r.hr100), (0.25, 0.5, 0.75));
        assert_eq!(Retrieval::of(&[]), None);
        let own = vec![1.0, 0.0];
        let better = vec![vec![0.0, 1.0], vec![1.0, 0.0]];
        assert_eq!(rank_among(&[0.6, 0.8], &own, &better), 2);
    }
}
