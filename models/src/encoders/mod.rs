//! The CLaMP encoders in candle: configs, BERT/RoBERTa layers, the music encoder with its
//! gather-sum patch embedding, checkpoint loading with typed errors, length-bucketed batching,
//! and the synchronous embedding contract.
//!
//! **Architecture Invariant:** nothing here is async or knows about requests; a model turns
//! plain-data batches into vectors synchronously: the calling thread blocks until they are
//! done (on the CPU the work runs on rayon's pool, the forward pass itself included).

mod aligned;
pub mod attention;
pub mod backend;
pub mod batch;
pub mod bert;
pub mod bf16_matmul;
pub mod card;
pub mod clamp;
pub mod config;
pub mod device;
pub mod error;
pub mod f32_matmul;
mod fused_attention;
pub mod fused_linear;
pub mod kernels;
pub mod music;
pub mod open;
pub mod sentence;
pub mod text;
pub mod weights;

pub use backend::{EmbeddingBackend, Embeddings, MusicBatch, TextBatch};
pub use batch::{BatchLimits, LongTunes};
pub use candle_core::DType;
pub use card::{CardDims, ModelCard, TextEncoderRef};
pub use clamp::{normalize, Clamp, ClampFiles};
pub use config::{BertConfig, HiddenAct, TextArch};
pub use device::{
    auto_dtype, describe_device, parse_device, parse_dtype, resolve_dtype, select_device,
    SelectedDevice,
};
pub use error::{ModelError, Result};
pub use music::{MusicEncoder, PatchIds, PATCH_LENGTH};
pub use open::{default_model, default_text_model, model_id, open_model, OpenedModel};
pub use sentence::SentenceEncoder;
