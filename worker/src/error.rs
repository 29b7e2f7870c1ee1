//! Errors of the worker process: boot, transport and engine.

/// Why the worker could not boot or keep serving.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WorkerError {
    #[error("failed to parse worker arguments: {0}")]
    Usage(String),
    #[error("failed to apply os limits")]
    Limits(#[source] std::io::Error),
    #[error("failed to open the frame pipe")]
    Pipe(#[source] std::io::Error),
    #[error("failed to build the async runtime")]
    Runtime(#[source] std::io::Error),
    #[error("failed to start a thread")]
    Thread(#[source] std::io::Error),
    #[error("failed to create the engine")]
    Engine(#[source] EngineError),
}

/// Failures of the JavaScript engine that are not the script's own exceptions.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EngineError {
    #[error("failed to create the javascript runtime: {0}")]
    Create(String),
    #[error("failed to run the bootstrap script: {0}")]
    Bootstrap(String),
    #[error("failed to configure the session: {0}")]
    Configure(String),
}

/// `err` followed by its chain of causes, `: `-separated: the reason a `BootFailed` carries.
pub(crate) fn with_causes(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
