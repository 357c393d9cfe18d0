//! `out += x Wᵀ` with bf16 inputs and f32 accumulation, on x86 CPUs with AVX512_BF16: its
//! `vdpbf16ps` multiplies 32 bf16 pairs and adds them into 16 f32 lanes, twice the
//! multiply-adds of an f32 FMA per instruction. This is what `--dtype bf16` means on the CPU:
//! each weight matrix is rounded and packed once, at load; activations are rounded to bf16 on
//! their way into each matmul; bias, GELU, residual, LayerNorm, attention and pooling stay
//! f32.
//!
//! The weights are packed in panels of [`NR`] output columns, each holding, for every pair of
//! input positions `(2q, 2q+1)`, the [`NR`] columns' two values side by side in one 32-bit
//! lane: exactly what `vdpbf16ps` reads, and what AMX's `tdpbf16ps` reads as a B tile (16
//! pairs × 16 columns, at a row stride of one panel row).
//!
//! Two kernels, chosen at run time:
//! - **AMX** (Intel Sapphire Rapids and later), where the kernel grants the process the tile
//!   state: 32 rows × 32 columns of f32 in four tiles, 16 pairs of the shared dimension per
//!   step, ~16× the multiply-adds of AVX-512 per cycle. Its instructions are written as inline
//!   assembly (Rust's AMX intrinsics are not stable).
//! - **AVX512_BF16** elsewhere (AMD Zen 4 and later): a micro-tile of [`MR`] rows × [`NR`]
//!   columns of accumulators in 16 of the 32 vector registers. On the Intel Xeon it was
//!   measured on it is no faster than f32 (`vdpbf16ps` issues on one port where FMAs use two).

use rayon::prelude::*;

use super::aligned::Aligned32;
#[cfg(target_arch = "x86_64")]
use super::f32_matmul;

/// Output columns per packed panel: two registers of f32 accumulators per row.
const NR: usize = 32;
/// Rows per micro-tile: 8 rows × 2 registers = 16 accumulators.
const MR: usize = 8;
/// Rows per parallel task: a task walks every panel over its rows, so that its rounded rows
/// (`ROWS_PER_TASK` × K/2 × 4 bytes, 32 KB at K = 256) and one panel stay in L1/L2.
const ROWS_PER_TASK: usize = 64;
/// The shared dimension is padded to a whole number of AMX steps (16 pairs); a zero pair adds
/// nothing.
const PAIRS_STEP: usize = 16;
/// Rows per AMX block: two A tiles of 16.
const AMX_ROWS: usize = 32;

/// Which kernel runs bf16 matmuls on this CPU, in words (for `tunelens/status` and logs);
/// `None` where neither runs.
pub fn kernel() -> Option<&'static str> {
    if amx::available() {
        Some("AMX")
    } else if available() {
        Some("AVX512_BF16")
    } else {
        None
    }
}

/// Whether bf16 matmuls run on the AMX tiles here (the CPU has them and the kernel granted
/// this process the tile state).
pub fn on_amx() -> bool {
    amx::available()
}

/// Whether this CPU runs the kernel (AVX-512 F and BF16), asked at run time: the binary is
/// built for any x86-64.
pub fn available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bf16")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

/// `x` rounded to the nearest bf16, ties to even (as `vcvtne2ps2bf16` rounds); NaN stays NaN.
pub fn bf16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        return ((b >> 16) | 0x40) as u16;
    }
    let round = 0x7fff + ((b >> 16) & 1);
    (b.wrapping_add(round) >> 16) as u16
}

/// Two values as one 32-bit lane: `lo` in the low half, as `vdpbf16ps` pairs them.
fn pair(lo: f32, hi: f32) -> u32 {
    u32::from(bf16_bits(lo)) | (u32::from(bf16_bits(hi)) << 16)
}

/// A weight matrix `[n, k]` (PyTorch's `Linear.weight`), rounded to bf16 and packed.
#[derive(Clone, Debug)]
pub struct PackedBf16 {
    n: usize,
    k: usize,
    /// `k` in pairs, rounded up to a multiple of [`PAIRS_STEP`] (zeros past `k`).
    pairs: usize,
    /// Panel `p`, pair `q`, column `c` at `(p * pairs + q) * NR + c`; columns past `n` are 0.
    /// On whole cache lines: each pair's 32 lanes fill two.
    data: Aligned32,
}

impl PackedBf16 {
    /// Packs `w`, row-major `[n, k]`.
    pub fn pack(w: &[f32], n: usize, k: usize) -> Self {
        assert_eq!(w.len(), n * k, "weight of {n}x{k}");
        let pairs = k.div_ceil(2).div_ceil(PAIRS_STEP) * PAIRS_STEP;
        let panels = n.div_ceil(NR);
        let mut data = Aligned32::zeroed(panels * pairs * NR);
        let at = |row: usize, col: usize| if col < k { w[row * k + col] } else { 0.0 };
        for (p, panel) in data
            .as_u32_mut()
            .chunks_mut((pairs * NR).max(1))
            .enumerate()
        {
            for (q, lanes) in panel.chunks_mut(NR).enumerate() {
                for (c, lane) in lanes.iter_mut().enumerate() {
                    let row = p * NR + c;
                    if row < n {
                        *lane = pair(at(row, 2 * q), at(row, 2 * q + 1));
                    }
                }
            }
        }
        Self { n, k, pairs, data }
    }

    /// The rounded weight back in its row-major `[n, k]` form (for paths the kernel does not
    /// take).
    pub fn unpack(&self) -> Vec<f32> {
        let (n, k, pairs) = (self.n, self.k, self.pairs);
        let mut w = vec![0f32; n * k];
        for (r, row) in w.chunks_mut(k.max(1)).enumerate().take(n) {
            let (p, c) = (r / NR, r % NR);
            for (i, v) in row.iter_mut().enumerate() {
                let lane = self.data.as_u32()[(p * pairs + i / 2) * NR + c];
                let bits = if i % 2 == 0 {
                    lane << 16
                } else {
                    lane & 0xffff_0000
                };
                *v = f32::from_bits(bits);
            }
        }
        w
    }

    pub fn n(&self) -> usize {
        self.n
    }

    pub fn k(&self) -> usize {
        self.k
    }

    /// `out += x Wᵀ` for `x` row-major `[rows, k]` and `out` row-major `[rows, n]`. Panics
    /// when [`available`] is false or the sizes disagree (callers check both).
    pub fn matmul_add(&self, x: &[f32], rows: usize, out: &mut [f32]) {
        self.matmul_add_on(x, rows, out, amx::available());
    }

    /// [`matmul_add`](Self::matmul_add) on the AMX kernel or not (tests run both).
    fn matmul_add_on(&self, x: &[f32], rows: usize, out: &mut [f32], amx: bool) {
        assert!(available(), "bf16 matmul on a CPU without AVX512_BF16");
        assert!(!amx || amx::available(), "AMX matmul without AMX");
        assert_eq!(x.len(), rows * self.k, "x of {rows}x{}", self.k);
        assert_eq!(out.len(), rows * self.n, "out of {rows}x{}", self.n);
        if rows == 0 || self.n == 0 || self.k == 0 {
            return;
        }
        let (n, pairs) = (self.n, self.pairs);
        out.par_chunks_mut(ROWS_PER_TASK * n)
            .zip(x.par_chunks(ROWS_PER_TASK * self.k))
            .for_each(|(out, x)| {
                let rows = out.len() / n;
                let a = self.round_rows(x, rows);
                if amx {
                    // SAFETY: AMX is available and granted; `a` holds `rows` rounded up to
                    // AMX_ROWS rows of `pairs` lanes (zeros past `rows`), `out` `rows` × `n`.
                    #[cfg(target_arch = "x86_64")]
                    unsafe {
                        amx::task(a.as_u32(), rows, pairs, self.data.as_u32(), out, n);
                    }
                    return;
                }
                for p in 0..n.div_ceil(NR) {
                    let panel = &self.data.as_u32()[p * pairs * NR..(p + 1) * pairs * NR];
                    let cols = (n - p * NR).min(NR);
                    let mut r = 0;
                    while r < rows {
                        let m = (rows - r).min(MR);
                        let a = &a.as_u32()[r * pairs..(r + m) * pairs];
                        let o = &mut out[r * n + p * NR..];
                        // SAFETY: `available()` holds (asserted above); `a` holds `m` rows of
                        // `pairs` lanes, `panel` `pairs` × NR lanes, and `o` reaches row
                        // `m - 1`'s column `cols - 1` at stride `n` (checked by the slicing:
                        // `o` starts at row r, column p·NR, and `cols` stops at `n`).
                        #[cfg(target_arch = "x86_64")]
                        unsafe {
                            debug_assert!(o.len() >= (m - 1) * n + cols);
                            tile(m, a, pairs, panel, o, n, cols);
                        }
                        r += m;
                    }
                }
            });
    }

    /// `rows` rows of `x` as bf16 pairs, `pairs` lanes a row, then zero rows up to a whole
    /// AMX block.
    fn round_rows(&self, x: &[f32], rows: usize) -> Aligned32 {
        let (k, pairs) = (self.k, self.pairs);
        let mut a = Aligned32::zeroed(rows.div_ceil(AMX_ROWS) * AMX_ROWS * pairs);
        for (row, lanes) in x.chunks(k).zip(a.as_u32_mut().chunks_mut(pairs)) {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `available()` was asserted by the caller.
            unsafe {
                round_row(row, lanes);
            }
        }
        a
    }
}

/// One row of `x` into bf16 pairs: 32 values per instruction, the rest one pair at a time.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn round_row(x: &[f32], lanes: &mut [u32]) {
    use std::arch::x86_64::*;
    let whole = x.len() / 32;
    for i in 0..whole {
        // SAFETY: 32 values at 32·i are within `x`, 16 lanes at 16·i within `lanes`.
        unsafe {
            let lo = _mm512_loadu_ps(x.as_ptr().add(32 * i));
            let hi = _mm512_loadu_ps(x.as_ptr().add(32 * i + 16));
            // The second operand fills the low half: values stay in order.
            let v: __m512i = std::mem::transmute(_mm512_cvtne2ps_pbh(hi, lo));
            _mm512_storeu_si512(lanes.as_mut_ptr().add(16 * i).cast(), v);
        }
    }
    for (q, lane) in lanes.iter_mut().enumerate().skip(16 * whole) {
        let lo = x.get(2 * q).copied().unwrap_or(0.0);
        let hi = x.get(2 * q + 1).copied().unwrap_or(0.0);
        *lane = pair(lo, hi);
    }
}

/// `m` (≤ [`MR`]) rows of `a` against one panel, added into `out` (row stride `n`, `cols` ≤
/// [`NR`] valid columns).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn tile(
    m: usize,
    a: &[u32],
    pairs: usize,
    panel: &[u32],
    out: &mut [f32],
    n: usize,
    cols: usize,
) {
    // SAFETY (all arms): as `tile_rows` requires; the caller checked the sizes.
    unsafe {
        match m {
            8 => tile_rows::<8>(a, pairs, panel, out, n, cols),
            7 => tile_rows::<7>(a, pairs, panel, out, n, cols),
            6 => tile_rows::<6>(a, pairs, panel, out, n, cols),
            5 => tile_rows::<5>(a, pairs, panel, out, n, cols),
            4 => tile_rows::<4>(a, pairs, panel, out, n, cols),
            3 => tile_rows::<3>(a, pairs, panel, out, n, cols),
            2 => tile_rows::<2>(a, pairs, panel, out, n, cols),
            _ => tile_rows::<1>(a, pairs, panel, out, n, cols),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bf16")]
unsafe fn tile_rows<const M: usize>(
    a: &[u32],
    pairs: usize,
    panel: &[u32],
    out: &mut [f32],
    n: usize,
    cols: usize,
) {
    use std::arch::x86_64::*;
    debug_assert!(a.len() >= M * pairs && panel.len() >= pairs * NR);
    let mut acc = [[_mm512_setzero_ps(); 2]; M];
    let (a, b) = (a.as_ptr(), panel.as_ptr());
    for q in 0..pairs {
        // SAFETY: lane q of each of the M rows and the panel's 32 lanes of pair q are within
        // `a` and `panel` (sizes above).
        unsafe {
            let b0: __m512bh = std::mem::transmute(_mm512_loadu_si512(b.add(q * NR).cast()));
            let b1: __m512bh = std::mem::transmute(_mm512_loadu_si512(b.add(q * NR + 16).cast()));
            for (r, acc) in acc.iter_mut().enumerate() {
                let x: __m512bh =
                    std::mem::transmute(_mm512_set1_epi32(*a.add(r * pairs + q) as i32));
                acc[0] = _mm512_dpbf16_ps(acc[0], x, b0);
                acc[1] = _mm512_dpbf16_ps(acc[1], x, b1);
            }
        }
    }
    // SAFETY: the caller's bound: row M - 1's column `cols - 1` at stride n is within `out`.
    unsafe { f32_matmul::store_tile(&acc, out.as_mut_ptr(), n, cols, f32_matmul::TileEnd::ADD) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rounded(x: f32) -> f32 {
        f32::from_bits(u32::from(bf16_bits(x)) << 16)
    }

    use crate::encoders::kernels::test_values as values;

    #[test]
    fn unpack_gives_the_rounded_weight_back() {
        for (n, k) in [(1, 1), (33, 7), (64, 300), (5, 0)] {
            let w = values(n * k, 4);
            let want: Vec<f32> = w.iter().map(|&v| rounded(v)).collect();
            assert_eq!(PackedBf16::pack(&w, n, k).unpack(), want, "{n}x{k}");
        }
    }

    #[test]
    fn rounding_is_to_nearest_even() {
        assert_eq!(bf16_bits(1.0), 0x3f80);
        // 1 + 2^-8 lies halfway between two bf16 values: ties go to the even one (1.0).
        assert_eq!(bf16_bits(1.0 + 1.0 / 256.0), 0x3f80);
        assert_eq!(bf16_bits(1.0 + 3.0 / 256.0), 0x3f82);
        assert_eq!(bf16_bits(-2.5), 0xc020);
        assert!(rounded(f32::NAN).is_nan());
        assert_eq!(rounded(f32::INFINITY), f32::INFINITY);
        assert_eq!(rounded(f32::MAX), f32::INFINITY);
    }

    /// Every shape the kernel's edges meet (rows past a tile or a task, columns past a panel
    /// or half of one, an odd k, k past one rounding vector) against the same products of the
    /// rounded values in f64.
    #[test]
    fn matches_the_rounded_product_at_every_edge() {
        if !available() {
            eprintln!("skipped: this CPU has no AVX512_BF16");
            return;
        }
        for (rows, n, k) in [
            (1, 1, 1),
            (3, 16, 2),
            (8, 32, 32),
            (9, 33, 33),
            (65, 48, 70),
            (130, 256, 256),
            (17, 20, 1024),
        ] {
            let (x, w) = (values(rows * k, 1), values(n * k, 2));
            let bias = values(rows * n, 3);
            let packed = PackedBf16::pack(&w, n, k);
            for amx in [false, true] {
                if amx && !amx::available() {
                    eprintln!("AMX kernel not checked: this CPU or kernel has no AMX");
                    continue;
                }
                let mut out = bias.clone();
                packed.matmul_add_on(&x, rows, &mut out, amx);
                for r in 0..rows {
                    for c in 0..n {
                        let want: f64 = (0..k)
                            .map(|i| {
                                f64::from(rounded(x[r * k + i])) * f64::from(rounded(w[c * k + i]))
                            })
                            .sum::<f64>()
                            + f64::from(bias[r * n + c]);
                        let got = f64::from(out[r * n + c]);
                        assert!(
                            (got - want).abs() < 1e-4 * (k as f64).sqrt(),
                            "{rows}x{n}x{k} (AMX: {amx}) at ({r}, {c}): {got} vs {want}"
                        );
                    }
                }
            }
        }
    }
}

/// The AMX kernel (see the module's docs).
mod amx {
    use super::{AMX_ROWS, NR, PAIRS_STEP};

    /// Whether the CPU has AMX-BF16 and the kernel granted this process the tile state;
    /// asked once.
    pub fn available() -> bool {
        static GRANTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *GRANTED.get_or_init(|| {
            let granted = request();
            if granted {
                tracing::debug!("AMX granted: bf16 matmuls run on the tile unit");
            }
            granted
        })
    }

    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    fn request() -> bool {
        // CPUID leaf 7: EDX bit 22 AMX-BF16, bit 24 AMX-TILE.
        let leaf = std::arch::x86_64::__cpuid_count(7, 0);
        if leaf.edx & (1 << 22) == 0 || leaf.edx & (1 << 24) == 0 || !super::available() {
            return false;
        }
        const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
        const XFEATURE_XTILEDATA: libc::c_long = 18;
        // SAFETY: arch_prctl with ARCH_REQ_XCOMP_PERM only asks the kernel to enable a state
        // component for this process; it touches no memory of ours.
        unsafe {
            libc::syscall(
                libc::SYS_arch_prctl,
                ARCH_REQ_XCOMP_PERM,
                XFEATURE_XTILEDATA,
            ) == 0
        }
    }

    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    fn request() -> bool {
        false
    }

    /// The tile configuration: palette 1; tiles 0–3 the f32 accumulators (16 rows × 16
    /// columns), 4–5 the A tiles (16 rows × 32 bf16), 6–7 the B tiles (16 pairs × 16 columns);
    /// every row 64 bytes.
    #[repr(C, align(64))]
    struct Config([u8; 64]);

    fn config() -> Config {
        let mut c = [0u8; 64];
        c[0] = 1;
        for tile in 0..8 {
            c[16 + 2 * tile] = 64;
            c[48 + tile] = 16;
        }
        Config(c)
    }

    /// `out` (`rows` × `n`) += the rounded rows `a` (`rows` rounded up to [`AMX_ROWS`], each
    /// `pairs` lanes) times the packed panels `data`.
    ///
    /// # Safety
    /// [`available`] must hold; `a` must hold `rows.div_ceil(AMX_ROWS) * AMX_ROWS * pairs`
    /// lanes, `data` `n.div_ceil(NR) * pairs * NR`, `out` `rows * n`, and `pairs` must be a
    /// multiple of [`PAIRS_STEP`].
    #[cfg(target_arch = "x86_64")]
    // AVX-512 for the adds of each block into `out` (the crate is built for baseline x86-64).
    #[target_feature(enable = "avx512f")]
    pub unsafe fn task(
        a: &[u32],
        rows: usize,
        pairs: usize,
        data: &[u32],
        out: &mut [f32],
        n: usize,
    ) {
        use std::arch::asm;
        debug_assert!(pairs.is_multiple_of(PAIRS_STEP));
        debug_assert!(a.len() >= rows.div_ceil(AMX_ROWS) * AMX_ROWS * pairs);
        debug_assert!(data.len() >= n.div_ceil(NR) * pairs * NR && out.len() >= rows * n);
        let config = config();
        // A block's four accumulator tiles, stored side by side: 32 rows of 32 f32.
        let mut scratch = Scratch([0f32; AMX_ROWS * NR]);
        let (a_stride, b_stride, c_stride) = (pairs * 4, NR * 4, NR * 4);
        // SAFETY: the caller guarantees AMX and the sizes; every tile load reads 16 rows of 64
        // bytes at the given stride, which the sizes above keep within `a` and `data`; the
        // stores write the 4 KB of `scratch`.
        unsafe {
            asm!("ldtilecfg [{}]", in(reg) config.0.as_ptr(), options(nostack, readonly));
            for p in 0..n.div_ceil(NR) {
                let panel = data.as_ptr().add(p * pairs * NR);
                let cols = (n - p * NR).min(NR);
                for r0 in (0..rows).step_by(AMX_ROWS) {
                    asm!(
                        "tilezero tmm0",
                        "tilezero tmm1",
                        "tilezero tmm2",
                        "tilezero tmm3",
                        options(nostack, nomem)
                    );
                    let a0 = a.as_ptr().add(r0 * pairs);
                    for step in 0..pairs / PAIRS_STEP {
                        let a_top = a0.add(step * PAIRS_STEP);
                        let b_left = panel.add(step * PAIRS_STEP * NR);
                        asm!(
                            "tileloadd tmm4, [{a_top} + {a_stride}*1]",
                            "tileloadd tmm5, [{a_bottom} + {a_stride}*1]",
                            "tileloadd tmm6, [{b_left} + {b_stride}*1]",
                            "tileloadd tmm7, [{b_right} + {b_stride}*1]",
                            "tdpbf16ps tmm0, tmm4, tmm6",
                            "tdpbf16ps tmm1, tmm4, tmm7",
                            "tdpbf16ps tmm2, tmm5, tmm6",
                            "tdpbf16ps tmm3, tmm5, tmm7",
                            a_top = in(reg) a_top,
                            a_bottom = in(reg) a_top.add(16 * pairs),
                            b_left = in(reg) b_left,
                            b_right = in(reg) b_left.add(16),
                            a_stride = in(reg) a_stride,
                            b_stride = in(reg) b_stride,
                            options(nostack, readonly)
                        );
                    }
                    let c = scratch.0.as_mut_ptr();
                    asm!(
                        "tilestored [{top_left} + {c_stride}*1], tmm0",
                        "tilestored [{top_right} + {c_stride}*1], tmm1",
                        "tilestored [{bottom_left} + {c_stride}*1], tmm2",
                        "tilestored [{bottom_right} + {c_stride}*1], tmm3",
                        top_left = in(reg) c,
                        top_right = in(reg) c.add(16),
                        bottom_left = in(reg) c.add(16 * NR),
                        bottom_right = in(reg) c.add(16 * NR + 16),
                        c_stride = in(reg) c_stride,
                        options(nostack)
                    );
                    for r in 0..(rows - r0).min(AMX_ROWS) {
                        let o = &mut out[(r0 + r) * n + p * NR..][..cols];
                        for (o, v) in o.iter_mut().zip(&scratch.0[r * NR..]) {
                            *o += v;
                        }
                    }
                }
            }
            asm!("tilerelease", options(nostack, nomem));
        }
    }

    #[repr(C, align(64))]
    struct Scratch([f32; AMX_ROWS * NR]);
}
