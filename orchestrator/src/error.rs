//! `DaemonError`: failures that stop the daemon (spec §10.2: one `error:` line, exit 1).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub(crate) enum DaemonError {
    #[error("invalid --listen address {0}")]
    Listen(String),
    #[error("failed to read the token file {}", path.display())]
    TokenFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("token file {} is blank", .0.display())]
    BlankToken(PathBuf),
    #[error("refusing to listen on {0} without --auth-token-file")]
    NotLoopback(String),
    #[error("failed to open the database")]
    Store(#[source] crate::store::StoreError),
    #[error("failed to start the probe worker")]
    Probe(#[source] crate::worker_handle::WorkerError),
    #[error("failed to create the library directory {}", path.display())]
    LibraryDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to bind {addr}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("failed to build the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("failed to serve http")]
    Serve(#[source] std::io::Error),
}

impl DaemonError {
    /// The message with its causes, for the single `error:` line.
    pub(crate) fn chain(&self) -> String {
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
