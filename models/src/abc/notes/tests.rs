use super::*;

/// Pitch of each letter C..B under a key, as accidentals (sharps positive).
fn key(value: &str) -> Option<KeySig> {
    parse_key(value)
}

#[test]
fn major_and_minor_keys() {
    assert_eq!(key("C"), Some([0; 7]));
    assert_eq!(key("G"), Some([0, 0, 0, 1, 0, 0, 0]));
    assert_eq!(key("D"), Some([1, 0, 0, 1, 0, 0, 0]));
    assert_eq!(key("Bb"), Some([0, 0, -1, 0, 0, 0, -1]));
    assert_eq!(key("F#m"), Some([1, 0, 0, 1, 1, 0, 0]));
    assert_eq!(key("Am"), Some([0; 7]));
    assert_eq!(key("A minor"), Some([0; 7]));
    assert_eq!(key("Emin"), key("G"));
    assert_eq!(key("C#"), Some([1; 7]));
    assert_eq!(key("Cb"), Some([-1; 7]));
}

#[test]
fn modes() {
    assert_eq!(key("Ador"), key("G"));
    assert_eq!(key("D Dorian"), key("C"));
    assert_eq!(key("Ephr"), key("C"));
    assert_eq!(key("Flyd"), key("C"));
    assert_eq!(key("Dmix"), key("G"));
    assert_eq!(key("AMix"), key("D"));
    assert_eq!(key("Gion"), key("G"));
    assert_eq!(key("Baeo"), key("D"));
    assert_eq!(key("Bloc"), key("C"));
}

#[test]
fn pipes_none_explicit_and_clefs() {
    assert_eq!(key("HP"), Some([0; 7]));
    assert_eq!(key("Hp"), Some([1, 0, 0, 1, 0, 0, 0]));
    assert_eq!(key("none"), Some([0; 7]));
    assert_eq!(key("D =c"), Some([0, 0, 0, 1, 0, 0, 0]));
    assert_eq!(key("D exp _b ^f"), Some([0, 0, 0, 1, 0, 0, -1]));
    assert_eq!(key("G clef=bass"), key("G"));
    assert_eq!(key("Am clef=treble octave=-1"), Some([0; 7]));
    assert_eq!(key("clef=bass"), None);
    assert_eq!(key(""), None);
}

#[test]
fn meters_and_unit_lengths() {
    assert_eq!(parse_meter("6/8"), Some((6, 8)));
    assert_eq!(parse_meter("C"), Some((4, 4)));
    assert_eq!(parse_meter("C|"), Some((2, 2)));
    assert_eq!(parse_meter("(2+3)/8"), Some((5, 8)));
    assert_eq!(parse_meter("none"), None);
    assert_eq!(default_unit(Some((2, 4))), Ratio::new(1, 16));
    assert_eq!(default_unit(Some((3, 4))), Ratio::new(1, 8));
    assert_eq!(default_unit(None), Ratio::new(1, 8));
    assert_eq!(parse_unit("1/16"), Some(Ratio::new(1, 16)));
    assert_eq!(parse_unit("1"), Some(Ratio::ONE));
    assert_eq!(parse_unit("1/0"), None);
    assert!(is_compound(Some((9, 8))) && !is_compound(Some((3, 4))));
}

#[test]
fn ratios_stay_reduced_and_positive() {
    assert_eq!(Ratio::new(2, 16), Ratio::new(1, 8));
    assert_eq!(Ratio::new(1, 8) + Ratio::new(1, 16), Ratio::new(3, 16));
    assert_eq!(Ratio::new(3, 2) * Ratio::new(2, 3), Ratio::ONE);
    assert_eq!(Ratio::new(0, 0), Ratio::ONE);
    let huge = Ratio::new(u64::MAX, 3);
    assert!(huge.num() > 0 && huge.den() > 0);
}

#[test]
fn transpositions_in_words() {
    assert_eq!(describe_transposition(0), "same key");
    assert_eq!(describe_transposition(12), "same key");
    assert_eq!(describe_transposition(5), "up a perfect 4th");
    assert_eq!(describe_transposition(-7), "up a perfect 4th");
    assert_eq!(describe_transposition(7), "down a perfect 4th");
    assert_eq!(describe_transposition(-3), "down a minor 3rd");
    assert_eq!(describe_transposition(6), "a tritone away");
    assert_eq!(transposition_of([5, 5, 7, -127, 5]), Some(5));
    assert_eq!(transposition_of([2, -1]), Some(-1));
    assert_eq!(transposition_of(std::iter::empty()), None);
}

#[test]
fn long_sequences_align_by_position() {
    let note = |pitch| Note {
        pitch,
        duration: Ratio::new(1, 8),
        range: TextRange::default(),
    };
    let a: Vec<Note> = (0..1100).map(|i| note(60 + (i % 7) as i16)).collect();
    let b: Vec<Note> = a.iter().take(1000).map(|n| note(n.pitch + 2)).collect();
    let al = align(&a, &b);
    assert_eq!(al.transposition, 2);
    assert_eq!((al.same(), al.dropped()), (1000, 100));
}

#[test]
fn a_melody_aligns_with_itself_even_when_its_neighbours_outvote_the_diagonal() {
    let note = |pitch| Note {
        pitch,
        duration: Ratio::new(1, 8),
        range: TextRange::default(),
    };
    // Pairs two notes apart differ by a tone as often as pairs in place agree, so the banded
    // vote alone says "up a tone" (found by the property test in tests/notes.rs).
    let a: Vec<Note> = [69, 71, 67, 69, 65, 67].into_iter().map(note).collect();
    let al = align(&a, &a);
    assert_eq!((al.transposition, al.same()), (0, a.len()), "{al:?}");
}

#[test]
fn stepped_notes_keep_the_rhythm_and_move_at_most_a_tone() {
    let n = |pitch, den| Note {
        pitch,
        duration: Ratio::new(1, den),
        range: TextRange::default(),
    };
    // Up a 4th, with one note moved a tone, one a third, one lengthened.
    let a = [
        n(60, 8),
        n(62, 8),
        n(64, 8),
        n(65, 8),
        n(67, 8),
        n(69, 8),
        n(71, 8),
    ];
    let b = [
        n(65, 8),
        n(69, 8),
        n(72, 8),
        n(70, 4),
        n(72, 8),
        n(74, 8),
        n(76, 8),
    ];
    let al = align(&a, &b);
    assert_eq!(al.transposition, 5);
    assert_eq!((al.same(), al.changed()), (4, 3));
    assert_eq!(al.stepped(&a, &b), 1, "{al:?}");
    // Melodies other than the aligned ones count nothing out of range.
    assert_eq!(al.stepped(&[], &[]), 0);
}

#[test]
fn steps_are_intervals_and_log_ratios() {
    let n = |pitch, num, den| Note {
        pitch,
        duration: Ratio::new(num, den),
        range: TextRange::default(),
    };
    assert_eq!(
        step(&n(60, 1, 8), &n(67, 3, 16)),
        Step {
            interval: 7,
            duration: 1
        }
    );
    assert_eq!(step(&n(67, 1, 4), &n(60, 1, 8)).duration, -2);
    let notes = [n(60, 1, 8), n(62, 1, 8), n(64, 1, 4)];
    assert_eq!(interval_ngrams(&notes, 2).len(), 1);
    assert!(interval_ngrams(&notes, 3).is_empty());
    assert!(interval_ngrams(&notes, 0).is_empty());
}
