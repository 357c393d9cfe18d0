//! Dot-product kernels: a portable scalar version of each, and AVX2+FMA versions chosen at run
//! time (the int8 block kernel on AVX-512 VNNI where the CPU has it). The search loops call the block functions ([`scores_f32`], [`scores_i8`]) so that the
//! feature check happens once per block of rows, not once per row, and the per-row loop is
//! compiled with the wider instructions enabled.
//!
//! The unsafe code is confined to the `avx2` and `avx512` modules below; the tests at the
//! bottom check them against the scalar versions on every length from 0 to a little over 1024,
//! including odd ones.

/// `a · b` in f32, in the portable order (one accumulator per lane of 8, then summed), so the
/// scalar and SIMD versions round similarly; tests allow a small tolerance all the same.
pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked just above).
        return unsafe { avx2::dot_f32(a, b) };
    }
    scalar::dot_f32(a, b)
}

/// `a · b` of two int8 vectors, exact in i32 (|a|, |b| ≤ 127 and length ≤ 1024 cannot overflow).
pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    debug_assert_eq!(a.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: the CPU supports AVX2 (checked just above).
        return unsafe { avx2::dot_i8(a, b) };
    }
    scalar::dot_i8(a, b)
}

/// `codes · b` with int8 codes and an f32 vector: the exact score of a row stored as int8
/// (times its scale), without decoding the row first. Rounds as [`dot_f32`] does.
pub fn dot_i8_f32(codes: &[i8], b: &[f32]) -> f32 {
    debug_assert_eq!(codes.len(), b.len());
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked just above).
        return unsafe { avx2::dot_i8_f32(codes, b) };
    }
    scalar::dot_i8_f32(codes, b)
}

/// Scores of a block of rows (row-major, `dim` per row) against `query`, one per row into `out`.
pub fn scores_f32(rows: &[f32], query: &[f32], out: &mut [f32]) {
    let dim = query.len();
    debug_assert_eq!(rows.len(), dim * out.len());
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: the CPU supports AVX2 and FMA (checked just above).
        unsafe { avx2::scores_f32(rows, query, out) };
        return;
    }
    for (row, o) in rows.chunks_exact(dim).zip(out.iter_mut()) {
        *o = scalar::dot_f32(row, query);
    }
}

/// Integer scores of a block of int8 rows against an int8 query, as [`scores_f32`].
pub fn scores_i8(rows: &[i8], query: &[i8], out: &mut [i32]) {
    let dim = query.len();
    debug_assert_eq!(rows.len(), dim * out.len());
    #[cfg(target_arch = "x86_64")]
    if avx512_vnni() {
        // SAFETY: the CPU supports AVX-512F, BW and VNNI (checked just above).
        unsafe { avx512::scores_i8(rows, query, out) };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        // SAFETY: the CPU supports AVX2 (checked just above).
        unsafe { avx2::scores_i8(rows, query, out) };
        return;
    }
    for (row, o) in rows.chunks_exact(dim).zip(out.iter_mut()) {
        *o = scalar::dot_i8(row, query);
    }
}

/// Whether the AVX2+FMA kernels run on this CPU. `is_x86_feature_detected!` caches its answer,
/// so this is one relaxed atomic load.
#[cfg(target_arch = "x86_64")]
fn avx2_fma() -> bool {
    is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
}

/// Whether the AVX-512 VNNI int8 block kernel runs on this CPU (Intel since Cascade Lake, AMD
/// since Zen 4).
#[cfg(target_arch = "x86_64")]
fn avx512_vnni() -> bool {
    is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vnni")
}

/// The name of the kernel set in use, for benchmark reports.
pub fn kernel_name() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    if avx512_vnni() {
        return "avx2+fma, avx512-vnni int8 blocks";
    }
    #[cfg(target_arch = "x86_64")]
    if avx2_fma() {
        return "avx2+fma";
    }
    "scalar"
}

pub mod scalar {
    /// Eight independent partial sums, as the SIMD version keeps, so both round alike and the
    /// compiler can vectorise this on its own where it may.
    pub fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
        let mut acc = [0.0f32; 8];
        let (ac, at) = a.split_at(a.len() / 8 * 8);
        let (bc, bt) = b.split_at(ac.len());
        for (x, y) in ac.chunks_exact(8).zip(bc.chunks_exact(8)) {
            for l in 0..8 {
                acc[l] += x[l] * y[l];
            }
        }
        let mut sum: f32 = acc.iter().sum();
        for (x, y) in at.iter().zip(bt) {
            sum += x * y;
        }
        sum
    }

    pub fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
        a.iter().zip(b).map(|(&x, &y)| x as i32 * y as i32).sum()
    }

    /// As `dot_f32`, eight partial sums.
    pub fn dot_i8_f32(codes: &[i8], b: &[f32]) -> f32 {
        let mut acc = [0.0f32; 8];
        let (ac, at) = codes.split_at(codes.len() / 8 * 8);
        let (bc, bt) = b.split_at(ac.len());
        for (x, y) in ac.chunks_exact(8).zip(bc.chunks_exact(8)) {
            for l in 0..8 {
                acc[l] += x[l] as f32 * y[l];
            }
        }
        let mut sum: f32 = acc.iter().sum();
        for (x, y) in at.iter().zip(bt) {
            sum += *x as f32 * y;
        }
        sum
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    //! Every function here requires AVX2 and FMA; callers check with `avx2_fma()` first. Loads
    //! are unaligned (`loadu`), and every pointer offset stays inside the slices: the main loops
    //! run over whole chunks only and the tails are done in scalar code.

    use std::arch::x86_64::*;

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn scores_f32(rows: &[f32], query: &[f32], out: &mut [f32]) {
        for (row, o) in rows.chunks_exact(query.len()).zip(out.iter_mut()) {
            *o = dot_f32(row, query);
        }
    }

    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn scores_i8(rows: &[i8], query: &[i8], out: &mut [i32]) {
        for (row, o) in rows.chunks_exact(query.len()).zip(out.iter_mut()) {
            *o = dot_i8(row, query);
        }
    }

    /// Four accumulators of 8 lanes hide the FMA latency; they are folded into one at the end.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub unsafe fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut i = 0;
        while i + 32 <= n {
            for (j, acc) in acc.iter_mut().enumerate() {
                let x = _mm256_loadu_ps(pa.add(i + 8 * j));
                let y = _mm256_loadu_ps(pb.add(i + 8 * j));
                *acc = _mm256_fmadd_ps(x, y, *acc);
            }
            i += 32;
        }
        while i + 8 <= n {
            let x = _mm256_loadu_ps(pa.add(i));
            let y = _mm256_loadu_ps(pb.add(i));
            acc[0] = _mm256_fmadd_ps(x, y, acc[0]);
            i += 8;
        }
        let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
        let mut sum = hsum_ps(s);
        while i < n {
            sum += *pa.add(i) * *pb.add(i);
            i += 1;
        }
        sum
    }

    /// int8 × int8 via `maddubs`, which multiplies unsigned by signed bytes: |a| times b with
    /// a's sign moved onto b gives the same products. A pair of products is at most
    /// 2 × 127 × 127 = 32258, so the i16 sums never saturate. This needs values in ±127 (-128
    /// has no positive counterpart for `sign`), which the quantiser guarantees.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub unsafe fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
        let n = a.len().min(b.len());
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let ones = _mm256_set1_epi16(1);
        let mut acc0 = _mm256_setzero_si256();
        let mut acc1 = _mm256_setzero_si256();
        let mut i = 0;
        while i + 64 <= n {
            acc0 = _mm256_add_epi32(acc0, madd_i8(pa.add(i), pb.add(i), ones));
            acc1 = _mm256_add_epi32(acc1, madd_i8(pa.add(i + 32), pb.add(i + 32), ones));
            i += 64;
        }
        if i + 32 <= n {
            acc0 = _mm256_add_epi32(acc0, madd_i8(pa.add(i), pb.add(i), ones));
            i += 32;
        }
        let mut sum = hsum_epi32(_mm256_add_epi32(acc0, acc1));
        while i < n {
            sum += *pa.add(i) as i32 * *pb.add(i) as i32;
            i += 1;
        }
        sum
    }

    /// Eight codes at a time widened to f32 (exact: |c| ≤ 127), two accumulators.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub unsafe fn dot_i8_f32(codes: &[i8], b: &[f32]) -> f32 {
        let n = codes.len().min(b.len());
        let (pa, pb) = (codes.as_ptr(), b.as_ptr());
        let mut acc = [_mm256_setzero_ps(); 2];
        let mut i = 0;
        while i + 16 <= n {
            for (j, acc) in acc.iter_mut().enumerate() {
                let c = _mm_loadl_epi64(pa.add(i + 8 * j) as *const __m128i);
                let x = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(c));
                let y = _mm256_loadu_ps(pb.add(i + 8 * j));
                *acc = _mm256_fmadd_ps(x, y, *acc);
            }
            i += 16;
        }
        if i + 8 <= n {
            let c = _mm_loadl_epi64(pa.add(i) as *const __m128i);
            let x = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(c));
            acc[0] = _mm256_fmadd_ps(x, _mm256_loadu_ps(pb.add(i)), acc[0]);
            i += 8;
        }
        let mut sum = hsum_ps(_mm256_add_ps(acc[0], acc[1]));
        while i < n {
            sum += *pa.add(i) as f32 * *pb.add(i);
            i += 1;
        }
        sum
    }

    /// Eight i32 sums of four products each, from 32 bytes of `a` and `b`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn madd_i8(pa: *const i8, pb: *const i8, ones: __m256i) -> __m256i {
        let x = _mm256_loadu_si256(pa as *const __m256i);
        let y = _mm256_loadu_si256(pb as *const __m256i);
        let ax = _mm256_sign_epi8(x, x);
        let sy = _mm256_sign_epi8(y, x);
        _mm256_madd_epi16(_mm256_maddubs_epi16(ax, sy), ones)
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn hsum_ps(v: __m256) -> f32 {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
        _mm_cvtss_f32(s)
    }

    #[target_feature(enable = "avx2,fma")]
    #[inline]
    unsafe fn hsum_epi32(v: __m256i) -> i32 {
        let s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b01_00_11_10));
        let s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0b10_11_00_01));
        _mm_cvtsi128_si32(s)
    }
}

/// The int8 scan's block kernel on AVX-512 VNNI: `vpdpbusd` multiplies 64 unsigned by 64
/// signed bytes and adds each four products into a 32-bit lane, a quarter of the
/// instructions of AVX2's sign/`maddubs`/`madd` chain. It wants an unsigned side, so the row's
/// codes are moved up by 128 (a sign-bit flip) and `128 · Σ query` taken back off: exact in
/// i32, as every product is at most 255 · 128 and a row at most 1,024 components. A hover's
/// vector scan spent 43% of its time in the AVX2 version of this loop.
#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub unsafe fn scores_i8(rows: &[i8], query: &[i8], out: &mut [i32]) {
        let dim = query.len();
        if dim == 0 {
            out.fill(0);
            return;
        }
        let bias: i32 = 128 * query.iter().map(|&q| q as i32).sum::<i32>();
        let flip = _mm512_set1_epi8(i8::MIN);
        // The last (or only) 64 bytes of a row through a mask: masked-off bytes load as 0 on
        // both sides, and the flip of a row's 0 (128) meets a query's 0.
        let steps = dim.div_ceil(64);
        let rem = dim - (steps - 1) * 64;
        let last: __mmask64 = if rem == 64 { !0 } else { (1u64 << rem) - 1 };
        let pq = query.as_ptr();
        let row_acc = |pr: *const i8| {
            let mut acc = _mm512_setzero_si512();
            for s in 0..steps {
                let mask = if s + 1 == steps { last } else { !0 };
                // SAFETY: the mask keeps every byte read within `dim` of the row's start and of
                // the query's (`s * 64 + 64 <= dim` for every step but the last).
                let x = _mm512_maskz_loadu_epi8(mask, pr.add(s * 64));
                let q = _mm512_maskz_loadu_epi8(mask, pq.add(s * 64));
                acc = _mm512_dpbusd_epi32(acc, _mm512_xor_si512(x, flip), q);
            }
            acc
        };
        // Four rows at a time: their sixteen lanes each are summed together in one tree, a
        // quarter of the shuffles of reducing each row alone (with 64-byte heads the
        // reductions, not the products, were most of the loop).
        let mut quads = rows.chunks_exact(4 * dim);
        let mut outs = out.chunks_exact_mut(4);
        for (quad, o) in (&mut quads).zip(&mut outs) {
            let p = quad.as_ptr();
            let (a0, a1) = (row_acc(p), row_acc(p.add(dim)));
            let (a2, a3) = (row_acc(p.add(2 * dim)), row_acc(p.add(3 * dim)));
            let t0 = _mm512_add_epi32(_mm512_unpacklo_epi32(a0, a1), _mm512_unpackhi_epi32(a0, a1));
            let t1 = _mm512_add_epi32(_mm512_unpacklo_epi32(a2, a3), _mm512_unpackhi_epi32(a2, a3));
            // Each 128-bit lane now holds the four rows' partial sums in order.
            let u = _mm512_add_epi32(_mm512_unpacklo_epi64(t0, t1), _mm512_unpackhi_epi64(t0, t1));
            let h = _mm256_add_epi32(_mm512_castsi512_si256(u), _mm512_extracti64x4_epi64(u, 1));
            let v = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
            let v = _mm_sub_epi32(v, _mm_set1_epi32(bias));
            _mm_storeu_si128(o.as_mut_ptr() as *mut __m128i, v);
        }
        for (row, o) in quads
            .remainder()
            .chunks_exact(dim)
            .zip(outs.into_remainder())
        {
            *o = _mm512_reduce_add_epi32(row_acc(row.as_ptr())) - bias;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::rng::XorShift;

    fn codes(rng: &mut XorShift, n: usize) -> Vec<i8> {
        (0..n)
            .map(|_| (rng.below(255) as i32 - 127) as i8)
            .collect()
    }

    /// Checks each of `got` against the f64 dot product of `a` and `b`, within f32 rounding.
    fn assert_close_to_f64(a: &[f64], b: &[f32], got: [f32; 2]) {
        let n = a.len();
        let want: f64 = a.iter().zip(b).map(|(x, y)| x * *y as f64).sum();
        let mag: f64 = a.iter().zip(b).map(|(x, y)| (x * *y as f64).abs()).sum();
        let tol = 1e-6 * (1.0 + mag) * (n as f64).sqrt().max(1.0);
        for got in got {
            assert!((got as f64 - want).abs() <= tol, "n={n}: {got} vs {want}");
        }
    }

    #[test]
    fn f32_kernels_agree_with_scalar_on_every_length() {
        let mut rng = XorShift::new(7);
        for n in 0..=1100 {
            let a: Vec<f32> = (0..n).map(|_| rng.gaussian()).collect();
            let b: Vec<f32> = (0..n).map(|_| rng.gaussian()).collect();
            let wide: Vec<f64> = a.iter().map(|&x| x as f64).collect();
            assert_close_to_f64(&wide, &b, [dot_f32(&a, &b), scalar::dot_f32(&a, &b)]);
        }
    }

    #[test]
    fn i8_kernels_are_exact_on_every_length() {
        let mut rng = XorShift::new(11);
        for n in 0..=1100 {
            let (a, b) = (codes(&mut rng, n), codes(&mut rng, n));
            assert_eq!(dot_i8(&a, &b), scalar::dot_i8(&a, &b), "n={n}");
        }
        // The extremes: every product at ±127², all one sign.
        for (x, y) in [(127i8, 127i8), (-127, -127), (127, -127), (-127, 127)] {
            let (a, b) = (vec![x; 1024], vec![y; 1024]);
            assert_eq!(dot_i8(&a, &b), scalar::dot_i8(&a, &b));
        }
    }

    #[test]
    fn i8_f32_kernels_agree_with_scalar_on_every_length() {
        let mut rng = XorShift::new(17);
        for n in 0..=1100 {
            let a = codes(&mut rng, n);
            let b: Vec<f32> = (0..n).map(|_| rng.gaussian()).collect();
            let wide: Vec<f64> = a.iter().map(|&x| x as f64).collect();
            assert_close_to_f64(&wide, &b, [dot_i8_f32(&a, &b), scalar::dot_i8_f32(&a, &b)]);
        }
    }

    #[test]
    fn int8_blocks_are_exact_on_every_width_and_at_the_extremes() {
        let mut rng = XorShift::new(23);
        for dim in (1..=1024).step_by(13).chain([64, 128, 256, 384, 768, 1024]) {
            let rows = codes(&mut rng, dim * 5);
            let q = codes(&mut rng, dim);
            let mut out = vec![0; 5];
            scores_i8(&rows, &q, &mut out);
            for (r, o) in rows.chunks_exact(dim).zip(&out) {
                assert_eq!(*o, scalar::dot_i8(r, &q), "dim={dim}");
            }
        }
        // Every product at ±127², all one sign, and -128 (which the flip maps to 0).
        for (x, y) in [
            (127i8, 127i8),
            (-127, -127),
            (127, -127),
            (-128, 127),
            (-128, -128),
        ] {
            let (rows, q) = (vec![x; 1024 * 2], vec![y; 1024]);
            let mut out = vec![0; 2];
            scores_i8(&rows, &q, &mut out);
            assert_eq!(out, vec![scalar::dot_i8(&rows[..1024], &q); 2], "{x} {y}");
        }
    }

    #[test]
    fn block_scores_match_row_dots() {
        let mut rng = XorShift::new(3);
        for dim in [1, 7, 8, 31, 64, 65, 100, 257] {
            let rows: Vec<f32> = (0..dim * 9).map(|_| rng.gaussian()).collect();
            let q: Vec<f32> = (0..dim).map(|_| rng.gaussian()).collect();
            let mut out = vec![0.0; 9];
            scores_f32(&rows, &q, &mut out);
            for (r, o) in rows.chunks_exact(dim).zip(&out) {
                assert_eq!(*o, dot_f32(r, &q));
            }
            let rows8: Vec<i8> = rows
                .iter()
                .map(|x| (x * 40.0).clamp(-127.0, 127.0) as i8)
                .collect();
            let q8: Vec<i8> = q
                .iter()
                .map(|x| (x * 40.0).clamp(-127.0, 127.0) as i8)
                .collect();
            let mut out8 = vec![0; 9];
            scores_i8(&rows8, &q8, &mut out8);
            for (r, o) in rows8.chunks_exact(dim).zip(&out8) {
                assert_eq!(*o, scalar::dot_i8(r, &q8));
            }
        }
    }
}
