//! The notes of ABC bars, checked by hand construct by construct; n-gram invariance under
//! transposition; a property test that reading never panics and keeps every note in its bar;
//! and the note yield on the music21 corpus.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use tunelens_models::abc::notes::{
    align, describe_transposition, interval_ngrams, interval_ngrams_into, transposition,
    tune_notes, voice_notes, Note, VoiceNotes,
};
use tunelens_models::abc::{parse, AbcFile, SourceText};

const NAMES: [&str; 12] = [
    "C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B",
];

/// A note as `F#4:1/8` (sharps only; middle C is C4).
fn name(n: &Note) -> String {
    let p = n.pitch as usize;
    format!("{}{}:{}", NAMES[p % 12], p / 12 - 1, n.duration)
}

fn render(v: &VoiceNotes) -> String {
    v.iter_bars()
        .map(|bar| bar.iter().map(name).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// The notes of voice `voice` of the first tune of `abc`, bar by bar.
fn notes_of(abc: &str, voice: usize) -> String {
    let source = SourceText::from_text(abc.to_owned());
    let file = parse(&source);
    render(&voice_notes(&source, &file.tunes[0], voice))
}

/// Checks a table of (ABC, expected notes) cases, reporting every mismatch at once.
fn check(cases: &[(&str, &str)]) {
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|(abc, want)| {
            let got = notes_of(abc, 0);
            (got != *want).then(|| format!("{abc:?}\n  want {want}\n  got  {got}"))
        })
        .collect();
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn pitches_and_octaves() {
    check(&[
        (
            "X:1\nL:1/8\nK:C\nC c C, c' c'' C,,|\n",
            "C4:1/8 C5:1/8 C3:1/8 C6:1/8 C7:1/8 C2:1/8",
        ),
        (
            "X:1\nL:1/8\nK:C\nD E F G A B|\n",
            "D4:1/8 E4:1/8 F4:1/8 G4:1/8 A4:1/8 B4:1/8",
        ),
        (
            "X:1\nL:1/8\nK:C\nb, B c'' C,|\n",
            "B4:1/8 B4:1/8 C7:1/8 C3:1/8",
        ),
    ]);
}

#[test]
fn key_signatures() {
    check(&[
        ("X:1\nL:1/8\nK:G\nF f c|\n", "F#4:1/8 F#5:1/8 C5:1/8"),
        ("X:1\nL:1/8\nK:Bb\nB E A|\n", "A#4:1/8 D#4:1/8 A4:1/8"),
        (
            "X:1\nL:1/8\nK:F#m\nF C G D|\n",
            "F#4:1/8 C#4:1/8 G#4:1/8 D4:1/8",
        ),
        ("X:1\nL:1/8\nK:Ador\nF C|\n", "F#4:1/8 C4:1/8"),
        ("X:1\nL:1/8\nK:Dmix\nF C|\n", "F#4:1/8 C4:1/8"),
        ("X:1\nL:1/8\nK:Ephr\nF B|\n", "F4:1/8 B4:1/8"),
        ("X:1\nL:1/8\nK:HP\nF C G|\n", "F4:1/8 C4:1/8 G4:1/8"),
        ("X:1\nL:1/8\nK:Hp\nF C G|\n", "F#4:1/8 C#4:1/8 G4:1/8"),
        ("X:1\nL:1/8\nK:none\nF B|\n", "F4:1/8 B4:1/8"),
        ("X:1\nL:1/8\nK:D =c\nF c|\n", "F#4:1/8 C5:1/8"),
        ("X:1\nL:1/8\nK:G clef=bass\nF|\n", "F#4:1/8"),
        ("X:1\nL:1/8\nK: Bb\nB|\n", "A#4:1/8"),
    ]);
}

#[test]
fn accidentals_carry_to_the_end_of_the_bar_for_their_octave() {
    check(&[
        (
            "X:1\nL:1/8\nK:C\n^F F f =F F|F|\n",
            "F#4:1/8 F#4:1/8 F5:1/8 F4:1/8 F4:1/8 | F4:1/8",
        ),
        ("X:1\nL:1/8\nK:C\n^^F __B _E|\n", "G4:1/8 A4:1/8 D#4:1/8"),
        ("X:1\nL:1/8\nK:G\n=F F|F|\n", "F4:1/8 F4:1/8 | F#4:1/8"),
    ]);
}

#[test]
fn lengths_and_default_unit() {
    check(&[
        (
            "X:1\nL:1/8\nK:C\nA2 A/2 A/ A// A3/2 A A3 A4|\n",
            "A4:1/4 A4:1/16 A4:1/16 A4:1/32 A4:3/16 A4:1/8 A4:3/8 A4:1/2",
        ),
        ("X:1\nM:2/4\nK:C\nA|\n", "A4:1/16"),
        ("X:1\nM:6/8\nK:C\nA|\n", "A4:1/8"),
        ("X:1\nM:C\nK:C\nA|\n", "A4:1/8"),
        ("X:1\nM:none\nK:C\nA|\n", "A4:1/8"),
        ("X:1\nK:C\nA|\n", "A4:1/8"),
        ("X:1\nL:1/4\nM:2/4\nK:C\nA|\n", "A4:1/4"),
    ]);
}

#[test]
fn broken_rhythm() {
    check(&[
        (
            "X:1\nL:1/8\nK:C\nA>B A<B A>>B|\n",
            "A4:3/16 B4:1/16 A4:1/16 B4:3/16 A4:7/32 B4:1/32",
        ),
        (
            "X:1\nL:1/8\nK:C\nA2>B2 [CE]>[DF]|\n",
            "A4:3/8 B4:1/8 E4:3/16 F4:1/16",
        ),
        ("X:1\nL:1/8\nK:C\nA > B|\n", "A4:3/16 B4:1/16"),
    ]);
}

#[test]
fn tuplets() {
    check(&[
        (
            "X:1\nL:1/8\nK:C\n(3abc d|\n",
            "A5:1/12 B5:1/12 C5:1/12 D5:1/8",
        ),
        ("X:1\nL:1/8\nK:C\n(3:2:2ab c|\n", "A5:1/12 B5:1/12 C5:1/8"),
        ("X:1\nL:1/8\nK:C\n(2ab c|\n", "A5:3/16 B5:3/16 C5:1/8"),
        (
            "X:1\nL:1/8\nM:6/8\nK:C\n(5abcde f|\n",
            "A5:3/40 B5:3/40 C5:3/40 D5:3/40 E5:3/40 F5:1/8",
        ),
        (
            "X:1\nL:1/8\nM:4/4\nK:C\n(5abcde|\n",
            "A5:1/20 B5:1/20 C5:1/20 D5:1/20 E5:1/20",
        ),
        ("X:1\nL:1/8\nK:C\n(3z{g}ab c|\n", "A5:1/12 B5:1/12 C5:1/8"),
        ("X:1\nL:1/8\nK:C\n(ab) c|\n", "A5:1/8 B5:1/8 C5:1/8"),
    ]);
}

#[test]
fn ties() {
    check(&[
        ("X:1\nL:1/8\nK:C\nA2-A2 B|\n", "A4:1/2 B4:1/8"),
        ("X:1\nL:1/8\nK:C\nA4-|A2 B2|\n", "A4:3/4 | B4:1/4"),
        ("X:1\nL:1/8\nK:C\nA-B|\n", "A4:1/8 B4:1/8"),
        ("X:1\nL:1/8\nK:C\n^c2-|c B|\n", "C#5:3/8 | B4:1/8"),
        ("X:1\nL:1/8\nK:C\nA-A-A z A|\n", "A4:3/8 A4:1/8"),
        ("X:1\nL:1/8\nK:C\nA-A>B|\n", "A4:5/16 B4:1/16"),
        ("X:1\nL:1/8\nK:C\n[CE]2-[CE]2|\n", "E4:1/2"),
    ]);
}

#[test]
fn chords_take_the_top_note() {
    check(&[
        (
            "X:1\nL:1/8\nK:C\n[CEG]2 [c2e2] [EGc] [^ce]|\n",
            "G4:1/4 E5:1/4 C5:1/8 E5:1/8",
        ),
        ("X:1\nL:1/8\nK:C\n[G,B,D]/ [!trill!cE]|\n", "D4:1/16 C5:1/8"),
        ("X:1\nL:1/8\nK:C\n[^cC] c|\n", "C#5:1/8 C#5:1/8"),
    ]);
}

#[test]
fn what_is_not_a_note_is_skipped() {
    check(&[
        (
            "X:1\nL:1/8\nK:C\n{ag}f !trill!g +fermata+a \"Am\"b \"^text\"c ~d .e Hf Tg uA vB y C|\n",
            "F5:1/8 G5:1/8 A5:1/8 B5:1/8 C5:1/8 D5:1/8 E5:1/8 F5:1/8 G5:1/8 A4:1/8 B4:1/8 C4:1/8",
        ),
        ("X:1\nL:1/8\nK:C\nz2 x Z4 A z/ B|\n", "A4:1/8 B4:1/8"),
        ("X:1\nL:1/8\nK:C\nA B % c d\nc|\n", "A4:1/8 B4:1/8 C5:1/8"),
        ("X:1\nL:1/8\nK:C\n{/a}A (B c) y20 d|\n", "A4:1/8 B4:1/8 C5:1/8 D5:1/8"),
        ("X:1\nL:1/8\nK:C\nAB & cd|\n", "A4:1/8 B4:1/8"),
    ]);
}

#[test]
fn bar_lines_and_endings_give_no_notes() {
    check(&[
        (
            "X:1\nL:1/8\nK:C\n|:A B|1 c:|2 d|][|e|\n",
            "A4:1/8 B4:1/8 | C5:1/8 | D5:1/8 | E5:1/8",
        ),
        ("X:1\nL:1/8\nK:C\n[1 A:|[2 B||\n", "A4:1/8 | B4:1/8"),
    ]);
}

#[test]
fn inline_and_body_fields_change_the_context() {
    check(&[
        (
            "X:1\nL:1/8\nK:C\nF [K:G] F|F|\n",
            "F4:1/8 F#4:1/8 | F#4:1/8",
        ),
        (
            "X:1\nL:1/8\nK:C\nA|[L:1/4]A|[M:2/4]A|\n",
            "A4:1/8 | A4:1/4 | A4:1/4",
        ),
        (
            "X:1\nL:1/8\nK:C\nF|\nK:D\nF|\nL:1/16\nF|\n",
            "F4:1/8 | F#4:1/8 | F#4:1/16",
        ),
        ("X:1\nL:1/8\nK:C\nF [L:1/4] F|\n", "F4:1/8 F4:1/4"),
        ("X:1\nL:1/8\nK:C\n[K:Bb] B|\n", "A#4:1/8"),
    ]);
}

#[test]
fn a_real_tune_opening() {
    // Aird's "Niel Gow" (music21 airdsAirs), checked by hand.
    check(&[(
        "X:0801\nT:Niel Gow.\nM:C|\nL:1/8\nQ:1/2=90 \"Moderato\"\nK:G\n\
         e|d>Bgd  eAAe|d<Bgd e2(ef)|(g/f/e/d/) gd eAAe|\n",
        "E5:1/8 | D5:3/16 B4:1/16 G5:1/8 D5:1/8 E5:1/8 A4:1/8 A4:1/8 E5:1/8 | \
         D5:1/16 B4:3/16 G5:1/8 D5:1/8 E5:1/4 E5:1/8 F#5:1/8 | \
         G5:1/16 F#5:1/16 E5:1/16 D5:1/16 G5:1/8 D5:1/8 E5:1/8 A4:1/8 A4:1/8 E5:1/8",
    )]);
}

#[test]
fn voices_keep_their_own_context() {
    let abc = "X:1\nL:1/8\nV:1\nV:2\nK:C\nV:1\nF|\nV:2\nK:G\nF|\nV:1\nF|\n[V:2] F [K:D] c|\n";
    assert_eq!(notes_of(abc, 0), "F4:1/8 | F4:1/8");
    assert_eq!(notes_of(abc, 1), "F#4:1/8 | F#4:1/8 C#5:1/8");
    let source = SourceText::from_text(abc.to_owned());
    let file = parse(&source);
    let all: Vec<String> = tune_notes(&source, &file.tunes[0])
        .iter()
        .map(render)
        .collect();
    assert_eq!(all, [notes_of(abc, 0), notes_of(abc, 1)]);
    assert_eq!(notes_of(abc, 7), "");
}

#[test]
fn ranges_point_at_the_notes() {
    let abc = "X:1\nL:1/8\nK:C\n\"Am\"^F2 [CEG]3/2 A-A |B4-|B\n";
    let source = SourceText::from_text(abc.to_owned());
    let file = parse(&source);
    let v = voice_notes(&source, &file.tunes[0], 0);
    let texts: Vec<&str> = v.notes.iter().map(|n| source.slice(n.range)).collect();
    assert_eq!(texts, ["^F2", "[CEG]3/2", "A-A", "B4"]);
    assert_eq!(v.bar_count(), 3);
    assert!(
        v.bar(2).is_empty(),
        "a tied-over note stays in the bar it starts"
    );
    assert_eq!(v.bars(0..2).len(), 4);
    assert!(v.bar(9).is_empty());
}

/// The Kesh, a jig, as written in G and by hand a fourth lower... in D (down a 4th = up a 5th).
const KESH_G: &str = "X:1\nT:The Kesh\nM:6/8\nL:1/8\nK:G\n\
|:GAG GAB|ABA ABd|edd gdd|edB dBA|\n\
GAG GAB|ABA ABd|edd gdB|AGF G3:|\n\
|:gfg gab|aga abg|fef def|gfe dBA|\n\
gfg gab|aga abg|fef d^cd|=cBA G3:|\n";
const KESH_D: &str = "X:1\nT:The Kesh\nM:6/8\nL:1/8\nK:D\n\
|:DED DEF|EFE EFA|BAA dAA|BAF AFE|\n\
DED DEF|EFE EFA|BAA dAF|EDC D3:|\n\
|:dcd def|ede efd|cBc ABc|dcB AFE|\n\
dcd def|ede efd|cBc A^GA|=GFE D3:|\n";

fn all_notes(abc: &str) -> Vec<Note> {
    let source = SourceText::from_text(abc.to_owned());
    let file = parse(&source);
    voice_notes(&source, &file.tunes[0], 0).notes
}

#[test]
fn the_same_tune_in_two_keys_has_the_same_ngrams() {
    let g = all_notes(KESH_G);
    let d = all_notes(KESH_D);
    assert_eq!(g.len(), 92);
    assert_eq!(d.len(), g.len());
    for n in 1..=5 {
        assert_eq!(interval_ngrams(&g, n), interval_ngrams(&d, n), "n = {n}");
    }
    assert_eq!(transposition(&g, &d), Some(-5));
    // A different tune shares few n-grams.
    let other = all_notes("X:1\nM:6/8\nL:1/8\nK:G\n|:B3 BAG|A3 ABd|e2d B2A|G3 G3:|\n");
    let kesh = interval_ngrams(&g, 4);
    let shared = interval_ngrams(&other, 4)
        .iter()
        .filter(|h| kesh.contains(h))
        .count();
    assert!(shared <= 1, "{shared} shared 4-grams");
}

#[test]
fn ngrams_ignore_tempo_and_are_stable() {
    let eighths = all_notes("X:1\nL:1/8\nK:G\nGAB d2B|\n");
    let sixteenths = all_notes("X:1\nL:1/16\nK:G\nGAB d2B|\n");
    assert_eq!(
        interval_ngrams(&eighths, 2),
        interval_ngrams(&sixteenths, 2)
    );
    // FNV-1a of fixed bytes: the same number on every platform and run, so it can be stored.
    assert_eq!(interval_ngrams(&eighths, 1)[0], {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in [2u8, 0u8] {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h
    });
}

/// Pieces of ABC, notes and context especially, to glue together at random.
const PIECES: &[&str] = &[
    "X:1\n",
    "M:6/8\n",
    "M:2/4\n",
    "L:1/16\n",
    "L:1/0\n",
    "K:G\n",
    "K:F#m\n",
    "K:HP\n",
    "K:none\n",
    "K:D =c\n",
    "K:clef=bass\n",
    "V:1\n",
    "V:2\n",
    "%c\n",
    "\n",
    "\r\n",
    "|",
    "||",
    "|]",
    "[|",
    "|:",
    ":|",
    "::",
    "[1",
    "|2",
    ":|2",
    "\"Am\"",
    "\"",
    "!trill!",
    "!",
    "+",
    "%",
    "\\\n",
    "[K:D]",
    "[K:",
    "[L:1/4]",
    "[M:3/4]",
    "[V:2]",
    "{g}",
    "{",
    "}",
    "[CEG]",
    "[C2E2]3",
    "[",
    "]",
    "abc",
    "A2B",
    "A/",
    "A//",
    "A3/2",
    "A0",
    "A/0",
    "A999999999/9999999",
    "c'",
    "C,",
    ",,,,,,,,,,,,",
    "''''''''''''",
    "^",
    "^^",
    "_",
    "__",
    "=",
    "^/",
    "z4",
    "x",
    "Z4",
    "y",
    "(",
    ")",
    "(3",
    "(3:2:4",
    "(99:0:0",
    "(0",
    ">",
    ">>>>",
    "<",
    "-",
    "&",
    "~",
    ".",
    "H",
    " ",
    "\t",
    "é",
    "😀",
];

fn abc_like() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            8 => prop::sample::select(PIECES).prop_map(str::to_owned),
            1 => any::<String>(),
            1 => "[a-gA-G^_=,'/0-9|:<>()\\[\\]\"!%\n -]{0,12}",
        ],
        0..80,
    )
    .prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn never_panics_and_notes_stay_in_their_bars(abc in abc_like()) {
        let source = SourceText::from_text(abc);
        let file = parse(&source);
        for tune in &file.tunes {
            let all = tune_notes(&source, tune);
            prop_assert_eq!(all.len(), tune.voices.len());
            for (v, voice) in tune.voices.iter().enumerate() {
                let notes = voice_notes(&source, tune, v);
                prop_assert_eq!(&notes, &all[v]);
                prop_assert_eq!(notes.bar_count(), voice.bars.len());
                for (bar, bar_notes) in voice.bars.iter().zip(notes.iter_bars()) {
                    for n in bar_notes {
                        prop_assert!(
                            bar.range.start <= n.range.start && n.range.end <= bar.range.end
                                && n.range.start < n.range.end,
                            "note {:?} outside bar {:?}", n.range, bar.range
                        );
                        prop_assert!(source.text().get(n.range.start as usize..n.range.end as usize).is_some());
                        prop_assert!((0..=127).contains(&n.pitch));
                    }
                }
                for n in 1..4 {
                    let _ = interval_ngrams(&notes.notes, n);
                }
                let al = align(&notes.notes, &notes.notes);
                prop_assert_eq!(al.same(), notes.notes.len());
                let al = align(notes.bar(0), &notes.notes);
                prop_assert_eq!(al.same() + al.changed() + al.inserted(), notes.notes.len());
            }
        }
    }
}

fn music21_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.data/music21/music21/corpus");
    assert!(
        dir.exists(),
        "the music21 corpus is missing at {}: run scripts/fetch-music21.sh",
        dir.display()
    );
    dir
}

fn abc_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            abc_files(&path, out);
        } else if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("abc"))
        {
            out.push(path);
        }
    }
}

/// Whether a bar's text holds a note letter outside quotes, decorations, grace notes,
/// comments and inline fields: a bar "with music" that should give a note.
fn has_note_letter(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let skip_to = |close: u8| {
            b[i + 1..]
                .iter()
                .position(|&c| c == close)
                .map(|p| i + p + 2)
        };
        match b[i] {
            b'"' => i = skip_to(b'"').unwrap_or(b.len()),
            b'!' | b'+' => i = skip_to(b[i]).unwrap_or(i + 1),
            b'{' => i = skip_to(b'}').unwrap_or(b.len()),
            b'%' => i = skip_to(b'\n').unwrap_or(b.len()),
            b'[' if b.get(i + 2) == Some(&b':') => i = skip_to(b']').unwrap_or(b.len()),
            c if c.is_ascii_alphabetic() && b"ABCDEFGabcdefg".contains(&c) => return true,
            _ => i += 1,
        }
    }
    false
}

#[test]
fn music21_corpus_yields_notes() {
    let mut files = Vec::new();
    abc_files(&music21_dir(), &mut files);
    assert!(files.len() > 1000, "only {} ABC files", files.len());
    let parsed: Vec<(&PathBuf, SourceText, AbcFile)> = files
        .iter()
        .map(|path| {
            let bytes = std::fs::read(path).expect("read corpus file");
            let source = SourceText::from_bytes(&bytes, usize::MAX).expect("decode corpus file");
            let file = parse(&source);
            (path, source, file)
        })
        .collect();
    // Notes and 4-grams of every voice, timed apart from reading and parsing.
    let started = std::time::Instant::now();
    let mut ngrams = Vec::new();
    let read: Vec<Vec<VoiceNotes>> = parsed
        .iter()
        .flat_map(|(_, source, file)| file.tunes.iter().map(|t| tune_notes(source, t)))
        .inspect(|voices| {
            for v in voices {
                interval_ngrams_into(&v.notes, 4, &mut ngrams);
            }
        })
        .collect();
    let elapsed = started.elapsed();
    let (mut tunes, mut bars, mut with_music, mut yielding, mut notes) = (0, 0, 0, 0, 0);
    let mut empty_examples = Vec::new();
    let tunes_read = parsed
        .iter()
        .flat_map(|(path, source, file)| file.tunes.iter().map(move |t| (path, source, t)));
    for ((path, source, tune), voices) in tunes_read.zip(&read) {
        tunes += 1;
        for (voice, got) in tune.voices.iter().zip(voices) {
            notes += got.notes.len();
            for (bar, bar_notes) in voice.bars.iter().zip(got.iter_bars()) {
                bars += 1;
                if !has_note_letter(source.slice(bar.range)) {
                    continue;
                }
                with_music += 1;
                if !bar_notes.is_empty() {
                    yielding += 1;
                } else if empty_examples.len() < 40 {
                    empty_examples.push(format!(
                        "{}: {:?}",
                        path.display(),
                        source.slice(bar.range)
                    ));
                }
            }
        }
    }
    let share = yielding as f64 / with_music as f64;
    eprintln!(
        "music21: {} files, {tunes} tunes, {bars} bars, {with_music} with music, {yielding} \
         with a note ({:.2}%), {notes} notes and {} 4-grams in {elapsed:?}",
        files.len(),
        100.0 * share,
        ngrams.len(),
    );
    if std::env::var_os("NOTES_VERBOSE").is_some() {
        eprintln!(
            "bars with music but no note, e.g.:\n{}",
            empty_examples.join("\n")
        );
    }
    assert!(tunes > 10_000, "only {tunes} tunes");
    assert!(
        share >= 0.95,
        "only {:.2}% of bars with music gave a note; e.g.\n{}",
        100.0 * share,
        empty_examples.join("\n")
    );
}

#[test]
fn alignment_finds_the_transposition_and_the_changes() {
    // Two bars of The Kesh, quoted up a perfect 4th (in C) with two notes changed and one
    // note added.
    let kesh = all_notes("X:1\nM:6/8\nL:1/8\nK:G\nGAG GAB|ABA ABd|\n");
    // Up a 4th, "cdc cde|ded deg|"; with "e" for the second "d", "g" for the last "e" and
    // an "a" added.
    let quote = all_notes("X:1\nM:6/8\nL:1/8\nK:C\ncdc cee|ded dgag|\n");
    let al = align(&kesh, &quote);
    assert_eq!(al.transposition, 5);
    assert_eq!(describe_transposition(al.transposition), "up a perfect 4th");
    assert_eq!(
        (al.same(), al.changed(), al.inserted(), al.dropped()),
        (10, 2, 1, 0)
    );
    // The same melody: all notes the same.
    let al = align(&kesh, &kesh);
    assert_eq!((al.transposition, al.same(), al.ops.len()), (0, 12, 12));
    // Nothing to align.
    let al = align(&[], &kesh);
    assert_eq!((al.inserted(), al.same()), (12, 0));
}
