//! Reading one bar: note heads, accidentals carried through the bar, lengths, broken rhythm,
//! tuplets, ties and chords, into its voice's notes.

use super::*;

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
pub(super) struct BarReader<'a> {
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
    pub(super) fn new(
        b: &'a [u8],
        base: u32,
        state: &'a mut VoiceState,
        notes: &'a mut Vec<Note>,
    ) -> Self {
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

    pub(super) fn read(mut self) -> BarTime {
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
