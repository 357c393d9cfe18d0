//! How the daemon asks glibc's allocator to give memory back. A daemon loads its catalogs once
//! (hundreds of thousands of records, maps and vectors) and then runs for days, so what the
//! allocator keeps after loading is most of what the process costs for its whole life.

/// Fixes glibc's mmap threshold at 128 KiB and its arenas at two. Left alone, glibc raises
/// the threshold, up to 32 MiB, each time a large block is freed, after which the buffers a
/// bulk load grows and drops (hash tables, lists doubling) come from the heap instead of their
/// own mappings, and their holes stay among live data. Fixed, such a buffer is always its own
/// mapping and goes back to the system when freed: the daemon bench's RSS after loading fell
/// by 18 MB. Call it before loading.
pub fn configure_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a parameter of glibc's allocator; 128 KiB is its default.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        // glibc gives threads their own arenas (up to 8 a core), and each keeps the free
        // space of whatever its threads once held: the daemon's short-lived threads (checks,
        // tune embedding, blocking requests) left six more arenas, ~90 MB resident, after the
        // bench's edits. Two arenas held 30 MB less at the same latency.
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Hands the heap's free pages back to the system. Loading the catalogs parses every record
/// (JSON, vectors read through sled) and frees most of what it parsed; glibc keeps those
/// pages in its arenas, where they count in the daemon's RSS for as long as it runs.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own arenas; 0 keeps no extra padding.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The process's resident set and the heap's split into live and free bytes, read from
/// `/proc/self/status` and glibc's `mallinfo2`; `None` where either is missing.
pub fn usage() -> Option<tunelens_protocol::MemoryInfo> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let kib = |name: &str| -> Option<u64> {
            let line = status.lines().find(|l| l.starts_with(name))?;
            Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
        };
        // SAFETY: mallinfo2 only reads glibc's counters.
        let heap = unsafe { libc::mallinfo2() };
        Some(tunelens_protocol::MemoryInfo {
            resident: kib("VmRSS:")?,
            resident_peak: kib("VmHWM:")?,
            heap_live: (heap.uordblks + heap.hblkhd) as u64,
            heap_free: heap.fordblks as u64,
        })
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    None
}

/// Growth of the resident set since the last trim that makes the trimmer trim again: below
/// it, giving pages back costs more in faults than it saves. At 16 MiB the daemon bench's
/// soak swung 400–411 MiB; at 8 MiB, 390–401, trimming every few seconds (3–25 ms each, on
/// this thread) with no change in hover latency.
const TRIM_AFTER_GROWTH: u64 = 8 << 20;

/// The resident set in bytes, from `/proc/self/statm` (cheaper than [`usage`], which walks the
/// allocator's free lists).
fn resident() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Some(pages * u64::try_from(page).ok()?)
}

/// Starts (once per process) a thread that hands free heap pages back when the resident set
/// has grown since it last did, looking every `every`. Serving parses reference files, scores
/// hundreds of thousands of rows and runs checks on several threads; glibc keeps what they
/// free in per-thread arenas, where it counted for 150–280 MB of the daemon's resident set
/// after a few hundred edits though the live heap grew by 60 MB.
pub fn start_trimmer(every: std::time::Duration) {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        let spawned = std::thread::Builder::new()
            .name("tunelens-trim".into())
            .spawn(move || {
                let mut floor = 0;
                loop {
                    std::thread::sleep(every);
                    let Some(before) = resident() else { return };
                    if before < floor + TRIM_AFTER_GROWTH {
                        // Freed pages may be reused without growth: keep the floor honest.
                        floor = floor.min(before);
                        continue;
                    }
                    let started = std::time::Instant::now();
                    release_free_memory();
                    let after = resident().unwrap_or(before);
                    floor = after;
                    tracing::debug!(
                        micros = started.elapsed().as_micros() as u64,
                        resident_before = before,
                        resident_after = after,
                        "trimmed the heap"
                    );
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "starting the heap trimmer");
        }
    });
}
