//! The one serialisable boundary of tunelens: the JSON-RPC messages that the daemon speaks to
//! editors (the `tunelens/*` LSP extensions) and to scripts (the local socket).
//!
//! Positions and ranges are LSP ones: 0-based line, 0-based character in UTF-16 code units.
//! JSON field names are camelCase. `docs/protocol.md` shows every method with an example.
//!
//! **Architecture Invariant:** this crate does no I/O and depends on nothing but `serde`; both
//! ends of every connection can use it.

use serde::{Deserialize, Serialize};

pub mod jsonrpc;

/// The protocol version reported in the handshake. Bumped on every incompatible change.
pub const PROTOCOL_VERSION: u32 = 1;

/// Method names, so that both ends spell them once.
pub mod methods {
    pub const HANDSHAKE: &str = "tunelens/handshake";
    pub const SIMILAR: &str = "tunelens/similar";
    pub const SEARCH: &str = "tunelens/search";
    /// The compare page: the passage and its matches engraved (`SimilarParams` in).
    pub const COMPARE: &str = "tunelens/compare";
    pub const CLASSIFY: &str = "tunelens/classify";
    pub const STATUS: &str = "tunelens/status";
    pub const REINDEX: &str = "tunelens/reindex";
    /// Socket only (LSP clients use the standard methods): hover, code lenses and
    /// diagnostics of a file on disk.
    pub const HOVER: &str = "textDocument/hover";
    pub const CODE_LENS: &str = "textDocument/codeLens";
    pub const DIAGNOSTICS: &str = "tunelens/diagnostics";
    /// Command ids carried by code lenses and code actions.
    pub const CMD_SUGGEST_GENRE: &str = "tunelens.suggestGenre";
    pub const CMD_FIND_SIMILAR: &str = "tunelens.findSimilar";
}

/// A position in a source file as editors count it: 1-based line and column (in characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LineCol {
    pub line: u32,
    pub col: u32,
}

/// An LSP position: 0-based line, 0-based UTF-16 code unit offset in the line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Serialize, Deserialize)]
pub struct Position {
    pub line: u32,
    pub character: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Range {
    pub start: Position,
    pub end: Position,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextDocumentIdentifier {
    /// A `file://` URI.
    pub uri: String,
}

// ---- tunelens/handshake ----------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HandshakeParams {
    pub client_name: String,
    pub protocol_version: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HandshakeResult {
    pub server_name: String,
    pub server_version: String,
    pub protocol_version: u32,
}

// ---- tunelens/similar and tunelens/search ----------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    #[default]
    Passage,
    Tune,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimilarParams {
    pub text_document: TextDocumentIdentifier,
    pub position: Position,
    /// A selection: the passage starting at its first bar (its start is used).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<Range>,
    #[serde(default)]
    pub level: Level,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<u32>,
    #[serde(flatten)]
    pub filters: ResultFilters,
}

/// How results are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Grouping {
    /// Every passage on its own.
    None,
    /// One match per tune (its best passage), settings of one tune rolled into a family.
    #[default]
    Tune,
}

/// Where a passage must stand in its tune.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PassagePosition {
    #[default]
    Anywhere,
    /// The passage starts the tune (its first bar is bar 1).
    Start,
}

/// What `similar` and `search` results must be, and how they are listed. Every field is
/// optional; left out, it accepts everything (and `group` is `tune`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResultFilters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<Grouping>,
    /// Only these corpora (`workspace`, or a corpus folder's name).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub corpus: Vec<String>,
    /// Only these collections (the first folder under a corpus root).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub collection: Vec<String>,
    /// `6/8`, `C` (= 4/4), `C|` (= 2/2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meter: Option<String>,
    /// A key or a mode: `G`, `Dmix`, `E minor`, `dorian`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// A tune type (`jig`, `reel`): the tune's `R:`, else the zero-shot prediction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rhythm: Option<String>,
    /// Named so because `similar`'s `position` is the cursor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passage_position: Option<PassagePosition>,
}

/// Another setting of a matched tune (grouped results): a file or collection holding it too.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchSource {
    pub uri: String,
    pub title: Option<String>,
    pub tune: usize,
    pub corpus: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    pub score: f32,
    /// Its page on the web, for a corpus whose tunes have one (The Session).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// What was matched: the passage or tune under the cursor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryUnit {
    pub uri: String,
    pub range: Range,
    /// First and last bar (1-based, within the voice); for a tune, its first and last bar.
    pub bars: [u32; 2],
}

/// One similar passage or tune.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Match {
    pub uri: String,
    pub range: Range,
    pub title: Option<String>,
    /// The tune's index in its file (0-based).
    pub tune: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    pub corpus: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bars: Option<[u32; 2]>,
    pub score: f32,
    pub vector_score: f32,
    pub symbolic_score: f32,
    /// "bars 5–8 = bars 3–6 of The Kesh, up a perfect 4th, 2 of 24 notes differ".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
    /// Grouped results: how many other passages of this tune matched too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_passages: Option<usize>,
    /// Grouped results: the tune's other settings (other files or collections), best first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<MatchSource>,
    /// Its page on the web, for a corpus whose tunes have one (The Session's settings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SimilarResult {
    pub query: QueryUnit,
    pub matches: Vec<Match>,
}

/// `tunelens/compare`: one self-contained HTML page (abcjs inlined, no network) engraving the
/// passage and each match one above the other, the notes that differ marked. Each match's
/// location is a `file://` link with `data-uri` and `data-line` (1-based) attributes, so an
/// editor's webview can open it in place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompareResult {
    pub query: QueryUnit,
    pub html: String,
    /// Passages engraved: the query and each match.
    pub passages: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchParams {
    pub text: String,
    #[serde(default = "tune_level")]
    pub level: Level,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<u32>,
    #[serde(flatten)]
    pub filters: ResultFilters,
}

fn tune_level() -> Level {
    Level::Tune
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchResult {
    pub matches: Vec<Match>,
}

// ---- tunelens/classify -----------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClassifyParams {
    pub text_document: TextDocumentIdentifier,
    /// Labels of your own; else `labelSet`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<Vec<String>>,
    /// A shipped label set: `genre` (default) or `rhythm`, or one from the configuration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_set: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelScore {
    pub label: String,
    /// Softmax over the labels of cosine × e (the reference CLaMP's zero-shot scoring).
    pub score: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TuneLabels {
    pub range: Range,
    pub title: Option<String>,
    /// Best first.
    pub labels: Vec<LabelScore>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassifyResult {
    pub tunes: Vec<TuneLabels>,
}

// ---- tunelens/status, tunelens/reindex -------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The id vectors are stored under (a hash of the model's files).
    pub id: String,
    /// The model directory.
    pub name: String,
    pub dim: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CorpusInfo {
    pub name: String,
    pub files: usize,
    pub tunes: usize,
    pub passages: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct QueueInfo {
    /// Units waiting for the model.
    pub pending: usize,
    /// Units in the batch the model is running now.
    pub running: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusResult {
    pub server_version: String,
    pub protocol_version: u32,
    pub model: ModelInfo,
    pub device: String,
    pub corpora: Vec<CorpusInfo>,
    pub queue: QueueInfo,
    pub indexing: bool,
    /// Files indexed and to index in the current run (both 0 when idle).
    #[serde(default)]
    pub files_done: usize,
    #[serde(default)]
    pub files_total: usize,
    /// Where the reference corpora's vectors are searched.
    #[serde(default)]
    pub store: StoreInfo,
    /// What the daemon process holds, where the platform says (Linux with glibc).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryInfo>,
}

/// The daemon's memory, in bytes: what the system counts (resident set) and how the heap
/// splits into live blocks and free space the allocator keeps. A resident set far above the
/// live heap is memory the allocator holds, not data the daemon keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryInfo {
    pub resident: u64,
    /// The most it was resident at any moment.
    pub resident_peak: u64,
    /// Bytes in live heap blocks (mapped blocks included).
    pub heap_live: u64,
    /// Free bytes inside the heap's arenas, kept by the allocator.
    pub heap_free: u64,
}

/// The vector store behind the reference corpora. On Milvus, while the server is down the
/// daemon answers from the workspace alone (`healthy: false`, with the error) and retries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreInfo {
    /// `embedded` or `milvus`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    pub healthy: bool,
    /// Why it is not healthy (the last error), or that it has not been reached yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl Default for StoreInfo {
    fn default() -> Self {
        Self {
            kind: "embedded".into(),
            uri: None,
            healthy: true,
            message: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReindexParams {
    /// One file or folder; all workspace folders and corpora when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReindexResult {}

// ---- socket-only reads of files on disk ------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TextDocumentPositionParams {
    pub text_document: TextDocumentIdentifier,
    pub position: Position,
}

/// A hover as the socket answers it (LSP clients get the standard `Hover`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HoverResult {
    /// Markdown.
    pub contents: String,
    pub range: Option<Range>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DocumentParams {
    pub text_document: TextDocumentIdentifier,
}

/// A code lens as the socket answers it: a range and its title.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lens {
    pub range: Range,
    pub title: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Information,
    Hint,
}

/// A finding in a document: the ABC layer's syntax warnings, or an originality finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Diagnostic {
    pub range: Range,
    pub severity: Severity,
    /// Where it comes from: `abc`, `originality`.
    pub source: String,
    /// A stable code for the kind of finding (`unclosed-slur`, `bar-duration`, ...), as
    /// `tunelens check` prints it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    pub message: String,
}

// ---- configuration ---------------------------------------------------------------------------

/// `initializationOptions`, and the `tunelens` section of `workspace/configuration`. Every
/// field is optional; the command line's flags and environment fill what is missing.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Config {
    pub model_dir: Option<String>,
    /// `auto`, `cpu`, `cuda`, `cuda:N`.
    pub device: Option<String>,
    /// Folders of ABC files to match against (indexed and watched).
    pub corpora: Vec<String>,
    pub window_bars: Option<u32>,
    /// Label sets of your own: name → labels (the prompt is "This piece of music is {label}.").
    pub label_sets: std::collections::BTreeMap<String, Vec<String>>,
    /// The header field the genre code action writes (default `R`).
    pub genre_field: Option<String>,
    pub originality: Option<OriginalityConfig>,
    pub db_path: Option<String>,
}

/// The originality diagnostics: passages of an open document too close to a reference
/// corpus. On unless turned off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct OriginalityConfig {
    pub enabled: bool,
    /// Share of notes agreeing (0..1) from which a passage is reported; `tunelens check`'s
    /// default when absent.
    pub threshold: Option<f32>,
}

impl Default for OriginalityConfig {
    // A missing `enabled` means on: the check is a default feature, not an opt-in.
    fn default() -> Self {
        Self {
            enabled: true,
            threshold: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similar_params_read_the_plugin_shape() {
        let p: SimilarParams = serde_json::from_str(
            r#"{"textDocument":{"uri":"file:///t.abc"},"position":{"line":6,"character":2},"k":5}"#,
        )
        .expect("parses");
        assert_eq!(p.level, Level::Passage);
        assert_eq!(p.k, Some(5));
        assert_eq!(
            p.position,
            Position {
                line: 6,
                character: 2
            }
        );
    }

    #[test]
    fn filters_are_optional_camel_case_fields_of_the_params() {
        let p: SimilarParams = serde_json::from_str(
            r#"{"textDocument":{"uri":"file:///t.abc"},"position":{"line":0,"character":0},
                "group":"none","meter":"6/8","collection":["jigs"],"passagePosition":"start"}"#,
        )
        .expect("parses");
        assert_eq!(p.filters.group, Some(Grouping::None));
        assert_eq!(p.filters.meter.as_deref(), Some("6/8"));
        assert_eq!(p.filters.collection, ["jigs"]);
        assert_eq!(p.filters.passage_position, Some(PassagePosition::Start));
        assert_eq!(p.position, Position::default());
        let s: SearchParams =
            serde_json::from_str(r#"{"text":"a jig","key":"Dmix","rhythm":"jig"}"#)
                .expect("parses");
        assert_eq!(s.level, Level::Tune);
        assert_eq!(s.filters.key.as_deref(), Some("Dmix"));
        assert_eq!(s.filters.passage_position, None);
        // Nothing set, nothing written.
        let plain = SearchParams {
            text: "x".into(),
            level: Level::Tune,
            k: None,
            filters: ResultFilters::default(),
        };
        assert_eq!(
            serde_json::to_string(&plain).expect("writes"),
            r#"{"text":"x","level":"tune"}"#
        );
    }

    #[test]
    fn originality_is_on_unless_turned_off() {
        let c: Config =
            serde_json::from_str(r#"{"originality":{"threshold":0.9}}"#).expect("parses");
        let o = c.originality.expect("given");
        assert!(o.enabled);
        assert_eq!(o.threshold, Some(0.9));
        let c: Config =
            serde_json::from_str(r#"{"originality":{"enabled":false}}"#).expect("parses");
        assert!(!c.originality.expect("given").enabled);
    }

    #[test]
    fn config_fields_are_camel_case_and_optional() {
        let c: Config =
            serde_json::from_str(r#"{"modelDir":"/m","windowBars":8,"labelSets":{"x":["a","b"]}}"#)
                .expect("parses");
        assert_eq!(c.model_dir.as_deref(), Some("/m"));
        assert_eq!(c.window_bars, Some(8));
        assert_eq!(c.label_sets["x"], vec!["a", "b"]);
        let empty: Config = serde_json::from_str("{}").expect("parses");
        assert_eq!(empty, Config::default());
    }
}
