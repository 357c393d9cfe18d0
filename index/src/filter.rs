//! Filters on search results: corpus, collection, meter, key or mode, rhythm type (from `R:`,
//! or predicted zero-shot when a tune has none) and where the passage stands in its tune.
//!
//! Plain data, so the CLI, the LSP server and the socket build one `Filters` from their own
//! arguments and ask the same question of every candidate, before ranking cuts the list.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tunelens_models::abc::Level;
use tunelens_models::heads::Head;

use super::records::{FileRecord, TuneRecord, UnitRecord};
use super::store::{Store, StoreError};
use crate::search::kernels::dot_f32;

/// Where a passage must stand in its tune.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Position {
    #[default]
    Anywhere,
    /// The passage's first bar is the first bar of its voice.
    Start,
}

/// What a result must be; every field left empty accepts everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filters {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub corpus: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub collection: Vec<String>,
    /// `6/8`, `C` (= `4/4`), `C|` (= `2/2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meter: Option<String>,
    /// `G`, `Dmix`, `E minor`, or a mode alone (`dorian`: any tonic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `jig`, `reel`, ...: the tune's `R:` field, or the predicted type when it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rhythm: Option<String>,
    #[serde(default)]
    pub position: Position,
}

/// What a filter looks at for one candidate.
pub struct Candidate<'a> {
    pub corpus: &'a str,
    pub file: &'a FileRecord,
    pub unit: &'a UnitRecord,
    pub tune: Option<&'a TuneRecord>,
    /// The zero-shot rhythm of a tune without `R:` (see [`RhythmPredictions`]).
    pub predicted_rhythm: Option<&'a str>,
}

/// A key filter that does not read as a key or mode.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is no key or mode (try G, Dmix, E minor, dorian)")]
pub struct BadKey(pub String);

impl Filters {
    /// True when nothing is filtered out.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Checks what can be checked before any query: the key filter must read as a key.
    pub fn validate(&self) -> Result<(), BadKey> {
        match &self.key {
            Some(k) if KeyName::parse(k).is_none() => Err(BadKey(k.clone())),
            _ => Ok(()),
        }
    }

    /// Whether a rhythm filter is set, so that predictions are worth making.
    pub fn needs_rhythm(&self) -> bool {
        self.rhythm.is_some()
    }

    pub fn accepts(&self, c: &Candidate) -> bool {
        if !self.corpus.is_empty() && !self.corpus.iter().any(|x| x == c.corpus) {
            return false;
        }
        if !self.collection.is_empty()
            && !c
                .file
                .collection
                .as_ref()
                .is_some_and(|col| self.collection.iter().any(|x| x == col))
        {
            return false;
        }
        if self.position == Position::Start && c.unit.level != Level::Tune && c.unit.first_bar != 1
        {
            return false;
        }
        if let Some(want) = &self.meter {
            let have = c.tune.and_then(|t| t.meter.as_deref());
            if have.is_none_or(|h| normal_meter(h) != normal_meter(want)) {
                return false;
            }
        }
        if let Some(want) = &self.key {
            let (Some(want), Some(have)) = (
                KeyName::parse(want),
                c.tune
                    .and_then(|t| t.key.as_deref())
                    .and_then(KeyName::parse),
            ) else {
                return false;
            };
            if !want.accepts(&have) {
                return false;
            }
        }
        if let Some(want) = &self.rhythm {
            let written = c.tune.and_then(|t| t.rhythm.as_deref());
            let have = written.or(c.predicted_rhythm);
            if have.is_none_or(|h| normal_rhythm(h) != normal_rhythm(want)) {
                return false;
            }
        }
        true
    }
}

/// `C` is 4/4 and `C|` is 2/2; spaces do not count.
fn normal_meter(m: &str) -> String {
    let m: String = m.chars().filter(|c| !c.is_whitespace()).collect();
    match m.as_str() {
        "C" => "4/4".into(),
        "C|" => "2/2".into(),
        _ => m.to_ascii_lowercase(),
    }
}

/// `Reels`, `reel`, ` Reel ` are one type.
fn normal_rhythm(r: &str) -> String {
    let r = r.trim().to_lowercase();
    let r = r.split_whitespace().collect::<Vec<_>>().join(" ");
    r.strip_suffix('s').map(str::to_owned).unwrap_or(r)
}

/// A key as a filter reads it: a tonic (letter and accidental) and a mode, either optional.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KeyName {
    tonic: Option<(char, i8)>,
    /// 0 major (ionian), 1 dorian, 2 phrygian, 3 lydian, 4 mixolydian, 5 minor (aeolian),
    /// 6 locrian.
    mode: Option<u8>,
}

impl KeyName {
    fn parse(text: &str) -> Option<Self> {
        let t = text.trim();
        Self::with_tonic(t).or_else(|| {
            // A mode alone ("dorian"): any tonic.
            let word = t.split_whitespace().next()?;
            (t.split_whitespace().count() == 1).then_some(())?;
            Some(Self {
                tonic: None,
                mode: Some(mode_of(word)?),
            })
        })
    }

    /// `G`, `Bb`, `F#m`, `Dmix`, `E minor`, `D clef=treble`, `D ^f`: a letter, an accidental,
    /// then a mode word or nothing that changes the key's name (clefs, explicit accidentals).
    fn with_tonic(t: &str) -> Option<Self> {
        let mut chars = t.chars();
        let letter = chars
            .next()
            .filter(|c| matches!(c, 'A'..='G' | 'a'..='g'))?;
        let mut rest = chars.as_str();
        let mut acc = 0;
        if let Some(r) = rest.strip_prefix('#') {
            (acc, rest) = (1, r);
        } else if let Some(r) = rest.strip_prefix('b') {
            (acc, rest) = (-1, r);
        }
        let word = rest.split_whitespace().next().unwrap_or("");
        let mode = if word.is_empty() || word.starts_with(['^', '_', '=']) || word.contains('=') {
            0
        } else {
            mode_of(word)?
        };
        Some(Self {
            tonic: Some((letter.to_ascii_uppercase(), acc)),
            mode: Some(mode),
        })
    }

    /// Whether a tune in key `have` fits this filter.
    fn accepts(&self, have: &KeyName) -> bool {
        self.tonic.is_none_or(|t| have.tonic == Some(t))
            && self.mode.is_none_or(|m| have.mode == Some(m))
    }
}

/// A mode word as ABC writes it: only the first three letters count, any case.
fn mode_of(word: &str) -> Option<u8> {
    let w = word.trim().to_ascii_lowercase();
    if w == "m" {
        return Some(5);
    }
    let head: String = w.chars().take(3).collect();
    Some(match head.as_str() {
        "maj" | "ion" => 0,
        "dor" => 1,
        "phr" => 2,
        "lyd" => 3,
        "mix" => 4,
        "min" | "aeo" => 5,
        "loc" => 6,
        _ => return None,
    })
}

/// The zero-shot rhythm type of each tune that has no `R:`: its tune vector against the
/// vectors of prompts such as "This is a jig." (as `tunelens classify --label-set rhythm`).
#[derive(Debug, Default)]
pub struct RhythmPredictions {
    by_tune: HashMap<(String, usize), String>,
}

impl RhythmPredictions {
    /// Predicts for every tune of `files` without `R:` whose tune vector `model` made, with
    /// the model's `rhythm` head when it has one, else zero-shot: `labels` are (label,
    /// normalised prompt vector).
    pub fn predict<'a>(
        store: &Store,
        model: &str,
        files: impl IntoIterator<Item = &'a FileRecord>,
        head: Option<&Head>,
        labels: &[(String, Vec<f32>)],
    ) -> Result<Self, StoreError> {
        let mut by_tune = HashMap::new();
        if labels.is_empty() && head.is_none() {
            return Ok(Self { by_tune });
        }
        for file in files {
            for unit in file.units.iter().filter(|u| u.level == Level::Tune) {
                let tune = file.tunes.iter().find(|t| t.index == unit.tune);
                if tune.is_some_and(|t| t.rhythm.is_some()) {
                    continue;
                }
                let Some(v) = store.vector(model, &unit.key)? else {
                    continue;
                };
                let best = match head.filter(|h| h.dim() == v.len()) {
                    Some(h) => h.predict(&v).into_iter().next().map(|(name, _)| name),
                    None => labels
                        .iter()
                        .filter(|(_, l)| l.len() == v.len())
                        .map(|(name, l)| (name, dot_f32(l, &v)))
                        .max_by(|a, b| a.1.total_cmp(&b.1))
                        .map(|(name, _)| name.clone()),
                };
                if let Some(name) = best {
                    by_tune.insert((file.path.clone(), unit.tune), name);
                }
            }
        }
        Ok(Self { by_tune })
    }

    pub fn get(&self, path: &str, tune: usize) -> Option<&str> {
        self.by_tune
            .get(&(path.to_owned(), tune))
            .map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{ContentKey, LineColRecord, Span};

    fn span() -> Span {
        let lc = LineColRecord { line: 1, col: 1 };
        Span {
            start: 0,
            end: 1,
            start_lc: lc,
            end_lc: lc,
        }
    }

    fn tune(meter: &str, key: &str, rhythm: Option<&str>) -> TuneRecord {
        TuneRecord {
            index: 0,
            reference: None,
            title: Some("t".into()),
            meter: Some(meter.into()),
            key: Some(key.into()),
            rhythm: rhythm.map(str::to_owned),
            fields: Vec::new(),
            range: span(),
        }
    }

    fn file(collection: Option<&str>) -> FileRecord {
        FileRecord {
            path: "/x.abc".into(),
            sha256: [0; 32],
            model: "m".into(),
            settings: Default::default(),
            collection: collection.map(str::to_owned),
            tunes: Vec::new(),
            bars: Vec::new(),
            units: Vec::new(),
        }
    }

    fn unit(first_bar: u32) -> UnitRecord {
        UnitRecord {
            level: Level::Passage,
            tune: 0,
            voice: "1".into(),
            first_bar,
            last_bar: first_bar + 3,
            range: span(),
            key: ContentKey([0; 32]),
            ngrams: Box::default(),
        }
    }

    fn accepts(f: &Filters, t: &TuneRecord, first_bar: u32, predicted: Option<&str>) -> bool {
        let file = file(Some("oneills1850"));
        let unit = unit(first_bar);
        f.accepts(&Candidate {
            corpus: "music21",
            file: &file,
            unit: &unit,
            tune: Some(t),
            predicted_rhythm: predicted,
        })
    }

    #[test]
    fn keys_and_modes() {
        let g = tune("6/8", "G", None);
        let ador = tune("6/8", "Ador", None);
        let em = tune("6/8", "Em", None);
        let key = |k: &str| Filters {
            key: Some(k.into()),
            ..Default::default()
        };
        assert!(accepts(&key("G"), &g, 1, None));
        assert!(accepts(&key("G major"), &g, 1, None));
        assert!(!accepts(&key("G"), &em, 1, None));
        assert!(accepts(&key("E minor"), &em, 1, None));
        assert!(accepts(&key("Emin"), &em, 1, None));
        assert!(accepts(&key("dorian"), &ador, 1, None));
        assert!(!accepts(&key("dorian"), &g, 1, None));
        assert!(accepts(&key("A Dorian"), &ador, 1, None));
        assert!(key("blue").validate().is_err());
        assert!(key("Bb").validate().is_ok());
        assert!(accepts(&key("Bb"), &tune("C", "Bb", None), 1, None));
        assert!(accepts(
            &key("D"),
            &tune("C", "D clef=treble", None),
            1,
            None
        ));
    }

    #[test]
    fn meter_rhythm_position_and_collection() {
        let reel = tune("C|", "D", Some("Reel"));
        let untyped = tune("6/8", "D", None);
        let f = |f: Filters| f;
        assert!(accepts(
            &f(Filters {
                meter: Some("2/2".into()),
                ..Default::default()
            }),
            &reel,
            1,
            None
        ));
        let reels = Filters {
            rhythm: Some("reels".into()),
            ..Default::default()
        };
        assert!(accepts(&reels, &reel, 1, None));
        assert!(!accepts(&reels, &untyped, 1, None));
        assert!(accepts(&reels, &untyped, 1, Some("reel")));
        // A written R: wins over a prediction.
        assert!(!accepts(
            &Filters {
                rhythm: Some("jig".into()),
                ..Default::default()
            },
            &reel,
            1,
            Some("jig")
        ));
        let start = Filters {
            position: Position::Start,
            ..Default::default()
        };
        assert!(accepts(&start, &reel, 1, None));
        assert!(!accepts(&start, &reel, 5, None));
        let col = |c: &str| Filters {
            collection: vec![c.into()],
            ..Default::default()
        };
        assert!(accepts(&col("oneills1850"), &reel, 3, None));
        assert!(!accepts(&col("ryansMammoth"), &reel, 3, None));
        assert!(Filters::default().is_empty());
    }
}
