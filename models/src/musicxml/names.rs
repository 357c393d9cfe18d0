//! MusicXML names and numbers in ABC 2.1's words: keys, clefs, meters, decorations and chord
//! symbols. Only what ABC can say is mapped; the rest returns `None` and is left out.

/// `K:` from `<fifths>` and `<mode>`: `-3, minor` → `Cm`.
pub fn key(fifths: i32, mode: Option<&str>) -> String {
    let mode = mode.unwrap_or("major").trim().to_ascii_lowercase();
    // Each mode's tonic in fifths from the major tonic of the same signature.
    let (shift, suffix) = match mode.as_str() {
        "minor" | "aeolian" => (3, "m"),
        "dorian" => (2, "dor"),
        "phrygian" => (4, "phr"),
        "lydian" => (-1, "lyd"),
        "mixolydian" => (1, "mix"),
        "locrian" => (5, "loc"),
        _ => (0, ""),
    };
    let fifths = fifths.clamp(-7, 7);
    format!("{}{suffix}", tonic(fifths + shift))
}

/// The alteration of each letter C..B under `fifths` sharps (negative: flats).
pub fn signature(fifths: i32) -> [i8; 7] {
    // Sharps come in the order F C G D A E B; flats in the reverse order.
    const ORDER: [usize; 7] = [3, 0, 4, 1, 5, 2, 6];
    let mut alters = [0i8; 7];
    let n = fifths.clamp(-7, 7);
    for i in 0..n.unsigned_abs() as usize {
        if n > 0 {
            alters[ORDER[i]] = 1;
        } else {
            alters[ORDER[6 - i]] = -1;
        }
    }
    alters
}

/// The note `i` fifths above C, spelled: 0 → C, 1 → G, -1 → F, 6 → F#, -2 → Bb.
fn tonic(i: i32) -> String {
    let letters = ['F', 'C', 'G', 'D', 'A', 'E', 'B'];
    let letter = letters[(i + 1).rem_euclid(7) as usize];
    let sharps = (i + 1).div_euclid(7);
    let accidental = match sharps {
        1 => "#",
        -1 => "b",
        2 => "##",
        -2 => "bb",
        _ => "",
    };
    format!("{letter}{accidental}")
}

/// The ABC `clef=` value of `<sign>`, `<line>` and `<clef-octave-change>`.
pub fn clef(sign: &str, line: Option<i32>, octave_change: i32) -> Option<String> {
    let base = match (sign.trim(), line) {
        ("G", None | Some(2)) => "treble".to_owned(),
        ("G", Some(l)) => format!("treble{l}"),
        ("F", None | Some(4)) => "bass".to_owned(),
        ("F", Some(l)) => format!("bass{l}"),
        ("C", None | Some(3)) => "alto".to_owned(),
        ("C", Some(4)) => "tenor".to_owned(),
        ("C", Some(l)) => format!("alto{l}"),
        ("percussion", _) => "perc".to_owned(),
        ("none", _) => "none".to_owned(),
        // TAB and jianpu staves: the notes are still pitches on a treble staff.
        ("TAB", _) => "treble".to_owned(),
        _ => return None,
    };
    Some(match octave_change {
        -1 => format!("{base}-8"),
        1 => format!("{base}+8"),
        _ => base,
    })
}

/// An ABC `M:` value: `C`, `C|`, `3/4`, `3+2/8`, `none`.
pub fn meter(beats: &[(String, String)], symbol: Option<&str>, senza_misura: bool) -> String {
    if senza_misura || beats.is_empty() {
        return "none".to_owned();
    }
    match (symbol, beats) {
        (Some("common"), [(b, t)]) if b == "4" && t == "4" => return "C".to_owned(),
        (Some("cut"), [(b, t)]) if b == "2" && t == "2" => return "C|".to_owned(),
        _ => {}
    }
    // Composite meters (`3/8 + 2/8`) become one fraction over the largest beat type.
    let clean = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii_digit() || *c == '+')
            .collect()
    };
    if let [(b, t)] = beats {
        let (b, t) = (clean(b), clean(t));
        if !b.is_empty() && !t.is_empty() && !t.contains('+') {
            return format!("{b}/{t}");
        }
    }
    let mut total = (0u64, 1u64);
    for (b, t) in beats {
        let beats: u64 = b
            .split('+')
            .filter_map(|x| x.trim().parse::<u64>().ok())
            .sum();
        let Ok(t) = t.trim().parse::<u64>() else {
            continue;
        };
        if t == 0 || t > 1024 {
            continue;
        }
        let den = total.1.max(t);
        total = (
            total.0 * (den / total.1) + beats.min(1 << 20) * (den / t),
            den,
        );
    }
    if total.0 == 0 {
        "none".to_owned()
    } else {
        format!("{}/{}", total.0, total.1)
    }
}

/// A MusicXML dynamics element (`<p/>`, `<sfz/>`) as an ABC 2.1 decoration.
pub fn dynamic(tag: &str) -> Option<&'static str> {
    Some(match tag {
        "pppp" | "ppppp" | "pppppp" => "!pppp!",
        "ppp" => "!ppp!",
        "pp" => "!pp!",
        "p" => "!p!",
        "mp" => "!mp!",
        "mf" => "!mf!",
        "f" => "!f!",
        "ff" => "!ff!",
        "fff" => "!fff!",
        "ffff" | "fffff" | "ffffff" => "!ffff!",
        "sfz" | "sf" | "sffz" | "fz" | "rfz" | "rf" => "!sfz!",
        _ => return None,
    })
}

/// Articulations, ornaments and technical marks as ABC 2.1 decorations.
pub fn notation(tag: &str, kind: Option<&str>) -> Option<&'static str> {
    Some(match tag {
        "staccato" => ".",
        "accent" | "strong-accent" => "!>!",
        "tenuto" => "!tenuto!",
        "staccatissimo" | "spiccato" => "!wedge!",
        "breath-mark" => "!breath!",
        "fermata" if kind == Some("inverted") => "!invertedfermata!",
        "fermata" => "!fermata!",
        "trill-mark" => "!trill!",
        "mordent" => "!lowermordent!",
        "inverted-mordent" => "!uppermordent!",
        "turn" | "delayed-turn" => "!turn!",
        "inverted-turn" => "!invertedturn!",
        "up-bow" => "!upbow!",
        "down-bow" => "!downbow!",
        "open-string" => "!open!",
        "snap-pizzicato" => "!snap!",
        "thumb-position" => "!thumb!",
        "stopped" => "!+!",
        "arpeggiate" => "!arpeggio!",
        "slide" | "glissando" => "!slide!",
        _ => return None,
    })
}

/// A `<fingering>` as `!0!`..`!5!`.
pub fn fingering(text: &str) -> Option<String> {
    let t = text.trim();
    (t.len() == 1 && matches!(t.as_bytes()[0], b'0'..=b'5')).then(|| format!("!{t}!"))
}

/// Direction marks: segno, coda, wedges.
pub fn direction(tag: &str, kind: Option<&str>) -> Option<&'static str> {
    Some(match (tag, kind) {
        ("segno", _) => "!segno!",
        ("coda", _) => "!coda!",
        ("wedge", Some("crescendo")) => "!crescendo(!",
        ("wedge", Some("diminuendo")) => "!diminuendo(!",
        _ => return None,
    })
}

/// A chord symbol: root, kind, bass. `kind_text` is what the score prints, when it says.
pub fn harmony(
    root: (&str, i32),
    kind: &str,
    kind_text: Option<&str>,
    bass: Option<(&str, i32)>,
) -> String {
    let spell = |(step, alter): (&str, i32)| {
        let acc = match alter {
            1 => "#",
            2 => "##",
            -1 => "b",
            -2 => "bb",
            _ => "",
        };
        format!("{}{acc}", step.trim())
    };
    let kind = match kind_text {
        Some(t) => t.to_owned(),
        None => match kind.trim() {
            "major" | "" | "none" => "",
            "minor" => "m",
            "augmented" => "aug",
            "diminished" => "dim",
            "dominant" => "7",
            "major-seventh" => "maj7",
            "minor-seventh" => "m7",
            "diminished-seventh" => "dim7",
            "augmented-seventh" => "aug7",
            "half-diminished" => "m7b5",
            "major-minor" => "m(maj7)",
            "major-sixth" => "6",
            "minor-sixth" => "m6",
            "dominant-ninth" => "9",
            "major-ninth" => "maj9",
            "minor-ninth" => "m9",
            "dominant-11th" => "11",
            "major-11th" => "maj11",
            "minor-11th" => "m11",
            "dominant-13th" => "13",
            "major-13th" => "maj13",
            "minor-13th" => "m13",
            "suspended-second" => "sus2",
            "suspended-fourth" => "sus4",
            "power" => "5",
            _ => "",
        }
        .to_owned(),
    };
    let mut out = format!("{}{kind}", spell(root));
    if let Some(b) = bass {
        out.push('/');
        out.push_str(&spell(b));
    }
    // A quote would end the chord symbol early.
    out.replace('"', "'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_spelled_for_every_mode() {
        assert_eq!(key(0, None), "C");
        assert_eq!(key(-3, Some("minor")), "Cm");
        assert_eq!(key(6, Some("major")), "F#");
        assert_eq!(key(-6, None), "Gb");
        assert_eq!(key(1, Some("dorian")), "Ador");
        assert_eq!(key(7, Some("minor")), "A#m");
    }

    #[test]
    fn meters() {
        let b = |x: &str, y: &str| (x.to_owned(), y.to_owned());
        assert_eq!(meter(&[b("4", "4")], Some("common"), false), "C");
        assert_eq!(meter(&[b("6", "8")], None, false), "6/8");
        assert_eq!(meter(&[b("3+2", "8")], None, false), "3+2/8");
        assert_eq!(meter(&[b("3", "8"), b("2", "4")], None, false), "7/8");
        assert_eq!(meter(&[], None, true), "none");
    }

    #[test]
    fn chord_symbols() {
        assert_eq!(harmony(("B", -1), "minor-seventh", None, None), "Bbm7");
        assert_eq!(harmony(("G", 0), "major", None, Some(("B", 0))), "G/B");
    }
}
