//! LSP positions (0-based line, UTF-16 code units) ↔ byte offsets, and applying an editor's
//! change to a text. Lines end at `\n`; a `\r` before it belongs to no column an editor shows,
//! so positions past a line's end clamp to before its `\r\n`.

use tunelens_protocol::{Position, Range};

/// Byte offsets of line starts of one text.
#[derive(Debug, Clone)]
pub struct Lines {
    starts: Vec<u32>,
}

impl Lines {
    pub fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i as u32 + 1));
        Self { starts }
    }

    /// The text of 0-based `line` without its line ending.
    fn line<'t>(&self, text: &'t str, line: usize) -> (u32, &'t str) {
        let start = self.starts[line] as usize;
        let end = self
            .starts
            .get(line + 1)
            .map_or(text.len(), |&s| s as usize - 1);
        let s = text.get(start..end).unwrap_or("");
        (start as u32, s.strip_suffix('\r').unwrap_or(s))
    }

    /// The position of a byte offset (clamped to the text; an offset inside a character
    /// counts from that character's start).
    pub fn position(&self, text: &str, offset: u32) -> Position {
        let offset = offset.min(text.len() as u32);
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let (start, content) = self.line(text, line);
        let within = (offset - start) as usize;
        let character: usize = content
            .char_indices()
            .take_while(|(i, _)| *i < within)
            .map(|(_, c)| c.len_utf16())
            .sum();
        Position {
            line: line as u32,
            character: character as u32,
        }
    }

    pub fn range(&self, text: &str, start: u32, end: u32) -> Range {
        Range {
            start: self.position(text, start),
            end: self.position(text, end),
        }
    }

    /// The byte offset of a position; a line past the end gives the end of the text, a
    /// character past the line's end (or inside a surrogate pair) the nearest boundary before.
    pub fn offset(&self, text: &str, pos: Position) -> u32 {
        let line = pos.line as usize;
        if line >= self.starts.len() {
            return text.len() as u32;
        }
        let (start, content) = self.line(text, line);
        let mut units = 0u32;
        for (i, c) in content.char_indices() {
            units += c.len_utf16() as u32;
            if units > pos.character {
                return start + i as u32;
            }
        }
        start + content.len() as u32
    }
}

/// Applies one LSP content change: the whole text when `range` is `None`, else the range
/// replaced by `new_text`.
pub fn apply_change(text: &mut String, range: Option<Range>, new_text: &str) {
    match range {
        None => {
            text.clear();
            text.push_str(new_text);
        }
        Some(r) => {
            let lines = Lines::new(text);
            let a = lines.offset(text, r.start) as usize;
            let b = (lines.offset(text, r.end) as usize).max(a);
            text.replace_range(a..b, new_text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(line: u32, character: u32) -> Position {
        Position { line, character }
    }

    #[test]
    fn utf16_columns_count_astral_characters_twice() {
        let text = "T:Caf\u{e9} \u{1d11e}|A\r\nB|\n";
        let lines = Lines::new(text);
        let a = text.find('A').expect("A") as u32;
        // "T:Café " is 7 units, the clef 2, the bar line 1.
        assert_eq!(lines.position(text, a), pos(0, 10));
        assert_eq!(lines.offset(text, pos(0, 10)), a);
        // Past the end of a CRLF line: before the \r.
        assert_eq!(lines.offset(text, pos(0, 99)), a + 1);
        let b = text.find('B').expect("B") as u32;
        assert_eq!(lines.position(text, b), pos(1, 0));
        assert_eq!(lines.offset(text, pos(9, 0)), text.len() as u32);
    }

    #[test]
    fn incremental_changes_edit_in_place() {
        let mut text = "X:1\r\nK:G\r\nGAB|c\u{e9}d|\r\n".to_owned();
        let r = Range {
            start: pos(2, 4),
            end: pos(2, 6),
        };
        apply_change(&mut text, Some(r), "ef");
        assert_eq!(text, "X:1\r\nK:G\r\nGAB|efd|\r\n");
        apply_change(&mut text, None, "X:2\n");
        assert_eq!(text, "X:2\n");
    }
}
