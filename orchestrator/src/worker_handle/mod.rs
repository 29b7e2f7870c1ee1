//! Worker processes as the daemon sees them: the cloneable `WorkerHandle`, what an execution
//! reports back (`ExecMsg`) and why a worker ended (`ExitReason`).
//!
//! `launcher.rs` decides how a worker starts: forked by the zygote (`zygote.rs`, the task that owns
//! the fork server) or spawned. `spawn.rs` starts processes and runs the handshake,
//! `supervisor.rs` is the one task per worker that owns its `Process` (`process.rs`) and the frame
//! pipe, and `unix.rs` holds signals, pipes and `/proc` readers.

mod error;
mod launcher;
mod process;
mod spawn;
mod supervisor;
mod unix;
mod zygote;

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::SystemTime;

use protocol::{Budget, ExecId, ExecKind, ExecLimits, ExecOutcome, SessionConfig, StopCause};
use tokio::sync::{mpsc, oneshot, watch};

pub(crate) use error::WorkerError;
pub(crate) use launcher::Launcher;
pub(crate) use spawn::{SpawnConfig, start_worker};

use supervisor::Control;

/// Whether a stop should skip its grace periods; it may turn true while the stop runs.
pub(crate) type Haste = tokio::sync::watch::Receiver<bool>;

/// What a worker says about one execution, in order: events and CPU samples, then exactly one
/// `Done`, or `Exited` if the process ended first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ExecMsg {
    /// An output event (`console`, `value`, `exception`).
    Event(protocol::WorkerEvent),
    /// A periodic CPU sample while the code runs.
    Stats { cpu_ms: u64 },
    /// The execution ended; every event was delivered before this.
    Done {
        outcome: ExecOutcome,
        cpu_ms: u64,
        wall_ms: u64,
    },
    /// The worker process ended before the execution did.
    Exited(ExitReason),
}

/// Why the daemon kills a worker with SIGKILL at once (`WorkerHandle::kill`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KillReason {
    /// The code did not stop within the grace period after a stop (spec §7.8).
    Unresponsive,
    /// The worker broke the protocol in a way the caller detected.
    #[cfg_attr(
        not(test),
        expect(
            dead_code,
            reason = "the daemon detects no protocol breach of its own yet"
        )
    )]
    ProtocolError,
    /// The daemon wants it gone (close, restart) and does not wait.
    Requested,
}

/// How a worker process ended. `last_error` gives the spec §6 text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ExitReason {
    /// It exited after our `Shutdown`, `stop` or `kill(Requested)`.
    Requested,
    /// It exited on its own with this code.
    Exited { code: i32 },
    /// A signal we did not send (or not on purpose) ended it.
    Signaled { signal: i32 },
    /// The lifetime CPU rlimit (SIGXCPU).
    CpuLimit,
    /// It sent `Fatal` (the heap did not recover) and exited; `reason` is the worker's text.
    MemoryLimit { reason: String },
    /// It was killed because code did not stop in time.
    Unresponsive,
    /// It was killed for breaking the protocol.
    ProtocolError { detail: String },
}

impl ExitReason {
    /// The session's `last_error` text for this exit (spec §6; the prefixes are stable).
    pub(crate) fn last_error(&self) -> String {
        match self {
            ExitReason::Requested => "worker stopped".to_string(),
            ExitReason::Exited { code } => format!("worker exited with code {code}"),
            ExitReason::Signaled { signal } => {
                format!("worker killed by signal {}", unix::signal_name(*signal))
            }
            ExitReason::CpuLimit => "cpu rlimit exceeded".to_string(),
            ExitReason::MemoryLimit { reason } => reason.clone(),
            ExitReason::Unresponsive => "worker unresponsive; killed".to_string(),
            ExitReason::ProtocolError { detail } => format!("worker protocol error: {detail}"),
        }
    }

    /// Classifies the result of waiting for a process; a failed wait counts as code -1.
    pub(crate) fn from_wait(status: std::io::Result<std::process::ExitStatus>) -> ExitReason {
        match status {
            Ok(status) => ExitReason::from_status(status),
            Err(_) => ExitReason::Exited { code: -1 },
        }
    }

    /// Classifies a bare exit status (no `Fatal`, no stop or kill of ours).
    pub(crate) fn from_status(status: std::process::ExitStatus) -> ExitReason {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(code), _) => ExitReason::Exited { code },
            (None, Some(unix::SIGXCPU)) => ExitReason::CpuLimit,
            (None, Some(signal)) => ExitReason::Signaled { signal },
            (None, None) => ExitReason::Exited { code: -1 },
        }
    }
}

impl From<KillReason> for ExitReason {
    fn from(reason: KillReason) -> Self {
        match reason {
            KillReason::Unresponsive => ExitReason::Unresponsive,
            KillReason::ProtocolError => ExitReason::ProtocolError {
                detail: "violation reported by the daemon".to_string(),
            },
            KillReason::Requested => ExitReason::Requested,
        }
    }
}

/// Resource use of a live worker, from `/proc/<pid>/stat` and `statm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Usage {
    /// Resident set size.
    pub(crate) rss_kb: u64,
    /// User plus system CPU time of the whole process since it was spawned.
    pub(crate) cpu_ms: u64,
}

/// The session id a worker serves, shared with its stderr reader for log lines.
#[derive(Debug, Clone, Default)]
struct Label(Arc<Mutex<Option<String>>>);

impl Label {
    fn set(&self, value: String) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(value);
    }

    /// The label, or an empty string while the worker idles in the pool.
    fn get(&self) -> String {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or_default()
    }
}

/// A cheap, cloneable handle to one running worker. Only its supervisor task owns the process;
/// dropping every handle makes the supervisor stop the worker (as `stop(false)`).
#[derive(Debug, Clone)]
pub(crate) struct WorkerHandle {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pid: u32,
    engine: String,
    engine_version: String,
    started_at: SystemTime,
    /// Start time of the process in clock ticks, to tell it from a later process with its pid.
    start_ticks: Option<u64>,
    label: Label,
    /// Text of the worker's `Fatal` frame, once received.
    fatal: Arc<OnceLock<String>>,
    control: mpsc::UnboundedSender<Control>,
    exit: watch::Receiver<Option<ExitReason>>,
}

impl WorkerHandle {
    /// Process id (also the process-group id: the worker leads its own group).
    pub(crate) fn pid(&self) -> u32 {
        self.inner.pid
    }

    /// Engine name from `Hello` (`quickjs` or `v8`).
    pub(crate) fn engine(&self) -> &str {
        &self.inner.engine
    }

    /// Engine version from `Hello`.
    pub(crate) fn engine_version(&self) -> &str {
        &self.inner.engine_version
    }

    /// When the process was spawned.
    pub(crate) fn started_at(&self) -> SystemTime {
        self.inner.started_at
    }

    /// Tags later stderr lines and supervisor logs of this worker with `session_id`.
    pub(crate) fn set_label(&self, session_id: String) {
        self.inner.label.set(session_id);
    }

    /// Sends `Configure` and waits for `Configured`. `ConfigureFailed` (after which the worker
    /// exits) or an exit of the worker is an error.
    pub(crate) async fn configure(&self, config: SessionConfig) -> Result<(), WorkerError> {
        let (reply, answer) = oneshot::channel();
        self.request(Control::Configure { config, reply }, answer)
            .await?
    }

    /// Sends `Exec` and returns the stream of what the worker says about it, which ends with
    /// `Done` or `Exited`. One execution at a time: a second one while the first runs is `Busy`.
    pub(crate) async fn exec(
        &self,
        id: ExecId,
        kind: ExecKind,
        name: String,
        source: String,
        limits: ExecLimits,
        budget: Budget,
    ) -> Result<mpsc::UnboundedReceiver<ExecMsg>, WorkerError> {
        let (reply, answer) = oneshot::channel();
        let control = Control::Exec {
            id,
            kind,
            name,
            source,
            limits,
            budget,
            reply,
        };
        self.request(control, answer).await?
    }

    /// Sends `Cancel{id, cause}` without waiting; the execution's stream reports the outcome.
    pub(crate) fn cancel(&self, id: ExecId, cause: StopCause) {
        let _ = self.inner.control.send(Control::Cancel { id, cause });
    }

    /// SIGKILL to the worker's process group now; the exit reason becomes `reason`.
    pub(crate) fn kill(&self, reason: KillReason) {
        if self.inner.control.send(Control::Kill(reason)).is_err() {
            // The supervisor is gone (the worker was reaped): nothing left to kill.
            tracing::debug!(pid = self.inner.pid, "kill of a worker that already exited");
        }
    }

    /// Escalating stop (spec §10.4): `Shutdown` frame, grace, SIGTERM to the group, grace,
    /// SIGKILL to the group. `fast` sends SIGKILL at once. Returns once the process was reaped.
    pub(crate) async fn stop(&self, fast: bool) -> ExitReason {
        self.stop_hastened(tokio::sync::watch::channel(fast).1)
            .await
    }

    /// `stop`, fast from the start if `fast` holds true, and turned into SIGKILL as soon as it
    /// becomes true (a second shutdown signal while the grace periods run).
    pub(crate) async fn stop_hastened(&self, mut fast: Haste) -> ExitReason {
        let now = *fast.borrow_and_update();
        let _ = self.inner.control.send(Control::Stop { fast: now });
        if !now {
            tokio::select! {
                reason = self.exited() => return reason,
                Ok(_) = fast.wait_for(|fast| *fast) => {
                    let _ = self.inner.control.send(Control::Stop { fast: true });
                }
            }
        }
        self.exited().await
    }

    /// Resolves once the process exited and was reaped; any clone may call it, any number of times.
    pub(crate) async fn exited(&self) -> ExitReason {
        wait_exit(self.inner.exit.clone()).await
    }

    /// Like `exited`, as a future that holds no handle: waiting on it does not keep the worker
    /// alive (a handle does: dropping every handle stops the worker).
    pub(crate) fn exit_watcher(&self) -> impl Future<Output = ExitReason> + Send + 'static {
        wait_exit(self.inner.exit.clone())
    }

    /// The exit reason, once the process was reaped.
    pub(crate) fn exit_reason(&self) -> Option<ExitReason> {
        self.inner.exit.borrow().clone()
    }

    /// The text of the worker's `Fatal` frame (`memory limit exceeded (mem_mb=N)`), once it
    /// sent one: the heap did not recover and the worker is exiting (`exited` then reports
    /// `MemoryLimit`). The worker sends `Fatal` before the `Done` of the execution that hit the
    /// limit, so once that `Done` was received this answer is final.
    pub(crate) fn fatal_reason(&self) -> Option<String> {
        self.inner.fatal.get().cloned()
    }

    /// Current RSS and CPU time of the live process; `None` once it exited.
    pub(crate) fn usage(&self) -> Option<Usage> {
        if self.exit_reason().is_some() {
            return None;
        }
        let pid = self.inner.pid;
        let stat = unix::read_stat(pid)?;
        if self
            .inner
            .start_ticks
            .is_some_and(|ticks| ticks != stat.start_ticks)
            || stat.state == 'Z'
        {
            return None;
        }
        Some(Usage {
            rss_kb: unix::read_rss_kb(pid).unwrap_or(0),
            cpu_ms: unix::ticks_to_ms(stat.cpu_ticks),
        })
    }

    /// Sends a control message carrying a reply channel and waits for the reply. If the
    /// supervisor is gone, the worker exited: the error says why.
    async fn request<T>(
        &self,
        control: Control,
        answer: oneshot::Receiver<T>,
    ) -> Result<T, WorkerError> {
        if self.inner.control.send(control).is_err() {
            return Err(WorkerError::Exited(self.exited().await));
        }
        match answer.await {
            Ok(value) => Ok(value),
            Err(_) => Err(WorkerError::Exited(self.exited().await)),
        }
    }
}

async fn wait_exit(mut exit: watch::Receiver<Option<ExitReason>>) -> ExitReason {
    let result = exit
        .wait_for(Option::is_some)
        .await
        .map(|seen| seen.clone());
    match result {
        Ok(Some(reason)) => reason,
        // The supervisor ended without publishing (its runtime shut down); its drop guard killed
        // the process group.
        Ok(None) | Err(_) => exit.borrow().clone().unwrap_or_else(supervisor_lost),
    }
}

fn supervisor_lost() -> ExitReason {
    ExitReason::ProtocolError {
        detail: "worker supervisor ended unexpectedly".to_string(),
    }
}

/// Fixtures shared by the tests of this module and of the pool.
#[cfg(test)]
pub(crate) mod test_support {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::SpawnConfig;

    /// The real worker binary, built next to the test executable's directory.
    pub(crate) fn worker_bin() -> PathBuf {
        // Unit tests run from target/<profile>/deps; the worker binary sits one level up.
        let mut dir = std::env::current_exe().unwrap_or_default();
        dir.pop();
        if dir.ends_with("deps") {
            dir.pop();
        }
        let bin = dir.join("vm-system-worker");
        assert!(
            bin.is_file(),
            "{} is missing: run `cargo build -p worker` (with the same CARGO_TARGET_DIR) first",
            bin.display()
        );
        bin
    }

    /// A spawn configuration for the real worker with a short grace period.
    pub(crate) fn config() -> SpawnConfig {
        SpawnConfig {
            worker_bin: worker_bin(),
            handshake_timeout: Duration::from_secs(20),
            grace: Duration::from_millis(300),
        }
    }

    /// The session configuration of spec §5 defaults, in a directory that exists.
    pub(crate) fn session(mem_mb: u32) -> protocol::SessionConfig {
        protocol::SessionConfig {
            worktree: std::env::temp_dir().display().to_string(),
            mem_mb,
            strict: false,
            console: true,
            modules: vec![],
            fs_read: false,
            fs_write: false,
            exec_allow: vec![],
            env: vec![],
        }
    }

    /// Whether `pid` is gone for good (not running and not a zombie waiting to be reaped).
    pub(crate) fn is_reaped(pid: u32) -> bool {
        super::unix::read_stat(pid).is_none()
    }

    /// Default limits of spec §5.
    pub(crate) const LIMITS: protocol::ExecLimits = protocol::ExecLimits {
        wall_ms: 30_000,
        cpu_ms: 5_000,
    };

    /// Starts a REPL execution with default limits and a generous budget.
    pub(crate) async fn start(
        worker: &super::WorkerHandle,
        id: u64,
        source: &str,
    ) -> tokio::sync::mpsc::UnboundedReceiver<super::ExecMsg> {
        let budget = protocol::Budget {
            events: 999,
            bytes: 512 * 1024,
            max_events: 1000,
            max_output_kb: 512,
        };
        worker
            .exec(
                protocol::ExecId(id),
                protocol::ExecKind::Repl,
                "<repl>".into(),
                source.into(),
                LIMITS,
                budget,
            )
            .await
            .unwrap()
    }

    /// Collects what an execution reports, up to its `Done` or `Exited`, leaving out CPU samples.
    pub(crate) async fn finish(
        mut rx: tokio::sync::mpsc::UnboundedReceiver<super::ExecMsg>,
    ) -> Vec<super::ExecMsg> {
        let mut msgs = Vec::new();
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(30), rx.recv())
                .await
                .expect("no message within 30 s")
                .expect("stream ended without Done or Exited");
            let last = matches!(msg, super::ExecMsg::Done { .. } | super::ExecMsg::Exited(_));
            if !matches!(msg, super::ExecMsg::Stats { .. }) {
                msgs.push(msg);
            }
            if last {
                return msgs;
            }
        }
    }

    /// Waits until every thread of `pid` is stopped (a SIGSTOP takes effect asynchronously).
    pub(crate) async fn until_stopped(pid: u32) {
        let all_stopped = || {
            let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
            tasks.flatten().all(|task| {
                let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
                super::unix::parse_stat(&stat).is_some_and(|stat| stat.state == 'T')
            })
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while !all_stopped() {
            assert!(std::time::Instant::now() < deadline, "{pid} did not stop");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Sends `signal` to `pid` (the test plays the OS or an operator).
    pub(crate) fn signal(pid: u32, signal: i32) {
        // SAFETY: kill has no memory-safety preconditions.
        assert_eq!(unsafe { libc::kill(pid as libc::pid_t, signal) }, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(reason: ExitReason, expected: &str) {
        assert_eq!(reason.last_error(), expected);
    }

    #[test]
    fn last_error_forms_follow_the_spec() {
        check(ExitReason::Exited { code: 3 }, "worker exited with code 3");
        check(
            ExitReason::Signaled { signal: 9 },
            "worker killed by signal SIGKILL",
        );
        check(
            ExitReason::Signaled { signal: 11 },
            "worker killed by signal SIGSEGV",
        );
        check(
            ExitReason::MemoryLimit {
                reason: "memory limit exceeded (mem_mb=128)".into(),
            },
            "memory limit exceeded (mem_mb=128)",
        );
        check(ExitReason::CpuLimit, "cpu rlimit exceeded");
        check(ExitReason::Unresponsive, "worker unresponsive; killed");
        check(
            ExitReason::ProtocolError {
                detail: "unexpected Hello frame".into(),
            },
            "worker protocol error: unexpected Hello frame",
        );
        check(
            KillReason::Unresponsive.into(),
            "worker unresponsive; killed",
        );
        check(KillReason::Requested.into(), "worker stopped");
    }

    use std::time::Duration;

    use protocol::{EventType, ExecId};

    use super::test_support::{self, finish, start};

    #[tokio::test]
    async fn configure_then_exec_yields_value_then_done() {
        let worker = start_worker(&test_support::config()).await.unwrap();
        worker.set_label("session-under-test".into());
        worker.configure(test_support::session(128)).await.unwrap();
        let msgs = finish(start(&worker, 1, "1 + 1").await).await;
        let [ExecMsg::Event(value), ExecMsg::Done { outcome, .. }] = msgs.as_slice() else {
            panic!("unexpected messages {msgs:?}");
        };
        assert_eq!(value.event_type, EventType::Value);
        assert_eq!(value.id, ExecId(1));
        assert!(value.payload.contains('2'), "{}", value.payload);
        assert_eq!(*outcome, ExecOutcome::Ok);
        // The worker takes the next execution once the first is done.
        let msgs = finish(start(&worker, 2, "throw new Error('boom')").await).await;
        assert!(
            matches!(
                msgs.last(),
                Some(ExecMsg::Done {
                    outcome: ExecOutcome::Exception,
                    ..
                })
            ),
            "{msgs:?}"
        );
        assert!(worker.fatal_reason().is_none());
        assert_eq!(worker.stop(false).await, ExitReason::Requested);
    }

    #[tokio::test]
    async fn configure_failure_is_an_error() {
        let worker = start_worker(&test_support::config()).await.unwrap();
        let mut config = test_support::session(128);
        config.worktree = "/nonexistent/worktree".into();
        let err = worker.configure(config).await.unwrap_err();
        assert!(
            matches!(err, WorkerError::ConfigureFailed { .. }),
            "{err:?}"
        );
        // The worker exits after ConfigureFailed (code 4).
        assert_eq!(worker.exited().await, ExitReason::Exited { code: 4 });
        let err = worker
            .configure(test_support::session(128))
            .await
            .unwrap_err();
        assert!(
            matches!(err, WorkerError::Exited(ExitReason::Exited { code: 4 })),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn cancel_stops_a_busy_loop() {
        let worker = start_worker(&test_support::config()).await.unwrap();
        worker.configure(test_support::session(128)).await.unwrap();
        let rx = start(&worker, 7, "while (true) {}").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        let budget = protocol::Budget {
            events: 1,
            bytes: 1,
            max_events: 1,
            max_output_kb: 1,
        };
        let busy = worker
            .exec(
                ExecId(8),
                protocol::ExecKind::Repl,
                "<repl>".into(),
                "1".into(),
                test_support::LIMITS,
                budget,
            )
            .await;
        assert!(matches!(busy, Err(WorkerError::Busy)), "{busy:?}");
        worker.cancel(ExecId(7), StopCause::Cancelled);
        let msgs = finish(rx).await;
        let cancelled = ExecOutcome::Stopped {
            cause: StopCause::Cancelled,
        };
        assert!(
            matches!(msgs.last(), Some(ExecMsg::Done { outcome, .. }) if *outcome == cancelled),
            "{msgs:?}"
        );
        // Still usable afterwards.
        let msgs = finish(start(&worker, 9, "40 + 2").await).await;
        assert!(matches!(
            msgs.last(),
            Some(ExecMsg::Done {
                outcome: ExecOutcome::Ok,
                ..
            })
        ));
        worker.stop(false).await;
    }

    #[tokio::test]
    async fn a_heap_that_does_not_recover_is_a_memory_limit_exit() {
        let worker = start_worker(&test_support::config()).await.unwrap();
        worker.configure(test_support::session(16)).await.unwrap();
        let source = "var k = []; while (true) k.push(new Array(1000).fill(1))";
        let msgs = finish(start(&worker, 1, source).await).await;
        assert!(
            matches!(
                msgs.last(),
                Some(ExecMsg::Done {
                    outcome: ExecOutcome::Stopped {
                        cause: StopCause::Memory
                    },
                    ..
                })
            ),
            "{msgs:?}"
        );
        // Settled as soon as the Done is seen.
        let fatal = worker.fatal_reason().unwrap();
        assert_eq!(fatal, "memory limit exceeded (mem_mb=16)");
        let reason = worker.exited().await;
        assert_eq!(reason, ExitReason::MemoryLimit { reason: fatal });
        assert_eq!(reason.last_error(), "memory limit exceeded (mem_mb=16)");
    }

    #[tokio::test]
    async fn exited_resolves_on_every_clone() {
        let worker = start_worker(&test_support::config()).await.unwrap();
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let clone = worker.clone();
                tokio::spawn(async move { clone.exited().await })
            })
            .collect();
        let watcher = worker.exit_watcher();
        assert_eq!(worker.clone().stop(false).await, ExitReason::Requested);
        for waiter in waiters {
            assert_eq!(waiter.await.unwrap(), ExitReason::Requested);
        }
        assert_eq!(watcher.await, ExitReason::Requested);
        assert_eq!(worker.exit_reason(), Some(ExitReason::Requested));
        // Again, after the fact.
        assert_eq!(worker.exited().await, ExitReason::Requested);
        assert!(matches!(
            worker.configure(test_support::session(16)).await,
            Err(WorkerError::Exited(_))
        ));
    }

    #[tokio::test]
    async fn dropping_every_handle_stops_the_worker() {
        let worker = start_worker(&test_support::config()).await.unwrap();
        let pid = worker.pid();
        let watcher = worker.exit_watcher();
        drop(worker);
        assert_eq!(watcher.await, ExitReason::Requested);
        assert!(test_support::is_reaped(pid));
    }

    #[test]
    fn statuses_classify() {
        use std::os::unix::process::ExitStatusExt;
        let status = |raw| std::process::ExitStatus::from_raw(raw);
        assert_eq!(
            ExitReason::from_status(status(3 << 8)),
            ExitReason::Exited { code: 3 }
        );
        assert_eq!(
            ExitReason::from_status(status(9)),
            ExitReason::Signaled { signal: 9 }
        );
        assert_eq!(
            ExitReason::from_status(status(libc::SIGXCPU)),
            ExitReason::CpuLimit
        );
    }
}
