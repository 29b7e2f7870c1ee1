//! Kernel floor of a forked session start for scripts/bench: the CPU of `fork()` and of each page a copy writes.
//!
//! ```text
//! vm-bench-fork [--rss-mb N] [--pages P] [--count C]
//! ```
//!
//! Makes itself a process with `--rss-mb` MiB (default 5) of private, resident memory, like the
//! fork server, then forks `--count` copies (default 200) twice over: copies that write nothing,
//! and copies that each write `--pages` pages (default 300) spread over that memory. A copy reads
//! its own CPU time (`CLOCK_PROCESS_CPUTIME_ID`, which starts at zero in a new process) after its
//! writes, sends it over a pipe and exits; the parent times its own `fork()` with its thread CPU
//! clock. Nothing else runs in a copy: no thread, no allocation, no JavaScript. Prints one JSON
//! object: the parent's CPU per `fork()`, a copy's CPU when it writes nothing, and the CPU per page
//! written (the difference of the two rounds, divided by `--pages`), all means.
//!
//! Forking is only sound here because the process is single-threaded, and a copy only makes
//! async-signal-safe calls (`clock_gettime`, `write`, `_exit`).

#![allow(clippy::print_stdout, reason = "the result is printed on stdout")]

use std::io;
use std::process::ExitCode;

const MIB: usize = 1 << 20;

struct Options {
    rss_mb: usize,
    pages: usize,
    count: usize,
}

fn parse_args() -> Result<Options, String> {
    let mut opts = Options {
        rss_mb: 5,
        pages: 300,
        count: 200,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let parsed: usize = value
            .parse()
            .map_err(|err| format!("{flag} {value:?}: {err}"))?;
        match flag.as_str() {
            "--rss-mb" => opts.rss_mb = parsed,
            "--pages" => opts.pages = parsed,
            "--count" => opts.count = parsed,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if opts.rss_mb == 0 || opts.pages == 0 || opts.count == 0 {
        return Err("--rss-mb, --pages and --count must be positive".into());
    }
    Ok(opts)
}

/// Nanoseconds of CPU on `clock`.
fn cpu_ns(clock: libc::clockid_t) -> io::Result<u64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid out pointer.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let nanos = u64::try_from(ts.tv_nsec).unwrap_or(0);
    Ok(secs * 1_000_000_000 + nanos)
}

/// Mean CPU per fork, in nanoseconds: the parent's `fork()` and the copy's whole life until exit.
struct Round {
    parent_ns: f64,
    copy_ns: f64,
}

/// Forks `count` copies one after another; each writes one byte in each of `pages` pages of
/// `region`, evenly spaced.
fn round(region: &mut [u8], pages: usize, count: usize) -> io::Result<Round> {
    // SAFETY: sysconf has no preconditions.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).unwrap_or(4096);
    let stride = (region.len() / page / pages.max(1)).max(1) * page;
    if pages.saturating_sub(1).saturating_mul(stride) >= region.len() {
        return Err(io::Error::other("--pages exceeds the pages of --rss-mb"));
    }
    let base = region.as_mut_ptr();
    let (mut parent, mut copy) = (0u64, 0u64);
    for _ in 0..count {
        let mut fds = [0; 2];
        // SAFETY: `fds` is a valid array of two descriptors.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let before = cpu_ns(libc::CLOCK_THREAD_CPUTIME_ID)?;
        // SAFETY: the process is single-threaded; the copy makes only async-signal-safe calls.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: each offset is below `region.len()` (checked above); the copy owns its pages.
            unsafe {
                for i in 0..pages {
                    std::ptr::write_volatile(base.add(i * stride), 2);
                }
                let mut ts = libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                };
                libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts);
                let ns = (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64;
                let bytes = ns.to_ne_bytes();
                libc::write(fds[1], bytes.as_ptr().cast(), bytes.len());
                libc::_exit(0);
            }
        }
        let after = cpu_ns(libc::CLOCK_THREAD_CPUTIME_ID)?;
        // SAFETY: closing our copy of the write end; the descriptors are ours.
        unsafe { libc::close(fds[1]) };
        if pid < 0 {
            let err = io::Error::last_os_error();
            // SAFETY: as above.
            unsafe { libc::close(fds[0]) };
            return Err(err);
        }
        let mut bytes = [0u8; 8];
        // SAFETY: `bytes` is a writable buffer of its length; the descriptor is ours.
        let n = unsafe { libc::read(fds[0], bytes.as_mut_ptr().cast(), bytes.len()) };
        // SAFETY: as above; `waitpid` reaps the copy we forked.
        unsafe {
            libc::close(fds[0]);
            libc::waitpid(pid, std::ptr::null_mut(), 0);
        }
        if n != 8 {
            return Err(io::Error::other("a copy did not report its CPU time"));
        }
        parent += after - before;
        copy += u64::from_ne_bytes(bytes);
    }
    let count = count as f64;
    Ok(Round {
        parent_ns: parent as f64 / count,
        copy_ns: copy as f64 / count,
    })
}

fn run(opts: &Options) -> io::Result<serde_json::Value> {
    // Written once so that every page is resident and private, as in the fork server.
    let mut region = vec![1u8; opts.rss_mb * MIB];
    // One untimed round first: the first forks also fault in this program's own pages.
    round(&mut region, 0, opts.count.min(20))?;
    let idle = round(&mut region, 0, opts.count)?;
    let writing = round(&mut region, opts.pages, opts.count)?;
    let per_page_ns = (writing.copy_ns - idle.copy_ns).max(0.0) / opts.pages as f64;
    Ok(serde_json::json!({
        "rss_mb": opts.rss_mb,
        "pages": opts.pages,
        "count": opts.count,
        "fork_parent_ms": (idle.parent_ns + writing.parent_ns) / 2.0 / 1e6,
        "copy_idle_ms": idle.copy_ns / 1e6,
        "copy_writing_ms": writing.copy_ns / 1e6,
        "per_page_us": per_page_ns / 1e3,
    }))
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(opts) => opts,
        Err(msg) => {
            eprintln!("vm-bench-fork: {msg}");
            eprintln!("usage: vm-bench-fork [--rss-mb N] [--pages P] [--count C]");
            return ExitCode::from(2);
        }
    };
    match run(&opts) {
        Ok(out) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("vm-bench-fork: {err}");
            ExitCode::FAILURE
        }
    }
}
