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

#[derive(Debug, Default)]
struct State {
    running: Option<ExecId>,
    cause: Option<Cause>,
    /// pid of a child started by a host call in progress (killed on a stop).
    child_pid: Option<i32>,
}

/// Shared, cheap to clone through `Arc`.
#[derive(Default)]
pub(crate) struct Control {
    state: Mutex<State>,
    isolate: OnceLock<v8::IsolateHandle>,
    /// Woken on every stop, so an event loop waiting for a far timer notices at once.
    notify: Arc<Notify>,
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
        let mut state = self.lock();
        state.running = Some(id);
        state.cause = None;
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
            if state.running != Some(id) || state.cause.is_some() {
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
        if let Some(handle) = self.isolate.get() {
            handle.terminate_execution();
        }
        self.notify.notify_one();
        if let Some(pid) = child {
            // SAFETY: kill has no memory-safety preconditions; a stale pid is harmless here
            // because the child is only reaped by the thread that registered it.
            unsafe { libc::kill(pid, libc::SIGKILL) };
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
}
