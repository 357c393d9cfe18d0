//! `tunelens train` as a user runs it: a small model trained on one O'Neill's file prints its
//! summary as JSON, writes a model directory every command can use (`classify --model OUT`),
//! and refuses bad input with the reason.

mod common;

use common::{music21_abc_dir, run, TempDir};
use serde_json::Value;

/// `tunelens train` of a small model for 20 steps (`--steps` in `extra` wins).
fn train(data: &str, out: &str, extra: &[&str]) -> common::Output {
    let steps = if extra.contains(&"--steps") {
        &[][..]
    } else {
        &["--steps", "20"][..]
    };
    let mut args = vec![
        "train",
        "--data",
        data,
        "--out",
        out,
        "--batch",
        "8",
        "--hidden",
        "32",
        "--layers",
        "1",
        "--heads",
        "2",
        "--max-patches",
        "32",
        "--train-patches",
        "16",
        "--json",
    ];
    args.extend_from_slice(steps);
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn a_small_model_trains_and_every_command_can_use_it() {
    let tmp = TempDir::new("train");
    let data = tmp.path().join("oneills");
    std::fs::create_dir(&data).expect("mkdir");
    let file = data.join("0001-0050.abc");
    std::fs::copy(music21_abc_dir().join("oneills1850/0001-0050.abc"), &file).expect("copy");
    let out = tmp.path().join("model");
    let (data, out) = (data.display().to_string(), out.display().to_string());

    let run1 = train(&data, &out, &[]);
    assert!(run1.ok, "{}", run1.stderr);
    let summary: Value = serde_json::from_str(run1.stdout.trim()).expect("one JSON summary");
    assert_eq!(summary["steps"], 20, "{summary}");
    let (first, last) = (
        summary["first_loss"].as_f64().expect("first"),
        summary["last_loss"].as_f64().expect("last"),
    );
    assert!(last < first, "{summary}");
    // About 10% of the collection is held out (by a seeded hash of each tune), and written out
    // for evaluation.
    let c = &summary["collections"][0];
    let held_out = c["held_out"].as_u64().expect("held out");
    assert!((2..=10).contains(&held_out), "{summary}");
    assert_eq!(
        c["train"].as_u64().map(|t| t + held_out),
        Some(50),
        "{summary}"
    );
    assert!(std::path::Path::new(&out).join("held-out").is_dir());
    // A model trained here reads the canonical view, and says so in its config.
    let config = std::fs::read_to_string(std::path::Path::new(&out).join("config.json"))
        .expect("config.json");
    assert!(
        config.contains("\"music_view\": \"canonical-tonic\""),
        "{config}"
    );

    let classify = run(&[
        "classify",
        &file.display().to_string(),
        "--model",
        &out,
        "--label-set",
        "rhythm",
    ]);
    assert!(classify.ok, "{}", classify.stderr);
    assert_eq!(classify.stdout.lines().count(), 50, "{}", classify.stdout);

    // The same tune written another way (a title, chord symbols, a trill, L:1/16, another key)
    // is the same input to this model, so the same vector, for the tune and its passages.
    let one = tmp.path().join("one.abc");
    let other = tmp.path().join("other.abc");
    std::fs::write(
        &one,
        "X:1\nT:Plain\nM:6/8\nL:1/8\nK:G\nGAB c2d|e2f g3|gfe dcB|AGF G3|\n",
    )
    .expect("write");
    std::fs::write(
        &other,
        "X:7\nT:Dressed\nM:6/8\nL:1/16\nK:D\n\"D\"D2E2F2 !trill!G4A2|\"A\"B4c2 d6|\nd2c2B2 A2G2F2|E2D2C2 D6|]\n",
    )
    .expect("write");
    for level in ["tune", "passage"] {
        let vectors: Vec<Vec<f64>> = [&one, &other]
            .iter()
            .map(|f| {
                let out = run(&[
                    "embed",
                    &f.display().to_string(),
                    "--model",
                    &out,
                    "--level",
                    level,
                    "--json",
                ]);
                assert!(out.ok, "{}", out.stderr);
                let v: Value = serde_json::from_str(out.stdout.lines().next().unwrap_or_default())
                    .expect("json");
                v["vector"]
                    .as_array()
                    .expect("vector")
                    .iter()
                    .map(|x| x.as_f64().expect("f"))
                    .collect()
            })
            .collect();
        let diff = vectors[0]
            .iter()
            .zip(&vectors[1])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(diff < 1e-6, "{level}: vectors differ by {diff}");
    }

    // A head on the model's frozen vectors, from tunes labelled in R:, then used by classify.
    let labelled = music21_abc_dir().join("oneills1850/0550-0625.abc");
    let head = run(&[
        "train",
        "--head",
        "rhythm",
        "--data",
        &labelled.display().to_string(),
        "--out",
        &out,
        "--min-count",
        "4",
        "--json",
    ]);
    assert!(head.ok, "{}", head.stderr);
    let fitted: Value = serde_json::from_str(head.stdout.trim()).expect("json");
    assert_eq!(
        fitted["labels"],
        serde_json::json!(["air", "jig", "waltz"]),
        "{fitted}"
    );
    assert_eq!(fitted["left_out"], 2, "{fitted}");
    assert!(std::path::Path::new(&out)
        .join("heads/rhythm.json")
        .is_file());
    let classify = run(&[
        "classify",
        &labelled.display().to_string(),
        "--model",
        &out,
        "--label-set",
        "rhythm",
        "--json",
    ]);
    assert!(classify.ok, "{}", classify.stderr);
    for line in classify.stdout.lines() {
        let t: Value = serde_json::from_str(line).expect("json");
        assert_eq!(t["source"], "head", "{t}");
        let sum: f64 = t["labels"]
            .as_array()
            .expect("labels")
            .iter()
            .map(|l| l["score"].as_f64().expect("score"))
            .sum();
        assert!(sum > 0.99 && sum < 1.01, "three labels, all shown: {t}");
    }
    // Another label set is still zero-shot.
    let genre = run(&[
        "classify",
        &file.display().to_string(),
        "--model",
        &out,
        "--json",
    ]);
    assert!(genre.ok, "{}", genre.stderr);
    assert!(
        genre.stdout.contains("\"source\":\"zero-shot\""),
        "{}",
        genre.stdout
    );

    // More steps on --resume continue the run; other options are refused.
    let more = train(&data, &out, &["--steps", "25", "--resume"]);
    assert!(more.ok, "{}", more.stderr);
    let more: Value = serde_json::from_str(more.stdout.trim()).expect("json");
    assert_eq!(
        (more["resumed_from"].as_u64(), more["steps"].as_u64()),
        (Some(20), Some(25))
    );
    let other = train(&data, &out, &["--resume", "--lr", "0.1"]);
    assert!(!other.ok);
    assert!(other.stderr.contains("other options"), "{}", other.stderr);
}

#[test]
fn bad_training_input_is_refused_with_the_reason() {
    let tmp = TempDir::new("train-bad");
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let out = tmp.path().join("out").display().to_string();
    let r = train(&empty.display().to_string(), &out, &[]);
    assert!(!r.ok);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    assert!(r.stderr.contains("holds no ABC tunes"), "{}", r.stderr);
    // Too few tunes for one batch: the count and the batch are named.
    std::fs::write(empty.join("one.abc"), "X:1\nT:Only\nK:G\nGABc|\n").expect("write");
    let r = train(&empty.display().to_string(), &out, &[]);
    assert!(!r.ok);
    assert!(
        r.stderr.contains("fewer than one batch of 8"),
        "{}",
        r.stderr
    );
    let r = run(&[
        "train",
        "--data",
        &empty.display().to_string(),
        "--out",
        &out,
        "--batch",
        "1",
    ]);
    assert!(r.stderr.contains("at least 2"), "{}", r.stderr);
    // A collection to hold out that the data does not have.
    let data = music21_abc_dir().join("oneills1850");
    let r = train(
        &data.display().to_string(),
        &out,
        &["--hold-out-collection", "nosuch"],
    );
    assert!(!r.ok);
    assert!(r.stderr.contains("nosuch"), "{}", r.stderr);
    // A head is saved into a model folder, so --out must be one.
    let r = run(&[
        "train",
        "--head",
        "rhythm",
        "--data",
        &data.display().to_string(),
        "--out",
        &empty.display().to_string(),
    ]);
    assert!(!r.ok);
    assert!(r.stderr.contains("not a model folder"), "{}", r.stderr);
}
