//! The daemon as an editor meets it: `tunelens lsp` (the real binary, over stdio) with the
//! music21 corpus indexed, a 300-bar tune open in the workspace.
//!
//! - `hover_warm`: a hover on a bar whose window is cached;
//! - `edit_then_hover`: one bar changed to notes never seen before (`didChange`) and the code
//!   lenses asked for, as an editor does, then a hover on the bar that must show similar
//!   passages for the new window: parse, embed the new windows and the tune, update the
//!   catalogs, search; the originality diagnostics run as they do in an editor (on by default);
//! - edit → diagnostics: an edit, then the `publishDiagnostics` of that version (the
//!   originality check of every window);
//! - restart with the cache warm → the first hover with similar passages; the daemon's RSS now
//!   and its peak (`VmHWM`: the most it held at any moment of the run);
//! - a soak (`TUNELENS_SOAK_SECS`, 180 by default, 0 skips it): edits, lenses, hovers and a
//!   re-index of the file every 25 edits in a loop, the RSS sampled every 10 s.
//!
//! The model is the committed default (`models/default`: music tower H256, 4 layers, 128
//! patches, 256-wide joint space; the all-MiniLM-L6-v2 text tower that setup installs), as a
//! user's daemon runs it. Everything is built once under
//! `target/bench-data/` (the first run indexes music21: a few minutes). Percentiles and RSS are
//! printed at the end and written to `target/bench-data/daemon-summary.json`.
//!
//! `cargo bench --bench daemon`; `TUNELENS_BENCH_DEVICE=cuda cargo bench --features cuda --bench
//! daemon` indexes and serves on the GPU (`scripts/gpu-check.sh` runs it so), with its own index.

#[allow(dead_code)]
#[path = "../tests/common/rpc.rs"]
mod rpc;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use criterion::Criterion;
use rpc::{file_uri, LspClient};
use serde_json::{json, Value};

const BARS: usize = 300;
const BARS_PER_LINE: usize = 4;
const HEADER_LINES: usize = 5;

/// Where the index is built and the daemon embeds: `cpu` unless `TUNELENS_BENCH_DEVICE` says.
fn device() -> String {
    std::env::var("TUNELENS_BENCH_DEVICE").unwrap_or_else(|_| "cpu".into())
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// xorshift64*: the same edits every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The committed default model (`models/default`), with the text tower setup installs.
fn default_model() -> PathBuf {
    let dir = repo().join("models/default");
    let text = repo().join(".data/models/all-minilm-l6-v2");
    assert!(
        dir.join("model.safetensors").is_file() && text.is_dir(),
        "{} or {} is missing: run scripts/setup.sh --data",
        dir.display(),
        text.display()
    );
    dir
}

fn tunelens(args: &[&str]) {
    let status = Command::new(env!("CARGO_BIN_EXE_tunelens"))
        .args(args)
        .status()
        .expect("tunelens runs");
    assert!(status.success(), "tunelens {args:?} failed");
}

/// 300 real bars (O'Neill's jigs), four to a line under one header.
fn long_tune(corpus: &Path) -> (String, Vec<(u32, u32, usize)>) {
    let text = std::fs::read_to_string(corpus.join("oneills1850/0001-0050.abc")).expect("O'Neill");
    let mut bars = Vec::new();
    let (mut meter, mut unit) = (String::new(), String::new());
    for line in text.lines() {
        let field = |name: &str| line.strip_prefix(name).map(|v| v.trim().to_owned());
        if let Some(m) = field("M:") {
            meter = m;
        } else if let Some(l) = field("L:") {
            unit = l;
        } else if line.starts_with("X:") {
            meter.clear();
        } else if meter == "6/8" && unit == "1/8" && !line.contains(':') {
            for bar in line.split('|') {
                let bar = bar.trim();
                let notes = bar.chars().filter(|c| c.is_ascii_alphabetic()).count();
                // Slurs may stay (balanced within the bar); chords, ties across bars, grace
                // notes and triplet marks may not (they would break the bar cut out alone).
                let balanced = bar.matches('(').count() == bar.matches(')').count();
                if notes >= 3 && balanced && !bar.contains(['[', ']', '"', '{', '}', '-']) {
                    bars.push(bar.to_owned());
                }
            }
        }
    }
    assert!(bars.len() >= 60, "too few jig bars in O'Neill's first file");
    let mut out = String::from("X:1\nT:Three hundred bars\nM:6/8\nL:1/8\nK:D\n");
    let mut places = Vec::new();
    for line in 0..BARS / BARS_PER_LINE {
        let mut text = String::from("|");
        for b in 0..BARS_PER_LINE {
            let bar = &bars[(line * BARS_PER_LINE + b) % bars.len()];
            places.push(((HEADER_LINES + line) as u32, text.len() as u32, bar.len()));
            text.push_str(bar);
            text.push('|');
        }
        out.push_str(&text);
        out.push('\n');
    }
    (out, places)
}

fn start(model: &Path, db: &Path, corpus: &Path, ws: &Path, log: PathBuf) -> LspClient {
    // `TUNELENS_BENCH_WRAP="heaptrack -o /tmp/daemon"` runs the daemon under a profiler.
    let wrap = std::env::var("TUNELENS_BENCH_WRAP").unwrap_or_default();
    let mut words = wrap.split_whitespace();
    let mut command = match words.next() {
        Some(program) => {
            let mut c = Command::new(program);
            c.args(words).arg(env!("CARGO_BIN_EXE_tunelens"));
            c
        }
        None => Command::new(env!("CARGO_BIN_EXE_tunelens")),
    };
    command.args([
        "lsp",
        "--model",
        model.to_str().expect("path"),
        "--db",
        db.to_str().expect("path"),
        "--corpus",
        corpus.to_str().expect("path"),
        "--device",
        &device(),
    ]);
    let mut client = LspClient::spawn(command, log);
    client.request(
        "initialize",
        // As VS Code's client: it can be asked to refresh its code lenses.
        json!({"processId": null,
               "capabilities": {"workspace": {"codeLens": {"refreshSupport": true}}},
               "workspaceFolders": [{"uri": file_uri(ws), "name": "bench"}]}),
    );
    client.notify("initialized", json!({}));
    client
}

fn hover(client: &mut LspClient, uri: &str, line: u32, character: u32) -> String {
    let h = client.request(
        "textDocument/hover",
        json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": character}}),
    );
    h["contents"]["value"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The daemon's own account of its memory (`tunelens/status`): resident, live heap, and the
/// free heap the allocator keeps, in MiB.
fn memory(client: &mut LspClient) -> Value {
    let status = client.request("tunelens/status", json!({}));
    let mib = |k: &str| {
        status["memory"][k]
            .as_f64()
            .map(|b| (b / 1048576.0).round())
    };
    json!({"resident": mib("resident"), "heapLive": mib("heapLive"), "heapFree": mib("heapFree")})
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

fn summary(name: &str, samples: &mut [Duration]) -> Value {
    samples.sort();
    let s = json!({
        "samples": samples.len(),
        "p50_ms": percentile(samples, 0.50),
        "p99_ms": percentile(samples, 0.99),
        "max_ms": percentile(samples, 1.0),
    });
    println!("{name}: {s}");
    s
}

/// Replaces one random bar of `text` by as many random notes (never embedded before); returns
/// the change as LSP sends it.
fn random_edit(
    rng: &mut Rng,
    text: &mut String,
    places: &[(u32, u32, usize)],
) -> (u32, u32, usize, String) {
    let (line, col, len) = places[rng.below(places.len())];
    let bar: String = (0..len)
        .map(|_| b"ABCDEFGabcdefg"[rng.below(14)] as char)
        .collect();
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line as usize)
        .map(str::len)
        .sum();
    let at = line_start + col as usize;
    text.replace_range(at..at + len, &bar);
    (line, col, len, bar)
}

fn did_change(
    client: &mut LspClient,
    uri: &str,
    version: i64,
    (line, col, len, bar): &(u32, u32, usize, String),
) {
    client.notify(
        "textDocument/didChange",
        json!({
            "textDocument": {"uri": uri, "version": version},
            "contentChanges": [{
                "range": {"start": {"line": line, "character": col},
                          "end": {"line": line, "character": *col + *len as u32}},
                "text": bar
            }]
        }),
    );
}

/// Waits for the `publishDiagnostics` of `version` (the originality check of every window).
fn wait_diagnostics(client: &mut LspClient, version: i64) {
    client.wait_notification(|m| {
        m["method"] == "textDocument/publishDiagnostics" && m["params"]["version"] == json!(version)
    });
}

fn code_lenses(client: &mut LspClient, uri: &str) {
    client.request(
        "textDocument/codeLens",
        json!({"textDocument": {"uri": uri}}),
    );
}

fn main() {
    let data = repo().join("target/bench-data");
    let corpus = repo().join(".data/music21/music21/corpus");
    assert!(
        corpus.join("oneills1850").is_dir(),
        "{} is missing: run scripts/setup.sh --data",
        corpus.display()
    );
    let model = default_model();
    let device = device();
    // The index is rebuilt when the model changes: the vectors are stored under its id.
    let db = match device.as_str() {
        "cpu" => data.join("music21-default.sled"),
        d => data.join(format!("music21-default-{}.sled", d.replace(':', ""))),
    };
    if !db.join("indexed").is_file() {
        eprintln!("indexing music21 with the default model once on {device} (minutes on a CPU)");
        let _ = std::fs::remove_dir_all(&db);
        let started = Instant::now();
        tunelens(&[
            "index",
            corpus.to_str().expect("path"),
            "--db",
            db.to_str().expect("path"),
            "--model",
            model.to_str().expect("path"),
            // The daemon names a corpus folder's corpus after it.
            "--corpus",
            "corpus",
            "--device",
            &device,
        ]);
        // The marker holds how long indexing took, for the summary.
        let secs = format!("{:.1}", started.elapsed().as_secs_f64());
        std::fs::write(db.join("indexed"), secs).expect("marker");
    }
    let index_seconds: Option<f64> = std::fs::read_to_string(db.join("indexed"))
        .ok()
        .and_then(|s| s.trim().parse().ok());
    let ws = data.join("workspace");
    let _ = std::fs::remove_dir_all(&ws);
    std::fs::create_dir_all(&ws).expect("workspace");
    let ws = std::fs::canonicalize(&ws).expect("canonical");
    let (text, places) = long_tune(&corpus);
    let path = ws.join("three-hundred-bars.abc");
    std::fs::write(&path, &text).expect("write");
    let uri = file_uri(&path);

    // First start: the workspace file gets indexed; then the cache is warm for it too.
    let mut client = start(&model, &db, &corpus, &ws, data.join("daemon-1.log"));
    client.wait_indexed();
    client.stop();

    // Restart with everything cached: the time to the first useful hover.
    let started = Instant::now();
    let mut client = start(&model, &db, &corpus, &ws, data.join("daemon-2.log"));
    client.notify(
        "textDocument/didOpen",
        json!({"textDocument": {"uri": uri, "languageId": "abc", "version": 1, "text": text}}),
    );
    let (line, col, _) = places[BARS / 2];
    let first_hover = loop {
        if hover(&mut client, &uri, line, col + 1).contains("Similar passages") {
            break started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(120), "no hover");
        std::thread::sleep(Duration::from_millis(5));
    };
    println!(
        "restart → first hover with similar passages: {:.0} ms",
        first_hover.as_secs_f64() * 1e3
    );
    let status = client.wait_indexed();
    println!("status: {status}");
    let pid = client.child.id();

    let mut rng = Rng(7);
    let mut warm = Vec::new();
    let mut edits = Vec::new();
    let mut version = 1;
    let mut text_now = text.clone();
    let mut c = Criterion::default()
        .configure_from_args()
        .sample_size(50)
        .measurement_time(Duration::from_secs(20));
    let mut group = c.benchmark_group("daemon");
    group.bench_function("hover_warm", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let (line, col, _) = places[rng.below(places.len())];
                let t = Instant::now();
                let h = hover(&mut client, &uri, line, col + 1);
                let d = t.elapsed();
                assert!(h.contains("Similar passages"), "{h}");
                warm.push(d);
                total += d;
            }
            total
        })
    });
    group.bench_function("edit_then_hover", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                // The same length, new notes: the bar's windows were never embedded.
                let change = random_edit(&mut rng, &mut text_now, &places);
                let (line, col) = (change.0, change.1);
                version += 1;
                let t = Instant::now();
                did_change(&mut client, &uri, version, &change);
                code_lenses(&mut client, &uri);
                let h = hover(&mut client, &uri, line, col + 1);
                let d = t.elapsed();
                assert!(h.contains("Similar passages"), "{h}");
                edits.push(d);
                total += d;
            }
            total
        })
    });
    group.finish();
    client.drop_notifications();

    // The edit bench scattered ~1,400 edits over the whole tune at typing speed, each
    // version's originality check cancelled by the next: the first diagnostics after it check
    // nearly every window again. Timed apart, as the catch-up after a burst; the phase below
    // times single edits to a settled document, as a composer's edits arrive.
    let catch_up = {
        let change = random_edit(&mut rng, &mut text_now, &places);
        version += 1;
        let t = Instant::now();
        did_change(&mut client, &uri, version, &change);
        wait_diagnostics(&mut client, version);
        client.drop_notifications();
        t.elapsed()
    };
    println!(
        "diagnostics after the edit burst: {:.0} ms",
        catch_up.as_secs_f64() * 1e3
    );

    // Edit → the diagnostics of that version, one edit at a time.
    let mut diagnostics = Vec::new();
    for _ in 0..30 {
        let change = random_edit(&mut rng, &mut text_now, &places);
        version += 1;
        let t = Instant::now();
        did_change(&mut client, &uri, version, &change);
        code_lenses(&mut client, &uri);
        wait_diagnostics(&mut client, version);
        diagnostics.push(t.elapsed());
        client.drop_notifications();
    }
    let (rss, peak) = rss_kib(pid);
    println!(
        "daemon RSS {:.0} MiB (peak {:.0} MiB)",
        rss as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    let held = memory(&mut client);
    println!("daemon memory after the benches (MiB): {held}");
    let result = json!({
        "memory_after_benches_mib": held,
        "model": "models/default",
        "device": status["device"],
        "corpora": status["corpora"],
        "index_seconds": index_seconds,
        "restart_first_hover_ms": first_hover.as_secs_f64() * 1e3,
        "hover_warm": summary("hover_warm", &mut warm),
        "edit_then_hover": summary("edit_then_hover", &mut edits),
        "edit_then_diagnostics": summary("edit_then_diagnostics", &mut diagnostics),
        "diagnostics_after_burst_ms": catch_up.as_secs_f64() * 1e3,
        "rss_mib": rss as f64 / 1024.0,
        "peak_rss_mib": peak as f64 / 1024.0,
    });
    let mut result = result;
    result["soak"] = soak(&mut client, pid, &uri, &mut text_now, &places, &mut version);
    std::fs::write(
        data.join("daemon-summary.json"),
        serde_json::to_vec_pretty(&result).expect("json"),
    )
    .expect("summary");
    client.stop();
}

/// An hour of editing, shortened: edits, lenses and hovers in a loop, the file re-indexed every
/// 25 edits, the RSS sampled every 10 s. A daemon that keeps what it no longer needs grows here.
fn soak(
    client: &mut LspClient,
    pid: u32,
    uri: &str,
    text: &mut String,
    places: &[(u32, u32, usize)],
    version: &mut i64,
) -> Value {
    let secs: u64 = std::env::var("TUNELENS_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(180);
    if secs == 0 {
        return Value::Null;
    }
    let mut rng = Rng(11);
    let started = Instant::now();
    let mut next_sample = Duration::ZERO;
    let mut samples = Vec::new();
    let mut edits = 0u64;
    while started.elapsed() < Duration::from_secs(secs) {
        if started.elapsed() >= next_sample {
            let (rss, _) = rss_kib(pid);
            let at = started.elapsed().as_secs();
            let held = memory(client);
            println!(
                "soak {at:>4} s: RSS {:.0} MiB after {edits} edits; {held}",
                rss as f64 / 1024.0
            );
            samples.push(
                json!({"s": at, "rss_mib": rss as f64 / 1024.0, "edits": edits, "memory_mib": held}),
            );
            next_sample += Duration::from_secs(10);
        }
        let change = random_edit(&mut rng, text, places);
        *version += 1;
        did_change(client, uri, *version, &change);
        code_lenses(client, uri);
        let h = hover(client, uri, change.0, change.1 + 1);
        assert!(h.contains("Similar passages"), "{h}");
        edits += 1;
        if edits.is_multiple_of(25) {
            client.request("tunelens/reindex", json!({"uri": uri}));
        }
        client.drop_notifications();
    }
    let (rss, peak) = rss_kib(pid);
    println!(
        "soak: {edits} edits in {secs} s; RSS {:.0} MiB at the end, peak {:.0} MiB",
        rss as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    json!({"seconds": secs, "edits": edits, "samples": samples,
           "rss_mib": rss as f64 / 1024.0, "peak_rss_mib": peak as f64 / 1024.0})
}
