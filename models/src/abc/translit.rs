//! Transliteration to ASCII, byte for byte as Python's `unidecode` does it.
//!
//! CLaMP passes every text (and the ABC it reads) through `unidecode.unidecode` before tokenising,
//! so any difference here changes token ids and therefore embeddings. The reference pins
//! `unidecode==1.3.4` (microsoft/muzic, `clamp/requirements.txt`); that is the version matched,
//! with its default `errors='ignore'`: a character without a transliteration gives "".
//!
//! Why deunicode plus corrections rather than a table of our own: `deunicode_char`'s table and
//! unidecode's both descend from Perl's Text::Unidecode, and of the 1,112,064 scalar values they
//! disagree on 36,094 non-ASCII ones (ASCII is copied through as is). Nearly all of those are
//! characters deunicode knows and unidecode does not (CJK Extension A/B, Tangut, emoji, ...), which
//! collapse into 494 ranges that must give ""; only 521 code points need other text. The generated
//! table (`translit_overrides.rs`, from `scripts/gen-translit-overrides.py`) is 24 kB of source,
//! where a complete table would be about 41,500 strings and 160 kB of text.
//!
//! Notable places where the crates disagree, all handled by the table: unidecode pads some
//! fractions and abbreviations with spaces ('½' → " 1/2 ", '℅' → " c/o "), reads Braille as digits,
//! spells Greek mathematical letters out ('𝚨' → "Alpha"), uses Hepburn kana ('し' → "shi"), and has
//! nothing for the flat sign '♭' (deunicode: "b", which would change CLaMP's patches), emoji, chess
//! and card symbols, or anything above U+EFFFF. deunicode's own `deunicode()` is no substitute
//! either: it writes "[?]" for unknown characters and trims the trailing space of CJK syllables.

// The generated tables, kept in their own file so the script can rewrite it whole. include! (not
// a `#[path]` module) keeps rustfmt from reflowing generated code.
mod table {
    include!("translit_overrides.rs");
}

/// Appends the transliteration of `c` to `out`: what `unidecode.unidecode(c)` returns.
pub fn push_char(c: char, out: &mut String) {
    // unidecode returns ASCII as it is, control characters included.
    if c.is_ascii() {
        out.push(c);
    } else {
        out.push_str(lookup(c));
    }
}

/// Transliterates `s` exactly as Python's `unidecode.unidecode(s)` (1.3.4) does.
pub fn transliterate(s: &str) -> String {
    // Most text is ASCII already; unidecode has the same shortcut.
    if s.is_ascii() {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        push_char(c, &mut out);
    }
    out
}

/// unidecode's text for a non-ASCII `c`.
fn lookup(c: char) -> &'static str {
    let cp = u32::from(c);
    if let Ok(i) = table::OVERRIDES.binary_search_by_key(&cp, |&(k, _)| k) {
        return table::OVERRIDES[i].1;
    }
    // The last range that starts at or before cp is the only one that can hold it.
    let i = table::EMPTY.partition_point(|&(start, _)| start <= cp);
    if i > 0 && cp <= table::EMPTY[i - 1].1 {
        return "";
    }
    deunicode::deunicode_char(c).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every scalar value against unidecode, through the digest the generator computed from
    /// Python. This is what catches a deunicode release whose table moved under the corrections.
    #[test]
    fn all_code_points_match_unidecode_digest() {
        let mut h: u64 = 0xCBF2_9CE4_8422_2325;
        let mut buf = String::new();
        for c in (0..=0x10_FFFF).filter_map(char::from_u32) {
            buf.clear();
            push_char(c, &mut buf);
            for b in buf.bytes().chain([0xFF]) {
                h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01B3);
            }
        }
        assert_eq!(
            h,
            table::DIGEST,
            "rerun scripts/gen-translit-overrides.py (deunicode changed?)"
        );
    }

    #[test]
    fn tables_are_sorted_and_disjoint() {
        assert!(table::OVERRIDES.windows(2).all(|w| w[0].0 < w[1].0));
        assert!(table::EMPTY.iter().all(|&(a, b)| a <= b));
        assert!(table::EMPTY.windows(2).all(|w| w[0].1 < w[1].0));
    }
}
