//! Shared helpers for the encoder tests: fixture paths (which must exist: a missing fixture is a
//! failure, never a skip) and tolerant comparisons.
#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::Value;
use tunelens_models::encoders::{PatchIds, PATCH_LENGTH};

pub const TOL: f32 = 1e-4;

/// `shared/fixtures/<name>`, located from this crate's manifest, or under `TUNELENS_FIXTURES`
/// (a test binary run away from its source tree, as `scripts/gpu-check.sh --from` does).
pub fn fixture(name: &str) -> PathBuf {
    let root = match std::env::var_os("TUNELENS_FIXTURES") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures"),
    };
    let dir = root.join(name);
    assert!(
        dir.exists(),
        "fixture {} is missing: the tests need the shared fixtures checked out beside the repo",
        dir.display()
    );
    dir
}

pub fn expected(name: &str) -> Value {
    let file = fixture(name).join("expected.json");
    let text = std::fs::read_to_string(&file).expect("read expected.json");
    serde_json::from_str(&text).expect("parse expected.json")
}

pub fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number") as f32)
        .collect()
}

pub fn ints(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_u64().expect("int") as u32)
        .collect()
}

pub fn patches(v: &Value) -> Vec<PatchIds> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|p| {
            let ids = ints(p);
            assert_eq!(ids.len(), PATCH_LENGTH);
            let mut patch = [0u8; PATCH_LENGTH];
            for (o, i) in patch.iter_mut().zip(ids) {
                *o = i as u8;
            }
            patch
        })
        .collect()
}

pub fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[track_caller]
pub fn assert_close(what: &str, got: &[f32], want: &[f32]) {
    let d = max_diff(got, want);
    if std::env::var_os("PARITY_VERBOSE").is_some() {
        eprintln!("{what}: {d:e}");
    }
    assert!(d <= TOL, "{what}: max abs diff {d:e} > {TOL:e}");
}
