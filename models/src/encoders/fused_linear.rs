//! `act(x W^T + b)` on the CPU as one `gemm` call: the output is pre-filled with the bias and
//! the product accumulated onto it, then the activation runs in place. candle's composed path
//! makes a separate pass for the bias and (for GELU) one more, single-threaded, with libm's erf.

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};

use super::error::Result;
use super::kernels;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    None,
    /// HF's exact (erf) GELU.
    Gelu,
}

struct FusedLinear {
    act: Activation,
}

fn slice<'a>(s: &'a CpuStorage, l: &Layout, what: &str) -> candle_core::Result<&'a [f32]> {
    let CpuStorage::F32(all) = s else {
        candle_core::bail!("fused linear: {what} is not f32");
    };
    let Some((start, end)) = l.contiguous_offsets() else {
        candle_core::bail!("fused linear: {what} is not contiguous");
    };
    Ok(&all[start..end])
}

impl CustomOp3 for FusedLinear {
    fn name(&self) -> &'static str {
        "fused-linear"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (rows, k) = xl.shape().dims2()?;
        let (n, k2) = wl.shape().dims2()?;
        if k != k2 || bl.shape().dims() != [n] {
            candle_core::bail!(
                "fused linear: x {:?}, w {:?}, b {:?}",
                xl.dims(),
                wl.dims(),
                bl.dims()
            );
        }
        let (x, w, b) = (
            slice(xs, xl, "x")?,
            slice(ws, wl, "w")?,
            slice(bs, bl, "b")?,
        );
        let mut out: Vec<f32> = Vec::with_capacity(rows * n);
        for _ in 0..rows {
            out.extend_from_slice(b);
        }
        let threads = rayon::current_num_threads();
        let parallelism = if rows * n * k >= 48 * 48 * 256 && threads > 1 {
            gemm::Parallelism::Rayon(threads)
        } else {
            gemm::Parallelism::None
        };
        // SAFETY: `out` is rows x n row-major, `x` rows x k row-major and `w` n x k row-major
        // (read as its transpose: column stride k, row stride 1); all sizes checked above.
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
        if self.act == Activation::Gelu {
            kernels::par_rows(&mut out, n, kernels::gelu_row);
        }
        Ok((CpuStorage::F32(out), Shape::from((rows, n))))
    }
}

/// `act(x W^T + b)` for `x` `[rows, in]`, `w` `[out, in]`, `b` `[out]`, all f32 on the CPU.
pub fn linear_cpu(x: &Tensor, w: &Tensor, b: &Tensor, act: Activation) -> Result<Tensor> {
    Ok(x.contiguous()?
        .apply_op3_no_bwd(w, b, &FusedLinear { act })?)
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
            let got = linear_cpu(&x, &w, &b, act)?;
            let diff = (got - want)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(diff < 1e-5, "{act:?}: {diff}");
        }
        Ok(())
    }
}
