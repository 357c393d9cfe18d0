//! Where the searchable vectors live (`--store embedded|milvus` and the Milvus settings every
//! index command takes), and `tunelens store`: `migrate --to milvus` copies the local index to
//! Milvus without embedding anything again; `status` shows what each side holds.
//!
//! Credentials never come from flags (they would show in `ps`): `TUNELENS_MILVUS_TOKEN`, or
//! `TUNELENS_MILVUS_USER` with `TUNELENS_MILVUS_PASSWORD`, or the config file. They are never
//! printed or logged.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use tunelens_index::vectors::{sync, Consistency, Filter, IndexKind, Milvus, MilvusConfig, Secret};
use tunelens_index::{Backend, Catalog, Store, VectorStore};
use tunelens_models::abc::Level;

use super::index::DbArgs;

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreKind {
    /// Vectors in memory, from the local index (the default).
    Embedded,
    /// Vectors on a Milvus server (`--milvus-uri`).
    Milvus,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ConsistencyArg {
    Strong,
    Bounded,
    Eventually,
}

/// Which vector store the index commands use.
#[derive(clap::Args, Clone)]
pub struct StoreArgs {
    /// Where the searchable vectors live.
    #[arg(
        long = "store",
        value_enum,
        env = "TUNELENS_STORE",
        default_value = "embedded"
    )]
    kind: StoreKind,
    /// The Milvus server (default http://127.0.0.1:19530, or the config file's `uri`).
    #[arg(long, env = "TUNELENS_MILVUS_URI")]
    milvus_uri: Option<String>,
    /// Milvus settings as JSON: uri, token or user+password, index, params, consistency,
    /// prefix (default: $XDG_CONFIG_HOME/tunelens/milvus.json when it exists).
    #[arg(long, env = "TUNELENS_MILVUS_CONFIG")]
    milvus_config: Option<PathBuf>,
    /// Vector index built on new collections: hnsw (default), flat (exact) or ivf_flat.
    #[arg(long, env = "TUNELENS_MILVUS_INDEX")]
    milvus_index: Option<String>,
    /// Index parameter, repeatable: M, efConstruction, ef (HNSW); nlist, nprobe (IVF_FLAT).
    #[arg(long, value_name = "KEY=VALUE")]
    milvus_param: Vec<String>,
    /// How fresh searches must be: strong (default: sees every finished write), bounded, eventually.
    #[arg(long, value_enum)]
    milvus_consistency: Option<ConsistencyArg>,
    /// Collection names start with this (one server shared by teams or test runs).
    #[arg(long, env = "TUNELENS_MILVUS_PREFIX")]
    milvus_prefix: Option<String>,
    /// Seconds to wait for the server before calling it unreachable.
    #[arg(long, default_value_t = 10)]
    milvus_timeout: u64,
}

/// The config file, every field optional.
#[derive(serde::Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    uri: Option<String>,
    token: Option<String>,
    user: Option<String>,
    password: Option<String>,
    index: Option<String>,
    #[serde(default)]
    params: BTreeMap<String, serde_json::Value>,
    consistency: Option<String>,
    prefix: Option<String>,
}

impl StoreArgs {
    /// The backend chosen, connected. An unreachable Milvus is an error here, before any work.
    pub fn backend(&self) -> anyhow::Result<Backend> {
        match self.kind {
            StoreKind::Embedded => Ok(Backend::Embedded),
            StoreKind::Milvus => {
                let config = self.milvus_config()?;
                tracing::info!(uri = %config.uri, prefix = %config.prefix, index = ?config.index, "connecting to Milvus");
                Ok(Backend::Milvus(Milvus::connect(config)?))
            }
        }
    }

    /// A server's Milvus settings when `--store milvus`; nothing is contacted (a daemon
    /// connects on its own time, and keeps serving while the server is down). Its searches
    /// default to bounded consistency: a strong one waits for the server's next time tick
    /// (~200 ms, docs/benchmarks.md), and a reference corpus changes far less often than that.
    pub fn milvus_for_server(&self) -> anyhow::Result<Option<MilvusConfig>> {
        match self.kind {
            StoreKind::Embedded => Ok(None),
            StoreKind::Milvus => self.milvus_config_with(Consistency::Bounded).map(Some),
        }
    }

    /// Flags and environment first, then the config file, then defaults (strong consistency:
    /// a search right after `index` sees everything it wrote).
    pub fn milvus_config(&self) -> anyhow::Result<MilvusConfig> {
        self.milvus_config_with(Consistency::Strong)
    }

    fn milvus_config_with(&self, default_consistency: Consistency) -> anyhow::Result<MilvusConfig> {
        let (file, file_path) = self.config_file()?;
        let mut config = MilvusConfig::default();
        if let Some(uri) = self.milvus_uri.clone().or(file.uri) {
            config.uri = uri;
        }
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let user_password = |u: Option<String>, p: Option<String>| match (u, p) {
            (Some(u), Some(p)) => Some(format!("{u}:{p}")),
            _ => None,
        };
        config.token = env("TUNELENS_MILVUS_TOKEN")
            .or_else(|| user_password(env("TUNELENS_MILVUS_USER"), env("TUNELENS_MILVUS_PASSWORD")))
            .or(file.token)
            .or_else(|| user_password(file.user, file.password))
            .map(Secret::new);
        let mut params: Vec<(String, String)> = file
            .params
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, v)
            })
            .collect();
        for p in &self.milvus_param {
            let (k, v) = p
                .split_once('=')
                .with_context(|| format!("--milvus-param {p}: expected KEY=VALUE"))?;
            params.retain(|(key, _)| key != k);
            params.push((k.trim().to_owned(), v.trim().to_owned()));
        }
        let index = self
            .milvus_index
            .clone()
            .or(file.index)
            .unwrap_or_else(|| "hnsw".into());
        config.index = IndexKind::parse(&index, &params).with_context(|| match &file_path {
            Some(p) => format!("Milvus settings (flags, environment, {})", p.display()),
            None => "Milvus settings".to_owned(),
        })?;
        config.consistency = match (self.milvus_consistency, file.consistency.as_deref()) {
            (None, None) => default_consistency,
            (Some(ConsistencyArg::Strong), _) | (None, Some("strong")) => Consistency::Strong,
            (Some(ConsistencyArg::Bounded), _) | (None, Some("bounded")) => Consistency::Bounded,
            (Some(ConsistencyArg::Eventually), _) | (None, Some("eventually")) => {
                Consistency::Eventually
            }
            (None, Some(other)) => {
                bail!("Milvus consistency {other:?}: use strong, bounded or eventually")
            }
        };
        if let Some(prefix) = self.milvus_prefix.clone().or(file.prefix) {
            let ok = prefix.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && prefix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !ok || prefix.len() > 100 {
                bail!("--milvus-prefix {prefix:?}: letters, digits and _ only, not starting with a digit, at most 100");
            }
            config.prefix = prefix;
        }
        config.timeout = Duration::from_secs(self.milvus_timeout.max(1));
        Ok(config)
    }

    fn config_file(&self) -> anyhow::Result<(ConfigFile, Option<PathBuf>)> {
        let path = match &self.milvus_config {
            Some(p) => p.clone(),
            None => match default_config_path() {
                Some(p) if p.exists() => p,
                _ => return Ok((ConfigFile::default(), None)),
            },
        };
        let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
        warn_if_readable_by_others(&path);
        let file: ConfigFile = serde_json::from_str(&text).with_context(|| {
            format!(
                "{}: not a Milvus config (JSON with uri, token, user, password, index, params, consistency, prefix)",
                path.display()
            )
        })?;
        Ok((file, Some(path)))
    }
}

fn default_config_path() -> Option<PathBuf> {
    std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .map(|c| c.join("tunelens").join("milvus.json"))
}

/// A file that may hold a token should not be readable by others; say so (never its content).
fn warn_if_readable_by_others(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                eprintln!(
                    "warning: {} is readable by other users; if it holds a token, chmod 600 it",
                    path.display()
                );
            }
        }
    }
}

impl DbArgs {
    /// The single seam where index commands get their catalog: records from the local
    /// database, vectors from the chosen store.
    pub fn catalog(
        &self,
        store: &Store,
        backend: &Backend,
        model_id: &str,
        corpora: &[String],
        level: Level,
    ) -> anyhow::Result<Catalog> {
        Ok(Catalog::open(store, backend, model_id, corpora, level)?)
    }
}

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
