//! JSON-RPC 2.0 envelopes and error codes, as the socket speaks them (the LSP side gets the
//! same from tower-lsp-server). Params and results stay raw JSON values here: each method's
//! types are in the crate root.

use serde::{Deserialize, Serialize};

/// The JSON-RPC 2.0 error codes used, and the LSP ones that apply to the socket too.
pub mod codes {
    /// The message is not JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// JSON, but not a JSON-RPC request (or a message over the size limit).
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL_ERROR: i64 = -32603;
    /// LSP: the request came before `initialize` (LSP only).
    pub const SERVER_NOT_INITIALIZED: i64 = -32002;
    /// LSP: the document changed and the answer would be stale.
    pub const CONTENT_MODIFIED: i64 = -32801;
    /// LSP: the request was cancelled.
    pub const REQUEST_CANCELLED: i64 = -32800;
    /// tunelens: no result yet, the index is still being built; `data` holds the progress.
    pub const INDEXING: i64 = -32001;
    /// tunelens: the client's protocol version is not ours.
    pub const VERSION_MISMATCH: i64 = -32003;
    /// tunelens: the file cannot be read (missing, binary, too large, not ABC).
    pub const BAD_DOCUMENT: i64 = -32004;
}

/// A request id: a number or a string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Id {
    Number(i64),
    String(String),
}

/// A request (with an id) or a notification (without).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    pub jsonrpc: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Id>,
    pub method: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub jsonrpc: String,
    /// `null` when the request's id could not be read (a parse error).
    pub id: Option<Id>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Error>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Error {
    pub code: i64,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
}

impl Error {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// The same error carrying `data` (the unknown method's name, as the LSP sends it).
    pub fn with_data(mut self, data: serde_json::Value) -> Self {
        self.data = Some(data);
        self
    }
}

impl Response {
    pub fn ok(id: Option<Id>, result: serde_json::Value) -> Self {
        Self {
            jsonrpc: "2.0".into(),
            id,
            result: Some(result),
            error: None,
        }
    }

    pub fn err(id: Option<Id>, error: Error) -> Self {
        Self {
            jsonrpc: "2.0".into(),
            id,
            result: None,
            error: Some(error),
        }
    }
}
