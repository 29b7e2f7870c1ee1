//! Unix specifics of worker processes: process-group signals, signal names and `/proc` readers.

use std::io;

/// `SIGKILL`, for callers that should not name libc.
pub(crate) const SIGKILL: i32 = libc::SIGKILL;
/// `SIGTERM`, for callers that should not name libc.
pub(crate) const SIGTERM: i32 = libc::SIGTERM;
/// `SIGXCPU`: the lifetime CPU rlimit (spec §10.4) was reached.
pub(crate) const SIGXCPU: i32 = libc::SIGXCPU;

/// Sends `signal` to every process in the group led by `pgid` (the worker calls `setsid`, so its
/// pid is its group id). A group that no longer exists is not an error.
pub(crate) fn signal_group(pgid: u32, signal: i32) -> io::Result<()> {
    let Ok(pgid) = libc::pid_t::try_from(pgid) else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    if pgid <= 1 {
        // kill(0, _) and kill(-1, _) would hit our own group or every process: never.
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: kill has no memory-safety preconditions; a negative pid names a process group.
    let rc = unsafe { libc::kill(-pgid, signal) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        Ok(())
    } else {
        Err(err)
    }
}

/// Like [`signal_group`], logging instead of returning a failure (there is nothing else to do).
pub(crate) fn signal_group_logged(pgid: u32, signal: i32) {
    if let Err(err) = signal_group(pgid, signal) {
        tracing::warn!(pid = pgid, signal = signal_name(signal), error = %err, "failed to signal worker process group");
    }
}

/// Sends `signal` to process `pid` alone, logging a failure other than "no such process".
pub(crate) fn signal_pid_logged(pid: u32, signal: i32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    if pid <= 1 {
        return;
    }
    // SAFETY: kill has no memory-safety preconditions.
    if unsafe { libc::kill(pid, signal) } < 0 {
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ESRCH) {
            tracing::warn!(pid, signal = signal_name(signal), error = %err, "failed to signal process");
        }
    }
}

/// Conventional name of a signal (`SIGKILL`), or `signal N` for one outside the table.
pub(crate) fn signal_name(signal: i32) -> String {
    let name = match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGCHLD => "SIGCHLD",
        libc::SIGCONT => "SIGCONT",
        libc::SIGSTOP => "SIGSTOP",
        libc::SIGTSTP => "SIGTSTP",
        libc::SIGTTIN => "SIGTTIN",
        libc::SIGTTOU => "SIGTTOU",
        libc::SIGURG => "SIGURG",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGVTALRM => "SIGVTALRM",
        libc::SIGPROF => "SIGPROF",
        libc::SIGWINCH => "SIGWINCH",
        libc::SIGIO => "SIGIO",
        libc::SIGPWR => "SIGPWR",
        libc::SIGSYS => "SIGSYS",
        other => return format!("signal {other}"),
    };
    name.to_string()
}

/// Returns a duplicate of `fd` numbered 10 or above (close-on-exec), so that setting up the
/// child's stdio (fds 0–2) and the frame pipe (fd 3) can never overwrite it before `dup2`.
pub(crate) fn dup_high(fd: &std::os::fd::OwnedFd) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd};
    // SAFETY: F_DUPFD_CLOEXEC on a descriptor we own has no memory-safety preconditions.
    let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` is a fresh descriptor that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(new) })
}

/// A pipe, both ends close-on-exec: `(read, write)`.
pub(crate) fn pipe() -> io::Result<(std::os::fd::OwnedFd, std::os::fd::OwnedFd)> {
    use std::os::fd::FromRawFd;
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid out array of two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors are fresh and owned by nobody else.
    unsafe {
        Ok((
            std::os::fd::OwnedFd::from_raw_fd(fds[0]),
            std::os::fd::OwnedFd::from_raw_fd(fds[1]),
        ))
    }
}

/// In the forked child, before exec: puts `fd` on descriptor 3 without close-on-exec, makes the
/// child the leader of a new session and process group, and marks every descriptor above 3
/// close-on-exec.
///
/// # Safety
///
/// Must only run between fork and exec (it calls only async-signal-safe functions).
pub(crate) unsafe fn child_setup(fd: i32) -> io::Result<()> {
    // SAFETY: dup2, fcntl and setsid are async-signal-safe and touch no memory of ours.
    unsafe {
        if libc::dup2(fd, 3) < 0 {
            return Err(io::Error::last_os_error());
        }
        // dup2 clears FD_CLOEXEC on the copy, but not when fd is already 3; be explicit.
        if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
            return Err(io::Error::last_os_error());
        }
        if libc::setsid() < 0 {
            return Err(io::Error::last_os_error());
        }
        // Whatever else the daemon inherited or opened without close-on-exec stays out of the
        // worker. Marked rather than closed: the spawn's own error pipe must survive until exec.
        // Kernels before 5.11 lack the flag; the daemon opens its own descriptors close-on-exec.
        let _ = libc::syscall(
            libc::SYS_close_range,
            4,
            libc::c_uint::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
    }
    Ok(())
}

/// The fields of `/proc/<pid>/stat` a worker handle needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcStat {
    /// Process state letter (`R`, `S`, `T`, `Z`, …).
    pub(crate) state: char,
    /// User plus system CPU time, in clock ticks.
    pub(crate) cpu_ticks: u64,
    /// Start time after boot, in clock ticks: identifies the process across pid reuse.
    pub(crate) start_ticks: u64,
}

/// Parses the text of `/proc/<pid>/stat`. The command name may contain spaces and parentheses,
/// so fields are counted from the last `)`.
pub(crate) fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    // Fields from 3 (state) on: index = field number − 3.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    let utime: u64 = fields.get(14 - 3)?.parse().ok()?;
    let stime: u64 = fields.get(15 - 3)?.parse().ok()?;
    let start_ticks: u64 = fields.get(22 - 3)?.parse().ok()?;
    Some(ProcStat {
        state,
        cpu_ticks: utime.saturating_add(stime),
        start_ticks,
    })
}

/// Reads and parses `/proc/<pid>/stat`; `None` if the process is gone.
pub(crate) fn read_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Resident set size of `pid` in KiB, from `/proc/<pid>/statm`.
pub(crate) fn read_rss_kb(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    let pages: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages.saturating_mul(page_size()) / 1024)
}

/// Clock ticks to milliseconds (`sysconf(_SC_CLK_TCK)`, usually 100 per second).
pub(crate) fn ticks_to_ms(ticks: u64) -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = u64::try_from(hz).ok().filter(|hz| *hz > 0).unwrap_or(100);
    ticks.saturating_mul(1000) / hz
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|s| *s > 0).unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_name(signal: i32, expected: &str) {
        assert_eq!(signal_name(signal), expected);
    }

    #[test]
    fn signal_names() {
        check_name(9, "SIGKILL");
        check_name(15, "SIGTERM");
        check_name(11, "SIGSEGV");
        check_name(6, "SIGABRT");
        check_name(libc::SIGSTOP, "SIGSTOP");
        check_name(libc::SIGXCPU, "SIGXCPU");
        check_name(77, "signal 77");
    }

    fn check_stat(text: &str, expected: Option<ProcStat>) {
        assert_eq!(parse_stat(text), expected, "{text}");
    }

    #[test]
    fn stat_parsing() {
        let tail = "0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0";
        check_stat(
            &format!(
                "1234 (vm-system-work) S 1 1234 1234 0 -1 4194560 100 0 0 0 7 5 0 0 20 0 3 0 8888 1000 200 {tail}"
            ),
            Some(ProcStat {
                state: 'S',
                cpu_ticks: 12,
                start_ticks: 8888,
            }),
        );
        check_stat(
            &format!("77 (a) b (c)) Z 1 77 77 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 42 0 0 {tail}"),
            Some(ProcStat {
                state: 'Z',
                cpu_ticks: 2,
                start_ticks: 42,
            }),
        );
        check_stat("", None);
        check_stat("12 (x) S 1 2", None);
    }

    #[test]
    fn own_process_is_readable() {
        let me = std::process::id();
        let stat = read_stat(me).unwrap();
        assert!(stat.start_ticks > 0);
        assert!(read_rss_kb(me).unwrap() > 0);
        assert_eq!(ticks_to_ms(0), 0);
    }

    #[test]
    fn refuses_dangerous_groups() {
        assert!(signal_group(0, 0).is_err());
        assert!(signal_group(1, 0).is_err());
        // A group that does not exist is fine (ESRCH ignored).
        assert!(signal_group(i32::MAX as u32, 0).is_ok());
    }
}
