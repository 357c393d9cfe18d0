//! Originality diagnostics: the passages of an open document too close to a tune of a
//! reference corpus, as `tunelens check` finds them, published at the passage's range with
//! Information severity (a finding is a question for the composer, not an error). Runs on
//! every analysed version, so a quotation typed in shows up as it is typed.

use std::path::Path;
use std::sync::{Arc, Mutex};

use tunelens_protocol as proto;

use super::document::Snapshot;
use super::host::{DocumentCheck, WORKSPACE};
use tunelens_index::originality::{
    self, Check, CheckMemo, CheckOptions, Finding, Reference, DEFAULT_THRESHOLD,
};
use tunelens_index::{Catalog, Explainer, FileCache, Match, QueryError};

/// The diagnostics' `source`.
pub const SOURCE: &str = "originality";
/// The diagnostics' `code`: a passage close to a reference corpus's passage.
pub const CODE: &str = "close-to-reference";

/// The check, registered with the host by the servers; settings come from
/// `Config.originality` on each run, so a configuration change applies to the next version.
#[derive(Debug)]
pub struct OriginalityCheck {
    /// The reference files findings are explained against, kept parsed between versions.
    files: FileCache,
    /// What the last checks of the most recently checked documents found per window, by path.
    memos: Mutex<Vec<(String, Arc<Mutex<CheckMemo>>)>>,
}

impl OriginalityCheck {
    /// The memo of the document at `path`, made the most recently used.
    fn memo(&self, path: &str) -> Arc<Mutex<CheckMemo>> {
        let mut memos = self.memos.lock().unwrap_or_else(|e| e.into_inner());
        let memo = match memos.iter().position(|(p, _)| p == path) {
            Some(i) => memos.remove(i).1,
            None => Arc::new(Mutex::new(CheckMemo::new(WORKSPACE))),
        };
        if memos.len() >= MEMOS {
            memos.remove(0);
        }
        memos.push((path.to_owned(), memo.clone()));
        memo
    }
}

/// Documents whose windows' findings are kept between versions.
const MEMOS: usize = 8;

/// Reference files kept parsed. With the memo a version explains only the candidates of the
/// windows an edit changed, so a few files are enough; each parsed file is hundreds of KB.
const FILES: usize = 4;

impl Default for OriginalityCheck {
    fn default() -> Self {
        Self {
            files: FileCache::new(FILES),
            memos: Mutex::default(),
        }
    }
}

impl DocumentCheck for OriginalityCheck {
    fn check(
        &self,
        doc: &Snapshot,
        passages: &Catalog,
        _tunes: &Catalog,
        config: &proto::Config,
        cancelled: &dyn Fn() -> bool,
    ) -> Option<Vec<proto::Diagnostic>> {
        let settings = config.originality.clone().unwrap_or_default();
        if !settings.enabled {
            return Some(Vec::new());
        }
        let options = CheckOptions {
            threshold: settings
                .threshold
                .filter(|t| t.is_finite())
                .unwrap_or(DEFAULT_THRESHOLD)
                .clamp(0.0, 1.0),
            // The document is cut as the corpora were indexed (the host's one setting).
            window: doc.record.settings.window,
            ..CheckOptions::default()
        };
        let windows = originality::windows(&doc.source, &doc.file, options.window);
        // The user's own files (this one included) are no reference to copy from.
        let exclude = |m: &Match| m.corpus == WORKSPACE;
        let mut explainer = Explainer::with_cache(&self.files);
        // Held for the whole check: a check of the next version waits here for this one to
        // notice it was cancelled (a window's time), then starts from what it remembered.
        let memo = self.memo(&doc.path);
        let mut memo = memo.lock().unwrap_or_else(|e| e.into_inner());
        let (started, remembered) = (std::time::Instant::now(), memo.len());
        let found = Check {
            reference: Reference {
                catalog: passages,
                exclude: &exclude,
            },
            options: &options,
            explainer: &mut explainer,
            memo: Some(&mut memo),
            cancelled,
        }
        .run(&doc.source, &windows, None);
        tracing::debug!(
            path = %doc.path,
            windows = windows.len(),
            remembered,
            ms = started.elapsed().as_millis() as u64,
            done = found.is_ok(),
            "originality check"
        );
        match found {
            Ok(findings) => Some(findings.iter().map(|f| diagnostic(doc, f)).collect()),
            Err(QueryError::Cancelled) => None,
            Err(e) => {
                // A failed check must not cost the document its syntax diagnostics.
                tracing::warn!(error = %e, path = %doc.path, "originality check");
                Some(Vec::new())
            }
        }
    }
}

/// "bars 3–6 = bars 5–8 of The Kesh, up a perfect 4th, 2 of 24 notes differ · kesh.abc:7
/// [thesession/jigs]".
fn diagnostic(doc: &Snapshot, f: &Finding) -> proto::Diagnostic {
    let r = &f.reference;
    let file = Path::new(&r.path)
        .file_name()
        .map_or_else(|| r.path.clone(), |n| n.to_string_lossy().into_owned());
    let collection = r
        .collection
        .as_deref()
        .map_or_else(String::new, |c| format!("/{c}"));
    let mut message = format!(
        "{} · {file}:{} [{}{collection}]",
        f.explain.summary, r.start.line, r.corpus
    );
    if let Some(note) = f.setting_note() {
        message.push_str(&format!("; {note}"));
    }
    if !f.also.is_empty() {
        let others: Vec<&str> = f
            .also
            .iter()
            .map(|s| s.title.as_deref().unwrap_or("(untitled)"))
            .collect();
        message.push_str(&format!("; as close: {}", others.join(", ")));
    }
    proto::Diagnostic {
        range: doc.range(f.query.range),
        severity: proto::Severity::Information,
        source: SOURCE.into(),
        code: Some(CODE.into()),
        message,
    }
}
