//! An orthonormal basis fitted to the stored vectors, so that a scan can read a prefix of
//! each row.
//!
//! A music encoder's vectors do not fill their space: in the default model's 256-wide space,
//! the 64 directions of most energy hold 98 % of it (the passages of music21). Rotated into the
//! basis of those directions, a row's first 64 components carry almost all of every dot
//! product, and what the other 192 can add is bounded by the length of that tail. The scan
//! reads the 64-byte heads of all rows, proves which rows the tails cannot lift into the top k,
//! and reads whole rows only for the rest (about half a percent of them): a quarter of the
//! bytes, and the results stay exact (see `scan.rs`).
//!
//! The rotation is orthogonal, so dot products are unchanged; and the scan is exact for the
//! stored vector whatever basis it uses, a poor one only costs a longer second pass.

use super::kernels::dot_f32;

/// The least share of the energy the head must hold.
const HEAD_ENERGY: f64 = 0.98;
/// Heads are a whole number of these components (the int8 kernels' natural width).
const HEAD_STEP: usize = 16;
/// Rows the second-moment matrix is estimated from.
pub(crate) const FIT_SAMPLE: usize = 8_192;

/// `dim` orthonormal directions, most energy first, of which the first `head` form the head.
#[derive(Debug, Clone)]
pub(crate) struct Basis {
    dim: usize,
    head: usize,
    /// Row `i` (components `i * dim..(i + 1) * dim`) is direction `i`.
    rows: Vec<f32>,
}

impl Basis {
    /// The basis of `sample`'s principal directions (of its second moment, not its covariance:
    /// dot products are what the scan computes), or `None` when no head of at most half the
    /// components holds [`HEAD_ENERGY`] of it: then reading a prefix would save little.
    pub fn fit(dim: usize, sample: &[f32]) -> Option<Basis> {
        let n = sample.len() / dim;
        if n < dim {
            return None;
        }
        // Sᵀ S in one matrix product (f32 is plenty: the basis only has to gather the energy;
        // Jacobi keeps it orthonormal whatever the input). Sᵀ is `sample` read with its
        // strides swapped.
        let mut m32 = vec![0f32; dim * dim];
        let s = |transposed: bool| Strided {
            data: sample,
            col: if transposed { dim } else { 1 },
            row: if transposed { 1 } else { dim },
        };
        matmul(&mut m32, dim, s(true), s(false), n);
        // Symmetric up to rounding; make it exactly so.
        let mut m = vec![0f64; dim * dim];
        for i in 0..dim {
            for j in 0..dim {
                m[i * dim + j] = 0.5 * (m32[i * dim + j] as f64 + m32[j * dim + i] as f64);
            }
        }
        let (values, vectors) = symmetric_eigen(&mut m, dim);
        let mut order: Vec<usize> = (0..dim).collect();
        order.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
        let total: f64 = values.iter().map(|v| v.max(0.0)).sum();
        if total <= 0.0 {
            return None;
        }
        let mut head = 0;
        let mut energy = 0.0;
        while head < dim && energy < HEAD_ENERGY * total {
            energy += values[order[head]].max(0.0);
            head += 1;
        }
        let head = head.div_ceil(HEAD_STEP) * HEAD_STEP;
        if head > dim / 2 {
            return None;
        }
        let rows = order
            .iter()
            .flat_map(|&i| vectors[i * dim..(i + 1) * dim].iter().map(|&x| x as f32))
            .collect();
        Some(Basis { dim, head, rows })
    }

    pub fn head(&self) -> usize {
        self.head
    }

    /// `v` in this basis.
    pub fn rotate(&self, v: &[f32]) -> Vec<f32> {
        self.rows
            .chunks_exact(self.dim)
            .map(|dir| dot_f32(dir, v))
            .collect()
    }

    /// `v`, given in this basis, back in the original one.
    pub fn rotate_back(&self, v: &[f32]) -> Vec<f32> {
        let mut out = vec![0f32; self.dim];
        for (&c, dir) in v.iter().zip(self.rows.chunks_exact(self.dim)) {
            for (o, &d) in out.iter_mut().zip(dir) {
                *o += c * d;
            }
        }
        out
    }

    /// Rotates `n` row-major rows at once (`out` the same size): one matrix product.
    pub fn rotate_rows(&self, rows: &[f32], out: &mut [f32]) {
        let dim = self.dim;
        debug_assert_eq!(rows.len(), out.len());
        // The basis read with its strides swapped is its transpose: out = rows · basisᵀ.
        let rows = Strided {
            data: rows,
            col: 1,
            row: dim,
        };
        let basis_t = Strided {
            data: &self.rows,
            col: dim,
            row: 1,
        };
        matmul(out, dim, rows, basis_t, dim);
    }
}

/// A row-major matrix read through strides (a transpose is the same data, strides swapped).
struct Strided<'a> {
    data: &'a [f32],
    col: usize,
    row: usize,
}

/// `out = lhs · rhs` for `lhs` m × k and `rhs` k × n (`out` row-major, m × n with m from its
/// length), single-threaded.
fn matmul(out: &mut [f32], n: usize, lhs: Strided, rhs: Strided, k: usize) {
    let m = out.len() / n;
    let reach = |s: &Strided, rows: usize, cols: usize| (rows - 1) * s.row + (cols - 1) * s.col;
    assert!(m > 0 && n > 0 && k > 0);
    assert!(reach(&lhs, m, k) < lhs.data.len() && reach(&rhs, k, n) < rhs.data.len());
    // SAFETY: every element read, at most `reach` past the start, lies inside its slice
    // (asserted above); `out` is m x n row-major.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            false,
            lhs.data.as_ptr(),
            lhs.col as isize,
            lhs.row as isize,
            rhs.data.as_ptr(),
            rhs.col as isize,
            rhs.row as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Eigenvalues and eigenvectors (rows of the returned row-major matrix) of the symmetric
/// `dim × dim` matrix `a`, by cyclic Jacobi rotations (`a` is destroyed). Every rotation keeps
/// the vectors orthonormal to rounding, which is what the basis needs; how far the sweeps
/// converge only decides how well the head gathers the energy, so they stop early.
fn symmetric_eigen(a: &mut [f64], dim: usize) -> (Vec<f64>, Vec<f64>) {
    // Eigenvectors as rows (contiguous updates, and the basis's own layout).
    let mut vt = vec![0f64; dim * dim];
    for i in 0..dim {
        vt[i * dim + i] = 1.0;
    }
    let scale: f64 = (0..dim).map(|i| a[i * dim + i].abs()).sum::<f64>();
    if scale <= 0.0 {
        return (vec![0.0; dim], vt);
    }
    for _sweep in 0..12 {
        let off: f64 = (0..dim)
            .flat_map(|p| (p + 1..dim).map(move |q| (p, q)))
            .map(|(p, q)| a[p * dim + q] * a[p * dim + q])
            .sum();
        if off.sqrt() <= 1e-9 * scale {
            break;
        }
        for p in 0..dim {
            for q in p + 1..dim {
                let apq = a[p * dim + q];
                if apq.abs() <= 1e-15 * scale {
                    continue;
                }
                let (app, aqq) = (a[p * dim + p], a[q * dim + q]);
                let theta = (aqq - app) / (2.0 * apq);
                let t = if theta == 0.0 {
                    1.0
                } else {
                    theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt())
                };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                // Rows p and q of Jᵀ A (contiguous); by symmetry the columns follow.
                let (rp, rq) = rows_pair(a, dim, p, q);
                for (x, y) in rp.iter_mut().zip(rq.iter_mut()) {
                    let (ap, aq) = (*x, *y);
                    *x = c * ap - s * aq;
                    *y = s * ap + c * aq;
                }
                for k in 0..dim {
                    a[k * dim + p] = a[p * dim + k];
                    a[k * dim + q] = a[q * dim + k];
                }
                a[p * dim + p] = app - t * apq;
                a[q * dim + q] = aqq + t * apq;
                a[p * dim + q] = 0.0;
                a[q * dim + p] = 0.0;
                let (vp, vq) = rows_pair(&mut vt, dim, p, q);
                for (x, y) in vp.iter_mut().zip(vq.iter_mut()) {
                    let (ap, aq) = (*x, *y);
                    *x = c * ap - s * aq;
                    *y = s * ap + c * aq;
                }
            }
        }
    }
    ((0..dim).map(|i| a[i * dim + i]).collect(), vt)
}

/// Rows `p < q` of a row-major matrix, both mutable.
fn rows_pair(m: &mut [f64], dim: usize, p: usize, q: usize) -> (&mut [f64], &mut [f64]) {
    let (low, high) = m.split_at_mut(q * dim);
    (&mut low[p * dim..(p + 1) * dim], &mut high[..dim])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::rng::XorShift;

    /// Vectors in a random 8-dimensional subspace of 64, plus a little noise.
    pub(crate) fn low_rank(rng: &mut XorShift, dim: usize, rank: usize, n: usize) -> Vec<f32> {
        let dirs: Vec<Vec<f32>> = (0..rank).map(|_| rng.unit_vector(dim)).collect();
        let mut out = Vec::with_capacity(n * dim);
        for _ in 0..n {
            let mut v: Vec<f32> = (0..dim).map(|_| 0.01 * rng.gaussian()).collect();
            for d in &dirs {
                let c = rng.gaussian();
                v.iter_mut().zip(d).for_each(|(x, y)| *x += c * y);
            }
            out.extend(v);
        }
        out
    }

    #[test]
    fn low_rank_data_gets_a_short_head_and_an_orthonormal_basis() {
        let mut rng = XorShift::new(3);
        let dim = 64;
        let data = low_rank(&mut rng, dim, 8, 2000);
        let basis = Basis::fit(dim, &data).expect("low rank");
        assert_eq!(basis.head(), 16);
        for (i, a) in basis.rows.chunks_exact(dim).enumerate() {
            for (j, b) in basis.rows.chunks_exact(dim).enumerate() {
                let d = dot_f32(a, b);
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((d - want).abs() < 1e-5, "{i}·{j} = {d}");
            }
        }
        // One row and a block of rows rotate alike, and back again.
        let mut block = vec![0.0; 4 * dim];
        basis.rotate_rows(&data[..4 * dim], &mut block);
        for (r, v) in data[..4 * dim].chunks_exact(dim).enumerate() {
            let one = basis.rotate(v);
            for (a, b) in one.iter().zip(&block[r * dim..]) {
                assert!((a - b).abs() < 1e-4);
            }
            let back = basis.rotate_back(&one);
            for (a, b) in back.iter().zip(v) {
                assert!((a - b).abs() < 1e-4);
            }
            // Nearly all of the energy is in the head.
            let tail: f32 = one[16..].iter().map(|x| x * x).sum();
            let all: f32 = one.iter().map(|x| x * x).sum();
            assert!(tail < 0.01 * all, "{tail} of {all}");
        }
    }

    #[test]
    fn isotropic_data_gets_no_basis() {
        let mut rng = XorShift::new(4);
        let data: Vec<f32> = (0..64 * 3000).map(|_| rng.gaussian()).collect();
        assert!(Basis::fit(64, &data).is_none());
        // Too few rows to estimate from.
        assert!(Basis::fit(64, &data[..640]).is_none());
    }
}
