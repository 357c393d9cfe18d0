//! Exact parity with the CLaMP reference (PyTorch, float32) on the tiny fixtures, for both text
//! architectures and both checkpoint formats.

mod common;

use candle_core::Device;
use common::*;
use serde_json::Value;
use tunelens_models::encoders::{Clamp, ClampFiles, LongTunes, PatchIds};

const FIXTURES: [&str; 2] = ["clamp-tiny-roberta", "clamp-tiny-bert"];
const CHECKPOINTS: [&str; 2] = ["model.safetensors", "pytorch_model.bin"];

fn load(fixture_name: &str, checkpoint: &str) -> Clamp {
    let dir = fixture(fixture_name);
    let mut files = ClampFiles::in_dir(&dir).expect("fixture files");
    files.checkpoint = dir.join(checkpoint);
    Clamp::load(files, &Device::Cpu).expect("load fixture model")
}

fn music_inputs(exp: &Value) -> Vec<Vec<PatchIds>> {
    exp["music"]
        .as_array()
        .expect("music")
        .iter()
        .map(|m| patches(&m["patches"]))
        .collect()
}

fn check_music(model: &Clamp, exp: &Value, what: &str) {
    let tunes = music_inputs(exp);
    let refs: Vec<&[PatchIds]> = tunes.iter().map(Vec::as_slice).collect();
    let feats = model
        .music_features(&refs, LongTunes::Truncate)
        .expect("music features");
    for (i, (m, got)) in exp["music"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&feats)
        .enumerate()
    {
        assert_close(
            &format!("{what} music[{i}] feature"),
            got,
            &floats(&m["feature"]),
        );
    }
    for i in [0, 12] {
        let want = exp["music"][i]["last_hidden_state"].as_array().unwrap();
        let got = model.music_hidden(&tunes[i]).expect("hidden");
        assert_eq!(got.len(), want.len());
        for (p, (g, w)) in got.iter().zip(want).enumerate() {
            assert_close(
                &format!("{what} music[{i}] last_hidden_state[{p}]"),
                g,
                &floats(w),
            );
        }
    }
}

fn check_text(model: &Clamp, exp: &Value, what: &str) {
    let texts: Vec<&str> = exp["text"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["text"].as_str().unwrap())
        .collect();
    for (i, t) in exp["text"].as_array().unwrap().iter().enumerate() {
        let ids = model.tokenize(texts[i]).expect("tokenize");
        assert_eq!(ids, ints(&t["input_ids"]), "{what} text[{i}] input_ids");
    }
    let feats = model.text_features(&texts).expect("text features");
    for (i, (t, got)) in exp["text"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&feats)
        .enumerate()
    {
        assert_close(
            &format!("{what} text[{i}] feature"),
            got,
            &floats(&t["feature"]),
        );
    }
}

/// The reference ran these rows as one zero-padded batch; so do we (no bucketing).
fn check_batch(model: &Clamp, exp: &Value, what: &str) {
    let tunes = music_inputs(exp);
    let batch = &exp["batch"];
    let mi = ints(&batch["music_index"]);
    let rows: Vec<&[PatchIds]> = mi.iter().map(|&i| tunes[i as usize].as_slice()).collect();
    let got = model.music_batch(&rows).unwrap().to_vec2::<f32>().unwrap();
    for (r, (g, w)) in got
        .iter()
        .zip(batch["music_features"].as_array().unwrap())
        .enumerate()
    {
        assert_close(&format!("{what} batch music row {r}"), g, &floats(w));
    }
    assert_eq!(batch["text_pad_id"].as_u64(), Some(model_pad(model) as u64));
    let ti = ints(&batch["text_index"]);
    let ids: Vec<Vec<u32>> = ti
        .iter()
        .map(|&i| ints(&exp["text"][i as usize]["input_ids"]))
        .collect();
    let rows: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
    let got = model.text_batch(&rows).unwrap().to_vec2::<f32>().unwrap();
    for (r, (g, w)) in got
        .iter()
        .zip(batch["text_features"].as_array().unwrap())
        .enumerate()
    {
        assert_close(&format!("{what} batch text row {r}"), g, &floats(w));
    }
}

fn model_pad(model: &Clamp) -> u32 {
    model.text_config().expect("text tower").pad_id() as u32
}

#[test]
fn parity_all_fixtures_and_formats() {
    for name in FIXTURES {
        let exp = expected(name);
        for ckpt in CHECKPOINTS {
            let what = format!("{name}/{ckpt}");
            let model = load(name, ckpt);
            check_music(&model, &exp, &what);
            check_text(&model, &exp, &what);
            check_batch(&model, &exp, &what);
        }
    }
}

#[test]
fn unidecode_matches_reference() {
    for name in FIXTURES {
        let exp = expected(name);
        for t in exp["text"].as_array().unwrap() {
            let (text, want) = (
                t["text"].as_str().unwrap(),
                t["unidecoded"].as_str().unwrap(),
            );
            assert_eq!(tunelens_models::abc::translit::transliterate(text), want);
        }
    }
}

/// Official releases ship no `text_config.json`: the inferred config must be the real one.
#[test]
fn text_config_inferred_from_tensors() {
    for name in FIXTURES {
        let dir = fixture(name);
        let mut files = ClampFiles::in_dir(&dir).unwrap();
        let real =
            tunelens_models::encoders::BertConfig::from_file(files.text_config.as_deref().unwrap())
                .unwrap();
        files.text_config = None;
        let model = Clamp::load(files, &Device::Cpu).expect("load without text config");
        let inferred = model.text_config().unwrap();
        assert_eq!(inferred.arch(), real.arch(), "{name}");
        for (field, a, b) in [
            ("vocab", inferred.vocab_size, real.vocab_size),
            ("hidden", inferred.hidden_size, real.hidden_size),
            ("layers", inferred.num_hidden_layers, real.num_hidden_layers),
            (
                "heads",
                inferred.num_attention_heads,
                real.num_attention_heads,
            ),
            (
                "intermediate",
                inferred.intermediate_size,
                real.intermediate_size,
            ),
            (
                "positions",
                inferred.max_position_embeddings,
                real.max_position_embeddings,
            ),
            ("pad", inferred.pad_id(), real.pad_id()),
        ] {
            assert_eq!(a, b, "{name}: inferred {field}");
        }
        assert!((inferred.layer_norm_eps - real.layer_norm_eps).abs() < 1e-15);
        check_text(
            &model,
            &expected(name),
            &format!("{name} (inferred config)"),
        );
    }
}

/// Bucketed batches give each item the vector it gets alone.
#[test]
fn batched_equals_single() {
    let model = load(FIXTURES[0], CHECKPOINTS[0]);
    let tunes = music_inputs(&expected(FIXTURES[0]));
    let refs: Vec<&[PatchIds]> = tunes.iter().map(Vec::as_slice).collect();
    let batched = model.music_features(&refs, LongTunes::Truncate).unwrap();
    for (i, t) in refs.iter().enumerate() {
        let single = model.music_features(&[t], LongTunes::Truncate).unwrap();
        let d = max_diff(&single[0], &batched[i]);
        assert!(d < 1e-5, "tune {i}: batched vs single differ by {d:e}");
    }
}

/// Segment mode: a tune past the limit is the length-weighted mean of its segments.
#[test]
fn segment_mode_averages_segments() {
    let model = load(FIXTURES[0], CHECKPOINTS[0]);
    let limit = model.max_patches();
    let tunes = music_inputs(&expected(FIXTURES[0]));
    let long: Vec<PatchIds> = tunes
        .iter()
        .flatten()
        .copied()
        .take(limit * 2 + 7)
        .collect();
    assert_eq!(long.len(), limit * 2 + 7);
    let seg = model.music_features(&[&long], LongTunes::Segment).unwrap();
    let parts: Vec<&[PatchIds]> = long.chunks(limit).collect();
    let each = model.music_features(&parts, LongTunes::Truncate).unwrap();
    let mut want = vec![0f32; model.dim()];
    for (p, v) in parts.iter().zip(&each) {
        let w = p.len() as f32 / long.len() as f32;
        want.iter_mut().zip(v).for_each(|(a, b)| *a += w * b);
    }
    assert!(max_diff(&seg[0], &want) < 1e-5);
    let cut = model.music_features(&[&long], LongTunes::Truncate).unwrap();
    assert!(
        max_diff(&cut[0], &each[0]) < 1e-5,
        "truncate keeps the first segment"
    );
}

/// Our own directory format round-trips: export, reload, same vectors, card intact.
#[test]
fn own_model_dir_round_trips() {
    let model = load(FIXTURES[0], CHECKPOINTS[1]);
    let tmp = tempdir("own-dir");
    let card = tunelens_models::encoders::ModelCard {
        name: "tiny".into(),
        dims: model.card_dims(),
        training_data: "random init".into(),
        metrics: [("top1".to_string(), 0.5)].into_iter().collect(),
        text_encoder: None,
        training: None,
    };
    model.export_dir(&tmp, &card).unwrap();
    let again = Clamp::load_dir(&tmp, &Device::Cpu).unwrap();
    assert_eq!(again.card(), Some(&card));
    let exp = expected(FIXTURES[0]);
    check_music(&again, &exp, "exported");
    check_text(&again, &exp, "exported");
    std::fs::remove_dir_all(&tmp).ok();
}

fn tempdir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("tunelens-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
