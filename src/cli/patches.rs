//! `tunelens patches`: what the model sees of a file, and where each piece came from.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use serde::Serialize;
use tunelens_models::abc::{
    LineCol, Patch, PatchOptions, Patchilizer, SourceText, Tune, DEFAULT_SIZE_LIMIT,
};

use super::input::{self, Parsed};

#[derive(clap::Args)]
pub struct PatchesArgs {
    /// ABC files, or folders to search for .abc files.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Print one JSON object per file (one line each) instead of text.
    #[arg(long)]
    json: bool,
    /// The most patches per tune, as the model's patch limit (CLaMP-S: 512).
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..=65536))]
    max_patches: u32,
    /// Refuse files larger than this many bytes.
    #[arg(long, default_value_t = DEFAULT_SIZE_LIMIT)]
    max_bytes: usize,
    /// Drop metadata lines and comments first, as the official CLaMP inference does.
    #[arg(long)]
    reference_filter: bool,
}

pub fn run(args: &PatchesArgs) -> anyhow::Result<ExitCode> {
    let options = PatchOptions {
        max_patches: args.max_patches as usize,
        add_eos_patch: true,
        reference_filter: args.reference_filter,
    };
    let paths = input::expand(&args.paths)?;
    let mut patchilizer = Patchilizer::new();
    let mut failed = 0;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for parsed in input::readable(&paths, args.max_bytes, &mut failed) {
        let tunes: Vec<TuneOut> = parsed
            .file
            .tunes
            .iter()
            .map(|t| tune_out(&parsed.source, t, &mut patchilizer, options))
            .collect();
        if args.json {
            let file = FileOut {
                file: parsed.path.display().to_string(),
                encoding: parsed.source.encoding(),
                tunes,
                diagnostics: diagnostics_out(&parsed),
            };
            serde_json::to_writer(&mut out, &file)?;
            writeln!(out)?;
        } else {
            print_text(&mut out, &parsed, &tunes)?;
        }
    }
    out.flush()?;
    Ok(input::exit_code(failed))
}

#[derive(Serialize)]
struct FileOut {
    file: String,
    encoding: tunelens_models::abc::Encoding,
    tunes: Vec<TuneOut>,
    diagnostics: Vec<DiagnosticOut>,
}

#[derive(Serialize)]
struct DiagnosticOut {
    severity: tunelens_models::abc::Severity,
    start: LineCol,
    message: String,
}

#[derive(Serialize)]
struct TuneOut {
    index: usize,
    reference: Option<String>,
    title: Option<String>,
    meter: Option<String>,
    key: Option<String>,
    unit_length: Option<String>,
    start: LineCol,
    end: LineCol,
    voices: Vec<String>,
    bars: Vec<BarOut>,
    patches: Vec<Patch>,
}

#[derive(Serialize)]
struct BarOut {
    voice: String,
    number: u32,
    text: String,
    start: LineCol,
    end: LineCol,
    #[serde(skip_serializing_if = "Option::is_none")]
    ending: Option<String>,
}

fn tune_out(
    source: &SourceText,
    tune: &Tune,
    patchilizer: &mut Patchilizer,
    options: PatchOptions,
) -> TuneOut {
    let owned = |s: Option<&str>| s.map(str::to_owned);
    let bars = tune
        .voices
        .iter()
        .flat_map(|v| {
            v.bars.iter().map(|b| BarOut {
                voice: v.id.clone(),
                number: b.number,
                text: source.slice(b.range).to_owned(),
                start: source.line_col(b.range.start),
                end: source.line_col(b.range.end),
                ending: b.ending.clone(),
            })
        })
        .collect();
    TuneOut {
        index: tune.index,
        reference: owned(tune.reference()),
        title: owned(tune.title()),
        meter: owned(tune.meter()),
        key: owned(tune.key()),
        unit_length: owned(tune.unit_length()),
        start: source.line_col(tune.range.start),
        end: source.line_col(tune.range.end),
        voices: tune.voices.iter().map(|v| v.id.clone()).collect(),
        bars,
        patches: patchilizer.encode(source.slice(tune.range), tune.range.start, options),
    }
}

fn diagnostics_out(parsed: &Parsed) -> Vec<DiagnosticOut> {
    parsed
        .file
        .diagnostics
        .iter()
        .map(|d| DiagnosticOut {
            severity: d.severity,
            start: parsed.source.line_col(d.range.start),
            message: d.message.clone(),
        })
        .collect()
}

fn print_text(out: &mut impl Write, parsed: &Parsed, tunes: &[TuneOut]) -> std::io::Result<()> {
    writeln!(out, "{}: {} tune(s)", parsed.path.display(), tunes.len())?;
    for tune in tunes {
        writeln!(
            out,
            "\nX:{} {} ({}-{}, M:{} K:{})",
            tune.reference.as_deref().unwrap_or("?"),
            tune.title.as_deref().unwrap_or("(untitled)"),
            tune.start,
            tune.end,
            tune.meter.as_deref().unwrap_or("-"),
            tune.key.as_deref().unwrap_or("-"),
        )?;
        for voice in &tune.voices {
            let bars: Vec<&BarOut> = tune.bars.iter().filter(|b| &b.voice == voice).collect();
            writeln!(out, "  voice {voice}: {} bar(s)", bars.len())?;
            for bar in bars {
                let range = format!("{}-{}", bar.start, bar.end);
                writeln!(
                    out,
                    "  {:>5}  {range:<13} {}",
                    bar.number,
                    bar.text.replace('\n', "⏎")
                )?;
            }
        }
        writeln!(out, "  patches: {}", tune.patches.len())?;
        for (i, patch) in tune.patches.iter().enumerate() {
            let start = parsed.source.line_col(patch.range.start);
            let end = parsed.source.line_col(patch.range.end);
            let text = if patch.is_eos() {
                "<eos>".to_owned()
            } else {
                patch.text()
            };
            writeln!(out, "  {i:>5}  {:<13} {text}", format!("{start}-{end}"))?;
        }
    }
    Ok(())
}
