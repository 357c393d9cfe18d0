//! The batching queue in front of the model thread (after text-embeddings-inference's
//! `core/src/queue.rs`): one OS thread owns the model; requests wait in two queues and the
//! thread takes all interactive work waiting (an editor's changed bars) as one batch before any
//! background work (a corpus being indexed), so a keystroke waits for at most one background
//! batch. Callers block on a reply channel; async callers do so from `spawn_blocking`.

use std::collections::VecDeque;
use std::sync::{mpsc, Arc, Condvar, Mutex};

use tunelens_models::encoders::{
    EmbeddingBackend, Embeddings, LongTunes, ModelError, MusicBatch, TextBatch,
};

use tunelens_models::abc::MusicView;
use tunelens_models::encoders::PatchIds;

/// Who is waiting: interactive work goes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Priority {
    Interactive,
    Background,
}

enum Work {
    Music(Vec<Vec<PatchIds>>),
    Text(Vec<String>),
}

impl Work {
    fn len(&self) -> usize {
        match self {
            Work::Music(t) => t.len(),
            Work::Text(t) => t.len(),
        }
    }
}

struct Job {
    work: Work,
    reply: mpsc::SyncSender<Result<Embeddings, String>>,
}

#[derive(Default)]
struct State {
    interactive: VecDeque<Job>,
    background: VecDeque<Job>,
    /// Inputs waiting, and in the batch being run.
    pending: usize,
    running: usize,
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

/// A handle to the model thread; cheap to clone. The thread stops when the last handle goes.
#[derive(Clone)]
pub struct EmbedQueue {
    shared: Arc<Shared>,
    dim: usize,
    max_batch: usize,
    view: MusicView,
    _owner: Arc<Owner>,
}

/// Closes the queue when the last handle is dropped, so the thread ends.
struct Owner(Arc<Shared>);

impl Drop for Owner {
    fn drop(&mut self) {
        if let Ok(mut s) = self.0.state.lock() {
            s.closed = true;
        }
        self.0.wake.notify_all();
    }
}

impl EmbedQueue {
    /// Moves `model` onto its own thread.
    pub fn start(model: Box<dyn EmbeddingBackend + Send>) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let dim = model.dim();
        let view = model.music_view();
        let max_batch = model.max_batch_size().unwrap_or(64).max(1);
        let worker = shared.clone();
        std::thread::Builder::new()
            .name("tunelens-model".into())
            .spawn(move || run(&*model, &worker, max_batch))
            .expect("spawning the model thread");
        Self {
            _owner: Arc::new(Owner(shared.clone())),
            shared,
            dim,
            max_batch,
            view,
        }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    /// How the model on the queue reads music.
    pub fn music_view(&self) -> MusicView {
        self.view
    }

    /// (inputs waiting, inputs in the running batch).
    pub fn load(&self) -> (usize, usize) {
        self.shared
            .state
            .lock()
            .map(|s| (s.pending, s.running))
            .unwrap_or((0, 0))
    }

    /// Music vectors (normalised) for each tune's patches, in order.
    pub fn embed_music(
        &self,
        tunes: Vec<Vec<PatchIds>>,
        priority: Priority,
    ) -> Result<Embeddings, String> {
        if tunes.is_empty() {
            return Ok(Vec::new());
        }
        self.submit(Work::Music(tunes), priority)
    }

    /// Text vectors (normalised), in order.
    pub fn embed_text(&self, texts: Vec<String>, priority: Priority) -> Result<Embeddings, String> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        self.submit(Work::Text(texts), priority)
    }

    fn submit(&self, work: Work, priority: Priority) -> Result<Embeddings, String> {
        let (reply, answer) = mpsc::sync_channel(1);
        {
            let mut s = self
                .shared
                .state
                .lock()
                .map_err(|_| "the model thread died".to_owned())?;
            s.pending += work.len();
            let job = Job { work, reply };
            match priority {
                Priority::Interactive => s.interactive.push_back(job),
                Priority::Background => s.background.push_back(job),
            }
        }
        self.shared.wake.notify_one();
        answer
            .recv()
            .map_err(|_| "the model thread stopped".to_owned())?
    }

    /// This queue as an [`EmbeddingBackend`] at `priority`, for `index::index_files`.
    pub fn backend(&self, priority: Priority) -> QueueBackend {
        QueueBackend {
            queue: self.clone(),
            priority,
        }
    }
}

/// The model thread: take a batch, run it, answer each job.
fn run(model: &dyn EmbeddingBackend, shared: &Shared, max_batch: usize) {
    loop {
        let jobs = {
            let Ok(mut s) = shared.state.lock() else {
                return;
            };
            while s.interactive.is_empty() && s.background.is_empty() && !s.closed {
                s = match shared.wake.wait(s) {
                    Ok(s) => s,
                    Err(_) => return,
                };
            }
            if s.interactive.is_empty() && s.background.is_empty() {
                return;
            }
            let jobs = take_batch(&mut s, max_batch);
            let n: usize = jobs.iter().map(|j| j.work.len()).sum();
            s.pending -= n;
            s.running = n;
            jobs
        };
        // The batch stops counting as running before anyone hears back, so a caller that
        // asks for the load after its answer never sees its own batch.
        run_jobs(model, jobs, || {
            if let Ok(mut s) = shared.state.lock() {
                s.running = 0;
            }
        });
    }
}

/// All waiting interactive music jobs up to `max_batch` inputs (at least one job), else one
/// interactive text job, else one background job.
fn take_batch(s: &mut State, max_batch: usize) -> Vec<Job> {
    let mut jobs = Vec::new();
    let mut n = 0;
    while let Some(job) = s.interactive.front() {
        let music = matches!(job.work, Work::Music(_));
        if !jobs.is_empty() && (!music || n + job.work.len() > max_batch) {
            break;
        }
        let Some(job) = s.interactive.pop_front() else {
            break;
        };
        n += job.work.len();
        jobs.push(job);
        if !music {
            break;
        }
    }
    if jobs.is_empty() {
        jobs.extend(s.background.pop_front());
    }
    jobs
}

fn run_jobs(model: &dyn EmbeddingBackend, jobs: Vec<Job>, ran: impl FnOnce()) {
    if let [Job {
        work: Work::Text(texts),
        ..
    }] = jobs.as_slice()
    {
        let result = model
            .embed_text(&TextBatch {
                texts: texts.clone(),
            })
            .map_err(|e| e.to_string());
        ran();
        let _ = jobs[0].reply.send(result);
        return;
    }
    // Music jobs, run as one call; the model buckets by length inside.
    let mut tunes = Vec::new();
    let mut sizes = Vec::new();
    for job in &jobs {
        if let Work::Music(t) = &job.work {
            sizes.push(t.len());
            tunes.extend(t.iter().cloned());
        }
    }
    let result = model.embed_music(&MusicBatch {
        tunes,
        long_tunes: LongTunes::Segment,
    });
    ran();
    match result {
        Ok(mut vectors) => {
            for (job, size) in jobs.into_iter().zip(sizes) {
                let rest = vectors.split_off(size.min(vectors.len()));
                let mine = std::mem::replace(&mut vectors, rest);
                // A caller that went away (a cancelled request) is no error.
                let _ = job.reply.send(Ok(mine));
            }
        }
        Err(e) => {
            let message = e.to_string();
            tracing::error!(error = %message, "the model failed");
            for job in jobs {
                let _ = job.reply.send(Err(message.clone()));
            }
        }
    }
}

/// The queue seen as a model, at one priority.
pub struct QueueBackend {
    queue: EmbedQueue,
    priority: Priority,
}

fn queue_error(reason: String) -> ModelError {
    ModelError::Device {
        spec: "model thread".into(),
        reason,
    }
}

impl EmbeddingBackend for QueueBackend {
    fn health(&self) -> tunelens_models::encoders::Result<()> {
        Ok(())
    }

    fn max_batch_size(&self) -> Option<usize> {
        Some(self.queue.max_batch)
    }

    fn dim(&self) -> usize {
        self.queue.dim
    }

    fn music_view(&self) -> MusicView {
        self.queue.view
    }

    fn embed_music(&self, batch: &MusicBatch) -> tunelens_models::encoders::Result<Embeddings> {
        self.queue
            .embed_music(batch.tunes.clone(), self.priority)
            .map_err(queue_error)
    }

    fn embed_text(&self, batch: &TextBatch) -> tunelens_models::encoders::Result<Embeddings> {
        self.queue
            .embed_text(batch.texts.clone(), self.priority)
            .map_err(queue_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A model whose vector is [number of patches, call number]: it shows which inputs
    /// shared a call.
    struct Counting(Arc<AtomicUsize>);

    impl EmbeddingBackend for Counting {
        fn health(&self) -> tunelens_models::encoders::Result<()> {
            Ok(())
        }
        fn max_batch_size(&self) -> Option<usize> {
            Some(1000)
        }
        fn dim(&self) -> usize {
            2
        }
        fn embed_music(&self, b: &MusicBatch) -> tunelens_models::encoders::Result<Embeddings> {
            let call = self.0.fetch_add(1, Ordering::SeqCst) as f32;
            std::thread::sleep(std::time::Duration::from_millis(20));
            Ok(b.tunes.iter().map(|t| vec![t.len() as f32, call]).collect())
        }
        fn embed_text(&self, b: &TextBatch) -> tunelens_models::encoders::Result<Embeddings> {
            Ok(b.texts.iter().map(|t| vec![t.len() as f32, -1.0]).collect())
        }
    }

    #[test]
    fn waiting_interactive_jobs_share_one_call_and_answers_stay_in_order() {
        let calls = Arc::new(AtomicUsize::new(0));
        let queue = EmbedQueue::start(Box::new(Counting(calls.clone())));
        let handles: Vec<_> = (1..=8)
            .map(|n| {
                let q = queue.clone();
                std::thread::spawn(move || {
                    let tunes = vec![vec![[0u8; 64]; n], vec![[0u8; 64]; n + 100]];
                    q.embed_music(tunes, Priority::Interactive).expect("embeds")
                })
            })
            .collect();
        for (n, h) in (1..=8).zip(handles) {
            let v = h.join().expect("thread");
            assert_eq!(v[0][0], n as f32);
            assert_eq!(v[1][0], (n + 100) as f32);
        }
        // 8 jobs came while the first call ran: far fewer calls than jobs.
        assert!(calls.load(Ordering::SeqCst) < 8, "{calls:?}");
        assert_eq!(
            queue
                .embed_text(vec!["abc".into()], Priority::Background)
                .expect("text"),
            vec![vec![3.0, -1.0]]
        );
        assert_eq!(queue.load(), (0, 0));
    }
}
