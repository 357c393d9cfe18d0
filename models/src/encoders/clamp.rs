//! The CLaMP model: music and text towers with their projections, loaded from the official
//! release layout or our own model directory. Ports `CLaMP.get_music_features` /
//! `get_text_features` of `clamp/utils.py` (microsoft/muzic): encoder, masked mean, projection.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use candle_core::{DType, Device, Tensor};

use super::batch::{plan, segments, BatchLimits, LongTunes};
use super::bert::Linear;
use super::bf16_matmul;
use super::card::{CardDims, ModelCard, TextEncoderRef, CARD_FILE};
use super::config::BertConfig;
use super::error::{ModelError, Result};
use super::music::{MusicEncoder, PatchIds};
use super::text::{TextEncoder, TextTokenizer, TEXT_MAX_LENGTH};
use super::weights::{Vb, Weights};

pub const SAFETENSORS_FILE: &str = "model.safetensors";
pub const PICKLE_FILE: &str = "pytorch_model.bin";
pub const CONFIG_FILE: &str = "config.json";
pub const TEXT_CONFIG_FILE: &str = "text_config.json";
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// Where the pieces of a model are; [`ClampFiles::in_dir`] fills it from a directory.
#[derive(Clone, Debug)]
pub struct ClampFiles {
    pub checkpoint: PathBuf,
    pub config: PathBuf,
    /// Absent in official releases: then the text config is inferred from tensor shapes.
    pub text_config: Option<PathBuf>,
    /// Absent in official releases: then only music can be embedded until one is given.
    pub tokenizer: Option<PathBuf>,
    /// Our own directories carry a card.
    pub card: Option<PathBuf>,
}

impl ClampFiles {
    /// Finds the files in `dir`: `model.safetensors` (preferred) or `pytorch_model.bin`,
    /// `config.json`, and the optional ones where present.
    pub fn in_dir(dir: &Path) -> Result<Self> {
        let st = dir.join(SAFETENSORS_FILE);
        let pt = dir.join(PICKLE_FILE);
        let checkpoint = if st.exists() {
            st
        } else if pt.exists() {
            pt
        } else {
            return Err(ModelError::MissingFile {
                file: st,
                hint: format!("a model directory needs {SAFETENSORS_FILE} or {PICKLE_FILE}"),
            });
        };
        let config = dir.join(CONFIG_FILE);
        if !config.exists() {
            return Err(ModelError::MissingFile {
                file: config,
                hint: "the music encoder's BertConfig (the official release ships it)".into(),
            });
        }
        let opt = |name: &str| Some(dir.join(name)).filter(|p| p.exists());
        Ok(Self {
            checkpoint,
            config,
            text_config: opt(TEXT_CONFIG_FILE),
            tokenizer: opt(TOKENIZER_FILE),
            card: opt(CARD_FILE),
        })
    }
}

struct TextTower {
    encoder: OnceLock<TextEncoder>,
    /// Set when the encoder is kept outside the checkpoint (the default model's MiniLM): then
    /// it is read from this file on first use, so that a process which never embeds text (a
    /// daemon whose label and prompt vectors are cached) never holds its 90 MB.
    external: Option<ExternalText>,
    proj: Linear,
    config: BertConfig,
}

struct ExternalText {
    file: PathBuf,
    device: Device,
    dtype: DType,
}

impl TextTower {
    fn encoder(&self) -> Result<&TextEncoder> {
        if let Some(e) = self.encoder.get() {
            return Ok(e);
        }
        let Some(ext) = &self.external else {
            // A tower in the checkpoint is loaded with it; only an external one is ever unset.
            return Err(ModelError::Input("the text encoder was not loaded".into()));
        };
        let tower = Weights::load(&ext.file, &ext.device)?;
        // sentence-transformers exports name the encoder `bert.…` or leave the prefix out.
        let tensors = tower
            .tensors()
            .iter()
            .map(|(name, t)| {
                (
                    name.strip_prefix("bert.").unwrap_or(name).to_owned(),
                    t.clone(),
                )
            })
            .collect();
        let weights = Arc::new(Weights::from_tensors(ext.file.clone(), tensors));
        let encoder = TextEncoder::load(&weights.vb("").with_precision(ext.dtype), &self.config)?;
        // Two threads may race to load it; either copy will do.
        Ok(self.encoder.get_or_init(|| encoder))
    }
}

pub struct Clamp {
    music: MusicEncoder,
    music_proj: Linear,
    music_config: BertConfig,
    text: Option<TextTower>,
    tokenizer: Option<TextTokenizer>,
    files: ClampFiles,
    card: Option<ModelCard>,
    limits: BatchLimits,
    /// What the encoders compute in, as asked: on the CPU, bf16 layers are f32 ones with bf16
    /// matmuls, so the tensors alone would say f32.
    precision: DType,
}

/// A projection `[p, in]` whose output width `p` the checkpoint decides.
fn load_proj(vb: &Vb, name: &str, in_dim: usize) -> Result<Linear> {
    let p = vb
        .shape_of(&format!("{name}.weight"))
        .map_or(in_dim, |s| s[0]);
    Linear::load(&vb.pp(name), in_dim, p)
}

impl Clamp {
    pub fn load_dir(dir: &Path, device: &Device) -> Result<Self> {
        Self::load(ClampFiles::in_dir(dir)?, device)
    }

    /// [`Clamp::load_dir`] with the encoders in `dtype` (f16 / bf16 for GPU inference).
    pub fn load_dir_as(dir: &Path, device: &Device, dtype: DType) -> Result<Self> {
        Self::load_as(ClampFiles::in_dir(dir)?, device, dtype)
    }

    pub fn load(files: ClampFiles, device: &Device) -> Result<Self> {
        Self::load_as(files, device, DType::F32)
    }

    /// Loads with both encoders' BERT stacks in `dtype`; the patch embedding, pooling and the
    /// projections stay f32, so only the transformer layers lose precision.
    pub fn load_as(mut files: ClampFiles, device: &Device, dtype: DType) -> Result<Self> {
        // Which kernel runs them is in the device's description (`open_model`).
        if dtype == DType::BF16 && device.is_cpu() && bf16_matmul::kernel().is_none() {
            tracing::warn!(
                "this CPU has no AVX512_BF16: bf16 runs as candle's bf16 ops, which are slower \
                 than f32 here"
            );
        }
        let music_config = BertConfig::from_file(&files.config)?;
        let card = match &files.card {
            Some(f) => Some(ModelCard::read(f)?),
            None => None,
        };
        let weights = Weights::load(&files.checkpoint, device)?;
        let mut unidecode = true;
        let mut external = None;
        let outside = card.as_ref().and_then(|c| c.text_encoder.as_ref());
        if let (Some(text), false) = (
            outside,
            weights
                .shape_of("text_enc.embeddings.word_embeddings.weight")
                .is_some(),
        ) {
            let dir = text_encoder_dir(&files.checkpoint, text);
            let file = dir.join(SAFETENSORS_FILE);
            // Read on first use, but a missing tower is reported now, with what to do.
            if !file.is_file() {
                return Err(ModelError::MissingFile {
                    file,
                    hint: format!(
                        "this model uses the text tower `{}` kept outside it: run \
                         scripts/setup.sh (or point TUNELENS_TEXT_MODEL at its folder)",
                        text.name
                    ),
                });
            }
            external = Some(ExternalText {
                file,
                device: device.clone(),
                dtype,
            });
            files.text_config = Some(dir.join(CONFIG_FILE));
            files.tokenizer = Some(dir.join(TOKENIZER_FILE));
            // A sentence-transformers tokenizer normalises on its own, as in training.
            unidecode = false;
        }
        let weights = Arc::new(weights);
        let root = weights.vb("");
        let music = MusicEncoder::load(&root.pp("music_enc").with_precision(dtype), &music_config)?;
        let music_proj = load_proj(&root, "music_proj", music_config.hidden_size)?;

        let has_text = root.contains("text_enc.embeddings.word_embeddings.weight");
        let text = if has_text || files.text_config.is_some() {
            let config = match &files.text_config {
                Some(f) => BertConfig::from_file(f)?,
                None => BertConfig::infer_text(&weights, "text_enc", music_config.head_dim())?,
            };
            let encoder = OnceLock::new();
            if external.is_none() {
                let _ = encoder.set(TextEncoder::load(
                    &root.pp("text_enc").with_precision(dtype),
                    &config,
                )?);
            }
            let proj = load_proj(&root, "text_proj", config.hidden_size)?;
            if proj.out_dim() != music_proj.out_dim() {
                return Err(ModelError::WrongShape {
                    file: files.checkpoint.clone(),
                    tensor: "text_proj.weight".into(),
                    expected: vec![music_proj.out_dim(), config.hidden_size],
                    actual: vec![proj.out_dim(), config.hidden_size],
                });
            }
            Some(TextTower {
                encoder,
                external,
                proj,
                config,
            })
        } else {
            None
        };
        let tokenizer = match &files.tokenizer {
            Some(f) => Some(TextTokenizer::from_file(f, TEXT_MAX_LENGTH, unidecode)?),
            None => None,
        };
        Ok(Self {
            music,
            music_proj,
            music_config,
            text,
            tokenizer,
            files,
            card,
            limits: BatchLimits::default(),
            precision: dtype,
        })
    }

    pub fn with_limits(mut self, limits: BatchLimits) -> Self {
        self.limits = limits;
        self
    }

    pub fn limits(&self) -> BatchLimits {
        self.limits
    }

    /// The width of the embeddings (the projections' output).
    pub fn dim(&self) -> usize {
        self.music_proj.out_dim()
    }

    pub fn max_patches(&self) -> usize {
        self.music.max_length()
    }

    /// How this model reads music; patch with `Patchilizer::with_view(clamp.music_view())`.
    pub fn music_view(&self) -> crate::abc::MusicView {
        self.music_config().music_view
    }

    pub fn music_config(&self) -> &BertConfig {
        &self.music_config
    }

    pub fn text_config(&self) -> Option<&BertConfig> {
        self.text.as_ref().map(|t| &t.config)
    }

    pub fn card(&self) -> Option<&ModelCard> {
        self.card.as_ref()
    }

    pub fn files(&self) -> &ClampFiles {
        &self.files
    }

    pub fn music_encoder(&self) -> &MusicEncoder {
        &self.music
    }

    /// The encoders' precision.
    pub fn dtype(&self) -> DType {
        self.precision
    }

    pub fn device(&self) -> &Device {
        self.music.device()
    }

    fn text_tower(&self) -> Result<&TextTower> {
        self.text.as_ref().ok_or_else(|| ModelError::MissingTensor {
            file: self.files.checkpoint.clone(),
            tensor: "text_enc.embeddings.word_embeddings.weight".into(),
        })
    }

    fn tokenizer(&self) -> Result<&TextTokenizer> {
        self.tokenizer
            .as_ref()
            .ok_or_else(|| {
                ModelError::MissingFile {
            file: self.files.config.with_file_name(TOKENIZER_FILE),
            hint: "official CLaMP releases ship no tokenizer: put the text model's tokenizer.json \
                   (distilroberta-base for CLaMP) next to the checkpoint"
                .into(),
        }
            })
    }

    /// One padded batch, no bucketing: `music_proj(mean(last_hidden_state))` per tune.
    pub fn music_batch(&self, tunes: &[&[PatchIds]]) -> Result<Tensor> {
        self.music_proj.forward(&self.music.pooled(tunes)?)
    }

    /// One padded batch of token rows: `text_proj(mean(last_hidden_state))`.
    pub fn text_batch(&self, rows: &[&[u32]]) -> Result<Tensor> {
        let t = self.text_tower()?;
        t.proj.forward(&t.encoder()?.pooled(rows)?)
    }

    /// `last_hidden_state` of one tune (`[patches, hidden]`), for parity checks.
    pub fn music_hidden(&self, tune: &[PatchIds]) -> Result<Vec<Vec<f32>>> {
        let (h, _) = self.music.forward(&[tune])?;
        Ok(h.squeeze(0)?.to_dtype(DType::F32)?.to_vec2::<f32>()?)
    }

    /// Music features (unnormalised projections), one per tune, in input order; tunes are
    /// bucketed by length and tunes past the patch limit are cut or segmented per `mode`.
    pub fn music_features(&self, tunes: &[&[PatchIds]], mode: LongTunes) -> Result<Vec<Vec<f32>>> {
        if let Some(i) = tunes.iter().position(|t| t.is_empty()) {
            return Err(ModelError::Input(format!("tune {i} has no patches")));
        }
        // Units are the pieces that run through the encoder: (tune, start, len).
        let units: Vec<(usize, usize, usize)> = tunes
            .iter()
            .enumerate()
            .flat_map(|(t, tune)| {
                segments(tune.len(), self.max_patches(), mode)
                    .into_iter()
                    .map(move |(s, l)| (t, s, l))
            })
            .collect();
        let lengths: Vec<usize> = units.iter().map(|u| u.2).collect();
        let mut unit_vecs = vec![Vec::new(); units.len()];
        for batch in plan(&lengths, self.limits) {
            let slices: Vec<&[PatchIds]> = batch
                .iter()
                .map(|&u| {
                    let (t, s, l) = units[u];
                    &tunes[t][s..s + l]
                })
                .collect();
            let out = self.music_batch(&slices)?.to_vec2::<f32>()?;
            for (&u, v) in batch.iter().zip(out) {
                unit_vecs[u] = v;
            }
        }
        // Length-weighted mean per tune (a no-op for tunes with one unit).
        let mut total = vec![0usize; tunes.len()];
        for &(t, _, l) in &units {
            total[t] += l;
        }
        let mut result = vec![vec![0f32; self.dim()]; tunes.len()];
        for (&(t, _, l), v) in units.iter().zip(&unit_vecs) {
            let w = l as f32 / total[t] as f32;
            for (r, x) in result[t].iter_mut().zip(v) {
                *r += w * x;
            }
        }
        Ok(result)
    }

    /// Token ids of `text` as the reference makes them (unidecode, 128-token truncation).
    pub fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenizer()?.encode(text)
    }

    /// Text features (unnormalised projections), bucketed by token count, in input order.
    pub fn text_features(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let ids = texts
            .iter()
            .map(|t| self.tokenize(t))
            .collect::<Result<Vec<_>>>()?;
        let rows: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
        self.text_features_ids(&rows)
    }

    pub fn text_features_ids(&self, rows: &[&[u32]]) -> Result<Vec<Vec<f32>>> {
        let lengths: Vec<usize> = rows.iter().map(|r| r.len()).collect();
        let mut out = vec![Vec::new(); rows.len()];
        for batch in plan(&lengths, self.limits) {
            let b: Vec<&[u32]> = batch.iter().map(|&i| rows[i]).collect();
            for (&i, v) in batch.iter().zip(self.text_batch(&b)?.to_vec2::<f32>()?) {
                out[i] = v;
            }
        }
        Ok(out)
    }

    /// Writes our own model directory: all tensors as safetensors, both configs, the tokenizer
    /// (when loaded from a file) and `card`.
    pub fn export_dir(&self, dir: &Path, card: &ModelCard) -> Result<()> {
        let io = |file: PathBuf| move |source| ModelError::Io { file, source };
        std::fs::create_dir_all(dir).map_err(io(dir.to_path_buf()))?;
        let st = dir.join(SAFETENSORS_FILE);
        // Read again rather than kept: the layers hold fused or transposed copies of some
        // tensors, and keeping the originals too cost ~10 MB for the whole process's life.
        let weights = Weights::load(&self.files.checkpoint, &Device::Cpu)?;
        candle_core::safetensors::save(weights.tensors(), &st).map_err(|e| {
            ModelError::Corrupt {
                file: st.clone(),
                reason: format!("cannot write: {e}"),
            }
        })?;
        let write_json = |name: &str, cfg: &BertConfig| -> Result<()> {
            let file = dir.join(name);
            let text = serde_json::to_string_pretty(cfg).map_err(|e| ModelError::Config {
                file: file.clone(),
                reason: e.to_string(),
            })?;
            std::fs::write(&file, text).map_err(io(file.clone()))
        };
        write_json(CONFIG_FILE, &self.music_config)?;
        if let Some(t) = &self.text {
            write_json(TEXT_CONFIG_FILE, &t.config)?;
        }
        if let Some(tok) = &self.files.tokenizer {
            let file = dir.join(TOKENIZER_FILE);
            std::fs::copy(tok, &file).map_err(io(file.clone()))?;
        }
        card.write(&dir.join(CARD_FILE))
    }

    /// A card describing this model's shape, for [`Clamp::export_dir`].
    pub fn card_dims(&self) -> CardDims {
        CardDims {
            embedding: self.dim(),
            music_layers: self.music_config.num_hidden_layers,
            text_layers: self.text.as_ref().map_or(0, |t| t.config.num_hidden_layers),
            max_patches: self.max_patches(),
        }
    }
}

/// Where an external text tower is: `TUNELENS_TEXT_MODEL`, else the card's path (relative
/// to the model directory), else, when the model folder was copied away from the tower, the
/// installed tower of that name (`open::default_text_model_places`).
pub fn text_encoder_dir(checkpoint: &Path, text: &TextEncoderRef) -> PathBuf {
    if let Some(dir) = std::env::var_os("TUNELENS_TEXT_MODEL") {
        return PathBuf::from(dir);
    }
    let dir = if text.path.is_absolute() {
        text.path.clone()
    } else {
        checkpoint
            .parent()
            .unwrap_or(Path::new("."))
            .join(&text.path)
    };
    if dir.is_dir() {
        return dir;
    }
    super::open::default_text_model_places()
        .into_iter()
        .find(|p| p.ends_with(&text.name) && p.join("config.json").is_file())
        .unwrap_or(dir)
}

/// L2-normalises a vector in place (zero vectors stay zero).
pub fn normalize(v: &mut [f32]) {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
}
