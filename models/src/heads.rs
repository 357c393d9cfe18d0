//! Label heads: small classifiers on a model's frozen tune vectors, for the labels that
//! collections carry (tune type from `R:`, WikiMT's genre, a user's own field). Zero-shot text
//! prompts can name any label but guess; a head knows only its labels and is far surer of
//! them. A head is fitted in seconds (`tunelens train --head FIELD`) and lives in the model's
//! folder as `heads/NAME.json`.
//!
//! The classifier is softmax regression on standardised vectors (full-batch gradient descent,
//! L2). Its probabilities are calibrated: a temperature is chosen on a held-out part of the
//! examples (a fifth, every fifth example) to minimise the negative log-likelihood there, and
//! the accuracy on that part is kept in the head as its own estimate.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The folder of a model directory that holds its heads.
pub const HEADS_DIR: &str = "heads";

#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error("{file}: {source}")]
    Io {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: not a label head: {reason}")]
    Format { file: PathBuf, reason: String },
    #[error("cannot fit a head: {0}")]
    Fit(String),
}

/// A fitted head.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Head {
    /// What it predicts (`rhythm`, `genre`, ...): the name label sets are matched by.
    pub name: String,
    /// Where its labels came from (`R` for a header field, `genre` for a JSONL key).
    pub field: String,
    pub labels: Vec<String>,
    /// Per-dimension mean and standard deviation the vectors are standardised with.
    pub mean: Vec<f32>,
    pub scale: Vec<f32>,
    /// `[labels][dim]`, row-major, then one bias per label.
    pub weights: Vec<f32>,
    pub bias: Vec<f32>,
    /// Logits are divided by this (calibration).
    pub temperature: f32,
    /// Examples per label it was fitted on, in `labels` order.
    pub counts: Vec<usize>,
    /// Accuracy on the held-out fifth, before the final fit on all examples.
    pub held_out_accuracy: f64,
    /// What it was fitted on, in words.
    pub data: String,
}

/// How a head is fitted.
#[derive(Debug, Clone, Copy)]
pub struct FitOptions {
    pub epochs: usize,
    pub rate: f32,
    pub l2: f32,
    /// Whether the L2 penalty also shrinks the biases (a probe's habit; a head leaves them
    /// free so that a rare class keeps its prior).
    pub bias_l2: bool,
}

impl Default for FitOptions {
    fn default() -> Self {
        Self {
            epochs: 300,
            rate: 0.5,
            l2: 1e-3,
            bias_l2: false,
        }
    }
}

impl Head {
    /// Fits a head on `vectors` (one per example, all of one width) with `targets` indexing
    /// into `labels`.
    pub fn fit(
        name: &str,
        field: &str,
        labels: Vec<String>,
        vectors: &[Vec<f32>],
        targets: &[usize],
        options: FitOptions,
    ) -> Result<Head, HeadError> {
        let classes = labels.len();
        let dim = vectors.first().map_or(0, Vec::len);
        if classes < 2 {
            return Err(HeadError::Fit(format!(
                "{classes} label(s); a head needs at least two"
            )));
        }
        if vectors.len() != targets.len() || vectors.len() < 2 * classes || dim == 0 {
            return Err(HeadError::Fit(format!(
                "{} example(s) for {classes} labels; give at least two per label",
                vectors.len()
            )));
        }
        if vectors.iter().any(|v| v.len() != dim) || targets.iter().any(|&t| t >= classes) {
            return Err(HeadError::Fit("examples of mixed widths or labels".into()));
        }
        let (mean, scale) = standardiser(vectors, dim);
        let x: Vec<Vec<f32>> = vectors
            .iter()
            .map(|v| standardise(v, &mean, &scale))
            .collect();
        let mut counts = vec![0usize; classes];
        for &t in targets {
            counts[t] += 1;
        }
        // Calibrate and estimate on every fifth example, fitted on the rest.
        let (train, test): (Vec<usize>, Vec<usize>) = (0..x.len()).partition(|i| i % 5 != 4);
        let (w, b) = softmax_regression(&x, targets, &train, classes, options);
        let logits: Vec<Vec<f32>> = test.iter().map(|&i| logits(&w, &b, &x[i])).collect();
        let gold: Vec<usize> = test.iter().map(|&i| targets[i]).collect();
        let right = logits
            .iter()
            .zip(&gold)
            .filter(|(l, &g)| argmax(l) == g)
            .count();
        let held_out_accuracy = right as f64 / test.len().max(1) as f64;
        let temperature = calibrate(&logits, &gold);
        let all: Vec<usize> = (0..x.len()).collect();
        let (w, b) = softmax_regression(&x, targets, &all, classes, options);
        Ok(Head {
            name: name.to_owned(),
            field: field.to_owned(),
            labels,
            mean,
            scale,
            weights: w.concat(),
            bias: b,
            temperature,
            counts,
            held_out_accuracy,
            data: String::new(),
        })
    }

    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Calibrated probabilities of each label, in `labels` order.
    pub fn probabilities(&self, vector: &[f32]) -> Vec<f32> {
        let x = standardise(vector, &self.mean, &self.scale);
        let dim = self.dim();
        let l: Vec<f32> = (0..self.labels.len())
            .map(|c| {
                let row = &self.weights[c * dim..(c + 1) * dim];
                (dot(row, &x) + self.bias[c]) / self.temperature
            })
            .collect();
        softmax(&l)
    }

    /// Labels with their probabilities, best first.
    pub fn predict(&self, vector: &[f32]) -> Vec<(String, f32)> {
        let mut out: Vec<(String, f32)> = self
            .labels
            .iter()
            .cloned()
            .zip(self.probabilities(vector))
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        out
    }

    /// Writes `model_dir/heads/NAME.json`.
    pub fn save(&self, model_dir: &Path) -> Result<PathBuf, HeadError> {
        let dir = model_dir.join(HEADS_DIR);
        let io = |file: PathBuf| move |source| HeadError::Io { file, source };
        std::fs::create_dir_all(&dir).map_err(io(dir.clone()))?;
        let file = dir.join(format!("{}.json", self.name));
        let text = serde_json::to_string(self).map_err(|e| HeadError::Format {
            file: file.clone(),
            reason: e.to_string(),
        })?;
        // Written beside, then renamed: a crash never leaves half a head.
        let tmp = file.with_extension("json.tmp");
        std::fs::write(&tmp, text).map_err(io(tmp.clone()))?;
        std::fs::rename(&tmp, &file).map_err(io(file.clone()))?;
        Ok(file)
    }

    /// Reads one head file and checks that its shapes agree.
    pub fn load(file: &Path) -> Result<Head, HeadError> {
        let text = std::fs::read_to_string(file).map_err(|source| HeadError::Io {
            file: file.to_path_buf(),
            source,
        })?;
        let bad = |reason: String| HeadError::Format {
            file: file.to_path_buf(),
            reason,
        };
        let head: Head = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let (c, d) = (head.labels.len(), head.dim());
        if c < 2
            || d == 0
            || head.scale.len() != d
            || head.weights.len() != c * d
            || head.bias.len() != c
            || !head.temperature.is_finite()
            || head.temperature <= 0.0
        {
            return Err(bad(format!(
                "{c} labels, {d}-wide mean, {} weights, {} biases, temperature {}",
                head.weights.len(),
                head.bias.len(),
                head.temperature
            )));
        }
        Ok(head)
    }
}

/// The heads in a model directory (none when it has no `heads/` folder), by name.
pub fn load_heads(model_dir: &Path) -> Result<Vec<Head>, HeadError> {
    let dir = model_dir.join(HEADS_DIR);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Ok(Vec::new());
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files.iter().map(|f| Head::load(f)).collect()
}

/// A tune type as collections write it in `R:`, in one spelling: `Double Jig`, `jig.` and
/// `single jig` are `jig`; `slipjig` is `slip jig`; `barn dance` is `barndance`. Others are
/// lower-cased and trimmed.
pub fn tune_type(value: &str) -> String {
    let v: String = value
        .trim()
        .trim_end_matches(['.', ',', ';'])
        .to_lowercase()
        .replace(['-', '_'], " ");
    let has = |w: &str| v.contains(w);
    if has("slip") && has("jig") || v == "slipjig" {
        "slip jig".into()
    } else if has("jig") {
        "jig".into()
    } else if has("reel") {
        "reel".into()
    } else if has("hornpipe") {
        "hornpipe".into()
    } else if has("barn dance") || has("barndance") {
        "barndance".into()
    } else if has("waltz") {
        "waltz".into()
    } else if has("polka") {
        "polka".into()
    } else if has("strathspey") {
        "strathspey".into()
    } else if has("march") {
        "march".into()
    } else {
        v.split_whitespace().collect::<Vec<_>>().join(" ")
    }
}

fn standardiser(vectors: &[Vec<f32>], dim: usize) -> (Vec<f32>, Vec<f32>) {
    let n = vectors.len() as f64;
    let mut mean = vec![0f64; dim];
    for v in vectors {
        for (m, x) in mean.iter_mut().zip(v) {
            *m += f64::from(*x) / n;
        }
    }
    let mut var = vec![0f64; dim];
    for v in vectors {
        for ((s, x), m) in var.iter_mut().zip(v).zip(&mean) {
            *s += (f64::from(*x) - m).powi(2) / n;
        }
    }
    (
        mean.iter().map(|&m| m as f32).collect(),
        var.iter().map(|&s| (s.sqrt() as f32).max(1e-6)).collect(),
    )
}

fn standardise(v: &[f32], mean: &[f32], scale: &[f32]) -> Vec<f32> {
    v.iter()
        .zip(mean)
        .zip(scale)
        .map(|((x, m), s)| (x - m) / s)
        .collect()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn logits(w: &[Vec<f32>], b: &[f32], x: &[f32]) -> Vec<f32> {
    w.iter().zip(b).map(|(wc, bc)| dot(wc, x) + bc).collect()
}

fn softmax(l: &[f32]) -> Vec<f32> {
    let max = l.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = l.iter().map(|x| (x - max).exp()).collect();
    let s: f32 = e.iter().sum();
    e.into_iter().map(|v| v / s).collect()
}

fn argmax(xs: &[f32]) -> usize {
    xs.iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
        .map_or(0, |(i, _)| i)
}

/// Softmax regression by full-batch gradient descent: weights `[classes][dim]` and biases
/// fitted on the examples `rows` of `x` (targets `y`). Heads and `eval`'s linear probes both
/// fit with it.
pub fn softmax_regression<X: AsRef<[f32]>>(
    x: &[X],
    y: &[usize],
    rows: &[usize],
    classes: usize,
    o: FitOptions,
) -> (Vec<Vec<f32>>, Vec<f32>) {
    let dim = x.first().map_or(0, |v| v.as_ref().len());
    let mut w = vec![vec![0f32; dim]; classes];
    let mut b = vec![0f32; classes];
    let n = rows.len().max(1) as f32;
    for _ in 0..o.epochs {
        let mut gw = vec![vec![0f32; dim]; classes];
        let mut gb = vec![0f32; classes];
        for &i in rows {
            let xi = x[i].as_ref();
            let p = softmax(&logits(&w, &b, xi));
            for c in 0..classes {
                let g = p[c] - f32::from(u8::from(y[i] == c));
                for (gwc, xij) in gw[c].iter_mut().zip(xi) {
                    *gwc += g * xij;
                }
                gb[c] += g;
            }
        }
        let bias_l2 = if o.bias_l2 { o.l2 } else { 0.0 };
        for c in 0..classes {
            for (wj, gj) in w[c].iter_mut().zip(&gw[c]) {
                *wj -= o.rate * (gj / n + o.l2 * *wj);
            }
            b[c] -= o.rate * (gb[c] / n + bias_l2 * b[c]);
        }
    }
    (w, b)
}

/// The class probabilities of `x` under weights `w` and biases `b`.
pub fn probabilities(w: &[Vec<f32>], b: &[f32], x: &[f32]) -> Vec<f32> {
    softmax(&logits(w, b, x))
}

/// The temperature (from a grid of 0.25 to 8) that minimises the negative log-likelihood of
/// `gold` under `logits / T`.
fn calibrate(logits: &[Vec<f32>], gold: &[usize]) -> f32 {
    if logits.is_empty() {
        return 1.0;
    }
    let nll = |t: f32| -> f64 {
        logits
            .iter()
            .zip(gold)
            .map(|(l, &g)| {
                let scaled: Vec<f32> = l.iter().map(|x| x / t).collect();
                -f64::from(softmax(&scaled)[g].max(1e-12)).ln()
            })
            .sum()
    };
    (0..=40)
        .map(|k| 0.25 * 2f32.powf(k as f32 / 8.0))
        .min_by(|&a, &b| nll(a).total_cmp(&nll(b)))
        .unwrap_or(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> (Vec<Vec<f32>>, Vec<usize>) {
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..60 {
            let c = i % 3;
            let jitter = (i as f32 * 0.37).sin() * 0.2;
            let mut v = vec![jitter, -jitter, 0.1];
            v[c] += 1.0;
            x.push(v);
            y.push(c);
        }
        (x, y)
    }

    #[test]
    fn a_head_learns_separable_labels_and_round_trips() {
        let (x, y) = toy();
        let labels = vec!["jig".to_string(), "reel".into(), "waltz".into()];
        let head = Head::fit("rhythm", "R", labels, &x, &y, FitOptions::default()).expect("fits");
        assert_eq!(head.held_out_accuracy, 1.0);
        assert_eq!(head.predict(&x[1])[0].0, "reel");
        let p = head.probabilities(&x[2]);
        assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        let dir = std::env::temp_dir().join(format!("tunelens-head-{}", std::process::id()));
        let file = head.save(&dir).expect("saves");
        assert_eq!(Head::load(&file).expect("loads"), head);
        assert_eq!(load_heads(&dir).expect("lists").len(), 1);
        std::fs::write(&file, "{\"name\": 1}").expect("writes");
        let err = load_heads(&dir).expect_err("a broken head is refused");
        assert!(err.to_string().contains("rhythm.json"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn tune_types_have_one_spelling() {
        for (raw, want) in [
            ("Double Jig", "jig"),
            ("slipjig", "slip jig"),
            ("Slip-Jig.", "slip jig"),
            ("  Reel ", "reel"),
            ("Barn Dance", "barndance"),
            ("Set  Dance", "set dance"),
        ] {
            assert_eq!(tune_type(raw), want, "{raw}");
        }
    }

    #[test]
    fn too_few_examples_or_labels_are_refused() {
        let (x, y) = toy();
        assert!(Head::fit("r", "R", vec!["a".into()], &x, &y, FitOptions::default()).is_err());
        let labels = vec!["a".to_string(), "b".into(), "c".into()];
        assert!(Head::fit("r", "R", labels, &x[..3], &y[..3], FitOptions::default()).is_err());
    }
}
