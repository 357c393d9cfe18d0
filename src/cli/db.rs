//! Where the index lives, as every index command is told: the sled database (`--db`,
//! `--rebuild`) and the vector store (`--store embedded|milvus` and the Milvus settings).
//!
//! Credentials never come from flags (they would show in `ps`): `TUNELENS_MILVUS_TOKEN`, or
//! `TUNELENS_MILVUS_USER` with `TUNELENS_MILVUS_PASSWORD`, or the config file. They are never
//! printed or logged.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use tunelens_index::vectors::{Consistency, IndexKind, Milvus, MilvusConfig, Secret};
use tunelens_index::{Backend, Catalog, Store};
use tunelens_models::abc::Level;

/// Where the index lives.
#[derive(clap::Args)]
pub struct DbArgs {
    /// The index database (default: $XDG_DATA_HOME/tunelens/index.sled).
    #[arg(long, env = "TUNELENS_DB")]
    db: Option<PathBuf>,
    /// Empty a database of an older schema and start again.
    #[arg(long)]
    rebuild: bool,
    /// Where the searchable vectors live (embedded or Milvus).
    #[command(flatten)]
    pub store: StoreArgs,
}

impl DbArgs {
    pub fn open(&self) -> anyhow::Result<Store> {
        let path = match &self.db {
            Some(p) => p.clone(),
            None => default_db()?,
        };
        Ok(Store::open(&path, self.rebuild)?)
    }
}

fn default_db() -> anyhow::Result<PathBuf> {
    Ok(data_dir()?.join("index.sled"))
}

/// tunelens's folder for data: `$XDG_DATA_HOME/tunelens` or `~/.local/share/tunelens`.
pub fn data_dir() -> anyhow::Result<PathBuf> {
    tunelens_models::encoders::open::data_dir()
        .context("no data folder: set XDG_DATA_HOME or HOME, or pass --db PATH")
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
