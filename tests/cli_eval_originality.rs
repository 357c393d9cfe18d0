//! `tunelens eval originality` on one small collection: the command runs, its JSON carries the
//! rates over the sweep and the cases, and exact planted quotes are found at the default
//! threshold.

mod common;

use common::{music21_abc_dir, run, shared_fixture, TempDir};
use serde_json::Value;

#[test]
fn planted_quotes_and_false_alarms_are_measured() {
    let tmp = TempDir::new("eval-originality");
    let tunes = tmp.path().join("tunes");
    std::fs::create_dir(&tunes).expect("mkdir");
    // The first 50 tunes of O'Neill's 1850, one collection.
    let file = music21_abc_dir().join("oneills1850/0001-0050.abc");
    std::fs::copy(&file, tunes.join("0001-0050.abc")).expect("copy");
    let model = shared_fixture("clamp-tiny-bert").display().to_string();
    let db = tmp.path().join("db").display().to_string();
    let args = [
        "eval",
        "originality",
        "--tunes",
        tunes.to_str().expect("path"),
        "--count",
        "6",
        "--seed",
        "3",
        "--model",
        &model,
        "--db",
        &db,
        "--json",
    ];
    let out = run(&args);
    assert!(out.ok, "{}", out.stderr);
    let r: Value =
        serde_json::from_str(out.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", out.stdout));
    assert_eq!(r["held_out"], 6);
    assert_eq!(r["tunes"], 50);
    let sweep = r["sweep"].as_array().expect("sweep");
    assert_eq!(
        sweep.len(),
        22,
        "0.50 to 0.85 by 0.05, then to 0.99 by 0.01"
    );
    for row in sweep {
        for key in ["exact", "varied", "transposed"] {
            assert!(row["detection"][key].is_f64(), "{row}");
        }
        assert!(row["false_alarms"].is_f64(), "{row}");
        assert!(row["false_alarms_other_tunes"].is_f64(), "{row}");
        // Each exclusion only takes findings away.
        let [raw, titles, unrelated] = [
            "false_alarms",
            "false_alarms_other_tunes",
            "false_alarms_unrelated",
        ]
        .map(|k| row[k].as_f64().unwrap_or(f64::NAN));
        assert!(raw >= titles && titles >= unrelated, "{row}");
    }
    let cases = r["cases"].as_array().expect("cases");
    assert_eq!(cases.len(), 6);
    for c in cases {
        for key in [
            "best",
            "best_other_tunes",
            "best_unrelated",
            "exact",
            "varied",
            "transposed",
        ] {
            assert!(c[key].is_f64(), "{key} in {c}");
        }
    }
    // An exact 4-bar quote agrees note for note: the check must find it.
    let default = &r["at_default"];
    assert_eq!(default["detection"]["exact"], 1.0, "{default}");
    assert_eq!(default["detection"]["transposed"], 1.0, "{default}");

    // The index is reused from --db: a second run gives the same numbers.
    let again = run(&args);
    assert!(again.ok, "{}", again.stderr);
    let r2: Value = serde_json::from_str(again.stdout.trim()).expect("json");
    assert_eq!(r["sweep"], r2["sweep"]);
}
