//! `tunelens store migrate --to milvus` against the real server `.ci/run` starts
//! (`TUNELENS_MILVUS_URI`): an embedded index copied to Milvus answers `similar` and `search`
//! as the embedded store does, without embedding anything again.

mod common;

use common::{index_with_tiny_model, run, TempDir};
use serde_json::Value;

const TUNES: [(&str, &str); 3] = [
    (
        "original.abc",
        "X:1\nT:Original\nM:6/8\nL:1/8\nK:G\n|:GAB c2d|e2f g3|gfe dcB|AGF G3:|\n|:Bcd e2f|g2a b3|bag fed|edc B3:|\n",
    ),
    (
        "quoting.abc",
        "X:7\nT:Borrower\nM:6/8\nL:1/8\nK:G\nDED DEF|GFG AGA|\nBcd e2f|g2a b3|bag fed|edc B3|\nFAF FAF|GBG GBG|\n",
    ),
    (
        "reel.abc",
        "X:3\nT:A Reel\nM:4/4\nL:1/8\nR:reel\nK:D\n|:d2fd Adfd|gfed cdeg|fdAF GBAG|FDEC D4:|\n",
    ),
];

fn milvus_uri() -> String {
    std::env::var("TUNELENS_MILVUS_URI").unwrap_or_else(|_| {
        panic!("TUNELENS_MILVUS_URI is not set: start a server with scripts/milvus.sh start and export TUNELENS_MILVUS_URI=$(scripts/milvus.sh uri)")
    })
}

fn json(out: &common::Output) -> Value {
    assert!(out.ok, "{}", out.stderr);
    serde_json::from_str(out.stdout.trim()).expect("one JSON object")
}

/// What a match is, apart from its score.
fn identity(m: &Value) -> (Value, Value, Value, Value) {
    (
        m["path"].clone(),
        m["tune"].clone(),
        m["bars"].clone(),
        m["start"].clone(),
    )
}

fn assert_same_matches(embedded: &Value, milvus: &Value) {
    let (a, b) = (
        embedded["matches"].as_array().expect("matches"),
        milvus["matches"].as_array().expect("matches"),
    );
    assert!(!a.is_empty(), "{embedded}");
    assert_eq!(
        a.iter().map(identity).collect::<Vec<_>>(),
        b.iter().map(identity).collect::<Vec<_>>(),
        "embedded {embedded}\nmilvus {milvus}"
    );
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (
            x["score"].as_f64().expect("score"),
            y["score"].as_f64().expect("score"),
        );
        assert!((x - y).abs() < 1e-4, "{x} vs {y}");
    }
}

#[test]
fn a_migrated_index_answers_like_the_embedded_one() {
    let uri = milvus_uri();
    let tmp = TempDir::new("migrate");
    let dir = tmp.path().join("tunes");
    std::fs::create_dir(&dir).expect("mkdir");
    for (name, text) in TUNES {
        std::fs::write(dir.join(name), text).expect("write");
    }
    let (model, db) = index_with_tiny_model(&tmp, &dir);
    // A prefix per run: tests share one server.
    let prefix = format!("migrate_{}", std::process::id());
    let flags = common::milvus_flat(&uri, &prefix);
    let milvus: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut migrate = vec!["store", "migrate", "--to", "milvus", "--db", &db, "--json"];
    migrate.extend_from_slice(&milvus[2..]);
    let report = json(&run(&migrate));
    assert_eq!(report["files_pushed"], 3, "{report}");

    let original = std::fs::canonicalize(dir.join("original.abc")).expect("canonical");
    let at = format!("{}:7:2", original.display());
    let queries: [Vec<&str>; 3] = [
        vec!["similar", &at, "--json", "-k", "5"],
        vec!["similar", &at, "--json", "-k", "5", "--group", "none"],
        vec!["search", "a reel in D", "--json", "-k", "3"],
    ];
    for query in queries {
        let mut args = query.clone();
        args.extend(["--model", &model, "--db", &db]);
        let embedded = json(&run(&args));
        args.extend_from_slice(&milvus);
        let from_milvus = json(&run(&args));
        assert_same_matches(&embedded, &from_milvus);
    }

    // A second migration finds everything there and pushes nothing.
    let again = json(&run(&migrate));
    assert_eq!(again["files_pushed"], 0, "{again}");
}

#[test]
fn eval_passages_gives_the_same_numbers_on_milvus() {
    let uri = milvus_uri();
    let tmp = TempDir::new("eval-milvus");
    let dir = tmp.path().join("tunes");
    std::fs::create_dir(&dir).expect("mkdir");
    let from = common::music21_abc_dir().join("oneills1850");
    for name in ["0001-0050.abc", "0051-0100.abc"] {
        std::fs::copy(from.join(name), dir.join(name)).expect("copy");
    }
    let model = common::shared_fixture("clamp-tiny-bert")
        .display()
        .to_string();
    let prefix = format!("eval_{}", std::process::id());
    // Hybrid: both the server's top k and its vectors of n-gram candidates. Strong
    // consistency costs ~200 ms a search, so the queries are few.
    {
        let ranker = "hybrid";
        let args = [
            "eval",
            "passages",
            "--json",
            "--tunes",
            dir.to_str().expect("path"),
            "--count",
            "25",
            "--perturb",
            "vary",
            "--ranker",
            ranker,
            "--model",
            &model,
        ];
        let embedded = json(&run(&args));
        let mut on_milvus = args.to_vec();
        let flags = common::milvus_flat(&uri, &prefix);
        on_milvus.extend(flags.iter().map(String::as_str));
        // Twice: the second run's scratch index must not see the first's rows.
        for _ in 0..2 {
            assert_eq!(json(&run(&on_milvus)), embedded, "{ranker}");
        }
    }
}
