//! The LSP server: a thin conversion between LSP types and the analysis host.
//!
//! Built on `tower-lsp-server` 0.23, the maintained community fork of `tower-lsp` (0.20 has
//! had no release since 2023): the same API, async trait methods without a macro, `Uri`s that
//! convert to and from paths. Each handler converts its params, runs the host's synchronous
//! method on a blocking thread, and converts the answer back; nothing here decides anything.
//!
//! Typing: `didChange` applies the edit at once, then analysis (re-parse, embed new units) runs
//! after a 150 ms pause in typing; an older version's work is cancelled by the host. A hover
//! or similar request on a changed document analyses its current version right away, so an
//! answer always reflects the text the editor has.

use std::str::FromStr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::Value;
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Result};
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer, LspService, Server};
use tunelens_protocol as proto;
use tunelens_protocol::methods;

use crate::analysis::{self, AnalysisError, Host, IndexEvent, Snapshot};

/// How long typing must pause before a changed document is analysed.
pub const DEBOUNCE: Duration = Duration::from_millis(150);

/// Makes the host once the client's configuration is known (the binary loads the model).
pub type Launcher =
    Box<dyn Fn(proto::Config) -> std::result::Result<Arc<Host>, String> + Send + Sync>;

struct Backend {
    client: Client,
    launcher: Launcher,
    host: OnceLock<Arc<Host>>,
    workspace: OnceLock<Vec<std::path::PathBuf>>,
    watcher: std::sync::Mutex<Option<crate::watch::Watcher>>,
}

/// A request for a method whose params are all optional (`tunelens/status`, `reindex`) with
/// no `params` member gets `null` ones: tower-lsp's router refuses a missing member for a
/// handler that takes params, and clients send all of nothing, `null` and `{}` (the socket
/// takes all three too).
fn params_optional(
    request: tower_lsp_server::jsonrpc::Request,
) -> tower_lsp_server::jsonrpc::Request {
    if ![methods::STATUS, methods::REINDEX].contains(&request.method())
        || request.params().is_some()
    {
        return request;
    }
    let (method, id, _) = request.into_parts();
    let builder = tower_lsp_server::jsonrpc::Request::build(method).params(Value::Null);
    match id {
        Some(id) => builder.id(id).finish(),
        None => builder.finish(),
    }
}

/// Serves LSP on stdin/stdout until the client exits.
pub fn serve_stdio(launcher: Launcher) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let (service, socket) = LspService::build(|client| Backend {
            client,
            launcher,
            host: OnceLock::new(),
            workspace: OnceLock::new(),
            watcher: std::sync::Mutex::new(None),
        })
        .custom_method(methods::HANDSHAKE, Backend::handshake)
        .custom_method(methods::SIMILAR, Backend::similar)
        .custom_method(methods::COMPARE, Backend::compare)
        .custom_method(methods::SEARCH, Backend::search)
        .custom_method(methods::CLASSIFY, Backend::classify)
        .custom_method(methods::STATUS, Backend::status)
        .custom_method(methods::REINDEX, Backend::reindex)
        .finish();
        let service = tower::ServiceExt::map_request(service, params_optional);
        Server::new(tokio::io::stdin(), tokio::io::stdout(), socket)
            .serve(service)
            .await;
    });
    // Blocking tasks still running (an embedding) must not hold the exit.
    runtime.shutdown_timeout(Duration::from_millis(500));
    Ok(())
}

/// An analysis error as an LSP error, with the code the socket answers too.
pub fn rpc_error(e: AnalysisError) -> Error {
    Error {
        code: ErrorCode::from(e.rpc_code()),
        message: e.to_string().into(),
        data: None,
    }
}

fn pos(p: Position) -> proto::Position {
    proto::Position {
        line: p.line,
        character: p.character,
    }
}

fn lsp_pos(p: proto::Position) -> Position {
    Position::new(p.line, p.character)
}

fn lsp_range(r: proto::Range) -> Range {
    Range::new(lsp_pos(r.start), lsp_pos(r.end))
}

fn lsp_uri(s: &str) -> Result<Uri> {
    Uri::from_str(s).map_err(|_| Error::invalid_params(format!("bad URI {s}")))
}

impl Backend {
    fn host(&self) -> Result<Arc<Host>> {
        self.host.get().cloned().ok_or_else(|| Error {
            code: ErrorCode::ServerError(proto::jsonrpc::codes::SERVER_NOT_INITIALIZED),
            message: "the server is not initialised".into(),
            data: None,
        })
    }

    /// Runs `f` with the host on a blocking thread.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Host) -> std::result::Result<T, AnalysisError> + Send + 'static,
    ) -> Result<T> {
        let host = self.host()?;
        tokio::task::spawn_blocking(move || f(&host))
            .await
            .map_err(|e| Error {
                code: ErrorCode::InternalError,
                message: format!("the request failed: {e}").into(),
                data: None,
            })?
            .map_err(rpc_error)
    }

    /// Runs `f` on the newest snapshot of `uri`.
    async fn with_snapshot<T: Send + 'static>(
        &self,
        uri: &Uri,
        f: impl FnOnce(&Host, &Snapshot) -> std::result::Result<T, AnalysisError> + Send + 'static,
    ) -> Result<T> {
        let uri = uri.as_str().to_owned();
        self.run(move |host| {
            let snapshot = host.snapshot(&uri)?;
            f(host, &snapshot)
        })
        .await
    }

    /// Analyses `uri` at `version` and publishes its diagnostics (when still current).
    fn analyse_later(&self, uri: Uri, path: String, version: i32, delay: Duration) {
        let Ok(host) = self.host() else { return };
        let client = self.client.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            if host.version(&path) != Some(version) {
                return; // typing went on: a newer task will run
            }
            let h = host.clone();
            let done = tokio::task::spawn_blocking(move || {
                let started = std::time::Instant::now();
                let s = h.analyze(&path, version)?;
                tracing::debug!(
                    path,
                    version,
                    ms = started.elapsed().as_millis() as u64,
                    "analysed"
                );
                Ok::<_, AnalysisError>(h.diagnostics(&s))
            })
            .await;
            match done {
                Ok(Ok(diagnostics)) => {
                    let diagnostics = diagnostics.into_iter().map(lsp_diagnostic).collect();
                    client
                        .publish_diagnostics(uri, diagnostics, Some(version))
                        .await;
                }
                Ok(Err(AnalysisError::Cancelled)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "analysis failed"),
                Err(e) => tracing::error!(error = %e, "analysis panicked"),
            }
        });
    }

    /// Sends the host's indexing events as `$/progress`, in order.
    fn forward_progress(&self, host: &Host) {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<IndexEvent>();
        host.set_progress_sink(Box::new(move |e| {
            let _ = tx.send(e);
        }));
        let client = self.client.clone();
        tokio::spawn(async move {
            let mut n = 0;
            let mut ongoing = None;
            while let Some(event) = rx.recv().await {
                match event {
                    IndexEvent::Begin { title } => {
                        n += 1;
                        let token = NumberOrString::String(format!("tunelens/index/{n}"));
                        if client
                            .create_work_done_progress(token.clone())
                            .await
                            .is_err()
                        {
                            continue; // the client does not take server-made progress
                        }
                        if let Some(p) = ongoing.take() {
                            tower_lsp_server::OngoingProgress::finish(p).await;
                        }
                        ongoing = Some(
                            client
                                .progress(token, title)
                                .with_percentage(0)
                                .begin()
                                .await,
                        );
                    }
                    IndexEvent::Report { done, total } => {
                        if let Some(p) = &ongoing {
                            let pct = (done * 100).checked_div(total).unwrap_or(100) as u32;
                            p.report_with_message(format!("{done}/{total} files"), pct)
                                .await;
                        }
                    }
                    IndexEvent::End { message } => {
                        if let Some(p) = ongoing.take() {
                            p.finish_with_message(message).await;
                        }
                    }
                }
            }
        });
    }

    async fn handshake(&self, params: proto::HandshakeParams) -> Result<proto::HandshakeResult> {
        analysis::handshake(&params).map_err(rpc_error)
    }

    async fn similar(&self, params: proto::SimilarParams) -> Result<proto::SimilarResult> {
        let uri = lsp_uri(&params.text_document.uri)?;
        self.with_snapshot(&uri, move |h, s| h.similar(s, &params))
            .await
    }

    async fn compare(&self, params: proto::SimilarParams) -> Result<proto::CompareResult> {
        let uri = lsp_uri(&params.text_document.uri)?;
        self.with_snapshot(&uri, move |h, s| h.compare(s, &params))
            .await
    }

    async fn search(&self, params: proto::SearchParams) -> Result<proto::SearchResult> {
        self.run(move |h| h.search(&params)).await
    }

    async fn classify(&self, params: proto::ClassifyParams) -> Result<proto::ClassifyResult> {
        let uri = lsp_uri(&params.text_document.uri)?;
        self.with_snapshot(&uri, move |h, s| h.classify(s, &params))
            .await
    }

    /// Takes `{}`, `null` or nothing, as clients send all three.
    async fn status(&self, _: Option<Value>) -> Result<proto::StatusResult> {
        self.run(|h| h.status()).await
    }

    async fn reindex(&self, params: Option<proto::ReindexParams>) -> Result<proto::ReindexResult> {
        let host = self.host()?;
        host.reindex(&params.unwrap_or_default())
            .map_err(rpc_error)?;
        Ok(proto::ReindexResult {})
    }
}

fn lsp_diagnostic(d: proto::Diagnostic) -> Diagnostic {
    Diagnostic {
        range: lsp_range(d.range),
        severity: Some(match d.severity {
            proto::Severity::Error => DiagnosticSeverity::ERROR,
            proto::Severity::Warning => DiagnosticSeverity::WARNING,
            proto::Severity::Information => DiagnosticSeverity::INFORMATION,
            proto::Severity::Hint => DiagnosticSeverity::HINT,
        }),
        source: Some(format!("tunelens/{}", d.source)),
        code: d.code.map(NumberOrString::String),
        message: d.message,
        ..Diagnostic::default()
    }
}

fn config_from(value: Option<Value>) -> proto::Config {
    value
        .and_then(|v| match serde_json::from_value::<proto::Config>(v) {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(error = %e, "ignoring a bad tunelens configuration");
                None
            }
        })
        .unwrap_or_default()
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        let config = config_from(params.initialization_options);
        let mut folders: Vec<std::path::PathBuf> = params
            .workspace_folders
            .unwrap_or_default()
            .iter()
            .filter_map(|f| f.uri.to_file_path().map(|p| p.into_owned()))
            .collect();
        #[allow(deprecated)]
        if folders.is_empty() {
            folders.extend(
                params
                    .root_uri
                    .as_ref()
                    .and_then(|u| u.to_file_path().map(|p| p.into_owned())),
            );
        }
        let _ = self.workspace.set(folders);
        let launcher_result = tokio::task::block_in_place(|| (self.launcher)(config));
        let host = launcher_result.map_err(|e| Error {
            code: ErrorCode::InternalError,
            message: e.into(),
            data: None,
        })?;
        self.forward_progress(&host);
        let refresh = params
            .capabilities
            .workspace
            .as_ref()
            .and_then(|w| w.code_lens.as_ref())
            .and_then(|c| c.refresh_support)
            .unwrap_or(false);
        if refresh {
            // Lenses of a document being typed keep their last scores until its tune is
            // embedded; then the client is asked for them again.
            let client = self.client.clone();
            let runtime = tokio::runtime::Handle::current();
            host.set_tunes_sink(Box::new(move |_path| {
                let client = client.clone();
                runtime.spawn(async move {
                    let _ = client.code_lens_refresh().await;
                });
            }));
        }
        let _ = self.host.set(host);
        Ok(InitializeResult {
            server_info: Some(ServerInfo {
                name: "tunelens".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
            capabilities: ServerCapabilities {
                text_document_sync: Some(TextDocumentSyncCapability::Kind(
                    TextDocumentSyncKind::INCREMENTAL,
                )),
                hover_provider: Some(HoverProviderCapability::Simple(true)),
                references_provider: Some(OneOf::Left(true)),
                code_lens_provider: Some(CodeLensOptions {
                    resolve_provider: Some(false),
                }),
                code_action_provider: Some(CodeActionProviderCapability::Simple(true)),
                execute_command_provider: Some(ExecuteCommandOptions {
                    commands: vec![
                        methods::CMD_SUGGEST_GENRE.into(),
                        methods::CMD_FIND_SIMILAR.into(),
                    ],
                    ..ExecuteCommandOptions::default()
                }),
                position_encoding: Some(PositionEncodingKind::UTF16),
                ..ServerCapabilities::default()
            },
            offset_encoding: None,
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        let Ok(host) = self.host() else { return };
        let folders = self.workspace.get().cloned().unwrap_or_default();
        // The watcher first: it must see each root before the host lists its files.
        match crate::watch::Watcher::start(host.clone()) {
            Ok(w) => {
                if let Ok(mut slot) = self.watcher.lock() {
                    *slot = Some(w);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot watch files"),
        }
        host.start(folders);
        // Clients that keep settings answer workspace/configuration; others already sent
        // initializationOptions.
        let items = vec![ConfigurationItem {
            scope_uri: None,
            section: Some("tunelens".into()),
        }];
        let client = self.client.clone();
        tokio::spawn(async move {
            if let Ok(values) = client.configuration(items).await {
                if let Some(v) = values.into_iter().next().filter(|v| v.is_object()) {
                    host.set_config(config_from(Some(v)));
                }
            }
        });
    }

    async fn shutdown(&self) -> Result<()> {
        if let Ok(host) = self.host() {
            host.stop();
        }
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let Ok(host) = self.host() else { return };
        let d = params.text_document;
        match host.open(d.uri.as_str(), d.version, d.text) {
            Ok(path) => self.analyse_later(d.uri, path, d.version, Duration::ZERO),
            Err(e) => tracing::warn!(error = %e, "didOpen"),
        }
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        let Ok(host) = self.host() else { return };
        let d = params.text_document;
        let changes: Vec<(Option<proto::Range>, String)> = params
            .content_changes
            .into_iter()
            .map(|c| {
                let r = c.range.map(|r| proto::Range {
                    start: pos(r.start),
                    end: pos(r.end),
                });
                (r, c.text)
            })
            .collect();
        match host.change(d.uri.as_str(), d.version, &changes) {
            Ok(path) => self.analyse_later(d.uri, path, d.version, DEBOUNCE),
            Err(e) => tracing::warn!(error = %e, "didChange"),
        }
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        let Ok(host) = self.host() else { return };
        let uri = params.text_document.uri;
        let u = uri.as_str().to_owned();
        let _ = tokio::task::spawn_blocking(move || host.close(&u)).await;
        self.client.publish_diagnostics(uri, Vec::new(), None).await;
    }

    async fn did_change_configuration(&self, params: DidChangeConfigurationParams) {
        let Ok(host) = self.host() else { return };
        let v = params
            .settings
            .get("tunelens")
            .cloned()
            .unwrap_or(params.settings);
        if v.is_object() {
            host.set_config(config_from(Some(v)));
        }
    }

    async fn hover(&self, params: HoverParams) -> Result<Option<Hover>> {
        let p = params.text_document_position_params;
        let at = pos(p.position);
        let hover = self
            .with_snapshot(&p.text_document.uri, move |h, s| h.hover(s, at))
            .await?;
        Ok(hover.map(|h| Hover {
            contents: HoverContents::Markup(MarkupContent {
                kind: MarkupKind::Markdown,
                value: h.contents,
            }),
            range: h.range.map(lsp_range),
        }))
    }

    async fn references(&self, params: ReferenceParams) -> Result<Option<Vec<Location>>> {
        let p = params.text_document_position;
        let similar = proto::SimilarParams {
            text_document: proto::TextDocumentIdentifier {
                uri: p.text_document.uri.as_str().to_owned(),
            },
            position: pos(p.position),
            range: None,
            level: proto::Level::Passage,
            k: Some(20),
            // References are places: every similar passage, not one per tune.
            filters: proto::ResultFilters {
                group: Some(proto::Grouping::None),
                ..Default::default()
            },
        };
        let result = self
            .with_snapshot(&p.text_document.uri, move |h, s| h.similar(s, &similar))
            .await;
        let result = match result {
            Ok(r) => r,
            // Nothing to refer to yet is an empty list, not an error in the editor's face.
            Err(e) if e.code == ErrorCode::ServerError(proto::jsonrpc::codes::INDEXING) => {
                return Ok(Some(Vec::new()))
            }
            Err(e) => return Err(e),
        };
        let locations = result
            .matches
            .into_iter()
            .filter_map(|m| {
                Some(Location {
                    uri: Uri::from_str(&m.uri).ok()?,
                    range: lsp_range(m.range),
                })
            })
            .collect();
        Ok(Some(locations))
    }

    async fn code_lens(&self, params: CodeLensParams) -> Result<Option<Vec<CodeLens>>> {
        let uri = params.text_document.uri;
        let u = uri.as_str().to_owned();
        let lenses = self.with_snapshot(&uri, |h, s| h.code_lenses(s)).await?;
        Ok(Some(
            lenses
                .into_iter()
                .map(|l| CodeLens {
                    range: lsp_range(l.range),
                    command: Some(Command {
                        title: l.title,
                        command: methods::CMD_SUGGEST_GENRE.into(),
                        arguments: Some(vec![
                            Value::String(u.clone()),
                            serde_json::json!(l.range.start),
                        ]),
                    }),
                    data: None,
                })
                .collect(),
        ))
    }

    async fn code_action(&self, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        let uri = params.text_document.uri;
        let at = pos(params.range.start);
        let edit = self
            .with_snapshot(&uri, move |h, s| {
                Ok(h.genre_edit(s, at)?.map(|e| (e, h.genre_field().0)))
            })
            .await?;
        let Some(((label, range, text), field)) = edit else {
            return Ok(Some(Vec::new()));
        };
        let mut changes = std::collections::HashMap::new();
        changes.insert(uri, vec![TextEdit::new(lsp_range(range), text)]);
        Ok(Some(vec![CodeActionOrCommand::CodeAction(CodeAction {
            title: format!("Set {field}: {label}"),
            kind: Some(CodeActionKind::REFACTOR_REWRITE),
            edit: Some(WorkspaceEdit {
                changes: Some(changes),
                ..WorkspaceEdit::default()
            }),
            ..CodeAction::default()
        })]))
    }

    async fn execute_command(&self, params: ExecuteCommandParams) -> Result<Option<Value>> {
        let uri = params
            .arguments
            .first()
            .and_then(Value::as_str)
            .ok_or_else(|| Error::invalid_params("expected [uri, position]"))?
            .to_owned();
        let at: proto::Position = params
            .arguments
            .get(1)
            .cloned()
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        let lsp = lsp_uri(&uri)?;
        match params.command.as_str() {
            methods::CMD_SUGGEST_GENRE => {
                let edit = self
                    .with_snapshot(&lsp, move |h, s| h.genre_edit(s, at))
                    .await?;
                if let Some((_, range, text)) = edit {
                    let mut changes = std::collections::HashMap::new();
                    changes.insert(lsp, vec![TextEdit::new(lsp_range(range), text)]);
                    let _ = self
                        .client
                        .apply_edit(WorkspaceEdit {
                            changes: Some(changes),
                            ..WorkspaceEdit::default()
                        })
                        .await;
                }
                Ok(None)
            }
            methods::CMD_FIND_SIMILAR => {
                let params = proto::SimilarParams {
                    text_document: proto::TextDocumentIdentifier { uri },
                    position: at,
                    range: None,
                    level: proto::Level::Passage,
                    k: None,
                    filters: proto::ResultFilters::default(),
                };
                let r = self.similar(params).await?;
                Ok(serde_json::to_value(r).ok())
            }
            other => Err(Error::invalid_params(format!("unknown command {other}"))),
        }
    }
}
