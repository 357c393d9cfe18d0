//! Text encoders (BERT and RoBERTa; CLaMP's is DistilRoBERTa, MiniLM is BERT) and their
//! tokenizer. Ports transformers' `RobertaEmbeddings` position handling onto the shared BERT
//! stack: the two differ only in position ids.

use std::path::Path;

use candle_core::{Device, Tensor};
use tokenizers::{Tokenizer, TruncationDirection, TruncationParams, TruncationStrategy};

use super::attention::AttentionMask;
use super::bert::{masked_mean, BertModel};
use super::config::{BertConfig, TextArch};
use super::error::{ModelError, Result};
use super::weights::Vb;

/// The reference truncates text to 128 tokens (`tokenizer(text, truncation=True,
/// max_length=128)`).
pub const TEXT_MAX_LENGTH: usize = 128;

/// Unidecode, as the reference applies to every text before tokenising (`unidecode` 1.3.4,
/// byte for byte).
fn unidecode(text: &str) -> String {
    crate::abc::translit::transliterate(text)
}

pub struct TextTokenizer {
    tokenizer: Tokenizer,
    /// CLaMP unidecodes every text; a plain sentence encoder (MiniLM) leaves that to its
    /// tokenizer's normalizer.
    unidecode: bool,
}

impl TextTokenizer {
    pub fn from_file(file: &Path, max_length: usize, unidecode: bool) -> Result<Self> {
        let bad = |reason: String| ModelError::Tokenizer {
            file: file.to_path_buf(),
            reason,
        };
        if !file.exists() {
            return Err(ModelError::MissingFile {
                file: file.to_path_buf(),
                hint: "the text tower needs the tokenizer.json of its text model".into(),
            });
        }
        let mut tokenizer = Tokenizer::from_file(file).map_err(|e| bad(e.to_string()))?;
        // Padding is ours to do (by bucket); the file's own padding setting would fight it.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                direction: TruncationDirection::Right,
                max_length,
                strategy: TruncationStrategy::LongestFirst,
                stride: 0,
            }))
            .map_err(|e| bad(e.to_string()))?;
        Ok(Self {
            tokenizer,
            unidecode,
        })
    }

    /// Token ids for `text` (after unidecode where enabled), special tokens included,
    /// truncated.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        let input = if self.unidecode {
            unidecode(text)
        } else {
            text.to_string()
        };
        let enc = self
            .tokenizer
            .encode(input, true)
            .map_err(|e| ModelError::Input(format!("cannot tokenize {text:?}: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }
}

pub struct TextEncoder {
    bert: BertModel,
    arch: TextArch,
    pad_id: u32,
    vocab: usize,
    max_positions: usize,
    device: Device,
}

impl TextEncoder {
    /// `vb` points at the encoder's root (`text_enc` in CLaMP, empty for a bare checkpoint).
    pub fn load(vb: &Vb, cfg: &BertConfig) -> Result<Self> {
        Ok(Self {
            bert: BertModel::load(vb, cfg, true)?,
            arch: cfg.arch(),
            pad_id: cfg.pad_id() as u32,
            vocab: cfg.vocab_size,
            max_positions: cfg.max_positions(),
            device: vb.device(),
        })
    }

    pub fn hidden_size(&self) -> usize {
        self.bert.hidden_size()
    }

    pub fn pad_id(&self) -> u32 {
        self.pad_id
    }

    /// Position ids for one padded row, as HF makes them: BERT counts from 0; RoBERTa counts
    /// non-pad tokens from `pad + 1` and gives pads `pad` (`create_position_ids_from_input_ids`).
    fn positions(&self, ids: &[u32], seq: usize) -> Vec<u32> {
        match self.arch {
            TextArch::Bert => (0..seq as u32).collect(),
            TextArch::Roberta => {
                let mut count = 0;
                (0..seq)
                    .map(|j| match ids.get(j) {
                        Some(&t) if t != self.pad_id => {
                            count += 1;
                            count + self.pad_id
                        }
                        _ => self.pad_id,
                    })
                    .collect()
            }
        }
    }

    /// `last_hidden_state` and mask for token-id rows (padded here with the pad id).
    pub fn forward(&self, rows: &[&[u32]]) -> Result<(Tensor, AttentionMask)> {
        let lengths: Vec<usize> = rows.iter().map(|r| r.len()).collect();
        let seq = lengths.iter().copied().max().unwrap_or(0);
        if seq > self.max_positions {
            return Err(ModelError::Input(format!(
                "{seq} tokens exceed the encoder's {} positions",
                self.max_positions
            )));
        }
        if let Some(bad) = rows
            .iter()
            .flat_map(|r| r.iter())
            .find(|&&t| t as usize >= self.vocab)
        {
            return Err(ModelError::Input(format!(
                "token id {bad} outside the vocabulary of {} (tokenizer and model disagree?)",
                self.vocab
            )));
        }
        let mask = AttentionMask::from_lengths(&lengths, seq, &self.device)?;
        let b = rows.len();
        let mut ids = Vec::with_capacity(b * seq);
        let mut pos = Vec::with_capacity(b * seq);
        for r in rows {
            ids.extend_from_slice(r);
            ids.extend(std::iter::repeat_n(self.pad_id, seq - r.len()));
            pos.extend(self.positions(r, seq));
        }
        let ids = Tensor::from_vec(ids, (b, seq), &self.device)?;
        let pos = Tensor::from_vec(pos, (b, seq), &self.device)?;
        let embeds = self.bert.embeddings.words(&ids)?;
        Ok((self.bert.forward(&embeds, &pos, &mask)?, mask))
    }

    /// Masked mean of `last_hidden_state`, `[b, hidden]`.
    pub fn pooled(&self, rows: &[&[u32]]) -> Result<Tensor> {
        let (hidden, mask) = self.forward(rows)?;
        masked_mean(&hidden, mask.mask())
    }
}
