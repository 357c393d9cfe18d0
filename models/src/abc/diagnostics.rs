//! Everything wrong with a file that the ABC layer can say, at its exact range.
//!
//! [`parse`](super::parse) already reports what reading the text meets on its way (unclosed
//! quotes, brackets, slurs and decorations, unknown and misplaced fields, stray header
//! lines); [`all`] adds what needs the notes read: bars whose notes and rests add up to
//! another length than `M:` gives. That check costs a read of every note, which indexing
//! does not need, so it is not part of `parse`.
//!
//! A bar may be shorter than the meter where musicians write it so: the first bar (a pickup),
//! the last one, the bars either side of a repeat, double bar or ending (a pickup into the
//! next strain and the bar that completes it), and any bar of free meter (`M:none`) or with a
//! multi-bar rest. A longer bar is always reported.

use super::notes::{tune_notes, Ratio};
use super::{AbcFile, Code, Diagnostic, SourceText, Tune};

/// The parser's diagnostics and the bar-duration check of every tune, sorted by place.
pub fn all(source: &SourceText, file: &AbcFile) -> Vec<Diagnostic> {
    let mut out = file.diagnostics.clone();
    for tune in &file.tunes {
        out.extend(bar_durations(source, tune));
    }
    out.sort_by_key(|d| (d.range.start, d.range.end));
    out
}

/// Bars of `tune` whose length disagrees with the meter in force.
pub fn bar_durations(source: &SourceText, tune: &Tune) -> Vec<Diagnostic> {
    let text = source.text();
    let mut out = Vec::new();
    for (voice, notes) in tune.voices.iter().zip(tune_notes(source, tune)) {
        let bars = &voice.bars;
        // Whether the bar line closing bar `i` ends a section (`:|`, `||`, `|]`, `::`).
        let closes_section = |i: usize| {
            let Some(bar) = bars.get(i) else { return true };
            let t = text
                .get(bar.range.start as usize..bar.range.end as usize)
                .unwrap_or("");
            let tail = t.trim_end_matches(|c: char| c.is_ascii_digit() || c == '[');
            let close: String = tail
                .chars()
                .rev()
                .take_while(|c| matches!(c, '|' | ':' | ']' | '['))
                .collect();
            close.len() > 1 || close.contains(':') || close.contains(']')
        };
        // Whether bar `i` opens with a repeat or an ending.
        let opens_section = |i: usize| {
            let Some(bar) = bars.get(i) else { return true };
            let t = text
                .get(bar.range.start as usize..bar.range.end as usize)
                .unwrap_or("");
            bar.ending.is_some() || t.starts_with("|:") || t.starts_with("[|") || t.starts_with(':')
        };
        for (i, bar) in bars.iter().enumerate() {
            let Some(time) = notes.time(i) else { continue };
            let (Some(duration), Some((num, den)), true) =
                (time.duration, time.meter, time.measurable)
            else {
                continue;
            };
            let want = Ratio::new(num.into(), den.into());
            let (have, wanted) = (
                u64::from(duration.num()) * u64::from(want.den()),
                u64::from(want.num()) * u64::from(duration.den()),
            );
            if have == wanted {
                continue;
            }
            let boundary = i == 0
                || i + 1 == bars.len()
                || closes_section(i)
                || closes_section(i.wrapping_sub(1))
                || opens_section(i)
                || opens_section(i + 1);
            if have < wanted && boundary {
                continue;
            }
            let what = if have > wanted {
                "too long"
            } else {
                "too short"
            };
            out.push(Diagnostic::warning(
                Code::BarDuration,
                bar.range,
                format!(
                    "bar {} is {what}: its notes add up to {duration}, M:{num}/{den} gives {want}",
                    bar.number
                ),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abc::{parse, Severity};

    fn diagnostics(abc: &str) -> Vec<(Code, String, String)> {
        let source = SourceText::from_text(abc.to_owned());
        let file = parse(&source);
        all(&source, &file)
            .into_iter()
            .map(|d| {
                assert_eq!(d.severity, Severity::Warning);
                (
                    d.code,
                    source.line_col(d.range.start).to_string(),
                    source.slice(d.range).to_owned(),
                )
            })
            .collect()
    }

    fn codes(abc: &str) -> Vec<Code> {
        diagnostics(abc).into_iter().map(|d| d.0).collect()
    }

    #[test]
    fn a_clean_tune_has_none() {
        let abc = "X:1\nT:Clean\nM:6/8\nL:1/8\nR:jig\nK:G\nD|:GAB c2d|e2f g3|(3gfe dcBA|AGF G2D:|\n|:B>cd e2f|g2a b3|bag fed|1 edc B2D:|2 edc B3|]\n";
        assert_eq!(diagnostics(abc), []);
    }

    #[test]
    fn bars_too_long_or_short_inside_a_section() {
        let d = diagnostics("X:1\nM:4/4\nL:1/8\nK:D\nABcd efga|ABcd efg|ABcd efgab|ABcd efga|]\n");
        assert_eq!(d.len(), 2, "{d:?}");
        assert_eq!(d[0].0, Code::BarDuration);
        assert_eq!(d[0].1, "5:11");
        assert_eq!(d[0].2, "ABcd efg|");
        assert_eq!(d[1].1, "5:20");
    }

    #[test]
    fn pickups_endings_free_meter_tuplets_and_broken_rhythm_are_fine() {
        assert_eq!(
            codes("X:1\nM:3/4\nL:1/4\nK:C\nG|c2 e|(3def g|c3-|c2:|\n"),
            []
        );
        assert_eq!(codes("X:1\nM:none\nL:1/8\nK:C\nabc|defgab|c|\n"), []);
        assert_eq!(
            codes("X:1\nM:2/4\nL:1/16\nK:C\nA>B c<d e2f2|A2>B2 c4|Z4|[M:3/4] c4 e4 g4|c12|]\n"),
            []
        );
        assert_eq!(
            codes("X:1\nM:C|\nL:1/8\nK:G\n|:dc|B2G2 G2AB|[1 c4 z2dc:|[2 c4 zG|\n"),
            []
        );
    }

    #[test]
    fn unclosed_marks_and_misplaced_fields() {
        let d = diagnostics("X:1\nE:5\nK:C\n(ab c)d)|!trill c2|\n[T:Part]ab|\nO:Ireland\n(cd|\n");
        let got: Vec<(Code, &str)> = d.iter().map(|d| (d.0, d.1.as_str())).collect();
        assert_eq!(
            got,
            [
                (Code::UnknownField, "2:1"),
                (Code::UnmatchedSlur, "4:8"),
                (Code::UnclosedDecoration, "4:10"),
                (Code::InlineFieldOutOfPlace, "5:1"),
                (Code::FieldOutOfPlace, "6:1"),
                (Code::UnclosedSlur, "7:1"),
            ]
        );
    }

    #[test]
    fn columns_count_characters_in_crlf_and_non_ascii_files() {
        let abc =
            "X:1\r\nT:Ré mineur «vieux»\r\nM:2/4\r\nL:1/8\r\nK:Dm\r\n\"Ré\"DE FA|\"é\"AB cde|\r\n";
        let d = diagnostics(abc);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].1, "6:11");
        assert_eq!(d[0].2, "\"é\"AB cde|");
        let latin1 = b"X:1\nT:Caf\xe9\nM:2/4\nL:1/8\nK:C\n\"\xe9\"ab \"unclosed|\n";
        let source = SourceText::from_bytes(latin1, 1 << 20).expect("latin-1 reads");
        let file = parse(&source);
        let quote = all(&source, &file)
            .into_iter()
            .find(|d| d.code == Code::UnclosedQuote)
            .expect("the unclosed quote is reported");
        assert_eq!(source.line_col(quote.range.start).to_string(), "6:7");
    }
}
