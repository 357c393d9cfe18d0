//! A bare text encoder with mean pooling, sentence-transformers style (all-MiniLM-L6-v2): a
//! directory with `model.safetensors`, `config.json` and `tokenizer.json`, no projection.

use std::path::Path;
use std::sync::Arc;

use candle_core::{DType, Device};

use super::clamp::{CONFIG_FILE, SAFETENSORS_FILE, TOKENIZER_FILE};
use super::config::BertConfig;
use super::error::{ModelError, Result};
use super::text::{TextEncoder, TextTokenizer, TEXT_MAX_LENGTH};
use super::weights::Weights;

pub struct SentenceEncoder {
    encoder: TextEncoder,
    tokenizer: TextTokenizer,
}

impl SentenceEncoder {
    pub fn load_dir(dir: &Path, device: &Device) -> Result<Self> {
        Self::load_dir_as(dir, device, DType::F32)
    }

    /// [`SentenceEncoder::load_dir`] with the BERT stack in `dtype`; pooling stays f32.
    pub fn load_dir_as(dir: &Path, device: &Device, dtype: DType) -> Result<Self> {
        let need = |name: &str| -> Result<std::path::PathBuf> {
            let f = dir.join(name);
            if f.exists() {
                Ok(f)
            } else {
                Err(ModelError::MissingFile {
                    file: f,
                    hint: "a sentence encoder directory needs model.safetensors, config.json and \
                           tokenizer.json"
                        .into(),
                })
            }
        };
        let config = BertConfig::from_file(&need(CONFIG_FILE)?)?;
        let weights = Arc::new(Weights::load(&need(SAFETENSORS_FILE)?, device)?);
        // HF checkpoints of a bare BertModel have unprefixed names; ones saved from a task head
        // nest them under the model type (`bert.`, `roberta.`).
        let prefix = ["", "bert", "roberta"]
            .into_iter()
            .find(|p| {
                let name = if p.is_empty() {
                    "embeddings.word_embeddings.weight".to_string()
                } else {
                    format!("{p}.embeddings.word_embeddings.weight")
                };
                weights.shape_of(&name).is_some()
            })
            .unwrap_or("");
        let encoder = TextEncoder::load(&weights.vb(prefix).with_dtype(dtype), &config)?;
        let tokenizer = TextTokenizer::from_file(&need(TOKENIZER_FILE)?, TEXT_MAX_LENGTH, false)?;
        Ok(Self { encoder, tokenizer })
    }

    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenizer.encode(text)
    }

    /// Masked mean of `last_hidden_state` per text (unnormalised), one batch.
    pub fn mean_pooled(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let ids = texts
            .iter()
            .map(|t| self.tokenize(t))
            .collect::<Result<Vec<_>>>()?;
        let rows: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
        Ok(self.encoder.pooled(&rows)?.to_vec2::<f32>()?)
    }

    pub fn hidden_size(&self) -> usize {
        self.encoder.hidden_size()
    }
}
