//! What can go wrong when vectors go in or a query comes: all input errors, never panics.

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SearchError {
    #[error("vector dimension {0} is not supported (the index takes {min}..={max})", min = super::MIN_DIM, max = super::MAX_DIM)]
    UnsupportedDim(usize),
    #[error("vector has {got} components, but the index holds vectors of {expected}")]
    DimMismatch { expected: usize, got: usize },
    #[error("vector has a NaN or infinite component")]
    NonFinite,
    #[error("vector is all zeros, so it has no direction to compare")]
    ZeroVector,
    #[error("id {0} is already in the index (upsert replaces a vector)")]
    DuplicateId(u64),
}
