//! Encoder configs, mirroring Hugging Face `config.json` field names so a checkpoint's own file
//! deserialises directly. Ported from the field set of transformers' `BertConfig` /
//! `RobertaConfig` (the parts inference needs).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::abc::MusicView;

use super::error::{ModelError, Result};
use super::weights::Weights;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HiddenAct {
    /// The exact erf GELU that HF's "gelu" means.
    #[default]
    Gelu,
    Relu,
}

/// Which text architecture a checkpoint holds; they differ only in how position ids are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TextArch {
    Bert,
    /// Position ids start at `pad_token_id + 1` and padding takes `pad_token_id`, as HF's
    /// `create_position_ids_from_input_ids` does.
    Roberta,
}

fn default_type_vocab() -> usize {
    2
}
fn default_eps() -> f64 {
    1e-12
}

/// A BERT-family config: the music encoder's (with `max_length`, the patch limit) and the text
/// encoder's.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct BertConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub intermediate_size: usize,
    #[serde(default)]
    pub hidden_act: HiddenAct,
    pub max_position_embeddings: usize,
    #[serde(default = "default_type_vocab")]
    pub type_vocab_size: usize,
    #[serde(default = "default_eps")]
    pub layer_norm_eps: f64,
    #[serde(default)]
    pub pad_token_id: Option<usize>,
    #[serde(default)]
    pub model_type: Option<String>,
    /// CLaMP's music config: the number of patches a tune is cut to.
    #[serde(default)]
    pub max_length: Option<usize>,
    /// How the music encoder reads ABC (a tunelens key): absent in official CLaMP configs,
    /// which read the reference patching of the ABC as written.
    #[serde(default, skip_serializing_if = "MusicView::is_reference")]
    pub music_view: MusicView,
}

impl BertConfig {
    /// Reads and validates a `config.json`.
    pub fn from_file(file: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(file).map_err(|source| ModelError::Io {
            file: file.to_path_buf(),
            source,
        })?;
        let cfg: Self = serde_json::from_str(&text).map_err(|e| ModelError::Config {
            file: file.to_path_buf(),
            reason: e.to_string(),
        })?;
        cfg.validate().map_err(|reason| ModelError::Config {
            file: file.to_path_buf(),
            reason,
        })?;
        Ok(cfg)
    }

    pub fn validate(&self) -> std::result::Result<(), String> {
        let nonzero = [
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
        ];
        if let Some((name, _)) = nonzero.iter().find(|(_, v)| *v == 0) {
            return Err(format!("`{name}` must be positive"));
        }
        if self.hidden_size.checked_rem(self.num_attention_heads) != Some(0) {
            return Err(format!(
                "hidden_size {} is not divisible by num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            ));
        }
        if self.max_length == Some(0) {
            return Err("`max_length` must be positive".into());
        }
        Ok(())
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    pub fn arch(&self) -> TextArch {
        match self.model_type.as_deref() {
            Some(t) if t.contains("roberta") => TextArch::Roberta,
            _ => TextArch::Bert,
        }
    }

    /// The pad id, with each architecture's HF default when the config leaves it out.
    pub fn pad_id(&self) -> usize {
        self.pad_token_id.unwrap_or(match self.arch() {
            TextArch::Roberta => 1,
            TextArch::Bert => 0,
        })
    }

    /// The longest sequence the position table allows (RoBERTa spends `pad_id + 1` rows).
    pub fn max_positions(&self) -> usize {
        match self.arch() {
            TextArch::Roberta => self
                .max_position_embeddings
                .saturating_sub(self.pad_id() + 1),
            TextArch::Bert => self.max_position_embeddings,
        }
    }

    /// Infers a text config from the tensors under `prefix` when the checkpoint ships none
    /// (official CLaMP releases have only the music `config.json`). Shapes give layers, hidden,
    /// intermediate, vocabulary and positions; the head count is not in any shape, so it is
    /// taken as `hidden / head_dim` with the music encoder's head size (CLaMP's two towers share
    /// it: 768/12 for both). A RoBERTa table has one token type and `max + pad + 1` positions.
    pub fn infer_text(weights: &Weights, prefix: &str, head_dim: usize) -> Result<Self> {
        let shape = |name: &str| -> Result<Vec<usize>> {
            let full = format!("{prefix}.{name}");
            weights
                .shape_of(&full)
                .map(<[usize]>::to_vec)
                .ok_or_else(|| ModelError::MissingTensor {
                    file: weights.file().to_path_buf(),
                    tensor: full,
                })
        };
        let bad = |reason: String| ModelError::Config {
            file: weights.file().to_path_buf(),
            reason: format!("cannot infer the text config from tensor shapes: {reason}"),
        };
        let word = shape("embeddings.word_embeddings.weight")?;
        let pos = shape("embeddings.position_embeddings.weight")?;
        let types = shape("embeddings.token_type_embeddings.weight")?;
        let inter = shape("encoder.layer.0.intermediate.dense.weight")?;
        let [vocab_size, hidden_size] = word[..] else {
            return Err(bad(format!("word embeddings have shape {word:?}")));
        };
        let layer_prefix = format!("{prefix}.encoder.layer.");
        let num_hidden_layers = weights
            .names()
            .filter_map(|n| n.strip_prefix(&layer_prefix))
            .filter_map(|rest| rest.split('.').next()?.parse::<usize>().ok())
            .max()
            .map_or(0, |m| m + 1);
        if hidden_size.checked_rem(head_dim) != Some(0) {
            return Err(bad(format!(
                "hidden size {hidden_size} is not a multiple of the head size {head_dim}"
            )));
        }
        let roberta = types.first() == Some(&1);
        let cfg = Self {
            vocab_size,
            hidden_size,
            num_hidden_layers,
            num_attention_heads: hidden_size / head_dim,
            intermediate_size: inter.first().copied().unwrap_or(0),
            hidden_act: HiddenAct::Gelu,
            max_position_embeddings: pos.first().copied().unwrap_or(0),
            type_vocab_size: types.first().copied().unwrap_or(0),
            layer_norm_eps: if roberta { 1e-5 } else { 1e-12 },
            pad_token_id: Some(if roberta { 1 } else { 0 }),
            model_type: Some(if roberta { "roberta" } else { "bert" }.into()),
            max_length: None,
            music_view: MusicView::Reference,
        };
        cfg.validate().map_err(bad)?;
        Ok(cfg)
    }
}
