//! The compare view's data: the user's passage and each match as a small ABC tune of just
//! those bars, with the character ranges of the match's notes that differ from the passage,
//! for a page that engraves them one above the other ([`page::html`]).
//!
//! A passage keeps the text as its file writes it (chord symbols, decorations, its own `L:`),
//! so that what a musician sees is what the file holds; only the header is rebuilt (the
//! tune's `M:`, `L:`, the voice's `V:` and `K:`; the title is the card's heading, not
//! engraved again).

pub mod page;

use serde::Serialize;
use tunelens_models::abc::{Level, SourceText, TextRange, Tune};

use crate::explain::Explainer;
use crate::similar::Explained;

/// Bars per engraved line: a 4-bar window is one line, as a musician writes it.
const BARS_PER_LINE: usize = 4;
/// Bars shown of a whole-tune match (it has no window of its own).
const TUNE_BARS: u32 = 8;

/// One page: the query first, then the matches in rank order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComparePage {
    pub title: String,
    pub passages: Vec<ComparePassage>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Query,
    Match,
}

/// One engraved passage and what to say about it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComparePassage {
    pub role: Role,
    pub label: String,
    /// "bars 5–8 = bars 3–6 of The Kesh, up a perfect 4th, 2 of 24 notes differ".
    pub summary: Option<String>,
    pub interval: Option<String>,
    /// `path:line`, as a person reads it.
    pub location: String,
    /// The file as a `file://` URL, for a link; `None` for music typed in.
    pub uri: Option<String>,
    pub line: u32,
    /// The match's web page (The Session).
    pub link: Option<String>,
    pub score: Option<f32>,
    /// One tune: a rebuilt header and the passage's bars as written.
    pub abc: String,
    /// `[start, end)` of each differing note in `abc`, in UTF-16 units (the page's
    /// JavaScript indexes strings so).
    pub differ: Vec<[u32; 2]>,
}

/// The user's passage: where it is and its bars.
pub struct QueryPassage<'a> {
    pub source: &'a SourceText,
    pub tune: &'a Tune,
    pub voice: usize,
    pub bars: [u32; 2],
    /// The file's path; `None` for music typed in.
    pub path: Option<&'a str>,
}

/// The page for `query` and its `matches`, reading matched files through `explainer` (a
/// match whose file can no longer be read as indexed is left out).
pub fn compare(
    query: &QueryPassage,
    matches: &[Explained],
    explainer: &mut Explainer,
) -> Option<ComparePage> {
    let [first, last] = query.bars;
    let (abc, _) = snippet(query.source, query.tune, query.voice, query.bars, &[])?;
    let name = query.path.map_or("your passage".to_owned(), file_name);
    let line = bar_line(query.source, query.tune, query.voice, first);
    let mut passages = vec![ComparePassage {
        role: Role::Query,
        label: format!("{name}, bars {first}–{last}"),
        summary: None,
        interval: None,
        location: query
            .path
            .map_or_else(String::new, |p| format!("{p}:{line}")),
        uri: query.path.map(file_uri),
        line,
        link: None,
        score: None,
        abc,
        differ: Vec::new(),
    }];
    passages.extend(matches.iter().filter_map(|m| matched(m, explainer)));
    Some(ComparePage {
        title: format!("Passages like bars {first}–{last} of {name}"),
        passages,
    })
}

fn matched(e: &Explained, explainer: &mut Explainer) -> Option<ComparePassage> {
    let m = &e.m;
    let (source, file) = explainer.file(&m.path)?;
    let tune = file.tunes.iter().find(|t| t.index == m.tune)?;
    let voice = tune.voices.iter().position(|v| v.id == m.voice)?;
    let bars = match m.bars {
        Some(b) if m.level == Level::Passage => b,
        _ => [
            1,
            TUNE_BARS.min(tune.voices[voice].bars.len() as u32).max(1),
        ],
    };
    // Their notes with no equal partner in the passage, as the explanation aligned them.
    let differ = e
        .explain
        .as_ref()
        .map_or(&[][..], |x| x.differing.as_slice());
    let (abc, differ) = snippet(source, tune, voice, bars, differ)?;
    let title = m.title.as_deref().unwrap_or("(untitled)");
    let location = match &m.measures {
        Some([a, b]) => format!("{}: {a}, measures {}–{}", m.path, a.measure, b.measure),
        None => format!("{}:{}", m.path, m.start.line),
    };
    Some(ComparePassage {
        role: Role::Match,
        label: format!(
            "{title} ({}), bars {}–{}",
            file_name(&m.path),
            bars[0],
            bars[1]
        ),
        summary: e.explain.as_ref().map(|x| x.summary.clone()),
        interval: e.explain.as_ref().map(|x| x.interval.to_owned()),
        location,
        uri: Some(file_uri(&m.path)),
        line: m.start.line,
        link: e.link.clone(),
        score: Some(m.score),
        abc,
        differ,
    })
}

/// Bars `bars` (1-based, inclusive) of one voice as a tune of their own, and `marked` (byte
/// ranges in `source`) moved into it and counted in UTF-16 units. `None` when the voice has
/// none of those bars.
pub fn snippet(
    source: &SourceText,
    tune: &Tune,
    voice: usize,
    bars: [u32; 2],
    marked: &[TextRange],
) -> Option<(String, Vec<[u32; 2]>)> {
    let v = tune.voices.get(voice)?;
    let text = source.text();
    let mut abc = String::from("X:1\n");
    for key in ['M', 'L'] {
        if let Some(value) = tune.field(key) {
            abc.push_str(&format!("{key}:{}\n", one_line(value)));
        }
    }
    // The voice's own declaration (its clef) when the tune has several.
    if tune.voices.len() > 1 {
        let declared = tune
            .header
            .iter()
            .find(|f| f.key == 'V' && f.value.split_whitespace().next() == Some(v.id.as_str()));
        let value = declared.map_or(v.id.as_str(), |f| f.value.as_str());
        abc.push_str(&format!("V:{}\n", one_line(value)));
    }
    abc.push_str(&format!("K:{}\n", one_line(tune.field('K').unwrap_or("C"))));
    let mut spans = Vec::new();
    let shown: Vec<_> = v
        .bars
        .iter()
        .filter(|b| bars[0] <= b.number && b.number <= bars[1])
        .collect();
    if shown.is_empty() {
        return None;
    }
    for (i, bar) in shown.iter().enumerate() {
        let Some(written) = text.get(bar.range.start as usize..bar.range.end as usize) else {
            continue;
        };
        let at = abc.len() as u32;
        for r in marked {
            if bar.range.start <= r.start && r.end <= bar.range.end {
                spans.push((at + r.start - bar.range.start, at + r.end - bar.range.start));
            }
        }
        abc.push_str(&on_one_line(written));
        if (i + 1) % BARS_PER_LINE == 0 || i + 1 == shown.len() {
            abc.push('\n');
        }
    }
    let utf16 = |byte: u32| abc[..byte as usize].encode_utf16().count() as u32;
    let differ = spans
        .into_iter()
        .map(|(s, e)| [utf16(s), utf16(e)])
        .collect();
    Some((abc, differ))
}

/// A bar's text that spans lines (a `\` continuation, a `%` comment at a line's end) as one
/// line, every byte kept in place so that marked ranges stay valid: comments, continuation
/// marks and line breaks become spaces.
fn on_one_line(written: &str) -> String {
    if !written.contains(['\n', '\r', '%']) {
        return written.to_owned();
    }
    let mut bytes = written.as_bytes().to_vec();
    let mut start = 0;
    while start < bytes.len() {
        let end = bytes[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(bytes.len(), |p| start + p);
        let continues = end < bytes.len();
        let line = &mut bytes[start..end];
        // `\%` is a literal percent sign, not a comment.
        let comment =
            (0..line.len()).find(|&i| line[i] == b'%' && (i == 0 || line[i - 1] != b'\\'));
        if let Some(c) = comment {
            line[c..].fill(b' ');
        }
        let kept = line.iter().rposition(|b| !b.is_ascii_whitespace());
        if let Some(k) = kept.filter(|&k| line[k] == b'\\' && continues) {
            line[k] = b' ';
        }
        for b in line.iter_mut().filter(|b| **b == b'\r') {
            *b = b' ';
        }
        if continues {
            bytes[end] = b' ';
        }
        start = end + 1;
    }
    // Only ASCII bytes were overwritten, and a comment's multi-byte characters wholly, so the
    // text is still UTF-8.
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// The 1-based line of bar `number` of a voice (the tune's first line when it has no such bar).
fn bar_line(source: &SourceText, tune: &Tune, voice: usize, number: u32) -> u32 {
    let at = tune
        .voices
        .get(voice)
        .and_then(|v| v.bars.iter().find(|b| b.number == number))
        .map_or(tune.range.start, |b| b.range.start);
    source.line_col(at).line
}

/// A field value on one line (a value never holds a line break, but a page must not trust it).
fn one_line(value: &str) -> String {
    value.replace(['\r', '\n'], " ")
}

fn file_name(path: &str) -> String {
    std::path::Path::new(path)
        .file_name()
        .map_or_else(|| path.to_owned(), |n| n.to_string_lossy().into_owned())
}

/// `path` as a `file://` URL, made absolute first.
pub fn file_uri(path: &str) -> String {
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.into());
    crate::uri::from_path(&absolute)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tunelens_models::abc::parse;

    #[test]
    fn a_snippet_keeps_the_bars_as_written_and_moves_marks_in_utf16_units() {
        let text =
            "X:7\nT:Caoineadh\nM:6/8\nL:1/8\nK:G\n\"G\"GAG GAB|\"Ré\"ABA ABd|\nedB dBA|GAG G3|]\n";
        let source = SourceText::from_text(text.to_owned());
        let file = parse(&source);
        let tune = &file.tunes[0];
        // The `d` of bar 2 ("ABd") in the file.
        let d = text.find("ABd|").expect("bar 2") as u32 + 2;
        let (abc, differ) =
            snippet(&source, tune, 0, [2, 3], &[TextRange::new(d, d + 1)]).expect("bars");
        assert_eq!(abc, "X:1\nM:6/8\nL:1/8\nK:G\n\"Ré\"ABA ABd|edB dBA|\n");
        let [s, e] = differ[0];
        let units: Vec<u16> = abc.encode_utf16().collect();
        assert_eq!(
            String::from_utf16_lossy(&units[s as usize..e as usize]),
            "d"
        );
        assert_eq!(snippet(&source, tune, 0, [9, 12], &[]), None);
    }

    #[test]
    fn a_bar_over_two_lines_becomes_one_with_its_bytes_in_place() {
        let bar = "(3A=B^c) \\\n|(d3e) % a cómment\nf2e2 |";
        let one = on_one_line(bar);
        assert_eq!(one.len(), bar.len());
        assert!(!one.contains(['\\', '%', '\n']), "{one:?}");
        assert!(one.ends_with("f2e2 |"), "{one:?}");
        assert_eq!(
            on_one_line("ABc \\% not a comment|"),
            "ABc \\% not a comment|"
        );
    }

    #[test]
    fn a_file_uri_is_absolute_and_percent_encoded() {
        assert_eq!(
            file_uri("/tunes/séamus 1.abc"),
            "file:///tunes/s%C3%A9amus%201.abc"
        );
    }
}
