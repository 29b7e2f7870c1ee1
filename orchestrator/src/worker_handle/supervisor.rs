//! The supervisor: one task per worker that owns its `Process` and the frame pipe, routes frames to
//! whoever waits for them, runs the stop escalation, and reaps the process.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::Poll;
use std::time::Duration;

use futures::{Sink, Stream};
use protocol::{
    Budget, CodecError, ExecId, ExecKind, ExecLimits, FrameCodec, FromWorker, SessionConfig,
    StopCause, ToWorker,
};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_util::codec::{Encoder, Framed};
use tracing::instrument;

use super::process::Process;
use super::{ExecMsg, ExitReason, KillReason, Label, WorkerError, unix};

/// The daemon's end of the frame pipe.
pub(super) type Frames = Framed<UnixStream, FrameCodec<FromWorker, ToWorker>>;

/// How long to keep reading frames the worker wrote before it exited (normally they are all
/// buffered and EOF follows at once; a descendant holding the socket open must not stall us).
const DRAIN: Duration = Duration::from_millis(250);

/// Everything a `WorkerHandle` can ask of the supervisor.
#[derive(Debug)]
pub(super) enum Control {
    Configure {
        config: SessionConfig,
        reply: oneshot::Sender<Result<(), WorkerError>>,
    },
    Exec {
        id: ExecId,
        kind: ExecKind,
        name: String,
        source: String,
        limits: ExecLimits,
        budget: Budget,
        reply: oneshot::Sender<Result<mpsc::UnboundedReceiver<ExecMsg>, WorkerError>>,
    },
    Cancel {
        id: ExecId,
        cause: StopCause,
    },
    Kill(KillReason),
    Stop {
        fast: bool,
    },
}

/// Where the stop escalation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stopping {
    /// Not stopping.
    No,
    /// `Shutdown` sent; SIGTERM at the deadline.
    Shutdown(Instant),
    /// SIGTERM sent; SIGKILL at the deadline.
    Term(Instant),
    /// SIGKILL sent; only the exit is left to wait for.
    Killed,
}

/// What the supervisor is given when the handshake succeeded.
pub(super) struct Parts {
    pub(super) pid: u32,
    pub(super) child: Process,
    pub(super) frames: Frames,
    pub(super) control: mpsc::UnboundedReceiver<Control>,
    pub(super) exit: watch::Sender<Option<ExitReason>>,
    pub(super) grace: Duration,
    pub(super) label: Label,
    pub(super) fatal: Arc<OnceLock<String>>,
}

pub(super) struct Supervisor {
    pid: u32,
    child: Process,
    frames: Frames,
    encoder: FrameCodec<FromWorker, ToWorker>,
    control: mpsc::UnboundedReceiver<Control>,
    exit: watch::Sender<Option<ExitReason>>,
    grace: Duration,
    label: Label,
    /// Whether frames are still read (false after EOF or an unreadable frame).
    reading: bool,
    /// Whether frames can still be written (false after a write failed).
    writing: bool,
    /// Whether any handle is left to send control messages.
    control_open: bool,
    /// When the worker closed its pipe without exiting, the deadline to kill it.
    pipe_closed: Option<Instant>,
    configure: Option<oneshot::Sender<Result<(), WorkerError>>>,
    exec: Option<(ExecId, mpsc::UnboundedSender<ExecMsg>)>,
    /// The last execution that sent `Done`: a CPU sample racing its end is not an error.
    last_done: Option<ExecId>,
    /// Text of a `Fatal` frame: the coming exit is a memory-limit exit. Shared with handles;
    /// the worker sends it before the `Done` of the execution that hit the limit.
    fatal: Arc<OnceLock<String>>,
    /// Why we killed the worker, when we did.
    killed: Option<ExitReason>,
    stop_requested: bool,
    stopping: Stopping,
    reaped: bool,
}

impl Supervisor {
    pub(super) fn new(parts: Parts) -> Self {
        Supervisor {
            pid: parts.pid,
            child: parts.child,
            frames: parts.frames,
            encoder: FrameCodec::new(),
            control: parts.control,
            exit: parts.exit,
            grace: parts.grace,
            label: parts.label,
            reading: true,
            writing: true,
            control_open: true,
            pipe_closed: None,
            configure: None,
            exec: None,
            last_done: None,
            fatal: parts.fatal,
            killed: None,
            stop_requested: false,
            stopping: Stopping::No,
            reaped: false,
        }
    }

    /// Runs until the worker exited and was reaped, then publishes the exit reason.
    #[instrument(name = "worker", skip_all, fields(pid = self.pid))]
    pub(super) async fn run(mut self) {
        let status = loop {
            let deadline = self.deadline();
            let sleep_until =
                deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                status = self.child.wait() => break status,
                control = self.control.recv(), if self.control_open => match control {
                    Some(control) => self.on_control(control),
                    None => {
                        // Every handle is gone: nobody can use this worker any more.
                        self.control_open = false;
                        self.on_control(Control::Stop { fast: false });
                    }
                },
                frame = next_frame(&mut self.frames, &mut self.writing), if self.reading => {
                    self.on_frame(frame);
                }
                () = tokio::time::sleep_until(sleep_until), if deadline.is_some() => self.on_deadline(),
            }
        };
        self.reaped = true;
        // Nothing the worker started may outlive it (spec §6).
        unix::signal_group_logged(self.pid, unix::SIGKILL);
        // Frames written just before the exit (a `Done`, a `Fatal`) are still in the socket.
        while self.reading {
            match tokio::time::timeout(DRAIN, next_frame(&mut self.frames, &mut self.writing)).await
            {
                Ok(frame) => self.on_frame(frame),
                Err(_) => break,
            }
        }
        let reason = self.classify(status);
        self.finish(reason);
    }

    /// The earliest pending deadline: the next stop escalation step, or the kill of a worker
    /// that closed its pipe but did not exit.
    fn deadline(&self) -> Option<Instant> {
        let stop = match self.stopping {
            Stopping::Shutdown(at) | Stopping::Term(at) => Some(at),
            Stopping::No | Stopping::Killed => None,
        };
        // A worker being stopped closes its pipe on purpose; the escalation covers it.
        let pipe = match self.stopping {
            Stopping::No => self.pipe_closed,
            Stopping::Shutdown(_) | Stopping::Term(_) | Stopping::Killed => None,
        };
        [stop, pipe].into_iter().flatten().min()
    }

    fn on_control(&mut self, control: Control) {
        match control {
            Control::Configure { config, reply } => {
                if let Err(err) = self.can_take_work(self.configure.is_some()) {
                    let _ = reply.send(Err(err));
                    return;
                }
                match self.send(ToWorker::Configure(config)) {
                    Ok(()) => self.configure = Some(reply),
                    Err(err) => {
                        let _ = reply.send(Err(err));
                    }
                }
            }
            Control::Exec {
                id,
                kind,
                name,
                source,
                limits,
                budget,
                reply,
            } => {
                if let Err(err) = self.can_take_work(self.exec.is_some()) {
                    let _ = reply.send(Err(err));
                    return;
                }
                let frame = ToWorker::Exec {
                    id,
                    kind,
                    name,
                    source,
                    limits,
                    budget,
                };
                match self.send(frame) {
                    Ok(()) => {
                        let (tx, rx) = mpsc::unbounded_channel();
                        self.exec = Some((id, tx));
                        let _ = reply.send(Ok(rx));
                    }
                    Err(err) => {
                        let _ = reply.send(Err(err));
                    }
                }
            }
            Control::Cancel { id, cause } => {
                if let Err(err) = self.send(ToWorker::Cancel { id, cause }) {
                    tracing::warn!(session_id = %self.label.get(), error = %err, "failed to send cancel");
                }
            }
            Control::Kill(reason) => self.kill(reason.into()),
            Control::Stop { fast } => self.stop(fast),
        }
    }

    fn can_take_work(&self, busy: bool) -> Result<(), WorkerError> {
        if self.stop_requested || self.killed.is_some() {
            Err(WorkerError::Stopping)
        } else if busy {
            Err(WorkerError::Busy)
        } else {
            Ok(())
        }
    }

    /// Queues a frame; the I/O branch of the loop writes it without ever blocking the loop.
    fn send(&mut self, frame: ToWorker) -> Result<(), WorkerError> {
        if !self.writing {
            // The pipe is broken: the worker is exiting, and its exit settles every request.
            return Ok(());
        }
        self.encoder
            .encode(frame, self.frames.write_buffer_mut())
            .map_err(WorkerError::Frame)
    }

    fn stop(&mut self, fast: bool) {
        self.stop_requested = true;
        if fast {
            self.signal(unix::SIGKILL);
            self.stopping = Stopping::Killed;
            return;
        }
        if self.stopping == Stopping::No {
            if let Err(err) = self.send(ToWorker::Shutdown) {
                tracing::warn!(error = %err, "failed to send shutdown");
            }
            self.stopping = Stopping::Shutdown(Instant::now() + self.grace);
        }
    }

    fn kill(&mut self, reason: ExitReason) {
        tracing::warn!(session_id = %self.label.get(), reason = %reason.last_error(), "killing worker process group");
        if self.killed.is_none() {
            self.killed = Some(reason);
        }
        self.signal(unix::SIGKILL);
        self.stopping = Stopping::Killed;
    }

    fn signal(&self, signal: i32) {
        unix::signal_group_logged(self.pid, signal);
    }

    fn on_deadline(&mut self) {
        let now = Instant::now();
        match self.stopping {
            Stopping::Shutdown(at) if at <= now => {
                tracing::info!(session_id = %self.label.get(), "worker ignored shutdown; sending SIGTERM");
                self.signal(unix::SIGTERM);
                self.stopping = Stopping::Term(now + self.grace);
                return;
            }
            Stopping::Term(at) if at <= now => {
                tracing::warn!(session_id = %self.label.get(), "worker ignored SIGTERM; sending SIGKILL");
                self.signal(unix::SIGKILL);
                self.stopping = Stopping::Killed;
                return;
            }
            _ => {}
        }
        if self.stopping == Stopping::No && self.pipe_closed.is_some_and(|at| at <= now) {
            self.pipe_closed = None;
            self.protocol_error("worker closed its frame pipe but did not exit".to_string());
        }
    }

    fn protocol_error(&mut self, detail: String) {
        // Nothing after a violation can be trusted: stop reading and kill.
        self.reading = false;
        self.kill(ExitReason::ProtocolError { detail });
    }

    fn on_frame(&mut self, frame: Option<Result<FromWorker, CodecError>>) {
        let frame = match frame {
            Some(Ok(frame)) => frame,
            None => return self.pipe_ended(),
            Some(Err(CodecError::Io(err))) if err.kind() != std::io::ErrorKind::InvalidData => {
                tracing::debug!(error = %err, "frame pipe failed");
                return self.pipe_ended();
            }
            Some(Err(err)) => {
                let detail = match std::error::Error::source(&err) {
                    Some(cause) => format!("unreadable frame: {cause}"),
                    None => format!("unreadable frame: {err}"),
                };
                return self.protocol_error(detail);
            }
        };
        match frame {
            FromWorker::Configured => match self.configure.take() {
                Some(reply) => {
                    let _ = reply.send(Ok(()));
                }
                None => self.protocol_error("unexpected Configured frame".to_string()),
            },
            FromWorker::ConfigureFailed { reason } => match self.configure.take() {
                Some(reply) => {
                    let _ = reply.send(Err(WorkerError::ConfigureFailed { reason }));
                }
                None => self.protocol_error("unexpected ConfigureFailed frame".to_string()),
            },
            FromWorker::Event(event) => match &self.exec {
                Some((id, tx)) if *id == event.id => {
                    let _ = tx.send(ExecMsg::Event(event));
                }
                _ => self.protocol_error(format!("event for unknown execution {}", event.id.0)),
            },
            FromWorker::Stats { id, cpu_ms } => match &self.exec {
                Some((current, tx)) if *current == id => {
                    let _ = tx.send(ExecMsg::Stats { cpu_ms });
                }
                _ if self.last_done == Some(id) => {}
                _ => self.protocol_error(format!("stats for unknown execution {}", id.0)),
            },
            FromWorker::Done {
                id,
                outcome,
                cpu_ms,
                wall_ms,
            } => match self.exec.take() {
                Some((current, tx)) if current == id => {
                    self.last_done = Some(id);
                    let _ = tx.send(ExecMsg::Done {
                        outcome,
                        cpu_ms,
                        wall_ms,
                    });
                }
                other => {
                    self.exec = other;
                    self.protocol_error(format!("done for unknown execution {}", id.0));
                }
            },
            FromWorker::Fatal { reason } => {
                tracing::warn!(session_id = %self.label.get(), %reason, "worker reported a fatal condition");
                let _ = self.fatal.set(reason);
            }
            FromWorker::Hello { .. } => self.protocol_error("unexpected Hello frame".to_string()),
            FromWorker::Ready => self.protocol_error("unexpected Ready frame".to_string()),
            FromWorker::BootFailed { .. } => {
                self.protocol_error("unexpected BootFailed frame".to_string());
            }
        }
    }

    /// The worker closed its end: it is exiting. If it does not, that is a protocol error.
    fn pipe_ended(&mut self) {
        self.reading = false;
        if self.pipe_closed.is_none() {
            self.pipe_closed = Some(Instant::now() + self.grace);
        }
    }

    fn classify(&self, status: std::io::Result<std::process::ExitStatus>) -> ExitReason {
        if let Some(reason) = &self.killed {
            return reason.clone();
        }
        if let Some(reason) = self.fatal.get() {
            return ExitReason::MemoryLimit {
                reason: reason.clone(),
            };
        }
        if self.stop_requested {
            return ExitReason::Requested;
        }
        match status {
            Ok(status) => ExitReason::from_status(status),
            Err(err) => {
                tracing::error!(error = %err, "failed to wait for worker");
                ExitReason::Exited { code: -1 }
            }
        }
    }

    /// Tells everyone who waits on this worker how it ended.
    fn finish(mut self, reason: ExitReason) {
        tracing::info!(session_id = %self.label.get(), reason = %reason.last_error(), "worker exited");
        if let Some((_, tx)) = self.exec.take() {
            let _ = tx.send(ExecMsg::Exited(reason.clone()));
        }
        if let Some(reply) = self.configure.take() {
            let _ = reply.send(Err(WorkerError::Exited(reason.clone())));
        }
        self.exit.send_replace(Some(reason.clone()));
        self.control.close();
        while let Ok(control) = self.control.try_recv() {
            match control {
                Control::Configure { reply, .. } => {
                    let _ = reply.send(Err(WorkerError::Exited(reason.clone())));
                }
                Control::Exec { reply, .. } => {
                    let _ = reply.send(Err(WorkerError::Exited(reason.clone())));
                }
                Control::Cancel { .. } | Control::Kill(_) | Control::Stop { .. } => {}
            }
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if !self.reaped {
            // The task was dropped before the worker exited (runtime shutdown): kill the group;
            // `kill_on_drop` and tokio's orphan queue (or the zygote) take care of the child.
            unix::signal_group_logged(self.pid, unix::SIGKILL);
        }
    }
}

/// Reads the next frame while also writing queued frames, so a worker that stops reading
/// (stopped, stuck) can never block the supervisor loop.
fn next_frame<'a>(
    frames: &'a mut Frames,
    writing: &'a mut bool,
) -> impl Future<Output = Option<Result<FromWorker, CodecError>>> + 'a {
    std::future::poll_fn(move |cx| {
        if *writing
            && !frames.write_buffer().is_empty()
            && let Poll::Ready(Err(err)) =
                <Frames as Sink<ToWorker>>::poll_flush(Pin::new(&mut *frames), cx)
        {
            tracing::debug!(error = %err, "failed to write to worker; dropping queued frames");
            *writing = false;
            frames.write_buffer_mut().clear();
        }
        Pin::new(&mut *frames).poll_next(cx)
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::worker_handle::test_support::{self, finish, start};
    use crate::worker_handle::{SpawnConfig, start_worker};

    #[tokio::test]
    async fn a_worker_killed_mid_exec_reports_the_signal() {
        let worker = start_worker(&test_support::config()).await.unwrap();
        worker.configure(test_support::session(128)).await.unwrap();
        let rx = start(&worker, 1, "while (true) {}").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        test_support::signal(worker.pid(), libc::SIGKILL);
        let msgs = finish(rx).await;
        let killed = ExitReason::Signaled { signal: 9 };
        assert_eq!(
            msgs.last(),
            Some(&ExecMsg::Exited(killed.clone())),
            "{msgs:?}"
        );
        assert_eq!(killed.last_error(), "worker killed by signal SIGKILL");
        assert_eq!(worker.exited().await, killed);
        assert!(test_support::is_reaped(worker.pid()));
    }

    #[tokio::test]
    async fn stop_during_exec_ends_the_stream_with_requested() {
        let worker = start_worker(&test_support::config()).await.unwrap();
        worker.configure(test_support::session(128)).await.unwrap();
        let rx = start(&worker, 1, "while (true) {}").await;
        let started = std::time::Instant::now();
        assert_eq!(worker.stop(false).await, ExitReason::Requested);
        // The worker acts on Shutdown at once, without waiting for the grace periods.
        assert!(
            started.elapsed() < Duration::from_millis(300),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(
            finish(rx).await,
            vec![ExecMsg::Exited(ExitReason::Requested)]
        );
    }

    #[tokio::test]
    async fn a_stopped_worker_is_killed_after_both_graces() {
        let cfg = test_support::config();
        let worker = start_worker(&cfg).await.unwrap();
        let pid = worker.pid();
        test_support::signal(pid, libc::SIGSTOP);
        test_support::until_stopped(pid).await;
        let started = std::time::Instant::now();
        // SIGTERM stays pending while the process is stopped; only the final SIGKILL works.
        assert_eq!(worker.stop(false).await, ExitReason::Requested);
        let took = started.elapsed();
        assert!(took >= cfg.grace * 2, "{took:?}");
        assert!(took < cfg.grace * 2 + Duration::from_secs(2), "{took:?}");
        assert!(test_support::is_reaped(pid));
    }

    #[tokio::test]
    async fn fast_stop_kills_at_once() {
        let cfg = SpawnConfig {
            grace: Duration::from_secs(30),
            ..test_support::config()
        };
        let worker = start_worker(&cfg).await.unwrap();
        test_support::signal(worker.pid(), libc::SIGSTOP);
        test_support::until_stopped(worker.pid()).await;
        let started = std::time::Instant::now();
        let stop = worker.stop(false);
        let again = worker.stop(true);
        let (first, second) = tokio::join!(stop, again);
        assert_eq!(
            (first, second),
            (ExitReason::Requested, ExitReason::Requested)
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn kill_reasons_become_exit_reasons() {
        for (kill, expected) in [
            (KillReason::Unresponsive, "worker unresponsive; killed"),
            (KillReason::Requested, "worker stopped"),
            (
                KillReason::ProtocolError,
                "worker protocol error: violation reported by the daemon",
            ),
        ] {
            let worker = start_worker(&test_support::config()).await.unwrap();
            worker.configure(test_support::session(128)).await.unwrap();
            let rx = start(&worker, 1, "while (true) {}").await;
            worker.kill(kill);
            let reason = worker.exited().await;
            assert_eq!(reason.last_error(), expected);
            assert_eq!(finish(rx).await, vec![ExecMsg::Exited(reason)]);
            assert!(matches!(
                worker.configure(test_support::session(16)).await,
                Err(WorkerError::Exited(_))
            ));
        }
    }
}
