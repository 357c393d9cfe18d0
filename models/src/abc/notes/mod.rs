//! The symbolic side of a tune: the notes of each bar of a voice (MIDI pitch, duration in
//! whole notes, place in the file), and transposition- and tempo-invariant n-gram features
//! over them, as folk tune finders match melodies.
//!
//! Notes are read in the context of the tune: the header's `K:`, `L:` and `M:` (with ABC 2.1's
//! default unit length), changed by body field lines and inline `[K:..]`, `[L:..]`, `[M:..]`
//! fields, each change applying to the voice being read. Within a bar, accidentals carry to
//! the end of the bar for their letter and octave. Ties merge notes of one pitch into one
//! longer note (across a bar line too: the note stays in the bar where it starts), a chord
//! counts as its top note, and grace notes, decorations, chord symbols, spacers and rests give
//! no note. Reading never fails: what is not music is skipped.
//!
//! On top of the notes: [`interval_ngrams`] (hashes of pitch-interval and duration-ratio
//! n-grams, the same in any key and tempo, stable across runs so they can be stored), and for
//! explaining a match, [`align`] (transposition and note-by-note changes), [`transposition`]
//! and [`describe_transposition`] ("up a perfect 4th").

use std::ops::Range;

use serde::Serialize;

use super::fields::{field_key, field_value};
use super::tune::Tune;
use super::{SourceText, TextRange};

/// A positive rational number, kept in lowest terms, for durations in whole notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Ratio {
    num: u32,
    den: u32,
}

impl Ratio {
    pub const ONE: Ratio = Ratio { num: 1, den: 1 };

    /// `num / den` in lowest terms. A zero denominator reads as 1 and a zero numerator as 1,
    /// since ABC has no zero-length note; values too large for `u32` are approximated.
    pub fn new(num: u64, den: u64) -> Self {
        let (num, den) = (num.max(1), den.max(1));
        let g = gcd(num, den);
        let (mut num, mut den) = (num / g, den / g);
        // Only absurd input (`A99999/99999` chains) gets here; halving both keeps the value
        // close enough and never lets a term reach zero.
        while num > u64::from(u32::MAX) || den > u64::from(u32::MAX) {
            num = (num / 2).max(1);
            den = (den / 2).max(1);
        }
        Self {
            num: num as u32,
            den: den as u32,
        }
    }

    pub fn num(self) -> u32 {
        self.num
    }

    pub fn den(self) -> u32 {
        self.den
    }

    pub fn as_f64(self) -> f64 {
        f64::from(self.num) / f64::from(self.den)
    }
}

impl std::ops::Mul for Ratio {
    type Output = Ratio;

    fn mul(self, other: Ratio) -> Ratio {
        // Most notes have no length mark: skip the gcd for them.
        if other == Ratio::ONE {
            return self;
        }
        if self == Ratio::ONE {
            return other;
        }
        Ratio::new(
            u64::from(self.num) * u64::from(other.num),
            u64::from(self.den) * u64::from(other.den),
        )
    }
}

impl std::ops::Add for Ratio {
    type Output = Ratio;

    fn add(self, other: Ratio) -> Ratio {
        let (a, b) = (u64::from(self.num), u64::from(self.den));
        let (c, d) = (u64::from(other.num), u64::from(other.den));
        // Both terms fit in u32, so `a*d + c*b` fits in u64.
        Ratio::new(a * d + c * b, b * d)
    }
}

impl std::fmt::Display for Ratio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.num, self.den)
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

/// One note of a melody.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Note {
    /// MIDI note number: ABC's `C` is middle C, 60; clamped to 0..=127.
    pub pitch: i16,
    /// In whole notes (`1/8` is an eighth), ties and broken rhythm included.
    pub duration: Ratio,
    /// The note's text in the file: accidental, letter, octave marks and length, a whole chord
    /// `[CEG]2`, or tied notes within one bar (`A2-A`).
    pub range: TextRange,
}

/// The notes of one voice, bar by bar, in one flat vector (two allocations per voice, and a
/// window of consecutive bars is one slice).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct VoiceNotes {
    pub notes: Vec<Note>,
    /// `bar_ends[i]` is the end in `notes` of bar `i` (0-based, as in `Voice::bars`).
    bar_ends: Vec<u32>,
    /// How long each bar lasts and the meter in force, for the bar-duration diagnostic.
    times: Vec<BarTime>,
}

/// The time one bar takes, as its notes and rests add up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BarTime {
    /// In whole notes; `None` for a bar without notes or rests.
    pub duration: Option<Ratio>,
    /// The meter in force at the bar's end; `None` for free meter.
    pub meter: Option<(u32, u32)>,
    /// False when the bar holds a multi-bar rest (`Z4`, `X`), whose length is in bars.
    pub measurable: bool,
}

impl VoiceNotes {
    pub fn bar_count(&self) -> usize {
        self.bar_ends.len()
    }

    /// The notes of bar `i` (0-based); empty when there is no such bar.
    pub fn bar(&self, i: usize) -> &[Note] {
        self.bars(i..i.saturating_add(1))
    }

    /// The notes of bars `range` (0-based, end exclusive), e.g. a passage window; clamped to
    /// the bars there are.
    pub fn bars(&self, range: Range<usize>) -> &[Note] {
        let end = range.end.min(self.bar_ends.len());
        let start = range.start.min(end);
        let from = match start {
            0 => 0,
            s => self.bar_ends[s - 1] as usize,
        };
        let to = match end {
            0 => 0,
            e => self.bar_ends[e - 1] as usize,
        };
        // `notes` is public, so a caller may have shortened it: never index past it.
        self.notes.get(from..to).unwrap_or(&[])
    }

    /// How long bar `i` (0-based) lasts, and in what meter.
    pub fn time(&self, i: usize) -> Option<BarTime> {
        self.times.get(i).copied()
    }

    /// The notes of each bar in order.
    pub fn iter_bars(&self) -> impl Iterator<Item = &[Note]> + '_ {
        (0..self.bar_count()).map(|i| self.bar(i))
    }
}

/// The notes of voice `voice` (an index into `tune.voices`), with one entry per bar of
/// `Voice::bars`. Never panics; an unknown voice has no bars.
pub fn voice_notes(source: &SourceText, tune: &Tune, voice: usize) -> VoiceNotes {
    read_tune(source, tune, Some(voice))
        .into_iter()
        .nth(voice)
        .unwrap_or_default()
}

/// The notes of every voice of `tune`, in the order of `tune.voices`, in one pass.
pub fn tune_notes(source: &SourceText, tune: &Tune) -> Vec<VoiceNotes> {
    read_tune(source, tune, None)
}

// ---------------------------------------------------------------------------------------------
// Context: key signature, unit length, meter.

/// Semitones of the letters C D E F G A B above C.
pub(crate) const SEMITONES: [i16; 7] = [0, 2, 4, 5, 7, 9, 11];

/// Index (C = 0 .. B = 6) of a note letter of either case.
fn letter_index(c: u8) -> Option<usize> {
    match c.to_ascii_uppercase() {
        b'C' => Some(0),
        b'D' => Some(1),
        b'E' => Some(2),
        b'F' => Some(3),
        b'G' => Some(4),
        b'A' => Some(5),
        b'B' => Some(6),
        _ => None,
    }
}

/// A key signature: the accidental (in semitones) of each letter C..B.
pub(crate) type KeySig = [i8; 7];

/// The signature of `fifths` sharps (negative: flats); beyond 7, letters get double ones.
pub(crate) fn signature_of_fifths(fifths: i32) -> KeySig {
    // Letter indices in the order sharps are added (F C G D A E B); flats go the other way.
    const SHARP_ORDER: [usize; 7] = [3, 0, 4, 1, 5, 2, 6];
    let mut sig = [0i8; 7];
    let n = fifths.clamp(-14, 14);
    for (k, &letter) in SHARP_ORDER.iter().enumerate() {
        let k = k as i32;
        sig[letter] = if n > 0 {
            ((n - k + 6) / 7) as i8
        } else {
            -(((-n) - (6 - k) + 6) / 7) as i8
        };
    }
    sig
}

/// The mode's distance from major in fifths, from its name (any case, first three letters).
pub(crate) fn mode_fifths(word: &str) -> Option<i32> {
    let w = word.to_ascii_lowercase();
    if w == "m" {
        return Some(-3);
    }
    let head = w.get(..3)?;
    Some(match head {
        "maj" | "ion" => 0,
        "min" | "aeo" => -3,
        "dor" => -2,
        "phr" => -4,
        "lyd" => 1,
        "mix" => -1,
        "loc" => -5,
        _ => return None,
    })
}

/// Reads a `K:` value. Returns `None` when it names no key (`K:clef=bass`, `K:`), so that
/// the key in force stays.
pub(crate) fn parse_key(value: &str) -> Option<KeySig> {
    let v = value.trim();
    let b = v.as_bytes();
    let (mut sig, rest) = if let Some(rest) = v.strip_prefix("HP") {
        // Highland pipes, written without a signature.
        ([0; 7], rest)
    } else if let Some(rest) = v.strip_prefix("Hp") {
        // Highland pipes with the signature shown: F# and C#, G natural.
        ([1, 0, 0, 1, 0, 0, 0], rest)
    } else if v.get(..4).is_some_and(|h| h.eq_ignore_ascii_case("none")) {
        ([0; 7], &v[4..])
    } else if let Some(tonic) = b.first().and_then(|&c| c.is_ascii_uppercase().then_some(c)) {
        let (sig, used) = tonic_and_mode(tonic, &v[1..])?;
        (sig, &v[1 + used..])
    } else if b.first().is_some_and(|c| matches!(c, b'^' | b'_' | b'=')) {
        // Only explicit accidentals: they change the key in force, but we cannot see it here;
        // start from C, as the standard reads a signature of accidentals alone.
        ([0; 7], v)
    } else {
        return None;
    };
    apply_explicit_accidentals(&mut sig, rest);
    Some(sig)
}

/// The signature for a tonic letter, then `#`/`b` and a mode in `rest`. Returns it with the
/// number of bytes of `rest` used.
fn tonic_and_mode(tonic: u8, rest: &str) -> Option<(KeySig, usize)> {
    // Positions on the circle of fifths of the major keys on each letter.
    let base = match tonic {
        b'C' => 0,
        b'G' => 1,
        b'D' => 2,
        b'A' => 3,
        b'E' => 4,
        b'B' => 5,
        b'F' => -1,
        _ => return None,
    };
    let rb = rest.as_bytes();
    let (shift, mut used) = match rb.first() {
        Some(b'#') => (7, 1),
        Some(b'b') => (-7, 1),
        _ => (0, 0),
    };
    let word_start = used + rest[used..].len() - rest[used..].trim_start().len();
    let word_len = rest[word_start..]
        .bytes()
        .take_while(u8::is_ascii_alphabetic)
        .count();
    let word = &rest[word_start..word_start + word_len];
    let mut fifths = base + shift;
    if word.eq_ignore_ascii_case("exp") {
        // `K:D exp ^f ^c`: only the accidentals that follow.
        return Some(([0; 7], word_start + word_len));
    }
    if let Some(m) = mode_fifths(word) {
        fifths += m;
        used = word_start + word_len;
    }
    Some((signature_of_fifths(fifths), used))
}

/// `K:D =c ^g`: explicit accidentals after the key change single letters (any octave).
fn apply_explicit_accidentals(sig: &mut KeySig, rest: &str) {
    for token in rest.split_whitespace() {
        let t = token.as_bytes();
        let (acc, len) = match t {
            [b'^', b'^', ..] => (2, 2),
            [b'_', b'_', ..] => (-2, 2),
            [b'^', ..] => (1, 1),
            [b'_', ..] => (-1, 1),
            [b'=', ..] => (0, 1),
            _ => continue,
        };
        // Exactly an accidental and a letter: `clef=bass` and the like are no accidentals.
        if t.len() == len + 1 {
            if let Some(l) = letter_index(t[len]) {
                sig[l] = acc;
            }
        }
    }
}

/// A meter as numerator and denominator; `None` for free meter (`M:none`) or what we cannot
/// read.
pub(crate) fn parse_meter(value: &str) -> Option<(u32, u32)> {
    let v = value.trim();
    match v {
        "C" => return Some((4, 4)),
        "C|" => return Some((2, 2)),
        _ => {}
    }
    let (top, bottom) = v.split_once('/')?;
    // `(2+3)/8` and `2+3/8`: the numerator is the sum of its parts.
    let num: u32 = top
        .trim()
        .trim_matches(|c| c == '(' || c == ')')
        .split('+')
        .map(|p| p.trim().parse::<u32>().ok())
        .try_fold(0u32, |s, p| s.checked_add(p?))?;
    let den: u32 = bottom
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    (num > 0 && den > 0).then_some((num, den))
}

/// A unit note length such as `1/8` or `1`.
fn parse_unit(value: &str) -> Option<Ratio> {
    let v = value.trim();
    let (num, den) = match v.split_once('/') {
        Some((n, d)) => (n.trim().parse::<u32>().ok()?, d.trim().parse::<u32>().ok()?),
        None => (v.parse::<u32>().ok()?, 1),
    };
    (num > 0 && den > 0).then(|| Ratio::new(num.into(), den.into()))
}

/// ABC 2.1: the unit length is 1/16 when the meter is below 3/4, else 1/8 (free meter too).
fn default_unit(meter: Option<(u32, u32)>) -> Ratio {
    match meter {
        Some((n, d)) if 4 * u64::from(n) < 3 * u64::from(d) => Ratio::new(1, 16),
        _ => Ratio::new(1, 8),
    }
}

/// 6/8, 9/8, 12/8: the meters in which `(5`, `(7` and `(9` mean "in the time of 3".
fn is_compound(meter: Option<(u32, u32)>) -> bool {
    meter.is_some_and(|(n, _)| n > 3 && n % 3 == 0)
}

// ---------------------------------------------------------------------------------------------
// Reading a tune.

/// A tie waiting for the note that continues it.
#[derive(Debug, Clone, Copy)]
struct Tie {
    /// Index of the tied note in its voice's notes.
    note: usize,
    /// Letter and octave of the tied note, so that `^c-|c` continues with c sharp.
    pos: u8,
}

/// The last note, chord or rest read, which a following `>`, `<` or `-` changes.
#[derive(Debug, Clone, Copy)]
enum Last {
    None,
    Rest,
    Note {
        index: usize,
        /// The note's duration before this part was added by a tie (none when untied).
        before: Option<Ratio>,
        /// The duration of the part just read.
        part: Ratio,
        /// Letter and octave of the note (the top note of a chord), for a tie after it.
        pos: u8,
    },
}

/// What a voice carries from one bar to the next.
#[derive(Debug, Clone)]
struct VoiceState {
    key: KeySig,
    unit: Ratio,
    meter: Option<(u32, u32)>,
    tie: Option<Tie>,
    /// A tuplet being read: its factor and how many notes are left in it.
    tuplet: Option<(Ratio, u32)>,
}

impl VoiceState {
    /// Applies a `K:`, `L:` or `M:` field; other fields change nothing here.
    fn field(&mut self, key: char, value: &str) {
        match key {
            'K' => {
                if let Some(sig) = parse_key(value) {
                    self.key = sig;
                }
            }
            'L' => {
                if let Some(unit) = parse_unit(value) {
                    self.unit = unit;
                }
            }
            'M' => self.meter = parse_meter(value),
            _ => {}
        }
    }
}

/// The state every voice starts with: the tune header's fields in order, then ABC 2.1's
/// default unit length when there is no `L:`.
fn header_state(tune: &Tune) -> VoiceState {
    let mut state = VoiceState {
        key: [0; 7],
        unit: Ratio::new(1, 8),
        meter: None,
        tie: None,
        tuplet: None,
    };
    let mut has_unit = false;
    for f in &tune.header {
        state.field(f.key, &f.value);
        has_unit |= f.key == 'L' && parse_unit(&f.value).is_some();
    }
    if !has_unit {
        state.unit = default_unit(state.meter);
    }
    state
}

/// Reads the body of `tune`: the gaps between bars for fields and voice switches, and the
/// bars of the wanted voice (every voice when `want` is `None`) for notes.
fn read_tune(source: &SourceText, tune: &Tune, want: Option<usize>) -> Vec<VoiceNotes> {
    let text = source.text().as_bytes();
    let start = state_start(tune);
    let initial = header_state(tune);
    let mut states = vec![initial; tune.voices.len()];
    let mut out: Vec<VoiceNotes> = tune
        .voices
        .iter()
        .enumerate()
        .map(|(v, voice)| match want {
            Some(w) if w != v => VoiceNotes::default(),
            _ => VoiceNotes {
                notes: Vec::with_capacity(voice.bars.len() * 8),
                bar_ends: Vec::with_capacity(voice.bars.len()),
                times: Vec::with_capacity(voice.bars.len()),
            },
        })
        .collect();
    // Bars of all voices in the order they stand in the file.
    let mut order: Vec<(u32, usize, usize)> = tune
        .voices
        .iter()
        .enumerate()
        .flat_map(|(v, voice)| {
            voice
                .bars
                .iter()
                .enumerate()
                .map(move |(i, bar)| (bar.range.start, v, i))
        })
        .collect();
    order.sort_unstable();

    let mut current = 0;
    let mut at = start;
    for (bar_start, v, i) in order {
        let bar = tune.voices[v].bars[i].range;
        read_gap(
            tune,
            text,
            at..bar_start as usize,
            &mut current,
            &mut states,
        );
        current = v;
        if want.is_none_or(|w| w == v) {
            let notes = &mut out[v];
            let bytes = text
                .get(bar.start as usize..bar.end as usize)
                .unwrap_or(&[]);
            let time = BarReader::new(bytes, bar.start, &mut states[v], &mut notes.notes).read();
            notes.bar_ends.push(notes.notes.len() as u32);
            notes.times.push(time);
        }
        at = at.max(bar.end as usize);
    }
    out
}

/// Where the body's fields start to count: the body, or the end of the tune without one.
fn state_start(tune: &Tune) -> usize {
    tune.body_start.clamp(tune.range.start, tune.range.end) as usize
}

/// Reads the text between two bars: field lines (`K:`, `L:`, `M:`, `V:`) and inline fields
/// change the state of the voice in force; notes cannot stand here, as the bar scanner puts
/// every note in a bar.
fn read_gap(
    tune: &Tune,
    text: &[u8],
    gap: Range<usize>,
    current: &mut usize,
    states: &mut [VoiceState],
) {
    let end = gap.end.min(text.len());
    let line_end = |from: usize| find_byte(text, from, end, b'\n').unwrap_or(end);
    let mut i = gap.start;
    while i < end {
        let c = text[i];
        if (i == 0 || text[i - 1] == b'\n') && c != b'%' {
            let to = line_end(i);
            let line = std::str::from_utf8(&text[i..to]).unwrap_or("");
            if let Some(key) = field_key(line) {
                field_in_gap(tune, key, field_value(line), current, states);
                i = to;
                continue;
            }
        }
        i = match c {
            b'%' => line_end(i),
            b'"' => {
                let to = line_end(i);
                find_byte(text, i + 1, to, b'"').map_or(to, |j| j + 1)
            }
            b'[' if is_inline_field(&text[i..end]) => {
                let to = line_end(i);
                let close = find_byte(text, i, to, b']').unwrap_or(to);
                let value = std::str::from_utf8(&text[i + 3..close.max(i + 3)]).unwrap_or("");
                field_in_gap(tune, char::from(text[i + 1]), value, current, states);
                close + 1
            }
            _ => i + 1,
        };
    }
}

fn field_in_gap(
    tune: &Tune,
    key: char,
    value: &str,
    current: &mut usize,
    states: &mut [VoiceState],
) {
    if key == 'V' {
        // The same lookup as the bar scanner's: the voice's id is the value's first word.
        let id = value.split_whitespace().next().unwrap_or("");
        if let Some(v) = tune.voices.iter().position(|v| v.id == id) {
            *current = v;
        }
    } else if let Some(state) = states.get_mut(*current) {
        state.field(key, value.trim());
    }
}

/// `[K:..]`: a bracket, a letter, a colon.
fn is_inline_field(b: &[u8]) -> bool {
    b.len() >= 3 && b[0] == b'[' && b[1].is_ascii_alphabetic() && b[2] == b':'
}

fn find_byte(b: &[u8], from: usize, to: usize, what: u8) -> Option<usize> {
    b.get(from..to)?
        .iter()
        .position(|&c| c == what)
        .map(|p| from + p)
}

mod bar;
mod features;
#[cfg(test)]
mod tests;

use bar::BarReader;
pub use features::*;
