//! OS bounds applied to the worker process before any JavaScript exists (spec §10.4).

use std::io;

/// `RLIMIT_NOFILE` for a worker.
pub(crate) const NOFILE: u64 = 64;
/// `RLIMIT_FSIZE` for a worker: 64 MiB.
pub(crate) const FSIZE: u64 = 64 * 1024 * 1024;
/// Soft lifetime CPU backstop (SIGXCPU); the hard limit is 60 s above it (SIGKILL).
pub(crate) const CPU_SOFT_S: u64 = 86_400;
pub(crate) const CPU_HARD_S: u64 = 86_460;

/// Applies every bound in order. Any failure is fatal: a worker never runs unbounded.
pub(crate) fn apply() -> io::Result<()> {
    set(libc::RLIMIT_CORE, 0, 0)?;
    set(libc::RLIMIT_NOFILE, NOFILE, NOFILE)?;
    set(libc::RLIMIT_FSIZE, FSIZE, FSIZE)?;
    set(libc::RLIMIT_CPU, CPU_SOFT_S, CPU_HARD_S)?;
    // SAFETY: prctl with these constant arguments has no memory-safety preconditions.
    check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })?;
    // SAFETY: as above; SIGKILL when the daemon (our parent) dies.
    check(unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) })?;
    // A write past RLIMIT_FSIZE must fail with EFBIG instead of killing the worker.
    // SAFETY: installing SIG_IGN for a signal is always sound.
    if unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) } == libc::SIG_ERR {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn set(resource: libc::__rlimit_resource_t, soft: u64, hard: u64) -> io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: `limit` is a valid rlimit for the duration of the call.
    check(unsafe { libc::setrlimit(resource, &limit) })
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}
