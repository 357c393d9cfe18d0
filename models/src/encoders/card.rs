//! `model.json`: the small card of our own model directory (name, dimensions, training data,
//! metrics). The rest of the directory is the official layout: `model.safetensors`,
//! `config.json`, `text_config.json`, `tokenizer.json`.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::error::{ModelError, Result};

pub const CARD_FILE: &str = "model.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    pub name: String,
    pub dims: CardDims,
    /// Where the weights were trained, in words (corpus names, sizes).
    #[serde(default)]
    pub training_data: String,
    /// Evaluation results by name (e.g. `"wikimt_top1"`).
    #[serde(default)]
    pub metrics: BTreeMap<String, f64>,
    /// A text tower kept outside the directory (it is large and installed by setup): the
    /// checkpoint then holds only `text_proj`, and the tower's own directory supplies
    /// `text_enc` and the tokenizer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_encoder: Option<TextEncoderRef>,
    /// How the weights were made (`tunelens train`: steps, wall time, machine, options).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training: Option<serde_json::Value>,
}

/// Where an external text tower is: `path` is relative to the model directory unless
/// absolute; `TUNELENS_TEXT_MODEL` overrides it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextEncoderRef {
    pub name: String,
    pub path: std::path::PathBuf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardDims {
    /// The width of the embedding vectors.
    pub embedding: usize,
    pub music_layers: usize,
    pub text_layers: usize,
    /// The patch limit.
    pub max_patches: usize,
}

impl ModelCard {
    pub fn read(file: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(file).map_err(|source| ModelError::Io {
            file: file.to_path_buf(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|e| ModelError::Config {
            file: file.to_path_buf(),
            reason: e.to_string(),
        })
    }

    pub fn write(&self, file: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(|e| ModelError::Config {
            file: file.to_path_buf(),
            reason: e.to_string(),
        })?;
        std::fs::write(file, text).map_err(|source| ModelError::Io {
            file: file.to_path_buf(),
            source,
        })
    }
}
