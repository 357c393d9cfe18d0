//! The bars of a tune body, per voice, with their exact place in the file.
//!
//! This reads ABC the way a musician does, unlike the patchilizer (which copies the reference's
//! plain text split): a `|` inside a chord symbol `"A|B"`, a decoration `!fermata!`, a comment
//! or a lyric line `w:` is no bar line; `V:` lines and `[V:..]` fields switch voices; `[1` and
//! `:|2` mark endings; a bar may run over a line break.

use serde::Serialize;

use super::fields::{
    field_key, field_value, is_header_only, is_inline_field, is_known_field, unknown_field,
    HeaderField,
};
use super::{Code, Diagnostic, TextRange};

/// One voice of a tune and its bars. A tune without `V:` fields has one voice, `"1"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Voice {
    pub id: String,
    /// The `name=` / `nm=` of the voice's `V:` field, if it has one.
    pub name: Option<String>,
    pub bars: Vec<Bar>,
}

/// One bar: its music and the bar line that closes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Bar {
    /// 1-based position of the bar in its voice.
    pub number: u32,
    /// From the bar's first character (an opening bar line or ending mark, if any) to the end
    /// of its closing bar line, or of its last note when none closes it.
    pub range: TextRange,
    /// The ending (volta) the bar starts, e.g. `"1"` for `[1` or `:|2`.
    pub ending: Option<String>,
}

/// Scans the body lines of one tune. `declared` are the tune header's `V:` fields.
pub(crate) fn scan(
    lines: &[(usize, &str)],
    declared: &[&HeaderField],
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<Voice> {
    let mut s = Scanner {
        voices: declared
            .iter()
            .map(|f| voice_from_field(&f.value))
            .collect(),
        current: 0,
        bar: None,
        slurs: Vec::new(),
        diagnostics,
    };
    for &(at, line) in lines {
        s.line(at, line);
    }
    s.close_pending();
    for open in std::mem::take(&mut s.slurs).into_iter().flatten() {
        s.warn(
            Code::UnclosedSlur,
            open as usize,
            open as usize + 1,
            "unclosed slur `(`: no `)` in this voice",
        );
    }
    let mut voices = s.voices;
    if voices.is_empty() {
        voices.push(Voice {
            id: "1".to_owned(),
            name: None,
            bars: Vec::new(),
        });
    }
    voices
}

fn voice_from_field(value: &str) -> Voice {
    let id = value.split_whitespace().next().unwrap_or("").to_owned();
    let name = ["name=", "nm="].iter().find_map(|k| {
        let at = value.find(k)?;
        let rest = &value[at + k.len()..];
        let name = match rest.strip_prefix('"') {
            Some(quoted) => quoted.split('"').next().unwrap_or(""),
            None => rest.split_whitespace().next().unwrap_or(""),
        };
        Some(name.to_owned())
    });
    Voice {
        id,
        name,
        bars: Vec::new(),
    }
}

/// A bar being read.
#[derive(Debug)]
struct Pending {
    start: u32,
    /// End of the last note or symbol read so far.
    end: u32,
    /// Whether it holds anything besides an opening bar line or ending mark.
    has_music: bool,
    ending: Option<String>,
}

struct Scanner<'d> {
    voices: Vec<Voice>,
    current: usize,
    bar: Option<Pending>,
    /// Open slurs per voice (offsets of their `(`), closed by `)` in the same voice.
    slurs: Vec<Vec<u32>>,
    diagnostics: &'d mut Vec<Diagnostic>,
}

impl Scanner<'_> {
    fn line(&mut self, at: usize, line: &str) {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('%') {
            return;
        }
        if let Some(key) = field_key(line) {
            // A field line ends the bar being read: music does not run across it.
            self.close_pending();
            if !is_known_field(key) {
                self.diagnostics.push(unknown_field(at, key));
            } else if is_header_only(key) {
                self.warn(
                    Code::FieldOutOfPlace,
                    at,
                    at + line.len(),
                    &format!("{key}: belongs in the tune header, before K:"),
                );
            }
            if key == 'V' {
                self.switch_voice(field_value(line));
            }
            return;
        }
        self.music_line(at, line);
    }

    fn switch_voice(&mut self, value: &str) {
        self.close_pending();
        let new = voice_from_field(value);
        self.current = match self.voices.iter().position(|v| v.id == new.id) {
            Some(i) => i,
            None => {
                self.voices.push(new);
                self.voices.len() - 1
            }
        };
    }

    fn voice(&mut self) -> &mut Voice {
        if self.voices.is_empty() {
            self.voices.push(Voice {
                id: "1".to_owned(),
                name: None,
                bars: Vec::new(),
            });
        }
        let i = self.current.min(self.voices.len() - 1);
        &mut self.voices[i]
    }

    /// Records music at `start..end`.
    fn music(&mut self, start: usize, end: usize) {
        let (start, end) = (start as u32, end as u32);
        let bar = self.bar.get_or_insert(Pending {
            start,
            end,
            has_music: false,
            ending: None,
        });
        bar.end = end;
        bar.has_music = true;
    }

    /// Records an ending mark (`[1`, or the `2` of `:|2`) that starts the next bar.
    fn ending(&mut self, start: usize, end: usize, number: &str) {
        if self.bar.as_ref().is_some_and(|b| b.has_music) {
            // `abc [2 def`: an ending inside a bar's music starts a new bar.
            self.close_pending();
        }
        let bar = self.bar.get_or_insert(Pending {
            start: start as u32,
            end: end as u32,
            has_music: false,
            ending: None,
        });
        bar.end = end as u32;
        bar.ending = Some(number.to_owned());
    }

    /// A bar line at `start..end` closes the bar with music, or opens the next one.
    fn bar_line(&mut self, start: usize, end: usize) {
        match &mut self.bar {
            Some(bar) if bar.has_music => {
                bar.end = end as u32;
                self.close_pending();
            }
            Some(bar) => bar.end = end as u32,
            None => {
                self.bar = Some(Pending {
                    start: start as u32,
                    end: end as u32,
                    has_music: false,
                    ending: None,
                })
            }
        }
    }

    fn close_pending(&mut self) {
        let Some(bar) = self.bar.take() else { return };
        if !bar.has_music {
            // A lone bar line (a final `|]` after a voice switch, `|:` with nothing after)
            // is no bar.
            return;
        }
        let voice = self.voice();
        let number = voice.bars.len() as u32 + 1;
        voice.bars.push(Bar {
            number,
            range: TextRange::new(bar.start, bar.end),
            ending: bar.ending,
        });
    }

    fn warn(&mut self, code: Code, start: usize, end: usize, message: &str) {
        self.diagnostics.push(Diagnostic::warning(
            code,
            TextRange::new(start as u32, end as u32),
            message,
        ));
    }

    fn music_line(&mut self, at: usize, line: &str) {
        let b = line.as_bytes();
        let line_end = at + b.len();
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            match c {
                b' ' | b'\t' => i += 1,
                b'%' => break,
                b'\\' if line[i + 1..].trim().is_empty() => break,
                b'"' => match find(b, i + 1, b'"') {
                    Some(j) => {
                        self.music(at + i, at + j + 1);
                        i = j + 1;
                    }
                    None => {
                        self.warn(Code::UnclosedQuote, at + i, line_end, "unclosed quote: chord symbol or annotation runs to the end of the line");
                        self.music(at + i, line_end);
                        break;
                    }
                },
                b'!' | b'+' => match find(b, i + 1, c) {
                    // `!trill!`, `+fermata+`: a decoration, never a bar line inside.
                    Some(j) => {
                        self.music(at + i, at + j + 1);
                        i = j + 1;
                    }
                    // A lone `!` is the old line-break mark; a lone `+` is harmless.
                    None => {
                        // `!trill` without its closing mark, unless it is the old line break.
                        if b.get(i + 1).is_some_and(u8::is_ascii_alphabetic) {
                            self.warn(
                                Code::UnclosedDecoration,
                                at + i,
                                line_end,
                                &format!("unclosed decoration `{}`", char::from(c)),
                            );
                        }
                        i += 1
                    }
                },
                b'{' => {
                    i = self.bracketed(
                        at,
                        line,
                        i,
                        b'}',
                        (Code::UnclosedGrace, "unclosed grace notes `{`"),
                    )
                }
                b'[' => {
                    let next = b.get(i + 1).copied();
                    if next == Some(b'|') {
                        let j = bar_line_end(b, i);
                        self.bar_line(at + i, at + j);
                        i = self.after_bar_line(at, b, j);
                    } else if next.is_some_and(|n| n.is_ascii_digit()) {
                        let j = ending_end(b, i + 1);
                        self.ending(at + i, at + j, &line[i + 1..j]);
                        i = j;
                    } else if next.is_some_and(|n| n.is_ascii_alphabetic())
                        && b.get(i + 2) == Some(&b':')
                    {
                        i = self.inline_field(at, line, i);
                    } else {
                        i = self.bracketed(
                            at,
                            line,
                            i,
                            b']',
                            (Code::UnclosedChord, "unclosed chord `[`"),
                        );
                    }
                }
                b'|' => {
                    let j = bar_line_end(b, i);
                    self.bar_line(at + i, at + j);
                    i = self.after_bar_line(at, b, j);
                }
                b':' if matches!(b.get(i + 1), Some(b'|') | Some(b':')) => {
                    let j = bar_line_end(b, i);
                    self.bar_line(at + i, at + j);
                    i = self.after_bar_line(at, b, j);
                }
                _ => {
                    // A run of plain music up to the next byte that means something here.
                    // Those are all ASCII, so the run ends on a character boundary.
                    let run = b[i + 1..]
                        .iter()
                        .position(|&c| is_special(c))
                        .map_or(b.len(), |p| i + 1 + p);
                    self.slur_marks(at, b, i, run);
                    self.music(at + i, at + run);
                    i = run;
                }
            }
        }
    }

    /// Slurs opened and closed in `b[from..to]`, a run of plain music (`(3` is a tuplet).
    fn slur_marks(&mut self, at: usize, b: &[u8], from: usize, to: usize) {
        for k in from..to {
            match b[k] {
                b'(' if !b.get(k + 1).is_some_and(u8::is_ascii_digit) => {
                    let v = self.current;
                    if self.slurs.len() <= v {
                        self.slurs.resize_with(v + 1, Vec::new);
                    }
                    self.slurs[v].push((at + k) as u32);
                }
                b')' => {
                    let open = self.slurs.get_mut(self.current).and_then(Vec::pop);
                    if open.is_none() {
                        self.warn(
                            Code::UnmatchedSlur,
                            at + k,
                            at + k + 1,
                            "`)` closes no slur",
                        );
                    }
                }
                _ => {}
            }
        }
    }

    /// After a bar line: `|1`, `:|2` and `|[1` start an ending.
    fn after_bar_line(&mut self, at: usize, b: &[u8], j: usize) -> usize {
        let digits_from = match b.get(j) {
            Some(d) if d.is_ascii_digit() => j,
            Some(b'[') if b.get(j + 1).is_some_and(u8::is_ascii_digit) => j + 1,
            _ => return j,
        };
        let end = ending_end(b, digits_from);
        let number = std::str::from_utf8(&b[digits_from..end]).unwrap_or("");
        self.ending(at + j, at + end, number);
        end
    }

    /// `[K:G]`, `[V:2]`, `[M:3/4]`: a field inside the music.
    fn inline_field(&mut self, at: usize, line: &str, i: usize) -> usize {
        let b = line.as_bytes();
        match find(b, i + 1, b']') {
            Some(j) => {
                let key = char::from(b[i + 1]);
                if !is_known_field(key) {
                    self.diagnostics.push(unknown_field(at + i + 1, key));
                } else if !is_inline_field(key) {
                    self.warn(
                        Code::InlineFieldOutOfPlace,
                        at + i,
                        at + j + 1,
                        &format!("{key}: cannot stand inline among the notes; put it on a line of its own"),
                    );
                }
                if key == 'V' {
                    self.switch_voice(line[i + 3..j].trim());
                }
                j + 1
            }
            None => {
                self.warn(
                    Code::UnclosedInlineField,
                    at + i,
                    at + b.len(),
                    "unclosed inline field `[`",
                );
                b.len()
            }
        }
    }

    /// A chord or grace group: music up to the closing bracket on the same line.
    fn bracketed(
        &mut self,
        at: usize,
        line: &str,
        i: usize,
        close: u8,
        unclosed: (Code, &str),
    ) -> usize {
        let b = line.as_bytes();
        match find(b, i + 1, close) {
            Some(j) => {
                self.music(at + i, at + j + 1);
                j + 1
            }
            None => {
                self.warn(unclosed.0, at + i, at + b.len(), unclosed.1);
                self.music(at + i, at + b.len());
                b.len()
            }
        }
    }
}

/// Bytes that end a run of plain music in [`Scanner::music_line`].
fn is_special(c: u8) -> bool {
    matches!(
        c,
        b' ' | b'\t' | b'%' | b'\\' | b'"' | b'!' | b'+' | b'{' | b'[' | b'|' | b':'
    )
}

pub(crate) fn find(b: &[u8], from: usize, what: u8) -> Option<usize> {
    b.get(from..)?
        .iter()
        .position(|&c| c == what)
        .map(|p| from + p)
}

/// The end of a bar line starting at `i`: colons, an optional `[`, bars, an optional `]`
/// after a bar, colons (`|`, `||`, `|]`, `[|`, `|:`, `:|`, `::`, `:||:`, ...).
pub(crate) fn bar_line_end(b: &[u8], i: usize) -> usize {
    let mut j = i;
    while b.get(j) == Some(&b':') {
        j += 1;
    }
    if b.get(j) == Some(&b'[') && b.get(j + 1) == Some(&b'|') {
        j += 1;
    }
    let bars_from = j;
    while b.get(j) == Some(&b'|') {
        j += 1;
    }
    if j > bars_from && b.get(j) == Some(&b']') {
        j += 1;
    }
    while b.get(j) == Some(&b':') {
        j += 1;
    }
    j.max(i + 1)
}

/// The end of an ending number list such as `1`, `1,3` or `1-3`.
pub(crate) fn ending_end(b: &[u8], from: usize) -> usize {
    let mut j = from;
    while b
        .get(j)
        .is_some_and(|c| c.is_ascii_digit() || *c == b',' || *c == b'-')
    {
        j += 1;
    }
    j
}

#[cfg(test)]
mod tests {
    use crate::abc::{parse, SourceText};

    /// Bars of each voice as (voice id, bar texts).
    fn bars(abc: &str) -> Vec<(String, Vec<&str>)> {
        let f = parse(&SourceText::from_text(abc.to_owned()));
        assert_eq!(f.tunes.len(), 1, "{abc}");
        f.tunes[0]
            .voices
            .iter()
            .map(|v| {
                let texts = v
                    .bars
                    .iter()
                    .map(|b| &abc[b.range.start as usize..b.range.end as usize])
                    .collect();
                (v.id.clone(), texts)
            })
            .collect()
    }

    fn one_voice(abc: &str) -> Vec<&str> {
        let v = bars(abc);
        assert_eq!(v.len(), 1);
        v.into_iter().next().map(|(_, b)| b).unwrap_or_default()
    }

    #[test]
    fn plain_bars_and_repeats() {
        assert_eq!(
            one_voice("X:1\nK:G\n|:GAB c2d|e2f g3:|\n|:gfe dcB|AGF G3:|\n"),
            ["|:GAB c2d|", "e2f g3:|", "|:gfe dcB|", "AGF G3:|"]
        );
    }

    #[test]
    fn last_bar_without_bar_line_and_bars_across_lines() {
        assert_eq!(
            one_voice("X:1\nK:D\nABcd|efga|bagf|\nedcB|A4\n"),
            ["ABcd|", "efga|", "bagf|", "edcB|", "A4"]
        );
        assert_eq!(one_voice("X:1\nK:D\nAB\ncd|ef|\n"), ["AB\ncd|", "ef|"]);
    }

    #[test]
    fn thin_thick_and_double_colon() {
        assert_eq!(
            one_voice("X:1\nK:Am\n[|A2B2c2|d2e2f2|]\n"),
            ["[|A2B2c2|", "d2e2f2|]"]
        );
        assert_eq!(
            one_voice("X:1\nK:Em\nE2B B2A|B2c d2B::e2f g2e|d2B A2F:|\n"),
            ["E2B B2A|", "B2c d2B::", "e2f g2e|", "d2B A2F:|"]
        );
    }

    #[test]
    fn endings() {
        let abc = "X:1\nK:D\n|:AB|[1 cd:|[2 ef|]\nga|1 b:|2 c||\n";
        assert_eq!(
            one_voice(abc),
            ["|:AB|", "[1 cd:|", "[2 ef|]", "ga|", "1 b:|", "2 c||"]
        );
        let f = parse(&SourceText::from_text(abc.to_owned()));
        let endings: Vec<Option<&str>> = f.tunes[0].voices[0]
            .bars
            .iter()
            .map(|b| b.ending.as_deref())
            .collect();
        assert_eq!(
            endings,
            [None, Some("1"), Some("2"), None, Some("1"), Some("2")]
        );
    }

    #[test]
    fn quotes_decorations_comments_and_inline_fields_hide_bar_lines() {
        assert_eq!(
            one_voice("X:1\nK:C\n\"A|B\"c !fermata!d|e [K:G] f % a|b\n|g\\\n a|\n"),
            ["\"A|B\"c !fermata!d|", "e [K:G] f % a|b\n|", "g\\\n a|"]
        );
    }

    #[test]
    fn chords_and_grace_notes() {
        assert_eq!(
            one_voice("X:1\nK:C\n[CEG]2 {ag}f|[c2e2]|\n"),
            ["[CEG]2 {ag}f|", "[c2e2]|"]
        );
    }

    #[test]
    fn lyrics_and_fields_are_not_bars() {
        assert_eq!(
            one_voice("X:1\nK:C\nab|cd|\nw: la la la\nW: words\nM:3/4\nef|\n"),
            ["ab|", "cd|", "ef|"]
        );
    }

    #[test]
    fn voices_keep_their_own_bars() {
        let abc = "X:1\nM:C\nK:C\n%%score (1 2)\nV:1\ncdef gabc'|c'bag fedc|]\nV:2\nC,D,E,F, G,A,B,C|CB,A,G, F,E,D,C,|]\nV:1\nc4|\n";
        let v = bars(abc);
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].0, "1");
        assert_eq!(v[0].1, ["cdef gabc'|", "c'bag fedc|]", "c4|"]);
        assert_eq!(v[1].0, "2");
        assert_eq!(v[1].1, ["C,D,E,F, G,A,B,C|", "CB,A,G, F,E,D,C,|]"]);
    }

    #[test]
    fn inline_voice_switch_and_header_voices() {
        let abc = "X:1\nV:T1 name=\"Tenor\"\nV:B1\nK:C\n[V:T1] ab|cd|\n[V:B1] AB|CD|\n";
        let f = parse(&SourceText::from_text(abc.to_owned()));
        let voices = &f.tunes[0].voices;
        assert_eq!(voices.len(), 2);
        assert_eq!(voices[0].name.as_deref(), Some("Tenor"));
        assert_eq!(voices[0].bars.len(), 2);
        assert_eq!(voices[1].id, "B1");
        assert_eq!(voices[1].bars.len(), 2);
    }

    #[test]
    fn unclosed_things_warn_with_their_place() {
        let abc = "X:1\nK:C\n\"Am ab|cd|\nef [ga|\n";
        let f = parse(&SourceText::from_text(abc.to_owned()));
        assert_eq!(f.diagnostics.len(), 2, "{:?}", f.diagnostics);
        assert_eq!(f.diagnostics[0].range.start, 8);
        assert_eq!(f.diagnostics[1].range.start, 22);
    }
}
