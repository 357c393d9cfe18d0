//! The BERT encoder stack, in the shape of candle-transformers' `models/bert.rs` (candle 0.11.1):
//! one struct per HF module, `load(vb, cfg)` mirroring the checkpoint's tensor names, a plain
//! `forward`. Ported from transformers' `modeling_bert.py` (BertEmbeddings, BertSelfAttention,
//! BertLayer), inference only: no dropout, no cross-attention, no pooler.
//!
//! Differences from the candle port, for speed on CPU: Q, K and V are one fused matmul feeding a
//! fused attention kernel ([`super::attention`]), and each linear layer is one `gemm` with its
//! bias and activation fused in ([`super::fused_linear`]).
//!
//! The same modules train: loaded from a trainer's variables ([`Vb::trainable`]), every layer
//! runs as plain candle ops (matmul, erf GELU, composed LayerNorm and softmax), which candle
//! can differentiate, so `tunelens train` has no forward pass of its own.

use std::sync::Arc;

use candle_core::{DType, Device, Tensor, D};

use super::attention::{attention, AttentionMask};
use super::config::{BertConfig, HiddenAct};
use super::error::Result;
use super::fused_linear::{linear_cpu, Activation, PackedWeight, Packing, WeightRef};
use super::kernels::{self, fused_takes, Norm};
use super::weights::Vb;

/// `y = x W^T + b` over the last dimension, for any leading shape; the leading dimensions are
/// flattened so one large matmul runs instead of a batched one.
#[derive(Clone, Debug)]
pub struct Linear {
    weight: Weight,
    bias: Tensor,
    /// The bias on the host, for the fused CPU kernel (empty when training).
    bias_host: Vec<f32>,
    /// Composed candle ops only, so gradients reach `weight` and `bias` (training).
    autograd: bool,
}

/// A layer's weight: a tensor, or (on the CPU, for inference) packed once for one of this
/// crate's kernels, in place of the tensor so that it is held once.
#[derive(Clone, Debug)]
enum Weight {
    Tensor(Tensor),
    Packed(Arc<PackedWeight>),
}

impl Linear {
    pub fn load(vb: &Vb, in_dim: usize, out_dim: usize) -> Result<Self> {
        Self::with_autograd(
            vb.get(&[out_dim, in_dim], "weight")?,
            vb.get(&[out_dim], "bias")?,
            vb.trainable(),
        )?
        .packed_as(vb.packing())
    }

    /// With its weight packed as `packing` says (not when training).
    fn packed_as(mut self, packing: Option<Packing>) -> Result<Self> {
        if let (Some(packing), Weight::Tensor(weight), false) =
            (packing, &self.weight, self.autograd)
        {
            let (n, k) = weight.dims2()?;
            let w = weight
                .to_dtype(DType::F32)?
                .flatten_all()?
                .to_vec1::<f32>()?;
            self.weight = Weight::Packed(Arc::new(PackedWeight::pack(packing, &w, n, k)));
        }
        Ok(self)
    }

    pub fn new(weight: Tensor, bias: Tensor) -> Result<Self> {
        Self::with_autograd(weight, bias, false)
    }

    fn with_autograd(weight: Tensor, bias: Tensor, autograd: bool) -> Result<Self> {
        let bias_host = if autograd {
            Vec::new()
        } else {
            bias.to_dtype(DType::F32)?.to_vec1::<f32>()?
        };
        Ok(Self {
            weight: Weight::Tensor(weight),
            bias,
            bias_host,
            autograd,
        })
    }

    pub fn out_dim(&self) -> usize {
        match &self.weight {
            Weight::Tensor(w) => w.dims()[0],
            Weight::Packed(p) => p.n(),
        }
    }

    /// The weight as a tensor `[out, in]`; a packed one is unpacked (only the composed ops,
    /// which tests compare the kernels with, need that).
    fn weight_tensor(&self) -> Result<Tensor> {
        Ok(match &self.weight {
            Weight::Tensor(w) => w.clone(),
            Weight::Packed(p) => Tensor::from_vec(p.unpack(), (p.n(), p.k()), &Device::Cpu)?,
        })
    }

    /// The matmul alone; callers that fuse the bias into the next op use this.
    pub fn matmul(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let Some((&last, lead)) = dims.split_last() else {
            return Err(candle_core::Error::Msg("linear on a scalar".into()).into());
        };
        let rows = lead.iter().product::<usize>();
        let y = x
            .reshape((rows, last))?
            .matmul(&self.weight_tensor()?.t()?)?;
        let mut out = lead.to_vec();
        out.push(self.out_dim());
        Ok(y.reshape(out)?)
    }

    pub fn bias(&self) -> &Tensor {
        &self.bias
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_act(x, Activation::None)
    }

    /// `act(x W^T + b)`: one fused pass on the CPU, composed candle ops elsewhere.
    pub fn forward_act(&self, x: &Tensor, act: Activation) -> Result<Tensor> {
        self.fused(x, act, None, None)
    }

    /// `x W^T + b + residual` (BERT's dense-then-add before each LayerNorm).
    pub fn forward_residual(&self, x: &Tensor, residual: &Tensor) -> Result<Tensor> {
        self.fused(x, Activation::None, Some(residual), None)
    }

    /// `norm(x W^T + b + residual)`: BERT's output blocks. On the CPU the norm runs in place on
    /// the fused op's output, so the sum before it is never a tensor of its own.
    pub fn forward_residual_norm(
        &self,
        x: &Tensor,
        residual: &Tensor,
        norm: &LayerNorm,
    ) -> Result<Tensor> {
        self.fused(x, Activation::None, Some(residual), Some(norm))
    }

    fn fused(
        &self,
        x: &Tensor,
        act: Activation,
        residual: Option<&Tensor>,
        norm: Option<&LayerNorm>,
    ) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let Some((&last, lead)) = dims.split_last() else {
            return Err(candle_core::Error::Msg("linear on a scalar".into()).into());
        };
        let rows = lead.iter().product::<usize>();
        let mut out = lead.to_vec();
        out.push(self.out_dim());
        // A norm that cannot run on the kernel (training) sends the whole layer to the
        // composed ops.
        let host_norm = match norm {
            Some(norm) => norm.host().map(Some),
            None => Some(None),
        };
        if let (false, true, Some(host_norm)) = (self.autograd, fused_takes(x), host_norm) {
            let r = match residual {
                Some(r) => Some(r.reshape((rows, self.out_dim()))?),
                None => None,
            };
            let w = match &self.weight {
                Weight::Tensor(w) => WeightRef::Tensor(w),
                Weight::Packed(p) => WeightRef::Packed(p),
            };
            let y = linear_cpu(
                &x.reshape((rows, last))?,
                w,
                &self.bias_host,
                act,
                r.as_ref(),
                host_norm,
            )?;
            return Ok(y.reshape(out)?);
        }
        let y = self.matmul(x)?.broadcast_add(&self.bias)?;
        let y = match act {
            Activation::None => y,
            Activation::Gelu => y.gelu_erf()?,
        };
        let y = match residual {
            Some(r) => y.add(r)?,
            None => y,
        };
        match norm {
            Some(norm) => norm.forward(&y),
            None => Ok(y),
        }
    }
}

#[derive(Clone, Debug)]
pub struct LayerNorm {
    weight: Tensor,
    bias: Tensor,
    /// `weight` and `bias` on the host in f32, for this crate's CPU kernel (empty when
    /// training).
    host: (Vec<f32>, Vec<f32>),
    eps: f32,
    /// candle's one-pass LayerNorm op has no backward pass; training composes it.
    autograd: bool,
}

impl LayerNorm {
    pub fn load(vb: &Vb, dim: usize, eps: f64) -> Result<Self> {
        let (weight, bias) = (vb.get(&[dim], "weight")?, vb.get(&[dim], "bias")?);
        let autograd = vb.trainable();
        let host = if autograd {
            (Vec::new(), Vec::new())
        } else {
            (
                weight.to_dtype(DType::F32)?.to_vec1()?,
                bias.to_dtype(DType::F32)?.to_vec1()?,
            )
        };
        Ok(Self {
            weight,
            bias,
            host,
            eps: eps as f32,
            autograd,
        })
    }

    /// The parameters for the CPU kernel; `None` when training (gradients need candle's ops).
    fn host(&self) -> Option<Norm<'_>> {
        (!self.autograd).then_some(Norm {
            gamma: &self.host.0,
            beta: &self.host.1,
            eps: self.eps,
        })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if let (Some(norm), true) = (self.host(), fused_takes(x)) {
            let dims = x.dims();
            let n = norm.gamma.len();
            if dims.last() != Some(&n) {
                return Err(
                    candle_core::Error::Msg(format!("LayerNorm of {n} over {dims:?}")).into(),
                );
            }
            let mut values = x.flatten_all()?.to_vec1::<f32>()?;
            kernels::layer_norm_rows(&mut values, norm);
            return Ok(Tensor::from_vec(values, dims, x.device())?);
        }
        let norm = if self.autograd {
            candle_nn::ops::layer_norm_slow
        } else {
            candle_nn::ops::layer_norm
        };
        Ok(norm(x, &self.weight, &self.bias, self.eps)?)
    }
}

/// Ports `BertEmbeddings`: word (optional: the music encoder feeds `inputs_embeds`), position and
/// token-type tables, then LayerNorm. Token types are always 0, as CLaMP never passes them.
pub struct BertEmbeddings {
    word: Option<Tensor>,
    position: Tensor,
    token_type0: Tensor,
    layer_norm: LayerNorm,
}

impl BertEmbeddings {
    pub fn load(vb: &Vb, cfg: &BertConfig, with_words: bool) -> Result<Self> {
        let h = cfg.hidden_size;
        let word = if with_words {
            Some(vb.get(&[cfg.vocab_size, h], "word_embeddings.weight")?)
        } else {
            None
        };
        let token_type = vb.get(&[cfg.type_vocab_size, h], "token_type_embeddings.weight")?;
        Ok(Self {
            word,
            position: vb.get(
                &[cfg.max_position_embeddings, h],
                "position_embeddings.weight",
            )?,
            token_type0: token_type.narrow(0, 0, 1)?,
            layer_norm: LayerNorm::load(&vb.pp("LayerNorm"), h, cfg.layer_norm_eps)?,
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.word.as_ref().map_or(0, |w| w.dims()[0])
    }

    /// Word embeddings for `ids` `[b, s]` (u32).
    pub fn words(&self, ids: &Tensor) -> Result<Tensor> {
        let Some(word) = &self.word else {
            return Err(
                candle_core::Error::Msg("this encoder has no word embeddings".into()).into(),
            );
        };
        let (b, s) = ids.dims2()?;
        let h = word.dims()[1];
        Ok(word
            .index_select(&ids.flatten_all()?, 0)?
            .reshape((b, s, h))?)
    }

    /// `inputs_embeds` `[b, s, h]` plus positions `[b, s]` (u32) plus token type 0, normalised.
    pub fn forward(&self, embeds: &Tensor, position_ids: &Tensor) -> Result<Tensor> {
        let (b, s, h) = embeds.dims3()?;
        let pos = self
            .position
            .index_select(&position_ids.flatten_all()?, 0)?
            .reshape((b, s, h))?;
        let x = embeds.add(&pos)?.broadcast_add(&self.token_type0)?;
        self.layer_norm.forward(&x)
    }
}

/// Ports `BertSelfAttention` + `BertSelfOutput`; Q, K, V weights are concatenated at load time.
struct BertAttention {
    qkv: Linear,
    heads: usize,
    autograd: bool,
    output: Linear,
    layer_norm: LayerNorm,
}

impl BertAttention {
    fn load(vb: &Vb, cfg: &BertConfig) -> Result<Self> {
        let h = cfg.hidden_size;
        let sv = vb.pp("self");
        let get = |part: &str, shape: &[usize], name: &str| sv.pp(part).get(shape, name);
        let parts = ["query", "key", "value"];
        let w = parts
            .iter()
            .map(|p| get(p, &[h, h], "weight"))
            .collect::<Result<Vec<_>>>()?;
        let b = parts
            .iter()
            .map(|p| get(p, &[h], "bias"))
            .collect::<Result<Vec<_>>>()?;
        let (w, b) = (Tensor::cat(&w, 0)?, Tensor::cat(&b, 0)?);
        let out = vb.pp("output");
        Ok(Self {
            // `cat` is an op like any other: when training, gradients flow back through it into
            // the three variables.
            qkv: Linear::with_autograd(w, b, vb.trainable())?.packed_as(vb.packing())?,
            heads: cfg.num_attention_heads,
            autograd: vb.trainable(),
            output: Linear::load(&out.pp("dense"), h, h)?,
            layer_norm: LayerNorm::load(&out.pp("LayerNorm"), h, cfg.layer_norm_eps)?,
        })
    }

    fn forward(&self, x: &Tensor, mask: &AttentionMask) -> Result<Tensor> {
        let qkv = self.qkv.forward(x)?;
        let ctx = attention(&qkv, mask, self.heads, self.autograd)?;
        self.output.forward_residual_norm(&ctx, x, &self.layer_norm)
    }
}

/// Ports `BertLayer` (attention, `BertIntermediate`, `BertOutput`).
struct BertLayer {
    attention: BertAttention,
    intermediate: Linear,
    act: HiddenAct,
    output: Linear,
    layer_norm: LayerNorm,
}

impl BertLayer {
    fn load(vb: &Vb, cfg: &BertConfig) -> Result<Self> {
        let (h, i) = (cfg.hidden_size, cfg.intermediate_size);
        Ok(Self {
            attention: BertAttention::load(&vb.pp("attention"), cfg)?,
            intermediate: Linear::load(&vb.pp("intermediate").pp("dense"), h, i)?,
            act: cfg.hidden_act,
            output: Linear::load(&vb.pp("output").pp("dense"), i, h)?,
            layer_norm: LayerNorm::load(&vb.pp("output").pp("LayerNorm"), h, cfg.layer_norm_eps)?,
        })
    }

    fn forward(&self, x: &Tensor, mask: &AttentionMask) -> Result<Tensor> {
        let a = self.attention.forward(x, mask)?;
        let act = match self.act {
            HiddenAct::Gelu => self.intermediate.forward_act(&a, Activation::Gelu)?,
            HiddenAct::Relu => self.intermediate.forward(&a)?.relu()?,
        };
        self.output
            .forward_residual_norm(&act, &a, &self.layer_norm)
    }
}

/// Ports `BertModel` without the pooler: embeddings then the layer stack, returning
/// `last_hidden_state`.
pub struct BertModel {
    pub embeddings: BertEmbeddings,
    layers: Vec<BertLayer>,
    hidden: usize,
}

impl BertModel {
    pub fn load(vb: &Vb, cfg: &BertConfig, with_words: bool) -> Result<Self> {
        let layers = (0..cfg.num_hidden_layers)
            .map(|i| BertLayer::load(&vb.pp(format!("encoder.layer.{i}")), cfg))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            embeddings: BertEmbeddings::load(&vb.pp("embeddings"), cfg, with_words)?,
            layers,
            hidden: cfg.hidden_size,
        })
    }

    pub fn hidden_size(&self) -> usize {
        self.hidden
    }

    /// `last_hidden_state` `[b, s, h]` for `inputs_embeds` `[b, s, h]`.
    pub fn forward(
        &self,
        embeds: &Tensor,
        position_ids: &Tensor,
        mask: &AttentionMask,
    ) -> Result<Tensor> {
        let run = || {
            let mut x = self.embeddings.forward(embeds, position_ids)?;
            for layer in &self.layers {
                x = layer.forward(&x, mask)?;
            }
            Ok(x)
        };
        // On the CPU, run the layers on one of rayon's threads. Called from any other thread,
        // each of a layer's dozen parallel passes is handed to the pool while this thread
        // sleeps until it ends, and the pool's threads sleep between passes: those futex
        // wake-ups were ~15% of an indexing run in `perf`. From a pool thread, the caller
        // takes part in each pass and the others find the next one while still spinning.
        // (Not with the fused kernels switched off: that switch belongs to this thread.)
        if embeds.device().is_cpu()
            && rayon::current_thread_index().is_none()
            && !kernels::composed_only()
        {
            rayon::scope(|_| run())
        } else {
            run()
        }
    }
}

/// CLaMP's `avg_pooling`: the mean of `hidden` `[b, s, h]` over the positions `mask` `[b, s]`
/// keeps, in f32 whatever the model's precision (a half-precision sum over 512 patches would
/// lose digits the projection then amplifies).
pub fn masked_mean(hidden: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let hidden = hidden.to_dtype(DType::F32)?;
    let m = mask.to_dtype(DType::F32)?.unsqueeze(D::Minus1)?;
    let sum = hidden.broadcast_mul(&m)?.sum(1)?;
    Ok(sum.broadcast_div(&m.sum(1)?)?)
}

/// `[b, s]` u32 positions `0..s` for every row (BERT).
pub fn arange_positions(b: usize, s: usize, device: &Device) -> Result<Tensor> {
    let row: Vec<u32> = (0..s as u32).collect();
    Ok(Tensor::new(row.as_slice(), device)?
        .unsqueeze(0)?
        .repeat((b, 1))?)
}
