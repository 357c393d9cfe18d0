//! Property tests: on any ABC-like input the ABC layer never panics, and every range it
//! returns lies in the text, in order, and leads back to what was read there.

use proptest::prelude::*;
use tunelens_models::abc::{invariants, parse, SourceText};

/// Pieces of ABC (and of things that break it) to glue together.
const PIECES: &[&str] = &[
    "X:1\n",
    "X:2\r\n",
    "T:Café naïve\n",
    "M:6/8\n",
    "L:1/8\n",
    "K:G\n",
    "K:Am\n",
    "V:1\n",
    "V:2 name=\"Alto\"\n",
    "%%score (1 2)\n",
    "w: la la\n",
    "W:words\n",
    "%comment\n",
    "\n",
    "\r\n",
    "|",
    "||",
    "|]",
    "[|",
    "|:",
    ":|",
    "::",
    ":||:",
    "[1",
    "[2",
    "|1",
    ":|2",
    "\"Am\"",
    "\"",
    "\"A|B\"",
    "!trill!",
    "!",
    "+fermata+",
    "%",
    "\\\n",
    "[K:D]",
    "[V:2]",
    "[V:",
    "{g}",
    "{",
    "[CEG]",
    "[",
    "]",
    "abc",
    "A2B",
    "c'",
    "C,",
    "z4",
    "(3abc",
    "a>b",
    " ",
    "\t",
    "é",
    "—",
    "♭",
    "😀",
    "\u{2028}",
    "ß",
    "\u{a0}",
    "々",
];

fn abc_like() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            8 => prop::sample::select(PIECES).prop_map(str::to_owned),
            1 => any::<String>(),
            1 => "[a-gA-G|:\\[\\]\"!%\n ]{0,12}",
        ],
        0..60,
    )
    .prop_map(|pieces| pieces.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn abc_like_text_keeps_every_promise(text in abc_like()) {
        let source = SourceText::from_text(text);
        let file = parse(&source);
        if let Err(e) = invariants::check(&source, &file) {
            return Err(TestCaseError::fail(format!("{e}\ninput: {:?}", source.text())));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(source) = SourceText::from_bytes(&bytes, 1 << 20) {
            let file = parse(&source);
            if let Err(e) = invariants::check(&source, &file) {
                return Err(TestCaseError::fail(format!("{e}\ninput: {:?}", source.text())));
            }
        }
    }
}

/// Found by proptest: U+1366 transliterates to ":: ", a bar line, so the character's range
/// belongs to two patches.
#[test]
fn a_character_that_transliterates_to_a_bar_line() {
    let source = SourceText::from_text(":||:፦".to_owned());
    let file = parse(&source);
    assert_eq!(invariants::check(&source, &file), Ok(()));
}
