//! `tunelens train`: trains (or fine-tunes) a model with the contrastive objectives of
//! `tunelens_models::train`, showing loss and steps/s, checkpointing so `--resume` continues
//! bit for bit.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use tunelens_models::abc::MusicView;
use tunelens_models::encoders::{default_text_model, parse_device};
use tunelens_models::train::{self, LossWeights, TrainOptions};

#[derive(Clone, Copy, clap::ValueEnum)]
enum ViewArg {
    CanonicalTonic,
    CanonicalAbsolute,
    Reference,
}

#[derive(clap::Args)]
pub struct TrainArgs {
    /// Training data: folders of .abc files (sub-folders are collections), .abc files, or
    /// WikiMT-style JSONL (`music`, `title`, `artist`, `genre`, `text`).
    #[arg(long, required = true, num_args = 1..)]
    data: Vec<PathBuf>,
    /// Where the model, checkpoints, log and held-out tunes go.
    #[arg(long)]
    out: PathBuf,
    /// Start from this model (fine-tuning; its shape is kept).
    #[arg(long)]
    from: Option<PathBuf>,
    /// The frozen text tower (default: the one scripts/setup.sh installs, looked for in the
    /// data folder and beside the binary).
    #[arg(long, env = "TUNELENS_TEXT_MODEL")]
    text_model: Option<PathBuf>,
    #[arg(long, default_value_t = 1000)]
    steps: u64,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    #[arg(long, default_value_t = 5e-4)]
    lr: f64,
    #[arg(long, default_value_t = 50)]
    warmup: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Patches of each tune a step sees (the first ones).
    #[arg(long, default_value_t = 32)]
    train_patches: usize,
    /// The model's patch limit.
    #[arg(long, default_value_t = 128)]
    max_patches: usize,
    #[arg(long, default_value_t = 256)]
    hidden: usize,
    #[arg(long, default_value_t = 4)]
    layers: usize,
    #[arg(long, default_value_t = 4)]
    heads: usize,
    /// Weight of the music ↔ text loss.
    #[arg(long, default_value_t = 1.0)]
    w_text: f64,
    /// Weight of the window ↔ own tune loss.
    #[arg(long, default_value_t = 1.0)]
    w_tune: f64,
    /// Weight of the window ↔ augmented window loss.
    #[arg(long, default_value_t = 1.0)]
    w_aug: f64,
    /// A fixed temperature instead of a learnt one.
    #[arg(long)]
    temperature: Option<f64>,
    #[arg(long, default_value_t = 100)]
    checkpoint_every: u64,
    /// How the model reads music: re-rendered from the notes with pitches relative to the
    /// tonic (a transposed passage reads the same), re-rendered with pitches as written, or
    /// the ABC as written (the CLaMP reference).
    #[arg(long, value_enum, default_value_t = ViewArg::CanonicalTonic)]
    view: ViewArg,
    /// Hold out every tune of this collection (repeatable): evaluation on music never seen.
    #[arg(long = "hold-out-collection", value_name = "NAME")]
    hold_out_collections: Vec<String>,
    /// Fraction of notes moved a step in the augmented window.
    #[arg(long, default_value_t = 0.1)]
    vary: f64,
    /// Chance per note pair of a rhythm variant in the augmented window (dotted ↔ even, a
    /// note split or two merged); canonical views only.
    #[arg(long, default_value_t = 0.08)]
    vary_rhythm: f64,
    /// Fit a label head named NAME (e.g. `rhythm`, `genre`) on the frozen vectors of the model
    /// in --out and save it there, instead of training the model: seconds, on your own labels.
    #[arg(long, value_name = "NAME")]
    head: Option<String>,
    /// With --head: the labels' field, a header letter (`R`) or a JSONL key (`genre`);
    /// default `R` for rhythm, else the head's name.
    #[arg(long, requires = "head")]
    label_field: Option<String>,
    /// With --head: labels with fewer tunes than this are left out.
    #[arg(long, default_value_t = 10, requires = "head")]
    min_count: usize,
    /// Continue the run in --out from its checkpoint.
    #[arg(long)]
    resume: bool,
    /// cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Print the summary as one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &TrainArgs) -> anyhow::Result<ExitCode> {
    if let Some(name) = &args.head {
        if args.resume || args.from.is_some() {
            anyhow::bail!(
                "--head fits a head on the model in --out; --resume and --from are for training"
            );
        }
        let field = args
            .label_field
            .clone()
            .unwrap_or_else(|| super::heads::default_field(name));
        return super::heads::fit(
            name,
            &field,
            &args.data,
            &args.out,
            args.min_count,
            args.json,
        );
    }
    let device = parse_device(&args.device)?;
    let text_model = match &args.text_model {
        Some(t) => t.clone(),
        None => default_text_model()?,
    };
    let mut options = TrainOptions::new(args.data.clone(), args.out.clone(), text_model);
    options.from = args.from.clone();
    options.steps = args.steps;
    options.batch = args.batch;
    options.lr = args.lr;
    options.warmup = args.warmup;
    options.seed = args.seed;
    options.train_patches = args.train_patches;
    options.max_patches = args.max_patches;
    options.hidden = args.hidden;
    options.layers = args.layers;
    options.heads = args.heads;
    options.embedding = args.hidden;
    options.weights = LossWeights {
        text: args.w_text,
        tune: args.w_tune,
        aug: args.w_aug,
    };
    options.temperature = args.temperature;
    options.checkpoint_every = args.checkpoint_every;
    options.view = match args.view {
        ViewArg::CanonicalTonic => MusicView::CanonicalTonic,
        ViewArg::CanonicalAbsolute => MusicView::CanonicalAbsolute,
        ViewArg::Reference => MusicView::Reference,
    };
    options.hold_out_collections = args.hold_out_collections.clone();
    options.vary = args.vary;
    options.vary_rhythm = if options.view.is_reference() {
        0.0
    } else {
        args.vary_rhythm
    };

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        // A second Ctrl-C still kills the process the usual way.
        let _ = ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::Relaxed) {
                std::process::exit(130);
            }
        });
    }
    let bar = indicatif::ProgressBar::new(args.steps);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:30} {pos}/{len} steps  {msg}  [{elapsed_precise} < {eta_precise}]",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let summary = train::train(
        &options,
        args.resume,
        &device,
        &mut |s, _| {
            bar.set_position(s.step);
            bar.set_message(format!(
                "loss {:.4} (text {:.3} tune {:.3} aug {:.3})  {:.2} steps/s",
                s.loss, s.text, s.tune, s.aug, s.steps_per_s
            ));
        },
        &stop,
    )
    .with_context(|| format!("training into {}", args.out.display()))?;
    bar.finish();
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &summary)?;
        writeln!(out)?;
    } else if let (Some(first), Some(last)) = (summary.first_loss, summary.last_loss) {
        writeln!(
            out,
            "trained {} steps in {:.0} s{}: loss {first:.4} → {last:.4}; model in {}",
            summary.steps,
            summary.elapsed_s,
            if summary.stopped_early {
                " (stopped; resume with --resume)"
            } else {
                ""
            },
            summary.out.display()
        )?;
    } else {
        writeln!(
            out,
            "nothing to train: the run is at {} of {} steps; model in {}",
            summary.steps,
            args.steps,
            summary.out.display()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
