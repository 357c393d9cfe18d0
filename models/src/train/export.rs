//! What a run writes: checkpoints, the model directory every command can load (weights,
//! `config.json`, the `model.json` card) and the step log trimmed on resume.

use std::path::{Path, PathBuf};

use crate::encoders::clamp::{CONFIG_FILE, SAFETENSORS_FILE};
use crate::encoders::{CardDims, ModelCard, TextEncoderRef};

use super::*;

pub(super) fn truncate_log(file: &Path, keep_through: u64) -> Result<()> {
    let Ok(text) = std::fs::read_to_string(file) else {
        return Ok(());
    };
    let kept: String = text
        .lines()
        .filter(|l| serde_json::from_str::<StepLog>(l).is_ok_and(|e| e.step <= keep_through))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(file, kept).map_err(|source| TrainError::Io {
        file: file.to_path_buf(),
        source,
    })
}

/// Writes the checkpoint and the model directory (usable by every command as it stands).
pub(super) fn save_all(
    net: &Net,
    opt: &optim::AdamW,
    options: &TrainOptions,
    step: u64,
    elapsed: f64,
    summary: &Summary,
) -> Result<PathBuf> {
    let dir = checkpoint::save(
        &options.out,
        &net.tensors(),
        &opt.state(),
        &checkpoint::State {
            step,
            options: options.identity(),
            elapsed_s: elapsed,
        },
    )?;
    export_model(net, options, step, elapsed, summary)?;
    Ok(dir)
}

/// The trained model as a model directory in `options.out`: `model.safetensors`,
/// `config.json` and a `model.json` card pointing at the text tower.
pub fn export_model(
    net: &Net,
    options: &TrainOptions,
    step: u64,
    elapsed: f64,
    summary: &Summary,
) -> Result<()> {
    let out = &options.out;
    let io = |file: PathBuf| move |source| TrainError::Io { file, source };
    let st = out.join(SAFETENSORS_FILE);
    candle_core::safetensors::save(&net.tensors(), &st).map_err(|e| TrainError::Checkpoint {
        file: st.clone(),
        reason: e.to_string(),
    })?;
    let cfg = out.join(CONFIG_FILE);
    let text = serde_json::to_string_pretty(&net.shape.music).unwrap_or_default();
    std::fs::write(&cfg, text).map_err(io(cfg.clone()))?;
    let card_file = out.join(crate::encoders::card::CARD_FILE);
    // Metrics already in the card (from `eval` runs) stay.
    let metrics = ModelCard::read(&card_file)
        .map(|c| c.metrics)
        .unwrap_or_default();
    let text_path =
        std::fs::canonicalize(&options.text_model).unwrap_or(options.text_model.clone());
    let card = ModelCard {
        name: out
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "tunelens".into()),
        dims: CardDims {
            embedding: net.shape.embedding,
            music_layers: net.shape.music.num_hidden_layers,
            text_layers: 0,
            max_patches: net.shape.music.max_position_embeddings,
        },
        training_data: summary
            .collections
            .iter()
            .map(|c| {
                format!(
                    "{}: {} train / {} held out",
                    c.collection, c.train, c.held_out
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        metrics,
        text_encoder: Some(TextEncoderRef {
            name: text_path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            path: text_path,
        }),
        training: Some(serde_json::json!({
            "command": "tunelens train",
            "steps": step,
            "wall_time_s": elapsed,
            "machine": machine(),
            "options": options,
            "first_loss": summary.first_loss,
            "last_loss": summary.last_loss,
        })),
    };
    card.write(&card_file)?;
    Ok(())
}

/// The CPU model and core count, in words.
pub(super) fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cpu}, {cores} cores")
}
