//! A file cut into tunes. Each tune starts at an `X:` line and runs to the next one; the text
//! before the first `X:` is the file header. A tune's header is its field lines up to and
//! including `K:`; everything after is its body.

use serde::Serialize;

use super::bars::{self, Voice};
use super::fields::{field_key, field_value, is_known_field, unknown_field, HeaderField};
use super::{Code, Diagnostic, SourceText, TextRange};

/// A parsed file: its tunes and what was wrong with it.
#[derive(Debug, Clone, Serialize)]
pub struct AbcFile {
    /// Text before the first `X:` (free text and default fields), if any.
    pub file_header: Option<TextRange>,
    pub tunes: Vec<Tune>,
    pub diagnostics: Vec<Diagnostic>,
}

/// One tune with its header fields and the bars of each voice.
#[derive(Debug, Clone, Serialize)]
pub struct Tune {
    /// 0-based position of the tune in its file.
    pub index: usize,
    /// From the `X:` line to the end of the last non-blank line before the next tune.
    pub range: TextRange,
    /// Where the body (the music after the header) starts; `range.end` when there is none.
    pub body_start: u32,
    pub header: Vec<HeaderField>,
    pub voices: Vec<Voice>,
}

impl Tune {
    /// The first value of header field `key`.
    pub fn field(&self, key: char) -> Option<&str> {
        self.header
            .iter()
            .find(|f| f.key == key)
            .map(|f| f.value.as_str())
    }

    /// The reference number from `X:`.
    pub fn reference(&self) -> Option<&str> {
        self.field('X')
    }

    /// The first title (`T:`).
    pub fn title(&self) -> Option<&str> {
        self.field('T')
    }

    pub fn meter(&self) -> Option<&str> {
        self.field('M')
    }

    pub fn key(&self) -> Option<&str> {
        self.field('K')
    }

    pub fn unit_length(&self) -> Option<&str> {
        self.field('L')
    }

    pub fn rhythm(&self) -> Option<&str> {
        self.field('R')
    }
}

/// Parses a decoded file into tunes, voices and bars. Never fails: what cannot be read is
/// reported in `diagnostics` and skipped.
pub fn parse(source: &SourceText) -> AbcFile {
    let text = source.text();
    let mut diagnostics = source.diagnostics().to_vec();
    let lines = lines_with_offsets(text);

    let starts: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, (_, line))| line.starts_with("X:"))
        .map(|(i, _)| i)
        .collect();

    let mut tunes = Vec::new();
    let file_header;
    if starts.is_empty() {
        // A snippet without `X:` (a pasted phrase, a file of one tune written by hand): read it
        // as one tune rather than finding nothing.
        file_header = None;
        // Only text with something musical in it: prose (a README) is no tune.
        if lines.iter().any(|(_, l)| looks_like_music(l)) {
            diagnostics.push(Diagnostic::warning(
                Code::NoReference,
                TextRange::new(0, 0),
                "no X: field: reading the whole file as one tune",
            ));
            tunes.extend(parse_tune(&lines, 0, &mut diagnostics));
        }
    } else {
        let first = lines[starts[0]].0;
        file_header = (first > 0 && text[..first].trim() != "").then(|| range(0, first));
        for (n, &start) in starts.iter().enumerate() {
            let end = starts.get(n + 1).copied().unwrap_or(lines.len());
            tunes.extend(parse_tune(
                &lines[start..end],
                tunes.len(),
                &mut diagnostics,
            ));
        }
    }
    AbcFile {
        file_header,
        tunes,
        diagnostics,
    }
}

/// Lines without their `\n` (and without a `\r` before it), each with its byte offset.
fn lines_with_offsets(text: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut at = 0;
    for line in text.split('\n') {
        out.push((at, line.strip_suffix('\r').unwrap_or(line)));
        at += line.len() + 1;
    }
    // `split` yields an empty last piece after a final newline; it is no line of the file.
    if out.len() > 1 && out.last().is_some_and(|(_, l)| l.is_empty()) {
        out.pop();
    }
    out
}

/// A `K:` field or a bar line outside a comment.
fn looks_like_music(line: &str) -> bool {
    let t = line.trim_start();
    field_key(t) == Some('K') || (!t.starts_with('%') && t.contains('|'))
}

fn range(start: usize, end: usize) -> TextRange {
    TextRange::new(start as u32, end as u32)
}

fn parse_tune(
    lines: &[(usize, &str)],
    index: usize,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<Tune> {
    // The tune ends at its last line with content, so blank lines and comments between tunes
    // belong to no tune.
    let last = lines.iter().rposition(|(_, l)| !l.trim().is_empty())?;
    let lines = &lines[..=last];
    let start = lines[0].0;
    let end = lines[last].0 + lines[last].1.len();

    // ABC 2.1: the header runs to the first `K:`. Without one, it ends at the first line that
    // is not a field, so a snippet of bare music still has a body.
    let key_line = lines.iter().position(|(_, l)| field_key(l) == Some('K'));
    let mut header = Vec::new();
    let mut body_line = key_line.map_or(lines.len(), |k| k + 1);
    let mut continued = false;
    for (i, &(at, line)) in lines[..body_line].iter().enumerate() {
        // A header line ending in `\` goes on in the next one (long `%%` directives do).
        let was_continued = std::mem::replace(&mut continued, line.trim_end().ends_with('\\'));
        if was_continued || line.starts_with('%') || line.trim().is_empty() {
            continue;
        }
        match field_key(line) {
            Some(key) => {
                if !is_known_field(key) {
                    diagnostics.push(unknown_field(at, key));
                }
                header.push(HeaderField {
                    key,
                    value: field_value(line).to_owned(),
                    range: range(at, at + line.len()),
                })
            }
            None if key_line.is_some() => diagnostics.push(Diagnostic::warning(
                Code::StrayHeaderLine,
                range(at, at + line.len()),
                "not a header field (a letter and a colon); the header runs to K:",
            )),
            None => {
                body_line = i;
                break;
            }
        }
    }
    let body_start = lines.get(body_line).map_or(end, |(at, _)| *at);
    if key_line.is_none() && body_line < lines.len() {
        diagnostics.push(Diagnostic::warning(
            Code::MissingKey,
            range(start, lines[0].0 + lines[0].1.len()),
            "tune has no K: field before its music",
        ));
    }
    let declared: Vec<&HeaderField> = header.iter().filter(|f| f.key == 'V').collect();
    let voices = bars::scan(&lines[body_line..], &declared, diagnostics);
    Some(Tune {
        index,
        range: range(start, end),
        body_start: body_start as u32,
        header,
        voices,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> AbcFile {
        parse(&SourceText::from_text(s.to_owned()))
    }

    #[test]
    fn splits_tunes_and_file_header() {
        let abc = "%abc-2.1\nL:1/8\n\nX:1\nT:One\nM:6/8\nK:G\nGAB|c3|\n\n\nX:2\nT:Two\nK:D\nD2|\n";
        let f = parse_str(abc);
        assert_eq!(f.file_header, Some(TextRange::new(0, 16)));
        assert_eq!(f.tunes.len(), 2);
        let one = &f.tunes[0];
        assert_eq!(one.title(), Some("One"));
        assert_eq!(one.meter(), Some("6/8"));
        assert_eq!(one.key(), Some("G"));
        assert_eq!(one.reference(), Some("1"));
        assert_eq!(
            &abc[one.range.start as usize..one.range.end as usize],
            "X:1\nT:One\nM:6/8\nK:G\nGAB|c3|"
        );
        assert_eq!(&abc[one.body_start as usize..][..4], "GAB|");
        assert_eq!(f.tunes[1].title(), Some("Two"));
        assert_eq!(f.tunes[1].index, 1);
        assert!(f.diagnostics.is_empty());
    }

    #[test]
    fn snippet_without_x_is_one_tune() {
        let f = parse_str("K:D\nABcd|efga|\n");
        assert_eq!(f.tunes.len(), 1);
        assert_eq!(f.diagnostics.len(), 1);
        assert_eq!(f.tunes[0].voices[0].bars.len(), 2);
    }

    #[test]
    fn prose_is_no_tune() {
        assert!(
            parse_str("This folder holds my tunes.\nSee the other files.\n")
                .tunes
                .is_empty()
        );
        assert_eq!(parse_str("K:G\nGABc dedB\n").tunes.len(), 1);
    }

    #[test]
    fn empty_and_comment_only_files_have_no_tunes() {
        assert!(parse_str("\n\n").tunes.is_empty());
        assert!(parse_str("% just a comment\n").tunes.is_empty());
    }

    #[test]
    fn missing_key_is_reported() {
        let f = parse_str("X:1\nT:t\nabc|\n");
        assert_eq!(f.tunes.len(), 1);
        assert!(f.diagnostics[0].message.contains("K:"));
    }

    #[test]
    fn continued_header_lines_stay_in_the_header() {
        let f = parse_str("X:1\nT:t\n%%Bfly 0 3 \\\n 0 0 3\nK:D\nab|\n");
        assert!(f.diagnostics.is_empty(), "{:?}", f.diagnostics);
        assert_eq!(f.tunes[0].key(), Some("D"));
        assert_eq!(f.tunes[0].voices[0].bars.len(), 1);
    }

    #[test]
    fn stray_lines_before_k_are_reported_not_music() {
        let f = parse_str("X:1\nM:6/8\n3/8=120\nK:D\nab|\n");
        assert_eq!(f.diagnostics.len(), 1, "{:?}", f.diagnostics);
        assert_eq!(f.diagnostics[0].range.start, 10);
        assert_eq!(f.tunes[0].key(), Some("D"));
        assert_eq!(f.tunes[0].voices[0].bars.len(), 1);
    }

    #[test]
    fn field_values_drop_comments() {
        let f = parse_str("X:1\nT: The Kesh % a jig\nK:G\n");
        assert_eq!(f.tunes[0].title(), Some("The Kesh"));
    }
}
