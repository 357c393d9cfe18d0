//! What the end-to-end tests share: running the binary, temporary folders, and the data that
//! setup brings (which must be there: a missing file fails the test with the command to fix it).

#![allow(dead_code)]

pub mod rpc;
pub mod socket;

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Output {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the `tunelens` binary built for these tests.
pub fn run(args: &[&str]) -> Output {
    output(Command::new(env!("CARGO_BIN_EXE_tunelens")).args(args))
}

/// Runs `command` to the end and keeps what it printed.
pub fn output(command: &mut Command) -> Output {
    let out = command.output().expect("the tunelens binary runs");
    Output {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file under `../shared/fixtures`, which CI lays beside the repository.
pub fn shared_fixture(rel: &str) -> PathBuf {
    let path = repo_root().join("../shared/fixtures").join(rel);
    assert!(
        path.exists(),
        "{} is missing: the shared fixtures must sit beside the repository",
        path.display()
    );
    path
}

/// Indexes folder `dir` with the tiny fixture model into `tmp/db`, asserting it succeeds;
/// returns the model's and the database's paths, for the queries that follow.
pub fn index_with_tiny_model(tmp: &TempDir, dir: &Path) -> (String, String) {
    let model = shared_fixture("clamp-tiny-bert").display().to_string();
    let db = tmp.path().join("db").display().to_string();
    let out = run(&[
        "index",
        "--model",
        &model,
        "--db",
        &db,
        dir.to_str().expect("path"),
    ]);
    assert!(out.ok, "{}", out.stderr);
    (model, db)
}

/// The flags that put a command on the test Milvus server at `uri`, in collections named
/// after `prefix` (tests share one server), with an exact (FLAT) index.
pub fn milvus_flat(uri: &str, prefix: &str) -> Vec<String> {
    [
        "--store",
        "milvus",
        "--milvus-uri",
        uri,
        "--milvus-prefix",
        prefix,
        "--milvus-index",
        "flat",
    ]
    .map(String::from)
    .to_vec()
}

/// The music21 ABC collections that `scripts/fetch-music21.sh` extracts.
pub fn music21_abc_dir() -> PathBuf {
    let dir = repo_root().join(".data/music21/music21/corpus");
    assert!(
        dir.join("oneills1850").is_dir(),
        "{} is missing: run scripts/fetch-music21.sh (scripts/test.sh does)",
        dir.display()
    );
    dir
}

/// A fresh folder under the system's temp dir, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "tunelens-test-{tag}-{}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The CLI's and a server's lists (`tunelens/similar` over LSP or the socket) name the same passages in the same order. The daemon keeps
/// its vectors as int8 codes (cosines within ~1e-3 of f32), so where two lists differ the
/// entries must be near ties: scored within 2e-3 of each other, and each one a neighbour in
/// the other list (or, for the last place, just past its end).
pub fn same_list(cli: &[serde_json::Value], server: &[serde_json::Value], group: &str) {
    let place = |path: String, m: &serde_json::Value| (path, m["tune"].clone(), m["bars"].clone());
    let cli_places: Vec<_> = cli
        .iter()
        .map(|m| {
            place(
                rpc::file_uri(std::path::Path::new(m["path"].as_str().expect("path"))),
                m,
            )
        })
        .collect();
    let server_places: Vec<_> = server
        .iter()
        .map(|m| place(m["uri"].as_str().expect("uri").to_owned(), m))
        .collect();
    let n = cli_places.len();
    assert_eq!(n, server_places.len(), "--group {group}");
    let score = |m: &serde_json::Value| m["score"].as_f64().expect("score");
    let near = |i: usize, theirs: &[_], place| match theirs.iter().position(|p| p == place) {
        Some(j) => i.abs_diff(j) <= 1,
        None => i + 1 == n,
    };
    for i in 0..n {
        if cli_places[i] == server_places[i] {
            continue;
        }
        let tie = (score(&cli[i]) - score(&server[i])).abs() < 2e-3
            && near(i, &server_places, &cli_places[i])
            && near(i, &cli_places, &server_places[i]);
        assert!(
            tie,
            "--group {group}: entry {i} differs:\ncli {cli_places:?}\nserver {server_places:?}"
        );
    }
}

/// `tunelens similar AT --json` on the tiny fixture model over the database `db` (as a server
/// wrote it), with `extra` flags; the answer.
pub fn similar_json(at: &str, db: &Path, extra: &[&str]) -> serde_json::Value {
    let model = shared_fixture("clamp-tiny-bert");
    let mut args = vec![
        "similar",
        at,
        "--model",
        model.to_str().expect("utf-8"),
        "--db",
        db.to_str().expect("utf-8"),
        "--device",
        "cpu",
        "--json",
    ];
    args.extend(extra);
    let out = run(&args);
    assert!(out.ok, "{}", out.stderr);
    serde_json::from_str(&out.stdout).expect("json")
}

/// The report a compare page (`similar --html`, `tunelens/compare`) writes into
/// `<pre id="tunelens-report">` once it has rendered, read by opening it in headless Chromium
/// (Debian's, as `scripts/install-editors.sh` installs it).
pub fn compare_page_report(page: &Path) -> serde_json::Value {
    let chromium = ["chromium", "chromium-browser"]
        .into_iter()
        .find(|c| {
            std::process::Command::new(c)
                .arg("--version")
                .output()
                .is_ok()
        })
        .expect("Debian's chromium is needed (scripts/install-editors.sh installs it)");
    let out = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&out.stdout);
    let start = dom
        .find("<pre id=\"tunelens-report\"")
        .and_then(|at| dom[at..].find('>').map(|gt| at + gt + 1))
        .unwrap_or_else(|| panic!("no report in the page's DOM:\n{dom:.2000}"));
    let end = start + dom[start..].find("</pre>").expect("the report ends");
    let text = dom[start..end]
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}
