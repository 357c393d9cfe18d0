//! `tunelens_models::train` on a small folder of real tunes (O'Neill's 1850, from setup's
//! music21) with the MiniLM text tower setup installs: the loss falls over a few steps, a run
//! stopped halfway and resumed logs the same losses and ends with the same weights as an
//! uninterrupted one, and the model it writes loads and embeds.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use candle_core::{Device, Tensor};
use tunelens_models::abc::{PatchOptions, Patchilizer};
use tunelens_models::encoders::{Clamp, EmbeddingBackend, LongTunes, MusicBatch};
use tunelens_models::train::{self, StepLog, TrainOptions};

const STEPS: u64 = 40;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn required(path: PathBuf) -> PathBuf {
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup.sh --data (scripts/test.sh does)",
        path.display()
    );
    path
}

struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!("tunelens-train-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("scratch dir");
        Self(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn options(data: &Path, out: PathBuf) -> TrainOptions {
    let mut o = TrainOptions::new(
        vec![data.to_path_buf()],
        out,
        required(repo().join(".data/models/all-minilm-l6-v2")),
    );
    o.steps = STEPS;
    o.batch = 8;
    o.lr = 2e-3;
    o.warmup = 4;
    o.seed = 3;
    o.hidden = 32;
    o.layers = 1;
    o.heads = 2;
    o.embedding = 32;
    o.max_patches = 32;
    o.train_patches = 16;
    o.checkpoint_every = 10;
    o
}

/// Runs `o`, stopping after `stop_after` steps when given; returns the steps it logged.
fn run(o: &TrainOptions, resume: bool, stop_after: Option<u64>) -> Vec<StepLog> {
    let stop = AtomicBool::new(false);
    let mut logged = Vec::new();
    train::train(
        o,
        resume,
        &Device::Cpu,
        &mut |entry, _| {
            logged.push(entry.clone());
            if Some(entry.step) == stop_after {
                stop.store(true, Ordering::SeqCst);
            }
        },
        &stop,
    )
    .expect("training runs");
    logged
}

/// What must match between two runs: everything but the clocks.
fn losses(log: &[StepLog]) -> Vec<(u64, f32, f32, f32, f32, f64, f32)> {
    log.iter()
        .map(|e| (e.step, e.loss, e.text, e.tune, e.aug, e.lr, e.temperature))
        .collect()
}

fn weights(out: &Path) -> HashMap<String, Tensor> {
    candle_core::safetensors::load(out.join("model.safetensors"), &Device::Cpu).expect("weights")
}

#[test]
fn the_loss_falls_and_a_resumed_run_equals_an_uninterrupted_one() {
    let tmp = Scratch::new("resume");
    let data = tmp.0.join("tunes");
    std::fs::create_dir(&data).expect("mkdir");
    let oneills = required(repo().join(".data/music21/music21/corpus/oneills1850"));
    std::fs::copy(oneills.join("0001-0050.abc"), data.join("0001-0050.abc")).expect("copy");

    let whole = options(&data, tmp.0.join("whole"));
    let log = run(&whole, false, None);
    assert_eq!(log.len() as u64, STEPS);
    let mean = |s: &[StepLog]| s.iter().map(|e| e.loss).sum::<f32>() / s.len() as f32;
    let (first, last) = (mean(&log[..5]), mean(&log[log.len() - 5..]));
    assert!(
        last < 0.8 * first,
        "the loss did not fall: first steps {first}, last steps {last}"
    );

    // Stopped after step 17 (between checkpoints: the stop writes one), then resumed.
    let split = options(&data, tmp.0.join("split"));
    let mut log2 = run(&split, false, Some(17));
    assert_eq!(log2.last().map(|e| e.step), Some(17));
    log2.extend(run(&split, true, None));
    assert_eq!(losses(&log2), losses(&log), "the resumed run diverged");
    let (a, b) = (weights(&whole.out), weights(&split.out));
    assert_eq!(a.len(), b.len());
    for (name, t) in &a {
        let u = &b[name];
        let diff = (t - u)
            .and_then(|d| d.abs())
            .and_then(|d| d.flatten_all())
            .and_then(|d| d.max(0))
            .and_then(|d| d.to_scalar::<f32>())
            .expect("compare");
        assert_eq!(diff, 0.0, "{name} differs by {diff}");
    }
    // The log on disk holds each step once.
    let on_disk = std::fs::read_to_string(split.out.join(train::LOG_FILE)).expect("log");
    assert_eq!(on_disk.lines().count() as u64, STEPS);

    // A run's folder moved elsewhere resumes there, with more steps.
    let moved = tmp.0.join("moved");
    let copied = std::process::Command::new("cp")
        .arg("-r")
        .arg(&split.out)
        .arg(&moved)
        .status()
        .expect("cp");
    assert!(copied.success());
    let mut more = options(&data, moved);
    more.steps = STEPS + 3;
    let extra = run(&more, true, None);
    assert_eq!(
        extra.iter().map(|e| e.step).collect::<Vec<_>>(),
        vec![STEPS + 1, STEPS + 2, STEPS + 3]
    );

    // What it wrote is a model directory the encoders load.
    let model = Clamp::load_dir(&whole.out, &Device::Cpu).expect("the trained model loads");
    let patches = Patchilizer::new().encode_ids(
        "X:1\nM:6/8\nL:1/8\nK:G\nGAB c2d|e2f g3|\n",
        PatchOptions {
            max_patches: 32,
            add_eos_patch: true,
            reference_filter: true,
        },
    );
    let v = model
        .embed_music(&MusicBatch {
            tunes: vec![patches],
            long_tunes: LongTunes::default(),
        })
        .expect("embeds");
    assert_eq!(v[0].len(), 32);
    assert!(v[0].iter().all(|x| x.is_finite()));
    // Its text tower is MiniLM outside the model directory, read on first use: it must give
    // the same vector on every call from then on.
    let text = model
        .text_features(&["A jig in G major."])
        .expect("the text tower loads");
    assert_eq!(text[0].len(), 32);
    assert!(text[0].iter().all(|x| x.is_finite()));
    assert_eq!(
        model.text_features(&["A jig in G major."]).expect("again"),
        text
    );
}

#[test]
fn an_empty_corpus_and_a_batch_of_one_are_refused_with_the_reason() {
    let tmp = Scratch::new("bad");
    let data = tmp.0.join("tunes");
    std::fs::create_dir(&data).expect("mkdir");
    std::fs::write(data.join("one.abc"), "X:1\nT:Only\nK:G\nGABc|\n").expect("write");
    let refusal = |o: &TrainOptions, resume: bool| {
        train::train(
            o,
            resume,
            &Device::Cpu,
            &mut |_, _| {},
            &AtomicBool::new(false),
        )
        .map(|_| ())
        .expect_err("refused")
        .to_string()
    };
    let mut o = options(&data, tmp.0.join("out"));
    let e = refusal(&o, false);
    assert!(e.contains("fewer than one batch"), "{e}");
    // Nothing to resume: the data is checked first, and says so.
    let e = refusal(&o, true);
    assert!(
        e.contains("fewer than one batch") || e.contains("no checkpoint"),
        "{e}"
    );
    o.batch = 1;
    let e = refusal(&o, false);
    assert!(e.contains("at least 2"), "{e}");
}
