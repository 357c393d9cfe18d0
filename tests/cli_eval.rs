//! `tunelens eval` end to end on WikiMT-form data: the metrics a script reads, and the notes
//! and errors for data that cannot support them.

mod common;

use common::{run, shared_fixture, TempDir};
use serde_json::Value;

#[test]
fn wikimt_dev_gives_every_metric_within_bounds() {
    let data = common::repo_root().join("../shared/data/wikimt/wikimt-dev.jsonl");
    assert!(
        data.exists(),
        "{} missing: the shared data must sit beside the repo",
        data.display()
    );
    let model = shared_fixture("clamp-tiny-roberta").display().to_string();
    let out = run(&[
        "eval",
        "--json",
        "--data",
        data.to_str().expect("path"),
        "--model",
        &model,
    ]);
    assert!(out.ok, "{}", out.stderr);
    let r: Value = serde_json::from_str(out.stdout.trim()).expect("json");
    assert_eq!(r["tunes"], 502);
    for key in [
        "mrr",
        "hr@1",
        "hr@10",
        "hr@100",
        "accuracy",
        "macro_f1",
        "probe_accuracy",
        "probe_macro_f1",
    ] {
        let v = r[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} missing: {r}"));
        assert!((0.0..=1.0).contains(&v), "{key} = {v}");
    }
    let hr = |k: &str| r[k].as_f64().expect("number");
    assert!(hr("hr@1") <= hr("hr@10") && hr("hr@10") <= hr("hr@100"));
    let confusion: u64 = r["confusion"]
        .as_array()
        .expect("confusion")
        .iter()
        .flat_map(|row| {
            row.as_array()
                .expect("row")
                .iter()
                .map(|n| n.as_u64().expect("count"))
        })
        .sum();
    assert_eq!(confusion, 502);
    assert_eq!(r["labels"].as_array().expect("labels").len(), 8);
}

#[test]
fn missing_fields_are_notes_and_broken_lines_errors() {
    let tmp = TempDir::new("eval");
    let model = shared_fixture("clamp-tiny-roberta").display().to_string();
    let plain = tmp.path().join("plain.jsonl");
    std::fs::write(
        &plain,
        "{\"abc\": \"X:1\\nK:G\\nGAB|\\n\"}\n{\"abc\": \"X:2\\nK:D\\nDEF|\\n\"}\n",
    )
    .expect("write");
    let out = run(&[
        "eval",
        "--json",
        "--data",
        plain.to_str().expect("path"),
        "--model",
        &model,
    ]);
    assert!(out.ok, "{}", out.stderr);
    let r: Value = serde_json::from_str(out.stdout.trim()).expect("json");
    assert!(r.get("mrr").is_none() && r.get("accuracy").is_none(), "{r}");
    assert_eq!(r["notes"].as_array().expect("notes").len(), 2, "{r}");

    let broken = tmp.path().join("broken.jsonl");
    std::fs::write(&broken, "{\"music\": \"X:1\\nK:G\\nGAB|\\n\"}\nnot json\n").expect("write");
    let out = run(&[
        "eval",
        "--data",
        broken.to_str().expect("path"),
        "--model",
        &model,
    ]);
    assert!(
        !out.ok && out.stderr.contains("broken.jsonl:2"),
        "{}",
        out.stderr
    );
    let nomusic = tmp.path().join("nomusic.jsonl");
    std::fs::write(&nomusic, "{\"text\": \"a jig\"}\n").expect("write");
    let out = run(&[
        "eval",
        "--data",
        nomusic.to_str().expect("path"),
        "--model",
        &model,
    ]);
    assert!(
        !out.ok && out.stderr.contains("nomusic.jsonl:1: no `music`"),
        "{}",
        out.stderr
    );
}
