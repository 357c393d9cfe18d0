//! `act(x W^T + b)` (optionally `+ residual`) on the CPU as one `gemm` call: the output is
//! pre-filled with the bias (and residual) and the product accumulated onto it, then the
//! activation runs in place. candle's composed path
//! makes a separate pass for the bias and (for GELU) one more, single-threaded, with libm's erf.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::bf16_matmul::PackedBf16;
use super::error::Result;
use super::kernels;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    None,
    /// HF's exact (erf) GELU.
    Gelu,
}

/// The op; the bias lives on the host beside the weight tensor (it is small), which leaves the
/// third input free for a residual.
struct FusedLinear<'a> {
    act: Activation,
    bias: &'a [f32],
    /// The weight in bf16, packed: the product runs in [`bf16_matmul`] instead of `gemm`.
    packed: Option<&'a PackedBf16>,
}

/// The same with a residual added into the pre-filled output (`x W^T + b + residual`), which
/// saves BERT's separate single-threaded add before each LayerNorm.
struct FusedLinearResidual<'a>(FusedLinear<'a>);

fn slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(all) = s else {
        candle_core::bail!("fused linear: {what} is not f32");
    };
    let Some((start, end)) = l.contiguous_offsets() else {
        candle_core::bail!("fused linear: {what} is not contiguous");
    };
    Ok(&all[start..end])
}

impl FusedLinear<'_> {
    fn run(
        &self,
        (xs, xl): (&CpuStorage, &Layout),
        (ws, wl): (&CpuStorage, &Layout),
        residual: Option<(&CpuStorage, &Layout)>,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (rows, k) = xl.shape().dims2()?;
        let (n, k2) = wl.shape().dims2()?;
        if k != k2 || self.bias.len() != n {
            candle_core::bail!(
                "fused linear: x {:?}, w {:?}, bias of {}",
                xl.dims(),
                wl.dims(),
                self.bias.len()
            );
        }
        if let Some(packed) = self.packed {
            if (packed.n(), packed.k()) != (n, k) {
                candle_core::bail!(
                    "fused linear: packed {}x{}, w {n}x{k}",
                    packed.n(),
                    packed.k()
                );
            }
        }
        let (x, w) = (slice(xs, xl, "x")?, slice(ws, wl, "w")?);
        let residual = match residual {
            Some((rs, rl)) => {
                if rl.shape().dims() != [rows, n] {
                    candle_core::bail!("fused linear: residual {:?}, want {rows}x{n}", rl.dims());
                }
                Some(slice(rs, rl, "residual")?)
            }
            None => None,
        };
        // Pre-fill with bias (+ residual) in parallel row blocks; the gemm accumulates onto it.
        let mut out = vec![0f32; rows * n];
        let block = (16_384 / n.max(1)).max(1) * n;
        out.par_chunks_mut(block)
            .enumerate()
            .for_each(|(bi, chunk)| {
                for (ri, row) in chunk.chunks_mut(n).enumerate() {
                    row.copy_from_slice(self.bias);
                    if let Some(r) = residual {
                        let at = bi * block + ri * n;
                        for (o, v) in row.iter_mut().zip(&r[at..at + n]) {
                            *o += v;
                        }
                    }
                }
            });
        match self.packed {
            Some(packed) => packed.matmul_add(x, rows, &mut out),
            None => gemm_add(x, w, rows, n, k, &mut out),
        }
        if self.act == Activation::Gelu {
            kernels::par_rows(&mut out, n, kernels::gelu_row);
        }
        Ok((CpuStorage::F32(out), Shape::from((rows, n))))
    }
}

/// `out += x wᵀ` for `x` `rows` × `k`, `w` `n` × `k` and `out` `rows` × `n`, all row-major, by
/// `gemm`.
fn gemm_add(x: &[f32], w: &[f32], rows: usize, n: usize, k: usize, out: &mut [f32]) {
    assert!(x.len() == rows * k && w.len() == n * k && out.len() == rows * n);
    let threads = rayon::current_num_threads();
    let parallelism = if rows * n * k >= 48 * 48 * 256 && threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: `out` is rows x n row-major, `x` rows x k row-major and `w` n x k row-major
    // (read as its transpose: column stride k, row stride 1); sizes asserted above.
    unsafe {
        gemm::gemm(
            rows,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            true,
            x.as_ptr(),
            1,
            k as isize,
            w.as_ptr(),
            k as isize,
            1,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

impl CustomOp2 for FusedLinear<'_> {
    fn name(&self) -> &'static str {
        "fused-linear"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        self.run((xs, xl), (ws, wl), None)
    }
}

impl CustomOp3 for FusedLinearResidual<'_> {
    fn name(&self) -> &'static str {
        "fused-linear-residual"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        rs: &CpuStorage,
        rl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        self.0.run((xs, xl), (ws, wl), Some((rs, rl)))
    }
}

/// `act(x W^T + b) [+ residual]` for `x` `[rows, in]`, `w` `[out, in]`, `bias` of `out`, an
/// optional `residual` `[rows, out]`, all f32 on the CPU. (With a residual the activation, if
/// any, applies after the add; BERT only uses `Activation::None` there.) With `packed` (`w`
/// in bf16, see [`bf16_matmul`](super::bf16_matmul)) the product reads bf16.
pub fn linear_cpu(
    x: &Tensor,
    w: &Tensor,
    bias: &[f32],
    act: Activation,
    residual: Option<&Tensor>,
    packed: Option<&PackedBf16>,
) -> Result<Tensor> {
    let op = FusedLinear { act, bias, packed };
    let x = x.contiguous()?;
    Ok(match residual {
        None => x.apply_op2_no_bwd(w, &op)?,
        Some(r) => x.apply_op3_no_bwd(w, &r.contiguous()?, &FusedLinearResidual(op))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    /// The fused pass equals candle's matmul + bias (+ erf GELU).
    #[test]
    fn fused_matches_composed() -> Result<()> {
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (33, 70), &dev)?;
        let w = Tensor::randn(0f32, 0.2, (50, 70), &dev)?;
        let b = Tensor::randn(0f32, 1.0, 50, &dev)?;
        let plain = x.matmul(&w.t()?)?.broadcast_add(&b)?;
        for (act, want) in [
            (Activation::None, plain.clone()),
            (Activation::Gelu, plain.gelu_erf()?),
        ] {
            let got = linear_cpu(&x, &w, &b.to_vec1::<f32>()?, act, None, None)?;
            let diff = (got - want)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(diff < 1e-5, "{act:?}: {diff}");
        }
        let r = Tensor::randn(0f32, 1.0, (33, 50), &dev)?;
        let got = linear_cpu(
            &x,
            &w,
            &b.to_vec1::<f32>()?,
            Activation::None,
            Some(&r),
            None,
        )?;
        let diff = (got - (plain + r)?)?.abs()?.max_all()?.to_scalar::<f32>()?;
        assert!(diff < 1e-5, "residual: {diff}");
        Ok(())
    }
}
