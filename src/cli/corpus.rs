//! `tunelens corpus`: reference corpora. `add music21` brings the ABC folk collections of the
//! music21 wheel from PyPI (with pip, the only way data enters) and indexes them under the
//! corpus name `music21`, each file tagged with its collection; `add FOLDER` makes any folder
//! of ABC or MusicXML a corpus (named after it, or `--name`); adding again updates a corpus in
//! place (unchanged files skipped, removed ones dropped). `list` shows what is indexed and
//! `remove` takes a corpus out of the index.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context};
use tunelens_index::thesession;
use tunelens_index::vectors::sync;
use tunelens_index::{IndexOptions, UnitSettings};
use tunelens_models::abc::{Level, DEFAULT_SIZE_LIMIT};

use super::db::{data_dir, DbArgs};
use super::embed::ModelArgs;
use super::index::run_job;
use super::input;

/// The music21 release whose collections tunelens knows.
const MUSIC21_VERSION: &str = "10.5.1";

#[derive(clap::Subcommand)]
pub enum CorpusCommand {
    /// Fetch and index a reference corpus (`music21`), or index a folder as one.
    Add(AddArgs),
    /// List the indexed corpora: files, tunes, passage windows, models, size on disk.
    List(ListArgs),
    /// Take a corpus out of the index (its files stay where they are).
    Remove(RemoveArgs),
}

#[derive(clap::Args)]
pub struct AddArgs {
    /// `music21` (O'Neill's 1850, Ryan's Mammoth, Essen, Aird's Airs, ... from the music21
    /// wheel on PyPI), `thesession` (every setting of thesession.org's public data dump), or
    /// a folder of ABC or MusicXML files.
    source: String,
    /// For `thesession`: a `tunes.csv` already downloaded, instead of downloading it.
    #[arg(long)]
    from: Option<PathBuf>,
    /// The corpus name for a folder (default: the folder's name).
    #[arg(long)]
    name: Option<String>,
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

#[derive(clap::Args)]
pub struct RemoveArgs {
    /// The corpus, as `corpus list` names it.
    name: String,
    #[command(flatten)]
    db: DbArgs,
}

pub fn run(command: &CorpusCommand) -> anyhow::Result<ExitCode> {
    match command {
        CorpusCommand::Add(args) => add(args),
        CorpusCommand::List(args) => list(args),
        CorpusCommand::Remove(args) => remove(args),
    }
}

fn add(args: &AddArgs) -> anyhow::Result<ExitCode> {
    match args.source.as_str() {
        "music21" => {}
        thesession::CORPUS => return add_thesession(args),
        _ => return add_folder(args),
    }
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

/// A folder of the user's as a corpus: indexed under its name, the folder as the root (files
/// removed since the last run are dropped), first-level subfolders as collections.
fn add_folder(args: &AddArgs) -> anyhow::Result<ExitCode> {
    let folder = Path::new(&args.source);
    if !folder.is_dir() {
        bail!(
            "{}: neither a known corpus (music21) nor a folder",
            args.source
        );
    }
    let folder = std::fs::canonicalize(folder).with_context(|| args.source.clone())?;
    let name = match &args.name {
        Some(n) => n.trim().to_owned(),
        None => folder
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    if name.is_empty() || name.contains('\0') {
        bail!("{}: give the corpus a name with --name", folder.display());
    }
    index_folder(args, &folder, &name, true)
}

/// Indexes `folder` (canonical) as the corpus `name`: the folder as the root (files removed
/// since the last run are dropped), first-level subfolders as collections when `collections`.
fn index_folder(
    args: &AddArgs,
    folder: &Path,
    name: &str,
    collections: bool,
) -> anyhow::Result<ExitCode> {
    let folder = folder.to_owned();
    let files = input::expand_canonical(std::slice::from_ref(&folder))?;
    let (clamp, model_id) = args.model.load_with_id()?;
    let store = args.db.open()?;
    let backend = args.db.store.backend()?;
    let options = IndexOptions {
        corpus: name.to_owned(),
        settings: UnitSettings::default(),
        max_bytes: DEFAULT_SIZE_LIMIT,
        batch: args.batch,
        roots: vec![folder.clone()],
        collections_under: collections.then_some(folder),
    };
    run_job(
        &store, &backend, &clamp, &model_id, &files, &options, args.json,
    )
}

/// The Session: the dump (downloaded, or `--from`) written as one ABC file per tune under the
/// data folder, indexed as the corpus `thesession`. Adding it again updates it in place: files
/// whose text is unchanged are not rewritten (so not re-read), tunes gone from the dump go.
fn add_thesession(args: &AddArgs) -> anyhow::Result<ExitCode> {
    let data = match &args.data_dir {
        Some(d) => d.clone(),
        None => data_dir()?,
    };
    let dir = data.join("corpora").join(thesession::CORPUS);
    std::fs::create_dir_all(&dir).with_context(|| dir.display().to_string())?;
    let dump = match &args.from {
        Some(f) => f.clone(),
        None => download_thesession(&dir)?,
    };
    let text = std::fs::read_to_string(&dump).with_context(|| dump.display().to_string())?;
    let settings = thesession::read_dump(&text).with_context(|| dump.display().to_string())?;
    if settings.is_empty() {
        bail!("{}: no settings", dump.display());
    }
    let tunes = dir.join("tunes");
    std::fs::create_dir_all(&tunes).with_context(|| tunes.display().to_string())?;
    let tunes = std::fs::canonicalize(&tunes).with_context(|| tunes.display().to_string())?;
    let files = thesession::tune_files(&settings);
    for (id, abc) in &files {
        let path = tunes.join(format!("{id}.abc"));
        if std::fs::read_to_string(&path).ok().as_deref() != Some(abc.as_str()) {
            std::fs::write(&path, abc).with_context(|| path.display().to_string())?;
        }
    }
    for entry in std::fs::read_dir(&tunes).with_context(|| tunes.display().to_string())? {
        let path = entry?.path();
        let id = path
            .file_stem()
            .and_then(|s| s.to_str()?.parse::<u64>().ok());
        if id.is_some_and(|id| !files.contains_key(&id)) {
            std::fs::remove_file(&path).with_context(|| path.display().to_string())?;
        }
    }
    eprintln!(
        "{} settings of {} tunes from {}",
        settings.len(),
        files.len(),
        dump.display()
    );
    // One file per tune: a tune is no collection.
    index_folder(args, &tunes, thesession::CORPUS, false)
}

/// The dump from thesession.org's data repository, with curl; a clear error when offline.
fn download_thesession(dir: &Path) -> anyhow::Result<PathBuf> {
    let out = dir.join("tunes.csv");
    let part = dir.join("tunes.csv.part");
    eprintln!(
        "downloading {} ...\nnote: The Session's data has its own licence (LICENSE.md in \
         github.com/adactio/TheSession-data); among other terms it forbids using the material \
         with large language models. tunelens's encoder is not one, but read the licence.",
        thesession::DUMP_URL
    );
    let status = Command::new("curl")
        .args([
            "--fail",
            "--location",
            "--silent",
            "--show-error",
            "--output",
        ])
        .arg(&part)
        .arg(thesession::DUMP_URL)
        .status()
        .context("running curl (is it installed?)")?;
    if !status.success() {
        let _ = std::fs::remove_file(&part);
        bail!(
            "could not download {} (offline?): curl {status}; download it elsewhere and pass \
             --from FILE",
            thesession::DUMP_URL
        );
    }
    std::fs::rename(&part, &out).with_context(|| out.display().to_string())?;
    Ok(out)
}

/// Every file record of the corpus removed, and its rows on Milvus when the store is there.
/// The vectors stay in the content cache: another corpus may hold the same music, and adding
/// the corpus again then costs no embedding.
fn remove(args: &RemoveArgs) -> anyhow::Result<ExitCode> {
    let store = args.db.open()?;
    let corpora = store.corpora()?;
    if !corpora.contains(&args.name) {
        bail!(
            "no corpus {:?} in {} (it has: {})",
            args.name,
            store.path().display(),
            if corpora.is_empty() {
                "none".to_owned()
            } else {
                corpora.join(", ")
            }
        );
    }
    let backend = args.db.store.backend()?;
    let paths = store.paths(&args.name)?;
    for path in &paths {
        if let Some(record) = store.file(&args.name, path)? {
            sync::forget_file(&store, &backend, &args.name, &record)?;
        }
        store.remove_file(&args.name, path)?;
    }
    store.flush()?;
    println!("removed corpus {} ({} files)", args.name, paths.len());
    Ok(ExitCode::SUCCESS)
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
        /// Passage windows among the units.
        windows: usize,
        /// The model ids its files were indexed with.
        models: Vec<String>,
        /// On disk: the file records, and the vectors of its distinct units (f32).
        size_bytes: u64,
        collections: Vec<String>,
    }
    let mut corpora = Vec::new();
    for name in store.corpora()? {
        let files = store.files(&name)?;
        let mut collections: Vec<String> =
            files.iter().filter_map(|f| f.collection.clone()).collect();
        collections.sort();
        collections.dedup();
        let mut models: Vec<String> = files.iter().map(|f| f.model.clone()).collect();
        models.sort();
        models.dedup();
        let units = files.iter().flat_map(|f| &f.units);
        // Distinct vectors by (model, content); one model's vectors share one width, read once.
        let keys: std::collections::HashSet<(&str, _)> = files
            .iter()
            .flat_map(|f| f.units.iter().map(move |u| (f.model.as_str(), u.key)))
            .collect();
        let mut widths: std::collections::HashMap<&str, u64> = std::collections::HashMap::new();
        let mut vector_bytes = 0u64;
        for (model, key) in &keys {
            let width = match widths.get(model) {
                Some(w) => *w,
                None => {
                    let w = store.vector(model, key)?.map_or(0, |v| v.len() as u64);
                    widths.insert(model, w);
                    w
                }
            };
            vector_bytes += 4 * width;
        }
        corpora.push(CorpusInfo {
            tunes: files.iter().map(|f| f.tunes.len()).sum(),
            units: units.clone().count(),
            windows: units.filter(|u| u.level == Level::Passage).count(),
            files: files.len(),
            size_bytes: store.corpus_bytes(&name)? + vector_bytes,
            models,
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
                "{}: {} files, {} tunes, {} passage windows, {:.1} MB, model {}{}",
                c.name,
                c.files,
                c.tunes,
                c.windows,
                c.size_bytes as f64 / 1e6,
                c.models.join(" + "),
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
