//! Checkpoint reading and a small typed `VarBuilder`. candle's own `VarBuilder` reports a missing
//! tensor as an untyped `candle_core::Error`; ours returns [`ModelError`] naming the file and the
//! tensor, and checks shapes, so a bad checkpoint never surfaces as a panic deep inside a layer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device, Tensor};

use super::error::{ModelError, Result};
use super::fused_linear::Packing;

/// Every tensor of one checkpoint file, as f32 on one device.
pub struct Weights {
    file: PathBuf,
    tensors: HashMap<String, Tensor>,
    /// The tensors are a trainer's variables: layers built from them must keep candle's
    /// autograd graph (composed ops, no host copies), see [`Weights::trainable`].
    trainable: bool,
}

impl Weights {
    /// Reads `model.safetensors` (by extension) or a torch pickle (`pytorch_model.bin`, `.pt`,
    /// `.pth`): torch's zip format, which candle reads without Python.
    pub fn load(file: &Path, device: &Device) -> Result<Self> {
        let corrupt = |e: candle_core::Error| ModelError::Corrupt {
            file: file.to_path_buf(),
            reason: e.to_string(),
        };
        std::fs::metadata(file).map_err(|source| ModelError::Io {
            file: file.to_path_buf(),
            source,
        })?;
        let is_safetensors = file.extension().is_some_and(|e| e == "safetensors");
        // Tensors are read onto the CPU first: dtype conversion is cheap there and a checkpoint
        // with odd dtypes never reaches a GPU kernel.
        let raw: Vec<(String, Tensor)> = if is_safetensors {
            candle_core::safetensors::load(file, &Device::Cpu)
                .map_err(corrupt)?
                .into_iter()
                .collect()
        } else {
            // candle's pickle reader may panic on some malformed archives; a checkpoint is user
            // input, so contain that and report it like any other corrupt file.
            let path = file.to_path_buf();
            match std::panic::catch_unwind(move || candle_core::pickle::read_all(path)) {
                Ok(r) => r.map_err(corrupt)?,
                Err(_) => {
                    return Err(ModelError::Corrupt {
                        file: file.to_path_buf(),
                        reason: "the torch pickle could not be parsed".into(),
                    })
                }
            }
        };
        let mut tensors = HashMap::with_capacity(raw.len());
        for (name, t) in raw {
            let t = t
                .to_dtype(DType::F32)
                .and_then(|t| t.to_device(device))
                .map_err(corrupt)?;
            tensors.insert(name, t);
        }
        Ok(Self {
            file: file.to_path_buf(),
            tensors,
            trainable: false,
        })
    }

    /// Wraps tensors that are already in memory (tests, conversions).
    pub fn from_tensors(file: PathBuf, tensors: HashMap<String, Tensor>) -> Self {
        Self {
            file,
            tensors,
            trainable: false,
        }
    }

    /// A trainer's variables (`Var::as_tensor` clones): the layers loaded from these run as
    /// plain candle ops that backpropagate into the variables, instead of the fused CPU
    /// kernels, which have no backward pass. Training and inference thus share one module.
    pub fn trainable(file: PathBuf, tensors: HashMap<String, Tensor>) -> Self {
        Self {
            file,
            tensors,
            trainable: true,
        }
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    pub fn shape_of(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|t| t.dims())
    }

    pub fn tensors(&self) -> &HashMap<String, Tensor> {
        &self.tensors
    }

    /// A builder rooted at `prefix` (e.g. `music_enc.enc`).
    pub fn vb(self: &Arc<Self>, prefix: &str) -> Vb {
        Vb {
            weights: Arc::clone(self),
            prefix: prefix.to_string(),
            dtype: DType::F32,
            packing: None,
        }
    }
}

/// A path into a [`Weights`]; `pp` descends like candle's `VarBuilder::pp`, so the layer code
/// mirrors the checkpoint's tensor names.
#[derive(Clone)]
pub struct Vb {
    weights: Arc<Weights>,
    prefix: String,
    /// The precision `get` hands tensors out in; checkpoints are held in f32.
    dtype: DType,
    /// How linear layers pack their weights for this crate's CPU kernels, if they do (see
    /// [`Vb::with_precision`]).
    packing: Option<Packing>,
}

impl Vb {
    pub fn pp(&self, name: impl AsRef<str>) -> Self {
        Self {
            weights: Arc::clone(&self.weights),
            prefix: self.full(name.as_ref()),
            dtype: self.dtype,
            packing: self.packing,
        }
    }

    /// The same path, handing tensors out in `dtype` (a half-precision model's layers).
    pub fn with_dtype(&self, dtype: DType) -> Self {
        Self {
            weights: Arc::clone(&self.weights),
            prefix: self.prefix.clone(),
            dtype,
            packing: None,
        }
    }

    /// Layers that compute in `dtype`. On a CPU with AVX512_BF16, bf16 means f32 layers whose
    /// matmuls read bf16 ([`bf16_matmul`](super::bf16_matmul)): candle's own bf16 ops on the
    /// CPU are several times slower than its f32 ones, and only the matmuls gain from bf16.
    /// Elsewhere the layers are bf16 tensors, as on a GPU. On a CPU with AVX-512 or AVX2, f32
    /// layers pack their weights for [`f32_matmul`](super::f32_matmul).
    pub fn with_precision(&self, dtype: DType) -> Self {
        let cpu = self.device().is_cpu();
        let packing = match dtype {
            DType::BF16 if cpu && super::bf16_matmul::available() => Some(Packing::Bf16),
            DType::F32 if cpu && super::f32_matmul::available() => Some(Packing::F32),
            _ => None,
        };
        let dtype = if packing.is_some() { DType::F32 } else { dtype };
        Self {
            packing,
            ..self.with_dtype(dtype)
        }
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// How linear layers pack their weights, if they do.
    pub fn packing(&self) -> Option<Packing> {
        self.packing
    }

    fn full(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{}", self.prefix, name)
        }
    }

    pub fn contains(&self, name: &str) -> bool {
        self.weights.tensors.contains_key(&self.full(name))
    }

    pub fn shape_of(&self, name: &str) -> Option<&[usize]> {
        self.weights.shape_of(&self.full(name))
    }

    /// The tensor `name` under this prefix; it must have exactly `dims`.
    pub fn get(&self, dims: &[usize], name: &str) -> Result<Tensor> {
        let full = self.full(name);
        let t = self
            .weights
            .tensors
            .get(&full)
            .ok_or_else(|| ModelError::MissingTensor {
                file: self.weights.file.clone(),
                tensor: full.clone(),
            })?;
        if t.dims() != dims {
            return Err(ModelError::WrongShape {
                file: self.weights.file.clone(),
                tensor: full,
                expected: dims.to_vec(),
                actual: t.dims().to_vec(),
            });
        }
        Ok(t.to_dtype(self.dtype)?)
    }

    /// A tensor whose shape the caller learns from the checkpoint (e.g. the patch embedding,
    /// whose input width gives the patch vocabulary); `rank` is still checked.
    pub fn get_any(&self, rank: usize, name: &str) -> Result<Tensor> {
        let dims = self.shape_of(name).map(<[usize]>::to_vec).ok_or_else(|| {
            ModelError::MissingTensor {
                file: self.weights.file.clone(),
                tensor: self.full(name),
            }
        })?;
        if dims.len() != rank {
            return Err(ModelError::WrongShape {
                file: self.weights.file.clone(),
                tensor: self.full(name),
                expected: vec![0; rank],
                actual: dims,
            });
        }
        self.get(&dims, name)
    }

    pub fn file(&self) -> &Path {
        &self.weights.file
    }

    pub fn weights(&self) -> &Arc<Weights> {
        &self.weights
    }

    /// Whether layers must stay differentiable ([`Weights::trainable`]).
    pub fn trainable(&self) -> bool {
        self.weights.trainable
    }

    pub fn device(&self) -> Device {
        self.weights
            .tensors
            .values()
            .next()
            .map(|t| t.device().clone())
            .unwrap_or(Device::Cpu)
    }
}
