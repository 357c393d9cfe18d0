//! The embedding contract the daemon drives: small, synchronous, over plain data, after
//! text-embeddings-inference's `backends/core` (`health`, `max_batch_size`, `embed`). Queues,
//! threads and async live in the caller; a model only turns batches into vectors.

use super::batch::LongTunes;
use super::clamp::{normalize, Clamp};
use super::error::Result;
use super::music::PatchIds;
use crate::abc::MusicView;

/// Tunes to embed, each its patches.
#[derive(Clone, Debug, Default)]
pub struct MusicBatch {
    pub tunes: Vec<Vec<PatchIds>>,
    pub long_tunes: LongTunes,
}

/// Texts to embed.
#[derive(Clone, Debug, Default)]
pub struct TextBatch {
    pub texts: Vec<String>,
}

/// One vector per input, in input order.
pub type Embeddings = Vec<Vec<f32>>;

pub trait EmbeddingBackend {
    /// Fails when the model cannot embed (e.g. the device went away).
    fn health(&self) -> Result<()>;
    /// The most inputs one call should carry; the caller splits larger batches.
    fn max_batch_size(&self) -> Option<usize>;
    /// The width of every vector.
    fn dim(&self) -> usize;
    /// L2-normalised music vectors.
    fn embed_music(&self, batch: &MusicBatch) -> Result<Embeddings>;
    /// L2-normalised text vectors.
    fn embed_text(&self, batch: &TextBatch) -> Result<Embeddings>;
    /// How the model reads music: patch its inputs with `Patchilizer::with_view` of this.
    fn music_view(&self) -> MusicView {
        MusicView::Reference
    }
}

impl EmbeddingBackend for Clamp {
    fn health(&self) -> Result<()> {
        // One tiny forward proves the weights and device work.
        self.music_batch(&[&[[0u8; super::music::PATCH_LENGTH]]])
            .map(|_| ())
    }

    fn max_batch_size(&self) -> Option<usize> {
        Some(self.limits().max_items * 4)
    }

    fn dim(&self) -> usize {
        Clamp::dim(self)
    }

    fn music_view(&self) -> MusicView {
        Clamp::music_view(self)
    }

    fn embed_music(&self, batch: &MusicBatch) -> Result<Embeddings> {
        let tunes: Vec<&[PatchIds]> = batch.tunes.iter().map(Vec::as_slice).collect();
        let mut out = self.music_features(&tunes, batch.long_tunes)?;
        out.iter_mut().for_each(|v| normalize(v));
        Ok(out)
    }

    fn embed_text(&self, batch: &TextBatch) -> Result<Embeddings> {
        let texts: Vec<&str> = batch.texts.iter().map(String::as_str).collect();
        let mut out = self.text_features(&texts)?;
        out.iter_mut().for_each(|v| normalize(v));
        Ok(out)
    }
}

/// The daemon moves a model onto its own thread and may share it: keep it `Send + Sync`.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Clamp>();
    assert_send_sync::<super::sentence::SentenceEncoder>();
};
