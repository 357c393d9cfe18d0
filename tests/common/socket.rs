//! `tunelens daemon` for the end-to-end tests: the real binary started on a socket in a temp
//! folder, and a script's client for it (one JSON-RPC message a line).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub struct Daemon {
    pub child: Child,
    pub socket: PathBuf,
    pub stderr_path: PathBuf,
}

impl Daemon {
    /// Starts `tunelens daemon` with the tiny fixture model on `db`, indexing `workspace`,
    /// and waits until its socket answers.
    pub fn start(dir: &Path, db: &Path, workspace: &Path, tag: &str) -> Self {
        Self::start_with(dir, db, workspace, tag, &[])
    }

    /// As [`start`](Self::start), with more flags (`--store milvus ...`).
    pub fn start_with(dir: &Path, db: &Path, workspace: &Path, tag: &str, extra: &[&str]) -> Self {
        let model = super::shared_fixture("clamp-tiny-bert");
        let socket = dir.join(format!("{tag}.sock"));
        let stderr_path = dir.join(format!("{tag}.log"));
        let stderr = std::fs::File::create(&stderr_path).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_tunelens"))
            .arg("daemon")
            .arg("--model")
            .arg(&model)
            .arg("--db")
            .arg(db)
            .arg("--device")
            .arg("cpu")
            .arg("--socket")
            .arg(&socket)
            .arg("--workspace")
            .arg(workspace)
            .args(extra)
            .env("TUNELENS_LOG", "tunelens_daemon=debug,info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("the tunelens binary starts");
        let mut daemon = Self {
            child,
            socket,
            stderr_path,
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while UnixStream::connect(&daemon.socket).is_err() {
            if let Some(status) = daemon.child.try_wait().expect("wait") {
                panic!("the daemon exited with {status}:\n{}", daemon.stderr());
            }
            assert!(Instant::now() < deadline, "no socket:\n{}", daemon.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
        daemon
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    pub fn connect(&self) -> SocketClient {
        SocketClient::connect(&self.socket)
    }

    /// Polls `tunelens/status` until indexing is over (and at least one file is in).
    pub fn wait_indexed(&self) -> Value {
        let mut c = self.connect();
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let s = c.request("tunelens/status", json!({}));
            if s["indexing"] == json!(false)
                && s["corpora"].as_array().is_some_and(|a| !a.is_empty())
            {
                return s;
            }
            assert!(Instant::now() < deadline, "still indexing: {s}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct SocketClient {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    next_id: i64,
}

impl SocketClient {
    pub fn connect(path: &Path) -> Self {
        let stream = UnixStream::connect(path).expect("connect to the daemon");
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .expect("timeout");
        let writer = stream.try_clone().expect("clone");
        Self {
            reader: BufReader::new(stream),
            writer,
            next_id: 1,
        }
    }

    /// Writes raw bytes (a line is added by the caller when wanted).
    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write");
        self.writer.flush().expect("flush");
    }

    /// Writes what it can; the daemon may hang up midway.
    pub fn try_write_raw(&mut self, bytes: &[u8]) {
        let _ = self.writer.write_all(bytes);
    }

    /// The next line the daemon writes, as JSON; `None` at EOF.
    pub fn read(&mut self) -> Option<Value> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) | Err(_) => None,
            Ok(_) => Some(serde_json::from_str(&line).expect("the daemon writes JSON lines")),
        }
    }

    /// A request and its whole response (result or error), checking the id.
    pub fn request_raw(&mut self, method: &str, params: Value) -> Value {
        self.request_message(method, Some(params))
    }

    /// A request with no `params` member at all.
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
        let mut msg = serde_json::to_vec(&message).expect("json");
        msg.push(b'\n');
        self.write_raw(&msg);
        let r = self.read().expect("a response before EOF");
        assert_eq!(r["id"], json!(id), "{r}");
        r
    }

    /// A request that must succeed: its result.
    pub fn request(&mut self, method: &str, params: Value) -> Value {
        let r = self.request_raw(method, params);
        assert!(r.get("error").is_none(), "{method} failed: {r}");
        r["result"].clone()
    }
}

impl SocketClient {
    /// A `Content-Length`-framed answer; its header line goes to `head`.
    pub fn read_framed(&mut self, head: &mut String) -> Value {
        use std::io::Read;
        let mut length = 0;
        loop {
            let mut line = String::new();
            self.reader.read_line(&mut line).expect("header");
            if line.trim().is_empty() {
                break;
            }
            if let Some(n) = line.trim().strip_prefix("Content-Length: ") {
                length = n.parse().expect("length");
            }
            head.push_str(&line);
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).expect("body");
        serde_json::from_slice(&body).expect("json")
    }
}
