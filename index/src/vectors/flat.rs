//! The embedded backend: rows in memory in the exact SIMD flat index, with the little metadata
//! a filter needs beside them.

use std::collections::HashMap;
use std::sync::RwLock;

use tunelens_models::abc::Level;

use super::{Filter, Result, Row, RowId, VectorHit, VectorStore};
use crate::id_table::IdTable;
use crate::locks::{read, write};
use crate::search::{FlatIndex, Hit, Precision, ScanMode};

/// Below this many rows a scan takes a millisecond or two anyway, and fitting a basis (a few
/// hundred milliseconds) would not pay.
const BASIS_MIN_ROWS: usize = 65_536;

/// What a filter or a delete looks at, per row.
struct Meta {
    id: RowId,
    corpus: u32,
    file: u32,
    level: Level,
}

#[derive(Default)]
struct Rows {
    /// Slot (the flat index's id) → metadata; `None` once deleted (slots are not reused).
    meta: Vec<Option<Meta>>,
    /// Id → slot, reading each slot's id from `meta`.
    slot: IdTable,
    corpora: Vec<String>,
    files: HashMap<(u32, String), u32>,
}

impl Rows {
    fn corpus(&mut self, name: &str) -> u32 {
        match self.corpora.iter().position(|c| c == name) {
            Some(i) => i as u32,
            None => {
                self.corpora.push(name.to_owned());
                (self.corpora.len() - 1) as u32
            }
        }
    }

    fn file(&mut self, corpus: u32, path: &str) -> u32 {
        let next = self.files.len() as u32;
        *self.files.entry((corpus, path.to_owned())).or_insert(next)
    }

    fn selects(&self, filter: &Filter) -> impl Fn(&Meta) -> bool {
        let corpora: Option<Vec<u32>> = (!filter.corpora.is_empty()).then(|| {
            filter
                .corpora
                .iter()
                .filter_map(|c| self.corpora.iter().position(|x| x == c))
                .map(|i| i as u32)
                .collect()
        });
        let level = filter.level;
        move |m: &Meta| {
            level.is_none_or(|l| l == m.level)
                && corpora.as_ref().is_none_or(|c| c.contains(&m.corpus))
        }
    }
}

/// In-memory rows of one model, searched exactly.
pub struct FlatVectors {
    index: RwLock<FlatIndex>,
    rows: RwLock<Rows>,
}

impl FlatVectors {
    pub fn new(dim: usize) -> Result<Self> {
        Self::with_precision(dim, Precision::F32)
    }

    /// Rows stored at `precision` (the daemon keeps int8: see `search::Precision`).
    pub fn with_precision(dim: usize, precision: Precision) -> Result<Self> {
        Ok(Self {
            index: RwLock::new(FlatIndex::with_precision(
                dim,
                ScanMode::default(),
                precision,
            )?),
            rows: RwLock::new(Rows::default()),
        })
    }

    pub fn len(&self) -> usize {
        read(&self.index).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn delete_where(&self, gone: impl Fn(&Meta) -> bool) {
        let mut rows = write(&self.rows);
        let mut index = write(&self.index);
        let Rows { meta, slot, .. } = &mut *rows;
        for s in 0..meta.len() {
            if meta[s].as_ref().is_some_and(&gone) {
                if let Some(id) = meta[s].as_ref().map(|m| m.id) {
                    // Forgotten while `meta` still names it: the table finds it there.
                    slot.remove(&id, id_in(meta));
                }
                meta[s] = None;
                index.remove(s as u64);
            }
        }
    }
}

/// The stored vector of row `id`, decoded.
fn stored(rows: &Rows, index: &FlatIndex, id: &RowId) -> Option<Vec<f32>> {
    let slot = rows.slot.get(id, id_in(&rows.meta))?;
    Some(index.get(u64::from(slot))?.into_owned())
}

/// Each slot's id, as the slot table reads it.
fn id_in<'a>(meta: &'a [Option<Meta>]) -> impl Fn(u32) -> Option<&'a RowId> + 'a {
    move |s| meta.get(s as usize)?.as_ref().map(|m| &m.id)
}

impl VectorStore for FlatVectors {
    fn dim(&self) -> usize {
        read(&self.index).dim()
    }

    fn local_vector(&self, id: &RowId) -> Option<Vec<f32>> {
        stored(&read(&self.rows), &read(&self.index), id)
    }

    fn shrink_to_fit(&self) {
        let mut index = write(&self.index);
        // After a bulk load: an index worth scanning by row heads gets its basis now (before
        // the shrink, which then also gives back what the re-encoding did not use).
        if index.fit_basis(BASIS_MIN_ROWS) {
            tracing::debug!(
                rows = index.len(),
                head = index.scan_width(),
                "vectors re-encoded in a fitted basis"
            );
        }
        index.shrink_to_fit();
        drop(index);
        let mut rows = write(&self.rows);
        rows.meta.shrink_to_fit();
        let Rows { meta, slot, .. } = &mut *rows;
        slot.shrink_to_fit(id_in(meta));
        rows.files.shrink_to_fit();
    }

    fn upsert(&self, batch: &[Row<'_>]) -> Result<()> {
        let mut rows = write(&self.rows);
        let mut index = write(&self.index);
        for row in batch {
            let id = row.id();
            let slot = match rows.slot.get(&id, id_in(&rows.meta)) {
                Some(s) => u64::from(s),
                None => rows.meta.len() as u64,
            };
            // The index checks the vector first, so a refused one changes nothing.
            index.upsert(slot, row.vector)?;
            let corpus = rows.corpus(row.corpus);
            let file = rows.file(corpus, row.path);
            let meta = Meta {
                id,
                corpus,
                file,
                level: row.level,
            };
            if slot as usize == rows.meta.len() {
                rows.meta.push(Some(meta));
                let Rows {
                    meta, slot: slots, ..
                } = &mut *rows;
                // Slots are below u32::MAX: four billion rows do not fit in memory.
                slots.insert(&id, slot as u32, id_in(meta));
            } else {
                rows.meta[slot as usize] = Some(meta);
            }
        }
        Ok(())
    }

    fn delete_file(&self, corpus: &str, path: &str) -> Result<()> {
        let target = {
            let rows = read(&self.rows);
            let Some(c) = rows.corpora.iter().position(|x| x == corpus) else {
                return Ok(());
            };
            let Some(&f) = rows.files.get(&(c as u32, path.to_owned())) else {
                return Ok(());
            };
            f
        };
        self.delete_where(|m| m.file == target);
        Ok(())
    }

    fn delete_corpus(&self, corpus: &str) -> Result<()> {
        let Some(c) = read(&self.rows).corpora.iter().position(|x| x == corpus) else {
            return Ok(());
        };
        self.delete_where(|m| m.corpus == c as u32);
        Ok(())
    }

    fn delete(&self, ids: &[RowId]) -> Result<()> {
        let mut rows = write(&self.rows);
        let mut index = write(&self.index);
        for id in ids {
            let Rows { meta, slot, .. } = &mut *rows;
            if let Some(s) = slot.remove(id, id_in(meta)) {
                meta[s as usize] = None;
                index.remove(u64::from(s));
            }
        }
        Ok(())
    }

    fn top_k(
        &self,
        query: &[f32],
        k: usize,
        filter: &Filter,
        keep: &(dyn Fn(RowId) -> bool + Sync),
    ) -> Result<Vec<VectorHit>> {
        let rows = read(&self.rows);
        let selects = rows.selects(filter);
        let accept = |slot: u64| {
            rows.meta[slot as usize]
                .as_ref()
                .is_some_and(|m| selects(m) && keep(m.id))
        };
        let hits = read(&self.index).top_k(query, k, Some(&accept))?;
        Ok(hits
            .into_iter()
            .filter_map(|Hit { id, score }| {
                let m = rows.meta[id as usize].as_ref()?;
                Some(VectorHit { id: m.id, score })
            })
            .collect())
    }

    fn vectors(&self, ids: &[RowId]) -> Result<HashMap<RowId, Vec<f32>>> {
        let rows = read(&self.rows);
        let index = read(&self.index);
        Ok(ids
            .iter()
            .filter_map(|id| Some((*id, stored(&rows, &index, id)?)))
            .collect())
    }

    fn scores(&self, query: &[f32], ids: &[RowId]) -> Result<HashMap<RowId, f32>> {
        let rows = read(&self.rows);
        let slots: Vec<(RowId, u64)> = ids
            .iter()
            .filter_map(|id| Some((*id, u64::from(rows.slot.get(id, id_in(&rows.meta))?))))
            .collect();
        let only: Vec<u64> = slots.iter().map(|s| s.1).collect();
        let scores = read(&self.index).scores(query, &only)?;
        Ok(slots
            .into_iter()
            .zip(scores)
            .filter_map(|((id, _), s)| Some((id, s?)))
            .collect())
    }

    fn count(&self, filter: &Filter) -> Result<usize> {
        let rows = read(&self.rows);
        let selects = rows.selects(filter);
        Ok(rows.meta.iter().flatten().filter(|m| selects(m)).count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::ContentKey;

    fn unit(i: usize) -> Vec<f32> {
        let mut v = vec![0.01f32; 64];
        v[i] = 1.0;
        v
    }

    #[test]
    fn upsert_filter_delete_and_count() {
        let store = FlatVectors::new(64).expect("valid dim");
        let vs: Vec<Vec<f32>> = (0..6).map(unit).collect();
        let row = |corpus, path, u: usize, level| Row {
            corpus,
            path,
            unit: u,
            level,
            key: ContentKey([u as u8; 32]),
            vector: &vs[u],
        };
        let rows = [
            row("a", "/1", 0, Level::Tune),
            row("a", "/1", 1, Level::Passage),
            row("a", "/2", 2, Level::Passage),
            row("b", "/1", 3, Level::Passage),
        ];
        store.upsert(&rows).expect("valid rows");
        // The same rows again change nothing: ids come from (corpus, path, unit).
        store.upsert(&rows).expect("valid rows");
        assert_eq!(store.count(&Filter::default()).ok(), Some(4));
        let passages = Filter {
            corpora: vec!["a".into()],
            level: Some(Level::Passage),
        };
        assert_eq!(store.count(&passages).ok(), Some(2));
        let hits = store
            .top_k(&vs[3], 2, &passages, &|_| true)
            .expect("valid query");
        assert_eq!(hits.len(), 2);
        assert!(hits.iter().all(|h| h.id != RowId::new("b", "/1", 3)));
        let best = store
            .top_k(&vs[3], 1, &Filter::default(), &|_| true)
            .expect("valid query");
        assert_eq!(best[0].id, RowId::new("b", "/1", 3));
        assert!((best[0].score - 1.0).abs() < 1e-6);
        // Scores asked by id are the scan's, to the bit; absent ids are left out.
        let hits = store
            .top_k(&vs[2], 4, &Filter::default(), &|_| true)
            .expect("valid query");
        let ids: Vec<RowId> = hits.iter().map(|h| h.id).collect();
        let scores = store
            .scores(
                &vs[2],
                &[ids.as_slice(), &[RowId::new("c", "/9", 9)]].concat(),
            )
            .expect("valid query");
        assert_eq!(scores.len(), 4);
        for h in &hits {
            assert_eq!(scores[&h.id], h.score);
        }

        store.delete_file("a", "/1").expect("delete");
        assert_eq!(store.count(&Filter::default()).ok(), Some(2));
        store.delete_corpus("b").expect("delete");
        assert_eq!(store.count(&Filter::default()).ok(), Some(1));
        let left = store
            .vectors(&[RowId::new("a", "/2", 2), RowId::new("b", "/1", 3)])
            .expect("lookup");
        assert_eq!(left.len(), 1);
        // Deleted rows can come back.
        store.upsert(&rows[..1]).expect("valid rows");
        assert_eq!(store.count(&Filter::default()).ok(), Some(2));
    }
}
