//! `tunelens train`: contrastive training of the music tower (and the projections) against a
//! frozen text tower, plus music ↔ music objectives for passages, on CPU or CUDA.
//!
//! Per step, for a batch of tunes drawn in a seeded order:
//! - **text**: a tune (its ABC through the reference `abc_filter`, cut to `train_patches`)
//!   against its text (fields after CLaMP 2's dropout), symmetric InfoNCE, in-batch negatives;
//! - **tune**: one of its W-bar windows against the tune;
//! - **aug**: the window against an augmented copy (another key, ~10% of notes moved a step,
//!   ornaments dropped).
//!
//! The text tower is frozen (LiT): each distinct text field is embedded once by the sentence
//! encoder and cached, and a tune's text vector is the mean of its kept fields' vectors, which
//! is what mean pooling over their joined tokens is, less the tokens' mutual attention. Only
//! the music tower, the projections and the temperature train.

pub mod augment;
pub mod checkpoint;
pub mod data;
pub mod error;
mod export;
pub mod loss;
pub mod net;
pub mod optim;
pub mod rng;
mod step;
pub mod text;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::abc::{MusicView, PatchOptions, Patchilizer, PATCH_FEATURES};
use crate::encoders::clamp::{CONFIG_FILE, SAFETENSORS_FILE};
use crate::encoders::music::{music_config, PatchIds};
use crate::encoders::{BertConfig, SentenceEncoder};

pub use error::{Result, TrainError};
pub use export::export_model;
use export::{save_all, truncate_log};
use net::{Net, NetShape, LOGIT_SCALE};
use rng::Rng;
use step::step_loss;

/// How much each objective counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LossWeights {
    pub text: f64,
    pub tune: f64,
    pub aug: f64,
}

/// Everything a run is made of. Options that decide the result are recorded in the
/// checkpoint; a resume with different ones is refused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainOptions {
    pub data: Vec<PathBuf>,
    pub out: PathBuf,
    /// A model directory to start from (fine-tuning); its shape wins over the shape options.
    pub from: Option<PathBuf>,
    /// The frozen text tower (a sentence-transformers folder).
    pub text_model: PathBuf,
    pub steps: u64,
    pub batch: usize,
    pub lr: f64,
    pub weight_decay: f64,
    /// Linear warm-up steps, then cosine decay to 10% of `lr`.
    pub warmup: u64,
    pub seed: u64,
    /// Fraction of each collection's tunes held out (never trained on).
    pub held_out: f64,
    /// Bars per passage window.
    pub window: usize,
    /// The model's patch limit (positions).
    pub max_patches: usize,
    /// Patches of a tune seen in one training step (the first ones); shorter is cheaper.
    pub train_patches: usize,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub embedding: usize,
    pub weights: LossWeights,
    /// A fixed temperature instead of a learnt one.
    pub temperature: Option<f64>,
    /// Fraction of notes moved a step in the augmented window.
    pub vary: f64,
    pub checkpoint_every: u64,
    /// Refuse batches whose estimated activations exceed this (MB).
    pub memory_limit_mb: u64,
    /// How the new model reads music (written to its `config.json`); with `from`, the view of
    /// the model fine-tuned wins.
    #[serde(default, skip_serializing_if = "MusicView::is_reference")]
    pub view: MusicView,
    /// Collections held out whole (every tune of them), so that evaluation can use music the
    /// model never saw in any setting.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hold_out_collections: Vec<String>,
    /// Fraction of note pairs whose rhythm is varied in the augmented window (canonical views).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub vary_rhythm: f64,
}

fn is_zero(x: &f64) -> bool {
    *x == 0.0
}

impl TrainOptions {
    /// The defaults of `tunelens train` for `data` and `out`.
    pub fn new(data: Vec<PathBuf>, out: PathBuf, text_model: PathBuf) -> Self {
        Self {
            data,
            out,
            from: None,
            text_model,
            steps: 1000,
            batch: 32,
            lr: 5e-4,
            weight_decay: 0.01,
            warmup: 50,
            seed: 1,
            held_out: 0.1,
            window: 4,
            max_patches: 128,
            train_patches: 32,
            hidden: 256,
            layers: 4,
            heads: 4,
            embedding: 256,
            weights: LossWeights {
                text: 1.0,
                tune: 1.0,
                aug: 1.0,
            },
            temperature: None,
            vary: 0.1,
            checkpoint_every: 100,
            memory_limit_mb: 8192,
            view: MusicView::Reference,
            hold_out_collections: Vec::new(),
            vary_rhythm: 0.0,
        }
    }

    /// The options a resumed run must share with the one it continues: all but `steps`,
    /// `checkpoint_every` and `out` (a run's folder may be moved or copied, then resumed).
    fn identity(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Some(o) = v.as_object_mut() {
            o.remove("steps");
            o.remove("checkpoint_every");
            o.remove("out");
        }
        v
    }
}

/// One line of the JSONL log (and what the progress bar shows).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepLog {
    pub step: u64,
    pub loss: f32,
    pub text: f32,
    pub tune: f32,
    pub aug: f32,
    pub lr: f64,
    pub temperature: f32,
    pub steps_per_s: f64,
    pub elapsed_s: f64,
}

/// What a run did.
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub out: PathBuf,
    pub steps: u64,
    pub resumed_from: Option<u64>,
    pub stopped_early: bool,
    pub elapsed_s: f64,
    pub collections: Vec<data::CollectionCount>,
    pub first_loss: Option<f32>,
    pub last_loss: Option<f32>,
}

/// A training example ready for the model.
struct Example {
    tune: Vec<PatchIds>,
    windows: Vec<String>,
    fields: Vec<usize>,
}

/// The cached text vectors of every distinct field.
struct TextCache {
    index: HashMap<String, usize>,
    vectors: Vec<f32>,
    dim: usize,
}

const CACHE_VECTORS: &str = "text-cache.safetensors";
const CACHE_FIELDS: &str = "text-cache.json";
pub const LOG_FILE: &str = "train.jsonl";

fn text_cache(fields: Vec<String>, options: &TrainOptions) -> Result<TextCache> {
    let io = |file: PathBuf| move |source| TrainError::Io { file, source };
    let (vf, ff) = (
        options.out.join(CACHE_VECTORS),
        options.out.join(CACHE_FIELDS),
    );
    if let (Ok(text), true) = (std::fs::read_to_string(&ff), vf.exists()) {
        if serde_json::from_str::<Vec<String>>(&text).ok().as_ref() == Some(&fields) {
            let t = candle_core::safetensors::load(&vf, &Device::Cpu)?;
            if let Some(v) = t.get("vectors") {
                let dim = v.dims().get(1).copied().unwrap_or(0);
                return Ok(TextCache {
                    index: fields
                        .into_iter()
                        .enumerate()
                        .map(|(i, f)| (f, i))
                        .collect(),
                    vectors: v.flatten_all()?.to_vec1()?,
                    dim,
                });
            }
        }
    }
    let encoder = SentenceEncoder::load_dir(&options.text_model, &Device::Cpu)?;
    let dim = encoder.hidden_size();
    let mut vectors = Vec::with_capacity(fields.len() * dim);
    // Sorted by length so a batch pads little; vectors go back in field order.
    let mut order: Vec<usize> = (0..fields.len()).collect();
    order.sort_by_key(|&i| fields[i].len());
    let mut by_field = vec![Vec::new(); fields.len()];
    for chunk in order.chunks(64) {
        let texts: Vec<&str> = chunk.iter().map(|&i| fields[i].as_str()).collect();
        for (&i, v) in chunk.iter().zip(encoder.mean_pooled(&texts)?) {
            by_field[i] = v;
        }
    }
    for v in &by_field {
        vectors.extend_from_slice(v);
    }
    let t = Tensor::from_vec(vectors.clone(), (fields.len(), dim), &Device::Cpu)?;
    candle_core::safetensors::save(&HashMap::from([("vectors".to_string(), t)]), &vf)?;
    let text = serde_json::to_string(&fields).unwrap_or_default();
    std::fs::write(&ff, text).map_err(io(ff.clone()))?;
    Ok(TextCache {
        index: fields
            .into_iter()
            .enumerate()
            .map(|(i, f)| (f, i))
            .collect(),
        vectors,
        dim,
    })
}

/// The learning rate at `step` (1-based): linear warm-up, cosine decay to 10%.
pub fn lr_at(options: &TrainOptions, step: u64) -> f64 {
    let base = options.lr;
    if step <= options.warmup {
        return base * step as f64 / options.warmup.max(1) as f64;
    }
    let span = options.steps.saturating_sub(options.warmup).max(1) as f64;
    let t = ((step - options.warmup) as f64 / span).min(1.0);
    base * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * t).cos()))
}

/// Estimated bytes of activations and gradients for one step (f32, with the autograd graph
/// keeping every intermediate).
fn step_bytes(shape: &NetShape, batch: usize, tune_patches: usize, window_patches: usize) -> u64 {
    let c = &shape.music;
    let (h, i, l, heads) = (
        c.hidden_size,
        c.intermediate_size,
        c.num_hidden_layers,
        c.num_attention_heads,
    );
    let mut total = 0u64;
    for (n, s) in [(batch, tune_patches), (2 * batch, window_patches)] {
        let tokens = (n * s) as u64;
        let per_layer = tokens * (14 * h + 3 * i + 3 * heads * s) as u64;
        let gather = tokens * (64 * h) as u64;
        total += (per_layer * l as u64 + 2 * gather) * 4;
    }
    total * 2
}

fn shape_from(
    options: &TrainOptions,
    text_dim: usize,
) -> Result<(NetShape, Option<HashMap<String, Tensor>>)> {
    let Some(from) = &options.from else {
        if !options.hidden.is_multiple_of(options.heads.max(1)) {
            return Err(TrainError::Options(format!(
                "--hidden {} is not a multiple of --heads {}",
                options.hidden, options.heads
            )));
        }
        let mut music = music_config(
            options.hidden,
            options.layers,
            options.heads,
            options.max_patches,
        );
        music.music_view = options.view;
        return Ok((
            NetShape {
                music,
                patch_vocab: PATCH_FEATURES,
                embedding: options.embedding,
                text_hidden: text_dim,
            },
            None,
        ));
    };
    let music = BertConfig::from_file(&from.join(CONFIG_FILE))?;
    let tensors = candle_core::safetensors::load(from.join(SAFETENSORS_FILE), &Device::Cpu)
        .map_err(|e| TrainError::Checkpoint {
            file: from.join(SAFETENSORS_FILE),
            reason: e.to_string(),
        })?;
    let dims = |name: &str| tensors.get(name).map(|t| t.dims().to_vec());
    let (Some(pe), Some(proj)) = (
        dims("music_enc.patch_embedding.weight"),
        dims("music_proj.weight"),
    ) else {
        return Err(TrainError::Checkpoint {
            file: from.join(SAFETENSORS_FILE),
            reason: "not a tunelens model (no music_enc.patch_embedding or music_proj)".into(),
        });
    };
    if dims("text_proj.weight").map(|d| d[1]) != Some(text_dim) {
        return Err(TrainError::Options(format!(
            "{} has no text_proj for a {text_dim}-wide text tower: --from needs a model trained \
             by `tunelens train` with the same text tower",
            from.display()
        )));
    }
    Ok((
        NetShape {
            music,
            patch_vocab: pe[1] / crate::abc::PATCH_LENGTH,
            embedding: proj[0],
            text_hidden: text_dim,
        },
        Some(tensors),
    ))
}

/// Trains per `options`, calling `on_step` after every step; stops cleanly (with a checkpoint)
/// when `stop` is set. With `resume`, continues from the checkpoint in `options.out`.
pub fn train(
    options: &TrainOptions,
    resume: bool,
    device: &Device,
    on_step: &mut dyn FnMut(&StepLog, u64),
    stop: &AtomicBool,
) -> Result<Summary> {
    if options.batch < 2 {
        return Err(TrainError::Options(
            "--batch must be at least 2: the contrastive loss needs in-batch negatives".into(),
        ));
    }
    let io = |file: PathBuf| move |source| TrainError::Io { file, source };
    let out = &options.out;
    std::fs::create_dir_all(out).map_err(io(out.clone()))?;

    let mut tunes = data::load(
        &options.data,
        options.seed,
        options.held_out,
        options.window,
    )?;
    for name in &options.hold_out_collections {
        let mut found = false;
        for t in tunes.iter_mut().filter(|t| &t.collection == name) {
            t.held_out = true;
            found = true;
        }
        if !found {
            return Err(TrainError::Options(format!(
                "--hold-out-collection {name}: no collection of that name in the data"
            )));
        }
    }
    let collections = data::counts(&tunes);
    let train_tunes: Vec<&data::TrainTune> = tunes.iter().filter(|t| !t.held_out).collect();
    if train_tunes.len() < options.batch {
        return Err(TrainError::Empty(format!(
            "{} training tunes (after holding out {:.0}%), fewer than one batch of {}",
            train_tunes.len(),
            options.held_out * 100.0,
            options.batch
        )));
    }
    let with_text = train_tunes.iter().filter(|t| !t.fields.is_empty()).count();
    if with_text == 0 && options.weights.text > 0.0 {
        return Err(TrainError::Empty(
            "no training tune has any text (title, rhythm, meter, key, ...): add metadata or \
             pass --w-text 0 to train the music objectives alone"
                .into(),
        ));
    }
    data::write_held_out(&tunes, &out.join("held-out"))?;

    // Distinct fields, in first-seen order, embedded once.
    let mut fields: Vec<String> = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for t in &train_tunes {
        for f in &t.fields {
            if !seen.contains_key(f.as_str()) {
                seen.insert(f, fields.len());
                fields.push(f.clone());
            }
        }
    }
    let cache = text_cache(fields, options)?;

    let (shape, from_tensors) = shape_from(options, cache.dim)?;
    let need = step_bytes(&shape, options.batch, options.train_patches, 12);
    let limit = options.memory_limit_mb << 20;
    if need > limit {
        let suggest = ((options.batch as u64 * limit) / need).max(2) as usize;
        return Err(TrainError::TooBig {
            batch: options.batch,
            need_mb: need >> 20,
            limit_mb: options.memory_limit_mb,
            suggest,
        });
    }

    let mut patchilizer = Patchilizer::with_view(shape.music.music_view);
    let tune_opts = PatchOptions {
        max_patches: options
            .train_patches
            .min(shape.music.max_position_embeddings),
        add_eos_patch: true,
        reference_filter: true,
    };
    let examples: Vec<Example> = train_tunes
        .iter()
        .map(|t| Example {
            tune: patchilizer.encode_ids(&t.music, tune_opts),
            windows: t.windows.clone(),
            fields: t.fields.iter().map(|f| cache.index[f.as_str()]).collect(),
        })
        .collect();

    // The model and optimizer, fresh, fine-tuned or resumed.
    let loaded = if resume { checkpoint::load(out)? } else { None };
    if resume && loaded.is_none() {
        return Err(TrainError::Options(format!(
            "--resume: no checkpoint in {}",
            out.display()
        )));
    }
    let identity = options.identity();
    let net = match (&loaded, &from_tensors) {
        (Some(l), _) => {
            if l.state.options != identity {
                return Err(TrainError::Checkpoint {
                    file: out.join(checkpoint::DIR),
                    reason: "it was written by a run with other options (only --steps, --checkpoint-every and the folder may \
                             change on --resume)"
                        .into(),
                });
            }
            Net::from_tensors(shape.clone(), &l.weights, device)?
        }
        (None, Some(t)) => Net::from_tensors(shape.clone(), t, device)?,
        (None, None) => Net::new(shape.clone(), options.seed, device)?,
    };
    let mut trainable = net.vars();
    if options.temperature.is_some() {
        trainable.remove(LOGIT_SCALE);
    }
    let mut opt = optim::AdamW::new(
        trainable,
        optim::ParamsAdamW {
            lr: options.lr,
            weight_decay: options.weight_decay,
            ..Default::default()
        },
    )?;
    let (start, mut elapsed) = match &loaded {
        Some(l) => {
            opt.load_state(&l.optimizer, l.state.step)
                .map_err(|reason| TrainError::Checkpoint {
                    file: out.join(checkpoint::DIR),
                    reason,
                })?;
            (l.state.step, l.state.elapsed_s)
        }
        None => (0, 0.0),
    };
    let log_file = out.join(LOG_FILE);
    truncate_log(&log_file, start)?;
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_file)
        .map_err(io(log_file.clone()))?;

    let mut last_checkpoint = loaded.as_ref().map(|_| out.join(checkpoint::DIR));
    let mut summary = Summary {
        out: out.clone(),
        steps: start,
        resumed_from: loaded.as_ref().map(|l| l.state.step),
        stopped_early: false,
        elapsed_s: elapsed,
        collections,
        first_loss: None,
        last_loss: None,
    };
    let n = examples.len();
    let mut order_epoch = u64::MAX;
    let mut order: Vec<usize> = Vec::new();
    let t0 = Instant::now();
    let elapsed0 = elapsed;
    let mut step = start;
    while step < options.steps {
        if stop.load(Ordering::Relaxed) {
            summary.stopped_early = true;
            break;
        }
        step += 1;
        // The batch: positions (step-1)*B .. step*B of the seeded epoch orders.
        let mut batch = Vec::with_capacity(options.batch);
        for k in 0..options.batch as u64 {
            let pos = (step - 1) * options.batch as u64 + k;
            let epoch = pos / n as u64;
            if epoch != order_epoch {
                order = (0..n).collect();
                Rng::derive(options.seed, 1, epoch).shuffle(&mut order);
                order_epoch = epoch;
            }
            batch.push(order[(pos % n as u64) as usize]);
        }
        let lr = lr_at(options, step);
        opt.params.lr = lr;
        let parts = step_loss(
            &net,
            &examples,
            &batch,
            &cache,
            options,
            step,
            &mut patchilizer,
        )?;
        let value = parts.total.to_scalar::<f32>()?;
        if !value.is_finite() {
            return Err(TrainError::NotFinite {
                step,
                value,
                checkpoint: last_checkpoint,
            });
        }
        opt.backward_step(&parts.total)?;
        elapsed = elapsed0 + t0.elapsed().as_secs_f64();
        let entry = StepLog {
            step,
            loss: value,
            text: parts.text,
            tune: parts.tune,
            aug: parts.aug,
            lr,
            temperature: parts.temperature,
            steps_per_s: (step - start) as f64 / t0.elapsed().as_secs_f64().max(1e-9),
            elapsed_s: elapsed,
        };
        use std::io::Write;
        let line = serde_json::to_string(&entry).unwrap_or_default();
        writeln!(log, "{line}").map_err(io(log_file.clone()))?;
        summary.first_loss.get_or_insert(value);
        summary.last_loss = Some(value);
        on_step(&entry, options.steps);
        if step.is_multiple_of(options.checkpoint_every.max(1)) || step == options.steps {
            last_checkpoint = Some(save_all(&net, &opt, options, step, elapsed, &summary)?);
        }
    }
    if summary.stopped_early {
        last_checkpoint = Some(save_all(&net, &opt, options, step, elapsed, &summary)?);
    }
    let _ = last_checkpoint;
    summary.steps = step;
    summary.elapsed_s = elapsed;
    Ok(summary)
}
