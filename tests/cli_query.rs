//! `tunelens search` and `similar` over a real index: a passage copied into another tune is
//! found at the top, never the query's own place, and bad queries are clear errors.

mod common;

use common::{index_with_tiny_model, run, shared_fixture, TempDir};
use serde_json::Value;

const ORIGINAL: &str = "X:1\nT:Original\nM:6/8\nL:1/8\nK:G\n|:GAB c2d|e2f g3|gfe dcB|AGF G3:|\n|:Bcd e2f|g2a b3|bag fed|edc B3:|\n";
/// Bars 5-8 of the original, quoted in another tune between music of its own.
const QUOTING: &str = "X:7\nT:Borrower\nM:6/8\nL:1/8\nK:G\nDED DEF|GFG AGA|\nBcd e2f|g2a b3|bag fed|edc B3|\nFAF FAF|GBG GBG|\n";

/// The same bars 5-8 a fifth higher, in D.
const TRANSPOSED: &str = "X:9\nT:Transposer\nM:6/8\nL:1/8\nK:D\nDED DEF|GFG AGA|\nfga b2c'|d'2e' f'3|f'e'd' c'ba|bag f3|\nFAF FAF|\n";

fn setup(tmp: &TempDir) -> (String, String, String) {
    let dir = tmp.path().join("tunes");
    std::fs::create_dir(&dir).expect("mkdir");
    std::fs::write(dir.join("original.abc"), ORIGINAL).expect("write");
    std::fs::write(dir.join("quoting.abc"), QUOTING).expect("write");
    std::fs::write(dir.join("transposed.abc"), TRANSPOSED).expect("write");
    let (model, db) = index_with_tiny_model(tmp, &dir);
    let original = std::fs::canonicalize(dir.join("original.abc")).expect("canonical");
    (model, db, original.display().to_string())
}

fn json(out: &common::Output) -> Value {
    assert!(out.ok, "{}", out.stderr);
    serde_json::from_str(out.stdout.trim()).expect("one JSON object")
}

#[test]
fn a_quoted_passage_is_found_first_and_never_itself() {
    let tmp = TempDir::new("similar");
    let (model, db, original) = setup(&tmp);
    // Line 7 holds bars 5-8 of the original.
    let at = format!("{original}:7:2");
    let answer = json(&run(&[
        "similar", &at, "--json", "-k", "5", "--model", &model, "--db", &db,
    ]));
    assert_eq!(answer["query"]["bars"], serde_json::json!([5, 8]));
    let matches = answer["matches"].as_array().expect("matches");
    assert!(!matches.is_empty());
    let top = &matches[0];
    assert!(
        top["path"].as_str().expect("path").ends_with("quoting.abc"),
        "{top}"
    );
    assert_eq!(top["title"], "Borrower");
    assert_eq!(top["bars"], serde_json::json!([3, 6]));
    assert_eq!(top["start"], serde_json::json!({"line": 7, "col": 1}));
    assert!(top["score"].as_f64().expect("score") > 0.9999, "{top}");
    for m in matches {
        let own = m["path"] == original.as_str()
            && m["bars"][0].as_u64().expect("bar") <= 8
            && m["bars"][1].as_u64().expect("bar") >= 5;
        assert!(!own, "the query's own place came back: {m}");
    }
}

#[test]
fn abc_queries_and_text_search_give_located_results() {
    let tmp = TempDir::new("search");
    let (model, db, _) = setup(&tmp);
    let answer = json(&run(&[
        "similar",
        "--abc",
        "L:1/8\nM:6/8\nK:G\nBcd e2f|g2a b3|bag fed|edc B3:|\n",
        "--json",
        "-k",
        "2",
        "--model",
        &model,
        "--db",
        &db,
    ]));
    assert!(answer["matches"][0]["score"].as_f64().expect("score") > 0.9999);
    let answer = json(&run(&[
        "search",
        "a jig in G",
        "--json",
        "-k",
        "2",
        "--model",
        &model,
        "--db",
        &db,
    ]));
    let matches = answer["matches"].as_array().expect("matches");
    assert_eq!(matches.len(), 2);
    for m in matches {
        assert_eq!(m["level"], "tune");
        assert!(m["start"]["line"].as_u64().expect("line") >= 1);
    }
    let answer = json(&run(&[
        "search", "a jig", "--level", "passage", "--json", "--model", &model, "--db", &db,
    ]));
    assert_eq!(answer["matches"][0]["level"], "passage");
}

#[test]
fn bad_queries_are_clear_errors() {
    let tmp = TempDir::new("bad-query");
    let (model, db, original) = setup(&tmp);
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["similar".into(), format!("{original}:99")], "lines"),
        (vec!["similar".into(), "nope.abc:3".into()], "nope.abc"),
        (vec!["similar".into(), original.clone()], "FILE:LINE"),
        (
            vec!["similar".into(), "--abc".into(), "% nothing".into()],
            "no music",
        ),
        (vec!["search".into(), "  ".into()], "empty"),
        (vec!["search".into(), "x".repeat(10_001)], "over 10000"),
        (
            vec![
                "search".into(),
                "jig".into(),
                "--corpus".into(),
                "other".into(),
            ],
            "nothing indexed",
        ),
    ];
    for (mut args, message) in cases {
        args.extend(["--model".into(), model.clone(), "--db".into(), db.clone()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = run(&args);
        assert!(!out.ok, "{args:?} should fail");
        assert!(out.stderr.contains(message), "{args:?}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
}

#[test]
fn a_transposed_quote_is_found_by_its_intervals() {
    let tmp = TempDir::new("transposed");
    let (model, db, original) = setup(&tmp);
    let at = format!("{original}:7:2");
    let answer = json(&run(&[
        "similar", &at, "--json", "-k", "3", "--model", &model, "--db", &db,
    ]));
    let matches = answer["matches"].as_array().expect("matches");
    assert_eq!(matches[0]["title"], "Borrower", "{answer}");
    assert_eq!(matches[1]["title"], "Transposer", "{answer}");
    assert_eq!(matches[1]["bars"], serde_json::json!([3, 6]));
    assert!((matches[1]["symbolic_score"].as_f64().expect("score") - 1.0).abs() < 1e-6);
    // Why: the copy is the same notes in the same key, the quote the same notes a fifth up
    // (octaves folded: down a 4th).
    let copy = &matches[0]["explain"];
    assert_eq!(copy["interval"], "same key", "{copy}");
    assert_eq!(
        (
            copy["changed"].as_u64(),
            copy["inserted"].as_u64(),
            copy["dropped"].as_u64()
        ),
        (Some(0), Some(0), Some(0))
    );
    let quote = &matches[1]["explain"];
    assert_eq!(quote["transposition"], -5, "{quote}");
    assert_eq!(quote["interval"], "down a perfect 4th");
    assert_eq!(quote["same"], quote["notes"]);
    assert_eq!(quote["query_bars"], serde_json::json!([5, 8]));
    assert_eq!(quote["match_bars"], serde_json::json!([3, 6]));
    assert_eq!(
        quote["summary"],
        format!(
            "bars 5–8 = bars 3–6 of Transposer, down a perfect 4th, 0 of {} notes differ",
            quote["notes"]
        )
    );
    // In text, each match is followed by its explanation.
    let text = run(&["similar", &at, "-k", "2", "--model", &model, "--db", &db]);
    assert!(
        text.stdout
            .contains("bars 5–8 = bars 3–6 of Borrower, same key, 0 of"),
        "{}",
        text.stdout
    );
    let answer = json(&run(&[
        "similar", &at, "--json", "-k", "2", "--ranker", "symbolic", "--model", &model, "--db", &db,
    ]));
    let titles: Vec<&str> = answer["matches"]
        .as_array()
        .expect("matches")
        .iter()
        .map(|m| m["title"].as_str().expect("title"))
        .collect();
    assert_eq!(titles, ["Borrower", "Transposer"]);
}

/// Two collections of a corpus `m21`: O'Neill's tunes 1-100 (files of 50), and `ryans`, which
/// holds a copy of O'Neill's first tune under the title "Enchanted Valley, The" (a setting of
/// the same tune in another collection). Returns (model, db, the O'Neill file of the copy).
fn two_collections(tmp: &TempDir) -> (String, String, String) {
    let src = common::music21_abc_dir().join("oneills1850");
    let corpus = tmp.path().join("m21");
    let oneills = corpus.join("oneills");
    let ryans = corpus.join("ryans");
    std::fs::create_dir_all(&oneills).expect("mkdir");
    std::fs::create_dir_all(&ryans).expect("mkdir");
    for name in ["0001-0050.abc", "0051-0100.abc"] {
        std::fs::copy(src.join(name), oneills.join(name)).expect("copy");
    }
    let first = std::fs::read_to_string(src.join("0001-0050.abc")).expect("read");
    let tune: String = first
        .split("\nX:")
        .nth(1)
        .map(|t| format!("X:{t}\n"))
        .expect("a first tune");
    let copy = tune.replace("T: The Enchanted Valley", "T: Enchanted Valley, The");
    assert_ne!(copy, tune, "the title was replaced");
    std::fs::write(ryans.join("valley.abc"), copy).expect("write");
    let model = shared_fixture("clamp-tiny-bert").display().to_string();
    let db = tmp.path().join("db").display().to_string();
    let out = run(&[
        "index",
        "--model",
        &model,
        "--db",
        &db,
        "--corpus",
        "m21",
        corpus.to_str().expect("path"),
    ]);
    assert!(out.ok, "{}", out.stderr);
    let file = std::fs::canonicalize(oneills.join("0001-0050.abc")).expect("canonical");
    (model, db, file.display().to_string())
}

/// Each tune's `M:` by (canonical path, 0-based tune index), read the simple way: a tune
/// starts at each `X:` line.
fn meters(paths: &[&str]) -> std::collections::HashMap<(String, u64), String> {
    let mut out = std::collections::HashMap::new();
    for path in paths {
        let text = std::fs::read_to_string(path).expect("read");
        let mut tune: Option<u64> = None;
        for line in text.lines() {
            if line.starts_with("X:") {
                tune = Some(tune.map_or(0, |t| t + 1));
            } else if let (Some(t), Some(m)) = (tune, line.strip_prefix("M:")) {
                out.entry((path.to_string(), t))
                    .or_insert_with(|| m.trim().to_owned());
            }
        }
    }
    out
}

fn place_of(m: &Value) -> (String, u64) {
    (
        m["path"].as_str().expect("path").to_owned(),
        m["tune"].as_u64().expect("tune"),
    )
}

#[test]
fn grouped_by_tune_no_tune_comes_twice_and_settings_form_a_family() {
    let tmp = TempDir::new("group");
    let (model, db, oneills) = two_collections(&tmp);
    // Bars 1-4 of The Enchanted Valley.
    let at = format!("{oneills}:12:1");
    let base = [
        "similar", &at, "--json", "-k", "10", "--model", &model, "--db", &db,
    ];

    // Ungrouped, the top 10 repeats tunes (a strain's windows overlap): the test has teeth.
    let mut args = base.to_vec();
    args.extend(["--group", "none"]);
    let flat = json(&run(&args));
    let flat = flat["matches"].as_array().expect("matches");
    let distinct: std::collections::HashSet<_> = flat.iter().map(place_of).collect();
    assert!(distinct.len() < flat.len(), "no repeats to group: {flat:?}");

    // Grouped (the default): ten tunes, each once, counting sources too.
    let grouped = json(&run(&base));
    let matches = grouped["matches"].as_array().expect("matches");
    assert_eq!(matches.len(), 10, "k tunes still come back: {grouped}");
    let mut seen = std::collections::HashSet::new();
    for m in matches {
        assert!(seen.insert(place_of(m)), "a tune came twice: {m}");
        for s in m["sources"].as_array().into_iter().flatten() {
            assert!(seen.insert(place_of(s)), "a source came twice: {s}");
        }
        assert!(m["other_passages"].as_u64().is_some(), "{m}");
    }
    // The copy in Ryan's matches bars 1-4 exactly; the original's other windows join it as
    // one family, with O'Neill's listed as a source.
    let top = &matches[0];
    assert_eq!(top["title"], "Enchanted Valley, The", "{top}");
    assert_eq!(top["collection"], "ryans", "{top}");
    assert!(top["score"].as_f64().expect("score") > 0.9999, "{top}");
    let sources = top["sources"].as_array().expect("sources");
    assert!(
        sources.iter().any(|s| s["path"] == oneills.as_str()
            && s["tune"] == 0
            && s["collection"] == "oneills"),
        "{top}"
    );
    // In text, the family's sources follow the match.
    let text = run(&["similar", &at, "-k", "10", "--model", &model, "--db", &db]);
    assert!(text.ok, "{}", text.stderr);
    assert!(
        text.stdout
            .contains("also The Enchanted Valley (tune 1) in"),
        "{}",
        text.stdout
    );
}

#[test]
fn filters_keep_only_what_they_name_and_still_fill_k() {
    let tmp = TempDir::new("filter");
    let (model, db, oneills) = two_collections(&tmp);
    let at = format!("{oneills}:12:1");
    let second = oneills.replace("0001-0050", "0051-0100");
    let meter_of = meters(&[&oneills, &second]);
    let run_with = |extra: &[&str]| {
        let mut args = vec![
            "similar", &at, "--json", "-k", "10", "--model", &model, "--db", &db,
        ];
        args.extend(extra);
        json(&run(&args))
    };
    // The query is in 2/4; ask for 6/8 tunes only.
    let answer = run_with(&["--meter", "6/8"]);
    let matches = answer["matches"].as_array().expect("matches");
    assert_eq!(matches.len(), 10, "{answer}");
    for m in matches {
        assert_eq!(
            meter_of.get(&place_of(m)).map(String::as_str),
            Some("6/8"),
            "{m}"
        );
    }
    // Only the other collection: the copy alone.
    let answer = run_with(&["--collection", "ryans", "--group", "none"]);
    let matches = answer["matches"].as_array().expect("matches");
    assert!(!matches.is_empty(), "{answer}");
    assert!(
        matches.iter().all(|m| m["collection"] == "ryans"),
        "{answer}"
    );
    // Passages that start their tune.
    let answer = run_with(&["--position", "start"]);
    for m in answer["matches"].as_array().expect("matches") {
        assert_eq!(m["bars"][0], 1, "{m}");
    }
    // Minor tunes in G (the query's key) only; a key that is no key is an error.
    let answer = run_with(&["--key", "G minor"]);
    assert!(!answer["matches"].as_array().expect("matches").is_empty());
    let out = run(&[
        "search", "a jig", "--key", "blue", "--model", &model, "--db", &db,
    ]);
    assert!(
        !out.ok && out.stderr.contains("no key or mode"),
        "{}",
        out.stderr
    );
    // Search takes the same filters.
    let out = run(&[
        "search", "a jig", "--json", "--meter", "6/8", "--model", &model, "--db", &db,
    ]);
    let answer = json(&out);
    let matches = answer["matches"].as_array().expect("matches");
    assert_eq!(matches.len(), 10, "{answer}");
    for m in matches {
        assert_eq!(
            meter_of.get(&place_of(m)).map(String::as_str),
            Some("6/8"),
            "{m}"
        );
    }
}
