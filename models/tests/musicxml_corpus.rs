//! Every MusicXML file of the music21 wheel (`corpus/**` and `musicxml/lilypondTestSuite/`,
//! extracted by `scripts/fetch-music21.sh`) converts without an error, and the ABC it gives
//! re-parses through `abc::parse` without a diagnostic, with as many bars per voice as its
//! part has measures and as many note heads as the score has sounding notes (and grace
//! notes). The MusicXML side is counted here by a separate, deliberately simple reader of the
//! XML (not the converter's model); the ABC side by a small lexer of note heads.

use std::io::Read;
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use tunelens_models::abc::{self, SourceText};
use tunelens_models::musicxml;

fn data_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../.data/music21/music21");
    assert!(
        dir.join("corpus/bach").is_dir() && dir.join("musicxml/lilypondTestSuite").is_dir(),
        "the music21 MusicXML files are missing at {}: run scripts/fetch-music21.sh",
        dir.display()
    );
    dir
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("readable folder")
        .map(|e| e.expect("entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out);
        } else if musicxml::is_musicxml_path(&p) {
            out.push(p);
        }
    }
}

pub fn corpus_files() -> Vec<PathBuf> {
    let dir = data_dir();
    let mut files = Vec::new();
    walk(&dir.join("corpus"), &mut files);
    walk(&dir.join("musicxml/lilypondTestSuite"), &mut files);
    files
}

/// What the XML says, counted straight from the elements.
#[derive(Debug, Default, PartialEq)]
struct XmlCounts {
    /// Measures of each part (in score order; parts without measures included as 0).
    measures: Vec<usize>,
    sounding: usize,
    grace: usize,
}

fn xml_text(bytes: &[u8]) -> String {
    let bytes = if bytes.starts_with(b"PK") {
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("zip");
        let mut container = String::new();
        zip.by_name("META-INF/container.xml")
            .expect("container")
            .read_to_string(&mut container)
            .expect("container text");
        let doc = roxmltree::Document::parse(&container).expect("container xml");
        let root = doc
            .descendants()
            .find(|n| n.has_tag_name("rootfile"))
            .and_then(|n| n.attribute("full-path"))
            .expect("rootfile")
            .to_owned();
        let mut out = Vec::new();
        zip.by_name(&root)
            .expect("root file")
            .read_to_end(&mut out)
            .expect("inflate");
        out
    } else {
        bytes.to_vec()
    };
    match bytes.as_slice() {
        [0xFF, 0xFE, rest @ ..] => String::from_utf16(
            &rest
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect::<Vec<_>>(),
        )
        .expect("utf-16"),
        [0xFE, 0xFF, rest @ ..] => String::from_utf16(
            &rest
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect::<Vec<_>>(),
        )
        .expect("utf-16"),
        b => match std::str::from_utf8(b.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(b)) {
            Ok(s) => s.to_owned(),
            Err(_) => b.iter().map(|&c| char::from(c)).collect(),
        },
    }
}

fn count_xml(text: &str) -> XmlCounts {
    let options = roxmltree::ParsingOptions {
        allow_dtd: true,
        ..Default::default()
    };
    let doc = roxmltree::Document::parse_with_options(text, options).expect("well-formed XML");
    let root = doc.root_element();
    let mut c = XmlCounts::default();
    if root.has_tag_name("score-partwise") {
        for part in root.children().filter(|n| n.has_tag_name("part")) {
            c.measures.push(
                part.children()
                    .filter(|n| n.has_tag_name("measure"))
                    .count(),
            );
        }
    } else {
        let mut ids: Vec<(String, usize)> = Vec::new();
        for m in root.children().filter(|n| n.has_tag_name("measure")) {
            for p in m.children().filter(|n| n.has_tag_name("part")) {
                let id = p.attribute("id").unwrap_or("").to_owned();
                match ids.iter_mut().find(|(i, _)| *i == id) {
                    Some((_, n)) => *n += 1,
                    None => ids.push((id, 1)),
                }
            }
        }
        c.measures = ids.into_iter().map(|(_, n)| n).collect();
    }
    for note in root.descendants().filter(|n| n.has_tag_name("note")) {
        let has = |t: &str| note.children().any(|k| k.has_tag_name(t));
        if !(has("pitch") || has("unpitched")) || has("cue") {
            continue;
        }
        if has("grace") {
            c.grace += 1;
        } else {
            c.sounding += 1;
        }
    }
    c
}

/// Note heads in ABC music lines: (outside grace groups, inside them).
fn count_abc_heads(abc: &str) -> (usize, usize) {
    let mut main = 0;
    let mut grace = 0;
    let body = abc.split_once("\nK:").map_or(abc, |(_, b)| b);
    for line in body.lines().skip(1) {
        let b = line.as_bytes();
        if b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':' {
            continue;
        }
        let mut i = 0;
        let mut in_grace = false;
        while i < b.len() {
            match b[i] {
                b'%' => break,
                q @ (b'"' | b'!') => {
                    i += 1;
                    while i < b.len() && b[i] != q {
                        i += 1;
                    }
                }
                b'[' if b.get(i + 2) == Some(&b':') => {
                    while i < b.len() && b[i] != b']' {
                        i += 1;
                    }
                }
                b'{' => in_grace = true,
                b'}' => in_grace = false,
                b'A'..=b'G' | b'a'..=b'g' => {
                    if in_grace {
                        grace += 1;
                    } else {
                        main += 1;
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }
    (main, grace)
}

fn check(path: &Path) -> Result<(), String> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| format!("{name}: {e}"))?;
    let converted = musicxml::convert(&bytes, &name).map_err(|e| e.to_string())?;
    let xml = count_xml(&xml_text(&bytes));

    let source = SourceText::from_text(converted.abc.clone());
    let file = abc::parse(&source);
    if let Some(d) = file.diagnostics.first() {
        return Err(format!(
            "{name}: the ABC does not re-parse cleanly: {} at {}",
            d.message,
            source.line_col(d.range.start)
        ));
    }
    let [tune] = file.tunes.as_slice() else {
        return Err(format!(
            "{name}: {} tunes in the ABC, not 1",
            file.tunes.len()
        ));
    };
    let mut voices_per_part = vec![0usize; xml.measures.len()];
    for voice in &tune.voices {
        let part: usize = voice
            .id
            .split('.')
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("{name}: voice {} names no part", voice.id))?;
        let want = *xml
            .measures
            .get(part.wrapping_sub(1))
            .ok_or_else(|| format!("{name}: voice {} of no part", voice.id))?;
        if voice.bars.len() != want {
            return Err(format!(
                "{name}: voice {} has {} bars, part {part} has {want} measures",
                voice.id,
                voice.bars.len()
            ));
        }
        voices_per_part[part - 1] += 1;
    }
    for (p, (&n, &v)) in xml.measures.iter().zip(&voices_per_part).enumerate() {
        if n > 0 && v == 0 {
            return Err(format!(
                "{name}: part {} ({n} measures) has no voice in the ABC",
                p + 1
            ));
        }
    }
    let (main, grace) = count_abc_heads(&converted.abc);
    if (main, grace) != (xml.sounding, xml.grace) {
        return Err(format!(
            "{name}: the ABC has {main} notes and {grace} grace notes, the MusicXML {} and {}",
            xml.sounding, xml.grace
        ));
    }
    Ok(())
}

#[test]
fn every_music21_musicxml_file_converts_with_its_measures_and_notes() {
    let files = corpus_files();
    assert!(
        files.len() >= 790,
        "only {} MusicXML files found: is the extraction complete?",
        files.len()
    );
    let failures: Vec<String> = files.par_iter().filter_map(|p| check(p).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} files failed:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn the_counters_of_this_test_count_what_they_should() {
    let xml = r#"<score-partwise><part id="P1"><measure number="1">
        <note><pitch><step>C</step><octave>4</octave></pitch><duration>1</duration></note>
        <note><chord/><pitch><step>E</step><octave>4</octave></pitch><duration>1</duration></note>
        <note><grace/><pitch><step>D</step><octave>4</octave></pitch></note>
        <note><cue/><pitch><step>D</step><octave>4</octave></pitch><duration>1</duration></note>
        <note><rest/><duration>1</duration></note></measure><measure number="2"/></part></score-partwise>"#;
    assert_eq!(
        count_xml(xml),
        XmlCounts {
            measures: vec![2],
            sounding: 2,
            grace: 1
        }
    );
    assert_eq!(
        count_abc_heads("X:1\nK:C\n\"Am\"!p![CE] {d}c z x [K:D] |\n"),
        (3, 1)
    );
}
