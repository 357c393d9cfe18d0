//! `tunelens lsp` (the language server on stdio) and `tunelens daemon` (the same analysis on
//! a local socket for scripts): both load the model and the index, then hand over to
//! `tunelens_daemon`'s servers.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tunelens_daemon::analysis::{Host, HostOptions, OriginalityCheck};
use tunelens_daemon::queue::EmbedQueue;
use tunelens_index::Store;
use tunelens_models::encoders::{default_model, open_model};
use tunelens_protocol::Config;

use super::db::data_dir;
use super::db::StoreArgs;

/// What both servers take; the client's configuration (LSP `initializationOptions`) wins.
#[derive(clap::Args, Clone)]
pub struct ServerArgs {
    /// A model directory (see `tunelens embed --help`).
    #[arg(long, env = "TUNELENS_MODEL")]
    model: Option<PathBuf>,
    /// auto, cpu, cuda or cuda:N (see `tunelens embed --help`); the client's `device` wins.
    #[arg(long, env = "TUNELENS_DEVICE", default_value = "auto")]
    device: String,
    /// auto, f32, f16 or bf16 (see `tunelens embed --help`).
    #[arg(long, env = "TUNELENS_DTYPE", default_value = "f32")]
    dtype: String,
    /// The index database (default: $XDG_DATA_HOME/tunelens/index.sled).
    #[arg(long, env = "TUNELENS_DB")]
    db: Option<PathBuf>,
    /// Folders of ABC files to match against (repeatable): indexed and watched.
    #[arg(long)]
    corpus: Vec<PathBuf>,
    /// Bars per passage window.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=64))]
    window: Option<u32>,
    /// Where the reference corpora's vectors are searched (the workspace's stay in memory).
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(clap::Args)]
pub struct LspArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// Accepted for editors that pass it; stdio is the only transport.
    #[arg(long, hide = true)]
    stdio: bool,
}

#[derive(clap::Args)]
pub struct DaemonArgs {
    #[command(flatten)]
    server: ServerArgs,
    /// The socket (default: $XDG_RUNTIME_DIR/tunelens.sock, else in the data folder).
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Workspace folders to index and watch (repeatable).
    #[arg(long)]
    workspace: Vec<PathBuf>,
}

impl ServerArgs {
    /// The host for a client's configuration.
    fn host(&self, config: Config) -> anyhow::Result<Arc<Host>> {
        let mut config = config;
        let model: PathBuf = match config
            .model_dir
            .as_ref()
            .map(PathBuf::from)
            .or_else(|| self.model.clone())
        {
            Some(m) => m,
            None => default_model().context("no modelDir in the client's configuration")?,
        };
        let device_spec = config.device.clone().unwrap_or_else(|| self.device.clone());
        // Before anything large is allocated: what loading leaves behind is what a daemon
        // costs for as long as it runs.
        tunelens_daemon::memory::configure_allocator();
        tunelens_daemon::memory::start_trimmer(std::time::Duration::from_secs(1));
        let opened = open_model(&model, &device_spec, &self.dtype)
            .with_context(|| format!("loading model {}", model.display()))?;
        let db = match config
            .db_path
            .as_ref()
            .map(PathBuf::from)
            .or_else(|| self.db.clone())
        {
            Some(p) => p,
            None => data_dir()?.join("index.sled"),
        };
        let store = Store::open(&db, false)?;
        for c in &self.corpus {
            let c = c.display().to_string();
            if !config.corpora.contains(&c) {
                config.corpora.push(c);
            }
        }
        if config.window_bars.is_none() {
            config.window_bars = self.window;
        }
        let host = Host::new(HostOptions {
            store,
            queue: EmbedQueue::start(Box::new(opened.clamp)),
            model_id: opened.id,
            model_name: model.display().to_string(),
            device: opened.device,
            config,
            milvus: self.store.milvus_for_server()?,
            heads: tunelens_models::heads::load_heads(&model)?,
        });
        // Both servers report quotations of the reference corpora (Config.originality turns
        // it off or sets the threshold).
        host.add_check(Box::new(OriginalityCheck::default()));
        Ok(host)
    }
}

pub fn lsp(args: &LspArgs) -> anyhow::Result<ExitCode> {
    let server = args.server.clone();
    tunelens_daemon::lsp::serve_stdio(Box::new(move |config| {
        server.host(config).map_err(|e| format!("{e:#}"))
    }))?;
    Ok(ExitCode::SUCCESS)
}

pub fn daemon(args: &DaemonArgs) -> anyhow::Result<ExitCode> {
    let host = args.server.host(Config::default())?;
    let socket = match &args.socket {
        Some(p) => p.clone(),
        None => default_socket()?,
    };
    let workspace = args
        .workspace
        .iter()
        .map(|w| std::fs::canonicalize(w).with_context(|| w.display().to_string()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    tunelens_daemon::socket::serve(host, &socket, workspace)
        .with_context(|| format!("serving on {}", socket.display()))?;
    Ok(ExitCode::SUCCESS)
}

fn default_socket() -> anyhow::Result<PathBuf> {
    let dir = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute() && Path::new(p).is_dir());
    Ok(match dir {
        Some(d) => d.join("tunelens.sock"),
        None => data_dir()?.join("tunelens.sock"),
    })
}
