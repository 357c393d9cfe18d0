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
        "majority_accuracy",
        "ngram_probe_accuracy",
        "ngram_probe_macro_f1",
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
    // WikiMT dev's majority genre is 22.5% (113 of 502); no meter rule for genres.
    assert!(
        (hr("majority_accuracy") - 113.0 / 502.0).abs() < 1e-9,
        "{r}"
    );
    assert!(r.get("meter_rule_accuracy").is_none(), "{r}");
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

const TUNES: [&str; 3] = [
    "X:1\nT:One\nM:6/8\nL:1/8\nK:G\n|:GAB c2d|e2f g3|gfe dcB|AGF G3:|\n|:Bcd e2f|g2a b3|bag fed|edc B3:|\n",
    "X:2\nT:Two\nM:4/4\nL:1/8\nK:D\n|:DFAF DFAF|GBdB GBdB|AFdF AFdF|GEcE GEcE:|\n|:dcBA GFED|EFGA B2A2|dcBA GFED|E2D2 D4:|\n",
    "X:3\nT:Three\nM:3/4\nL:1/8\nK:Am\nA2 c2 e2|a4 g2|e2 d2 c2|B6|A2 B2 c2|d4 e2|c2 B2 A2|E6|\n",
];

#[test]
fn passage_retrieval_from_a_folder_and_from_given_queries() {
    let tmp = TempDir::new("eval-passages");
    let model = shared_fixture("clamp-tiny-bert").display().to_string();
    let folder = tmp.path().join("tunes");
    std::fs::create_dir(&folder).expect("mkdir");
    for (i, t) in TUNES.iter().enumerate() {
        std::fs::write(folder.join(format!("t{i}.abc")), t).expect("write");
    }
    for perturb in ["none", "plain", "respell", "transpose", "vary"] {
        let out = run(&[
            "eval",
            "passages",
            "--json",
            "--tunes",
            folder.to_str().expect("path"),
            "--count",
            "8",
            "--perturb",
            perturb,
            "--model",
            &model,
        ]);
        assert!(out.ok, "{}", out.stderr);
        let r: Value = serde_json::from_str(out.stdout.trim()).expect("json");
        assert_eq!(r["queries"], 8, "{r}");
        assert_eq!(r["perturb"], perturb);
        let (top1, top10) = (
            r["top1"].as_f64().expect("top1"),
            r["top10"].as_f64().expect("top10"),
        );
        assert!(top1 <= top10 && top10 <= 1.0);
        if perturb != "vary" {
            // Three tunes with nothing in common: every window finds its own.
            assert_eq!(top1, 1.0, "{perturb}: {r}");
        }
    }

    // The character baseline finds exact windows.
    let out = run(&[
        "eval",
        "passages",
        "--json",
        "--tunes",
        folder.to_str().expect("path"),
        "--count",
        "8",
        "--ranker",
        "chars",
        "--model",
        &model,
    ]);
    let r: Value = serde_json::from_str(out.stdout.trim()).expect("json");
    assert_eq!(
        (r["ranker"].as_str(), r["top1"].as_f64()),
        (Some("chars"), Some(1.0)),
        "{r}"
    );

    // Given queries: bars 5-8 of tune "one", a fifth up, in D.
    let tunes = tmp.path().join("tunes.jsonl");
    let lines: Vec<String> = TUNES
        .iter()
        .zip(["one", "two", "three"])
        .map(|(t, id)| serde_json::json!({"id": id, "abc": t}).to_string())
        .collect();
    std::fs::write(&tunes, lines.join("\n")).expect("write");
    let queries = tmp.path().join("queries.jsonl");
    let q = serde_json::json!({"abc": "L:1/8\nM:6/8\nK:D\nfga b2c'|d'2e' f'3|f'e'd' c'ba|bag f3|\n", "source_id": "one"});
    std::fs::write(&queries, q.to_string()).expect("write");
    let out = run(&[
        "eval",
        "passages",
        "--json",
        "--tunes",
        tunes.to_str().expect("path"),
        "--queries",
        queries.to_str().expect("path"),
        "--model",
        &model,
    ]);
    assert!(out.ok, "{}", out.stderr);
    let r: Value = serde_json::from_str(out.stdout.trim()).expect("json");
    assert_eq!(
        (r["queries"].as_u64(), r["top1"].as_f64()),
        (Some(1), Some(1.0)),
        "{r}"
    );

    let bad = tmp.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        serde_json::json!({"abc": "K:C\nCDEF|", "source_id": "nope"}).to_string(),
    )
    .expect("write");
    let out = run(&[
        "eval",
        "passages",
        "--tunes",
        tunes.to_str().expect("path"),
        "--queries",
        bad.to_str().expect("path"),
        "--model",
        &model,
    ]);
    assert!(
        !out.ok && out.stderr.contains("source_id nope is no tune id"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_folder_of_tunes_takes_labels_from_a_header_field() {
    let tmp = TempDir::new("eval-folder");
    let model = shared_fixture("clamp-tiny-roberta").display().to_string();
    std::fs::write(
        tmp.path().join("set.abc"),
        "X:1\nR:Jig\nM:6/8\nK:G\nGAB c2d|\n\nX:2\nR:reel\nM:C|\nK:D\nDFAF DFAF|\n\nX:3\nR:jig\nM:3/4\nK:A\nABc d2e|\n",
    )
    .expect("write");
    let dir = tmp.path().to_str().expect("path");
    let out = run(&[
        "eval",
        "--json",
        "--data",
        dir,
        "--label-field",
        "R",
        "--folds",
        "2",
        "--model",
        &model,
    ]);
    assert!(out.ok, "{}", out.stderr);
    let r: Value = serde_json::from_str(out.stdout.trim()).expect("json");
    assert_eq!(r["tunes"], 3);
    assert_eq!(r["labels"], serde_json::json!(["jig", "reel"]));
    assert!(r.get("mrr").is_none(), "no texts, no retrieval: {r}");
    assert!(r["accuracy"].as_f64().is_some());
    // The meter rule: 6/8 jig and C| reel are right, 3/4 "waltz" is not (tune 3 is a jig).
    assert_eq!(r["meter_rule_accuracy"].as_f64(), Some(2.0 / 3.0), "{r}");
    assert_eq!(r["majority_accuracy"].as_f64(), Some(2.0 / 3.0), "{r}");
    assert!(r["ngram_probe_accuracy"].as_f64().is_some(), "{r}");
}
