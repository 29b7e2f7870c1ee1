//! The host ops JavaScript can reach (one `extension!`), and the per-execution output sink they
//! write to. Output limits are applied here, before anything leaves the worker.

use std::sync::Arc;

use deno_core::{OpState, op2};
use protocol::{
    Budget, ConsoleLevel, EventType, ExecId, FromWorker, OutputLimit, StopCause, WorkerEvent,
};

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
        }
    }

    /// Starts collecting the events of execution `id`.
    pub(crate) fn begin(&mut self, id: ExecId, budget: Budget) {
        self.id = id;
        self.seq = 0;
        self.events_left = budget.events;
        self.bytes_left = budget.bytes;
        self.discard = false;
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
        if self.discard {
            return false;
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
            return false;
        }
        self.events_left -= 1;
        self.bytes_left -= u64::try_from(payload.len()).unwrap_or(0);
        self.seq += 1;
        self.out.send(FromWorker::Event(WorkerEvent {
            id: self.id,
            seq: self.seq,
            event_type,
            payload,
        }));
        true
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

deno_core::extension!(vm_host, ops = [op_vm_console, op_vm_uncaught]);
