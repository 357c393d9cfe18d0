//! `tunelens classify` end to end: each label's cosine is the one between the tune's vector
//! (`embed`) and its prompt's vector (`embed-text`), scores are a softmax over all labels, and
//! bad label lists are clear errors.

mod common;

use common::{run, shared_fixture, TempDir};
use serde_json::Value;

fn lines(out: &common::Output) -> Vec<Value> {
    assert!(out.ok, "{}", out.stderr);
    out.stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect()
}

#[test]
fn cosines_agree_with_embed_and_scores_sum_to_one() {
    let tmp = TempDir::new("classify");
    let abc = tmp.path().join("t.abc");
    std::fs::write(
        &abc,
        "X:1\nT:A\nM:6/8\nK:G\nGAB c2d|e2f g3|\n\nX:2\nT:B\nM:4/4\nK:D\nDFAF DFAF|\n",
    )
    .expect("write");
    let abc = abc.display().to_string();
    let model = shared_fixture("clamp-tiny-roberta").display().to_string();
    let labels = lines(&run(&[
        "classify",
        &abc,
        "--json",
        "--labels",
        "jig, reel,hornpipe",
        "-k",
        "3",
        "--model",
        &model,
    ]));
    assert_eq!(labels.len(), 2);
    let tunes = lines(&run(&["embed", &abc, "--json", "--model", &model]));
    let prompt = lines(&run(&[
        "embed-text",
        "This piece of music is reel.",
        "--json",
        "--model",
        &model,
    ]));
    let text: Vec<f64> = prompt[0]["vector"]
        .as_array()
        .expect("v")
        .iter()
        .map(|x| x.as_f64().expect("f"))
        .collect();
    for (item, tune) in labels.iter().zip(&tunes) {
        let scored = item["labels"].as_array().expect("labels");
        assert_eq!(scored.len(), 3);
        let sum: f64 = scored
            .iter()
            .map(|s| s["score"].as_f64().expect("score"))
            .sum();
        assert!((sum - 1.0).abs() < 1e-5, "{sum}");
        let reel = scored.iter().find(|s| s["label"] == "reel").expect("reel");
        let music: Vec<f64> = tune["vector"]
            .as_array()
            .expect("v")
            .iter()
            .map(|x| x.as_f64().expect("f"))
            .collect();
        let cosine: f64 = music.iter().zip(&text).map(|(a, b)| a * b).sum();
        assert!(
            (cosine - reel["cosine"].as_f64().expect("cos")).abs() < 1e-4,
            "{cosine} vs {reel}"
        );
    }
    let genre = lines(&run(&[
        "classify", &abc, "--json", "-k", "8", "--model", &model,
    ]));
    assert_eq!(genre[0]["labels"].as_array().expect("labels").len(), 8);
}

#[test]
fn bad_label_lists_are_clear_errors() {
    let tmp = TempDir::new("classify-bad");
    let abc = tmp.path().join("t.abc");
    std::fs::write(&abc, "X:1\nK:G\nGAB|\n").expect("write");
    let abc = abc.display().to_string();
    let model = shared_fixture("clamp-tiny-roberta").display().to_string();
    for (extra, message) in [
        (vec!["--labels", "jig"], "at least two"),
        (vec!["--labels", "jig,,reel"], "non-empty"),
        (vec!["--labels", "jig,Jig"], "twice"),
        (vec!["--label-set", "colours"], "unknown label set"),
        (
            vec!["--labels", "a,b", "--template", "no placeholder"],
            "{label}",
        ),
    ] {
        let mut args = vec!["classify", abc.as_str(), "--model", model.as_str()];
        args.extend(extra);
        let out = run(&args);
        assert!(
            !out.ok && out.stderr.contains(message),
            "{args:?}: {}",
            out.stderr
        );
    }
}
