//! The second view of a passage for the music ↔ music objective: moved to another key, about
//! 10% of its notes moved a step, ornaments dropped. What a musician would still call the same
//! passage, so its vector should stay near.

use crate::abc::transpose::{self, Interval};

use super::rng::Rng;

/// `abc` with grace notes (`{...}`), decorations (`!...!`, `+...+`) and the one-character
/// decorations (`~ . H L M O P S T u v`) removed from the music lines; field lines, quoted
/// strings (chords, annotations) and inline fields stay as they are.
pub fn drop_ornaments(abc: &str) -> String {
    let mut out = String::with_capacity(abc.len());
    for line in abc.split_inclusive('\n') {
        let b = line.as_bytes();
        if b.len() > 1 && b[0].is_ascii_alphabetic() && b[1] == b':' || line.starts_with('%') {
            out.push_str(line);
            continue;
        }
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '"' => {
                    out.push(c);
                    for d in chars.by_ref() {
                        out.push(d);
                        if d == '"' {
                            break;
                        }
                    }
                }
                '[' if chars.peek().is_some_and(|n| n.is_ascii_alphabetic()) => {
                    // An inline field `[K:..]` (or a chord `[CEG]`): copied whole.
                    out.push(c);
                    for d in chars.by_ref() {
                        out.push(d);
                        if d == ']' {
                            break;
                        }
                    }
                }
                '{' => {
                    for d in chars.by_ref() {
                        if d == '}' {
                            break;
                        }
                    }
                }
                '!' | '+' => {
                    let close = c;
                    for d in chars.by_ref() {
                        if d == close || d == '\n' {
                            break;
                        }
                    }
                }
                '~' | '.' | 'H' | 'L' | 'M' | 'O' | 'P' | 'S' | 'T' | 'u' | 'v' => {}
                _ => out.push(c),
            }
        }
    }
    out
}

/// The augmented view of a passage: ornaments dropped, transposed by a random 2nd, 4th or
/// 5th, then `vary_fraction` of the notes moved a step.
pub fn augment(abc: &str, vary_fraction: f64, rng: &mut Rng) -> String {
    let plain = drop_ornaments(abc);
    let keys = &Interval::NEAR_KEYS;
    let moved = transpose::transpose(&plain, keys[rng.below(keys.len())]);
    transpose::vary(&moved, vary_fraction, rng.next_u64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ornaments_go_and_music_stays() {
        let abc = "L:1/8\nM:6/8\nK:G\n~G2{a}B !trill!d2 .e | \"Am\"[CEA]3 uc2 |\n";
        assert_eq!(
            drop_ornaments(abc),
            "L:1/8\nM:6/8\nK:G\nG2B d2 e | \"Am\"[CEA]3 c2 |\n"
        );
    }

    #[test]
    fn augmenting_is_seeded() {
        let abc = "L:1/8\nM:4/4\nK:D\nDFAd fdAF | GBdg bgdB | Acea gecA | d2f2 d4 |\n";
        let a = augment(abc, 0.1, &mut Rng::new(7));
        assert_eq!(a, augment(abc, 0.1, &mut Rng::new(7)));
        assert_ne!(a, abc);
    }
}
