//! Results grouped by tune: one hit per tune with its best passage and how many other passages
//! of it matched, and the settings of one tune in several collections (the same normalised
//! title, or near-identical tune vectors) rolled up into one family that lists its sources.
//!
//! Without this a top-10 is often one tune ten times: a strain repeats, and O'Neill's and
//! Ryan's print the same reel.

use serde::{Deserialize, Serialize};

use super::query::Match;

/// How results are listed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Grouping {
    /// Every passage on its own.
    None,
    /// One entry per tune family.
    #[default]
    Tune,
}

/// Cosine above which two whole-tune vectors are taken for one setting (an exact copy has 1;
/// the same notes under another title or header come close). Not lower: an untrained model
/// (the test fixtures) puts distinct O'Neill's tunes at up to 0.997, and titles already catch
/// most settings.
pub const NEAR_IDENTICAL: f32 = 0.999;

/// Passages asked of the index per result wanted, so that `k` distinct tunes remain after
/// grouping (a tune rarely has more than a dozen matching windows).
pub const POOL_PER_RESULT: usize = 20;

/// One setting of a family: where it is and how well its best passage scored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Source {
    pub corpus: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub collection: Option<String>,
    pub path: String,
    pub tune: usize,
    pub title: Option<String>,
    pub score: f32,
    /// Its page, for a corpus whose tunes have one (The Session).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// One tune (family) in a grouped list.
#[derive(Debug, Clone, PartialEq)]
pub struct TuneGroup<T> {
    /// The best-scoring item of the family.
    pub best: T,
    /// How many other passages of the best tune matched.
    pub other_passages: usize,
    /// The other settings of the tune (other files or collections), best first; empty when the
    /// tune stands alone.
    pub sources: Vec<Source>,
}

/// `The Kesh`, `Kesh, The`, `KESH (jig)` → `kesh`: case, articles, punctuation and a trailing
/// parenthesis do not tell tunes apart. Nor do the marks of one tune's several settings or a
/// possessive's spelling: `The Tenpenny Bit. 2nd Setting.` → `tenpenny bit`, `The Hare in the
/// Corn. No. 1.` → `hare in the corn`, `The Sailor' Hornpipe` = `Sailor's Hornpipe, The`.
pub fn normalise_title(title: &str) -> String {
    let t = title.to_lowercase();
    let t = match t.find('(') {
        Some(i) if i > 0 => &t[..i],
        _ => &t,
    };
    // `sailor's`, `sailors'` and `sailor'` are one word; the apostrophe is dropped with the
    // possessive `s` after it, and the plural `s` before one is kept as `s`.
    let t = t.replace("'s", "").replace(['\'', '’'], "");
    let words: Vec<&str> = t
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .collect();
    let mut words = words.as_slice();
    // Setting marks at the end: `1st setting`, `second setting`, `setting`, `no 2`, `version`.
    loop {
        match words {
            [rest @ .., ordinal, "setting" | "version"]
                if !rest.is_empty() && is_ordinal(ordinal) =>
            {
                words = rest
            }
            [rest @ .., "setting" | "version"] if !rest.is_empty() => words = rest,
            [rest @ .., "no", n] if !rest.is_empty() && n.chars().all(|c| c.is_ascii_digit()) => {
                words = rest
            }
            _ => break,
        }
    }
    if let [first, rest @ ..] = words {
        if matches!(*first, "the" | "a" | "an") && !rest.is_empty() {
            words = rest;
        }
    }
    if let [rest @ .., last] = words {
        if matches!(*last, "the" | "a" | "an") && !rest.is_empty() {
            words = rest;
        }
    }
    words.join(" ")
}

/// `1st`, `2nd`, `3rd`, `4th`, `first`, `second`, `third`, `another`.
fn is_ordinal(word: &str) -> bool {
    let digits = word.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &word[digits.len()..];
    (!digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
        && matches!(suffix, "st" | "nd" | "rd" | "th"))
        || matches!(word, "first" | "second" | "third" | "fourth" | "another")
}

/// Titles that name no tune in particular and so make no family.
pub(crate) fn is_generic(normal: &str) -> bool {
    normal.is_empty()
        || matches!(
            normal,
            "untitled" | "no title" | "unknown" | "reel" | "jig" | "hornpipe" | "air" | "tune"
        )
}

/// Groups `items` (sorted best first) by tune, keeping at most `k` groups.
///
/// `same_tune(a, b)` may say that two different tunes are one setting (near-identical tune
/// vectors); settings with the same normalised title in different collections, or in one
/// file (The Session's tunes keep each setting as a tune of the tune's file), are one family
/// without asking.
pub fn group<T>(
    items: Vec<T>,
    k: usize,
    matched: impl Fn(&T) -> &Match,
    same_tune: &dyn Fn(&Match, &Match) -> bool,
) -> Vec<TuneGroup<T>> {
    let mut groups: Vec<TuneGroup<T>> = Vec::new();
    for item in items {
        let m = matched(&item);
        let same_file_tune = |g: &TuneGroup<T>| {
            let b = matched(&g.best);
            b.path == m.path && b.tune == m.tune
        };
        if let Some(g) = groups.iter_mut().find(|g| same_file_tune(g)) {
            g.other_passages += 1;
            continue;
        }
        let title = m.title.as_deref().map(normalise_title);
        let room = groups.len() < k;
        let family = groups.iter_mut().find(|g| {
            let b = matched(&g.best);
            if let Some(s) = g
                .sources
                .iter()
                .find(|s| s.path == m.path && s.tune == m.tune)
            {
                return s.path == m.path;
            }
            let titled = title.as_deref().is_some_and(|t| {
                !is_generic(t)
                    && b.title.as_deref().map(normalise_title).as_deref() == Some(t)
                    && (b.collection != m.collection || b.corpus != m.corpus || b.path == m.path)
            });
            titled || same_tune(b, m)
        });
        match family {
            Some(g)
                if !g
                    .sources
                    .iter()
                    .any(|s| s.path == m.path && s.tune == m.tune) =>
            {
                g.sources.push(Source {
                    corpus: m.corpus.clone(),
                    collection: m.collection.clone(),
                    path: m.path.clone(),
                    tune: m.tune,
                    title: m.title.clone(),
                    score: m.score,
                    link: None,
                });
            }
            Some(_) => {}
            None if room => groups.push(TuneGroup {
                best: item,
                other_passages: 0,
                sources: Vec::new(),
            }),
            None => {}
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::LineColRecord;
    use tunelens_models::abc::{Level, TextRange};

    fn m(path: &str, tune: usize, title: &str, collection: &str, score: f32) -> Match {
        let lc = LineColRecord { line: 1, col: 1 };
        Match {
            score,
            corpus: "music21".into(),
            collection: Some(collection.into()),
            path: path.into(),
            tune,
            title: Some(title.into()),
            level: Level::Passage,
            vector_score: score,
            symbolic_score: score,
            voice: "1".into(),
            bars: Some([1, 4]),
            start: lc,
            end: lc,
            measures: None,
            range: TextRange::default(),
            row: 0,
        }
    }

    #[test]
    fn titles_normalise() {
        assert_eq!(normalise_title("The Kesh"), "kesh");
        assert_eq!(normalise_title("Kesh, The"), "kesh");
        assert_eq!(normalise_title("KESH (jig)"), "kesh");
        assert_eq!(normalise_title("Miss McLeod's Reel"), "miss mcleod reel");
        assert_eq!(normalise_title("The"), "the");
        assert_eq!(
            normalise_title("Sailor's Hornpipe, The"),
            normalise_title("The Sailor' Hornpipe")
        );
        assert_eq!(
            normalise_title("The Tenpenny Bit. 1st Setting."),
            "tenpenny bit"
        );
        assert_eq!(
            normalise_title("The Tenpenny Bit. 2nd Setting."),
            "tenpenny bit"
        );
        assert_eq!(
            normalise_title("The Hare in the Corn. No. 1."),
            "hare in the corn"
        );
        assert_eq!(
            normalise_title("Humours of Ennis, another setting"),
            "humours of ennis"
        );
        assert_eq!(normalise_title("The Setting Sun"), "setting sun");
    }

    #[test]
    fn one_entry_per_tune_and_families_across_collections() {
        let items = vec![
            m("/a.abc", 0, "The Kesh", "oneills", 0.99),
            m("/a.abc", 0, "The Kesh", "oneills", 0.95),
            m("/b.abc", 3, "Kesh, The", "ryans", 0.93),
            m("/c.abc", 1, "Other", "ryans", 0.90),
            m("/a.abc", 0, "The Kesh", "oneills", 0.89),
            m("/d.abc", 2, "Same notes", "essen", 0.88),
            m("/e.abc", 5, "Kesh", "oneills", 0.80),
            m("/f.abc", 0, "Untitled", "x", 0.70),
            m("/g.abc", 0, "Untitled", "y", 0.60),
        ];
        // d is a copy of c under another title (as near-identical vectors would say).
        let same = |a: &Match, b: &Match| a.path == "/c.abc" && b.path == "/d.abc";
        let groups = group(items, 10, |m| m, &same);
        let heads: Vec<(&str, usize, usize)> = groups
            .iter()
            .map(|g| (g.best.path.as_str(), g.other_passages, g.sources.len()))
            .collect();
        // e has the title of a but is in a's collection: another tune, not a setting.
        assert_eq!(
            heads,
            [
                ("/a.abc", 2, 1),
                ("/c.abc", 0, 1),
                ("/e.abc", 0, 0),
                ("/f.abc", 0, 0),
                ("/g.abc", 0, 0)
            ]
        );
        assert_eq!(groups[0].sources[0].collection.as_deref(), Some("ryans"));
        assert_eq!(groups[1].sources[0].path, "/d.abc");
    }

    #[test]
    fn no_tune_twice_and_at_most_k() {
        let mut items = Vec::new();
        for i in 0..200 {
            let title = format!("T{}-{}", i % 13, i % 3);
            let score = 1.0 - i as f32 / 1000.0;
            items.push(m(&format!("/{}.abc", i % 13), i % 3, &title, "c", score));
        }
        let groups = group(items, 10, |m| m, &|_, _| false);
        assert_eq!(groups.len(), 10);
        let mut seen: Vec<(String, usize)> = Vec::new();
        for g in &groups {
            let key = (g.best.path.clone(), g.best.tune);
            assert!(!seen.contains(&key));
            for s in &g.sources {
                assert!(!seen.contains(&(s.path.clone(), s.tune)));
            }
            seen.push(key);
            seen.extend(g.sources.iter().map(|s| (s.path.clone(), s.tune)));
        }
    }
}
