//! The score as the converter reads it: parts of measures, each measure a list of timed
//! items. Times are exact fractions of a whole note from the start of the measure; voices
//! are the MusicXML `<voice>` values of the part.

use super::frac::Frac;

#[derive(Debug, Default)]
pub struct Score {
    pub title: Option<String>,
    pub composer: Option<String>,
    pub parts: Vec<Part>,
}

#[derive(Debug)]
pub struct Part {
    /// 1-based position among the score's parts (parts without measures keep their number).
    pub number: u32,
    pub id: String,
    pub name: Option<String>,
    pub measures: Vec<Measure>,
}

#[derive(Debug, Default)]
pub struct Measure {
    /// The `number` attribute as written ("12", "0" for a pickup, "12a", "X1").
    pub number: String,
    pub items: Vec<Item>,
    /// The furthest time reached by any note, rest or `<forward>`.
    pub length: Frac,
    pub repeat_forward: bool,
    pub repeat_backward: bool,
    /// The ending (volta) this measure starts, as ABC writes it ("1", "1,2").
    pub ending: Option<String>,
    /// The bar line closing the measure.
    pub right: BarStyle,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum BarStyle {
    #[default]
    Regular,
    Double,
    Final,
}

#[derive(Debug)]
pub struct Item {
    pub at: Frac,
    /// The voice, for notes and directions that name one.
    pub voice: Option<String>,
    /// The staff (1-based) for notes, directions and clefs that name one.
    pub staff: Option<u32>,
    pub what: What,
}

#[derive(Debug)]
pub enum What {
    Note(Note),
    /// A decoration for the next note of the voice: `!p!`, `!crescendo(!`.
    Decoration(String),
    /// A chord symbol for the next note: `Am7`, `G/B`.
    Harmony(String),
    /// A key signature.
    Key(KeySig),
    /// A time signature as an ABC `M:` value.
    Meter(String),
    /// A clef as an ABC `clef=` value.
    Clef(String),
}

#[derive(Debug, Clone)]
pub struct Note {
    /// `None` for a rest.
    pub pitch: Option<Pitch>,
    /// Sounding length in whole notes (zero for grace notes).
    pub length: Frac,
    /// `(actual, normal)` of `<time-modification>`: `(3, 2)` for a triplet.
    pub tuplet: Option<(u32, u32)>,
    pub chord: bool,
    pub grace: bool,
    /// A cue note or a hidden rest: it keeps time but sounds no note.
    pub invisible: bool,
    pub tie_start: bool,
    /// An accidental printed in the score (it may be a courtesy one).
    pub accidental_shown: bool,
    pub decorations: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pitch {
    /// 0..=6 for C..B.
    pub step: u8,
    /// Semitones: -2..=2.
    pub alter: i8,
    /// Scientific octave: middle C is C4.
    pub octave: i8,
}

/// A key signature: its ABC `K:` value and the alteration it gives each letter C..B.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeySig {
    pub abc: String,
    pub alters: [i8; 7],
}
