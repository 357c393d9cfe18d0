//! Scaled dot-product attention over a fused QKV projection, with prefix padding masks.
//!
//! Batches are always padded at the end, so a mask is a length per row. On CPU the work goes to
//! the fused kernel in [`super::fused_attention`]; elsewhere (CUDA) the composed candle ops below
//! run, which match HF's eager attention (`scores + (1 - mask) * finfo.min`, softmax, `@ V`).

use candle_core::{DType, Device, Tensor};

use super::error::{ModelError, Result};
use super::fused_attention;
use super::kernels::fused_takes;

/// Which rows of a padded batch are real: row `i` keeps its first `lengths[i]` positions.
#[derive(Clone, Debug)]
pub struct AttentionMask {
    lengths: Vec<usize>,
    seq: usize,
    /// `[b, s]` f32, 1 for kept positions: used for pooling.
    mask: Tensor,
}

impl AttentionMask {
    pub fn from_lengths(lengths: &[usize], seq: usize, device: &Device) -> Result<Self> {
        if let Some(&l) = lengths.iter().find(|&&l| l == 0 || l > seq) {
            return Err(ModelError::Input(format!(
                "sequence length {l} outside 1..={seq}"
            )));
        }
        let data: Vec<f32> = lengths
            .iter()
            .flat_map(|&l| (0..seq).map(move |j| if j < l { 1.0 } else { 0.0 }))
            .collect();
        let mask = Tensor::from_vec(data, (lengths.len(), seq), device)?;
        Ok(Self {
            lengths: lengths.to_vec(),
            seq,
            mask,
        })
    }

    pub fn lengths(&self) -> &[usize] {
        &self.lengths
    }

    pub fn seq(&self) -> usize {
        self.seq
    }

    pub fn mask(&self) -> &Tensor {
        &self.mask
    }

    /// HF's extended mask: 0 where kept, `finfo(dtype).min` where padded, `[b, 1, 1, s]`, in
    /// `dtype` (the scores'). The f32 minimum would overflow f16 to -inf, so each precision gets
    /// its own most negative finite value, as HF does.
    fn additive_bias(&self, dtype: DType) -> Result<Tensor> {
        let min = match dtype {
            DType::F16 => -65_504.0,        // f16::MIN
            DType::BF16 => -3.389_531_4e38, // bf16::MIN
            _ => f32::MIN as f64,
        };
        let bias = ((self.mask.clone() - 1.0)? * (-min))?.to_dtype(dtype)?;
        Ok(bias.unsqueeze(1)?.unsqueeze(1)?)
    }
}

/// Attention for `qkv` `[b, s, 3h]` (Q, K, V concatenated on the last dim), returning the merged
/// heads `[b, s, h]`. `autograd`: only ops candle can differentiate (training).
pub fn attention(
    qkv: &Tensor,
    mask: &AttentionMask,
    heads: usize,
    autograd: bool,
) -> Result<Tensor> {
    if !autograd && fused_takes(qkv) {
        return fused_attention::attention_cpu(qkv, mask.lengths(), heads);
    }
    composed(qkv, mask, heads, autograd)
}

/// The reference path, as candle ops; used off the CPU, by training and by tests as the oracle.
pub fn composed(
    qkv: &Tensor,
    mask: &AttentionMask,
    heads: usize,
    autograd: bool,
) -> Result<Tensor> {
    let (b, s, h3) = qkv.dims3()?;
    let h = h3 / 3;
    let d = h / heads;
    let split = |i: usize| -> Result<Tensor> {
        Ok(qkv
            .narrow(2, i * h, h)?
            .reshape((b, s, heads, d))?
            .transpose(1, 2)?
            .contiguous()?)
    };
    let (q, k, v) = (split(0)?, split(1)?, split(2)?);
    let scores = (q.matmul(&k.t()?)? * (1.0 / (d as f64).sqrt()))?;
    let scores = scores.broadcast_add(&mask.additive_bias(scores.dtype())?)?;
    // The one-pass softmax op is faster but has no backward pass.
    let probs = if autograd {
        candle_nn::ops::softmax(&scores, candle_core::D::Minus1)?
    } else {
        candle_nn::ops::softmax_last_dim(&scores)?
    };
    let ctx = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, s, h))?;
    Ok(ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fused CPU kernel and the composed ops (the CUDA path) agree on every kept row.
    #[test]
    fn fused_matches_composed() -> Result<()> {
        let dev = Device::Cpu;
        let (b, s, heads, d) = (3, 37, 4, 16);
        let qkv = Tensor::randn(0f32, 1.0, (b, s, 3 * heads * d), &dev)?;
        let lengths = [37, 5, 20];
        let mask = AttentionMask::from_lengths(&lengths, s, &dev)?;
        let fused = attention(&qkv, &mask, heads, false)?.to_vec3::<f32>()?;
        let slow = composed(&qkv, &mask, heads, false)?.to_vec3::<f32>()?;
        for (i, &l) in lengths.iter().enumerate() {
            for j in 0..l {
                for (x, y) in fused[i][j].iter().zip(&slow[i][j]) {
                    assert!((x - y).abs() < 1e-5, "row {i} pos {j}: {x} vs {y}");
                }
            }
        }
        Ok(())
    }
}
