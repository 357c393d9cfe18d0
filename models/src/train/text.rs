//! The text side of a tune: short fields built from what is known about it (title, rhythm,
//! meter and key spelled out, origin, collection, composer, notes; WikiMT's genre and
//! description), and CLaMP 2's text dropout over them.

use crate::abc::Tune;

use super::rng::Rng;

/// The zero-shot prompt the label fields are phrased in, so a label learnt in training reads
/// like the prompts `classify` and `eval` ask with.
pub const PROMPT: &str = "This piece of music is {label}.";

fn prompt(label: &str) -> String {
    PROMPT.replace("{label}", label)
}

/// `6/8` → "6/8 time"; `C` and `C|` spelled out.
pub fn spell_meter(m: &str) -> String {
    match m.trim() {
        "C" => "4/4 time, common time".into(),
        "C|" => "2/2 time, cut time".into(),
        other => format!("{other} time"),
    }
}

/// `G` → "G major", `Edor` → "E dorian", `F#m` → "F# minor"; clefs and other key-field words
/// after the key are dropped.
pub fn spell_key(k: &str) -> Option<String> {
    let word = k.split_whitespace().next()?;
    let b = word.as_bytes();
    if !b.first()?.is_ascii_uppercase() || !(b'A'..=b'G').contains(&b[0]) {
        return None;
    }
    let mut tonic = word[..1].to_string();
    let mut rest = &word[1..];
    if let Some(acc) = rest
        .strip_prefix('#')
        .map(|r| ('#', r))
        .or_else(|| rest.strip_prefix('b').map(|r| ('b', r)))
    {
        tonic.push(acc.0);
        rest = acc.1;
    }
    let mode = rest.to_ascii_lowercase();
    let name = match mode.get(..3).unwrap_or(&mode) {
        "" | "maj" | "ion" => "major",
        "m" | "min" | "aeo" => "minor",
        "dor" => "dorian",
        "phr" => "phrygian",
        "lyd" => "lydian",
        "mix" => "mixolydian",
        "loc" => "locrian",
        _ if mode.starts_with('m') => "minor",
        _ => return None,
    };
    Some(format!("{tonic} {name}"))
}

/// A collection folder's name as people say it.
pub fn collection_name(dir: &str) -> String {
    match dir {
        "oneills1850" => "O'Neill's Music of Ireland (1850)".into(),
        "ryansMammoth" => "Ryan's Mammoth Collection".into(),
        "airdsAirs" => "Aird's Selection of Scotch, English, Irish and Foreign Airs".into(),
        "essenFolksong" => "the Essen folksong collection".into(),
        "miscFolk" => "miscellaneous folk tunes".into(),
        other => other.to_string(),
    }
}

/// One lowercased rhythm name with its spellings joined (`slipjig` → `slip jig`).
pub fn normalize_rhythm(r: &str) -> String {
    let r = r.trim().trim_end_matches(['.', ']']).to_lowercase();
    match r.as_str() {
        "slipjig" => "slip jig".into(),
        _ => r,
    }
}

/// The fields of an ABC tune's header.
pub fn abc_fields(tune: &Tune, collection: &str) -> Vec<String> {
    let mut out = Vec::new();
    let non_empty = |v: &str| !v.trim().is_empty();
    if let Some(t) = tune.title().filter(|t| non_empty(t)) {
        out.push(format!("Title: {}", t.trim().trim_matches('"')));
    }
    if let Some(r) = tune.rhythm().filter(|t| non_empty(t)) {
        out.push(prompt(&normalize_rhythm(r)));
    }
    if let Some(m) = tune.meter().filter(|t| non_empty(t)) {
        out.push(format!("In {}.", spell_meter(m)));
    }
    if let Some(k) = tune.key().and_then(spell_key) {
        out.push(format!("In {k}."));
    }
    for (key, what) in [('O', "Origin"), ('C', "Composer"), ('A', "Area")] {
        if let Some(v) = tune.field(key).filter(|t| non_empty(t)) {
            out.push(format!("{what}: {}", v.trim().trim_matches('"')));
        }
    }
    if let Some(n) = tune
        .field('N')
        .filter(|n| n.chars().any(char::is_alphabetic))
    {
        let n: String = n.trim().trim_matches('"').chars().take(120).collect();
        out.push(format!("Notes: {n}"));
    }
    if !collection.is_empty() {
        out.push(format!("From {}.", collection_name(collection)));
    }
    out
}

/// The fields of a WikiMT row.
pub fn wikimt_fields(row: &serde_json::Value) -> Vec<String> {
    let get = |k: &str| {
        row.get(k)
            .and_then(|v| v.as_str())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    let mut out = Vec::new();
    if let Some(t) = get("title") {
        out.push(format!("Title: {t}"));
    }
    if let Some(a) = get("artist") {
        out.push(format!("By {a}."));
    }
    if let Some(g) = get("genre") {
        out.push(prompt(g));
    }
    if let Some(t) = get("text") {
        out.push(t.chars().take(400).collect());
    }
    out
}

/// CLaMP 2's text dropout: half the time every field, otherwise each field kept with
/// p = 0.5 (at least one), shuffled. Returns indices into `count` fields.
pub fn dropout(count: usize, rng: &mut Rng) -> Vec<usize> {
    let mut keep: Vec<usize> = if rng.unit() < 0.5 {
        (0..count).collect()
    } else {
        (0..count).filter(|_| rng.unit() < 0.5).collect()
    };
    if keep.is_empty() && count > 0 {
        keep.push(rng.below(count));
    }
    rng.shuffle(&mut keep);
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_meters_spelled() {
        assert_eq!(spell_key("G").as_deref(), Some("G major"));
        assert_eq!(spell_key("Edor").as_deref(), Some("E dorian"));
        assert_eq!(spell_key("F#m").as_deref(), Some("F# minor"));
        assert_eq!(
            spell_key("Bbmix clef=treble").as_deref(),
            Some("Bb mixolydian")
        );
        assert_eq!(spell_key("none"), None);
        assert_eq!(spell_meter("C|"), "2/2 time, cut time");
    }

    #[test]
    fn dropout_keeps_at_least_one_field() {
        let mut rng = Rng::new(3);
        for _ in 0..200 {
            let k = dropout(4, &mut rng);
            assert!(!k.is_empty() && k.len() <= 4);
        }
        assert!(dropout(0, &mut rng).is_empty());
    }
}
