//! `Drive`: follows one execution on a worker and applies the daemon's side of spec §7.8: the
//! first stop cause taken wins, the wall-time backstop, and SIGKILL 2 s after a stop that the
//! code ignores.

use std::time::Duration;

use protocol::{Budget, ExecId, ExecKind, ExecLimits, ExecOutcome, StopCause, WorkerEvent};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::worker_handle::{ExecMsg, ExitReason, KillReason, WorkerError, WorkerHandle};

/// How long code may ignore a stop before its worker is killed (spec §7.8).
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(2);

/// One step of an execution, as the caller sees it.
#[derive(Debug)]
pub(crate) enum Step {
    Event(WorkerEvent),
    Stats(u64),
    Done { outcome: ExecOutcome, cpu_ms: u64 },
    Exited(ExitReason),
}

#[derive(Debug)]
pub(crate) struct Drive {
    worker: WorkerHandle,
    id: ExecId,
    rx: mpsc::UnboundedReceiver<ExecMsg>,
    stops: Option<mpsc::UnboundedReceiver<StopCause>>,
    wall_deadline: Instant,
    kill_at: Option<Instant>,
    /// The stop cause the daemon took, if any.
    pub(crate) taken: Option<StopCause>,
    /// The worker was killed because it ignored a stop.
    pub(crate) killed: bool,
    pub(crate) dispatched: Instant,
}

impl Drive {
    /// Sends the execution to the worker and starts the wall timer.
    #[expect(clippy::too_many_arguments, reason = "mirrors the Exec frame")]
    pub(crate) async fn start(
        worker: &WorkerHandle,
        id: ExecId,
        kind: ExecKind,
        name: String,
        source: String,
        limits: ExecLimits,
        budget: Budget,
        stops: mpsc::UnboundedReceiver<StopCause>,
    ) -> Result<Drive, WorkerError> {
        let dispatched = Instant::now();
        let rx = worker.exec(id, kind, name, source, limits, budget).await?;
        Ok(Drive {
            worker: worker.clone(),
            id,
            rx,
            stops: Some(stops),
            wall_deadline: dispatched + Duration::from_millis(limits.wall_ms),
            kill_at: None,
            taken: None,
            killed: false,
            dispatched,
        })
    }

    /// Takes `cause` if no cause was taken yet, and tells the worker.
    pub(crate) fn stop(&mut self, cause: StopCause) {
        if self.taken.is_some() || self.killed {
            return;
        }
        self.taken = Some(cause);
        self.worker.cancel(self.id, cause);
        self.kill_at = Some(Instant::now() + STOP_GRACE);
    }

    /// Kills the worker now (protocol violation).
    pub(crate) fn kill(&mut self, reason: KillReason) {
        self.worker.kill(reason);
    }

    /// Milliseconds since dispatch.
    pub(crate) fn wall_ms(&self) -> u64 {
        u64::try_from(self.dispatched.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The next thing that happened. After `Done` or `Exited` it must not be called again.
    pub(crate) async fn next(&mut self) -> Step {
        loop {
            let wall_armed = self.taken.is_none() && !self.killed;
            let kill_at = self.kill_at.filter(|_| !self.killed);
            tokio::select! {
                biased;
                msg = self.rx.recv() => {
                    return match msg {
                        Some(ExecMsg::Event(event)) => Step::Event(event),
                        Some(ExecMsg::Stats { cpu_ms }) => Step::Stats(cpu_ms),
                        Some(ExecMsg::Done { outcome, cpu_ms, .. }) => Step::Done { outcome, cpu_ms },
                        Some(ExecMsg::Exited(reason)) => Step::Exited(reason),
                        None => Step::Exited(
                            self.worker.exited().await,
                        ),
                    };
                }
                cause = recv_opt(&mut self.stops), if self.stops.is_some() && !self.killed => {
                    match cause {
                        Some(cause) => self.stop(cause),
                        // Nobody can stop it any more; keep following.
                        None => self.stops = None,
                    }
                }
                () = tokio::time::sleep_until(self.wall_deadline), if wall_armed => {
                    self.stop(StopCause::WallTime);
                }
                () = sleep_until_opt(kill_at), if kill_at.is_some() => {
                    self.killed = true;
                    self.worker.kill(KillReason::Unresponsive);
                }
            }
        }
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

async fn recv_opt(rx: &mut Option<mpsc::UnboundedReceiver<StopCause>>) -> Option<StopCause> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
