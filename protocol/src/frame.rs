//! Frame types for both directions of the daemon ↔ worker pipe.
//!
//! The conversation is: worker `Hello` → worker `Ready` (or `BootFailed`) → daemon `Configure` →
//! worker `Configured` (or `ConfigureFailed`) → any number of `Exec`, each answered by `Event`s,
//! `Stats` and exactly one `Done`. `Cancel` may arrive while an `Exec` runs; `Shutdown` at any time.

use serde::{Deserialize, Serialize};

/// Identifies one execution within one worker. Assigned by the daemon, echoed by the worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ExecId(pub u64);

/// Everything the worker needs to become a session's runtime. Sent once, when the worker is
/// assigned to a session (pool workers idle before this frame).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionConfig {
    /// Canonical absolute path of the worktree; becomes the worker's cwd.
    pub worktree: String,
    /// Engine heap limit in MiB (spec §5 `mem_mb`).
    pub mem_mb: u32,
    /// Prepend `'use strict';` to REPL inputs, run files and startup files.
    pub strict: bool,
    /// `false`: console methods exist but record nothing.
    pub console: bool,
    /// Native modules the template exposes (`fs`, `exec`, `database`), in template order.
    pub modules: Vec<String>,
    /// At least one enabled `fs` capability exists.
    pub fs_read: bool,
    /// An enabled `fs` capability has `write: true`.
    pub fs_write: bool,
    /// Union of the `allow` lists of enabled `module`/`exec` capabilities.
    pub exec_allow: Vec<String>,
    /// Granted environment variables and the daemon's values for them, in grant order.
    pub env: Vec<(String, String)>,
}

/// What kind of code an `Exec` carries; decides the script name and how output is treated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ExecKind {
    /// A REPL input (script name `<repl>`).
    Repl,
    /// A worktree file; `args_json` is the request's `args` object as JSON text, `env` the overlay.
    RunFile {
        args_json: String,
        env: Vec<(String, String)>,
    },
    /// A template startup file.
    Startup,
    /// A library bundle: never strict, console discarded, no value event.
    Library,
}

/// Time limits for one execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecLimits {
    /// Elapsed time from receipt of the frame.
    pub wall_ms: u64,
    /// CPU time of the JavaScript thread.
    pub cpu_ms: u64,
}

/// How much output the worker may still produce for one execution (spec §5 output accounting):
/// the daemon has already stored `input_echo` and subtracted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    /// Events left, terminal `value`/`exception` included.
    pub events: u64,
    /// Payload bytes left (compact JSON, UTF-8).
    pub bytes: u64,
    /// The configured `max_events`, for messages.
    pub max_events: u64,
    /// The configured `max_output_kb`, for messages.
    pub max_output_kb: u64,
}

/// Daemon → worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ToWorker {
    /// Become this session's runtime.
    Configure(SessionConfig),
    /// Run code and answer with events and one `Done`.
    Exec {
        id: ExecId,
        kind: ExecKind,
        /// Script name used in stacks: `<repl>`, the cleaned relative path, or `lib:<id>@<version>`.
        name: String,
        source: String,
        limits: ExecLimits,
        budget: Budget,
    },
    /// Stop the running execution `id` for `cause` (ignored if `id` is not running).
    Cancel { id: ExecId, cause: StopCause },
    /// Exit now.
    Shutdown,
}

/// Why an execution was stopped before it finished on its own (spec §7.8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopCause {
    /// `POST /executions/{id}/cancel`.
    Cancelled,
    /// The session was closed.
    SessionClosed,
    /// The session was restarted.
    SessionRestarted,
    /// The daemon is shutting down.
    DaemonShutdown,
    /// `wall_ms` exceeded.
    WallTime,
    /// `cpu_ms` exceeded.
    CpuTime,
    /// `max_events` or `max_output_kb` exceeded.
    Output(OutputLimit),
    /// The engine heap limit was reached.
    Memory,
}

/// Which output limit was hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutputLimit {
    MaxEvents,
    MaxOutputKb,
}

/// Level of a console event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConsoleLevel {
    Log,
    Info,
    Warn,
    Error,
    Debug,
}

impl ConsoleLevel {
    /// The spelling used in event payloads.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsoleLevel::Log => "log",
            ConsoleLevel::Info => "info",
            ConsoleLevel::Warn => "warn",
            ConsoleLevel::Error => "error",
            ConsoleLevel::Debug => "debug",
        }
    }
}

/// Type of an event the worker produces (`input_echo` and `system` events are the daemon's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventType {
    Console,
    Value,
    Exception,
}

/// One event of a running execution. `payload` is the compact JSON the daemon stores verbatim;
/// its byte length is what output limits count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerEvent {
    pub id: ExecId,
    /// 1, 2, 3, … within the execution, in emission order.
    pub seq: u64,
    pub event_type: EventType,
    pub payload: String,
}

/// How an execution ended, as the worker saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExecOutcome {
    /// Finished; the last event sent was the `value`.
    Ok,
    /// Threw; the last event sent was the `exception`.
    Exception,
    /// Stopped for `cause`; no terminal event was sent (the daemon writes the `system` event).
    Stopped { cause: StopCause },
}

/// Worker → daemon.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FromWorker {
    /// First frame: who is speaking.
    Hello {
        protocol_version: u32,
        pid: u32,
        engine: String,
        engine_version: String,
    },
    /// The runtime exists and is waiting for `Configure`.
    Ready,
    /// The runtime could not be created; the worker exits after this frame.
    BootFailed { reason: String },
    /// `Configure` applied.
    Configured,
    /// `Configure` could not be applied; the worker exits after this frame.
    ConfigureFailed { reason: String },
    /// Output of a running execution.
    Event(WorkerEvent),
    /// Periodic CPU sample of a running execution.
    Stats { id: ExecId, cpu_ms: u64 },
    /// The execution ended. Every event of it was sent before this frame.
    Done {
        id: ExecId,
        outcome: ExecOutcome,
        cpu_ms: u64,
        wall_ms: u64,
    },
    /// The worker is about to exit for `reason` (e.g. the heap did not recover after a memory stop).
    Fatal { reason: String },
}
