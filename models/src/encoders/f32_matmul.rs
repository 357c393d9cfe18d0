//! `x Wᵀ` in f32 on x86 CPUs with AVX-512 or AVX2, on weights packed once at load: added onto
//! an output, or as a whole linear layer (bias, residual, GELU) in the micro-tiles' epilogue.
//! Two micro-kernels share the packing: AVX-512's 14 rows × a 32-column panel, and AVX2's 6
//! rows × half a panel, run twice per panel ([`Kernel`], chosen at run time).
//!
//! Why not `gemm` alone: `gemm` packs its right-hand side on every call. A layer's weight
//! is the same matrix for the model's whole life, and at the small widths and row counts
//! the daemon runs (the default model is 256 wide; a bar window is 16–128 patches) that
//! repacking was ~18% of an encoder pass in `perf`, with the micro-kernel itself at ~41%.
//! Measured on a 2-core Xeon (`examples/matmul_shapes.rs`), this kernel runs 1.5–2.5× `gemm`
//! at 128 rows and matches it at 2048.
//!
//! The weight `[n, k]` is stored in panels of [`NR`] output columns: for every input
//! position `i`, the panel's 32 columns side by side (two cache lines), so that one step of
//! the micro-kernel loads two registers of weights and broadcasts one value of each of
//! [`MR`] rows of `x` against them. Positions come in blocks of [`KC`], and within a block
//! the panels follow one another, so a task's run of panels is one stream. The packed copy
//! replaces the weight tensor (same size), so packing costs no memory.
//!
//! What made the difference, each measured: weights on 64-byte lines (+10% at large shapes),
//! row blocks in a multiple of the threads (an odd count left one core idle ~9% of the
//! time), and prefetching the weights [`PREFETCH_AHEAD`] positions ahead (+10–15% at large
//! shapes). Interleaving `x` like `gemm` packs it cost more than it saved. Ending the tiles
//! with the bias, residual and GELU instead of passes of their own: with LayerNorm fused
//! after it, +7–9% for a whole encoder pass at 768 wide (A/B, same run).

use rayon::prelude::*;

use super::aligned::Aligned32;
use super::kernels::{self, SendPtr};

/// Output columns per panel: two registers of f32 accumulators per row.
const NR: usize = 32;
/// Rows per micro-tile: 14 rows × 2 registers = 28 accumulators, leaving registers for the
/// two weight vectors and a broadcast (12 was ~10% slower at 128 rows).
const MR: usize = 14;
/// Rows per AVX2 micro-tile: 6 rows × 2 registers of 8 = 12 accumulators, beside two weight
/// vectors and a broadcast (of 16 registers), as AVX2 GEMMs commonly tile.
const MR_AVX2: usize = 6;
/// Rows a task takes at most: [`TILES_PER_TASK`] tiles of [`MR`].
const ROWS_PER_TASK: usize = TILES_PER_TASK * MR;
/// The shared dimension is walked in blocks of this many positions, so that one row tile of
/// `x` (14 KB) stays in L1 and a task's block of panels in L2.
const KC: usize = 256;
/// Positions of the shared dimension the micro-kernel prefetches its weights ahead.
const PREFETCH_AHEAD: usize = 16;
/// Micro-tiles of rows per task at most; tasks also split the panels when rows are few.
const TILES_PER_TASK: usize = 32;
/// Panels per task at most: `KC` × 32 columns × 4 bytes × 24 = 768 KB of weights, which stay
/// in L2 while the task's row tiles pass over them.
const PANELS_PER_TASK: usize = 24;

/// The micro-kernels this module has, one per vector width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// [`MR`] rows × a whole 32-column panel, in 28 of AVX-512's 32 registers.
    Avx512,
    /// [`MR_AVX2`] rows × half a panel (16 columns), in 12 of AVX2's 16 registers, twice
    /// per panel: the same packed weights serve both.
    Avx2,
}

/// The kernel this CPU runs (AVX-512 F, else AVX2 with FMA), asked at run time: the binary
/// is built for any x86-64. `TUNELENS_F32_KERNEL=avx2` takes the AVX2 kernel on an AVX-512
/// CPU, so that one machine can measure what an AVX2-only CPU gets (read once).
pub fn kernel() -> Option<Kernel> {
    static CHOSEN: std::sync::OnceLock<Option<Kernel>> = std::sync::OnceLock::new();
    *CHOSEN.get_or_init(|| {
        let forced = std::env::var("TUNELENS_F32_KERNEL").ok();
        if forced.as_deref() == Some("avx2") && runs(Kernel::Avx2) {
            return Some(Kernel::Avx2);
        }
        [Kernel::Avx512, Kernel::Avx2]
            .into_iter()
            .find(|k| runs(*k))
    })
}

/// Whether this CPU runs one of the kernels.
pub fn available() -> bool {
    kernel().is_some()
}

/// Whether this CPU runs `kernel` (AVX2 runs on AVX-512 CPUs too: tests and benches force it).
pub fn runs(kernel: Kernel) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        match kernel {
            Kernel::Avx512 => has!("avx512f"),
            Kernel::Avx2 => has!("avx2") && has!("fma"),
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = kernel;
        false
    }
}

/// A weight matrix `[n, k]` (PyTorch's `Linear.weight`), packed in panels.
#[derive(Clone, Debug)]
pub struct PackedF32 {
    n: usize,
    k: usize,
    /// In blocks of [`KC`] positions, each block panel after panel: see [`Self::at`].
    /// Columns past `n` are 0; each position's 32 values fill two cache lines exactly.
    data: Aligned32,
}

impl PackedF32 {
    /// Where panel `p`'s values at positions `k0..` start, for `k0` a multiple of [`KC`].
    /// Within a block of KC positions the panels lie one after another, so that a task's
    /// run of panels is one stream for the prefetcher.
    fn at(&self, p: usize, k0: usize) -> usize {
        let panels = self.n.div_ceil(NR);
        let kc = KC.min(self.k - k0);
        k0 * panels * NR + p * kc * NR
    }

    /// Packs `w`, row-major `[n, k]`.
    pub fn pack(w: &[f32], n: usize, k: usize) -> Self {
        assert_eq!(w.len(), n * k, "weight of {n}x{k}");
        let panels = n.div_ceil(NR);
        let mut packed = Self {
            n,
            k,
            data: Aligned32::zeroed(panels * k * NR),
        };
        for (r, row) in w.chunks(k.max(1)).enumerate().take(n) {
            let (p, c) = (r / NR, r % NR);
            for k0 in (0..k).step_by(KC) {
                let at = packed.at(p, k0);
                let block = &row[k0..k.min(k0 + KC)];
                let data = packed.data.as_f32_mut();
                for (i, v) in block.iter().enumerate() {
                    data[at + i * NR + c] = *v;
                }
            }
        }
        packed
    }

    /// The weight back in its row-major `[n, k]` form (for paths the kernel does not take).
    pub fn unpack(&self) -> Vec<f32> {
        let (n, k) = (self.n, self.k);
        let mut w = vec![0f32; n * k];
        for (r, row) in w.chunks_mut(k.max(1)).enumerate().take(n) {
            let (p, c) = (r / NR, r % NR);
            for k0 in (0..k).step_by(KC) {
                let at = self.at(p, k0);
                for (i, v) in row[k0..k.min(k0 + KC)].iter_mut().enumerate() {
                    *v = self.data.as_f32()[at + i * NR + c];
                }
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
        assert_eq!(out.len(), rows * self.n, "out of {rows}x{}", self.n);
        let kernel = kernel().expect("f32 matmul on a CPU without AVX2 or AVX-512");
        self.product(kernel, x, rows, SendPtr(out.as_mut_ptr()), None, false);
    }

    /// `act(x Wᵀ + bias [+ residual])` for `x` row-major `[rows, k]`, `bias` of `n` and
    /// `residual` row-major `[rows, n]`, as a new row-major `[rows, n]`. The first block of
    /// the shared dimension starts its sums from the bias (and residual) and stores them, so
    /// the output is written by the kernel alone: a separate pass that pre-filled it with
    /// the bias was ~4% of an encoder pass at 768 wide, all memory traffic. With `gelu` the
    /// last block applies it before its store. Panics as [`Self::matmul_add`] does.
    pub fn linear(
        &self,
        x: &[f32],
        rows: usize,
        bias: &[f32],
        residual: Option<&[f32]>,
        gelu: bool,
    ) -> Vec<f32> {
        let kernel = kernel().expect("f32 matmul on a CPU without AVX2 or AVX-512");
        self.linear_on(kernel, x, rows, bias, residual, gelu)
    }

    /// [`Self::linear`] on a given kernel (tests and benches run AVX2's on AVX-512 CPUs).
    /// Panics where the CPU does not run it ([`runs`]).
    pub fn linear_on(
        &self,
        kernel: Kernel,
        x: &[f32],
        rows: usize,
        bias: &[f32],
        residual: Option<&[f32]>,
        gelu: bool,
    ) -> Vec<f32> {
        let n = self.n;
        assert_eq!(bias.len(), n, "bias of {} for {n} outputs", bias.len());
        if let Some(r) = residual {
            assert_eq!(r.len(), rows * n, "residual of {} for {rows}x{n}", r.len());
        }
        let len = rows * n;
        let mut out: Vec<f32> = Vec::with_capacity(len);
        if self.k == 0 {
            // No block to start from the bias: the sum is the bias (and residual) alone.
            for r in 0..rows {
                for (c, b) in bias.iter().enumerate() {
                    let v = b + residual.map_or(0.0, |res| res[r * n + c]);
                    out.push(if gelu { kernels::gelu(v) } else { v });
                }
            }
            return out;
        }
        self.product(
            kernel,
            x,
            rows,
            SendPtr(out.as_mut_ptr()),
            Some((bias, residual)),
            gelu,
        );
        // SAFETY: with k > 0, the first block's tiles stored every one of the `len` values:
        // tasks cover all rows × panels, and each tile stores its `cols` valid columns.
        unsafe { out.set_len(len) };
        out
    }

    /// The product into `out` (`rows` × `n`): added onto it, or with `start`, into it from
    /// the bias (and residual), in which case `out` may be uninitialised and `k` is > 0.
    fn product(
        &self,
        kernel: Kernel,
        x: &[f32],
        rows: usize,
        out: SendPtr,
        start: Option<(&[f32], Option<&[f32]>)>,
        gelu: bool,
    ) {
        assert!(runs(kernel), "{kernel:?} matmul on a CPU without it");
        // One copy of the loops per kernel, with its tile height a constant: choosing the
        // kernel per tile instead cost the AVX-512 path 3–4% of an encoder pass.
        match kernel {
            Kernel::Avx512 => self.product_on::<true>(x, rows, out, start, gelu),
            Kernel::Avx2 => self.product_on::<false>(x, rows, out, start, gelu),
        }
    }

    /// [`Self::product`] on the AVX-512 kernel (`AVX512`) or the AVX2 one.
    fn product_on<const AVX512: bool>(
        &self,
        x: &[f32],
        rows: usize,
        out: SendPtr,
        start: Option<(&[f32], Option<&[f32]>)>,
        gelu: bool,
    ) {
        let (n, k) = (self.n, self.k);
        assert_eq!(x.len(), rows * k, "x of {rows}x{k}");
        if rows == 0 || n == 0 || k == 0 {
            return;
        }
        let mr = if AVX512 { MR } else { MR_AVX2 };
        let panels = n.div_ceil(NR);
        let tiles = rows.div_ceil(mr);
        // Tasks own a block of row tiles × a block of panels. Rows first (a task streams each
        // weight panel once for all its rows), in a multiple of the threads so that none is
        // left with one more block than the others; panels are split too when the rows are
        // few, and always into groups of at most PANELS_PER_TASK, whose block of weights
        // stays in L2 while the task's row tiles pass over it. Blocks differ by one at most.
        let threads = rayon::current_num_threads().max(1);
        let row_tasks = tiles
            .div_ceil(ROWS_PER_TASK / mr)
            .next_multiple_of(threads)
            .min(tiles);
        let panel_tasks = panels
            .div_ceil(PANELS_PER_TASK)
            .max((4 * threads).div_ceil(row_tasks))
            .min(panels);
        // SAFETY (of sharing `out`): each task writes only its own rows × panels block, and
        // `out` outlives the parallel loop.
        (0..row_tasks * panel_tasks)
            .into_par_iter()
            .for_each(|task| {
                let (rt, pt) = (task / panel_tasks, task % panel_tasks);
                let r0 = rt * tiles / row_tasks * mr;
                let r1 = ((rt + 1) * tiles / row_tasks * mr).min(rows);
                let p0 = pt * panels / panel_tasks;
                let p1 = (pt + 1) * panels / panel_tasks;
                for k0 in (0..k).step_by(KC) {
                    let kc = KC.min(k - k0);
                    let last = k0 + kc == k;
                    let mut r = r0;
                    while r < r1 {
                        let m = (r1 - r).min(mr);
                        let a = &x[r * k + k0..(r + m - 1) * k + k0 + kc];
                        // The next tile's rows, into L2 while this one runs: read straight from
                        // `x` (a tile's rows at stride k), they are otherwise misses at large
                        // shapes.
                        let next = r + m;
                        if next < r1 {
                            for row in x[next * k..].chunks(k).take(mr) {
                                prefetch_l2(&row[k0..k0 + kc]);
                            }
                        }
                        for p in p0..p1 {
                            let at = self.at(p, k0);
                            let panel = &self.data.as_f32()[at..at + kc * NR];
                            let cols = (n - p * NR).min(NR);
                            let end = TileEnd {
                                onto: match start {
                                    Some((bias, residual)) if k0 == 0 => Onto::Bias {
                                        bias: &bias[p * NR..p * NR + cols],
                                        residual: residual.map(|res| &res[r * n + p * NR..]),
                                    },
                                    _ => Onto::Out,
                                },
                                gelu: gelu && last,
                            };
                            // SAFETY: the CPU runs this kernel (`product` asserted it). `a`
                            // holds `m` rows of `kc` values at stride `k`, `panel` `kc` × NR
                            // values. The output
                            // block rows r..r+m, columns p·NR..p·NR+cols is within `out` (rows
                            // ≤ `rows`, columns ≤ `n`) and written by this task alone: tasks
                            // own disjoint row ranges × panel ranges. A residual slice starts
                            // at the tile's first value and runs to the end, so it holds the
                            // tile's `m` rows at stride `n`.
                            #[cfg(target_arch = "x86_64")]
                            unsafe {
                                let o = out.get().add(r * n + p * NR);
                                if AVX512 {
                                    tile(m, a, k, panel, kc, o, n, cols, end);
                                } else {
                                    avx2::tile(m, a, k, panel, kc, o, n, cols, end);
                                }
                            }
                        }
                        r += m;
                    }
                }
            });
    }
}

/// Where a micro-tile's sums go: onto the output's values, or from the bias into it.
#[derive(Clone, Copy)]
pub(super) enum Onto<'a> {
    /// `out += sums`.
    Out,
    /// `out = sums + bias (+ residual)`, without reading `out` (which may be uninitialised).
    /// `bias` holds the tile's valid columns; `residual` starts at the tile's first value and
    /// has the output's row stride.
    Bias {
        bias: &'a [f32],
        residual: Option<&'a [f32]>,
    },
}

/// How a micro-tile ends: where its sums go, and whether GELU applies before the store.
#[derive(Clone, Copy)]
pub(super) struct TileEnd<'a> {
    pub onto: Onto<'a>,
    pub gelu: bool,
}

impl TileEnd<'_> {
    /// `out += sums`, nothing else (a kernel whose caller pre-filled the output).
    pub(super) const ADD: Self = Self {
        onto: Onto::Out,
        gelu: false,
    };
}

/// Asks for `values`' cache lines in L2.
fn prefetch_l2(values: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    for line in values.chunks(16) {
        // SAFETY: a prefetch reads nothing architecturally; the address is within `values`.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T1};
            _mm_prefetch::<_MM_HINT_T1>(line.as_ptr().cast());
        }
    }
}

/// `m` (≤ [`MR`]) rows of `a` (row stride `k`, `kc` values each) against one panel block of
/// `kc` positions, added into `out` (row stride `n`, `cols` ≤ [`NR`] valid
/// columns).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile(
    m: usize,
    a: &[f32],
    k: usize,
    panel: &[f32],
    kc: usize,
    out: *mut f32,
    n: usize,
    cols: usize,
    end: TileEnd,
) {
    // SAFETY (all arms): as `tile_rows` requires; the caller checked the sizes.
    unsafe {
        match m {
            14 => tile_rows::<14>(a, k, panel, kc, out, n, cols, end),
            13 => tile_rows::<13>(a, k, panel, kc, out, n, cols, end),
            12 => tile_rows::<12>(a, k, panel, kc, out, n, cols, end),
            11 => tile_rows::<11>(a, k, panel, kc, out, n, cols, end),
            10 => tile_rows::<10>(a, k, panel, kc, out, n, cols, end),
            9 => tile_rows::<9>(a, k, panel, kc, out, n, cols, end),
            8 => tile_rows::<8>(a, k, panel, kc, out, n, cols, end),
            7 => tile_rows::<7>(a, k, panel, kc, out, n, cols, end),
            6 => tile_rows::<6>(a, k, panel, kc, out, n, cols, end),
            5 => tile_rows::<5>(a, k, panel, kc, out, n, cols, end),
            4 => tile_rows::<4>(a, k, panel, kc, out, n, cols, end),
            3 => tile_rows::<3>(a, k, panel, kc, out, n, cols, end),
            2 => tile_rows::<2>(a, k, panel, kc, out, n, cols, end),
            _ => tile_rows::<1>(a, k, panel, kc, out, n, cols, end),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile_rows<const M: usize>(
    a: &[f32],
    k: usize,
    panel: &[f32],
    kc: usize,
    out: *mut f32,
    n: usize,
    cols: usize,
    end: TileEnd,
) {
    use std::arch::x86_64::*;
    debug_assert!(a.len() >= (M - 1) * k + kc && panel.len() >= kc * NR);
    // The output block is read once, after the loop: ask for its lines now, so that they
    // arrive while the loop runs instead of stalling the adds (at large shapes they are out
    // of L2 by the time a task comes back to them).
    for r in 0..M {
        // SAFETY: prefetching computes no access; the addresses are within the output anyway.
        unsafe {
            let row = out.add(r * n).cast::<i8>();
            _mm_prefetch::<_MM_HINT_T0>(row);
            _mm_prefetch::<_MM_HINT_T0>(row.wrapping_add(64));
        }
    }
    let mut acc = [[_mm512_setzero_ps(); 2]; M];
    let (a, b) = (a.as_ptr(), panel.as_ptr());
    for i in 0..kc {
        // SAFETY: position i of each of the M rows and the panel's 32 values at i are within
        // `a` and `panel` (sizes above); a prefetch reads nothing architecturally.
        unsafe {
            let b0 = _mm512_loadu_ps(b.add(i * NR));
            let b1 = _mm512_loadu_ps(b.add(i * NR + 16));
            // The weights ahead (past this block they are the next panel's, which a task
            // reads next): L2's own prefetcher starts late on each new panel.
            let ahead = b.wrapping_add((i + PREFETCH_AHEAD) * NR).cast::<i8>();
            _mm_prefetch::<_MM_HINT_T0>(ahead);
            _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(64));
            for (r, acc) in acc.iter_mut().enumerate() {
                let x = _mm512_set1_ps(*a.add(r * k + i));
                acc[0] = _mm512_fmadd_ps(x, b0, acc[0]);
                acc[1] = _mm512_fmadd_ps(x, b1, acc[1]);
            }
        }
    }
    // SAFETY: the caller's bound: rows 0..M, columns 0..cols at stride n are within `out`.
    unsafe { store_tile(&acc, out, n, cols, end) }
}

/// Ends a micro-tile of accumulators (`M` rows × two registers) as `end` says, into `out`
/// (row stride `n`), writing only the first `cols` (≤ 32) columns of each row. Both CPU
/// matmul kernels end so.
///
/// # Safety
/// AVX-512 F must be available, and rows 0..M, columns 0..cols at stride `n` from `out` must
/// be within one allocation the caller may write (and, for [`Onto::Out`], has initialised).
/// A residual must hold row `M - 1`'s column `cols - 1` at stride `n`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
pub(super) unsafe fn store_tile<const M: usize>(
    acc: &[[std::arch::x86_64::__m512; 2]; M],
    out: *mut f32,
    n: usize,
    cols: usize,
    end: TileEnd,
) {
    use std::arch::x86_64::*;
    // Lane masks of the valid columns (`cols` ≤ 32), low register then high.
    let valid = u32::MAX >> (NR - cols);
    let masks = [valid as u16, (valid >> 16) as u16];
    let (bias, residual) = match end.onto {
        Onto::Out => (None, None),
        Onto::Bias { bias, residual } => {
            debug_assert!(bias.len() >= cols);
            debug_assert!(residual.is_none_or(|r| r.len() >= (M - 1) * n + cols));
            // SAFETY: masked lanes are not read; the valid ones are within `bias`.
            let b = unsafe {
                [
                    _mm512_maskz_loadu_ps(masks[0], bias.as_ptr()),
                    _mm512_maskz_loadu_ps(masks[1], bias.as_ptr().wrapping_add(16)),
                ]
            };
            (Some(b), residual)
        }
    };
    for (r, acc) in acc.iter().enumerate() {
        for (h, (&mask, &sums)) in masks.iter().zip(acc).enumerate() {
            if mask == 0 {
                continue;
            }
            // SAFETY: row r's first `cols` columns are within the output (the caller's
            // bound), and within the residual where there is one; masked lanes are neither
            // read nor written.
            unsafe {
                let at = out.add(r * n + 16 * h);
                let onto = match (bias, residual) {
                    (None, _) => _mm512_maskz_loadu_ps(mask, at),
                    (Some(b), None) => b[h],
                    (Some(b), Some(res)) => _mm512_add_ps(
                        b[h],
                        _mm512_maskz_loadu_ps(mask, res.as_ptr().add(r * n + 16 * h)),
                    ),
                };
                let v = _mm512_add_ps(onto, sums);
                let v = if end.gelu { kernels::gelu16(v) } else { v };
                _mm512_mask_storeu_ps(at, mask, v);
            }
        }
    }
}

/// The AVX2 micro-kernel: [`MR_AVX2`] rows against one half of a panel at a time.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{Onto, TileEnd, MR_AVX2, NR, PREFETCH_AHEAD};
    use crate::encoders::kernels;

    /// Columns in half a panel: two registers of 8.
    const HALF: usize = NR / 2;

    /// As the AVX-512 `tile`, on AVX2: both halves of the panel in turn, each against the
    /// same `m` (≤ [`MR_AVX2`]) rows of `a`.
    ///
    /// # Safety
    /// AVX2 and FMA must be available; the bounds are the AVX-512 `tile`'s.
    #[allow(clippy::too_many_arguments)]
    pub(super) unsafe fn tile(
        m: usize,
        a: &[f32],
        k: usize,
        panel: &[f32],
        kc: usize,
        out: *mut f32,
        n: usize,
        cols: usize,
        end: TileEnd,
    ) {
        debug_assert!(m <= MR_AVX2);
        for half in 0..2 {
            let h0 = half * HALF;
            if cols <= h0 {
                break;
            }
            let half_cols = (cols - h0).min(HALF);
            let end = TileEnd {
                onto: match end.onto {
                    Onto::Out => Onto::Out,
                    Onto::Bias { bias, residual } => Onto::Bias {
                        bias: &bias[h0..],
                        residual: residual.map(|res| &res[h0..]),
                    },
                },
                gelu: end.gelu,
            };
            // SAFETY (all arms): the caller's bounds; the half's columns h0..h0+half_cols are
            // within the tile's `cols`, and its weights start h0 into each position's 32.
            unsafe {
                let (b, o) = (panel.as_ptr().add(h0), out.add(h0));
                match m {
                    6 => rows::<6>(a, k, b, kc, o, n, half_cols, end),
                    5 => rows::<5>(a, k, b, kc, o, n, half_cols, end),
                    4 => rows::<4>(a, k, b, kc, o, n, half_cols, end),
                    3 => rows::<3>(a, k, b, kc, o, n, half_cols, end),
                    2 => rows::<2>(a, k, b, kc, o, n, half_cols, end),
                    _ => rows::<1>(a, k, b, kc, o, n, half_cols, end),
                }
            }
        }
    }

    /// `M` rows against one half panel: `b` points at the half's first weight, each
    /// position's 16 weights [`NR`] values after the last's.
    #[target_feature(enable = "avx2,fma")]
    #[allow(clippy::too_many_arguments)]
    unsafe fn rows<const M: usize>(
        a: &[f32],
        k: usize,
        b: *const f32,
        kc: usize,
        out: *mut f32,
        n: usize,
        cols: usize,
        end: TileEnd,
    ) {
        debug_assert!(a.len() >= (M - 1) * k + kc);
        let mut acc = [[_mm256_setzero_ps(); 2]; M];
        let a = a.as_ptr();
        for i in 0..kc {
            // SAFETY: position i's 16 weights of this half are within the panel (kc × NR
            // values from the panel's start, the half 0 or 16 in), and position i of each of
            // the M rows is within `a`; a prefetch reads nothing architecturally.
            unsafe {
                let b0 = _mm256_loadu_ps(b.add(i * NR));
                let b1 = _mm256_loadu_ps(b.add(i * NR + 8));
                _mm_prefetch::<_MM_HINT_T0>(b.wrapping_add((i + PREFETCH_AHEAD) * NR).cast());
                for (r, acc) in acc.iter_mut().enumerate() {
                    let x = _mm256_set1_ps(*a.add(r * k + i));
                    acc[0] = _mm256_fmadd_ps(x, b0, acc[0]);
                    acc[1] = _mm256_fmadd_ps(x, b1, acc[1]);
                }
            }
        }
        let (bias, residual) = match end.onto {
            Onto::Out => (None, None),
            Onto::Bias { bias, residual } => (Some(bias), residual),
        };
        if cols == HALF {
            // The common end, in registers: a scalar loop here cost ~10% of a block.
            for (r, acc) in acc.iter().enumerate() {
                for (h, sums) in acc.iter().enumerate() {
                    // SAFETY: row r's 16 columns are within the output (and the residual),
                    // and the bias holds the tile's 16 columns (the caller's bounds).
                    unsafe {
                        let at = out.add(r * n + 8 * h);
                        let onto = match bias {
                            None => _mm256_loadu_ps(at),
                            Some(bias) => {
                                let b = _mm256_loadu_ps(bias.as_ptr().add(8 * h));
                                match residual {
                                    None => b,
                                    Some(res) => _mm256_add_ps(
                                        b,
                                        _mm256_loadu_ps(res.as_ptr().add(r * n + 8 * h)),
                                    ),
                                }
                            }
                        };
                        let v = _mm256_add_ps(onto, *sums);
                        _mm256_storeu_ps(at, if end.gelu { kernels::gelu8(v) } else { v });
                    }
                }
            }
            return;
        }
        for (r, acc) in acc.iter().enumerate() {
            let mut sums = [0f32; HALF];
            // SAFETY: `sums` holds 16 values; row r's first `cols` (≤ 16) columns are within
            // the output, and within the residual where there is one (the caller's bounds).
            unsafe {
                _mm256_storeu_ps(sums.as_mut_ptr(), acc[0]);
                _mm256_storeu_ps(sums.as_mut_ptr().add(8), acc[1]);
                let row = out.add(r * n);
                for (c, sum) in sums.iter().enumerate().take(cols) {
                    let onto = match bias {
                        None => *row.add(c),
                        Some(bias) => bias[c] + residual.map_or(0.0, |res| res[r * n + c]),
                    };
                    let v = onto + sum;
                    *row.add(c) = if end.gelu { kernels::gelu(v) } else { v };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoders::kernels::test_values as values;

    #[test]
    fn unpack_gives_the_weight_back() {
        for (n, k) in [(1, 1), (33, 7), (64, 300), (5, 0)] {
            let w = values(n * k, 4);
            assert_eq!(PackedF32::pack(&w, n, k).unpack(), w, "{n}x{k}");
        }
    }

    /// Every shape the kernels' edges meet (rows past a tile or a task, columns past a panel
    /// or half of one, k past one block) against the same layer in f64, on each kernel this
    /// CPU runs: the product added onto an output, and as a whole layer (bias, residual,
    /// GELU) from an uninitialised one.
    #[test]
    fn matches_the_product_at_every_edge() {
        let kernels: Vec<Kernel> = [Kernel::Avx512, Kernel::Avx2]
            .into_iter()
            .filter(|k| runs(*k))
            .collect();
        if kernels.is_empty() {
            eprintln!("skipped: this CPU has neither AVX-512 nor AVX2");
            return;
        }
        for (rows, n, k) in [
            (1, 1, 1),
            (3, 16, 2),
            (7, 17, 5),
            (12, 32, 32),
            (13, 33, 33),
            (65, 48, 70),
            (130, 256, 256),
            (17, 20, 1024),
            (200, 768, 300),
        ] {
            let (x, w) = (values(rows * k, 1), values(n * k, 2));
            let (residual, bias) = (values(rows * n, 3), values(n, 4));
            let packed = PackedF32::pack(&w, n, k);
            let want = |r: usize, c: usize| -> f64 {
                (0..k)
                    .map(|i| f64::from(x[r * k + i]) * f64::from(w[c * k + i]))
                    .sum::<f64>()
                    + f64::from(bias[c])
                    + f64::from(residual[r * n + c])
            };
            let close =
                |got: f32, want: f64| (f64::from(got) - want).abs() < 1e-5 * (k as f64).sqrt();
            for &on in &kernels {
                if Some(on) == super::kernel() {
                    // matmul_add runs the CPU's own kernel.
                    let mut out: Vec<f32> =
                        (0..rows * n).map(|i| bias[i % n] + residual[i]).collect();
                    packed.matmul_add(&x, rows, &mut out);
                    for r in 0..rows {
                        for c in 0..n {
                            let got = out[r * n + c];
                            assert!(
                                close(got, want(r, c)),
                                "{on:?} add {rows}x{n}x{k} at ({r}, {c}): {got}"
                            );
                        }
                    }
                }
                for gelu in [false, true] {
                    let out = packed.linear_on(on, &x, rows, &bias, Some(&residual), gelu);
                    for r in 0..rows {
                        for c in 0..n {
                            let sum = want(r, c);
                            let want = if gelu {
                                f64::from(crate::encoders::kernels::gelu(sum as f32))
                            } else {
                                sum
                            };
                            let got = out[r * n + c];
                            assert!(
                                close(got, want),
                                "{on:?} linear (gelu {gelu}) {rows}x{n}x{k} at ({r}, {c}): {got} vs {want}"
                            );
                        }
                    }
                }
            }
        }
    }
}
