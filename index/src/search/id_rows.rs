//! The flat index's id → row map. A store that numbers its rows in order (the daemon's
//! embedded store hands out slots 0, 1, 2, …) gets a vector indexed by id, 4 bytes an id;
//! a hash map took 27 (16-byte entries in a table at most 7/8 full, rounded up to a power of
//! two): 8.9 MB for music21's 315k passages. Ids far from the rest go to a map.

use std::collections::HashMap;

/// `dense[id]` when absent.
const ABSENT: u32 = u32::MAX;

/// How far past the dense part a new id may land and still extend it (the gap is filled with
/// [`ABSENT`]).
const DENSE_GAP: u64 = 4096;

#[derive(Debug, Default)]
pub(crate) struct IdRows {
    dense: Vec<u32>,
    sparse: HashMap<u64, u32>,
    len: usize,
}

impl IdRows {
    pub fn get(&self, id: u64) -> Option<usize> {
        let row = match usize::try_from(id).ok().and_then(|i| self.dense.get(i)) {
            Some(&r) => r,
            None => *self.sparse.get(&id)?,
        };
        (row != ABSENT).then_some(row as usize)
    }

    pub fn contains(&self, id: u64) -> bool {
        self.get(id).is_some()
    }

    /// Maps `id` to `row`; returns the row it had.
    pub fn insert(&mut self, id: u64, row: usize) -> Option<usize> {
        // Rows are below u32::MAX: four billion vectors do not fit in memory.
        let row = u32::try_from(row).unwrap_or(ABSENT - 1);
        let dense = self.dense.len() as u64;
        let old = if id < dense {
            std::mem::replace(&mut self.dense[id as usize], row)
        } else if id < dense + DENSE_GAP && self.sparse.is_empty() {
            self.dense.resize(id as usize, ABSENT);
            self.dense.push(row);
            ABSENT
        } else {
            self.sparse.insert(id, row).unwrap_or(ABSENT)
        };
        if old == ABSENT {
            self.len += 1;
            None
        } else {
            Some(old as usize)
        }
    }

    pub fn remove(&mut self, id: u64) -> Option<usize> {
        let old = match usize::try_from(id).ok().and_then(|i| self.dense.get_mut(i)) {
            Some(r) => std::mem::replace(r, ABSENT),
            None => self.sparse.remove(&id).unwrap_or(ABSENT),
        };
        (old != ABSENT).then(|| {
            self.len -= 1;
            old as usize
        })
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn reserve(&mut self, additional: usize) {
        if self.sparse.is_empty() {
            self.dense.reserve(additional);
        } else {
            self.sparse.reserve(additional);
        }
    }

    pub fn shrink_to_fit(&mut self) {
        self.dense.shrink_to_fit();
        self.sparse.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any sequence of inserts and removes answers as a hash map does.
        #[test]
        fn answers_as_a_map(ops in proptest::collection::vec(
            (0u64..3, prop_oneof![0u64..64, 0u64..20_000, Just(u64::MAX)], 0usize..1000),
            0..300,
        )) {
            let mut ids = IdRows::default();
            let mut map: HashMap<u64, usize> = HashMap::new();
            for (op, id, row) in ops {
                match op {
                    0 | 1 => prop_assert_eq!(ids.insert(id, row), map.insert(id, row)),
                    _ => prop_assert_eq!(ids.remove(id), map.remove(&id)),
                }
                prop_assert_eq!(ids.len(), map.len());
                prop_assert_eq!(ids.get(id), map.get(&id).copied());
            }
            for (&id, &row) in &map {
                prop_assert_eq!(ids.get(id), Some(row));
            }
        }
    }

    #[test]
    fn ids_in_order_stay_dense() {
        let mut ids = IdRows::default();
        for id in 0..10_000u64 {
            ids.insert(id, id as usize);
        }
        assert!(ids.sparse.is_empty());
        assert_eq!(ids.get(9_999), Some(9_999));
        ids.insert(1 << 40, 5);
        assert_eq!(ids.get(1 << 40), Some(5));
        assert_eq!(ids.sparse.len(), 1);
    }
}
