//! `tunelens corpus`: reference corpora. `add music21` brings the ABC folk collections of the
//! music21 wheel from PyPI (with pip, the only way data enters) and indexes them under the
//! corpus name `music21`, each file tagged with its collection; `list` shows what is indexed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context};
use tunelens_index::{IndexOptions, UnitSettings};
use tunelens_models::abc::DEFAULT_SIZE_LIMIT;

use super::db::{data_dir, DbArgs};
use super::embed::ModelArgs;
use super::index::run_job;
use super::input;

/// The music21 release whose collections tunelens knows.
const MUSIC21_VERSION: &str = "10.5.1";

#[derive(clap::Subcommand)]
pub enum CorpusCommand {
    /// Fetch and index a reference corpus (today: music21).
    Add(AddArgs),
    /// List the indexed corpora with their files and tunes.
    List(ListArgs),
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Known {
    /// O'Neill's 1850, Ryan's Mammoth, Essen, Aird's Airs, ... from the music21 wheel.
    Music21,
}

#[derive(clap::Args)]
pub struct AddArgs {
    #[arg(value_enum)]
    name: Known,
    /// Where downloaded corpora are kept (default: tunelens's data folder).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Only these collections (comma-separated folder names, e.g. oneills1850,ryansMammoth).
    #[arg(long)]
    collections: Option<String>,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    db: DbArgs,
    /// Units per call to the model.
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(command: &CorpusCommand) -> anyhow::Result<ExitCode> {
    match command {
        CorpusCommand::Add(args) => add(args),
        CorpusCommand::List(args) => list(args),
    }
}

fn add(args: &AddArgs) -> anyhow::Result<ExitCode> {
    let Known::Music21 = args.name;
    let data = match &args.data_dir {
        Some(d) => d.clone(),
        None => data_dir()?,
    };
    let root = fetch_music21(&data)?;
    let mut folders: Vec<PathBuf> = match &args.collections {
        Some(list) => list.split(',').map(|c| root.join(c.trim())).collect(),
        None => vec![root.clone()],
    };
    folders.retain(|f| {
        f.exists() || {
            eprintln!("warning: {}: no such music21 collection", f.display());
            false
        }
    });
    if folders.is_empty() {
        bail!(
            "none of the collections given exist under {}",
            root.display()
        );
    }
    let files = input::expand(&folders)?;
    let (clamp, model_id) = args.model.load_with_id()?;
    let store = args.db.open()?;
    let backend = args.db.store.backend()?;
    let options = IndexOptions {
        corpus: "music21".into(),
        settings: UnitSettings::default(),
        max_bytes: DEFAULT_SIZE_LIMIT,
        batch: args.batch,
        roots: folders,
        collections_under: Some(root),
    };
    run_job(
        &store, &backend, &clamp, &model_id, &files, &options, args.json,
    )
}

/// Downloads the music21 wheel with pip (once) and extracts its ABC collections (once);
/// returns the folder holding one subfolder per collection.
fn fetch_music21(data: &Path) -> anyhow::Result<PathBuf> {
    let out = data
        .join("corpora")
        .join(format!("music21-{MUSIC21_VERSION}"));
    let done = out.join(".complete");
    let collections = out.join("music21").join("corpus");
    if done.exists() {
        return Ok(collections);
    }
    let wheels = data.join("wheels");
    std::fs::create_dir_all(&wheels).with_context(|| wheels.display().to_string())?;
    let wheel = wheels.join(format!("music21-{MUSIC21_VERSION}-py3-none-any.whl"));
    if !wheel.exists() {
        eprintln!("fetching music21=={MUSIC21_VERSION} from PyPI with pip ...");
        let status = Command::new("python3")
            .args(["-m", "pip", "download", "--quiet", "--no-deps"])
            .arg(format!("music21=={MUSIC21_VERSION}"))
            .arg("-d")
            .arg(&wheels)
            .status()
            .context("running python3 -m pip (is Python 3 with pip installed?)")?;
        if !status.success() || !wheel.exists() {
            bail!(
                "pip could not download music21=={MUSIC21_VERSION} into {}",
                wheels.display()
            );
        }
    }
    // The wheel is a zip; Python (already needed for pip) extracts it, so tunelens carries
    // no zip reader of its own for this.
    let status = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, zipfile\n\
             z = zipfile.ZipFile(sys.argv[1])\n\
             names = [n for n in z.namelist() if n.startswith('music21/corpus/') and n.lower().endswith('.abc')]\n\
             z.extractall(sys.argv[2], names)\n",
        )
        .arg(&wheel)
        .arg(&out)
        .status()
        .context("running python3 to extract the wheel")?;
    if !status.success() {
        bail!("{}: could not extract the ABC collections", wheel.display());
    }
    std::fs::write(&done, MUSIC21_VERSION).with_context(|| done.display().to_string())?;
    Ok(collections)
}

fn list(args: &ListArgs) -> anyhow::Result<ExitCode> {
    let store = args.db.open()?;
    #[derive(serde::Serialize)]
    struct CorpusInfo {
        name: String,
        files: usize,
        tunes: usize,
        units: usize,
        collections: Vec<String>,
    }
    let mut corpora = Vec::new();
    for name in store.corpora()? {
        let files = store.files(&name)?;
        let mut collections: Vec<String> =
            files.iter().filter_map(|f| f.collection.clone()).collect();
        collections.sort();
        collections.dedup();
        corpora.push(CorpusInfo {
            tunes: files.iter().map(|f| f.tunes.len()).sum(),
            units: files.iter().map(|f| f.units.len()).sum(),
            files: files.len(),
            name,
            collections,
        });
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &serde_json::json!({ "corpora": corpora }))?;
        writeln!(out)?;
    } else if corpora.is_empty() {
        writeln!(out, "{}: nothing indexed yet", store.path().display())?;
    } else {
        for c in corpora {
            writeln!(
                out,
                "{}: {} files, {} tunes, {} units{}",
                c.name,
                c.files,
                c.tunes,
                c.units,
                if c.collections.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", c.collections.join(", "))
                }
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
