//! `tunelens daemon` driven as a script drives it, over its Unix socket: the handshake, the
//! analysis of files on disk (similar, hover, code lens, classify, search, status), edits,
//! renames and deletions picked up by the watcher; bad messages, huge messages, clients that
//! hang up mid-request and 50 concurrent clients; SIGKILL while indexing, then a restart; and
//! `tunelens similar` listing what the socket lists for the same passage.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use common::rpc::file_uri;
use common::socket::{Daemon, SocketClient};
use common::{compare_page_report, music21_abc_dir, run, TempDir};
use serde_json::{json, Value};

const ORIGINAL: &str = "X:1\nT:Original\nM:6/8\nL:1/8\nK:G\n|:GAB c2d|e2f g3|gfe dcB|AGF G3:|\n|:Bcd e2f|g2a b3|bag fed|edc B3:|\n";
/// Bars 5-8 of the original as its bars 3-6, between music of its own.
const QUOTING: &str = "X:7\nT:Borrower\nM:6/8\nL:1/8\nK:G\nDED DEF|GFG AGA|\nBcd e2f|g2a b3|bag fed|edc B3|\nFAF FAF|GBG GBG|\n";

fn workspace(tmp: &TempDir) -> std::path::PathBuf {
    let ws = tmp.path().join("ws");
    std::fs::create_dir(&ws).expect("mkdir");
    std::fs::write(ws.join("original.abc"), ORIGINAL).expect("write");
    std::fs::write(ws.join("quoting.abc"), QUOTING).expect("write");
    std::fs::canonicalize(&ws).expect("canonical")
}

fn similar_at(c: &mut SocketClient, path: &Path, line: u32) -> Value {
    c.request(
        "tunelens/similar",
        json!({
            "textDocument": {"uri": file_uri(path)},
            "position": {"line": line, "character": 3}, "k": 5
        }),
    )
}

fn workspace_files(status: &Value) -> u64 {
    status["corpora"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["name"] == "workspace"))
        .and_then(|c| c["files"].as_u64())
        .unwrap_or(0)
}

/// Polls until `check` accepts (the watcher debounces; tests share two cores, so give it time).
fn wait_for(c: &mut SocketClient, what: &str, mut check: impl FnMut(&mut SocketClient) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !check(c) {
        if Instant::now() >= deadline {
            let status = c.request("tunelens/status", json!({}));
            panic!("timed out waiting for {what}; status: {status}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The page `tunelens/compare` answered, checked to hold the query and each of `similar`'s
/// matches, written to `html` and opened in headless Chromium: its render report.
fn open_compare_page(page: &Value, similar: &Value, html: &Path) -> Value {
    let matches = similar["matches"].as_array().map_or(0, Vec::len);
    assert_eq!(
        page["passages"].as_u64(),
        Some(1 + matches as u64),
        "{page:.300}"
    );
    std::fs::write(html, page["html"].as_str().expect("html")).expect("write");
    compare_page_report(html)
}

#[test]
fn a_script_session_over_the_socket() {
    let tmp = TempDir::new("sock");
    let ws = workspace(&tmp);
    let daemon = Daemon::start(tmp.path(), &tmp.path().join("db"), &ws, "d");
    let mode = std::fs::metadata(&daemon.socket)
        .expect("socket")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "only its user may connect");

    let mut c = daemon.connect();
    let hello = c.request(
        "tunelens/handshake",
        json!({"clientName": "test", "protocolVersion": 1}),
    );
    assert_eq!(hello["serverName"], "tunelens");
    let status = daemon.wait_indexed();
    assert_eq!(workspace_files(&status), 2, "{status}");
    assert!(status["model"]["dim"].as_u64() > Some(0), "{status}");

    let original = ws.join("original.abc");
    let quoting = ws.join("quoting.abc");
    let similar = similar_at(&mut c, &original, 6);
    assert_eq!(similar["query"]["bars"], json!([5, 8]), "{similar}");
    let top = &similar["matches"][0];
    assert_eq!(top["uri"], json!(file_uri(&quoting)), "{similar}");
    assert_eq!(top["bars"], json!([3, 6]));
    assert!(top["score"].as_f64() > Some(0.999), "{top}");

    // The same list as a page: the passage and each match engraved, nothing needing a network.
    let page = c.request(
        "tunelens/compare",
        json!({
            "textDocument": {"uri": file_uri(&original)},
            "position": {"line": 6, "character": 3}, "k": 5
        }),
    );
    let matches = similar["matches"].as_array().map_or(0, Vec::len);
    let report = open_compare_page(&page, &similar, &tmp.path().join("compare.html"));
    assert_eq!(
        report["passages"].as_u64(),
        Some(1 + matches as u64),
        "{report}"
    );
    assert_eq!(report["warnings"], json!([]), "{report}");
    assert_eq!(report["errors"], json!([]), "{report}");

    let hover = c.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": file_uri(&original)}, "position": {"line": 6, "character": 3}}),
    );
    let text = hover["contents"].as_str().unwrap_or_default();
    assert!(text.contains("**Borrower**, bars 3–6"), "{hover}");

    let lenses = c.request(
        "textDocument/codeLens",
        json!({"textDocument": {"uri": file_uri(&original)}}),
    );
    assert_eq!(lenses.as_array().map(Vec::len), Some(1), "{lenses}");
    let classify = c.request(
        "tunelens/classify",
        json!({"textDocument": {"uri": file_uri(&original)}, "labels": ["jig", "reel"]}),
    );
    assert_eq!(
        classify["tunes"][0]["labels"].as_array().map(Vec::len),
        Some(2)
    );
    let search = c.request("tunelens/search", json!({"text": "a jig in G", "k": 2}));
    assert_eq!(
        search["matches"].as_array().map(Vec::len),
        Some(2),
        "{search}"
    );

    // An edit made outside any editor: the Borrower quotes something else now.
    std::fs::write(
        &quoting,
        QUOTING.replace(
            "Bcd e2f|g2a b3|bag fed|edc B3|",
            "cBA GFE|D3 D3|EFG ABc|d3 d3|",
        ),
    )
    .expect("write");
    wait_for(&mut c, "the edit", |c| {
        let s = similar_at(c, &original, 6);
        s["matches"][0]["score"].as_f64() < Some(0.999)
    });
    // A rename: the tune is found under its new name, never the old one.
    let renamed = ws.join("borrowed.abc");
    std::fs::write(&quoting, QUOTING).expect("write");
    std::fs::rename(&quoting, &renamed).expect("rename");
    wait_for(&mut c, "the rename", |c| {
        let s = similar_at(c, &original, 6);
        s["matches"][0]["uri"] == json!(file_uri(&renamed))
    });
    let s = similar_at(&mut c, &original, 6);
    for m in s["matches"].as_array().expect("matches") {
        assert_ne!(
            m["uri"],
            json!(file_uri(&quoting)),
            "the old name came back: {s}"
        );
    }
    // A deletion: the file leaves the index.
    std::fs::remove_file(&renamed).expect("rm");
    wait_for(&mut c, "the deletion", |c| {
        let s = c.request("tunelens/status", json!({}));
        workspace_files(&s) == 1
    });
    let s = similar_at(&mut c, &original, 6);
    assert!(
        s["matches"]
            .as_array()
            .expect("matches")
            .iter()
            .all(|m| m["uri"] == json!(file_uri(&original))),
        "{s}"
    );
    daemon.kill();
}

#[test]
fn bad_messages_get_json_rpc_errors_and_the_daemon_stays_up() {
    let tmp = TempDir::new("sock-bad");
    let ws = workspace(&tmp);
    let daemon = Daemon::start(tmp.path(), &tmp.path().join("db"), &ws, "d");
    daemon.wait_indexed();
    let mut c = daemon.connect();

    // Cut short by a newline: what came is not JSON.
    c.write_raw(b"{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\n");
    let r = c.read().expect("an answer");
    assert_eq!(r["error"]["code"], -32700, "{r}");
    c.write_raw(b"\xff\xfe binary\n");
    let r = c.read().expect("an answer");
    assert_eq!(r["error"]["code"], -32700, "{r}");
    c.write_raw(b"[1, 2, 3]\n");
    assert_eq!(c.read().expect("an answer")["error"]["code"], -32600);
    c.write_raw(b"{\"jsonrpc\": \"1.0\", \"id\": 9, \"method\": \"tunelens/status\"}\n");
    let r = c.read().expect("an answer");
    assert_eq!(
        (r["error"]["code"].clone(), r["id"].clone()),
        (json!(-32600), json!(9))
    );
    let r = c.request_raw("tunelens/nope", json!({}));
    assert_eq!(r["error"]["code"], -32601, "{r}");
    let r = c.request_raw("tunelens/similar", json!({"textDocument": 3}));
    assert_eq!(r["error"]["code"], -32602, "{r}");
    let r = c.request_raw(
        "tunelens/handshake",
        json!({"clientName": "old", "protocolVersion": 99}),
    );
    assert_eq!(r["error"]["code"], -32003, "{r}");
    let missing = ws.join("nowhere.abc");
    let r = c.request_raw(
        "tunelens/similar",
        json!({"textDocument": {"uri": file_uri(&missing)}, "position": {"line": 0, "character": 0}}),
    );
    assert_eq!(r["error"]["code"], -32004, "{r}");
    assert!(
        r["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("nowhere.abc")),
        "{r}"
    );
    // A notification (no id) gets no answer, even when it is wrong: the next answer is the
    // next request's.
    c.write_raw(b"{\"jsonrpc\": \"2.0\", \"method\": \"tunelens/nope\"}\n");
    let r = c.request_raw("tunelens/status", json!({}));
    assert!(r.get("result").is_some(), "{r}");
    // The device as it runs, in words (the daemon was started with --device cpu).
    let device = r["result"]["device"].as_str().unwrap_or_default();
    assert!(
        device.starts_with("cpu (") && device.contains("threads"),
        "{r}"
    );

    // A message over the limit: an error, then the daemon hangs up (the rest of it cannot be
    // told from the next message).
    let mut big = SocketClient::connect(&daemon.socket);
    let huge = format!(
        "{{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": \"tunelens/search\", \"params\": {{\"text\": \"{}\"}}}}\n",
        "a".repeat(5 * 1024 * 1024)
    );
    // The daemon stops reading at the limit, so the rest of the write may fail.
    big.try_write_raw(huge.as_bytes());
    let r = big.read().expect("an answer");
    assert_eq!(r["error"]["code"], -32600, "{r}");
    assert!(big.read().is_none(), "the connection is closed");

    // Content-Length framing works too (the first bytes decide).
    let mut framed = SocketClient::connect(&daemon.socket);
    let body = br#"{"jsonrpc":"2.0","id":5,"method":"tunelens/status"}"#;
    framed.write_raw(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    framed.write_raw(body);
    let mut head = String::new();
    let answer = framed.read_framed(&mut head);
    assert!(head.starts_with("Content-Length: "), "{head}");
    assert_eq!(answer["id"], 5, "{answer}");

    // Clients that hang up mid-request only lose their answers.
    for _ in 0..10 {
        let mut gone = SocketClient::connect(&daemon.socket);
        gone.write_raw(
            format!(
                "{}\n",
                json!({"jsonrpc": "2.0", "id": 1, "method": "tunelens/similar", "params": {
                    "textDocument": {"uri": file_uri(&ws.join("original.abc"))},
                    "position": {"line": 6, "character": 3}
                }})
            )
            .as_bytes(),
        );
        drop(gone);
    }
    let s = similar_at(&mut c, &ws.join("original.abc"), 6);
    assert_eq!(s["matches"][0]["bars"], json!([3, 6]), "{s}");
    daemon.kill();
}

#[test]
fn fifty_clients_two_hundred_requests_each_and_no_cache_entry_lost() {
    let tmp = TempDir::new("sock-load");
    let ws = workspace(&tmp);
    let db = tmp.path().join("db");
    let daemon = Daemon::start(tmp.path(), &db, &ws, "d");
    daemon.wait_indexed();
    let original = ws.join("original.abc");
    let quoting = file_uri(&ws.join("quoting.abc"));
    let threads: Vec<_> = (0..50)
        .map(|t| {
            let socket = daemon.socket.clone();
            let original = original.clone();
            let quoting = quoting.clone();
            std::thread::spawn(move || {
                let mut c = SocketClient::connect(&socket);
                for i in 0..200 {
                    match (t + i) % 4 {
                        0 => {
                            let s = similar_at(&mut c, &original, 6);
                            assert_eq!(s["matches"][0]["uri"], json!(quoting), "{s}");
                        }
                        1 => {
                            let h = c.request(
                                "textDocument/hover",
                                json!({"textDocument": {"uri": file_uri(&original)},
                                       "position": {"line": 5, "character": 2}}),
                            );
                            assert!(h["contents"].as_str().is_some(), "{h}");
                        }
                        2 => {
                            let s = c.request("tunelens/status", json!({}));
                            assert_eq!(workspace_files(&s), 2, "{s}");
                        }
                        _ => {
                            let r = c.request_raw("tunelens/nope", json!({}));
                            assert_eq!(r["error"]["code"], -32601, "{r}");
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a client thread");
    }
    daemon.kill();
    // Every unit is still cached: indexing the same files again embeds nothing.
    assert_all_cached(&ws, &db);
}

/// A one-shot `tunelens index` of `ws` into `db` finds every unit in the cache.
fn assert_all_cached(ws: &Path, db: &Path) {
    let model = common::shared_fixture("clamp-tiny-bert");
    let out = run(&[
        "index",
        ws.to_str().expect("path"),
        "--model",
        model.to_str().expect("path"),
        "--db",
        db.to_str().expect("path"),
        "--json",
    ]);
    assert!(out.ok, "{}", out.stderr);
    let report: Value = serde_json::from_str(out.stdout.trim()).expect("json report");
    assert_eq!(report["progress"]["embedded"], 0, "{report}");
}

/// A workspace big enough that indexing takes a while: O'Neill's collection in files of 50.
fn big_workspace(tmp: &TempDir) -> std::path::PathBuf {
    let ws = tmp.path().join("big");
    std::fs::create_dir(&ws).expect("mkdir");
    let src = music21_abc_dir().join("oneills1850");
    let mut files: Vec<_> = std::fs::read_dir(&src)
        .expect("oneills1850")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "abc"))
        .collect();
    files.sort();
    for f in files.iter().take(8) {
        std::fs::copy(f, ws.join(f.file_name().expect("name"))).expect("copy");
    }
    std::fs::canonicalize(&ws).expect("canonical")
}

fn status_of(daemon: &Daemon) -> Value {
    daemon.connect().request("tunelens/status", json!({}))
}

#[test]
fn sigkill_while_indexing_then_restart_resumes_with_the_cache_intact() {
    let tmp = TempDir::new("sock-kill");
    let ws = big_workspace(&tmp);
    let total = std::fs::read_dir(&ws).expect("ws").count() as u64;
    let db = tmp.path().join("db");
    let daemon = Daemon::start(tmp.path(), &db, &ws, "first");
    // Wait until the job is embedding (or has recorded files) and not done. The 8 files are
    // one group of the job, so `filesDone` moves only at the group's end: the embedding queue
    // being busy is what says the kill lands mid-run.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let s = status_of(&daemon);
        let done = s["filesDone"].as_u64().unwrap_or(0);
        let embedding = s["queue"]["running"].as_u64().unwrap_or(0) > 0;
        if (done >= 1 || embedding) && s["indexing"] == json!(true) {
            break;
        }
        assert!(
            s["indexing"] == json!(true) || done == 0,
            "indexing ended before the kill (make the workspace bigger): {s}"
        );
        assert!(Instant::now() < deadline, "{s}");
        std::thread::sleep(Duration::from_millis(20));
    }
    daemon.kill();

    let daemon = Daemon::start(tmp.path(), &db, &ws, "second");
    let status = daemon.wait_indexed();
    assert_eq!(workspace_files(&status), total, "{status}");
    let log = daemon.stderr();
    daemon.kill();
    assert!(!log.contains("panicked"), "{log}");
    // Complete: a one-shot index of the same files finds every unit cached.
    assert_all_cached(&ws, &db);
}

#[test]
fn files_deleted_and_renamed_while_indexing() {
    let tmp = TempDir::new("sock-churn");
    let ws = big_workspace(&tmp);
    let mut names: Vec<_> = std::fs::read_dir(&ws)
        .expect("ws")
        .flatten()
        .map(|e| e.path())
        .collect();
    names.sort();
    let total = names.len() as u64;
    let daemon = Daemon::start(tmp.path(), &tmp.path().join("db"), &ws, "d");
    // The last files in the order they are indexed, changed while the first are embedded.
    let gone = names[names.len() - 1].clone();
    let old = names[names.len() - 2].clone();
    let new = ws.join("renamed.abc");
    std::fs::remove_file(&gone).expect("rm");
    std::fs::rename(&old, &new).expect("mv");
    let mut c = daemon.connect();
    wait_for(&mut c, "the changes", |c| {
        let s = c.request("tunelens/status", json!({}));
        s["indexing"] == json!(false) && workspace_files(&s) == total - 1
    });
    // The renamed file answers under its new name; the old names are not in the index.
    let s = c.request(
        "tunelens/similar",
        json!({"textDocument": {"uri": file_uri(&new)},
               "position": {"line": 8, "character": 1}, "k": 50}),
    );
    assert!(
        s["matches"].as_array().is_some_and(|m| !m.is_empty()),
        "{s}"
    );
    let search = c.request("tunelens/search", json!({"text": "reel", "k": 400}));
    let uris: Vec<&str> = search["matches"]
        .as_array()
        .expect("matches")
        .iter()
        .filter_map(|m| m["uri"].as_str())
        .collect();
    assert!(uris.contains(&file_uri(&new).as_str()), "{search}");
    assert!(!uris.contains(&file_uri(&gone).as_str()), "{search}");
    assert!(!uris.contains(&file_uri(&old).as_str()), "{search}");
    daemon.kill();
}

#[test]
fn similar_and_search_take_filters_and_grouping_as_params() {
    let tmp = TempDir::new("sock-filters");
    let ws = tmp.path().join("oneills");
    std::fs::create_dir(&ws).expect("mkdir");
    let file = ws.join("0001-0050.abc");
    std::fs::copy(music21_abc_dir().join("oneills1850/0001-0050.abc"), &file).expect("copy");
    let ws = std::fs::canonicalize(&ws).expect("canonical");
    let file = std::fs::canonicalize(&file).expect("canonical");
    // Each tune's M:, by its index in the file (a tune starts at each X: line).
    let text = std::fs::read_to_string(&file).expect("read");
    let mut meters: Vec<String> = Vec::new();
    for line in text.lines() {
        if line.starts_with("X:") {
            meters.push(String::new());
        } else if let (Some(m), Some(last)) = (line.strip_prefix("M:"), meters.last_mut()) {
            if last.is_empty() {
                *last = m.trim().to_owned();
            }
        }
    }
    let daemon = Daemon::start(tmp.path(), &tmp.path().join("db"), &ws, "d");
    daemon.wait_indexed();
    let mut c = daemon.connect();
    let uri = file_uri(&file);
    // Line 11 (0-based) holds bars 1-4 of The Enchanted Valley, in 2/4.
    let similar = |c: &mut SocketClient, extra: Value| {
        let mut params = json!({"textDocument": {"uri": uri}, "position": {"line": 11, "character": 1}, "k": 10});
        for (k, v) in extra.as_object().expect("object") {
            params[k] = v.clone();
        }
        c.request("tunelens/similar", params)
    };
    let tune_of = |m: &Value| m["tune"].as_u64().expect("tune") as usize;

    let flat = similar(&mut c, json!({"group": "none"}));
    let flat = flat["matches"].as_array().expect("matches");
    let distinct: std::collections::HashSet<_> = flat.iter().map(tune_of).collect();
    assert!(distinct.len() < flat.len(), "no repeats to group: {flat:?}");
    assert!(flat.iter().all(|m| m.get("otherPassages").is_none()));

    let grouped = similar(&mut c, json!({}));
    let matches = grouped["matches"].as_array().expect("matches");
    assert_eq!(matches.len(), 10, "{grouped}");
    let distinct: std::collections::HashSet<_> = matches.iter().map(tune_of).collect();
    assert_eq!(distinct.len(), 10, "grouped by tune by default: {grouped}");
    assert!(
        matches.iter().all(|m| m["otherPassages"].is_u64()),
        "{grouped}"
    );

    let jigs = similar(&mut c, json!({"meter": "6/8", "passagePosition": "start"}));
    let matches = jigs["matches"].as_array().expect("matches");
    assert!(!matches.is_empty(), "{jigs}");
    for m in matches {
        assert_eq!(meters[tune_of(m)], "6/8", "{m}");
        assert_eq!(m["bars"][0], 1, "{m}");
    }

    let bad = c.request_raw(
        "tunelens/similar",
        json!({"textDocument": {"uri": uri}, "position": {"line": 11, "character": 1}, "key": "blue"}),
    );
    assert_eq!(bad["error"]["code"], -32602, "{bad}");
    assert!(
        bad["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no key or mode")),
        "{bad}"
    );

    let search = c.request(
        "tunelens/search",
        json!({"text": "a slow air", "meter": "3/4", "k": 5}),
    );
    let matches = search["matches"].as_array().expect("matches");
    assert_eq!(matches.len(), 5, "{search}");
    for m in matches {
        assert_eq!(meters[tune_of(m)], "3/4", "{m}");
    }
    let socket_lists = [
        similar(&mut c, json!({"group": "none"})),
        similar(&mut c, json!({})),
    ];
    daemon.kill();

    // The CLI answers through the same pipeline: the same list for the same passage, read
    // from the database the daemon wrote.
    let at = format!("{}:12:2", file.display());
    for (group, from_socket) in ["none", "tune"].iter().zip(&socket_lists) {
        let from_cli =
            common::similar_json(&at, &tmp.path().join("db"), &["-k", "10", "--group", group]);
        let cli = from_cli["matches"].as_array().expect("matches");
        let socket = from_socket["matches"].as_array().expect("matches");
        common::same_list(cli, socket, group);
    }
}

/// Connects as `uid` (when given) with Python, sends a handshake, and prints what came back:
/// the answer's first line, `closed` when the daemon hung up without a word, or `denied` when
/// the socket's mode kept the client out.
fn handshake_as(socket: &Path, uid: Option<u32>) -> String {
    use std::os::unix::process::CommandExt;
    let script = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(20)
try:
    s.connect(sys.argv[1])
except PermissionError:
    print("denied")
    sys.exit(0)
data = b""
try:
    s.sendall(b'{"jsonrpc":"2.0","id":1,"method":"tunelens/handshake","params":{"clientName":"t","protocolVersion":1}}\n')
    while not data.endswith(b"\n"):
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
except (ConnectionResetError, BrokenPipeError):
    pass
print(data.decode().strip() or "closed")
"#;
    let mut command = std::process::Command::new("python3");
    command.arg("-c").arg(script).arg(socket);
    if let Some(uid) = uid {
        command.uid(uid).gid(uid);
    }
    let out = command.output().expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[test]
fn the_socket_is_private_from_its_first_moment_and_other_users_are_refused() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let tmp = TempDir::new("sock-private");
    let ws = workspace(&tmp);
    let socket = tmp.path().join("p.sock");
    // Every mode the socket is ever seen with, from before the daemon starts.
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (socket, done) = (socket.clone(), done.clone());
        std::thread::spawn(move || {
            let mut modes = std::collections::BTreeSet::new();
            let mut look = || {
                if let Ok(m) = std::fs::symlink_metadata(&socket) {
                    modes.insert(m.permissions().mode() & 0o777);
                }
            };
            while !done.load(Ordering::Relaxed) {
                look();
            }
            // Once more after the daemon is up: under load this thread may not have run
            // between the socket's creation and `done` (CI saw no mode at all, once).
            look();
            modes
        })
    };
    let daemon = Daemon::start(tmp.path(), &tmp.path().join("db"), &ws, "p");
    assert_eq!(daemon.socket, socket);
    done.store(true, Ordering::Relaxed);
    let modes = watcher.join().expect("watcher");
    assert_eq!(
        modes.into_iter().collect::<Vec<_>>(),
        vec![0o600],
        "modes seen"
    );
    assert!(
        handshake_as(&socket, None).contains("serverName"),
        "the daemon's own user is served"
    );
    // Another user: the mode keeps them out; widened, the peer check still does.
    let root = std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    assert!(
        root,
        "this test switches to another uid (65534) for its client, which needs root"
    );
    assert_eq!(handshake_as(&socket, Some(65534)), "denied");
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    assert_eq!(handshake_as(&socket, Some(65534)), "closed");
    assert!(
        daemon.stderr().contains("another user was refused"),
        "{}",
        daemon.stderr()
    );
    daemon.kill();
}

/// A script asks about a MusicXML score as it asks about ABC: positions are in the score's ABC
/// conversion (what `tunelens patches` prints), matches in other scores come with measures and
/// an explanation, and the compare page engraves them.
#[test]
fn musicxml_scores_are_asked_about_over_the_socket_and_their_matches_explained() {
    let tmp = TempDir::new("sock-musicxml");
    let ws = tmp.path().join("chorales");
    std::fs::create_dir(&ws).expect("mkdir");
    let bach = common::repo_root().join(".data/music21/music21/corpus/bach/bwv1.6.mxl");
    assert!(
        bach.is_file(),
        "{} is missing: run scripts/setup.sh --data",
        bach.display()
    );
    std::fs::copy(&bach, ws.join("bwv1.6.mxl")).expect("copy");
    // A second copy: its measures match the first note for note.
    std::fs::copy(&bach, ws.join("copy.mxl")).expect("copy");
    let ws = std::fs::canonicalize(&ws).expect("canonical");
    let daemon = Daemon::start(tmp.path(), &tmp.path().join("db"), &ws, "x");
    daemon.wait_indexed();
    let mut c = daemon.connect();
    // Line 12 of the conversion holds voice 1's bars 5-8 (measures 4-7 of part 1).
    let params = json!({
        "textDocument": {"uri": file_uri(&ws.join("bwv1.6.mxl"))},
        "position": {"line": 11, "character": 2}, "k": 3
    });
    let similar = c.request("tunelens/similar", params.clone());
    let top = &similar["matches"][0];
    assert_eq!(
        top["uri"],
        json!(file_uri(&ws.join("copy.mxl"))),
        "{similar}"
    );
    let explanation = top["explanation"].as_str().unwrap_or_default();
    assert!(
        explanation.contains("0 of ") && explanation.contains("notes differ"),
        "{similar}"
    );
    let page = c.request("tunelens/compare", params);
    let report = open_compare_page(&page, &similar, &tmp.path().join("chorale.html"));
    assert_eq!(report["errors"], json!([]), "{report}");
    assert_eq!(
        report["coloured"][1],
        json!(0),
        "an identical copy differs nowhere: {report}"
    );
    daemon.kill();
}
