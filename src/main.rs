//! `tunelens`: the command line. A thin layer: each subcommand parses its arguments and calls
//! into the library crates; what it prints is built here.

mod cli;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "tunelens",
    version,
    about = "Find what your ABC tunes resemble"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the tunes, voices and bars of ABC files and the CLaMP patches the model reads.
    Patches(cli::patches::PatchesArgs),
    /// Embed tunes, bars or passages of ABC files with a CLaMP model.
    Embed(cli::embed::EmbedArgs),
    /// Embed texts (descriptions, genres) into the same space as the music.
    EmbedText(cli::embed::EmbedTextArgs),
    /// Index ABC files: embed every tune and passage into the corpus index (incremental,
    /// resumable).
    Index(cli::index::IndexArgs),
    /// Find tunes or passages that fit a description.
    Search(cli::query::SearchArgs),
    /// Find the passages (or tunes) nearest to the one at FILE:LINE[:COL].
    Similar(cli::query::SimilarArgs),
    /// Originality check: passages too close to a reference corpus (exit 1 when any); with
    /// --syntax, the ABC diagnostics.
    Check(cli::check::CheckArgs),
    /// Zero-shot labels (genre, rhythm or your own) for each tune.
    Classify(cli::classify::ClassifyArgs),
    /// Reference corpora: add (fetch and index) or list.
    #[command(subcommand)]
    Corpus(cli::corpus::CorpusCommand),
    /// Evaluate a model on labelled tunes: retrieval, zero-shot labels, linear probe.
    Eval(cli::eval::EvalArgs),
    /// The vector store: migrate the local index to Milvus, or show what each side holds.
    #[command(subcommand)]
    Store(cli::store::StoreCommand),
    /// The language server for editors, on stdin/stdout (hover, similar passages, genres).
    Lsp(cli::lsp::LspArgs),
    /// The same analysis for scripts: JSON-RPC 2.0 on a local Unix socket.
    Daemon(cli::lsp::DaemonArgs),
    /// Train or fine-tune a model on ABC collections and their text (contrastive).
    Train(cli::train::TrainArgs),
}

fn main() -> ExitCode {
    // Logs go to stderr: stdout carries results (and, in LSP mode, the protocol).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TUNELENS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let args = Args::parse();
    let result = match args.command {
        Command::Patches(a) => cli::patches::run(&a),
        Command::Embed(a) => cli::embed::run(&a),
        Command::EmbedText(a) => cli::embed::run_text(&a),
        Command::Index(a) => cli::index::run(&a),
        Command::Search(a) => cli::query::search(&a),
        Command::Similar(a) => cli::query::similar(&a),
        Command::Check(a) => cli::check::run(&a),
        Command::Classify(a) => cli::classify::run(&a),
        Command::Corpus(c) => cli::corpus::run(&c),
        Command::Eval(a) => cli::eval::run(&a),
        Command::Store(c) => cli::store::run(&c),
        Command::Lsp(a) => cli::lsp::lsp(&a),
        Command::Daemon(a) => cli::lsp::daemon(&a),
        Command::Train(a) => cli::train::run(&a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            if let Some(hint) = cli::hint(&e) {
                eprintln!("hint: {hint}");
            }
            ExitCode::FAILURE
        }
    }
}
