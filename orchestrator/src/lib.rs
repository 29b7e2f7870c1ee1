//! The vm-system daemon (`serve`) and its CLI client, in one library behind the `vm-system` binary.

use std::process::ExitCode;

/// Parses the command line, runs the chosen command and picks the process exit code.
pub fn main_impl() -> ExitCode {
    ExitCode::SUCCESS
}
