//! What can stop a conversion, and what it works around.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A file that cannot be converted at all. Every message names the file; XML errors carry
/// the line and column as compilers print them.
#[derive(Debug, thiserror::Error)]
pub enum MusicXmlError {
    #[error("{name}:{line}:{col}: malformed XML: {message}")]
    Xml {
        name: String,
        line: u32,
        col: u32,
        message: String,
    },
    #[error("{name}: not MusicXML: {reason}")]
    NotMusicXml { name: String, reason: String },
    #[error("{name}: .mxl archive: {reason}")]
    Archive { name: String, reason: String },
    #[error("{name}: {what} is over the limit of {limit} bytes{detail}")]
    TooLarge {
        name: String,
        what: String,
        limit: usize,
        /// Where it was found to be too large (e.g. ", at part 2, measure 40").
        detail: String,
    },
    #[error("{name}: the score has no parts with measures")]
    Empty { name: String },
}

/// Something in the score the converter skipped or approximated, with its place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// 1-based part, when the warning belongs to one.
    pub part: Option<u32>,
    /// The measure's `number` attribute, when the warning belongs to one.
    pub measure: Option<String>,
    pub message: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.part, &self.measure) {
            (Some(p), Some(m)) => write!(f, "part {p}, measure {m}: {}", self.message),
            (Some(p), None) => write!(f, "part {p}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}
