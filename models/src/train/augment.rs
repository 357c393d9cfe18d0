//! The second view of a passage for the music ↔ music objective: moved to another key, about
//! 10% of its notes moved a step, ornaments dropped. What a musician would still call the same
//! passage, so its vector should stay near.

use crate::abc::canonical::{Melody, Tone};
use crate::abc::notes::Ratio;
use crate::abc::transpose::{self, Interval};

use crate::abc::rewrite::drop_ornaments;

use super::rng::Rng;

/// The augmented view of a passage: ornaments dropped, transposed by a random 2nd, 4th or
/// 5th, then `vary_fraction` of the notes moved a step.
pub fn augment(abc: &str, vary_fraction: f64, rng: &mut Rng) -> String {
    let plain = drop_ornaments(abc);
    let keys = &Interval::NEAR_KEYS;
    let moved = transpose::transpose(&plain, keys[rng.below(keys.len())]);
    transpose::vary(&moved, vary_fraction, rng.next_u64())
}

/// `melody` played differently, as musicians vary a tune: with chance `fraction` per place,
/// an even pair becomes a dotted one or a dotted pair even, a note is split in two (the second
/// half repeated or a step away) or two equal notes of one pitch merge into one.
pub fn vary_rhythm(melody: &Melody, fraction: f64, rng: &mut Rng) -> Melody {
    let mut out = melody.clone();
    for bar in out.voices.iter_mut().flatten() {
        let mut varied: Vec<Tone> = Vec::with_capacity(bar.len() + 4);
        let mut i = 0;
        while i < bar.len() {
            let a = bar[i];
            if let Some(&b) = bar.get(i + 1) {
                let (da, db) = (a.duration, b.duration);
                let dotted = da == db * Ratio::new(3, 1);
                if (da == db || dotted) && rng.unit() < fraction {
                    let (na, nb) = if dotted {
                        let half = (da + db) * Ratio::new(1, 2);
                        (half, half)
                    } else {
                        (da * Ratio::new(3, 2), db * Ratio::new(1, 2))
                    };
                    varied.push(Tone { duration: na, ..a });
                    varied.push(Tone { duration: nb, ..b });
                    i += 2;
                    continue;
                }
                if da == db && a.pitch == b.pitch && rng.unit() < fraction / 2.0 {
                    varied.push(Tone {
                        duration: da + db,
                        ..a
                    });
                    i += 2;
                    continue;
                }
            }
            if rng.unit() < fraction / 2.0 {
                let half = a.duration * Ratio::new(1, 2);
                let step = [0, 2, -2, 1, -1][rng.below(5)];
                varied.push(Tone {
                    duration: half,
                    ..a
                });
                varied.push(Tone {
                    pitch: (a.pitch + step).clamp(0, 127),
                    duration: half,
                });
            } else {
                varied.push(a);
            }
            i += 1;
        }
        *bar = varied;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::abc::MusicView;

    #[test]
    fn rhythm_variants_keep_each_bar_s_length() {
        let abc = "L:1/8\nM:4/4\nK:D\nDFAd fdAF|GBdg b2dB|A>cea gecA|d2f2 d4|\n";
        let melody = &Melody::read_all(abc)[0];
        let varied = vary_rhythm(melody, 0.5, &mut Rng::new(3));
        assert_ne!(&varied, melody);
        let length = |bar: &Vec<Tone>| bar.iter().fold(0.0, |s, t| s + t.duration.as_f64());
        for (a, b) in melody.voices[0].iter().zip(&varied.voices[0]) {
            assert!((length(a) - length(b)).abs() < 1e-9);
        }
        assert!(varied
            .render(MusicView::CanonicalTonic)
            .starts_with("M:4/4\nK:C\n"));
    }

    #[test]
    fn augmenting_is_seeded() {
        let abc = "L:1/8\nM:4/4\nK:D\nDFAd fdAF | GBdg bgdB | Acea gecA | d2f2 d4 |\n";
        let a = augment(abc, 0.1, &mut Rng::new(7));
        assert_eq!(a, augment(abc, 0.1, &mut Rng::new(7)));
        assert_ne!(a, abc);
    }
}
