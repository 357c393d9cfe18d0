//! The music tower and the two projections as a differentiable candle graph, weights in a
//! [`VarMap`] under the checkpoint's own tensor names (`music_enc.*`, `music_proj.*`,
//! `text_proj.*`), so a trained model is written with no renaming and loads through
//! [`crate::encoders::Clamp`].
//!
//! The inference encoders use fused CPU kernels with no backward pass; this path composes the
//! same maths from plain candle ops (gather-sum patch embedding, `x W^T + b`, erf GELU, the
//! composed LayerNorm and softmax, which candle can differentiate). A test checks the two
//! agree.

use std::collections::BTreeMap;

use candle_core::{DType, Device, Tensor, Var, D};
use candle_nn::VarMap;

use crate::encoders::config::BertConfig;
use crate::encoders::music::PatchIds;
use crate::encoders::PATCH_LENGTH;

use super::rng::Rng;

/// The name of the temperature variable (a log scale; the loss multiplies by its exp).
pub const LOGIT_SCALE: &str = "logit_scale";

/// The shape of the model being trained.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NetShape {
    pub music: BertConfig,
    /// Ids per patch position (98 in CLaMP).
    pub patch_vocab: usize,
    /// Width of the shared embedding space.
    pub embedding: usize,
    /// Width of the text tower's pooled output (384 for MiniLM).
    pub text_hidden: usize,
}

/// All trainable tensors by name, in a [`VarMap`]; `names` fixes their order (sorted), which
/// the optimizer state and checkpoints rely on.
pub struct Net {
    pub shape: NetShape,
    pub varmap: VarMap,
    device: Device,
}

fn var(vars: &BTreeMap<String, Var>, name: &str) -> candle_core::Result<Tensor> {
    vars.get(name)
        .map(|v| v.as_tensor().clone())
        .ok_or_else(|| candle_core::Error::Msg(format!("no variable `{name}`")))
}

impl Net {
    /// Every tensor's name and shape, and how it starts: 0 normal(0.02), 1 ones, 2 zeros.
    fn layout(shape: &NetShape) -> Vec<(String, Vec<usize>, u8)> {
        let cfg = &shape.music;
        let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
        let mut t = vec![
            (
                "music_enc.patch_embedding.weight".to_string(),
                vec![h, PATCH_LENGTH * shape.patch_vocab],
                0,
            ),
            ("music_enc.patch_embedding.bias".into(), vec![h], 2),
        ];
        let e = "music_enc.enc.embeddings";
        t.push((
            format!("{e}.position_embeddings.weight"),
            vec![cfg.max_position_embeddings, h],
            0,
        ));
        t.push((
            format!("{e}.token_type_embeddings.weight"),
            vec![cfg.type_vocab_size, h],
            0,
        ));
        t.push((format!("{e}.LayerNorm.weight"), vec![h], 1));
        t.push((format!("{e}.LayerNorm.bias"), vec![h], 2));
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
                t.push((format!("{p}.{name}.weight"), vec![out, inp], 0));
                t.push((format!("{p}.{name}.bias"), vec![out], 2));
            }
            for ln in ["attention.output.LayerNorm", "output.LayerNorm"] {
                t.push((format!("{p}.{ln}.weight"), vec![h], 1));
                t.push((format!("{p}.{ln}.bias"), vec![h], 2));
            }
        }
        t.push(("music_proj.weight".into(), vec![shape.embedding, h], 0));
        t.push(("music_proj.bias".into(), vec![shape.embedding], 2));
        t.push((
            "text_proj.weight".into(),
            vec![shape.embedding, shape.text_hidden],
            0,
        ));
        t.push(("text_proj.bias".into(), vec![shape.embedding], 2));
        // CLIP's learnable temperature, as a log scale starting at ln(1 / 0.07).
        t.push((LOGIT_SCALE.into(), vec![], 3));
        t
    }

    /// A fresh model, initialised from `seed` (BERT's N(0, 0.02), LayerNorms at identity), so
    /// the same seed gives the same weights on every run.
    pub fn new(shape: NetShape, seed: u64, device: &Device) -> candle_core::Result<Self> {
        let mut rng = Rng::new(seed ^ 0x1417_u64);
        let varmap = VarMap::new();
        {
            let mut data = varmap.data().lock().expect("fresh varmap lock");
            for (name, dims, kind) in Self::layout(&shape) {
                let n: usize = dims.iter().product();
                let values: Vec<f32> = match kind {
                    0 => (0..n).map(|_| 0.02 * rng.normal()).collect(),
                    1 => vec![1.0; n],
                    3 => vec![(1.0f32 / 0.07).ln(); n],
                    _ => vec![0.0; n],
                };
                let t = Tensor::from_vec(values, dims.as_slice(), device)?;
                data.insert(name, Var::from_tensor(&t)?);
            }
        }
        Ok(Self {
            shape,
            varmap,
            device: device.clone(),
        })
    }

    /// A model whose tensors come from `tensors` (a checkpoint or a model to fine-tune); every
    /// tensor of the layout must be there with its shape.
    pub fn from_tensors(
        shape: NetShape,
        tensors: &std::collections::HashMap<String, Tensor>,
        device: &Device,
    ) -> candle_core::Result<Self> {
        let varmap = VarMap::new();
        {
            let mut data = varmap.data().lock().expect("fresh varmap lock");
            for (name, dims, kind) in Self::layout(&shape) {
                if kind == 3 && !tensors.contains_key(&name) {
                    // A model without a trained temperature starts from CLIP's.
                    let t = Tensor::new((1.0f32 / 0.07).ln(), device)?;
                    data.insert(name, Var::from_tensor(&t)?);
                    continue;
                }
                let t = tensors
                    .get(&name)
                    .ok_or_else(|| candle_core::Error::Msg(format!("missing tensor `{name}`")))?;
                if t.dims() != dims.as_slice() {
                    candle_core::bail!(
                        "tensor `{name}` has shape {:?}, expected {dims:?}",
                        t.dims()
                    );
                }
                let t = t.to_dtype(DType::F32)?.to_device(device)?;
                data.insert(name, Var::from_tensor(&t)?);
            }
        }
        Ok(Self {
            shape,
            varmap,
            device: device.clone(),
        })
    }

    /// The variables sorted by name.
    pub fn vars(&self) -> BTreeMap<String, Var> {
        let data = self.varmap.data().lock().expect("varmap lock");
        data.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// The music tower's vectors (projected, unnormalised) for patch sequences, `[b, p]`.
    pub fn music(&self, tunes: &[Vec<PatchIds>]) -> candle_core::Result<Tensor> {
        let vars = self.vars();
        let cfg = &self.shape.music;
        let (h, v) = (cfg.hidden_size, self.shape.patch_vocab);
        let b = tunes.len();
        let seq = tunes.iter().map(Vec::len).max().unwrap_or(0);
        if b == 0 || seq == 0 || tunes.iter().any(Vec::is_empty) {
            candle_core::bail!("a batch needs tunes with at least one patch each");
        }
        if seq > cfg.max_position_embeddings {
            candle_core::bail!(
                "{seq} patches exceed the model's {} positions",
                cfg.max_position_embeddings
            );
        }
        // Gather-sum patch embedding: row `pos * V + id` of W^T for each of the 64 ids. Padded
        // patches read row 0 and are masked out below.
        let mut idx = Vec::with_capacity(b * seq * PATCH_LENGTH);
        let mut mask = Vec::with_capacity(b * seq);
        for tune in tunes {
            for j in 0..seq {
                match tune.get(j) {
                    Some(p) => {
                        idx.extend(
                            p.iter()
                                .enumerate()
                                .map(|(pos, &id)| (pos * v) as u32 + u32::from(id)),
                        );
                        mask.push(1f32);
                    }
                    None => {
                        idx.extend(std::iter::repeat_n(0u32, PATCH_LENGTH));
                        mask.push(0f32);
                    }
                }
            }
        }
        let idx = Tensor::from_vec(idx, b * seq * PATCH_LENGTH, &self.device)?;
        let mask = Tensor::from_vec(mask, (b, seq), &self.device)?;
        let table = var(&vars, "music_enc.patch_embedding.weight")?
            .t()?
            .contiguous()?;
        let embeds = table
            .index_select(&idx, 0)?
            .reshape((b * seq, PATCH_LENGTH, h))?
            .sum(1)?
            .broadcast_add(&var(&vars, "music_enc.patch_embedding.bias")?)?
            .reshape((b, seq, h))?;

        let e = "music_enc.enc.embeddings";
        let pos = var(&vars, &format!("{e}.position_embeddings.weight"))?.narrow(0, 0, seq)?;
        let tt = var(&vars, &format!("{e}.token_type_embeddings.weight"))?.narrow(0, 0, 1)?;
        let x = embeds.broadcast_add(&pos)?.broadcast_add(&tt)?;
        let eps = cfg.layer_norm_eps as f32;
        let ln = |x: &Tensor, p: &str| -> candle_core::Result<Tensor> {
            candle_nn::ops::layer_norm_slow(
                x,
                &var(&vars, &format!("{p}.weight"))?,
                &var(&vars, &format!("{p}.bias"))?,
                eps,
            )
        };
        let lin = |x: &Tensor, p: &str| -> candle_core::Result<Tensor> {
            let w = var(&vars, &format!("{p}.weight"))?;
            let (rows, last) = (x.elem_count() / x.dim(D::Minus1)?, x.dim(D::Minus1)?);
            let mut dims = x.dims().to_vec();
            *dims.last_mut().expect("rank >= 1") = w.dim(0)?;
            x.reshape((rows, last))?
                .matmul(&w.t()?)?
                .broadcast_add(&var(&vars, &format!("{p}.bias"))?)?
                .reshape(dims)
        };
        let mut x = ln(&x, &format!("{e}.LayerNorm"))?;
        // HF's additive mask: 0 where kept, a large negative where padded, [b, 1, 1, s].
        let bias = ((&mask - 1.0)? * 1e9)?.unsqueeze(1)?.unsqueeze(1)?;
        let heads = cfg.num_attention_heads;
        let d = h / heads;
        for l in 0..cfg.num_hidden_layers {
            let p = format!("music_enc.enc.encoder.layer.{l}");
            let split = |name: &str| -> candle_core::Result<Tensor> {
                lin(&x, &format!("{p}.attention.self.{name}"))?
                    .reshape((b, seq, heads, d))?
                    .transpose(1, 2)?
                    .contiguous()
            };
            let (q, k, vv) = (split("query")?, split("key")?, split("value")?);
            let scores = (q.matmul(&k.t()?.contiguous()?)? * (1.0 / (d as f64).sqrt()))?
                .broadcast_add(&bias)?;
            let probs = candle_nn::ops::softmax(&scores, D::Minus1)?;
            let ctx = probs
                .matmul(&vv)?
                .transpose(1, 2)?
                .contiguous()?
                .reshape((b, seq, h))?;
            let a = ln(
                &(lin(&ctx, &format!("{p}.attention.output.dense"))? + &x)?,
                &format!("{p}.attention.output.LayerNorm"),
            )?;
            let act = lin(&a, &format!("{p}.intermediate.dense"))?.gelu_erf()?;
            x = ln(
                &(lin(&act, &format!("{p}.output.dense"))? + &a)?,
                &format!("{p}.output.LayerNorm"),
            )?;
        }
        // CLaMP's masked mean, then the projection.
        let m = mask.unsqueeze(D::Minus1)?;
        let pooled = x.broadcast_mul(&m)?.sum(1)?.broadcast_div(&m.sum(1)?)?;
        lin(&pooled, "music_proj")
    }

    /// `text_proj` over pooled text-tower outputs `[b, text_hidden]`.
    pub fn text(&self, pooled: &Tensor) -> candle_core::Result<Tensor> {
        let vars = self.vars();
        pooled
            .matmul(&var(&vars, "text_proj.weight")?.t()?)?
            .broadcast_add(&var(&vars, "text_proj.bias")?)
    }

    /// Every tensor, for writing a checkpoint or a model directory.
    pub fn tensors(&self) -> std::collections::HashMap<String, Tensor> {
        self.vars()
            .into_iter()
            .map(|(k, v)| (k, v.as_tensor().clone()))
            .collect()
    }

    pub fn device(&self) -> &Device {
        &self.device
    }
}
