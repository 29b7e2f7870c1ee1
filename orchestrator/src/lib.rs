//! The vm-system daemon (`serve`) and its CLI client, in one library behind the `vm-system` binary.

pub(crate) mod api;
pub(crate) mod catalog;
pub(crate) mod cli;
pub(crate) mod client;
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

use clap::{CommandFactory, Parser, Subcommand};

/// vm-system: long-lived JavaScript sessions for other programs, served over a REST API.
#[derive(Debug, Parser)]
#[command(name = "vm-system", bin_name = "vm-system", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(flatten)]
    global: cli::GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon: REST API on --listen, state in SQLite, one worker process per session.
    ///
    /// Example: vm-system serve --listen 127.0.0.1:3210
    Serve(config::ServeArgs),
    /// Manage templates: settings, capabilities, startup files, modules and libraries.
    ///
    /// Example: vm-system template create --name analytics
    #[command(subcommand)]
    Template(cli::TemplateCommand),
    /// Create, inspect, restart and close sessions.
    ///
    /// Example: vm-system session list --status ready
    #[command(subcommand)]
    Session(cli::SessionCommand),
    /// Run code in a session and inspect executions and their events.
    ///
    /// Example: vm-system exec repl SESSION_ID "1 + 1"
    #[command(subcommand)]
    Exec(cli::ExecCommand),
    /// Check the daemon: health and runtime summary.
    ///
    /// Example: vm-system ops health
    #[command(subcommand)]
    Ops(cli::OpsCommand),
    /// Download and list the library cache (runs locally, no daemon needed).
    ///
    /// Example: vm-system libs download
    #[command(subcommand)]
    Libs(cli::LibsCommand),
    /// Print a shell completion script.
    ///
    /// Example: vm-system completions bash > /etc/bash_completion.d/vm-system
    Completions(cli::CompletionsArgs),
}

/// Parses the command line, runs the chosen command and picks the process exit code.
pub fn main_impl() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() { 1 } else { 0 };
            if code == 1 && invokes_serve() {
                // `serve`'s fatal errors are one `error: …` line (spec §10.2), flags included.
                let text = err.to_string();
                eprintln!(
                    "{}",
                    text.lines().next().unwrap_or("error: invalid arguments")
                );
            } else {
                let _ = err.print();
            }
            return ExitCode::from(code);
        }
    };
    let output = cli.global.output;
    let result = match cli.command {
        Command::Serve(args) => return run_serve(args),
        Command::Completions(args) => cli::completions(args.shell, &mut Cli::command()),
        Command::Libs(command) => cli::libs(output, command),
        Command::Template(command) => client(cli.global, move |ctx| cli::template(ctx, command)),
        Command::Session(command) => client(cli.global, move |ctx| cli::session(ctx, command)),
        Command::Exec(command) => client(cli.global, move |ctx| cli::exec(ctx, command)),
        Command::Ops(command) => client(cli.global, move |ctx| cli::ops(ctx, command)),
    };
    match result {
        Ok(cli::Outcome::Success) => ExitCode::SUCCESS,
        Ok(cli::Outcome::ExecutionNotOk) => ExitCode::from(2),
        Err(err) => {
            cli::report(&err, output);
            match err.kind() {
                cli::FailureKind::Unreachable => ExitCode::from(3),
                cli::FailureKind::Failed => ExitCode::from(1),
            }
        }
    }
}

/// Whether the command line names `serve` as its command (the first word that is a command).
fn invokes_serve() -> bool {
    let commands = Cli::command();
    std::env::args_os()
        .skip(1)
        .filter_map(|arg| arg.into_string().ok())
        .find(|arg| commands.find_subcommand(arg).is_some())
        .is_some_and(|arg| arg == "serve")
}

/// Stack of the thread the client commands run on: values from sessions may nest thousands of
/// levels deep, and parsing, printing and dropping an answer recurse once per level.
const CLIENT_STACK: usize = 256 << 20;

/// Runs a client command with the client of `global`'s connection flags, on a thread with a
/// [`CLIENT_STACK`] stack (reserved, not committed).
fn client(
    global: cli::GlobalArgs,
    run: impl FnOnce(&cli::Ctx) -> Result<cli::Outcome, cli::CliError> + Send + 'static,
) -> Result<cli::Outcome, cli::CliError> {
    let thread = std::thread::Builder::new()
        .name("client".into())
        .stack_size(CLIENT_STACK)
        .spawn(move || run(&cli::Ctx::new(&global)?))
        .map_err(|err| anyhow::Error::new(err).context("cannot start the client thread"))?;
    thread
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
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
            // The one line spec §10.2 asks for; no log line repeats it.
            eprintln!("error: {}", err.chain());
            ExitCode::from(1)
        }
    }
}
