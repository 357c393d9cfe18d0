//! Elementwise kernels for the CPU hot path. candle runs unary ops on one thread and its GELU
//! calls libm's `erf` per element; here GELU is a parallel in-place pass with a vectorisable erf
//! (Abramowitz–Stegun 7.1.26, |error| < 1.5e-7), and softmax uses a vectorisable `exp`.

/// Runs `f` over `n`-wide rows of `data`, in parallel chunks big enough to amortise the spawn.
pub fn par_rows(data: &mut [f32], n: usize, f: impl Fn(&mut [f32]) + Sync) {
    use rayon::prelude::*;
    let rows_per_chunk = (16_384 / n.max(1)).max(1);
    data.par_chunks_mut(rows_per_chunk * n)
        .for_each(|chunk| chunk.chunks_mut(n).for_each(&f));
}

/// Exact GELU, `0.5 x (1 + erf(x / sqrt 2))`.
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// Abramowitz–Stegun 7.1.26: erf(x) = 1 - t (a1 + t (a2 + …)) e^(-x²), t = 1 / (1 + p x).
/// Shared by [`erf`] and its 16-lane twin, which must agree.
const ERF_P: f32 = 0.327_591_1;
const ERF_A: [f32; 5] = [
    0.254_829_6,
    -0.284_496_72,
    1.421_413_8,
    -1.453_152_1,
    1.061_405_4,
];

/// Cephes `expf`: `x = n ln 2 + r` with ln 2 split in two for the reduction, then a degree-6
/// polynomial in `r`; inputs clamped to the finite range. Shared by [`exp`] and its 16-lane
/// twin.
const EXP_LN2_HI: f32 = 0.693_359_4;
const EXP_LN2_LO: f32 = -2.121_944_4e-4;
const EXP_MIN: f32 = -87.3;
const EXP_MAX: f32 = 88.3;
/// Adding 1.5 · 2^23 rounds to the nearest integer in the mantissa without a round
/// instruction (SSE2 has none).
const EXP_SHIFT: f32 = 12_582_912.0;
/// Highest degree first.
const EXP_POLY: [f32; 6] = [
    1.987_569_1e-4,
    1.398_2e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    0.5,
];

/// erf by Abramowitz–Stegun 7.1.26; branch-free so it vectorises.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    const A: [f32; 5] = ERF_A;
    let ax = x.abs();
    let t = 1.0 / (1.0 + ERF_P * ax);
    let poly = t * (A[0] + t * (A[1] + t * (A[2] + t * (A[3] + t * A[4]))));
    let y = 1.0 - poly * exp(-ax * ax);
    y.copysign(x)
}

/// e^x for f32 (Cephes `expf`: range reduction plus a degree-6 polynomial, ~1 ulp), branch-free
/// so loops over it vectorise; inputs are clamped to the finite range.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(EXP_MIN, EXP_MAX);
    let t = x * std::f32::consts::LOG2_E + EXP_SHIFT;
    let n = t - EXP_SHIFT;
    let r = x - n * EXP_LN2_HI - n * EXP_LN2_LO;
    let mut p = EXP_POLY[0];
    for c in &EXP_POLY[1..] {
        p = p * r + c;
    }
    let y = p * r * r + r + 1.0;
    let ni = t.to_bits() as i32 - EXP_SHIFT.to_bits() as i32;
    y * f32::from_bits(((ni + 127) << 23) as u32)
}

/// Softmax of one row in place: max, exp and sum, then scale. Dispatches to an AVX2 + FMA build
/// of the same loop where the CPU has it (the default target only assumes SSE2).
pub fn softmax_in_place(row: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports the features the function was compiled for.
            unsafe { softmax_avx2(row) };
            return;
        }
    }
    softmax_generic(row);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn softmax_avx2(row: &mut [f32]) {
    softmax_generic(row);
}

#[inline(always)]
fn softmax_generic(row: &mut [f32]) {
    let max = max8(row);
    for v in row.iter_mut() {
        *v = exp(*v - max);
    }
    let inv = 1.0 / sum8(row);
    for v in row.iter_mut() {
        *v *= inv;
    }
}

/// A sum with eight independent accumulators, which the compiler keeps in one vector register.
#[inline(always)]
fn sum8(xs: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let mut chunks = xs.chunks_exact(8);
    for c in &mut chunks {
        for i in 0..8 {
            acc[i] += c[i];
        }
    }
    acc.iter().sum::<f32>() + chunks.remainder().iter().sum::<f32>()
}

#[inline(always)]
fn max8(xs: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 8];
    let mut chunks = xs.chunks_exact(8);
    for c in &mut chunks {
        for i in 0..8 {
            acc[i] = if c[i] > acc[i] { c[i] } else { acc[i] };
        }
    }
    let tail = chunks
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    acc.iter().fold(tail, |m, &v| m.max(v))
}

/// `row[i] = gelu(row[i])` in place: AVX-512 where the CPU has it, else the same AVX2 dispatch
/// as the softmax.
pub fn gelu_row(row: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports the features the function was compiled for.
            unsafe { gelu_avx512(row) };
            return;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports the features the function was compiled for.
            unsafe { gelu_avx2(row) };
            return;
        }
    }
    row.iter_mut().for_each(|v| *v = gelu(*v));
}

/// LayerNorm's parameters over rows of `gamma.len()` values: `(x - mean) / sqrt(var + eps)
/// * gamma + beta`, with the biased variance, as PyTorch's `LayerNorm`.
#[derive(Clone, Copy, Debug)]
pub struct Norm<'a> {
    pub gamma: &'a [f32],
    pub beta: &'a [f32],
    pub eps: f32,
}

/// [`Norm`] over one row in place. Two passes (the mean, then the squared deviations from
/// it), as PyTorch computes it: candle's `E[x²] - mean²` in one pass loses digits when the
/// mean is large next to the spread, and its serial sums ran ~2.5x PyTorch's time at 768
/// wide. AVX-512 where the CPU has it.
pub fn layer_norm_row(row: &mut [f32], norm: Norm) {
    debug_assert!(row.len() == norm.gamma.len() && row.len() == norm.beta.len());
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports the features the function was compiled for.
            unsafe { layer_norm_avx512(row, norm) };
            return;
        }
    }
    layer_norm_generic(row, norm);
}

/// [`layer_norm_row`] over every row of `data` (rows `norm.gamma.len()` wide), in parallel.
pub fn layer_norm_rows(data: &mut [f32], norm: Norm) {
    par_rows(data, norm.gamma.len(), |row| layer_norm_row(row, norm));
}

fn layer_norm_generic(row: &mut [f32], norm: Norm) {
    let n = row.len().max(1) as f32;
    let mean = sum16(row.iter().copied()) / n;
    let var = sum16(row.iter().map(|v| (v - mean) * (v - mean))) / n;
    let inv = 1.0 / (var + norm.eps).sqrt();
    for ((v, g), b) in row.iter_mut().zip(norm.gamma).zip(norm.beta) {
        *v = (*v - mean) * inv * g + b;
    }
}

/// A sum in 16 interleaved partial sums, the order the 16-lane version adds in.
fn sum16(values: impl Iterator<Item = f32>) -> f32 {
    let mut lanes = [0f32; 16];
    for (i, v) in values.enumerate() {
        lanes[i % 16] += v;
    }
    lanes.iter().sum()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn layer_norm_avx512(row: &mut [f32], norm: Norm) {
    use std::arch::x86_64::*;
    let n = row.len();
    let full = n / 16 * 16;
    let tail = ((1u32 << (n - full)) - 1) as u16;
    let p = row.as_mut_ptr();
    // SAFETY (all blocks): lanes i..i+16 for i < full, and the `tail` lanes past `full`, are
    // within `row`, `gamma` and `beta` (all `n` long); masked lanes are neither read nor
    // written.
    let load = |i: usize| unsafe {
        if i < full {
            _mm512_loadu_ps(p.add(i))
        } else {
            _mm512_maskz_loadu_ps(tail, p.add(i))
        }
    };
    let mut sum = _mm512_setzero_ps();
    for i in (0..n).step_by(16) {
        sum = _mm512_add_ps(sum, load(i));
    }
    let mean = _mm512_reduce_add_ps(sum) / n as f32;
    let m = _mm512_set1_ps(mean);
    let mut sq = _mm512_setzero_ps();
    for i in (0..n).step_by(16) {
        // Masked-off lanes load 0, and 0 - mean must not count: mask the difference too.
        let d = _mm512_maskz_sub_ps(if i < full { u16::MAX } else { tail }, load(i), m);
        sq = _mm512_fmadd_ps(d, d, sq);
    }
    let var = _mm512_reduce_add_ps(sq) / n as f32;
    let inv = _mm512_set1_ps(1.0 / (var + norm.eps).sqrt());
    let (g, b) = (norm.gamma.as_ptr(), norm.beta.as_ptr());
    for i in (0..n).step_by(16) {
        let mask = if i < full { u16::MAX } else { tail };
        unsafe {
            let gi = _mm512_maskz_loadu_ps(mask, g.add(i));
            let bi = _mm512_maskz_loadu_ps(mask, b.add(i));
            let y = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_sub_ps(load(i), m), inv), gi, bi);
            _mm512_mask_storeu_ps(p.add(i), mask, y);
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn gelu_avx2(row: &mut [f32]) {
    use std::arch::x86_64::*;
    let mut chunks = row.chunks_exact_mut(8);
    for chunk in &mut chunks {
        // SAFETY: `chunk` holds exactly 8 values.
        unsafe {
            let x = _mm256_loadu_ps(chunk.as_ptr());
            _mm256_storeu_ps(chunk.as_mut_ptr(), gelu8(x));
        }
    }
    chunks
        .into_remainder()
        .iter_mut()
        .for_each(|v| *v = gelu(*v));
}

/// [`gelu`] on 8 lanes (AVX2 and FMA): [`gelu16`]'s steps, with a division where AVX-512
/// has a 14-bit reciprocal to refine (AVX2's is 12-bit).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(crate) fn gelu8(x: std::arch::x86_64::__m256) -> std::arch::x86_64::__m256 {
    use std::arch::x86_64::*;
    const A: [f32; 5] = ERF_A;
    let splat = _mm256_set1_ps;
    let z = _mm256_mul_ps(x, splat(std::f32::consts::FRAC_1_SQRT_2));
    let az = _mm256_andnot_ps(splat(-0.0), z);
    let t = _mm256_div_ps(splat(1.0), _mm256_fmadd_ps(splat(ERF_P), az, splat(1.0)));
    let mut poly = splat(A[4]);
    for a in [A[3], A[2], A[1], A[0]] {
        poly = _mm256_fmadd_ps(poly, t, splat(a));
    }
    poly = _mm256_mul_ps(poly, t);
    let e = exp8(_mm256_sub_ps(splat(0.0), _mm256_mul_ps(az, az)));
    let y = _mm256_fnmadd_ps(poly, e, splat(1.0));
    // erf takes z's sign: y ≥ 0, so or-ing in the sign bit is copysign.
    let erf = _mm256_or_ps(y, _mm256_and_ps(z, splat(-0.0)));
    _mm256_mul_ps(_mm256_mul_ps(splat(0.5), x), _mm256_add_ps(splat(1.0), erf))
}

/// [`exp`] on 8 lanes, the same steps.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[inline]
fn exp8(x: std::arch::x86_64::__m256) -> std::arch::x86_64::__m256 {
    use std::arch::x86_64::*;
    let splat = _mm256_set1_ps;
    let x = _mm256_min_ps(_mm256_max_ps(x, splat(EXP_MIN)), splat(EXP_MAX));
    let t = _mm256_fmadd_ps(x, splat(std::f32::consts::LOG2_E), splat(EXP_SHIFT));
    let n = _mm256_sub_ps(t, splat(EXP_SHIFT));
    let r = _mm256_fnmadd_ps(n, splat(EXP_LN2_HI), x);
    let r = _mm256_fnmadd_ps(n, splat(EXP_LN2_LO), r);
    let mut p = splat(EXP_POLY[0]);
    for &c in &EXP_POLY[1..] {
        p = _mm256_fmadd_ps(p, r, splat(c));
    }
    let y = _mm256_add_ps(_mm256_fmadd_ps(_mm256_mul_ps(p, r), r, r), splat(1.0));
    let ni = _mm256_sub_epi32(
        _mm256_castps_si256(t),
        _mm256_set1_epi32(EXP_SHIFT.to_bits() as i32),
    );
    let scale = _mm256_slli_epi32::<23>(_mm256_add_epi32(ni, _mm256_set1_epi32(127)));
    _mm256_mul_ps(y, _mm256_castsi256_ps(scale))
}

/// [`gelu`] on 16 lanes at a time. The same polynomials as the scalar code, with one change:
/// erf's `1 / (1 + p|x|)` is `vrcp14ps` refined by one Newton step (relative error ~2⁻²⁸)
/// instead of a division, and 16 lanes where the compiled scalar loop used 8. GELU is ~5% of
/// a pass at the default model's width (one GELU per 256 multiply-adds); this made the pass
/// 2–6% faster (A/B, same binary otherwise). Fusing it into the matmul's epilogue measured
/// nothing more: it is compute, not memory traffic.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn gelu_avx512(row: &mut [f32]) {
    use std::arch::x86_64::*;
    let mut chunks = row.chunks_exact_mut(16);
    for chunk in &mut chunks {
        // SAFETY: `chunk` holds exactly 16 values.
        unsafe {
            let x = _mm512_loadu_ps(chunk.as_ptr());
            _mm512_storeu_ps(chunk.as_mut_ptr(), gelu16(x));
        }
    }
    chunks
        .into_remainder()
        .iter_mut()
        .for_each(|v| *v = gelu(*v));
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
pub(crate) fn gelu16(x: std::arch::x86_64::__m512) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
    const A: [f32; 5] = ERF_A;
    let splat = _mm512_set1_ps;
    let z = _mm512_mul_ps(x, splat(std::f32::consts::FRAC_1_SQRT_2));
    let az = _mm512_abs_ps(z);
    let d = _mm512_fmadd_ps(splat(ERF_P), az, splat(1.0));
    let r = _mm512_rcp14_ps(d);
    let t = _mm512_mul_ps(r, _mm512_fnmadd_ps(d, r, splat(2.0)));
    let mut poly = splat(A[4]);
    for a in [A[3], A[2], A[1], A[0]] {
        poly = _mm512_fmadd_ps(poly, t, splat(a));
    }
    poly = _mm512_mul_ps(poly, t);
    let e = exp16(_mm512_sub_ps(splat(0.0), _mm512_mul_ps(az, az)));
    let y = _mm512_fnmadd_ps(poly, e, splat(1.0));
    // erf takes z's sign: y ≥ 0, so or-ing in the sign bit is copysign.
    let sign = _mm512_and_si512(_mm512_castps_si512(z), _mm512_set1_epi32(i32::MIN));
    let erf = _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(y), sign));
    _mm512_mul_ps(_mm512_mul_ps(splat(0.5), x), _mm512_add_ps(splat(1.0), erf))
}

/// [`exp`] on 16 lanes, the same steps.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
fn exp16(x: std::arch::x86_64::__m512) -> std::arch::x86_64::__m512 {
    use std::arch::x86_64::*;
    let splat = _mm512_set1_ps;
    let x = _mm512_min_ps(_mm512_max_ps(x, splat(EXP_MIN)), splat(EXP_MAX));
    let t = _mm512_fmadd_ps(x, splat(std::f32::consts::LOG2_E), splat(EXP_SHIFT));
    let n = _mm512_sub_ps(t, splat(EXP_SHIFT));
    let r = _mm512_fnmadd_ps(n, splat(EXP_LN2_HI), x);
    let r = _mm512_fnmadd_ps(n, splat(EXP_LN2_LO), r);
    let mut p = splat(EXP_POLY[0]);
    for &c in &EXP_POLY[1..] {
        p = _mm512_fmadd_ps(p, r, splat(c));
    }
    let y = _mm512_add_ps(_mm512_fmadd_ps(_mm512_mul_ps(p, r), r, r), splat(1.0));
    let ni = _mm512_sub_epi32(
        _mm512_castps_si512(t),
        _mm512_set1_epi32(EXP_SHIFT.to_bits() as i32),
    );
    let scale = _mm512_slli_epi32::<23>(_mm512_add_epi32(ni, _mm512_set1_epi32(127)));
    _mm512_mul_ps(y, _mm512_castsi512_ps(scale))
}

/// A pointer that parallel tasks writing disjoint regions of one buffer may share. Who makes
/// one says why the regions are disjoint and why the buffer outlives the tasks.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr(pub(crate) *mut f32);
// SAFETY: the pointer is only written through by tasks that own disjoint regions (see each
// place that makes one), while the buffer is alive.
unsafe impl Send for SendPtr {}
unsafe impl Sync for SendPtr {}

impl SendPtr {
    /// Through a method so closures capture the `Send` wrapper, not the bare pointer field.
    pub(crate) fn get(self) -> *mut f32 {
        self.0
    }
}

/// Deterministic values in about ±1, for the kernels' tests.
#[cfg(test)]
pub(crate) fn test_values(len: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s as f32 / u32::MAX as f32) * 2.0 - 1.0
        })
        .collect()
}

thread_local! {
    static COMPOSED_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` with the fused CPU kernels switched off on this thread, so the composed candle ops
/// run on the CPU: the path every other device (CUDA) and every half-precision model takes.
/// Tests and benches use it to check that path where there is no GPU.
pub fn with_composed_ops<R>(f: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            COMPOSED_ONLY.with(|c| c.set(self.0));
        }
    }
    let _reset = Reset(COMPOSED_ONLY.with(|c| c.replace(true)));
    f()
}

/// Whether the fused CPU kernels are switched off on this thread ([`with_composed_ops`]).
pub(crate) fn composed_only() -> bool {
    COMPOSED_ONLY.with(|c| c.get())
}

/// Whether the fused CPU kernels take `x`: f32 on the CPU, unless switched off on this thread.
pub(crate) fn fused_takes(x: &candle_core::Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == candle_core::DType::F32 && !composed_only()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_matches_std() {
        for i in -8700..880 {
            let x = i as f32 * 0.01;
            let (a, b) = (exp(x), x.exp());
            assert!(
                (a - b).abs() <= 2e-7 * b.max(f32::MIN_POSITIVE),
                "{x}: {a} vs {b}"
            );
        }
    }

    /// Both LayerNorm paths against the formula in f64, at widths with and without a tail of
    /// lanes, on rows whose mean is large next to their spread (where `E[x²] - mean²` fails).
    #[test]
    fn layer_norm_matches_the_formula() {
        for n in [1, 7, 16, 33, 256, 768] {
            let gamma = test_values(n, 5);
            let beta = test_values(n, 6);
            let norm = Norm {
                gamma: &gamma,
                beta: &beta,
                eps: 1e-12,
            };
            for offset in [0.0, 300.0] {
                let x: Vec<f32> = test_values(n, 7).iter().map(|v| v + offset).collect();
                let mean = x.iter().map(|v| f64::from(*v)).sum::<f64>() / n as f64;
                let var = x
                    .iter()
                    .map(|v| (f64::from(*v) - mean).powi(2))
                    .sum::<f64>()
                    / n as f64;
                let want: Vec<f64> = (0..n)
                    .map(|i| {
                        (f64::from(x[i]) - mean) / (var + 1e-12).sqrt() * f64::from(gamma[i])
                            + f64::from(beta[i])
                    })
                    .collect();
                let (mut fast, mut generic) = (x.clone(), x.clone());
                layer_norm_row(&mut fast, norm);
                layer_norm_generic(&mut generic, norm);
                for (path, got) in [("dispatched", &fast), ("generic", &generic)] {
                    for i in 0..n {
                        // A width-1 row is all mean: 0 · 1/sqrt(eps), so beta exactly.
                        assert!(
                            (f64::from(got[i]) - want[i]).abs() < 1e-4,
                            "{path}, n {n}, offset {offset}, [{i}]: {} vs {}",
                            got[i],
                            want[i]
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn gelu_row_matches_the_scalar_gelu() {
        // Every lane path (16 at a time and the tail) against the scalar function, over the
        // range activations take and past exp's clamp.
        let xs: Vec<f32> = (-12_000..12_000)
            .map(|i| i as f32 * 1e-3)
            .chain([-100.0, 100.0, 0.0, -0.0])
            .collect();
        let mut row = xs.clone();
        gelu_row(&mut row);
        let mut paths = vec![("dispatched", row)];
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // The AVX2 path too, which AVX-512 CPUs do not dispatch to.
            let mut row = xs.clone();
            // SAFETY: the CPU has the features the function was compiled for.
            unsafe { gelu_avx2(&mut row) };
            paths.push(("avx2", row));
        }
        for (path, row) in paths {
            for (x, got) in xs.iter().zip(&row) {
                let want = gelu(*x);
                assert!(
                    (got - want).abs() <= 2e-7 * want.abs().max(1.0),
                    "{path}, {x}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn gelu_close_to_erf_gelu() {
        for i in -1000..1000 {
            let x = i as f32 * 0.01;
            let want = 0.5 * x as f64 * (1.0 + libm_erf(x as f64 / std::f64::consts::SQRT_2));
            assert!((gelu(x) as f64 - want).abs() < 1e-6, "{x}");
        }
    }

    /// A slow, accurate erf (series / continued fraction) to check the fast one against.
    fn libm_erf(x: f64) -> f64 {
        // erf via its Taylor series, accurate for |x| < 4 at this many terms; beyond, 1.
        if x.abs() > 4.5 {
            return x.signum();
        }
        let mut sum = 0.0;
        let mut term = x;
        let mut n = 0.0;
        while term.abs() > 1e-17 || n < 5.0 {
            sum += term / (2.0 * n + 1.0);
            n += 1.0;
            term *= -x * x / n;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }
}
