//! Exact time in whole notes. MusicXML counts in `divisions` per quarter note, which may change
//! from measure to measure, and tuplets make thirds and fifths: only fractions keep onsets and
//! lengths exact. Input numbers are clamped where they are read (see `read.rs`), and every
//! operation here saturates instead of overflowing, so hostile input can skew a length but
//! never panic.

use std::cmp::Ordering;
use std::fmt;

#[derive(Debug, Clone, Copy)]
pub struct Frac {
    num: i128,
    den: i128,
}

const LIMIT: i128 = 1 << 100;

fn gcd(mut a: i128, mut b: i128) -> i128 {
    a = a.abs();
    b = b.abs();
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

impl Default for Frac {
    fn default() -> Frac {
        Frac::ZERO
    }
}

impl Frac {
    pub const ZERO: Frac = Frac { num: 0, den: 1 };

    pub fn new(num: i128, den: i128) -> Frac {
        if den == 0 {
            return Frac::ZERO;
        }
        let g = gcd(num, den);
        let (mut num, mut den) = (num / g, den / g);
        if den < 0 {
            (num, den) = (-num, -den);
        }
        // Far beyond any real score: keep the value roughly, in bounded numbers.
        while num.abs() > LIMIT || den > LIMIT {
            num /= 2;
            den = (den / 2).max(1);
        }
        Frac { num, den }
    }

    pub fn int(n: i64) -> Frac {
        Frac::new(n.into(), 1)
    }

    pub fn num(self) -> i128 {
        self.num
    }

    pub fn den(self) -> i128 {
        self.den
    }

    pub fn is_positive(self) -> bool {
        self.num > 0
    }

    pub fn add(self, o: Frac) -> Frac {
        let g = gcd(self.den, o.den);
        let den = (self.den / g).saturating_mul(o.den);
        let num = self
            .num
            .saturating_mul(o.den / g)
            .saturating_add(o.num.saturating_mul(self.den / g));
        Frac::new(num, den)
    }

    pub fn sub(self, o: Frac) -> Frac {
        self.add(Frac {
            num: -o.num,
            den: o.den,
        })
    }

    pub fn mul(self, o: Frac) -> Frac {
        let a = gcd(self.num, o.den);
        let b = gcd(o.num, self.den);
        Frac::new(
            (self.num / a).saturating_mul(o.num / b),
            (self.den / b).saturating_mul(o.den / a),
        )
    }

    pub fn max(self, o: Frac) -> Frac {
        if self >= o {
            self
        } else {
            o
        }
    }
}

impl PartialEq for Frac {
    fn eq(&self, o: &Frac) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}

impl Eq for Frac {}

impl PartialOrd for Frac {
    fn partial_cmp(&self, o: &Frac) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl Ord for Frac {
    fn cmp(&self, o: &Frac) -> Ordering {
        // Both are normalised with bounded parts, so the cross products fit.
        self.num
            .saturating_mul(o.den)
            .cmp(&o.num.saturating_mul(self.den))
    }
}

impl fmt::Display for Frac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.num, self.den)
    }
}

#[cfg(test)]
mod tests {
    use super::Frac;

    #[test]
    fn arithmetic_is_exact() {
        let third = Frac::new(1, 3);
        let sixth = Frac::new(1, 6);
        assert_eq!(third.add(sixth), Frac::new(1, 2));
        assert_eq!(third.sub(third), Frac::ZERO);
        assert_eq!(third.mul(Frac::new(3, 2)), Frac::new(1, 2));
        assert!(Frac::new(-1, 2) < Frac::ZERO);
        assert_eq!(Frac::new(2, -4), Frac::new(-1, 2));
    }

    #[test]
    fn huge_numbers_saturate_instead_of_panicking() {
        let big = Frac::new(i128::MAX, 3);
        let _ = big.add(big).mul(big).sub(Frac::new(1, i128::MAX));
    }
}
