//! Executions (spec §4.9, §7): the single-slot pipeline from request to final row, run-file
//! path checks, cancel, and reads.

use std::time::Duration;

use protocol::{
    Budget, EventType as WireEventType, ExecKind, ExecLimits, ExecOutcome, OutputLimit, StopCause,
};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::Service;
use super::drive::{Drive, Step};
use crate::api::error::ApiError;
use crate::model::{
    Event, EventType, ExecError, ExecMetrics, Execution, ExecutionDetail, ExecutionId,
    ExecutionKind, ExecutionOutcome, ExecutionStatus, SessionId, SessionStatus, Timestamp,
};
use crate::registry::{ExecControl, Live, Progress, SessionSettings};
use crate::worker_handle::{ExitReason, KillReason, WorkerHandle};
use crate::worktree::{SourceError, read_source};

/// Events are committed at most this long after they arrive (spec §10.7).
const COMMIT_WITHIN: Duration = Duration::from_millis(50);
/// A batch this large is committed at once.
const BATCH_MAX: usize = 256;
/// Most events still to be stored with an execution's end for that write to run on the
/// caller's thread (`Store::write_now`): beyond it the transaction is no longer short.
const NOW_MAX_EVENTS: usize = 16;

/// What to run, and how the row describes it.
#[derive(Debug)]
pub(crate) struct ExecInput {
    pub(crate) kind: ExecutionKind,
    pub(crate) input: Option<String>,
    pub(crate) path: Option<String>,
    pub(crate) args: Option<serde_json::Value>,
    pub(crate) env: Option<serde_json::Value>,
    pub(crate) wire_kind: ExecKind,
    /// Script name in stacks.
    pub(crate) name: String,
    pub(crate) source: String,
}

/// How an execution ended, for the caller.
#[derive(Debug)]
pub(crate) struct Recorded {
    pub(crate) detail: ExecutionDetail,
    /// Set when it ended `OUTPUT_LIMIT_EXCEEDED` (the answer is 422).
    pub(crate) output_limit: Option<&'static str>,
    /// Set when the worker died or was killed during the execution.
    pub(crate) worker_exit: Option<ExitReason>,
    /// The worker was killed because the code ignored a stop.
    pub(crate) unresponsive: bool,
}

/// The `system` payload for `message`.
pub(crate) fn system_payload(message: &str) -> String {
    serde_json::json!({ "level": "error", "message": message }).to_string()
}

/// The message of an execution stopped by `POST /executions/{id}/cancel` (no suffix: the other
/// cancel causes add one); `cancel` tells its own cause from close/restart/shutdown by it.
const CANCELLED_BY_REQUEST: &str = "execution cancelled";

fn stop_fields(
    cause: StopCause,
    settings: &SessionSettings,
) -> (ExecutionStatus, &'static str, String) {
    let limits = settings.limits;
    match cause {
        StopCause::Cancelled => (
            ExecutionStatus::Cancelled,
            "CANCELLED",
            CANCELLED_BY_REQUEST.into(),
        ),
        StopCause::SessionClosed => (
            ExecutionStatus::Cancelled,
            "CANCELLED",
            "execution cancelled: session closed".into(),
        ),
        StopCause::SessionRestarted => (
            ExecutionStatus::Cancelled,
            "CANCELLED",
            "execution cancelled: session restarted".into(),
        ),
        StopCause::DaemonShutdown => (
            ExecutionStatus::Cancelled,
            "CANCELLED",
            "execution cancelled: daemon shutting down".into(),
        ),
        StopCause::WallTime => (
            ExecutionStatus::Timeout,
            "TIMEOUT",
            format!("wall time limit exceeded (wall_ms={})", limits.wall_ms),
        ),
        StopCause::CpuTime => (
            ExecutionStatus::Timeout,
            "CPU_LIMIT",
            format!("cpu time limit exceeded (cpu_ms={})", limits.cpu_ms),
        ),
        StopCause::Output(OutputLimit::MaxEvents) => (
            ExecutionStatus::Error,
            "OUTPUT_LIMIT_EXCEEDED",
            format!("output limit exceeded (max_events={})", limits.max_events),
        ),
        StopCause::Output(OutputLimit::MaxOutputKb) => (
            ExecutionStatus::Error,
            "OUTPUT_LIMIT_EXCEEDED",
            format!(
                "output limit exceeded (max_output_kb={})",
                limits.max_output_kb
            ),
        ),
        StopCause::Memory => (
            ExecutionStatus::Error,
            "MEMORY_LIMIT",
            format!("memory limit exceeded (mem_mb={})", limits.mem_mb),
        ),
    }
}

/// The `system` message for a stop cause (spec §7.4).
pub(crate) fn stop_message(cause: StopCause, settings: &SessionSettings) -> String {
    stop_fields(cause, settings).2
}

fn limit_name(cause: StopCause) -> Option<&'static str> {
    match cause {
        StopCause::Output(OutputLimit::MaxEvents) => Some("max_events"),
        StopCause::Output(OutputLimit::MaxOutputKb) => Some("max_output_kb"),
        _ => None,
    }
}

fn exception_error(payload: &str) -> ExecError {
    let parsed: serde_json::Value = serde_json::from_str(payload).unwrap_or_default();
    ExecError {
        code: "EXCEPTION".into(),
        message: parsed["message"].as_str().unwrap_or_default().to_string(),
        name: parsed["name"].as_str().map(str::to_string),
        stack: parsed["stack"].as_str().map(str::to_string),
    }
}

/// A reserved execution slot: the new id, the worker, the settings, and the stop/progress ends.
pub(crate) type Reservation = (
    ExecutionId,
    WorkerHandle,
    SessionSettings,
    mpsc::UnboundedReceiver<StopCause>,
    watch::Sender<Progress>,
);

/// Events of one execution on their way to the store.
struct Recorder {
    execution_id: ExecutionId,
    next_seq: u64,
    last_ts: Timestamp,
    pending: Vec<Event>,
    /// The `running` row and its `input_echo` until they are committed. They are committed with
    /// the first batch of events (within `COMMIT_WITHIN`) or, for an execution that ends sooner,
    /// in the same transaction as its end: one store round trip for a short execution.
    unbegun: Option<(Execution, Event)>,
    flush_at: Option<Instant>,
    events: u64,
    bytes: u64,
    max_events: u64,
    max_bytes: u64,
    progress: watch::Sender<Progress>,
}

/// How an execution's terminal event is made.
enum Terminal {
    Value(Event),
    Exception(Event),
    System {
        status: ExecutionStatus,
        code: &'static str,
        message: String,
        limit: Option<&'static str>,
    },
}

impl Recorder {
    fn new(
        execution_id: ExecutionId,
        started_at: Timestamp,
        max_events: u64,
        max_bytes: u64,
        progress: watch::Sender<Progress>,
    ) -> Self {
        Recorder {
            execution_id,
            next_seq: 1,
            last_ts: started_at,
            pending: Vec::new(),
            unbegun: None,
            flush_at: None,
            events: 0,
            bytes: 0,
            max_events,
            max_bytes,
            progress,
        }
    }

    /// The error and the terminal `system` event for an execution that ended with `code`.
    fn system(&mut self, code: &str, message: String) -> (ExecError, Event) {
        let event = self.event(EventType::System, system_payload(&message));
        let error = ExecError {
            code: code.into(),
            message,
            name: None,
            stack: None,
        };
        (error, event)
    }

    /// The outcome of an execution that ended `error` with `code` before it could run.
    fn never_ran(&mut self, code: &str, message: String) -> ExecutionOutcome {
        let (error, terminal_event) = self.system(code, message);
        ExecutionOutcome {
            status: ExecutionStatus::Error,
            result: None,
            error: Some(error),
            wall_ms: 0,
            cpu_ms: 0,
            ended_at: Timestamp::now(),
            pending_events: Vec::new(),
            terminal_event,
        }
    }

    fn event(&mut self, event_type: EventType, payload: String) -> Event {
        let now = Timestamp::now();
        let ts = if now < self.last_ts {
            self.last_ts
        } else {
            now
        };
        self.last_ts = ts;
        let event = Event {
            execution_id: self.execution_id,
            seq: self.next_seq,
            ts,
            event_type,
            payload,
        };
        self.next_seq += 1;
        event
    }

    /// Whether one more event of `len` bytes fits the limits (spec §5).
    fn fits(&self, len: usize) -> Option<OutputLimit> {
        if self.events + 1 > self.max_events {
            Some(OutputLimit::MaxEvents)
        } else if self.bytes + u64::try_from(len).unwrap_or(u64::MAX) > self.max_bytes {
            Some(OutputLimit::MaxOutputKb)
        } else {
            None
        }
    }

    fn count(&mut self, len: usize) {
        self.events += 1;
        self.bytes += u64::try_from(len).unwrap_or(0);
    }
}

impl Service {
    /// Creates the row, runs the execution on `worker` and commits its final row.
    #[expect(clippy::too_many_lines, reason = "one linear pipeline, spec §7.1")]
    #[expect(
        clippy::too_many_arguments,
        reason = "the slot reservation's parts, moved in"
    )]
    pub(crate) async fn record(
        &self,
        session_id: SessionId,
        worker: &WorkerHandle,
        settings: SessionSettings,
        input: ExecInput,
        execution_id: ExecutionId,
        stops: mpsc::UnboundedReceiver<StopCause>,
        progress: watch::Sender<Progress>,
    ) -> Result<Recorded, ApiError> {
        let limits = settings.limits;
        let started_at = Timestamp::now();
        let echo = match &input.input {
            Some(text) => serde_json::json!({ "text": text }).to_string(),
            None => {
                serde_json::json!({ "path": input.path.clone().unwrap_or_default() }).to_string()
            }
        };
        let mut rec = Recorder::new(
            execution_id,
            started_at,
            u64::from(limits.max_events),
            u64::from(limits.max_output_kb) * 1024,
            progress,
        );
        let echo_len = echo.len();
        let echo_event = rec.event(EventType::InputEcho, echo);
        rec.count(echo_len);
        let row = Execution {
            id: execution_id,
            session_id,
            kind: input.kind,
            status: ExecutionStatus::Running,
            input: input.input.clone(),
            path: input.path.clone(),
            args: input.args.clone(),
            env: input.env.clone(),
            result: None,
            error: None,
            metrics: ExecMetrics::default(),
            started_at,
            ended_at: None,
        };
        rec.unbegun = Some((row, echo_event));
        rec.flush_at = Some(Instant::now() + COMMIT_WITHIN);
        self.metrics.execution_started();

        // An input_echo alone over max_output_kb is never dispatched (spec §5).
        if rec.bytes > rec.max_bytes {
            let message = format!(
                "output limit exceeded (max_output_kb={})",
                limits.max_output_kb
            );
            let outcome = rec.never_ran("OUTPUT_LIMIT_EXCEEDED", message);
            return self
                .finish(rec, outcome, input.kind, Some("max_output_kb"), None, false)
                .await;
        }

        let budget = Budget {
            events: rec.max_events.saturating_sub(rec.events),
            bytes: rec.max_bytes.saturating_sub(rec.bytes),
            max_events: rec.max_events,
            max_output_kb: u64::from(limits.max_output_kb),
        };
        let exec_limits = ExecLimits {
            wall_ms: u64::from(limits.wall_ms),
            cpu_ms: u64::from(limits.cpu_ms),
        };
        let exec_id = self.next_exec_id();
        let mut drive = match Drive::start(
            worker,
            exec_id,
            input.wire_kind,
            input.name,
            input.source,
            exec_limits,
            budget,
            stops,
        )
        .await
        {
            Ok(drive) => drive,
            Err(err) => {
                tracing::warn!(error = %err, "failed to dispatch an execution");
                let reason = worker.exited().await;
                let message = format!("worker crashed: {}", reason.last_error());
                let outcome = rec.never_ran("WORKER_CRASHED", message);
                return self
                    .finish(rec, outcome, input.kind, None, Some(reason), false)
                    .await;
            }
        };

        let mut cpu_ms = 0;
        let mut terminal: Option<Event> = None;
        let mut violated: Option<OutputLimit> = None;
        let ended = loop {
            let flush_at = rec.flush_at;
            let step = tokio::select! {
                step = drive.next() => step,
                () = sleep_until_opt(flush_at), if flush_at.is_some() => {
                    if let Err(err) = self.flush(&mut rec).await {
                        return Err(self.abandon(&mut drive, &rec, err).await);
                    }
                    continue;
                }
            };
            match step {
                Step::Event(event) => {
                    if violated.is_some() || terminal.is_some() {
                        continue;
                    }
                    if let Some(limit) = rec.fits(event.payload.len()) {
                        // The worker keeps its own budget; a breach here is a misbehaving worker.
                        violated = Some(limit);
                        drive.stop(StopCause::Output(limit));
                        continue;
                    }
                    rec.count(event.payload.len());
                    let event_type = match event.event_type {
                        WireEventType::Console => EventType::Console,
                        WireEventType::Value => EventType::Value,
                        WireEventType::Exception => EventType::Exception,
                    };
                    let stored = rec.event(event_type, event.payload);
                    if matches!(event_type, EventType::Value | EventType::Exception) {
                        terminal = Some(stored);
                    } else {
                        rec.pending.push(stored);
                        if rec.pending.len() >= BATCH_MAX {
                            if let Err(err) = self.flush(&mut rec).await {
                                return Err(self.abandon(&mut drive, &rec, err).await);
                            }
                        } else if rec.flush_at.is_none() {
                            rec.flush_at = Some(Instant::now() + COMMIT_WITHIN);
                        }
                    }
                }
                Step::Stats(sample) => {
                    cpu_ms = sample;
                    if rec.unbegun.is_none() {
                        // Kept for the restart sweep, which keeps the last stored values.
                        let _ = self
                            .store
                            .update_execution_usage(execution_id, drive.wall_ms(), sample)
                            .await;
                    }
                }
                Step::Done {
                    outcome,
                    cpu_ms: used,
                } => {
                    cpu_ms = used;
                    break Ended::Done(outcome);
                }
                Step::Exited(reason) => break Ended::Exited(reason),
            }
        };
        let wall_ms = drive.wall_ms();
        // Exactly one terminal event (spec §7.1 step 6): the worker's value or exception, or a
        // system event naming why it ended otherwise.
        let stopped = |cause: StopCause| {
            let (status, code, message) = stop_fields(cause, &settings);
            Terminal::System {
                status,
                code,
                message,
                limit: limit_name(cause),
            }
        };
        let crashed = |message: String| Terminal::System {
            status: ExecutionStatus::Error,
            code: "WORKER_CRASHED",
            message,
            limit: None,
        };
        let (terminal, worker_exit) = match ended {
            Ended::Done(ExecOutcome::Ok) if violated.is_none() => (
                terminal.map_or_else(
                    || crashed("worker ended without a value".into()),
                    Terminal::Value,
                ),
                None,
            ),
            Ended::Done(ExecOutcome::Exception) if violated.is_none() => (
                terminal.map_or_else(
                    || crashed("worker ended without an exception".into()),
                    Terminal::Exception,
                ),
                None,
            ),
            Ended::Done(ExecOutcome::Stopped { cause }) => (stopped(cause), None),
            // The worker finished on its own, but the daemon saw it break the output budget.
            Ended::Done(_) => (
                stopped(StopCause::Output(
                    violated.unwrap_or(OutputLimit::MaxEvents),
                )),
                None,
            ),
            // A stop taken first keeps its cause even if the worker then died (spec §7.8).
            Ended::Exited(reason) => match drive.taken {
                Some(cause) => (stopped(cause), Some(reason)),
                None => (
                    crashed(format!("worker crashed: {}", reason.last_error())),
                    Some(reason),
                ),
            },
        };
        let (status, result, error, terminal_event, limit) = match terminal {
            Terminal::Value(value) => (
                ExecutionStatus::Ok,
                Some(value.payload.clone()),
                None,
                value,
                None,
            ),
            Terminal::Exception(exception) => {
                let error = exception_error(&exception.payload);
                (ExecutionStatus::Error, None, Some(error), exception, None)
            }
            Terminal::System {
                status,
                code,
                message,
                limit,
            } => {
                let (error, event) = rec.system(code, message);
                (status, None, Some(error), event, limit)
            }
        };
        let unresponsive = drive.killed;
        if unresponsive && worker_exit.is_none() {
            // Killed after the Done raced in: make sure the exit is known.
            drive.kill(KillReason::Unresponsive);
        }
        let outcome = ExecutionOutcome {
            status,
            result,
            error,
            wall_ms,
            cpu_ms,
            ended_at: Timestamp::now(),
            pending_events: std::mem::take(&mut rec.pending),
            terminal_event,
        };
        self.finish(rec, outcome, input.kind, limit, worker_exit, unresponsive)
            .await
    }

    /// A startup file that cannot be read still becomes an execution that ends `error` with
    /// `INVALID_PATH` or `FILE_NOT_FOUND` (spec §7.4).
    pub(crate) async fn record_unusable_startup(
        &self,
        session_id: SessionId,
        raw_path: &str,
        err: SourceError,
        execution_id: ExecutionId,
        progress: watch::Sender<Progress>,
    ) -> Result<Recorded, ApiError> {
        let started_at = Timestamp::now();
        let path = crate::api::paths::clean_relative_path(raw_path)
            .unwrap_or_else(|_| raw_path.to_string());
        let mut rec = Recorder::new(execution_id, started_at, u64::MAX, u64::MAX, progress);
        let echo = rec.event(
            EventType::InputEcho,
            serde_json::json!({ "path": path }).to_string(),
        );
        let row = Execution {
            id: execution_id,
            session_id,
            kind: ExecutionKind::Startup,
            status: ExecutionStatus::Running,
            input: None,
            path: Some(path.clone()),
            args: None,
            env: None,
            result: None,
            error: None,
            metrics: ExecMetrics::default(),
            started_at,
            ended_at: None,
        };
        rec.unbegun = Some((row, echo));
        self.metrics.execution_started();
        let code = match err {
            SourceError::NotFound => "FILE_NOT_FOUND",
            SourceError::Path(_) => "INVALID_PATH",
        };
        let message = format!("startup file {path}: {}", err.token());
        let outcome = rec.never_ran(code, message);
        self.finish(rec, outcome, ExecutionKind::Startup, None, None, false)
            .await
    }

    async fn flush(&self, rec: &mut Recorder) -> Result<(), ApiError> {
        rec.flush_at = None;
        if rec.pending.is_empty() && rec.unbegun.is_none() {
            return Ok(());
        }
        let batch = std::mem::take(&mut rec.pending);
        let last = batch.last().map_or(1, |e| e.seq);
        match rec.unbegun.take() {
            Some((row, echo)) => self.store.begin_execution_with(row, echo, batch).await?,
            None => self.store.append_events(batch).await?,
        }
        let _ = rec.progress.send(Progress {
            committed: last,
            ended: false,
        });
        Ok(())
    }

    /// A write of a running execution failed (the database locked by another process past the
    /// busy timeout, or the disk full): the request fails, but the worker must not go on running
    /// code nobody follows (its next execution would find it busy) and the running gauge must not
    /// keep counting it. Stops the execution, waits for its end or the worker's exit, and lets
    /// followers of its events go. The row, if its first batch was committed, stays `running`
    /// until the next start's sweep.
    async fn abandon(&self, drive: &mut Drive, rec: &Recorder, err: ApiError) -> ApiError {
        tracing::error!(execution_id = %rec.execution_id, error = %err, "failed to record an execution; stopping it");
        drive.stop(StopCause::Cancelled);
        loop {
            if let Step::Done { .. } | Step::Exited(_) = drive.next().await {
                break;
            }
        }
        self.metrics.execution_abandoned();
        rec.progress.send_modify(|progress| progress.ended = true);
        err
    }

    async fn finish(
        &self,
        rec: Recorder,
        outcome: ExecutionOutcome,
        kind: ExecutionKind,
        output_limit: Option<&'static str>,
        worker_exit: Option<ExitReason>,
        unresponsive: bool,
    ) -> Result<Recorded, ApiError> {
        let status = outcome.status;
        let wall_ms = outcome.wall_ms;
        let last = outcome.terminal_event.seq;
        // A short final write of the only running execution commits on this thread: no other
        // write could share its transaction, and the round trip skips two thread switches.
        // Under concurrency (or with many events) it queues for the store thread's group commit.
        let now =
            self.registry.execution_count() <= 1 && outcome.pending_events.len() <= NOW_MAX_EVENTS;
        let result = self
            .store
            .end_execution(rec.unbegun, rec.execution_id, outcome, now)
            .await;
        let _ = rec.progress.send(Progress {
            committed: last,
            ended: true,
        });
        let detail = match result {
            Ok(detail) => detail,
            Err(err) => {
                tracing::error!(execution_id = %rec.execution_id, error = %err, "failed to record the end of an execution");
                self.metrics.execution_abandoned();
                return Err(err.into());
            }
        };
        self.metrics.execution_finished(status, kind, wall_ms);
        Ok(Recorded {
            detail,
            output_limit,
            worker_exit,
            unresponsive,
        })
    }

    /// Reserves `live`'s slot for a new execution and registers its control. Fails with the
    /// spec's 409s when the session is not ready or busy.
    pub(crate) fn reserve(&self, live: &Live) -> Result<Reservation, ApiError> {
        let mut state = live.state();
        if state.status != SessionStatus::Ready {
            return Err(ApiError::SessionNotReady {
                session_id: live.id.as_uuid(),
                status: state.status.as_str().to_string(),
            });
        }
        if let Some(running) = state.running {
            return Err(ApiError::SessionBusy {
                session_id: live.id.as_uuid(),
                execution_id: running.as_uuid(),
            });
        }
        let (Some(worker), Some(settings)) = (state.worker.clone(), state.settings) else {
            return Err(ApiError::SessionNotReady {
                session_id: live.id.as_uuid(),
                status: state.status.as_str().to_string(),
            });
        };
        let execution_id = ExecutionId::new_v4();
        let (stop_tx, stop_rx) = mpsc::unbounded_channel();
        let (progress_tx, progress_rx) = watch::channel(Progress::default());
        // Registered before the slot names it: a SESSION_BUSY answer for this execution must
        // find its control (`until_reported_is_committed`).
        self.registry.add_execution(
            execution_id,
            ExecControl {
                stop: stop_tx,
                progress: progress_rx,
            },
        );
        state.running = Some(execution_id);
        drop(state);
        Ok((execution_id, worker, settings, stop_rx, progress_tx))
    }

    /// Runs a user execution (REPL or run-file) on a ready session, start to final row.
    pub(crate) async fn execute(
        &self,
        session_id: SessionId,
        input: ExecInput,
    ) -> Result<Recorded, ApiError> {
        let live = self.live_or_not_ready(session_id).await?;
        let (execution_id, worker, settings, stops, progress) = match self.reserve(&live) {
            Ok(reservation) => reservation,
            Err(err) => {
                self.until_reported_is_committed(&err).await;
                return Err(err);
            }
        };
        let svc = self.clone();
        let result = self
            .spawn(async move {
                let result = svc
                    .record(
                        session_id,
                        &worker,
                        settings,
                        input,
                        execution_id,
                        stops,
                        progress,
                    )
                    .await;
                svc.registry.remove_execution(execution_id);
                {
                    let mut state = live.state();
                    if state.running == Some(execution_id) {
                        state.running = None;
                    }
                }
                if let Ok(recorded) = &result {
                    if let Some(reason) = &recorded.worker_exit {
                        let last_error = if recorded.unresponsive {
                            ExitReason::Unresponsive.last_error()
                        } else {
                            reason.last_error()
                        };
                        svc.worker_lost(&live, worker.pid(), last_error).await;
                    } else if let Some(reason) = worker.fatal_reason() {
                        // The heap did not recover after a memory stop (spec §5).
                        svc.worker_lost(&live, worker.pid(), reason).await;
                    }
                }
                result
            })
            .await;
        if result.is_err() {
            self.registry.remove_execution(execution_id);
        }
        result
    }

    /// A `SESSION_BUSY` answer names the running execution, whose row may not be committed yet
    /// (see `Recorder::unbegun`): wait until it is, so the id it reports can be read (spec §10.7).
    async fn until_reported_is_committed(&self, err: &ApiError) {
        let ApiError::SessionBusy { execution_id, .. } = err else {
            return;
        };
        let Some(control) = self
            .registry
            .execution(ExecutionId::from_uuid(*execution_id))
        else {
            return;
        };
        let mut progress = control.progress.clone();
        // The row is committed within COMMIT_WITHIN; the bound only guards against a stuck store.
        let _ = tokio::time::timeout(
            COMMIT_WITHIN * 200,
            progress.wait_for(|p| p.committed >= 1 || p.ended),
        )
        .await;
    }

    /// The live session for an execution request, or the 404/409 the spec wants.
    pub(crate) async fn live_or_not_ready(
        &self,
        session_id: SessionId,
    ) -> Result<std::sync::Arc<Live>, ApiError> {
        // A live session has a row: only the other answers need the store.
        if let Some(live) = self.registry.get(session_id) {
            return Ok(live);
        }
        let row = self.store.get_session(session_id).await?;
        match self.registry.get(session_id) {
            Some(live) => Ok(live),
            None => Err(ApiError::SessionNotReady {
                session_id: session_id.as_uuid(),
                status: row.status.as_str().to_string(),
            }),
        }
    }

    /// Reads a run-file source with the path rules, after the readiness check (spec §4.9 order).
    pub(crate) async fn run_file_source(
        &self,
        session_id: SessionId,
        path: &str,
    ) -> Result<(String, String), ApiError> {
        let live = self.live_or_not_ready(session_id).await?;
        let worktree = {
            let state = live.state();
            if state.status != SessionStatus::Ready {
                return Err(ApiError::SessionNotReady {
                    session_id: session_id.as_uuid(),
                    status: state.status.as_str().to_string(),
                });
            }
            state.worktree.clone()
        };
        let Some(worktree) = worktree else {
            return Err(ApiError::SessionNotReady {
                session_id: session_id.as_uuid(),
                status: SessionStatus::Starting.as_str().to_string(),
            });
        };
        let raw = path.to_string();
        let read = tokio::task::spawn_blocking(move || read_source(&worktree, &raw))
            .await
            .map_err(ApiError::internal)?;
        match read {
            Ok(found) => Ok(found),
            Err(SourceError::NotFound) => Err(ApiError::FileNotFound {
                session_id: session_id.as_uuid(),
                path: crate::api::paths::clean_relative_path(path)
                    .unwrap_or_else(|_| path.to_string()),
            }),
            Err(SourceError::Path(reason)) => Err(ApiError::InvalidPath {
                path: path.to_string(),
                reason,
            }),
        }
    }

    /// `POST /executions/{id}/cancel`.
    pub(crate) async fn cancel(
        &self,
        execution_id: ExecutionId,
    ) -> Result<ExecutionDetail, ApiError> {
        let row = self.store.get_execution_row(execution_id).await?;
        let finished = |status: ExecutionStatus| ApiError::ExecutionFinished {
            execution_id: execution_id.as_uuid(),
            status: status.as_str().to_string(),
        };
        if row.status.is_terminal() {
            return Err(finished(row.status));
        }
        if let Some(control) = self.registry.execution(execution_id) {
            let _ = control.stop.send(StopCause::Cancelled);
            control.ended().await;
        }
        let detail = self.store.get_execution(execution_id).await?;
        let by_cancel = detail.execution.status == ExecutionStatus::Cancelled
            && detail
                .execution
                .error
                .as_ref()
                .is_some_and(|e| e.message == CANCELLED_BY_REQUEST);
        if by_cancel {
            Ok(detail)
        } else {
            Err(finished(detail.execution.status))
        }
    }
}

enum Ended {
    Done(ExecOutcome),
    Exited(ExitReason),
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
