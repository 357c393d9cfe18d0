//! `tunelens embed` and `tunelens embed-text`: vectors for tunes, bars, passages and texts.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;
use tunelens_models::abc::{self, Level, LineCol, PatchOptions, Patchilizer, DEFAULT_SIZE_LIMIT};
use tunelens_models::encoders::{default_model, normalize, open_model, Clamp, LongTunes};

use super::input;

#[derive(Clone, Copy, clap::ValueEnum)]
enum LevelArg {
    Tune,
    Bar,
    Passage,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LongTunesArg {
    /// Split into patch-limit-sized segments and average their vectors, weighted by length.
    Segment,
    /// Keep the first patches up to the limit, as the reference CLaMP does.
    Truncate,
}

/// What every embedding command needs to get a model.
#[derive(clap::Args)]
pub struct ModelArgs {
    /// A model directory: an official CLaMP checkpoint (pytorch_model.bin or model.safetensors
    /// with config.json) or one written by `tunelens train`.
    #[arg(long, env = "TUNELENS_MODEL")]
    model: Option<PathBuf>,
    /// auto, cpu, cuda or cuda:N. auto takes GPU 0 when this build has CUDA (the `cuda`
    /// feature) and a GPU answers, the CPU otherwise.
    #[arg(long, env = "TUNELENS_DEVICE", default_value = "auto")]
    device: String,
    /// The encoders' precision: f32 (the reference's), f16 / bf16 (faster on a GPU; bf16 also
    /// on a CPU with AMX, where its matmuls run on the tile unit), or auto (bf16 on a CPU
    /// with AMX, f32 elsewhere). Pooling and projections stay f32; vectors of another
    /// precision than f32 are stored under their own model id.
    #[arg(long, env = "TUNELENS_DTYPE", default_value = "f32")]
    dtype: String,
}

impl ModelArgs {
    /// --model, else TUNELENS_MODEL (clap reads both), else the default model.
    fn dir(&self) -> anyhow::Result<PathBuf> {
        match &self.model {
            Some(m) => Ok(m.clone()),
            None => Ok(default_model()?),
        }
    }

    pub fn load(&self) -> anyhow::Result<Clamp> {
        Ok(self.load_with_id()?.0)
    }

    /// The model's label heads (`heads/*.json` in its folder); none for official checkpoints.
    pub fn heads(&self) -> anyhow::Result<Vec<tunelens_models::heads::Head>> {
        Ok(tunelens_models::heads::load_heads(&self.dir()?)?)
    }

    /// The model and the id its vectors are stored under in the index.
    pub fn load_with_id(&self) -> anyhow::Result<(Clamp, String)> {
        let dir = self.dir()?;
        let m = open_model(&dir, &self.device, &self.dtype)
            .with_context(|| format!("loading model {}", dir.display()))?;
        Ok((m.clamp, m.id))
    }
}

#[derive(clap::Args)]
pub struct EmbedArgs {
    /// ABC files, or folders to search for .abc files.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
    /// What gets a vector: each tune, each bar, or each window of --window bars.
    #[arg(long, value_enum, default_value = "tune")]
    level: LevelArg,
    /// Bars per passage window.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    window: u32,
    /// Bars between the starts of two passage windows.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    stride: u32,
    /// Cut every unit to this many patches before the model sees it.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=65536))]
    max_patches: Option<u32>,
    /// What to do with tunes longer than the model's patch limit.
    #[arg(long, value_enum, default_value = "segment")]
    long_tunes: LongTunesArg,
    /// Print one JSON object per line per item.
    #[arg(long)]
    json: bool,
    /// Print the raw projection output instead of the L2-normalised vector.
    #[arg(long)]
    no_normalize: bool,
    /// Refuse files larger than this many bytes.
    #[arg(long, default_value_t = DEFAULT_SIZE_LIMIT)]
    max_bytes: usize,
}

#[derive(clap::Args)]
pub struct EmbedTextArgs {
    /// The texts to embed.
    #[arg(required = true)]
    texts: Vec<String>,
    #[command(flatten)]
    model: ModelArgs,
    /// Print one JSON object per line per text.
    #[arg(long)]
    json: bool,
    /// Print the raw projection output instead of the L2-normalised vector.
    #[arg(long)]
    no_normalize: bool,
}

/// One embedded unit, as printed.
#[derive(Serialize)]
struct MusicItem {
    file: String,
    tune: usize,
    title: Option<String>,
    level: Level,
    voice: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    bars: Option<[u32; 2]>,
    start: LineCol,
    end: LineCol,
    patches: usize,
    vector: Vec<f32>,
}

/// Units are embedded this many at a time, across files, so that small files still fill
/// length-bucketed batches.
const FLUSH_AT: usize = 256;

pub fn run(args: &EmbedArgs) -> anyhow::Result<ExitCode> {
    let clamp = args.model.load()?;
    let paths = input::expand(&args.paths)?;
    let level = match args.level {
        LevelArg::Tune => Level::Tune,
        LevelArg::Bar => Level::Bar,
        LevelArg::Passage => Level::Passage,
    };
    let long_tunes = match args.long_tunes {
        LongTunesArg::Segment => LongTunes::Segment,
        LongTunesArg::Truncate => LongTunes::Truncate,
    };
    let options = PatchOptions {
        max_patches: args.max_patches.map_or(usize::MAX, |n| n as usize),
        add_eos_patch: true,
        reference_filter: false,
    };
    let mut patchilizer = Patchilizer::with_view(clamp.music_view());
    let mut pending: Vec<(MusicItem, Vec<[u8; abc::PATCH_LENGTH]>)> = Vec::new();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut failed = 0;
    for parsed in input::readable(&paths, args.max_bytes, &mut failed) {
        let source = &parsed.source;
        for tune in &parsed.file.tunes {
            let units = abc::units(
                source,
                tune,
                level,
                args.window as usize,
                args.stride as usize,
            );
            for unit in units {
                let patches: Vec<_> = patchilizer
                    .encode(&unit.text, unit.text_base.unwrap_or(0), options)
                    .into_iter()
                    .map(|p| p.ids)
                    .collect();
                let item = MusicItem {
                    file: parsed.path.display().to_string(),
                    tune: tune.index,
                    title: tune.title().map(str::to_owned),
                    level,
                    voice: tune
                        .voices
                        .get(unit.voice)
                        .map_or_else(String::new, |v| v.id.clone()),
                    bars: (level != Level::Tune).then_some([unit.first_bar, unit.last_bar]),
                    start: source.line_col(unit.range.start),
                    end: source.line_col(unit.range.end),
                    patches: patches.len(),
                    vector: Vec::new(),
                };
                pending.push((item, patches));
            }
        }
        if pending.len() >= FLUSH_AT {
            flush(&clamp, &mut pending, long_tunes, args, &mut out)?;
        }
    }
    flush(&clamp, &mut pending, long_tunes, args, &mut out)?;
    out.flush()?;
    Ok(input::exit_code(failed))
}

fn flush(
    clamp: &Clamp,
    pending: &mut Vec<(MusicItem, Vec<[u8; abc::PATCH_LENGTH]>)>,
    long_tunes: LongTunes,
    args: &EmbedArgs,
    out: &mut impl Write,
) -> anyhow::Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let tunes: Vec<&[[u8; abc::PATCH_LENGTH]]> =
        pending.iter().map(|(_, p)| p.as_slice()).collect();
    let vectors = clamp.music_features(&tunes, long_tunes)?;
    for ((mut item, _), mut vector) in pending.drain(..).zip(vectors) {
        if !args.no_normalize {
            normalize(&mut vector);
        }
        item.vector = vector;
        if args.json {
            serde_json::to_writer(&mut *out, &item)?;
            writeln!(out)?;
        } else {
            let bars = item.bars.map_or_else(String::new, |[a, b]| {
                format!(" bars {a}-{b} voice {}", item.voice)
            });
            writeln!(
                out,
                "{}:{}-{}  {}{bars}  ({} patches)  {}",
                item.file,
                item.start,
                item.end,
                item.title.as_deref().unwrap_or("(untitled)"),
                item.patches,
                preview(&item.vector)
            )?;
        }
    }
    Ok(())
}

pub fn run_text(args: &EmbedTextArgs) -> anyhow::Result<ExitCode> {
    let clamp = args.model.load()?;
    let texts: Vec<&str> = args.texts.iter().map(String::as_str).collect();
    let vectors = clamp.text_features(&texts)?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for (text, mut vector) in texts.iter().zip(vectors) {
        if !args.no_normalize {
            normalize(&mut vector);
        }
        if args.json {
            #[derive(Serialize)]
            struct TextItem<'a> {
                text: &'a str,
                vector: Vec<f32>,
            }
            serde_json::to_writer(&mut out, &TextItem { text, vector })?;
            writeln!(out)?;
        } else {
            writeln!(out, "{text:?}  {}", preview(&vector))?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `dim 768 [0.0123, -0.0456, 0.0789, ...]`.
fn preview(v: &[f32]) -> String {
    let head: Vec<String> = v.iter().take(4).map(|x| format!("{x:.4}")).collect();
    format!("dim {} [{}, ...]", v.len(), head.join(", "))
}
