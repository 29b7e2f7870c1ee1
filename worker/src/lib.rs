//! vm-system-worker: hosts one deno_core `JsRuntime` for one session, under OS limits, and serves
//! protocol frames on an inherited socket (never stdout).

mod control;
mod engine;
mod error;
mod limits;
mod memory;
mod serve;
mod transport;
mod watchdog;

use std::process::ExitCode;

use protocol::{FromWorker, PROTOCOL_VERSION};

use crate::control::Control;
use crate::engine::Engine;
use crate::error::WorkerError;
use crate::watchdog::{ThreadClock, Watchdog};

/// The descriptor the daemon passes the frame socket on, unless `--fd` says otherwise.
const DEFAULT_FD: i32 = 3;

/// Boots the worker and serves until the pipe closes. The one place that picks the exit code.
pub fn main_impl() -> ExitCode {
    memory::prepare_process();
    init_tracing();
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, cause = ?std::error::Error::source(&err), "worker failed");
            ExitCode::from(2)
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VM_SYSTEM_WORKER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .try_init();
}

fn parse_fd() -> Result<i32, WorkerError> {
    let mut args = std::env::args().skip(1);
    let mut fd = DEFAULT_FD;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--fd" => {
                let value = args
                    .next()
                    .ok_or_else(|| WorkerError::Usage("--fd needs a value".into()))?;
                fd = value
                    .parse()
                    .map_err(|_| WorkerError::Usage(format!("bad --fd value {value:?}")))?;
            }
            other => return Err(WorkerError::Usage(format!("unknown argument {other:?}"))),
        }
    }
    Ok(fd)
}

fn run() -> Result<(), WorkerError> {
    let fd = parse_fd()?;
    limits::apply().map_err(WorkerError::Limits)?;
    let control = Control::new();
    let hello = FromWorker::Hello {
        protocol_version: PROTOCOL_VERSION,
        pid: std::process::id(),
        engine: engine::ENGINE.into(),
        engine_version: engine::ENGINE_VERSION.into(),
    };
    let pipe = transport::start(fd, std::sync::Arc::clone(&control), hello)?;
    let clock = ThreadClock::current().map_err(WorkerError::Thread)?;
    let watchdog = Watchdog::spawn(clock, std::sync::Arc::clone(&control), pipe.out.clone())
        .map_err(WorkerError::Thread)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(WorkerError::Runtime)?;
    runtime.block_on(async move {
        let engine = match Engine::new(control, watchdog, pipe.out.clone()) {
            Ok(engine) => engine,
            Err(err) => {
                let err = WorkerError::Engine(err);
                tracing::error!(error = %err, cause = ?std::error::Error::source(&err), "worker failed to boot");
                pipe.out.send(FromWorker::BootFailed {
                    reason: format!("{err}: {}", std::error::Error::source(&err).map(ToString::to_string).unwrap_or_default()),
                });
                pipe.out.exit(2);
                return;
            }
        };
        // Booting parsed and ran far more than an idle runtime keeps: give it back before the
        // worker waits in the pool.
        memory::release_boot_memory();
        pipe.out.send(FromWorker::Ready);
        serve::serve(engine, pipe).await;
    });
    // serve() returns only after asking the frame thread to flush and exit; wait for it.
    loop {
        std::thread::park();
    }
}
