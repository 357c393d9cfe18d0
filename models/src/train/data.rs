//! Training data: specs (a folder of ABC files, one ABC file, or WikiMT-style JSONL), the
//! tunes they hold with their text fields, and the held-out split.
//!
//! The split is decided per tune by a hash of the seed, the file's name and the tune's place
//! in it, so it does not depend on which other files are in the run: the held-out tunes of a
//! fine-tuning run on one collection are exactly that collection's held-out tunes in the run
//! that trained the default model (same seed), and neither run ever trains on them.

use std::path::{Path, PathBuf};

use crate::abc::{self, Level, SourceText};

use super::error::{Result, TrainError};
use super::rng::hash;
use super::text;

/// One tune of the corpus.
#[derive(Clone, Debug)]
pub struct TrainTune {
    /// `file#index` (JSONL: `file#line`).
    pub id: String,
    pub collection: String,
    /// The tune's ABC text as written.
    pub music: String,
    /// Text fields (may be empty).
    pub fields: Vec<String>,
    /// Its W-bar passage windows, as the index cuts them.
    pub windows: Vec<String>,
    pub held_out: bool,
    /// The JSONL line a row came from, written back as it was for held-out evaluation.
    pub raw: Option<String>,
}

/// Tunes per collection, for the card and the log.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct CollectionCount {
    pub collection: String,
    pub train: usize,
    pub held_out: usize,
}

/// Whether the tune at `key` (file name and place) is held out, for `fraction` (0.1 = 10%).
pub fn is_held_out(seed: u64, key: &str, fraction: f64) -> bool {
    // FNV-1a alone barely moves its high bits for the last characters (`file#1`, `file#2`
    // would all land together), so the hash goes through SplitMix's finaliser first.
    let h = super::rng::Rng::new(hash(&format!("{seed}:{key}"))).next_u64();
    ((h >> 11) as f64 / (1u64 << 53) as f64) < fraction
}

fn abc_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let io = |e: std::io::Error| TrainError::Data {
        path: dir.to_path_buf(),
        reason: e.to_string(),
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()
        .map_err(io)?;
    entries.sort();
    for p in entries {
        if p.is_dir() {
            abc_files(&p, out)?;
        } else if p.extension().is_some_and(|e| e.eq_ignore_ascii_case("abc")) {
            out.push(p);
        }
    }
    Ok(())
}

/// Loads every spec. A folder's collections are its sub-folders (files directly in it belong
/// to a collection named after the folder); a file's collection is its folder's name.
pub fn load(specs: &[PathBuf], seed: u64, held_out: f64, window: usize) -> Result<Vec<TrainTune>> {
    let mut tunes = Vec::new();
    for spec in specs {
        if !spec.exists() {
            return Err(TrainError::Data {
                path: spec.clone(),
                reason: "no such file or folder".into(),
            });
        }
        let before = tunes.len();
        if spec.is_dir() {
            let mut files = Vec::new();
            abc_files(spec, &mut files)?;
            let own = dir_name(spec);
            for f in files {
                let rel = f.strip_prefix(spec).unwrap_or(&f);
                let collection = match rel.components().count() {
                    1 => own.clone(),
                    _ => rel
                        .components()
                        .next()
                        .map(|c| c.as_os_str().to_string_lossy().into_owned())
                        .unwrap_or_default(),
                };
                load_abc(&f, &collection, seed, held_out, window, &mut tunes)?;
            }
        } else if spec.extension().is_some_and(|e| e == "jsonl") {
            load_jsonl(spec, seed, held_out, window, &mut tunes)?;
        } else {
            let collection = spec.parent().map(dir_name).unwrap_or_default();
            load_abc(spec, &collection, seed, held_out, window, &mut tunes)?;
        }
        if tunes.len() == before {
            return Err(TrainError::Empty(format!(
                "{} holds no ABC tunes",
                spec.display()
            )));
        }
    }
    Ok(tunes)
}

fn dir_name(p: &Path) -> String {
    std::fs::canonicalize(p)
        .ok()
        .and_then(|c| c.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| p.display().to_string())
}

fn file_key(f: &Path) -> String {
    f.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn windows(source: &SourceText, tune: &abc::Tune, window: usize) -> Vec<String> {
    abc::units(source, tune, Level::Passage, window, 1)
        .into_iter()
        .filter(|u| u.voice == 0)
        .map(|u| u.text)
        .collect()
}

fn load_abc(
    file: &Path,
    collection: &str,
    seed: u64,
    held_out: f64,
    window: usize,
    out: &mut Vec<TrainTune>,
) -> Result<()> {
    let bytes = std::fs::read(file).map_err(|e| TrainError::Data {
        path: file.to_path_buf(),
        reason: e.to_string(),
    })?;
    let source = match SourceText::from_bytes(&bytes, abc::DEFAULT_SIZE_LIMIT) {
        Ok(s) => s,
        // A binary or over-limit file is skipped with a warning, as `index` does.
        Err(e) => {
            tracing::warn!(file = %file.display(), "skipped: {e}");
            return Ok(());
        }
    };
    let parsed = abc::parse(&source);
    let key = file_key(file);
    for tune in &parsed.tunes {
        let w = windows(&source, tune, window);
        if w.is_empty() {
            continue;
        }
        let id = format!("{key}#{}", tune.index);
        out.push(TrainTune {
            held_out: is_held_out(seed, &id, held_out),
            id,
            collection: collection.to_string(),
            music: source.slice(tune.range).to_string(),
            fields: text::abc_fields(tune, collection),
            windows: w,
            raw: None,
        });
    }
    Ok(())
}

fn load_jsonl(
    file: &Path,
    seed: u64,
    held_out: f64,
    window: usize,
    out: &mut Vec<TrainTune>,
) -> Result<()> {
    let text = std::fs::read_to_string(file).map_err(|e| TrainError::Data {
        path: file.to_path_buf(),
        reason: e.to_string(),
    })?;
    let collection = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let key = file_key(file);
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |reason: String| TrainError::Data {
            path: PathBuf::from(format!("{}:{}", file.display(), n + 1)),
            reason,
        };
        let row: serde_json::Value =
            serde_json::from_str(line).map_err(|e| bad(format!("not JSON: {e}")))?;
        let music = row
            .get("music")
            .or_else(|| row.get("abc"))
            .and_then(|v| v.as_str())
            .ok_or_else(|| bad("no `music` (or `abc`) field".into()))?;
        let source = SourceText::from_text(music.to_string());
        let parsed = abc::parse(&source);
        let Some(tune) = parsed.tunes.first() else {
            return Err(bad("the `music` field holds no ABC tune".into()));
        };
        let w = windows(&source, tune, window);
        if w.is_empty() {
            continue;
        }
        let id = format!("{key}#{}", n + 1);
        out.push(TrainTune {
            held_out: is_held_out(seed, &id, held_out),
            id,
            collection: collection.clone(),
            music: music.to_string(),
            fields: text::wikimt_fields(&row),
            windows: w,
            raw: Some(line.to_string()),
        });
    }
    Ok(())
}

/// Tunes per collection, train and held out.
pub fn counts(tunes: &[TrainTune]) -> Vec<CollectionCount> {
    let mut out: Vec<CollectionCount> = Vec::new();
    for t in tunes {
        let i = match out.iter().position(|c| c.collection == t.collection) {
            Some(i) => i,
            None => {
                out.push(CollectionCount {
                    collection: t.collection.clone(),
                    ..Default::default()
                });
                out.len() - 1
            }
        };
        if t.held_out {
            out[i].held_out += 1;
        } else {
            out[i].train += 1;
        }
    }
    out
}

/// Writes the held-out tunes for the eval commands: per ABC collection a folder with one
/// `tunes.abc`, per JSONL collection a `.jsonl` of its rows' music and fields.
pub fn write_held_out(tunes: &[TrainTune], dir: &Path) -> Result<()> {
    let io = |file: PathBuf| move |source| TrainError::Io { file, source };
    std::fs::create_dir_all(dir).map_err(io(dir.to_path_buf()))?;
    let mut by: std::collections::BTreeMap<&str, Vec<&TrainTune>> = Default::default();
    for t in tunes.iter().filter(|t| t.held_out) {
        by.entry(&t.collection).or_default().push(t);
    }
    for (collection, ts) in by {
        if ts.iter().all(|t| t.raw.is_some()) {
            let rows: String = ts
                .iter()
                .filter_map(|t| t.raw.as_deref())
                .map(|r| format!("{r}\n"))
                .collect();
            let f = dir.join(format!("{collection}.jsonl"));
            std::fs::write(&f, rows).map_err(io(f.clone()))?;
            continue;
        }
        let abc_text: String = ts
            .iter()
            .map(|t| format!("{}\n\n", t.music.trim_end()))
            .collect();
        let sub = dir.join(collection);
        std::fs::create_dir_all(&sub).map_err(io(sub.clone()))?;
        let f = sub.join("tunes.abc");
        std::fs::write(&f, abc_text).map_err(io(f.clone()))?;
    }
    Ok(())
}
