//! Linear probes and the label baselines a model must beat: the majority class, the same
//! probe on character n-gram counts of the music text (what a model must beat to have learnt
//! more than spelling), and for tune types a rule that reads the meter alone.

use tunelens_models::heads::{probabilities, softmax_regression, FitOptions};

use super::metrics::argmax;

/// Buckets of the hashed character n-gram counts.
const NGRAM_BUCKETS: usize = 1024;

/// k-fold linear probe: softmax regression (full-batch gradient descent, L2 on weights and
/// biases) trained on the other folds, confusion summed over the held-out folds. Folds are
/// interleaved by position, so the result is the same on every run.
pub fn probe(x: &[&[f32]], y: &[usize], classes: usize, folds: usize) -> Vec<Vec<usize>> {
    let options = FitOptions {
        bias_l2: true,
        ..FitOptions::default()
    };
    let mut total = vec![vec![0; classes]; classes];
    for fold in 0..folds {
        let train: Vec<usize> = (0..x.len()).filter(|i| i % folds != fold).collect();
        let test: Vec<usize> = (0..x.len()).filter(|i| i % folds == fold).collect();
        if train.is_empty() || test.is_empty() {
            continue;
        }
        let (w, b) = softmax_regression(x, y, &train, classes, options);
        for &i in &test {
            let p = probabilities(&w, &b, x[i]);
            total[y[i]][argmax(p.into_iter())] += 1;
        }
    }
    total
}

/// Counts of the character 1- to 3-grams of `text`, hashed (FNV-1a) into [`NGRAM_BUCKETS`],
/// log-scaled and L2-normalised so that long tunes do not dominate the probe.
pub fn ngram_features(text: &str) -> Vec<f32> {
    let chars: Vec<char> = text.chars().collect();
    let mut v = vec![0f32; NGRAM_BUCKETS];
    for n in 1..=3 {
        for gram in chars.windows(n) {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ n as u64;
            for &c in gram {
                h ^= u64::from(c);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            v[(h % NGRAM_BUCKETS as u64) as usize] += 1.0;
        }
    }
    for x in &mut v {
        *x = x.ln_1p();
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// The rhythm a tune's meter suggests on its own: 6/8 jig, 9/8 slip jig, 3/4 waltz, anything
/// else (or no `M:`) reel.
pub fn meter_rule(music: &str) -> &'static str {
    let meter = music.lines().find_map(|l| {
        let l = l.trim_start();
        l.strip_prefix("M:").map(|m| m.trim().to_owned())
    });
    match meter.as_deref() {
        Some("6/8") => "jig",
        Some("9/8") => "slip jig",
        Some("3/4") => "waltz",
        _ => "reel",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::metrics::accuracy;

    #[test]
    fn the_meter_rule_and_ngram_features() {
        assert_eq!(meter_rule("X:1\nM:6/8\nK:G\nGAB|\n"), "jig");
        assert_eq!(meter_rule("X:1\nM: 9/8\nK:G\n"), "slip jig");
        assert_eq!(meter_rule("X:1\nM:3/4\nK:G\n"), "waltz");
        assert_eq!(meter_rule("X:1\nM:C|\nK:G\n"), "reel");
        assert_eq!(meter_rule("GAB"), "reel");
        let a = ngram_features("GABc dBAG|");
        assert_eq!(a.len(), NGRAM_BUCKETS);
        assert!((a.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-5);
        assert_eq!(a, ngram_features("GABc dBAG|"));
        assert!(ngram_features("").iter().all(|&x| x == 0.0));
    }

    #[test]
    fn the_probe_separates_separable_classes() {
        let xs: Vec<Vec<f32>> = (0..40)
            .map(|i| {
                let c = (i % 2) as f32;
                vec![c * 2.0 - 1.0 + 0.01 * i as f32, 0.3, -0.2]
            })
            .collect();
        let x: Vec<&[f32]> = xs.iter().map(Vec::as_slice).collect();
        let y: Vec<usize> = (0..40).map(|i| i % 2).collect();
        let m = probe(&x, &y, 2, 4);
        assert_eq!(accuracy(&m), 1.0, "{m:?}");
    }
}
