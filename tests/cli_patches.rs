//! `tunelens patches` end to end: the real binary on the music21 collections, on the fixture
//! tunes, and on the bad input users have (Latin-1, binaries, empty and huge files, broken ABC).

mod common;

use std::path::Path;

use common::{music21_abc_dir, run, shared_fixture, TempDir};
use serde_json::Value;

fn patches_json(args: &[&str]) -> Vec<Value> {
    let out = run(&[&["patches", "--json"], args].concat());
    assert!(out.ok, "tunelens patches {args:?} failed:\n{}", out.stderr);
    out.stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is one JSON object"))
        .collect()
}

#[test]
fn music21_collections_patch_without_error() {
    let dir = music21_abc_dir();
    let files = patches_json(&[dir.to_str().expect("utf-8 path")]);
    let tunes: Vec<&Value> = files
        .iter()
        .flat_map(|f| f["tunes"].as_array().expect("tunes array"))
        .collect();
    assert!(tunes.len() >= 12_900, "only {} tunes", tunes.len());
    let mut bars = 0;
    for tune in &tunes {
        // The shape scripts rely on.
        assert!(tune.get("title").is_some());
        for bar in tune["bars"].as_array().expect("bars") {
            assert!(bar["text"].is_string());
            assert!(bar["start"]["line"].as_u64().expect("line") >= 1);
            assert!(bar["end"]["col"].as_u64().expect("col") >= 1);
            bars += 1;
        }
        let patches = tune["patches"].as_array().expect("patches");
        assert!(!patches.is_empty());
        for p in patches {
            assert_eq!(p["ids"].as_array().expect("ids").len(), 64);
            assert!(p["start"].as_u64() <= p["end"].as_u64());
        }
    }
    assert!(bars > 150_000, "only {bars} bars");
}

#[test]
fn fixture_tunes_give_the_reference_patches_through_the_cli() {
    let tmp = TempDir::new("fixture-cli");
    let expected: Value = serde_json::from_str(
        &std::fs::read_to_string(shared_fixture("clamp-tiny-bert/expected.json"))
            .expect("fixture readable"),
    )
    .expect("fixture JSON");
    for (i, sample) in expected["music"]
        .as_array()
        .expect("music")
        .iter()
        .enumerate()
    {
        let path = tmp.path().join(format!("sample-{i}.abc"));
        std::fs::write(&path, sample["abc"].as_str().expect("abc")).expect("write");
        let files = patches_json(&["--max-patches", "128", path.to_str().expect("path")]);
        let tunes = files[0]["tunes"].as_array().expect("tunes");
        assert_eq!(tunes.len(), 1, "sample {i}");
        let ids: Vec<&Value> = tunes[0]["patches"]
            .as_array()
            .expect("patches")
            .iter()
            .map(|p| &p["ids"])
            .collect();
        let want: Vec<&Value> = sample["patches"]
            .as_array()
            .expect("patches")
            .iter()
            .collect();
        assert_eq!(ids, want, "sample {i}");
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    path.to_str().expect("path").to_owned()
}

#[test]
fn latin1_is_read_with_a_warning_naming_file_and_line() {
    let tmp = TempDir::new("latin1");
    let path = write(tmp.path(), "old.abc", b"X:1\nT:Caf\xe9\nK:G\nab|\n");
    let out = run(&["patches", "--json", &path]);
    assert!(out.ok, "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("{path}:2:1: warning: not valid UTF-8")),
        "{}",
        out.stderr
    );
    let file: Value = serde_json::from_str(out.stdout.trim()).expect("json");
    assert_eq!(file["encoding"], "latin1");
    assert_eq!(file["tunes"][0]["title"], "Café");
}

#[test]
fn binary_empty_huge_and_missing_files_are_clear_errors() {
    let tmp = TempDir::new("bad");
    let cases = [
        (
            write(tmp.path(), "bin.abc", b"X:1\nK:C\n\x00\x01\x02"),
            ":3: NUL byte",
        ),
        (write(tmp.path(), "empty.abc", b""), ": file is empty"),
        (
            write(tmp.path(), "big.abc", &[b'a'; 100]),
            "over the limit of 50 bytes",
        ),
        (
            tmp.path().join("missing.abc").display().to_string(),
            "No such file",
        ),
    ];
    for (path, message) in cases {
        let out = run(&["patches", "--max-bytes", "50", &path]);
        assert!(!out.ok, "{path}: should fail");
        assert!(
            out.stderr.contains(&path),
            "{path}: error must name the file: {}",
            out.stderr
        );
        assert!(out.stderr.contains(message), "{path}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "one line: {}", out.stderr);
    }
}

#[test]
fn broken_abc_warns_with_line_and_column_and_still_patches() {
    let tmp = TempDir::new("broken");
    let path = write(
        tmp.path(),
        "broken.abc",
        b"X:1\nK:C\nab|\"Am cd|\n[CE ef|\n{g a|]\n",
    );
    let out = run(&["patches", &path]);
    assert!(out.ok, "{}", out.stderr);
    for at in [
        ":3:4: warning: unclosed quote",
        ":4:1: warning: unclosed chord",
        ":5:1: warning: unclosed grace",
    ] {
        assert!(
            out.stderr.contains(&format!("{path}{at}")),
            "{at}: {}",
            out.stderr
        );
    }
    assert!(out.stdout.contains("ab|"));
}

#[test]
fn an_empty_folder_is_an_error() {
    let tmp = TempDir::new("empty-dir");
    let out = run(&["patches", tmp.path().to_str().expect("path")]);
    assert!(!out.ok);
    assert!(
        out.stderr.contains("no .abc or MusicXML files"),
        "{}",
        out.stderr
    );
}
