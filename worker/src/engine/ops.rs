//! The host ops JavaScript can reach (one `extension!`), and the per-execution output sink they
//! write to. Output limits are applied here, before anything leaves the worker. The native
//! module ops (`op_vm_fs_*`, `op_vm_exec_run`, `op_vm_db_*`) only unpack arguments and call into
//! `modules::Modules`, which enforces the grants.

use std::sync::Arc;

use deno_core::{OpState, op2};
use protocol::{
    Budget, ConsoleLevel, EventType, ExecId, FromWorker, OutputLimit, StopCause, WorkerEvent,
};

use super::modules::{ModError, Modules, Param};
use crate::control::{Cause, Control};
use crate::transport::Outbox;

/// Where the running execution's events go, with what is left of its output budget.
#[derive(Debug)]
pub(crate) struct Sink {
    out: Outbox,
    control: Arc<Control>,
    id: ExecId,
    seq: u64,
    events_left: u64,
    bytes_left: u64,
    /// Set once the execution stopped or hit a limit: everything later is dropped.
    discard: bool,
    /// The terminal event, held back to leave in one write with the `Done` behind it.
    held: Option<FromWorker>,
}

impl Sink {
    pub(crate) fn new(out: Outbox, control: Arc<Control>) -> Self {
        Sink {
            out,
            control,
            id: ExecId(0),
            seq: 0,
            events_left: 0,
            bytes_left: 0,
            discard: true,
            held: None,
        }
    }

    /// Starts collecting the events of execution `id`.
    pub(crate) fn begin(&mut self, id: ExecId, budget: Budget) {
        self.id = id;
        self.seq = 0;
        self.events_left = budget.events;
        self.bytes_left = budget.bytes;
        self.discard = false;
        self.held = None;
    }

    /// Drops every event from now on (after a stop, and between executions).
    pub(crate) fn close(&mut self) {
        self.discard = true;
    }

    /// Accepts events again after a drain (the terminal exception of an uncaught error).
    pub(crate) fn reopen(&mut self) {
        self.discard = false;
    }

    /// Sends one event if it fits the budget. When it does not, the execution is stopped with the
    /// output-limit cause, this and every later event are dropped, and `false` is returned.
    pub(crate) fn emit(&mut self, event_type: EventType, payload: String) -> bool {
        match self.admit(event_type, payload) {
            Some(frame) => {
                self.out.send(frame);
                true
            }
            None => false,
        }
    }

    /// Like `emit` for the terminal event, which is held until `take_terminal` instead of sent.
    pub(crate) fn emit_terminal(&mut self, event_type: EventType, payload: String) -> bool {
        match self.admit(event_type, payload) {
            Some(frame) => {
                self.held = Some(frame);
                true
            }
            None => false,
        }
    }

    /// The terminal event held by `emit_terminal`, if any.
    pub(crate) fn take_terminal(&mut self) -> Option<FromWorker> {
        self.held.take()
    }

    /// The event frame if it fits the budget (see `emit`).
    fn admit(&mut self, event_type: EventType, payload: String) -> Option<FromWorker> {
        if self.discard {
            return None;
        }
        // Once a stop is taken, JavaScript may still run a few statements before the engine
        // notices (e.g. a `catch` around a host call the stop interrupted): none of it is output.
        if matches!(self.control.cause(), Some(Cause::Stop(_))) {
            return None;
        }
        let limit = if self.events_left == 0 {
            Some(OutputLimit::MaxEvents)
        } else if u64::try_from(payload.len()).unwrap_or(u64::MAX) > self.bytes_left {
            Some(OutputLimit::MaxOutputKb)
        } else {
            None
        };
        if let Some(limit) = limit {
            self.discard = true;
            self.control
                .stop(self.id, Cause::Stop(StopCause::Output(limit)));
            return None;
        }
        self.events_left -= 1;
        self.bytes_left -= u64::try_from(payload.len()).unwrap_or(0);
        self.seq += 1;
        Some(FromWorker::Event(WorkerEvent {
            id: self.id,
            seq: self.seq,
            event_type,
            payload,
        }))
    }
}

/// The payload of a console event, as stored.
pub(crate) fn console_payload(level: ConsoleLevel, text: &str) -> String {
    serde_json::json!({ "level": level.as_str(), "text": text }).to_string()
}

fn level_of(level: u32) -> ConsoleLevel {
    match level {
        1 => ConsoleLevel::Info,
        2 => ConsoleLevel::Warn,
        3 => ConsoleLevel::Error,
        4 => ConsoleLevel::Debug,
        _ => ConsoleLevel::Log,
    }
}

/// `console.*`: one console event with already formatted text.
#[op2(fast)]
fn op_vm_console(state: &mut OpState, level: u32, #[string] text: &str) {
    let payload = console_payload(level_of(level), text);
    state.borrow_mut::<Sink>().emit(EventType::Console, payload);
}

/// An uncaught exception from a timer, microtask or rejection: end the execution now.
#[op2(fast)]
fn op_vm_uncaught(state: &mut OpState) {
    let control = Arc::clone(&state.borrow::<Sink>().control);
    control.stop_current(Cause::Uncaught);
}

/// `fs.readFileSync(path)`.
#[op2]
#[string]
fn op_vm_fs_read(state: &mut OpState, #[string] path: &str) -> Result<String, ModError> {
    state.borrow::<Modules>().fs_read(path)
}

/// `fs.writeFileSync(path, String(data))`.
#[op2(fast)]
fn op_vm_fs_write(
    state: &mut OpState,
    #[string] path: &str,
    #[string] data: &str,
) -> Result<(), ModError> {
    state.borrow::<Modules>().fs_write(path, data)
}

/// `fs.existsSync(path)`.
#[op2(fast)]
fn op_vm_fs_exists(state: &mut OpState, #[string] path: &str) -> Result<bool, ModError> {
    state.borrow::<Modules>().fs_exists(path)
}

/// `fs.readdirSync(path)`: the names as JSON.
#[op2]
#[string]
fn op_vm_fs_readdir(state: &mut OpState, #[string] path: &str) -> Result<String, ModError> {
    state.borrow::<Modules>().fs_readdir(path)
}

/// `exec.run(cmd, args, {timeout_ms})`: `args` joined with NUL (they cannot contain one),
/// `timeout_ms` 0 when not given. The result is JSON.
#[op2]
#[string]
fn op_vm_exec_run(
    state: &mut OpState,
    #[string] cmd: &str,
    argc: u32,
    #[string] argv: &str,
    timeout_ms: f64,
) -> Result<String, ModError> {
    let args: Vec<String> = if argc == 0 {
        Vec::new()
    } else {
        argv.split('\0').map(str::to_string).collect()
    };
    if u32::try_from(args.len()).ok() != Some(argc) {
        return Err(ModError::type_error(
            "The \"args\" argument must be an array of strings without NUL characters",
        ));
    }
    let timeout = if timeout_ms >= 1.0 {
        // Saturating: a huge timeout is capped at the remaining wall time anyway.
        Some(timeout_ms as u64)
    } else {
        None
    };
    state.borrow::<Modules>().exec_run(cmd, &args, timeout)
}

/// `database.configure(path)`.
#[op2(fast)]
fn op_vm_db_configure(state: &mut OpState, #[string] path: &str) -> Result<(), ModError> {
    state.borrow_mut::<Modules>().db_configure(path)
}

/// Starts a `query`/`exec` call (`ERR_NOT_CONFIGURED` without a connection).
#[op2(fast)]
fn op_vm_db_begin(state: &mut OpState) -> Result<(), ModError> {
    state.borrow_mut::<Modules>().db_begin()
}

/// One parameter: kind 0 null, 1 integer (`number`), 2 real (`number`), 3 text (`text`),
/// 4 BigInt (`text`, decimal).
#[op2(fast)]
fn op_vm_db_bind(
    state: &mut OpState,
    kind: u32,
    number: f64,
    #[string] text: String,
) -> Result<(), ModError> {
    let param = match kind {
        0 => Param::Null,
        1 => Param::Integer(number),
        2 => Param::Real(number),
        3 => Param::Text(text),
        4 => Param::BigInt(text),
        _ => return Err(ModError::type_error("unsupported parameter kind")),
    };
    state.borrow_mut::<Modules>().db_bind(param)
}

/// One BLOB parameter (a `Uint8Array`).
#[op2(fast)]
fn op_vm_db_bind_blob(state: &mut OpState, #[buffer] bytes: &[u8]) -> Result<(), ModError> {
    state
        .borrow_mut::<Modules>()
        .db_bind(Param::Blob(bytes.to_vec()))
}

/// Runs the prepared call; JSON of the result.
#[op2]
#[string]
fn op_vm_db_run(state: &mut OpState, exec: bool, #[string] sql: &str) -> Result<String, ModError> {
    state.borrow_mut::<Modules>().db_run(exec, sql)
}

/// BLOB `index` of the last result, as a `Uint8Array`.
#[op2]
#[buffer]
fn op_vm_db_blob(state: &mut OpState, index: u32) -> Vec<u8> {
    state
        .borrow_mut::<Modules>()
        .db_blob(usize::try_from(index).unwrap_or(usize::MAX))
}

/// `database.close()`.
#[op2(fast)]
fn op_vm_db_close(state: &mut OpState) -> Result<(), ModError> {
    state.borrow_mut::<Modules>().db_close()
}

deno_core::extension!(
    vm_host,
    ops = [
        op_vm_console,
        op_vm_uncaught,
        op_vm_fs_read,
        op_vm_fs_write,
        op_vm_fs_exists,
        op_vm_fs_readdir,
        op_vm_exec_run,
        op_vm_db_configure,
        op_vm_db_begin,
        op_vm_db_bind,
        op_vm_db_bind_blob,
        op_vm_db_run,
        op_vm_db_blob,
        op_vm_db_close,
    ],
    global_object_middleware = super::scrub_backend_globals,
);
