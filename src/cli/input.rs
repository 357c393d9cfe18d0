//! Reading the ABC and MusicXML files named on the command line, with errors that name the
//! file and line (or part and measure). MusicXML (`.musicxml`, `.xml`, `.mxl`) is converted to
//! ABC here, once, and everything after reads the ABC; the conversion's map from bars back to
//! measures travels along in [`Parsed::musicxml`].

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use tunelens_models::abc::{self, AbcFile, Diagnostic, SourceError, SourceText};
use tunelens_models::musicxml::{self, Converted};

/// Expands the paths given by the user: files as they are, folders to the `.abc` and MusicXML
/// files under them (sorted, so runs are reproducible).
pub fn expand(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
        if meta.is_dir() {
            let before = out.len();
            walk(path, &mut out).with_context(|| format!("{}", path.display()))?;
            if out.len() == before {
                bail!(
                    "{}: no .abc or MusicXML files in this folder",
                    path.display()
                );
            }
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

/// [`expand`]ed and canonical: how the index names files, so that a file is the same entry
/// however it was named.
pub fn expand_canonical(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    canonical(expand(paths)?)
}

/// Each path canonical, or an error naming the one that is not there.
pub fn canonical(paths: Vec<PathBuf>) -> anyhow::Result<Vec<PathBuf>> {
    paths
        .into_iter()
        .map(|p| std::fs::canonicalize(&p).with_context(|| p.display().to_string()))
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(&path, out)?;
        } else if is_score(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// Whether a path names a file we read: ABC, or MusicXML by its extension.
pub fn is_score(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("abc"))
        || musicxml::is_musicxml_path(path)
}

/// A file read and parsed.
pub struct Parsed {
    pub path: PathBuf,
    /// The ABC text: the file's own, or what its MusicXML converted to.
    pub source: SourceText,
    pub file: AbcFile,
    /// For a MusicXML file: the conversion, whose bars know their part and measure.
    pub musicxml: Option<Converted>,
}

impl Parsed {
    /// Where byte `offset` of the ABC text is, as the user's file counts: `line:col` for ABC,
    /// `part 1 (Soprano), measure 12` for MusicXML.
    pub fn place(&self, offset: u32) -> String {
        match &self.musicxml {
            Some(c) => c
                .measure_at(offset)
                .map_or_else(|| "header".to_owned(), ToString::to_string),
            None => self.source.line_col(offset).to_string(),
        }
    }
}

/// Reads and parses one file. The error names the file, and the line where there is one.
pub fn read(path: &Path, size_limit: usize) -> anyhow::Result<Parsed> {
    let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
    // Check the size before reading, so a huge file is never loaded.
    if meta.len() > size_limit as u64 {
        bail!(
            "{}: {}",
            path.display(),
            SourceError::TooLarge {
                size: meta.len() as usize,
                limit: size_limit
            }
        );
    }
    let bytes = std::fs::read(path).with_context(|| format!("{}", path.display()))?;
    let (source, converted) = if musicxml::is_musicxml_path(path) {
        let limits = musicxml::Limits {
            max_bytes: size_limit,
        };
        let converted = musicxml::convert_with(&bytes, &path.display().to_string(), limits)?;
        (
            SourceText::from_text(converted.abc.clone()),
            Some(converted),
        )
    } else {
        let source = SourceText::from_bytes(&bytes, size_limit).map_err(|e| match e {
            // The binary error carries its line; say it the way compilers do.
            SourceError::Binary { line } => anyhow::anyhow!(
                "{}:{line}: NUL byte: this looks like a binary file, not ABC text",
                path.display()
            ),
            e => anyhow::anyhow!("{}: {e}", path.display()),
        })?;
        (source, None)
    };
    let file = abc::parse(&source);
    if file.tunes.is_empty() {
        bail!(
            "{}: no ABC tunes here (no X: field, and no K: field or bar lines)",
            path.display()
        );
    }
    Ok(Parsed {
        path: path.to_owned(),
        source,
        file,
        musicxml: converted,
    })
}

/// The files of `paths` that could be read, each with its warnings printed; a file that cannot
/// be read is reported (naming it), counted in `failed` and skipped.
pub fn readable<'a>(
    paths: &'a [PathBuf],
    size_limit: usize,
    failed: &'a mut usize,
) -> impl Iterator<Item = Parsed> + 'a {
    paths
        .iter()
        .filter_map(move |path| match read(path, size_limit) {
            Ok(parsed) => {
                print_diagnostics(&parsed);
                Some(parsed)
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                *failed += 1;
                None
            }
        })
}

/// The objects of a JSON Lines file, each with its place (`path:line`) for error messages;
/// blank lines are skipped, a line that is not JSON is an error naming it.
pub fn jsonl(path: &Path) -> anyhow::Result<Vec<(String, serde_json::Value)>> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).with_context(|| name.clone())?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, line)| {
            let place = format!("{name}:{}", n + 1);
            let value = serde_json::from_str(line)
                .with_context(|| format!("{place}: not a JSON object"))?;
            Ok((place, value))
        })
        .collect()
}

/// Failure when any file could not be read.
pub fn exit_code(failed: usize) -> std::process::ExitCode {
    if failed > 0 {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}

/// `path:line:col: warning: message`, as editors and compilers print them.
pub fn print_diagnostics(parsed: &Parsed) {
    if let Some(c) = &parsed.musicxml {
        for w in &c.warnings {
            eprintln!("{}: warning: {w}", parsed.path.display());
        }
    }
    for d in &parsed.file.diagnostics {
        eprintln!("{}", format_diagnostic(parsed, d));
    }
}

pub fn format_diagnostic(parsed: &Parsed, d: &Diagnostic) -> String {
    let at = parsed.source.line_col(d.range.start);
    if parsed.musicxml.is_some() {
        // The ABC was made by the converter: point at the measure, not at its text.
        let at = parsed.place(d.range.start);
        return format!(
            "{}: {at}: {}: {} [{}]",
            parsed.path.display(),
            d.severity.as_str(),
            d.message,
            d.code.as_str(),
        );
    }
    format!(
        "{}:{at}: {}: {} [{}]",
        parsed.path.display(),
        d.severity.as_str(),
        d.message,
        d.code.as_str(),
    )
}
