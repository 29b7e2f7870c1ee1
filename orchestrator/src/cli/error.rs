//! How a client command ends: `Outcome` on success, `CliError` otherwise, and the error lines of
//! spec §11 printed for each failure.

use std::io::Write;

use crate::cli::args::OutputFormat;
use crate::client::ClientError;

/// A command that ran to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Success,
    /// `exec repl` / `run-file`: the execution ended with a status other than `ok`.
    ExecutionNotOk,
}

/// A command that failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// The daemon, or the way to it.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Bad flags or arguments that clap could not catch (an invalid JSON argument).
    #[error("{0}")]
    Usage(String),
    /// Already reported on stderr (for example `libs download` entries that failed).
    #[error("failed, see above")]
    Reported,
    /// Local failures: files, stdin, stdout.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<std::io::Error> for CliError {
    fn from(err: std::io::Error) -> Self {
        CliError::Other(err.into())
    }
}

/// The kinds of failure that pick different exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// No HTTP response from the daemon.
    Unreachable,
    /// Everything else: API errors, usage errors, local errors.
    Failed,
}

impl CliError {
    pub(crate) fn kind(&self) -> FailureKind {
        match self {
            CliError::Client(ClientError::Unreachable { .. }) => FailureKind::Unreachable,
            _ => FailureKind::Failed,
        }
    }
}

/// Prints the failure: the error line on stderr and, for an API error in json mode, the envelope
/// on stdout. Write errors are ignored: there is nowhere left to report them.
pub(crate) fn report(err: &CliError, output: OutputFormat) {
    let line = match err {
        CliError::Client(ClientError::Api(failure)) => {
            if output == OutputFormat::Json {
                let mut stdout = std::io::stdout().lock();
                let _ = writeln!(stdout, "{}", failure.raw.trim_end());
                let _ = stdout.flush();
            }
            format!(
                "error: {}: {} (HTTP {}, request {})",
                failure.code,
                crate::cli::output::printable(&failure.message, false),
                failure.status,
                failure.request_id
            )
        }
        CliError::Client(ClientError::Unreachable { url, source }) => {
            format!("error: cannot reach vm-system at {url}: {source}")
        }
        CliError::Client(ClientError::Protocol(message)) => format!("error: {message}"),
        CliError::Usage(message) => format!("error: {message}"),
        CliError::Reported => return,
        CliError::Other(err) => {
            if is_broken_pipe(err) {
                return;
            }
            format!("error: {err:#}")
        }
    };
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "{line}");
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
