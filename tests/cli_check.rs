//! `tunelens check`: a quotation transposed up a 4th with two notes changed is reported with
//! its explanation and places in both files (exit code 1, JSON); a tune without quotation is
//! not; `--syntax` prints diagnostics as file:line:col.

mod common;

use common::{run, shared_fixture, TempDir};
use serde_json::Value;

/// The reference tune: bars 5-8 are the ones quoted below.
const REFERENCE: &str = "X:1\nT:The Reference Jig\nM:6/8\nL:1/8\nK:G\n|:GAB c2d|e2f g3|gfe dcB|AGF G3:|\n|:Bcd e2f|g2a b3|bag fed|edc B3:|\n";

/// Bars 5-8 of the reference a perfect 4th higher (G → C), with two notes moved a step as a
/// player varies a tune (the `d'` of bar 2 of the quote down to `c'`, the `f` of bar 4 down to
/// `e`), as bars 3-6 of a tune of its own.
const QUOTING: &str = "X:1\nT:My Borrowing Jig\nM:6/8\nL:1/8\nK:C\nCEC CEG|AGE D3|\nefg a2b|c'2c' e'3|e'd'c' bag|age e3|\nGEC DEF|EDC C3|\n";

/// The same quote with its two notes changed by leaps (a third each: `d'` → `b`, `f` → `a`):
/// no longer the shape of a variation, so only a lower threshold reports it.
const LEAPING: &str = "X:1\nT:My Leaping Jig\nM:6/8\nL:1/8\nK:C\nCEC CEG|AGE D3|\nefg a2b|c'2b e'3|e'd'c' bag|aga e3|\nGEC DEF|EDC C3|\n";

/// Written for this test, checked by hand against the reference: its own intervals and
/// rhythms throughout.
const ORIGINAL: &str = "X:1\nT:Nothing Borrowed\nM:3/4\nL:1/8\nK:D\nA2 F2 D2|E4 FG|A3 B c2|d6|\nf2 e2 d2|c2 B2 A2|B2 G2 E2|D6|]\n";

struct Setup {
    _tmp: TempDir,
    model: String,
    db: String,
    quoting: String,
    leaping: String,
    original: String,
    reference: String,
}

fn setup() -> Setup {
    let tmp = TempDir::new("check");
    let corpus = tmp.path().join("corpus");
    std::fs::create_dir(&corpus).expect("mkdir");
    std::fs::write(corpus.join("reference.abc"), REFERENCE).expect("write");
    let mine = tmp.path().join("mine");
    std::fs::create_dir(&mine).expect("mkdir");
    std::fs::write(mine.join("quoting.abc"), QUOTING).expect("write");
    std::fs::write(mine.join("leaping.abc"), LEAPING).expect("write");
    std::fs::write(mine.join("original.abc"), ORIGINAL).expect("write");
    let model = shared_fixture("clamp-tiny-bert").display().to_string();
    let db = tmp.path().join("db").display().to_string();
    let out = run(&[
        "index",
        "--model",
        &model,
        "--db",
        &db,
        "--corpus",
        "refs",
        corpus.to_str().expect("path"),
    ]);
    assert!(out.ok, "{}", out.stderr);
    let path = |p: std::path::PathBuf| p.display().to_string();
    Setup {
        model,
        db,
        quoting: path(mine.join("quoting.abc")),
        leaping: path(mine.join("leaping.abc")),
        original: path(mine.join("original.abc")),
        reference: path(std::fs::canonicalize(corpus.join("reference.abc")).expect("canonical")),
        _tmp: tmp,
    }
}

fn check(s: &Setup, file: &str) -> (std::process::ExitStatus, Value, String) {
    check_with(s, file, &[])
}

fn check_with(s: &Setup, file: &str, extra: &[&str]) -> (std::process::ExitStatus, Value, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tunelens"))
        .args([
            "check", file, "--corpus", "refs", "--json", "--model", &s.model, "--db", &s.db,
        ])
        .args(extra)
        .output()
        .expect("tunelens runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout} {stderr}"));
    (out.status, json, stderr)
}

#[test]
fn a_transposed_varied_quote_is_reported_with_its_explanation() {
    let s = setup();
    let (status, answer, stderr) = check(&s, &s.quoting);
    assert_eq!(status.code(), Some(1), "{answer} {stderr}");
    let findings = answer["files"][0]["findings"].as_array().expect("findings");
    assert_eq!(findings.len(), 1, "{answer}");
    let f = &findings[0];
    let e = &f["explain"];
    assert_eq!(e["interval"], "up a perfect 4th", "{f}");
    assert_eq!(e["changed"], 2, "{f}");
    assert_eq!(e["stepped"], 2, "{f}");
    assert_eq!(
        e["inserted"].as_u64().unwrap_or(9) + e["dropped"].as_u64().unwrap_or(9),
        0
    );
    assert_eq!(e["query_bars"], serde_json::json!([3, 6]));
    assert_eq!(e["match_bars"], serde_json::json!([5, 8]));
    assert_eq!(f["query"]["bars"], serde_json::json!([3, 6]));
    assert_eq!(
        f["query"]["start"],
        serde_json::json!({"line": 7, "col": 1})
    );
    assert_eq!(f["query"]["end"], serde_json::json!({"line": 7, "col": 37}));
    assert_eq!(f["reference"]["path"], s.reference.as_str());
    assert_eq!(f["reference"]["bars"], serde_json::json!([5, 8]));
    assert_eq!(
        f["reference"]["start"],
        serde_json::json!({"line": 7, "col": 1})
    );
    assert_eq!(
        f["reference"]["end"],
        serde_json::json!({"line": 7, "col": 34})
    );
    let summary = e["summary"].as_str().expect("summary");
    assert!(
        summary.contains("up a perfect 4th") && summary.contains("2 of"),
        "{summary}"
    );
}

#[test]
fn a_quote_changed_by_leaps_needs_a_lower_threshold() {
    let s = setup();
    let (status, answer, stderr) = check(&s, &s.leaping);
    assert_eq!(status.code(), Some(0), "{answer} {stderr}");
    assert_eq!(answer["findings"], 0, "{answer}");
    let (status, answer, stderr) = check_with(&s, &s.leaping, &["--threshold", "0.85"]);
    assert_eq!(status.code(), Some(1), "{answer} {stderr}");
    let f = &answer["files"][0]["findings"][0];
    assert_eq!(f["explain"]["changed"], 2, "{f}");
    assert_eq!(f["explain"]["stepped"], 0, "{f}");
    assert_eq!(f["reference"]["bars"], serde_json::json!([5, 8]), "{f}");
}

#[test]
fn a_whole_copy_under_another_title_is_called_a_setting() {
    let s = setup();
    let copy = std::path::Path::new(&s.quoting).with_file_name("copy.abc");
    std::fs::write(
        &copy,
        REFERENCE.replace("The Reference Jig", "Not Mine At All"),
    )
    .expect("write");
    let (status, answer, stderr) = check(&s, copy.to_str().expect("path"));
    assert_eq!(status.code(), Some(1), "{answer} {stderr}");
    let findings = answer["files"][0]["findings"].as_array().expect("findings");
    assert!(!findings.is_empty(), "{answer}");
    for f in findings {
        assert_eq!(f["coverage"], 1.0, "{f}");
        assert_eq!(f["bars_matched"], 8, "{f}");
    }
    // A quote of four bars is a passage of the reference, not a setting of it, though it is
    // half of this 8-bar tune: one window's worth of bars is not enough.
    let (_, answer, _) = check(&s, &s.quoting);
    let f = &answer["files"][0]["findings"][0];
    assert_eq!(f["bars_matched"], 4, "{f}");
    let out = run(&[
        "check", &s.quoting, "--corpus", "refs", "--model", &s.model, "--db", &s.db,
    ]);
    assert!(!out.stdout.contains("another setting"), "{}", out.stdout);
    let out = run(&[
        "check",
        copy.to_str().expect("path"),
        "--corpus",
        "refs",
        "--model",
        &s.model,
        "--db",
        &s.db,
    ]);
    assert!(
        out.stdout
            .contains("another setting of it: 8 of 8 bars match"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_tune_without_quotation_gives_no_finding() {
    let s = setup();
    let (status, answer, stderr) = check(&s, &s.original);
    assert_eq!(status.code(), Some(0), "{answer} {stderr}");
    assert_eq!(answer["findings"], 0);
}

#[test]
fn syntax_prints_file_line_col_and_fails_on_problems() {
    let tmp = TempDir::new("syntax");
    let bad = tmp.path().join("bad.abc");
    std::fs::write(
        &bad,
        "X:1\r\nT:Café\r\nM:2/4\r\nL:1/8\r\nK:C\r\n\"é\"ab cd|abc|ab cd|]\r\n",
    )
    .expect("write");
    let name = bad.display().to_string();
    let out = run(&["check", "--syntax", &name]);
    assert!(!out.ok);
    assert!(
        out.stdout
            .contains(&format!("{name}:6:10: warning: bar 2 is too short")),
        "{}",
        out.stdout
    );
    let good = tmp.path().join("good.abc");
    std::fs::write(&good, "X:1\nT:Fine\nM:2/4\nL:1/8\nK:C\nab cd|ef ga|]\n").expect("write");
    let out = run(&["check", "--syntax", good.to_str().expect("path")]);
    assert!(out.ok, "{}", out.stdout);
}
