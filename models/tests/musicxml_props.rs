//! Property tests of the MusicXML converter: random well-formed scores (parts, voices with
//! `<backup>`, chords, grace notes, rests, ties, tuplets, key and time changes, repeats and
//! endings) convert, re-parse through `abc::parse` without a diagnostic, and keep one bar
//! per measure in every voice; random bytes never panic.

use proptest::prelude::*;
use tunelens_models::abc::{self, SourceText};
use tunelens_models::musicxml;

#[derive(Debug, Clone)]
struct N {
    step: usize,
    octave: u8,
    alter: i8,
    duration: u32,
    kind: u8,
    tie: bool,
}

fn note() -> impl Strategy<Value = N> {
    (0..7usize, 2..7u8, -1..=1i8, 1..8u32, 0..10u8, any::<bool>()).prop_map(
        |(step, octave, alter, duration, kind, tie)| N {
            step,
            octave,
            alter,
            duration,
            kind,
            tie,
        },
    )
}

fn note_xml(n: &N, voice: u32) -> String {
    let pitch = format!(
        "<pitch><step>{}</step><alter>{}</alter><octave>{}</octave></pitch>",
        &"CDEFGAB"[n.step..n.step + 1],
        n.alter,
        n.octave
    );
    let tie = if n.tie { "<tie type=\"start\"/>" } else { "" };
    match n.kind {
        0 => format!("<note><rest/><duration>{}</duration><voice>{voice}</voice></note>", n.duration),
        1 => format!("<note><grace/>{pitch}<voice>{voice}</voice></note>"),
        2 => format!("<note>{pitch}<duration>{}</duration><voice>{voice}</voice></note><note><chord/>{pitch}<duration>{}</duration><voice>{voice}</voice></note>", n.duration, n.duration),
        3 => format!("<note>{pitch}<duration>2</duration><voice>{voice}</voice><time-modification><actual-notes>3</actual-notes><normal-notes>2</normal-notes></time-modification><notations><articulations><staccato/></articulations></notations></note>"),
        _ => format!("<note>{pitch}<duration>{}</duration>{tie}<voice>{voice}</voice></note>", n.duration),
    }
}

fn score() -> impl Strategy<Value = (String, Vec<usize>)> {
    let measure = (
        prop::collection::vec(note(), 0..6),
        prop::collection::vec(note(), 0..4),
        0..6u8,
        -3..=3i32,
    );
    let part = prop::collection::vec(measure, 1..6);
    prop::collection::vec(part, 1..3).prop_map(|parts| {
        let mut xml = String::from("<?xml version=\"1.0\"?><score-partwise><work><work-title>T</work-title></work><part-list>");
        for i in 0..parts.len() {
            xml.push_str(&format!("<score-part id=\"P{i}\"><part-name>Part {i}</part-name></score-part>"));
        }
        xml.push_str("</part-list>");
        let mut counts = Vec::new();
        for (i, measures) in parts.iter().enumerate() {
            xml.push_str(&format!("<part id=\"P{i}\">"));
            for (m, (v1, v2, bar, fifths)) in measures.iter().enumerate() {
                xml.push_str(&format!("<measure number=\"{}\">", m + 1));
                if m == 0 || *bar == 5 {
                    xml.push_str(&format!("<attributes><divisions>2</divisions><key><fifths>{fifths}</fifths></key><time><beats>3</beats><beat-type>4</beat-type></time></attributes>"));
                }
                if *bar == 1 {
                    xml.push_str("<barline location=\"left\"><repeat direction=\"forward\"/><ending number=\"1\" type=\"start\"/></barline>");
                }
                let len1: u32 = v1.iter().filter(|n| n.kind != 1).map(|n| if n.kind == 3 { 2 } else { n.duration }).sum();
                v1.iter().for_each(|n| xml.push_str(&note_xml(n, 1)));
                if !v2.is_empty() {
                    xml.push_str(&format!("<backup><duration>{len1}</duration></backup>"));
                    v2.iter().for_each(|n| xml.push_str(&note_xml(n, 2)));
                }
                if *bar == 2 {
                    xml.push_str("<barline location=\"right\"><bar-style>light-heavy</bar-style><repeat direction=\"backward\"/></barline>");
                }
                xml.push_str("</measure>");
            }
            xml.push_str("</part>");
            counts.push(measures.len());
        }
        xml.push_str("</score-partwise>");
        (xml, counts)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_scores_convert_to_clean_abc_with_one_bar_per_measure((xml, counts) in score()) {
        let c = musicxml::convert(xml.as_bytes(), "random.musicxml").map_err(|e| TestCaseError::fail(e.to_string()))?;
        let source = SourceText::from_text(c.abc.clone());
        let file = abc::parse(&source);
        prop_assert!(file.diagnostics.is_empty(), "{:?}\n{}", file.diagnostics, c.abc);
        prop_assert_eq!(file.tunes.len(), 1);
        for voice in &file.tunes[0].voices {
            let part: usize = voice.id.split('.').next().unwrap().parse().unwrap();
            prop_assert_eq!(voice.bars.len(), counts[part - 1], "voice {}\n{}", voice.id, c.abc);
            for bar in &voice.bars {
                let m = c.measure_of(&voice.id, bar.number).expect("every bar has its measure");
                prop_assert_eq!(m.part as usize, part);
                prop_assert_eq!(&m.measure, &bar.number.to_string());
            }
        }
    }

    #[test]
    fn any_bytes_are_an_error_or_abc_never_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = musicxml::convert(&bytes, "noise.mxl");
        let mut xml = b"<score-partwise><part id=\"P1\"><measure number=\"1\">".to_vec();
        xml.extend(&bytes);
        let _ = musicxml::convert(&xml, "noise.xml");
    }
}

#[test]
fn a_zip_bomb_stops_at_the_limit() {
    use std::io::Write;
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut zip = zip::ZipWriter::new(&mut buf);
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("META-INF/container.xml", opts).unwrap();
        zip.write_all(
            b"<container><rootfiles><rootfile full-path=\"s.xml\"/></rootfiles></container>",
        )
        .unwrap();
        zip.start_file("s.xml", opts).unwrap();
        let zeros = vec![b' '; 1 << 20];
        for _ in 0..8 {
            zip.write_all(&zeros).unwrap();
        }
        zip.finish().unwrap();
    }
    let limits = musicxml::Limits { max_bytes: 1 << 20 };
    let err = musicxml::convert_with(buf.get_ref(), "bomb.mxl", limits)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("bomb.mxl") && err.contains("over the limit"),
        "{err}"
    );
}
