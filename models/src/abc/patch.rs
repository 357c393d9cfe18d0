//! The CLaMP patchilizer: ABC text → 64-symbol "bar patches", exactly as the reference does it.
//!
//! Ports `MusicPatchilizer` from `clamp/utils.py` of microsoft/muzic (commit 2b87396), quirks
//! included, because a model only gives its published numbers on the input it was trained on:
//! - the text is transliterated to ASCII with unidecode first;
//! - a line whose first character is a letter and second a `:` (or that starts with `%%score`)
//!   is a header line and becomes one patch of its own;
//! - all other lines are glued together *without* their newlines and cut into bars at the
//!   delimiters `|:` `::` `:|` `[|` `||` `|]` `|` (tried in that order at each position);
//! - a body that starts with a delimiter glues it to the next piece, then pieces are paired
//!   (text, delimiter); an odd trailing piece (music after the last bar line) is dropped;
//! - a patch holds the first 64 characters: printable ASCII 32..=126 → 1..=95, anything else
//!   → 0 (pad), then one EOS (97) if there is room;
//! - an optional patch of 64 EOS symbols closes the tune, and the list is cut to the limit.
//!
//! One deliberate difference: every `\r` is removed before patching. The reference's own
//! loader (`load_music` in `clamp/clamp.py`) does the same, so the model never saw one.
//!
//! Unlike the reference, every patch also carries the byte range of the source text it came
//! from, so that results can point back into the user's file.

use std::ops::Range;

use serde::Serialize;

use super::canonical::{self, MusicView};
use super::{translit, TextRange};

/// Characters per patch.
pub const PATCH_LENGTH: usize = 64;
/// Symbols in the patch alphabet: pad, 95 printable ASCII characters, mask, EOS.
pub const PATCH_FEATURES: usize = 98;
pub const PAD_ID: u8 = 0;
pub const MASK_ID: u8 = 96;
pub const EOS_ID: u8 = 97;

/// One patch and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Patch {
    #[serde(serialize_with = "serialize_ids")]
    pub ids: [u8; PATCH_LENGTH],
    /// Byte range in the text given to [`Patchilizer::encode`] (shifted by its `base`).
    /// For a bar glued from several lines it spans those lines; the EOS patch has an empty
    /// range at the end of the text.
    #[serde(flatten)]
    pub range: TextRange,
}

fn serialize_ids<S: serde::Serializer>(ids: &[u8; PATCH_LENGTH], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(ids.iter())
}

impl Patch {
    /// True for the all-EOS patch that closes a tune.
    pub fn is_eos(&self) -> bool {
        self.ids.iter().all(|&id| id == EOS_ID)
    }

    /// The characters this patch holds, as the reference's `patch2bar` reads them: up to the
    /// first pad, mask or EOS.
    pub fn text(&self) -> String {
        self.ids
            .iter()
            .take_while(|&&id| id > 0 && id < MASK_ID)
            .map(|&id| char::from(id + 31))
            .collect()
    }
}

/// Options of [`Patchilizer::encode`], named after the reference's arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatchOptions {
    /// The most patches to return (the reference's `music_length`; the model's patch limit).
    pub max_patches: usize,
    /// Close the tune with a patch of EOS symbols (before cutting to `max_patches`).
    pub add_eos_patch: bool,
    /// Apply the reference's `abc_filter` first: it drops metadata lines (`T:`, `C:`, `X:`,
    /// ...), comment lines and trailing comments, as the official CLaMP inference does.
    pub reference_filter: bool,
}

impl Default for PatchOptions {
    fn default() -> Self {
        Self {
            max_patches: 512,
            add_eos_patch: true,
            reference_filter: false,
        }
    }
}

impl PatchOptions {
    /// Every patch, closed by EOS, no filter: what tunelens embeds (the model then cuts or
    /// segments tunes past its own limit).
    pub const ALL: PatchOptions = PatchOptions {
        max_patches: usize::MAX,
        add_eos_patch: true,
        reference_filter: false,
    };
}

/// Turns ABC text into patches. Holds reusable buffers, so one instance per thread that
/// patches many tunes allocates little.
#[derive(Debug, Default)]
pub struct Patchilizer {
    /// How the model reads music: canonical views patch a re-rendering of the notes.
    view: MusicView,
    ascii: Mapped,
    filtered: Mapped,
    body: Body,
}

/// Body lines glued together as the reference does, remembering where each line came from.
#[derive(Debug, Default)]
struct Body {
    bytes: Vec<u8>,
    /// (offset in `bytes`, offset in the ASCII text) where each glued line starts.
    lines: Vec<(usize, usize)>,
}

impl Body {
    fn push_line(&mut self, line: &[u8], at: usize) {
        if !line.is_empty() {
            self.lines.push((self.bytes.len(), at));
            self.bytes.extend_from_slice(line);
        }
    }

    /// The ASCII text offset of body byte `i`.
    fn ascii_offset(&self, i: usize) -> usize {
        let line = self.lines.partition_point(|&(start, _)| start <= i) - 1;
        let (start, at) = self.lines[line];
        at + (i - start)
    }

    /// Cuts the body into bars, one patch each, and empties it.
    fn flush(&mut self, text: &Mapped, out: &mut Vec<Patch>) {
        for_each_bar(&self.bytes, |bar| {
            let first = self.ascii_offset(bar.start);
            let last = self.ascii_offset(bar.end - 1);
            out.push(Patch {
                ids: bar_to_patch(&self.bytes[bar]),
                range: text.range(first, last + 1),
            });
        });
        self.bytes.clear();
        self.lines.clear();
    }
}

impl Patchilizer {
    pub fn new() -> Self {
        Self::default()
    }

    /// A patchilizer for a model that reads music in `view` (its `config.json` names it).
    pub fn with_view(view: MusicView) -> Self {
        Self {
            view,
            ..Self::default()
        }
    }

    pub fn view(&self) -> MusicView {
        self.view
    }

    /// Encodes `music` as the model reads it. In the reference view, as the reference
    /// `MusicPatchilizer.encode` does, with patch ranges that are byte offsets into `music`
    /// plus `base` (pass the offset of `music` in its file). In a canonical view the patches
    /// are of the re-rendered notes, and each one's range is the whole of `music`.
    pub fn encode(&mut self, music: &str, base: u32, options: PatchOptions) -> Vec<Patch> {
        let Some(text) = canonical::render(music, self.view) else {
            return self.encode_as_written(music, base, options);
        };
        let whole = TextRange::new(base, base.saturating_add(music.len() as u32));
        let mut patches = self.encode_as_written(&text, 0, options);
        for p in &mut patches {
            p.range = whole;
        }
        patches
    }

    /// The reference patching of `music` as written.
    fn encode_as_written(&mut self, music: &str, base: u32, options: PatchOptions) -> Vec<Patch> {
        self.ascii.transliterate(music, base);
        let text = if options.reference_filter {
            self.filtered.filter_from(&self.ascii);
            &self.filtered
        } else {
            &self.ascii
        };

        let mut patches = Vec::new();
        let mut line_start = 0;
        for line in text.bytes.split(|&b| b == b'\n') {
            let start = line_start;
            line_start += line.len() + 1;
            if is_header_line(line) {
                self.body.flush(text, &mut patches);
                let range = text.range(start, start + line.len());
                patches.push(Patch {
                    ids: bar_to_patch(line),
                    range,
                });
            } else {
                self.body.push_line(line, start);
            }
        }
        self.body.flush(text, &mut patches);

        if options.add_eos_patch {
            let end = base + music.len() as u32;
            patches.push(Patch {
                ids: [EOS_ID; PATCH_LENGTH],
                range: TextRange::new(end, end),
            });
        }
        patches.truncate(options.max_patches);
        patches
    }
}

impl Patchilizer {
    /// Only the patches' symbols, as the model takes them.
    pub fn encode_ids(&mut self, music: &str, options: PatchOptions) -> Vec<[u8; PATCH_LENGTH]> {
        self.encode(music, 0, options)
            .into_iter()
            .map(|p| p.ids)
            .collect()
    }
}

/// The reference's test for a line that is not music: `X:`-style fields and `%%score`.
fn is_header_line(line: &[u8]) -> bool {
    (line.len() > 1 && line[0].is_ascii_alphabetic() && line[1] == b':')
        || line.starts_with(b"%%score")
}

/// The reference's `split_bars`: `re.split` on the delimiters (keeping them), empty pieces
/// removed, a leading delimiter glued to the piece after it, then (piece, delimiter) pairs.
/// Returns byte ranges into `body`; the pieces are adjacent, so each bar is one range.
pub fn split_bars(body: &[u8]) -> Vec<Range<usize>> {
    let mut bars = Vec::new();
    for_each_bar(body, |r| bars.push(r));
    bars
}

/// [`split_bars`] without collecting: calls `emit` with each bar's range, in order.
fn for_each_bar(body: &[u8], mut emit: impl FnMut(Range<usize>)) {
    let mut pairing = Pairing::default();
    let mut text_start = 0;
    let mut i = 0;
    while i < body.len() {
        let next = body.get(i + 1).copied();
        // The delimiters in the order the reference's alternation tries them:
        // `|:` `::` `:|` `[|` `||` `|]` `|`.
        let len = match (body[i], next) {
            (b'|', Some(b':' | b'|' | b']')) => 2,
            (b'|', _) => 1,
            (b':', Some(b':' | b'|')) | (b'[', Some(b'|')) => 2,
            _ => {
                i += 1;
                continue;
            }
        };
        if text_start < i {
            pairing.piece(text_start..i, false, &mut emit);
        }
        pairing.piece(i..i + len, true, &mut emit);
        i += len;
        text_start = i;
    }
    if text_start < body.len() {
        pairing.piece(text_start..body.len(), false, &mut emit);
    }
}

/// The reference's treatment of the pieces `re.split` leaves, one piece at a time.
#[derive(Default)]
struct Pairing {
    seen_first: bool,
    /// A leading delimiter, waiting to be glued to the piece after it
    /// (`if bars[0] in self.delimiters: bars[1] = bars[0] + bars[1]`).
    glue_from: Option<usize>,
    /// The first piece of a pair, waiting for its second; an odd last piece is never emitted.
    /// The reference raises IndexError on a body that is one lone delimiter; that piece waits
    /// here forever, so we return no bars, as its pairing would.
    pair_from: Option<usize>,
}

impl Pairing {
    fn piece(&mut self, r: Range<usize>, delimiter: bool, emit: &mut impl FnMut(Range<usize>)) {
        if !self.seen_first {
            self.seen_first = true;
            if delimiter {
                self.glue_from = Some(r.start);
                return;
            }
        }
        let start = self.glue_from.take().unwrap_or(r.start);
        match self.pair_from.take() {
            None => self.pair_from = Some(start),
            Some(first) => emit(first..r.end),
        }
    }
}

/// The reference's `bar2patch`: the first 64 characters, printable ASCII shifted by -31,
/// anything else left as pad, and EOS after the last character when there is room.
pub fn bar_to_patch(bar: &[u8]) -> [u8; PATCH_LENGTH] {
    let mut patch = [PAD_ID; PATCH_LENGTH];
    for (slot, &b) in patch.iter_mut().zip(bar) {
        if (32..127).contains(&b) {
            *slot = b - 31;
        }
    }
    if bar.len() < PATCH_LENGTH {
        patch[bar.len()] = EOS_ID;
    }
    patch
}

/// The reference's `decode`: each patch's text on a line of its own.
pub fn decode(patches: &[Patch]) -> String {
    let mut music = String::new();
    for patch in patches {
        music.push_str(&patch.text());
        music.push('\n');
    }
    music
}

/// ASCII text with, for each byte, the byte range of the source character it came from.
#[derive(Debug, Default)]
struct Mapped {
    bytes: Vec<u8>,
    /// `None`: the text is the source itself (pure ASCII, no `\r`), byte `i` is source byte
    /// `base + i`. Kept apart because it is the common case and needs no table.
    spans: Option<Vec<TextRange>>,
    base: u32,
}

impl Mapped {
    fn transliterate(&mut self, music: &str, base: u32) {
        self.bytes.clear();
        self.base = base;
        if music.is_ascii() && !music.contains('\r') {
            self.bytes.extend_from_slice(music.as_bytes());
            self.spans = None;
            return;
        }
        let spans = self.spans.get_or_insert_with(Vec::new);
        spans.clear();
        let mut buf = String::new();
        for (at, c) in music.char_indices() {
            let span = TextRange::new(base + at as u32, base + (at + c.len_utf8()) as u32);
            if c == '\r' {
                continue;
            }
            if c.is_ascii() {
                self.bytes.push(c as u8);
                spans.push(span);
                continue;
            }
            buf.clear();
            translit::push_char(c, &mut buf);
            self.bytes.extend_from_slice(buf.as_bytes());
            spans.extend(std::iter::repeat_n(span, buf.len()));
        }
    }

    /// The reference's `abc_filter` over the lines of `src`, keeping each byte's source span.
    fn filter_from(&mut self, src: &Mapped) {
        self.bytes.clear();
        self.base = src.base;
        let spans = self.spans.get_or_insert_with(Vec::new);
        spans.clear();
        let mut line_start = 0;
        for line in src.bytes.split(|&b| b == b'\n') {
            let start = line_start;
            line_start += line.len() + 1;
            let Some(keep) = reference_filter_line(line) else {
                continue;
            };
            self.bytes.extend_from_slice(&line[..keep]);
            spans.extend((start..start + keep).map(|i| src.span(i)));
            // The newline the filter appends comes from no source character: give it an
            // empty range at the end of the kept text. Lines never include it in a patch.
            let end = src.range(start, start + line.len()).end;
            self.bytes.push(b'\n');
            spans.push(TextRange::new(end, end));
        }
    }

    fn span(&self, i: usize) -> TextRange {
        match &self.spans {
            None => TextRange::new(self.base + i as u32, self.base + i as u32 + 1),
            Some(spans) => spans[i],
        }
    }

    /// The source range covered by ASCII bytes `start..end` (`start < end`, or an empty
    /// range at `start`).
    fn range(&self, start: usize, end: usize) -> TextRange {
        if start >= end {
            let at = self.spans.as_ref().map_or(self.base + start as u32, |s| {
                s.get(start)
                    .map_or_else(|| s.last().map_or(self.base, |l| l.end), |span| span.start)
            });
            return TextRange::new(at, at);
        }
        TextRange::new(self.span(start).start, self.span(end - 1).end)
    }
}

/// `abc_filter` from `clamp/clamp.py` for one line: `None` drops it, `Some(n)` keeps its first
/// `n` bytes. Quirks kept: `'G'` in its list has no colon, so only a line that is exactly "G"
/// matches it; a trailing comment is cut at the last `%` and one more character is dropped
/// (meant to be the space before it).
fn reference_filter_line(line: &[u8]) -> Option<usize> {
    const DROPPED: [&[u8]; 17] = [
        b"A:", b"B:", b"C:", b"D:", b"F:", b"G", b"H:", b"N:", b"O:", b"R:", b"r:", b"S:", b"T:",
        b"W:", b"w:", b"X:", b"Z:",
    ];
    let head = &line[..line.len().min(2)];
    let score = line.starts_with(b"%%score");
    if DROPPED.contains(&head) || (line.starts_with(b"%") && !score) {
        return None;
    }
    if !score {
        if let Some(last) = line.iter().rposition(|&b| b == b'%') {
            return Some(last.saturating_sub(1));
        }
    }
    Some(line.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(body: &str) -> Vec<&str> {
        split_bars(body.as_bytes())
            .into_iter()
            .map(|r| &body[r])
            .collect()
    }

    #[test]
    fn split_bars_pairs_like_the_reference() {
        assert_eq!(texts("ab|cd|"), ["ab|", "cd|"]);
        // The odd trailing piece is dropped.
        assert_eq!(texts("ab|cd"), ["ab|"]);
        // A leading delimiter is glued to the piece after it.
        assert_eq!(texts("|:ab|cd:|"), ["|:ab|", "cd:|"]);
        // Consecutive delimiters shift the pairing: the last `|` is left over and dropped.
        assert_eq!(texts("ab|]|:cd|"), ["ab|]", "|:cd"]);
        assert_eq!(texts("ab::cd|"), ["ab::", "cd|"]);
        // `[|` is one delimiter; `||` is tried before `|]`.
        assert_eq!(texts("[|ab||c|]"), ["[|ab||", "c|]"]);
        assert_eq!(texts("|"), Vec::<&str>::new());
        assert_eq!(texts(""), Vec::<&str>::new());
    }

    #[test]
    fn bar_to_patch_pads_and_ends() {
        let p = bar_to_patch(b"A|");
        assert_eq!(&p[..4], &[34, 93, EOS_ID, 0]);
        let p = bar_to_patch(b"\tA");
        assert_eq!(&p[..3], &[0, 34, EOS_ID]);
        let long = [b'a'; 70];
        let p = bar_to_patch(&long);
        assert!(p.iter().all(|&id| id == b'a' - 31));
    }

    #[test]
    fn header_lines_are_own_patches() {
        let mut p = Patchilizer::new();
        let abc = "X:1\nK:G\nGA|Bc|\n";
        let patches = p.encode(abc, 0, PatchOptions::default());
        let texts: Vec<String> = patches.iter().map(Patch::text).collect();
        assert_eq!(texts, ["X:1", "K:G", "GA|", "Bc|", ""]);
        assert!(patches[4].is_eos());
        assert_eq!(patches[2].range, TextRange::new(8, 11));
        assert_eq!(decode(&patches[..2]), "X:1\nK:G\n");
    }

    #[test]
    fn ranges_point_into_the_source_through_transliteration() {
        let mut p = Patchilizer::new();
        let abc = "T:é\r\nK:C\r\nab|\r\ncd|\n";
        let patches = p.encode(abc, 10, PatchOptions::default());
        assert_eq!(patches[0].text(), "T:e");
        assert_eq!(patches[0].range, TextRange::new(10, 14));
        // The bar glued from two lines spans both in the source.
        assert_eq!(patches[2].text(), "ab|");
        assert_eq!(patches[3].text(), "cd|");
        assert_eq!(&abc[(patches[3].range.start - 10) as usize..][..3], "cd|");
    }

    #[test]
    fn reference_filter_drops_metadata_and_comments() {
        assert_eq!(reference_filter_line(b"T:title"), None);
        assert_eq!(reference_filter_line(b"G"), None);
        assert_eq!(reference_filter_line(b"G:x"), Some(3));
        assert_eq!(reference_filter_line(b"% note"), None);
        assert_eq!(reference_filter_line(b"%%score 1 2"), Some(11));
        assert_eq!(reference_filter_line(b"abc | d % x"), Some(7));
        let mut p = Patchilizer::new();
        let options = PatchOptions {
            reference_filter: true,
            ..PatchOptions::default()
        };
        let patches = p.encode("X:1\nT:t\nK:C\nab|c % x\n", 0, options);
        let texts: Vec<String> = patches.iter().map(Patch::text).collect();
        assert_eq!(texts, ["K:C", "ab|", ""]);
    }

    #[test]
    fn truncates_to_limit() {
        let mut p = Patchilizer::new();
        let options = PatchOptions {
            max_patches: 2,
            ..PatchOptions::default()
        };
        assert_eq!(p.encode("X:1\nK:C\na|b|\n", 0, options).len(), 2);
    }
}
