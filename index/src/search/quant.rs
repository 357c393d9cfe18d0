//! The int8 copy used by [`ScanMode::Int8Rerank`](super::ScanMode): each vector scaled by its
//! own largest component so that it spans ±127, plus the length of what rounding lost. That
//! length is what lets the search prove its int8 shortlist holds the exact top k (see
//! `index.rs`).

/// How a vector was quantised: `v ≈ scale · q`, and `‖v − scale · q‖ ≤ err`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Quantised {
    pub scale: f32,
    pub err: f32,
}

/// Writes the int8 codes of `v` into `out` (same length). Components are clamped to ±127 (never
/// -128, which the AVX2 kernel cannot take). `v` must be finite and not all zero.
pub(crate) fn quantise(v: &[f32], out: &mut [i8]) -> Quantised {
    debug_assert_eq!(v.len(), out.len());
    let max = v.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    let mut err2 = 0.0f64;
    for (x, q) in v.iter().zip(out.iter_mut()) {
        let c = (x / scale).round().clamp(-127.0, 127.0);
        *q = c as i8;
        let d = *x as f64 - scale as f64 * c as f64;
        err2 += d * d;
    }
    // Computed in f64, then nudged up so the f32 value is still an upper bound.
    let err = (err2.sqrt() * (1.0 + 1e-6) + 1e-9) as f32;
    Quantised { scale, err }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::rng::XorShift;

    #[test]
    fn error_bound_holds_and_codes_span_the_range() {
        let mut rng = XorShift::new(5);
        for dim in [64, 65, 300, 1024] {
            let v = rng.unit_vector(dim);
            let mut q = vec![0i8; dim];
            let info = quantise(&v, &mut q);
            assert!(q.iter().any(|&c| c.unsigned_abs() == 127));
            assert!(q.iter().all(|&c| c != i8::MIN));
            let err: f64 = v
                .iter()
                .zip(&q)
                .map(|(x, c)| (*x as f64 - info.scale as f64 * *c as f64).powi(2))
                .sum::<f64>()
                .sqrt();
            assert!(err <= info.err as f64, "{err} > {}", info.err);
            // Rounding to 255 levels: the loss is a small fraction of the unit length.
            assert!(info.err < 0.02, "dim {dim}: {}", info.err);
        }
    }
}
