//! What the model reads and how it reads it: ABC parsing with source locations, the CLaMP
//! patchilizer, the CLaMP encoders in candle, checkpoint loading and training.
//!
//! **Architecture Invariant:** this crate knows nothing of editors, LSP, sockets or indexes. It
//! takes text and tensors and returns plain data with byte ranges into the text it was given.

pub mod abc;
pub mod encoders;
pub mod heads;
pub mod musicxml;
pub mod train;
