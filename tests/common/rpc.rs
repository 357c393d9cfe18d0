//! A small LSP client over a child's stdio, for the end-to-end tests: Content-Length frames,
//! requests matched to responses, server requests answered, notifications kept. Anything on
//! stdout that is not a frame fails the test (logs must never go there).

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub struct LspClient {
    pub child: Child,
    stdin: ChildStdin,
    incoming: Receiver<Result<Value, String>>,
    next_id: i64,
    /// Notifications received so far, in order.
    pub notifications: Vec<Value>,
    /// The methods of the requests the server sent (each answered on the way), in order.
    pub server_requests: Vec<String>,
    pub stderr_path: std::path::PathBuf,
}

/// Reads frames until EOF; a non-frame byte sequence is sent as an error.
fn read_frames(stdout: impl Read, tx: std::sync::mpsc::Sender<Result<Value, String>>) {
    let mut r = BufReader::new(stdout);
    loop {
        let mut length = None;
        loop {
            let mut line = String::new();
            match r.read_line(&mut line) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) => {
                    let _ = tx.send(Err(format!("stdout: {e}")));
                    return;
                }
            }
            let t = line.trim_end();
            if t.is_empty() {
                break;
            }
            match t.split_once(": ") {
                Some(("Content-Length", n)) => length = n.parse::<usize>().ok(),
                Some(("Content-Type", _)) => {}
                _ => {
                    let _ = tx.send(Err(format!("not an LSP header on stdout: {line:?}")));
                    return;
                }
            }
        }
        let Some(n) = length else {
            let _ = tx.send(Err("a frame without Content-Length".into()));
            return;
        };
        let mut body = vec![0; n];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let _ = tx.send(serde_json::from_slice(&body).map_err(|e| format!("bad frame: {e}")));
    }
}

impl LspClient {
    pub fn start(args: &[&str], stderr_path: std::path::PathBuf) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tunelens"));
        command.args(args);
        Self::spawn(command, stderr_path)
    }

    /// Starts `command` (the binary, or a wrapper such as a profiler running it) as the
    /// server.
    pub fn spawn(mut command: Command, stderr_path: std::path::PathBuf) -> Self {
        let stderr = std::fs::File::create(&stderr_path).expect("stderr file");
        let mut child = command
            .env(
                "TUNELENS_LOG",
                "tunelens_daemon=debug,tunelens_index=debug,info",
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("the tunelens binary starts");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, incoming) = channel();
        std::thread::spawn(move || read_frames(stdout, tx));
        Self {
            child,
            stdin,
            incoming,
            next_id: 1,
            notifications: Vec::new(),
            server_requests: Vec::new(),
            stderr_path,
        }
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn send(&mut self, message: &Value) {
        let body = serde_json::to_vec(message).expect("json");
        write!(self.stdin, "Content-Length: {}\r\n\r\n", body.len()).expect("write");
        self.stdin.write_all(&body).expect("write");
        self.stdin.flush().expect("flush");
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// The next message, answering the server's own requests on the way.
    fn next(&mut self, deadline: Instant) -> Value {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let m = match self.incoming.recv_timeout(left) {
                Ok(Ok(m)) => m,
                Ok(Err(e)) => panic!("{e}\nstderr:\n{}", self.stderr()),
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no answer in time\nstderr:\n{}", self.stderr())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("the server closed stdout\nstderr:\n{}", self.stderr())
                }
            };
            if m.get("method").is_some() && m.get("id").is_some() {
                // workspace/configuration, window/workDoneProgress/create, applyEdit.
                let result = match m["method"].as_str() {
                    Some("workspace/configuration") => json!([null]),
                    Some("workspace/applyEdit") => json!({"applied": false}),
                    _ => Value::Null,
                };
                let id = m["id"].clone();
                self.send(&json!({"jsonrpc": "2.0", "id": id, "result": result}));
                self.server_requests
                    .push(m["method"].as_str().unwrap_or_default().to_owned());
                continue;
            }
            return m;
        }
    }

    /// Sends a request and waits for its response (result or error object).
    pub fn request_raw(&mut self, method: &str, params: Value) -> Value {
        self.request_message(method, Some(params))
    }

    /// A request with no `params` member at all, as JSON-RPC allows.
    pub fn request_without_params(&mut self, method: &str) -> Value {
        self.request_message(method, None)
    }

    fn request_message(&mut self, method: &str, params: Option<Value>) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let mut message = json!({"jsonrpc": "2.0", "id": id, "method": method});
        if let Some(params) = params {
            message["params"] = params;
        }
        self.send(&message);
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let m = self.next(deadline);
            if m.get("id") == Some(&json!(id)) {
                return m;
            }
            self.notifications.push(m);
        }
    }

    /// A request's result; an error response fails the test.
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let r = self.request_raw(method, params.clone());
        assert!(
            r.get("error").is_none(),
            "{method} {params} failed: {r}\nstderr:\n{}",
            self.stderr()
        );
        r["result"].clone()
    }

    /// Waits for a notification that `pick` accepts.
    pub fn wait_notification(&mut self, pick: impl Fn(&Value) -> bool) -> Value {
        if let Some(i) = self.notifications.iter().position(&pick) {
            return self.notifications.remove(i);
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let m = self.next(deadline);
            if pick(&m) {
                return m;
            }
            self.notifications.push(m);
        }
    }

    /// Forgets the notifications kept so far (a long bench would hold every one).
    pub fn drop_notifications(&mut self) {
        self.notifications.clear();
    }

    /// Polls `tunelens/status` until indexing is over.
    pub fn wait_indexed(&mut self) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let s = self.request("tunelens/status", json!({}));
            if s["indexing"] == json!(false) {
                return s;
            }
            assert!(Instant::now() < deadline, "still indexing: {s}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// shutdown + exit; the process must end with success.
    pub fn stop(mut self) {
        self.request("shutdown", Value::Null);
        self.notify("exit", Value::Null);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(status.success(), "exit status {status}\n{}", self.stderr());
                return;
            }
            assert!(Instant::now() < deadline, "the server did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for LspClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `file://` URI of a path (spaces and non-ASCII percent-encoded).
pub fn file_uri(path: &std::path::Path) -> String {
    let mut out = String::from("file://");
    for b in path.to_string_lossy().bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
