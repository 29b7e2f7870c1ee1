//! Keeps an idle worker small: the backend switches set before the engine exists, the boot-only
//! pages released once the worker has booted, the fork server's free heap taken out of reach of
//! its copies, and the free heap pages handed back to the kernel when the worker goes idle after
//! an execution that grew the heap.

use std::ops::Range;
use std::time::Duration;

/// How long the worker must have been idle, after an execution that grew the heap, before it
/// trims. An execution that arrives sooner pays nothing.
pub(crate) const IDLE_AFTER: Duration = Duration::from_millis(100);

/// How far the heap must have grown since the last trim for a trim to be worth it. A trim costs
/// ~0.2 ms of CPU, most of it re-releasing pages released before; a trivial execution grows the
/// heap by nothing, while one that built and dropped a large structure grows it by megabytes it
/// would otherwise keep resident for good.
const TRIM_AFTER_GROWTH: usize = 1024 * 1024;

/// Environment switches read by deno_core's QuickJS backend when the runtime is created.
#[cfg(not(feature = "v8"))]
const BACKEND_SWITCHES: [(&str, &str); 2] = [
    // Skip installing `WebAssembly`: the bootstrap deletes it anyway (spec §7.3).
    ("QJS_NO_WASM", "1"),
    // No bytecode cache on disk. Without this, the backend writes every script it compiles, user
    // code included, to `$TMPDIR/v8x/quickjs-bytecode/` (the worker has no `HOME` or
    // `XDG_CACHE_HOME`): a directory shared by every worker and user on the machine, never
    // pruned, and read back with `JS_ReadObject`, which trusts its input. It also costs a file
    // lookup (`openat`, `statx`, `read`) on every execution.
    ("V82JSC_NO_BC_CACHE", "1"),
];

/// Sets the backend switches. Runs first in `main_impl`, while the process has one thread.
pub(crate) fn prepare_process() {
    #[cfg(not(feature = "v8"))]
    for (name, value) in BACKEND_SWITCHES {
        // SAFETY: called at the top of `main_impl`, before any other thread exists, so nothing
        // reads the environment concurrently. The daemon starts the worker with an empty
        // environment (spec §10.4) and the `exec` module clears it for its children, so these
        // names reach only the backend.
        unsafe { std::env::set_var(name, value) };
    }
}

/// Returns the free pages of every malloc arena to the kernel (`malloc_trim`). The engine's C
/// heap and Rust's share glibc's allocator, so this covers both.
fn trim_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim has no preconditions; it only takes the allocator's own locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Decides after each execution whether the heap grew enough to be trimmed once the worker is
/// idle: by `TRIM_AFTER_GROWTH` since the last trim. Looking costs nothing measurable (`heap_top`).
#[derive(Debug)]
pub(crate) struct IdleTrim {
    /// The heap's top after the last trim, or the lowest seen after an execution since.
    top: usize,
}

impl IdleTrim {
    /// Starts from the heap as it is now (just after boot released its memory).
    pub(crate) fn new() -> Self {
        IdleTrim { top: heap_top() }
    }

    /// After an execution: whether a trim is due once the worker is idle.
    pub(crate) fn due(&mut self) -> bool {
        let top = heap_top();
        self.top = self.top.min(top);
        top >= self.top.saturating_add(TRIM_AFTER_GROWTH)
    }

    /// Trims the heap and starts counting growth again from there.
    pub(crate) fn trim(&mut self) {
        trim_heap();
        self.top = heap_top();
    }
}

/// The top of the main malloc arena: the program break (`sbrk(0)`, which reads glibc's copy and
/// makes no system call once the heap exists). It rises only when the heap had too little free
/// room for what was allocated.
fn heap_top() -> usize {
    // SAFETY: an increment of 0 moves nothing; it only returns the current break.
    unsafe { libc::sbrk(0) as usize }
}

/// Once booted: trims the heap, then takes out of the resident set the file pages that only
/// booting touched. Booting parses the backend's Temporal polyfill and runs deno_core's and the
/// worker's JavaScript, which maps megabytes of code and constants the session never uses again.
/// Clean pages of read-only file mappings are copies of the file, so `MADV_DONTNEED` loses nothing:
/// the kernel maps back from the page cache, on first touch, whatever the session runs.
pub(crate) fn release_boot_memory() {
    trim_heap();
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    for range in clean_file_mappings(&smaps) {
        // SAFETY: the range is a whole mapping of a file, not writable and without a private
        // (copied-on-write) page, so dropping its pages changes no byte any code can read. The
        // worker never makes such a mapping writable. A failure leaves the pages mapped.
        unsafe {
            libc::madvise(
                range.start as *mut libc::c_void,
                range.end - range.start,
                libc::MADV_DONTNEED,
            );
        }
    }
}

/// The address ranges of the mappings in `smaps` (the format of `/proc/self/smaps`) that map a
/// file read-only and privately and hold no anonymous page.
fn clean_file_mappings(smaps: &str) -> Vec<Range<usize>> {
    let mut found = Vec::new();
    // The mapping whose fields are being read, if it is a candidate.
    let mut candidate: Option<Range<usize>> = None;
    for line in smaps.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(first) = fields.next() else {
            continue;
        };
        if let Some(range) = mapping_range(first) {
            // A header: `start-end perms offset dev inode [path]`.
            let perms = fields.next();
            let path = fields.nth(3);
            candidate = (matches!(perms, Some("r--p" | "r-xp"))
                && path.is_some_and(|p| p.starts_with('/')))
            .then_some(range);
        } else if first == "Anonymous:"
            && let Some(range) = candidate.take()
            && fields.next() == Some("0")
        {
            found.push(range);
        }
    }
    found
}

/// Parses `start-end` (hexadecimal) from a mapping header.
fn mapping_range(field: &str) -> Option<Range<usize>> {
    let (start, end) = field.split_once('-')?;
    let start = usize::from_str_radix(start, 16).ok()?;
    let end = usize::from_str_radix(end, 16).ok()?;
    (start < end).then_some(start..end)
}

/// The most chunks `hold_free_chunks` takes (a bound, should the heap not look as expected).
#[cfg(target_env = "gnu")]
const MAX_HELD_CHUNKS: usize = 1 << 16;

/// Chunks glibc's thread cache keeps per size class (`TCACHE_FILL_COUNT`, unless tuned).
#[cfg(target_env = "gnu")]
const TCACHE_COUNT: usize = 7;

/// The largest request glibc's thread cache serves (64 size classes on 64-bit targets).
#[cfg(target_env = "gnu")]
const TCACHE_MAX_SIZE: usize = 1032;

/// The main heap's free bytes outside its top chunk, and where that top chunk starts.
#[cfg(target_env = "gnu")]
fn free_in_bins() -> (usize, usize) {
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    let info = unsafe { libc::mallinfo2() };
    (
        info.fordblks.saturating_sub(info.keepcost),
        heap_top().saturating_sub(info.keepcost),
    )
}

/// Takes one chunk of `size` bytes into `held` if the allocator gives one from below the top
/// chunk (from a bin or the thread cache), counting it against `budget`. `false` when no such
/// chunk was left: the allocator carved this one from the top chunk. Such a chunk is given back
/// if it is too large for the thread cache (it merges back into the top chunk); a smaller one is
/// held too, since freeing it would leave it in the cache.
#[cfg(target_env = "gnu")]
fn take_free_chunk(size: usize, held: &mut Vec<*mut libc::c_void>, budget: &mut usize) -> bool {
    if held.len() == held.capacity() || *budget < size {
        return false;
    }
    let (_, top_start) = free_in_bins();
    // SAFETY: malloc has no preconditions; the chunk is freed at once or held for the process's
    // life, and never used otherwise.
    let chunk = unsafe { libc::malloc(size) };
    if chunk.is_null() {
        return false;
    }
    if chunk as usize >= top_start {
        if size > TCACHE_MAX_SIZE {
            // SAFETY: `chunk` came from malloc above and is not used again.
            unsafe { libc::free(chunk) };
        } else {
            held.push(chunk);
        }
        return false;
    }
    *budget -= size;
    held.push(chunk);
    true
}

/// In the fork server, before its first fork: takes every free chunk of the heap (the allocator's
/// bins and this thread's cache) and holds it, so that a copy's allocations come from the top of
/// the heap, packed on pages of its own. Otherwise a copy's first allocations take the free
/// chunks booting left scattered over the heap, and for each the allocator writes its header and
/// the free-list links of its neighbours: pages shared with the server, each one a copy-on-write
/// fault and a page of private memory (a fifth of a copy's faults, docs/PERFORMANCE.md). The
/// chunks stay allocated in the server for its life; their pages are shared with every copy and
/// cost none of them memory. Returns how many chunks it took.
#[cfg(target_env = "gnu")]
pub fn hold_free_chunks() -> usize {
    // Fast bins go back to the regular bins first, so the loops below see them.
    trim_heap();
    // What is taken from the bins never exceeds what they held.
    let (mut budget, _) = free_in_bins();
    let mut held: Vec<*mut libc::c_void> = Vec::with_capacity(MAX_HELD_CHUNKS);
    // Large chunks first, halving the size: a request takes the best fitting free chunk and
    // leaves the rest of it in the bins for the smaller sizes that follow.
    let mut size = 64 * 1024;
    while size >= 16 {
        while take_free_chunk(size, &mut held, &mut budget) {}
        size /= 2;
    }
    // The thread cache holds a few chunks of each small size class, which only a request of that
    // class takes (the statistics count them as in use, so no budget applies).
    for size in (8..=TCACHE_MAX_SIZE).step_by(16) {
        let mut unbounded = usize::MAX;
        for _ in 0..TCACHE_COUNT {
            if !take_free_chunk(size, &mut held, &mut unbounded) {
                break;
            }
        }
    }
    let taken = held.len();
    // Held for the process's life on purpose: freeing them would put them back in the bins.
    std::mem::forget(held);
    taken
}

/// Without glibc there is nothing known to take.
#[cfg(not(target_env = "gnu"))]
pub fn hold_free_chunks() -> usize {
    0
}

#[cfg(test)]
mod tests {
    use super::clean_file_mappings;

    const SMAPS: &str = "\
55e0c0000000-55e0c0200000 r--p 00000000 fe:01 123 /usr/bin/vm-system-worker
Size:               2048 kB
Rss:                1632 kB
Anonymous:             0 kB
VmFlags: rd mr mw me sd
55e0c0200000-55e0c0900000 r-xp 00200000 fe:01 123 /usr/bin/vm-system-worker
Rss:                4472 kB
Anonymous:             0 kB
55e0c0900000-55e0c0a00000 r--p 00900000 fe:01 123 /usr/bin/vm-system-worker
Rss:                 224 kB
Anonymous:           224 kB
55e0c0a00000-55e0c0a10000 rw-p 00a00000 fe:01 123 /usr/bin/vm-system-worker
Anonymous:            28 kB
55e0c1000000-55e0c1500000 rw-p 00000000 00:00 0 [heap]
Anonymous:          4636 kB
7f0000000000-7f0000100000 r-xp 00000000 fe:01 456 /usr/lib/x86_64-linux-gnu/libc.so.6
Anonymous:             0 kB
7f0000200000-7f0000300000 rw-s 00000000 00:01 789 /dev/shm/x
Anonymous:             0 kB
7f0000400000-7f0000401000 r-xp 00000000 00:00 0 [vdso]
Anonymous:             0 kB
7f0000500000-7f0000600000 r-xp 00000000 fe:01 999 /tmp/a file (deleted)
Anonymous:             0 kB
";

    #[test]
    fn only_clean_read_only_file_mappings_are_released() {
        let check = |smaps: &str, expected: &[(usize, usize)]| {
            let found: Vec<(usize, usize)> = clean_file_mappings(smaps)
                .into_iter()
                .map(|r| (r.start, r.end))
                .collect();
            assert_eq!(found, expected);
        };
        check(
            SMAPS,
            &[
                (0x55e0_c000_0000, 0x55e0_c020_0000),
                (0x55e0_c020_0000, 0x55e0_c090_0000),
                (0x7f00_0000_0000, 0x7f00_0010_0000),
                (0x7f00_0050_0000, 0x7f00_0060_0000),
            ],
        );
        check("", &[]);
        // A header without its fields, or fields without a header, releases nothing.
        check(
            "7f0000000000-7f0000100000 r-xp 00000000 fe:01 456 /lib/libc.so.6\n",
            &[],
        );
        check("Anonymous:             0 kB\n", &[]);
        check("zz-7f r-xp 0 fe:01 1 /lib/x\nAnonymous: 0 kB\n", &[]);
    }
}
