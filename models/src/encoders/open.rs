//! Where a model comes from and what its vectors are filed under: the one rule every command
//! and both servers use to find the default model and its text tower, to open a model on the
//! device asked for, and to name its vectors in an index (the model id).

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::{resolve_dtype, select_device, Clamp, DType, ModelError, Result};

/// The default model's folder name, under a data folder or a checkout.
const DEFAULT_MODEL: &str = "models/default";
/// The text tower `scripts/setup.sh` installs, under a checkout's `.data` or a data folder.
const DEFAULT_TEXT_MODEL: &str = "models/all-minilm-l6-v2";

/// tunelens's data folder: `$XDG_DATA_HOME/tunelens`, else `~/.local/share/tunelens`.
pub fn data_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .map(|d| d.join("tunelens"))
}

/// The places the default model is looked for, in order: beside the binary and in each folder
/// above it (a binary built in a checkout finds the checkout's `models/default`, which wins
/// over an older installed copy), then the data folder (an installed binary's).
pub fn default_model_places() -> Vec<PathBuf> {
    places(DEFAULT_MODEL, DEFAULT_MODEL)
}

/// The places the default text tower is looked for, in the same order.
pub fn default_text_model_places() -> Vec<PathBuf> {
    places(DEFAULT_TEXT_MODEL, &format!(".data/{DEFAULT_TEXT_MODEL}"))
}

fn places(in_data: &str, in_checkout: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    if let Some(exe) = std::env::current_exe()
        .ok()
        .and_then(|e| e.canonicalize().ok())
    {
        out.extend(exe.ancestors().skip(1).map(|a| a.join(in_checkout)));
    }
    out.extend(data_dir().map(|d| d.join(in_data)));
    out
}

/// The first of `places` that holds a `config.json`, or an error naming every place looked.
pub fn first_model(places: &[PathBuf], what: &str, hint: &str) -> Result<PathBuf> {
    places
        .iter()
        .find(|p| p.join("config.json").is_file())
        .cloned()
        .ok_or_else(|| ModelError::NotFound {
            what: what.to_owned(),
            looked: places.to_vec(),
            hint: hint.to_owned(),
        })
}

/// The default model: the first of [`default_model_places`] that holds one.
pub fn default_model() -> Result<PathBuf> {
    first_model(
        &default_model_places(),
        "the default model",
        "pass --model DIR or set TUNELENS_MODEL",
    )
}

/// The default text tower: the first of [`default_text_model_places`] that holds one.
pub fn default_text_model() -> Result<PathBuf> {
    first_model(
        &default_text_model_places(),
        "the all-MiniLM-L6-v2 text tower",
        "run scripts/setup.sh --data, or pass --text-model DIR",
    )
}

/// A model loaded on the device a user asked for.
pub struct OpenedModel {
    pub clamp: Clamp,
    /// What its vectors are stored under: [`model_id`], plus the precision when not f32.
    pub id: String,
    /// What runs it, e.g. `cpu (2 threads)` or `cuda:0 (NVIDIA H200, sm_90, 139 GiB)`.
    pub device: String,
}

/// Loads the model in `dir` on `device` (`auto | cpu | cuda | cuda:N`) in `dtype`
/// (`auto | f32 | f16 | bf16`, `auto` as [`super::device::auto_dtype`] picks for the
/// device): what every command and both servers do.
pub fn open_model(dir: &Path, device: &str, dtype: &str) -> Result<OpenedModel> {
    let picked = select_device(device)?;
    let dtype = resolve_dtype(dtype, &picked.device)?;
    if let Some(why) = &picked.fallback {
        // A CUDA build that finds no GPU says so loudly; a CPU build is expected to be on CPU.
        if cfg!(feature = "cuda") {
            tracing::warn!(reason = %why, "--device auto: no usable GPU, running on the CPU");
        } else {
            tracing::info!(reason = %why, "--device auto: running on the CPU");
        }
    }
    tracing::info!(
        model = %dir.display(),
        device = %picked.description,
        requested = %picked.requested,
        dtype = ?dtype,
        "loading model"
    );
    let clamp = Clamp::load_dir_as(dir, &picked.device, dtype)?;
    let mut id = model_id(&clamp.files().config, &clamp.files().checkpoint)?;
    // Half-precision vectors differ from f32 ones in the 3rd or 4th digit: they are stored
    // under their own id, so an index never mixes the two.
    if clamp.dtype() != DType::F32 {
        id = format!("{id}-{}", clamp.dtype().as_str());
    }
    let mut device = picked.description;
    if clamp.dtype() == DType::BF16 && picked.device.is_cpu() {
        // What `tunelens/status` and the logs show: which kernel the bf16 matmuls run on.
        let kernel = super::bf16_matmul::kernel().unwrap_or("candle's bf16 ops");
        device = format!("{device}, bf16 matmuls on {kernel}");
    }
    tracing::info!(device = %device, "model loaded");
    Ok(OpenedModel { clamp, id, device })
}

/// An id for a model's weights, cheap to compute on every start: a hash of its config, the
/// checkpoint's size, and the checkpoint's first and last MiB. Retraining changes all three.
pub fn model_id(config: &Path, checkpoint: &Path) -> Result<String> {
    const EDGE: u64 = 1 << 20;
    let io = |file: &Path| {
        let file = file.to_owned();
        move |source| ModelError::Io { file, source }
    };
    let mut h = Sha256::new();
    h.update(std::fs::read(config).map_err(io(config))?);
    let mut f = std::fs::File::open(checkpoint).map_err(io(checkpoint))?;
    let len = f.metadata().map_err(io(checkpoint))?.len();
    h.update(len.to_le_bytes());
    let mut buf = Vec::new();
    (&mut f)
        .take(EDGE)
        .read_to_end(&mut buf)
        .map_err(io(checkpoint))?;
    f.seek(SeekFrom::Start(len.saturating_sub(EDGE)))
        .map_err(io(checkpoint))?;
    f.take(EDGE).read_to_end(&mut buf).map_err(io(checkpoint))?;
    h.update(&buf);
    let digest = h.finalize();
    Ok(digest[..8].iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_model_names_every_place_looked() {
        let places = vec![
            PathBuf::from("/nonexistent/a"),
            PathBuf::from("/nonexistent/b"),
        ];
        let e = first_model(&places, "the default model", "pass --model DIR")
            .expect_err("nothing there")
            .to_string();
        assert!(
            e.contains("/nonexistent/a") && e.contains("/nonexistent/b"),
            "{e}"
        );
        assert!(e.contains("pass --model DIR"), "{e}");
    }

    #[test]
    fn the_default_model_is_looked_for_beside_the_binary_then_in_the_data_folder() {
        let places = default_model_places();
        if let Some(d) = data_dir() {
            assert_eq!(places.last(), Some(&d.join(DEFAULT_MODEL)));
        }
        assert!(places.iter().all(|p| p.ends_with(DEFAULT_MODEL)));
        assert!(places.len() > 1);
    }
}
