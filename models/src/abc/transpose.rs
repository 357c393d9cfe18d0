//! Two rewrites of ABC text that change notes and nothing else: [`transpose`] (exact
//! chromatic transposition, spelled the way musicians re-spell: diatonically, with the key
//! signature moved around the circle of fifths) and [`vary`] (a seeded melodic variation that
//! moves some notes a step). Both serve as augmentations and as probes of how a model treats
//! the same tune in another key or with a few notes changed, so the output must read exactly
//! as the input everywhere except the notes: lengths, bar lines, chord symbols, decorations,
//! comments and other fields are copied byte for byte.
//!
//! What counts as a note follows [`super::notes`]: outside quoted strings, decorations
//! (`!..!`, `+..+`), comments and inline fields, an optional accidental, a letter `A-G a-g`
//! and octave marks. Grace notes and chord notes are notes too. Field lines (`T:`, `w:`, ...)
//! are copied, except `K:` (and inline `[K:..]`), whose tonic [`transpose`] moves.
//!
//! Neither function fails or panics: text that cannot be read as a note is copied as it is.

use super::fields::field_key;
use super::notes::{parse_key, KeySig};

/// A transposition interval, spelled: `letters` diatonic steps (`C` → `D` is 1) and `fifths`
/// steps on the circle of fifths (`C` → `D` is 2). Both are needed, since the same semitones
/// can be spelled two ways (a major 2nd vs a diminished 3rd), and a musician re-spells a tune
/// by moving letters and key together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Interval {
    pub letters: i8,
    pub fifths: i8,
}

impl Interval {
    pub const MAJOR_SECOND_UP: Interval = Interval {
        letters: 1,
        fifths: 2,
    };
    pub const MAJOR_SECOND_DOWN: Interval = Interval {
        letters: -1,
        fifths: -2,
    };
    pub const FOURTH_UP: Interval = Interval {
        letters: 3,
        fifths: -1,
    };
    pub const FIFTH_UP: Interval = Interval {
        letters: 4,
        fifths: 1,
    };
    pub const FOURTH_DOWN: Interval = Interval {
        letters: -3,
        fifths: 1,
    };
    pub const FIFTH_DOWN: Interval = Interval {
        letters: -4,
        fifths: -1,
    };

    /// The keys a tune is most often moved to: a 2nd, 4th or 5th up or down. The passage
    /// evaluation transposes to them, and training's augmented views do too.
    pub const NEAR_KEYS: [Interval; 6] = [
        Interval::MAJOR_SECOND_UP,
        Interval::MAJOR_SECOND_DOWN,
        Interval::FOURTH_UP,
        Interval::FOURTH_DOWN,
        Interval::FIFTH_UP,
        Interval::FIFTH_DOWN,
    ];

    /// The interval in semitones. A fifth is 4 letters and 7 semitones; what `letters` adds
    /// beyond `4 × fifths` are whole octaves (exact when `letters ≡ 4 × fifths (mod 7)`, as
    /// for every real interval).
    pub fn semitones(self) -> i32 {
        let (l, f) = (i32::from(self.letters), i32::from(self.fifths));
        let octaves = (4 * f - l).div_euclid(7);
        7 * f - 12 * octaves
    }
}

/// `abc` transposed by `interval`: each note's letter moves `interval.letters` steps (octave
/// marks follow), each `K:` tonic moves `interval.fifths` on the circle of fifths with its
/// mode and the rest of the field kept, and an explicit accidental keeps its distance from
/// the key signature. Keys that name no tonic (`K:none`, `K:HP`) are left as they are and
/// read as no signature, so their notes come out right only where no accidental is needed.
/// An accidental that would need more than a double sharp or flat (`^^e` up a major 2nd) is
/// written as a double one, a semitone off: ABC has no triple accidentals.
pub fn transpose(abc: &str, interval: Interval) -> String {
    let mut rewrite = |head: Head, keys: &Keys, out: &mut String, _: &str| {
        let step = head.step.saturating_add(i32::from(interval.letters));
        let acc = head.acc.map(|a| {
            let (old, new) = (head.letter(), letter_of(step));
            // Keep the accidental's offset from the signature, so that `_B` in G (a flat
            // against a natural) becomes `=c` in A (a natural against a sharp).
            (keys.new[new] + a - keys.old[old]).clamp(-2, 2)
        });
        write_note(out, acc, head.micro, step);
    };
    rewrite_text(abc, Some(interval), &mut rewrite)
}

/// `abc` with about `fraction` of its notes moved one diatonic step up or down (each note
/// independently, with a xorshift generator seeded by `seed`, so the same seed gives the same
/// text). A moved note loses its explicit accidental and reads in the key signature; nothing
/// else changes.
pub fn vary(abc: &str, fraction: f64, seed: u64) -> String {
    let mut rng = XorShift::new(seed);
    let fraction = if fraction.is_nan() {
        0.0
    } else {
        fraction.clamp(0.0, 1.0)
    };
    let mut rewrite = |head: Head, _: &Keys, out: &mut String, text: &str| {
        // Both draws happen for every note, so with one seed the notes moved at a smaller
        // fraction are among those moved at a larger one.
        let pick = rng.unit() < fraction;
        let up = rng.next() & 1 == 1;
        if pick {
            let step = head.step.saturating_add(if up { 1 } else { -1 });
            write_note(out, None, "", step);
        } else {
            out.push_str(text);
        }
    };
    rewrite_text(abc, None, &mut rewrite)
}

// ---------------------------------------------------------------------------------------------
// Notes.

/// A note head as written.
#[derive(Debug, Clone, Copy)]
struct Head<'a> {
    /// Explicit accidental in semitones.
    acc: Option<i8>,
    /// A microtone fraction after the accidental (`^/c`), kept as written.
    micro: &'a str,
    /// Diatonic step: `7 × octave + letter` (C = 0 .. B = 6), `C` (middle C) in octave 4.
    step: i32,
}

impl Head<'_> {
    fn letter(&self) -> usize {
        letter_of(self.step)
    }
}

fn letter_of(step: i32) -> usize {
    step.rem_euclid(7) as usize
}

const LETTERS: &[u8; 7] = b"CDEFGAB";

/// Writes a note head in the canonical spelling: lowercase from `c` (octave 5) up with `'`,
/// uppercase below with `,`.
fn write_note(out: &mut String, acc: Option<i8>, micro: &str, step: i32) {
    if let Some(a) = acc {
        out.push_str(match a {
            i8::MIN..=-2 => "__",
            -1 => "_",
            0 => "=",
            1 => "^",
            _ => "^^",
        });
        out.push_str(micro);
    }
    let (octave, letter) = (step.div_euclid(7), letter_of(step));
    let name = char::from(LETTERS[letter]);
    if octave >= 5 {
        out.push(name.to_ascii_lowercase());
        out.extend(std::iter::repeat_n('\'', (octave - 5) as usize));
    } else {
        out.push(name);
        out.extend(std::iter::repeat_n(',', (4 - octave) as usize));
    }
}

/// Reads a note head at the start of `b`: accidental (with microtone fraction), letter,
/// octave marks. Returns it with its length, or `None` when no letter follows.
fn read_head(s: &str) -> Option<(Head<'_>, usize)> {
    let b = s.as_bytes();
    let (acc, mut i) = match (b.first(), b.get(1)) {
        (Some(b'^'), Some(b'^')) => (Some(2), 2),
        (Some(b'_'), Some(b'_')) => (Some(-2), 2),
        (Some(b'^'), _) => (Some(1), 1),
        (Some(b'_'), _) => (Some(-1), 1),
        (Some(b'='), _) => (Some(0), 1),
        _ => (None, 0),
    };
    let micro_start = i;
    while b.get(i).is_some_and(|c| c.is_ascii_digit() || *c == b'/') {
        i += 1;
    }
    let micro = &s[micro_start..i];
    let c = *b.get(i)?;
    let letter = LETTERS.iter().position(|&l| l == c.to_ascii_uppercase())? as i32;
    i += 1;
    let mut octave: i32 = if c.is_ascii_uppercase() { 4 } else { 5 };
    while let Some(&mark) = b.get(i) {
        match mark {
            b'\'' => octave = octave.saturating_add(1),
            b',' => octave = octave.saturating_sub(1),
            _ => break,
        }
        i += 1;
    }
    // Octaves far outside music are clamped so `7 × octave` cannot overflow.
    let octave = octave.clamp(-1_000_000, 1_000_000);
    Some((
        Head {
            acc,
            micro,
            step: 7 * octave + letter,
        },
        i,
    ))
}

// ---------------------------------------------------------------------------------------------
// Keys.

/// The key signatures in force for a voice: of the input, and of the output.
#[derive(Debug, Clone, Copy, Default)]
struct Keys {
    old: KeySig,
    new: KeySig,
}

/// Positions of the major keys on each tonic letter on the circle of fifths, in the order of
/// `LETTERS` (C D E F G A B).
const TONIC_FIFTHS: [i32; 7] = [0, 2, 4, -1, 1, 3, 5];

/// A `K:` value (without comment) rewritten for `interval`, or `None` when it names no tonic
/// and stays as it is (`none`, `HP`, `clef=bass`, accidentals alone).
fn transpose_key(value: &str, interval: Interval) -> Option<String> {
    let lead = value.len() - value.trim_start().len();
    let v = &value[lead..];
    let b = v.as_bytes();
    let letter = LETTERS.iter().position(|&l| Some(&l) == b.first())?;
    let (shift, used) = match b.get(1) {
        Some(b'#') => (7, 2),
        Some(b'b') => (-7, 2),
        _ => (0, 1),
    };
    let fifths = TONIC_FIFTHS[letter] + shift + i32::from(interval.fifths);
    // Back from the circle: F C G D A E B, then the same with sharps, and so on.
    let index = (fifths + 1).rem_euclid(7) as usize;
    let sharps = (fifths + 1).div_euclid(7);
    let accidental = match sharps {
        0 => "",
        1 => "#",
        -1 => "b",
        // Tonics like F## have no name that `K:` reads: leave the key alone.
        _ => return None,
    };
    let mut out = String::with_capacity(value.len() + 1);
    out.push_str(&value[..lead]);
    out.push(char::from(b"FCGDAEB"[index]));
    out.push_str(accidental);
    let rest = &v[used..];
    // Explicit accidentals after the mode (`K:D =c`) keep their distance from the signature
    // of the tonic and mode alone, like notes do.
    let base_old = parse_key(&strip_accidentals(v)).unwrap_or_default();
    let new_head = format!("{}{}{}", char::from(b"FCGDAEB"[index]), accidental, rest);
    let base_new = parse_key(&strip_accidentals(&new_head)).unwrap_or_default();
    let mut i = 0;
    let rb = rest.as_bytes();
    while i < rb.len() {
        if rb[i].is_ascii_whitespace() {
            out.push(char::from(rb[i]));
            i += 1;
            continue;
        }
        let end = rest[i..]
            .find(|c: char| c.is_ascii_whitespace())
            .map_or(rest.len(), |e| i + e);
        let token = &rest[i..end];
        match read_head(token) {
            Some((head, len))
                if head.acc.is_some() && head.micro.is_empty() && len == token.len() =>
            {
                let step = head.step.saturating_add(i32::from(interval.letters));
                let acc = head.acc.map(|a| {
                    (base_new[letter_of(step)] + a - base_old[head.letter()]).clamp(-2, 2)
                });
                let mut note = String::new();
                write_note(&mut note, acc, "", step);
                // The signature applies to every octave; keep the letter's case as written.
                let keep_lower = token.bytes().last().is_some_and(|c| c.is_ascii_lowercase());
                let note: String = note.chars().filter(|c| *c != '\'' && *c != ',').collect();
                if keep_lower {
                    out.push_str(&note.to_ascii_lowercase());
                } else {
                    out.push_str(&note.to_ascii_uppercase());
                }
            }
            _ => out.push_str(token),
        }
        i = end;
    }
    Some(out)
}

/// A `K:` value without its explicit accidental tokens: the tonic and mode alone.
fn strip_accidentals(value: &str) -> String {
    value
        .split_whitespace()
        .filter(|t| !matches!(read_head(t), Some((h, len)) if h.acc.is_some() && len == t.len()))
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------------------------
// The text.

/// What the rewrite keeps while reading: the keys of each voice and where it is.
struct State {
    interval: Option<Interval>,
    keys: Keys,
    /// Keys of the voices seen, by id; the current voice's entry is stale while it is read.
    voices: Vec<(String, Keys)>,
    voice: Option<String>,
    /// The keys after the tune header, which a voice starts with.
    header: Keys,
    in_body: bool,
}

impl State {
    fn new(interval: Option<Interval>) -> Self {
        Self {
            interval,
            keys: Keys::default(),
            voices: Vec::new(),
            voice: None,
            header: Keys::default(),
            in_body: false,
        }
    }

    /// A `K:` value (comment excluded): updates the keys, returns the value to write.
    fn key(&mut self, value: &str) -> Option<String> {
        let new_value = self.interval.and_then(|iv| transpose_key(value, iv));
        if let Some(old) = parse_key(value) {
            self.keys.old = old;
            // A field left as it is (`K:none`) reads the same on both sides.
            self.keys.new = parse_key(new_value.as_deref().unwrap_or(value)).unwrap_or(old);
        }
        if !self.in_body {
            // The header ends at its `K:`; every voice starts from what it set.
            self.in_body = true;
            self.header = self.keys;
        }
        new_value
    }

    /// `V:id ...` in the body: keys move with the voice, as `notes` reads them.
    fn voice(&mut self, value: &str) {
        if !self.in_body {
            return;
        }
        let id = value.split_whitespace().next().unwrap_or("").to_owned();
        if let Some(cur) = self.voice.take() {
            match self.voices.iter_mut().find(|(v, _)| *v == cur) {
                Some(entry) => entry.1 = self.keys,
                None => self.voices.push((cur, self.keys)),
            }
        }
        self.keys = self
            .voices
            .iter()
            .find(|(v, _)| *v == id)
            .map_or(self.header, |(_, k)| *k);
        self.voice = Some(id);
    }
}

type Rewrite<'f> = dyn FnMut(Head, &Keys, &mut String, &str) + 'f;

/// Copies `abc`, handing each note to `note` (which writes its replacement) and, when
/// `interval` is set, rewriting `K:` fields.
fn rewrite_text(abc: &str, interval: Option<Interval>, note: &mut Rewrite) -> String {
    let mut out = String::with_capacity(abc.len() + abc.len() / 8);
    let mut state = State::new(interval);
    for line in abc.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let ending = &line[body.len()..];
        match field_key(body) {
            Some('X') => {
                state = State::new(interval);
                out.push_str(line);
            }
            Some('K') => {
                let value = &body[2..];
                let cut = value.find('%').unwrap_or(value.len());
                out.push_str(&body[..2]);
                match state.key(&value[..cut]) {
                    Some(new) => out.push_str(&new),
                    None => out.push_str(&value[..cut]),
                }
                out.push_str(&value[cut..]);
                out.push_str(ending);
            }
            Some('V') => {
                state.voice(&body[2..]);
                out.push_str(line);
            }
            Some(_) => out.push_str(line),
            None => {
                music(body, &mut state, note, &mut out);
                out.push_str(ending);
            }
        }
    }
    out
}

/// Rewrites the notes of one line of music.
fn music(line: &str, state: &mut State, note: &mut Rewrite, out: &mut String) {
    let b = line.as_bytes();
    let mut i = 0;
    // Everything before `copied` is in `out`; plain text is copied in runs.
    let mut copied = 0;
    let find = |from: usize, what: u8| b.get(from..)?.iter().position(|&c| c == what);
    while i < b.len() {
        match b[i] {
            b'%' => break,
            b'"' => i = find(i + 1, b'"').map_or(b.len(), |j| i + 1 + j + 1),
            b'!' | b'+' => i = find(i + 1, b[i]).map_or(i + 1, |j| i + 1 + j + 1),
            b'[' if b.len() >= i + 3 && b[i + 1].is_ascii_alphabetic() && b[i + 2] == b':' => {
                let close = find(i, b']').map_or(b.len(), |j| i + j);
                let value = &line[i + 3..close];
                match b[i + 1] {
                    b'K' => {
                        if let Some(new) = state.key(value) {
                            out.push_str(&line[copied..i + 3]);
                            out.push_str(&new);
                            copied = close;
                        }
                    }
                    b'V' => state.voice(value),
                    _ => {}
                }
                i = (close + 1).min(b.len());
            }
            b'^' | b'_' | b'=' | b'A'..=b'G' | b'a'..=b'g' => match read_head(&line[i..]) {
                Some((head, len)) => {
                    out.push_str(&line[copied..i]);
                    note(head, &state.keys, out, &line[i..i + len]);
                    i += len;
                    copied = i;
                }
                None => i += 1,
            },
            _ => i += 1,
        }
    }
    out.push_str(&line[copied..]);
}

// ---------------------------------------------------------------------------------------------
// Randomness.

/// xorshift64*, seeded through splitmix64 so that nearby seeds give unrelated streams and
/// seed 0 works (xorshift's state must never be zero).
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        Self(if z == 0 { 0x2545_F491_4F6C_DD1D } else { z })
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::abc::notes::tune_notes;
    use crate::abc::{parse, units, Level, SourceText};

    const ALL: [(Interval, i32); 6] = [
        (Interval::MAJOR_SECOND_UP, 2),
        (Interval::MAJOR_SECOND_DOWN, -2),
        (Interval::FOURTH_UP, 5),
        (Interval::FIFTH_UP, 7),
        (Interval::FOURTH_DOWN, -5),
        (Interval::FIFTH_DOWN, -7),
    ];

    /// The MIDI pitches of every note of every voice of every tune, as `notes` reads them.
    fn pitches(abc: &str) -> Vec<i16> {
        let source = SourceText::from_text(abc.to_owned());
        let file = parse(&source);
        file.tunes
            .iter()
            .flat_map(|t| tune_notes(&source, t))
            .flat_map(|v| v.notes.into_iter().map(|n| n.pitch))
            .collect()
    }

    /// Whether `abc` transposed by `interval` has the same notes `semitones` higher.
    fn exact(abc: &str, interval: Interval, semitones: i32) -> bool {
        let want: Vec<i32> = pitches(abc)
            .iter()
            .map(|&p| i32::from(p) + semitones)
            .collect();
        let got: Vec<i32> = pitches(&transpose(abc, interval))
            .iter()
            .map(|&p| i32::from(p))
            .collect();
        want == got
    }

    #[test]
    fn semitones_of_the_intervals() {
        for (interval, semitones) in ALL {
            assert_eq!(interval.semitones(), semitones, "{interval:?}");
        }
    }

    #[test]
    fn fifth_up_moves_key_and_notes() {
        // Up a fifth, G is the d above it (+7 semitones), not the D below.
        assert_eq!(
            transpose("L:1/8\nK:G\nGAB c2d|\n", Interval::FIFTH_UP),
            "L:1/8\nK:D\ndef g2a|\n"
        );
        assert_eq!(
            transpose("L:1/8\nK:G\nGAB c2d|\n", Interval::FOURTH_DOWN),
            "L:1/8\nK:D\nDEF G2A|\n"
        );
    }

    #[test]
    fn modes_and_field_rest_are_kept() {
        let up = Interval::MAJOR_SECOND_UP;
        assert_eq!(transpose("K:Ador\nA|\n", up), "K:Bdor\nB|\n");
        assert_eq!(
            transpose("K: Gm clef=bass % x\n", up),
            "K: Am clef=bass % x\n"
        );
        assert_eq!(transpose("K:F#m\n", Interval::FIFTH_UP), "K:C#m\n");
        assert_eq!(transpose("K:Bb\n", Interval::FIFTH_DOWN), "K:Eb\n");
        assert_eq!(transpose("K:D =c\n", up), "K:E =d\n");
        assert_eq!(transpose("K:none\nE|\n", up), "K:none\nF|\n");
        assert_eq!(transpose("K:HP\nE|\n", up), "K:HP\nF|\n");
    }

    #[test]
    fn explicit_accidentals_keep_their_offset() {
        let up = Interval::MAJOR_SECOND_UP;
        assert_eq!(transpose("K:G\n_B|\n", up), "K:A\n=c|\n");
        assert_eq!(transpose("K:G\n^c|\n", up), "K:A\n^d|\n");
        assert_eq!(transpose("K:G\n=F|\n", up), "K:A\n=G|\n");
        assert_eq!(transpose("K:C\n^^c|\n", up), "K:D\n^^d|\n");
    }

    #[test]
    fn octaves_carry() {
        let up = Interval::MAJOR_SECOND_UP;
        let down = Interval::MAJOR_SECOND_DOWN;
        assert_eq!(transpose("K:C\nB b c'|\n", up), "K:D\nc c' d'|\n");
        assert_eq!(transpose("K:C\nC, c C|\n", down), "K:Bb\nB,, B B,|\n");
        assert_eq!(transpose("K:C\nc'|\n", Interval::FIFTH_DOWN), "K:F\nf|\n");
    }

    #[test]
    fn only_notes_change() {
        let text = "X:1\nT:Big Cat\nL:1/8\nK:G\n\"Am\"A2{g}B !trill!c [CEG]2 z| % G B\nw: G A B\n[K:D] d|]\n";
        let want = "X:1\nT:Big Cat\nL:1/8\nK:D\n\"Am\"e2{d'}f !trill!g [GBd]2 z| % G B\nw: G A B\n[K:A] a|]\n";
        assert_eq!(transpose(text, Interval::FIFTH_UP), want);
        assert!(exact(text, Interval::FIFTH_UP, 7));
    }

    #[test]
    fn voices_keep_their_own_keys() {
        let text = "X:1\nL:1/8\nK:C\nV:1\nK:G\nF|\nV:2\nF|\nV:1\nF|\n";
        assert_eq!(
            transpose(text, Interval::FIFTH_UP),
            "X:1\nL:1/8\nK:G\nV:1\nK:D\nc|\nV:2\nc|\nV:1\nc|\n"
        );
        assert!(exact(text, Interval::FIFTH_UP, 7));
    }

    /// A random simple tune: a key, then bars of notes with accidentals, chords, grace notes,
    /// chord symbols and the odd inline key change. Double accidentals are left out: moved
    /// against some keys they would need a triple one, which ABC cannot write.
    fn simple_tune() -> impl Strategy<Value = String> {
        let tonic = prop::sample::select(vec![
            "C", "G", "D", "A", "E", "B", "F#", "C#", "F", "Bb", "Eb", "Ab", "Db", "Gb",
        ]);
        let mode = prop::sample::select(vec!["", "m", "dor", "mix", "Lyd", "phr", "loc", "maj"]);
        let acc = prop::sample::select(vec!["", "", "", "^", "_", "="]);
        let name = prop::sample::select(vec![
            "C,", "G,", "B,", "C", "D", "E", "F", "G", "A", "B", "c", "d", "e", "f", "g", "a", "b",
            "c'", "e'", "b'",
        ]);
        let len = prop::sample::select(vec!["", "", "2", "/2", "3", ">"]);
        let head = (acc, name).prop_map(|(a, n)| format!("{a}{n}"));
        let item = prop_oneof![
            6 => (head.clone(), len).prop_map(|(h, l)| format!("{h}{l}")),
            1 => prop::collection::vec(head.clone(), 2..4).prop_map(|v| format!("[{}]", v.concat())),
            1 => head.clone().prop_map(|h| format!("{{{h}}}")),
            1 => Just("\"Am\"".to_owned()),
            1 => Just("|".to_owned()),
            1 => (prop::sample::select(vec!["G", "Dm", "Bb", "F#dor"]))
                .prop_map(|k| format!("[K:{k}]")),
        ];
        (tonic, mode, prop::collection::vec(item, 1..40))
            .prop_map(|(t, m, items)| format!("L:1/8\nM:6/8\nK:{t}{m}\n{} |\n", items.join(" ")))
    }

    proptest! {
        #[test]
        fn pitches_move_by_the_interval(tune in simple_tune()) {
            for (interval, semitones) in ALL {
                let moved = transpose(&tune, interval);
                prop_assert!(exact(&tune, interval, semitones), "{interval:?}\n{tune}\n{moved}");
            }
        }

        #[test]
        fn never_panics(text in "[A-Ga-gKVXLz^_=,'\\[\\]{}\"!+%|:/0-9 \n#bm]{0,80}|\\PC{0,40}") {
            for (interval, _) in ALL {
                let _ = pitches(&transpose(&text, interval));
            }
            let _ = pitches(&vary(&text, 0.5, 7));
        }
    }

    /// O'Neill's 1850 from the music21 corpus: the share of passages (and of whole tunes)
    /// whose notes all move by exactly the interval.
    #[test]
    fn oneills_passages_transpose_exactly() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../.data/music21/music21/corpus/oneills1850");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("the music21 corpus is missing at {}: {e}", dir.display()))
            .map(|e| e.expect("directory entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "abc"))
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no .abc files in {}", dir.display());
        let mut passages = Vec::new();
        let mut tunes = Vec::new();
        for path in &files {
            let bytes = std::fs::read(path).expect("read corpus file");
            let source = SourceText::from_bytes(&bytes, usize::MAX).expect("decode corpus file");
            for tune in &parse(&source).tunes {
                tunes.push(source.slice(tune.range).to_owned());
                passages.extend(
                    units(&source, tune, Level::Passage, 4, 4)
                        .into_iter()
                        .map(|u| u.text),
                );
            }
        }
        let step = (passages.len() / 200).max(1);
        let sample: Vec<&String> = passages.iter().step_by(step).take(200).collect();
        assert_eq!(sample.len(), 200, "fewer than 200 passages");
        let share = |texts: &[&String]| {
            let (mut good, mut all) = (0usize, 0usize);
            for text in texts {
                for (interval, semitones) in ALL {
                    all += 1;
                    good += usize::from(exact(text, interval, semitones));
                }
            }
            good as f64 / all as f64
        };
        let passage_share = share(&sample);
        let tune_sample: Vec<&String> = tunes.iter().collect();
        let tune_share = share(&tune_sample);
        eprintln!(
            "exact transpositions: passages {:.4} of {} x 6, whole tunes {:.4} of {} x 6",
            passage_share,
            sample.len(),
            tune_share,
            tunes.len()
        );
        assert!(passage_share == 1.0, "passages: {passage_share}");
        assert!(tune_share == 1.0, "tunes: {tune_share}");
    }

    #[test]
    fn vary_moves_about_the_fraction() {
        let tune =
            "L:1/8\nM:6/8\nK:G\nGAB c2d|e2f g3|gfe dcB|AGF G3|GAB c2d|e2f g3|gfe dcB|AGF G3|\n";
        let before = pitches(tune);
        for seed in 0..20 {
            for fraction in [0.1, 0.25, 0.5] {
                let varied = vary(tune, fraction, seed);
                assert_eq!(varied, vary(tune, fraction, seed), "deterministic");
                let after = pitches(&varied);
                assert_eq!(after.len(), before.len());
                let changed = before.iter().zip(&after).filter(|(a, b)| a != b).count();
                let expected = fraction * before.len() as f64;
                // Binomial: mean n·f, sd √(n·f·(1−f)) ≤ 2.7 here; 4 sd either side.
                let slack = 4.0 * (expected * (1.0 - fraction)).sqrt() + 1.0;
                assert!(
                    (changed as f64 - expected).abs() <= slack,
                    "seed {seed} fraction {fraction}: {changed} of {} changed\n{varied}",
                    before.len()
                );
                for (a, b) in before.iter().zip(&after) {
                    assert!((a - b).abs() <= 2, "a step is at most 2 semitones");
                }
            }
        }
        assert_eq!(vary(tune, 0.0, 3), tune);
        assert_ne!(vary(tune, 0.5, 1), vary(tune, 0.5, 2));
    }
}
