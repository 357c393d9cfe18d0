//! `tunelens index` end to end: a run killed with SIGKILL and run again ends with the same
//! database as a run never interrupted; bad paths are clear errors.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use common::{music21_abc_dir, run, shared_fixture, TempDir};
use tunelens_index::{Store, UnitRecord};

fn index_cmd(db: &Path, corpus: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tunelens"));
    cmd.args(["index", "--json", "--batch", "32", "--model"])
        .arg(shared_fixture("clamp-tiny-bert"))
        .arg("--db")
        .arg(db)
        .arg(corpus);
    cmd
}

/// Every unit of every file with its vector, keyed by file path and unit position.
fn contents(db: &Path) -> BTreeMap<(String, usize), (UnitRecord, Vec<f32>)> {
    let store = Store::open(db, false).expect("open");
    let mut out = BTreeMap::new();
    for file in store.files("workspace").expect("files") {
        for (i, unit) in file.units.iter().enumerate() {
            let vector = store
                .vector(&file.model, &unit.key)
                .expect("read")
                .unwrap_or_else(|| panic!("{}: unit {i} has no vector", file.path));
            out.insert((file.path.clone(), i), (unit.clone(), vector));
        }
    }
    out
}

#[test]
fn a_killed_run_resumes_to_the_same_database() {
    let tmp = TempDir::new("kill");
    let corpus = tmp.path().join("corpus");
    std::fs::create_dir(&corpus).expect("mkdir");
    let source = music21_abc_dir().join("oneills1850");
    for name in [
        "0001-0050.abc",
        "0051-0100.abc",
        "0101-0200.abc",
        "0201-0300.abc",
    ] {
        std::fs::copy(source.join(name), corpus.join(name)).expect("copy");
    }

    let whole = tmp.path().join("whole.sled");
    let started = std::time::Instant::now();
    let out = index_cmd(&whole, &corpus).output().expect("runs");
    let took = started.elapsed();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let killed = tmp.path().join("killed.sled");
    let mut child = index_cmd(&killed, &corpus).spawn().expect("starts");
    // Half the time a whole run takes on this machine: some batches in, well short of the end
    // (checked below).
    std::thread::sleep(took / 2);
    child.kill().expect("SIGKILL");
    let _ = child.wait();
    {
        let store = Store::open(&killed, false).expect("a killed run leaves a readable database");
        let recorded = store.files("workspace").expect("files").len();
        assert!(
            recorded < 4,
            "the run finished before the kill ({recorded} files): the test proves nothing"
        );
    }
    let out = index_cmd(&killed, &corpus).output().expect("runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (a, b) = (contents(&whole), contents(&killed));
    assert_eq!(a.len(), b.len());
    for ((key, (unit_a, vec_a)), (unit_b, vec_b)) in a.iter().zip(b.values()) {
        assert_eq!(unit_a, unit_b, "{key:?}");
        // Batches are cut differently after a kill; f32 sums may differ in the last bits.
        let diff = vec_a
            .iter()
            .zip(vec_b)
            .map(|(x, y)| (x - y).abs())
            .fold(0f32, f32::max);
        assert!(diff < 1e-5, "{key:?}: vectors differ by {diff}");
    }
}

#[test]
fn bad_paths_and_models_are_clear_errors() {
    let tmp = TempDir::new("index-bad");
    let model = shared_fixture("clamp-tiny-bert").display().to_string();
    let db = tmp.path().join("db").display().to_string();
    let missing = tmp.path().join("nope").display().to_string();
    let out = run(&["index", "--model", &model, "--db", &db, &missing]);
    assert!(!out.ok && out.stderr.contains(&missing), "{}", out.stderr);
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let out = run(&[
        "index",
        "--model",
        &model,
        "--db",
        &db,
        empty.to_str().expect("path"),
    ]);
    assert!(
        !out.ok && out.stderr.contains("no .abc or MusicXML files"),
        "{}",
        out.stderr
    );
    let abc = tmp.path().join("t.abc");
    std::fs::write(&abc, "X:1\nK:C\nab|\n").expect("write");
    // Without --model the committed default model indexes.
    let out = run(&["index", "--db", &db, abc.to_str().expect("path")]);
    assert!(out.ok, "{}", out.stderr);
}

#[test]
fn corpus_add_music21_indexes_a_collection_with_its_name() {
    let tmp = TempDir::new("corpus-add");
    let data = tmp.path().join("data");
    let wheels = data.join("wheels");
    std::fs::create_dir_all(&wheels).expect("mkdir");
    // The wheel scripts/setup.sh fetched; with it in place no download is needed.
    let wheel = "music21-10.5.1-py3-none-any.whl";
    let fetched = common::repo_root().join(".data/wheels").join(wheel);
    assert!(
        fetched.exists(),
        "{} is missing: run scripts/fetch-music21.sh",
        fetched.display()
    );
    std::fs::copy(&fetched, wheels.join(wheel)).expect("copy");
    let model = shared_fixture("clamp-tiny-bert").display().to_string();
    let db = tmp.path().join("db").display().to_string();
    let data_arg = data.display().to_string();
    let add = [
        "corpus",
        "add",
        "music21",
        "--collections",
        "airdsAirs",
        "--json",
    ];
    let mut args = add.to_vec();
    args.extend(["--data-dir", &data_arg, "--model", &model, "--db", &db]);
    let out = run(&args);
    assert!(out.ok, "{}", out.stderr);
    let list = run(&["corpus", "list", "--json", "--db", &db]);
    let list: serde_json::Value = serde_json::from_str(list.stdout.trim()).expect("json");
    let corpus = &list["corpora"][0];
    assert_eq!(corpus["name"], "music21");
    assert_eq!(corpus["collections"], serde_json::json!(["airdsAirs"]));
    assert!(corpus["tunes"].as_u64().expect("tunes") > 500, "{corpus}");
    let store = Store::open(Path::new(&db), false).expect("open");
    let file = &store.files("music21").expect("files")[0];
    assert!(
        file.tunes[0].fields.iter().any(|(k, _)| *k == 'T'),
        "header fields kept"
    );
    // A second run embeds nothing.
    drop(store);
    let out = run(&args);
    let report: serde_json::Value = serde_json::from_str(out.stdout.trim()).expect("json");
    assert_eq!(report["progress"]["embedded"], 0);
}

/// A folder of the user's as a corpus: added under a name, listed with its tunes, windows,
/// model and size, updated in place when added again, and removed.
#[test]
fn a_folder_is_added_listed_updated_and_removed_as_a_corpus() {
    let tmp = TempDir::new("corpus-folder");
    let folder = tmp.path().join("my sessions");
    std::fs::create_dir(&folder).expect("mkdir");
    let tune = |t: &str, notes: &str| format!("X:1\nT:{t}\nM:6/8\nL:1/8\nK:G\n{notes}\n");
    std::fs::write(
        folder.join("a.abc"),
        tune("A", "GAB c2d|e2f g3|gfe dcB|AGF G3|"),
    )
    .expect("w");
    std::fs::write(
        folder.join("b.abc"),
        tune("B", "DED DEF|GFG AGA|BAG FED|EDC D3|"),
    )
    .expect("w");
    let model = shared_fixture("clamp-tiny-bert").display().to_string();
    let db = tmp.path().join("db").display().to_string();
    let folder_arg = folder.display().to_string();
    let add = |extra: &[&str]| {
        let mut args = vec!["corpus", "add", &folder_arg, "--model", &model, "--db", &db];
        args.extend(extra);
        run(&args)
    };
    let list = || -> serde_json::Value {
        let out = run(&["corpus", "list", "--json", "--db", &db]);
        assert!(out.ok, "{}", out.stderr);
        serde_json::from_str(out.stdout.trim()).expect("json")
    };
    let out = add(&["--name", "mine", "--json"]);
    assert!(out.ok, "{}", out.stderr);
    let l = list();
    let c = &l["corpora"][0];
    assert_eq!(c["name"], "mine", "{l}");
    assert_eq!(
        (c["files"].as_u64(), c["tunes"].as_u64()),
        (Some(2), Some(2))
    );
    // Two 4-bar tunes, 4-bar windows: one window each.
    assert_eq!(c["windows"], 2, "{c}");
    assert_eq!(c["models"].as_array().map(Vec::len), Some(1), "{c}");
    assert!(c["size_bytes"].as_u64() > Some(0), "{c}");

    // Added again after a file went and another came: updated in place, not duplicated.
    std::fs::remove_file(folder.join("b.abc")).expect("rm");
    std::fs::write(
        folder.join("c.abc"),
        tune("C", "BAG FED|GAB c2d|e2f g3|AGF G3|"),
    )
    .expect("w");
    let out = add(&["--name", "mine", "--json"]);
    assert!(out.ok, "{}", out.stderr);
    let l = list();
    assert_eq!(l["corpora"].as_array().map(Vec::len), Some(1), "{l}");
    assert_eq!(l["corpora"][0]["files"], 2, "{l}");
    let store = Store::open(Path::new(&db), false).expect("open");
    let paths = store.paths("mine").expect("paths");
    assert!(paths.iter().any(|p| p.ends_with("c.abc")), "{paths:?}");
    assert!(!paths.iter().any(|p| p.ends_with("b.abc")), "{paths:?}");
    drop(store);

    let out = run(&["corpus", "remove", "nope", "--db", &db]);
    assert!(!out.ok && out.stderr.contains("no corpus \"nope\"") && out.stderr.contains("mine"));
    let out = run(&["corpus", "remove", "mine", "--db", &db]);
    assert!(out.ok, "{}", out.stderr);
    assert_eq!(list()["corpora"], serde_json::json!([]));
    // A path that is neither a folder nor a known corpus.
    let out = add(&[]);
    assert!(
        out.ok,
        "the folder still indexes under its own name: {}",
        out.stderr
    );
    let out = run(&["corpus", "add", "nowhere", "--model", &model, "--db", &db]);
    assert!(
        !out.ok && out.stderr.contains("neither a known corpus"),
        "{}",
        out.stderr
    );
}

/// The Session as a reference corpus, from a sample in its dump's exact format (made-up
/// tunes): every setting indexed; a passage of one setting finds the tune's other settings
/// first, grouped as one tune, each with its thesession.org page; adding the dump again
/// embeds nothing; a broken dump names its line.
#[test]
fn the_session_sample_is_indexed_by_setting_and_finds_the_other_settings_first() {
    let tmp = TempDir::new("thesession");
    let sample = common::repo_root().join("tests/data/thesession-sample.csv");
    let model = shared_fixture("clamp-tiny-bert").display().to_string();
    let db = tmp.path().join("db").display().to_string();
    let data = tmp.path().join("data").display().to_string();
    let sample_arg = sample.display().to_string();
    let add = [
        "corpus",
        "add",
        "thesession",
        "--from",
        &sample_arg,
        "--data-dir",
        &data,
        "--model",
        &model,
        "--db",
        &db,
        "--json",
    ];
    let out = run(&add);
    assert!(out.ok, "{}", out.stderr);
    let list = run(&["corpus", "list", "--json", "--db", &db]);
    let list: serde_json::Value = serde_json::from_str(list.stdout.trim()).expect("json");
    let c = &list["corpora"][0];
    assert_eq!(c["name"], "thesession", "{list}");
    // 4 tunes, 7 settings: a file per tune, a tune per setting.
    assert_eq!(
        (c["files"].as_u64(), c["tunes"].as_u64()),
        (Some(4), Some(7)),
        "{c}"
    );
    assert_eq!(c["collections"], serde_json::json!([]), "{c}");

    // Bars 5-8 of the first setting of "Lantern On The Pier".
    let file = tmp.path().join("data/corpora/thesession/tunes/9101.abc");
    let file = std::fs::canonicalize(file).expect("written");
    let at = format!("{}:9", file.display());
    let out = run(&[
        "similar", &at, "--model", &model, "--db", &db, "-k", "3", "--json",
    ]);
    assert!(out.ok, "{}", out.stderr);
    let answer: serde_json::Value = serde_json::from_str(out.stdout.trim()).expect("json");
    let top = &answer["matches"][0];
    assert_eq!(top["title"], "Lantern On The Pier, The", "{answer}");
    assert!(
        top["link"]
            .as_str()
            .is_some_and(|l| l.starts_with("https://thesession.org/tunes/9101#setting910")),
        "{top}"
    );
    let links: Vec<&str> = top["sources"]
        .as_array()
        .expect("the other settings, grouped")
        .iter()
        .filter_map(|s| s["link"].as_str())
        .collect();
    let mut all: Vec<&str> = links.clone();
    all.push(top["link"].as_str().expect("link"));
    all.sort();
    assert_eq!(
        all,
        [
            "https://thesession.org/tunes/9101#setting9101",
            "https://thesession.org/tunes/9101#setting9102",
            "https://thesession.org/tunes/9101#setting9103"
        ],
        "{answer}"
    );
    // The other tunes come after, one entry each.
    assert_ne!(answer["matches"][1]["title"], top["title"], "{answer}");

    // Added again: nothing new to embed.
    let out = run(&add);
    let report: serde_json::Value = serde_json::from_str(out.stdout.trim()).expect("json");
    assert_eq!(report["progress"]["embedded"], 0, "{report}");

    // A broken dump names its line.
    let broken = tmp.path().join("broken.csv");
    std::fs::write(
        &broken,
        "tune_id,setting_id,name,type,meter,mode,abc\n1,one,A,reel,4/4,Gmajor,GABc|\n",
    )
    .expect("write");
    let broken_arg = broken.display().to_string();
    let out = run(&[
        "corpus",
        "add",
        "thesession",
        "--from",
        &broken_arg,
        "--data-dir",
        &data,
        "--model",
        &model,
        "--db",
        &db,
    ]);
    assert!(
        !out.ok && out.stderr.contains("line 2") && out.stderr.contains("setting_id"),
        "{}",
        out.stderr
    );
}
