//! `tunelens similar --html`: the page, opened in headless Chromium (Debian's, as
//! `scripts/install-editors.sh` installs it), engraves every passage with abcjs, colours the
//! notes that differ and nothing else, and reports no abcjs warning or script error.

mod common;

use common::{compare_page_report, index_with_tiny_model, run, TempDir};
use serde_json::Value;

const ORIGINAL: &str = "X:1\nT:Original\nM:6/8\nL:1/8\nK:G\n|:GAB c2d|e2f g3|gfe dcB|AGF G3:|\n|:Bcd e2f|g2a b3|bag fed|edc B3:|\n";
/// Bars 5-8 of the original as written, inside another tune.
const QUOTING: &str = "X:7\nT:Borrower\nM:6/8\nL:1/8\nK:G\nDED DEF|GFG AGA|\nBcd e2f|g2a b3|bag fed|edc B3|\nFAF FAF|GBG GBG|\n";
/// The same bars with two notes moved, chord symbols, a comment and a continued line, under
/// a title that is not ASCII.
const VARIED: &str = "X:3\nT:Ríl an Éin\nM:6/8\nL:1/8\nK:G\n\"G\"Bcd e2f|g2a b3| % the turn\n\"D\"bag fgd|\\\nedB B3|\n";

#[test]
fn the_html_page_engraves_every_passage_and_colours_only_the_notes_that_differ() {
    let tmp = TempDir::new("compare-page");
    let dir = tmp.path().join("tunes");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("original.abc"), ORIGINAL).expect("write");
    std::fs::write(dir.join("quoting.abc"), QUOTING).expect("write");
    std::fs::write(dir.join("varied.abc"), VARIED).expect("write");
    let (model, db) = index_with_tiny_model(&tmp, &dir);
    let original = std::fs::canonicalize(dir.join("original.abc")).expect("canonical");
    let page = tmp.path().join("compare.html");
    // Line 7 holds bars 5-8 of the original; the symbolic ranker puts the two copies first.
    let at = format!("{}:7:2", original.display());
    let out = run(&[
        "similar",
        &at,
        "-k",
        "2",
        "--ranker",
        "symbolic",
        "--json",
        "--model",
        &model,
        "--db",
        &db,
        "--html",
        page.to_str().expect("path"),
    ]);
    assert!(out.ok, "{}", out.stderr);
    let answer: Value = serde_json::from_str(out.stdout.trim()).expect("JSON");
    let matches = answer["matches"].as_array().expect("matches");
    let paths: Vec<&str> = matches
        .iter()
        .map(|m| m["path"].as_str().expect("path"))
        .collect();
    assert!(paths[0].ends_with("quoting.abc"), "{paths:?}");
    assert!(paths[1].ends_with("varied.abc"), "{paths:?}");

    let html = std::fs::read_to_string(&page).expect("the page was written");
    assert!(
        !html.contains("/*TUNELENS_"),
        "a placeholder was left in the page"
    );
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "the page must need no network"
    );
    let r = compare_page_report(&page);
    let n = 1 + matches.len();
    assert_eq!(r["passages"], n, "{r}");
    assert_eq!(r["warnings"], serde_json::json!([]), "{r}");
    assert_eq!(r["errors"], serde_json::json!([]), "{r}");
    assert_eq!(r["unmatched"], serde_json::json!(vec![0; n]), "{r}");
    let rendered = r["rendered"].as_array().expect("rendered");
    assert!(rendered.iter().all(|s| s.as_u64() >= Some(1)), "{r}");
    assert!(r["staves"].as_u64() >= Some(n as u64), "{r}");
    // The query and its exact quote have nothing coloured; the varied copy its two notes.
    assert_eq!(r["coloured"], serde_json::json!([0, 0, 2]), "{r}");
}
