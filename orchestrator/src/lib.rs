//! The vm-system daemon (`serve`) and its CLI client, in one library behind the `vm-system` binary.

pub(crate) mod api;
pub(crate) mod catalog;
pub(crate) mod config;
pub(crate) mod daemon;
pub(crate) mod error;
pub(crate) mod metrics;
pub(crate) mod model;
pub(crate) mod pool;
pub(crate) mod registry;
pub(crate) mod service;
pub(crate) mod store;
pub(crate) mod telemetry;
pub(crate) mod worker_handle;
pub(crate) mod worktree;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// vm-system: long-lived JavaScript sessions for other programs, served over a REST API.
#[derive(Debug, Parser)]
#[command(name = "vm-system", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon: REST API on --listen, state in SQLite, one worker process per session.
    ///
    /// Example: vm-system serve --listen 127.0.0.1:3210
    Serve(config::ServeArgs),
}

/// Parses the command line, runs the chosen command and picks the process exit code.
pub fn main_impl() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() { 1 } else { 0 };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    match cli.command {
        Command::Serve(args) => run_serve(args),
    }
}

fn run_serve(args: config::ServeArgs) -> ExitCode {
    telemetry::init();
    let result = args.validate().and_then(|config| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(error::DaemonError::Runtime)?;
        runtime.block_on(daemon::serve(config))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err.chain(), "daemon failed");
            eprintln!("error: {}", err.chain());
            ExitCode::from(1)
        }
    }
}
