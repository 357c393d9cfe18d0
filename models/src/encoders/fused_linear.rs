//! `act(x W^T + b)` (optionally `+ residual`, then optionally a LayerNorm) on the CPU as one
//! op. candle's composed path makes a separate pass for the bias, one more for GELU
//! (single-threaded, with libm's erf), one for the residual and one for the norm, each into a
//! new tensor.
//!
//! Where the CPU has AVX-512 or AVX2 the weight is packed once at load ([`PackedWeight`]) and the
//! product runs on this crate's kernels instead of `gemm`, which packs it on every call. The
//! f32 kernel starts its sums from the bias (and residual) and applies GELU before its last
//! store ([`PackedF32::linear`]); the others add onto an output pre-filled with the bias, and
//! GELU is a pass of its own. The LayerNorm runs in place on the output rows, so BERT's sum
//! before each norm is never a tensor of its own.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

use super::bf16_matmul::PackedBf16;
use super::error::Result;
use super::f32_matmul::PackedF32;
use super::kernels::{self, Norm};

/// A linear layer's weight packed once for one of the CPU kernels.
#[derive(Clone, Debug)]
pub enum PackedWeight {
    /// Rounded to bf16, for [`bf16_matmul`](super::bf16_matmul) (`--dtype bf16`).
    Bf16(PackedBf16),
    /// In f32, for [`f32_matmul`](super::f32_matmul).
    F32(PackedF32),
}

/// Which packing a model's linear layers get (see [`super::weights::Vb::with_precision`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packing {
    Bf16,
    F32,
}

impl PackedWeight {
    /// Packs `w`, row-major `[n, k]`.
    pub fn pack(packing: Packing, w: &[f32], n: usize, k: usize) -> Self {
        match packing {
            Packing::Bf16 => Self::Bf16(PackedBf16::pack(w, n, k)),
            Packing::F32 => Self::F32(PackedF32::pack(w, n, k)),
        }
    }

    pub fn n(&self) -> usize {
        match self {
            Self::Bf16(p) => p.n(),
            Self::F32(p) => p.n(),
        }
    }

    pub fn k(&self) -> usize {
        match self {
            Self::Bf16(p) => p.k(),
            Self::F32(p) => p.k(),
        }
    }

    /// The weight, row-major `[n, k]` (bf16-rounded where it was packed so), for the
    /// composed ops.
    pub fn unpack(&self) -> Vec<f32> {
        match self {
            Self::Bf16(p) => p.unpack(),
            Self::F32(p) => p.unpack(),
        }
    }

    /// `out += x Wᵀ` (see each kernel's `matmul_add`).
    pub fn matmul_add(&self, x: &[f32], rows: usize, out: &mut [f32]) {
        match self {
            Self::Bf16(p) => p.matmul_add(x, rows, out),
            Self::F32(p) => p.matmul_add(x, rows, out),
        }
    }
}

/// The weight an op multiplies by: packed, or a tensor passed to the op as its second input.
#[derive(Clone, Copy)]
pub enum WeightRef<'a> {
    Packed(&'a PackedWeight),
    Tensor(&'a Tensor),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    None,
    /// HF's exact (erf) GELU.
    Gelu,
}

/// The op; the bias lives on the host beside the weight (it is small), which leaves the
/// third input free for a residual.
struct FusedLinear<'a> {
    act: Activation,
    bias: &'a [f32],
    /// The weight packed: the product runs on its kernel, and the op takes no weight input.
    packed: Option<&'a PackedWeight>,
    /// A LayerNorm over each output row, in place, last.
    norm: Option<Norm<'a>>,
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
    /// `w` is the weight tensor's storage, absent when the weight is packed.
    fn run(
        &self,
        (xs, xl): (&CpuStorage, &Layout),
        w: Option<(&CpuStorage, &Layout)>,
        residual: Option<(&CpuStorage, &Layout)>,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (rows, k) = xl.shape().dims2()?;
        let (n, k2) = match (self.packed, w) {
            (Some(p), None) => (p.n(), p.k()),
            (None, Some((_, wl))) => wl.shape().dims2()?,
            _ => candle_core::bail!("fused linear: a weight both packed and passed, or neither"),
        };
        if k != k2 || self.bias.len() != n {
            candle_core::bail!(
                "fused linear: x {:?}, w {n}x{k2}, bias of {}",
                xl.dims(),
                self.bias.len()
            );
        }
        let x = slice(xs, xl, "x")?;
        let residual = match residual {
            Some((rs, rl)) => {
                if rl.shape().dims() != [rows, n] {
                    candle_core::bail!("fused linear: residual {:?}, want {rows}x{n}", rl.dims());
                }
                Some(slice(rs, rl, "residual")?)
            }
            None => None,
        };
        let mut out = match self.packed {
            Some(PackedWeight::F32(packed)) => {
                packed.linear(x, rows, self.bias, residual, self.act == Activation::Gelu)
            }
            _ => self.prefilled_product(x, rows, n, k, w, residual)?,
        };
        if let Some(norm) = self.norm {
            kernels::layer_norm_rows(&mut out, norm);
        }
        Ok((CpuStorage::F32(out), Shape::from((rows, n))))
    }

    /// `act(x Wᵀ + bias [+ residual])` on a kernel that adds onto its output: the output is
    /// pre-filled with the bias (and residual) first.
    fn prefilled_product(
        &self,
        x: &[f32],
        rows: usize,
        n: usize,
        k: usize,
        w: Option<(&CpuStorage, &Layout)>,
        residual: Option<&[f32]>,
    ) -> candle_core::Result<Vec<f32>> {
        // Pre-fill with bias (+ residual) in parallel row blocks; the product accumulates onto
        // it. The buffer is written once here, not zeroed first (memset was ~2.5% of a pass).
        let len = rows * n;
        let mut out: Vec<f32> = Vec::with_capacity(len);
        if let Some(per_block) = 16_384usize.checked_div(n) {
            let block = per_block.max(1) * n;
            out.spare_capacity_mut()[..len]
                .par_chunks_mut(block)
                .enumerate()
                .for_each(|(bi, chunk)| {
                    for (ri, row) in chunk.chunks_mut(n).enumerate() {
                        let at = bi * block + ri * n;
                        match residual {
                            Some(r) => {
                                let sums = self.bias.iter().zip(&r[at..at + n]).map(|(b, v)| b + v);
                                for (o, v) in row.iter_mut().zip(sums) {
                                    o.write(v);
                                }
                            }
                            None => {
                                for (o, b) in row.iter_mut().zip(self.bias) {
                                    o.write(*b);
                                }
                            }
                        }
                    }
                });
        }
        // SAFETY: the loop above wrote all `len` values: the chunks cover `..len` in whole rows
        // of `n`, and each row is zipped with `bias` (and the residual's row), both `n` long
        // (checked above).
        unsafe { out.set_len(len) };
        match (self.packed, w) {
            (Some(packed), _) => packed.matmul_add(x, rows, &mut out),
            (None, Some((ws, wl))) => gemm_add(x, slice(ws, wl, "w")?, rows, n, k, &mut out),
            (None, None) => candle_core::bail!("fused linear: no weight"),
        }
        if self.act == Activation::Gelu {
            kernels::par_rows(&mut out, n, kernels::gelu_row);
        }
        Ok(out)
    }
}

/// `out += x wᵀ` for `x` `rows` × `k`, `w` `n` × `k` and `out` `rows` × `n`, all row-major, by
/// `gemm` (which packs `w` on every call; `examples/matmul_shapes.rs` compares the two).
pub fn gemm_add(x: &[f32], w: &[f32], rows: usize, n: usize, k: usize, out: &mut [f32]) {
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

/// The op with the weight as its second input.
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
        self.run((xs, xl), Some((ws, wl)), None)
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
        self.0.run((xs, xl), Some((ws, wl)), Some((rs, rl)))
    }
}

/// The op on a packed weight: `x` is its only input.
impl CustomOp1 for FusedLinear<'_> {
    fn name(&self) -> &'static str {
        "fused-linear-packed"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout) -> candle_core::Result<(CpuStorage, Shape)> {
        self.run((xs, xl), None, None)
    }
}

/// The op on a packed weight with a residual as its second input.
impl CustomOp2 for FusedLinearResidual<'_> {
    fn name(&self) -> &'static str {
        "fused-linear-packed-residual"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        rs: &CpuStorage,
        rl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        self.0.run((xs, xl), None, Some((rs, rl)))
    }
}

/// `act(x W^T + b) [+ residual]` for `x` `[rows, in]`, `w` `[out, in]`, `bias` of `out`, an
/// optional `residual` `[rows, out]`, all f32 on the CPU, then `norm` over each row if given.
/// (With a residual the activation, if any, applies after the add; BERT only uses
/// `Activation::None` there.) A packed weight runs on its kernel ([`PackedWeight`]).
pub fn linear_cpu(
    x: &Tensor,
    w: WeightRef<'_>,
    bias: &[f32],
    act: Activation,
    residual: Option<&Tensor>,
    norm: Option<Norm<'_>>,
) -> Result<Tensor> {
    let x = x.contiguous()?;
    let residual = residual.map(Tensor::contiguous).transpose()?;
    Ok(match w {
        WeightRef::Packed(packed) => {
            let op = FusedLinear {
                act,
                bias,
                packed: Some(packed),
                norm,
            };
            match residual {
                None => x.apply_op1_no_bwd(&op)?,
                Some(r) => x.apply_op2_no_bwd(&r, &FusedLinearResidual(op))?,
            }
        }
        WeightRef::Tensor(w) => {
            let op = FusedLinear {
                act,
                bias,
                packed: None,
                norm,
            };
            match residual {
                None => x.apply_op2_no_bwd(w, &op)?,
                Some(r) => x.apply_op3_no_bwd(w, &r, &FusedLinearResidual(op))?,
            }
        }
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
            let got = linear_cpu(
                &x,
                WeightRef::Tensor(&w),
                &b.to_vec1::<f32>()?,
                act,
                None,
                None,
            )?;
            let diff = (got - want)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(diff < 1e-5, "{act:?}: {diff}");
        }
        let r = Tensor::randn(0f32, 1.0, (33, 50), &dev)?;
        let got = linear_cpu(
            &x,
            WeightRef::Tensor(&w),
            &b.to_vec1::<f32>()?,
            Activation::None,
            Some(&r),
            None,
        )?;
        let with_residual = (&plain + &r)?;
        let diff = (got - &with_residual)?
            .abs()?
            .max_all()?
            .to_scalar::<f32>()?;
        assert!(diff < 1e-5, "residual: {diff}");
        // The same on the f32 weight packed for this crate's kernel, where the CPU has it.
        if super::super::f32_matmul::available() {
            let packed = PackedWeight::pack(Packing::F32, &w.flatten_all()?.to_vec1()?, 50, 70);
            let bias = b.to_vec1::<f32>()?;
            for (name, act, residual, want) in [
                ("packed", Activation::None, None, plain.clone()),
                (
                    "packed with a residual",
                    Activation::None,
                    Some(&r),
                    with_residual,
                ),
                (
                    "packed with GELU",
                    Activation::Gelu,
                    None,
                    plain.gelu_erf()?,
                ),
            ] {
                let got = linear_cpu(&x, WeightRef::Packed(&packed), &bias, act, residual, None)?;
                let diff = (got - want)?.abs()?.max_all()?.to_scalar::<f32>()?;
                assert!(diff < 1e-5, "{name}: {diff}");
            }
        }
        Ok(())
    }

    /// A LayerNorm fused after the residual equals candle's LayerNorm of the composed sum, on
    /// both weight paths, at a width with a tail of lanes (50) and past one kernel block (k
    /// 300).
    #[test]
    fn fused_norm_matches_layer_norm() -> Result<()> {
        let dev = Device::Cpu;
        let (rows, n, k) = (37, 50, 300);
        let x = Tensor::randn(0f32, 1.0, (rows, k), &dev)?;
        let w = Tensor::randn(0f32, 0.1, (n, k), &dev)?;
        let b = Tensor::randn(0f32, 1.0, n, &dev)?;
        let r = Tensor::randn(0f32, 1.0, (rows, n), &dev)?;
        let gamma = Tensor::randn(1f32, 0.1, n, &dev)?;
        let beta = Tensor::randn(0f32, 0.1, n, &dev)?;
        let sum = (x.matmul(&w.t()?)?.broadcast_add(&b)? + &r)?;
        let want = candle_nn::ops::layer_norm_slow(&sum, &gamma, &beta, 1e-12)?;
        let (bias, g, be) = (
            b.to_vec1::<f32>()?,
            gamma.to_vec1::<f32>()?,
            beta.to_vec1::<f32>()?,
        );
        let norm = Norm {
            gamma: &g,
            beta: &be,
            eps: 1e-12,
        };
        let packed = PackedWeight::pack(Packing::F32, &w.flatten_all()?.to_vec1()?, n, k);
        let mut weights = vec![("tensor", WeightRef::Tensor(&w))];
        if super::super::f32_matmul::available() {
            weights.push(("packed", WeightRef::Packed(&packed)));
        }
        for (name, weight) in weights {
            let got = linear_cpu(&x, weight, &bias, Activation::None, Some(&r), Some(norm))?;
            let diff = (got - &want)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(diff < 1e-4, "{name}: {diff}");
        }
        Ok(())
    }
}
