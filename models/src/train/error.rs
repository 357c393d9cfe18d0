//! What can go wrong in training, each naming what to fix.

use std::path::PathBuf;

use crate::encoders::ModelError;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{}: {reason}", path.display())]
    Data { path: PathBuf, reason: String },
    #[error("no training data: {0}")]
    Empty(String),
    #[error(
        "the loss became {value} at step {step}; nothing after the last good checkpoint was \
         kept ({}); try a lower --lr",
        checkpoint.as_ref().map_or("none written yet".to_string(), |c| c.display().to_string())
    )]
    NotFinite {
        step: u64,
        value: f32,
        checkpoint: Option<PathBuf>,
    },
    #[error(
        "a batch of {batch} would need about {need_mb} MB for activations and gradients, more \
         than the {limit_mb} MB allowed; use --batch {suggest} or lower --max-patches"
    )]
    TooBig {
        batch: usize,
        need_mb: u64,
        limit_mb: u64,
        suggest: usize,
    },
    #[error("checkpoint {}: {reason}", file.display())]
    Checkpoint { file: PathBuf, reason: String },
    #[error("cannot write {}: {source}", file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Options(String),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("tensor computation failed: {0}")]
    Candle(#[from] candle_core::Error),
}

pub type Result<T, E = TrainError> = std::result::Result<T, E>;
