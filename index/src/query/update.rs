//! A catalog kept current one file at a time: a file's record replaced (its unchanged units
//! keep their rows, vectors and postings) or removed.

use super::*;

impl Catalog {
    /// What the catalog holds outside `corpus`, as a number that differs whenever a file of
    /// another corpus was added, replaced or removed, or the catalog is another one. A caller
    /// that keeps answers which exclude `corpus` (the originality check leaves out the user's
    /// own files) can keep them while it stays the same, however often `corpus` changes.
    pub fn revision_outside(&self, corpus: &str) -> (u64, u64) {
        let outside = self
            .changes
            .iter()
            .filter(|(c, _)| c.as_str() != corpus)
            .map(|(_, n)| n)
            .sum();
        (self.instance, outside)
    }

    fn changed(&mut self, corpus: &str) {
        match self.changes.get_mut(corpus) {
            Some(n) => *n += 1,
            None => {
                self.changes.insert(corpus.to_owned(), 1);
            }
        }
    }

    /// Adds a file's units whose vectors the catalog's server already holds (the indexing
    /// job pushed them), replacing what the file had.
    pub fn upsert_record(
        &mut self,
        corpus: &str,
        record: Arc<FileRecord>,
    ) -> Result<(), QueryError> {
        self.insert(corpus, record, None, None)
    }

    /// Adds a file's units of this catalog's level, replacing what the file had, and writes
    /// their vectors to the catalog's store. `vector` gives each unit's vector; a unit without
    /// one is left out (a record names only stored vectors, see `index::job`, so a miss means
    /// it was removed by hand).
    /// `record` comes from [`shared_record`], so that both levels' catalogs hold one copy.
    pub fn upsert_file(
        &mut self,
        corpus: &str,
        record: Arc<FileRecord>,
        vector: &mut VectorOf<'_>,
    ) -> Result<(), QueryError> {
        self.insert(corpus, record, None, Some(vector))
    }

    /// `vector: None`: the store already holds the rows. `grams`: each unit's n-grams when
    /// the record's own were taken out (a bulk load keeps them only in the postings).
    pub(super) fn insert(
        &mut self,
        corpus: &str,
        record: Arc<FileRecord>,
        grams: Option<&[Box<[u32]>]>,
        mut vector: Option<&mut VectorOf<'_>>,
    ) -> Result<(), QueryError> {
        self.changed(corpus);
        // Units whose row already holds their vector (same place, same content) keep it: an
        // edit re-reads and re-writes only the vectors of the units it changed.
        let unchanged: std::collections::HashSet<usize> = self
            .by_path
            .get(&(corpus.to_owned(), record.path.clone()))
            .and_then(|&slot| self.slots[slot].as_ref())
            .map(|old| {
                old.rows
                    .iter()
                    .filter_map(|row| self.rows.get(row))
                    .filter(|r| {
                        old.record.units.get(r.unit()).map(|u| u.key)
                            == record.units.get(r.unit()).map(|u| u.key)
                    })
                    .map(|r| r.unit())
                    .collect()
            })
            .unwrap_or_default();
        let mut fetched = Vec::new();
        let mut units = Vec::new();
        let mut to_write = Vec::new();
        for (u, unit) in record.units.iter().enumerate() {
            if unit.level != self.level {
                continue;
            }
            if let Some(vector) = vector.as_mut() {
                if !unchanged.contains(&u) {
                    let Some(v) = vector(&unit.key)? else {
                        continue;
                    };
                    fetched.push(v);
                    to_write.push(u);
                }
            }
            units.push(u);
        }
        if let Some(first) = fetched.first() {
            if self.vectors.is_none() {
                self.vectors = Some(Box::new(FlatVectors::with_precision(
                    first.len(),
                    self.precision,
                )?));
            }
        }
        // Write the vectors before touching the bookkeeping: a refused vector (wrong width)
        // leaves the catalog as it was.
        if let Some(store) = &self.vectors {
            if !fetched.is_empty() {
                let rows: Vec<Row<'_>> = to_write
                    .iter()
                    .zip(&fetched)
                    .map(|(&u, v)| Row {
                        corpus,
                        path: &record.path,
                        unit: u,
                        level: self.level,
                        key: record.units[u].key,
                        vector: v,
                    })
                    .collect();
                store.upsert(&rows)?;
            }
        }
        let key = (corpus.to_owned(), record.path.clone());
        let slot = match self.by_path.get(&key) {
            Some(&slot) => slot,
            None => self.free.pop().unwrap_or_else(|| {
                self.slots.push(None);
                self.slots.len() - 1
            }),
        };
        let mut gone: HashMap<RowId, u32> = HashMap::new();
        if let Some(old) = self.slots[slot].take() {
            gone.extend(
                old.rows
                    .iter()
                    .filter_map(|&row| Some((self.rows.get(&row)?.id, row))),
            );
        }
        let mut rows = Vec::with_capacity(units.len());
        for &u in &units {
            let id = RowId::new(corpus, &record.path, u);
            let old = gone.remove(&id);
            // An unchanged unit keeps its row and its postings: an edit re-indexes only the
            // windows it touched (re-inserting all of a long file's rows grew the postings by
            // its whole size per keystroke until a sweep).
            if let (Some(row), true) = (old, unchanged.contains(&u)) {
                rows.push(row);
                continue;
            }
            if let Some(old) = old {
                self.symbolic.remove(old);
                // The id map reads ids from `rows`: forget it while the row still names it.
                self.row_of.remove(&id, id_in(&self.rows));
                self.rows.remove(&old);
            }
            // A new row number otherwise: the symbolic index drops a removed row's postings
            // lazily, so a number is never given to other n-grams.
            let row = self.next_row;
            self.next_row += 1;
            self.rows.insert(
                row,
                RowRef {
                    slot: slot as u32,
                    unit: u as u32,
                    id,
                },
            );
            self.row_of.insert(&id, row, id_in(&self.rows));
            let unit_grams = grams
                .and_then(|g| g.get(u))
                .unwrap_or(&record.units[u].ngrams);
            self.symbolic.insert(row, unit_grams);
            rows.push(row);
        }
        // Units the file no longer has (it got shorter, or lost a vector).
        let stale: Vec<RowId> = gone.keys().copied().collect();
        for (id, row) in gone {
            self.symbolic.remove(row);
            self.row_of.remove(&id, id_in(&self.rows));
            self.rows.remove(&row);
        }
        if let (Some(store), true) = (&self.vectors, vector.is_some() && !stale.is_empty()) {
            store.delete(&stale)?;
        }
        self.by_path.insert(key, slot);
        self.slots[slot] = Some(Entry {
            corpus: corpus.to_owned(),
            record,
            rows,
        });
        Ok(())
    }

    /// Drops a file's units (and their vectors, from an embedded store); returns whether it
    /// was there.
    pub fn remove_file(&mut self, corpus: &str, path: &str) -> Result<bool, QueryError> {
        let Some(slot) = self.by_path.remove(&(corpus.to_owned(), path.to_owned())) else {
            return Ok(false);
        };
        self.changed(corpus);
        if let Some(entry) = self.slots[slot].take() {
            for &row in &entry.rows {
                if let Some(id) = self.rows.get(&row).map(|r| r.id) {
                    self.row_of.remove(&id, id_in(&self.rows));
                }
                if self.rows.remove(&row).is_some() {
                    self.symbolic.remove(row);
                }
            }
            if let Some(store) = &self.vectors {
                store.delete_file(corpus, path)?;
            }
        }
        self.free.push(slot);
        Ok(true)
    }
}
