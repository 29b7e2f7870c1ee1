//! Sessions (spec §4.8, §6): create, restart and close, the start sequence (worker, libraries,
//! startup files), and what happens when a worker is lost.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use protocol::{Budget, ExecKind, ExecLimits, ExecOutcome, SessionConfig, StopCause};
use tokio::sync::{mpsc, watch};

use super::Service;
use super::drive::{Drive, Step};
use super::executions::ExecInput;
use crate::api::error::ApiError;
use crate::model::{
    CapabilityKind, ExecutionId, ExecutionKind, ExecutionStatus, Session, SessionId, SessionStatus,
    SessionUpdate, TemplateDetail, TemplateId, Timestamp,
};
use crate::registry::{ExecControl, Live, Progress, SessionSettings};
use crate::store::StoreError;
use crate::worker_handle::{WorkerError, WorkerHandle};
use crate::worktree::{SourceError, check_worktree, read_source};

/// The request of `POST /sessions`, validated.
#[derive(Debug)]
pub(crate) struct NewSession {
    pub(crate) template_id: TemplateId,
    pub(crate) workspace_id: String,
    pub(crate) base_commit_oid: String,
    pub(crate) worktree_path: String,
}

/// Why a start did not reach `ready`.
struct StartFailure {
    last_error: String,
    error: ApiError,
}

impl StartFailure {
    fn new(last_error: impl Into<String>, error: ApiError) -> Self {
        StartFailure {
            last_error: last_error.into(),
            error,
        }
    }
}

fn worker_start_failed(session_id: SessionId, err: WorkerError) -> StartFailure {
    StartFailure::new(
        format!("worker failed to start: {}", err.reason()),
        ApiError::WorkerStartFailed {
            session_id: session_id.as_uuid(),
            source: Box::new(err),
        },
    )
}

/// The library file for a template entry (`id` or `id@version`): `<dir>/<id>-<version>.js`.
pub(crate) fn library_file(dir: &Path, entry: &str) -> (String, PathBuf) {
    let (id, version) = match entry.split_once('@') {
        Some((id, version)) => (id.to_string(), version.to_string()),
        None => (
            entry.to_string(),
            crate::catalog::library(entry).map_or_else(String::new, |lib| lib.version.to_string()),
        ),
    };
    (
        format!("{id}@{version}"),
        dir.join(format!("{id}-{version}.js")),
    )
}

/// Reads a library file: a regular file, opened without blocking (a FIFO or a device in the
/// library directory would otherwise hold the start, and the shutdown, until it is written).
fn read_library(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

impl Service {
    /// `POST /sessions`: checks, inserts the row as `starting`, and starts it (spec §6).
    pub(crate) async fn create_session(&self, new: NewSession) -> Result<Session, ApiError> {
        let detail = self.store.template_detail(new.template_id).await?;
        let worktree =
            check_worktree(&new.worktree_path).map_err(|reason| ApiError::InvalidWorktree {
                worktree_path: new.worktree_path.clone(),
                reason: reason.as_str(),
            })?;
        if detail.template.engine != self.engine {
            return Err(ApiError::EngineUnsupported {
                engine: detail.template.engine.clone(),
                supported: vec![self.engine.clone()],
            });
        }
        let now = Timestamp::now();
        let session = Session {
            id: SessionId::new_v4(),
            template_id: new.template_id,
            workspace_id: new.workspace_id,
            base_commit_oid: new.base_commit_oid,
            worktree_path: new.worktree_path,
            status: SessionStatus::Starting,
            engine: self.engine.clone(),
            pid: None,
            last_error: None,
            created_at: now,
            updated_at: now,
            closed_at: None,
        };
        let id = session.id;
        self.store.insert_session(session).await?;
        let live = self.registry.insert(id);
        let svc = self.clone();
        self.spawn(async move {
            let _guard = live.lifecycle.lock().await;
            svc.start(&live, detail, worktree).await
        })
        .await
    }

    /// `POST /sessions/{id}/restart` (spec §4.8). The restart is claimed before it waits for the
    /// session: from then on REPL, run-file and another restart get `409 SESSION_NOT_READY`
    /// (`starting`).
    pub(crate) async fn restart_session(&self, id: SessionId) -> Result<Session, ApiError> {
        let row = self.store.get_session(id).await?;
        if !matches!(row.status, SessionStatus::Ready | SessionStatus::Crashed) {
            return Err(self.not_ready(id, row.status));
        }
        let svc = self.clone();
        self.spawn(async move { svc.restart_inner(id, row.status).await })
            .await
    }

    /// Claims the restart at once (from then on the session is `starting` in memory), then waits
    /// for its turn and restarts it. `status` is the row's status when the request was checked.
    async fn restart_inner(
        &self,
        id: SessionId,
        status: SessionStatus,
    ) -> Result<Session, ApiError> {
        let live = self.registry.get_or_insert(id, status);
        let was = {
            let mut state = live.state();
            let was = state.status;
            if !matches!(was, SessionStatus::Ready | SessionStatus::Crashed) {
                return Err(self.not_ready(id, was));
            }
            state.status = SessionStatus::Starting;
            was
        };
        let live = &live;
        let _guard = live.lifecycle.lock().await;
        let last_error = match self.store.get_session(id).await {
            Ok(row) => row.last_error,
            Err(err) => {
                // Nothing changed yet: let the claim go.
                let mut state = live.state();
                if state.status == SessionStatus::Starting {
                    state.status = was;
                }
                return Err(err.into());
            }
        };
        let (running, worker) = {
            let mut state = live.state();
            if state.status == SessionStatus::Closed {
                return Err(self.not_ready(id, SessionStatus::Closed));
            }
            (state.running, state.worker.take())
        };
        let row = self
            .store
            .transition_session(
                id,
                &[SessionStatus::Ready, SessionStatus::Crashed],
                SessionUpdate {
                    status: SessionStatus::Starting,
                    pid: None,
                    last_error,
                },
                Timestamp::now(),
            )
            .await;
        let row = match row {
            Ok(row) => row,
            Err(err) => {
                // A close got there first (or the store failed): the worker taken above is this
                // restart's to stop, or nobody's.
                if let Some(worker) = worker {
                    worker.stop(false).await;
                }
                let mut state = live.state();
                if state.status == SessionStatus::Starting {
                    state.status = SessionStatus::Crashed;
                }
                return Err(err.into());
            }
        };
        self.stop_running(running, StopCause::SessionRestarted)
            .await;
        if let Some(worker) = worker {
            worker.stop(false).await;
        }
        let worktree = match check_worktree(&row.worktree_path) {
            Ok(worktree) => worktree,
            Err(reason) => {
                let error = ApiError::InvalidWorktree {
                    worktree_path: row.worktree_path.clone(),
                    reason: reason.as_str(),
                };
                return Err(self
                    .fail_start(
                        live,
                        StartFailure::new(format!("worktree invalid: {}", reason.as_str()), error),
                    )
                    .await);
            }
        };
        let detail = match self.store.template_detail(row.template_id).await {
            Ok(detail) => detail,
            Err(err) => {
                return Err(self
                    .fail_start(
                        live,
                        StartFailure::new("template missing", ApiError::from(err)),
                    )
                    .await);
            }
        };
        self.start(live, detail, worktree).await
    }

    /// `POST /sessions/{id}/close` and `DELETE /sessions/{id}`: idempotent (spec §4.8).
    pub(crate) async fn close_session(&self, id: SessionId) -> Result<Session, ApiError> {
        let row = self.store.get_session(id).await?;
        if row.status == SessionStatus::Closed {
            return Ok(row);
        }
        let svc = self.clone();
        self.spawn(async move { svc.close_inner(id, row).await })
            .await
    }

    async fn close_inner(&self, id: SessionId, row: Session) -> Result<Session, ApiError> {
        let live = self.registry.get(id);
        let (running, worker, loading) = match &live {
            Some(live) => {
                let mut state = live.state();
                state.status = SessionStatus::Closed;
                (state.running, state.worker.take(), state.loading.take())
            }
            None => (None, None, None),
        };
        let closed = self
            .store
            .set_session_state(
                id,
                SessionUpdate {
                    status: SessionStatus::Closed,
                    pid: None,
                    last_error: row.last_error,
                },
                Timestamp::now(),
            )
            .await?;
        if let Some(loading) = loading {
            let _ = loading.send(StopCause::SessionClosed);
        }
        self.stop_running(running, StopCause::SessionClosed).await;
        if let Some(worker) = worker {
            worker.stop(false).await;
        }
        self.registry.remove(id);
        Ok(closed)
    }

    /// Stops the execution in `running` (if any) for `cause` and waits for its final row.
    async fn stop_running(&self, running: Option<ExecutionId>, cause: StopCause) {
        if let Some(control) = running.and_then(|id| self.registry.execution(id)) {
            let _ = control.stop.send(cause);
            control.ended().await;
        }
    }

    /// A start that ended because the session left `starting` (it was closed): `status` is what
    /// the answer names.
    fn closed_start(&self, id: SessionId, status: SessionStatus) -> StartFailure {
        StartFailure::new("closed", self.not_ready(id, status))
    }

    fn not_ready(&self, id: SessionId, status: SessionStatus) -> ApiError {
        ApiError::SessionNotReady {
            session_id: id.as_uuid(),
            status: status.as_str().to_string(),
        }
    }

    /// The start sequence of spec §6, steps 1–4. The row is `starting`.
    async fn start(
        &self,
        live: &Arc<Live>,
        detail: TemplateDetail,
        worktree: PathBuf,
    ) -> Result<Session, ApiError> {
        match self.start_steps(live, &detail, worktree).await {
            Ok(()) => {}
            Err(failure) => return Err(self.fail_start(live, failure).await),
        }
        let (worker, settings_ok) = {
            let state = live.state();
            (
                state.worker.clone(),
                state.status == SessionStatus::Starting,
            )
        };
        let Some(worker) = worker.filter(|_| settings_ok) else {
            return Err(self.not_ready(live.id, SessionStatus::Closed));
        };
        let ready = self
            .record_worker(live.id, SessionStatus::Ready, &worker)
            .await?;
        {
            let mut state = live.state();
            if state.status != SessionStatus::Starting {
                return Err(self.not_ready(live.id, state.status));
            }
            state.status = SessionStatus::Ready;
        }
        self.watch_worker(live, &worker);
        Ok(ready)
    }

    async fn start_steps(
        &self,
        live: &Arc<Live>,
        detail: &TemplateDetail,
        worktree: PathBuf,
    ) -> Result<(), StartFailure> {
        let id = live.id;
        let settings = SessionSettings {
            limits: detail.settings.limits,
        };
        // 1. A worker, configured for this session. A worker that turns out to be gone before it
        // took the configuration (a pool worker that died while idle, its death not yet noticed,
        // such as the copies of a fork server that was killed) is replaced once by a fresh one,
        // rather than failing the start for something the session never saw.
        let mut attempts = 0;
        let worker = loop {
            attempts += 1;
            let worker = self.take_worker(live, settings, &worktree).await?;
            let config = session_config(detail, &worktree);
            match self.configure_worker(id, &worker, config).await {
                Ok(()) => break worker,
                // Not when a close stopped it (the session is no longer starting).
                Err(WorkerError::Exited(reason))
                    if attempts == 1 && live.state().status == SessionStatus::Starting =>
                {
                    tracing::warn!(
                        pid = worker.pid(),
                        reason = %reason.last_error(),
                        "a worker died before its configuration; starting another"
                    );
                    live.state().worker = None;
                }
                Err(err) => {
                    return Err(worker_start_failed(id, err));
                }
            }
        };

        // 2. Libraries, in template order.
        for entry in &detail.template.libraries {
            self.load_library(live, &worker, settings, entry).await?;
        }

        // 3. Startup files, in run order, as executions.
        for file in &detail.startup_files {
            self.run_startup(live, &worker, settings, &worktree, &file.path)
                .await?;
        }
        Ok(())
    }

    /// Takes a worker from the pool (or a new one) and attaches it to the starting session.
    async fn take_worker(
        &self,
        live: &Arc<Live>,
        settings: SessionSettings,
        worktree: &Path,
    ) -> Result<WorkerHandle, StartFailure> {
        let id = live.id;
        if live.state().status != SessionStatus::Starting {
            return Err(self.closed_start(id, SessionStatus::Closed));
        }
        let worker = self
            .pool
            .take()
            .await
            .map_err(|err| worker_start_failed(id, err))?;
        self.metrics.worker_attached();
        worker.set_label(id.to_string());
        let mut state = live.state();
        if state.status != SessionStatus::Starting {
            drop(state);
            tokio::spawn(async move { worker.stop(true).await });
            return Err(self.closed_start(id, SessionStatus::Closed));
        }
        state.worker = Some(worker.clone());
        state.settings = Some(settings);
        state.worktree = Some(worktree.to_path_buf());
        drop(state);
        Ok(worker)
    }

    /// Hands the worker its configuration and writes its pid on the row. The two do not depend on
    /// each other. The row may be committed right on this thread (`Store::write_now`): `Configure`
    /// is handed to the worker's supervisor first, and the write yields once so that the
    /// supervisor sends it before the commit, and the worker applies it meanwhile.
    async fn configure_worker(
        &self,
        id: SessionId,
        worker: &WorkerHandle,
        config: SessionConfig,
    ) -> Result<(), WorkerError> {
        // A failed pid write (the session closed meanwhile) is seen by the steps that follow.
        let (configured, _) = tokio::join!(worker.configure(config), async {
            tokio::task::yield_now().await;
            self.record_worker(id, SessionStatus::Starting, worker)
                .await
        });
        configured
    }

    /// Writes a `starting` session's row as `status` with `worker`'s pid and no `last_error`.
    async fn record_worker(
        &self,
        id: SessionId,
        status: SessionStatus,
        worker: &WorkerHandle,
    ) -> Result<Session, StoreError> {
        self.store
            .transition_session(
                id,
                &[SessionStatus::Starting],
                SessionUpdate {
                    status,
                    pid: Some(worker.pid()),
                    last_error: None,
                },
                Timestamp::now(),
            )
            .await
    }

    async fn load_library(
        &self,
        live: &Arc<Live>,
        worker: &WorkerHandle,
        settings: SessionSettings,
        entry: &str,
    ) -> Result<(), StartFailure> {
        let id = live.id;
        let (library, path) = library_file(&self.library_dir, entry);
        let read = {
            let path = path.clone();
            tokio::task::spawn_blocking(move || read_library(&path)).await
        };
        let source = match read {
            Ok(Ok(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            Ok(Err(_)) | Err(_) => {
                let expected = path.display().to_string();
                return Err(StartFailure::new(
                    format!("library not cached: {library} (expected {expected})"),
                    ApiError::LibraryNotCached {
                        session_id: id.as_uuid(),
                        library,
                        expected_path: expected,
                    },
                ));
            }
        };
        let failed = |message: String, library: &str| {
            StartFailure::new(
                format!("library failed: {library}: {message}"),
                ApiError::StartupFailed {
                    session_id: id.as_uuid(),
                    execution_id: None,
                    path: None,
                    library: Some(library.to_string()),
                },
            )
        };
        let (stop_tx, stop_rx) = mpsc::unbounded_channel();
        {
            let mut state = live.state();
            if state.status != SessionStatus::Starting {
                return Err(self.closed_start(id, state.status));
            }
            state.loading = Some(stop_tx);
        }
        let limits = ExecLimits {
            wall_ms: u64::from(settings.limits.wall_ms),
            cpu_ms: u64::from(settings.limits.cpu_ms),
        };
        let max_bytes = u64::from(settings.limits.max_output_kb) * 1024;
        let budget = Budget {
            events: 1,
            bytes: max_bytes,
            max_events: 1,
            max_output_kb: u64::from(settings.limits.max_output_kb),
        };
        let file_name = path
            .file_name()
            .map_or_else(|| library.clone(), |n| n.to_string_lossy().into_owned());
        let mut drive = Drive::start(
            worker,
            self.next_exec_id(),
            ExecKind::Library,
            file_name,
            source,
            limits,
            budget,
            stop_rx,
        )
        .await
        .map_err(|err| failed(err.to_string(), &library))?;
        let mut exception = None;
        let outcome = loop {
            match drive.next().await {
                Step::Event(event) => exception = Some(event.payload),
                Step::Stats(_) => {}
                Step::Done { outcome, .. } => break Ok(outcome),
                Step::Exited(reason) => break Err(reason),
            }
        };
        live.state().loading = None;
        match outcome {
            Ok(ExecOutcome::Ok) => Ok(()),
            Ok(ExecOutcome::Exception) => {
                let message = exception
                    .and_then(|p| serde_json::from_str::<serde_json::Value>(&p).ok())
                    .and_then(|v| v["message"].as_str().map(str::to_string))
                    .unwrap_or_default();
                Err(failed(message, &library))
            }
            Ok(ExecOutcome::Stopped { cause }) => {
                if matches!(cause, StopCause::SessionClosed) {
                    return Err(self.closed_start(id, SessionStatus::Closed));
                }
                let message = super::executions::stop_message(cause, &settings);
                Err(failed(message, &library))
            }
            Err(reason) => Err(StartFailure::new(
                reason.last_error(),
                ApiError::StartupFailed {
                    session_id: id.as_uuid(),
                    execution_id: None,
                    path: None,
                    library: Some(library),
                },
            )),
        }
    }

    async fn run_startup(
        &self,
        live: &Arc<Live>,
        worker: &WorkerHandle,
        settings: SessionSettings,
        worktree: &Path,
        path: &str,
    ) -> Result<(), StartFailure> {
        let id = live.id;
        let root = worktree.to_path_buf();
        let raw = path.to_string();
        let read = tokio::task::spawn_blocking(move || read_source(&root, &raw))
            .await
            .unwrap_or(Err(SourceError::NotFound));
        let execution_id = ExecutionId::new_v4();
        let (stop_tx, stop_rx) = mpsc::unbounded_channel();
        let (progress_tx, progress_rx) = watch::channel(Progress::default());
        {
            let mut state = live.state();
            if state.status != SessionStatus::Starting {
                return Err(self.closed_start(id, state.status));
            }
            state.running = Some(execution_id);
        }
        self.registry.add_execution(
            execution_id,
            ExecControl {
                stop: stop_tx,
                progress: progress_rx,
            },
        );
        let recorded = match read {
            Ok((cleaned, source)) => {
                let input = ExecInput {
                    kind: ExecutionKind::Startup,
                    input: None,
                    path: Some(cleaned.clone()),
                    args: None,
                    env: None,
                    wire_kind: ExecKind::Startup,
                    name: cleaned,
                    source,
                };
                self.record(
                    id,
                    worker,
                    settings,
                    input,
                    execution_id,
                    stop_rx,
                    progress_tx,
                )
                .await
            }
            Err(err) => {
                self.record_unusable_startup(id, path, err, execution_id, progress_tx)
                    .await
            }
        };
        self.registry.remove_execution(execution_id);
        {
            let mut state = live.state();
            if state.running == Some(execution_id) {
                state.running = None;
            }
        }
        let recorded = recorded.map_err(|err| StartFailure::new("internal error", err))?;
        let execution = &recorded.detail.execution;
        if execution.status == ExecutionStatus::Ok {
            return Ok(());
        }
        let closed = live.state().status == SessionStatus::Closed;
        if closed {
            return Err(self.closed_start(id, SessionStatus::Closed));
        }
        let error = ApiError::StartupFailed {
            session_id: id.as_uuid(),
            execution_id: Some(execution_id.as_uuid()),
            path: execution.path.clone(),
            library: None,
        };
        let last_error = match &recorded.worker_exit {
            Some(reason)
                if execution
                    .error
                    .as_ref()
                    .is_some_and(|e| e.code == "WORKER_CRASHED") =>
            {
                reason.last_error()
            }
            _ => {
                let message = execution
                    .error
                    .as_ref()
                    .map(|e| e.message.clone())
                    .unwrap_or_default();
                format!(
                    "startup failed: {}: {message}",
                    execution.path.clone().unwrap_or_default()
                )
            }
        };
        Err(StartFailure::new(last_error, error))
    }

    /// Marks a failed start: the row becomes `crashed` (unless it was closed meanwhile) and the
    /// worker is stopped. Returns the error to answer with.
    async fn fail_start(&self, live: &Arc<Live>, failure: StartFailure) -> ApiError {
        let (status, worker, loading) = {
            let mut state = live.state();
            let status = state.status;
            if status == SessionStatus::Starting {
                state.status = SessionStatus::Crashed;
            }
            (status, state.worker.take(), state.loading.take())
        };
        drop(loading);
        if let Some(worker) = worker {
            worker.stop(true).await;
        }
        if status == SessionStatus::Closed {
            return self.not_ready(live.id, SessionStatus::Closed);
        }
        // A start the shutdown cut short (its startup execution cancelled, its worker stopped, the
        // pool closed) stays `starting` for the next start's sweep (spec §10.6 step 2); one that
        // failed on its own during the grace period is recorded like any other.
        if self.stopping.is_cancelled() {
            return ApiError::ShuttingDown;
        }
        let update = SessionUpdate {
            status: SessionStatus::Crashed,
            pid: None,
            last_error: Some(failure.last_error),
        };
        match self
            .store
            .transition_session(
                live.id,
                &[SessionStatus::Starting],
                update,
                Timestamp::now(),
            )
            .await
        {
            Ok(_) => {
                self.registry.remove(live.id);
                failure.error
            }
            Err(err) => ApiError::from(err),
        }
    }

    /// Watches a ready session's worker: if it exits while the session is ready, the session
    /// becomes `crashed` (spec §6).
    fn watch_worker(&self, live: &Arc<Live>, worker: &WorkerHandle) {
        let svc = self.clone();
        let live = Arc::clone(live);
        let worker = worker.clone();
        tokio::spawn(async move {
            let reason = worker.exited().await;
            // An execution in progress reports the crash itself, with its own last_error.
            let running = live.state().running;
            if let Some(control) = running.and_then(|id| svc.registry.execution(id)) {
                control.ended().await;
            }
            svc.worker_lost(&live, worker.pid(), reason.last_error())
                .await;
        });
    }

    /// The worker `pid` of a ready session is gone: the session becomes `crashed` with
    /// `last_error`, once, and only if that worker is still the session's.
    pub(crate) async fn worker_lost(&self, live: &Arc<Live>, pid: u32, last_error: String) {
        // At shutdown workers are stopped on purpose; rows stay as they are (spec §10.6).
        if self.stopping.is_cancelled() {
            return;
        }
        let worker = {
            let mut state = live.state();
            let ours = state.worker.as_ref().is_some_and(|w| w.pid() == pid);
            if !ours || state.status != SessionStatus::Ready {
                return;
            }
            state.status = SessionStatus::Crashed;
            state.worker.take()
        };
        if let Some(worker) = worker {
            worker.kill(crate::worker_handle::KillReason::Requested);
        }
        self.metrics.worker_crashed();
        let update = SessionUpdate {
            status: SessionStatus::Crashed,
            pid: None,
            last_error: Some(last_error),
        };
        if let Err(err) = self
            .store
            .transition_session(live.id, &[SessionStatus::Ready], update, Timestamp::now())
            .await
        {
            tracing::warn!(session_id = %live.id, error = %err, "failed to record a lost worker");
        }
        self.registry.remove(live.id);
    }
}

/// What the worker is told about its session (spec §6 step 1, §8).
fn session_config(detail: &TemplateDetail, worktree: &Path) -> SessionConfig {
    let enabled = || detail.capabilities.iter().filter(|c| c.enabled);
    let fs: Vec<_> = enabled().filter(|c| c.kind == CapabilityKind::Fs).collect();
    let fs_write = fs
        .iter()
        .any(|c| c.config.get("write").and_then(serde_json::Value::as_bool) == Some(true));
    let mut exec_allow: Vec<String> = Vec::new();
    for cap in enabled().filter(|c| c.kind == CapabilityKind::Module && c.name == "exec") {
        if let Some(list) = cap
            .config
            .get("allow")
            .and_then(serde_json::Value::as_array)
        {
            for item in list.iter().filter_map(serde_json::Value::as_str) {
                if !exec_allow.iter().any(|a| a == item) {
                    exec_allow.push(item.to_string());
                }
            }
        }
    }
    let env = enabled()
        .filter(|c| c.kind == CapabilityKind::Env)
        .filter_map(|c| {
            std::env::var(&c.name)
                .ok()
                .map(|value| (c.name.clone(), value))
        })
        .collect();
    SessionConfig {
        worktree: worktree.display().to_string(),
        mem_mb: detail.settings.limits.mem_mb,
        strict: detail.settings.runtime.strict,
        console: detail.settings.runtime.console,
        modules: detail.template.exposed_modules.clone(),
        fs_read: !fs.is_empty(),
        fs_write,
        exec_allow,
        env,
    }
}
