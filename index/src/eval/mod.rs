//! Evaluation as a library: the metrics, probes and baselines of `tunelens eval`, the query
//! sets of `eval passages`, and the planted quotes of `eval originality`. The CLI reads the
//! data and prints; what is measured, and how, is here.

pub mod metrics;
pub mod originality;
pub mod passages;
pub mod probe;

use tunelens_models::abc::{self, AbcFile, SourceText};

/// A file of tunes as an evaluation reads it: its name (tune ids are `path#index`), its text
/// and its parse.
pub struct TuneFile {
    pub path: String,
    pub source: SourceText,
    pub file: AbcFile,
}

impl TuneFile {
    pub fn new(path: String, source: SourceText) -> Self {
        let file = abc::parse(&source);
        Self { path, source, file }
    }

    /// The id of tune `index` of this file.
    pub fn tune_id(&self, index: usize) -> String {
        format!("{}#{index}", self.path)
    }
}

/// xorshift64: reproducible choices without a crate for it (a zero state stays zero: seed
/// with `max(1)`).
pub fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}
