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

use super::tune::{field_key, field_value, Tune};
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

// ---------------------------------------------------------------------------------------------
// Reading one bar.

/// Octaves are clamped to this range (MIDI octaves 0..=9 hold every pitch 12..=127).
const MAX_OCTAVE: i32 = 9;
/// Letter-and-octave positions, for accidentals that carry through a bar.
const POSITIONS: usize = 7 * (MAX_OCTAVE as usize + 1);
/// No accidental written yet at this position in this bar.
const UNSET: i8 = i8::MIN;

/// A note head: where it sits on the staff and its pitch.
#[derive(Debug, Clone, Copy)]
struct Head {
    pos: u8,
    pitch: i16,
    /// Written with its own accidental.
    explicit: bool,
}

/// Reads the notes of one bar into its voice's notes.
struct BarReader<'a> {
    b: &'a [u8],
    /// Offset of `b` in the file.
    base: u32,
    i: usize,
    state: &'a mut VoiceState,
    notes: &'a mut Vec<Note>,
    /// Index of the first note of this bar in `notes`.
    first: usize,
    accidentals: [i8; POSITIONS],
    last: Last,
    /// The factor a `>` or `<` left for the next note.
    broken: Option<Ratio>,
    /// Time of the bar before the last note or rest read, and that item's own time (a `>`
    /// after it still changes it).
    elapsed: Option<Ratio>,
    last_part: Option<Ratio>,
    measurable: bool,
}

impl<'a> BarReader<'a> {
    fn new(b: &'a [u8], base: u32, state: &'a mut VoiceState, notes: &'a mut Vec<Note>) -> Self {
        let first = notes.len();
        Self {
            b,
            base,
            i: 0,
            state,
            notes,
            first,
            accidentals: [UNSET; POSITIONS],
            last: Last::None,
            broken: None,
            elapsed: None,
            last_part: None,
            measurable: true,
        }
    }

    /// Counts a note's or rest's time in this bar.
    fn count(&mut self, part: Ratio) {
        self.elapsed = sum(self.elapsed, self.last_part.take());
        self.last_part = Some(part);
    }

    fn peek(&self, ahead: usize) -> Option<u8> {
        self.b.get(self.i + ahead).copied()
    }

    fn read(mut self) -> BarTime {
        while let Some(c) = self.peek(0) {
            match c {
                b'%' => self.skip_line(),
                b'"' => self.skip_quoted(b'"', true),
                b'!' | b'+' => self.skip_quoted(c, false),
                b'{' => self.skip_grace(),
                b'[' => self.bracket(),
                b'(' => self.paren(),
                // `&` starts an overlaid voice in the bar; the melody is what comes before.
                b'&' => break,
                b'-' => self.tie_mark(),
                b'>' | b'<' => self.broken_rhythm(c),
                b'^' | b'_' | b'=' => self.note(),
                b'A'..=b'G' | b'a'..=b'g' => self.note(),
                b'z' | b'x' => self.rest(),
                // `Z4`, `X`: bars of rest; their number is no length of ours.
                b'Z' | b'X' => {
                    self.measurable = false;
                    self.i += 1;
                }
                _ => self.i += 1,
            }
        }
        BarTime {
            duration: sum(self.elapsed, self.last_part),
            meter: self.state.meter,
            measurable: self.measurable,
        }
    }

    fn skip_line(&mut self) {
        self.i = find_byte(self.b, self.i, self.b.len(), b'\n').unwrap_or(self.b.len());
    }

    /// Skips `"..."` (unclosed: to the end of the line, as the bar scanner reads it) or
    /// `!..!` / `+..+` (unclosed: just the mark, the old line break `!`).
    fn skip_quoted(&mut self, close: u8, to_line_end: bool) {
        let line_end = find_byte(self.b, self.i + 1, self.b.len(), b'\n').unwrap_or(self.b.len());
        self.i = match find_byte(self.b, self.i + 1, line_end, close) {
            Some(j) => j + 1,
            None if to_line_end => line_end,
            None => self.i + 1,
        };
    }

    fn skip_grace(&mut self) {
        let line_end = find_byte(self.b, self.i, self.b.len(), b'\n').unwrap_or(self.b.len());
        self.i = find_byte(self.b, self.i, line_end, b'}').map_or(line_end, |j| j + 1);
    }

    /// `[` opens a bar line `[|`, an ending `[1`, an inline field `[K:D]` or a chord.
    fn bracket(&mut self) {
        match self.peek(1) {
            Some(b'|') => self.i += 1,
            Some(d) if d.is_ascii_digit() => self.i += 1,
            _ if is_inline_field(&self.b[self.i..]) => self.inline_field(),
            _ => self.chord(),
        }
    }

    fn inline_field(&mut self) {
        let line_end = find_byte(self.b, self.i, self.b.len(), b'\n').unwrap_or(self.b.len());
        let close = find_byte(self.b, self.i, line_end, b']').unwrap_or(line_end);
        let key = char::from(self.b[self.i + 1]);
        let value = std::str::from_utf8(&self.b[self.i + 3..close.max(self.i + 3)]).unwrap_or("");
        self.state.field(key, value.trim());
        self.i = (close + 1).min(self.b.len());
    }

    /// `(3abc`, `(3:2:4`: a tuplet; any other `(` opens a slur.
    fn paren(&mut self) {
        self.i += 1;
        if !self.peek(0).is_some_and(|c| c.is_ascii_digit()) {
            return;
        }
        let p = self.number().unwrap_or(3).clamp(1, 64);
        let mut q = None;
        let mut r = None;
        if self.peek(0) == Some(b':') {
            self.i += 1;
            q = self.number();
            if self.peek(0) == Some(b':') {
                self.i += 1;
                r = self.number();
            }
        }
        let q = q
            .unwrap_or_else(|| default_tuplet_q(p, self.state.meter))
            .clamp(1, 64);
        let r = r.unwrap_or(p).clamp(1, 64);
        self.state.tuplet = Some((Ratio::new(q.into(), p.into()), r));
    }

    /// Digits at the cursor, saturating (lengths beyond that are nonsense anyway).
    fn number(&mut self) -> Option<u32> {
        let mut n: Option<u32> = None;
        while let Some(d) = self.peek(0).filter(u8::is_ascii_digit) {
            n = Some(
                n.unwrap_or(0)
                    .saturating_mul(10)
                    .saturating_add(u32::from(d - b'0'))
                    .min(100_000),
            );
            self.i += 1;
        }
        n
    }

    /// `2`, `/`, `//`, `3/2`, `/4`: a length multiplier after a note, rest or chord.
    fn length(&mut self) -> Ratio {
        let num = self.number().unwrap_or(1).max(1);
        let mut den: u64 = 1;
        while self.peek(0) == Some(b'/') {
            self.i += 1;
            den = (den * u64::from(self.number().unwrap_or(2).max(1))).min(1 << 20);
        }
        Ratio::new(num.into(), den)
    }

    /// `-` after a note or chord: the next note of the same pitch continues it.
    fn tie_mark(&mut self) {
        self.i += 1;
        self.tie_last();
    }

    fn tie_last(&mut self) {
        if let Last::Note { index, pos, .. } = self.last {
            self.state.tie = Some(Tie { note: index, pos });
        }
    }

    /// `>`, `>>`, `>>>` (or `<`s): the note before is dotted, the note after shortened.
    fn broken_rhythm(&mut self, c: u8) {
        let mut n = 0u32;
        while self.peek(0) == Some(c) {
            n += 1;
            self.i += 1;
        }
        let n = n.min(3);
        let short = Ratio::new(1, 1 << n);
        let long = Ratio::new((2 << n) - 1, 1 << n);
        let (first, second) = if c == b'>' {
            (long, short)
        } else {
            (short, long)
        };
        if !matches!(self.last, Last::None) {
            self.last_part = self.last_part.map(|p| p * first);
        }
        match self.last {
            Last::None => return,
            Last::Rest => {}
            Last::Note {
                index,
                before,
                part,
                pos,
            } => {
                let part = part * first;
                if let Some(note) = self.notes.get_mut(index) {
                    note.duration = before.map_or(part, |b| b + part);
                }
                self.last = Last::Note {
                    index,
                    before,
                    part,
                    pos,
                };
            }
        }
        self.broken = Some(second);
    }

    /// An accidental (`^ ^^ _ __ =`, with a microtone fraction skipped), in semitones.
    fn accidental(&mut self) -> Option<i8> {
        let acc = match (self.peek(0), self.peek(1)) {
            (Some(b'^'), Some(b'^')) => 2,
            (Some(b'_'), Some(b'_')) => -2,
            (Some(b'^'), _) => 1,
            (Some(b'_'), _) => -1,
            (Some(b'='), _) => 0,
            _ => return None,
        };
        self.i += if acc == 2 || acc == -2 { 2 } else { 1 };
        // `^/c`, `_3/2c`: quarter tones, read as the nearest written accidental.
        while self
            .peek(0)
            .is_some_and(|c| c.is_ascii_digit() || c == b'/')
        {
            self.i += 1;
        }
        Some(acc)
    }

    /// A note head: accidental, letter, octave marks. `None` (having skipped what was read)
    /// when no letter follows an accidental.
    fn head(&mut self) -> Option<Head> {
        let explicit = self.accidental();
        let c = self.peek(0)?;
        let letter = letter_index(c)?;
        self.i += 1;
        let mut octave: i32 = if c.is_ascii_uppercase() { 4 } else { 5 };
        while let Some(mark) = self.peek(0) {
            match mark {
                b'\'' => octave += 1,
                b',' => octave -= 1,
                _ => break,
            }
            self.i += 1;
        }
        let octave = octave.clamp(0, MAX_OCTAVE);
        let pos = octave as usize * 7 + letter;
        let acc = match explicit {
            Some(a) => {
                self.accidentals[pos] = a;
                a
            }
            None if self.accidentals[pos] != UNSET => self.accidentals[pos],
            None => self.state.key[letter],
        };
        let pitch = 12 * (octave as i16 + 1) + SEMITONES[letter] + i16::from(acc);
        Some(Head {
            pos: pos as u8,
            pitch: pitch.clamp(0, 127),
            explicit: explicit.is_some(),
        })
    }

    fn note(&mut self) {
        let start = self.i;
        let Some(head) = self.head() else { return };
        let length = self.length();
        self.emit(start, head, length);
    }

    /// `[CEG]2`, `[C2E2]`: the top note, as long as the chord's first note times the length
    /// after the bracket. An unclosed chord ends at a bar line or the end of the line.
    fn chord(&mut self) {
        let start = self.i;
        self.i += 1;
        let mut top: Option<Head> = None;
        let mut first_length: Option<Ratio> = None;
        let mut tied = false;
        while let Some(c) = self.peek(0) {
            match c {
                b']' => {
                    self.i += 1;
                    break;
                }
                b'|' | b'\n' => break,
                b'"' => self.skip_quoted(b'"', true),
                b'!' | b'+' => self.skip_quoted(c, false),
                b'-' => {
                    tied = true;
                    self.i += 1;
                }
                b'^' | b'_' | b'=' | b'A'..=b'G' | b'a'..=b'g' => {
                    if let Some(head) = self.head() {
                        let length = self.length();
                        first_length.get_or_insert(length);
                        if top.is_none_or(|t| head.pitch > t.pitch) {
                            top = Some(head);
                        }
                    }
                }
                _ => self.i += 1,
            }
        }
        let Some(top) = top else { return };
        let outer = self.length();
        self.emit(start, top, first_length.unwrap_or(Ratio::ONE) * outer);
        if tied {
            self.tie_last();
        }
    }

    fn rest(&mut self) {
        self.i += 1;
        let length = self.length();
        let part = self.timed(self.state.unit * length);
        self.count(part);
        self.state.tie = None;
        self.last = Last::Rest;
    }

    /// A duration with the tuplet and broken rhythm in force applied (and used up).
    fn timed(&mut self, mut duration: Ratio) -> Ratio {
        if let Some((factor, left)) = self.state.tuplet {
            duration = duration * factor;
            self.state.tuplet = (left > 1).then_some((factor, left - 1));
        }
        if let Some(factor) = self.broken.take() {
            duration = duration * factor;
        }
        duration
    }

    /// Adds the note read from `start` to the cursor, or lengthens the note a tie holds.
    fn emit(&mut self, start: usize, head: Head, length: Ratio) {
        let duration = self.timed(self.state.unit * length);
        self.count(duration);
        let range = TextRange::new(self.base + start as u32, self.base + self.i as u32);
        if let Some(tie) = self.state.tie.take() {
            if let Some(&tied) = self.notes.get(tie.note) {
                // Without its own accidental, a tied note keeps the pitch it is tied to, even
                // past a bar line where the accidental no longer holds.
                let same = if head.explicit {
                    head.pitch == tied.pitch
                } else {
                    head.pos == tie.pos || head.pitch == tied.pitch
                };
                if same {
                    let note = &mut self.notes[tie.note];
                    note.duration = tied.duration + duration;
                    if tie.note >= self.first {
                        note.range.end = range.end;
                    }
                    self.last = Last::Note {
                        index: tie.note,
                        before: Some(tied.duration),
                        part: duration,
                        pos: tie.pos,
                    };
                    return;
                }
            }
        }
        self.notes.push(Note {
            pitch: head.pitch,
            duration,
            range,
        });
        self.last = Last::Note {
            index: self.notes.len() - 1,
            before: None,
            part: duration,
            pos: head.pos,
        };
    }
}

fn sum(a: Option<Ratio>, b: Option<Ratio>) -> Option<Ratio> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    }
}

/// ABC 2.1's "in the time of" for `(p` without `:q`.
fn default_tuplet_q(p: u32, meter: Option<(u32, u32)>) -> u32 {
    match p {
        2 | 4 | 8 => 3,
        5 | 7 | 9 if is_compound(meter) => 3,
        _ => 2,
    }
}

// ---------------------------------------------------------------------------------------------
// Features.

/// The step from one note to the next: what a melody keeps when it is transposed or played
/// at another tempo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Step {
    /// Semitones up (negative: down), clamped to ±127.
    pub interval: i8,
    /// `log2(next duration / this duration)` rounded to halves, times two, clamped to ±24:
    /// 0 same length, 2 twice as long, 1 dotted (3/2), -2 half as long.
    pub duration: i8,
}

/// The step from `a` to `b`.
pub fn step(a: &Note, b: &Note) -> Step {
    let interval = b.pitch.saturating_sub(a.pitch).clamp(-127, 127) as i8;
    let ratio = (f64::from(b.duration.num) * f64::from(a.duration.den))
        / (f64::from(b.duration.den) * f64::from(a.duration.num));
    let duration = (2.0 * ratio.log2()).round().clamp(-24.0, 24.0) as i8;
    Step { interval, duration }
}

/// The steps between consecutive notes (rests are never notes, so they are skipped).
pub fn steps(notes: &[Note]) -> impl Iterator<Item = Step> + '_ {
    notes.windows(2).map(|w| step(&w[0], &w[1]))
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Hashes of the n-grams of `n` consecutive steps (so `n + 1` notes each), in order: the same
/// melody in another key or at another tempo gives the same hashes. FNV-1a over the steps'
/// bytes, so the values are the same on every run and platform and can be stored.
pub fn interval_ngrams(notes: &[Note], n: usize) -> Vec<u64> {
    let mut out = Vec::new();
    interval_ngrams_into(notes, n, &mut out);
    out
}

/// [`interval_ngrams`] appended to `out`, for callers that reuse one buffer.
pub fn interval_ngrams_into(notes: &[Note], n: usize, out: &mut Vec<u64>) {
    if n == 0 || notes.len() <= n {
        return;
    }
    out.reserve(notes.len() - n);
    for window in notes.windows(n + 1) {
        let mut h = FNV_OFFSET;
        for pair in window.windows(2) {
            let s = step(&pair[0], &pair[1]);
            for byte in [s.interval as u8, s.duration as u8] {
                h ^= u64::from(byte);
                h = h.wrapping_mul(FNV_PRIME);
            }
        }
        out.push(h);
    }
}

/// How far `b` lies above `a` in semitones: the most common pitch difference of the notes
/// paired by position (ties go to the smaller shift). `None` when there are no pairs.
pub fn transposition(a: &[Note], b: &[Note]) -> Option<i16> {
    transposition_of(
        a.iter()
            .zip(b)
            .map(|(x, y)| y.pitch.saturating_sub(x.pitch)),
    )
}

/// The most common of `differences` (pitch of the second minus the first, for notes an
/// alignment paired), ties going to the smaller shift.
pub fn transposition_of(differences: impl IntoIterator<Item = i16>) -> Option<i16> {
    // Pitches are 0..=127, so differences are -127..=127: a fixed table, no allocation.
    let mut counts = [0u32; 255];
    let mut any = false;
    for d in differences {
        counts[(d.clamp(-127, 127) + 127) as usize] += 1;
        any = true;
    }
    if !any {
        return None;
    }
    (-127i16..=127).max_by_key(|&d| (counts[(d + 127) as usize], std::cmp::Reverse(d.abs()), d))
}

/// A transposition in words, octaves ignored: "same key", "up a perfect 4th", "down a minor
/// 3rd", "a tritone away". Shifts are read as the nearer way round (7 up is "down a 4th").
pub fn describe_transposition(semitones: i16) -> &'static str {
    const UP: [&str; 7] = [
        "same key",
        "up a minor 2nd",
        "up a major 2nd",
        "up a minor 3rd",
        "up a major 3rd",
        "up a perfect 4th",
        "a tritone away",
    ];
    const DOWN: [&str; 6] = [
        "same key",
        "down a minor 2nd",
        "down a major 2nd",
        "down a minor 3rd",
        "down a major 3rd",
        "down a perfect 4th",
    ];
    let r = semitones.rem_euclid(12) as usize;
    if r <= 6 {
        UP[r]
    } else {
        DOWN[12 - r]
    }
}

/// One step of an [`Alignment`]: indices into the two sequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "op")]
pub enum AlignOp {
    /// The same note (after the transposition) with the same duration.
    Same { a: u32, b: u32 },
    /// Notes paired in place but with another pitch or duration.
    Changed { a: u32, b: u32 },
    /// A note of `a` that `b` lacks.
    Dropped { a: u32 },
    /// A note of `b` that `a` lacks.
    Inserted { b: u32 },
}

/// How one melody maps onto another: the transposition and the note-by-note edit script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alignment {
    /// Semitones from `a` to `b` (see [`describe_transposition`]).
    pub transposition: i16,
    pub ops: Vec<AlignOp>,
}

impl Alignment {
    fn count(&self, f: impl Fn(&AlignOp) -> bool) -> usize {
        self.ops.iter().filter(|op| f(op)).count()
    }

    pub fn same(&self) -> usize {
        self.count(|op| matches!(op, AlignOp::Same { .. }))
    }

    pub fn changed(&self) -> usize {
        self.count(|op| matches!(op, AlignOp::Changed { .. }))
    }

    pub fn dropped(&self) -> usize {
        self.count(|op| matches!(op, AlignOp::Dropped { .. }))
    }

    pub fn inserted(&self) -> usize {
        self.count(|op| matches!(op, AlignOp::Inserted { .. }))
    }

    /// Changed pairs that keep the rhythm and move the note by a step (at most a whole tone,
    /// after the transposition): the passing and neighbour notes a player varies a tune with,
    /// as against another note altogether. `a` and `b` are the melodies that were aligned.
    pub fn stepped(&self, a: &[Note], b: &[Note]) -> usize {
        self.count(|op| match *op {
            AlignOp::Changed { a: i, b: j } => match (a.get(i as usize), b.get(j as usize)) {
                (Some(x), Some(y)) => {
                    let moved = y.pitch - x.pitch - self.transposition;
                    x.duration == y.duration && moved != 0 && moved.abs() <= 2
                }
                _ => false,
            },
            _ => false,
        })
    }
}

/// Longest sequences [`align`] compares with a full edit-distance table; longer ones are
/// paired by position, which keeps memory bounded on whole tunes.
const MAX_ALIGN_CELLS: usize = 1 << 20;

/// Aligns melody `b` to melody `a` for an explanation ("up a 4th, 2 of 24 notes differ"):
/// the transposition is first guessed from pitch differences of notes near the same relative
/// position (so an inserted note does not throw it off), then an edit distance with that
/// transposition pairs the notes, and the transposition is re-read from the pairs.
pub fn align(a: &[Note], b: &[Note]) -> Alignment {
    let guess = banded_transposition(a, b).unwrap_or(0);
    let ops = if (a.len() + 1) * (b.len() + 1) > MAX_ALIGN_CELLS {
        positional_ops(a, b, guess)
    } else {
        edit_ops(a, b, guess)
    };
    let paired = ops.iter().filter_map(|op| match *op {
        AlignOp::Same { a: i, b: j } | AlignOp::Changed { a: i, b: j } => {
            Some(b[j as usize].pitch.saturating_sub(a[i as usize].pitch))
        }
        _ => None,
    });
    Alignment {
        transposition: transposition_of(paired).unwrap_or(guess),
        ops,
    }
}

/// The most common pitch difference among pairs at most two notes from the same relative
/// position in both sequences.
fn banded_transposition(a: &[Note], b: &[Note]) -> Option<i16> {
    let (n, m) = (a.len(), b.len());
    let pairs = (0..n).flat_map(move |i| {
        let centre = if n > 1 {
            i * m.saturating_sub(1) / (n - 1)
        } else {
            0
        };
        (centre.saturating_sub(2)..(centre + 3).min(m)).map(move |j| (i, j))
    });
    transposition_of(pairs.map(|(i, j)| b[j].pitch.saturating_sub(a[i].pitch)))
}

fn pair_op(a: &[Note], b: &[Note], i: usize, j: usize, t: i16) -> AlignOp {
    let (x, y) = (&a[i], &b[j]);
    let (i, j) = (i as u32, j as u32);
    if x.pitch.saturating_add(t) == y.pitch && x.duration == y.duration {
        AlignOp::Same { a: i, b: j }
    } else {
        AlignOp::Changed { a: i, b: j }
    }
}

fn positional_ops(a: &[Note], b: &[Note], t: i16) -> Vec<AlignOp> {
    let common = a.len().min(b.len());
    let mut ops: Vec<AlignOp> = (0..common).map(|i| pair_op(a, b, i, i, t)).collect();
    ops.extend((common..a.len()).map(|i| AlignOp::Dropped { a: i as u32 }));
    ops.extend((common..b.len()).map(|j| AlignOp::Inserted { b: j as u32 }));
    ops
}

/// Levenshtein alignment (a change, a drop and an insertion cost 1 each) with traceback.
fn edit_ops(a: &[Note], b: &[Note], t: i16) -> Vec<AlignOp> {
    let (n, m) = (a.len(), b.len());
    let w = m + 1;
    let mut cost = vec![0u32; (n + 1) * w];
    for i in 0..=n {
        for j in 0..=m {
            cost[i * w + j] = match (i, j) {
                (0, _) => j as u32,
                (_, 0) => i as u32,
                _ => {
                    let sub = u32::from(matches!(
                        pair_op(a, b, i - 1, j - 1, t),
                        AlignOp::Changed { .. }
                    ));
                    (cost[(i - 1) * w + j - 1] + sub)
                        .min(cost[(i - 1) * w + j] + 1)
                        .min(cost[i * w + j - 1] + 1)
                }
            };
        }
    }
    let (mut i, mut j) = (n, m);
    let mut ops = Vec::with_capacity(n.max(m));
    while i > 0 || j > 0 {
        let here = cost[i * w + j];
        if i > 0 && j > 0 {
            let op = pair_op(a, b, i - 1, j - 1, t);
            let sub = u32::from(matches!(op, AlignOp::Changed { .. }));
            if here == cost[(i - 1) * w + j - 1] + sub {
                ops.push(op);
                (i, j) = (i - 1, j - 1);
                continue;
            }
        }
        if i > 0 && (j == 0 || here == cost[(i - 1) * w + j] + 1) {
            ops.push(AlignOp::Dropped { a: (i - 1) as u32 });
            i -= 1;
        } else {
            ops.push(AlignOp::Inserted { b: (j - 1) as u32 });
            j -= 1;
        }
    }
    ops.reverse();
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pitch of each letter C..B under a key, as accidentals (sharps positive).
    fn key(value: &str) -> Option<KeySig> {
        parse_key(value)
    }

    #[test]
    fn major_and_minor_keys() {
        assert_eq!(key("C"), Some([0; 7]));
        assert_eq!(key("G"), Some([0, 0, 0, 1, 0, 0, 0]));
        assert_eq!(key("D"), Some([1, 0, 0, 1, 0, 0, 0]));
        assert_eq!(key("Bb"), Some([0, 0, -1, 0, 0, 0, -1]));
        assert_eq!(key("F#m"), Some([1, 0, 0, 1, 1, 0, 0]));
        assert_eq!(key("Am"), Some([0; 7]));
        assert_eq!(key("A minor"), Some([0; 7]));
        assert_eq!(key("Emin"), key("G"));
        assert_eq!(key("C#"), Some([1; 7]));
        assert_eq!(key("Cb"), Some([-1; 7]));
    }

    #[test]
    fn modes() {
        assert_eq!(key("Ador"), key("G"));
        assert_eq!(key("D Dorian"), key("C"));
        assert_eq!(key("Ephr"), key("C"));
        assert_eq!(key("Flyd"), key("C"));
        assert_eq!(key("Dmix"), key("G"));
        assert_eq!(key("AMix"), key("D"));
        assert_eq!(key("Gion"), key("G"));
        assert_eq!(key("Baeo"), key("D"));
        assert_eq!(key("Bloc"), key("C"));
    }

    #[test]
    fn pipes_none_explicit_and_clefs() {
        assert_eq!(key("HP"), Some([0; 7]));
        assert_eq!(key("Hp"), Some([1, 0, 0, 1, 0, 0, 0]));
        assert_eq!(key("none"), Some([0; 7]));
        assert_eq!(key("D =c"), Some([0, 0, 0, 1, 0, 0, 0]));
        assert_eq!(key("D exp _b ^f"), Some([0, 0, 0, 1, 0, 0, -1]));
        assert_eq!(key("G clef=bass"), key("G"));
        assert_eq!(key("Am clef=treble octave=-1"), Some([0; 7]));
        assert_eq!(key("clef=bass"), None);
        assert_eq!(key(""), None);
    }

    #[test]
    fn meters_and_unit_lengths() {
        assert_eq!(parse_meter("6/8"), Some((6, 8)));
        assert_eq!(parse_meter("C"), Some((4, 4)));
        assert_eq!(parse_meter("C|"), Some((2, 2)));
        assert_eq!(parse_meter("(2+3)/8"), Some((5, 8)));
        assert_eq!(parse_meter("none"), None);
        assert_eq!(default_unit(Some((2, 4))), Ratio::new(1, 16));
        assert_eq!(default_unit(Some((3, 4))), Ratio::new(1, 8));
        assert_eq!(default_unit(None), Ratio::new(1, 8));
        assert_eq!(parse_unit("1/16"), Some(Ratio::new(1, 16)));
        assert_eq!(parse_unit("1"), Some(Ratio::ONE));
        assert_eq!(parse_unit("1/0"), None);
        assert!(is_compound(Some((9, 8))) && !is_compound(Some((3, 4))));
    }

    #[test]
    fn ratios_stay_reduced_and_positive() {
        assert_eq!(Ratio::new(2, 16), Ratio::new(1, 8));
        assert_eq!(Ratio::new(1, 8) + Ratio::new(1, 16), Ratio::new(3, 16));
        assert_eq!(Ratio::new(3, 2) * Ratio::new(2, 3), Ratio::ONE);
        assert_eq!(Ratio::new(0, 0), Ratio::ONE);
        let huge = Ratio::new(u64::MAX, 3);
        assert!(huge.num() > 0 && huge.den() > 0);
    }

    #[test]
    fn transpositions_in_words() {
        assert_eq!(describe_transposition(0), "same key");
        assert_eq!(describe_transposition(12), "same key");
        assert_eq!(describe_transposition(5), "up a perfect 4th");
        assert_eq!(describe_transposition(-7), "up a perfect 4th");
        assert_eq!(describe_transposition(7), "down a perfect 4th");
        assert_eq!(describe_transposition(-3), "down a minor 3rd");
        assert_eq!(describe_transposition(6), "a tritone away");
        assert_eq!(transposition_of([5, 5, 7, -127, 5]), Some(5));
        assert_eq!(transposition_of([2, -1]), Some(-1));
        assert_eq!(transposition_of(std::iter::empty()), None);
    }

    #[test]
    fn long_sequences_align_by_position() {
        let note = |pitch| Note {
            pitch,
            duration: Ratio::new(1, 8),
            range: TextRange::default(),
        };
        let a: Vec<Note> = (0..1100).map(|i| note(60 + (i % 7) as i16)).collect();
        let b: Vec<Note> = a.iter().take(1000).map(|n| note(n.pitch + 2)).collect();
        let al = align(&a, &b);
        assert_eq!(al.transposition, 2);
        assert_eq!((al.same(), al.dropped()), (1000, 100));
    }

    #[test]
    fn stepped_notes_keep_the_rhythm_and_move_at_most_a_tone() {
        let n = |pitch, den| Note {
            pitch,
            duration: Ratio::new(1, den),
            range: TextRange::default(),
        };
        // Up a 4th, with one note moved a tone, one a third, one lengthened.
        let a = [
            n(60, 8),
            n(62, 8),
            n(64, 8),
            n(65, 8),
            n(67, 8),
            n(69, 8),
            n(71, 8),
        ];
        let b = [
            n(65, 8),
            n(69, 8),
            n(72, 8),
            n(70, 4),
            n(72, 8),
            n(74, 8),
            n(76, 8),
        ];
        let al = align(&a, &b);
        assert_eq!(al.transposition, 5);
        assert_eq!((al.same(), al.changed()), (4, 3));
        assert_eq!(al.stepped(&a, &b), 1, "{al:?}");
        // Melodies other than the aligned ones count nothing out of range.
        assert_eq!(al.stepped(&[], &[]), 0);
    }

    #[test]
    fn steps_are_intervals_and_log_ratios() {
        let n = |pitch, num, den| Note {
            pitch,
            duration: Ratio::new(num, den),
            range: TextRange::default(),
        };
        assert_eq!(
            step(&n(60, 1, 8), &n(67, 3, 16)),
            Step {
                interval: 7,
                duration: 1
            }
        );
        assert_eq!(step(&n(67, 1, 4), &n(60, 1, 8)).duration, -2);
        let notes = [n(60, 1, 8), n(62, 1, 8), n(64, 1, 4)];
        assert_eq!(interval_ngrams(&notes, 2).len(), 1);
        assert!(interval_ngrams(&notes, 3).is_empty());
        assert!(interval_ngrams(&notes, 0).is_empty());
    }
}
