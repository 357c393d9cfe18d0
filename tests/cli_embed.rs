//! `tunelens embed` / `embed-text` end to end: the binary's vectors equal the reference CLaMP
//! features of the fixture models, and model trouble is a clear error.

mod common;

use std::path::Path;
use std::process::Command;

use common::{run, shared_fixture, TempDir};
use serde_json::Value;

fn close(got: &[Value], want: &[Value], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let (g, w) = (g.as_f64().expect("number"), w.as_f64().expect("number"));
        assert!((g - w).abs() < 1e-4, "{what}[{i}]: {g} vs {w}");
    }
}

#[test]
fn music_vectors_match_the_reference_features() {
    for name in ["clamp-tiny-bert", "clamp-tiny-roberta"] {
        let model = shared_fixture(name);
        let expected: Value = serde_json::from_str(
            &std::fs::read_to_string(model.join("expected.json")).expect("readable"),
        )
        .expect("json");
        let tmp = TempDir::new("embed");
        let music = expected["music"].as_array().expect("music");
        let mut paths = Vec::new();
        for (i, sample) in music.iter().enumerate() {
            let path = tmp.path().join(format!("s{i:02}.abc"));
            std::fs::write(&path, sample["abc"].as_str().expect("abc")).expect("write");
            paths.push(path.display().to_string());
        }
        let mut args = vec![
            "embed",
            "--json",
            "--no-normalize",
            "--long-tunes",
            "truncate",
            "--max-patches",
            "128",
            "--model",
        ];
        let model = model.display().to_string();
        args.push(&model);
        args.extend(paths.iter().map(String::as_str));
        let out = run(&args);
        assert!(out.ok, "{}", out.stderr);
        let items: Vec<Value> = out
            .stdout
            .lines()
            .map(|l| serde_json::from_str(l).expect("json"))
            .collect();
        assert_eq!(items.len(), music.len());
        for (i, (item, sample)) in items.iter().zip(music).enumerate() {
            close(
                item["vector"].as_array().expect("vector"),
                sample["feature"].as_array().expect("feature"),
                &format!("{name} music {i}"),
            );
        }
    }
}

#[test]
fn text_vectors_match_and_normalised_vectors_have_unit_length() {
    let model = shared_fixture("clamp-tiny-roberta");
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(model.join("expected.json")).expect("read"))
            .expect("json");
    let model = model.display().to_string();
    for (i, row) in expected["text"]
        .as_array()
        .expect("text")
        .iter()
        .enumerate()
        .take(4)
    {
        let text = row["text"].as_str().expect("text");
        let out = run(&[
            "embed-text",
            "--json",
            "--no-normalize",
            "--model",
            &model,
            text,
        ]);
        assert!(out.ok, "{}", out.stderr);
        let item: Value = serde_json::from_str(out.stdout.trim()).expect("json");
        close(
            item["vector"].as_array().expect("vector"),
            row["feature"].as_array().expect("feature"),
            &format!("text {i}"),
        );
        let out = run(&["embed-text", "--json", "--model", &model, text]);
        let item: Value = serde_json::from_str(out.stdout.trim()).expect("json");
        let norm: f64 = item["vector"]
            .as_array()
            .expect("vector")
            .iter()
            .map(|x| x.as_f64().expect("number").powi(2))
            .sum::<f64>()
            .sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "norm {norm}");
    }
}

#[test]
fn passages_carry_their_bars_and_place() {
    let tmp = TempDir::new("passages");
    let path = tmp.path().join("t.abc");
    std::fs::write(
        &path,
        "X:1\nT:Test\nM:6/8\nK:G\n|:GAB c2d|e2f g3:|\n|:gfe dcB|AGF G3:|\n",
    )
    .expect("write");
    let model = shared_fixture("clamp-tiny-bert").display().to_string();
    let out = run(&[
        "embed",
        "--json",
        "--level",
        "passage",
        "--window",
        "2",
        "--model",
        &model,
        path.to_str().expect("path"),
    ]);
    assert!(out.ok, "{}", out.stderr);
    let items: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(items.len(), 3);
    assert_eq!(items[1]["bars"], serde_json::json!([2, 3]));
    assert_eq!(items[1]["start"], serde_json::json!({"line": 5, "col": 11}));
    assert_eq!(items[1]["end"], serde_json::json!({"line": 6, "col": 11}));
    assert_eq!(items[1]["title"], "Test");
}

#[test]
fn model_trouble_is_a_clear_error() {
    let tmp = TempDir::new("bad-model");
    let abc = tmp.path().join("t.abc");
    std::fs::write(&abc, "X:1\nK:C\nab|\n").expect("write");
    let abc = abc.display().to_string();
    // Without --model the committed default model embeds (it needs setup's text tower only
    // for text).
    let out = run(&["embed", &abc, "--json"]);
    assert!(out.ok, "{}", out.stderr);
    let first: serde_json::Value =
        serde_json::from_str(out.stdout.lines().next().unwrap_or_default()).expect("json line");
    assert_eq!(
        first["vector"].as_array().map(Vec::len),
        Some(256),
        "{first}"
    );
    // A model folder without config.json.
    let dir = tmp.path().join("model");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::copy(
        shared_fixture("clamp-tiny-bert/model.safetensors"),
        dir.join("model.safetensors"),
    )
    .expect("copy");
    let out = run(&["embed", "--model", dir.to_str().expect("path"), &abc]);
    assert!(!out.ok, "must fail");
    assert!(out.stderr.contains("config.json"), "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    let out = run(&[
        "embed",
        "--device",
        "cuda",
        "--model",
        dir.to_str().expect("path"),
        &abc,
    ]);
    assert!(
        !out.ok && out.stderr.to_lowercase().contains("cuda"),
        "{}",
        out.stderr
    );
}

/// `--device` and `--dtype` as a user meets them in a CPU build: `auto` runs on the CPU,
/// `cuda` says how to get a CUDA build, half precision keeps the vectors' direction, and bad
/// specs name what is accepted.
#[test]
fn device_and_precision_choices() {
    let model = shared_fixture("clamp-tiny-bert").display().to_string();
    let tmp = TempDir::new("embed-device");
    let abc = tmp.path().join("t.abc");
    std::fs::write(
        &abc,
        "X:1\nT:Test\nM:6/8\nL:1/8\nK:D\n|:dAF DFA|dAF G2E|dAF DFA|Bcd e2c:|\n",
    )
    .expect("write");
    let abc = abc.display().to_string();
    let embed = |extra: &[&str]| {
        let mut args = vec!["embed", "--json", "--model", &model];
        args.extend_from_slice(extra);
        args.push(&abc);
        run(&args)
    };
    let vector = |out: &common::Output| -> Vec<f64> {
        assert!(out.ok, "{}", out.stderr);
        let v: Value =
            serde_json::from_str(out.stdout.lines().next().expect("a line")).expect("json");
        v["vector"]
            .as_array()
            .expect("vector")
            .iter()
            .map(|x| x.as_f64().expect("number"))
            .collect()
    };
    let cpu = vector(&embed(&["--device", "cpu"]));
    let auto = vector(&embed(&["--device", "auto"]));
    assert_eq!(cpu, auto, "auto must be the CPU in a CPU build");
    for dtype in ["bf16", "f16"] {
        let half = vector(&embed(&["--dtype", dtype]));
        let dot: f64 = half.iter().zip(&cpu).map(|(a, b)| a * b).sum();
        let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
        let cos = dot / (norm(&half) * norm(&cpu));
        assert!(cos >= 0.999, "{dtype}: cosine {cos} to f32");
    }
    let out = embed(&["--device", "cuda:1"]);
    assert!(!out.ok, "cuda in a CPU build must fail");
    assert!(
        out.stderr.contains("--features cuda") && out.stderr.contains("setup-cuda.sh"),
        "{}",
        out.stderr
    );
    let out = embed(&["--device", "tpu"]);
    assert!(
        !out.ok && out.stderr.contains("auto, cpu, cuda or cuda:N"),
        "{}",
        out.stderr
    );
    let out = embed(&["--dtype", "f8"]);
    assert!(!out.ok && out.stderr.contains("f16"), "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
}

/// A binary copied away from its checkout finds no model beside it: it says every place it
/// looked, and once the default model is installed in the data folder
/// (`$XDG_DATA_HOME/tunelens/models/default`, a copy as setup makes) it embeds, indexes and
/// finds similar passages with it. No path is compiled in.
#[test]
fn a_binary_away_from_its_checkout_looks_in_the_data_folder() {
    let tmp = TempDir::new("installed");
    let bin = tmp.path().join("bin");
    std::fs::create_dir(&bin).expect("mkdir");
    let exe = bin.join("tunelens");
    let built = Path::new(env!("CARGO_BIN_EXE_tunelens"));
    if std::fs::hard_link(built, &exe).is_err() {
        std::fs::copy(built, &exe).expect("copy the binary");
    }
    let data = tmp.path().join("data");
    let abc = tmp.path().join("t.abc");
    std::fs::write(&abc, "X:1\nK:C\nab|\n").expect("write");
    let embed = || {
        common::output(
            Command::new(&exe)
                .args(["embed", abc.to_str().expect("utf-8"), "--json"])
                .env_remove("TUNELENS_MODEL")
                .env("XDG_DATA_HOME", &data)
                .env("HOME", tmp.path()),
        )
    };
    let out = embed();
    assert!(!out.ok, "no model anywhere: {}", out.stdout);
    let installed = data.join("tunelens/models/default");
    assert!(
        out.stderr.contains(&installed.display().to_string())
            && out
                .stderr
                .contains(&bin.join("models/default").display().to_string())
            && out.stderr.contains("--model"),
        "{}",
        out.stderr
    );
    // Installed as setup installs it: a copy, nothing pointing back into the checkout.
    std::fs::create_dir_all(&installed).expect("mkdir");
    let shipped = common::repo_root().join("models/default");
    for entry in std::fs::read_dir(&shipped).expect("the default model") {
        let from = entry.expect("entry").path();
        if from.is_file() {
            std::fs::copy(&from, installed.join(from.file_name().expect("name"))).expect("copy");
        }
    }
    // Its card points at the text tower relative to the checkout; copied away, the model
    // finds the tower setup installs beside it, by name. (A link stands in for setup's copy
    // of the 90 MB tower.)
    let tower = common::repo_root().join(".data/models/all-minilm-l6-v2");
    assert!(
        tower.join("model.safetensors").exists(),
        "{} is missing: run scripts/setup.sh --data",
        tower.display()
    );
    let out = embed();
    assert!(
        !out.ok && out.stderr.contains("all-minilm-l6-v2"),
        "without the tower the error names it: {}",
        out.stderr
    );
    std::os::unix::fs::symlink(&tower, data.join("tunelens/models/all-minilm-l6-v2"))
        .expect("install the tower");
    let out = embed();
    assert!(out.ok, "{}", out.stderr);
    let first: serde_json::Value =
        serde_json::from_str(out.stdout.lines().next().unwrap_or_default()).expect("json line");
    assert_eq!(first["vector"].as_array().map(Vec::len), Some(256));
    // The main job from there: index a folder, then find the passage most like a bar.
    let db = tmp.path().join("db");
    let away = |args: &[&str]| {
        common::output(
            Command::new(&exe)
                .args(args)
                .env_remove("TUNELENS_MODEL")
                .env("XDG_DATA_HOME", &data)
                .env("HOME", tmp.path()),
        )
    };
    let tunes = tmp.path().join("tunes");
    std::fs::create_dir(&tunes).expect("mkdir");
    std::fs::write(
        tunes.join("a.abc"),
        "X:1\nT:A\nM:6/8\nL:1/8\nK:G\nGAB c2d|e2f g3|gfe dcB|AGF G3|\n\
         X:2\nT:B\nM:6/8\nL:1/8\nK:G\nBcd e2f|g2a b3|bag fed|edc B3|GAB c2d|e2f g3|\n",
    )
    .expect("write");
    let db_arg = db.to_str().expect("utf-8");
    let out = away(&["index", "--db", db_arg, tunes.to_str().expect("utf-8")]);
    assert!(out.ok, "{}", out.stderr);
    let at = format!("{}:12", tunes.join("a.abc").display());
    let out = away(&["similar", &at, "--db", db_arg, "-k", "1", "--json"]);
    assert!(out.ok, "{}", out.stderr);
    let answer: serde_json::Value = serde_json::from_str(out.stdout.trim()).expect("json");
    assert_eq!(answer["matches"][0]["title"], "A", "{answer}");
}
