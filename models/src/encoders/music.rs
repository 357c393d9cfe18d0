//! CLaMP's music encoder: patch embedding, a BERT stack over `inputs_embeds`, masked mean.
//! Ports `MusicEncoder` of `clamp/utils.py` (microsoft/muzic), where the embedding is
//! `Linear(64 * V -> hidden)` over the one-hot of each patch's 64 ids.

use candle_core::{Device, Tensor};
use rayon::prelude::*;

use super::attention::AttentionMask;
use super::bert::{arange_positions, masked_mean, BertModel};
use super::config::BertConfig;
use super::error::{ModelError, Result};
use super::weights::Vb;

/// Ids per patch.
pub const PATCH_LENGTH: usize = 64;

/// One patch: `PATCH_LENGTH` character ids, as the patchilizer makes them.
pub type Patch = [u8; PATCH_LENGTH];

pub struct MusicEncoder {
    /// The patch-embedding weight transposed, `[64 * V, hidden]`: row `pos * V + id` is what a
    /// one-hot 1 at (pos, id) adds, so the embedding of a patch is the sum of 64 rows. That is
    /// the dense one-hot matmul with its 63/64 zero work left out.
    table: Vec<f32>,
    bias: Vec<f32>,
    vocab: usize,
    bert: BertModel,
    max_length: usize,
    device: Device,
}

impl MusicEncoder {
    /// `vb` points at `music_enc`; `patch_embedding` and `enc` hang below it.
    pub fn load(vb: &Vb, cfg: &BertConfig) -> Result<Self> {
        let h = cfg.hidden_size;
        let pe = vb.pp("patch_embedding");
        let w = pe.get_any(2, "weight")?;
        let (out, width) = w.dims2()?;
        if out != h || width % PATCH_LENGTH != 0 || width == 0 {
            return Err(ModelError::WrongShape {
                file: vb.file().to_path_buf(),
                tensor: "music_enc.patch_embedding.weight".into(),
                expected: vec![h, PATCH_LENGTH * 98],
                actual: vec![out, width],
            });
        }
        let table = w.t()?.contiguous()?.flatten_all()?.to_vec1::<f32>()?;
        let bias = pe.get(&[h], "bias")?.to_vec1::<f32>()?;
        let max_length = cfg
            .max_length
            .unwrap_or(cfg.max_position_embeddings)
            .min(cfg.max_position_embeddings);
        Ok(Self {
            table,
            bias,
            vocab: width / PATCH_LENGTH,
            bert: BertModel::load(&vb.pp("enc"), cfg, false)?,
            max_length,
            device: vb.device(),
        })
    }

    /// The patch limit (`max_length` of the config): the reference cuts tunes to this.
    pub fn max_length(&self) -> usize {
        self.max_length
    }

    pub fn hidden_size(&self) -> usize {
        self.bert.hidden_size()
    }

    /// Ids per patch position (98 in CLaMP).
    pub fn patch_vocab(&self) -> usize {
        self.vocab
    }

    /// Patch embeddings `[b, s, hidden]` for tunes padded to the longest; padded rows are zero
    /// (they are masked everywhere downstream).
    fn embed_patches(&self, tunes: &[&[Patch]], seq: usize) -> Result<Tensor> {
        let h = self.hidden_size();
        for (t, tune) in tunes.iter().enumerate() {
            if let Some(bad) = tune.iter().flatten().find(|&&id| id as usize >= self.vocab) {
                return Err(ModelError::Input(format!(
                    "tune {t}: patch id {bad} outside the model's {} ids",
                    self.vocab
                )));
            }
        }
        let mut out = vec![0f32; tunes.len() * seq * h];
        out.par_chunks_mut(seq * h)
            .zip(tunes.par_iter())
            .for_each(|(rows, tune)| {
                for (row, patch) in rows.chunks_exact_mut(h).zip(tune.iter()) {
                    row.copy_from_slice(&self.bias);
                    for (pos, &id) in patch.iter().enumerate() {
                        let at = (pos * self.vocab + id as usize) * h;
                        for (o, w) in row.iter_mut().zip(&self.table[at..at + h]) {
                            *o += w;
                        }
                    }
                }
            });
        Ok(Tensor::from_vec(out, (tunes.len(), seq, h), &self.device)?)
    }

    /// `last_hidden_state` `[b, s, hidden]` and the mask, for up to `max_length` patches per
    /// tune (longer input is an error: cutting or segmenting is the caller's choice).
    pub fn forward(&self, tunes: &[&[Patch]]) -> Result<(Tensor, AttentionMask)> {
        let lengths: Vec<usize> = tunes.iter().map(|t| t.len()).collect();
        let seq = lengths.iter().copied().max().unwrap_or(0);
        if seq > self.max_length {
            return Err(ModelError::Input(format!(
                "{seq} patches exceed the limit of {}",
                self.max_length
            )));
        }
        let mask = AttentionMask::from_lengths(&lengths, seq, &self.device)?;
        let embeds = self.embed_patches(tunes, seq)?;
        let pos = arange_positions(tunes.len(), seq, &self.device)?;
        Ok((self.bert.forward(&embeds, &pos, &mask)?, mask))
    }

    /// The masked mean of `last_hidden_state`, `[b, hidden]`.
    pub fn pooled(&self, tunes: &[&[Patch]]) -> Result<Tensor> {
        let (hidden, mask) = self.forward(tunes)?;
        masked_mean(&hidden, mask.mask())
    }
}
