//! MusicXML end to end: Bach chorales (`.mxl`, from the music21 wheel) are indexed like ABC,
//! `similar chorale.mxl:12` means measure 12 and finds passages of the other chorales by
//! their measures, and broken MusicXML is a one-line error naming the file.

mod common;

use std::path::PathBuf;

use common::{index_with_tiny_model, repo_root, run, TempDir};
use serde_json::Value;

const CHORALES: [&str; 3] = ["bwv1.6.mxl", "bwv10.7.mxl", "bwv101.7.mxl"];

fn chorale(name: &str) -> PathBuf {
    let path = repo_root()
        .join(".data/music21/music21/corpus/bach")
        .join(name);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/fetch-music21.sh (scripts/test.sh does)",
        path.display()
    );
    path
}

#[test]
fn similar_at_a_measure_of_a_chorale_finds_measures_of_the_others() {
    let tmp = TempDir::new("musicxml");
    let dir = tmp.path().join("chorales");
    std::fs::create_dir(&dir).expect("mkdir");
    for name in CHORALES {
        std::fs::copy(chorale(name), dir.join(name)).expect("copy");
    }
    let (model, db) = index_with_tiny_model(&tmp, &dir);

    let query = std::fs::canonicalize(dir.join(CHORALES[0])).expect("canonical");
    let at = format!("{}:12", query.display());
    let out = run(&[
        "similar", &at, "--json", "-k", "40", "--group", "none", "--model", &model, "--db", &db,
    ]);
    assert!(out.ok, "{}", out.stderr);
    let answer: Value = serde_json::from_str(out.stdout.trim()).expect("one JSON object");
    let where_ = answer["query"]["measure"]
        .as_str()
        .expect("the query's measure");
    assert!(
        where_.starts_with("part 1") && where_.ends_with("measure 12"),
        "{where_}"
    );
    let matches = answer["matches"].as_array().expect("matches");
    // The tiny fixture model is random, so the query's own chorale fills the first places;
    // other chorales must still appear among the top 40 passages (ungrouped: there are only
    // three tunes).
    assert_eq!(matches.len(), 40);
    let mut others = 0;
    for m in matches {
        let path = m["path"].as_str().expect("path");
        assert!(path.ends_with(".mxl"), "{m}");
        let [first, last] = [&m["measures"][0], &m["measures"][1]];
        assert!(
            first["part"].as_u64().is_some() && first["measure"].is_string(),
            "{m}"
        );
        assert_eq!(first["part"], last["part"], "{m}");
        if !path.ends_with(CHORALES[0]) {
            others += 1;
        }
    }
    assert!(others > 0, "no passage from another chorale: {matches:?}");

    // As text: measure places, not line:col of the converted ABC.
    let out = run(&["similar", &at, "-k", "3", "--model", &model, "--db", &db]);
    assert!(out.ok, "{}", out.stderr);
    let first = out.stdout.lines().next().expect("a line");
    assert!(
        first.contains(".mxl: part ") && first.contains(", measures "),
        "{first}"
    );

    // A measure the chorale does not have is a clear error.
    let out = run(&[
        "similar",
        &format!("{}:999", query.display()),
        "--model",
        &model,
        "--db",
        &db,
    ]);
    assert!(!out.ok);
    assert!(out.stderr.contains("has no measure 999"), "{}", out.stderr);
}

#[test]
fn broken_musicxml_is_an_error_naming_the_file() {
    let tmp = TempDir::new("musicxml-bad");
    let bad_xml = tmp.path().join("bad.musicxml");
    std::fs::write(
        &bad_xml,
        "<score-partwise><part id=\"P1\"><measure>\n</part>",
    )
    .expect("write");
    let out = run(&["patches", bad_xml.to_str().expect("path")]);
    assert!(!out.ok);
    assert!(
        out.stderr.contains("bad.musicxml:2:") && out.stderr.contains("malformed XML"),
        "{}",
        out.stderr
    );

    // A zip that is not a MusicXML archive: no META-INF/container.xml.
    let bad_mxl = tmp.path().join("bad.mxl");
    let mut zip = b"PK\x05\x06".to_vec();
    zip.extend([0u8; 18]);
    std::fs::write(&bad_mxl, &zip).expect("write");
    let out = run(&["patches", bad_mxl.to_str().expect("path")]);
    assert!(!out.ok);
    assert!(out.stderr.contains("bad.mxl"), "{}", out.stderr);
}

#[test]
fn patches_reads_a_chorale() {
    let out = run(&[
        "patches",
        "--json",
        chorale(CHORALES[0]).to_str().expect("path"),
    ]);
    assert!(out.ok, "{}", out.stderr);
    let v: Value = serde_json::from_str(out.stdout.lines().next().expect("a line")).expect("json");
    let bars = v["tunes"][0]["bars"].as_array().expect("bars");
    assert!(bars.len() >= 4 * 10, "{} bars", bars.len());
}
