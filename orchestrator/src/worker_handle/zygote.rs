//! The zygote (fork server) as the daemon sees it: `vm-system-worker --zygote`, a worker that
//! boots one runtime and forks a copy of itself per request. One task owns the zygote process and
//! its packet socket; it sends `Fork` requests, and routes each forked worker's exit status (the
//! zygote is its parent and reaps it) to that worker's `Process`.

use std::collections::HashMap;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use protocol::{FromZygote, PROTOCOL_VERSION, ToZygote, is_compatible};
use tokio::io::unix::AsyncFd;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::instrument;

use super::process::ForkedExit;
use super::process::Process;
use super::spawn::{SpawnConfig, reap, spawn_process, spawn_stderr_forwarder};
use super::{ExitReason, Label, WorkerError, unix};

/// The answer to one fork request: the child's pid and where its exit status will arrive.
type ForkReply = oneshot::Sender<Result<(u32, ForkedExit), WorkerError>>;

enum Request {
    Fork {
        frames: OwnedFd,
        stderr: OwnedFd,
        reply: ForkReply,
    },
    Stop,
}

/// A cheap, cloneable handle to the running zygote.
#[derive(Debug, Clone)]
pub(crate) struct Zygote {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pid: u32,
    engine: String,
    engine_version: String,
    requests: mpsc::UnboundedSender<Request>,
    /// Becomes true once the zygote process was reaped.
    ended: watch::Receiver<bool>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Request::Fork { .. } => f.write_str("Fork"),
            Request::Stop => f.write_str("Stop"),
        }
    }
}

impl Zygote {
    /// Starts the zygote and waits for its `Hello` (compatible version) then `Ready`. On failure
    /// the process is killed and reaped before the error is returned.
    #[instrument(skip_all, fields(pid = tracing::field::Empty))]
    pub(crate) async fn start(cfg: &SpawnConfig) -> Result<Zygote, WorkerError> {
        let (ours, theirs) = protocol::seqpacket_pair().map_err(WorkerError::Pipe)?;
        let (stderr, stderr_theirs) = unix::pipe().map_err(WorkerError::Pipe)?;
        let (mut child, pid) = spawn_process(cfg, &["--zygote"], theirs, stderr_theirs).await?;
        tracing::Span::current().record("pid", pid);
        let label = Label::default();
        label.set("fork server".into());
        spawn_stderr_forwarder(stderr, pid, label);
        let socket = match set_nonblocking(&ours).and_then(|()| register(ours)) {
            Ok(socket) => socket,
            Err(err) => {
                reap(&mut child, Some(pid)).await;
                return Err(WorkerError::Pipe(err));
            }
        };
        let hello =
            tokio::time::timeout(cfg.handshake_timeout, handshake(&socket, &mut child)).await;
        let (engine, engine_version) = match hello {
            Ok(Ok(hello)) => hello,
            Ok(Err(err)) => {
                reap(&mut child, Some(pid)).await;
                return Err(err);
            }
            Err(_) => {
                reap(&mut child, Some(pid)).await;
                return Err(WorkerError::HandshakeTimeout(cfg.handshake_timeout));
            }
        };
        let (requests, inbox) = mpsc::unbounded_channel();
        let (ended_tx, ended) = watch::channel(false);
        tokio::spawn(run(Owned {
            pid,
            child,
            socket,
            inbox,
            ended: ended_tx,
            grace: cfg.grace,
        }));
        tracing::info!(%engine, "fork server ready");
        Ok(Zygote {
            inner: Arc::new(Inner {
                pid,
                engine,
                engine_version,
                requests,
                ended,
            }),
        })
    }

    /// The zygote's pid.
    pub(crate) fn pid(&self) -> u32 {
        self.inner.pid
    }

    /// Engine name from the zygote's `Hello`.
    pub(crate) fn engine(&self) -> &str {
        &self.inner.engine
    }

    /// Engine version from the zygote's `Hello`.
    pub(crate) fn engine_version(&self) -> &str {
        &self.inner.engine_version
    }

    /// Whether the zygote still runs and takes requests.
    pub(crate) fn is_alive(&self) -> bool {
        !*self.inner.ended.borrow() && !self.inner.requests.is_closed()
    }

    /// Has the zygote fork a worker on `frames` (its frame socket) and `stderr` (the write end of
    /// its stderr pipe). Returns the child's pid and where its exit status will arrive.
    pub(crate) async fn fork(
        &self,
        frames: OwnedFd,
        stderr: OwnedFd,
    ) -> Result<(u32, ForkedExit), WorkerError> {
        let (reply, answer) = oneshot::channel();
        let gone = || WorkerError::Zygote("the fork server is not running".into());
        self.inner
            .requests
            .send(Request::Fork {
                frames,
                stderr,
                reply,
            })
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    /// Stops the zygote (closing its socket ends it; SIGKILL after the grace period, or at once
    /// when `fast`) and returns once it was reaped. Workers it forked die with it.
    #[cfg(test)]
    pub(crate) async fn stop(&self, fast: bool) {
        self.stop_hastened(tokio::sync::watch::channel(fast).1)
            .await;
    }

    /// `stop`, with SIGKILL as soon as `fast` holds true.
    pub(crate) async fn stop_hastened(&self, mut fast: super::Haste) {
        let kill = || unix::signal_group_logged(self.inner.pid, unix::SIGKILL);
        let now = *fast.borrow_and_update();
        if now {
            kill();
        }
        let _ = self.inner.requests.send(Request::Stop);
        let mut ended = self.inner.ended.clone();
        if !now {
            tokio::select! {
                _ = ended.wait_for(|ended| *ended) => return,
                Ok(_) = fast.wait_for(|fast| *fast) => kill(),
            }
        }
        let _ = ended.wait_for(|ended| *ended).await;
    }
}

/// What the zygote's task owns.
struct Owned {
    pid: u32,
    child: Process,
    socket: AsyncFd<OwnedFd>,
    inbox: mpsc::UnboundedReceiver<Request>,
    ended: watch::Sender<bool>,
    grace: Duration,
}

/// Reads `Hello` then `Ready`: the engine name and version.
async fn handshake(
    socket: &AsyncFd<OwnedFd>,
    child: &mut Process,
) -> Result<(String, String), WorkerError> {
    let mut hello = None;
    // The fork server may write `BootFailed` and exit at once: its exit can be seen before the
    // message is read, so an exit is only reported once the socket is drained (end of stream).
    let mut exited: Option<ExitReason> = None;
    loop {
        let message = tokio::select! {
            message = receive(socket) => message,
            status = child.wait(), if exited.is_none() => {
                exited = Some(ExitReason::from_wait(status));
                continue;
            }
        };
        match message.map_err(WorkerError::Pipe)? {
            Some(Ok(FromZygote::Hello {
                protocol_version,
                engine,
                engine_version,
                ..
            })) if hello.is_none() => {
                if !is_compatible(protocol_version) {
                    return Err(WorkerError::VersionMismatch {
                        theirs: protocol_version,
                        ours: PROTOCOL_VERSION,
                    });
                }
                hello = Some((engine, engine_version));
            }
            Some(Ok(FromZygote::Ready)) if hello.is_some() => {
                if let Some(hello) = hello.take() {
                    return Ok(hello);
                }
            }
            Some(Ok(FromZygote::BootFailed { reason })) => {
                return Err(WorkerError::BootFailed { reason });
            }
            Some(Ok(other)) => {
                return Err(WorkerError::Handshake {
                    detail: format!("unexpected fork server message {other:?}"),
                });
            }
            Some(Err(err)) => return Err(WorkerError::Unreadable(err)),
            None => {
                let reason = match exited {
                    Some(reason) => reason,
                    None => ExitReason::from_wait(child.wait().await),
                };
                return Err(WorkerError::ExitedDuringStart(reason));
            }
        }
    }
}

/// The zygote's task: serves requests and routes exits until the zygote ends or is stopped, then
/// closes the socket, reaps the zygote and fails whatever is still waiting.
#[instrument(name = "fork_server", skip_all, fields(pid = owned.pid))]
async fn run(owned: Owned) {
    let Owned {
        pid,
        mut child,
        socket,
        mut inbox,
        ended,
        grace,
    } = owned;
    let mut next_id: u64 = 0;
    let mut pending: HashMap<u64, ForkReply> = HashMap::new();
    let mut live: HashMap<u32, oneshot::Sender<i32>> = HashMap::new();
    let mut exited = None;
    // `None` when stopped on request, else why the zygote could no longer serve.
    let failure: Option<String> = loop {
        tokio::select! {
            request = inbox.recv() => match request {
                Some(Request::Fork { frames, stderr, reply }) => {
                    next_id += 1;
                    match send_fork(&socket, next_id, &frames, &stderr).await {
                        Ok(()) => {
                            pending.insert(next_id, reply);
                        }
                        Err(err) => {
                            let reason = format!("failed to send a fork request: {err}");
                            let _ = reply.send(Err(WorkerError::Zygote(reason.clone())));
                            break Some(reason);
                        }
                    }
                }
                Some(Request::Stop) | None => break None,
            },
            message = receive(&socket) => match message {
                Ok(Some(Ok(message))) => {
                    if let Err(reason) = route(message, &mut pending, &mut live) {
                        break Some(reason);
                    }
                }
                Ok(Some(Err(err))) => break Some(format!("unreadable fork server message: {err}")),
                Ok(None) => break Some("the fork server closed its socket".to_string()),
                Err(err) => break Some(format!("fork server socket failed: {err}")),
            },
            status = child.wait() => {
                exited = Some(status);
                break Some("the fork server exited".to_string());
            }
        }
    };
    inbox.close();
    // Closing the socket tells the zygote to exit; its workers die with it (parent-death signal).
    drop(socket);
    let status = match exited {
        Some(status) => status,
        None => match tokio::time::timeout(grace, child.wait()).await {
            Ok(status) => status,
            Err(_) => {
                unix::signal_group_logged(pid, unix::SIGKILL);
                child.start_kill();
                child.wait().await
            }
        },
    };
    let status = status.map_or_else(
        |err| format!("unknown ({err})"),
        |status| ExitReason::from_status(status).last_error(),
    );
    let why = match failure {
        None => {
            tracing::info!(%status, "fork server stopped");
            "the fork server was stopped".to_string()
        }
        Some(why) => {
            tracing::warn!(reason = %why, %status, forked_alive = live.len(), "fork server ended");
            why
        }
    };
    for (_, reply) in pending.drain() {
        let _ = reply.send(Err(WorkerError::Zygote(why.clone())));
    }
    // Dropping the senders tells each forked worker's process that it died with the zygote.
    drop(live);
    while let Ok(request) = inbox.try_recv() {
        if let Request::Fork { reply, .. } = request {
            let _ = reply.send(Err(WorkerError::Zygote(why.clone())));
        }
    }
    ended.send_replace(true);
}

/// Acts on one message from the zygote. An `Err` is a protocol violation: the zygote is stopped.
fn route(
    message: FromZygote,
    pending: &mut HashMap<u64, ForkReply>,
    live: &mut HashMap<u32, oneshot::Sender<i32>>,
) -> Result<(), String> {
    match message {
        FromZygote::Forked { id, pid } => {
            let Some(reply) = pending.remove(&id) else {
                return Err(format!("fork server answered unknown request {id}"));
            };
            let (tx, rx) = oneshot::channel();
            live.insert(pid, tx);
            if reply.send(Ok((pid, rx))).is_err() {
                // Whoever asked is gone: nobody would supervise this worker.
                live.remove(&pid);
                unix::signal_pid_logged(pid, unix::SIGKILL);
            }
            Ok(())
        }
        FromZygote::ForkFailed { id, reason } => {
            let Some(reply) = pending.remove(&id) else {
                return Err(format!("fork server answered unknown request {id}"));
            };
            let _ = reply.send(Err(WorkerError::Zygote(reason)));
            Ok(())
        }
        FromZygote::Exited { pid, status } => {
            if let Some(tx) = live.remove(&pid) {
                let _ = tx.send(status);
            }
            Ok(())
        }
        other => Err(format!("unexpected fork server message {other:?}")),
    }
}

/// Sends one `Fork` request with its two descriptors.
async fn send_fork(
    socket: &AsyncFd<OwnedFd>,
    id: u64,
    frames: &OwnedFd,
    stderr: &OwnedFd,
) -> std::io::Result<()> {
    let body = protocol::encode_packet(&ToZygote::Fork { id }).map_err(std::io::Error::other)?;
    loop {
        let mut guard = socket.writable().await?;
        match guard.try_io(|fd| {
            protocol::send_packet(
                fd.get_ref().as_fd(),
                &body,
                &[frames.as_fd(), stderr.as_fd()],
            )
        }) {
            Ok(result) => return result,
            Err(_would_block) => {}
        }
    }
}

/// Receives one message; `None` at end of stream. Descriptors are never expected and are closed.
async fn receive(
    socket: &AsyncFd<OwnedFd>,
) -> std::io::Result<Option<Result<FromZygote, protocol::CodecError>>> {
    loop {
        let mut guard = socket.readable().await?;
        match guard.try_io(|fd| protocol::recv_packet(fd.get_ref().as_fd())) {
            Ok(Ok(Some((body, _fds)))) => return Ok(Some(protocol::decode_packet(&body))),
            Ok(Ok(None)) => return Ok(None),
            Ok(Err(err)) => return Err(err),
            Err(_would_block) => {}
        }
    }
}

fn register(fd: OwnedFd) -> std::io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: an `OwnedFd` stays open and names the same socket until the `AsyncFd` drops it.
    unsafe { AsyncFd::register(fd) }.map_err(|err| err.into_parts().1)
}

fn set_nonblocking(fd: &OwnedFd) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: fcntl on a descriptor we own, with integer arguments only.
    let flags = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0
        || unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0
    {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use protocol::{EventType, ExecOutcome};

    use super::*;
    use crate::worker_handle::spawn::fork_worker;
    use crate::worker_handle::test_support::{self, finish, start};
    use crate::worker_handle::{ExecMsg, Launcher, WorkerHandle};

    fn parent_of(pid: u32) -> Option<u32> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let rest = &text[text.rfind(')')? + 1..];
        rest.split_whitespace().nth(1)?.parse().ok()
    }

    /// The value a REPL execution of `source` yields, as its payload text.
    async fn value(worker: &WorkerHandle, id: u64, source: &str) -> String {
        let msgs = finish(start(worker, id, source).await).await;
        let [ExecMsg::Event(value), ExecMsg::Done { outcome, .. }] = msgs.as_slice() else {
            panic!("unexpected messages {msgs:?}");
        };
        assert_eq!(value.event_type, EventType::Value);
        assert_eq!(*outcome, ExecOutcome::Ok);
        value.payload.clone()
    }

    #[tokio::test]
    async fn forked_workers_serve_sessions_and_are_reaped() {
        let cfg = test_support::config();
        let zygote = Zygote::start(&cfg).await.unwrap();
        assert_eq!(zygote.engine(), "quickjs");
        let worker = fork_worker(&cfg, &zygote).await.unwrap();
        let pid = worker.pid();
        assert_ne!(pid, zygote.pid());
        // A copy of the zygote, leading its own session and process group.
        assert_eq!(parent_of(pid), Some(zygote.pid()));
        assert_eq!(
            unsafe { libc::getpgid(pid as libc::pid_t) },
            pid as libc::pid_t
        );
        assert_eq!(
            unsafe { libc::getsid(pid as libc::pid_t) },
            pid as libc::pid_t
        );
        worker.configure(test_support::session(64)).await.unwrap();
        assert!(value(&worker, 1, "1 + 1").await.contains('2'));
        assert!(worker.usage().is_some_and(|usage| usage.rss_kb > 0));
        assert_eq!(worker.stop(false).await, ExitReason::Requested);
        assert!(test_support::is_reaped(pid));
        zygote.stop(false).await;
        assert!(!zygote.is_alive());
        assert!(test_support::is_reaped(zygote.pid()));
    }

    #[tokio::test]
    async fn every_fork_draws_its_own_random_numbers() {
        let cfg = test_support::config();
        let zygote = Zygote::start(&cfg).await.unwrap();
        let source = "[Math.random(), Math.random(), Math.random.name, Math.random.length, \
                      Object.keys(Math).includes('random'), \
                      Object.getOwnPropertyDescriptor(Math, 'random').writable]";
        let mut seen = Vec::new();
        for _ in 0..3 {
            let worker = fork_worker(&cfg, &zygote).await.unwrap();
            worker.configure(test_support::session(64)).await.unwrap();
            let payload = value(&worker, 1, source).await;
            assert!(
                payload.contains("random") && payload.contains("false"),
                "{payload}"
            );
            assert!(!seen.contains(&payload), "{payload} repeated");
            seen.push(payload);
            worker.stop(true).await;
        }
        zygote.stop(false).await;
    }

    #[tokio::test]
    async fn a_killed_fork_reports_its_signal() {
        let cfg = test_support::config();
        let zygote = Zygote::start(&cfg).await.unwrap();
        let worker = fork_worker(&cfg, &zygote).await.unwrap();
        worker.configure(test_support::session(64)).await.unwrap();
        let rx = start(&worker, 1, "while (true) {}").await;
        test_support::signal(worker.pid(), libc::SIGKILL);
        let killed = ExitReason::Signaled { signal: 9 };
        assert_eq!(finish(rx).await, vec![ExecMsg::Exited(killed.clone())]);
        assert_eq!(worker.exited().await, killed);
        assert!(test_support::is_reaped(worker.pid()));
        zygote.stop(false).await;
    }

    #[tokio::test]
    async fn forks_die_with_the_zygote_and_the_launcher_starts_another() {
        let cfg = test_support::config();
        let launcher = Launcher::new(cfg);
        let first = launcher.prepare().await.unwrap();
        let worker = launcher.start().await.unwrap();
        assert_eq!(parent_of(worker.pid()), Some(first.pid));
        test_support::signal(first.pid, libc::SIGKILL);
        let reason = tokio::time::timeout(Duration::from_secs(10), worker.exited())
            .await
            .unwrap();
        assert_eq!(reason, ExitReason::Signaled { signal: 9 });
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !test_support::is_reaped(worker.pid()) {
            assert!(
                std::time::Instant::now() < deadline,
                "fork outlived the zygote"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let next = launcher.start().await.unwrap();
        let second = parent_of(next.pid()).unwrap();
        assert_ne!(second, first.pid);
        next.configure(test_support::session(64)).await.unwrap();
        assert!(value(&next, 1, "40 + 2").await.contains("42"));
        next.stop(false).await;
        launcher.shutdown(false).await;
        assert!(test_support::is_reaped(second));
    }

    #[tokio::test]
    async fn without_a_fork_server_workers_are_spawned() {
        // A worker program that refuses `--zygote` (as a V8 build does by failing its boot).
        let dir = std::env::temp_dir().join(format!("zygote-refused-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let script = dir.join("worker.sh");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\n[ \"$1\" = --zygote ] && exit 7\nexec {} \"$@\"\n",
                test_support::worker_bin().display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let cfg = SpawnConfig {
            worker_bin: script,
            ..test_support::config()
        };
        let launcher = Launcher::new(cfg.clone());
        // A script just written may be "text file busy" while a concurrent fork holds it.
        let mut refused = None;
        for _ in 0..50 {
            match Zygote::start(&cfg).await {
                Err(WorkerError::Spawn { source, .. })
                    if source.raw_os_error() == Some(libc::ETXTBSY) =>
                {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                other => {
                    refused = Some(other);
                    break;
                }
            }
        }
        let Some(Err(WorkerError::ExitedDuringStart(reason))) = refused else {
            panic!("unexpected zygote start {refused:?}");
        };
        assert_eq!(reason, ExitReason::Exited { code: 7 });
        assert!(launcher.prepare().await.is_none());
        let worker = launcher.start().await.unwrap();
        // Spawned: this process is its parent.
        assert_eq!(parent_of(worker.pid()), Some(std::process::id()));
        worker.configure(test_support::session(64)).await.unwrap();
        assert!(value(&worker, 1, "1 + 1").await.contains('2'));
        worker.stop(false).await;
        launcher.shutdown(false).await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
