//! One training step's loss: music ↔ text, window ↔ tune and window ↔ augmented window,
//! weighted, with the parts logged.

use candle_core::Tensor;

use crate::abc::canonical::Melody;
use crate::abc::{PatchOptions, Patchilizer};

use super::*;

pub(super) struct Parts {
    pub(super) total: Tensor,
    pub(super) text: f32,
    pub(super) tune: f32,
    pub(super) aug: f32,
    pub(super) temperature: f32,
}

pub(super) fn step_loss(
    net: &Net,
    examples: &[Example],
    batch: &[usize],
    cache: &TextCache,
    options: &TrainOptions,
    step: u64,
    patchilizer: &mut Patchilizer,
) -> Result<Parts> {
    let dev = net.device().clone();
    let window_opts = PatchOptions {
        max_patches: net.shape.music.max_position_embeddings,
        ..PatchOptions::ALL
    };
    let mut tunes = Vec::with_capacity(batch.len());
    let mut views = Vec::with_capacity(2 * batch.len());
    let mut augmented = Vec::with_capacity(batch.len());
    let mut text_rows: Vec<usize> = Vec::new();
    let mut text_vecs: Vec<f32> = Vec::new();
    let view = patchilizer.view();
    let mut as_written = Patchilizer::new();
    for (k, &i) in batch.iter().enumerate() {
        let ex = &examples[i];
        let mut rng = Rng::derive(options.seed, 2, (step - 1) * batch.len() as u64 + k as u64);
        tunes.push(ex.tune.clone());
        let w = &ex.windows[rng.below(ex.windows.len())];
        views.push(patchilizer.encode_ids(w, window_opts));
        let aug = augment::augment(w, options.vary, &mut rng);
        if view.is_reference() || options.vary_rhythm == 0.0 {
            augmented.push(patchilizer.encode_ids(&aug, window_opts));
        } else {
            // Played differently: rhythm varied on the notes, then rendered in the view.
            let text: String = Melody::read_all(&aug)
                .iter()
                .map(|m| augment::vary_rhythm(m, options.vary_rhythm, &mut rng).render(view))
                .collect();
            augmented.push(as_written.encode_ids(&text, window_opts));
        }
        if !ex.fields.is_empty() {
            let keep = text::dropout(ex.fields.len(), &mut rng);
            let mut mean = vec![0f32; cache.dim];
            for &f in &keep {
                let at = ex.fields[f] * cache.dim;
                for (m, x) in mean.iter_mut().zip(&cache.vectors[at..at + cache.dim]) {
                    *m += x / keep.len() as f32;
                }
            }
            text_rows.push(k);
            text_vecs.extend(mean);
        }
    }
    views.extend(augmented);
    let b = batch.len();
    let towers = net.towers()?;
    let tune_vec = towers.music(&tunes)?;
    let both = towers.music(&views)?;
    let (window_vec, aug_vec) = (both.narrow(0, 0, b)?, both.narrow(0, b, b)?);
    let vars = net.vars();
    let scale = match options.temperature {
        Some(t) => Tensor::new((1.0 / t) as f32, &dev)?,
        None => vars[LOGIT_SCALE]
            .as_tensor()
            .clamp(0f32, 100f32.ln())?
            .exp()?,
    };
    let w = &options.weights;
    let mut total = Tensor::new(0f32, &dev)?;
    let value = |loss: Option<Tensor>, weight: f64, total: &mut Tensor| -> Result<f32> {
        let Some(loss) = loss else { return Ok(0.0) };
        let v = loss.to_scalar::<f32>()?;
        if weight > 0.0 {
            *total = (&*total + (loss * weight)?)?;
        }
        Ok(v)
    };
    let text_loss = if text_rows.len() >= 2 && w.text > 0.0 {
        let rows = Tensor::from_vec(
            text_rows.iter().map(|&r| r as u32).collect::<Vec<_>>(),
            text_rows.len(),
            &dev,
        )?;
        let pooled = Tensor::from_vec(text_vecs, (text_rows.len(), cache.dim), &dev)?;
        let t = towers.text(&pooled)?;
        Some(loss::symmetric_contrastive(
            &tune_vec.index_select(&rows, 0)?,
            &t,
            &scale,
        )?)
    } else {
        None
    };
    let text = value(text_loss, w.text, &mut total)?;
    let tune_loss = (w.tune > 0.0)
        .then(|| loss::symmetric_contrastive(&window_vec, &tune_vec, &scale))
        .transpose()?;
    let tune = value(tune_loss, w.tune, &mut total)?;
    let aug_loss = (w.aug > 0.0)
        .then(|| loss::symmetric_contrastive(&window_vec, &aug_vec, &scale))
        .transpose()?;
    let aug = value(aug_loss, w.aug, &mut total)?;
    Ok(Parts {
        total,
        text,
        tune,
        aug,
        temperature: 1.0 / scale.to_scalar::<f32>()?,
    })
}
