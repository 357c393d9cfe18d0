//! Checking and normalising a vector on its way into the index or as a query.

use super::SearchError;

/// `v / ‖v‖`, after checking its length against `dim` and that it is finite and not zero.
/// The norm is summed in f64 so that long vectors of tiny components still normalise well.
pub(crate) fn normalised(v: &[f32], dim: usize) -> Result<Vec<f32>, SearchError> {
    if v.len() != dim {
        return Err(SearchError::DimMismatch {
            expected: dim,
            got: v.len(),
        });
    }
    if v.iter().any(|x| !x.is_finite()) {
        return Err(SearchError::NonFinite);
    }
    let norm = v.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
    if norm == 0.0 {
        return Err(SearchError::ZeroVector);
    }
    Ok(v.iter().map(|&x| (x as f64 / norm) as f32).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_input_and_normalises_good() {
        assert_eq!(
            normalised(&[1.0; 3], 4),
            Err(SearchError::DimMismatch {
                expected: 4,
                got: 3
            })
        );
        assert_eq!(normalised(&[0.0; 4], 4), Err(SearchError::ZeroVector));
        assert_eq!(
            normalised(&[1.0, f32::NAN, 0.0, 0.0], 4),
            Err(SearchError::NonFinite)
        );
        assert_eq!(
            normalised(&[1.0, f32::INFINITY, 0.0, 0.0], 4),
            Err(SearchError::NonFinite)
        );
        assert_eq!(
            normalised(&[3.0, 0.0, 4.0, 0.0], 4),
            Ok(vec![0.6, 0.0, 0.8, 0.0])
        );
        // Components so small their squares underflow f32 still have a direction.
        let tiny = normalised(&[1e-30, 1e-30, 0.0, 0.0], 4).expect("finite, non-zero");
        assert!((tiny[0] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
    }
}
