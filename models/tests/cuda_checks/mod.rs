//! Checks shared by `cuda_path_cpu.rs` (the composed-ops path and half precision, on the CPU)
//! and `cuda_parity.rs` (the same on a GPU): every output of the fixture models against the
//! PyTorch reference, and of the real MiniLM against sentence-transformers. Each check returns
//! what it measured, so the tests can print the accuracy cost of a precision.
#![allow(dead_code)]

use std::path::PathBuf;

use candle_core::{DType, Device};
use serde_json::Value;
use tunelens_models::encoders::{Clamp, ClampFiles, LongTunes, PatchIds, SentenceEncoder};

use crate::common::{expected, fixture, floats, ints, max_diff, patches};

pub const FIXTURES: [&str; 2] = ["clamp-tiny-roberta", "clamp-tiny-bert"];

/// The worst agreement over a set of vectors.
#[derive(Clone, Copy, Debug)]
pub struct Agreement {
    pub max_abs_diff: f32,
    pub min_cosine: f32,
    pub vectors: usize,
}

impl Agreement {
    fn new() -> Self {
        Self {
            max_abs_diff: 0.0,
            min_cosine: 1.0,
            vectors: 0,
        }
    }

    fn add(&mut self, got: &[f32], want: &[f32]) {
        self.max_abs_diff = self.max_abs_diff.max(max_diff(got, want));
        self.min_cosine = self.min_cosine.min(cosine(got, want));
        self.vectors += 1;
    }

    #[track_caller]
    pub fn assert_within(&self, what: &str, tol: f32) {
        assert!(
            self.max_abs_diff <= tol,
            "{what}: max abs diff {:e} > {tol:e} over {} vectors",
            self.max_abs_diff,
            self.vectors
        );
    }

    #[track_caller]
    pub fn assert_cosine(&self, what: &str, min: f32) {
        assert!(
            self.min_cosine >= min,
            "{what}: cosine {} < {min} (worst of {} vectors)",
            self.min_cosine,
            self.vectors
        );
    }
}

pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| *x as f64 * *y as f64).sum();
    let na: f64 = a.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    let nb: f64 = b.iter().map(|x| (*x as f64).powi(2)).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 {
        return if na == nb { 1.0 } else { 0.0 };
    }
    (dot / (na * nb)) as f32
}

pub fn load_fixture(name: &str, device: &Device, dtype: DType) -> Clamp {
    let files = ClampFiles::in_dir(&fixture(name)).expect("fixture files");
    Clamp::load_as(files, device, dtype).expect("load fixture model")
}

/// Music and text features (bucketed), the reference's padded batch, and two tunes'
/// `last_hidden_state`, all against `expected.json`.
pub fn fixture_agreement(model: &Clamp, name: &str) -> Agreement {
    let exp = expected(name);
    let mut a = Agreement::new();
    let music = exp["music"].as_array().expect("music");
    let tunes: Vec<Vec<PatchIds>> = music.iter().map(|m| patches(&m["patches"])).collect();
    let refs: Vec<&[PatchIds]> = tunes.iter().map(Vec::as_slice).collect();
    let feats = model
        .music_features(&refs, LongTunes::Truncate)
        .expect("music features");
    for (m, got) in music.iter().zip(&feats) {
        a.add(got, &floats(&m["feature"]));
    }
    for i in [0, 12] {
        let got = model.music_hidden(&tunes[i]).expect("hidden");
        let want = exp["music"][i]["last_hidden_state"].as_array().unwrap();
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            a.add(g, &floats(w));
        }
    }
    let texts: Vec<&str> = exp["text"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["text"].as_str().unwrap())
        .collect();
    let feats = model.text_features(&texts).expect("text features");
    for (t, got) in exp["text"].as_array().unwrap().iter().zip(&feats) {
        a.add(got, &floats(&t["feature"]));
    }
    let batch = &exp["batch"];
    let mi = ints(&batch["music_index"]);
    let rows: Vec<&[PatchIds]> = mi.iter().map(|&i| tunes[i as usize].as_slice()).collect();
    let got = model.music_batch(&rows).unwrap().to_vec2::<f32>().unwrap();
    for (g, w) in got.iter().zip(batch["music_features"].as_array().unwrap()) {
        a.add(g, &floats(w));
    }
    let ti = ints(&batch["text_index"]);
    let ids: Vec<Vec<u32>> = ti
        .iter()
        .map(|&i| ints(&exp["text"][i as usize]["input_ids"]))
        .collect();
    let rows: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
    let got = model.text_batch(&rows).unwrap().to_vec2::<f32>().unwrap();
    for (g, w) in got.iter().zip(batch["text_features"].as_array().unwrap()) {
        a.add(g, &floats(w));
    }
    a
}

pub fn minilm_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.data/models/all-minilm-l6-v2");
    assert!(
        dir.join("model.safetensors").exists(),
        "MiniLM weights missing in {}: run `scripts/setup-minilm.sh` from the repo root",
        dir.display()
    );
    dir
}

/// The real MiniLM's mean-pooled vectors against sentence-transformers', in one padded batch.
pub fn minilm_agreement(device: &Device, dtype: DType) -> Agreement {
    let exp: Value = expected("minilm");
    let model = SentenceEncoder::load_dir_as(&minilm_dir(), device, dtype).expect("load MiniLM");
    let rows = exp["rows"].as_array().expect("rows");
    let texts: Vec<&str> = rows.iter().map(|r| r["text"].as_str().unwrap()).collect();
    let pooled = model.mean_pooled(&texts).expect("embed");
    let mut a = Agreement::new();
    for (r, got) in rows.iter().zip(pooled) {
        a.add(&got, &floats(&r["mean_pooled"]));
    }
    a
}

/// A random music encoder of CLaMP-S shape (hidden 768, 6 layers, 12 heads) at `dtype`
/// against itself at f32, over a padded batch of two tunes: real-sized layers, where half
/// precision's rounding adds up over more terms than in the tiny fixtures.
pub fn clamp_s_agreement(device: &Device, dtype: DType, f32_reference: &[Vec<f32>]) -> Agreement {
    let got = clamp_s_pooled(device, dtype);
    let mut a = Agreement::new();
    for (g, w) in got.iter().zip(f32_reference) {
        a.add(g, w);
    }
    a
}

/// Pooled outputs of the CLaMP-S-shaped random encoder (fixed seed weights from the CPU, so every
/// device and precision sees the same model).
pub fn clamp_s_pooled(device: &Device, dtype: DType) -> Vec<Vec<f32>> {
    use tunelens_models::encoders::music::{music_config, MusicEncoder};
    let cfg = music_config(768, 6, 12, 512);
    let enc = MusicEncoder::random_seeded(&cfg, 98, 7, device, dtype).expect("random encoder");
    let tune = |s: usize, k: usize| -> Vec<PatchIds> {
        (0..s)
            .map(|p| {
                let mut patch = [0u8; tunelens_models::encoders::PATCH_LENGTH];
                for (j, id) in patch.iter_mut().enumerate().take(24 + p % 17) {
                    *id = ((p * 7 + j * 13 + k) % 97 + 1) as u8;
                }
                patch
            })
            .collect()
    };
    let (a, b) = (tune(96, 0), tune(41, 5));
    enc.pooled(&[a.as_slice(), b.as_slice()])
        .expect("forward")
        .to_vec2::<f32>()
        .expect("to host")
}
