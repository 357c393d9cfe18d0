//! MusicXML text → [`Score`]. Partwise and timewise documents both become parts of measures
//! (a timewise score is regrouped by part id). Each measure is read as MusicXML plays it: a
//! time cursor moved by notes, `<backup>` and `<forward>`, with chord notes at the onset of
//! the note before them and grace notes taking no time.
//!
//! Nothing here fails on odd music: unreadable numbers, unknown elements and microtones
//! become warnings naming the part and measure, and the music around them is kept.

use std::collections::{HashMap, HashSet};

use roxmltree::{Document, Node, ParsingOptions};

use super::error::{MusicXmlError, Warning};
use super::frac::Frac;
use super::names;
use super::score::{BarStyle, Item, KeySig, Measure, Note, Part, Pitch, Score, What};

/// Divisions per quarter note are clamped to this (real scores use up to a few thousand).
const MAX_DIVISIONS: i64 = 10_000_000;
/// Durations in divisions are clamped to this.
const MAX_DURATION: i64 = 1_000_000_000;

pub fn read(text: &str, name: &str, warnings: &mut Vec<Warning>) -> Result<Score, MusicXmlError> {
    let options = ParsingOptions {
        // MusicXML files start with a DOCTYPE naming the public DTD; it is never fetched.
        allow_dtd: true,
        ..ParsingOptions::default()
    };
    let doc = Document::parse_with_options(text, options).map_err(|e| {
        let pos = e.pos();
        MusicXmlError::Xml {
            name: name.to_owned(),
            line: pos.row,
            col: pos.col,
            message: e.to_string(),
        }
    })?;
    let root = doc.root_element();
    let timewise = match root.tag_name().name() {
        "score-partwise" => false,
        "score-timewise" => true,
        other => {
            return Err(MusicXmlError::NotMusicXml {
                name: name.to_owned(),
                reason: format!(
                    "the root element is <{other}>, not <score-partwise> or <score-timewise>"
                ),
            })
        }
    };
    let mut score = Score {
        title: child(root, "work")
            .and_then(|w| text_of(w, "work-title"))
            .or_else(|| text_of(root, "movement-title")),
        composer: child(root, "identification").and_then(|id| {
            id.children()
                .find(|c| c.has_tag_name("creator") && c.attribute("type") == Some("composer"))
                .and_then(|c| c.text())
                .map(clean_text)
                .filter(|t| !t.is_empty())
        }),
        parts: Vec::new(),
    };
    let part_names: HashMap<&str, String> = child(root, "part-list")
        .into_iter()
        .flat_map(|pl| pl.children().filter(|c| c.has_tag_name("score-part")))
        .filter_map(|sp| Some((sp.attribute("id")?, text_of(sp, "part-name")?)))
        .collect();

    // (part id, [(the <measure> element, the element holding its music)]).
    let mut parts: Vec<(String, Vec<(Node, Node)>)> = Vec::new();
    if timewise {
        let mut at: HashMap<String, usize> = HashMap::new();
        for measure in root.children().filter(|c| c.has_tag_name("measure")) {
            for part in measure.children().filter(|c| c.has_tag_name("part")) {
                let id = part.attribute("id").unwrap_or("").to_owned();
                let i = *at.entry(id.clone()).or_insert_with(|| {
                    parts.push((id, Vec::new()));
                    parts.len() - 1
                });
                parts[i].1.push((measure, part));
            }
        }
    } else {
        for part in root.children().filter(|c| c.has_tag_name("part")) {
            let id = part.attribute("id").unwrap_or("").to_owned();
            let measures = part
                .children()
                .filter(|c| c.has_tag_name("measure"))
                .map(|m| (m, m))
                .collect();
            parts.push((id, measures));
        }
    }
    for (i, (id, measures)) in parts.into_iter().enumerate() {
        if measures.is_empty() {
            continue;
        }
        let mut reader = PartReader {
            part: i as u32 + 1,
            divisions: 1,
            wedge: None,
            unknown: HashSet::new(),
            warnings,
        };
        let measures = measures
            .iter()
            .enumerate()
            .map(|(m, &(attrs, content))| reader.measure(m, attrs, content))
            .collect();
        score.parts.push(Part {
            number: i as u32 + 1,
            name: part_names.get(id.as_str()).cloned(),
            id,
            measures,
        });
    }
    if score.parts.is_empty() {
        return Err(MusicXmlError::Empty {
            name: name.to_owned(),
        });
    }
    Ok(score)
}

fn child<'a, 'i>(node: Node<'a, 'i>, tag: &str) -> Option<Node<'a, 'i>> {
    node.children().find(|c| c.has_tag_name(tag))
}

fn text_of(node: Node, tag: &str) -> Option<String> {
    child(node, tag)
        .and_then(|c| c.text())
        .map(clean_text)
        .filter(|t| !t.is_empty())
}

/// One line of text, as header fields need it.
fn clean_text(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Elements of a measure that carry nothing ABC writes: skipped without a warning.
const IGNORED: &[&str] = &[
    "print",
    "sound",
    "figured-bass",
    "bookmark",
    "link",
    "grouping",
    "listening",
];

struct PartReader<'w> {
    part: u32,
    /// Divisions per quarter note in force (they carry from measure to measure).
    divisions: i64,
    /// The wedge opened and not yet closed, so its stop says which one ends.
    wedge: Option<&'static str>,
    /// Unknown element names already warned about in this part.
    unknown: HashSet<String>,
    warnings: &'w mut Vec<Warning>,
}

impl PartReader<'_> {
    fn warn(&mut self, measure: &str, message: String) {
        self.warnings.push(Warning {
            part: Some(self.part),
            measure: Some(measure.to_owned()),
            message,
        });
    }

    /// A length in divisions as whole notes.
    fn whole(&self, divisions: i64) -> Frac {
        Frac::new(divisions.into(), 4 * i128::from(self.divisions))
    }

    /// An integer child such as `<duration>`, clamped; a decimal is rounded with a warning.
    fn number(&mut self, node: Node, tag: &str, measure: &str, max: i64) -> Option<i64> {
        let text = node
            .children()
            .find(|c| c.has_tag_name(tag))?
            .text()?
            .trim();
        if let Ok(n) = text.parse::<i64>() {
            return Some(n.clamp(-max, max));
        }
        match text.parse::<f64>() {
            Ok(x) if x.is_finite() => {
                self.warn(
                    measure,
                    format!("<{tag}> {text} is not a whole number; rounded"),
                );
                Some((x.round() as i64).clamp(-max, max))
            }
            _ => {
                self.warn(
                    measure,
                    format!("<{tag}> {text:?} is not a number; ignored"),
                );
                None
            }
        }
    }

    fn measure(&mut self, index: usize, attrs: Node, content: Node) -> Measure {
        let number = attrs
            .attribute("number")
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map_or_else(|| (index + 1).to_string(), str::to_owned);
        let mut m = Measure {
            number: number.clone(),
            ..Measure::default()
        };
        let mut cursor = Frac::ZERO;
        let mut last_onset = Frac::ZERO;
        for node in content.children().filter(Node::is_element) {
            match node.tag_name().name() {
                "note" => {
                    let Some((note, voice, staff)) = self.note(node, &number) else {
                        continue;
                    };
                    let at = if note.chord { last_onset } else { cursor };
                    if !note.chord && !note.grace {
                        last_onset = cursor;
                        cursor = cursor.add(note.length);
                        m.length = m.length.max(cursor);
                    }
                    m.items.push(Item {
                        at,
                        voice: Some(voice),
                        staff,
                        what: What::Note(note),
                    });
                }
                "backup" | "forward" => {
                    let d = self
                        .number(node, "duration", &number, MAX_DURATION)
                        .unwrap_or(0)
                        .max(0);
                    let d = self.whole(d);
                    if node.has_tag_name("backup") {
                        cursor = cursor.sub(d);
                        if cursor < Frac::ZERO {
                            self.warn(
                                &number,
                                "<backup> before the start of the measure".to_owned(),
                            );
                            cursor = Frac::ZERO;
                        }
                    } else {
                        cursor = cursor.add(d);
                        m.length = m.length.max(cursor);
                    }
                }
                "attributes" => self.attributes(node, &number, cursor, &mut m),
                "direction" => self.direction(node, &number, cursor, &mut m),
                "harmony" => {
                    if let Some(symbol) = harmony(node) {
                        let at = self.offset(node, &number, cursor);
                        m.items.push(Item {
                            at,
                            voice: None,
                            staff: staff(node),
                            what: What::Harmony(symbol),
                        });
                    }
                }
                "barline" => barline(node, &mut m),
                tag if IGNORED.contains(&tag) => {}
                tag => {
                    if self.unknown.insert(tag.to_owned()) {
                        self.warn(&number, format!("unknown element <{tag}> skipped"));
                    }
                }
            }
        }
        m
    }

    /// `<offset>` moves a direction or harmony from the cursor (in divisions).
    fn offset(&mut self, node: Node, measure: &str, cursor: Frac) -> Frac {
        let off = self
            .number(node, "offset", measure, MAX_DURATION)
            .unwrap_or(0);
        cursor.add(self.whole(off)).max(Frac::ZERO)
    }

    fn note(&mut self, node: Node, measure: &str) -> Option<(Note, String, Option<u32>)> {
        let has = |tag: &str| node.children().any(|c| c.has_tag_name(tag));
        let grace = has("grace");
        let cue = has("cue");
        let pitch = if let Some(p) = child(node, "pitch") {
            Some(self.pitch(p, "step", "octave", measure))
        } else if let Some(p) = child(node, "unpitched") {
            Some(self.pitch(p, "display-step", "display-octave", measure))
        } else if has("rest") {
            None
        } else {
            self.warn(
                measure,
                "a <note> without <pitch>, <unpitched> or <rest> skipped".to_owned(),
            );
            return None;
        };
        let tuplet = child(node, "time-modification").and_then(|tm| {
            let n = |tag| {
                text_of(tm, tag)
                    .and_then(|t| t.parse::<u32>().ok())
                    .map(|n| n.clamp(1, 1000))
            };
            Some((n("actual-notes")?, n("normal-notes")?)).filter(|(a, b)| a != b)
        });
        let length = if grace {
            Frac::ZERO
        } else {
            match self.number(node, "duration", measure, MAX_DURATION) {
                Some(d) => self.whole(d.max(0)),
                None => {
                    let typed = note_type(node, tuplet);
                    if typed.is_none() {
                        self.warn(
                            measure,
                            "a note with neither <duration> nor <type>: taken as a quarter"
                                .to_owned(),
                        );
                    }
                    typed.unwrap_or(Frac::new(1, 4))
                }
            }
        };
        let notations: Vec<Node> = node
            .children()
            .filter(|c| c.has_tag_name("notations"))
            .collect();
        let tie_start = node
            .children()
            .chain(notations.iter().flat_map(|n| n.children()))
            .any(|c| {
                (c.has_tag_name("tie") || c.has_tag_name("tied"))
                    && c.attribute("type") == Some("start")
            });
        let mut decorations = Vec::new();
        for n in &notations {
            for c in n.children().filter(Node::is_element) {
                let tag = c.tag_name().name();
                match tag {
                    "articulations" | "ornaments" | "technical" | "dynamics" => {
                        for mark in c.children().filter(Node::is_element) {
                            let t = mark.tag_name().name();
                            let d = if t == "fingering" {
                                mark.text().and_then(names::fingering)
                            } else if tag == "dynamics" {
                                names::dynamic(t).map(str::to_owned)
                            } else {
                                names::notation(t, mark.attribute("type")).map(str::to_owned)
                            };
                            decorations.extend(d);
                        }
                    }
                    _ => decorations
                        .extend(names::notation(tag, c.attribute("type")).map(str::to_owned)),
                }
            }
        }
        let mut seen = HashSet::new();
        decorations.retain(|d| seen.insert(d.clone()));
        let voice = text_of(node, "voice").unwrap_or_else(|| "1".to_owned());
        let hidden = node.attribute("print-object") == Some("no");
        let note = Note {
            invisible: cue || (pitch.is_none() && hidden),
            pitch,
            length,
            tuplet,
            chord: has("chord"),
            grace,
            tie_start,
            accidental_shown: has("accidental"),
            decorations,
        };
        Some((note, voice, staff(node)))
    }

    fn pitch(&mut self, p: Node, step_tag: &str, octave_tag: &str, measure: &str) -> Pitch {
        let step = text_of(p, step_tag)
            .and_then(|s| "CDEFGAB".find(s.trim()).filter(|_| s.trim().len() == 1))
            .unwrap_or_else(|| {
                self.warn(
                    measure,
                    format!("<{step_tag}> is not one of C D E F G A B; taken as C"),
                );
                0
            }) as u8;
        let alter = match text_of(p, "alter") {
            None => 0,
            Some(t) => match t.parse::<f64>() {
                Ok(x) if x.is_finite() => {
                    if x.fract() != 0.0 {
                        self.warn(
                            measure,
                            format!("microtone <alter>{t}</alter> rounded to the nearest semitone"),
                        );
                    }
                    x.round().clamp(-2.0, 2.0) as i8
                }
                _ => {
                    self.warn(measure, format!("<alter> {t:?} is not a number; ignored"));
                    0
                }
            },
        };
        let octave = text_of(p, octave_tag)
            .and_then(|t| t.parse::<i32>().ok())
            .unwrap_or(4)
            .clamp(0, 9) as i8;
        Pitch {
            step,
            alter,
            octave,
        }
    }

    fn attributes(&mut self, node: Node, measure: &str, at: Frac, m: &mut Measure) {
        if let Some(d) = self.number(node, "divisions", measure, MAX_DIVISIONS) {
            if d <= 0 {
                self.warn(
                    measure,
                    format!("<divisions> {d} is not positive; kept {}", self.divisions),
                );
            } else {
                self.divisions = d;
            }
        }
        // One key for the whole part: the first `<key>` (multi-staff parts repeat it per staff).
        if let Some(k) = child(node, "key") {
            let fifths = text_of(k, "fifths").and_then(|t| t.parse::<i32>().ok());
            let value = match fifths {
                Some(f) => KeySig {
                    abc: names::key(f, text_of(k, "mode").as_deref()),
                    alters: names::signature(f),
                },
                None => non_traditional_key(k),
            };
            m.items.push(Item {
                at,
                voice: None,
                staff: None,
                what: What::Key(value),
            });
        }
        if let Some(t) = child(node, "time") {
            let mut beats = Vec::new();
            let mut pending = None;
            for c in t.children().filter(Node::is_element) {
                match c.tag_name().name() {
                    "beats" => pending = c.text().map(str::to_owned),
                    "beat-type" => {
                        if let (Some(b), Some(bt)) = (pending.take(), c.text()) {
                            beats.push((b, bt.to_owned()));
                        }
                    }
                    _ => {}
                }
            }
            let senza = t.children().any(|c| c.has_tag_name("senza-misura"));
            let value = names::meter(&beats, t.attribute("symbol"), senza);
            m.items.push(Item {
                at,
                voice: None,
                staff: None,
                what: What::Meter(value),
            });
        }
        for c in node.children().filter(|c| c.has_tag_name("clef")) {
            let sign = text_of(c, "sign").unwrap_or_default();
            let line = text_of(c, "line").and_then(|t| t.parse().ok());
            let change = text_of(c, "clef-octave-change")
                .and_then(|t| t.parse().ok())
                .unwrap_or(0);
            match names::clef(&sign, line, change) {
                Some(value) => m.items.push(Item {
                    at,
                    voice: None,
                    staff: Some(
                        c.attribute("number")
                            .and_then(|n| n.parse().ok())
                            .unwrap_or(1),
                    ),
                    what: What::Clef(value),
                }),
                None => self.warn(
                    measure,
                    format!("clef sign {sign:?} has no ABC name; skipped"),
                ),
            }
        }
    }

    fn direction(&mut self, node: Node, measure: &str, cursor: Frac, m: &mut Measure) {
        let at = self.offset(node, measure, cursor);
        let voice = text_of(node, "voice");
        let staff = staff(node);
        for dt in node.children().filter(|c| c.has_tag_name("direction-type")) {
            for c in dt.children().filter(Node::is_element) {
                let tag = c.tag_name().name();
                let mut marks: Vec<String> = Vec::new();
                match tag {
                    "dynamics" => marks.extend(
                        c.children()
                            .filter(Node::is_element)
                            .filter_map(|d| names::dynamic(d.tag_name().name()))
                            .map(str::to_owned),
                    ),
                    "wedge" => match c.attribute("type") {
                        Some("stop") => {
                            if let Some(open) = self.wedge.take() {
                                marks.push(open.replace('(', ")"));
                            }
                        }
                        kind => {
                            if let Some(d) = names::direction(tag, kind) {
                                self.wedge = Some(d);
                                marks.push(d.to_owned());
                            }
                        }
                    },
                    _ => marks.extend(names::direction(tag, None).map(str::to_owned)),
                }
                for mark in marks {
                    m.items.push(Item {
                        at,
                        voice: voice.clone(),
                        staff,
                        what: What::Decoration(mark),
                    });
                }
            }
        }
    }
}

fn staff(node: Node) -> Option<u32> {
    text_of(node, "staff").and_then(|t| t.parse().ok())
}

/// The length a note's `<type>`, dots and tuplet say, for a note without `<duration>`.
fn note_type(node: Node, tuplet: Option<(u32, u32)>) -> Option<Frac> {
    let base = match text_of(node, "type")?.as_str() {
        "maxima" => Frac::int(8),
        "long" => Frac::int(4),
        "breve" => Frac::int(2),
        "whole" => Frac::int(1),
        "half" => Frac::new(1, 2),
        "quarter" => Frac::new(1, 4),
        "eighth" => Frac::new(1, 8),
        "16th" => Frac::new(1, 16),
        "32nd" => Frac::new(1, 32),
        "64th" => Frac::new(1, 64),
        "128th" => Frac::new(1, 128),
        "256th" => Frac::new(1, 256),
        "512th" => Frac::new(1, 512),
        "1024th" => Frac::new(1, 1024),
        _ => return None,
    };
    let dots = node
        .children()
        .filter(|c| c.has_tag_name("dot"))
        .count()
        .min(8) as u32;
    // A dotted length is base × (2 − 1/2^dots).
    let dotted = base.mul(Frac::new((1 << (dots + 1)) - 1, 1 << dots));
    Some(match tuplet {
        Some((actual, normal)) => dotted.mul(Frac::new(normal.into(), actual.into())),
        None => dotted,
    })
}

/// `<key-step>`/`<key-alter>` pairs as `K:C ^f _b` (the explicit accidentals of ABC 2.1).
fn non_traditional_key(k: Node) -> KeySig {
    let mut out = "C".to_owned();
    let mut alters = [0i8; 7];
    let mut step: Option<String> = None;
    for c in k.children().filter(Node::is_element) {
        match c.tag_name().name() {
            "key-step" => step = c.text().map(|s| s.trim().to_ascii_lowercase()),
            "key-alter" => {
                let alter = c
                    .text()
                    .and_then(|t| t.trim().parse::<f64>().ok())
                    .unwrap_or(0.0)
                    .round();
                if let Some(s) = step
                    .take()
                    .filter(|s| s.len() == 1 && "cdefgab".contains(s.as_str()))
                {
                    let acc = match alter as i32 {
                        1 => "^",
                        2 => "^^",
                        -1 => "_",
                        -2 => "__",
                        _ => "=",
                    };
                    out.push_str(&format!(" {acc}{s}"));
                    let step = "cdefgab".find(s.as_str()).unwrap_or(0);
                    alters[step] = (alter as i8).clamp(-2, 2);
                }
            }
            _ => {}
        }
    }
    KeySig { abc: out, alters }
}

fn harmony(node: Node) -> Option<String> {
    let part = |outer: &str, step: &str, alter: &str| -> Option<(String, i32)> {
        let o = child(node, outer)?;
        let s = text_of(o, step)?;
        let a = text_of(o, alter)
            .and_then(|t| t.parse::<f64>().ok())
            .unwrap_or(0.0)
            .round() as i32;
        Some((s, a))
    };
    let (root, alter) = part("root", "root-step", "root-alter")?;
    if !(root.len() == 1 && "ABCDEFG".contains(root.as_str())) {
        return None;
    }
    let kind = child(node, "kind");
    let kind_text = kind.and_then(|k| k.attribute("text"));
    let kind_name = kind.and_then(|k| k.text()).unwrap_or("");
    let bass = part("bass", "bass-step", "bass-alter");
    Some(names::harmony(
        (&root, alter),
        kind_name,
        kind_text,
        bass.as_ref().map(|(s, a)| (s.as_str(), *a)),
    ))
}

fn barline(node: Node, m: &mut Measure) {
    let location = node.attribute("location").unwrap_or("right");
    let style = text_of(node, "bar-style");
    let repeat = child(node, "repeat").and_then(|r| r.attribute("direction"));
    match location {
        "left" => {
            if repeat == Some("forward") {
                m.repeat_forward = true;
            }
            if let Some(e) = child(node, "ending").filter(|e| e.attribute("type") == Some("start"))
            {
                let number: String = e
                    .attribute("number")
                    .unwrap_or("1")
                    .chars()
                    .filter(|c| c.is_ascii_digit() || *c == ',' || *c == '-')
                    .collect();
                let number = number.trim_matches(|c| c == ',' || c == '-').to_owned();
                m.ending = Some(if number.is_empty() {
                    "1".to_owned()
                } else {
                    number
                });
            }
        }
        "right" => {
            if repeat == Some("backward") {
                m.repeat_backward = true;
            }
            m.right = match style.as_deref() {
                Some("light-light") | Some("heavy-heavy") | Some("heavy-light") => BarStyle::Double,
                Some("light-heavy") | Some("heavy") => BarStyle::Final,
                _ => m.right,
            };
        }
        _ => {}
    }
}
