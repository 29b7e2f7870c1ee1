//! Fixtures for the black-box tests: a worker driven over the real protocol, the daemon and CLI,
//! and the bad worker (a protocol-breaking proxy used as `--worker-bin`). Tests link the product
//! crates only for the shim binaries; at runtime they talk frames, HTTP and command lines.
#![allow(
    clippy::disallowed_methods,
    reason = "test fixtures start the real binaries"
)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test fixtures fail the test on any unexpected condition"
)]

pub mod bad_worker;
pub mod daemon;
pub mod worker;

use std::time::Duration;

/// How long any single wait in a test may take before the test fails.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Path of a binary built from the tests package (the shims).
pub fn bin_path(name: &str) -> std::path::PathBuf {
    // Integration tests live in target/<profile>/deps; the bins one level up.
    let mut path = std::env::current_exe().unwrap_or_default();
    path.pop();
    if path.ends_with("deps") {
        path.pop();
    }
    path.join(name)
}
