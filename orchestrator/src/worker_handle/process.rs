//! `Process`: a worker process as its supervisor owns it: spawned by the daemon (a tokio `Child`
//! it reaps itself) or forked by the zygote (which reaps it and reports the wait status).

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;

use tokio::process::Child;
use tokio::sync::oneshot;

/// How a forked worker's end reaches the daemon: the zygote's raw wait status.
pub(super) type ForkedExit = oneshot::Receiver<i32>;

#[derive(Debug)]
pub(super) enum Process {
    /// Spawned with `exec`; the daemon is its parent.
    Spawned(Child),
    /// Forked by the zygote, which is its parent and reports its wait status.
    Forked {
        pid: u32,
        exit: ForkedExit,
        status: Option<ExitStatus>,
    },
}

impl Process {
    /// Waits until the process ended and was reaped. Cancel-safe; once it resolved, later calls
    /// return the same status at once.
    pub(super) async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        match self {
            Process::Spawned(child) => child.wait().await,
            Process::Forked { status, exit, .. } => {
                if let Some(status) = status {
                    return Ok(*status);
                }
                let ended = match exit.await {
                    Ok(raw) => ExitStatus::from_raw(raw),
                    // The zygote is gone without reporting: its copies die with it (parent-death
                    // signal SIGKILL), and whoever inherits them reaps them.
                    Err(_) => ExitStatus::from_raw(libc::SIGKILL),
                };
                *status = Some(ended);
                Ok(ended)
            }
        }
    }

    /// Sends SIGKILL to the process itself (its group is the caller's business). Harmless once
    /// it ended.
    pub(super) fn start_kill(&mut self) {
        match self {
            Process::Spawned(child) => {
                let _ = child.start_kill();
            }
            Process::Forked {
                pid, status: None, ..
            } => {
                if let Ok(pid) = libc::pid_t::try_from(*pid)
                    && pid > 1
                {
                    // SAFETY: kill has no memory-safety preconditions. No exit of this pid was
                    // received from the zygote, which reaps it only after it ended: the pid can
                    // only have been reused if that report is in flight right now.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
            Process::Forked { .. } => {}
        }
    }
}
