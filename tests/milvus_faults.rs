//! The fault tests of the Milvus backend (issue 11), against the server `.ci/run` started
//! (`TUNELENS_MILVUS_URI`, managed by `scripts/milvus.sh`), killed with SIGKILL:
//!
//! - while `tunelens index` pushes rows: the job stops with a clear error, the server comes
//!   back on its own data, and a rerun completes with the same content as an uninterrupted
//!   run, embedding only what the crash cut short;
//! - under a running daemon: it keeps answering from what it has (the workspace's vectors,
//!   every corpus's n-grams) and says it is degraded, then finds the server again by itself.
//!
//! It takes the shared server down, so `.config/nextest.toml` runs the Milvus tests one at a
//! time, and a guard brings the server back if this test fails halfway.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::rpc::file_uri;
use common::socket::Daemon;
use common::{music21_abc_dir, repo_root, run, shared_fixture, Output, TempDir};
use serde_json::{json, Value};
use tunelens_index::vectors::{
    Filter, IndexKind, Milvus, MilvusConfig, MilvusVectors, RowId, VectorHit, VectorStore,
};
use tunelens_models::abc::Level;

/// Enough tunes that the crash lands between two files' pushes.
const FILES: usize = 12;

fn milvus_uri() -> String {
    std::env::var("TUNELENS_MILVUS_URI").unwrap_or_else(|_| {
        panic!("TUNELENS_MILVUS_URI is not set: start a server with scripts/milvus.sh start and export TUNELENS_MILVUS_URI=$(scripts/milvus.sh uri)")
    })
}

fn milvus_sh(command: &str) {
    let out = Command::new(repo_root().join("scripts/milvus.sh"))
        .arg(command)
        .output()
        .expect("scripts/milvus.sh runs");
    assert!(
        out.status.success(),
        "scripts/milvus.sh {command}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Restarts the server when dropped armed: a failed assertion must not leave it down for the
/// tests that follow.
struct ServerDown(bool);

impl ServerDown {
    fn kill() -> Self {
        milvus_sh("kill");
        Self(true)
    }

    fn restart(mut self) {
        self.0 = false;
        milvus_sh("restart");
    }
}

impl Drop for ServerDown {
    fn drop(&mut self) {
        if self.0 {
            milvus_sh("restart");
        }
    }
}

/// A server that hangs (SIGSTOP: its sockets open, nothing answers); resumed when dropped, so
/// a failed assertion does not leave it hung for the tests that follow.
struct ServerHung;

impl ServerHung {
    fn pause() -> Self {
        milvus_sh("pause");
        Self
    }
}

impl Drop for ServerHung {
    fn drop(&mut self) {
        milvus_sh("resume");
    }
}

fn connect(uri: &str, prefix: &str) -> Milvus {
    Milvus::connect(MilvusConfig {
        uri: uri.to_owned(),
        index: IndexKind::Flat,
        prefix: prefix.to_owned(),
        ..MilvusConfig::default()
    })
    .expect("the Milvus server answers")
}

fn collection(milvus: &Milvus, model: &str) -> Option<MilvusVectors> {
    milvus.find(model).expect("list collections")
}

fn index_args<'a>(model: &'a str, db: &'a str, dir: &'a str, milvus: &'a [String]) -> Vec<&'a str> {
    let mut args = vec!["index", "--model", model, "--db", db, "--json", dir];
    args.extend(milvus.iter().map(String::as_str));
    args
}

fn report(out: &Output) -> Value {
    assert!(out.ok, "{}", out.stderr);
    serde_json::from_str(out.stdout.trim()).expect("one JSON report")
}

fn copy_corpus(to: &Path) {
    let from = music21_abc_dir().join("oneills1850");
    let mut names: Vec<_> = std::fs::read_dir(&from)
        .expect("read O'Neill's")
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    names.sort();
    std::fs::create_dir(to).expect("mkdir");
    for name in names.iter().take(FILES) {
        std::fs::copy(from.join(name), to.join(name)).expect("copy");
    }
}

/// Seeded query vectors.
fn queries(n: usize, dim: usize) -> Vec<Vec<f32>> {
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|_| {
            (0..dim)
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
                })
                .collect()
        })
        .collect()
}

#[test]
fn a_crash_mid_index_resumes_to_the_content_of_an_uninterrupted_run() {
    let uri = milvus_uri();
    let tmp = TempDir::new("milvus-fault");
    let dir = tmp.path().join("tunes");
    copy_corpus(&dir);
    let dir = dir.display().to_string();
    let model = shared_fixture("clamp-tiny-bert").display().to_string();
    let store = |prefix: &str| common::milvus_flat(&uri, prefix);
    // A prefix per run: tests share one server.
    let (whole, crashed) = (
        format!("fault_whole_{}", std::process::id()),
        format!("fault_crash_{}", std::process::id()),
    );

    // The uninterrupted run.
    let db_whole = tmp.path().join("whole").display().to_string();
    let store_whole = store(&whole);
    let full = report(&run(&index_args(&model, &db_whole, &dir, &store_whole)));
    assert_eq!(full["files_indexed"], FILES, "{full}");
    let status = report(&run(&["store", "status", "--db", &db_whole, "--json"]));
    let model_id = status["models"][0]["model"]
        .as_str()
        .expect("one model")
        .to_owned();

    // The same job, with the server killed once it has pushed its first rows.
    let db_crash = tmp.path().join("crash").display().to_string();
    let store_crash = store(&crashed);
    let stderr_path = tmp.path().join("index.stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tunelens"))
        .args(index_args(&model, &db_crash, &dir, &store_crash))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_path).expect("stderr file"))
        .spawn()
        .expect("start tunelens index");
    {
        let milvus = connect(&uri, &crashed);
        let started = Instant::now();
        loop {
            // The job may be between creating the collection and its index: an error here
            // means "not yet".
            let rows = milvus
                .find(&model_id)
                .ok()
                .flatten()
                .and_then(|c| c.count(&Filter::default()).ok())
                .unwrap_or(0);
            if rows > 0 {
                break;
            }
            assert!(
                child.try_wait().expect("poll index").is_none(),
                "index finished before any row reached Milvus: the corpus is too small to crash it midway"
            );
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "no row after 2 min"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let down = ServerDown::kill();
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("poll index") {
            break exit;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "index still running 2 min after the server died"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    assert!(
        !exit.success(),
        "index succeeded with the server dead: {stderr}"
    );
    assert!(
        stderr.contains("unreachable or restarting"),
        "not a clear 'server down' error: {stderr}"
    );
    down.restart();

    // The rerun completes, re-embedding only what the crash cut short.
    let rerun = report(&run(&index_args(&model, &db_crash, &dir, &store_crash)));
    assert_eq!(
        rerun["files_indexed"].as_u64().unwrap_or(0)
            + rerun["files_unchanged"].as_u64().unwrap_or(0),
        FILES as u64,
        "{rerun}"
    );
    assert!(
        rerun["progress"]["embedded"].as_u64() < full["progress"]["embedded"].as_u64(),
        "the rerun embedded everything again: {rerun} vs {full}"
    );

    // Same content: the same rows at each level, and the same exact top-20s.
    let (a, b) = (connect(&uri, &whole), connect(&uri, &crashed));
    let (a, b) = (
        collection(&a, &model_id).expect("the uninterrupted run's collection"),
        collection(&b, &model_id).expect("the resumed run's collection"),
    );
    for level in [None, Some(Level::Passage), Some(Level::Tune)] {
        let filter = Filter {
            level,
            ..Filter::default()
        };
        assert_eq!(
            a.count(&filter).expect("count"),
            b.count(&filter).expect("count"),
            "{level:?}"
        );
    }
    for q in queries(20, a.dim()) {
        let hits = |c: &MilvusVectors| {
            c.top_k(&q, 20, &Filter::default(), &|_| true)
                .expect("top_k")
        };
        let (x, y) = (hits(&a), hits(&b));
        assert_eq!(x.len(), y.len());
        for (h, g) in x.iter().zip(&y) {
            assert!(
                (h.score - g.score).abs() < 1e-5,
                "{} vs {}",
                h.score,
                g.score
            );
        }
        // Repeated passages have equal vectors, and ties may come in any order: compare ids
        // as sets, without the last score's ties.
        let last = x.last().map_or(f32::MIN, |h| h.score) + 1e-5;
        let above = |hits: &[VectorHit]| -> BTreeSet<RowId> {
            hits.iter()
                .filter(|h| h.score > last)
                .map(|h| h.id)
                .collect()
        };
        assert_eq!(above(&x), above(&y));
    }
    for m in [&whole, &crashed] {
        let milvus = connect(&uri, m);
        let _ = milvus.drop_collection(&model_id, a.dim());
    }
}

const ORIGINAL: &str = "X:1\nT:Original\nM:6/8\nL:1/8\nK:G\n|:GAB c2d|e2f g3|gfe dcB|AGF G3:|\n|:Bcd e2f|g2a b3|bag fed|edc B3:|\n";
/// Bars 5-8 of the original as its bars 3-6, between music of its own.
const QUOTING: &str = "X:7\nT:Borrower\nM:6/8\nL:1/8\nK:G\nDED DEF|GFG AGA|\nBcd e2f|g2a b3|bag fed|edc B3|\nFAF FAF|GBG GBG|\n";
const OTHER: &str = "X:2\nT:Draft\nM:6/8\nL:1/8\nK:G\nDED DEF|GFG AGA|\nBAG FGA|BGE E3|\n";

/// The reference tunes whose matches a query at `quoting.abc` line 6 finds.
fn reference_matches(similar: &Value, reference: &Path) -> Vec<Value> {
    let prefix = file_uri(reference);
    similar["matches"]
        .as_array()
        .map(|ms| {
            ms.iter()
                .filter(|m| m["uri"].as_str().is_some_and(|u| u.starts_with(&prefix)))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn a_daemon_on_milvus_answers_while_the_server_is_down_and_finds_it_again() {
    let uri = milvus_uri();
    let tmp = TempDir::new("milvus-daemon");
    let reference = tmp.path().join("reference");
    std::fs::create_dir(&reference).expect("mkdir");
    std::fs::write(reference.join("original.abc"), ORIGINAL).expect("write");
    let reference = std::fs::canonicalize(&reference).expect("canonical");
    let ws = tmp.path().join("ws");
    std::fs::create_dir(&ws).expect("mkdir");
    std::fs::write(ws.join("quoting.abc"), QUOTING).expect("write");
    std::fs::write(ws.join("draft.abc"), OTHER).expect("write");
    let ws = std::fs::canonicalize(&ws).expect("canonical");
    let model = shared_fixture("clamp-tiny-bert").display().to_string();
    let db = tmp.path().join("db");
    let prefix = format!("daemon_{}", std::process::id());
    let mut flags = common::milvus_flat(&uri, &prefix);
    flags.extend(["--milvus-timeout".into(), "2".into()]);
    let store: Vec<&str> = flags.iter().map(String::as_str).collect();
    // The team's reference corpus, indexed into Milvus (its records stay in the local db).
    let mut args = vec![
        "index",
        "--model",
        &model,
        "--db",
        db.to_str().expect("path"),
        "--corpus",
        "reference",
    ];
    args.extend_from_slice(&store);
    let reference_arg = reference.display().to_string();
    args.push(&reference_arg);
    let out = run(&args);
    assert!(out.ok, "{}", out.stderr);

    let daemon = Daemon::start_with(tmp.path(), &db, &ws, "milvus", &store);
    let status = daemon.wait_indexed();
    assert_eq!(
        status["store"],
        json!({"kind": "milvus", "uri": uri, "healthy": true}),
        "{status}"
    );
    let mut c = daemon.connect();
    let quoting = ws.join("quoting.abc");
    let similar = |c: &mut common::socket::SocketClient| {
        c.request(
            "tunelens/similar",
            json!({"textDocument": {"uri": file_uri(&quoting)},
                   "position": {"line": 6, "character": 3}, "k": 10}),
        )
    };
    let up = similar(&mut c);
    let found = reference_matches(&up, &reference);
    assert!(!found.is_empty(), "no reference match: {up}");
    assert!(found[0]["vectorScore"].as_f64() > Some(0.0), "{up}");

    // Down: the daemon answers from what it has, and says so.
    let down = ServerDown::kill();
    let answer = c.request_raw(
        "tunelens/similar",
        json!({"textDocument": {"uri": file_uri(&quoting)},
               "position": {"line": 6, "character": 3}, "k": 10}),
    );
    assert!(answer.get("error").is_none(), "{answer}");
    let answer = &answer["result"];
    // The n-gram index is local: the quotation is still found, without its vector part.
    for m in reference_matches(answer, &reference) {
        assert_eq!(m["vectorScore"], json!(0.0), "{answer}");
    }
    assert!(
        answer["matches"]
            .as_array()
            .is_some_and(|ms| ms.iter().any(|m| m["corpus"] == "workspace")),
        "the workspace's own vectors answer: {answer}"
    );
    let status = c.request("tunelens/status", json!({}));
    assert_eq!(status["store"]["healthy"], json!(false), "{status}");
    assert!(
        status["store"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("unreachable")),
        "{status}"
    );
    let hover = c.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": file_uri(&quoting)}, "position": {"line": 6, "character": 3}}),
    );
    assert!(
        hover
            .to_string()
            .contains("is unreachable: workspace matches only"),
        "{hover}"
    );

    // Back: the daemon finds the server by itself.
    down.restart();
    wait_healthy(&mut c, Duration::from_secs(60));
    let again = similar(&mut c);
    let found = reference_matches(&again, &reference);
    assert!(!found.is_empty(), "{again}");
    assert!(found[0]["vectorScore"].as_f64() > Some(0.0), "{again}");

    // Hung: the first query after the server stops answering waits one search deadline (1 s,
    // under the 2 s timeout given), not the client's retries and RPC timeout, and says so.
    let hung = ServerHung::pause();
    let started = Instant::now();
    let answer = c.request_raw(
        "tunelens/similar",
        json!({"textDocument": {"uri": file_uri(&quoting)},
               "position": {"line": 6, "character": 3}, "k": 10}),
    );
    let took = started.elapsed();
    assert!(answer.get("error").is_none(), "{answer}");
    assert!(
        took < Duration::from_millis(1900),
        "the first query waited {took:?}"
    );
    let status = c.request("tunelens/status", json!({}));
    assert_eq!(status["store"]["healthy"], json!(false), "{status}");
    drop(hung);
    wait_healthy(&mut c, Duration::from_secs(90));
    daemon.kill();
    let milvus = connect(&uri, &prefix);
    if let Some(c) = collection(&milvus, status_model(&db).as_str()) {
        let _ = milvus.drop_collection(status_model(&db).as_str(), c.dim());
    }
}

/// Polls `tunelens/status` until the daemon finds the server again, for at most `within`.
fn wait_healthy(c: &mut common::socket::SocketClient, within: Duration) {
    let started = Instant::now();
    loop {
        let status = c.request("tunelens/status", json!({}));
        if status["store"]["healthy"] == json!(true) {
            return;
        }
        assert!(
            started.elapsed() < within,
            "still degraded {within:?} after the server answered again: {status}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn status_model(db: &Path) -> String {
    let status = report(&run(&[
        "store",
        "status",
        "--db",
        db.to_str().expect("path"),
        "--json",
    ]));
    status["models"][0]["model"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}
