//! `translit` against Python's unidecode 1.3.4 (the version CLaMP pins): the reference fixtures,
//! and hand-picked code points whose expected output was taken from Python. The exhaustive check
//! over every code point is the digest test inside `translit.rs`.

use std::path::{Path, PathBuf};

use tunelens_models::abc::translit::{push_char, transliterate};

/// `shared/fixtures`, found from the crate upwards (it sits next to the repository checkout).
/// A missing directory fails the test: parity that is not checked must not pass.
fn fixtures_dir() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .map(|dir| dir.join("shared").join("fixtures"))
        .find(|dir| dir.is_dir())
        .unwrap_or_else(|| panic!("no shared/fixtures in any parent of {}", manifest.display()))
}

fn check_fixture(model: &str) {
    let path = fixtures_dir().join(model).join("expected.json");
    let json = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let expected: serde_json::Value = serde_json::from_str(&json).expect("expected.json parses");
    let texts = expected["text"].as_array().expect("`text` is an array");
    assert!(!texts.is_empty(), "{model}: no texts");
    for (i, item) in texts.iter().enumerate() {
        let text = item["text"].as_str().expect("`text` is a string");
        let want = item["unidecoded"]
            .as_str()
            .expect("`unidecoded` is a string");
        assert_eq!(transliterate(text), want, "{model} text[{i}]");
    }
}

#[test]
fn fixture_texts_roberta() {
    check_fixture("clamp-tiny-roberta");
}

#[test]
fn fixture_texts_bert() {
    check_fixture("clamp-tiny-bert");
}

/// `unidecode.unidecode(c)` for single characters, from Python with unidecode 1.3.4.
const CASES: &[(char, &str)] = &[
    // Latin, punctuation and symbols likely in tune titles and notes.
    ('\u{E9}', "e"),      // é
    ('\u{DF}', "ss"),     // ß
    ('\u{C6}', "AE"),     // Æ
    ('\u{2014}', "--"),   // em dash
    ('\u{201C}', "\""),   // left double quote
    ('\u{201D}', "\""),   // right double quote
    ('\u{2018}', "'"),    // left single quote
    ('\u{2019}', "'"),    // right single quote
    ('\u{2026}', "..."),  // ellipsis
    ('\u{2032}', "'"),    // prime
    ('\u{2033}', "''"),   // double prime
    ('\u{2122}', "(tm)"), // ™
    ('\u{A9}', "(c)"),    // ©
    ('\u{20AC}', "EUR"),  // €
    ('\u{B0}', "deg"),    // °
    ('\u{FB01}', "fi"),   // ﬁ ligature
    ('\u{2160}', "I"),    // Roman numeral one
    ('\u{2460}', "1"),    // circled one
    // Music symbols: unidecode 1.3.4 knows the sharp only; deunicode gives "b" for the flat.
    ('\u{266D}', ""),  // ♭
    ('\u{266F}', "#"), // ♯
    ('\u{266E}', ""),  // ♮
    ('\u{1D11E}', ""), // 𝄞 G clef
    ('\u{1D12A}', ""), // 𝄪 double sharp
    // Fractions and abbreviations that unidecode pads with spaces (deunicode does not).
    ('\u{BD}', " 1/2 "),   // ½ (unidecode 1.4.0 gives " 1/2")
    ('\u{2153}', " 1/3 "), // ⅓
    ('\u{2105}', " c/o "), // ℅
    // Characters that unidecode 1.4.0 maps but 1.3.4 does not, or maps differently.
    ('\u{2660}', ""),   // ♠ (1.4.0: "spades")
    ('\u{2654}', ""),   // ♔ (1.4.0: "white king")
    ('\u{2103}', ""),   // ℃ (1.4.0: "degC")
    ('\u{30FC}', ""),   // katakana long vowel mark (1.4.0: "-")
    ('\u{14A}', "ng"),  // Ŋ (1.4.0: "NG")
    ('\u{1E9E}', "Ss"), // ẞ (1.4.0: "SS")
    // Other corrections over deunicode.
    ('\u{3057}', "shi"),    // し (deunicode "si")
    ('\u{1D6A8}', "Alpha"), // 𝚨 (deunicode "A")
    ('\u{2802}', "1"),      // Braille dots-2 (deunicode ",")
    ('\u{1F12B}', "(C)"),   // 🄫 (deunicode "C")
    ('\u{404}', "Ie"),      // Є (deunicode "E")
    ('\u{4E48}', "Yao "),   // 么 (deunicode "Me ")
    ('\u{5D0}', "A"),       // א (deunicode "'")
    // CJK keeps unidecode's trailing space; Hangul, Cyrillic, Greek, Arabic.
    ('\u{4E2D}', "Zhong "), // 中
    ('\u{5317}', "Bei "),   // 北
    ('\u{4EAC}', "Jing "),  // 京
    ('\u{AC00}', "ga"),     // 가
    ('\u{3131}', "g"),      // ㄱ
    ('\u{41F}', "P"),       // П
    ('\u{436}', "zh"),      // ж
    ('\u{3B1}', "a"),       // α
    ('\u{391}', "A"),       // Α
    ('\u{627}', ""),        // ا (unidecode has no Arabic alef)
    // Blocks unidecode lacks and deunicode has: CJK Extension A/B, radicals, Tangut, emoji.
    ('\u{3400}', ""),  // 㐀
    ('\u{20000}', ""), // 𠀀
    ('\u{2E80}', ""),  // ⺀
    ('\u{17000}', ""), // 𗀀
    ('\u{1F3B5}', ""), // 🎵
    ('\u{1F600}', ""), // 😀
    ('\u{1F1E9}', ""), // regional indicator D
    ('\u{1F100}', "0."),
    // Whitespace, format and control characters.
    ('\u{2028}', "\n"),   // line separator
    ('\u{2029}', "\n\n"), // paragraph separator
    ('\u{A0}', " "),      // no-break space
    ('\u{200B}', " "),    // zero-width space
    ('\u{AD}', ""),       // soft hyphen
    ('\u{FEFF}', ""),     // byte order mark
    ('\u{80}', ""),       // C1 control
    ('\u{9F}', ""),       // C1 control
    ('\u{0}', "\u{0}"),   // ASCII controls pass through
    ('\u{1F}', "\u{1F}"),
    ('\u{7F}', "\u{7F}"),
    // Next to the surrogates, private use, noncharacters, and the top of the astral planes.
    ('\u{D7FF}', ""),
    ('\u{E000}', ""),
    ('\u{F8FF}', ""),
    ('\u{FFFD}', ""),
    ('\u{FFFF}', ""),
    ('\u{EFFFF}', ""),
    ('\u{F0000}', ""),
    ('\u{10FFFF}', ""),
];

#[test]
fn single_characters() {
    for &(c, want) in CASES {
        let mut got = String::from("x");
        push_char(c, &mut got);
        assert_eq!(&got[1..], want, "push_char(U+{:04X})", u32::from(c));
        assert_eq!(
            transliterate(c.encode_utf8(&mut [0; 4])),
            want,
            "transliterate(U+{:04X})",
            u32::from(c)
        );
    }
}

#[test]
fn strings() {
    // From Python: unidecode("Café au lait — naïve résumé"), unidecode("北京 Москва ½♭").
    assert_eq!(
        transliterate("Café au lait — naïve résumé"),
        "Cafe au lait -- naive resume"
    );
    assert_eq!(transliterate("北京 Москва ½♭"), "Bei Jing  Moskva  1/2 ");
    assert_eq!(transliterate(""), "");
    let ascii = "X:1\nT:Tune\tname\u{7F}\nK:G\n|:GABc dedB:|\n";
    assert_eq!(transliterate(ascii), ascii);
}

#[test]
fn transliterate_is_push_char_per_char() {
    let s: String = CASES.iter().map(|&(c, _)| c).collect();
    let want: String = CASES.iter().map(|&(_, w)| w).collect();
    assert_eq!(transliterate(&s), want);
}
