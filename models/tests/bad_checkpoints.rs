//! Broken model directories give typed errors naming the file (and tensor) — never a panic.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use common::fixture;
use tunelens_models::encoders::{Clamp, ModelError};

/// A fresh copy of the tiny RoBERTa fixture (safetensors only) in a temp dir, removed on drop.
struct Copy(PathBuf);

impl std::ops::Deref for Copy {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Copy {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn copy_fixture(tag: &str) -> Copy {
    let src = fixture("clamp-tiny-roberta");
    let dir = std::env::temp_dir().join(format!("tunelens-bad-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for f in [
        "config.json",
        "text_config.json",
        "tokenizer.json",
        "model.safetensors",
    ] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    Copy(dir)
}

fn load_err(dir: &Path) -> ModelError {
    match Clamp::load_dir(dir, &Device::Cpu) {
        Ok(_) => panic!("{} loaded although it is broken", dir.display()),
        Err(e) => e,
    }
}

fn rewrite_tensors(dir: &Path, edit: impl FnOnce(&mut HashMap<String, Tensor>)) {
    let file = dir.join("model.safetensors");
    let mut tensors = candle_core::safetensors::load(&file, &Device::Cpu).unwrap();
    edit(&mut tensors);
    candle_core::safetensors::save(&tensors, &file).unwrap();
}

fn truncate(file: &Path) {
    let bytes = std::fs::read(file).unwrap();
    std::fs::write(file, &bytes[..bytes.len() / 2]).unwrap();
}

#[test]
fn truncated_safetensors() {
    let dir = copy_fixture("trunc-st");
    truncate(&dir.join("model.safetensors"));
    let e = load_err(&dir);
    assert!(
        matches!(&e, ModelError::Corrupt { file, .. } if file.ends_with("model.safetensors")),
        "{e}"
    );
    assert!(e.to_string().contains("model.safetensors"), "{e}");
}

#[test]
fn truncated_and_garbage_pickle() {
    for (tag, damage) in [("trunc-pt", true), ("garbage-pt", false)] {
        let dir = copy_fixture(tag);
        std::fs::remove_file(dir.join("model.safetensors")).unwrap();
        let pt = dir.join("pytorch_model.bin");
        if damage {
            std::fs::copy(fixture("clamp-tiny-roberta").join("pytorch_model.bin"), &pt).unwrap();
            truncate(&pt);
        } else {
            std::fs::write(&pt, b"PK\x03\x04 this is not a torch archive").unwrap();
        }
        let e = load_err(&dir);
        assert!(
            matches!(&e, ModelError::Corrupt { file, .. } if file.ends_with("pytorch_model.bin")),
            "{tag}: {e}"
        );
    }
}

#[test]
fn missing_tensor_is_named() {
    let dir = copy_fixture("missing");
    let name = "music_enc.enc.encoder.layer.1.output.dense.bias";
    rewrite_tensors(&dir, |t| {
        t.remove(name);
    });
    let e = load_err(&dir);
    assert!(
        matches!(&e, ModelError::MissingTensor { tensor, file } if tensor == name && file.ends_with("model.safetensors")),
        "{e}"
    );
    assert!(e.to_string().contains(name));
}

#[test]
fn wrong_shape_is_named() {
    let dir = copy_fixture("shape");
    rewrite_tensors(&dir, |t| {
        t.insert(
            "text_enc.encoder.layer.0.attention.self.key.weight".into(),
            Tensor::zeros((64, 32), candle_core::DType::F32, &Device::Cpu).unwrap(),
        );
    });
    let e = load_err(&dir);
    match &e {
        ModelError::WrongShape {
            tensor,
            expected,
            actual,
            ..
        } => {
            assert_eq!(tensor, "text_enc.encoder.layer.0.attention.self.key.weight");
            assert_eq!(
                (expected.as_slice(), actual.as_slice()),
                (&[64, 64][..], &[64, 32][..])
            );
        }
        other => panic!("wanted WrongShape, got {other}"),
    }
}

#[test]
fn wrong_patch_embedding_width() {
    let dir = copy_fixture("patch");
    rewrite_tensors(&dir, |t| {
        t.insert(
            "music_enc.patch_embedding.weight".into(),
            Tensor::zeros((64, 100), candle_core::DType::F32, &Device::Cpu).unwrap(),
        );
    });
    let e = load_err(&dir);
    assert!(
        matches!(&e, ModelError::WrongShape { tensor, .. } if tensor == "music_enc.patch_embedding.weight"),
        "{e}"
    );
}

/// Which error a broken config must give.
type ErrCheck = fn(&ModelError) -> bool;

#[test]
fn wrong_configs() {
    let cases: [(&str, &str, ErrCheck); 4] = [
        (
            "config.json",
            "{ not json",
            |e| matches!(e, ModelError::Config { file, .. } if file.ends_with("config.json")),
        ),
        ("config.json", r#"{"hidden_size": 64}"#, |e| {
            matches!(e, ModelError::Config { .. })
        }),
        // Heads that do not divide the width are refused before any tensor is read.
        (
            "text_config.json",
            &HEADS_5,
            |e| matches!(e, ModelError::Config { file, reason } if file.ends_with("text_config.json") && reason.contains("divisible")),
        ),
        // A config that disagrees with the tensors names the first tensor that does not fit.
        ("config.json", &WIDE, |e| {
            matches!(e, ModelError::WrongShape { .. })
        }),
    ];
    for (i, (file, text, ok)) in cases.into_iter().enumerate() {
        let dir = copy_fixture(&format!("config{i}"));
        std::fs::write(dir.join(file), text).unwrap();
        let e = load_err(&dir);
        assert!(ok(&e), "case {i}: {e}");
    }
}

static HEADS_5: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    edit_json(
        "clamp-tiny-roberta/text_config.json",
        "num_attention_heads",
        5,
    )
});
static WIDE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    edit_json("clamp-tiny-roberta/config.json", "intermediate_size", 256)
});

fn edit_json(rel: &str, key: &str, value: u64) -> String {
    let (dir, file) = rel.split_once('/').unwrap();
    let text = std::fs::read_to_string(fixture(dir).join(file)).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v[key] = value.into();
    v.to_string()
}

#[test]
fn garbage_tokenizer() {
    for (i, text) in ["{ not json", r#"{"model": {"type": "Nonsense"}}"#, ""]
        .into_iter()
        .enumerate()
    {
        let dir = copy_fixture(&format!("tok{i}"));
        std::fs::write(dir.join("tokenizer.json"), text).unwrap();
        let e = load_err(&dir);
        assert!(
            matches!(&e, ModelError::Tokenizer { file, .. } if file.ends_with("tokenizer.json")),
            "{e}"
        );
    }
}

#[test]
fn missing_files_say_what_is_needed() {
    let dir = copy_fixture("nockpt");
    std::fs::remove_file(dir.join("model.safetensors")).unwrap();
    let e = load_err(&dir);
    assert!(e.to_string().contains("pytorch_model.bin"), "{e}");

    // An official-style directory without a tokenizer still embeds music; text says why not.
    let dir = copy_fixture("notok");
    std::fs::remove_file(dir.join("tokenizer.json")).unwrap();
    let model = Clamp::load_dir(&dir, &Device::Cpu).unwrap();
    let e = model.text_features(&["a reel"]).unwrap_err();
    assert!(
        matches!(&e, ModelError::MissingFile { file, .. } if file.ends_with("tokenizer.json")),
        "{e}"
    );
}

#[test]
fn bad_inputs_are_errors() {
    let model = Clamp::load_dir(&fixture("clamp-tiny-roberta"), &Device::Cpu).unwrap();
    let mut bad = [0u8; 64];
    bad[3] = 200;
    let e = model
        .music_features(&[&[bad]], Default::default())
        .unwrap_err();
    assert!(matches!(e, ModelError::Input(_)), "{e}");
    assert!(model.music_features(&[&[]], Default::default()).is_err());
    let e = model.text_features_ids(&[&[0, 99_999, 2]]).unwrap_err();
    assert!(matches!(e, ModelError::Input(_)), "{e}");
}
