//! Property tests of the canonical music view: on any input it never panics, and the ways a
//! composer may write the same melody (chord symbols, decorations, another `L:`, other line
//! breaks, another key) all give the same view.

use proptest::prelude::*;
use tunelens_models::abc::canonical::{render, MusicView};
use tunelens_models::abc::notes::Ratio;
use tunelens_models::abc::rewrite;
use tunelens_models::abc::transpose::{self, Interval};

/// One note or ornament of a simple melody in `L:1/8`.
fn piece() -> impl Strategy<Value = String> {
    let note = (
        prop::sample::select(vec!["", "^", "_", "="]),
        prop::sample::select(vec![
            "C", "D", "E", "F", "G", "A", "B", "c", "d", "e", "f", "g",
        ]),
        prop::sample::select(vec!["", "2", "3", "/", "3/2", "4"]),
    )
        .prop_map(|(a, n, l)| format!("{a}{n}{l}"));
    prop_oneof![
        8 => note,
        1 => prop::sample::select(vec!["\"G\"", "\"Am\"", "!trill!", "~", "{g}", " "])
            .prop_map(str::to_owned),
        1 => Just("|".to_owned()),
    ]
}

fn melody() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["G", "D", "Am", "Edor", "C", "Bb", "F#m"]),
        prop::collection::vec(piece(), 1..40),
    )
        .prop_map(|(key, pieces)| format!("M:4/4\nL:1/8\nK:{key}\n{}|\n", pieces.concat()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn never_panics(text in "[ -~\n]{0,200}") {
        for view in [MusicView::CanonicalTonic, MusicView::CanonicalAbsolute] {
            let _ = render(&text, view);
        }
        let _ = rewrite::change_unit(&text, Ratio::new(1, 4));
        let _ = rewrite::one_bar_per_line(&rewrite::plain(&text));
    }

    #[test]
    fn spelling_and_key_do_not_change_the_tonic_view(abc in melody()) {
        let view = MusicView::CanonicalTonic;
        let want = render(&abc, view);
        let plain = rewrite::plain(&abc);
        prop_assert_eq!(&want, &render(&plain, view), "plain: {}", plain);
        let quarter = rewrite::change_unit(&abc, Ratio::new(1, 4));
        prop_assert_eq!(&want, &render(&quarter, view), "L:1/4: {}", quarter);
        let lines = rewrite::one_bar_per_line(&abc);
        prop_assert_eq!(&want, &render(&lines, view), "lines: {}", lines);
        let fourth = transpose::transpose(&plain, Interval::FOURTH_UP);
        prop_assert_eq!(&want, &render(&fourth, view), "a 4th up: {}", fourth);
    }
}
