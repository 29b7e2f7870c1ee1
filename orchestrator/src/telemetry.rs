//! Log setup for the binaries: tracing to stderr, filtered by `VM_SYSTEM_LOG` (default `info`).

/// Installs the global subscriber once; later calls do nothing.
pub(crate) fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VM_SYSTEM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}
