//! `tunelens store`: `migrate --to milvus` copies the local index to Milvus without embedding
//! anything again; `status` shows what each side holds. Which store a command uses is
//! `db.rs`'s.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};
use tunelens_index::vectors::{sync, Filter, Milvus};
use tunelens_index::{Backend, VectorStore};

use super::db::DbArgs;

#[derive(clap::Subcommand)]
pub enum StoreCommand {
    /// Copy the local index's vectors to Milvus (no re-embedding); resumable, idempotent.
    Migrate(MigrateArgs),
    /// What the local index and the chosen store hold.
    Status(StatusArgs),
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Target {
    Milvus,
}

#[derive(clap::Args)]
pub struct MigrateArgs {
    /// The store to copy to.
    #[arg(long, value_enum)]
    to: Target,
    /// Push files again even when the target already has their rows.
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    db: DbArgs,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

pub fn run(command: &StoreCommand) -> anyhow::Result<ExitCode> {
    match command {
        StoreCommand::Migrate(args) => migrate(args),
        StoreCommand::Status(args) => status(args),
    }
}

fn migrate(args: &MigrateArgs) -> anyhow::Result<ExitCode> {
    let Target::Milvus = args.to;
    let store = args.db.open()?;
    let milvus = Milvus::connect(args.db.store.milvus_config()?)?;
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} files")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let report = sync::migrate(&store, &milvus, args.force, &|done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })?;
    bar.finish_and_clear();
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(&mut out, &report)?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{} -> {}: {} file(s) pushed ({} rows), {} already there; collections: {}",
            store.path().display(),
            milvus.config().uri,
            report.files_pushed,
            report.rows,
            report.files_current,
            if report.collections.is_empty() {
                "none".to_owned()
            } else {
                report.collections.join(", ")
            }
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn status(args: &StatusArgs) -> anyhow::Result<ExitCode> {
    let store = args.db.open()?;
    let backend = args.db.store.backend()?;
    #[derive(serde::Serialize)]
    struct ModelStatus {
        model: String,
        local_units: usize,
        #[serde(skip_serializing_if = "Option::is_none")]
        collection: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        milvus_rows: Option<usize>,
    }
    let mut models: BTreeMap<String, usize> = BTreeMap::new();
    for corpus in store.corpora()? {
        for record in store.files(&corpus)? {
            *models.entry(record.model.clone()).or_default() += record.units.len();
        }
    }
    let mut rows = Vec::new();
    for (model, local_units) in models {
        let (collection, milvus_rows) = match &backend {
            Backend::Embedded => (None, None),
            Backend::Milvus(m) => match m.find(&model)? {
                Some(c) => (
                    Some(c.name().to_owned()),
                    Some(c.count(&Filter::default())?),
                ),
                None => (None, Some(0)),
            },
        };
        rows.push(ModelStatus {
            model,
            local_units,
            collection,
            milvus_rows,
        });
    }
    let mut out = std::io::stdout().lock();
    if args.json {
        serde_json::to_writer(
            &mut out,
            &serde_json::json!({ "store": backend.name(), "db": store.path(), "models": rows }),
        )?;
        writeln!(out)?;
    } else {
        writeln!(
            out,
            "{} (store: {})",
            store.path().display(),
            backend.name()
        )?;
        for r in rows {
            write!(out, "model {}: {} unit(s) recorded", r.model, r.local_units)?;
            match (r.collection, r.milvus_rows) {
                (Some(c), Some(n)) => writeln!(out, ", {n} row(s) in Milvus collection {c}")?,
                (None, Some(_)) => writeln!(out, ", nothing in Milvus")?,
                _ => writeln!(out)?,
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
