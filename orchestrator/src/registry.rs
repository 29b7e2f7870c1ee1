//! `Registry`: the daemon's in-memory view of live sessions (their worker, state and execution
//! slot) and of running executions (how to stop them, how far their events are committed).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use protocol::StopCause;
use tokio::sync::{mpsc, watch};

use crate::model::{ExecutionId, Limits, SessionId, SessionStatus};
use crate::worker_handle::WorkerHandle;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Settings a session runs with: a snapshot taken at create or restart (spec §5).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SessionSettings {
    pub(crate) limits: Limits,
}

/// Mutable state of a live session.
#[derive(Debug)]
pub(crate) struct LiveState {
    /// Mirrors the row's status while the session is in the registry.
    pub(crate) status: SessionStatus,
    pub(crate) worker: Option<WorkerHandle>,
    /// The execution holding the session's single slot.
    pub(crate) running: Option<ExecutionId>,
    pub(crate) settings: Option<SessionSettings>,
    /// The canonical worktree the worker was given.
    pub(crate) worktree: Option<std::path::PathBuf>,
    /// Stops the library load in progress during a start.
    pub(crate) loading: Option<mpsc::UnboundedSender<StopCause>>,
}

/// A session the daemon holds a worker (or a start in progress) for.
#[derive(Debug)]
pub(crate) struct Live {
    pub(crate) id: SessionId,
    /// Serializes create/restart of this session; close does not take it.
    pub(crate) lifecycle: tokio::sync::Mutex<()>,
    state: Mutex<LiveState>,
}

impl Live {
    pub(crate) fn state(&self) -> MutexGuard<'_, LiveState> {
        lock(&self.state)
    }
}

/// Progress of a running execution, for followers and for waiting on its end.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Highest `seq` committed to the store.
    pub(crate) committed: u64,
    /// The final row is committed.
    pub(crate) ended: bool,
}

/// Control of one running execution.
#[derive(Debug, Clone)]
pub(crate) struct ExecControl {
    pub(crate) stop: mpsc::UnboundedSender<StopCause>,
    pub(crate) progress: watch::Receiver<Progress>,
}

impl ExecControl {
    /// Waits until the execution's final row is committed.
    pub(crate) async fn ended(&self) {
        let mut progress = self.progress.clone();
        let _ = progress.wait_for(|p| p.ended).await;
    }
}

#[derive(Debug, Default)]
pub(crate) struct Registry {
    sessions: Mutex<HashMap<SessionId, Arc<Live>>>,
    executions: Mutex<HashMap<ExecutionId, ExecControl>>,
}

fn new_live(id: SessionId, status: SessionStatus) -> Arc<Live> {
    Arc::new(Live {
        id,
        lifecycle: tokio::sync::Mutex::new(()),
        state: Mutex::new(LiveState {
            status,
            worker: None,
            running: None,
            settings: None,
            worktree: None,
            loading: None,
        }),
    })
}

impl Registry {
    /// Adds a session in `starting`.
    pub(crate) fn insert(&self, id: SessionId) -> Arc<Live> {
        let live = new_live(id, SessionStatus::Starting);
        lock(&self.sessions).insert(id, Arc::clone(&live));
        live
    }

    /// The session's live state, added in `status` if it has none (a session found `crashed` has
    /// no worker and no live state until it restarts).
    pub(crate) fn get_or_insert(&self, id: SessionId, status: SessionStatus) -> Arc<Live> {
        let mut sessions = lock(&self.sessions);
        Arc::clone(sessions.entry(id).or_insert_with(|| new_live(id, status)))
    }

    pub(crate) fn get(&self, id: SessionId) -> Option<Arc<Live>> {
        lock(&self.sessions).get(&id).cloned()
    }

    pub(crate) fn remove(&self, id: SessionId) {
        lock(&self.sessions).remove(&id);
    }

    /// Every live session, ids ascending.
    pub(crate) fn all(&self) -> Vec<Arc<Live>> {
        let mut all: Vec<_> = lock(&self.sessions).values().cloned().collect();
        all.sort_by_key(|live| live.id);
        all
    }

    pub(crate) fn add_execution(&self, id: ExecutionId, control: ExecControl) {
        lock(&self.executions).insert(id, control);
    }

    pub(crate) fn execution(&self, id: ExecutionId) -> Option<ExecControl> {
        lock(&self.executions).get(&id).cloned()
    }

    pub(crate) fn remove_execution(&self, id: ExecutionId) {
        lock(&self.executions).remove(&id);
    }

    /// How many executions are running.
    pub(crate) fn execution_count(&self) -> usize {
        lock(&self.executions).len()
    }

    /// Every running execution.
    pub(crate) fn executions(&self) -> Vec<ExecControl> {
        lock(&self.executions).values().cloned().collect()
    }
}
