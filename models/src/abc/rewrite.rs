//! Rewrites of ABC text that keep the music and change how it is written: what a composer's
//! own copy of a tune looks like next to a collection's. Evaluation builds its query sets from
//! them (`tunelens eval passages --perturb ...`), and training uses them as second views.
//!
//! - [`drop_ornaments`]: grace notes and decorations removed;
//! - [`strip_chord_symbols`]: chord symbols and annotations (`"G"`, `"^text"`) removed;
//! - [`change_unit`]: every length rewritten for another `L:` (`A2` in `L:1/8` is `A` in
//!   `L:1/4`);
//! - [`one_bar_per_line`]: other line breaks.
//!
//! Field lines and comment lines are kept as they are, except `L:` in [`change_unit`].

use super::canonical::write_length;
use super::notes::Ratio;

/// Whether `line` is a field line (`K:G`) or a comment, which rewrites of music leave alone.
fn is_field_or_comment(line: &str) -> bool {
    let b = line.as_bytes();
    (b.len() > 1 && b[0].is_ascii_alphabetic() && b[1] == b':') || line.starts_with('%')
}

/// `abc` with grace notes (`{...}`), decorations (`!...!`, `+...+`) and the one-character
/// decorations (`~ . H L M O P S T u v`) removed from the music lines; field lines, quoted
/// strings (chords, annotations) and inline fields stay as they are.
pub fn drop_ornaments(abc: &str) -> String {
    rewrite_music(abc, |line, out| {
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '"' => {
                    out.push(c);
                    for d in chars.by_ref() {
                        out.push(d);
                        if d == '"' {
                            break;
                        }
                    }
                }
                '[' if chars.peek().is_some_and(|n| n.is_ascii_alphabetic()) => {
                    // An inline field `[K:..]` (or a chord `[CEG]`): copied whole.
                    out.push(c);
                    for d in chars.by_ref() {
                        out.push(d);
                        if d == ']' {
                            break;
                        }
                    }
                }
                '{' => {
                    for d in chars.by_ref() {
                        if d == '}' {
                            break;
                        }
                    }
                }
                '!' | '+' => {
                    let close = c;
                    for d in chars.by_ref() {
                        if d == close || d == '\n' {
                            break;
                        }
                    }
                }
                '~' | '.' | 'H' | 'L' | 'M' | 'O' | 'P' | 'S' | 'T' | 'u' | 'v' => {}
                _ => out.push(c),
            }
        }
    })
}

/// `abc` with each music line (not a field or a comment line, which are kept) rewritten by
/// `music`, which gets the line with its `\n`.
fn rewrite_music(abc: &str, mut music: impl FnMut(&str, &mut String)) -> String {
    let mut out = String::with_capacity(abc.len() + 32);
    for line in abc.split_inclusive('\n') {
        if is_field_or_comment(line) {
            out.push_str(line);
        } else {
            music(line, &mut out);
        }
    }
    out
}

/// `abc` without chord symbols and annotations (quoted strings in music lines).
pub fn strip_chord_symbols(abc: &str) -> String {
    rewrite_music(abc, |line, out| {
        let mut quoted = false;
        for c in line.chars() {
            if c == '"' {
                quoted = !quoted;
            } else if !quoted || c == '\n' {
                out.push(c);
            }
        }
    })
}

/// What a composer typing the passage would leave out: chord symbols, annotations, grace notes
/// and decorations.
pub fn plain(abc: &str) -> String {
    drop_ornaments(&strip_chord_symbols(abc))
}

/// The unit length in force at the start: `L:`, else ABC 2.1's default from `M:` (1/16 below
/// 3/4, else 1/8).
fn unit_of(abc: &str) -> Ratio {
    let field = |key: &str| {
        abc.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::trim)
            .map(str::to_owned)
    };
    if let Some((n, d)) = field("L:").and_then(|v| {
        let (n, d) = v.split_once('/')?;
        Some((n.trim().parse::<u64>().ok()?, d.trim().parse::<u64>().ok()?))
    }) {
        return Ratio::new(n, d);
    }
    let short = field("M:")
        .and_then(|m| super::notes::parse_meter(&m))
        .is_some_and(|(n, d)| 4 * u64::from(n) < 3 * u64::from(d));
    if short {
        Ratio::new(1, 16)
    } else {
        Ratio::new(1, 8)
    }
}

/// `abc` written with unit length `unit` (`L:` set, every note, rest and chord length
/// rewritten), the same music. Lengths inside chords are kept (the chord's own length after
/// `]` is rewritten); multi-bar rests (`Z`) count bars and are kept.
pub fn change_unit(abc: &str, unit: Ratio) -> String {
    let old = unit_of(abc);
    // new length = old length × old unit / new unit
    let factor = old * Ratio::new(u64::from(unit.den()), u64::from(unit.num()));
    let mut out = String::with_capacity(abc.len() + 16);
    let mut has_unit = false;
    for line in abc.split_inclusive('\n') {
        if line.starts_with("L:") {
            out.push_str(&format!("L:{}/{}\n", unit.num(), unit.den()));
            has_unit = true;
            continue;
        }
        if line.starts_with("K:") && !has_unit {
            out.push_str(&format!("L:{}/{}\n", unit.num(), unit.den()));
            has_unit = true;
        }
        if is_field_or_comment(line) {
            out.push_str(line);
            continue;
        }
        rescale_line(line, factor, &mut out);
    }
    out
}

fn rescale_line(line: &str, factor: Ratio, out: &mut String) {
    let b = line.as_bytes();
    let mut i = 0;
    let mut in_chord = false;
    while i < b.len() {
        let c = b[i];
        match c {
            b'"' | b'!' => {
                let end = line[i + 1..].find(c as char).map_or(b.len(), |j| i + j + 2);
                out.push_str(&line[i..end]);
                i = end;
            }
            b'[' if b.get(i + 2) == Some(&b':') => {
                // An inline field: copied whole.
                let end = line[i..].find(']').map_or(b.len(), |j| i + j + 1);
                out.push_str(&line[i..end]);
                i = end;
            }
            b'[' => {
                in_chord = !matches!(b.get(i + 1), Some(b'|') | Some(b'1'..=b'9'));
                out.push('[');
                i += 1;
            }
            b']' if in_chord => {
                in_chord = false;
                out.push(']');
                i = rescale_length(line, i + 1, factor, out);
            }
            b'A'..=b'G' | b'a'..=b'g' | b'z' | b'x' => {
                out.push(c as char);
                i += 1;
                while i < b.len() && matches!(b[i], b'\'' | b',') {
                    out.push(b[i] as char);
                    i += 1;
                }
                if in_chord {
                    continue;
                }
                i = rescale_length(line, i, factor, out);
            }
            _ => {
                let ch = line[i..].chars().next().unwrap_or(' ');
                out.push(ch);
                i += ch.len_utf8();
            }
        }
    }
}

/// Reads the length written at `line[at..]` (`2`, `/`, `3/2`, `//`), writes it times `factor`
/// and returns where it ended.
fn rescale_length(line: &str, at: usize, factor: Ratio, out: &mut String) -> usize {
    let b = line.as_bytes();
    let digits = |from: usize| {
        let end = from + b[from..].iter().take_while(|c| c.is_ascii_digit()).count();
        (line[from..end].parse::<u64>().ok(), end)
    };
    let (num, mut i) = digits(at);
    let mut den = 1u64;
    while i < b.len() && b[i] == b'/' {
        let (d, end) = digits(i + 1);
        den = den.saturating_mul(d.unwrap_or(2)).min(1 << 20);
        i = end;
    }
    write_length(out, Ratio::new(num.unwrap_or(1).min(1 << 20), den) * factor);
    i
}

/// `abc` with each bar of music on a line of its own.
pub fn one_bar_per_line(abc: &str) -> String {
    rewrite_music(abc, |line, out| {
        let mut quoted = false;
        for c in line.chars() {
            if c == '"' {
                quoted = !quoted;
            }
            out.push(c);
            if c == '|' && !quoted {
                out.push('\n');
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abc::canonical::{render, MusicView};

    #[test]
    fn ornaments_go_and_music_stays() {
        let abc = "L:1/8\nM:6/8\nK:G\n~G2{a}B !trill!d2 .e | \"Am\"[CEA]3 uc2 |\n";
        assert_eq!(
            drop_ornaments(abc),
            "L:1/8\nM:6/8\nK:G\nG2B d2 e | \"Am\"[CEA]3 c2 |\n"
        );
    }

    #[test]
    fn chords_go() {
        assert_eq!(
            strip_chord_symbols("T:\"x\"\nK:G\n\"G\"GAB \"^hi\"c|\n"),
            "T:\"x\"\nK:G\nGAB c|\n"
        );
    }

    #[test]
    fn another_unit_is_the_same_music() {
        let abc = "M:4/4\nL:1/8\nK:D\nD2 FA d>f [Ad]2|z2 A/B/c (3dcB A4|\n";
        let quarter = change_unit(abc, Ratio::new(1, 4));
        assert_eq!(
            quarter,
            "M:4/4\nL:1/4\nK:D\nD F/A/ d/>f/ [Ad]|z A/4B/4c/ (3d/c/B/ A2|\n"
        );
        let sixteenth = change_unit(abc, Ratio::new(1, 16));
        assert!(sixteenth.contains("L:1/16\nK:D\nD4 F2A2"));
        for view in [MusicView::CanonicalTonic, MusicView::CanonicalAbsolute] {
            assert_eq!(render(abc, view), render(&quarter, view));
            assert_eq!(render(abc, view), render(&sixteenth, view));
            assert_eq!(render(abc, view), render(&one_bar_per_line(abc), view));
        }
    }

    #[test]
    fn a_missing_unit_is_added() {
        assert_eq!(
            change_unit("M:6/8\nK:G\nGAB|", Ratio::new(1, 16)),
            "M:6/8\nL:1/16\nK:G\nG2A2B2|"
        );
    }
}
