//! Features over notes: steps (interval and duration ratio), their n-gram hashes, the
//! transposition between two passages and their note-by-note alignment.

use super::*;

/// The step from one note to the next: what a melody keeps when it is transposed or played
/// at another tempo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Step {
    /// Semitones up (negative: down), clamped to ±127.
    pub interval: i8,
    /// `log2(next duration / this duration)` rounded to halves, times two, clamped to ±24:
    /// 0 same length, 2 twice as long, 1 dotted (3/2), -2 half as long.
    pub duration: i8,
}

/// The step from `a` to `b`.
pub fn step(a: &Note, b: &Note) -> Step {
    let interval = b.pitch.saturating_sub(a.pitch).clamp(-127, 127) as i8;
    let ratio = (f64::from(b.duration.num) * f64::from(a.duration.den))
        / (f64::from(b.duration.den) * f64::from(a.duration.num));
    let duration = (2.0 * ratio.log2()).round().clamp(-24.0, 24.0) as i8;
    Step { interval, duration }
}

/// The steps between consecutive notes (rests are never notes, so they are skipped).
pub fn steps(notes: &[Note]) -> impl Iterator<Item = Step> + '_ {
    notes.windows(2).map(|w| step(&w[0], &w[1]))
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// Hashes of the n-grams of `n` consecutive steps (so `n + 1` notes each), in order: the same
/// melody in another key or at another tempo gives the same hashes. FNV-1a over the steps'
/// bytes, so the values are the same on every run and platform and can be stored.
pub fn interval_ngrams(notes: &[Note], n: usize) -> Vec<u64> {
    let mut out = Vec::new();
    interval_ngrams_into(notes, n, &mut out);
    out
}

/// [`interval_ngrams`] appended to `out`, for callers that reuse one buffer.
pub fn interval_ngrams_into(notes: &[Note], n: usize, out: &mut Vec<u64>) {
    if n == 0 || notes.len() <= n {
        return;
    }
    out.reserve(notes.len() - n);
    for window in notes.windows(n + 1) {
        let mut h = FNV_OFFSET;
        for pair in window.windows(2) {
            let s = step(&pair[0], &pair[1]);
            for byte in [s.interval as u8, s.duration as u8] {
                h ^= u64::from(byte);
                h = h.wrapping_mul(FNV_PRIME);
            }
        }
        out.push(h);
    }
}

/// How far `b` lies above `a` in semitones: the most common pitch difference of the notes
/// paired by position (ties go to the smaller shift). `None` when there are no pairs.
pub fn transposition(a: &[Note], b: &[Note]) -> Option<i16> {
    transposition_of(
        a.iter()
            .zip(b)
            .map(|(x, y)| y.pitch.saturating_sub(x.pitch)),
    )
}

/// The most common of `differences` (pitch of the second minus the first, for notes an
/// alignment paired), ties going to the smaller shift.
pub fn transposition_of(differences: impl IntoIterator<Item = i16>) -> Option<i16> {
    // Pitches are 0..=127, so differences are -127..=127: a fixed table, no allocation.
    let mut counts = [0u32; 255];
    let mut any = false;
    for d in differences {
        counts[(d.clamp(-127, 127) + 127) as usize] += 1;
        any = true;
    }
    if !any {
        return None;
    }
    (-127i16..=127).max_by_key(|&d| (counts[(d + 127) as usize], std::cmp::Reverse(d.abs()), d))
}

/// A transposition in words, octaves ignored: "same key", "up a perfect 4th", "down a minor
/// 3rd", "a tritone away". Shifts are read as the nearer way round (7 up is "down a 4th").
pub fn describe_transposition(semitones: i16) -> &'static str {
    const UP: [&str; 7] = [
        "same key",
        "up a minor 2nd",
        "up a major 2nd",
        "up a minor 3rd",
        "up a major 3rd",
        "up a perfect 4th",
        "a tritone away",
    ];
    const DOWN: [&str; 6] = [
        "same key",
        "down a minor 2nd",
        "down a major 2nd",
        "down a minor 3rd",
        "down a major 3rd",
        "down a perfect 4th",
    ];
    let r = semitones.rem_euclid(12) as usize;
    if r <= 6 {
        UP[r]
    } else {
        DOWN[12 - r]
    }
}

/// One step of an [`Alignment`]: indices into the two sequences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "op")]
pub enum AlignOp {
    /// The same note (after the transposition) with the same duration.
    Same { a: u32, b: u32 },
    /// Notes paired in place but with another pitch or duration.
    Changed { a: u32, b: u32 },
    /// A note of `a` that `b` lacks.
    Dropped { a: u32 },
    /// A note of `b` that `a` lacks.
    Inserted { b: u32 },
}

/// How one melody maps onto another: the transposition and the note-by-note edit script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alignment {
    /// Semitones from `a` to `b` (see [`describe_transposition`]).
    pub transposition: i16,
    pub ops: Vec<AlignOp>,
}

impl Alignment {
    fn count(&self, f: impl Fn(&AlignOp) -> bool) -> usize {
        self.ops.iter().filter(|op| f(op)).count()
    }

    pub fn same(&self) -> usize {
        self.count(|op| matches!(op, AlignOp::Same { .. }))
    }

    pub fn changed(&self) -> usize {
        self.count(|op| matches!(op, AlignOp::Changed { .. }))
    }

    pub fn dropped(&self) -> usize {
        self.count(|op| matches!(op, AlignOp::Dropped { .. }))
    }

    pub fn inserted(&self) -> usize {
        self.count(|op| matches!(op, AlignOp::Inserted { .. }))
    }

    /// Changed pairs that keep the rhythm and move the note by a step (at most a whole tone,
    /// after the transposition): the passing and neighbour notes a player varies a tune with,
    /// as against another note altogether. `a` and `b` are the melodies that were aligned.
    pub fn stepped(&self, a: &[Note], b: &[Note]) -> usize {
        self.count(|op| match *op {
            AlignOp::Changed { a: i, b: j } => match (a.get(i as usize), b.get(j as usize)) {
                (Some(x), Some(y)) => {
                    let moved = y.pitch - x.pitch - self.transposition;
                    x.duration == y.duration && moved != 0 && moved.abs() <= 2
                }
                _ => false,
            },
            _ => false,
        })
    }
}

/// Longest sequences [`align`] compares with a full edit-distance table; longer ones are
/// paired by position, which keeps memory bounded on whole tunes.
const MAX_ALIGN_CELLS: usize = 1 << 20;

/// Aligns melody `b` to melody `a` for an explanation ("up a 4th, 2 of 24 notes differ"):
/// candidate transpositions are read from pitch differences of notes near the same relative
/// position (so an inserted note does not throw them off), an edit distance pairs the notes
/// under each, the cheapest wins, and the transposition is re-read from its pairs.
pub fn align(a: &[Note], b: &[Note]) -> Alignment {
    let ops_for = |t: i16| {
        if (a.len() + 1) * (b.len() + 1) > MAX_ALIGN_CELLS {
            positional_ops(a, b, t)
        } else {
            edit_ops(a, b, t)
        }
    };
    // The banded vote alone can pick a wrong shift: in a run of steps the neighbours' ±1 and
    // ±2 can outvote the diagonal's 0. Trying the leading votes, and "same key" always,
    // costs a few tables and makes a melody aligned to itself come out all "same".
    let mut candidates = banded_transpositions(a, b, 3);
    if !candidates.contains(&0) {
        candidates.push(0);
    }
    let (guess, (_, ops)) = candidates
        .into_iter()
        .map(|t| (t, ops_for(t)))
        .min_by_key(|(_, (cost, _))| *cost)
        .unwrap_or((0, ops_for(0)));
    let paired = ops.iter().filter_map(|op| match *op {
        AlignOp::Same { a: i, b: j } | AlignOp::Changed { a: i, b: j } => {
            Some(b[j as usize].pitch.saturating_sub(a[i as usize].pitch))
        }
        _ => None,
    });
    Alignment {
        transposition: transposition_of(paired).unwrap_or(guess),
        ops,
    }
}

/// The `k` most common pitch differences, most common first, among pairs at most two notes
/// from the same relative position in both sequences.
fn banded_transpositions(a: &[Note], b: &[Note], k: usize) -> Vec<i16> {
    let (n, m) = (a.len(), b.len());
    let mut counts = [0u32; 255];
    for (i, x) in a.iter().enumerate() {
        let centre = if n > 1 {
            i * m.saturating_sub(1) / (n - 1)
        } else {
            0
        };
        let band = centre.saturating_sub(2)..(centre + 3).min(m);
        for y in b.get(band).unwrap_or_default() {
            let d = y.pitch.saturating_sub(x.pitch).clamp(-127, 127);
            counts[(d + 127) as usize] += 1;
        }
    }
    let mut shifts: Vec<i16> = (-127i16..=127)
        .filter(|&d| counts[(d + 127) as usize] > 0)
        .collect();
    // Ties go to the smaller shift, as in `transposition_of`.
    shifts.sort_by_key(|&d| {
        (
            std::cmp::Reverse(counts[(d + 127) as usize]),
            d.abs(),
            std::cmp::Reverse(d),
        )
    });
    shifts.truncate(k);
    shifts
}

fn pair_op(a: &[Note], b: &[Note], i: usize, j: usize, t: i16) -> AlignOp {
    let (x, y) = (&a[i], &b[j]);
    let (i, j) = (i as u32, j as u32);
    if x.pitch.saturating_add(t) == y.pitch && x.duration == y.duration {
        AlignOp::Same { a: i, b: j }
    } else {
        AlignOp::Changed { a: i, b: j }
    }
}

/// Pairs by position; returns the edit cost (changes plus the length difference) and the ops.
fn positional_ops(a: &[Note], b: &[Note], t: i16) -> (usize, Vec<AlignOp>) {
    let common = a.len().min(b.len());
    let mut ops: Vec<AlignOp> = (0..common).map(|i| pair_op(a, b, i, i, t)).collect();
    ops.extend((common..a.len()).map(|i| AlignOp::Dropped { a: i as u32 }));
    ops.extend((common..b.len()).map(|j| AlignOp::Inserted { b: j as u32 }));
    let cost = ops
        .iter()
        .filter(|op| !matches!(op, AlignOp::Same { .. }))
        .count();
    (cost, ops)
}

/// Levenshtein alignment (a change, a drop and an insertion cost 1 each) with traceback;
/// returns the distance and the ops.
fn edit_ops(a: &[Note], b: &[Note], t: i16) -> (usize, Vec<AlignOp>) {
    let (n, m) = (a.len(), b.len());
    let w = m + 1;
    let mut cost = vec![0u32; (n + 1) * w];
    for i in 0..=n {
        for j in 0..=m {
            cost[i * w + j] = match (i, j) {
                (0, _) => j as u32,
                (_, 0) => i as u32,
                _ => {
                    let sub = u32::from(matches!(
                        pair_op(a, b, i - 1, j - 1, t),
                        AlignOp::Changed { .. }
                    ));
                    (cost[(i - 1) * w + j - 1] + sub)
                        .min(cost[(i - 1) * w + j] + 1)
                        .min(cost[i * w + j - 1] + 1)
                }
            };
        }
    }
    let (mut i, mut j) = (n, m);
    let mut ops = Vec::with_capacity(n.max(m));
    while i > 0 || j > 0 {
        let here = cost[i * w + j];
        if i > 0 && j > 0 {
            let op = pair_op(a, b, i - 1, j - 1, t);
            let sub = u32::from(matches!(op, AlignOp::Changed { .. }));
            if here == cost[(i - 1) * w + j - 1] + sub {
                ops.push(op);
                (i, j) = (i - 1, j - 1);
                continue;
            }
        }
        if i > 0 && (j == 0 || here == cost[(i - 1) * w + j] + 1) {
            ops.push(AlignOp::Dropped { a: (i - 1) as u32 });
            i -= 1;
        } else {
            ops.push(AlignOp::Inserted { b: (j - 1) as u32 });
            j -= 1;
        }
    }
    ops.reverse();
    (cost[n * w + m] as usize, ops)
}
