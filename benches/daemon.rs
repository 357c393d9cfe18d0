//! The daemon as an editor meets it: `tunelens lsp` (the real binary, over stdio) with the
//! music21 corpus indexed, a 300-bar tune open in the workspace.
//!
//! - `hover_warm`: a hover on a bar whose window is cached;
//! - `edit_then_hover`: one bar changed to notes never seen before (`didChange`), then a hover on
//!   it that must show similar passages for the new window: parse, embed the new windows and the
//!   tune, update the catalogs, search;
//! - restart with the cache warm → the first hover with similar passages; the daemon's RSS.
//!
//! The model has the default's shape (music tower H384, 4 layers, 6 heads, 128 patches; the
//! fixture's small text tower), with deterministic random weights written here, so the numbers
//! are the default model's cost on this CPU. Everything is built once under
//! `target/bench-data/` (the first run indexes music21: a few minutes). Percentiles and RSS are
//! printed at the end and written to `target/bench-data/daemon-summary.json`.
//!
//! `cargo bench --bench daemon`; `TUNELENS_BENCH_DEVICE=cuda cargo bench --features cuda --bench
//! daemon` indexes and serves on the GPU (`scripts/gpu-check.sh` runs it so), with its own index.

#[allow(dead_code)]
#[path = "../tests/common/rpc.rs"]
mod rpc;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use candle_core::{Device, Tensor};
use criterion::Criterion;
use rpc::{file_uri, LspClient};
use serde_json::{json, Value};

const HIDDEN: usize = 384;
const LAYERS: usize = 4;
const HEADS: usize = 6;
const MAX_PATCHES: usize = 128;
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

/// xorshift64*: the same weights every run, so the model id (and the index built for it)
/// stays the same between runs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn uniform(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn tensor(rng: &mut Rng, shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    // Uniform in ±0.035: about BERT's 0.02 standard deviation.
    let data: Vec<f32> = (0..n).map(|_| (rng.uniform() - 0.5) * 0.07).collect();
    Tensor::from_vec(data, shape, &Device::Cpu).expect("tensor")
}

fn filled(value: f32, n: usize) -> Tensor {
    Tensor::from_vec(vec![value; n], n, &Device::Cpu).expect("tensor")
}

#[allow(clippy::too_many_arguments)]
fn bert(
    out: &mut HashMap<String, Tensor>,
    rng: &mut Rng,
    prefix: &str,
    hidden: usize,
    layers: usize,
    intermediate: usize,
    positions: usize,
    vocab: usize,
) {
    let mut put = |name: String, t: Tensor| {
        out.insert(format!("{prefix}.{name}"), t);
    };
    put(
        "embeddings.word_embeddings.weight".into(),
        tensor(rng, &[vocab, hidden]),
    );
    put(
        "embeddings.position_embeddings.weight".into(),
        tensor(rng, &[positions, hidden]),
    );
    put(
        "embeddings.token_type_embeddings.weight".into(),
        tensor(rng, &[2, hidden]),
    );
    put("embeddings.LayerNorm.weight".into(), filled(1.0, hidden));
    put("embeddings.LayerNorm.bias".into(), filled(0.0, hidden));
    for l in 0..layers {
        let p = format!("encoder.layer.{l}");
        for (name, rows, cols) in [
            ("attention.self.query", hidden, hidden),
            ("attention.self.key", hidden, hidden),
            ("attention.self.value", hidden, hidden),
            ("attention.output.dense", hidden, hidden),
            ("intermediate.dense", intermediate, hidden),
            ("output.dense", hidden, intermediate),
        ] {
            put(format!("{p}.{name}.weight"), tensor(rng, &[rows, cols]));
            put(format!("{p}.{name}.bias"), filled(0.0, rows));
        }
        for norm in ["attention.output.LayerNorm", "output.LayerNorm"] {
            put(format!("{p}.{norm}.weight"), filled(1.0, hidden));
            put(format!("{p}.{norm}.bias"), filled(0.0, hidden));
        }
    }
}

/// A CLaMP checkpoint of the default's shape, in the official layout.
fn ensure_model(dir: &Path) -> PathBuf {
    if dir.join("model.safetensors").is_file() {
        return dir.to_owned();
    }
    std::fs::create_dir_all(dir).expect("model dir");
    let fixture = repo().join("../shared/fixtures/clamp-tiny-bert");
    let text: Value = serde_json::from_slice(
        &std::fs::read(fixture.join("text_config.json")).expect("the fixture's text config"),
    )
    .expect("json");
    let th = text["hidden_size"].as_u64().expect("hidden") as usize;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut w = HashMap::new();
    bert(
        &mut w,
        &mut rng,
        "music_enc.enc",
        HIDDEN,
        LAYERS,
        4 * HIDDEN,
        512,
        1,
    );
    w.insert(
        "music_enc.patch_embedding.weight".into(),
        tensor(&mut rng, &[HIDDEN, 64 * 98]),
    );
    w.insert("music_enc.patch_embedding.bias".into(), filled(0.0, HIDDEN));
    w.insert(
        "music_proj.weight".into(),
        tensor(&mut rng, &[HIDDEN, HIDDEN]),
    );
    w.insert("music_proj.bias".into(), filled(0.0, HIDDEN));
    bert(
        &mut w,
        &mut rng,
        "text_enc",
        th,
        text["num_hidden_layers"].as_u64().expect("layers") as usize,
        text["intermediate_size"].as_u64().expect("intermediate") as usize,
        text["max_position_embeddings"].as_u64().expect("positions") as usize,
        text["vocab_size"].as_u64().expect("vocab") as usize,
    );
    w.insert("text_proj.weight".into(), tensor(&mut rng, &[HIDDEN, th]));
    w.insert("text_proj.bias".into(), filled(0.0, HIDDEN));
    candle_core::safetensors::save(&w, dir.join("model.safetensors")).expect("save");
    let mut config: Value = serde_json::from_slice(
        &std::fs::read(fixture.join("config.json")).expect("the fixture's config"),
    )
    .expect("json");
    config["hidden_size"] = json!(HIDDEN);
    config["num_hidden_layers"] = json!(LAYERS);
    config["num_attention_heads"] = json!(HEADS);
    config["intermediate_size"] = json!(4 * HIDDEN);
    config["max_position_embeddings"] = json!(512);
    config["vocab_size"] = json!(1);
    config["max_length"] = json!(MAX_PATCHES);
    std::fs::write(
        dir.join("config.json"),
        serde_json::to_vec_pretty(&config).expect("json"),
    )
    .expect("config");
    for f in ["text_config.json", "tokenizer.json"] {
        std::fs::copy(fixture.join(f), dir.join(f)).expect("copy");
    }
    dir.to_owned()
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
    let mut client = LspClient::start(
        &[
            "lsp",
            "--model",
            model.to_str().expect("path"),
            "--db",
            db.to_str().expect("path"),
            "--corpus",
            corpus.to_str().expect("path"),
            "--device",
            &device(),
        ],
        log,
    );
    client.request(
        "initialize",
        json!({"processId": null, "capabilities": {},
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

fn main() {
    let data = repo().join("target/bench-data");
    let corpus = repo().join(".data/music21/music21/corpus");
    assert!(
        corpus.join("oneills1850").is_dir(),
        "{} is missing: run scripts/setup.sh --data",
        corpus.display()
    );
    let model = ensure_model(&data.join(format!("clamp-h{HIDDEN}-l{LAYERS}")));
    let device = device();
    let db = match device.as_str() {
        "cpu" => data.join(format!("music21-h{HIDDEN}-l{LAYERS}.sled")),
        d => data.join(format!(
            "music21-h{HIDDEN}-l{LAYERS}-{}.sled",
            d.replace(':', "")
        )),
    };
    if !db.join("indexed").is_file() {
        eprintln!("indexing music21 with the bench model once on {device} (minutes on a CPU)");
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
                let (line, col, len) = places[rng.below(places.len())];
                // The same length, new notes: the bar's windows were never embedded.
                let bar: String = (0..len)
                    .map(|_| b"ABCDEFGabcdefg"[rng.below(14)] as char)
                    .collect();
                let line_start: usize = text_now
                    .split_inclusive('\n')
                    .take(line as usize)
                    .map(str::len)
                    .sum();
                let at = line_start + col as usize;
                text_now.replace_range(at..at + len, &bar);
                version += 1;
                let t = Instant::now();
                client.notify(
                    "textDocument/didChange",
                    json!({
                        "textDocument": {"uri": uri, "version": version},
                        "contentChanges": [{
                            "range": {"start": {"line": line, "character": col},
                                      "end": {"line": line, "character": col + len as u32}},
                            "text": bar
                        }]
                    }),
                );
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
    let (rss, peak) = rss_kib(pid);
    println!(
        "daemon RSS {:.0} MiB (peak {:.0} MiB)",
        rss as f64 / 1024.0,
        peak as f64 / 1024.0
    );
    let result = json!({
        "model": format!("random CLaMP layout H{HIDDEN}/{LAYERS} layers/{HEADS} heads/{MAX_PATCHES} patches"),
        "device": status["device"],
        "corpora": status["corpora"],
        "index_seconds": index_seconds,
        "restart_first_hover_ms": first_hover.as_secs_f64() * 1e3,
        "hover_warm": summary("hover_warm", &mut warm),
        "edit_then_hover": summary("edit_then_hover", &mut edits),
        "rss_mib": rss as f64 / 1024.0,
        "peak_rss_mib": peak as f64 / 1024.0,
    });
    std::fs::write(
        data.join("daemon-summary.json"),
        serde_json::to_vec_pretty(&result).expect("json"),
    )
    .expect("summary");
    client.stop();
}
