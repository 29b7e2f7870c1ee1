//! `Control`: the state shared between the JavaScript thread, the frame reader and the watchdog
//! that decides which stop cause wins and interrupts the engine.

use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use deno_core::v8;
use protocol::{ExecId, StopCause};
use tokio::sync::Notify;

/// Why the running execution is being ended early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cause {
    /// A stop cause of spec §7.8; the first one taken wins.
    Stop(StopCause),
    /// The script threw from a timer, a microtask or an unhandled rejection: it ends `EXCEPTION`.
    Uncaught,
}

#[derive(Default)]
struct State {
    running: Option<ExecId>,
    cause: Option<Cause>,
    /// pid of a child started by a host call in progress (killed on a stop).
    child_pid: Option<i32>,
    /// The last execution that began; ids only grow within a worker.
    last_begun: Option<ExecId>,
    /// A stop for an execution whose `Exec` frame the JavaScript thread has not picked up yet
    /// (a `Cancel` read right behind its `Exec`): applied when it begins.
    early: Option<(ExecId, Cause)>,
    /// Interrupts the `database` module's connection (`sqlite3_interrupt`) on a stop.
    db_interrupt: Option<Arc<rusqlite::InterruptHandle>>,
}

/// Shared, cheap to clone through `Arc`.
#[derive(Default)]
pub(crate) struct Control {
    state: Mutex<State>,
    isolate: OnceLock<v8::IsolateHandle>,
    /// Woken on every stop, so an event loop waiting for a far timer notices at once.
    notify: Arc<Notify>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("running", &self.running)
            .field("cause", &self.cause)
            .field("child_pid", &self.child_pid)
            .field("last_begun", &self.last_begun)
            .field("early", &self.early)
            .field("db_interrupt", &self.db_interrupt.is_some())
            .finish()
    }
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control").finish_non_exhaustive()
    }
}

impl Control {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means another thread panicked while holding it; the state itself
        // is plain data and stays meaningful.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers the engine's isolate so stops can interrupt it from any thread.
    pub(crate) fn set_isolate(&self, handle: v8::IsolateHandle) {
        let _ = self.isolate.set(handle);
    }

    /// Marks `id` as the running execution with no cause taken yet.
    pub(crate) fn begin(&self, id: ExecId) {
        let early = {
            let mut state = self.lock();
            state.running = Some(id);
            state.last_begun = Some(id);
            state.cause = state
                .early
                .take()
                .filter(|(early, _)| *early == id)
                .map(|(_, cause)| cause);
            state.cause.is_some()
        };
        if early {
            self.interrupt(None);
        }
    }

    /// Ends the running execution and returns the cause taken, if any.
    pub(crate) fn end(&self) -> Option<Cause> {
        let mut state = self.lock();
        state.running = None;
        state.cause.take()
    }

    /// The cause taken so far for the running execution.
    pub(crate) fn cause(&self) -> Option<Cause> {
        self.lock().cause
    }

    /// Clears the cause so a later phase of the same execution (rendering its result) can be
    /// stopped again. Returns the cleared cause.
    pub(crate) fn reopen(&self) -> Option<Cause> {
        self.lock().cause.take()
    }

    /// Takes `cause` for execution `id` if it is running and no cause was taken yet, then
    /// interrupts the engine and any host call. Returns whether this cause won.
    pub(crate) fn stop(&self, id: ExecId, cause: Cause) -> bool {
        let child = {
            let mut state = self.lock();
            if state.running != Some(id) {
                // Not begun yet: keep the first stop for when it does.
                let pending = state.last_begun.is_none_or(|begun| id > begun);
                if pending && state.early.as_ref().is_none_or(|(early, _)| *early != id) {
                    state.early = Some((id, cause));
                }
                return pending;
            }
            if state.cause.is_some() {
                return false;
            }
            state.cause = Some(cause);
            state.child_pid
        };
        self.interrupt(child);
        true
    }

    /// Like `stop` for whatever execution is running.
    pub(crate) fn stop_current(&self, cause: Cause) -> bool {
        let running = self.lock().running;
        match running {
            Some(id) => self.stop(id, cause),
            None => false,
        }
    }

    /// The notifier woken on every stop.
    pub(crate) fn notify(&self) -> Arc<Notify> {
        Arc::clone(&self.notify)
    }

    fn interrupt(&self, child: Option<i32>) {
        let db = self.lock().db_interrupt.clone();
        if let Some(handle) = self.isolate.get() {
            handle.terminate_execution();
        }
        self.notify.notify_one();
        if let Some(pid) = child {
            // SAFETY: kill has no memory-safety preconditions; a stale pid is harmless here
            // because the child is only reaped by the thread that registered it, after it has
            // unregistered it.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        if let Some(db) = db {
            db.interrupt();
        }
    }

    /// Registers (Some) or clears (None) the child of a host call in progress. Registering while a
    /// cause is already taken kills the child at once.
    pub(crate) fn set_child(&self, pid: Option<i32>) {
        let kill_now = {
            let mut state = self.lock();
            state.child_pid = pid;
            state.cause.is_some()
        };
        if let (true, Some(pid)) = (kill_now, pid) {
            // SAFETY: as in `interrupt`.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }

    /// Registers (Some) or clears (None) the interrupt handle of the `database` module's open
    /// connection. A stop calls it (`sqlite3_interrupt`) from the stopping thread.
    pub(crate) fn set_db_interrupt(&self, handle: Option<Arc<rusqlite::InterruptHandle>>) {
        self.lock().db_interrupt = handle;
    }
}
