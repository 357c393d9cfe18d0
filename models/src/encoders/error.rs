//! One error type for everything that loads or runs a model. Each variant that comes from a file
//! names that file (and the tensor, where there is one) so a user can tell what to fix.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read {}: {source}", file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a readable checkpoint (truncated or corrupt?): {reason}", file.display())]
    Corrupt { file: PathBuf, reason: String },
    #[error("{} has no tensor `{tensor}`", file.display())]
    MissingTensor { file: PathBuf, tensor: String },
    #[error("tensor `{tensor}` in {} has shape {actual:?}, expected {expected:?}", file.display())]
    WrongShape {
        file: PathBuf,
        tensor: String,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
    #[error("bad config {}: {reason}", file.display())]
    Config { file: PathBuf, reason: String },
    #[error("bad tokenizer {}: {reason}", file.display())]
    Tokenizer { file: PathBuf, reason: String },
    #[error("missing {}: {hint}", file.display())]
    MissingFile { file: PathBuf, hint: String },
    #[error("{what} is in none of these places: {}; {hint}", looked.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    NotFound {
        what: String,
        looked: Vec<PathBuf>,
        hint: String,
    },
    #[error("device {spec:?}: {reason}")]
    Device { spec: String, reason: String },
    #[error("bad input: {0}")]
    Input(String),
    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

pub type Result<T, E = ModelError> = std::result::Result<T, E>;
