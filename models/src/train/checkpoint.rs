//! Checkpoints: the weights, the optimizer's moments and where the run stands (step, seed,
//! options), written to a fresh folder and renamed into place, so a run killed mid-write
//! leaves the previous checkpoint whole.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use super::error::{Result, TrainError};

pub const DIR: &str = "checkpoint";
const WEIGHTS: &str = "weights.safetensors";
const OPTIMIZER: &str = "optimizer.safetensors";
const STATE: &str = "state.json";

/// Where the run stands. The data order, dropout and augmentation are all drawn from the seed
/// and the step, so the step is the whole data position.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct State {
    pub step: u64,
    /// The options the run was started with (a resume must match them).
    pub options: serde_json::Value,
    /// Wall time spent training so far, seconds.
    pub elapsed_s: f64,
}

pub struct Loaded {
    pub weights: HashMap<String, Tensor>,
    pub optimizer: HashMap<String, Tensor>,
    pub state: State,
}

fn bad(file: &Path, reason: impl ToString) -> TrainError {
    TrainError::Checkpoint {
        file: file.to_path_buf(),
        reason: reason.to_string(),
    }
}

pub fn save(
    out: &Path,
    weights: &HashMap<String, Tensor>,
    optimizer: &HashMap<String, Tensor>,
    state: &State,
) -> Result<PathBuf> {
    let dir = out.join(DIR);
    let tmp = out.join(format!("{DIR}.tmp"));
    let io = |file: PathBuf| move |source| TrainError::Io { file, source };
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io(tmp.clone()))?;
    }
    std::fs::create_dir_all(&tmp).map_err(io(tmp.clone()))?;
    candle_core::safetensors::save(weights, tmp.join(WEIGHTS)).map_err(|e| bad(&tmp, e))?;
    candle_core::safetensors::save(optimizer, tmp.join(OPTIMIZER)).map_err(|e| bad(&tmp, e))?;
    let text = serde_json::to_string_pretty(state).map_err(|e| bad(&tmp, e))?;
    std::fs::write(tmp.join(STATE), text).map_err(io(tmp.join(STATE)))?;
    let old = out.join(format!("{DIR}.old"));
    if dir.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old).map_err(io(old.clone()))?;
        }
        std::fs::rename(&dir, &old).map_err(io(dir.clone()))?;
    }
    std::fs::rename(&tmp, &dir).map_err(io(dir.clone()))?;
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(io(old.clone()))?;
    }
    Ok(dir)
}

/// Reads the checkpoint under `out`, if there is one.
pub fn load(out: &Path) -> Result<Option<Loaded>> {
    let dir = out.join(DIR);
    if !dir.join(STATE).exists() {
        return Ok(None);
    }
    let state_file = dir.join(STATE);
    let text = std::fs::read_to_string(&state_file).map_err(|e| bad(&state_file, e))?;
    let state: State = serde_json::from_str(&text).map_err(|e| bad(&state_file, e))?;
    let read = |name: &str| -> Result<HashMap<String, Tensor>> {
        let f = dir.join(name);
        candle_core::safetensors::load(&f, &Device::Cpu).map_err(|e| bad(&f, e))
    };
    Ok(Some(Loaded {
        weights: read(WEIGHTS)?,
        optimizer: read(OPTIMIZER)?,
        state,
    }))
}
