//! Watching the indexed folders (workspace folders and corpora) with `notify`, debounced: edits
//! made outside the editor, new files, renames and deletions reach the host as a list of
//! changed `.abc` paths, which it re-indexes or forgets.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::{EventKind, RecursiveMode};
use notify_debouncer_full::{new_debouncer, DebounceEventResult, Debouncer, RecommendedCache};

use crate::analysis::workspace::is_music_file;
use crate::analysis::Host;

/// Events closer together than this are one change (an editor's save is several).
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// How often new roots (a corpus added by configuration) are picked up.
const ROOT_POLL: Duration = Duration::from_millis(500);

type Inner = Debouncer<notify::RecommendedWatcher, RecommendedCache>;

/// Watches while it lives.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    _debouncer: Arc<Mutex<Inner>>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

impl Watcher {
    pub fn start(host: Arc<Host>) -> notify::Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel::<Vec<PathBuf>>();
        let debouncer = new_debouncer(DEBOUNCE, None, move |result: DebounceEventResult| {
            let events = match result {
                Ok(events) => events,
                Err(errors) => {
                    for e in errors {
                        tracing::warn!(error = %e, "file watching");
                    }
                    return;
                }
            };
            let mut paths: Vec<PathBuf> = events
                .iter()
                // Reading a file is an access event too: indexing it must not trigger
                // another indexing of it.
                .filter(|e| !matches!(e.event.kind, EventKind::Access(_)))
                .flat_map(|e| e.event.paths.iter())
                .filter(|p| is_music_file(p))
                .cloned()
                .collect();
            paths.sort();
            paths.dedup();
            if !paths.is_empty() {
                let _ = tx.send(paths);
            }
        })?;
        let debouncer = Arc::new(Mutex::new(debouncer));
        let stop = Arc::new(AtomicBool::new(false));
        // Changed files are indexed on their own thread, one list after another.
        let worker = host.clone();
        std::thread::Builder::new()
            .name("tunelens-watch".into())
            .spawn(move || {
                for paths in rx {
                    tracing::info!(files = paths.len(), "files changed on disk");
                    worker.files_changed(&paths);
                }
            })
            .map_err(notify::Error::io)?;
        // Roots are watched as the host learns them, before it lists their files; the poll
        // below only picks up roots that came before the watcher.
        let watched: Arc<Mutex<Vec<PathBuf>>> = Arc::new(Mutex::new(Vec::new()));
        let watch_root = {
            let (d, watched) = (debouncer.clone(), watched.clone());
            move |root: &std::path::Path| {
                let Ok(mut list) = watched.lock() else {
                    return;
                };
                if list.iter().any(|r| r == root) {
                    return;
                }
                list.push(root.to_owned());
                let r = d.lock().map_err(|_| ()).and_then(|mut d| {
                    d.watch(root, RecursiveMode::Recursive).map_err(|e| {
                        tracing::warn!(error = %e, root = %root.display(), "cannot watch");
                    })
                });
                if r.is_ok() {
                    tracing::info!(root = %root.display(), "watching");
                }
            }
        };
        let watch_root = Arc::new(watch_root);
        host.set_root_sink(Box::new({
            let w = watch_root.clone();
            move |root| w(root)
        }));
        let s = stop.clone();
        std::thread::Builder::new()
            .name("tunelens-roots".into())
            .spawn(move || {
                while !s.load(Ordering::SeqCst) {
                    for root in host.roots() {
                        watch_root(&root);
                    }
                    std::thread::sleep(ROOT_POLL);
                }
            })
            .map_err(notify::Error::io)?;
        Ok(Self {
            stop,
            _debouncer: debouncer,
        })
    }
}
