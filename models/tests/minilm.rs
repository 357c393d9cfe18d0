//! Parity of the BERT text tower with the real all-MiniLM-L6-v2 weights. The weights are not in
//! the repo: `scripts/setup-minilm.sh` installs them (CI runs it first). Missing weights fail the
//! test with that command, never skip it.

mod common;

use std::path::PathBuf;

use candle_core::Device;
use common::*;
use tunelens_models::encoders::{normalize, SentenceEncoder};

#[test]
fn minilm_matches_sentence_transformers() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.data/models/all-minilm-l6-v2");
    assert!(
        dir.join("model.safetensors").exists(),
        "MiniLM weights missing in {}: run `scripts/setup-minilm.sh` from the repo root",
        dir.display()
    );
    let exp = expected("minilm");
    let model = SentenceEncoder::load_dir(&dir, &Device::Cpu).expect("load MiniLM");
    let rows = exp["rows"].as_array().expect("rows");
    let texts: Vec<&str> = rows.iter().map(|r| r["text"].as_str().unwrap()).collect();
    for (i, r) in rows.iter().enumerate() {
        let ids = model.tokenize(texts[i]).unwrap();
        assert_eq!(ids, ints(&r["input_ids"]), "row {i} input_ids");
    }
    // One padded batch of all rows: padding must not change any row.
    let pooled = model.mean_pooled(&texts).expect("embed");
    for (i, (r, got)) in rows.iter().zip(pooled).enumerate() {
        assert_close(
            &format!("row {i} mean_pooled"),
            &got,
            &floats(&r["mean_pooled"]),
        );
        let mut n = got.clone();
        normalize(&mut n);
        assert_close(
            &format!("row {i} normalized"),
            &n,
            &floats(&r["normalized"]),
        );
    }
}
