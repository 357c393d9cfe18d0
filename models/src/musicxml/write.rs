//! [`Score`] → ABC 2.1 text, and where each measure landed in it.
//!
//! The layout follows xml2abc's: one tune; the header carries `T:`, `C:`, `M:`, `L:`, a `V:`
//! line per voice (with its part's name and clef) and `K:`; then each voice's music in turn,
//! four measures a line. Every MusicXML `<voice>` of a part becomes an ABC voice `P` (a part
//! with one voice) or `P.N`, and every voice gets every measure of its part — filled with
//! invisible rests `x` where it is silent — so that a voice's N-th bar is its part's N-th
//! measure, and the bar scanner of `abc` counts the same measures MusicXML has.
//!
//! Pitches are written against the key signature with ABC's rule that an accidental holds to
//! the end of the bar for its letter and octave; lengths are exact multiples of `L:`;
//! `<time-modification>` runs become `(p:q:r` tuplets.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::error::MusicXmlError;
use super::frac::Frac;
use super::score::{BarStyle, Item, KeySig, Measure, Note, Part, Score, What};
use super::{MeasureRef, PartInfo};
use crate::abc::TextRange;

/// Measures per line of ABC.
const MEASURES_PER_LINE: usize = 4;
/// ABC readers (ours included) take tuplet numbers up to this.
const MAX_TUPLET: u32 = 64;

pub struct Written {
    pub abc: String,
    pub bars: Vec<MeasureRef>,
    pub parts: Vec<PartInfo>,
}

/// A voice of a part: its MusicXML `<voice>` value and its ABC id.
struct VoicePlan {
    key: String,
    id: String,
    staff: u32,
}

pub fn write(score: &Score, name: &str, limit: usize) -> Result<Written, MusicXmlError> {
    let unit = unit_length(score);
    let mut abc = String::new();
    abc.push_str("X:1\n");
    if let Some(t) = &score.title {
        let _ = writeln!(abc, "T:{}", header_text(t));
    }
    if let Some(c) = &score.composer {
        let _ = writeln!(abc, "C:{}", header_text(c));
    }
    let first = &score.parts[0];
    let meter = initial(first, |w| match w {
        What::Meter(m) => Some(m.clone()),
        _ => None,
    })
    .unwrap_or_else(|| "none".to_owned());
    let key = initial(first, |w| match w {
        What::Key(k) => Some(k.clone()),
        _ => None,
    })
    .unwrap_or(KeySig {
        abc: "C".to_owned(),
        alters: [0; 7],
    });
    let _ = writeln!(abc, "M:{meter}\nL:1/{unit}");

    let plans: Vec<Vec<VoicePlan>> = score.parts.iter().map(voices).collect();
    let mut parts = Vec::new();
    for (part, plan) in score.parts.iter().zip(&plans) {
        parts.push(PartInfo {
            number: part.number,
            id: part.id.clone(),
            name: part.name.clone(),
            voices: plan.iter().map(|v| v.id.clone()).collect(),
            measures: part.measures.len() as u32,
        });
        for (k, v) in plan.iter().enumerate() {
            let _ = write!(abc, "V:{}", v.id);
            if let Some(n) = part
                .name
                .as_deref()
                .map(header_text)
                .filter(|n| !n.is_empty())
            {
                let n = n.replace('"', "'");
                if k == 0 {
                    let _ = write!(abc, " name=\"{n}\"");
                } else {
                    let _ = write!(abc, " name=\"{n} {}\"", k + 1);
                }
            }
            if let Some(clef) = initial_clef(part, v.staff) {
                let _ = write!(abc, " clef={clef}");
            }
            abc.push('\n');
        }
    }
    let _ = writeln!(abc, "K:{}", key.abc);

    let mut bars = Vec::new();
    for (part, plan) in score.parts.iter().zip(&plans) {
        for (k, v) in plan.iter().enumerate() {
            let _ = writeln!(abc, "V:{}", v.id);
            let mut state = VoiceState {
                key: key.clone(),
                meter: meter.clone(),
                clef: initial_clef(part, v.staff),
            };
            for (i, m) in part.measures.iter().enumerate() {
                let start = abc.len() as u32;
                let items = voice_items(plan, k, m);
                MeasureWriter {
                    out: &mut abc,
                    unit,
                    state: &mut state,
                    accidentals: HashMap::new(),
                }
                .measure(m, &items);
                bars.push(MeasureRef {
                    part: part.number,
                    part_id: part.id.clone(),
                    part_name: part.name.clone(),
                    measure: m.number.clone(),
                    voice: v.id.clone(),
                    bar: i as u32 + 1,
                    range: TextRange::new(start, abc.len() as u32),
                });
                abc.push(if (i + 1) % MEASURES_PER_LINE == 0 {
                    '\n'
                } else {
                    ' '
                });
                if abc.len() > limit {
                    return Err(MusicXmlError::TooLarge {
                        name: name.to_owned(),
                        what: "the converted ABC".to_owned(),
                        limit,
                        detail: format!(", at part {}, measure {}", part.number, m.number),
                    });
                }
            }
            if !abc.ends_with('\n') {
                abc.push('\n');
            }
        }
    }
    Ok(Written { abc, bars, parts })
}

/// A field value on one line, without ABC's comment sign.
fn header_text(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace(['%', '\\'], "")
}

/// `L:` as 1/4, 1/8 or 1/16: the power of two most notes have, so most notes need no number.
fn unit_length(score: &Score) -> i128 {
    let mut counts: HashMap<i128, usize> = HashMap::new();
    for part in &score.parts {
        for m in &part.measures {
            for item in &m.items {
                if let What::Note(n) = &item.what {
                    if n.grace || n.chord || n.tuplet.is_some() || !n.length.is_positive() {
                        continue;
                    }
                    let mut den = 4;
                    while den < 16 && Frac::new(1, den) > n.length {
                        den *= 2;
                    }
                    *counts.entry(den).or_default() += 1;
                }
            }
        }
    }
    // Most notes; on a tie the longer unit (fewer characters for the long notes).
    [4, 8, 16]
        .into_iter()
        .max_by_key(|d| (counts.get(d).copied().unwrap_or(0), -d))
        .filter(|d| counts.contains_key(d))
        .unwrap_or(8)
}

/// The first value `pick` finds in the part's first measure.
fn initial<T>(part: &Part, pick: impl Fn(&What) -> Option<T>) -> Option<T> {
    part.measures
        .first()?
        .items
        .iter()
        .find_map(|i| pick(&i.what))
}

fn initial_clef(part: &Part, staff: u32) -> Option<String> {
    part.measures
        .first()?
        .items
        .iter()
        .find_map(|i| match &i.what {
            What::Clef(c) if i.staff.unwrap_or(1) == staff => Some(c.clone()),
            _ => None,
        })
}

/// The voices of a part, in order of their `<voice>` values (numbers numerically).
fn voices(part: &Part) -> Vec<VoicePlan> {
    let mut found: Vec<(String, u32)> = Vec::new();
    for m in &part.measures {
        for item in &m.items {
            if let (What::Note(_), Some(v)) = (&item.what, &item.voice) {
                if !found.iter().any(|(k, _)| k == v) {
                    found.push((v.clone(), item.staff.unwrap_or(1)));
                }
            }
        }
    }
    if found.is_empty() {
        found.push(("1".to_owned(), 1));
    }
    found.sort_by(|a, b| match (a.0.parse::<u64>(), b.0.parse::<u64>()) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        _ => a.0.cmp(&b.0),
    });
    let single = found.len() == 1;
    found
        .into_iter()
        .enumerate()
        .map(|(k, (key, staff))| VoicePlan {
            key,
            id: if single {
                part.number.to_string()
            } else {
                format!("{}.{}", part.number, k + 1)
            },
            staff,
        })
        .collect()
}

/// The items of measure `m` that voice `k` writes: its notes; directions and chord symbols
/// for it (those naming no voice go to the first voice of their staff); keys and meters;
/// clefs of its staff.
fn voice_items<'a>(plan: &[VoicePlan], k: usize, m: &'a Measure) -> Vec<&'a Item> {
    let me = &plan[k];
    let first_on_staff = |staff: Option<u32>| {
        let staff = staff.unwrap_or(1);
        plan.iter().position(|v| v.staff == staff).unwrap_or(0)
    };
    let mut items: Vec<&Item> = m
        .items
        .iter()
        .filter(|item| match &item.what {
            What::Note(_) => item.voice.as_deref() == Some(me.key.as_str()),
            What::Key(_) | What::Meter(_) => true,
            What::Clef(_) => item.staff.unwrap_or(1) == me.staff,
            What::Decoration(_) | What::Harmony(_) => match &item.voice {
                Some(v) if plan.iter().any(|p| &p.key == v) => v == &me.key,
                _ => first_on_staff(item.staff) == k,
            },
        })
        .collect();
    // In time order; at one time, document order (grace notes before their note, chord
    // notes after their head).
    items.sort_by_key(|item| item.at);
    items
}

/// What a voice carries from measure to measure.
struct VoiceState {
    key: KeySig,
    meter: String,
    clef: Option<String>,
}

struct MeasureWriter<'a> {
    out: &'a mut String,
    /// `L:1/unit`.
    unit: i128,
    state: &'a mut VoiceState,
    /// Alterations written so far in this bar, by (letter, octave).
    accidentals: HashMap<(u8, i8), i8>,
}

/// A note with its chord notes, and the grace notes before it.
struct Group<'a> {
    at: Frac,
    graces: Vec<&'a Note>,
    notes: Vec<&'a Note>,
}

impl MeasureWriter<'_> {
    fn measure(&mut self, m: &Measure, items: &[&Item]) {
        if m.repeat_forward {
            self.out.push_str("|: ");
        }
        if let Some(e) = &m.ending {
            let _ = write!(self.out, "[{e} ");
        }
        // Attachments (fields, decorations, chord symbols) wait for the next note.
        let mut pending: Vec<&Item> = Vec::new();
        let mut groups: Vec<(Group, Vec<&Item>)> = Vec::new();
        let mut graces: Vec<&Note> = Vec::new();
        for &item in items {
            match &item.what {
                What::Note(n) if n.grace => graces.push(n),
                What::Note(n) if n.chord => match groups.last_mut() {
                    Some((g, _)) if g.at == item.at && !g.notes.is_empty() => g.notes.push(n),
                    // A chord note with no head at its time: it stands alone.
                    _ => groups.push((
                        Group {
                            at: item.at,
                            graces: std::mem::take(&mut graces),
                            notes: vec![n],
                        },
                        std::mem::take(&mut pending),
                    )),
                },
                What::Note(n) => groups.push((
                    Group {
                        at: item.at,
                        graces: std::mem::take(&mut graces),
                        notes: vec![n],
                    },
                    std::mem::take(&mut pending),
                )),
                _ => pending.push(item),
            }
        }
        let mut cursor = Frac::ZERO;
        let mut i = 0;
        while i < groups.len() {
            let at = groups[i].0.at;
            if at > cursor {
                self.fields(&groups[i].1);
                self.rest('x', at.sub(cursor));
                self.out.push(' ');
                cursor = at;
            }
            // A run of notes under one time modification, back to back: one tuplet.
            let tuplet = groups[i].0.notes[0]
                .tuplet
                .filter(|&(a, n)| a <= MAX_TUPLET && n <= MAX_TUPLET);
            let mut run = 1;
            if tuplet.is_some() {
                let mut t = cursor.max(at).add(groups[i].0.notes[0].length);
                while i + run < groups.len()
                    && run < MAX_TUPLET as usize
                    && groups[i + run].0.notes[0].tuplet == tuplet
                    && groups[i + run].0.at == t
                {
                    t = t.add(groups[i + run].0.notes[0].length);
                    run += 1;
                }
            }
            for (j, (g, attached)) in groups[i..i + run].iter().enumerate() {
                self.fields(attached);
                if j == 0 {
                    if let Some((a, n)) = tuplet {
                        let _ = write!(self.out, "({a}:{n}:{run}");
                    }
                }
                self.group(g, attached, tuplet);
                cursor = cursor.max(g.at).add(g.notes[0].length);
            }
            i += run;
        }
        // What no note followed: fields still apply; decorations and chord symbols need a note.
        self.fields(&pending);
        if !graces.is_empty() {
            self.graces(&graces);
        }
        if cursor < m.length || groups.is_empty() {
            self.rest('x', m.length.sub(cursor));
        }
        self.out.push(' ');
        self.out.push_str(match (m.repeat_backward, m.right) {
            (true, _) => ":|",
            (false, BarStyle::Final) => "|]",
            (false, BarStyle::Double) => "||",
            (false, BarStyle::Regular) => "|",
        });
    }

    /// Key, meter and clef changes among `items`, as inline fields: only real changes, so the
    /// first measure writes none where the header already says it.
    fn fields(&mut self, items: &[&Item]) {
        for item in items {
            match &item.what {
                What::Key(k) if *k != self.state.key => {
                    let _ = write!(self.out, "[K:{}] ", k.abc);
                    self.state.key = k.clone();
                    self.accidentals.clear();
                }
                What::Meter(m) if *m != self.state.meter => {
                    let _ = write!(self.out, "[M:{m}] ");
                    self.state.meter = m.clone();
                }
                What::Clef(c) if Some(c) != self.state.clef.as_ref() => {
                    let _ = write!(self.out, "[K:clef={c}] ");
                    self.state.clef = Some(c.clone());
                }
                _ => {}
            }
        }
    }

    fn attachments(&mut self, items: &[&Item]) {
        for item in items {
            if let What::Harmony(h) = &item.what {
                let _ = write!(self.out, "\"{h}\"");
            }
        }
        for item in items {
            if let What::Decoration(d) = &item.what {
                self.out.push_str(d);
            }
        }
    }

    fn group(&mut self, g: &Group, attached: &[&Item], tuplet: Option<(u32, u32)>) {
        if !g.graces.is_empty() {
            self.graces(&g.graces);
        }
        self.attachments(attached);
        let head = g.notes[0];
        // Lengths are written as the score shows them: a triplet eighth is an eighth in `(3`.
        let written = |n: &Note| match tuplet {
            Some((a, b)) => n.length.mul(Frac::new(a.into(), b.into())),
            None => n.length,
        };
        let mut seen = Vec::new();
        for n in &g.notes {
            for d in &n.decorations {
                if !seen.contains(&d) {
                    seen.push(d);
                    self.out.push_str(d);
                }
            }
        }
        let sounding: Vec<&Note> = g
            .notes
            .iter()
            .copied()
            .filter(|n| n.pitch.is_some() && !n.invisible)
            .collect();
        if sounding.is_empty() {
            let c = if head.invisible { 'x' } else { 'z' };
            self.rest(c, written(head));
            return;
        }
        if sounding.len() == 1 {
            self.note(sounding[0], false);
            self.out.push_str(&length(written(sounding[0]), self.unit));
            if sounding[0].tie_start {
                self.out.push('-');
            }
            return;
        }
        let same = sounding.iter().all(|n| n.length == head.length);
        self.out.push('[');
        for n in &sounding {
            self.note(n, false);
            if !same {
                self.out.push_str(&length(written(n), self.unit));
            }
            if n.tie_start {
                self.out.push('-');
            }
        }
        self.out.push(']');
        if same {
            self.out.push_str(&length(written(head), self.unit));
        }
    }

    fn graces(&mut self, graces: &[&Note]) {
        let notes: Vec<&&Note> = graces
            .iter()
            .filter(|n| n.pitch.is_some() && !n.invisible)
            .collect();
        if notes.is_empty() {
            return;
        }
        self.out.push('{');
        for n in notes {
            self.note(n, true);
        }
        self.out.push('}');
    }

    /// A rest of `len`: `z`, or `x` for one nobody sees (hidden rests, cue notes, fillers).
    fn rest(&mut self, c: char, len: Frac) {
        self.out.push(c);
        self.out.push_str(&length(len, self.unit));
    }

    /// A note head: accidental where the bar's state needs one (or the score prints one),
    /// letter, octave marks. Grace notes write what they need but change no state, since ABC
    /// readers differ on whether their accidentals carry.
    fn note(&mut self, n: &Note, grace: bool) {
        let Some(p) = n.pitch else { return };
        let current = self
            .accidentals
            .get(&(p.step, p.octave))
            .copied()
            .unwrap_or(self.state.key.alters[p.step as usize]);
        if p.alter != current || n.accidental_shown {
            self.out.push_str(match p.alter {
                2 => "^^",
                1 => "^",
                -1 => "_",
                -2 => "__",
                _ => "=",
            });
            if !grace {
                self.accidentals.insert((p.step, p.octave), p.alter);
            }
        }
        let letter = b"CDEFGAB"[p.step as usize] as char;
        if p.octave >= 5 {
            self.out.push(letter.to_ascii_lowercase());
            for _ in 5..p.octave {
                self.out.push('\'');
            }
        } else {
            self.out.push(letter);
            for _ in p.octave..4 {
                self.out.push(',');
            }
        }
    }
}

/// `len` in units of `L:1/unit`: "", "2", "/", "/4", "3/2".
fn length(len: Frac, unit: i128) -> String {
    let r = len.mul(Frac::new(unit, 1));
    if !r.is_positive() {
        return String::new();
    }
    match (r.num(), r.den()) {
        (1, 1) => String::new(),
        (n, 1) => n.to_string(),
        (1, 2) => "/".to_owned(),
        (1, d) => format!("/{d}"),
        (n, d) => format!("{n}/{d}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_in_units() {
        assert_eq!(length(Frac::new(1, 8), 8), "");
        assert_eq!(length(Frac::new(1, 4), 8), "2");
        assert_eq!(length(Frac::new(1, 16), 8), "/");
        assert_eq!(length(Frac::new(3, 16), 8), "3/2");
        assert_eq!(length(Frac::new(1, 32), 8), "/4");
        assert_eq!(length(Frac::new(1, 12), 8), "2/3");
    }
}
