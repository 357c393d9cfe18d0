//! The canonical music view: ABC re-rendered from its parsed notes, so that what does not change
//! the melody does not change what a model reads.
//!
//! Two tunes that sound the same are often written differently: chord symbols or none, `L:1/4`
//! or `L:1/8`, `A>B` or `A3/2B/2`, `A2-A` or `A3`, grace notes and decorations, accidentals
//! written or implied by `K:`, line breaks and beaming. A model that reads the ABC as written
//! learns that spelling (measured: a passage with its chord symbols removed was no longer found).
//! This view keeps only what [`notes`](super::notes) reads as the melody: each note's pitch and
//! length, bar by bar, plus the meter and the mode.
//!
//! - Lengths are written in eighth notes (no `L:` line), with no spaces; rests and bars without
//!   notes are left out.
//! - Meters are read by family, lengths scaled with the bar: a reel written `M:2/4` in
//!   sixteenths reads as the same reel written `M:C|` in eighths (both `M:4/4`).
//! - Accidentals are written against the signature of the mode, only where a note differs from
//!   what the signature and the bar's earlier accidentals give.
//! - With [`MusicView::CanonicalTonic`], pitches are relative to the tonic of `K:` (every key is
//!   written as C in its mode) and moved by octaves so that the melody's mean pitch sits near
//!   the middle of the treble staff: a passage in G and the same passage in D read the same.
//!
//! Official CLaMP checkpoints read the reference patching of the ABC as written
//! ([`MusicView::Reference`]); a model trained by tunelens names its view in `config.json`.

use serde::{Deserialize, Serialize};

use super::notes::{
    self, mode_fifths, parse_key, parse_meter, signature_of_fifths, KeySig, Ratio, SEMITONES,
};
use super::{parse, SourceText, Tune};

/// How a model reads music (`"music_view"` in its `config.json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MusicView {
    /// The ABC as written, patched as the CLaMP reference does.
    #[default]
    Reference,
    /// Re-rendered from the notes, pitches as written.
    CanonicalAbsolute,
    /// Re-rendered from the notes, pitches relative to the tonic.
    CanonicalTonic,
}

impl MusicView {
    pub fn is_reference(&self) -> bool {
        *self == MusicView::Reference
    }
}

/// Where the mean pitch of a tonic-relative melody is put (B above middle C, MIDI 71).
const CENTER: i64 = 71;

/// One note of the canonical view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tone {
    /// MIDI pitch.
    pub pitch: i16,
    /// In whole notes.
    pub duration: Ratio,
}

/// A tune (or a passage read as a short tune) as the canonical view keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Melody {
    pub meter: Option<(u32, u32)>,
    pub key: Key,
    /// Per voice, per bar, the notes.
    pub voices: Vec<Vec<Vec<Tone>>>,
}

/// The tonic and mode of `K:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    /// Pitch class of the tonic, 0 (C) to 11.
    pub tonic: i16,
    /// The tonic as written (`F#`, `Bb`), for the absolute view.
    pub tonic_name: String,
    /// The mode's distance from major in fifths (0 major, -3 minor, -2 dorian, ...).
    pub mode: i32,
    /// The signature in force at the start, as written (explicit accidentals included).
    pub signature: KeySig,
}

impl Default for Key {
    fn default() -> Self {
        Self {
            tonic: 0,
            tonic_name: "C".into(),
            mode: 0,
            signature: [0; 7],
        }
    }
}

impl Key {
    /// Reads a `K:` value; `None` when it names no key.
    pub fn parse(value: &str) -> Option<Key> {
        let v = value.trim();
        let signature = parse_key(v)?;
        if v.starts_with("HP") || v.starts_with("Hp") {
            // Highland pipes: A mixolydian.
            return Some(Key {
                tonic: 9,
                tonic_name: "A".into(),
                mode: -1,
                signature,
            });
        }
        let b = v.as_bytes();
        let Some(&letter) = b.first().filter(|c| matches!(c, b'A'..=b'G')) else {
            return Some(Key {
                signature,
                ..Key::default()
            });
        };
        let index = usize::from(b"CDEFGAB".iter().position(|&c| c == letter).unwrap_or(0) as u8);
        let (shift, used) = match b.get(1) {
            Some(b'#') => (1, 2),
            Some(b'b') => (-1, 2),
            _ => (0, 1),
        };
        let rest = v[used..].trim_start();
        let word: String = rest.chars().take_while(char::is_ascii_alphabetic).collect();
        let mode = mode_fifths(&word).unwrap_or(0);
        Some(Key {
            tonic: (SEMITONES[index] + shift).rem_euclid(12),
            tonic_name: v[..used].to_string(),
            mode,
            signature,
        })
    }

    /// `m`, `dor`, ... as written after the tonic; empty for major.
    fn mode_suffix(&self) -> &'static str {
        match self.mode {
            -3 => "m",
            -2 => "dor",
            -4 => "phr",
            1 => "lyd",
            -1 => "mix",
            -5 => "loc",
            _ => "",
        }
    }
}

impl Melody {
    /// The melody of each tune in `text` (a file, a tune, or a passage's header and bars).
    pub fn read_all(text: &str) -> Vec<Melody> {
        let source = SourceText::from_text(text.to_owned());
        let file = parse(&source);
        file.tunes
            .iter()
            .map(|tune| Melody::of_tune(&source, tune))
            .collect()
    }

    /// The melody of one parsed tune.
    pub fn of_tune(source: &SourceText, tune: &Tune) -> Melody {
        let voices = notes::tune_notes(source, tune)
            .iter()
            .map(|v| {
                v.iter_bars()
                    .map(|bar| {
                        bar.iter()
                            .map(|n| Tone {
                                pitch: n.pitch,
                                duration: n.duration,
                            })
                            .collect()
                    })
                    .collect()
            })
            .collect();
        Melody {
            meter: tune.field('M').and_then(parse_meter),
            key: tune.field('K').and_then(Key::parse).unwrap_or_default(),
            voices,
        }
    }

    /// The canonical ABC text of the melody in `view` (the reference view renders as the
    /// absolute one: it has no canonical form of its own).
    pub fn render(&self, view: MusicView) -> String {
        let tonic = view == MusicView::CanonicalTonic;
        let mut out = String::new();
        let (meter, scale) = canonical_meter(self.meter);
        if let Some((n, d)) = meter {
            out.push_str(&format!("M:{n}/{d}\n"));
        }
        let suffix = self.key.mode_suffix();
        let signature = if tonic {
            out.push_str(&format!("K:C{suffix}\n"));
            signature_of_fifths(self.key.mode)
        } else {
            out.push_str(&format!("K:{}{suffix}\n", self.key.tonic_name));
            self.key.signature
        };
        let shift = if tonic { self.tonic_shift() } else { 0 };
        let many = self.voices.len() > 1;
        for (v, bars) in self.voices.iter().enumerate() {
            if many {
                out.push_str(&format!("V:{}\n", v + 1));
            }
            // A bar without notes (rests, or chord symbols alone) is not rendered: what it holds
            // is not the melody, and how it is written varies.
            for bar in bars.iter().filter(|b| !b.is_empty()) {
                render_bar(&mut out, bar, shift, scale, &signature);
                out.push('|');
            }
            out.push('\n');
        }
        out
    }

    /// Semitones added to every pitch in the tonic view: the tonic to C, then whole octaves
    /// that bring the mean pitch nearest [`CENTER`].
    fn tonic_shift(&self) -> i16 {
        let (mut sum, mut count) = (0i64, 0i64);
        for tone in self.voices.iter().flatten().flatten() {
            sum += i64::from(tone.pitch);
            count += 1;
        }
        let base = -self.key.tonic;
        if count == 0 {
            return base;
        }
        // round((CENTER - mean) / 12), halves up, in integers: the same melody moved by whole
        // semitones must land on the same octave, with no rounding of floats in the way.
        let below = CENTER * count - (sum + i64::from(base) * count);
        let octaves = (below + 6 * count).div_euclid(12 * count);
        base + 12 * octaves as i16
    }
}

/// The canonical text of `music` in `view`; `None` for the reference view (read as written).
pub fn render(music: &str, view: MusicView) -> Option<String> {
    if view.is_reference() {
        return None;
    }
    let melodies = Melody::read_all(music);
    Some(melodies.iter().map(|m| m.render(view)).collect())
}

/// The meter of a family's written form and the factor that scales this meter's lengths to it.
/// Collections write the same reel as `M:C|` in eighths or `M:2/4` in sixteenths, a polka as
/// `2/4` or `4/8`: duple meters (2 or 4 beats) are read as 4/4, triple ones as 3/4, compound
/// ones in eighths (6/8, 9/8, 12/8), with every length scaled with the bar. Other meters stay.
fn canonical_meter(meter: Option<(u32, u32)>) -> (Option<(u32, u32)>, Ratio) {
    let Some((n, d)) = meter else {
        return (None, Ratio::ONE);
    };
    let (d64, n64) = (u64::from(d), u64::from(n));
    match n {
        // A bar of n/d becomes a whole note.
        2 | 4 => (Some((4, 4)), Ratio::new(d64, n64)),
        3 => (Some((3, 4)), Ratio::new(d64, 4)),
        6 | 9 | 12 => (Some((n, 8)), Ratio::new(d64, 8)),
        _ => (Some((n, d)), Ratio::ONE),
    }
}

/// Appends one bar's notes.
fn render_bar(out: &mut String, bar: &[Tone], shift: i16, scale: Ratio, signature: &KeySig) {
    // Accidentals written earlier in the bar, by letter and octave.
    let mut written: Vec<((usize, i16), i8)> = Vec::new();
    for tone in bar {
        let pitch = (tone.pitch + shift).clamp(0, 127);
        let (letter, accidental) = spell(pitch, signature);
        let octave = (pitch - i16::from(accidental)).div_euclid(12);
        let in_force = written
            .iter()
            .rev()
            .find(|(at, _)| *at == (letter, octave))
            .map_or(signature[letter], |&(_, a)| a);
        if accidental != in_force {
            out.push_str(match accidental {
                2 => "^^",
                1 => "^",
                0 => "=",
                -1 => "_",
                _ => "__",
            });
            written.push(((letter, octave), accidental));
        }
        let name = b"CDEFGAB"[letter] as char;
        if octave >= 6 {
            out.push(name.to_ascii_lowercase());
            for _ in 6..octave {
                out.push('\'');
            }
        } else {
            out.push(name);
            for _ in octave..5 {
                out.push(',');
            }
        }
        push_length(out, tone.duration * scale);
    }
}

/// The letter (C = 0 .. B = 6) and accidental (in semitones) that spell `pitch`: the letter
/// the signature already gives that pitch, else a natural, else a sharp.
fn spell(pitch: i16, signature: &KeySig) -> (usize, i8) {
    let pc = pitch.rem_euclid(12);
    let by = |acc: &dyn Fn(usize) -> i8| {
        (0..7).find_map(|l| {
            let a = acc(l);
            ((SEMITONES[l] + i16::from(a)).rem_euclid(12) == pc).then_some((l, a))
        })
    };
    by(&|l| signature[l])
        .or_else(|| by(&|_| 0))
        .or_else(|| by(&|_| 1))
        .unwrap_or((0, 0))
}

/// A length in eighths: nothing for one, `3`, `/`, `3/2`, `/4`.
fn push_length(out: &mut String, duration: Ratio) {
    write_length(out, duration * Ratio::new(8, 1));
}

/// A length in units of `L:` as ABC writes it: nothing for one, `3`, `/`, `3/2`, `/4`.
pub(crate) fn write_length(out: &mut String, units: Ratio) {
    match (units.num(), units.den()) {
        (1, 1) => {}
        (n, 1) => out.push_str(&n.to_string()),
        (1, 2) => out.push('/'),
        (1, d) => out.push_str(&format!("/{d}")),
        (n, d) => out.push_str(&format!("{n}/{d}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tonic(abc: &str) -> String {
        render(abc, MusicView::CanonicalTonic).unwrap_or_default()
    }

    #[test]
    fn reference_view_renders_nothing() {
        assert_eq!(render("K:G\nABc|", MusicView::Reference), None);
    }

    #[test]
    fn spelling_does_not_change_the_view() {
        let plain = "X:1\nM:4/4\nL:1/8\nK:G\nGABc dBGB|A2FA DFAF|\n";
        let chords = "X:1\nT:Other title\nM:C\nL:1/8\nK:G\n\"G\"GA Bc \"Em\"dB GB|\n\"D\"A2 FA !trill!DF {g}AF|]\n";
        let quarter = "X:1\nM:4/4\nL:1/4\nK:G\nG/A/B/c/ d/B/G/B/|A F/A/ D/F/A/F/|\n";
        let tied = "X:1\nM:4/4\nL:1/8\nK:G\nGABc dBGB|A-AFA DFAF|\n";
        let a = tonic(plain);
        assert_eq!(a, tonic(chords));
        assert_eq!(a, tonic(quarter));
        assert_eq!(a, tonic(tied));
        assert_eq!(a, "M:4/4\nK:C\ncdefgece|d2BdGBdB|\n");
    }

    #[test]
    fn transposition_does_not_change_the_tonic_view() {
        let g = "K:G\nM:6/8\nL:1/8\nGAB c2d|e^fg d3|\n";
        let c = "K:C\nM:6/8\nL:1/8\ncde f2g|a=bc' g3|\n";
        let d = "K:D\nM:6/8\nL:1/8\nDEF G2A|B^cd A3|\n";
        assert_eq!(tonic(g), tonic(c));
        assert_eq!(tonic(g), tonic(d));
        // The absolute view keeps the key.
        assert_ne!(
            render(g, MusicView::CanonicalAbsolute),
            render(c, MusicView::CanonicalAbsolute)
        );
    }

    #[test]
    fn accidentals_follow_the_mode_and_the_bar() {
        // A minor: C written in the tonic view is E flat by the signature of C minor.
        assert_eq!(
            tonic("K:Am\nL:1/8\nABc ^G2A|cBA A3|"),
            "K:Cm\ncde=B2c|edcc3|\n"
        );
        // A raised note, then the same letter again in the bar: written once. (The melody's
        // mean is above the centre, so it moves down an octave.)
        assert_eq!(tonic("K:C\nL:1/8\nc^fgf|fc'gc|"), "K:C\nC^FGF|FcGC|\n");
    }

    #[test]
    fn a_reel_in_2_4_is_the_reel_in_cut_time() {
        let cut = "M:C|\nL:1/8\nK:D\nDFAF dFAF|GBdB gBdB|\n";
        let two_four = "M:2/4\nL:1/16\nK:D\nDFAF dFAF|GBdB gBdB|\n";
        assert_eq!(tonic(cut), tonic(two_four));
        assert!(tonic(cut).starts_with("M:4/4\n"));
        // 3/8 is read as 3/4, 6/4 as 6/8.
        assert_eq!(
            tonic("M:3/8\nL:1/16\nK:C\ncdef g2|"),
            tonic("M:3/4\nL:1/8\nK:C\ncdef g2|")
        );
        assert_eq!(
            tonic("M:6/4\nL:1/4\nK:C\nc2d e2f|"),
            tonic("M:6/8\nL:1/8\nK:C\nc2d e2f|")
        );
    }

    #[test]
    fn broken_rhythm_and_tuplets_are_lengths() {
        assert_eq!(
            tonic("K:C\nL:1/8\nc>d (3efg|"),
            "K:C\nc3/2d/e2/3f2/3g2/3|\n"
        );
    }

    #[test]
    fn never_panics_on_odd_input() {
        for abc in [
            "",
            "K:",
            "|||",
            "K:none\nz4|",
            "X:1\n\u{0}\n",
            "K:C\n[CEG]2|^^c__d|",
        ] {
            let _ = render(abc, MusicView::CanonicalTonic);
            let _ = render(abc, MusicView::CanonicalAbsolute);
        }
    }
}
