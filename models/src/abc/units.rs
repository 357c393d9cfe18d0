//! The pieces of a tune that get a vector of their own, and the ABC text the model reads for
//! each: the whole tune, one bar, or a window of W consecutive bars of one voice (a passage).
//!
//! A bar or passage is read like a short tune: the tune's `L:`, `M:` and `K:` header lines,
//! then the bars' music. Comments are dropped and the bars' own line breaks removed, so that
//! the same music gives the same text (and the same cache key) wherever it stands.

use serde::{Deserialize, Serialize};

use super::{bars, SourceText, TextRange, Tune};

/// What a unit covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Tune,
    Bar,
    Passage,
}

/// One unit of a tune.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Unit {
    pub level: Level,
    /// Index of the voice in `Tune::voices` (0 for whole tunes).
    pub voice: usize,
    /// 1-based numbers of the first and last bar in the voice (0 for whole tunes).
    pub first_bar: u32,
    pub last_bar: u32,
    /// Where the unit is in the file.
    pub range: TextRange,
    /// The text the patchilizer reads.
    pub text: String,
    /// Where `text` starts in the file: the tune's own text is used as it is, so its patches
    /// keep their source ranges; a bar or passage is rebuilt, so its patches have none.
    pub text_base: Option<u32>,
}

/// The units of `tune` at `level`. Passages are windows of `window` bars moved by `stride`
/// bars, per voice; a voice shorter than the window gives one window of all its bars.
pub fn units(
    source: &SourceText,
    tune: &Tune,
    level: Level,
    window: usize,
    stride: usize,
) -> Vec<Unit> {
    if level == Level::Tune {
        return vec![Unit {
            level,
            voice: 0,
            first_bar: 0,
            last_bar: 0,
            range: tune.range,
            text: source.slice(tune.range).to_owned(),
            text_base: Some(tune.range.start),
        }];
    }
    let (window, stride) = match level {
        Level::Bar => (1, 1),
        _ => (window.max(1), stride.max(1)),
    };
    let header = header_lines(tune);
    let mut out = Vec::new();
    for (v, voice) in tune.voices.iter().enumerate() {
        let bars = &voice.bars;
        if bars.is_empty() {
            continue;
        }
        let last_start = bars.len().saturating_sub(window);
        for start in (0..=last_start).step_by(stride) {
            let group = &bars[start..(start + window).min(bars.len())];
            let mut text = header.clone();
            for bar in group {
                push_music(&mut text, source.slice(bar.range));
            }
            text.push('\n');
            let (first, last) = (&group[0], &group[group.len() - 1]);
            out.push(Unit {
                level,
                voice: v,
                first_bar: first.number,
                last_bar: last.number,
                range: TextRange::new(first.range.start, last.range.end),
                text,
                text_base: None,
            });
        }
    }
    out
}

/// `L:`, `M:` and `K:` lines of the tune's header, in that order, `K:` last as ABC wants.
fn header_lines(tune: &Tune) -> String {
    let mut out = String::new();
    for key in ['L', 'M', 'K'] {
        if let Some(value) = tune.field(key) {
            out.push(key);
            out.push(':');
            out.push_str(value);
            out.push('\n');
        }
    }
    out
}

/// Appends a bar's music in a canonical form: no comments, no line breaks (the patchilizer
/// glues lines anyway; a comment would be read as music), no repeat or ending marks, and one
/// plain `|` closing it. Repeats and endings say how often music is played, not what it is:
/// `|:Bcd e2f|` and `Bcd e2f|` are the same bar wherever they stand.
fn push_music(out: &mut String, bar: &str) {
    let mut music = String::with_capacity(bar.len());
    for line in bar.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        music.push_str(line.find('%').map_or(line, |i| &line[..i]));
    }
    let b = music.as_bytes();
    let mut i = 0;
    let mut started = false;
    while i < b.len() {
        let next = b.get(i + 1).copied();
        let bar_line = match b[i] {
            b'|' => true,
            b':' => matches!(next, Some(b'|' | b':')),
            b'[' => next == Some(b'|'),
            _ => false,
        };
        let ending = b[i] == b'[' && next.is_some_and(|n| n.is_ascii_digit());
        if bar_line || ending {
            let mut j = if bar_line {
                bars::bar_line_end(b, i)
            } else {
                i
            };
            // An ending number right after a bar line (`:|2`, `|[1`) or on its own (`[2`).
            match b.get(j) {
                Some(d) if d.is_ascii_digit() => j = bars::ending_end(b, j),
                Some(b'[') if b.get(j + 1).is_some_and(u8::is_ascii_digit) => {
                    j = bars::ending_end(b, j + 1)
                }
                _ => {}
            }
            if bar_line && started {
                out.push('|');
            }
            i = j;
            continue;
        }
        // Quoted text and decorations are copied whole: a `|` inside is no bar line.
        let end = match b[i] {
            q @ (b'"' | b'!') => bars::find(b, i + 1, q).map_or(b.len(), |j| j + 1),
            _ => i + 1,
        };
        let piece = &music[i..end.min(b.len())];
        if !(started || piece.trim().is_empty()) {
            started = true;
        }
        if started {
            out.push_str(piece);
        }
        i = end;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abc::parse;

    fn units_of(abc: &str, level: Level, window: usize) -> Vec<Unit> {
        let source = SourceText::from_text(abc.to_owned());
        let file = parse(&source);
        units(&source, &file.tunes[0], level, window, 1)
    }

    #[test]
    fn passages_are_windows_with_the_header() {
        let abc = "X:1\nT:t\nM:6/8\nL:1/8\nK:G\nab|cd|\nef|ga|\n";
        let u = units_of(abc, Level::Passage, 3);
        let texts: Vec<&str> = u.iter().map(|u| u.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "L:1/8\nM:6/8\nK:G\nab|cd|ef|\n",
                "L:1/8\nM:6/8\nK:G\ncd|ef|ga|\n"
            ]
        );
        assert_eq!((u[1].first_bar, u[1].last_bar), (2, 4));
        assert_eq!(
            &abc[u[1].range.start as usize..u[1].range.end as usize],
            "cd|\nef|ga|"
        );
    }

    #[test]
    fn short_voices_give_one_window_and_comments_go() {
        let u = units_of("X:1\nK:D\nab % c|\n|d|\n", Level::Passage, 4);
        assert_eq!(u.len(), 1);
        assert_eq!(u[0].text, "K:D\nab |d|\n");
    }

    #[test]
    fn repeats_and_endings_are_not_the_music() {
        let a = units_of(
            "X:1\nK:G\n|:Bcd e2f|[1 g2a b3:|[2 \"A|x\"bag !a|b!fed||\n",
            Level::Passage,
            4,
        );
        let b = units_of(
            "X:1\nK:G\nBcd e2f|g2a b3|\"A|x\"bag !a|b!fed|]\n",
            Level::Passage,
            4,
        );
        assert_eq!(a[0].text, "K:G\nBcd e2f|g2a b3|\"A|x\"bag !a|b!fed|\n");
        assert_eq!(a[0].text, b[0].text);
    }

    #[test]
    fn bars_and_tunes() {
        let abc = "X:1\nK:D\nab|cd|\n";
        assert_eq!(units_of(abc, Level::Bar, 4).len(), 2);
        let t = units_of(abc, Level::Tune, 4);
        assert_eq!(t[0].text, "X:1\nK:D\nab|cd|");
        assert_eq!(t[0].text_base, Some(0));
    }
}
