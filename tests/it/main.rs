//! Black-box tests: one binary, one module per area.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "tests fail on any unexpected condition and start the real binaries"
)]

mod api_conventions;
mod api_executions;
mod api_ops;
mod api_sessions;
mod api_templates;
mod bad_input;
mod cli;
mod faults;
mod limits;
mod modules;
mod tidy;
mod worker;
