//! The model being trained: its weights in a [`VarMap`] under the checkpoint's own tensor names
//! (`music_enc.*`, `music_proj.*`, `text_proj.*`), so a trained model is written with no
//! renaming and loads through [`crate::encoders::Clamp`].
//!
//! The forward pass is the inference modules' own ([`MusicEncoder`], [`Linear`]), loaded from
//! the variables through [`Weights::trainable`], which makes them run as candle ops that
//! backpropagate instead of the fused CPU kernels. There is no second copy of the model's
//! maths to keep in step with the one that serves.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::VarMap;

use crate::encoders::bert::Linear;
use crate::encoders::config::BertConfig;
use crate::encoders::music::{music_layout, Init, MusicEncoder, PatchIds};
use crate::encoders::weights::Weights;

use super::rng::Rng;

/// The name of the temperature variable (a log scale; the loss multiplies by its exp).
pub const LOGIT_SCALE: &str = "logit_scale";

/// The shape of the model being trained.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NetShape {
    pub music: BertConfig,
    /// Ids per patch position (98 in CLaMP).
    pub patch_vocab: usize,
    /// Width of the shared embedding space.
    pub embedding: usize,
    /// Width of the text tower's pooled output (384 for MiniLM).
    pub text_hidden: usize,
}

/// All trainable tensors by name, in a [`VarMap`]; `names` fixes their order (sorted), which
/// the optimizer state and checkpoints rely on.
pub struct Net {
    pub shape: NetShape,
    pub varmap: VarMap,
    device: Device,
}

impl Net {
    /// Every tensor's name and shape, and how it starts: the music tower's
    /// ([`music_layout`]), then the two projections. The temperature is apart
    /// ([`LOGIT_SCALE`]).
    fn layout(shape: &NetShape) -> Vec<(String, Vec<usize>, Init)> {
        let mut t = music_layout(&shape.music, shape.patch_vocab);
        let h = shape.music.hidden_size;
        t.push((
            "music_proj.weight".into(),
            vec![shape.embedding, h],
            Init::Normal,
        ));
        t.push(("music_proj.bias".into(), vec![shape.embedding], Init::Zeros));
        t.push((
            "text_proj.weight".into(),
            vec![shape.embedding, shape.text_hidden],
            Init::Normal,
        ));
        t.push(("text_proj.bias".into(), vec![shape.embedding], Init::Zeros));
        t
    }

    /// A fresh model, initialised from `seed` (BERT's N(0, 0.02), LayerNorms at identity), so
    /// the same seed gives the same weights on every run.
    pub fn new(shape: NetShape, seed: u64, device: &Device) -> candle_core::Result<Self> {
        let mut rng = Rng::new(seed ^ 0x1417_u64);
        let varmap = VarMap::new();
        {
            let mut data = varmap.data().lock().expect("fresh varmap lock");
            for (name, dims, init) in Self::layout(&shape) {
                let n: usize = dims.iter().product();
                let values: Vec<f32> = match init {
                    Init::Normal => (0..n).map(|_| 0.02 * rng.normal()).collect(),
                    Init::Ones => vec![1.0; n],
                    Init::Zeros => vec![0.0; n],
                };
                let t = Tensor::from_vec(values, dims.as_slice(), device)?;
                data.insert(name, Var::from_tensor(&t)?);
            }
            // CLIP's learnable temperature, as a log scale starting at ln(1 / 0.07).
            let t = Tensor::new((1.0f32 / 0.07).ln(), device)?;
            data.insert(LOGIT_SCALE.into(), Var::from_tensor(&t)?);
        }
        Ok(Self {
            shape,
            varmap,
            device: device.clone(),
        })
    }

    /// A model whose tensors come from `tensors` (a checkpoint or a model to fine-tune); every
    /// tensor of the layout must be there with its shape.
    pub fn from_tensors(
        shape: NetShape,
        tensors: &std::collections::HashMap<String, Tensor>,
        device: &Device,
    ) -> candle_core::Result<Self> {
        let varmap = VarMap::new();
        {
            let mut data = varmap.data().lock().expect("fresh varmap lock");
            // A model without a trained temperature starts from CLIP's.
            let temperature = match tensors.get(LOGIT_SCALE) {
                Some(t) => t.to_dtype(DType::F32)?.to_device(device)?,
                None => Tensor::new((1.0f32 / 0.07).ln(), device)?,
            };
            data.insert(LOGIT_SCALE.into(), Var::from_tensor(&temperature)?);
            for (name, dims, _) in Self::layout(&shape) {
                let t = tensors
                    .get(&name)
                    .ok_or_else(|| candle_core::Error::Msg(format!("missing tensor `{name}`")))?;
                if t.dims() != dims.as_slice() {
                    candle_core::bail!(
                        "tensor `{name}` has shape {:?}, expected {dims:?}",
                        t.dims()
                    );
                }
                let t = t.to_dtype(DType::F32)?.to_device(device)?;
                data.insert(name, Var::from_tensor(&t)?);
            }
        }
        Ok(Self {
            shape,
            varmap,
            device: device.clone(),
        })
    }

    /// The variables sorted by name.
    pub fn vars(&self) -> BTreeMap<String, Var> {
        let data = self.varmap.data().lock().expect("varmap lock");
        data.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }

    /// The serving modules built on the variables, for one step: the music tower with
    /// `music_proj`, and `text_proj`. Built once a step (Q/K/V are joined again from their
    /// variables), so every forward pass of the step shares them.
    pub fn towers(&self) -> crate::encoders::Result<Towers> {
        let weights = Arc::new(Weights::trainable(
            PathBuf::from("<training>"),
            self.tensors(),
        ));
        let (h, p, t) = (
            self.shape.music.hidden_size,
            self.shape.embedding,
            self.shape.text_hidden,
        );
        Ok(Towers {
            encoder: MusicEncoder::load(&weights.vb("music_enc"), &self.shape.music)?,
            music_proj: Linear::load(&weights.vb("music_proj"), h, p)?,
            text_proj: Linear::load(&weights.vb("text_proj"), t, p)?,
        })
    }

    /// Every tensor, for writing a checkpoint or a model directory.
    pub fn tensors(&self) -> std::collections::HashMap<String, Tensor> {
        self.vars()
            .into_iter()
            .map(|(k, v)| (k, v.as_tensor().clone()))
            .collect()
    }

    pub fn device(&self) -> &Device {
        &self.device
    }
}

/// The serving modules on a [`Net`]'s variables, for one training step ([`Net::towers`]).
pub struct Towers {
    encoder: MusicEncoder,
    music_proj: Linear,
    text_proj: Linear,
}

impl Towers {
    /// The music tower's vectors (projected, unnormalised) for patch sequences, `[b, p]`.
    pub fn music(&self, tunes: &[Vec<PatchIds>]) -> crate::encoders::Result<Tensor> {
        if tunes.is_empty() || tunes.iter().any(Vec::is_empty) {
            return Err(crate::encoders::ModelError::Input(
                "a batch needs tunes with at least one patch each".into(),
            ));
        }
        let refs: Vec<&[PatchIds]> = tunes.iter().map(Vec::as_slice).collect();
        self.music_proj.forward(&self.encoder.pooled(&refs)?)
    }

    /// `text_proj` over pooled text-tower outputs `[b, text_hidden]`.
    pub fn text(&self, pooled: &Tensor) -> crate::encoders::Result<Tensor> {
        self.text_proj.forward(pooled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::encoders::music::music_config;

    fn shape() -> NetShape {
        NetShape {
            music: music_config(32, 2, 4, 16),
            patch_vocab: 98,
            embedding: 8,
            text_hidden: 12,
        }
    }

    fn tunes() -> Vec<Vec<PatchIds>> {
        let patch =
            |seed: usize| -> PatchIds { std::array::from_fn(|i| ((i * 7 + seed) % 98) as u8) };
        vec![
            vec![patch(1), patch(2), patch(3)],
            vec![patch(4)],
            (0..16).map(patch).collect(),
        ]
    }

    /// Training runs the serving modules on their composed path; the fused CPU kernels that
    /// serve must give the same vectors from the same weights.
    #[test]
    fn the_trained_graph_and_the_serving_kernels_give_the_same_vectors() {
        let net = Net::new(shape(), 3, &Device::Cpu).expect("net");
        let trained = net
            .towers()
            .expect("towers")
            .music(&tunes())
            .expect("graph")
            .to_vec2::<f32>()
            .expect("vec");
        let weights = Arc::new(Weights::from_tensors("<test>".into(), net.tensors()));
        let encoder =
            MusicEncoder::load(&weights.vb("music_enc"), &net.shape.music).expect("encoder");
        let proj = Linear::load(&weights.vb("music_proj"), 32, 8).expect("proj");
        let tunes = tunes();
        let refs: Vec<&[PatchIds]> = tunes.iter().map(Vec::as_slice).collect();
        let served = proj
            .forward(&encoder.pooled(&refs).expect("pooled"))
            .expect("proj")
            .to_vec2::<f32>()
            .expect("vec");
        for (a, b) in trained.iter().flatten().zip(served.iter().flatten()) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }

    /// Every weight of the music tower and its projection gets a gradient: nothing on the
    /// path (the patch table, the concatenated Q/K/V, LayerNorm, softmax) cuts the graph.
    #[test]
    fn every_music_weight_gets_a_gradient() {
        let net = Net::new(shape(), 5, &Device::Cpu).expect("net");
        let loss = net
            .towers()
            .expect("towers")
            .music(&tunes())
            .expect("graph")
            .sqr()
            .and_then(|t| t.sum_all())
            .expect("loss");
        let grads = loss.backward().expect("backward");
        for (name, var) in net.vars() {
            let trains = !name.starts_with("text_proj") && name != LOGIT_SCALE;
            let grad = grads.get(var.as_tensor());
            assert_eq!(grad.is_some(), trains, "{name}");
            if let Some(g) = grad {
                let norm = g
                    .sqr()
                    .and_then(|t| t.sum_all())
                    .and_then(|t| t.to_scalar::<f32>());
                let norm = norm.expect("norm");
                assert!(norm.is_finite(), "{name}: {norm}");
                // Token type 1 is never used, so only its row 0 moves; every other tensor's
                // gradient is non-zero.
                assert!(norm > 0.0, "{name} has a zero gradient");
            }
        }
    }
}
