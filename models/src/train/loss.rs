//! CLaMP's symmetric contrastive loss with in-batch negatives: row i of `a` should pick row i
//! of `b` among all rows of `b`, and the other way round.

use candle_core::{Tensor, D};

/// Rows scaled to unit length.
pub fn l2_normalize(x: &Tensor) -> candle_core::Result<Tensor> {
    let n = x
        .sqr()?
        .sum_keepdim(D::Minus1)?
        .sqrt()?
        .clamp(1e-12, f64::MAX)?;
    x.broadcast_div(&n)
}

/// Mean of the two cross-entropies of `scale * a·bᵀ` (`scale` a scalar tensor, e.g.
/// `exp(logit_scale)`), each row's target its own index.
pub fn symmetric_contrastive(
    a: &Tensor,
    b: &Tensor,
    scale: &Tensor,
) -> candle_core::Result<Tensor> {
    let (a, b) = (l2_normalize(a)?, l2_normalize(b)?);
    let logits = a.matmul(&b.t()?)?.broadcast_mul(scale)?;
    let n = logits.dim(0)?;
    let targets = Tensor::arange(0u32, n as u32, logits.device())?;
    let l1 = candle_nn::loss::cross_entropy(&logits, &targets)?;
    let l2 = candle_nn::loss::cross_entropy(&logits.t()?.contiguous()?, &targets)?;
    (l1 + l2)? / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn matching_rows_give_a_small_loss_and_shuffled_a_large_one() -> candle_core::Result<()> {
        let dev = Device::Cpu;
        let a = Tensor::new(&[[1f32, 0., 0.], [0., 1., 0.], [0., 0., 1.]], &dev)?;
        let swapped = Tensor::new(&[[0f32, 1., 0.], [1., 0., 0.], [0., 0., 1.]], &dev)?;
        let scale = Tensor::new(20f32, &dev)?;
        let good = symmetric_contrastive(&a, &a, &scale)?.to_scalar::<f32>()?;
        let bad = symmetric_contrastive(&a, &swapped, &scale)?.to_scalar::<f32>()?;
        assert!(good < 1e-3, "{good}");
        assert!(bad > 5.0, "{bad}");
        Ok(())
    }
}
