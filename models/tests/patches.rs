//! The patchilizer against the reference implementation's own output, and the promise that
//! every patch points at the source text it was made from.

use std::path::PathBuf;

use serde_json::Value;
use tunelens_models::abc::patch::bar_to_patch;
use tunelens_models::abc::{translit, PatchOptions, Patchilizer};

/// `../shared/fixtures` beside the repository. Missing fixtures fail the test: they are part of
/// the checkout CI runs on.
fn fixture(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fixtures")
        .join(name)
        .join("expected.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; the shared fixtures must sit beside the repository",
            path.display()
        )
    });
    serde_json::from_str(&text).expect("expected.json is valid JSON")
}

fn reference_options() -> PatchOptions {
    // The fixtures were made with `encode(abc, music_length=128, add_eos_patch=True)`.
    PatchOptions {
        max_patches: 128,
        add_eos_patch: true,
        reference_filter: false,
    }
}

fn check_model(name: &str) {
    let expected = fixture(name);
    let music = expected["music"].as_array().expect("music samples");
    assert_eq!(music.len(), 33, "{name}: sample count");
    let mut p = Patchilizer::new();
    for (i, sample) in music.iter().enumerate() {
        let abc = sample["abc"].as_str().expect("abc text");
        let want: Vec<Vec<u8>> =
            serde_json::from_value(sample["patches"].clone()).expect("patches");
        let got = p.encode(abc, 0, reference_options());
        let got_ids: Vec<Vec<u8>> = got.iter().map(|p| p.ids.to_vec()).collect();
        assert_eq!(got_ids, want, "{name}: sample {i} patches differ\n{abc}");
        for (j, patch) in got.iter().enumerate() {
            check_range(abc, patch, &format!("{name} sample {i} patch {j}"));
        }
    }
}

/// A patch's range lies in the text, on character boundaries, and its text — transliterated,
/// without the line breaks the reference glues over — encodes to the same patch.
fn check_range(abc: &str, patch: &tunelens_models::abc::Patch, what: &str) {
    let (start, end) = (patch.range.start as usize, patch.range.end as usize);
    assert!(
        start <= end && end <= abc.len(),
        "{what}: range {start}..{end} out of bounds"
    );
    let text = abc
        .get(start..end)
        .unwrap_or_else(|| panic!("{what}: range {start}..{end} splits a character"));
    if patch.is_eos() {
        assert!(text.is_empty(), "{what}: EOS patch has text");
        return;
    }
    let ascii: String = translit::transliterate(text)
        .chars()
        .filter(|&c| c != '\n' && c != '\r')
        .collect();
    assert_eq!(
        bar_to_patch(ascii.as_bytes()),
        patch.ids,
        "{what}: source text {text:?} does not give the patch"
    );
}

#[test]
fn roberta_fixture_patches_match_reference() {
    check_model("clamp-tiny-roberta");
}

#[test]
fn bert_fixture_patches_match_reference() {
    check_model("clamp-tiny-bert");
}
