//! Labels: the label sets shipped with tunelens, checking a label list, and scoring a tune's
//! vector either with the model's label head for the set (`tunelens_models::heads`: trained
//! on the labels collections carry, calibrated) or zero-shot against the vectors of text
//! prompts ("This piece of music is jig."), as the reference CLaMP's zero-shot code does. The
//! CLI's `classify` and the daemon share it.

use tunelens_models::heads::Head;

use crate::search::kernels::dot_f32;

/// The prompt used for labels given without a template.
pub const DEFAULT_TEMPLATE: &str = "This piece of music is {label}.";

/// Label sets shipped with tunelens: (name, prompt template, labels one a line).
const SHIPPED: &[(&str, &str, &str)] = &[
    (
        "genre",
        DEFAULT_TEMPLATE,
        include_str!("label_sets/genre.txt"),
    ),
    (
        "rhythm",
        "This is a {label}.",
        include_str!("label_sets/rhythm.txt"),
    ),
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    #[error("unknown label set {name:?}; the shipped ones are: {known}")]
    UnknownSet { name: String, known: String },
    #[error("bad label list: give at least two non-empty labels")]
    TooFew,
    #[error("bad label list: {0:?} is given twice")]
    Twice(String),
    #[error("the template must contain {{label}}: {0:?}")]
    Template(String),
}

/// Labels and the prompt each is read in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelSet {
    pub labels: Vec<String>,
    /// `{label}` is replaced by each label.
    pub template: String,
}

impl LabelSet {
    /// A shipped set by name (`genre`, `rhythm`).
    pub fn shipped(name: &str) -> Result<Self, LabelError> {
        let Some((_, template, text)) = SHIPPED.iter().find(|(n, _, _)| *n == name) else {
            return Err(LabelError::UnknownSet {
                name: name.to_owned(),
                known: shipped_names().join(", "),
            });
        };
        let labels = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect();
        Self::new(labels, template)
    }

    /// A set of the caller's labels, checked: at least two, none empty, none twice.
    pub fn new(labels: Vec<String>, template: &str) -> Result<Self, LabelError> {
        let labels: Vec<String> = labels.into_iter().map(|l| l.trim().to_owned()).collect();
        if labels.len() < 2 || labels.iter().any(String::is_empty) {
            return Err(LabelError::TooFew);
        }
        let mut sorted = labels.clone();
        sorted.sort_by_key(|l| l.to_lowercase());
        if let Some(w) = sorted.windows(2).find(|w| w[0].eq_ignore_ascii_case(&w[1])) {
            return Err(LabelError::Twice(w[0].clone()));
        }
        if !template.contains("{label}") {
            return Err(LabelError::Template(template.to_owned()));
        }
        Ok(Self {
            labels,
            template: template.to_owned(),
        })
    }

    /// The text prompt of each label, in order.
    pub fn prompts(&self) -> Vec<String> {
        self.labels
            .iter()
            .map(|l| self.template.replace("{label}", l))
            .collect()
    }
}

/// The names of the shipped sets.
pub fn shipped_names() -> Vec<&'static str> {
    SHIPPED.iter().map(|(n, _, _)| *n).collect()
}

/// One label's score for a tune.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Scored {
    pub label: String,
    /// Zero-shot: softmax over the labels of cosine × e, as the reference CLaMP's zero-shot
    /// code does. From a head: its calibrated probability.
    pub score: f32,
    /// Zero-shot only: the cosine between the tune's and the prompt's vectors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cosine: Option<f32>,
}

/// A head's calibrated probabilities of `music` (a tune vector), best first.
pub fn from_head(head: &Head, music: &[f32]) -> Vec<Scored> {
    head.predict(music)
        .into_iter()
        .map(|(label, score)| Scored {
            label,
            score,
            cosine: None,
        })
        .collect()
}

/// The head that answers for label set `name`, if the model has one.
pub fn head_for<'a>(heads: &'a [Head], name: &str) -> Option<&'a Head> {
    heads.iter().find(|h| h.name == name)
}

/// Scores `music` (a normalised tune vector) against each label's normalised prompt vector;
/// best first.
pub fn zero_shot(labels: &[String], label_vectors: &[Vec<f32>], music: &[f32]) -> Vec<Scored> {
    let cosines: Vec<f32> = label_vectors.iter().map(|l| dot_f32(l, music)).collect();
    let scores = softmax(&cosines, std::f32::consts::E);
    let mut scored: Vec<Scored> = labels
        .iter()
        .zip(cosines.iter().zip(scores))
        .map(|(label, (&cosine, score))| Scored {
            label: label.clone(),
            score,
            cosine: Some(cosine),
        })
        .collect();
    scored.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.label.cmp(&b.label)));
    scored
}

fn softmax(xs: &[f32], scale: f32) -> Vec<f32> {
    let max = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = xs.iter().map(|x| ((x - max) * scale).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.iter().map(|e| e / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_sets_load_and_bad_lists_are_refused() {
        let genre = LabelSet::shipped("genre").expect("genre");
        assert!(genre.labels.len() >= 2);
        assert!(LabelSet::shipped("rhythm").is_ok());
        assert!(matches!(
            LabelSet::shipped("mood"),
            Err(LabelError::UnknownSet { .. })
        ));
        assert_eq!(
            LabelSet::new(vec!["jig".into()], DEFAULT_TEMPLATE),
            Err(LabelError::TooFew)
        );
        assert_eq!(
            LabelSet::new(vec!["jig".into(), "Jig".into()], DEFAULT_TEMPLATE),
            Err(LabelError::Twice("jig".into()))
        );
        assert!(LabelSet::new(vec!["a".into(), "b".into()], "no slot").is_err());
    }

    #[test]
    fn zero_shot_scores_sum_to_one_best_first() {
        let labels = vec!["a".to_owned(), "b".to_owned()];
        let vectors = vec![vec![1.0, 0.0], vec![0.0, 1.0]];
        let s = zero_shot(&labels, &vectors, &[0.0, 1.0]);
        assert_eq!(s[0].label, "b");
        assert!((s[0].score + s[1].score - 1.0).abs() < 1e-6);
    }
}
