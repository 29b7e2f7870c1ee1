//! `WorkerError`: why starting, configuring or talking to a worker process failed.

use std::time::Duration;

use super::ExitReason;

/// A failure of one worker. It never takes the daemon down: the session service turns it into
/// session state (`crashed`, `WORKER_START_FAILED`, …).
#[derive(Debug, thiserror::Error)]
pub(crate) enum WorkerError {
    /// The socketpair for the frame pipe could not be created or registered.
    #[error("failed to create the worker frame pipe")]
    Pipe(#[source] std::io::Error),
    /// The worker program could not be started at all (missing, not executable, …).
    #[error("failed to spawn the worker program {path}")]
    Spawn {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The worker did not send `Hello` and `Ready` in time.
    #[error("failed to complete the worker handshake within {0:?}")]
    HandshakeTimeout(Duration),
    /// The worker speaks another protocol version (a stale binary).
    #[error("failed to complete the worker handshake: protocol version {theirs}, expected {ours}")]
    VersionMismatch { theirs: u32, ours: u32 },
    /// The worker sent something other than the handshake frames, or an unreadable frame.
    #[error("failed to complete the worker handshake: {detail}")]
    Handshake { detail: String },
    /// A handshake frame could not be read.
    #[error("failed to complete the worker handshake: unreadable frame")]
    Unreadable(#[source] protocol::CodecError),
    /// The worker exited (or closed its pipe) before `Ready`.
    #[error("failed to complete the worker handshake: {}", .0.last_error())]
    ExitedDuringStart(ExitReason),
    /// The worker reported `BootFailed`: its runtime could not be created.
    #[error("failed to boot the worker runtime: {reason}")]
    BootFailed { reason: String },
    /// The worker answered `Configure` with `ConfigureFailed`.
    #[error("failed to configure the worker: {reason}")]
    ConfigureFailed { reason: String },
    /// A frame for the worker could not be encoded (for example, larger than the frame limit).
    #[error("failed to send a frame to the worker")]
    Frame(#[source] protocol::CodecError),
    /// The worker process is gone (or went away while we waited for it).
    #[error("failed to reach the worker: {}", .0.last_error())]
    Exited(ExitReason),
    /// The worker is being stopped and takes no new work.
    #[error("failed to send work to the worker: it is stopping")]
    Stopping,
    /// Another execution (or configure) is still in progress on this worker.
    #[error("failed to send work to the worker: another request is in progress")]
    Busy,
    /// The zygote could not fork a worker (it is gone, or the fork failed); the launcher then
    /// spawns one instead.
    #[error("failed to fork a worker: {0}")]
    Zygote(String),
    /// The pool is shutting down and starts no workers.
    #[error("failed to take a worker: the pool is shut down")]
    PoolClosed,
}

impl WorkerError {
    /// Text for `last_error` when a start failed (`worker failed to start: <reason>`, spec §6):
    /// the message followed by its chain of causes.
    pub(crate) fn reason(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(err: WorkerError, expected: &str) {
        assert_eq!(err.reason(), expected);
    }

    #[test]
    fn reasons_carry_their_causes() {
        check(
            WorkerError::Spawn {
                path: "/nonexistent".into(),
                source: std::io::Error::from_raw_os_error(libc::ENOENT),
            },
            "failed to spawn the worker program /nonexistent: No such file or directory (os error 2)",
        );
        check(
            WorkerError::Exited(ExitReason::Exited { code: 3 }),
            "failed to reach the worker: worker exited with code 3",
        );
        check(
            WorkerError::HandshakeTimeout(Duration::from_millis(500)),
            "failed to complete the worker handshake within 500ms",
        );
    }
}
