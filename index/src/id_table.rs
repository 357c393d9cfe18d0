//! Row id → position, for tables that already keep each position's id. A `HashMap<RowId, _>`
//! stores the 16-byte id a second time in every entry (24–28 bytes an entry, in a table at
//! most 7/8 full and rounded up to a power of two): 13 MB beside the embedded store's
//! metadata and 11 MB beside the catalog's rows for music21's 315k passages. This table keeps
//! only the 4-byte position and reads the id where the caller already holds it.

use std::hash::BuildHasher;

use hashbrown::HashTable;

use crate::vectors::RowId;

#[derive(Default)]
pub(crate) struct IdTable {
    table: HashTable<u32>,
    hasher: std::collections::hash_map::RandomState,
}

impl IdTable {
    fn hash(&self, id: &RowId) -> u64 {
        self.hasher.hash_one(id)
    }

    /// The position whose id is `id`. `id_at` reads a position's id from the caller's table.
    pub fn get<'a>(&self, id: &RowId, id_at: impl Fn(u32) -> Option<&'a RowId>) -> Option<u32> {
        self.table
            .find(self.hash(id), |&p| id_at(p) == Some(id))
            .copied()
    }

    /// Maps `id` to `position`, replacing the position it had. The caller's table must give
    /// `id` at `position` from now on, and every other entry's id as when it was inserted.
    pub fn insert<'a>(
        &mut self,
        id: &RowId,
        position: u32,
        id_at: impl Fn(u32) -> Option<&'a RowId>,
    ) {
        let hash = self.hash(id);
        let hasher = &self.hasher;
        // Positions whose id the caller no longer has hash as 0: a stale entry then stays
        // unreachable instead of moving the table's other entries.
        let rehash = |&p: &u32| id_at(p).map_or(0, |i| hasher.hash_one(i));
        match self
            .table
            .find_entry(hash, |&p| p == position || id_at(p) == Some(id))
        {
            Ok(mut entry) => *entry.get_mut() = position,
            Err(_) => {
                self.table.insert_unique(hash, position, rehash);
            }
        }
    }

    /// Forgets `id`; call it while the caller's table still gives `id` at its position.
    pub fn remove<'a>(
        &mut self,
        id: &RowId,
        id_at: impl Fn(u32) -> Option<&'a RowId>,
    ) -> Option<u32> {
        let hash = self.hash(id);
        match self.table.find_entry(hash, |&p| id_at(p) == Some(id)) {
            Ok(entry) => Some(entry.remove().0),
            Err(_) => None,
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn shrink_to_fit<'a>(&mut self, id_at: impl Fn(u32) -> Option<&'a RowId>) {
        let hasher = &self.hasher;
        self.table
            .shrink_to_fit(|&p| id_at(p).map_or(0, |i| hasher.hash_one(i)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    proptest! {
        /// Inserts, moves and removes, with the caller's table kept as the contract says,
        /// answer as a hash map does.
        #[test]
        fn answers_as_a_map(ops in proptest::collection::vec((0u8..4, 0u8..40), 0..400)) {
            let id = |n: u8| RowId::new("c", "p", n as usize);
            // The caller's table: position → id, positions never reused.
            let mut at: Vec<Option<RowId>> = Vec::new();
            let mut table = IdTable::default();
            let mut map: HashMap<RowId, u32> = HashMap::new();
            for (op, n) in ops {
                let key = id(n);
                match op {
                    0 | 1 => {
                        // A new position for `key`; the old one is forgotten first.
                        if let Some(old) = map.get(&key) {
                            prop_assert_eq!(table.remove(&key, |p| at[p as usize].as_ref()), Some(*old));
                            at[*old as usize] = None;
                        }
                        at.push(Some(key));
                        let p = (at.len() - 1) as u32;
                        table.insert(&key, p, |p| at[p as usize].as_ref());
                        map.insert(key, p);
                    }
                    2 => {
                        let got = table.remove(&key, |p| at[p as usize].as_ref());
                        let want = map.remove(&key);
                        prop_assert_eq!(got, want);
                        if let Some(p) = got {
                            at[p as usize] = None;
                        }
                    }
                    _ => table.shrink_to_fit(|p| at[p as usize].as_ref()),
                }
                prop_assert_eq!(table.len(), map.len());
                for (k, &p) in &map {
                    prop_assert_eq!(table.get(k, |p| at[p as usize].as_ref()), Some(p));
                }
            }
        }
    }
}
