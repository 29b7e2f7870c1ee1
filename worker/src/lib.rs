//! vm-system-worker: hosts one deno_core `JsRuntime` for one session, under OS limits, and serves
//! protocol frames on an inherited socket (never stdout); with `--zygote`, a fork server that boots
//! one runtime and forks a copy of itself per session (`zygote.rs`).

mod control;
mod engine;
mod error;
mod limits;
mod memory;
mod serve;
mod transport;
mod watchdog;
mod zygote;

/// For its test (`tests/held_free_chunks.rs`), which must run on a process's main thread.
#[doc(hidden)]
pub use memory::hold_free_chunks;

use std::process::ExitCode;
use std::sync::Arc;

use protocol::{FromWorker, PROTOCOL_VERSION};

use crate::control::Control;
use crate::engine::Booted;
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

/// What the command line asks for.
struct Args {
    /// The descriptor of the frame socket (or of the fork server's socket).
    fd: i32,
    /// Run as the fork server (`--zygote`).
    zygote: bool,
}

fn parse_args() -> Result<Args, WorkerError> {
    let mut args = std::env::args().skip(1);
    let mut parsed = Args {
        fd: DEFAULT_FD,
        zygote: false,
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--fd" => {
                let value = args
                    .next()
                    .ok_or_else(|| WorkerError::Usage("--fd needs a value".into()))?;
                parsed.fd = value
                    .parse()
                    .map_err(|_| WorkerError::Usage(format!("bad --fd value {value:?}")))?;
            }
            "--zygote" => parsed.zygote = true,
            other => return Err(WorkerError::Usage(format!("unknown argument {other:?}"))),
        }
    }
    Ok(parsed)
}

fn run() -> Result<(), WorkerError> {
    let args = parse_args()?;
    limits::apply().map_err(WorkerError::Limits)?;
    if args.zygote {
        return zygote::run(args.fd);
    }
    let control = Control::new();
    let pipe = transport::start(args.fd, Arc::clone(&control), hello())?;
    let booted = {
        // Inside the session's async runtime: V8 posts delayed tasks to the runtime the isolate
        // was created in (the QuickJS backend posts none).
        let runtime = session_runtime()?;
        let _entered = runtime.enter();
        Booted::new(Arc::clone(&control))
    };
    let booted = match booted {
        Ok(booted) => booted,
        Err(err) => fail_boot(&pipe.out, &WorkerError::Engine(err)),
    };
    // Booting parsed and ran far more than an idle runtime keeps: give it back before the worker
    // waits in the pool.
    memory::release_boot_memory();
    serve_session(booted, control, pipe)
}

/// The first frame a worker sends: who is speaking (this process, spawned or forked).
fn hello() -> FromWorker {
    FromWorker::Hello {
        protocol_version: PROTOCOL_VERSION,
        pid: std::process::id(),
        engine: engine::ENGINE.into(),
        engine_version: engine::ENGINE_VERSION.into(),
    }
}

/// The async runtime the JavaScript thread runs the session on.
fn session_runtime() -> Result<&'static tokio::runtime::Runtime, WorkerError> {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(WorkerError::Runtime)?;
    Ok(RUNTIME.get_or_init(|| runtime))
}

/// Serves one session with a booted runtime on this (the JavaScript) thread: starts the watchdog,
/// reports `Ready` and serves frames. The process ends from the frame thread.
fn serve_session(booted: Booted, control: Arc<Control>, pipe: transport::Pipe) -> ! {
    let watchdog = ThreadClock::current()
        .and_then(|clock| Watchdog::spawn(clock, Arc::clone(&control), pipe.out.clone()));
    let runtime = session_runtime();
    let (watchdog, runtime) = match (watchdog, runtime) {
        (Ok(watchdog), Ok(runtime)) => (watchdog, runtime),
        (Err(err), _) => fail_boot(&pipe.out, &WorkerError::Thread(err)),
        (_, Err(err)) => fail_boot(&pipe.out, &err),
    };
    let inbox = {
        let _entered = runtime.enter();
        pipe.input.attach()
    };
    let inbox = match inbox {
        Ok(inbox) => inbox,
        Err(err) => fail_boot(&pipe.out, &WorkerError::Pipe(err)),
    };
    let engine = booted.attach(watchdog, pipe.out.clone());
    pipe.out.send(FromWorker::Ready);
    runtime.block_on(serve::serve(engine, pipe.out, inbox));
    // serve() returns only after asking the frame thread to flush and exit; wait for it.
    park_forever()
}

/// Reports `BootFailed` (the error and its causes), then ends the process with code 2 once the
/// frame is out.
pub(crate) fn fail_boot(out: &transport::Outbox, err: &WorkerError) -> ! {
    tracing::error!(error = %err, cause = ?std::error::Error::source(err), "worker failed to boot");
    out.send(FromWorker::BootFailed {
        reason: error::with_causes(err),
    });
    out.exit(2);
    park_forever()
}

fn park_forever() -> ! {
    loop {
        std::thread::park();
    }
}
