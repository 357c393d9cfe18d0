//! Fused CPU attention: one task per (batch row, head) runs `softmax(Q K^T / sqrt d) V` with
//! single-threaded `gemm` calls, the scale folded into the first matmul and the softmax done in
//! place, writing straight into the merged-heads output. Tasks run in parallel on rayon.
//!
//! Why: candle's composed attention makes five passes for softmax, a separate scaling pass and a
//! mask add, and its matmul does not thread the small per-head products (see
//! `shared/notes/stack.md`). Only the real `lengths[i] x lengths[i]` block of each row is
//! computed, so padding costs nothing here; padded query rows come out as zeros (they are
//! masked out of every pooled result).

use candle_core::{CpuStorage, CustomOp1, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::error::Result;
use super::kernels::{self, SendPtr};

struct FusedAttention {
    lengths: Vec<usize>,
    heads: usize,
}

impl CustomOp1 for FusedAttention {
    fn name(&self) -> &'static str {
        "fused-attention"
    }

    fn cpu_fwd(
        &self,
        storage: &CpuStorage,
        layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (b, s, h3) = layout.shape().dims3()?;
        let CpuStorage::F32(all) = storage else {
            candle_core::bail!("fused attention wants f32");
        };
        let Some((start, end)) = layout.contiguous_offsets() else {
            candle_core::bail!("fused attention wants a contiguous qkv");
        };
        if self.lengths.len() != b || h3 % (3 * self.heads) != 0 {
            candle_core::bail!(
                "fused attention: {} lengths, width {h3}, {} heads",
                self.lengths.len(),
                self.heads
            );
        }
        let qkv = &all[start..end];
        let h = h3 / 3;
        let d = h / self.heads;
        let scale = 1.0 / (d as f32).sqrt();
        let mut out = vec![0f32; b * s * h];
        let out_ptr = SendPtr(out.as_mut_ptr());
        (0..b * self.heads).into_par_iter().for_each(|task| {
            let (bi, hd) = (task / self.heads, task % self.heads);
            let l = self.lengths[bi].min(s);
            let base = bi * s * h3 + hd * d;
            let (q, k, v) = (&qkv[base..], &qkv[base + h..], &qkv[base + 2 * h..]);
            let mut scores = vec![0f32; l * l];
            // SAFETY: the slices cover rows 0..l of this batch row with stride 3h (checked by
            // the shape above); `scores` is l x l; the output region rows 0..l, columns
            // hd*d..hd*d+d of batch row bi belongs to this task alone.
            unsafe {
                gemm::gemm(
                    l,
                    l,
                    d,
                    scores.as_mut_ptr(),
                    1,
                    l as isize,
                    false,
                    q.as_ptr(),
                    1,
                    h3 as isize,
                    k.as_ptr(),
                    h3 as isize,
                    1,
                    0.0,
                    scale,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
            for row in scores.chunks_exact_mut(l.max(1)) {
                kernels::softmax_in_place(row);
            }
            unsafe {
                gemm::gemm(
                    l,
                    d,
                    l,
                    out_ptr.get().add(bi * s * h + hd * d),
                    1,
                    h as isize,
                    false,
                    scores.as_ptr(),
                    1,
                    l as isize,
                    v.as_ptr(),
                    1,
                    h3 as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::None,
                );
            }
        });
        Ok((CpuStorage::F32(out), Shape::from((b, s, h))))
    }
}

/// Attention for a contiguous f32 `qkv` `[b, s, 3h]` on the CPU; rows keep their first
/// `lengths[i]` positions.
pub fn attention_cpu(qkv: &Tensor, lengths: &[usize], heads: usize) -> Result<Tensor> {
    let qkv = qkv.contiguous()?;
    Ok(qkv.apply_op1_no_bwd(&FusedAttention {
        lengths: lengths.to_vec(),
        heads,
    })?)
}
