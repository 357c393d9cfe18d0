//! CLaMP's music encoder: patch embedding, a BERT stack over `inputs_embeds`, masked mean.
//! Ports `MusicEncoder` of `clamp/utils.py` (microsoft/muzic), where the embedding is
//! `Linear(64 * V -> hidden)` over the one-hot of each patch's 64 ids.

use candle_core::{DType, Device, Tensor};
use rayon::prelude::*;

use super::attention::AttentionMask;
use super::bert::{arange_positions, masked_mean, BertModel};
use super::config::BertConfig;
use super::error::{ModelError, Result};
use super::weights::Vb;
use crate::abc::MusicView;

/// Ids per patch (the patchilizer's constant).
pub use crate::abc::PATCH_LENGTH;

/// The ids of one patch, as the patchilizer makes them (`abc::Patch::ids`).
pub type PatchIds = [u8; PATCH_LENGTH];

/// The patch-embedding weight transposed, `[64 * V, hidden]`: row `pos * V + id` is what a
/// one-hot 1 at (pos, id) adds, so the embedding of a patch is the sum of 64 rows. That is the
/// dense one-hot matmul with its 63/64 zero work left out.
enum PatchTable {
    /// On the host, summed row by row in parallel (inference).
    Host { table: Vec<f32>, bias: Vec<f32> },
    /// As tensors, gathered with `index_select` and summed, so gradients reach the weight
    /// (training, [`super::weights::Weights::trainable`]).
    Graph { table: Tensor, bias: Tensor },
}

pub struct MusicEncoder {
    table: PatchTable,
    vocab: usize,
    bert: BertModel,
    max_length: usize,
    device: Device,
    /// The BERT stack's precision; the gather-sum runs in f32 and casts its output to this.
    dtype: DType,
}

impl MusicEncoder {
    /// `vb` points at `music_enc`; `patch_embedding` and `enc` hang below it. The BERT stack
    /// runs in `vb`'s precision; the patch-embedding table stays f32 on the host.
    pub fn load(vb: &Vb, cfg: &BertConfig) -> Result<Self> {
        let h = cfg.hidden_size;
        let pe = vb.pp("patch_embedding").with_dtype(DType::F32);
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
        let bias = pe.get(&[h], "bias")?;
        let table = if vb.trainable() {
            PatchTable::Graph {
                table: w.t()?.contiguous()?,
                bias,
            }
        } else {
            PatchTable::Host {
                table: w.t()?.contiguous()?.flatten_all()?.to_vec1::<f32>()?,
                bias: bias.to_vec1::<f32>()?,
            }
        };
        let max_length = cfg
            .max_length
            .unwrap_or(cfg.max_position_embeddings)
            .min(cfg.max_position_embeddings);
        Ok(Self {
            table,
            vocab: width / PATCH_LENGTH,
            bert: BertModel::load(&vb.pp("enc"), cfg, false)?,
            max_length,
            device: vb.device(),
            dtype: vb.dtype(),
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

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Patch embeddings `[b, s, hidden]` for tunes padded to the longest; padded rows are zero
    /// (they are masked everywhere downstream). The gather-sum runs on the host whatever the
    /// device (it is ~1/1000 of the forward's work); the result is copied to the device once.
    fn embed_patches(&self, tunes: &[&[PatchIds]], seq: usize) -> Result<Tensor> {
        let h = self.hidden_size();
        for (t, tune) in tunes.iter().enumerate() {
            if let Some(bad) = tune.iter().flatten().find(|&&id| id as usize >= self.vocab) {
                return Err(ModelError::Input(format!(
                    "tune {t}: patch id {bad} outside the model's {} ids",
                    self.vocab
                )));
            }
        }
        let (table, bias) = match &self.table {
            PatchTable::Host { table, bias } => (table, bias),
            PatchTable::Graph { table, bias } => {
                return self.gather_patches(table, bias, tunes, seq)
            }
        };
        let mut out = vec![0f32; tunes.len() * seq * h];
        // One task per patch row (not per tune), so a single long tune uses every core too.
        out.par_chunks_mut(h).enumerate().for_each(|(r, row)| {
            let Some(patch) = tunes[r / seq].get(r % seq) else {
                return;
            };
            row.copy_from_slice(bias);
            for (pos, &id) in patch.iter().enumerate() {
                let at = (pos * self.vocab + id as usize) * h;
                for (o, w) in row.iter_mut().zip(&table[at..at + h]) {
                    *o += w;
                }
            }
        });
        Ok(Tensor::from_vec(out, (tunes.len(), seq, h), &self.device)?.to_dtype(self.dtype)?)
    }

    /// [`Self::embed_patches`] as graph ops. Padded patches read row 0 plus the bias; every
    /// later step masks them out.
    fn gather_patches(
        &self,
        table: &Tensor,
        bias: &Tensor,
        tunes: &[&[PatchIds]],
        seq: usize,
    ) -> Result<Tensor> {
        let h = self.hidden_size();
        let mut idx = Vec::with_capacity(tunes.len() * seq * PATCH_LENGTH);
        for tune in tunes {
            for j in 0..seq {
                match tune.get(j) {
                    Some(p) => idx.extend(
                        p.iter()
                            .enumerate()
                            .map(|(pos, &id)| (pos * self.vocab) as u32 + u32::from(id)),
                    ),
                    None => idx.extend(std::iter::repeat_n(0u32, PATCH_LENGTH)),
                }
            }
        }
        let idx = Tensor::from_vec(idx, tunes.len() * seq * PATCH_LENGTH, &self.device)?;
        Ok(table
            .index_select(&idx, 0)?
            .reshape((tunes.len() * seq, PATCH_LENGTH, h))?
            .sum(1)?
            .broadcast_add(bias)?
            .reshape((tunes.len(), seq, h))?
            .to_dtype(self.dtype)?)
    }

    /// `last_hidden_state` `[b, s, hidden]` and the mask, for up to `max_length` patches per
    /// tune (longer input is an error: cutting or segmenting is the caller's choice).
    pub fn forward(&self, tunes: &[&[PatchIds]]) -> Result<(Tensor, AttentionMask)> {
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
    pub fn pooled(&self, tunes: &[&[PatchIds]]) -> Result<Tensor> {
        let (hidden, mask) = self.forward(tunes)?;
        masked_mean(&hidden, mask.mask())
    }
}

impl MusicEncoder {
    /// A random-init encoder of `cfg`'s shape (benches, smoke tests): weights ~ N(0, 0.02),
    /// LayerNorms at identity, `patch_vocab` ids per position.
    pub fn random(cfg: &BertConfig, patch_vocab: usize, device: &Device) -> Result<Self> {
        Self::random_seeded(cfg, patch_vocab, 0x5eed, device, DType::F32)
    }

    /// [`MusicEncoder::random`] with weights drawn on the host from `seed`, so that every
    /// device and precision gets the same model (device and precision comparisons), running in
    /// `dtype`.
    pub fn random_seeded(
        cfg: &BertConfig,
        patch_vocab: usize,
        seed: u64,
        device: &Device,
        dtype: DType,
    ) -> Result<Self> {
        use std::collections::HashMap;
        use std::sync::Arc;

        use super::weights::Weights;

        // splitmix64 and Box-Muller: reproducible and dependency-free; quality is irrelevant.
        let mut state = seed;
        let mut uniform = move || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut t: HashMap<String, Tensor> = HashMap::new();
        for (name, dims, init) in music_layout(cfg, patch_vocab) {
            let n: usize = dims.iter().product();
            let data: Vec<f32> = match init {
                Init::Normal => (0..n)
                    .map(|_| {
                        let (u1, u2) = (uniform().max(1e-300), uniform());
                        (0.02 * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()) as f32
                    })
                    .collect(),
                Init::Ones => vec![1.0; n],
                Init::Zeros => vec![0.0; n],
            };
            let tensor = Tensor::from_vec(data, dims, &Device::Cpu)?.to_device(device)?;
            t.insert(name, tensor);
        }
        let weights = Arc::new(Weights::from_tensors("<random>".into(), t));
        Self::load(&weights.vb("music_enc").with_precision(dtype), cfg)
    }

    /// Floating-point operations of one forward over `b` tunes of `s` patches (matmuls only:
    /// projections, feed-forward and the two attention products).
    pub fn flops(cfg: &BertConfig, b: usize, s: usize) -> f64 {
        let (h, i, l) = (
            cfg.hidden_size as f64,
            cfg.intermediate_size as f64,
            cfg.num_hidden_layers as f64,
        );
        let tokens = (b * s) as f64;
        l * tokens * (8.0 * h * h + 4.0 * h * i + 4.0 * s as f64 * h)
    }
}

/// How a tensor of a fresh model starts (BERT's initialisation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Init {
    /// N(0, 0.02).
    Normal,
    Ones,
    Zeros,
}

/// Every tensor of a music tower of `cfg`'s shape with `patch_vocab` ids per position, under
/// the checkpoint's names (`music_enc.*`), with its shape and how a fresh model starts it:
/// weights N(0, 0.02), biases 0, LayerNorms at identity. Random encoders and the trainer's
/// fresh models both start from this one list.
pub fn music_layout(cfg: &BertConfig, patch_vocab: usize) -> Vec<(String, Vec<usize>, Init)> {
    let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
    let mut t = vec![
        (
            "music_enc.patch_embedding.weight".to_string(),
            vec![h, PATCH_LENGTH * patch_vocab],
            Init::Normal,
        ),
        (
            "music_enc.patch_embedding.bias".into(),
            vec![h],
            Init::Zeros,
        ),
    ];
    let e = "music_enc.enc.embeddings";
    t.push((
        format!("{e}.position_embeddings.weight"),
        vec![cfg.max_position_embeddings, h],
        Init::Normal,
    ));
    t.push((
        format!("{e}.token_type_embeddings.weight"),
        vec![cfg.type_vocab_size, h],
        Init::Normal,
    ));
    t.push((format!("{e}.LayerNorm.weight"), vec![h], Init::Ones));
    t.push((format!("{e}.LayerNorm.bias"), vec![h], Init::Zeros));
    for l in 0..cfg.num_hidden_layers {
        let p = format!("music_enc.enc.encoder.layer.{l}");
        for (name, out, inp) in [
            ("attention.self.query", h, h),
            ("attention.self.key", h, h),
            ("attention.self.value", h, h),
            ("attention.output.dense", h, h),
            ("intermediate.dense", i, h),
            ("output.dense", h, i),
        ] {
            t.push((format!("{p}.{name}.weight"), vec![out, inp], Init::Normal));
            t.push((format!("{p}.{name}.bias"), vec![out], Init::Zeros));
        }
        for ln in ["attention.output.LayerNorm", "output.LayerNorm"] {
            t.push((format!("{p}.{ln}.weight"), vec![h], Init::Ones));
            t.push((format!("{p}.{ln}.bias"), vec![h], Init::Zeros));
        }
    }
    t
}

/// A BERT config of the given shape for a music encoder (benches, tests).
pub fn music_config(hidden: usize, layers: usize, heads: usize, max_patches: usize) -> BertConfig {
    BertConfig {
        vocab_size: 1,
        hidden_size: hidden,
        num_hidden_layers: layers,
        num_attention_heads: heads,
        intermediate_size: hidden * 4,
        hidden_act: super::config::HiddenAct::Gelu,
        max_position_embeddings: max_patches,
        type_vocab_size: 2,
        layer_norm_eps: 1e-12,
        pad_token_id: Some(0),
        model_type: Some("bert".into()),
        max_length: Some(max_patches),
        music_view: MusicView::Reference,
    }
}
