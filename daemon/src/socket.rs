//! The script socket: JSON-RPC 2.0 over a Unix socket (mode 0600; nothing on a network port),
//! one message a line or `Content-Length`-framed as LSP is (the first bytes of a connection
//! decide). The same analysis host as the LSP server answers; documents are files on disk,
//! named by `file://` URI.
//!
//! Each connection runs on its own task and answers its requests in order; a request's work
//! runs on a blocking thread, so many connections are served at once. A client that goes away
//! mid-request only loses its answer.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tunelens_protocol as proto;
use tunelens_protocol::jsonrpc::{codes, Error, Id, Request, Response};
use tunelens_protocol::methods;

use crate::analysis::{self, AnalysisError, Host};

/// The largest message taken (a request is small; this only stops a runaway client).
pub const MAX_MESSAGE: usize = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("another tunelens daemon is listening on {0}")]
    InUse(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Serves `host` on `path` until the process ends; indexes `workspace` folders and the
/// configured corpora meanwhile.
pub fn serve(host: Arc<Host>, path: &Path, workspace: Vec<PathBuf>) -> Result<(), SocketError> {
    let io = |source| SocketError::Io {
        path: path.to_owned(),
        source,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(io)?;
    runtime.block_on(async {
        let listener = bind(path).await?;
        // The watcher first: it must see each root before the host lists its files.
        let _watcher = crate::watch::Watcher::start(host.clone())
            .map_err(|e| tracing::warn!(error = %e, "cannot watch files"))
            .ok();
        host.start(workspace);
        tracing::info!(socket = %path.display(), "listening");
        loop {
            let (stream, _) = listener.accept().await.map_err(io)?;
            if !same_user(&stream) {
                tracing::warn!("a connection from another user was refused");
                continue;
            }
            let host = host.clone();
            tokio::spawn(async move {
                if let Err(e) = connection(host, stream).await {
                    tracing::debug!(error = %e, "connection ended");
                }
            });
        }
    })
}

/// Binds the socket, replacing a stale one (left by a killed daemon), refusing a live one.
async fn bind(path: &Path) -> Result<UnixListener, SocketError> {
    let io = |source| SocketError::Io {
        path: path.to_owned(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(SocketError::InUse(path.to_owned()));
        }
        std::fs::remove_file(path).map_err(io)?;
    }
    // No window in which the socket has the umask's mode: it is bound inside a private (0700)
    // folder beside its place, made 0600 there, then renamed into place.
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let dir = path.parent().unwrap_or(Path::new("."));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let private = dir.join(format!(".tunelens-{}-{nanos}", std::process::id()));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&private)
        .map_err(io)?;
    let staged = private.join("socket");
    let placed = UnixListener::bind(&staged)
        .and_then(|listener| {
            std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o600))?;
            std::fs::rename(&staged, path)?;
            Ok(listener)
        })
        .map_err(io);
    let _ = std::fs::remove_file(&staged);
    let _ = std::fs::remove_dir(&private);
    placed
}

/// Whether the peer runs as the user who started the daemon: the socket's mode keeps others
/// out, and this keeps them out if the mode is ever widened (a shared folder, a chmod).
fn same_user(stream: &UnixStream) -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    match stream.peer_cred() {
        Ok(cred) => cred.uid() == me,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the peer's credentials; refused");
            false
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Framing {
    Lines,
    Headers,
}

async fn connection(host: Arc<Host>, stream: UnixStream) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let framing = {
        let first = reader.fill_buf().await?;
        if first.is_empty() {
            return Ok(());
        }
        if first.starts_with(b"Content-Length") || first.starts_with(b"content-length") {
            Framing::Headers
        } else {
            Framing::Lines
        }
    };
    loop {
        let message = match framing {
            Framing::Lines => read_line(&mut reader).await?,
            Framing::Headers => read_framed(&mut reader).await?,
        };
        let body = match message {
            Message::Eof => return Ok(()),
            Message::TooLarge => {
                let e = Error::new(
                    codes::INVALID_REQUEST,
                    format!("message over {MAX_MESSAGE} bytes"),
                );
                send(&mut write, framing, &Response::err(None, e)).await?;
                // The rest of the message cannot be told from the next one: hang up.
                return Ok(());
            }
            Message::Body(b) => b,
        };
        if body.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if let Some(response) = handle(&host, &body).await {
            send(&mut write, framing, &response).await?;
        }
    }
}

enum Message {
    Body(Vec<u8>),
    TooLarge,
    Eof,
}

async fn read_line<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> std::io::Result<Message> {
    let mut buf = Vec::new();
    let n = (&mut *r)
        .take(MAX_MESSAGE as u64 + 1)
        .read_until(b'\n', &mut buf)
        .await?;
    if n == 0 {
        return Ok(Message::Eof);
    }
    if buf.len() > MAX_MESSAGE {
        return Ok(Message::TooLarge);
    }
    Ok(Message::Body(buf))
}

async fn read_framed<R: tokio::io::AsyncBufRead + Unpin>(r: &mut R) -> std::io::Result<Message> {
    let mut length = None;
    loop {
        let Message::Body(line) = read_line(r).await? else {
            return Ok(Message::Eof);
        };
        let line = String::from_utf8_lossy(&line);
        let line = line.trim();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse::<usize>().ok();
            }
        }
    }
    let Some(length) = length else {
        // Headers without a length: answer as a parse error on an empty body.
        return Ok(Message::Body(b"{".to_vec()));
    };
    if length > MAX_MESSAGE {
        return Ok(Message::TooLarge);
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).await?;
    Ok(Message::Body(body))
}

async fn send<W: AsyncWrite + Unpin>(
    w: &mut W,
    framing: Framing,
    response: &Response,
) -> std::io::Result<()> {
    let body = serde_json::to_vec(response).map_err(std::io::Error::other)?;
    match framing {
        Framing::Lines => {
            w.write_all(&body).await?;
            w.write_all(b"\n").await?;
        }
        Framing::Headers => {
            w.write_all(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes())
                .await?;
            w.write_all(&body).await?;
        }
    }
    w.flush().await
}

/// One message → its response (`None` for a notification).
async fn handle(host: &Arc<Host>, body: &[u8]) -> Option<Response> {
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return Some(Response::err(
                None,
                Error::new(codes::PARSE_ERROR, format!("not JSON: {e}")),
            ))
        }
    };
    let id = value
        .get("id")
        .cloned()
        .and_then(|i| serde_json::from_value::<Id>(i).ok());
    let request: Request = match serde_json::from_value(value) {
        Ok(r) if Request::is_valid(&r) => r,
        _ => {
            return Some(Response::err(
                id,
                Error::new(
                    codes::INVALID_REQUEST,
                    "not a JSON-RPC 2.0 request: expected {\"jsonrpc\":\"2.0\",\"method\":..}",
                ),
            ))
        }
    };
    let id = request.id.clone();
    let host = host.clone();
    let result =
        tokio::task::spawn_blocking(move || dispatch(&host, &request.method, request.params))
            .await
            .unwrap_or_else(|e| {
                Err(Error::new(
                    codes::INTERNAL_ERROR,
                    format!("the request failed: {e}"),
                ))
            });
    let id = id?; // a notification gets no answer, even an error
    Some(match result {
        Ok(v) => Response::ok(Some(id), v),
        Err(e) => Response::err(Some(id), e),
    })
}

trait Valid {
    fn is_valid(&self) -> bool;
}

impl Valid for Request {
    fn is_valid(&self) -> bool {
        self.jsonrpc == "2.0" && !self.method.is_empty()
    }
}

/// A method's params, with the LSP's messages (tower-lsp's router): a missing member is
/// "Missing params field", a wrong shape serde's message, so a script and an editor read the
/// same error for the same mistake.
fn params<T: DeserializeOwned>(p: Option<Value>) -> Result<T, Error> {
    let p = p.ok_or_else(|| Error::new(codes::INVALID_PARAMS, "Missing params field"))?;
    serde_json::from_value(p).map_err(|e| Error::new(codes::INVALID_PARAMS, e.to_string()))
}

/// An analysis error as a JSON-RPC error, with the code the LSP answers too.
pub fn rpc_error(e: AnalysisError) -> Error {
    Error::new(e.rpc_code(), e.to_string())
}

fn json<T: serde::Serialize>(r: Result<T, AnalysisError>) -> Result<Value, Error> {
    let v = r.map_err(rpc_error)?;
    serde_json::to_value(v).map_err(|e| Error::new(codes::INTERNAL_ERROR, e.to_string()))
}

/// The socket's methods. Runs on a blocking thread.
fn dispatch(host: &Arc<Host>, method: &str, p: Option<Value>) -> Result<Value, Error> {
    match method {
        methods::HANDSHAKE => {
            let p: proto::HandshakeParams = params(p)?;
            json(analysis::handshake(&p))
        }
        methods::SIMILAR => {
            let p: proto::SimilarParams = params(p)?;
            json(
                host.snapshot(&p.text_document.uri)
                    .and_then(|s| host.similar(&s, &p)),
            )
        }
        methods::COMPARE => {
            let p: proto::SimilarParams = params(p)?;
            json(
                host.snapshot(&p.text_document.uri)
                    .and_then(|s| host.compare(&s, &p)),
            )
        }
        methods::SEARCH => {
            let p: proto::SearchParams = params(p)?;
            json(host.search(&p))
        }
        methods::CLASSIFY => {
            let p: proto::ClassifyParams = params(p)?;
            json(
                host.snapshot(&p.text_document.uri)
                    .and_then(|s| host.classify(&s, &p)),
            )
        }
        methods::STATUS => json(host.status()),
        methods::REINDEX => {
            let p: proto::ReindexParams = match p {
                None | Some(Value::Null) => proto::ReindexParams::default(),
                p => params(p)?,
            };
            json(host.reindex(&p).map(|_| proto::ReindexResult {}))
        }
        methods::HOVER => {
            let p: proto::TextDocumentPositionParams = params(p)?;
            json(
                host.snapshot(&p.text_document.uri)
                    .and_then(|s| host.hover(&s, p.position)),
            )
        }
        methods::CODE_LENS => {
            let p: proto::DocumentParams = params(p)?;
            json(
                host.snapshot(&p.text_document.uri)
                    .and_then(|s| host.code_lenses(&s)),
            )
        }
        methods::DIAGNOSTICS => {
            let p: proto::DocumentParams = params(p)?;
            json(
                host.snapshot(&p.text_document.uri)
                    .map(|s| host.diagnostics(&s)),
            )
        }
        other => Err(Error::new(codes::METHOD_NOT_FOUND, "Method not found")
            .with_data(Value::String(other.to_owned()))),
    }
}
